"""Rewards for GRPO, and the per-sample scores evaluation reports: one implementation for both.

Every reward is a plain function `fn(completions, **columns) -> list[float | None]` (trl's
and open-r1's convention), registered by name in `REWARDS`; a recipe picks them by name with
weights. `completions` are the generated texts (or trl's conversational form, a list of
messages per completion); the columns are the dataset's: `emotion` (gold label or None) and
`aus` (gold AU codes, empty when the sample has none). All reading of the model's text goes
through `parsing.parse_output`, the negation-aware parser the backends use.

The per-sample functions underneath (`format_score`, `emotion_score`, `au_f1`,
`consistency_score`) are what `emoreason eval` aggregates into its metrics.

Where these rewards deviate from Facial-R1, deliberately:
- The emotion is the label the answer *commits to* (`parsing.committed_label`), the same
  function eval's accuracy and the served answer use. An answer naming several labels without
  singling one out ("surprise or fear") earns 0; Facial-R1 compares the answer text as a whole.
- AUs are read by a scope-aware parser: denied ("AU12: absent", "no AU4") and supposed ("a smile
  would show AU12") AUs are not cited, and many more spellings are read ("AU25+26", "AUs 1, 2,
  and 5", "ＡＵ12", "L12", "AU12E", codes next to CJK text); Facial-R1 matches AU codes by pattern.
- Reading mode. `strict` (the default for training, recipe key `reward_reading: strict`): the
  emotion counts only from a closed `<answer>` block and AUs only from a closed `<think>`
  block, so a truncated or untagged completion gets emotion 0 and AU -1, as in Facial-R1.
  `lenient` (the default for evaluation and for these functions called directly): an
  untagged "Answer: fear" line or a cut-off think block is read, because a benchmark should
  score what the model said, not how it was wrapped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from .faithfulness import answer_follows, faithful_share, faithfulness_score
from .labels import normalize_label
from .parsing import ParsedOutput, is_well_formed
from .parsing import parse_output as _parse_output

RewardFn = Callable[..., list[float | None]]


@lru_cache(maxsize=4096)
def parse_output(text: str) -> ParsedOutput:
    """The parser, memoised: the rewards of one GRPO step read each completion once, not once per reward.
    (The rewards only read the result; nothing here mutates it.)"""
    return _parse_output(text)


REWARDS: dict[str, RewardFn] = {}


def register(name: str) -> Callable[[RewardFn], RewardFn]:
    def wrap(fn: RewardFn) -> RewardFn:
        REWARDS[name] = fn
        return fn

    return wrap


def completion_text(completion: Any) -> str:
    """trl passes strings, or (conversational datasets) a list of messages: take the last content."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # content parts
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    return ""


# ---------------------------------------------------------------- per sample
def format_score(text: str) -> float:
    """1 when the text is exactly `<think>...</think> <answer>...</answer>` (Facial-R1's fullmatch).

    >>> format_score("<think>AU6 and AU12.</think>\\n<answer>happiness</answer>"), format_score("happiness")
    (1.0, 0.0)
    """
    return 1.0 if is_well_formed(text) else 0.0


def emotion_score(text: str, gold: str | None, strict: bool = False) -> float:
    """1 when the label the answer commits to equals the gold label, else 0; 0.5 without a gold label.

    >>> emotion_score("<think>.</think><answer>Happy</answer>", "happiness")
    1.0
    >>> emotion_score("<think>.</think><answer>fear</answer>", None)
    0.5
    >>> emotion_score("Answer: fear", "fear"), emotion_score("Answer: fear", "fear", strict=True)
    (1.0, 0.0)
    """
    gold_label = normalize_label(gold) if gold else None
    if gold_label is None:
        return 0.5
    parsed = parse_output(text)
    if strict and parsed.answer_source != "tag":
        return 0.0
    return 1.0 if parsed.emotion == gold_label else 0.0


def au_f1(predicted: Sequence[int], gold: Sequence[int]) -> float:
    """F1 between two AU sets (1.0 when both are empty).

    >>> au_f1([6, 12, 25], [6, 12])
    0.8
    """
    p, g = set(predicted), set(gold)
    if not p and not g:
        return 1.0
    tp = len(p & g)
    return 0.0 if tp == 0 else 2 * tp / (len(p) + len(g))


