"""The one training-record format: FEA-20K's JSONL fields, read leniently and written canonically.

    {"id": "rafdb_0001", "dataset": "RAF-DB", "image": "images/0001.jpg",
     "question": "What emotion does this face show?", "AUs": ["AU6", "AU12"],
     "labels": "happiness", "description": "<think>...</think>\\n<answer>happiness</answer>"}

`image` is relative to the JSONL file's folder (or absolute). `AUs` may be a list of codes
("AU12", 12) or a comma string ("AU6, AU12"); `labels` a label or alias; both may be empty.
`description` is the reasoning target for SFT; records without one are what `data synth`
explains. Problems are collected per record (`RecordError`) so `validate` reports all at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..facs import parse_au_code
from ..labels import normalize_label

DEFAULT_QUESTION = "Which emotion does this face show? Reason from the Action Units."


@dataclass
class TrainingRecord:
    id: str
    image: str  # as written in the file (relative to `root` or absolute)
    dataset: str = ""
    question: str = DEFAULT_QUESTION
    aus: list[int] = field(default_factory=list)  # gold AU codes present (empty: unknown)
    emotion: str | None = None  # canonical gold label (None: unlabelled)
    description: str | None = None  # <think>...</think><answer>...</answer>
    root: str = ""  # folder `image` is relative to (not written)

    @property
    def image_path(self) -> Path:
        path = Path(self.image)
        return path if path.is_absolute() else Path(self.root) / path

    def to_json(self) -> dict[str, Any]:
        """FEA-20K field names and order."""
        return {
            "id": self.id,
            "dataset": self.dataset,
            "image": self.image,
            "question": self.question,
            "AUs": [f"AU{c}" for c in self.aus],
            "labels": self.emotion or "",
            "description": self.description or "",
        }


@dataclass
class RecordError:
    where: str  # "file.jsonl:12" or the image path
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def parse_record(raw: dict[str, Any], root: str, where: str) -> tuple[TrainingRecord | None, list[RecordError]]:
    """One JSON object -> a record, and every problem found in it (the record is None if unusable)."""
    errors: list[RecordError] = []
    image = raw.get("image") or raw.get("path")
    if not image:
        return None, [RecordError(where, "no 'image' field")]
    aus, label = [], None
    raw_aus = raw.get("AUs", raw.get("aus", []))
    if isinstance(raw_aus, str):
        raw_aus = [a for a in raw_aus.replace(";", ",").replace("+", ",").split(",") if a.strip()]
    for value in raw_aus or []:
        try:
            aus.append(parse_au_code(value))
        except ValueError as exc:
            errors.append(RecordError(where, f"bad AU code: {exc}"))
    raw_label = raw.get("labels", raw.get("label", raw.get("emotion")))
    if isinstance(raw_label, list):
        raw_label = raw_label[0] if len(raw_label) == 1 else ",".join(map(str, raw_label))
    if raw_label not in (None, ""):
        label = normalize_label(str(raw_label))
        if label is None:
            errors.append(RecordError(where, f"unknown label {raw_label!r} (expected an emotion such as happiness)"))
    record = TrainingRecord(
        id=str(raw.get("id") or Path(str(image)).stem),
        image=str(image),
        dataset=str(raw.get("dataset") or ""),
        question=str(raw.get("question") or DEFAULT_QUESTION),
        aus=sorted(set(aus)),
        emotion=label,
        description=raw.get("description") or None,
        root=root,
    )
    if not record.image_path.is_file():
        errors.append(RecordError(where, f"image not found: {record.image_path}"))
    return record, errors


def read_jsonl(path: str | os.PathLike) -> tuple[list[TrainingRecord], list[RecordError]]:
    """All usable records of a JSONL file and every problem found (bad lines never stop the read)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: training file not found")
    records, errors = [], []
    root = str(path.parent)
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.name}:{n}"
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(RecordError(where, f"not JSON ({exc.msg})"))
            continue
        if not isinstance(raw, dict):
            errors.append(RecordError(where, "not a JSON object"))
            continue
        record, problems = parse_record(raw, root, where)
        errors += problems
        if record is not None and not problems:
            if record.id in seen:
                errors.append(RecordError(where, f"duplicate id {record.id!r}"))
                continue
            seen.add(record.id)
            records.append(record)
    return records, errors


def write_jsonl(
    records: Iterable[TrainingRecord], path: str | os.PathLike, extras: Iterable[dict[str, Any]] | None = None
) -> Path:
    """Write records with images relative to the output folder where possible (so the file reads back from
    anywhere); `extras`, one dict per record, adds fields (a rejection's reason)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = list(records)
    extra_rows = list(extras) if extras is not None else [{}] * len(records)
    with path.open("w", encoding="utf-8") as out:
        for record, extra in zip(records, extra_rows):
            row = {**record.to_json(), **extra}
            try:
                row["image"] = os.path.relpath(record.image_path.resolve(), path.parent.resolve())
            except ValueError:  # another drive (Windows)
                row["image"] = str(record.image_path.resolve())
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def iter_json_rows(records: Iterable[TrainingRecord]) -> Iterator[dict[str, Any]]:
    for record in records:
        row = asdict(record)
        row["image"] = str(record.image_path)
        row.pop("root")
        yield row


def to_dataset(records: list[TrainingRecord]):
    """A `datasets.Dataset` (columns: id, image (absolute path), dataset, question, aus, emotion, description)."""
    from datasets import Dataset

    return Dataset.from_list(list(iter_json_rows(records)))
