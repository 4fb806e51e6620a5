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


def draw_face(aus: dict[int, float], rng: random.Random, size: int = 224) -> np.ndarray:
    """Render the schematic face for an AU vector (intensities 0-5)."""

    def a(code: int) -> float:
        return min(5.0, aus.get(code, 0.0)) / 5.0

    bg = tuple(rng.randint(90, 160) for _ in range(3))
    skin = (rng.randint(170, 235), rng.randint(130, 190), rng.randint(100, 160))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    s = size / 224 * rng.uniform(0.9, 1.05)
    cx, cy = size / 2 + rng.uniform(-6, 6), size / 2 + rng.uniform(-6, 6)

    def p(x: float, y: float) -> tuple[float, float]:  # face coordinates (origin at the face centre)
        return cx + x * s, cy + y * s

    jaw = 14 * a(26)
    d.ellipse([*p(-72, -95), *p(72, 100 + jaw)], fill=skin, outline=(90, 60, 50), width=2)
    dark = (40, 30, 30)
    # brows: inner end raised by AU1, outer end by AU2, both lowered and drawn in by AU4
    for side in (-1, 1):
        inner_y = -52 - 14 * a(1) + 10 * a(4)
        outer_y = -54 - 14 * a(2) + 4 * a(4)
        inner_x = side * (16 - 6 * a(4))
        d.line([p(inner_x, inner_y), p(side * 52, outer_y)], fill=dark, width=max(2, int(5 * s)))
    # eyes: opening widened by AU5, narrowed by AU7 and by the cheeks (AU6), shut by AU43
    opening = 9 + 7 * a(5) - 4 * a(7) - 3 * a(6) - 9 * a(43)
    for side in (-1, 1):
        ex = side * 33
        if opening <= 1.5:
            d.line([p(ex - 13, -30), p(ex + 13, -30)], fill=dark, width=2)
        else:
            d.ellipse([*p(ex - 13, -30 - opening), *p(ex + 13, -30 + opening)], fill=(250, 250, 250), outline=dark)
            r = min(6.0, opening)
            d.ellipse([*p(ex - r, -30 - r), *p(ex + r, -30 + r)], fill=(60, 40, 30))
    # cheeks (AU6): raised, flushed
    if a(6) > 0:
        for side in (-1, 1):
            y = 8 - 10 * a(6)
            d.ellipse([*p(side * 40 - 12, y - 8), *p(side * 40 + 12, y + 8)], fill=(225, 110, 110))
    # nose; AU9 wrinkles its bridge
    d.line([p(0, -24), p(-6, 16), p(6, 18)], fill=(120, 80, 70), width=2)
    for k in range(int(round(3 * a(9)))):
        d.line([p(-9, -14 + 5 * k), p(9, -14 + 5 * k)], fill=(120, 80, 70), width=1)
    # mouth: corners up (AU12) / down (AU15), wider (AU20), narrower (AU23, AU24)
    mouth_y = 48 - 4 * a(10) + jaw / 3
    half = 26 + 10 * a(20) + 4 * a(12) - 6 * a(23) - 4 * a(24)
    corner_y = mouth_y - 14 * a(12) + 12 * a(15)
    gap = 9 * a(25) + 14 * a(26)
    upper_y = mouth_y - 4 * a(10) - gap / 2
    lower_y = mouth_y + gap / 2 + 5 * a(17) * -1
    lip = (160, 60, 60)
    width = max(2, int((4 - 2 * a(24)) * s))
    d.line([p(-half, corner_y), p(0, upper_y), p(half, corner_y)], fill=lip, width=width, joint="curve")
    d.line([p(-half, corner_y), p(0, lower_y + 2), p(half, corner_y)], fill=lip, width=width, joint="curve")
    if gap > 3:
        d.polygon([p(-half + 4, corner_y), p(0, upper_y + 2), p(half - 4, corner_y), p(0, lower_y)], fill=(70, 20, 20))
    # dimples (AU14), chin boss (AU17)
    if a(14) > 0:
        for side in (-1, 1):
            d.ellipse([*p(side * (half + 5) - 2, corner_y - 2), *p(side * (half + 5) + 2, corner_y + 2)], fill=dark)
    if a(17) > 0:
        d.arc([*p(-14, 72 + jaw - 8 * a(17)), *p(14, 86 + jaw - 8 * a(17))], 200, 340, fill=(120, 80, 70), width=2)
    out = np.asarray(img).astype(np.int16)
    out += np.asarray(np.random.default_rng(rng.randrange(2**31)).normal(0, 4, out.shape), dtype=np.int16)
    return np.clip(out, 0, 255).astype(np.uint8)


def make_faces(n: int, emotions: tuple[str, ...], seed: int = 0, size: int = 224) -> list[ProceduralFace]:
    """`n` faces, emotions in turn (balanced), each with its true AUs."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        emotion = emotions[i % len(emotions)]
        aus = sample_aus(emotion, rng)
        out.append(ProceduralFace(draw_face(aus, rng, size), emotion, aus))
    return out
