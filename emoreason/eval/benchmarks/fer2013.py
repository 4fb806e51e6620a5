"""FER2013 (Goodfellow et al. 2013) and FERPlus (Barsoum et al. 2016): 48x48 grey faces in one pixels CSV.

FER2013: `fer2013.csv` (emotion, pixels, Usage); test = PrivateTest, val = PublicTest.
FERPlus: its `fer2013new.csv` (10 annotators' votes per image, same row order as
fer2013.csv) beside `fer2013.csv`; the label is the majority vote over the 8 emotions,
and images whose majority is "unknown" or "not a face" are left out (the majority-vote
protocol of the FERPlus paper).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .base import Benchmark, LayoutError, Sample, need

FER_LAYOUT = "fer2013.csv (emotion, pixels, Usage)"
PLUS_LAYOUT = "fer2013new.csv (FERPlus votes) beside fer2013.csv"
FER_CODES = {0: "anger", 1: "disgust", 2: "fear", 3: "happiness", 4: "sadness", 5: "surprise", 6: "neutral"}
USAGE = {"test": "PrivateTest", "val": "PublicTest", "train": "Training"}
PLUS_VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


def _fer_rows(root: Path, layout: str, name: str) -> list[dict]:
    path = need(root / "fer2013.csv", name, layout)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"emotion", "pixels", "Usage"} <= set(rows[0]):
        raise LayoutError(f"{name}: {path} lacks the columns emotion, pixels, Usage (expected {layout})")
    return rows


def _pixels(text: str) -> np.ndarray:
    values = np.array(text.split(), dtype=np.uint8)
    side = int(round(len(values) ** 0.5))
    return values.reshape(side, side)


def read_fer2013(root: Path, split: str, fold: int | None = None) -> list[Sample]:
    samples = []
    for i, row in enumerate(_fer_rows(root, FER_LAYOUT, "fer2013")):
        if row["Usage"] != USAGE[split]:
            continue
        samples.append(Sample(id=f"{row['Usage']}_{i}", pixels=_pixels(row["pixels"]),
                              emotion=FER_CODES[int(row["emotion"])]))  # fmt: skip
    return samples


def read_ferplus(root: Path, split: str, fold: int | None = None) -> list[Sample]:
    votes_path = need(root / "fer2013new.csv", "ferplus", PLUS_LAYOUT)
    pixels = _fer_rows(root, PLUS_LAYOUT, "ferplus")
    with open(votes_path, newline="", encoding="utf-8") as fh:
        votes = list(csv.reader(fh))
    header, votes = votes[0], votes[1:]
    if len(header) < 12 or len(votes) != len(pixels):
        raise LayoutError(f"ferplus: {votes_path} must have Usage, Image name and 10 vote columns, one row per "
                          f"fer2013.csv row ({len(votes)} vs {len(pixels)})")  # fmt: skip
    samples = []
    for row, fer in zip(votes, pixels):
        usage, name, counts = row[0], row[1], [int(float(v or 0)) for v in row[2:12]]
        if usage != USAGE[split] or not name.strip():
            continue  # FERPlus drops some FER2013 images (no name)
        best = int(np.argmax(counts))
        if best >= len(PLUS_VOTES) or counts[best] == 0:  # unknown / not a face wins
            continue
        samples.append(Sample(id=Path(name).stem, pixels=_pixels(fer["pixels"]), emotion=PLUS_VOTES[best]))
    return samples


BENCHMARKS = [
    Benchmark(name="fer2013", title="FER2013", labels=tuple(FER_CODES[c] for c in (6, 3, 4, 5, 2, 1, 0)),
              au_protocol=None, face_mode="full", layout=FER_LAYOUT, reader=read_fer2013,
              splits=("test", "val", "train")),
    Benchmark(name="ferplus", title="FERPlus (majority vote)", labels=PLUS_VOTES[:1] + ("happiness", "sadness",
              "surprise", "fear", "disgust", "anger", "contempt"), au_protocol=None, face_mode="full",
              layout=PLUS_LAYOUT, reader=read_ferplus, splits=("test", "val", "train")),
]  # fmt: skip
