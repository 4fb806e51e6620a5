"""The OpenAI-compatible gateway: `emoreason serve`.

  GET  /health                 liveness (no key needed)
  GET  /v1/models              the served models (base and adapters)
  POST /v1/chat/completions    messages with an image_url data URL; `stream: true` gives server-sent
                               events (token by token from a VLM server); later turns without an
                               image ask about the last image
  POST /v1/analyze             an image upload (multipart `file`) or JSON {"image": base64}; EmotionAnalysis JSON

A chat reply carries the analysis text as the message and the structured result
(`EmotionAnalysis.to_dict()`) in the extra field `emoreason`. The face front-end runs here;
the reasoning runs in the model's Engine (embedded engine, or a VLM server behind the
openai/vllm backends).

Safety: bearer keys; a cap on the request body, the encoded image and its decoded pixels
(checked before decoding); at most `max_faces` faces; remote image URLs refused unless
allow-listed; a timeout per analysis; at most `max_concurrency` analyses in flight (more
get 429 at once, with Retry-After); errors as one-line OpenAI-style JSON, never a stack
trace; one structured access-log line per request, without bodies or image bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ..endpoint import EndpointError
from ..face.worker import FrontEndCrashed
from ..imageio import InputError
from .engine import Analysed, Engine, face_header
from .errors import APIError
from .images import decode_base64, decode_image, image_bytes
from .requests import AnalyzeRequest, ChatRequest, Message, parse
from .settings import GatewaySettings

access_log = logging.getLogger("emoreason.access")
error_log = logging.getLogger("emoreason.gateway")


class Limiter:
    """At most `limit` analyses at once; the next one is refused rather than queued (clients retry)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.in_flight = 0

    def acquire(self) -> None:
        if self.in_flight >= self.limit:
            message = f"too many requests in flight (limit {self.limit}); retry shortly"
            raise APIError(
                429, message, type="rate_limit_error", code="concurrency_limit", headers={"Retry-After": "1"}
            )
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1


class Slot:
    """One admitted request's place under the Limiter, taken before anything of the request is read (a
    refusal costs nothing) and given back when the request ends, unless handed on: to a stream that
    releases it when it ends, or to work that overran its deadline and still runs (released when it
    finishes, so real work never exceeds the limit)."""

    def __init__(self, limiter: Limiter):
        limiter.acquire()
        self.limiter = limiter
        self.handed_on = False

    def hand_on(self) -> None:
        self.handed_on = True

    def release_when_done(self, future: asyncio.Future) -> None:
        self.handed_on = True
        future.add_done_callback(lambda _: self.limiter.release())

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self.handed_on:
            self.limiter.release()


class BodyLimit:
    """ASGI middleware: refuse bodies over `limit` bytes (by Content-Length, and while streaming in), and
    bodies that stall: each piece must arrive within `read_timeout_s` (a half-sent request holds nothing)."""

    def __init__(self, app: Any, limit: int, read_timeout_s: float = 30.0):
        self.app = app
        self.limit = limit
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _send_error(send, APIError(413, f"request body larger than {self.limit} bytes"))
        seen, body_done = 0, False

        async def limited_receive():
            nonlocal seen, body_done
            if body_done:  # after the body, receive() waits for a disconnect for as long as a stream runs
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout_s)
            except asyncio.TimeoutError:
                raise APIError(408, f"request body not received within {self.read_timeout_s:g} s") from None
            seen += len(message.get("body", b""))
            body_done = message.get("type") != "http.request" or not message.get("more_body", False)
            if seen > self.limit:
                raise APIError(413, f"request body larger than {self.limit} bytes")
            return message

        try:
            await self.app(scope, limited_receive, send)
        except APIError as exc:
            await _send_error(send, exc)


