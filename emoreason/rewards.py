"""Rewards for GRPO, and the per-sample scores evaluation reports: one implementation for both.

Every reward is a plain function `fn(completions, **columns) -> list[float | None]` (trl's
and open-r1's convention), registered by name in `REWARDS`; a recipe picks them by name with
weights. `completions` are the generated texts (or trl's conversational form, a list of
messages per completion); the columns are the dataset's: `emotion` (gold label or None) and
`aus` (gold AU codes, empty when the sample has none). All reading of the model's text goes
through `parsing.parse_output`, the negation-aware parser the backends use.

The per-sample functions underneath (`format_score`, `emotion_score`, `au_f1`,
`consistency_score`) are what `emoreason eval` aggregates into its metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .facs import supported_emotions
from .labels import normalize_label
from .parsing import is_well_formed, parse_output

RewardFn = Callable[..., list[float | None]]
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


def emotion_score(text: str, gold: str | None) -> float:
    """1 when the answer's label equals the gold label, else 0; 0.5 when there is no gold label.

    >>> emotion_score("<think>.</think><answer>Happy</answer>", "happiness")
    1.0
    >>> emotion_score("<think>.</think><answer>fear</answer>", None)
    0.5
    """
    gold_label = normalize_label(gold) if gold else None
    if gold_label is None:
        return 0.5
    parsed = parse_output(text)
    return 1.0 if parsed.label_valid and parsed.emotion == gold_label else 0.0


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


def au_score(text: str, gold: Sequence[int] | None) -> float:
    """Facial-R1's AU reward: 2*F1(cited, gold) - 1; -1 when no AU is cited; 0 when there are no gold AUs.

    Negated mentions ("no AU4") are not cited.

    >>> au_score("<think>(AU6) (AU12), no AU4</think><answer>happiness</answer>", [6, 12])
    1.0
    >>> au_score("<think>smiling</think><answer>happiness</answer>", [6, 12])
    -1.0
    >>> au_score("<think>(AU6)</think><answer>happiness</answer>", [])
    0.0
    """
    if not gold:
        return 0.0
    cited = parse_output(text).aus
    if not cited:
        return -1.0
    return 2.0 * au_f1(cited, gold) - 1.0


def consistency_score(text: str) -> float:
    """1 when the answer is an emotion that the AUs cited in the think block support, else 0.

    "Support" is the FACS prototype table the embedded engine reasons with
    (`facs.supported_emotions`): at least half of the emotion's core AUs are cited; a
    neutral answer is supported when no emotion-defining AU is cited.

    >>> consistency_score("<think>(AU6) and (AU12)</think><answer>happiness</answer>")
    1.0
    >>> consistency_score("<think>(AU6) and (AU12)</think><answer>anger</answer>")
    0.0
    """
    parsed = parse_output(text)
    if parsed.emotion is None or not parsed.label_valid:
        return 0.0
    return 1.0 if parsed.emotion in supported_emotions(parsed.aus) else 0.0


# ------------------------------------------------------------- GRPO rewards
@register("format")
def format_reward(completions: Sequence[Any], **_: Any) -> list[float | None]:
    """Format reward per completion.

    >>> format_reward(["<think>a</think><answer>fear</answer>", "fear"])
    [1.0, 0.0]
    """
    return [format_score(completion_text(c)) for c in completions]


@register("emotion")
def emotion_reward(completions: Sequence[Any], emotion: Sequence[str | None] | None = None, **_: Any) -> list:
    """Emotion accuracy per completion against the `emotion` column.

    >>> emotion_reward(["<think>a</think><answer>joy</answer>"] * 2, emotion=["happiness", "sadness"])
    [1.0, 0.0]
    """
    golds = emotion if emotion is not None else [None] * len(completions)
    return [emotion_score(completion_text(c), g) for c, g in zip(completions, golds)]


@register("au")
def au_reward(completions: Sequence[Any], aus: Sequence[Sequence[int] | None] | None = None, **_: Any) -> list:
    """Facial-R1's AU reward per completion against the `aus` column.

    >>> [round(r, 3) for r in au_reward(["<think>(AU4) (AU7)</think><answer>anger</answer>"], aus=[[4, 5, 7, 23]])]
    [0.333]
    """
    golds = aus if aus is not None else [None] * len(completions)
    return [au_score(completion_text(c), g) for c, g in zip(completions, golds)]


@register("consistency")
def consistency_reward(completions: Sequence[Any], **_: Any) -> list[float | None]:
    """Reasoning-answer consistency per completion (no labels needed).

    >>> consistency_reward(["<think>(AU1) (AU2) (AU5) (AU26)</think><answer>surprise</answer>"])
    [1.0]
    """
    return [consistency_score(completion_text(c)) for c in completions]


def combined_reward(
    completions: Sequence[Any], weights: dict[str, float], **columns: Any
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
    parts = {name: REWARDS[name](completions, **columns) for name in weights}
    total = [sum(weights[name] * (parts[name][i] or 0.0) for name in weights) for i in range(len(completions))]
    return total, parts
