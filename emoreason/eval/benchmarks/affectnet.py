"""AffectNet (Mollahosseini et al. 2017), manually annotated set: 7 or 8 classes, evaluated on the validation CSV.

The CSVs give each image's face box; the face is cropped from it before analysis.
Rows coded 8-10 (none, uncertain, no face) are not emotions and are left out, as is
contempt (7) for AffectNet-7.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .base import Benchmark, LayoutError, Sample, first_existing

LAYOUT = (
    "validation.csv / training.csv (subDirectory_filePath, face_x, face_y, face_width, face_height, "
    "expression, ...) and Manually_Annotated_Images/"
)
CODES = {0: "neutral", 1: "happiness", 2: "sadness", 3: "surprise", 4: "fear", 5: "disgust", 6: "anger", 7: "contempt"}
FILES = {"val": "validation.csv", "train": "training.csv"}


def reader(classes: int):
    def read(root: Path, split: str, fold: int | None = None) -> list[Sample]:
        table = first_existing([root / FILES[split], root / "Manually_Annotated_file_lists" / FILES[split]],
                               f"affectnet{classes}", LAYOUT)  # fmt: skip
        images = first_existing(
            [root / "Manually_Annotated_Images", root / "Manually_Annotated" / "Manually_Annotated_Images"],
            f"affectnet{classes}",
            LAYOUT,
        )
        samples = []
        with open(table, newline="", encoding="utf-8") as fh:
            rows = csv.DictReader(fh)
            missing = {"subDirectory_filePath", "expression", "face_x"} - set(rows.fieldnames or [])
            if missing:
                raise LayoutError(
                    f"affectnet{classes}: {table} lacks the columns {sorted(missing)} (expected {LAYOUT})"
                )
            for row in rows:
                code = int(row["expression"])
                if code >= classes:
                    continue
                box = tuple(int(float(row[k])) for k in ("face_x", "face_y", "face_width", "face_height"))
                path = row["subDirectory_filePath"]
                samples.append(Sample(id=path, image=images / path, box=box, emotion=CODES[code]))
        return samples

    return read


def benchmark(classes: int) -> Benchmark:
    return Benchmark(
        name=f"affectnet{classes}",
        title=f"AffectNet-{classes}",
        labels=tuple(CODES[c] for c in range(classes)),
        au_protocol=None,
        face_mode="full",  # cropped to the annotated face box
        layout=LAYOUT,
        reader=reader(classes),
        splits=("val", "train"),
    )


BENCHMARKS = [benchmark(7), benchmark(8)]
