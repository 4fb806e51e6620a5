"""Face detection: every face in an image, largest first.

Uses the BlazeFace models bundled with mediapipe 0.10.21:
- "short": the short-range model (faces within ~2 m, and tight pre-cropped faces),
- "full": the full-range model (small, distant faces in scene photos),
- "auto" (default): a cascade. The full-range model first; the short-range one only when
  the full-range one found nothing. The short-range model is the one that fires on tight
  crops and faces pasted into photos (measured on the 350 dev faces pasted 160 px into a
  400x600 photo: 282 found by short-range, 82 by full-range, 283 by either, 283 by the
  cascade), the full-range one finds the small faces in scene and group photos. Running
  one model where one suffices saves a short-range pass (~3 ms) on every photo with a face.
  A photo where the full-range model finds some faces but misses a close-up that only the
  short-range model would see loses that face: use "both" there.
- "both": both models on every image, merged by non-maximum suppression (the most recall,
  the most time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._mediapipe import import_mediapipe, native_stderr_silenced


@dataclass
class DetectedFace:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 pixels, clipped to the image
    score: float
    keypoints: np.ndarray  # (6, 2) pixels: right eye, left eye, nose tip, mouth, right ear, left ear

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])

    @property
    def size(self) -> float:
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FaceDetector:
    def __init__(
        self,
        model: str = "auto",
        min_confidence: float = 0.5,
        min_face_size: int = 12,
        nms_iou: float = 0.3,
        tile_above: int = 640,
    ):
        if model not in ("auto", "both", "short", "full"):
            raise ValueError(f"detector model {model!r}: expected auto, both, short or full")
        mp = import_mediapipe()
        selections = {"short": [0], "full": [1], "auto": [1, 0], "both": [1, 0]}[model]
        with native_stderr_silenced():
            self._detectors = [
                mp.solutions.face_detection.FaceDetection(model_selection=s, min_detection_confidence=min_confidence)
                for s in selections
            ]
        self.cascade = model == "auto"  # the second model runs only when the first found nothing
        self.min_face_size = min_face_size
        self.nms_iou = nms_iou
        self.tile_above = tile_above  # images with a longer side than this are also scanned in tiles

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """All faces at least `min_face_size` px on their short side, sorted by area (largest first)."""
        found: list[DetectedFace] = []
        for x0, y0, tile, detectors in self._tiles(rgb):
            th, tw = tile.shape[:2]
            for det in detectors:
                if self.cascade and found and det is not self._detectors[0]:
                    break  # the first model found faces: the second is not needed
                for d in det.process(tile).detections or []:
                    rb = d.location_data.relative_bounding_box
                    box = (
                        max(0.0, x0 + rb.xmin * tw),
                        max(0.0, y0 + rb.ymin * th),
                        min(float(rgb.shape[1]), x0 + (rb.xmin + rb.width) * tw),
                        min(float(rgb.shape[0]), y0 + (rb.ymin + rb.height) * th),
                    )
                    kps = np.array(
                        [[x0 + k.x * tw, y0 + k.y * th] for k in d.location_data.relative_keypoints], dtype=np.float32
                    )
                    face = DetectedFace(box=box, score=float(d.score[0]), keypoints=kps)
                    if face.size >= self.min_face_size:
                        found.append(face)
        kept: list[DetectedFace] = []
        for face in sorted(found, key=lambda f: -f.score):
            if all(box_iou(face.box, k.box) <= self.nms_iou for k in kept):
                kept.append(face)
        return sorted(kept, key=lambda f: -f.area)

    def _tiles(self, rgb: np.ndarray):
        """(x0, y0, tile, detectors): the whole image for every detector, plus tiles when it is large.

        The detectors see the image shrunk to 128 (short) or 192 px (full range), so a 50 px
        face in a 1024 px photo shrinks to ~9 px and is lost. A long axis above `tile_above`
        is also cut into two tiles of 60% of its length (20% overlap, so no face is cut in
        both); tiles go to the far-range model only, as the faces they rescue are small.
        """
        yield 0, 0, rgb, self._detectors
        h, w = rgb.shape[:2]
        if max(h, w) <= self.tile_above:
            return
        spans_y = [(0, int(0.6 * h)), (h - int(0.6 * h), h)] if h > self.tile_above else [(0, h)]
        spans_x = [(0, int(0.6 * w)), (w - int(0.6 * w), w)] if w > self.tile_above else [(0, w)]
        far = self._detectors[:1]  # full range in "auto", "both" and "full"; the only one in "short"
        for y0, y1 in spans_y:
            for x0, x1 in spans_x:
                yield x0, y0, np.ascontiguousarray(rgb[y0:y1, x0:x1]), far

    def close(self) -> None:
        for det in self._detectors:
            det.close()
