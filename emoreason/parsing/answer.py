"""Which emotion label an answer commits to: one function for eval, the emotion reward and serving.

An answer commits to a label when, after dropping the labels it denies ("not anger", "I don't
think it's anger", "fear rather than surprise", "surprise is ruled out") and the ones it
names only as a shade ("happiness with a hint of surprise"), exactly one label is left, or
when one of several is singled out ("Surprise or fear - most likely fear", "happiness 0.8,
surprise 0.2"). An answer that names several labels without singling one out ("surprise or
fear") commits to none: it earns no emotion reward and counts as no answer in eval, so a
policy cannot hedge its way to credit.

English is the contract. An answer in another language is mapped only when it is a single
known label word ("愤怒", "colère", "Angst"); anything longer counts as no answer.
"""

from __future__ import annotations

import re

from ..labels import normalize_label
from .text import normalize

# Single-word answers in other languages (Chinese, French, Spanish, German, Portuguese, Italian).
FOREIGN_LABELS: dict[str, str] = {
    **dict.fromkeys(["中性", "平静", "neutre", "neutro", "neutra"], "neutral"),
    **dict.fromkeys(
        [
            "快乐",
            "高兴",
            "开心",
            "幸福",
            "喜悦",
            "joie",
            "heureux",
            "heureuse",
            "alegría",
            "alegria",
            "feliz",
            "freude",
            "glücklich",
            "felicità",
            "felice",
            "gioia",
        ],
        "happiness",
    ),  # fmt: skip
    **dict.fromkeys(
        ["悲伤", "伤心", "难过", "tristesse", "triste", "tristeza", "traurigkeit", "traurig", "trauer", "tristezza"],
        "sadness",
    ),  # fmt: skip
    **dict.fromkeys(
        ["惊讶", "惊奇", "吃惊", "sorpresa", "überraschung", "überrascht", "surpresa", "surpris", "surprise"],
        "surprise",
    ),  # fmt: skip
    **dict.fromkeys(["恐惧", "害怕", "peur", "miedo", "angst", "medo", "paura"], "fear"),
    **dict.fromkeys(["厌恶", "恶心", "dégoût", "degout", "asco", "ekel", "nojo", "disgusto"], "disgust"),
    **dict.fromkeys(
        ["愤怒", "生气", "colère", "colere", "ira", "enojo", "enfado", "wut", "ärger", "raiva", "rabbia"], "anger"
    ),  # fmt: skip
    **dict.fromkeys(
        ["轻蔑", "蔑视", "mépris", "mepris", "desprecio", "verachtung", "desprezo", "disprezzo"], "contempt"
    ),  # fmt: skip
}

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# Words that deny the label right after them, within the clause ("not", "isn't", "rather than").
_DENY_BEFORE = {"not", "no", "never", "neither", "nor", "without", "than", "unlikely", "excluding", "except",
                "exclude", "excludes", "out"}  # fmt: skip
_DENY_BEFORE_WORDS = 4
_DENY_AFTER = re.compile(
    r"^[\s\"')\]]*(?:is|seems?|appears?|looks?)?\s*(?:(?:very|highly|quite|less)\s+)?(?:unlikely|ruled\s+out|excluded|"
    r"not\b|isn't|doesn't|less\s+likely)",
    re.IGNORECASE,
)
# A label named only as a shade of the main one: "with a hint of surprise", "slight fear".
_SHADE_BEFORE = {"hint", "touch", "tinge", "trace", "traces", "undertone", "undertones", "element", "elements",
                 "bit", "slight", "slightly", "mild", "mildly", "little", "secondary", "some", "subtle"}  # fmt: skip
# Words that single out one label among several: "most likely fear", "fear is most likely".
_COMMIT_BEFORE = re.compile(
    r"(?:most\s+likely|more\s+likely|likely|probably|mainly|mostly|primarily|predominantly|ultimately|overall|"
    r"final(?:ly)?|leaning\s+(?:towards?|to)|i'd\s+say|i\s+would\s+say|best\s+described\s+as|go\s+with|"
    r"going\s+with|settle\s+on|answer|conclusion|dominant|primary|main|chiefly|so|therefore|thus|hence|"
    r"->|=>|→)\W*$",
    re.IGNORECASE,
)
_COMMIT_AFTER = re.compile(
    r"^\W*(?:is|seems|appears)?\s*(?:the\s+)?(?:most\s+likely|more\s+likely|likelier|dominates|predominates|"
    r"prevails|wins|is\s+the\s+answer|best\s+fits?)",
    re.IGNORECASE,
)
_SCORE_AFTER = re.compile(r"^\W{0,3}(\d+(?:\.\d+)?)\s*(%?)")  # "happiness: 0.8", "happiness (80%)"
_CLAUSE_BREAK = re.compile(r"[.;!?\n]|\bbut\b|,", re.IGNORECASE)
_ALTERNATIVE_AFTER = re.compile(r"^\s*(?:or|/)\s*$", re.IGNORECASE)


