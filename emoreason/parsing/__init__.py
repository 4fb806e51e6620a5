"""Read a model's `<think>...</think><answer>...</answer>` text: emotion, cited AUs, validity flags.

Shared by every VLM backend, the rewards and the evaluation metrics, so "what the model said"
is decided in one place. Built for what real models write, not for the ideal: missing, doubled
or upper-case tags, prose around the tags, untagged answers, synonyms, hedged answers, and AU
mentions in many spellings with their negations and hypotheticals. The pieces:

- `text.py`: one normalisation (NFKC, dashes, markdown) and the clause boundaries scope stops at;
- `tags.py`: the think and answer blocks, whether each was closed, Facial-R1's format check;
- `aus.py`: which AUs the reasoning asserts, denies or only supposes;
- `answer.py`: which label an answer commits to (`committed_label`), and untagged answers.

>>> p = parse_output("<think>Cheeks raised (AU6) and lip corners pulled (AU12); no AU4.</think><answer>Happy</answer>")
>>> p.emotion, p.aus, p.negated_aus, p.format_valid, p.label_valid
('happiness', [6, 12], [4], True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..labels import normalize_label
from .answer import committed_label, named_labels, untagged_answer
from .aus import AUReading, read_aus
from .tags import FORMAT_PATTERN, answer_blocks, is_well_formed, think_block, without_answers
from .text import normalize

__all__ = [
    "FORMAT_PATTERN",
    "ParsedOutput",
    "committed_label",
    "find_aus",
    "is_well_formed",
    "parse_output",
]


@dataclass
class ParsedOutput:
    think: str | None  # text inside <think> (or before <answer> when the tag is missing)
    answer: str | None  # raw text of the answer (last <answer> block, or an untagged answer line)
    emotion: str | None  # the label the answer commits to (`committed_label`); None if none
    emotions: list[str] = field(default_factory=list)  # every distinct label the answer(s) name
    aus: list[int] = field(default_factory=list)  # AUs cited as present, sorted
    negated_aus: list[int] = field(default_factory=list)  # AUs mentioned only as absent
    hypothetical_aus: list[int] = field(default_factory=list)  # AUs only supposed ("a smile would show AU12")
    format_valid: bool = False  # is_well_formed(): <think>..</think><answer>..</answer> and nothing else
    label_valid: bool = False  # the answer commits to one label, and it is in the allowed set
    think_closed: bool = False  # a </think> ends the reasoning (not cut off)
    answer_source: str | None = None  # "tag" (closed <answer>), "open-tag" (cut off), "untagged", None


def parse_output(text: str, labels: Sequence[str] | None = None) -> ParsedOutput:
    """Parse one model output. `labels` is the allowed label set (canonical nouns), if any.

    Several answer blocks that commit to different labels commit to none (a hedge).

    >>> parse_output("<ANSWER>anger</ANSWER>").think is None
    True
    >>> parse_output("The brows are lowered (AU4) but AU12 is absent. The answer is: angry").emotion
    'anger'
    >>> parse_output("<think>x</think><answer>fear</answer>", labels=["happiness", "sadness"]).label_valid
    False
    """
    text = text or ""
    think = think_block(text)
    blocks = answer_blocks(text)
    if blocks:
        answer: str | None = blocks[-1].text
        source: str | None = "tag" if blocks[-1].closed else "open-tag"
        commitments = {committed_label(b.text) for b in blocks}
        emotion = commitments.pop() if len(commitments) == 1 else None
    else:
        answer = untagged_answer(without_answers(text))
        source = "untagged" if answer is not None else None
        emotion = committed_label(answer)
    named = [n for b in ([x.text for x in blocks] or [answer or ""]) for n in _labels_named(b)]
    allowed = {normalize_label(label) for label in labels} if labels else None
    reading = find_aus(think.text if think.text is not None else without_answers(text))
    return ParsedOutput(
        think=think.text,
        answer=answer,
        emotion=emotion,
        emotions=list(dict.fromkeys(named)),
        aus=reading.cited,
        negated_aus=reading.negated,
        hypothetical_aus=reading.hypothetical,
        format_valid=is_well_formed(text),
        label_valid=emotion is not None and (allowed is None or emotion in allowed),
        think_closed=think.closed,
        answer_source=source,
    )


def find_aus(text: str) -> AUReading:
    """Which AUs a reasoning text cites as present, denies, or only supposes (each sorted).

    >>> r = find_aus("Lowered brows (AU4+AU7), without AU1, AU2 or AU5; AU9 is absent.")
    >>> r.cited, r.negated
    ([4, 7], [1, 2, 5, 9])
    >>> find_aus("AUs 1, 2, and 5 are not active; AU25+26 and ＡＵ12E are.").cited
    [12, 25, 26]
    """
    return read_aus(normalize(text))


def _labels_named(answer: str) -> list[str]:
    return [label for label, *_ in named_labels(normalize(answer))]
