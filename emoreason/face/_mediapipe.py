"""Import and start mediapipe quietly.

Its C++ logging (TFLite's "Created TensorFlow Lite XNNPACK delegate", absl's "All log messages
before absl::InitializeLog()", a "Feedback manager" warning per graph and a
"landmark_projection_calculator" warning on the first mesh) goes straight to file descriptor 2;
environment variables do not reach it in mediapipe 0.10.21 (measured). So the graphs are built,
and the mesh warmed up once, with fd 2 pointed at /dev/null. `EMOREASON_VERBOSE=1` (or the CLI's
`--verbose`) keeps it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()


def import_mediapipe():
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with native_stderr_silenced():
            import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - install problem, not a code path
        raise ImportError(
            "emoreason needs mediapipe==0.10.21 (the last release that ships its face models): "
            "pip install 'mediapipe==0.10.21'"
        ) from exc
    return mp


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (native libraries' logging), unless verbose.

    Python's own stderr writes in the block are flushed first and go nowhere meanwhile: keep the
    block to graph construction, not to work other threads may log around.
    """
    if os.environ.get("EMOREASON_VERBOSE") or not _has_fd(2):
        yield
        return
    with _LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def _has_fd(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
