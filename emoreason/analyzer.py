"""The Python API: `Analyzer` runs the face front-end and a reasoning backend.

>>> from emoreason import Analyzer
>>> analyzer = Analyzer(backend="embedded")            # doctest: +SKIP
>>> result = analyzer.analyze("face.jpg")              # doctest: +SKIP
>>> result.faces[0].emotion, result.faces[0].text      # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .face.frontend import FaceFrontEnd, FrontEndConfig
from .imageio import DEFAULT_MAX_PIXELS, InputError, is_video, load_image
from .reasoning import get_backend
from .reasoning.base import analyze_batch
from .types import EmotionAnalysis, FaceObservation

if TYPE_CHECKING:
    from .face.worker import FrontEndPool, IsolatedFrontEnd
from .video import DEFAULT_SMOOTHING, AUSmoother, AUSmoothing, IoUTracker, VideoAnalysis, iter_frames, video_info


def _track_and_smooth(
    observations: list[FaceObservation], tracker: IoUTracker, smoother: AUSmoother | None, track_ids: list[int]
) -> None:
    """A video frame's faces, before the reasoning: link them to tracks (ids into `track_ids`), smooth their AUs."""
    track_ids[:] = tracker.assign([o.box for o in observations])
    if smoother is not None:
        for o, tid in zip(observations, track_ids):
            o.aus = smoother.apply(tid, o.aus)


