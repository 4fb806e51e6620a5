"""Benchmark metrics, computed from the per-sample scores the GRPO rewards use (emoreason/rewards.py).

Emotion: accuracy, macro-F1, UAR (mean per-class recall), WAR (recall weighted by class
size, which equals accuracy) and the confusion matrix; a missing or invalid answer counts
as wrong (column "none"). AUs: F1 per AU over the samples, and its mean, under the
benchmark's AU protocol; for the AUs the reasoning cites (what the AU reward scores) and for
the front-end's detector. Reasoning: format validity and answer/AU consistency (the format
and consistency rewards, averaged), ROUGE-L against reference reasoning. Confidence:
expected calibration error and the reliability diagram's bins.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from ..faithfulness import breaks
from ..rewards import consistency_score, format_score

NONE = "none"  # the confusion-matrix column for "no valid answer"


# ----------------------------------------------------------------- emotion
def emotion_metrics(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]) -> dict[str, Any]:
    """Classification metrics over the samples that have a gold label.

    >>> m = emotion_metrics(["anger", "anger", "fear"], ["anger", None, "fear"], ["anger", "fear"])
    >>> round(m["accuracy"], 3), round(m["uar"], 3), m["confusion"]["anger"]
    (0.667, 0.75, {'anger': 1, 'fear': 0, 'none': 1})
    """
    labels = list(labels)
    columns = [*labels, NONE]
    confusion = {g: dict.fromkeys(columns, 0) for g in labels}
    for g, p in zip(gold, pred):
        confusion[g][p if p in labels else NONE] += 1
    n = len(gold)
    per_class = {}
    for c in labels:
        tp = confusion[c][c]
        support = sum(confusion[c].values())
        predicted = sum(confusion[g][c] for g in labels)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        per_class[c] = {
            "support": support,
            "precision": precision,
            "recall": recall,
            "f1": f1_from_counts(tp, predicted - tp, support - tp),
        }
    present = [c for c in labels if per_class[c]["support"]]  # classes the split has
    accuracy = sum(confusion[c][c] for c in labels) / n if n else 0.0
    return {
        "n": n,
        "accuracy": accuracy,
        "macro_f1": _mean(per_class[c]["f1"] for c in present),
        "uar": _mean(per_class[c]["recall"] for c in present),
        "war": sum(per_class[c]["recall"] * per_class[c]["support"] for c in present) / n if n else 0.0,
        "answered": sum(p in labels for p in pred) / n if n else 0.0,
        "per_class": per_class,
        "confusion": confusion,
    }


def bootstrap_ci(
    gold: Sequence[str],
    pred: Sequence[str | None],
    labels: Sequence[str],
    gold_aus: Sequence[Sequence[int]] | None = None,
    cited_aus: Sequence[Sequence[int]] | None = None,
    protocol: Sequence[int] = (),
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, list[float]]:
    """95% percentile-bootstrap intervals (samples drawn with replacement) for accuracy, macro-F1 and
    UAR, computed exactly as `emotion_metrics` does, and for the mean cited-AU F1 when AU labels are given.

    >>> ci = bootstrap_ci(["anger"] * 50 + ["fear"] * 50, ["anger"] * 40 + ["fear"] * 60, ["anger", "fear"])
    >>> ci["accuracy"][0] < 0.9 < ci["accuracy"][1]
    True
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {}
    k = len(labels)
    index = {c: i for i, c in enumerate(labels)}
    if gold:
        g = np.array([index[x] for x in gold])
        p = np.array([index.get(x, k) if x is not None else k for x in pred])  # k: no valid answer
        draws = rng.integers(0, len(g), size=(resamples, len(g)))
        gs, ps = g[draws], p[draws]
        hit = gs == ps
        support = np.stack([(gs == c).sum(1) for c in range(k)], 1)
        predicted = np.stack([(ps == c).sum(1) for c in range(k)], 1)
        tp = np.stack([(hit & (gs == c)).sum(1) for c in range(k)], 1)
        present = support > 0
        recall = np.where(present, tp / np.maximum(support, 1), 0.0)
        f1 = np.where(support + predicted > 0, 2 * tp / np.maximum(support + predicted, 1), 0.0)
        out["accuracy"] = _interval(hit.mean(1))
        out["uar"] = _interval((recall * present).sum(1) / np.maximum(present.sum(1), 1))
        out["macro_f1"] = _interval((f1 * present).sum(1) / np.maximum(present.sum(1), 1))
    if gold_aus is not None and cited_aus is not None and protocol and len(gold_aus):
        gold_m = np.array([[c in set(a) for c in protocol] for a in gold_aus])
        pred_m = np.array([[c in set(a) for c in protocol] for a in cited_aus])
        draws = rng.integers(0, len(gold_m), size=(resamples, len(gold_m)))
        gm, pm = gold_m[draws], pred_m[draws]
        tp, fp, fn = (gm & pm).sum(1), (~gm & pm).sum(1), (gm & ~pm).sum(1)
        out["au_cited_f1"] = _interval(np.where(tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0).mean(1))
    return out


