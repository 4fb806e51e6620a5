"""What every benchmark adapter produces: a list of `Sample`s, and a `Benchmark` spec saying how to score them.

An adapter reads a local copy of a dataset in its *published* layout (nothing is downloaded)
and turns it into samples: an image (file, decoded pixels, or a box to crop), the gold
emotion and/or gold AUs, and reference reasoning where the dataset has it. The spec states
the label set, the AU protocol and the face mode (`full` for pre-cropped faces, `detect`
for whole frames). A wrong layout is one `LayoutError` saying what was expected where.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...imageio import load_image


class LayoutError(ValueError):
    """The folder is not laid out as the benchmark publishes it."""


@dataclass
class Sample:
    id: str  # unique within the benchmark (rows of a run are keyed by it)
    image: Path | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)  # already decoded (FER2013's CSV pixels)
    box: tuple[int, int, int, int] | None = None  # (x, y, w, h) face box to crop first (AffectNet)
    emotion: str | None = None  # canonical gold label
    aus: list[int] | None = None  # gold AUs present; None when the dataset has no AU labels
    reference: str | None = None  # reference reasoning (FEA-20K descriptions)
    subject: str | None = None  # for subject-exclusive folds

    def load(self) -> np.ndarray:
        """The RGB pixels to analyse (cropped to `box` when there is one). Raises InputError."""
        rgb = self.pixels if self.pixels is not None else load_image(self.image, name=str(self.image))
        if rgb.ndim == 2:
            rgb = np.stack([rgb] * 3, axis=-1)
        if self.box is not None:
            x, y, w, h = self.box
            crop = rgb[max(y, 0) : max(y, 0) + h, max(x, 0) : max(x, 0) + w]
            rgb = crop if crop.size else rgb
        return np.ascontiguousarray(rgb)


class Samples(list):
    """An adapter's samples, and the rows it had to leave out (`dropped`: "where: reason" lines), so a run
    can say how many it skipped and why instead of shrinking silently."""

    def __init__(self, samples=(), dropped: Sequence[str] = ()):
        super().__init__(samples)
        self.dropped = list(dropped)


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    labels: tuple[str, ...] | None  # the emotion label set; None: the labels the samples carry (none: AU-only)
    au_protocol: tuple[int, ...] | None  # AUs scored; None: the AUs the samples' gold labels use
    face_mode: str  # "full": pre-cropped faces; "detect": find the face in the frame
    layout: str  # what the adapter expects under --data (shown in errors and --help)
    reader: Callable[..., list[Sample]]
    splits: tuple[str, ...] = ("test",)  # the first is the default

    def load(self, root: str | Path, split: str | None = None, fold: int | None = None) -> list[Sample]:
        root = Path(root)
        if not root.exists():
            raise LayoutError(f"{self.name}: {root} does not exist (expected {self.layout})")
        split = split or self.splits[0]
        if split not in self.splits:
            raise ValueError(f"{self.name}: unknown split {split!r}; choose from {', '.join(self.splits)}")
        samples = self.reader(root, split=split, fold=fold)
        if not samples:
            raise LayoutError(f"{self.name}: no samples found in {root} for split {split!r} (expected {self.layout})")
        return samples


# ---------------------------------------------------------------- helpers
def need(path: Path, benchmark: str, layout: str) -> Path:
    """`path` if it exists, else the benchmark's one-line layout error."""
    if not path.exists():
        raise LayoutError(f"{benchmark}: {path} not found (expected {layout})")
    return path


def first_existing(candidates: Sequence[Path], benchmark: str, layout: str) -> Path:
    for path in candidates:
        if path.exists():
            return path
    raise LayoutError(f"{benchmark}: none of {', '.join(str(p) for p in candidates)} exists (expected {layout})")


def frame_index(folder: Path) -> dict[int, Path]:
    """Frame number -> image file, whatever the zero padding (`12.png`, `0012.jpg`, `frame_012.png`)."""
    index = {}
    for path in folder.iterdir() if folder.is_dir() else ():
        digits = re.findall(r"\d+", path.stem)
        if digits and path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"):
            index[int(digits[-1])] = path
    return index


def subject_fold(subjects: Sequence[str], fold: int | None, folds: int = 3) -> set[str]:
    """The subjects of fold `fold` of `folds` (sorted subjects cut into contiguous chunks); all when None.

    >>> sorted(subject_fold(["S3", "S1", "S2", "S4", "S5", "S6"], 1))
    ['S3', 'S4']
    """
    ordered = sorted(set(subjects))
    if fold is None:
        return set(ordered)
    if not 0 <= fold < folds:
        raise ValueError(f"--fold {fold}: expected 0..{folds - 1}")
    size = -(-len(ordered) // folds)
    return set(ordered[fold * size : (fold + 1) * size])


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")