def au_score(text: str, gold: Sequence[int] | None, strict: bool = False) -> float:
    """Facial-R1's AU reward: 2*F1(cited, gold) - 1; -1 when no AU is cited; 0 when there are no gold AUs.

    Denied ("no AU4") and supposed ("would show AU12") mentions are not cited. `strict`: AUs
    count only from a closed think block (a cut-off completion cites nothing).

    >>> au_score("<think>(AU6) (AU12), no AU4</think><answer>happiness</answer>", [6, 12])
    1.0
    >>> au_score("<think>smiling</think><answer>happiness</answer>", [6, 12])
    -1.0
    >>> au_score("<think>(AU6)</think><answer>happiness</answer>", [])
    0.0
    """
    if not gold:
        return 0.0
    parsed = parse_output(text)
    cited = parsed.aus if parsed.think_closed or not strict else []
    if not cited:
        return -1.0
    return 2.0 * au_f1(cited, gold) - 1.0


def consistency_score(text: str, strict: bool = False) -> float:
    """1 when the answer follows from the evidence the reasoning gives, else 0 (`faithfulness.answer_follows`,
    the check every result's `contradictions` makes too).

    Two ways: the AUs cited support it under the FACS prototype table the embedded engine
    reasons with (`facs.supported_emotions`: at least half of the emotion's core AUs cited; a
    neutral answer when no emotion-defining AU is cited), or the reasoning says plainly that
    the whole-face impression, with its probability, outweighs the AU evidence for this answer
    (`faithfulness.states_impression_outweighs`). Deviation from a pure AU rule, deliberate: on
    48 px faces the AUs are weak and the expression model is right more often; an honest
    text that says so is consistent. Whether the stated probability is the expression model's
    own is the faithfulness reward's check (invariant 3), not this one's.

    >>> consistency_score("<think>(AU6) and (AU12)</think><answer>happiness</answer>")
    1.0
    >>> consistency_score("<think>(AU6) and (AU12)</think><answer>anger</answer>")
    0.0
    >>> consistency_score("<think>(AU6) (AU12) suggest happiness; the whole-face impression (80% anger) "
    ...                   "outweighs the AU evidence.</think><answer>anger</answer>")
    1.0
    """
    parsed = parse_output(text)
    if strict and (parsed.answer_source != "tag" or not parsed.think_closed):
        return 0.0
    return 1.0 if answer_follows(parsed) else 0.0


# ------------------------------------------------------------- GRPO rewards
@register("format")
def format_reward(completions: Sequence[Any], **_: Any) -> list[float | None]:
    """Format reward per completion.

    >>> format_reward(["<think>a</think><answer>fear</answer>", "fear"])
    [1.0, 0.0]
    """
    return [format_score(completion_text(c)) for c in completions]


@register("emotion")
def emotion_reward(
    completions: Sequence[Any], emotion: Sequence[str | None] | None = None, strict: bool = False, **_: Any
) -> list:
    """Emotion accuracy per completion against the `emotion` column.

    >>> emotion_reward(["<think>a</think><answer>joy</answer>"] * 2, emotion=["happiness", "sadness"])
    [1.0, 0.0]
    """
    golds = emotion if emotion is not None else [None] * len(completions)
    return [emotion_score(completion_text(c), g, strict) for c, g in zip(completions, golds)]


@register("au")
def au_reward(
    completions: Sequence[Any], aus: Sequence[Sequence[int] | None] | None = None, strict: bool = False, **_: Any
) -> list:
    """Facial-R1's AU reward per completion against the `aus` column.

    >>> [round(r, 3) for r in au_reward(["<think>(AU4) (AU7)</think><answer>anger</answer>"], aus=[[4, 5, 7, 23]])]
    [0.333]
    """
    golds = aus if aus is not None else [None] * len(completions)
    return [au_score(completion_text(c), g, strict) for c, g in zip(completions, golds)]


@register("consistency")
def consistency_reward(completions: Sequence[Any], strict: bool = False, **_: Any) -> list[float | None]:
    """Reasoning-answer consistency per completion (no labels needed).

    >>> consistency_reward(["<think>(AU1) (AU2) (AU5) (AU26)</think><answer>surprise</answer>"])
    [1.0]
    """
    return [consistency_score(completion_text(c), strict) for c in completions]


