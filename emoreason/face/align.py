"""Aligned face crops: eye-levelled, scaled so the eyes land on fixed positions.

The layout (eyes at 30%/70% of the width, 40% of the height; inter-ocular distance = 40% of
the side) frames forehead to chin like the FER2013 / RAF-DB aligned crops the expression
prior and the VLM see in training.
"""

from __future__ import annotations

import cv2
import numpy as np

EYE_Y, EYE_LEFT_X, EYE_RIGHT_X = 0.40, 0.30, 0.70
# Where the eyes sit in a FER2013 face (medians of the mesh's eye centres over 384 training faces, as
# fractions of the side): the face model trained on these crops sees photos cropped the same way.
FER_TEMPLATE = (0.39, 0.31, 0.67)


def align_face(
    rgb: np.ndarray,
    right_eye: np.ndarray,
    left_eye: np.ndarray,
    size: int = 224,
    template: tuple[float, float, float] = (EYE_Y, EYE_LEFT_X, EYE_RIGHT_X),
) -> np.ndarray:
    """Crop so the subject's right eye (image left) and left eye land on the template positions
    (eye height, image-left eye x, image-right eye x; fractions of the side)."""
    eye_y, left_x, right_x = template
    src_vec = np.asarray(left_eye, dtype=np.float64) - np.asarray(right_eye, dtype=np.float64)
    dist = float(np.hypot(*src_vec))
    if dist < 1e-3:
        raise ValueError("eye positions coincide; cannot align")
    scale = (right_x - left_x) * size / dist
    angle = np.arctan2(src_vec[1], src_vec[0])
    cos, sin = np.cos(-angle) * scale, np.sin(-angle) * scale
    # rotation+scale about the origin, then translate the right eye onto its template spot
    m = np.array([[cos, -sin, 0.0], [sin, cos, 0.0]])
    m[:, 2] = np.array([left_x * size, eye_y * size]) - m[:, :2] @ np.asarray(right_eye, dtype=np.float64)
    # Bilinear: warpAffine has no area filter (INTER_AREA falls back to bilinear) and bicubic costs 4x as much
    # (2.2 vs 0.5 ms for 224 px) for no measured gain to the prior, the mesh or the encoder.
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def box_crop(
    rgb: np.ndarray, box: tuple[float, float, float, float], size: int = 224, context: float = 1.0
) -> np.ndarray:
    """Square crop around a box (when no eyes are known), padded by replicating the border."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * context
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    s = size / max(side, 1e-3)
    m = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]])
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
