"""The data types every part of emoreason passes around.

- `AUActivation`: one Action Unit on one face (code, FACS name, intensity 0-5, present, score).
- `FaceObservation`: what the face front-end measured on one face (box, landmarks, AUs,
  expression prior, optional embedding). Input to every reasoning backend.
- `FaceAnalysis`: one face's result (observation + emotion, confidence, reasoning text).
- `EmotionAnalysis`: one image's result: the one type that every backend returns and the CLI,
  gateway, demo, evaluation and rewards consume.

All are plain dataclasses that round-trip through JSON (`to_dict` / `from_dict`). Numpy
arrays (landmarks, the aligned crop) stay out of JSON unless asked for.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from .facs import au_name


@dataclass
class AUActivation:
    code: int
    intensity: float  # 0-5, FACS A..E mapped to 1..5
    present: bool
    score: float  # 0-1 confidence that the AU is active
    name: str = ""

    def __post_init__(self) -> None:
        self.code = int(self.code)
        if not self.name:
            self.name = au_name(self.code)

    @property
    def label(self) -> str:
        return f"AU{self.code}"


@dataclass
class FaceObservation:
    """What the face front-end measured on one face."""

    index: int  # 0 = largest face in the image
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    detection_score: float
    source: str  # "detector" | "full" (whole image is the face) | "fallback" (tight crop, nothing detected)
    aus: list[AUActivation] = field(default_factory=list)
    expression_prior: dict[str, float] | None = None  # emotion -> probability
    prior_model: str | None = None  # the expression model that gave the prior ("emoreason-face-v3", "fer")
    pose: dict[str, float] | None = None  # roll/yaw/pitch in degrees
    landmarks: np.ndarray | None = None  # (478, 3) image pixels (z in pixel units); None if the mesh failed
    embedding: np.ndarray | None = None  # face-encoder vector when the encoder is on
    aligned_crop: np.ndarray | None = None  # RGB uint8, eye-levelled; not serialised
    # The face as the expression model sees it: FER2013's crop geometry for a detected face, the image itself
    # for a pre-cropped one (RGB uint8; not serialised). The face model's features come from it too.
    expression_crop: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage

    def present_aus(self) -> list[AUActivation]:
        return [a for a in self.aus if a.present]

    def au_intensities(self) -> dict[int, float]:
        return {a.code: a.intensity for a in self.aus}


@dataclass
class FaceAnalysis:
    """One face's analysis: the observation plus what the reasoning backend concluded."""

    index: int
    box: tuple[float, float, float, float]
    aus: list[AUActivation]
    emotion: str | None  # canonical noun (labels.EMOTIONS) or None if the answer was not a label
    confidence: float | None  # probability of `emotion` among the labels (0-1), same for every backend; None: unknown
    reasoning: str  # the <think> content
    text: str  # the raw <think>...</think><answer>...</answer> text
    emotion_scores: dict[str, float] = field(default_factory=dict)  # emotion -> probability
    cited_aus: list[int] = field(default_factory=list)  # AUs the reasoning cites as present (parsing.find_aus)
    expression_prior: dict[str, float] | None = None
    pose: dict[str, float] | None = None
    detection_score: float = 1.0
    source: str = "detector"
    landmarks: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    track_id: int | None = None  # set in video analysis: the same person across frames
    error: str | None = None  # the reasoning failed for this face (e.g. the model endpoint); the result is empty
    # what `text` says that contradicts the front-end's measurements, or an answer its own evidence does not
    # support (faithfulness.contradictions), one line each;
    # every backend audits its texts (reasoning/vlm.py, reasoning/embedded.py), the engine's keep every invariant
    contradictions: list[str] = field(default_factory=list)

    def present_aus(self) -> list[AUActivation]:
        return [a for a in self.aus if a.present]

    @classmethod
    def from_observation(cls, obs: FaceObservation, **result: Any) -> FaceAnalysis:
        return cls(
            index=obs.index,
            box=obs.box,
            aus=obs.aus,
            expression_prior=obs.expression_prior,
            pose=obs.pose,
            detection_score=obs.detection_score,
            source=obs.source,
            landmarks=obs.landmarks,
            timings=dict(obs.timings),
            **result,
        )


@dataclass
class EmotionAnalysis:
    """The result for one image (or one video frame): every face found in it."""

    source: str  # file path, URL or "<array>"
    width: int
    height: int
    faces: list[FaceAnalysis]
    backend: str
    model: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds: frontend, reasoning, total
    error: str | None = None  # one-line reason when the input could not be analysed
    frame_index: int | None = None  # set for video frames
    time_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def emotion(self) -> str | None:
        """The largest face's emotion (None without faces)."""
        return self.faces[0].emotion if self.faces else None

    def to_dict(self, landmarks: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "image"}  # VideoAnalysis.to_dict says "video": rows say what they are
        out.update({f.name: getattr(self, f.name) for f in fields(self) if f.name != "faces"})
        out["faces"] = []
        for face in self.faces:
            d = {f.name: getattr(face, f.name) for f in fields(face) if f.name not in ("aus", "landmarks")}
            d["box"] = [round(float(v), 2) for v in face.box]
            d["aus"] = [asdict(a) for a in face.aus]
            if landmarks and face.landmarks is not None:
                d["landmarks"] = np.round(face.landmarks, 2).tolist()
            out["faces"].append(d)
        return _plain(out)

    def to_json(self, landmarks: bool = False, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(landmarks=landmarks), indent=indent, ensure_ascii=False)

    def to_pandas(self):
        """One row per face (tables.COLUMNS: box, pose, every AU, emotion, probabilities); needs pandas."""
        from .tables import to_pandas

        return to_pandas(self)

    def to_text(self) -> str:
        """The human-readable report `emoreason analyze` prints: one block per face."""
        lines = [f"== {self.source} ({self.width}x{self.height}, {len(self.faces)} face(s), "
                 f"{self.timings.get('total', 0):.0f} ms)"]  # fmt: skip
        if not self.faces:
            lines.append("  no face found")
        for f in self.faces:
            aus = ", ".join(f"{a.label} {a.name} {a.intensity:.1f}" for a in f.present_aus()) or "none"
            confidence = "?" if f.confidence is None else f"{f.confidence:.0%}"
            lines.append(f"  face #{f.index} box={tuple(round(v) for v in f.box)}: {f.emotion} ({confidence})")
            lines.append(f"    AUs: {aus}")
            lines.append(f"    {f.text}".replace("\n", "\n    "))
            lines += [f"    contradicts the measurements or itself: {c}" for c in f.contradictions]
        return "\n".join(lines)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmotionAnalysis:
        faces = []
        for d in data.get("faces", []):
            d = dict(d)
            d["aus"] = [AUActivation(**a) for a in d.get("aus", [])]
            d["box"] = tuple(d["box"])
            if d.get("landmarks") is not None:
                d["landmarks"] = np.asarray(d["landmarks"], dtype=np.float32)
            faces.append(FaceAnalysis(**d))
        rest = {k: v for k, v in data.items() if k not in ("faces", "kind")}
        return cls(faces=faces, **rest)

    @classmethod
    def failed(cls, source: str, error: str, backend: str) -> EmotionAnalysis:
        return cls(source=source, width=0, height=0, faces=[], backend=backend, error=error)


def _plain(value: Any) -> Any:
    """Numpy scalars/arrays and tuples -> JSON-native Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return round(value, 4)
    return value
