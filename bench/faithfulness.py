"""Are the embedded engine's analyses faithful, on real faces and under restricted label sets?

    python bench/faithfulness.py --dev ../shared/data/fer2013-dev --out out/bench/faithfulness.json

Runs the default analyzer (front-end + embedded engine with the fitted decision rule) on:
the two sample photos (the astronaut, and it beside its mirror image) and the development faces,
each with four label sets: all eight emotions, the basic seven, {neutral, sadness} and
{happiness, anger, fear}. For every analysis: the faithfulness invariants (faithfulness.py:
no unmeasured AU cited, no measured AU denied, no "at rest" on an active face, no prior
misstated, no intensity contradicted), the
reasoning-answer consistency, and whether the restricted label set changed the measurements
(it must not). On the dev faces the accuracy of the full-label answers is reported beside the
prior alone. Prints a final key=value line; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emoreason.analyzer import Analyzer  # noqa: E402
from emoreason.faithfulness import breaks, measured_present  # noqa: E402
from emoreason.labels import BASIC7, EMOTIONS  # noqa: E402
from emoreason.rewards import consistency_score  # noqa: E402
from emoreason.samples import write_sample_images  # noqa: E402
from emoreason.training.face_model import read_labelled_faces  # noqa: E402

LABEL_SETS = {"all": list(EMOTIONS), "basic7": list(BASIC7), "neutral-sadness": ["neutral", "sadness"],
              "happiness-anger-fear": ["happiness", "anger", "fear"]}  # fmt: skip


def score(analyzer: Analyzer, images: list[tuple[str, str | None]], face_mode: str) -> dict:
    """Invariant breaks, consistency and measurement stability over every face of every image x label set."""
    faces = broken = consistent = changed = 0
    reasons: dict[str, int] = {}
    correct = prior_correct = labelled = 0
    for path, gold in images:
        reference = None
        for name, labels in LABEL_SETS.items():
            result = analyzer.analyze(path, face_mode=face_mode, labels=labels)
            for face in result.faces:
                faces += 1
                present = measured_present(face)
                found = breaks(face.text, present, face.expression_prior) if present is not None else []
                broken += bool(found)
                for reason in found:
                    # "cites unmeasured", "misstates the expression prior", "misstates an intensity"
                    kind = "misstates an intensity" if "intensity" in reason else reason.split(":")[0].split(" AU")[0]
                    reasons[kind] = reasons.get(kind, 0) + 1
                consistent += consistency_score(face.text) == 1.0
            measured = [[(a.code, a.intensity) for a in f.aus] for f in result.faces]
            if reference is None:
                reference = measured
            changed += measured != reference
            if name == "basic7" and gold and result.faces:
                face, labelled = result.faces[0], labelled + 1
                correct += face.emotion == gold
                prior = face.expression_prior or {}
                prior_correct += bool(prior) and max(prior, key=prior.get) == gold
    out = {"analyses": faces, "invariant_breaks": broken, "break_reasons": reasons,
           "consistency": consistent / max(1, faces), "label_set_changed_measurements": changed}  # fmt: skip
    if labelled:
        out.update(accuracy=correct / labelled, prior_accuracy=prior_correct / labelled, labelled=labelled)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", default=None, help="a folder with labels.csv (the development faces)")
    parser.add_argument("--out", default="out/bench/faithfulness.json")
    args = parser.parse_args()

    analyzer = Analyzer(backend="embedded")
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        photos = [(str(p), None) for p in write_sample_images(tmp)]
        result["photos"] = score(analyzer, photos, face_mode="detect")
    if args.dev:
        rows = [(str(path), label) for path, label in read_labelled_faces(args.dev)]
        result["dev"] = score(analyzer, rows, face_mode="full")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    line = {f"{part}_{k}": v for part, r in result.items() for k, v in r.items() if not isinstance(v, dict)}
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in line.items()))


if __name__ == "__main__":
    main()
