"""DISFA (Mavadati et al. 2013): AU intensities (0-5) per video frame, 27 subjects; the DISFA-8 protocol.

An AU counts as present at intensity >= 2 (the usual binarisation). DISFA ships videos:
extract the left-camera frames yourself into `Frames/SNxxx/` (any zero padding; the frame
number is the file name's last number, 1-based as in the label files). Folds are
subject-exclusive: the sorted subjects cut into 3 chunks (`--fold 0|1|2`; default all).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from ...facs import AU_PROTOCOLS
from .base import Benchmark, LayoutError, Sample, first_existing, frame_index, read_text, subject_fold

LAYOUT = "ActionUnit_Labels/SNxxx/SNxxx_auN.txt ('frame,intensity' lines) and Frames/SNxxx/<frame>.png|jpg"
PRESENT_AT = 2


def read(root: Path, split: str, fold: int | None = None) -> list[Sample]:
    labels = first_existing([root / "ActionUnit_Labels"], "disfa", LAYOUT)
    frames_root = first_existing([root / "Frames", root / "Images"], "disfa", LAYOUT)
    subjects = sorted(p.name for p in labels.iterdir() if p.is_dir())
    samples = []
    for subject in sorted(subject_fold(subjects, fold)):
        per_frame: dict[int, set[int]] = defaultdict(set)
        files = sorted((labels / subject).glob("*_au*.txt"))
        if not files:
            raise LayoutError(f"disfa: no {subject}_auN.txt files in {labels / subject} (expected {LAYOUT})")
        for path in files:
            code = int(re.search(r"_au(\d+)\.txt$", path.name, flags=re.IGNORECASE).group(1))
            for line in read_text(path).splitlines():
                if "," not in line:
                    continue
                frame, intensity = line.split(",")[:2]
                per_frame.setdefault(int(frame), set())
                if float(intensity) >= PRESENT_AT:
                    per_frame[int(frame)].add(code)
        images = frame_index(frames_root / subject)
        for frame in sorted(per_frame):
            if frame in images:
                samples.append(Sample(id=f"{subject}/{frame}", image=images[frame], aus=sorted(per_frame[frame]),
                                      subject=subject))  # fmt: skip
    return samples


BENCHMARK = Benchmark(name="disfa", title="DISFA (AU, DISFA-8)", labels=None, au_protocol=AU_PROTOCOLS["disfa8"],
                      face_mode="detect", layout=LAYOUT, reader=read, splits=("all",))  # fmt: skip
