"""Read a model's `<think>...</think><answer>...</answer>` text: emotion, cited AUs, validity flags.

Shared by every VLM backend, the rewards and the evaluation metrics, so "what the model
said" is decided in one place. It is built for what real models write, not for the ideal:
missing, doubled or upper-case tags, prose around the tags, synonyms ("joy" -> happiness),
several labels in one answer, AU mentions in many spellings ("AU 12", "AU12", "(AU6+AU12)",
"AUs 6 and 12") and negated mentions ("no AU4", "without AU15", "AU9 is absent"), which are
NOT counted as cited.

>>> p = parse_output("<think>Cheeks raised (AU6) and lip corners pulled (AU12); no AU4.</think><answer>Happy</answer>")
>>> p.emotion, p.aus, p.negated_aus, p.format_valid, p.label_valid
('happiness', [6, 12], [4], True, True)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .labels import normalize_label

# Facial-R1's format check: exactly one think block followed by one answer block.
FORMAT_PATTERN = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)

_FORMAT_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_TAG = r"<\s*{close}\s*{name}\s*>"
_THINK_OPEN = re.compile(_TAG.format(close="", name="think"), re.IGNORECASE)
_THINK_CLOSE = re.compile(_TAG.format(close="/", name="think"), re.IGNORECASE)
_ANSWER_OPEN = re.compile(_TAG.format(close="", name="answer"), re.IGNORECASE)
_ANSWER_CLOSE = re.compile(_TAG.format(close="/", name="answer"), re.IGNORECASE)
_ANY_TAG = re.compile(r"<\s*/?\s*(?:think|answer)\s*>", re.IGNORECASE)
# Untagged fallbacks: "Answer: anger", "Final emotion - fear", "**Emotion:** joy".
_ANSWER_LINE = re.compile(
    r"(?:final\s+)?(?:answer|emotion|label|prediction)\s*\**\s*[:=\-]\s*\**\s*([A-Za-z][A-Za-z ,/]*)", re.IGNORECASE
)

# One AU mention: "AU12", "AU 12", "au-12", "AU06"; "AUs 6, 12 and 25" is expanded below.
_AU = re.compile(r"\bAU\s*[-_]?\s*0*(\d{1,2})(?![\d])", re.IGNORECASE)
_AU_LIST = re.compile(r"\bAUs\s+((?:\d{1,2}\s*(?:,|and|or|&|\+|/)?\s*)+)", re.IGNORECASE)
# Words that negate the AU mention they precede (within a short window, same clause).
_NEG_BEFORE = re.compile(
    r"\b(?:no|not|without|absent|absence\s+of|lack\s+of|lacks|lacking|never|neither|nor|none\s+of|"
    r"free\s+of|rather\s+than|instead\s+of|\w+n't)\b",
    re.IGNORECASE,
)
# Phrases right after a mention that negate it: "AU9 is absent", "AU4 (absent)", "AU15 not detected".
_NEG_AFTER = re.compile(
    r"^\s*\)?\s*(?:\(\s*)?(?:(?:is|are|was|were|seems|appears)\s+)?(?:(?:entirely|completely|clearly)\s+)?"
    r"(?:absent|missing|inactive|not\s+(?:present|active|detected|visible|seen|observed|shown|evident|there|"
    r"engaged|activated)|off\b)",
    re.IGNORECASE,
)
# What may sit between a negation word and the AU it negates ("no sign of AU4", "not raised (AU1)").
_MAX_WINDOW_WORDS = 5
_WINDOW_BREAK = re.compile(
    r"[.;:!?,\n]|\b(?:and|but|while|whereas|yet|so|although|though|however|because|with)\b", re.IGNORECASE
)
# Only list glue may sit between two mentions that share one negation ("without AU1, AU2 or AU5").
_LIST_GLUE = re.compile(r"^[\s,/+&()]*(?:(?:or|and|nor)\b[\s,/+&()]*)?$", re.IGNORECASE)


@dataclass
class ParsedOutput:
    think: str | None  # text inside <think> (or before <answer> when the tag is missing)
    answer: str | None  # raw text of the answer (last <answer> block, or an "Answer:" line)
    emotion: str | None  # canonical label of the answer; None if no label could be read
    emotions: list[str] = field(default_factory=list)  # every distinct label named in the answer(s)
    aus: list[int] = field(default_factory=list)  # AUs cited as present, sorted
    negated_aus: list[int] = field(default_factory=list)  # AUs mentioned only as absent
    format_valid: bool = False  # is_well_formed(): <think>..</think><answer>..</answer> and nothing else
    label_valid: bool = False  # exactly one label, and it is in the allowed set


def parse_output(text: str, labels: Sequence[str] | None = None) -> ParsedOutput:
    """Parse one model output. `labels` is the allowed label set (canonical nouns), if any.

    >>> parse_output("<ANSWER>anger</ANSWER>").think is None
    True
    >>> parse_output("The brows are lowered (AU4) but AU12 is absent. Answer: angry").emotion
    'anger'
    >>> parse_output("<think>x</think><answer>fear</answer>", labels=["happiness", "sadness"]).label_valid
    False
    """
    text = text or ""
    format_valid = is_well_formed(text)
    think = _think_block(text)
    answers = _answer_blocks(text)
    if not answers:
        loose = _ANSWER_LINE.findall(_ANY_TAG.sub(" ", text))
        answers = [loose[-1].strip()] if loose else []
    per_block = [_labels_in(a) for a in answers]
    emotions = list(dict.fromkeys(label for block in per_block for label in block))
    last = per_block[-1] if per_block else []
    emotion = last[0] if len(last) >= 1 else None
    allowed = {normalize_label(label) for label in labels} if labels else None
    label_valid = len(emotions) == 1 and (allowed is None or emotion in allowed)
    reasoning = think if think is not None else _strip_answers(text)
    cited, negated = find_aus(reasoning)
    return ParsedOutput(
        think=think,
        answer=answers[-1] if answers else None,
        emotion=emotion,
        emotions=emotions,
        aus=cited,
        negated_aus=negated,
        format_valid=format_valid,
        label_valid=label_valid,
    )


def is_well_formed(text: str) -> bool:
    """Facial-R1's fullmatch, with exactly one block of each: a doubled `<answer>` would otherwise
    pass its lazy `.*?` (and be a cheap way to hedge for an RL policy).

    >>> is_well_formed("<think>AU12</think>\\n<answer>happiness</answer>")
    True
    >>> is_well_formed("<think>AU12</think><answer>happiness</answer><answer>fear</answer>")
    False
    """
    text = (text or "").strip()
    return FORMAT_PATTERN.fullmatch(text) is not None and all(text.count(t) == 1 for t in _FORMAT_TAGS)


def find_aus(text: str) -> tuple[list[int], list[int]]:
    """(AUs cited as present, AUs mentioned only as absent), each sorted.

    An AU both affirmed and negated somewhere counts as cited.

    >>> find_aus("Lowered brows (AU4+AU7), without AU1, AU2 or AU5; AU9 is absent.")
    ([4, 7], [1, 2, 5, 9])
    >>> find_aus("AUs 6 and 12 are active, there is no AU 15.")
    ([6, 12], [15])
    """
    mentions = _mentions(text)
    positive: set[int] = set()
    negative: set[int] = set()
    previous_negated_end: int | None = None
    for start, end, code in mentions:
        negated = _negated_before(text, start) or _NEG_AFTER.match(text[end : end + 40]) is not None
        # A list that shares one negation: "no AU1, AU2 or AU5".
        if not negated and previous_negated_end is not None and _LIST_GLUE.match(text[previous_negated_end:start]):
            negated = True
        (negative if negated else positive).add(code)
        previous_negated_end = end if negated else None
    return sorted(positive), sorted(negative - positive)


def _mentions(text: str) -> list[tuple[int, int, int]]:
    """(start, end, code) of every AU mention, in order."""
    found = [(m.start(), m.end(), int(m.group(1))) for m in _AU.finditer(text)]
    for m in _AU_LIST.finditer(text):
        for n in re.finditer(r"\d{1,2}", m.group(1)):
            found.append((m.start(1) + n.start(), m.start(1) + n.end(), int(n.group())))
    return sorted(set(found))


def _negated_before(text: str, start: int) -> bool:
    """Is there a negation word shortly before `start`, with no clause break in between?"""
    window = text[max(0, start - 80) : start]
    cues = list(_NEG_BEFORE.finditer(window))
    if not cues:
        return False
    gap = window[cues[-1].end() :]
    gap_without_parens = gap.replace("(", " ")
    if _WINDOW_BREAK.search(gap_without_parens):
        return False
    return len(gap_without_parens.split()) <= _MAX_WINDOW_WORDS


def _think_block(text: str) -> str | None:
    opened = _THINK_OPEN.search(text)
    closed = _THINK_CLOSE.search(text, opened.end() if opened else 0)
    if opened is None and closed is None:
        return None
    start = opened.end() if opened else 0
    if closed is not None:
        end = closed.start()
    else:
        answer = _ANSWER_OPEN.search(text, start)
        end = answer.start() if answer else len(text)
    return _ANY_TAG.sub(" ", text[start:end]).strip()


def _answer_blocks(text: str) -> list[str]:
    blocks = []
    for opened in _ANSWER_OPEN.finditer(text):
        closed = _ANSWER_CLOSE.search(text, opened.end())
        nxt = _ANSWER_OPEN.search(text, opened.end())
        end = closed.start() if closed and (nxt is None or closed.start() < nxt.start()) else None
        if end is None:
            end = nxt.start() if nxt else len(text)
        block = _ANY_TAG.sub(" ", text[opened.end() : end]).strip()
        if block:
            blocks.append(block)
    return blocks


def _strip_answers(text: str) -> str:
    return re.sub(r"<\s*answer\s*>.*?(?:<\s*/\s*answer\s*>|$)", " ", text, flags=re.IGNORECASE | re.DOTALL)


def _labels_in(answer: str) -> list[str]:
    """Canonical labels named in an answer, in order, skipping negated ones ("not fear, anger")."""
    out: list[str] = []
    words = re.findall(r"[A-Za-z']+", answer)
    for i, word in enumerate(words):
        label = normalize_label(word)
        if label is None or label in out:
            continue
        if i > 0 and words[i - 1].lower() in ("not", "no", "nor", "neither", "without"):
            continue
        out.append(label)
    return out