class Analyzer:
    """Face front-end + reasoning backend. Not thread-safe: use one per worker thread.

    `isolate_frontend=True` runs the front-end in a worker process (a native crash costs one image);
    `workers=N` (N > 1) runs N such processes side by side and deals each batch's images out to them."""

    def __init__(
        self,
        backend: str = "embedded",
        face_mode: str = "detect",
        labels: Sequence[str] | None = None,
        frontend: FrontEndConfig | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        isolate_frontend: bool = False,
        workers: int = 1,
        **backend_options: Any,
    ):
        config = frontend or FrontEndConfig(face_mode=face_mode)
        self.workers = max(1, int(workers))
        self.frontend: FaceFrontEnd | IsolatedFrontEnd | FrontEndPool
        if self.workers > 1:  # one isolated front-end process per worker; images dealt out to them
            from .face.worker import FrontEndPool

            self.frontend = FrontEndPool(config, self.workers)
        elif isolate_frontend:  # a native crash on one image then costs that image, not this process
            from .face.worker import IsolatedFrontEnd

            self.frontend = IsolatedFrontEnd(config)
        else:
            self.frontend = FaceFrontEnd(config)
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
        """Analyse one decoded RGB array. Raises InputError when the front-end cannot take it."""
        result = self._analyze_arrays([(rgb, source, started or time.perf_counter())], face_mode, labels)[0]
        if result.error:
            raise InputError(source, result.error.removeprefix(f"{source}: "))
        return result

    def analyze_batch(
        self,
        images: Sequence[str | os.PathLike | bytes | np.ndarray | Any],
        face_mode: str | None = None,
        labels: Sequence[str] | None = None,
    ) -> list[EmotionAnalysis]:
        """Analyse several images; backends that batch (transformers) generate for all their faces together.

        A bad input gives a result with `.error` set in its place; the others go on.
        """
        decoded: list[tuple[np.ndarray, str, float]] = []
        results: dict[int, EmotionAnalysis] = {}
        for i, image in enumerate(images):
            t0 = time.perf_counter()
            source = str(image) if isinstance(image, (str, os.PathLike)) else "<image>"
            try:
                decoded.append((load_image(image, max_pixels=self.max_pixels, name=source), source, t0))
            except InputError as exc:
                results[i] = EmotionAnalysis.failed(source, str(exc), self.backend.name)
        analysed = iter(self._analyze_arrays(decoded, face_mode, labels))
        return [results[i] if i in results else next(analysed) for i in range(len(images))]

    def _analyze_arrays(
        self,
        arrays: Sequence[tuple[np.ndarray, str, float]],
        face_mode: str | None,
        labels: Sequence[str] | None,
        prepare: Callable[[list[FaceObservation]], None] | None = None,
    ) -> list[EmotionAnalysis]:
        """Front-end on each image, then one batched call to the backend for all their faces.

        `prepare`, when given, sees each image's observations between the two (video: tracking and AU
        smoothing, so that the reasoning is written from what is shown). An image the front-end refuses
        (or crashes on) gets a failed result; the others go on."""
        items, frontend_ms, observed, failed = [], [], [], {}
        t1 = time.perf_counter()
        per_image = self.frontend.observe_many([rgb for rgb, _, _ in arrays], face_mode=face_mode)
        # The front-end ran once for the batch (its networks over all faces together): each image its share.
        frontend_share = (time.perf_counter() - t1) * 1000 / max(1, len(arrays))
        starts = [t0 for _, _, t0 in arrays] + [t1]  # each image was decoded from its start to the next one's
        for i, ((rgb, source, _), observations) in enumerate(zip(arrays, per_image)):
            if isinstance(observations, InputError):
                failed[i] = EmotionAnalysis.failed(source, f"{source}: {observations.reason}", self.backend.name)
                continue
            if prepare is not None:
                prepare(observations)
            items.append((observations, rgb))
            observed.append(arrays[i])
            frontend_ms.append(((starts[i + 1] - starts[i]) * 1000, frontend_share))
        t2 = time.perf_counter()
        faces_per_image = analyze_batch(self.backend, items, labels=labels or self.labels) if items else []
        # A batched call has one duration: each image is charged its share.
        reasoning_ms = (time.perf_counter() - t2) * 1000 / max(1, len(items))
        out = []
        for (rgb, source, _), faces, (decode_ms, frontend) in zip(observed, faces_per_image, frontend_ms):
            out.append(
                EmotionAnalysis(
                    source=source,
                    width=int(rgb.shape[1]),
                    height=int(rgb.shape[0]),
                    faces=faces,
                    backend=self.backend.name,
                    model=self.backend.model,
                    timings={
                        "decode": round(decode_ms, 2),
                        "frontend": round(frontend, 2),
                        "reasoning": round(reasoning_ms, 2),
                        "total": round(decode_ms + frontend + reasoning_ms, 2),
                    },
                )
            )
        done = iter(out)
        return [failed[i] if i in failed else next(done) for i in range(len(arrays))]

    def analyze_many(self, paths: Iterable[str], **kwargs: Any) -> Iterator[EmotionAnalysis | VideoAnalysis]:
        """Analyse each path in turn; a bad input yields a result with `.error` set, and the batch goes on.

        Consecutive images are grouped by the backend's `batch_size` (8 for the embedded engine): the
        front-end runs its networks once per group, the backend answers the group in one call.
        """
        batch_size = max(1, int(self.backend.batch_size)) * self.workers
        image_kwargs = {k: v for k, v in kwargs.items() if k in ("face_mode", "labels")}
        pending: list[str] = []
        for path in paths:
            if is_video(path):
                yield from self.analyze_batch(pending, **image_kwargs) if pending else ()
                pending = []
                try:
                    video_kwargs = {k: v for k, v in kwargs.items() if k in ("fps", "labels", "smoothing")}
                    yield self.analyze_video(path, **video_kwargs)
                except InputError as exc:
                    yield EmotionAnalysis.failed(path, str(exc), self.backend.name)
                continue
            pending.append(path)
            if len(pending) >= batch_size:
                yield from self.analyze_batch(pending, **image_kwargs)
                pending = []
        if pending:
            yield from self.analyze_batch(pending, **image_kwargs)

    def analyze_video(
        self,
        path: str,
        fps: float = 2.0,
        labels: Sequence[str] | None = None,
        max_frames: int | None = None,
        smoothing: AUSmoothing | None = DEFAULT_SMOOTHING,
    ) -> VideoAnalysis:
        """Sample frames at `fps`, link faces into tracks, smooth each track's AUs (`smoothing`; None: raw per
        frame), reason about each frame from the smoothed AUs, summarise per track."""
        if not os.path.exists(path):
            raise InputError(path, "file not found")
        native, duration = video_info(path)
        tracker = IoUTracker()
        smoother = AUSmoother(smoothing) if smoothing is not None else None
        frames = []
        for index, time_s, rgb in iter_frames(path, fps=fps, max_frames=max_frames):
            track_ids: list[int] = []
            prepare = functools.partial(_track_and_smooth, tracker=tracker, smoother=smoother, track_ids=track_ids)
            analysis = self._analyze_arrays([(rgb, path, time.perf_counter())], None, labels, prepare)[0]
            if analysis.error:
                raise InputError(path, analysis.error.removeprefix(f"{path}: "))
            analysis.frame_index, analysis.time_s = index, round(time_s, 3)
            tracker.record(analysis, track_ids)
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
