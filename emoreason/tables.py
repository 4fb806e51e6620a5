"""Results as tables: one row per face (per face per frame for a video), as py-feat's `Fex` and
OpenFace's per-frame CSV give them.

The columns are fixed, so a CSV can be streamed row by row and files from different runs line up:
source, kind (image | video), frame, time_s, face, track_id, the box, detection score and source,
head pose, every detected AU's intensity and presence (`AU1`, `AU1_present`, ...), the emotion,
its confidence, one probability column per label (`p_neutral`, ...), the AUs the reasoning cites,
and the error. A failed input is one row with its error and the rest empty; an image without
faces is one row with `face` empty, so every input shows up. pandas is optional:
`EmotionAnalysis.to_pandas()` / `VideoAnalysis.to_pandas()` build a DataFrame from these rows.
"""

from __future__ import annotations

import csv
from typing import IO, Any

from .facs import DETECTED_AUS
from .labels import EMOTIONS

# Results are typed loosely here (EmotionAnalysis, FaceAnalysis, VideoAnalysis by their attributes): this
# module sits below types.py and video.py, whose to_pandas() methods call it.

AU_COLUMNS = [col for code in DETECTED_AUS for col in (f"AU{code}", f"AU{code}_present")]
COLUMNS = [
    "source", "kind", "frame", "time_s", "face", "track_id",
    "box_x0", "box_y0", "box_x1", "box_y1", "detection_score", "face_source",
    "roll", "yaw", "pitch",
    *AU_COLUMNS,
    "emotion", "confidence", *(f"p_{e}" for e in EMOTIONS), "cited_aus", "contradictions", "error",
]  # fmt: skip


def _face_row(face: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"face": face.index, "track_id": face.track_id, "detection_score": face.detection_score,
                           "face_source": face.source, "emotion": face.emotion, "confidence": face.confidence,
                           "cited_aus": " ".join(f"AU{c}" for c in face.cited_aus),
                           "contradictions": "; ".join(face.contradictions), "error": face.error}  # fmt: skip
    row.update(zip(("box_x0", "box_y0", "box_x1", "box_y1"), (round(float(v), 2) for v in face.box)))
    row.update(face.pose or {})
    for au in face.aus:
        row[f"AU{au.code}"], row[f"AU{au.code}_present"] = round(float(au.intensity), 3), int(bool(au.present))
    for emotion, p in face.emotion_scores.items():
        row[f"p_{emotion}"] = round(float(p), 4)
    return row


def image_rows(result: Any, kind: str = "image") -> list[dict[str, Any]]:
    """One row per face of an image (or of one video frame); one row for an image without faces or that failed."""
    base = {"source": result.source, "kind": kind, "frame": result.frame_index, "time_s": result.time_s,
            "error": result.error}  # fmt: skip
    if not result.faces:
        return [dict(base)]
    return [{**base, **_face_row(face)} for face in result.faces]


def rows(result: Any) -> list[dict[str, Any]]:
    """The table rows of one result: an image's faces, or every face of every sampled frame of a video."""
    frames = getattr(result, "frames", None)
    if frames is None:
        return image_rows(result)
    if not frames:
        return [{"source": result.source, "kind": "video", "error": result.error}]
    return [row for frame in frames for row in image_rows(frame, kind="video")]


def to_pandas(result: Any) -> Any:
    """A pandas DataFrame of `rows(result)` with the fixed `COLUMNS` (pandas is an optional extra)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_pandas needs pandas: pip install 'emoreason[tables]' (or pandas)") from None
    return pd.DataFrame(rows(result), columns=COLUMNS)


class CSVWriter:
    """Streams results as CSV rows under the fixed header (written once, before the first row)."""

    def __init__(self, out: IO[str]):
        self._writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        self._writer.writeheader()

    def write(self, result: Any) -> None:
        self._writer.writerows(rows(result))