def _interval(values) -> list[float]:
    import numpy as np

    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def paired_comparison(gold: Sequence[str], **answers: Sequence[str | None]) -> dict[str, Any]:
    """Two systems' answers on the same items, by name: how many only each gets right (`{name}_only_right`), and
    McNemar's exact two-sided p for that split (a binomial test on the discordant items). Whether the two differ
    by more than the items' draw: both answer the same items, so two unpaired intervals overstate the noise in
    their difference.

    >>> paired_comparison(["fear"] * 10, prior=["fear"] * 9 + ["anger"], rule=["fear"] * 3 + ["anger"] * 7)
    {'prior_only_right': 6, 'rule_only_right': 0, 'mcnemar_p': 0.03125}
    """
    if len(answers) != 2:
        raise ValueError(f"paired_comparison compares two systems, got {len(answers)}: {', '.join(answers)}")
    (a_name, a), (b_name, b) = answers.items()
    a_only = sum(x == y != z for y, x, z in zip(gold, a, b))
    b_only = sum(z == y != x for y, x, z in zip(gold, a, b))
    n, k = a_only + b_only, min(a_only, b_only)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
    return {f"{a_name}_only_right": a_only, f"{b_name}_only_right": b_only, "mcnemar_p": p}


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """F1 from counts; 0 when there is nothing to score.

    >>> f1_from_counts(2, 1, 1)
    0.6666666666666666
    """
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


# --------------------------------------------------------------------- AUs
def au_metrics(gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]], protocol: Sequence[int]) -> dict:
    """Per-AU F1 over samples (binary: the AU is present or not), for the protocol's AUs.

    >>> m = au_metrics([[6, 12], [4]], [[6, 12, 25], []], protocol=[4, 6, 12])
    >>> m["per_au"]["AU4"]["f1"], m["per_au"]["AU12"]["f1"], round(m["mean_f1"], 3)
    (0.0, 1.0, 0.667)
    """
    per_au = {}
    for code in protocol:
        tp = sum(code in g and code in p for g, p in zip(gold, pred))
        fp = sum(code not in g and code in p for g, p in zip(gold, pred))
        fn = sum(code in g and code not in p for g, p in zip(gold, pred))
        per_au[f"AU{code}"] = {"support": tp + fn, "f1": f1_from_counts(tp, fp, fn)}
    return {"n": len(gold), "per_au": per_au, "mean_f1": _mean(v["f1"] for v in per_au.values())}


# --------------------------------------------------------------- reasoning
def reasoning_metrics(
    texts: Sequence[str],
    references: Sequence[str | None],
    measured: Sequence[Sequence[int] | dict[int, float] | None] | None = None,
    priors: Sequence[dict[str, float] | None] | None = None,
) -> dict[str, Any]:
    """Format validity and consistency (the rewards' per-sample scores, averaged); faithfulness to what
    the front-end measured (the share of texts that break no invariant of faithfulness.py, over the faces
    whose AUs were measured; the stated probabilities checked where the expression prior is given);
    ROUGE-L where a reference exists.

    >>> m = reasoning_metrics(["<think>(AU12)</think><answer>happiness</answer>"] * 2, [None, None], [[12], [4]])
    >>> m["faithful"], m["invariant_breaks"]
    (0.5, {'cites unmeasured AU12': 1})
    """
    out: dict[str, Any] = {
        "format_valid": _mean(format_score(t) for t in texts),
        "consistency": _mean(consistency_score(t) for t in texts),
    }
    rows = zip(texts, measured or [None] * len(texts), priors or [None] * len(texts))
    scored = [(t, m, p) for t, m, p in rows if m is not None]
    if scored:
        found = [breaks(t, m, p) for t, m, p in scored]
        out["faithful"] = _mean(float(not b) for b in found)
        out["faithful_n"] = len(scored)
        counts: dict[str, int] = {}
        for b in found:
            for reason in b:
                counts[reason] = counts.get(reason, 0) + 1
        out["invariant_breaks"] = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    pairs = [(t, r) for t, r in zip(texts, references) if r]
    if pairs:
        out["rouge_l"] = _mean(rouge_l(t, r) for t, r in pairs)
        out["rouge_l_n"] = len(pairs)
    return out


def _tokens(text: str) -> list[str]:
    # rouge-score's default tokenizer: lower case, runs of [a-z0-9]
    return re.findall(r"[a-z0-9]+", text.lower())


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of tokens), as the rouge-score package computes it.

    >>> round(rouge_l("the cheeks are raised", "the cheeks raised"), 4)
    0.8571
    """
    c, r = _tokens(candidate), _tokens(reference)
    if not c or not r:
        return 0.0
    previous = [0] * (len(r) + 1)
    for token in c:
        current = [0]
        for j, ref_token in enumerate(r):
            current.append(previous[j] + 1 if token == ref_token else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(c), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


# ------------------------------------------------------------- calibration
def calibration(confidences: Sequence[float | None], correct: Sequence[bool], bins: int = 10) -> dict[str, Any]:
    """Expected calibration error over equal-width confidence bins, and the bins (reliability diagram).

    Samples without a confidence are left out (`coverage` says how many had one).

    >>> c = calibration([0.9, 0.9, 0.6, None], [True, False, True, True], bins=10)
    >>> round(c["ece"], 3), c["coverage"]
    (0.4, 0.75)
    """
    scored = [(float(p), bool(ok)) for p, ok in zip(confidences, correct) if p is not None]
    table: list[dict[str, float | None]] = []
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [(p, ok) for p, ok in scored if lo < p <= hi or (b == 0 and p == 0.0)]
        if members:
            confidence = _mean(p for p, _ in members)
            accuracy = _mean(float(ok) for _, ok in members)
            ece += len(members) / len(scored) * abs(accuracy - confidence)
            table.append({"lo": lo, "hi": hi, "n": len(members), "confidence": confidence, "accuracy": accuracy})
        else:
            table.append({"lo": lo, "hi": hi, "n": 0, "confidence": None, "accuracy": None})
    return {
        "ece": ece if scored else None,
        "coverage": len(scored) / len(confidences) if confidences else 0.0,
        "bins": table,
    }


def _mean(values: Any) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
