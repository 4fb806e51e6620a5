"""The `openai` backend: the same prompts and images, sent to any OpenAI-compatible chat endpoint.

Use it for GPT-4o-class baselines or a remote vLLM server. Each face is one
`POST {base_url}/chat/completions` (images as data URLs); up to `concurrency` requests are in
flight at once; 429, 5xx, connection errors and timeouts are retried with exponential
backoff (honouring `Retry-After`); other 4xx fail at once. The request asks for log-probs so
the confidence means what it means for the other backends; a server that returns none gives
`confidence=None`. A face whose request still fails after the retries gets a result with no
emotion and the error as its text: the rest of the batch goes on.

Plain `urllib` (no client library): the protocol is small, and the behaviour on errors is
emoreason's to choose.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..prompting import to_openai_messages
from ..types import FaceAnalysis, FaceObservation
from .confidence import label_distribution
from .vlm import FaceRequest, Generation, VLMBackend, face_requests, group_by_item, label_set, to_face_analysis

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
TOP_LOGPROBS = 20  # OpenAI's maximum


class EndpointError(RuntimeError):
    """A request that failed for good (after retries, or a 4xx that retrying cannot fix)."""


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
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        concurrency: int = 8,
        max_new_tokens: int = 384,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
        include_scene: bool = False,
        logprobs: bool = True,
        batch_size: int | None = None,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"--base-url {base_url!r}: expected http(s)://host[:port]/v1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.concurrency = max(1, int(concurrency))
        self.batch_size = int(batch_size or self.concurrency)  # images the Analyzer groups per call
        self.include_scene = include_scene
        self.logprobs = logprobs
        self.body_options: dict[str, Any] = {
            "max_tokens": int(max_new_tokens),
            "temperature": float(temperature) if do_sample else 0.0,
            "top_p": float(top_p) if do_sample else 1.0,
        }
        if seed is not None:
            self.body_options["seed"] = int(seed)

    def analyze_batch(
        self,
        items: Sequence[tuple[Sequence[FaceObservation], np.ndarray | None]],
        labels: Sequence[str] | None = None,
    ) -> list[list[FaceAnalysis]]:
        requests = self.requests(items, labels)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            generations = list(pool.map(self._generate_or_error, requests, self.video_parts(requests)))
        results = [to_face_analysis(r, g) for r, g in zip(requests, generations)]
        return group_by_item(requests, results, len(items))

    # -------------------------------------------------------------- requests
    def requests(self, items, labels) -> list[FaceRequest]:
        return face_requests(items, labels, self.include_scene)

    def video_parts(self, requests: Sequence[FaceRequest]) -> list[dict[str, Any] | None]:
        """Content parts for the requests' video placeholders (the vllm backend's face tokens); none here."""
        return [None] * len(requests)

    def _generate_or_error(self, request: FaceRequest, video: dict[str, Any] | None = None) -> Generation:
        try:
            return self.generate(request, video)
        except EndpointError as exc:
            return Generation(text="", error=str(exc))

    def body(self, request: FaceRequest, video: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {
            "model": self.model,
            "messages": to_openai_messages(request.messages, request.images, video=video),
            **self.body_options,
        }
        if self.logprobs:
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        return body

    def generate(self, request: FaceRequest, video: dict[str, Any] | None = None) -> Generation:
        t0 = time.perf_counter()
        reply = self.post(self.body(request, video))
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
        with self._open({**self.body(request, video), "stream": True}) as resp:
            for raw in resp:  # server-sent events, one `data: {...}` line per chunk
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    choice = (json.loads(data).get("choices") or [{}])[0]
                except (ValueError, AttributeError):
                    raise EndpointError(f"{self.url}: malformed stream chunk") from None
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
        return self.body(request, self.video_parts([request])[0])["messages"]

    def chat(self, messages: list[dict[str, Any]]) -> str:
        """The model's reply to a conversation (follow-ups). Raises EndpointError."""
        reply = self.post({"model": self.model, "messages": messages, **self.body_options})
        try:
            return reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"{self.url}: reply has no choices[0].message.content") from None

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with retries; returns the decoded reply or raises EndpointError (one line)."""
        with self._open(body) as resp:
            try:
                return json.loads(resp.read())
            except (ValueError, TimeoutError, ConnectionError) as exc:
                raise EndpointError(f"{self.url}: unreadable reply ({type(exc).__name__})") from None

    def _open(self, body: dict[str, Any]) -> Any:
        """The open HTTP response to a POST of `body`, after retries; raises EndpointError (one line)."""
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            wait = self.backoff * (2**attempt) * (0.5 + random.random() / 2)
            try:
                req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                return urllib.request.urlopen(req, timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                last = f"HTTP {exc.code}: {detail}"
                if exc.code not in RETRY_STATUS:
                    raise EndpointError(f"{self.url}: {last}") from None
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    wait = min(float(retry_after), 60.0)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if attempt < self.max_retries:
                time.sleep(wait)
        raise EndpointError(f"{self.url}: failed after {self.max_retries + 1} attempts ({last})")


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(exc.read() or b"{}")
        error = payload.get("error", payload)
        return str(error.get("message", error) if isinstance(error, dict) else error)[:200]
    except (ValueError, AttributeError):
        return exc.reason or "error"
