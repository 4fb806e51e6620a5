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


def get_backend(name: str, **options: Any) -> ReasoningBackend:
    """Build a backend by name. Only `embedded` ships in this release of the package."""
    if name == "embedded":
        from .embedded import EmbeddedBackend

        return EmbeddedBackend(**options)
    raise ValueError(f"backend {name!r} is not available (available: embedded)")
