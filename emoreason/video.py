"""Video analysis: sample frames, analyse each, follow faces across frames, summarise.

Faces are linked frame to frame by box overlap (greedy IoU matching, largest overlap first);
a face that disappears for longer than `max_gap` sampled frames ends its track.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .face.detect import box_iou
from .imageio import InputError
from .types import EmotionAnalysis, _plain


@dataclass
class TrackPoint:
    frame_index: int
    time_s: float
    box: tuple[float, float, float, float]
    emotion: str | None
    confidence: float | None
    aus: dict[int, float]  # AU code -> intensity


@dataclass
class FaceTrack:
    track_id: int
    points: list[TrackPoint] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        emotions = Counter(p.emotion for p in self.points if p.emotion)
        total = sum(emotions.values()) or 1
        codes = sorted({c for p in self.points for c in p.aus})
        return {
            "track_id": self.track_id,
            "frames": len(self.points),
            "start_s": self.points[0].time_s,
            "end_s": self.points[-1].time_s,
            "dominant_emotion": emotions.most_common(1)[0][0] if emotions else None,
            "emotion_share": {e: round(n / total, 3) for e, n in emotions.most_common()},
            "mean_au_intensity": {
                f"AU{c}": round(float(np.mean([p.aus.get(c, 0.0) for p in self.points])), 2) for c in codes
            },
            "peak_au_intensity": {
                f"AU{c}": round(float(max(p.aus.get(c, 0.0) for p in self.points)), 2) for c in codes
            },
        }


@dataclass
class VideoAnalysis:
    source: str
    fps: float  # sampling rate actually used
    duration_s: float
    frames: list[EmotionAnalysis]
    tracks: list[FaceTrack]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self, landmarks: bool = False) -> dict[str, Any]:
        """Same signature as EmotionAnalysis.to_dict, so callers need not tell the two apart."""
        return _plain(
            {
                "source": self.source,
                "fps": self.fps,
                "duration_s": self.duration_s,
                "error": self.error,
                "summary": [t.summary() for t in self.tracks],
                "tracks": [{"track_id": t.track_id, "series": [vars(p) for p in t.points]} for t in self.tracks],
                "frames": [f.to_dict(landmarks=landmarks) for f in self.frames],
            }
        )

    def to_text(self) -> str:
        """One line per face track (EmotionAnalysis.to_text's counterpart)."""
        lines = [f"== {self.source} (video, {len(self.frames)} frames at {self.fps:g} fps, "
                 f"{len(self.tracks)} face track(s))"]  # fmt: skip
        for t in self.tracks:
            s = t.summary()
            lines.append(f"  track {s['track_id']}: {s['dominant_emotion']} over {s['frames']} frames "
                         f"({s['start_s']:.1f}-{s['end_s']:.1f} s), emotions {s['emotion_share']}")  # fmt: skip
        return "\n".join(lines)


class IoUTracker:
    def __init__(self, min_iou: float = 0.3, max_gap: int = 2):
        self.min_iou = min_iou
        self.max_gap = max_gap
        self.tracks: list[FaceTrack] = []
        self._last_seen: dict[int, tuple[int, tuple[float, float, float, float]]] = {}
        self._step = 0

    def update(self, analysis: EmotionAnalysis) -> None:
        live = {tid: box for tid, (step, box) in self._last_seen.items() if self._step - step <= self.max_gap}
        pairs = sorted(
            ((box_iou(f.box, box), i, tid) for i, f in enumerate(analysis.faces) for tid, box in live.items()),
            reverse=True,
        )
        assigned: dict[int, int] = {}
        used: set[int] = set()
        for iou, i, tid in pairs:
            if iou < self.min_iou or i in assigned or tid in used:
                continue
            assigned[i] = tid
            used.add(tid)
        for i, face in enumerate(analysis.faces):
            if i not in assigned:
                assigned[i] = len(self.tracks)
                self.tracks.append(FaceTrack(assigned[i]))
            tid = face.track_id = assigned[i]
            self._last_seen[tid] = (self._step, face.box)
            self.tracks[tid].points.append(
                TrackPoint(
                    frame_index=analysis.frame_index or 0,
                    time_s=analysis.time_s or 0.0,
                    box=face.box,
                    emotion=face.emotion,
                    confidence=face.confidence,
                    aus={a.code: a.intensity for a in face.aus},
                )
            )
        self._step += 1


def iter_frames(path: str, fps: float = 2.0, max_frames: int | None = None):
    """Yield (frame_index, time_s, rgb) sampled at about `fps` frames per second."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(str(path), "cannot open video (missing file or unsupported codec)")
    try:
        native = cap.get(cv2.CAP_PROP_FPS) or 25.0
        step = max(1, round(native / fps)) if fps > 0 else 1
        index = taken = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % step == 0:
                yield index, index / native, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                taken += 1
                if max_frames and taken >= max_frames:
                    break
            index += 1
    finally:
        cap.release()


def video_info(path: str) -> tuple[float, float]:
    """(native fps, duration in seconds)."""
    cap = cv2.VideoCapture(str(path))
    try:
        native = cap.get(cv2.CAP_PROP_FPS) or 25.0
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0
        return native, count / native if native else 0.0
    finally:
        cap.release()
