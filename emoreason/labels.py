"""Emotion labels: the canonical nouns and every alias that maps onto them.

All of emoreason speaks these nouns (the FEA-20K / Facial-R1 convention). Benchmarks with
other spellings (happy, angry, surprised, ...) are mapped in here and nowhere else.
"""

from __future__ import annotations

import re

# The seven basic emotions plus contempt, in the order benchmark tables use.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "sadness",
    "surprise",
    "fear",
    "disgust",
    "anger",
    "contempt",
)
BASIC7: tuple[str, ...] = EMOTIONS[:7]

_ALIASES: dict[str, str] = {
    "neutral": "neutral",
    "neutrality": "neutral",
    "calm": "neutral",
    "none": "neutral",
    "happiness": "happiness",
    "happy": "happiness",
    "joy": "happiness",
    "joyful": "happiness",
    "smile": "happiness",
    "smiling": "happiness",
    "amusement": "happiness",
    "glad": "happiness",
    "sadness": "sadness",
    "sad": "sadness",
    "sorrow": "sadness",
    "unhappy": "sadness",
    "grief": "sadness",
    "surprise": "surprise",
    "surprised": "surprise",
    "astonishment": "surprise",
    "amazed": "surprise",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "terror": "fear",
    "anxious": "fear",
    "disgust": "disgust",
    "disgusted": "disgust",
    "revulsion": "disgust",
    "anger": "anger",
    "angry": "anger",
    "rage": "anger",
    "mad": "anger",
    "annoyed": "anger",
    "fury": "anger",
    "contempt": "contempt",
    "contemptuous": "contempt",
    "scorn": "contempt",
    "disdain": "contempt",
}


def normalize_label(text: str | None) -> str | None:
    """Map a label or alias onto a canonical emotion noun; None if it is not an emotion.

    >>> normalize_label("Happy")
    'happiness'
    >>> normalize_label(" angry. ")
    'anger'
    >>> normalize_label("boredom") is None
    True
    """
    if text is None:
        return None
    key = re.sub(r"[^a-z]", "", str(text).strip().lower())
    return _ALIASES.get(key)


def label_aliases() -> dict[str, str]:
    """A copy of the alias table (alias -> canonical noun), e.g. for parsers."""
    return dict(_ALIASES)
