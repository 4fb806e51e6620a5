"""CK+ (Lucey et al. 2010): posed sequences; the peak frame of each of the 327 emotion-labelled sequences.

`Emotion/Sxxx/nnn/Sxxx_nnn_<frame>_emotion.txt` holds the label code of that (last) frame;
`cohn-kanade-images/` the frames; `FACS/` the peak frame's coded AUs ('AU intensity' lines).
7 classes (CK+ codes 1-7; 0 = neutral is not used for peaks). Whole 640x490 frames: the
face is detected.
"""

from __future__ import annotations

from pathlib import Path

from .base import Benchmark, LayoutError, Sample, need, read_text

LAYOUT = "cohn-kanade-images/, Emotion/ and FACS/ (CK+ as distributed)"
CODES = {1: "anger", 2: "contempt", 3: "disgust", 4: "fear", 5: "happiness", 6: "sadness", 7: "surprise"}


def read(root: Path, split: str, fold: int | None = None) -> list[Sample]:
    images = need(root / "cohn-kanade-images", "ckplus", LAYOUT)
    emotions = need(root / "Emotion", "ckplus", LAYOUT)
    samples = []
    for label_file in sorted(emotions.rglob("*_emotion.txt")):
        stem = label_file.name[: -len("_emotion.txt")]
        try:
            emotion = CODES[int(float(read_text(label_file).split()[0]))]
        except (ValueError, KeyError, IndexError):
            raise LayoutError(f"ckplus: {label_file}: expected one CK+ emotion code 1-7") from None
        relative = label_file.parent.relative_to(emotions)
        facs = root / "FACS" / relative / f"{stem}_facs.txt"
        aus = None
        if facs.exists():
            aus = sorted({int(float(line.split()[0])) for line in read_text(facs).splitlines() if line.split()})
        samples.append(Sample(id=stem, image=images / relative / f"{stem}.png", emotion=emotion, aus=aus,
                              subject=relative.parts[0]))  # fmt: skip
    return samples


BENCHMARK = Benchmark(name="ckplus", title="CK+ (peak frames)", labels=tuple(CODES.values()), au_protocol=None,
                      face_mode="detect", layout=LAYOUT, reader=read, splits=("all",))  # fmt: skip
