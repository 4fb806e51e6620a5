"""BP4D-Spontaneous (Zhang et al. 2014): AU occurrence per frame, 41 subjects x 8 tasks; the BP4D-12 protocol.

Labels: `AUCoding/AU_OCC/F001_T1.csv` (Frame, then one column per AU code; 1 present, 0
absent, 9 unknown: frames with an unknown protocol AU are left out). Frames:
`2DFaces/F001/T1/<frame>.jpg` (or `Sequences/`). Subject-exclusive folds as for DISFA.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ...facs import AU_PROTOCOLS
from .base import Benchmark, LayoutError, Sample, first_existing, frame_index, subject_fold

LAYOUT = "AUCoding/AU_OCC/<subject>_<task>.csv (Frame, AU columns 0/1/9) and 2DFaces/<subject>/<task>/<frame>.jpg"
PROTOCOL = AU_PROTOCOLS["bp4d12"]


def read(root: Path, split: str, fold: int | None = None) -> list[Sample]:
    labels = first_existing([root / "AUCoding" / "AU_OCC", root / "AU_OCC"], "bp4d", LAYOUT)
    frames_root = first_existing([root / "2DFaces", root / "Sequences"], "bp4d", LAYOUT)
    sequences = sorted(labels.glob("*_*.csv"))
    subjects = [p.stem.split("_")[0] for p in sequences]
    chosen = subject_fold(subjects, fold)
    samples = []
    for path in sequences:
        subject, task = path.stem.split("_", 1)
        if subject not in chosen:
            continue
        images = frame_index(frames_root / subject / task)
        with open(path, newline="", encoding="utf-8") as fh:
            rows = csv.DictReader(fh)
            columns = {int(c): c for c in rows.fieldnames or [] if c.strip().isdigit()}
            if "Frame" not in (rows.fieldnames or []) or not set(PROTOCOL) <= set(columns):
                raise LayoutError(f"bp4d: {path} needs a Frame column and the AU columns {list(PROTOCOL)}")
            for row in rows:
                values = {code: row[columns[code]].strip() for code in columns}
                if any(values[code] == "9" for code in PROTOCOL):
                    continue
                frame = int(row["Frame"])
                if frame in images:
                    aus = sorted(code for code, v in values.items() if v == "1")
                    samples.append(
                        Sample(id=f"{subject}/{task}/{frame}", image=images[frame], aus=aus, subject=subject)
                    )
    return samples


BENCHMARK = Benchmark(name="bp4d", title="BP4D (AU, BP4D-12)", labels=None, au_protocol=PROTOCOL,
                      face_mode="detect", layout=LAYOUT, reader=read, splits=("all",))  # fmt: skip