async def _send_error(send, exc: APIError) -> None:
    body = json.dumps(exc.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(engines: dict[str, Engine], settings: GatewaySettings | None = None) -> FastAPI:
    """The FastAPI app: the routes of a `Gateway`, its error handlers, access log, keys and body limit."""
    settings = settings or GatewaySettings()
    if not engines:
        raise ValueError("the gateway needs at least one model")
    gateway = Gateway(engines, settings)
    app = FastAPI(title="emoreason gateway", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engines, app.state.settings, app.state.gateway = engines, settings, gateway
    app.middleware("http")(gateway.access_and_auth)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, read_timeout_s=settings.read_timeout_s)  # outermost
    _install_error_handlers(app)
    app.add_api_route("/health", gateway.health, methods=["GET"])
    app.add_api_route("/v1/models", gateway.models, methods=["GET"])
    app.add_api_route("/v1/analyze", gateway.analyze, methods=["POST"])
    app.add_api_route("/v1/chat/completions", gateway.chat, methods=["POST"])
    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Every error in the OpenAI shape: ours, unknown routes and methods, FastAPI's own validation."""

    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError):
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            message = f"no route {request.url.path[:100]}; see /v1/models, /v1/chat/completions, /v1/analyze"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path[:100]}"
        else:
            message = str(exc.detail)[:200]
        code = "not_found" if exc.status_code == 404 else None
        return _error_response(APIError(exc.status_code, message, code=code))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error_response(APIError(400, f"{where or 'request'}: {first.get('msg', 'invalid request')}"))


