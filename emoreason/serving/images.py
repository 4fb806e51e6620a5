"""Images from requests: data URLs and base64 only, unless a remote prefix is allow-listed.

Every check happens before decoding: the encoded size, then (in imageio.load_image) the
pixel count from the header, so a decompression bomb is refused without being expanded.
A remote URL is fetched only when it and every redirect hop start with an allow-listed prefix
(no server-side fetch of arbitrary URLs), asynchronously, with one deadline and the same size cap.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import socket

import httpx
import numpy as np
from starlette.concurrency import run_in_threadpool

from ..imageio import InputError, load_image
from .errors import APIError
from .settings import GatewaySettings


async def image_bytes(url: str, settings: GatewaySettings, param: str = "image_url") -> bytes:
    """The encoded bytes of a data URL (decoded in a worker thread) or of an allow-listed remote URL."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.startswith("data:image/") or not header.endswith(";base64"):
            raise APIError(400, f"{param}: expected a data:image/...;base64 URL, got {header[:40]!r}", param=param)
        return await run_in_threadpool(decode_base64, payload, settings, param)
    if url.startswith(("http://", "https://")):
        if not allowed(url, settings):
            raise APIError(400, f"{param}: remote image URLs are refused (not in the gateway's allow-list); "
                                "send the image as a data URL", param=param, code="url_not_allowed")  # fmt: skip
        return await fetch(url, settings, param)
    raise APIError(400, f"{param}: expected a data URL (data:image/png;base64,...)", param=param)


def decode_base64(payload: str, settings: GatewaySettings, param: str) -> bytes:
    if len(payload) * 3 // 4 > settings.max_image_bytes:
        raise APIError(413, f"{param}: image larger than {settings.max_image_bytes} bytes", param=param)
    try:  # base64 wrapped at 76 columns (MIME) is still base64
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, f"{param}: invalid base64", param=param) from None


def allowed(url: str, settings: GatewaySettings) -> bool:
    return any(url.startswith(prefix) for prefix in settings.allowed_url_prefixes)


MAX_REDIRECTS = 3


async def fetch(url: str, settings: GatewaySettings, param: str) -> bytes:
    """An allow-listed image, off the event loop: every redirect hop must be on the list too, the host is
    resolved once per hop and the connection pinned to that address, the whole fetch has one deadline and
    the body a size cap while it streams in. Every failure is the same one-line error: it tells a client
    nothing about the network behind the gateway."""
    failure = APIError(400, f"{param}: could not fetch the image", param=param, code="fetch_failed")
    try:
        return await asyncio.wait_for(_fetch_hops(url, settings, param, failure), settings.fetch_timeout_s)
    except APIError:
        raise
    except (asyncio.TimeoutError, httpx.HTTPError, OSError, ValueError, UnicodeError):
        raise failure from None


async def _fetch_hops(url: str, settings: GatewaySettings, param: str, failure: APIError) -> bytes:
    async with httpx.AsyncClient(follow_redirects=False, timeout=settings.fetch_timeout_s) as client:
        for _ in range(MAX_REDIRECTS + 1):
            if not allowed(url, settings):
                raise failure  # a redirect off the allow-list
            request = await _pinned_request(client, url)
            response = await client.send(request, stream=True)
            try:
                if response.is_redirect:
                    url = str(response.next_request.url) if response.next_request else ""
                    continue
                if response.status_code != 200:
                    raise failure
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > settings.max_image_bytes:
                        raise APIError(413, f"{param}: image larger than {settings.max_image_bytes} bytes",
                                       param=param)  # fmt: skip
                return bytes(data)
            finally:
                await response.aclose()
    raise failure  # too many redirects


async def _pinned_request(client: httpx.AsyncClient, url: str) -> httpx.Request:
    """A request to the address `url`'s host resolves to now (no second lookup that DNS could answer
    differently), with the original Host header and TLS name."""
    parsed = httpx.URL(url)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    address = infos[0][4][0]
    pinned = parsed.copy_with(host=address)
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return client.build_request("GET", pinned, headers={"Host": parsed.netloc.decode("ascii")},
                                extensions=extensions)  # fmt: skip


def decode_image(data: bytes, settings: GatewaySettings, param: str = "image_url") -> np.ndarray:
    try:
        return load_image(data, max_pixels=settings.max_pixels, name=param)
    except InputError as exc:
        status = 413 if "too large" in exc.reason else 400
        raise APIError(status, str(exc), param=param) from None
