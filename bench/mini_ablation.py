"""What emoreason-mini's answers follow: the prior in its prompt, the AUs in its prompt, or the face it sees.

    python bench/mini_ablation.py --data ../shared/data/fer2013-dev --out out/bench/mini_ablation.json
    (make bench-mini-ablation; about 5 minutes on 2 cores)
    python bench/mini_ablation.py --model emoreason/models/weights/emoreason-mini   # the SFT base alone

The mini reads three things about a face: the expression prior's top emotions (a prompt line),
the AUs the front-end measured (prompt lines), and the face's pixels (the aligned crop, as the
image and as the face tokens). Each is swapped, one at a time, for another dev face's (a fixed
derangement, seed 0: every face gets a donor that is not itself, so each input keeps its own
distribution and only its link to the face is broken), and the shipped model (base + GRPO
adapter, greedy, the transformers backend) answers again. For each condition:
- accuracy against the face's own label (how much of the model's accuracy that input carries);
- `unchanged`: how often the answer is the one it gave with all three inputs its own;
- `follows_donor_prior`: how often the answer is the donor's prior's most likely emotion (with the
  prior swapped: 1.0 means the model copies whatever prior it is told; the donor's label, for
  the other two swaps, says whether the swapped input carries the answer).
The teacher (the embedded engine) is run through the same swaps for comparison: its decision
rule reads the prior and the AUs and never the pixels. Final key=value line; JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from emoreason import Analyzer  # noqa: E402
from emoreason.imageio import load_image  # noqa: E402
from emoreason.labels import BASIC7  # noqa: E402
from emoreason.training.face_model import read_labelled_faces  # noqa: E402

SWAPS = {
    "own": (),
    "prior_swapped": ("expression_prior",),
    "aus_swapped": ("aus",),
    "pixels_swapped": ("aligned_crop",),
}


def derangement(n: int, seed: int = 0) -> np.ndarray:
    """A permutation with no fixed point (each face's donor is another face)."""
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if n < 2 or not np.any(perm == np.arange(n)):
            return perm


def answers(analyzer: Analyzer, observations: list, images: list, batch: int = 16) -> list[str | None]:
    """Each face's answer, asked as the mini was trained (all labels, no answer list in the prompt)."""
    out: list[str | None] = []
    for start in range(0, len(observations), batch):
        items = [([o], img) for o, img in zip(observations[start : start + batch], images[start : start + batch])]
        results = analyzer.backend.analyze_batch(items, analyzer.labels)
        out += [faces[0].emotion if faces else None for faces in results]
    return out


def top(prior: dict[str, float] | None) -> str | None:
    return max(prior, key=prior.get) if prior else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013-dev")
    parser.add_argument("--limit", type=int, default=None, help="the first N faces only (a quick look)")
    parser.add_argument("--model", default=None, help="a mini base (default: the shipped one, with its GRPO adapter)")
    parser.add_argument(
        "--adapter", default=None, help="an adapter on --model (none: the base alone, e.g. the SFT stage)"
    )
    parser.add_argument("--out", default="out/bench/mini_ablation.json")
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows = [(str(p), y) for p, y in read_labelled_faces(args.data) if y in BASIC7][: args.limit]
    images = [load_image(p) for p, _ in rows]
    gold = [y for _, y in rows]
    with Analyzer(backend="embedded", face_mode="full") as teacher:
        per_image = teacher.frontend.observe_many(images)
        keep = [i for i, faces in enumerate(per_image) if isinstance(faces, list) and faces and faces[0].aus]
        observations = [per_image[i][0] for i in keep]
        images, gold = [images[i] for i in keep], [gold[i] for i in keep]
        donor = derangement(len(observations))
        swapped = {
            name: [
                dataclasses.replace(o, **{f: getattr(observations[d], f) for f in fields})
                for o, d in zip(observations, donor)
            ]
            for name, fields in SWAPS.items()
        }
        systems: dict[str, dict[str, list]] = {}
        systems["teacher"] = {n: answers(teacher, obs, images) for n, obs in swapped.items()}
    named = {"model": args.model, "adapter": args.adapter} if args.model else {}  # none: the shipped model
    with Analyzer(backend="transformers", face_mode="full", batch_size=16, **named) as mini:
        systems["mini"] = {n: answers(mini, obs, images) for n, obs in swapped.items()}

    donor_gold = [gold[d] for d in donor]
    donor_prior = [top(observations[d].expression_prior) for d in donor]
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for system, runs in systems.items():
        own = runs["own"]
        figures[system] = {}
        for name, pred in runs.items():
            row = {"accuracy": float(np.mean([p == g for p, g in zip(pred, gold)])),
                   "unchanged": float(np.mean([p == o for p, o in zip(pred, own)]))}  # fmt: skip
            if name == "prior_swapped":
                row["follows_donor_prior"] = float(np.mean([p == d for p, d in zip(pred, donor_prior)]))
            elif name != "own":
                row["follows_donor_label"] = float(np.mean([p == d for p, d in zip(pred, donor_gold)]))
            figures[system][name] = {k: round(v, 4) for k, v in row.items()}
    result = {"data": args.data, "model": args.model or "shipped emoreason-mini (base + GRPO adapter)",
              "adapter": args.adapter, "faces": len(observations), "donor_seed": 0, "systems": figures,
              "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(figures, indent=2))
    flat = {"faces": len(observations)}
    for system, rows_ in figures.items():
        for name, row in rows_.items():
            flat.update({f"{system}_{name}_{k}": v for k, v in row.items()})
    flat["seconds"] = result["seconds"]
    print(" ".join(f"{k}={v}" for k, v in flat.items()))


if __name__ == "__main__":
    main()
