"""What every reasoning backend provides, and the registry the CLI/API pick backends from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..types import FaceAnalysis, FaceObservation


class ReasoningBackend(Protocol):
    """A reasoning backend, and the capabilities callers (the serving engine, the Analyzer) may rely on."""

    name: str
    model: str | None
    thread_safe: bool  # may be called from several threads at once (else the caller serialises calls)
    streams: bool  # `requests`, `video_parts` and `generate_streaming` give the text as the model writes it
    chats: bool  # `first_turn` + `chat` continue a conversation with the model itself (follow-up questions)
    batch_size: int  # images the Analyzer groups into one `analyze_batch` call

    def analyze(
        self,
        observations: Sequence[FaceObservation],
        image: np.ndarray | None = None,
        labels: Sequence[str] | None = None,
    ) -> list[FaceAnalysis]:
        """One FaceAnalysis per observation, in order. `labels` restricts the answer set."""
        ...

    def analyze_batch(
        self,
        items: Sequence[tuple[Sequence[FaceObservation], np.ndarray | None]],
        labels: Sequence[str] | None = None,
    ) -> list[list[FaceAnalysis]]:
        """One list of FaceAnalysis per (observations, image) item; batching backends generate them together."""
        ...


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
    """Analyse several images' faces (in one go where the backend batches)."""
    return backend.analyze_batch(items, labels)
