"""Reasoning backends: FaceObservations in, FaceAnalyses (emotion + written analysis) out."""

from .base import ReasoningBackend, get_backend

__all__ = ["ReasoningBackend", "get_backend"]
