"""Turn a labelled image collection into training records.

- `from_folders(root)`: one sub-folder per class (`root/happy/001.jpg`); folder names may be
  aliases (happy, angry, Surprised).
- `from_csv(path)`: a header row with an image column (`path`, `image`, `file`), an optional
  label column (`label`, `emotion`, `expression`), and AUs either as one `AUs` column
  ("AU6,AU12") or as one column per AU (`AU6`, `AU12`, ...; a value > 0 means present).
- `from_jsonl(path)`: FEA-20K JSONL (records.read_jsonl).

Each returns (records, errors): every problem is reported, nothing stops at the first.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from ..imageio import IMAGE_SUFFIXES
from ..labels import normalize_label
from .records import RecordError, TrainingRecord, parse_record, read_jsonl

_IMAGE_COLUMNS = ("path", "image", "file", "filename", "img")
_LABEL_COLUMNS = ("label", "labels", "emotion", "expression")
_AU_COLUMN = re.compile(r"^AU\s*0*(\d{1,2})$", re.IGNORECASE)


def from_folders(root: str | os.PathLike, dataset: str = "") -> tuple[list[TrainingRecord], list[RecordError]]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: expected a folder with one sub-folder per class (e.g. {root}/happiness/)")
    records, errors = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = normalize_label(folder.name)
        if label is None:
            errors.append(RecordError(str(folder), f"folder name {folder.name!r} is not an emotion label"))
            continue
        for image in sorted(folder.rglob("*")):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                rel = image.relative_to(root)
                records.append(
                    TrainingRecord(id=f"{folder.name}/{rel.stem}", image=str(rel), dataset=dataset or root.name,
                                   emotion=label, root=str(root))
                )  # fmt: skip
    if not records and not errors:
        errors.append(RecordError(str(root), "no images found in its class sub-folders"))
    return records, errors


def from_csv(path: str | os.PathLike, dataset: str = "") -> tuple[list[TrainingRecord], list[RecordError]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CSV file not found")
    with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: a byte-order mark (Excel's CSVs) is dropped
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        lower = {c.lower().strip(): c for c in columns}
        image_col = next((lower[c] for c in _IMAGE_COLUMNS if c in lower), None)
        if image_col is None:
            raise ValueError(f"{path}: no image column (expected one of {', '.join(_IMAGE_COLUMNS)}; got {columns})")
        label_col = next((lower[c] for c in _LABEL_COLUMNS if c in lower), None)
        au_list_col = lower.get("aus")
        au_cols = {c: int(m.group(1)) for c in columns if (m := _AU_COLUMN.match(c.strip()))}
        records, errors = [], []
        for n, row in enumerate(reader, 2):
            # The id defaults to the image path as written (unique), not its file name (a/x.png and b/x.png).
            raw = {
                "image": row.get(image_col),
                "dataset": dataset or path.stem,
                "id": row.get("id") or row.get(image_col),
            }
            if label_col:
                raw["labels"] = row.get(label_col)
            if au_list_col:
                raw["AUs"] = row.get(au_list_col) or ""
            elif au_cols:
                raw["AUs"] = [code for col, code in au_cols.items() if _positive(row.get(col))]
            record, problems = parse_record(raw, str(path.parent), f"{path.name}:{n}")
            errors += problems
            if record is not None and not problems:
                records.append(record)
    return records, errors


def _positive(value: str | None) -> bool:
    try:
        return float(value or 0) > 0
    except ValueError:
        return False


def convert(source: str | os.PathLike, kind: str = "auto", dataset: str = ""):
    """Records from a folder tree, a CSV or a JSONL, picked by `kind` or by what `source` is."""
    source = Path(source)
    if kind == "auto":
        kind = "folders" if source.is_dir() else {".csv": "csv", ".jsonl": "jsonl"}.get(source.suffix.lower(), "")
    if kind == "folders":
        return from_folders(source, dataset)
    if kind == "csv":
        return from_csv(source, dataset)
    if kind == "jsonl":
        return read_jsonl(source)
    raise ValueError(f"{source}: cannot tell the layout; pass --kind folders|csv|jsonl")
