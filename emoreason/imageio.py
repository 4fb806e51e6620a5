"""Loading inputs safely: every failure becomes an `InputError` with a one-line reason.

Images are decoded with PIL (not torchvision.io, which the CPU torchvision fix leaves out),
with a pixel limit against decompression bombs, EXIF orientation applied, and the result
as an RGB uint8 array.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
DEFAULT_MAX_PIXELS = 40_000_000  # 40 MP: any real photo; far below a decompression bomb
MIN_SIDE = 8  # smaller images cannot hold a face the front-end can measure
# OpenCV inside mediapipe aborts the whole process (SIGABRT, uncatchable) on a side >= 32767 px, however
# few pixels the image has (a 344-byte 32767x8 PNG is enough). Half that leaves room for any internal
# resize; no camera makes a photo with a longer side, and a face in a strip thinner than 1:32 is no face.
MAX_SIDE = 16384
MAX_ASPECT = 32


class InputError(Exception):
    """A bad input: the message is one line naming the input and the reason."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self):  # picklable, so that a front-end worker process can send it back
        return (type(self), (self.source, self.reason))


def load_image(
    source: str | os.PathLike | bytes | Image.Image | np.ndarray,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
) -> np.ndarray:
    """Decode a path, raw bytes, PIL image or array into an RGB uint8 array (H, W, 3)."""
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else f"<{type(source).__name__}>")
    if isinstance(source, np.ndarray):
        return _check_array(source, label)
    if isinstance(source, Image.Image):
        return _from_pil(source, label, max_pixels)
    if isinstance(source, (bytes, bytearray)):
        return _decode(io.BytesIO(source), label, max_pixels)
    path = Path(source)
    try:
        if not path.exists():
            raise InputError(label, "file not found")
        if path.is_dir():
            raise InputError(label, "is a folder, not an image")
        if path.stat().st_size == 0:
            raise InputError(label, "file is empty")
        with open(path, "rb") as fh:
            return _decode(fh, label, max_pixels)
    except OSError as exc:  # unreadable (permissions), a name too long for the OS, an I/O error
        raise InputError(label, f"cannot read the file ({exc.strerror or type(exc).__name__})") from None


# Raster formats only: Pillow would otherwise open EPS (and run Ghostscript on the bytes), PDF, ICNS, ...
RASTER_FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF")


def _decode(fh, label: str, max_pixels: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fh, formats=RASTER_FORMATS)
            w, h = img.size
            if w * h > max_pixels:
                raise InputError(label, f"image too large ({w}x{h} px > {max_pixels} px limit)")
            check_dimensions(w, h, label)  # from the header, before the pixels are decoded
            img.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(label, f"image too large (over the {max_pixels} px limit)") from None
    except Image.UnidentifiedImageError:
        raise InputError(label, "not an image (expected JPEG, PNG, BMP, WebP, TIFF or GIF)") from None
    except Exception:  # noqa: BLE001 - whatever the decoder says, it is a bad input; its words stay out
        raise InputError(label, "corrupt or truncated image") from None
    return _from_pil(img, label, max_pixels)


def _from_pil(img: Image.Image, label: str, max_pixels: int) -> np.ndarray:
    if img.width * img.height > max_pixels:
        raise InputError(label, f"image too large ({img.width}x{img.height} px > {max_pixels} px limit)")
    with contextlib.suppress(Exception):  # a broken EXIF block is not a reason to reject the pixels
        # exif_transpose copies the whole image even when nothing is to be turned, and convert("RGB") copies an
        # RGB image: each only when needed (a 12 MP photo is 36 MB a copy; 2 ms of 6 on a 512 px JPEG here)
        if img.getexif().get(ExifTags.Base.Orientation, 1) != 1:
            img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # 16/32-bit integer or float grey
        return _check_array(_to_uint8(np.asarray(img)), label)
    return _check_array(np.asarray(img if img.mode == "RGB" else img.convert("RGB")), label)


def _to_uint8(grey: np.ndarray) -> np.ndarray:
    """High-bit-depth grey -> 8 bits. Integers by their type's range as the file stores it (16-bit PNGs use
    0..65535); floats in [0, 1] as such, other floats by their own min..max (no fixed range to trust)."""
    grey = grey.astype(np.float64)
    finite = grey[np.isfinite(grey)]
    if finite.size == 0:
        return np.zeros(grey.shape, np.uint8)
    low, high = float(finite.min()), float(finite.max())
    if np.issubdtype(grey.dtype, np.floating) and 0.0 <= low and high <= 1.0:
        scale, low = 255.0, 0.0
    elif high <= 255 and low >= 0:
        scale, low = 1.0, 0.0
    elif high <= 65535 and low >= 0:
        scale, low = 255.0 / 65535.0, 0.0
    else:
        scale = 255.0 / max(high - low, 1e-12)
    out = np.nan_to_num((grey - low) * scale, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _check_array(arr: np.ndarray, label: str) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise InputError(label, f"expected an H x W x 3 image array, got shape {arr.shape}")
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    check_dimensions(arr.shape[1], arr.shape[0], label)
    return np.ascontiguousarray(arr)


def check_dimensions(width: int, height: int, label: str = "<image>") -> None:
    """Refuse sizes the native face code cannot take (InputError): too small, a side over MAX_SIDE, or a
    strip thinner than 1:MAX_ASPECT. Every image passes here before mediapipe or OpenCV sees it."""
    if min(width, height) < MIN_SIDE:
        raise InputError(label, f"image too small ({width}x{height} px; need at least {MIN_SIDE} px a side)")
    if max(width, height) > MAX_SIDE:
        raise InputError(label, f"image too large ({width}x{height} px; each side at most {MAX_SIDE} px)")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise InputError(label, f"image too narrow ({width}x{height} px; aspect ratio at most {MAX_ASPECT}:1)")


def expand_inputs(items: Iterable[str]) -> list[str]:
    """Expand folders (recursively, images and videos) and globs; keep unknown paths so they fail loudly later."""
    out: list[str] = []
    for item in items:
        p = Path(item)
        try:
            is_dir, exists = p.is_dir(), p.exists()
        except OSError:  # e.g. a name too long for the OS: kept, so that loading it reports the reason
            out.append(item)
            continue
        if is_dir:
            out.extend(
                str(f)
                for f in sorted(p.rglob("*"))
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES
            )
        elif any(ch in item for ch in "*?[") and not exists:
            matches = sorted(glob.glob(item, recursive=True))
            out.extend(matches if matches else [item])
        else:
            out.append(item)
    return out


def is_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES
