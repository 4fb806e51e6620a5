"""Requests that wait for the face front-end go through it together.

The gateway has one front-end per model (its mediapipe graphs are not thread-safe), so concurrent
requests queue for it. `FrontEndBatcher` lets the thread whose turn it is take every image queued
behind it (up to `max_batch`) into one `observe_many` call: one round trip to the front-end's
worker process, its networks run once over all the faces, and, what matters most on a CPU the
model server shares, the requests then reach the model server together, where one batched
decoding serves them all. One at a time, they arrived at a VLM server spaced by a front-end
call each, the server decoded them in batches of one or two, spent several times the CPU a request
that a batch of eight costs, and starved the front-end behind them (bench/serving.py).

A lone request goes through `observe` as before: batching costs it nothing. The caller that runs
a batch waits for the whole batch; the others wake when their result is in. An image the
front-end refuses gets its own error; the rest of the batch goes on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..types import FaceObservation


@dataclass(eq=False)
class _Waiting:
    rgb: np.ndarray
    outcome: Any = None  # the observations, or the exception to raise in the waiting thread
    done: bool = False


class FrontEndBatcher:
    """`observe(rgb)` from many threads; at most one front-end call runs at a time, over all that waits."""

    def __init__(self, frontend: Any, max_batch: int = 8):
        self.frontend = frontend
        self.max_batch = max(1, int(max_batch))
        self._queue: list[_Waiting] = []
        self._running = False  # a thread is in the front-end now
        self._changed = threading.Condition()

    def observe(self, rgb: np.ndarray) -> list[FaceObservation]:
        me = _Waiting(rgb)
        with self._changed:
            self._queue.append(me)
            while self._running and not me.done:
                self._changed.wait()
            batch: list[_Waiting] = []
            if not me.done:  # the front-end is free: this thread runs the next batch, its own image first
                self._queue.remove(me)
                batch, self._queue = [me, *self._queue[: self.max_batch - 1]], self._queue[self.max_batch - 1 :]
                self._running = True
        if batch:
            self._run(batch)
        if isinstance(me.outcome, BaseException):
            raise me.outcome
        return me.outcome

    def _run(self, batch: list[_Waiting]) -> None:
        outcomes: list[Any] = [RuntimeError("the face front-end call was interrupted")] * len(batch)
        try:
            if len(batch) == 1:
                outcomes = [self.frontend.observe(batch[0].rgb)]
            else:  # each image's observations, or the InputError it was refused with
                outcomes = list(self.frontend.observe_many([w.rgb for w in batch]))
        except Exception as exc:  # noqa: BLE001 - the batch's failure is every waiting request's to report
            outcomes = [exc] * len(batch)
        finally:  # whatever happened, the waiting threads wake and the next batch can run
            self._finish(batch, outcomes)

    def _finish(self, batch: list[_Waiting], outcomes: list[Any]) -> None:
        with self._changed:
            for waiting, outcome in zip(batch, outcomes):
                waiting.outcome, waiting.done = outcome, True
            self._running = False
            self._changed.notify_all()