@register("faithfulness")
def faithfulness_reward(
    completions: Sequence[Any],
    measured_aus: Sequence[Sequence[int] | str | dict[int, float] | None] | None = None,
    expression_prior: Sequence[str | dict[str, float] | None] | None = None,
    **_: Any,
) -> list[float | None]:
    """1 when the reasoning cites only measured AUs, denies none of them, calls the face at rest only
    when nothing was measured, gives each emotion the probability the expression model gave it and, where the
    column holds intensities, each AU its measured intensity (faithfulness.py); None (no signal) where nothing
    was measured. `expression_prior` is the dataset
    column: a JSON object per row (datasets cannot hold dicts with varying keys), or a dict.

    >>> text = "<think>(AU6) (AU12); the expression model reads happiness (90%).</think><answer>happiness</answer>"
    >>> faithfulness_reward([text] * 3, measured_aus=[[6, 12], [4], [6, 12]],
    ...                     expression_prior=['{"happiness": 0.9}', None, '{"happiness": 0.5}'])
    [1.0, 0.0, 0.0]
    """
    return _per_face(faithfulness_score, completions, measured_aus, expression_prior)


@register("faithfulness_share")
def faithfulness_share_reward(
    completions: Sequence[Any],
    measured_aus: Sequence[Sequence[int] | str | dict[int, float] | None] | None = None,
    expression_prior: Sequence[str | dict[str, float] | None] | None = None,
    **_: Any,
) -> list[float | None]:
    """The graded form of `faithfulness`: the share of each text's checkable claims that hold
    (faithfulness.faithful_share). The all-or-nothing reward was 0 on nearly every rollout of
    emoreason-mini's GRPO (docs/emoreason-mini.md, item 10), which leaves GRPO no gradient to follow.

    >>> text = "<think>(AU6) (AU12) (AU26)</think><answer>happiness</answer>"
    >>> faithfulness_share_reward([text] * 2, measured_aus=[[6, 12], None])
    [0.6666666666666667, None]
    """
    return _per_face(faithful_share, completions, measured_aus, expression_prior)


def _per_face(
    check: Callable, completions: Sequence[Any], measured_aus: Any, expression_prior: Any
) -> list[float | None]:
    """check(text, measured AUs, prior) per completion. The measured column holds the AU codes, or their
    intensities as a JSON object {"12": 3.1} (datasets cannot hold dicts with varying keys) or a dict; the prior
    column a JSON object per row or a dict."""
    measured = measured_aus if measured_aus is not None else [None] * len(completions)
    priors = expression_prior if expression_prior is not None else [None] * len(completions)
    return [
        check(completion_text(c), _measured(m), json.loads(p) if isinstance(p, str) else p)
        for c, m, p in zip(completions, measured, priors)
    ]


def _measured(column: Any) -> Any:
    """The measured column's row as `faithfulness` takes it: codes, or {code: intensity}."""
    if isinstance(column, str):
        column = json.loads(column)
    if isinstance(column, dict):
        return {int(code): float(x) for code, x in column.items()}
    return column


def combined_reward(
    completions: Sequence[Any], weights: dict[str, float], strict: bool = False, **columns: Any
) -> tuple[list[float], dict[str, list[float | None]]]:
    """The weighted sum of the named rewards, and each part (to be logged separately).

    >>> weights = {"format": 1.0, "emotion": 1.0, "au": 0.5}
    >>> text = "<think>(AU6) (AU12)</think><answer>happy</answer>"
    >>> total, parts = combined_reward([text], weights, emotion=["happiness"], aus=[[6, 12]])
    >>> total, parts["au"]
    ([2.5], [1.0])
    """
    unknown = set(weights) - set(REWARDS)
    if unknown:
        raise ValueError(f"unknown reward(s) {sorted(unknown)}; known: {sorted(REWARDS)}")
    parts = {name: REWARDS[name](completions, strict=strict, **columns) for name in weights}
    total = [sum(weights[name] * (parts[name][i] or 0.0) for name in weights) for i in range(len(completions))]
    return total, parts
