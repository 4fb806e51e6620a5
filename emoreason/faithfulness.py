"""Is an analysis faithful to what the front-end measured? One check for every backend.

The invariants (issue: faithful analyses), read from the text by the shared parser:
1. an AU the text cites as present was measured present, and an AU it denies was not;
2. a whole-face "at rest" / "no visible action" claim only when no AU was measured present;
3. a probability the text gives an emotion ("62% sadness", "sadness (62%)": the expression
   model's reading) is the one the expression model gave it, to the prompt's rounding.
The embedded engine is built to keep them (property-tested), `data synth` rejects texts that
break them, eval reports the share of analyses that break them (`faithfulness`), for a VLM as
for the engine, and the reward registry has the same check as an optional reward.

>>> breaks("<think>The lip corners rise (AU12); no AU4.</think><answer>happiness</answer>", present=[12])
[]
>>> breaks("<think>The face is at rest (no AU12).</think><answer>neutral</answer>", present=[12])
['denies measured AU12', 'calls an active face at rest']
>>> breaks("<think>The classifier reads anger (70%).</think><answer>anger</answer>", [], prior={"anger": 0.4})
['misstates the expression prior: anger 70%, measured 40%']
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .labels import normalize_label
from .parsing import parse_output

# Whole-face claims of no movement. Region-level ones ("the lids are relaxed") are fine.
AT_REST = re.compile(
    r"\b(?:at\s+rest|no\s+(?:facial\s+)?(?:muscle\s+)?action(?:\s+unit)?s?\s+(?:is\s+|are\s+)?(?:clearly\s+)?visible|"
    r"no\s+visible\s+(?:muscle\s+)?(?:action|movement)|no\s+action\s+unit\s+(?:reaches|above|is\s+active)|"
    r"no\s+meaningful\s+AU\s+activity|face\s+is\s+(?:still|motionless|expressionless)|expressionless)\b",
    re.IGNORECASE,
)


# The plain statement that the whole-face impression decided against the AUs ("... the whole-face
# impression (62% sadness) outweighs the AU evidence"), or alone where no AU could be measured
# ("Judging from the overall appearance alone, the expression reads as anger (62%)").
_OUTWEIGHS = re.compile(
    r"[^.;]*\b(?:outweighs?|overrides?|overrules?|(?:appearance|impression)\s+alone)\b[^.;]*", re.IGNORECASE
)


def states_impression_outweighs(reasoning: str, emotion: str) -> bool:
    """Does the text say plainly that the whole-face impression, with its probability, outweighs the
    AU evidence for `emotion`? (The second way an answer may be supported, besides the cited AUs.)

    >>> states_impression_outweighs("The AUs suggest fear; the whole-face impression (70% sadness) outweighs them.",
    ...                             "sadness")
    True
    """
    for m in _OUTWEIGHS.finditer(reasoning or ""):
        sentence = m.group()
        if "%" in sentence and emotion in {normalize_label(w) for w in re.findall(r"[A-Za-z]+", sentence)}:
            return True
    return False


# A probability stated for an emotion, in the forms the engine writes: "62% sadness", "62% for sadness",
# "sadness (62%)". Invariant 3 holds each to the expression model's output.
# Two patterns scanned separately: one alternation would let "impression (62%" swallow "62% sadness".
_PCT_FIRST = re.compile(r"\b(\d{1,3})%\s+(?:for\s+)?([A-Za-z]+)")
_NAME_FIRST = re.compile(r"\b([A-Za-z]+)\s+\((\d{1,3})%")
PRIOR_TOLERANCE = 1.5  # percentage points: the prompt gives the prior to 0.01, the text to 1%


def stated_probabilities(reasoning: str) -> list[tuple[str, int]]:
    """(emotion, percent) for each probability the text gives an emotion.

    >>> stated_probabilities("The impression (62% sadness) outweighs it; fear (20%) and 5% against.")
    [('sadness', 62), ('fear', 20)]
    """
    text = reasoning or ""
    hits = [(m.start(), m.group(2), m.group(1)) for m in _PCT_FIRST.finditer(text)]
    hits += [(m.start(), m.group(1), m.group(2)) for m in _NAME_FIRST.finditer(text)]
    found = []
    for _, word, pct in sorted(hits):
        emotion = normalize_label(word)
        if emotion:
            found.append((emotion, int(pct)))
    return found


def breaks(text: str, present: Iterable[int], prior: dict[str, float] | None = None) -> list[str]:
    """The invariants `text` breaks given the AU codes measured present and, where given, the expression
    model's probabilities (empty list: faithful)."""
    measured = set(present)
    parsed = parse_output(text)
    reasoning = parsed.think if parsed.think is not None else text
    found = [f"cites unmeasured AU{c}" for c in parsed.aus if c not in measured]
    found += [f"denies measured AU{c}" for c in parsed.negated_aus if c in measured]
    if measured and AT_REST.search(reasoning):
        found.append("calls an active face at rest")
    if prior:
        for emotion, pct in stated_probabilities(reasoning):
            p = 100 * prior.get(emotion, 0.0)
            if abs(pct - p) > PRIOR_TOLERANCE:
                found.append(f"misstates the expression prior: {emotion} {pct}%, measured {p:.0f}%")
    return found


def faithfulness_score(
    text: str, present: Iterable[int] | None, prior: dict[str, float] | None = None
) -> float | None:
    """1.0 when the text breaks no invariant, 0.0 when it does; None when no AUs were measured."""
    if present is None:
        return None
    return 0.0 if breaks(text, present, prior) else 1.0
