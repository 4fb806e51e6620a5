"""One model the gateway serves: a face front-end and a reasoning backend, safe to call from threads.

The front-end (mediapipe graphs) is not thread-safe: one lock. The embedded engine and the
OpenAI-compatible client (a vLLM server) are; the in-process transformers backend is not
and gets a lock of its own. Follow-up questions go to the model for VLM backends (the
analysis conversation, the model's own answer, then the follow-up turns) and to the FACS
comparison in followup.py for the embedded engine. A follow-up re-sends its image; the
engine keeps its recent analyses by the image's bytes (`RecentAnalyses`), so a follow-up
does not run the front-end and the model's first answer again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analyzer import Analyzer
from ..defaults import FOLLOW_UP_CACHE_BYTES, FRONTEND_MAX_BATCH
from ..reasoning.base import analyze_batch
from ..types import EmotionAnalysis, FaceObservation
from .batching import FrontEndBatcher
from .followup import answer_follow_up


@dataclass
class Analysed:
    analysis: EmotionAnalysis
    observations: list[FaceObservation]
    image: np.ndarray | None = None  # the pixels analysed (a follow-up re-sends the first turn exactly)


class RecentAnalyses:
    """The latest analyses by key (the SHA-256 of the image's bytes), least recently used out first, bounded
    by the pixels they hold (an analysis keeps its image: a VLM's follow-up re-sends the first turn)."""

    def __init__(self, max_bytes: int = FOLLOW_UP_CACHE_BYTES):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Analysed] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _size(analysed: Analysed) -> int:
        return 0 if analysed.image is None else int(analysed.image.nbytes)

    def get(self, key: str) -> Analysed | None:
        with self._lock:
            analysed = self._items.get(key)
            if analysed is not None:
                self._items.move_to_end(key)
            return analysed

    def put(self, key: str, analysed: Analysed) -> None:
        with self._lock:
            if key in self._items:
                self._bytes -= self._size(self._items.pop(key))
            if self._size(analysed) > self.max_bytes:
                return
            self._items[key] = analysed
            self._bytes += self._size(analysed)
            while self._bytes > self.max_bytes:
                self._bytes -= self._size(self._items.popitem(last=False)[1])

    def __len__(self) -> int:
        return len(self._items)


def face_header(index: int, box) -> str:
    """The line that introduces one face's analysis in a multi-face reply."""
    return f"Face {index + 1} (box {', '.join(str(int(v)) for v in box)}):\n"


class Engine:
    def __init__(self, name: str, analyzer: Analyzer, frontend_batch: int = FRONTEND_MAX_BATCH):
        self.name = name
        self.analyzer = analyzer
        # concurrent requests go through the front-end together, up to `frontend_batch` images a call (one call
        # at a time: mediapipe is not thread-safe; 1 = each request alone)
        self.frontend = FrontEndBatcher(analyzer.frontend, max_batch=frontend_batch)
        self._backend_lock = contextlib.nullcontext() if analyzer.backend.thread_safe else threading.Lock()
        self.recent = RecentAnalyses()  # what follow-ups about the same image are answered from

    @property
    def backend(self) -> str:
        return self.analyzer.backend.name

    def observe(self, rgb: np.ndarray) -> list[FaceObservation]:
        """The front-end on one image (in its worker process when the analyzer isolates it), batched with the
        images of other requests that wait for it meanwhile."""
        return self.frontend.observe(rgb)

    def analyze(self, rgb: np.ndarray, source: str = "request", key: str | None = None) -> Analysed:
        """The front-end and the reasoning on one image; kept as `key` in `recent` unless a face failed."""
        t0 = time.perf_counter()
        observations = self.observe(rgb)
        t1 = time.perf_counter()
        with self._backend_lock:
            faces = analyze_batch(self.analyzer.backend, [(observations, rgb)], labels=self.analyzer.labels)[0]
        return self._analysed(rgb, source, observations, faces, t0, t1, key)

    @property
    def streams(self) -> bool:
        """Whether the backend streams tokens as it generates (a VLM server)."""
        return self.analyzer.backend.streams

    def stream(
        self,
        rgb: np.ndarray,
        observations: list[FaceObservation],
        frontend_s: float,
        source: str = "request",
        key: str | None = None,
    ) -> Iterator[str | Analysed]:
        """The analysis text as the model writes it (str pieces; with several faces each after a header),
        then the finished `Analysed`. The front-end ran first (`observe`, taking `frontend_s`), so that its
        failures are answered before the stream starts."""
        from ..reasoning.vlm import Generation, to_face_analysis

        t1 = time.perf_counter()
        t0 = t1 - frontend_s
        backend = self.analyzer.backend
        requests = backend.requests([(observations, rgb)], self.analyzer.labels)
        faces = []
        for i, (request, video) in enumerate(zip(requests, backend.video_parts(requests))):
            if len(requests) > 1:
                yield ("\n\n" if i else "") + face_header(i, request.observation.box)
            for piece in backend.generate_streaming(request, video):
                if isinstance(piece, Generation):
                    faces.append(to_face_analysis(request, piece))
                else:
                    yield piece
        yield self._analysed(rgb, source, observations, faces, t0, t1, key)

    def _analysed(self, rgb, source: str, observations, faces, t0: float, t1: float, key: str | None) -> Analysed:
        """The result of one image; t0: start, t1: front-end done, now: reasoning done (milliseconds)."""
        t2 = time.perf_counter()
        analysis = EmotionAnalysis(
            source=source,
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            faces=faces,
            backend=self.backend,
            model=self.analyzer.backend.model,
            timings={
                k: round(v * 1000, 2) for k, v in (("frontend", t1 - t0), ("reasoning", t2 - t1), ("total", t2 - t0))
            },
        )
        analysed = Analysed(analysis, list(observations), rgb)
        if key is not None and not any(face.error for face in faces):
            self.recent.put(key, analysed)
        return analysed

    def follow_up(self, analysed: Analysed, turns: list[dict[str, Any]]) -> str:
        """Answer the last user turn of `turns` (the conversation after the image's turn) about the first face."""
        face = analysed.analysis.faces[0]
        question = turns[-1]["content"]
        backend = self.analyzer.backend
        if not backend.chats:  # no chat model to ask (embedded engine): the FACS comparison
            return answer_follow_up(face, question)
        first = backend.first_turn(analysed.observations, analysed.image, self.analyzer.labels)
        return backend.chat([*first, {"role": "assistant", "content": face.text}, *turns])

    def close(self) -> None:
        self.analyzer.close()
