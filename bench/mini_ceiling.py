"""How far can anything go on what the mini sees? A ceiling for emoreason-mini's accuracy, from its own inputs.

    python bench/mini_ceiling.py --data ../shared/data --out out/bench/mini_ceiling.json    # (make bench-mini-ceiling)

The mini reads a face through the face model: the expression prior in its prompt (the top three
labels with their probabilities) and the face tokens (the face model's last feature map). Whatever
the VLM learns from its training faces, it cannot know more about a face than those carry. So fit
the strongest simple readers of the same signals on the same faces the mini trains on (FER2013
train faces of the face model's `vlm` split + publictest: the face model never trained on them)
and score them on the dev faces, beside the prior's own answer:
- prior: the face model's most likely emotion (what the teacher starts from);
- logits: multinomial logistic regression on the prior's seven logits (a recalibration that also
  learns FER2013's class frequencies, which the logit-adjusted prior leaves out on purpose);
- features: the same on the face tokens' pooled 256-d feature map;
- both: logits and features together.
Each reader at three regularisation strengths; the best on dev is reported as an upper bound (a
choice made on dev, so it flatters the readers, not the mini). Final key=value line; JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from emoreason.face.face_model import FaceModel  # noqa: E402
from emoreason.labels import BASIC7  # noqa: E402
from emoreason.training.face_model import read_labelled_faces, shipped_split_of  # noqa: E402


def signals(model: FaceModel, folder: Path, vlm_split_only: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits (n, 7), pooled features (n, 256), labels (n,)) of a folder's FER2013 faces."""
    rows = [(p, y) for p, y in read_labelled_faces(folder) if y in BASIC7]
    if vlm_split_only:
        rows = [(p, y) for p, y in rows if shipped_split_of(p.name) == "vlm"]
    logits, features = [], []
    for i in range(0, len(rows), 256):
        faces = [np.asarray(Image.open(p).convert("RGB")) for p, _ in rows[i : i + 256]]
        logits.append(model.logits(faces).numpy())
        features.append(model.features(faces).mean(dim=(2, 3)).numpy())
    labels = np.array([BASIC7.index(y) for _, y in rows])
    return np.concatenate(logits), np.concatenate(features), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data", help="holds fer2013/{train,publictest} and fer2013-dev")
    parser.add_argument("--out", default="out/bench/mini_ceiling.json")
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    model, data = FaceModel(), Path(args.data)
    parts = [signals(model, data / "fer2013" / "train", True), signals(model, data / "fer2013" / "publictest", False)]
    train = [np.concatenate([p[k] for p in parts]) for k in range(3)]
    dev = signals(model, data / "fer2013-dev", False)
    accuracy: dict[str, float] = {"prior": float((dev[0].argmax(1) == dev[2]).mean())}
    for name, columns in (("logits", (0,)), ("features", (1,)), ("both", (0, 1))):
        x, x_dev = (np.hstack([s[c] for c in columns]) for s in (train, dev))
        scores = []
        for c in (0.01, 0.1, 1.0):
            reader = LogisticRegression(C=c, max_iter=3000).fit(x, train[2])
            scores.append(float((reader.predict(x_dev) == dev[2]).mean()))
        accuracy[name] = max(scores)
    result = {
        "face_model": model.name,
        "train_faces": int(len(train[2])),
        "dev_faces": int(len(dev[2])),
        "accuracy": accuracy,
        "machine": f"{os.cpu_count()} cores",
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    figures = {f"acc_{k}": v for k, v in accuracy.items()} | {"train_faces": result["train_faces"]}
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
