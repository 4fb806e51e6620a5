"""emoreason: explainable facial emotion analysis from Action Units.

Imports are lazy so that `emoreason --help` and the torchvision import hook stay fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "Analyzer",
    "EmotionAnalysis",
    "FaceAnalysis",
    "FaceObservation",
    "AUActivation",
    "InputError",
    "FrontEndConfig",
    "__version__",
]

_LAZY = {
    "Analyzer": "emoreason.analyzer",
    "EmotionAnalysis": "emoreason.types",
    "FaceAnalysis": "emoreason.types",
    "FaceObservation": "emoreason.types",
    "AUActivation": "emoreason.types",
    "InputError": "emoreason.imageio",
    "FrontEndConfig": "emoreason.face.frontend",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emoreason' has no attribute {name!r}")
