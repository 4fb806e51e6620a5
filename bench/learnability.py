"""Proof that training learns: a tiny random VLM, SFT then GRPO on CPU, on procedural faces with known AUs.

    python bench/learnability.py --out out/bench/learnability.json            # full run (12 min on 2 cores)
    python bench/learnability.py --train 48 --test 16 --sft-steps 150 --grpo-steps 2   # the quick version (tests)

The real benchmarks can't be downloaded here, so the data is made: schematic faces drawn
from a known AU vector (emoreason/data/procedural.py), 8 emotions in turn. The training
set's analyses are written by `data synth` with the gold AUs and labels (the embedded
engine, checked by the parser). From the offline tiny random Qwen2.5-VL, the pipeline runs
exactly as a user would run it: `train sft` with the tiny recipe, trained in full (`finetune=full`:
a LoRA on a random base learns little, as emoreason-mini's recipe says), then `train grpo`, a
LoRA on that model; after each stage the model analyses the held-out faces through `Analyzer`
(the transformers backend, greedy), and the same reward code scores it. Reported on the test
faces: emotion accuracy (chance 1/8), AU F1 of the AUs the model cites against the drawn
ones, format validity and the mean GRPO reward (the recipe's weighted sum), before SFT,
after SFT and after GRPO; and the teacher's (the embedded engine, whose analyses of the
training faces are the SFT targets) on the same test faces (`acc_teacher`), the ceiling a
student of its text is read against. Prints a final line of key=value pairs; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from emoreason.data.converters import convert  # noqa: E402
from emoreason.data.procedural import make_faces  # noqa: E402
from emoreason.data.records import TrainingRecord, write_jsonl  # noqa: E402
from emoreason.data.synth import Synthesizer  # noqa: E402
from emoreason.labels import EMOTIONS  # noqa: E402
from emoreason.parsing import parse_output  # noqa: E402
from emoreason.rewards import au_f1, combined_reward  # noqa: E402
from emoreason.training.config import load_recipe  # noqa: E402

RECIPES = Path(__file__).resolve().parent.parent / "training" / "recipes" / "tiny"


def write_set(faces, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, face in enumerate(faces):
        path = folder / f"{name}_{i:04d}.png"
        Image.fromarray(face.image).save(path)
        records.append(
            TrainingRecord(
                id=f"{name}_{i:04d}",
                image=path.name,
                dataset="procedural",
                aus=sorted(face.aus),
                emotion=face.emotion,
                root=str(folder),
            )  # fmt: skip
        )
    return write_jsonl(records, folder / f"{name}.jsonl")


def evaluate(model: str | None, adapter: str | None, test_file: Path, weights: dict[str, float], tokens: int) -> dict:
    """The model (None: the embedded engine, the teacher) on the test faces."""
    from emoreason import Analyzer

    records, _ = convert(test_file)
    options = {"model": model, "adapter": adapter, "max_new_tokens": tokens, "batch_size": 16}
    backend = "transformers" if model is not None else "embedded"
    if model is None:
        options = {}
    # No label list: the prompt the recipes train on (labels: null) and that `analyze` sends by default. A label
    # list adds an "Answer with exactly one of" line the model never saw in training.
    with Analyzer(backend=backend, face_mode="full", **options) as analyzer:
        texts = [
            r.faces[0].text if r.faces else "" for r in analyzer.analyze_many([str(r.image_path) for r in records])
        ]
    parsed = [parse_output(t, EMOTIONS) for t in texts]
    total, _ = combined_reward(texts, weights, emotion=[r.emotion for r in records], aus=[r.aus for r in records])
    return {
        "accuracy": float(np.mean([p.emotion == r.emotion for p, r in zip(parsed, records)])),
        "au_f1": float(np.mean([au_f1(p.aus, r.aus) for p, r in zip(parsed, records)])),
        "format_valid": float(np.mean([p.format_valid for p in parsed])),
        "reward": float(np.mean(total)),
        "example": texts[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=240, help="training faces")
    parser.add_argument("--test", type=int, default=64, help="held-apart test faces")
    parser.add_argument("--sft-steps", type=int, default=1200)
    parser.add_argument("--sft-lr", type=float, default=1e-3, help="SFT learning rate (every weight, from random)")
    parser.add_argument("--grpo-steps", type=int, default=30)
    parser.add_argument("--tokens", type=int, default=256, help="max new tokens when evaluating")
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--out", default="out/bench/learnability.json")
    args = parser.parse_args()
    t_start = time.perf_counter()
    work = Path(args.work or tempfile.mkdtemp(prefix="learnability-"))
    emotions = tuple(EMOTIONS)

    train_file = write_set(make_faces(args.train, emotions, seed=0), work / "train", "train")
    test_file = write_set(make_faces(args.test, emotions, seed=1), work / "test", "test")
    records, _ = convert(train_file)
    synth = Synthesizer(face_mode="full")
    explained = [r.record for r in synth.run(records) if r.accepted]
    synth.close()
    sft_file = write_jsonl(explained, work / "train" / "sft.jsonl")
    print(f"{len(explained)} of {len(records)} training faces explained by data synth")

    model = str(work / "tiny-qwen2_5_vl")
    common = [f"model={model}", "trainer.report_to=none"]
    sft = load_recipe(
        RECIPES / "sft.yaml",
        [*common, f"train_file={sft_file}", f"trainer.output_dir={work / 'sft'}", "finetune=full",
         f"trainer.learning_rate={args.sft_lr}", "trainer.lr_scheduler_type=cosine", "trainer.warmup_steps=0.05",
         f"trainer.max_steps={args.sft_steps}", f"trainer.save_steps={args.sft_steps}"],
    )  # fmt: skip
    grpo = load_recipe(
        RECIPES / "grpo.yaml",
        [f"model={work / 'sft' / 'model'}", "trainer.report_to=none", f"train_file={train_file}",
         f"trainer.output_dir={work / 'grpo'}", "adapter=null", f"trainer.max_steps={args.grpo_steps}",
         f"trainer.save_steps={args.grpo_steps}"],
    )  # fmt: skip
    from emoreason.tiny import make_tiny_model
    from emoreason.training.grpo import run_grpo
    from emoreason.training.sft import run_sft

    make_tiny_model(model, "qwen2_5_vl")
    stages = {"teacher": evaluate(None, None, test_file, grpo.rewards, args.tokens)}
    stages["before"] = evaluate(model, None, test_file, grpo.rewards, args.tokens)
    t0 = time.perf_counter()
    sft_model = run_sft(sft)
    sft_s = time.perf_counter() - t0
    stages["sft"] = evaluate(str(sft_model), None, test_file, grpo.rewards, args.tokens)
    t0 = time.perf_counter()
    grpo_adapter = run_grpo(grpo)
    grpo_s = time.perf_counter() - t0
    stages["grpo"] = evaluate(str(sft_model), str(grpo_adapter), test_file, grpo.rewards, args.tokens)

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
        "train_faces": len(records),
        "sft_examples": len(explained),
        "test_faces": args.test,
        "sft_steps": args.sft_steps,
        "grpo_steps": args.grpo_steps,
        "chance_accuracy": 1 / len(emotions),
        "stages": stages,
        "sft_seconds": sft_s,
        "grpo_seconds": grpo_s,
        "total_seconds": time.perf_counter() - t_start,
    }
    for stage in ("teacher", "before", "sft", "grpo"):
        for metric in ("accuracy", "au_f1", "format_valid", "reward"):
            result[f"{metric}_{stage}"] = stages[stage][metric]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    for stage in ("teacher", "before", "sft", "grpo"):
        print(f"{stage}: {stages[stage]['example'][:160]!r}")
    keys = [k for k in result if k.split("_")[-1] in ("teacher", "before", "sft", "grpo")] + ["total_seconds"]
    print(" ".join(f"{k.replace('accuracy', 'acc')}={result[k]:.3f}" for k in keys))


if __name__ == "__main__":
    main()