class Gateway:
    """The served models, the limits, and the route handlers over them."""

    def __init__(self, engines: dict[str, Engine], settings: GatewaySettings):
        self.engines = engines
        self.settings = settings
        self.limiter = Limiter(settings.max_concurrency)
        self.created = int(time.time())

    # ------------------------------------------------------------------ plumbing
    def authorised(self, request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and key.strip() in self.settings.api_keys  # RFC 7235: any case

    async def access_and_auth(self, request: Request, call_next):
        """Keys, one JSON access-log line per request, and one-line errors (a trace only for real faults)."""
        request_id = uuid.uuid4().hex[:12]
        t0 = time.perf_counter()
        try:
            if request.url.path != "/health" and self.settings.api_keys and not self.authorised(request):
                raise APIError(401, "missing or invalid API key (Authorization: Bearer KEY)",
                               type="authentication_error", code="invalid_api_key")  # fmt: skip
            response = await call_next(request)
        except APIError as exc:
            response = _error_response(exc)
        except Exception as exc:  # noqa: BLE001
            known = _known_error(exc)  # starlette wraps errors raised while the body streams in (task groups)
            if isinstance(known, APIError):
                response = _error_response(known)
            elif isinstance(known, ClientDisconnect):  # the client went away mid-body: nothing to answer
                response = _error_response(APIError(400, "client disconnected", code="client_disconnected"))
            else:
                error_log.exception("unhandled error on %s", request.url.path)
                response = _error_response(APIError(500, "internal error", type="server_error"))
        response.headers["x-request-id"] = request_id
        client = request.client.host if request.client else None
        access_log.info(json.dumps({
            "request_id": request_id, "method": request.method, "path": request.url.path,
            "status": response.status_code, "ms": round((time.perf_counter() - t0) * 1000, 1), "client": client,
            "model": getattr(request.state, "model", None),
        }))  # fmt: skip
        return response

    async def work(self, slot: Slot, fn, *args):
        """Blocking work (the front-end, a backend) in a worker thread within `slot` and the deadline. On
        timeout the client gets 504 and the slot stays taken until the work really ends."""
        future = asyncio.ensure_future(run_in_threadpool(fn, *args))
        done, _ = await asyncio.wait({future}, timeout=self.settings.request_timeout_s)
        if not done:
            slot.release_when_done(future)
            raise APIError(504, f"analysis timed out after {self.settings.request_timeout_s:g} s",
                           type="server_error", code="timeout")  # fmt: skip
        try:
            return future.result()
        except FrontEndCrashed as exc:  # the worker was restarted; the server goes on
            error_log.warning("face front-end crashed: %s", exc.reason)
            raise APIError(500, "the face front-end crashed on this image and was restarted",
                           type="server_error", code="frontend_crashed") from None  # fmt: skip
        except InputError as exc:  # the front-end refused the pixels (e.g. a size native code cannot take)
            raise APIError(400, f"image: {exc.reason}", param="image") from None
        except EndpointError as exc:  # a follow-up to the model server failed
            raise _upstream_error(exc) from None

    async def decode(self, slot: Slot, data: bytes, param: str = "image_url"):
        """Image bytes -> checked RGB pixels, in a worker thread (a 24 MP JPEG must not stall the loop)."""
        return await self.work(slot, decode_image, data, self.settings, param)

    def engine_for(self, request: Request, name: Any) -> Engine:
        if name is not None and not isinstance(name, str):  # a multipart form field may be a file
            raise APIError(400, "model: expected a string", param="model")
        name = name or next(iter(self.engines))
        if name not in self.engines:
            shown = name if len(name) <= 64 else name[:61] + "..."
            raise APIError(404, f"model {shown!r} not found; available: {', '.join(self.engines)}", param="model",
                           code="model_not_found")  # fmt: skip
        request.state.model = name
        return self.engines[name]

    # ------------------------------------------------------------------ routes
    async def health(self, request: Request):
        """Alive, to anyone; model names and load only with a key (when keys are set)."""
        if self.settings.api_keys and not self.authorised(request):
            return {"status": "ok"}
        return {"status": "ok", "models": list(self.engines), "in_flight": self.limiter.in_flight}

    async def models(self):
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": self.created, "owned_by": "emoreason", "backend": e.backend}
            for name, e in self.engines.items()]}  # fmt: skip

    async def analyze(self, request: Request):
        with Slot(self.limiter) as slot:  # admitted (or refused with 429) before the body is read
            data, model, landmarks = await self._analyze_body(request)
            engine = self.engine_for(request, model)
            rgb = await self.decode(slot, data, "image")
            analysed = _answered(await self.work(slot, engine.analyze, rgb))
            return analysed.analysis.to_dict(landmarks=landmarks)

    async def _analyze_body(self, request: Request) -> tuple[bytes, Any, bool]:
        """(image bytes, model name, landmarks) from a multipart upload or a JSON body."""
        settings = self.settings
        if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file")
            if upload is None or not hasattr(upload, "read"):
                raise APIError(400, "file: missing (send the image as the multipart field `file`)", param="file")
            data = await upload.read(settings.max_image_bytes + 1)
            if len(data) > settings.max_image_bytes:
                raise APIError(413, f"file: image larger than {settings.max_image_bytes} bytes", param="file")
            return data, form.get("model"), False
        body: AnalyzeRequest = await _body(request, AnalyzeRequest)
        if not body.image:
            raise APIError(400, "image: missing (base64 or a data URL)", param="image")
        if body.image.startswith("data:"):
            data = await image_bytes(body.image, settings, param="image")
        else:
            data = await run_in_threadpool(decode_base64, body.image, settings, "image")
        return data, body.model, body.landmarks

    async def chat(self, request: Request):
        with Slot(self.limiter) as slot:  # admitted (or refused with 429) before the body is read
            body: ChatRequest = await _body(request, ChatRequest)
            engine = self.engine_for(request, body.model)
            messages, stream, landmarks = body.messages, body.stream, body.emoreason.landmarks
            if messages[-1].role != "user":
                raise APIError(400, "messages: the last message must be the user's", param="messages")
            image_turn, url = _last_image(messages)
            data = await image_bytes(url, self.settings, param=f"messages[{image_turn}].image_url")
            key = await run_in_threadpool(_digest, data)
            follow_up = image_turn < len(messages) - 1
            # a follow-up about an image analysed lately is answered from that analysis (the same first turn)
            analysed: Analysed | None = engine.recent.get(key) if follow_up else None
            if analysed is None:
                rgb = await self.decode(slot, data)
                if stream and not follow_up and engine.streams:  # tokens as the VLM server writes them
                    t0 = time.perf_counter()  # the front-end first, so that its failures are plain JSON errors
                    observations = await self.work(slot, engine.observe, rgb)
                    tokens = engine.stream(rgb, observations, time.perf_counter() - t0, key=key)
                    slot.hand_on()  # the stream gives the slot back when it ends
                    events = _live_stream(tokens, self.limiter, request.state.model, self.created, landmarks)
                    return StreamingResponse(events, media_type="text/event-stream")
                analysed = _answered(await self.work(slot, engine.analyze, rgb, "request", key))
            if not analysed.analysis.faces:
                text = "No face was found in the image."
            elif follow_up:
                turns = [{"role": m.role, "content": m.text()} for m in messages[image_turn + 1 :]
                         if m.role in ("user", "assistant")]  # fmt: skip
                text = await self.work(slot, engine.follow_up, analysed, turns)
            else:
                text = _analysis_text(analysed)
        return _chat_reply(request.state.model, self.created, text, analysed.analysis.to_dict(landmarks=landmarks),
                           stream)  # fmt: skip


