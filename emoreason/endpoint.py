"""One OpenAI-compatible chat endpoint, through the official `openai` SDK.

The SDK does the plumbing the field relies on: connection pooling, timeouts, retries with
exponential backoff and jitter on 408/409/429/5xx, connection errors and timeouts (honouring
`Retry-After`), and server-sent-event streams. This module adds what emoreason needs on top:
replies as plain dicts (the log-probs are read the same way whatever the server), sampling
defaults per endpoint, and one-line `EndpointError`s that name the endpoint and the reason,
never a traceback or a library's internals.

Used by the `openai` and `vllm` reasoning backends, the eval judge and `data synth`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from .defaults import CONCURRENCY, MAX_RETRIES, REQUEST_TIMEOUT_S

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}  # what the SDK retries (and any other 5xx)


class EndpointError(RuntimeError):
    """A request that failed for good (after the retries, or a 4xx that retrying cannot fix)."""


class ChatEndpoint:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = REQUEST_TIMEOUT_S,
                 max_retries: int = MAX_RETRIES, concurrency: int = CONCURRENCY, **defaults: Any):  # fmt: skip
        """`defaults`: request fields sent with every request unless overridden (max_tokens, temperature, ...)."""
        import openai

        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"--base-url {base_url!r}: expected http(s)://host[:port]/v1")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"  # named in errors
        self.model = model
        self.max_retries = int(max_retries)
        self.concurrency = max(1, int(concurrency))
        self.defaults = {k: v for k, v in defaults.items() if v is not None}
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        # A server without authentication ignores the key; the SDK insists on one.
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key or "none", timeout=float(timeout),
                                    max_retries=self.max_retries)  # fmt: skip

    def complete(self, messages: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
        """The whole reply as a dict (`choices[0].message.content`, `choices[0].logprobs`, `usage`).

        The body is read as plain JSON, not through the SDK's pydantic models (the SDK still sends,
        retries and raises): a reply with 20 top log-probs per token is thousands of objects, and
        building and dumping them took 10.0 ms against json's 2.4 for a 150-token analysis (1.7 vs
        0.7 ms for 32 tokens), per request, in the gateway's process."""
        import openai

        try:
            raw = self.client.chat.completions.with_raw_response.create(**self._request(messages, options))
            reply = json.loads(raw.http_response.content)
            if not isinstance(reply, dict):
                raise ValueError("reply is not a JSON object")
        except (openai.APIError, ValueError) as exc:  # the endpoint's failures, as one line naming it
            raise self._error(exc) from None
        return reply

    def text(self, messages: list[dict[str, Any]], **options: Any) -> str:
        """Just the reply's text; raises EndpointError when there is none."""
        reply = self.complete(messages, **options)
        try:
            return reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"{self.url}: reply has no choices[0].message.content") from None

    def stream(self, messages: list[dict[str, Any]], **options: Any) -> Iterator[dict[str, Any]]:
        """The streamed chunks as dicts, in order; raises EndpointError if the stream fails on the way."""
        import openai

        try:
            for chunk in self.client.chat.completions.create(**self._request(messages, options), stream=True):
                yield chunk.model_dump()
        except (openai.APIError, ValueError) as exc:  # anything else is a bug here: it surfaces
            raise self._error(exc) from None

    def _request(self, messages: list[dict[str, Any]], options: dict[str, Any]) -> dict[str, Any]:
        return {"model": self.model, "messages": messages, **self.defaults,
                **{k: v for k, v in options.items() if v is not None}}  # fmt: skip

    def _error(self, exc: Exception) -> EndpointError:
        import openai

        if isinstance(exc, openai.APIStatusError):
            detail = _message(exc.body) or exc.message or "error"
            reason = f"HTTP {exc.status_code}: {detail[:200]}"
            if exc.status_code in RETRY_STATUS or exc.status_code >= 500:
                return EndpointError(f"{self.url}: failed after {self.max_retries + 1} attempts ({reason})")
            return EndpointError(f"{self.url}: {reason}")
        if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError)):
            return EndpointError(f"{self.url}: failed after {self.max_retries + 1} attempts ({type(exc).__name__})")
        if isinstance(exc, openai.APIError):  # e.g. an error event inside a stream
            return EndpointError(f"{self.url}: {(_message(exc.body) or exc.message or 'error')[:200]}")
        # a ValueError: a reply the SDK cannot parse (bad JSON, a shape its models reject)
        return EndpointError(f"{self.url}: unreadable reply ({type(exc).__name__})")


def _message(body: object) -> str:
    """The `error.message` of an OpenAI-shaped error body, or the body as text."""
    if isinstance(body, dict):
        error = body.get("error", body)
        return str(error.get("message", error) if isinstance(error, dict) else error)
    return str(body) if body else ""
