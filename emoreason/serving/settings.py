"""The gateway's limits and access rules (`emoreason serve` flags map onto these)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..defaults import REQUEST_TIMEOUT_S

MIB = 1024 * 1024


@dataclass
class GatewaySettings:
    api_keys: tuple[str, ...] = ()  # empty: no key needed (loopback development only)
    max_body_bytes: int = 16 * MIB  # whole request (JSON with a base64 image, or an upload)
    max_image_bytes: int = 10 * MIB  # one encoded image
    max_pixels: int = 25_000_000  # decoded size: refuses decompression bombs before decoding
    max_faces: int = 8  # analyse at most the N largest faces of an image
    allowed_url_prefixes: tuple[str, ...] = ()  # remote image URLs the gateway may fetch (none by default)
    fetch_timeout_s: float = 10.0  # one allow-listed fetch, redirects included
    read_timeout_s: float = 30.0  # between two pieces of a request body (slow or half-sent uploads)
    request_timeout_s: float = REQUEST_TIMEOUT_S  # one analysis (front-end + reasoning)
    max_concurrency: int = 4  # analyses in flight; more get 429 at once
    models: tuple[str, ...] = field(default_factory=tuple)  # filled by the app from its engines

    @staticmethod
    def keys_from_env(cli_keys: list[str] | None) -> tuple[str, ...]:
        """--api-key values, else EMOREASON_API_KEYS (comma-separated)."""
        if cli_keys:
            return tuple(cli_keys)
        return tuple(k.strip() for k in os.environ.get("EMOREASON_API_KEYS", "").split(",") if k.strip())