def committed_label(answer: str | None) -> str | None:
    """The canonical label the answer commits to, or None.

    >>> committed_label("Surprise or fear - most likely fear.")
    'fear'
    >>> committed_label("I don't think it's anger; it's contempt.") , committed_label("surprise or fear")
    ('contempt', None)
    >>> committed_label("愤怒"), committed_label("C'est de la colère")
    ('anger', None)
    """
    text = normalize(answer or "").strip()
    if not text:
        return None
    single = re.sub(r"[\W\d_]+", "", text).lower()
    if single in FOREIGN_LABELS and normalize_label(single) is None:
        return FOREIGN_LABELS[single]
    named = named_labels(text)
    if not named:
        return None
    kept = [n for n in named if not n[3]]
    labels = {n[0] for n in kept}
    if len(labels) > 1:
        main = {n[0] for n in kept if not _is_shade(text, n)}
        if len(main) == 1:
            return main.pop()
        return _singled_out(text, kept)
    return labels.pop() if labels else None


def named_labels(text: str) -> list[tuple[str, int, int, bool]]:
    """(label, start, end, denied) for every label word in the text."""
    out = []
    for m in _WORD.finditer(text):
        label = normalize_label(m.group())
        if label is None:
            continue
        out.append((label, m.start(), m.end(), _denied(text, m.start(), m.end())))
    return out


def _clause_before(text: str, start: int) -> str:
    before = text[:start]
    breaks = list(_CLAUSE_BREAK.finditer(before))
    return before[breaks[-1].end() :] if breaks else before


def _denied(text: str, start: int, end: int) -> bool:
    before = [w.lower() for w in _WORD.findall(_clause_before(text, start))][-_DENY_BEFORE_WORDS:]
    if any(w in _DENY_BEFORE or w.endswith("n't") for w in before):
        return True
    return _DENY_AFTER.match(text[end : end + 40]) is not None


def _is_shade(text: str, named: tuple[str, int, int, bool]) -> bool:
    before = [w.lower() for w in _WORD.findall(_clause_before(text, named[1]))][-3:]
    return any(w in _SHADE_BEFORE for w in before)


def _singled_out(text: str, kept: list[tuple[str, int, int, bool]]) -> str | None:
    """Among several labels, the one a commitment cue or the highest score points to."""
    committed = set()
    for i, (label, start, end, _) in enumerate(kept):
        follower = kept[i + 1] if i + 1 < len(kept) else None
        offered_as_alternative = follower is not None and _ALTERNATIVE_AFTER.match(text[end : follower[1]])
        if _COMMIT_BEFORE.search(text[max(0, start - 30) : start]) and not offered_as_alternative:
            committed.add(label)
        elif _COMMIT_AFTER.match(text[end : end + 40]):
            committed.add(label)
    if len(committed) == 1:
        return committed.pop()
    scores: dict[str, float] = {}
    for label, _, end, _ in kept:
        m = _SCORE_AFTER.match(text[end : end + 12])
        if m is None:
            return None
        scores[label] = float(m.group(1)) / (100.0 if m.group(2) else 1.0)
    ranked = sorted(scores.values(), reverse=True)
    if len(ranked) > 1 and ranked[0] > ranked[1]:
        return max(scores, key=lambda k: scores[k])
    return None


# Untagged answers: "Answer: anger", "The answer is: Sad", "Final answer - disgust",
# "I think the emotion is happiness", "**Emotion:** fearful" (emphasis is stripped first).
_ANSWER_LINE = re.compile(
    r"\b(?:final\s+)?(?:answer|emotion|label|prediction|classification|verdict|expression)"
    r"(?:\s+(?:shown|expressed|displayed|conveyed|here|on\s+the\s+face|in\s+the\s+image|would\s+be|most\s+likely|"
    r"is\s+most\s+likely)){0,2}"
    r"\s*(?:is|would\s+be|:|=|-|->|→)\s*(?P<value>[^\n]+)",
    re.IGNORECASE,
)
_BARE_ANSWER_WORDS = 3  # a whole output this short that names one label is the answer ("Happy.")


def untagged_answer(text: str) -> str | None:
    """The answer of an output without `<answer>` tags: the last answer line that commits to a
    label, or the whole output when it is only a label; None otherwise."""
    text = normalize(text)
    for m in reversed(list(_ANSWER_LINE.finditer(text))):
        value = re.split(r"(?<!\d)[.;](?!\d)|\n", m.group("value"))[0].strip()
        if committed_label(value) is not None:
            return value
    stripped = text.strip().strip(".!\"'")
    if 0 < len(_WORD.findall(stripped)) <= _BARE_ANSWER_WORDS and committed_label(stripped) is not None:
        return stripped
    return None
