"""A small OpenAI-compatible chat server over a real (tiny) Qwen-VL model, for the openai backend tests.

It speaks the part of the protocol the backend uses: `POST /v1/chat/completions` with
`image_url` data URLs, `max_tokens`, `temperature`, `logprobs` / `top_logprobs`, bearer keys.
It generates with transformers, so the texts and log-probs are a real model's. Fault hooks
let tests make it fail (`fail_next`) or stall (`delay_s`), and it records the most requests
it ever had in flight.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
from PIL import Image


class TinyChatServer:
    def __init__(self, loaded, api_key: str | None = None):
        self.loaded = loaded
        self.api_key = api_key
        self.fail_next: list[int] = []  # HTTP statuses to answer with, one per request, before serving
        self.raw_next: list[bytes] = []  # bodies to answer 200 with verbatim (not JSON, say), one per request
        self.delay_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()  # one generate at a time (the model is not thread-safe)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> TinyChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def complete(self, body: dict) -> dict:
        messages, images = [], []
        for message in body["messages"]:
            content = message["content"]
            if isinstance(content, str):
                messages.append({"role": message["role"], "content": [{"type": "text", "text": content}]})
                continue
            parts = []
            for part in content:
                if part["type"] == "image_url":
                    url = part["image_url"]["url"]
                    header, data = url.split(",", 1)
                    if not header.startswith("data:image/"):
                        raise ValueError("only data URLs")
                    images.append(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
                    parts.append({"type": "image"})
                else:
                    parts.append({"type": "text", "text": part["text"]})
            messages.append({"role": message["role"], "content": parts})
        processor, model = self.loaded.processor, self.loaded.model
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        batch = processor(text=[text], images=images or None, return_tensors="pt")
        with self._model_lock, torch.inference_mode():
            out = model.generate(
                **batch,
                max_new_tokens=int(body.get("max_tokens", 64)),
                do_sample=float(body.get("temperature", 1.0)) > 0,
                output_scores=True,
                return_dict_in_generate=True,
            )
        tokenizer = processor.tokenizer
        ids = out.sequences[0, batch["input_ids"].shape[1] :].tolist()
        if tokenizer.eos_token_id in ids:
            ids = ids[: ids.index(tokenizer.eos_token_id)]
        choice = {"index": 0, "message": {"role": "assistant", "content": tokenizer.decode(ids)}}
        if body.get("logprobs"):
            k = int(body.get("top_logprobs", 0))
            content = []
            for step, token_id in enumerate(ids):
                logprobs = out.scores[step][0].float().log_softmax(-1)
                values, top = logprobs.topk(k)
                content.append(
                    {
                        "token": tokenizer.decode([token_id]),
                        "logprob": float(logprobs[token_id]),
                        "top_logprobs": [
                            {"token": tokenizer.decode([t]), "logprob": float(v)}
                            for v, t in zip(values.tolist(), top.tolist())
                        ],
                    }
                )
            choice["logprobs"] = {"content": content}
        return {"id": "chatcmpl-test", "object": "chat.completion", "model": body["model"], "choices": [choice]}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return None  # keep test output clean

            def _reply(self, status: int, payload: dict | bytes, headers: dict | None = None) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except BrokenPipeError:
                    return  # the client gave up (timeout tests)

            def do_POST(self):
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    status = server.fail_next.pop(0) if server.fail_next else None
                    raw = server.raw_next.pop(0) if server.raw_next else None
                try:
                    reply = self._answer(status, raw)
                finally:  # no longer in flight before the reply leaves: a pooled client may send the next at once
                    with server._lock:
                        server.in_flight -= 1
                self._reply(*reply)

            def _answer(self, status: int | None, raw: bytes | None = None) -> tuple:
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    server.requests.append(body)
                    if raw is not None:  # the request read (the connection stays usable), the verbatim body sent
                        return 200, raw
                    if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                        return 401, {"error": {"message": "invalid api key"}}
                    if status is not None:
                        return status, {"error": {"message": f"injected {status}"}}, {"Retry-After": "0"}
                    time.sleep(server.delay_s)
                    if self.path != "/v1/chat/completions":
                        return 404, {"error": {"message": f"no route {self.path}"}}
                    return 200, server.complete(body)
                except (KeyError, ValueError) as exc:
                    return 400, {"error": {"message": f"bad request: {exc}"}}

        return Handler
