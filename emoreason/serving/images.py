"""Images from requests: data URLs and base64 only, unless a remote prefix is allow-listed.

Every check happens before decoding: the encoded size, then (in imageio.load_image) the
pixel count from the header, so a decompression bomb is refused without being expanded.
A remote URL is fetched only when it starts with an allow-listed prefix (no server-side
fetch of arbitrary URLs), with a timeout and the same size cap.
"""

from __future__ import annotations

import base64
import binascii
import urllib.error
import urllib.request

import numpy as np

from ..imageio import InputError, load_image
from .errors import APIError
from .settings import GatewaySettings


def image_bytes(url: str, settings: GatewaySettings, param: str = "image_url") -> bytes:
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.startswith("data:image/") or not header.endswith(";base64"):
            raise APIError(400, f"{param}: expected a data:image/...;base64 URL, got {header[:40]!r}", param=param)
        return decode_base64(payload, settings, param)
    if url.startswith(("http://", "https://")):
        if not any(url.startswith(prefix) for prefix in settings.allowed_url_prefixes):
            raise APIError(400, f"{param}: remote image URLs are refused (not in the gateway's allow-list); "
                                "send the image as a data URL", param=param, code="url_not_allowed")  # fmt: skip
        return _fetch(url, settings, param)
    raise APIError(400, f"{param}: expected a data URL (data:image/png;base64,...)", param=param)


def decode_base64(payload: str, settings: GatewaySettings, param: str) -> bytes:
    if len(payload) * 3 // 4 > settings.max_image_bytes:
        raise APIError(413, f"{param}: image larger than {settings.max_image_bytes} bytes", param=param)
    try:
        return base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, f"{param}: invalid base64", param=param) from None


def _fetch(url: str, settings: GatewaySettings, param: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=settings.fetch_timeout_s) as resp:
            data = resp.read(settings.max_image_bytes + 1)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise APIError(400, f"{param}: could not fetch the image ({type(exc).__name__})", param=param) from None
    if len(data) > settings.max_image_bytes:
        raise APIError(413, f"{param}: image larger than {settings.max_image_bytes} bytes", param=param)
    return data


def decode_image(data: bytes, settings: GatewaySettings, param: str = "image_url") -> np.ndarray:
    try:
        return load_image(data, max_pixels=settings.max_pixels, name=param)
    except InputError as exc:
        status = 413 if "too large" in exc.reason else 400
        raise APIError(status, str(exc), param=param) from None
