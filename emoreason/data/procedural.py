"""Procedural faces: drawn from a known AU vector, so each image has true AUs and an emotion.

No FEA benchmark can be downloaded here, so learning is proven on data emoreason makes:
a schematic face (oval, brows, eyes, nose, cheeks, mouth, chin) whose parts move with the
FACS Action Units the way FACS describes them (AU1 lifts the inner brow ends, AU4 lowers and
draws them together, AU5 widens the eyes, AU6 raises the cheeks, AU9 wrinkles the nose, AU12
pulls the mouth corners up, AU15 down, AU20 stretches them, AU25/26 part the lips / drop
the jaw, ...). An emotion's sample switches on its prototype's core AUs (facs.EMOTION_PROTOTYPES)
at random intensities, some of its supporting AUs, rarely an unrelated one, and jitters
position, size, skin tone and noise, so no two images are alike.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from ..facs import EMOTION_PROTOTYPES

DRAWN_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 43)


@dataclass
class ProceduralFace:
    image: np.ndarray  # RGB uint8
    emotion: str
    aus: dict[int, float]  # AU code -> intensity 1-5 (present AUs only)


def sample_aus(emotion: str, rng: random.Random) -> dict[int, float]:
    """A plausible AU vector for `emotion`: its core AUs, some supporting ones, rarely a stray one."""
    aus: dict[int, float] = {}
    proto = EMOTION_PROTOTYPES.get(emotion)
    if proto is not None:
        for code in proto.core:
            aus[code] = rng.uniform(2.5, 5.0)
        for code in proto.supporting:
            if rng.random() < 0.3:
                aus[code] = rng.uniform(1.5, 3.5)
    elif rng.random() < 0.2:  # neutral: at most lips slightly apart
        aus[25] = rng.uniform(1.0, 2.0)
    conflicting = set(proto.conflicting) if proto else set()
    for code in DRAWN_AUS:
        if code not in aus and code not in conflicting and rng.random() < 0.03:
            aus[code] = rng.uniform(1.0, 2.0)
    return {c: round(v, 1) for c, v in sorted(aus.items())}


DARK = (40, 30, 30)  # brows, eye outlines, dimples
SKIN_LINE = (120, 80, 70)  # nose, wrinkles, chin


@dataclass
class _Sketch:
    """A face being drawn: the canvas, the AU intensities and the face's own coordinates."""

    draw: ImageDraw.ImageDraw
    aus: dict[int, float]
    scale: float
    cx: float
    cy: float

    def a(self, code: int) -> float:
        """AU `code`'s intensity as 0-1 (0 when absent)."""
        return min(5.0, self.aus.get(code, 0.0)) / 5.0

    def p(self, x: float, y: float) -> tuple[float, float]:
        """Face coordinates (origin at the face centre, 224 px face units) -> canvas pixels."""
        return self.cx + x * self.scale, self.cy + y * self.scale


def draw_face(aus: dict[int, float], rng: random.Random, size: int = 224) -> np.ndarray:
    """Render the schematic face for an AU vector (intensities 0-5)."""
    bg = tuple(rng.randint(90, 160) for _ in range(3))
    skin = (rng.randint(170, 235), rng.randint(130, 190), rng.randint(100, 160))
    img = Image.new("RGB", (size, size), bg)
    scale = size / 224 * rng.uniform(0.9, 1.05)
    f = _Sketch(ImageDraw.Draw(img), aus, scale, size / 2 + rng.uniform(-6, 6), size / 2 + rng.uniform(-6, 6))
    jaw = 14 * f.a(26)  # AU26 drops the jaw: a longer face, a lower mouth and chin
    f.draw.ellipse([*f.p(-72, -95), *f.p(72, 100 + jaw)], fill=skin, outline=(90, 60, 50), width=2)
    _brows(f)
    _eyes(f)
    _cheeks_and_nose(f)
    _mouth_and_chin(f, jaw)
    out = np.asarray(img).astype(np.int16)
    out += np.asarray(np.random.default_rng(rng.randrange(2**31)).normal(0, 4, out.shape), dtype=np.int16)
    return np.clip(out, 0, 255).astype(np.uint8)


