"""Video analysis: sample frames, analyse each, follow faces across frames, summarise.

Faces are linked frame to frame by box overlap (greedy IoU matching, largest overlap first);
a face that disappears for longer than `max_gap` sampled frames ends its track.

AU measurements are smoothed along each track before the reasoning sees them (`AUSmoothing`):
an exponential moving average of each AU's intensity, and presence with hysteresis (an AU
turns on at its threshold and off only below threshold - `hysteresis`). A still face whose
box shifts by a few pixels otherwise flips AUs near their threshold on and off from frame to
frame (`bench/video.py` measures the flip rate with and without). The reasoning is written
from the smoothed AUs, so the text and the AUs shown with it agree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .face.au import AU_RULES, presence_score
from .face.detect import box_iou
from .imageio import InputError
from .types import AUActivation, EmotionAnalysis, _plain

THRESHOLDS = {rule.code: rule.threshold for rule in AU_RULES}  # presence threshold per AU (intensity 0-5)


@dataclass(frozen=True)
class AUSmoothing:
    """How AU measurements are smoothed along a face track (`None` in analyze_video: raw per frame)."""

    alpha: float = 0.5  # weight of the new frame in the moving average (1 = no smoothing)
    hysteresis: float = 0.5  # intensity units below the threshold before a present AU turns off

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError(f"smoothing alpha {self.alpha}: expected 0 < alpha <= 1")
        if self.hysteresis < 0:
            raise ValueError(f"hysteresis {self.hysteresis}: expected >= 0")


DEFAULT_SMOOTHING = AUSmoothing()  # frozen: shared as a default argument


class AUSmoother:
    """Per-track state of the moving averages and the presence flags."""

    def __init__(self, settings: AUSmoothing):
        self.settings = settings
        self._mean: dict[int, dict[int, float]] = {}
        self._present: dict[int, dict[int, bool]] = {}

    def apply(self, track_id: int, aus: list[AUActivation]) -> list[AUActivation]:
        mean, present = self._mean.setdefault(track_id, {}), self._present.setdefault(track_id, {})
        a, out = self.settings.alpha, []
        for au in aus:
            threshold = THRESHOLDS.get(au.code, 2.0)
            m = au.intensity if au.code not in mean else a * au.intensity + (1 - a) * mean[au.code]
            mean[au.code] = m
            on = m >= threshold or (present.get(au.code, False) and m >= threshold - self.settings.hysteresis)
            present[au.code] = on
            out.append(AUActivation(au.code, round(m, 2), on, round(presence_score(m, threshold), 3)))
        return out


@dataclass
class TrackPoint:
    frame_index: int
    time_s: float
    box: tuple[float, float, float, float]
    emotion: str | None
    confidence: float | None
    aus: dict[int, float]  # AU code -> intensity

    def to_dict(self) -> dict[str, Any]:
        """AU keys written as everywhere else in the output ("AU12")."""
        return {**vars(self), "aus": {f"AU{code}": v for code, v in self.aus.items()}}


@dataclass
class FaceTrack:
    track_id: int
    points: list[TrackPoint] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        emotions = Counter(p.emotion for p in self.points if p.emotion)
        total = sum(emotions.values()) or 1
        codes = sorted({c for p in self.points for c in p.aus})
        top = max(emotions.values(), default=0)
        leaders = [e for e, n in emotions.most_common() if n == top]  # a tie is reported as one, not broken
        return {
            "track_id": self.track_id,
            "frames": len(self.points),
            "start_s": self.points[0].time_s,
            "end_s": self.points[-1].time_s,
            "dominant_emotion": leaders[0] if len(leaders) == 1 else None,
            "tied_emotions": leaders if len(leaders) > 1 else [],
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
                "kind": "video",
                "source": self.source,
                "fps": self.fps,
                "duration_s": self.duration_s,
                "error": self.error,
                "summary": [t.summary() for t in self.tracks],
                "tracks": [{"track_id": t.track_id, "series": [p.to_dict() for p in t.points]} for t in self.tracks],
                "frames": [f.to_dict(landmarks=landmarks) for f in self.frames],
            }
        )

    def to_pandas(self):
        """One row per face per sampled frame (tables.COLUMNS, with frame, time and track); needs pandas."""
        from .tables import to_pandas

        return to_pandas(self)

    def to_text(self) -> str:
        """One line per face track (EmotionAnalysis.to_text's counterpart), then the timeline."""
        lines = [*self.summary_lines(), "  timeline:", *("    " + line for line in self.timeline())]
        return "\n".join(lines)

    def summary_lines(self) -> list[str]:
        """The clip's header line, then one line per face track: its dominant emotion (or tie), frames, span."""
        lines = [f"== {self.source} (video, {len(self.frames)} frames at {self.fps:g} fps, "
                 f"{len(self.tracks)} face track(s))"]  # fmt: skip
        for t in self.tracks:
            s = t.summary()
            dominant = s["dominant_emotion"] or "tie between " + " and ".join(s["tied_emotions"] or ["nothing"])
            lines.append(f"  track {s['track_id']}: {dominant} over {s['frames']} frames "
                         f"({s['start_s']:.1f}-{s['end_s']:.1f} s), emotions {s['emotion_share']}")  # fmt: skip
        return lines

    def timeline(self) -> list[str]:
        """One line per face per sampled frame: time, track, emotion, confidence, the present AUs."""
        out = []
        for frame in self.frames:
            if not frame.faces:
                out.append(f"{frame.time_s or 0:7.2f} s  no face")
            for face in frame.faces:
                confidence = "?" if face.confidence is None else f"{face.confidence:.0%}"
                aus = " ".join(f"AU{a.code}" for a in face.aus if a.present) or "none"
                out.append(f"{frame.time_s or 0:7.2f} s  track {face.track_id}: {face.emotion} ({confidence})  "
                           f"AUs {aus}")  # fmt: skip
        return out


class IoUTracker:
    def __init__(self, min_iou: float = 0.3, max_gap: int = 2):
        self.min_iou = min_iou
        self.max_gap = max_gap
        self.tracks: list[FaceTrack] = []
        self._last_seen: dict[int, tuple[int, tuple[float, float, float, float]]] = {}
        self._step = 0

    def update(self, analysis: EmotionAnalysis) -> None:
        """Link the analysis's faces to tracks and record them (assign + record)."""
        self.record(analysis, self.assign([f.box for f in analysis.faces]))

    def assign(self, boxes: list[tuple[float, float, float, float]]) -> list[int]:
        """The track id of each box in this frame (new tracks for faces not seen recently); advances a frame."""
        live = {tid: box for tid, (step, box) in self._last_seen.items() if self._step - step <= self.max_gap}
        pairs = sorted(((box_iou(b, box), i, tid) for i, b in enumerate(boxes) for tid, box in live.items()),
                       reverse=True)  # fmt: skip
        assigned: dict[int, int] = {}
        used: set[int] = set()
        for iou, i, tid in pairs:
            if iou < self.min_iou or i in assigned or tid in used:
                continue
            assigned[i] = tid
            used.add(tid)
        for i, box in enumerate(boxes):
            if i not in assigned:
                assigned[i] = len(self.tracks)
                self.tracks.append(FaceTrack(assigned[i]))
            self._last_seen[assigned[i]] = (self._step, box)
        self._step += 1
        return [assigned[i] for i in range(len(boxes))]

    def record(self, analysis: EmotionAnalysis, track_ids: list[int]) -> None:
        """Put each face's result on its track (ids from `assign`, in the faces' order)."""
        for face, tid in zip(analysis.faces, track_ids):
            face.track_id = tid
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


def presence_flip_counts(video: VideoAnalysis) -> tuple[dict[str, int], int]:
    """({"AU10": flips, ...}, frame pairs): how often each AU's presence changed between consecutive frames of
    a track, over all tracks, and how many consecutive pairs there were."""
    counts: dict[str, int] = {}
    pairs = 0
    frames = {f.frame_index: f for f in video.frames}
    for track in video.tracks:
        states = []
        for point in track.points:
            face = next(x for x in frames[point.frame_index].faces if x.track_id == track.track_id)
            states.append({a.code: a.present for a in face.aus})
        for before, after in zip(states, states[1:]):
            for code in set(before) | set(after):
                if before.get(code) != after.get(code):
                    counts[f"AU{code}"] = counts.get(f"AU{code}", 0) + 1
            pairs += 1
    return dict(sorted(counts.items(), key=lambda kv: int(kv[0][2:]))), pairs


def presence_flips(video: VideoAnalysis) -> float:
    """AU presence changes between consecutive frames of a track, per frame pair (all AUs, all tracks)."""
    counts, pairs = presence_flip_counts(video)
    return sum(counts.values()) / pairs if pairs else 0.0


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
