"""RAF-DB basic emotions (Li et al. 2017): 7 classes, aligned 100x100 faces; 3,068 test images."""

from __future__ import annotations

from pathlib import Path

from .base import Benchmark, LayoutError, Sample, first_existing, read_text

LAYOUT = "EmoLabel/list_patition_label.txt (or list_patition_label.txt) and Image/aligned/ (or aligned/)"
# The label file's codes (its own README).
CODES = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger", 7: "neutral"}


def read(root: Path, split: str, fold: int | None = None) -> list[Sample]:
    labels = first_existing([root / "EmoLabel" / "list_patition_label.txt", root / "list_patition_label.txt"],
                            "rafdb", LAYOUT)  # fmt: skip
    aligned = first_existing([root / "Image" / "aligned", root / "aligned"], "rafdb", LAYOUT)
    samples = []
    for n, line in enumerate(read_text(labels).splitlines(), 1):
        if not line.strip():
            continue
        try:
            name, code = line.split()
            emotion = CODES[int(code)]
        except (ValueError, KeyError):
            raise LayoutError(f"rafdb: {labels}:{n}: expected '<name>.jpg <1-7>', got {line.strip()!r}") from None
        if split != "all" and not name.startswith(f"{split}_"):
            continue
        stem = Path(name).stem
        samples.append(Sample(id=stem, image=aligned / f"{stem}_aligned.jpg", emotion=emotion))
    return samples


BENCHMARK = Benchmark(
    name="rafdb",
    title="RAF-DB (basic)",
    labels=("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger"),
    au_protocol=None,
    face_mode="full",
    layout=LAYOUT,
    reader=read,
    splits=("test", "train", "all"),
)