def _brows(f: _Sketch) -> None:
    """Inner ends raised by AU1, outer ends by AU2, both lowered and drawn together by AU4."""
    for side in (-1, 1):
        inner_y = -52 - 14 * f.a(1) + 10 * f.a(4)
        outer_y = -54 - 14 * f.a(2) + 4 * f.a(4)
        inner_x = side * (16 - 6 * f.a(4))
        f.draw.line([f.p(inner_x, inner_y), f.p(side * 52, outer_y)], fill=DARK, width=max(2, int(5 * f.scale)))


def _eyes(f: _Sketch) -> None:
    """The opening widened by AU5, narrowed by AU7 and by the cheeks (AU6), shut by AU43."""
    opening = 9 + 7 * f.a(5) - 4 * f.a(7) - 3 * f.a(6) - 9 * f.a(43)
    for side in (-1, 1):
        ex = side * 33
        if opening <= 1.5:
            f.draw.line([f.p(ex - 13, -30), f.p(ex + 13, -30)], fill=DARK, width=2)
        else:
            f.draw.ellipse([*f.p(ex - 13, -30 - opening), *f.p(ex + 13, -30 + opening)], fill=(250, 250, 250),
                           outline=DARK)  # fmt: skip
            r = min(6.0, opening)
            f.draw.ellipse([*f.p(ex - r, -30 - r), *f.p(ex + r, -30 + r)], fill=(60, 40, 30))


def _cheeks_and_nose(f: _Sketch) -> None:
    """Cheeks raised and flushed by AU6; the nose, its bridge wrinkled by AU9."""
    if f.a(6) > 0:
        for side in (-1, 1):
            y = 8 - 10 * f.a(6)
            f.draw.ellipse([*f.p(side * 40 - 12, y - 8), *f.p(side * 40 + 12, y + 8)], fill=(225, 110, 110))
    f.draw.line([f.p(0, -24), f.p(-6, 16), f.p(6, 18)], fill=SKIN_LINE, width=2)
    for k in range(int(round(3 * f.a(9)))):
        f.draw.line([f.p(-9, -14 + 5 * k), f.p(9, -14 + 5 * k)], fill=SKIN_LINE, width=1)


def _mouth_and_chin(f: _Sketch, jaw: float) -> None:
    """Corners up (AU12) or down (AU15), wider (AU20), narrower (AU23, AU24), upper lip raised (AU10), lips
    parted (AU25, AU26); dimples (AU14) and the chin boss (AU17)."""
    mouth_y = 48 - 4 * f.a(10) + jaw / 3
    half = 26 + 10 * f.a(20) + 4 * f.a(12) - 6 * f.a(23) - 4 * f.a(24)
    corner_y = mouth_y - 14 * f.a(12) + 12 * f.a(15)
    gap = 9 * f.a(25) + 14 * f.a(26)
    upper_y = mouth_y - 4 * f.a(10) - gap / 2
    lower_y = mouth_y + gap / 2 + 5 * f.a(17) * -1
    lip = (160, 60, 60)
    width = max(2, int((4 - 2 * f.a(24)) * f.scale))
    f.draw.line([f.p(-half, corner_y), f.p(0, upper_y), f.p(half, corner_y)], fill=lip, width=width, joint="curve")
    f.draw.line([f.p(-half, corner_y), f.p(0, lower_y + 2), f.p(half, corner_y)], fill=lip, width=width,
                joint="curve")  # fmt: skip
    if gap > 3:
        f.draw.polygon([f.p(-half + 4, corner_y), f.p(0, upper_y + 2), f.p(half - 4, corner_y), f.p(0, lower_y)],
                       fill=(70, 20, 20))  # fmt: skip
    if f.a(14) > 0:
        for side in (-1, 1):
            x = side * (half + 5)
            f.draw.ellipse([*f.p(x - 2, corner_y - 2), *f.p(x + 2, corner_y + 2)], fill=DARK)
    if f.a(17) > 0:
        chin = 72 + jaw - 8 * f.a(17)
        f.draw.arc([*f.p(-14, chin), *f.p(14, chin + 14)], 200, 340, fill=SKIN_LINE, width=2)


def make_faces(n: int, emotions: tuple[str, ...], seed: int = 0, size: int = 224) -> list[ProceduralFace]:
    """`n` faces, emotions in turn (balanced), each with its true AUs."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        emotion = emotions[i % len(emotions)]
        aus = sample_aus(emotion, rng)
        out.append(ProceduralFace(draw_face(aus, rng, size), emotion, aus))
    return out
