"""Data in emoreason's own training formats: FEA-20K JSONL, a folder per class, or a CSV (path, label, AU columns).

These reuse the training-data converters (emoreason/data/converters.py), so anything
`emoreason data validate` accepts can be evaluated. FEA-20K's `description` is the
reference reasoning (ROUGE-L). The label set is the data's own labels; the AU protocol the
AUs its records use.
"""

from __future__ import annotations

from pathlib import Path

from ...data.converters import convert
from ...data.records import TrainingRecord
from .base import Benchmark, LayoutError, Sample, Samples


def _samples(records: list[TrainingRecord]) -> list[Sample]:
    return [
        Sample(id=r.id, image=r.image_path, emotion=r.emotion, aus=list(r.aus) or None, reference=r.description)
        for r in records
    ]


def reader(kind: str, name: str, layout: str):
    def read(root: Path, split: str, fold: int | None = None) -> list[Sample]:
        source = root
        if kind in ("jsonl", "csv") and root.is_dir():  # the folder holding the file
            found = sorted(root.glob(f"*.{kind}"))
            if not found:
                raise LayoutError(f"{name}: no .{kind} file in {root} (expected {layout})")
            source = found[0] if len(found) == 1 else next((p for p in found if split in p.stem), found[0])
        try:
            records, problems = convert(source, kind=kind)
        except (FileNotFoundError, ValueError) as exc:
            raise LayoutError(f"{name}: {exc} (expected {layout})") from None
        return Samples(_samples(records), dropped=[str(p) for p in problems])

    return read


BENCHMARKS = [
    Benchmark(name="fea20k", title="FEA-20K", labels=None, au_protocol=None, face_mode="full",
              layout="FEA-20K JSONL (id, dataset, image, question, AUs, labels, description), images relative to it",
              reader=reader("jsonl", "fea20k", "FEA-20K JSONL"), splits=("test", "train", "all")),
    Benchmark(name="folder", title="labelled folder", labels=None, au_protocol=None, face_mode="full",
              layout="one sub-folder of images per emotion (happy/, sad/, ...)",
              reader=reader("folders", "folder", "one sub-folder per emotion"), splits=("all",)),
    Benchmark(name="csv", title="CSV", labels=None, au_protocol=None, face_mode="full",
              layout="a .csv with an image path column, a label column and optional AU columns",
              reader=reader("csv", "csv", "a .csv (path, label, AU columns)"), splits=("all",)),
]  # fmt: skip
