"""`emoreason train loop`: SFT -> GRPO -> the model explains unexplained images -> keep what agrees -> repeat.

Facial-R1's self-improving data synthesis, with emoreason's pieces:

    round k:  SFT on the current SFT set (records with a description)
              GRPO from that adapter on every labelled record (rewards need labels, not descriptions)
              the GRPO model writes analyses for the labelled records that have none (the pool),
              with the same prompt and backend `analyze` uses
              keep an analysis only if its format is valid, its emotion and cited AUs equal the
              labels, and it keeps faith with the AUs the front-end measured
              (data/synth.check_description); kept records join the SFT set, leave the pool

Each round lives in `out_dir/round-<k>/` (its SFT set, both runs, the accepted and rejected
analyses, `metrics.json`); a finished round is not redone, so a killed loop resumes at the
round it stopped in (and inside it, SFT/GRPO resume from their checkpoints).
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

from ..data.converters import convert
from ..data.records import TrainingRecord, write_jsonl
from ..data.synth import check_description
from ..defaults import MAX_NEW_TOKENS
from ..faithfulness import measured_present
from .config import Recipe
from .grpo import run_grpo
from .sft import run_sft


def run_loop(
    sft: Recipe,
    grpo: Recipe,
    rounds: int,
    out_dir: str | Path,
    max_new_tokens: int = MAX_NEW_TOKENS,
    pool_limit: int | None = None,
) -> list[dict]:
    """Run `rounds` rounds; each explains at most `pool_limit` unexplained records (a seeded sample; all of
    them by default). Returns each round's metrics."""
    out = Path(out_dir)
    records, errors = convert(sft.train_file)
    if errors:
        print(f"{len(errors)} records skipped while reading {sft.train_file} (run `emoreason data validate`)")
    explained = [r for r in records if r.description]
    pool = [r for r in records if not r.description and r.emotion]
    history = []
    for k in range(rounds):
        round_dir = out / f"round-{k}"
        metrics_file = round_dir / "metrics.json"
        if metrics_file.exists():  # finished before a kill: take its result and go on
            metrics = json.loads(metrics_file.read_text())
            explained, pool = _apply(round_dir, explained, pool)
            history.append(metrics)
            continue
        round_dir.mkdir(parents=True, exist_ok=True)
        sft_file = write_jsonl(explained, round_dir / "sft.jsonl")
        all_file = write_jsonl(explained + pool, round_dir / "grpo.jsonl")

        sft_k = _with(sft, train_file=str(sft_file), output_dir=round_dir / "sft")
        sft_adapter = run_sft(sft_k)
        # GRPO continues the SFT adapter; after SFT in full (`finetune: full`) the SFT model is GRPO's base,
        # and GRPO trains a new LoRA on it.
        full = sft.finetune == "full"
        start = {"model": str(sft_adapter), "adapter": None} if full else {"adapter": str(sft_adapter)}
        grpo_k = _with(grpo, train_file=str(all_file), output_dir=round_dir / "grpo", **start)
        grpo_adapter = run_grpo(grpo_k)

        explain = _sample(pool, pool_limit, seed=k)
        accepted, rejected = synthesize(grpo_k, grpo_adapter, explain, max_new_tokens)
        _write_outcome(round_dir, accepted, rejected)
        metrics = {
            "round": k,
            "sft_records": len(explained),
            "pool_before": len(pool),
            "explained": len(explain),
            "accepted": len(accepted),
            "rejected": len(rejected),
            "acceptance_rate": len(accepted) / max(1, len(explain)),
            "sft_adapter": str(sft_adapter),
            "grpo_adapter": str(grpo_adapter),
            "grpo_last_log": _last_log(round_dir / "grpo"),
        }
        metrics_file.write_text(json.dumps(metrics, indent=2))
        explained, pool = _apply(round_dir, explained, pool)
        history.append(metrics)
        print(f"round {k}: {len(accepted)} of {len(explain)} unexplained records explained and kept")
    (out / "history.json").write_text(json.dumps(history, indent=2))
    return history


def synthesize(
    recipe: Recipe, adapter: Path, pool: list[TrainingRecord], max_new_tokens: int
) -> tuple[list[TrainingRecord], list[tuple[TrainingRecord, str, str]]]:
    """The adapted model explains each pool record: (accepted records with descriptions, [(record, reason, text)])."""
    from ..analyzer import Analyzer

    accepted, rejected = [], []
    if not pool:
        return accepted, rejected
    with Analyzer(backend="transformers", face_mode=recipe.face_mode, labels=recipe.labels, model=recipe.model,
                  adapter=str(adapter), max_new_tokens=max_new_tokens) as analyzer:  # fmt: skip
        for record, result in zip(pool, analyzer.analyze_many([str(r.image_path) for r in pool])):
            if result.error or not result.faces:
                rejected.append((record, result.error or "no face found", ""))
                continue
            face = result.faces[0]
            # the labels, and what the front-end measured (the AUs, their intensities, the expression prior): a text
            # that breaks an invariant of faithfulness.py is not kept, as in `data synth`
            measured = measured_present(face)
            _, detail = check_description(face.text, record.emotion, record.aus, measured, face.expression_prior)
            text = face.text
            if detail:
                rejected.append((record, detail, text))
            else:
                accepted.append(replace(record, description=text))
    return accepted, rejected


def _write_outcome(round_dir: Path, accepted: list[TrainingRecord], rejected: list[tuple[TrainingRecord, str, str]]):
    """accepted.jsonl (the next round's new SFT records) and rejected.jsonl (each with why, and its analysis)."""
    write_jsonl(accepted, round_dir / "accepted.jsonl")
    (round_dir / "rejected.jsonl").write_text(
        "".join(json.dumps({**r.to_json(), "reason": why, "analysis": text}) + "\n" for r, why, text in rejected)
    )


def _sample(pool: list[TrainingRecord], limit: int | None, seed: int) -> list[TrainingRecord]:
    """At most `limit` records of the pool, in pool order (a seeded sample: the same on every machine)."""
    import random

    if limit is None or len(pool) <= limit:
        return pool
    keep = set(random.Random(seed).sample(range(len(pool)), limit))
    return [r for i, r in enumerate(pool) if i in keep]


def _apply(round_dir: Path, explained: list[TrainingRecord], pool: list[TrainingRecord]):
    """Move a finished round's accepted records from the pool into the SFT set."""
    accepted, _ = convert(round_dir / "accepted.jsonl") if (round_dir / "accepted.jsonl").stat().st_size else ([], [])
    ids = {r.id for r in accepted}
    return explained + accepted, [r for r in pool if r.id not in ids]


def _with(recipe: Recipe, output_dir: Path, **changes) -> Recipe:
    new = copy.deepcopy(recipe)
    for key, value in changes.items():
        setattr(new, key, value)
    new.trainer = {**new.trainer, "output_dir": str(output_dir)}
    return new


def _last_log(run_dir: Path) -> dict:
    states = sorted(run_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if not states:
        return {}
    logs = [e for e in json.loads(states[-1].read_text())["log_history"] if "loss" in e]
    return logs[-1] if logs else {}
