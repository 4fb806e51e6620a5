"""Import mediapipe quietly (its C++ logging otherwise floods stderr on every start)."""

from __future__ import annotations

import os


def import_mediapipe():
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - install problem, not a code path
        raise ImportError(
            "emoreason needs mediapipe==0.10.21 (the last release that ships its face models): "
            "pip install 'mediapipe==0.10.21'"
        ) from exc
    return mp
