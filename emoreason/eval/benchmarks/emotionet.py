"""EmotioNet (Benitez-Quiroz et al. 2016) with the 12 AUs of its challenge (EmotioNet-12).

EmotioNet is distributed as image URLs with AU labels. Download the images yourself; then a
CSV with a `URL` (or `image`) column and one column per AU (`AU1` ... `AU43`; 1 present, 0
absent, 999 unknown: left out) scores them; a URL maps onto `images/<its file name>`.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ...facs import AU_PROTOCOLS
from .base import Benchmark, LayoutError, Sample

LAYOUT = "a .csv (URL or image column, AU1..AU43 columns of 1/0/999) and images/<file name of each URL>"
PROTOCOL = AU_PROTOCOLS["emotionet12"]


def read(root: Path, split: str, fold: int | None = None) -> list[Sample]:
    tables = sorted(root.glob("*.csv"))
    if not tables:
        raise LayoutError(f"emotionet: no .csv in {root} (expected {LAYOUT})")
    samples = []
    for table in tables:
        with open(table, newline="", encoding="utf-8") as fh:
            rows = csv.DictReader(fh)
            fields = rows.fieldnames or []
            au_columns = {int(m.group(1)): c for c in fields if (m := re.fullmatch(r"\s*AU\s*0*(\d+)\s*", c, re.I))}
            where = next((c for c in fields if c.strip().lower() in ("image", "path", "url")), None)
            if where is None or not set(PROTOCOL) <= set(au_columns):
                raise LayoutError(f"emotionet: {table} needs a URL or image column and the columns "
                                  f"{', '.join(f'AU{c}' for c in PROTOCOL)}")  # fmt: skip
            for row in rows:
                values = {code: row[col].strip() for code, col in au_columns.items()}
                if any(values[code] == "999" for code in PROTOCOL):
                    continue
                ref = row[where].strip()
                image = root / "images" / ref.rsplit("/", 1)[-1] if "://" in ref else root / ref
                aus = sorted(code for code, v in values.items() if v == "1")
                samples.append(Sample(id=image.name, image=image, aus=aus))
    return samples


BENCHMARK = Benchmark(name="emotionet", title="EmotioNet (AU, EmotioNet-12)", labels=None, au_protocol=PROTOCOL,
                      face_mode="detect", layout=LAYOUT, reader=read, splits=("all",))  # fmt: skip