# ---------------------------------------------------------------------- helpers
def _chat_reply(model: str, created: int, text: str, result: dict[str, Any], stream: bool):
    """A finished analysis as a chat completion (or its server-sent events), the result in `emoreason`."""
    reply_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    if stream:
        return StreamingResponse(_stream(reply_id, model, created, text, result), media_type="text/event-stream")
    words = len(text.split())
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": words, "total_tokens": words},
        "emoreason": result,
    }


def _answered(analysed: Analysed) -> Analysed:
    """The analysis, or 502 if the model server failed for any of its faces (the same on every route)."""
    failed = [f.error for f in analysed.analysis.faces if f.error]
    if failed:
        raise _upstream_error(failed[0])
    return analysed


def _upstream_error(cause: object) -> APIError:
    """The one answer to a failed model server: 502, a bounded one-line reason."""
    reason = " ".join(str(cause).split())[:200]
    return APIError(502, f"the model server failed: {reason}", type="server_error", code="upstream_error")


def _known_error(exc: BaseException) -> BaseException | None:
    """The APIError or ClientDisconnect in `exc`, looking inside exception groups."""
    if isinstance(exc, (APIError, ClientDisconnect)):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _known_error(inner)
        if found is not None:
            return found
    return None


def _error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _body(request: Request, model: type[BaseModel]) -> Any:
    """The request body as `model`: JSON parsing and validation in one worker-thread hop (a 16 MB body
    must not stall the loop)."""
    return await run_in_threadpool(_parse_json, await request.body(), model)


def _parse_json(raw: bytes, model: type[BaseModel]) -> Any:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise APIError(400, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise APIError(400, "request body must be a JSON object")
    return parse(model, body)


def _digest(data: bytes) -> str:
    """The key of an image's analysis: the SHA-256 of its encoded bytes."""
    return hashlib.sha256(data).hexdigest()


def _last_image(messages: list[Message]) -> tuple[int, str]:
    """(index of the last user message with an image, its URL). Follow-up turns refer back to it."""
    for i in range(len(messages) - 1, -1, -1):
        url = messages[i].image_url() if messages[i].role == "user" else None
        if url == "":
            raise APIError(400, f"messages[{i}]: image_url part without a url", param=f"messages[{i}]")
        if url:
            return i, url
    raise APIError(400, "messages: no image; send the face as an image_url content part (a data URL)",
                   param="messages", code="missing_image")  # fmt: skip


def _analysis_text(analysed: Analysed) -> str:
    faces = analysed.analysis.faces
    if len(faces) == 1:
        return faces[0].text
    return "\n\n".join(face_header(i, f.box) + f.text for i, f in enumerate(faces))


def _chunker(reply_id: str, model: str, created: int):
    def chunk(delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
        payload = {"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}  # fmt: skip
        return f"data: {json.dumps(payload)}\n\n"

    return chunk


async def _live_stream(tokens, limiter: Limiter, model: str, created: int, landmarks: bool):
    """Server-sent events straight from the VLM server's stream; the structured result with the last chunk.
    The concurrency slot is held until the stream ends (or the client goes away)."""
    chunk = _chunker(f"chatcmpl-{uuid.uuid4().hex[:24]}", model, created)
    try:
        yield chunk({"role": "assistant", "content": ""})
        result = None
        try:
            async for piece in iterate_in_threadpool(tokens):
                if isinstance(piece, Analysed):
                    result = piece.analysis.to_dict(landmarks=landmarks)
                    if not piece.analysis.faces:
                        yield chunk({"content": "No face was found in the image."})
                else:
                    yield chunk({"content": piece})
        except EndpointError as exc:  # the model server failed mid-answer: an error event, as OpenAI streams do
            yield f"data: {json.dumps(_upstream_error(exc).body())}\n\n"
            return
        yield chunk({}, finish="stop", extra={"emoreason": result})
        yield "data: [DONE]\n\n"
    finally:
        limiter.release()


async def _stream(reply_id: str, model: str, created: int, text: str, result: dict) -> AsyncIterator[str]:
    chunk = _chunker(reply_id, model, created)
    yield chunk({"role": "assistant", "content": ""})
    words = text.split(" ")
    for i in range(0, len(words), 4):  # a few words per event, as a model streams tokens
        piece = " ".join(words[i : i + 4]) + (" " if i + 4 < len(words) else "")
        yield chunk({"content": piece})
        await asyncio.sleep(0)
    yield chunk({}, finish="stop", extra={"emoreason": result})
    yield "data: [DONE]\n\n"
