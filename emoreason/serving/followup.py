"""Follow-up questions about an analysed face ("why not fear?"), answered from the FACS evidence.

The embedded backend has no language model, so a follow-up is answered by comparing the
face's AUs with the FACS prototype of the emotion asked about (facs.EMOTION_PROTOTYPES):
which of its defining AUs are there, which are missing, which AUs on the face argue
against it, and what the AUs present support instead. VLM backends answer follow-ups
with the model itself (engine.py).
"""

from __future__ import annotations

import re

from ..facs import EMOTION_PROTOTYPES, au_name
from ..labels import normalize_label
from ..types import FaceAnalysis


def mentioned_emotions(question: str) -> list[str]:
    """Emotion labels named in a question, in order.

    >>> mentioned_emotions("Why not fear? Could it be surprised?")
    ['fear', 'surprise']
    """
    found = []
    for word in re.findall(r"[A-Za-z]+", question):
        label = normalize_label(word)
        if label and label not in found and word.lower() not in ("none", "mad", "calm"):
            found.append(label)
    return found


def _aus(codes) -> str:
    codes = sorted(codes)
    if not codes:
        return "none"
    return ", ".join(f"AU{c} ({au_name(c)})" for c in codes)


def answer_follow_up(face: FaceAnalysis, question: str) -> str:
    present = {a.code for a in face.present_aus()}
    chosen = face.emotion
    asked = [e for e in mentioned_emotions(question) if e != chosen]
    if not asked:  # "why?", "why happiness?", "which AUs?"
        prototype = EMOTION_PROTOTYPES.get(chosen or "")
        evidence = _aus(present & set(prototype.core + prototype.supporting)) if prototype else _aus(present)
        why = f" {prototype.rationale[0].upper()}{prototype.rationale[1:]}." if prototype else ""
        return (f"The face shows {_aus(present)}. The answer is {chosen or 'not an emotion label'} because of "
                f"{evidence}.{why}")  # fmt: skip
    parts = []
    for emotion in asked:
        prototype = EMOTION_PROTOTYPES.get(emotion)
        if prototype is None:  # neutral
            parts.append(f"Neutral would mean no expressive AU; this face shows {_aus(present)}.")
            continue
        have, missing = set(prototype.core) & present, set(prototype.core) - present
        against = set(prototype.conflicting) & present
        text = f"{emotion.capitalize()} is defined by {_aus(prototype.core)}; this face shows "
        text += (
            f"{_aus(have)} of them and lacks {_aus(missing)}." if have else f"none of them (it lacks {_aus(missing)})."
        )
        if against:
            text += f" It also shows {_aus(against)}, which argue against {emotion}."
        parts.append(text)
    if chosen in EMOTION_PROTOTYPES:
        prototype = EMOTION_PROTOTYPES[chosen]
        support = set(prototype.core + prototype.supporting) & present
        parts.append(f"The AUs it does show ({_aus(support)}) support {chosen}: {prototype.rationale}.")
    elif chosen:
        parts.append(f"Without the defining AUs of another emotion, the answer stays {chosen}.")
    return " ".join(parts)
