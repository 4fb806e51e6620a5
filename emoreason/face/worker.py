"""The face front-end in a child process: a native crash costs one image, not the program.

mediapipe and OpenCV are C++. Some inputs make them abort the whole process (an uncaught
`cv::Exception` is a SIGABRT), which no Python `try` can catch; size checks
(`imageio.check_dimensions`) stop the known cases, and this worker contains the unknown
ones. `IsolatedFrontEnd` has the `FaceFrontEnd` interface (`observe`, `close`) and runs a
`FaceFrontEnd` in a spawned child. When the child dies mid-image, that call raises
`FrontEndCrashed` (an `InputError`, so batches record it against the image and go on), and
the next call starts a fresh child. A call that overruns its deadline kills the child, so a
stuck image cannot hold the worker.

The gateway and the CLI's `analyze` and `eval` use it; the Python API's `Analyzer` does when
asked (`isolate_frontend=True`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from typing import Any

import numpy as np

from ..imageio import InputError, check_dimensions
from ..types import FaceObservation
from .frontend import FaceFrontEnd, FrontEndConfig

START_TIMEOUT_S = 180.0  # importing torch + mediapipe and loading the graphs, on a busy 2-core machine
SHARED_ABOVE_BYTES = 1 << 20  # pixels larger than this travel through shared memory, not the pipe


class _Shared:
    """An image's pixels in a shared-memory block: the parent copies them in (numpy's copy, no pickling),
    the child copies them out. A 24 MP image pickled through the pipe held the parent's interpreter for the
    whole copy and write, which is what delayed the gateway's 429s and /health under large uploads."""

    def __init__(self, rgb: np.ndarray):
        from multiprocessing import shared_memory

        self.block = shared_memory.SharedMemory(create=True, size=rgb.nbytes)
        np.copyto(np.ndarray(rgb.shape, rgb.dtype, buffer=self.block.buf), rgb)
        self.ref = ("shared", self.block.name, rgb.shape, rgb.dtype.str)

    def release(self) -> None:
        self.block.close()
        self.block.unlink()


def _to_wire(rgb: np.ndarray, shared: list[_Shared]) -> Any:
    """The pixels as sent to the child: the array itself, or a shared-memory reference for a large one."""
    rgb = np.ascontiguousarray(rgb)
    if rgb.nbytes <= SHARED_ABOVE_BYTES:
        return rgb
    shared.append(_Shared(rgb))
    return shared[-1].ref


def _from_wire(item: Any) -> np.ndarray:
    """In the child: the pixels back from what `_to_wire` sent."""
    if isinstance(item, np.ndarray):
        return item
    from multiprocessing import shared_memory

    _, name, shape, dtype = item
    # Attaching registers the block with the resource tracker the child shares with its parent (spawn passes it
    # on): the same entry the parent made, which its unlink removes. No unregister here: that would remove it.
    block = shared_memory.SharedMemory(name=name)
    try:
        view = np.ndarray(shape, np.dtype(dtype), buffer=block.buf)
        rgb = view.copy()
        del view  # the block cannot close while a view of it lives
    finally:
        block.close()
    return rgb


class FrontEndCrashed(InputError):
    """The front-end's process died (or overran its deadline) on this image; it is restarted for the next."""


