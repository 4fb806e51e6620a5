"""Action Unit detection.

`AUDetector` is the interface (geometry in, one `AUActivation` per AU out) so that a learned
detector can replace the default. The default, `GeometricAUDetector`, needs no weights: it
measures distances on the pose-normalised face mesh (`FaceGeometry.frame`: eye line
horizontal, units of inter-ocular distance, IOD) and maps each AU's measurement onto the
FACS 0-5 intensity scale between a neutral reference and a full-intensity value.

How the numbers were set: the neutral references are the medians of each measurement on
the 50 neutral faces of the FER2013 development subset (48 px, mesh on the upscaled crop),
rounded; the full-intensity values are the neutral value plus about 2.5 standard
deviations of that measurement across all faces, rounded. No threshold was searched for
accuracy. Geometry cannot see texture (wrinkles, bulges), so AUs whose FACS cue is mostly
texture (6, 9, 14, 17) are approximated by the movement they cause and are less reliable
than the brow, lid and mouth-shape AUs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..facs import DETECTED_AUS
from ..types import AUActivation
from .landmarks import FaceGeometry


class AUDetector(Protocol):
    """Anything that turns one face's geometry (and its aligned crop) into AU activations."""

    def detect(self, geometry: FaceGeometry, aligned_crop: np.ndarray | None = None) -> list[AUActivation]: ...


def measure(frame: np.ndarray) -> dict[str, float]:
    """Raw measurements on the face frame (y grows downwards; units: IOD).

    Landmark indices are mediapipe face-mesh indices; each measurement averages the two sides
    where the face has two.
    """
    x, y = frame[:, 0], frame[:, 1]

    def dist(a: int, b: int) -> float:
        return float(np.linalg.norm(frame[a, :2] - frame[b, :2]))

    return {
        # inner brow height above the inner eye corner (brow points 107/55 and 336/285)
        "inner_brow": float(np.mean([y[133] - (y[107] + y[55]) / 2, y[362] - (y[336] + y[285]) / 2])),
        # outer brow height above the outer eye corner
        "outer_brow": float(np.mean([y[33] - (y[70] + y[46]) / 2, y[263] - (y[300] + y[276]) / 2])),
        # horizontal gap between the inner brow heads
        "brow_gap": float(x[285] - x[55]),
        # eye aperture: lid-to-lid distance over eye width
        "eye_open": float(np.mean([dist(159, 145) / dist(33, 133), dist(386, 374) / dist(263, 362)])),
        # mid-cheek height below the inner eye corner (smaller = cheek lifted)
        "cheek": float(np.mean([y[50] - y[133], y[280] - y[362]])),
        # nostril wing height below the inner eye corner (smaller = nose wrinkled / lifted)
        "nose_eye": float(np.mean([y[98] - y[133], y[327] - y[362]])),
        # subnasale to the top of the upper lip (smaller = upper lip raised)
        "upper_lip": float(y[0] - y[2]),
        # lip-centre height minus lip-corner height (positive = corners pulled up)
        "corner_raise": float((y[13] + y[14]) / 2 - (y[61] + y[291]) / 2),
        # lip-corner height difference (one-sided movements, e.g. contempt)
        "corner_asymmetry": float(abs(y[61] - y[291])),
        "mouth_width": dist(61, 291),
        # gap between the inner lips
        "lip_gap": float(max(0.0, y[14] - y[13])),
        # visible red of both lips (smaller = lips thinned or pressed)
        "lip_thickness": float((y[13] - y[0]) + (y[17] - y[14])),
        # lower-lip bottom to chin (smaller = chin boss pushed up)
        "chin": float(y[152] - y[17]),
    }


@dataclass(frozen=True)
class AURule:
    code: int
    how: str  # the measurement in words (shown in docs)
    value: Callable[[dict[str, float]], float]  # measurement; grows with the AU
    neutral: float  # value on a neutral face (intensity 0)
    full: float  # value at full intensity (5)
    threshold: float = 2.0  # intensity at which the AU counts as present (about 1 SD above neutral)


def _closed(m: dict[str, float]) -> float:
    """1 when the lips touch, fading to 0 as they part (AUs 17/23/24 need closed lips)."""
    return float(np.clip(1.0 - (m["lip_gap"] - 0.03) / 0.05, 0.0, 1.0))


def _corner_up(m: dict[str, float]) -> float:
    return max(0.0, m["corner_raise"] + 0.03)


