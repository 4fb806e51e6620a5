"""The FACS knowledge emoreason uses, in one place.

- `AU_CATALOGUE`: the Action Units emoreason detects (the union of the DISFA, BP4D and
  EmotioNet protocols), with their FACS names and face region.
- `AU_PROTOCOLS`: the standard per-benchmark AU sets used for per-AU F1.
- `EMOTION_PROTOTYPES`: EMFACS-style prototypes (Ekman & Friesen; Matsumoto & Ekman), the
  table both the embedded reasoning engine and the consistency reward read. Each emotion
  lists its core AUs (the ones that define it), supporting AUs (often seen with it) and
  conflicting AUs (whose presence argues against it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ActionUnit:
    code: int
    name: str
    region: str  # brows | eyes | nose | cheeks | mouth | jaw
    movement: str = ""  # what a coder sees move, and the muscle (the demo's AU glossary)

    @property
    def label(self) -> str:
        return f"AU{self.code}"


_AUS = [
    ActionUnit(1, "inner brow raiser", "brows", "raises the inner ends of the brows (frontalis, pars medialis)"),
    ActionUnit(2, "outer brow raiser", "brows", "raises the outer ends of the brows (frontalis, pars lateralis)"),
    ActionUnit(
        4, "brow lowerer", "brows", "lowers the brows and draws them together (corrugator, depressor supercilii)"
    ),
    ActionUnit(
        5, "upper lid raiser", "eyes", "raises the upper lid, widening the eye opening (levator palpebrae superioris)"
    ),
    ActionUnit(
        6,
        "cheek raiser",
        "cheeks",
        "lifts the cheeks and bunches the skin under the eyes (orbicularis oculi, orbital part)",
    ),
    ActionUnit(
        7, "lid tightener", "eyes", "tightens the lower lids, narrowing the eyes (orbicularis oculi, palpebral part)"
    ),
    ActionUnit(
        9,
        "nose wrinkler",
        "nose",
        "wrinkles the nose and lifts the nostril wings (levator labii superioris alaeque nasi)",
    ),
    ActionUnit(10, "upper lip raiser", "mouth", "raises the upper lip towards the nose (levator labii superioris)"),
    ActionUnit(
        12, "lip corner puller", "mouth", "pulls the lip corners up and back, as in a smile (zygomaticus major)"
    ),
    ActionUnit(14, "dimpler", "mouth", "tightens the lip corners into dimples (buccinator)"),
    ActionUnit(15, "lip corner depressor", "mouth", "pulls the lip corners down (depressor anguli oris)"),
    ActionUnit(17, "chin raiser", "jaw", "pushes the chin boss and the lower lip up (mentalis)"),
    ActionUnit(20, "lip stretcher", "mouth", "stretches the lips sideways (risorius)"),
    ActionUnit(23, "lip tightener", "mouth", "tightens and narrows the lips (orbicularis oris)"),
    ActionUnit(24, "lip pressor", "mouth", "presses the lips together (orbicularis oris)"),
    ActionUnit(25, "lips part", "mouth", "parts the lips (depressor labii, relaxed mentalis or orbicularis oris)"),
    ActionUnit(26, "jaw drop", "jaw", "lets the jaw fall, opening the mouth (masseter relaxed)"),
    ActionUnit(43, "eyes closed", "eyes", "closes the eyes (levator palpebrae relaxed)"),
]
AU_CATALOGUE: dict[int, ActionUnit] = {au.code: au for au in _AUS}
DETECTED_AUS: tuple[int, ...] = tuple(sorted(AU_CATALOGUE))

AU_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "disfa8": (1, 2, 4, 6, 9, 12, 25, 26),
    "bp4d12": (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24),
    "emotionet12": (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26, 43),
}


def au_name(code: int) -> str:
    """FACS name of an AU code ("lip corner puller" for 12); "action unit N" if unknown."""
    au = AU_CATALOGUE.get(int(code))
    return au.name if au else f"action unit {code}"


def parse_au_code(value: str | int) -> int:
    """Accept 12, "12", "AU12", "au 12"; raise ValueError naming the bad value otherwise.

    >>> parse_au_code("AU 06")
    6
    """
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(?:AU)?\s*0*(\d{1,2})\s*", str(value), flags=re.IGNORECASE)
    if not m:
        raise ValueError(f"{value!r} is not an AU code (expected e.g. 12 or AU12)")
    return int(m.group(1))


@dataclass(frozen=True)
class EmotionPrototype:
    emotion: str
    core: tuple[int, ...]
    supporting: tuple[int, ...] = ()
    conflicting: tuple[int, ...] = ()
    # One sentence on why these AUs mean this emotion; the embedded engine quotes it.
    rationale: str = ""


# EMFACS-style prototypes. Core AUs are the defining configuration; supporting AUs are
# frequent companions (weaker evidence); conflicting AUs are hard to produce together with
# the emotion (e.g. a true smile with a lowered brow and pressed lips reads as masking).
EMOTION_PROTOTYPES: dict[str, EmotionPrototype] = {
    p.emotion: p
    for p in [
        EmotionPrototype(
            "happiness",
            core=(6, 12),
            supporting=(25, 26),
            conflicting=(1, 4, 9, 15, 20),
            rationale="pulled-up lip corners with raised cheeks are the Duchenne smile that marks enjoyment",
        ),
        EmotionPrototype(
            "sadness",
            core=(1, 4, 15),
            supporting=(17, 43),
            conflicting=(2, 5, 12, 26),
            rationale="oblique inner brows with lowered lip corners are the classic signs of sadness",
        ),
        EmotionPrototype(
            "surprise",
            core=(1, 2, 5, 26),
            supporting=(25,),
            conflicting=(4, 7, 9, 12, 15),
            rationale="raised brows, widened eyes and a dropped jaw form the surprise configuration",
        ),
        EmotionPrototype(
            "fear",
            core=(1, 2, 4, 5, 20),
            supporting=(7, 25, 26),
            conflicting=(6, 12, 9),
            rationale="raised but drawn-together brows with widened eyes and stretched lips signal fear",
        ),
        EmotionPrototype(
            "disgust",
            core=(9, 10),
            supporting=(4, 15, 17, 25),
            conflicting=(1, 2, 5, 12),
            rationale="a wrinkled nose with a raised upper lip is the core of disgust",
        ),
        EmotionPrototype(
            "anger",
            core=(4, 5, 7, 23, 24),
            supporting=(17, 10),
            conflicting=(1, 2, 6, 12, 15),
            rationale="lowered, drawn-together brows with tense lids and tightened or pressed lips signal anger",
        ),
        EmotionPrototype(
            "contempt",
            core=(14,),
            supporting=(12,),
            conflicting=(1, 4, 6, 9, 15),
            rationale="a (typically one-sided) dimpler tightening the lip corner signals contempt",
        ),
    ]
}


def supported_emotions(aus: set[int] | list[int], min_core_fraction: float = 0.5) -> set[str]:
    """Emotions whose prototype is supported by a set of AUs (used by the consistency reward).

    An emotion is supported when at least `min_core_fraction` of its core AUs are present
    (at least one), or, for "neutral", when no emotion-defining AU is present at all.

    >>> sorted(supported_emotions({6, 12}))
    ['happiness']
    >>> sorted(supported_emotions(set()))
    ['neutral']
    """
    present = {int(a) for a in aus}
    out = set()
    for emotion, proto in EMOTION_PROTOTYPES.items():
        hits = len(present & set(proto.core))
        if hits and hits / len(proto.core) >= min_core_fraction - 1e-9:
            out.add(emotion)
    defining = set().union(*(p.core for p in EMOTION_PROTOTYPES.values()))
    if not present & defining:
        out.add("neutral")
    return out