def _child(conn, config: FrontEndConfig, threads: int | None = None) -> None:
    """The worker's loop: ("observe", rgb, face_mode) -> ("ok", observations) | ("error", exception);
    ("observe_many", images, face_mode) -> ("ok", [observations or InputError per image])."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes us
    if threads:  # several front-ends share the cores: each network runs on its share, not on all of them
        import torch

        torch.set_num_threads(threads)
    try:
        frontend = FaceFrontEnd(config)
    except Exception as exc:  # noqa: BLE001 - sent to the parent, which raises it
        conn.send(("error", RuntimeError(f"face front-end failed to start: {type(exc).__name__}: {exc}")))
        return
    conn.send(("ready", None))
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:  # the parent has gone
                return
            if message[0] == "close":
                return
            command, pixels, face_mode = message
            try:
                if command == "observe_many":
                    images = [_from_wire(x) for x in pixels]
                    conn.send(("ok", frontend.observe_many(images, face_mode=face_mode)))
                else:
                    conn.send(("ok", frontend.observe(_from_wire(pixels), face_mode=face_mode)))
            except InputError as exc:
                conn.send(("error", exc))
            except Exception as exc:  # noqa: BLE001 - a Python failure on one image is that image's error
                conn.send(("error", InputError("<image>", f"face front-end error: {type(exc).__name__}: {exc}")))
    finally:
        frontend.close()


class IsolatedFrontEnd:
    """A `FaceFrontEnd` in a child process (see the module docstring). Thread-safe: calls are serialised."""

    def __init__(self, config: FrontEndConfig | None = None, timeout_s: float | None = None,
                 threads: int | None = None):  # fmt: skip
        self.config = config or FrontEndConfig()
        self.timeout_s = timeout_s  # per image; None = no deadline
        self.threads = threads  # torch threads in the child; None = torch's default (all cores)
        self._context = multiprocessing.get_context("spawn")  # no fork: the parent may run threads
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Any = None
        self.restarts = 0  # children started after a crash
        self.busy = False  # an image is with the child now
        self._start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_child, args=(child, self.config, self.threads), daemon=True,
                                        name="emoreason-frontend")  # fmt: skip
        process.start()
        child.close()
        if not parent.poll(START_TIMEOUT_S):
            process.kill()
            raise RuntimeError(f"the face front-end did not start within {START_TIMEOUT_S:g} s")
        try:
            status, payload = parent.recv()
        except EOFError:
            process.join(5)
            raise RuntimeError(f"the face front-end died while starting (exit code {process.exitcode})") from None
        if status != "ready":
            process.join(5)
            raise payload
        self._process, self._conn = process, parent

    def observe(self, rgb: np.ndarray, face_mode: str | None = None, source: str = "<image>") -> list[FaceObservation]:
        check_dimensions(rgb.shape[1], rgb.shape[0], source)  # refused here costs no round trip
        shared: list[_Shared] = []
        try:
            status, payload = self._call(("observe", _to_wire(rgb, shared), face_mode), source, self.timeout_s)
        finally:
            for block in shared:
                block.release()
        if status == "error":
            if isinstance(payload, InputError) and payload.source == "<image>":
                raise InputError(source, payload.reason)
            raise payload
        return payload

    def observe_many(
        self, images: list[np.ndarray], face_mode: str | None = None
    ) -> list[list[FaceObservation] | InputError]:
        """The batch in one round trip (the child runs its networks once over all the faces). When the child
        crashes on the batch, the images go again one at a time, so the crash costs only the image behind it."""
        if len(images) < 2:
            return [self._observe_or_error(rgb, face_mode) for rgb in images]
        deadline = None if self.timeout_s is None else self.timeout_s * len(images)
        shared: list[_Shared] = []
        try:
            wire = [_to_wire(x, shared) for x in images]
            status, payload = self._call(("observe_many", wire, face_mode), "<batch>", deadline)
        except FrontEndCrashed:
            return [self._observe_or_error(rgb, face_mode) for rgb in images]
        finally:
            for block in shared:
                block.release()
        if status == "error":
            raise payload
        return payload

    def _observe_or_error(self, rgb: np.ndarray, face_mode: str | None) -> list[FaceObservation] | InputError:
        try:
            return self.observe(rgb, face_mode)
        except InputError as exc:
            return exc

    def _call(self, message: tuple, source: str, deadline_s: float | None) -> tuple[str, Any]:
        """One round trip to the child: (status, payload). Raises FrontEndCrashed when it dies or overruns."""
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._restart()
            self.busy = True
            # The deadline is a timer that kills the child: it also frees a send that blocks on a stuck child.
            overran = threading.Event()
            process = self._process
            watchdog = None
            if deadline_s is not None:
                watchdog = threading.Timer(deadline_s, lambda: (overran.set(), process.kill()))
                watchdog.start()
            try:
                self._conn.send(message)
                return self._conn.recv()
            except (EOFError, OSError):  # the child died: BrokenPipe on send, EOF on receive
                how = self._reap()
                if overran.is_set():
                    raise FrontEndCrashed(source, f"the face front-end took longer than {deadline_s:g} s "
                                                  "on this image and was restarted") from None  # fmt: skip
                raise FrontEndCrashed(source, f"the face front-end crashed on this image ({how}); "
                                              "it was restarted") from None  # fmt: skip
            finally:
                self.busy = False
                if watchdog is not None:
                    watchdog.cancel()

    def _reap(self) -> str:
        """Collect the dead child; how it ended, in words."""
        process, self._process = self._process, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        process.join(10)
        code = process.exitcode
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def _restart(self) -> None:
        if self._process is not None:
            self._reap()
        self.restarts += 1
        self._start()

    def close(self) -> None:
        with self._lock:
            if self._process is None:
                return
            with contextlib.suppress(OSError):  # already gone: nothing to tell it
                self._conn.send(("close",))
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
            self._reap()

    def __enter__(self) -> IsolatedFrontEnd:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class FrontEndPool:
    """N isolated front-ends side by side: `observe_many` deals a batch's images out to them round-robin and
    runs them in parallel (mediapipe's graphs are not thread-safe, so parallelism is one process per front-end).
    Each member keeps IsolatedFrontEnd's guarantees: a crash costs one image, a stuck image its deadline."""

    def __init__(self, config: FrontEndConfig | None = None, workers: int = 2, timeout_s: float | None = None):
        from concurrent.futures import ThreadPoolExecutor

        if workers < 1:
            raise ValueError(f"workers {workers}: expected at least 1")
        self.config = config or FrontEndConfig()
        threads = max(1, (os.cpu_count() or 1) // workers)
        self.members = [IsolatedFrontEnd(self.config, timeout_s, threads) for _ in range(workers)]
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="emoreason-frontend")

    def observe(self, rgb: np.ndarray, face_mode: str | None = None, source: str = "<image>") -> list[FaceObservation]:
        member = next((m for m in self.members if not m.busy), self.members[0])
        return member.observe(rgb, face_mode, source)

    def observe_many(
        self, images: list[np.ndarray], face_mode: str | None = None
    ) -> list[list[FaceObservation] | InputError]:
        n = len(self.members)
        shares = [images[k::n] for k in range(n)]
        futures = [self._threads.submit(member.observe_many, share, face_mode)
                   for member, share in zip(self.members, shares) if share]  # fmt: skip
        out: list[Any] = [None] * len(images)
        for k, future in enumerate(futures):
            for j, result in enumerate(future.result()):
                out[k + j * n] = result
        return out

    def close(self) -> None:
        for member in self.members:
            member.close()
        self._threads.shutdown(wait=False)

    def __enter__(self) -> FrontEndPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