# One row per AU. neutral/full are in the units of `value` (IOD or ratios).
AU_RULES: tuple[AURule, ...] = (
    AURule(1, "inner brow height above inner eye corner", lambda m: m["inner_brow"], 0.32, 0.46),
    AURule(2, "outer brow height above outer eye corner", lambda m: m["outer_brow"], 0.22, 0.32),
    AURule(
        4,
        "inner brow lowered + brow heads drawn together",
        lambda m: (0.32 - m["inner_brow"]) + 0.5 * (0.41 - m["brow_gap"]),
        0.0,
        0.15,
    ),
    AURule(5, "eye aperture widened (lid distance / eye width)", lambda m: m["eye_open"], 0.32, 0.50),
    AURule(
        6,
        "cheek lifted towards the eye + eye narrowed",
        lambda m: (0.50 - m["cheek"]) + 0.3 * max(0.0, 0.32 - m["eye_open"]),
        0.0,
        0.12,
    ),
    AURule(
        7,
        "eye aperture narrowed (lids tightened, eye still open)",
        lambda m: 0.32 - m["eye_open"] if m["eye_open"] > 0.12 else 0.0,
        0.0,
        0.17,
    ),
    AURule(
        9,
        "nostril wings lifted + inner brows pulled down",
        lambda m: (0.65 - m["nose_eye"]) + 0.5 * (0.32 - m["inner_brow"]),
        0.0,
        0.16,
    ),
    AURule(10, "upper lip raised towards the nose", lambda m: 0.234 - m["upper_lip"], 0.0, 0.13),
    AURule(
        12,
        "lip corners pulled up above the lip centre + mouth widened",
        lambda m: _corner_up(m) + 0.5 * max(0.0, m["mouth_width"] - 0.76),
        0.0,
        0.20,
    ),
    AURule(
        14,
        "mouth widened with closed lips and corners not lifted",
        lambda m: _closed(m) * (m["mouth_width"] - 0.76) * max(0.0, 1.0 - _corner_up(m) / 0.08),
        0.0,
        0.15,
    ),
    AURule(15, "lip corners pulled below the lip centre", lambda m: -0.03 - m["corner_raise"], 0.0, 0.09),
    AURule(17, "lower lip to chin shortened, lips closed", lambda m: _closed(m) * (0.49 - m["chin"]), 0.0, 0.14),
    AURule(
        20,
        "mouth stretched sideways without lifted corners",
        lambda m: (m["mouth_width"] - 0.76) * max(0.0, 1.0 - _corner_up(m) / 0.06),
        0.0,
        0.20,
    ),
    AURule(
        23,
        "lips narrowed and thinned",
        lambda m: _closed(m) * ((0.76 - m["mouth_width"]) + (0.26 - m["lip_thickness"])),
        0.0,
        0.15,
    ),
    AURule(
        24, "lips pressed together (closed and thinned)", lambda m: _closed(m) * (0.26 - m["lip_thickness"]), 0.0, 0.10
    ),
    AURule(25, "inner lips apart", lambda m: m["lip_gap"], 0.01, 0.20, threshold=1.0),
    AURule(26, "mouth opened wide (jaw dropped)", lambda m: m["lip_gap"], 0.10, 0.45, threshold=1.0),
    AURule(43, "eyes closed (aperture near zero)", lambda m: 0.32 - m["eye_open"], 0.17, 0.29, threshold=2.5),
)
assert tuple(sorted(r.code for r in AU_RULES)) == DETECTED_AUS, "every detected AU needs one rule"


def presence_score(intensity: float, threshold: float) -> float:
    """Confidence that the AU is active: 0.5 at the presence threshold, logistic around it."""
    return 1.0 / (1.0 + math.exp(-2.0 * (intensity - threshold)))


class GeometricAUDetector:
    """AU intensities from mesh geometry (no weights); see the module docstring and AU_RULES."""

    def __init__(self, rules: tuple[AURule, ...] = AU_RULES):
        self.rules = rules

    def detect(self, geometry: FaceGeometry, aligned_crop: np.ndarray | None = None) -> list[AUActivation]:
        m = measure(geometry.frame)
        out = []
        for rule in self.rules:
            raw = rule.value(m)
            intensity = float(np.clip(5.0 * (raw - rule.neutral) / (rule.full - rule.neutral), 0.0, 5.0))
            intensity = round(intensity, 2)
            out.append(
                AUActivation(
                    code=rule.code,
                    intensity=intensity,
                    present=intensity >= rule.threshold,
                    score=round(presence_score(intensity, rule.threshold), 3),
                )
            )
        return out
