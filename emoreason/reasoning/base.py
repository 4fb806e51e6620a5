"""What every reasoning backend provides, and the registry the CLI/API pick backends from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..types import FaceAnalysis, FaceObservation


class ReasoningBackend(Protocol):
    name: str
    model: str | None

    def analyze(
        self,
        observations: Sequence[FaceObservation],
        image: np.ndarray | None = None,
        labels: Sequence[str] | None = None,
    ) -> list[FaceAnalysis]:
        """One FaceAnalysis per observation, in order. `labels` restricts the answer set."""
        ...

    # Optional: `analyze_batch(items, labels)` for backends that batch faces across images
    # (items = [(observations, image), ...]); see `analyze_batch` below.


BACKENDS = ("embedded", "transformers", "openai", "vllm")


def get_backend(name: str, **options: Any) -> ReasoningBackend:
    """Build a backend by name; `options` are its constructor arguments."""
    if name == "embedded":
        from .embedded import EmbeddedBackend

        return EmbeddedBackend(**options)
    if name == "transformers":
        from .transformers_backend import TransformersBackend

        return TransformersBackend(**options)
    if name == "openai":
        from .openai_backend import OpenAIBackend

        return OpenAIBackend(**options)
    if name == "vllm":
        from .vllm_backend import VLLMBackend

        return VLLMBackend(**options)
    raise ValueError(f"backend {name!r} is not available (available: {', '.join(BACKENDS)})")


def analyze_batch(
    backend: ReasoningBackend,
    items: Sequence[tuple[Sequence[FaceObservation], np.ndarray | None]],
    labels: Sequence[str] | None = None,
) -> list[list[FaceAnalysis]]:
    """Analyse several images' faces: in one go when the backend batches, else one image at a time."""
    if hasattr(backend, "analyze_batch"):
        return backend.analyze_batch(items, labels)
    return [backend.analyze(observations, image=image, labels=labels) for observations, image in items]
