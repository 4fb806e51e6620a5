"""The `<think>...</think><answer>...</answer>` structure: blocks, closure and Facial-R1's format check."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Facial-R1's format check: exactly one think block followed by one answer block.
FORMAT_PATTERN = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)

_FORMAT_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_TAG = r"<\s*{close}\s*{name}\s*>"
_THINK_OPEN = re.compile(_TAG.format(close="", name="think"), re.IGNORECASE)
_THINK_CLOSE = re.compile(_TAG.format(close="/", name="think"), re.IGNORECASE)
_ANSWER_OPEN = re.compile(_TAG.format(close="", name="answer"), re.IGNORECASE)
_ANSWER_CLOSE = re.compile(_TAG.format(close="/", name="answer"), re.IGNORECASE)
ANY_TAG = re.compile(r"<\s*/?\s*(?:think|answer)\s*>", re.IGNORECASE)


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


@dataclass
class Think:
    text: str | None  # inside <think> (or before <answer> when a tag is missing); None without think tags
    closed: bool  # a </think> ends it: the model finished reasoning


def think_block(text: str) -> Think:
    opened = _THINK_OPEN.search(text)
    closed = _THINK_CLOSE.search(text, opened.end() if opened else 0)
    if opened is None and closed is None:
        return Think(None, False)
    start = opened.end() if opened else 0
    if closed is not None:
        end = closed.start()
    else:
        answer = _ANSWER_OPEN.search(text, start)
        end = answer.start() if answer else len(text)
    return Think(ANY_TAG.sub(" ", text[start:end]).strip(), closed is not None)


@dataclass
class Answer:
    text: str
    closed: bool  # a </answer> ends it (not cut off by the token limit)


def answer_blocks(text: str) -> list[Answer]:
    """Every non-empty `<answer>` block in order; an unclosed one runs to the next `<answer>` or the end."""
    blocks = []
    for opened in _ANSWER_OPEN.finditer(text):
        closed = _ANSWER_CLOSE.search(text, opened.end())
        nxt = _ANSWER_OPEN.search(text, opened.end())
        is_closed = closed is not None and (nxt is None or closed.start() < nxt.start())
        end = closed.start() if closed is not None and is_closed else (nxt.start() if nxt else len(text))
        block = ANY_TAG.sub(" ", text[opened.end() : end]).strip()
        if block:
            blocks.append(Answer(block, is_closed))
    return blocks


def without_answers(text: str) -> str:
    """The text with its answer blocks removed (what is left is reasoning)."""
    return re.sub(r"<\s*answer\s*>.*?(?:<\s*/\s*answer\s*>|$)", " ", text, flags=re.IGNORECASE | re.DOTALL)
