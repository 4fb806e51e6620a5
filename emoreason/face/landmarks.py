"""Dense landmarks (mediapipe's 478-point face mesh) and head pose for one face.

The mesh model is run on a square crop around each detected face rather than on the whole
image: that makes it follow OUR detections one by one (every face, in our order) and lets us
upscale and pad small faces. Measured on 48x48 FER2013 crops: the mesh found 88% of faces
as they are and 95% after upscaling and padding 25% with black, with half the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ._mediapipe import import_mediapipe, native_stderr_silenced

# Mesh indices used throughout (the subject's right side is on the image's left).
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133
LEFT_EYE_OUTER, LEFT_EYE_INNER = 263, 362
FOREHEAD, CHIN = 10, 152
MESH_INPUT = 256  # side of the square crop handed to the mesh model


@dataclass
class FaceGeometry:
    """Landmarks in image pixels plus the same points in a pose-normalised face frame.

    The face frame has its origin between the eyes, x along the eye line (towards the
    subject's left eye), y down the face (forehead -> chin, orthogonalised), z out of the face,
    and units of inter-ocular distance (IOD). Measurements taken in it do not change with
    face size, in-plane rotation (roll) and, to first order, yaw and pitch.
    """

    points: np.ndarray  # (478, 3) image pixels; z in the same pixel scale
    frame: np.ndarray  # (478, 3) face frame, IOD units
    iod: float  # inter-ocular distance in pixels
    roll: float  # degrees, positive = head tilted clockwise in the image
    yaw: float  # degrees
    pitch: float  # degrees

    @property
    def eye_centers(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.points
        return (p[RIGHT_EYE_OUTER, :2] + p[RIGHT_EYE_INNER, :2]) / 2, (
            p[LEFT_EYE_OUTER, :2] + p[LEFT_EYE_INNER, :2]
        ) / 2

    def pose(self) -> dict[str, float]:
        return {"roll": round(self.roll, 1), "yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1)}


def face_geometry(points: np.ndarray) -> FaceGeometry:
    """Build the pose-normalised frame from 3-D mesh points (pixels)."""
    p = points.astype(np.float64)
    right_eye = (p[RIGHT_EYE_OUTER] + p[RIGHT_EYE_INNER]) / 2
    left_eye = (p[LEFT_EYE_OUTER] + p[LEFT_EYE_INNER]) / 2
    x_axis = left_eye - right_eye
    iod = float(np.linalg.norm(x_axis))
    x_axis /= max(iod, 1e-6)
    down = p[CHIN] - p[FOREHEAD]
    y_axis = down - np.dot(down, x_axis) * x_axis
    y_axis /= max(float(np.linalg.norm(y_axis)), 1e-6)
    z_axis = np.cross(x_axis, y_axis)
    rot = np.stack([x_axis, y_axis, z_axis])  # rows: frame axes in image coordinates
    origin = (right_eye + left_eye) / 2
    frame = (p - origin) @ rot.T / max(iod, 1e-6)
    roll = float(np.degrees(np.arctan2(x_axis[1], x_axis[0])))
    yaw = float(np.degrees(np.arcsin(np.clip(x_axis[2], -1, 1))))
    pitch = float(np.degrees(np.arcsin(np.clip(-y_axis[2], -1, 1))))
    return FaceGeometry(
        points=points.astype(np.float32), frame=frame.astype(np.float32), iod=iod, roll=roll, yaw=yaw, pitch=pitch
    )


# A serialised NormalizedLandmarkList whose landmarks carry only x, y, z (what the mesh returns): each one is
# a 17-byte record, 0x0a 0x0f | 0x0d <x float32> | 0x15 <y float32> | 0x1d <z float32>.
_RECORD = 17
_TAGS = ((0, 0x0A), (1, 0x0F), (2, 0x0D), (7, 0x15), (12, 0x1D))


def landmark_array(landmarks) -> np.ndarray:
    """(N, 3) float64 normalised x, y, z from mediapipe's landmark list.

    Reads the serialised message with numpy (0.03 ms) instead of touching 478 x 3 protobuf
    attributes from Python (0.5 ms); any other layout (visibility or presence set) takes the slow path.
    """
    raw = np.frombuffer(landmarks.SerializeToString(), dtype=np.uint8)
    if raw.size and raw.size % _RECORD == 0:
        rows = raw.reshape(-1, _RECORD)
        if all((rows[:, i] == tag).all() for i, tag in _TAGS):
            xyz = np.ascontiguousarray(rows[:, [3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16]]).view("<f4")
            return xyz.reshape(-1, 3).astype(np.float64)
    return np.array([[q.x, q.y, q.z] for q in landmarks.landmark], dtype=np.float64)


def square_crop_transform(center: tuple[float, float], side: float, out_size: int) -> np.ndarray:
    """2x3 affine mapping image pixels into an out_size square crop of `side` pixels around `center`."""
    s = out_size / side
    cx, cy = center
    return np.array([[s, 0, out_size / 2 - s * cx], [0, s, out_size / 2 - s * cy]], dtype=np.float64)


@lru_cache(maxsize=1)
def _warmup_face() -> np.ndarray:
    """A real face on the mesh's input canvas (scikit-image's astronaut, public domain), for the warm-up run."""
    from skimage import data

    face = data.astronaut()[20:250, 130:330]
    return cv2.resize(face, (MESH_INPUT, MESH_INPUT), interpolation=cv2.INTER_AREA)


class FaceMesher:
    """Runs the mesh on one face at a time, on an upscaled, padded square crop."""

    def __init__(self, min_confidence: float = 0.3):
        mp = import_mediapipe()
        with native_stderr_silenced():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=1,
                refine_landmarks=True,
                min_detection_confidence=min_confidence,
            )
            self._mesh.process(_warmup_face())  # the first run logs a native warning: let it happen here

    def fit(
        self, rgb: np.ndarray, box: tuple[float, float, float, float], context: float = 1.6
    ) -> FaceGeometry | None:
        """Landmarks for the face in `box` (x0, y0, x1, y1); None when the mesh finds no face there.

        `context` is the crop side relative to the box (1.6 for detector boxes, which are
        tight; 1.5 for a whole pre-cropped image, i.e. 25% black padding per side).
        """
        x0, y0, x1, y1 = box
        side = max(x1 - x0, y1 - y0) * context
        if side < 4:
            return None
        center = ((x0 + x1) / 2, (y0 + y1) / 2)
        m = square_crop_transform(center, side, MESH_INPUT)
        # Bilinear, not bicubic: 4x faster (0.5 vs 2.2 ms) and measured as good for the mesh (on the 350 dev
        # faces, 48 px upscaled: 343 meshes found vs 341, landmarks 0.35 px apart on average).
        crop = cv2.warpAffine(
            rgb, m, (MESH_INPUT, MESH_INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        pts = landmark_array(result.multi_face_landmarks[0]) * MESH_INPUT
        scale = side / MESH_INPUT  # crop pixels -> image pixels
        pts[:, 0] = (pts[:, 0] - MESH_INPUT / 2) * scale + center[0]
        pts[:, 1] = (pts[:, 1] - MESH_INPUT / 2) * scale + center[1]
        pts[:, 2] *= scale
        return face_geometry(pts)

    def close(self) -> None:
        self._mesh.close()
