"""Confidence of a VLM's answer, from the token probabilities at the start of its `<answer>`.

Every backend's `FaceAnalysis.confidence` is "the probability of the emotion given, among the
allowed labels": the embedded engine's posterior, and for a VLM the probability mass its
next-token distribution puts on each label when it starts writing the answer, renormalised
over the label set. The same function serves the in-process model (top-k log-probs it records
while generating) and OpenAI-compatible servers (their `logprobs` / `top_logprobs`), and it
works on token *strings*, so it needs no tokenizer of a remote model.

A token counts for a label when it can begin one of the label's surface forms (canonical noun
or alias: "happ", "happy" and "joy" all begin happiness). A token that can begin several
labels ("s": sadness, surprise, and "smile" for happiness) splits its mass evenly between them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

from ..labels import EMOTIONS, label_aliases

_ANSWER_OPEN = re.compile(r"<\s*answer\s*>\s*", re.IGNORECASE)


@lru_cache(maxsize=64)
def _surface_forms(labels: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    forms: dict[str, set[str]] = {label: {label} for label in labels}
    for alias, canonical in label_aliases().items():
        if canonical in forms:
            forms[canonical].add(alias)
    return {label: tuple(sorted(f)) for label, f in forms.items()}


def labels_for_token(token: str, labels: Sequence[str]) -> list[str]:
    """Labels a generated token could begin.

    >>> labels_for_token("happ", ["happiness", "sadness"])
    ['happiness']
    >>> labels_for_token(" Sa", ["happiness", "sadness", "surprise"])
    ['sadness']
    >>> labels_for_token("s", ["happiness", "sadness", "surprise"])  # "smile" is an alias of happiness
    ['happiness', 'sadness', 'surprise']
    """
    piece = re.sub(r"[^a-z]", "", token.lower())
    if not piece:
        return []
    out = []
    for label, forms in _surface_forms(tuple(labels)).items():
        if any(form.startswith(piece) or piece.startswith(form) for form in forms):
            out.append(label)
    return out


def label_distribution(
    tokens: Sequence[str], top_logprobs: Sequence[dict[str, float]], text: str, labels: Sequence[str] | None = None
) -> dict[str, float] | None:
    """Probability of each label at the first token of the (last) answer, renormalised over `labels`.

    `tokens[i]` is the i-th generated token as text and `top_logprobs[i]` the most likely
    tokens at that step with their log-probabilities; `text` is the whole generated text.
    None when there is no answer or no probability mass on any label.

    >>> toks = ["<answer>", "happiness", "</answer>"]
    >>> tops = [{"<answer>": 0.0}, {"happiness": math.log(0.6), "sad": math.log(0.2), "the": math.log(0.2)}, {}]
    >>> d = label_distribution(toks, tops, "<answer>happiness</answer>", ["happiness", "sadness"])
    >>> round(d["happiness"], 2), round(d["sadness"], 2)
    (0.75, 0.25)
    """
    labels = list(labels or EMOTIONS)
    opens = list(_ANSWER_OPEN.finditer(text))
    if not opens:
        return None
    start = opens[-1].end()
    step = _token_at(tokens, start)
    if step is None or step >= len(top_logprobs):
        return None
    mass = dict.fromkeys(labels, 0.0)
    for token, logprob in top_logprobs[step].items():
        owners = labels_for_token(token, labels)
        for label in owners:
            mass[label] += math.exp(logprob) / len(owners)
    total = sum(mass.values())
    if total <= 0:
        return None
    return {label: m / total for label, m in mass.items()}


def _token_at(tokens: Sequence[str], offset: int) -> int | None:
    """Index of the token covering character `offset` of the concatenated tokens."""
    end = 0
    for i, token in enumerate(tokens):
        end += len(token)
        if end > offset:
            # A token that only carries whitespace before the label is not the label's first token.
            if not token[len(token) - (end - offset) :].strip():
                continue
            return i
    return None
