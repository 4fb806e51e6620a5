"""What every VLM backend (transformers, openai, vllm) shares: requests per face, results per face.

A backend turns each face of each image into one `FaceRequest` (its conversation and pixels),
generates text for all of them in batches however it likes, and hands each `Generation` back
here to become a `FaceAnalysis`: the output parser reads emotion and cited AUs, and the
confidence comes from the answer-token probabilities (reasoning/confidence.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..faithfulness import contradictions
from ..labels import EMOTIONS
from ..parsing import parse_output
from ..prompting import PromptImages, build_messages
from ..types import FaceAnalysis, FaceObservation


@dataclass
class FaceRequest:
    item: int  # which image of the batch
    observation: FaceObservation
    messages: list[dict[str, Any]]
    images: PromptImages
    labels: list[str] | None


@dataclass
class Generation:
    text: str
    label_probs: dict[str, float] | None = None  # over the label set, at the answer's first token
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # the model could not be asked (an endpoint failed after its retries); text is ""


def face_requests(
    items: Sequence[tuple[Sequence[FaceObservation], np.ndarray | None]],
    labels: Sequence[str] | None = None,
    include_scene: bool = False,
    face_tokens: bool = False,
) -> list[FaceRequest]:
    """One request per face of every (observations, image) item, in order."""
    requests = []
    for i, (observations, image) in enumerate(items):
        for obs in observations:
            scene = image if include_scene else None
            messages, images = build_messages(obs, len(observations), labels, scene=scene, face_tokens=face_tokens)
            requests.append(FaceRequest(i, obs, messages, images, list(labels) if labels else None))
    return requests


def to_face_analysis(request: FaceRequest, generation: Generation) -> FaceAnalysis:
    """Parse one generation into the shared result type (a failed generation: a face with `error` set)."""
    if generation.error is not None:
        result = FaceAnalysis.from_observation(request.observation, emotion=None, confidence=None, reasoning="",
                                               text="", error=generation.error)  # fmt: skip
        result.timings.update(generation.timings)
        return result
    parsed = parse_output(generation.text, request.labels)
    scores = generation.label_probs or {}
    emotion = parsed.emotion
    confidence = scores.get(emotion) if emotion is not None and scores else None
    result = FaceAnalysis.from_observation(
        request.observation,
        emotion=emotion,
        confidence=None if confidence is None else round(confidence, 4),
        reasoning=parsed.think if parsed.think is not None else generation.text.strip(),
        text=generation.text,
        emotion_scores={e: round(p, 4) for e, p in sorted(scores.items(), key=lambda kv: -kv[1])},
        cited_aus=parsed.aus,
        contradictions=contradictions(request.observation, generation.text),  # what to distrust in the text
    )
    result.timings.update(generation.timings)
    return result


def group_by_item(requests: Sequence[FaceRequest], results: Sequence[FaceAnalysis], n_items: int) -> list[list]:
    out: list[list[FaceAnalysis]] = [[] for _ in range(n_items)]
    for request, result in zip(requests, results):
        out[request.item].append(result)
    return out


RESAMPLE_TEMPERATURE = 1.0  # a retry samples the model's own distribution: the texts it was trained to write


class VLMBackend(ABC):
    """Base of the VLM backends: they batch, so analysing one image is a batch of one."""

    name: str
    model: str | None
    thread_safe = False
    streams = False
    chats = False
    batch_size = 1
    resample_contradicted = 0  # sampled retries of a face whose text contradicts the front-end (0: none)

    def resample(self, requests: Sequence[FaceRequest], results: list[FaceAnalysis]) -> list[FaceAnalysis]:
        """Where a text contradicts what the front-end measured or its own evidence (`contradictions`), ask the
        model again, sampling, up to `resample_contradicted` times; keep the first text that contradicts nothing,
        else the one that contradicts least (the first on a tie). A verifier-guided retry: the model's words are
        still its own, and `contradictions` still says what the kept text gets wrong. Streamed replies are not
        retried (the text is already on its way to the user)."""
        for attempt in range(1, self.resample_contradicted + 1):
            todo = [i for i, result in enumerate(results) if result.contradictions and result.error is None]
            if not todo:
                break
            for i, generation in zip(todo, self.generate_again([requests[i] for i in todo], attempt)):
                candidate = to_face_analysis(requests[i], generation)
                if candidate.error is None and len(candidate.contradictions) < len(results[i].contradictions):
                    results[i] = candidate
        return results

    @abstractmethod
    def generate_again(self, requests: Sequence[FaceRequest], attempt: int) -> list[Generation]:
        """One sampled generation per request at RESAMPLE_TEMPERATURE (the `attempt`-th retry: seeded apart from
        the others where a seed is set); every VLM backend has one, so `resample` works on each."""

    def analyze(
        self,
        observations: Sequence[FaceObservation],
        image: np.ndarray | None = None,
        labels: Sequence[str] | None = None,
    ) -> list[FaceAnalysis]:
        return self.analyze_batch([(observations, image)], labels)[0]

    @abstractmethod
    def analyze_batch(
        self,
        items: Sequence[tuple[Sequence[FaceObservation], np.ndarray | None]],
        labels: Sequence[str] | None = None,
    ) -> list[list[FaceAnalysis]]:
        """One list of FaceAnalysis per (observations, image) item; each backend generates its own way."""


def label_set(labels: Sequence[str] | None) -> list[str]:
    return list(labels) if labels else list(EMOTIONS)
