"""The Python API: `Analyzer` runs the face front-end and a reasoning backend.

>>> from emoreason import Analyzer
>>> analyzer = Analyzer(backend="embedded")            # doctest: +SKIP
>>> result = analyzer.analyze("face.jpg")              # doctest: +SKIP
>>> result.faces[0].emotion, result.faces[0].text      # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .face.frontend import FaceFrontEnd, FrontEndConfig
from .imageio import DEFAULT_MAX_PIXELS, InputError, is_video, load_image
from .reasoning import get_backend
from .types import EmotionAnalysis
from .video import IoUTracker, VideoAnalysis, iter_frames, video_info


class Analyzer:
    """Face front-end + reasoning backend. Not thread-safe: use one per worker thread."""

    def __init__(
        self,
        backend: str = "embedded",
        face_mode: str = "detect",
        labels: Sequence[str] | None = None,
        frontend: FrontEndConfig | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        **backend_options: Any,
    ):
        self.frontend = FaceFrontEnd(frontend or FrontEndConfig(face_mode=face_mode))
        self.face_mode = face_mode if frontend is None else frontend.face_mode
        self.backend = get_backend(backend, **backend_options)
        self.labels = list(labels) if labels else None
        self.max_pixels = max_pixels

    def analyze(
        self,
        image: str | os.PathLike | bytes | np.ndarray | Any,
        face_mode: str | None = None,
        labels: Sequence[str] | None = None,
        name: str | None = None,
    ) -> EmotionAnalysis:
        """Analyse one image (path, bytes, PIL image or RGB array). Raises InputError on bad input."""
        t0 = time.perf_counter()
        source = name or (str(image) if isinstance(image, (str, os.PathLike)) else "<image>")
        rgb = load_image(image, max_pixels=self.max_pixels, name=source)
        return self.analyze_array(rgb, source, face_mode=face_mode, labels=labels, started=t0)

    def analyze_array(
        self,
        rgb: np.ndarray,
        source: str = "<array>",
        face_mode: str | None = None,
        labels: Sequence[str] | None = None,
        started: float | None = None,
    ) -> EmotionAnalysis:
        t0 = started or time.perf_counter()
        t1 = time.perf_counter()
        observations = self.frontend.observe(rgb, face_mode=face_mode)
        t2 = time.perf_counter()
        faces = self.backend.analyze(observations, image=rgb, labels=labels or self.labels)
        t3 = time.perf_counter()
        return EmotionAnalysis(
            source=source,
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            faces=faces,
            backend=self.backend.name,
            model=self.backend.model,
            timings={
                "decode": round((t1 - t0) * 1000, 2),
                "frontend": round((t2 - t1) * 1000, 2),
                "reasoning": round((t3 - t2) * 1000, 2),
                "total": round((t3 - t0) * 1000, 2),
            },
        )

    def analyze_many(self, paths: Iterable[str], **kwargs: Any) -> Iterator[EmotionAnalysis | VideoAnalysis]:
        """Analyse each path in turn; a bad input yields a result with `.error` set, and the batch goes on."""
        for path in paths:
            try:
                if is_video(path):
                    yield self.analyze_video(path, **{k: v for k, v in kwargs.items() if k in ("fps", "labels")})
                else:
                    yield self.analyze(path, **{k: v for k, v in kwargs.items() if k in ("face_mode", "labels")})
            except InputError as exc:
                yield EmotionAnalysis.failed(path, str(exc), self.backend.name)

    def analyze_video(
        self, path: str, fps: float = 2.0, labels: Sequence[str] | None = None, max_frames: int | None = None
    ) -> VideoAnalysis:
        """Sample frames at `fps`, analyse each, link faces into tracks, summarise per track."""
        if not os.path.exists(path):
            raise InputError(path, "file not found")
        native, duration = video_info(path)
        tracker = IoUTracker()
        frames = []
        for index, time_s, rgb in iter_frames(path, fps=fps, max_frames=max_frames):
            analysis = self.analyze_array(rgb, source=path, labels=labels)
            analysis.frame_index, analysis.time_s = index, round(time_s, 3)
            tracker.update(analysis)
            frames.append(analysis)
        if not frames:
            raise InputError(path, "no frames could be decoded")
        return VideoAnalysis(
            source=path, fps=min(fps, native), duration_s=round(duration, 3), frames=frames, tracks=tracker.tracks
        )

    def close(self) -> None:
        self.frontend.close()

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
