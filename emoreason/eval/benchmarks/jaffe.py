"""JAFFE (Lyons et al. 1998): 213 posed images of 10 Japanese women; the label is in the file name.

`KA.AN1.39.tiff`: poser KA, expression AN (AN, DI, FE, HA, NE, SA, SU), take 1, image 39.
"""

from __future__ import annotations

from pathlib import Path

from .base import Benchmark, Sample

LAYOUT = "the image files named <poser>.<expression><n>.<id>.tiff (e.g. KA.AN1.39.tiff)"
CODES = {"AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happiness", "NE": "neutral", "SA": "sadness",
         "SU": "surprise"}  # fmt: skip


def read(root: Path, split: str, fold: int | None = None) -> list[Sample]:
    samples = []
    for path in sorted(root.rglob("*")):
        parts = path.name.split(".")
        if len(parts) >= 4 and path.suffix.lower() in (".tiff", ".tif", ".png", ".jpg") and parts[1][:2] in CODES:
            samples.append(Sample(id=path.stem, image=path, emotion=CODES[parts[1][:2]], subject=parts[0]))
    return samples


BENCHMARK = Benchmark(name="jaffe", title="JAFFE", labels=("neutral", "happiness", "sadness", "surprise", "fear",
                      "disgust", "anger"), au_protocol=None, face_mode="detect", layout=LAYOUT, reader=read,
                      splits=("all",))  # fmt: skip
