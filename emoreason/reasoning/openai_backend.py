"""The `openai` backend: the same prompts and images, sent to any OpenAI-compatible chat endpoint.

Use it for GPT-4o-class baselines or a remote vLLM server. Each face is one
`POST {base_url}/chat/completions` (images as data URLs); up to `concurrency` requests are in
flight at once; 429, 5xx, connection errors and timeouts are retried with exponential
backoff (honouring `Retry-After`); other 4xx fail at once. The request asks for log-probs so
the confidence means what it means for the other backends; a server that returns none gives
`confidence=None`. A face whose request still fails after the retries gets a result with no
emotion and the error as its text: the rest of the batch goes on.

The HTTP side (the official openai SDK: pooling, retries, timeouts, streams) is
`emoreason/endpoint.py`, shared with the judge and `data synth`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..defaults import CONCURRENCY, MAX_NEW_TOKENS, MAX_RETRIES, REQUEST_TIMEOUT_S
from ..endpoint import ChatEndpoint, EndpointError
from ..prompting import to_openai_messages
from ..types import FaceAnalysis, FaceObservation
from .confidence import label_distribution
from .vlm import (
    RESAMPLE_TEMPERATURE,
    FaceRequest,
    Generation,
    VLMBackend,
    face_requests,
    group_by_item,
    label_set,
    to_face_analysis,
)

TOP_LOGPROBS = 20  # OpenAI's maximum
__all__ = ["EndpointError", "OpenAIBackend"]  # EndpointError lives in emoreason.endpoint; importable here too


class OpenAIBackend(VLMBackend):
    name = "openai"
    thread_safe = True  # HTTP requests; the server does the work
    streams = True
    chats = True

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
        max_retries: int = MAX_RETRIES,
        concurrency: int = CONCURRENCY,
        max_new_tokens: int = MAX_NEW_TOKENS,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
        include_scene: bool = False,
        logprobs: bool = True,
        batch_size: int | None = None,
        resample_contradicted: int = 0,
    ):
        self.include_scene = include_scene
        self.logprobs = logprobs
        self.body_options: dict[str, Any] = {
            "max_tokens": int(max_new_tokens),
            "temperature": float(temperature) if do_sample else 0.0,
            "top_p": float(top_p) if do_sample else 1.0,
            "seed": None if seed is None else int(seed),
        }
        self.endpoint = ChatEndpoint(base_url, model, api_key=api_key, timeout=timeout, max_retries=max_retries,
                                     concurrency=concurrency, **self.body_options)  # fmt: skip
        self.url, self.model, self.concurrency = self.endpoint.url, model, self.endpoint.concurrency
        self.batch_size = int(batch_size or self.concurrency)  # images the Analyzer groups per call
        self.resample_contradicted = max(0, int(resample_contradicted))  # VLMBackend.resample

    def analyze_batch(
        self,
        items: Sequence[tuple[Sequence[FaceObservation], np.ndarray | None]],
        labels: Sequence[str] | None = None,
    ) -> list[list[FaceAnalysis]]:
        requests = self.requests(items, labels)
        results = [to_face_analysis(r, g) for r, g in zip(requests, self._generate_all(requests))]
        return group_by_item(requests, self.resample(requests, results), len(items))

    def generate_again(self, requests: Sequence[FaceRequest], attempt: int) -> list[Generation]:
        seed = self.body_options["seed"]
        return self._generate_all(requests, temperature=RESAMPLE_TEMPERATURE, top_p=1.0,
                                  seed=None if seed is None else seed + attempt)  # fmt: skip

    def _generate_all(self, requests: Sequence[FaceRequest], **options: Any) -> list[Generation]:
        """One Generation per request, `concurrency` in flight (`options` override the body's sampling ones)."""
        videos = self.video_parts(requests)
        if len(requests) == 1:  # one face (the gateway's usual request): no pool, no thread to start
            return [self._generate_or_error(requests[0], videos[0], **options)]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda r, v: self._generate_or_error(r, v, **options), requests, videos))

    # -------------------------------------------------------------- requests
    def requests(self, items, labels) -> list[FaceRequest]:
        return face_requests(items, labels, self.include_scene)

    def video_parts(self, requests: Sequence[FaceRequest]) -> list[dict[str, Any] | None]:
        """Content parts for the requests' video placeholders (the vllm backend's face tokens); none here."""
        return [None] * len(requests)

    def _generate_or_error(
        self, request: FaceRequest, video: dict[str, Any] | None = None, **options: Any
    ) -> Generation:
        try:
            return self.generate(request, video, **options)
        except EndpointError as exc:
            return Generation(text="", error=str(exc))

    def messages(self, request: FaceRequest, video: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return to_openai_messages(request.messages, request.images, video=video)

    def _logprob_options(self) -> dict[str, Any]:
        return {"logprobs": True, "top_logprobs": TOP_LOGPROBS} if self.logprobs else {}

    def generate(self, request: FaceRequest, video: dict[str, Any] | None = None, **options: Any) -> Generation:
        t0 = time.perf_counter()
        reply = self.endpoint.complete(self.messages(request, video), **self._logprob_options(), **options)
        try:
            choice = reply["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"{self.url}: reply has no choices[0].message.content") from None
        content = (choice.get("logprobs") or {}).get("content") or []
        return self._generation(request, text, content, t0)

    def generate_streaming(self, request: FaceRequest, video: dict[str, Any] | None = None) -> Iterator[Any]:
        """Yield the text as the server streams it (str deltas), then the finished `Generation`."""
        t0 = time.perf_counter()
        text, content = "", []
        for chunk in self.endpoint.stream(self.messages(request, video), **self._logprob_options()):
            choice = (chunk.get("choices") or [{}])[0]
            content += (choice.get("logprobs") or {}).get("content") or []
            delta = (choice.get("delta") or {}).get("content") or ""
            if delta:
                text += delta
                yield delta
        yield self._generation(request, text, content, t0)

    @staticmethod
    def _generation(request: FaceRequest, text: str, content: list[dict[str, Any]], t0: float) -> Generation:
        """A Generation, with the label confidence from the answer token's top log-probs when the server sent them."""
        probs = None
        if content:
            tokens = [c.get("token", "") for c in content]
            tops = [{t["token"]: t["logprob"] for t in c.get("top_logprobs") or []} for c in content]
            probs = label_distribution(tokens, tops, "".join(tokens), label_set(request.labels))
        return Generation(
            text=text, label_probs=probs, timings={"generate": round((time.perf_counter() - t0) * 1000, 2)}
        )

    def first_turn(self, observations: Sequence[FaceObservation], image: np.ndarray | None,
                   labels: Sequence[str] | None) -> list[dict[str, Any]]:  # fmt: skip
        """The messages the first face's analysis was asked with, rebuilt exactly (same prompt, labels, images
        and face tokens), so a follow-up continues the very conversation the model answered."""
        request = self.requests([(observations, image)], labels)[0]
        return self.messages(request, self.video_parts([request])[0])

    def chat(self, messages: list[dict[str, Any]]) -> str:
        """The model's reply to a conversation (follow-ups). Raises EndpointError."""
        return self.endpoint.text(messages)
