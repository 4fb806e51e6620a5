"""`emoreason serve`: build the engines from the flags and run the gateway with uvicorn."""

from __future__ import annotations

import logging
import sys
from typing import Any

from ..analyzer import Analyzer
from ..defaults import FRONTEND_MAX_BATCH
from ..face.frontend import FrontEndConfig
from .engine import Engine
from .gateway import create_app
from .settings import MIB, GatewaySettings


def build_engines(backend: str, name: str = "emoreason", face_mode: str = "detect", max_faces: int = 8,
                  base_url: str | None = None, model: str | None = None, upstream_api_key: str | None = None,
                  adapters: list[str] | None = None, expression_model: str | None = None,
                  frontend_batch: int = FRONTEND_MAX_BATCH, frontend_workers: int = 1,
                  **backend_options: Any) -> dict[str, Engine]:  # fmt: skip
    """The served models: `name` (the base) and, behind a VLM server, one per LoRA adapter it serves.
    `frontend_batch`: at most this many waiting requests' images go through a front-end in one call;
    `frontend_workers`: the front-end processes of each model, a batch's images dealt out to them."""
    frontend = FrontEndConfig(face_mode=face_mode, max_faces=max_faces)
    if expression_model:
        frontend.expression_model = expression_model
    # Each front-end runs in its own worker process: a native crash on one image restarts the worker, and
    # the gateway keeps serving.
    isolated = dict(frontend=frontend, isolate_frontend=True, workers=frontend_workers)
    if backend == "embedded":
        return {name: Engine(name, Analyzer(backend="embedded", **isolated, **backend_options), frontend_batch)}
    if backend == "openai" and not (model and base_url):  # vllm: no --model is the shipped emoreason-mini
        raise ValueError("serve --backend openai needs --base-url and --model (the upstream served model)")
    upstream = dict(base_url=base_url, api_key=upstream_api_key, **backend_options)
    engines = {name: Engine(name, Analyzer(backend=backend, **isolated, model=model, **upstream), frontend_batch)}
    for adapter in adapters or []:  # vLLM serves each LoRA adapter under its own model name
        options = {k: v for k, v in upstream.items() if k != "face_projector"}  # the projector is the base's
        engines[adapter] = Engine(
            adapter, Analyzer(backend=backend, **isolated, model=adapter, **options), frontend_batch
        )
    return engines


def serve(engines: dict[str, Engine], settings: GatewaySettings, host: str, port: int) -> None:
    import uvicorn

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for logger_name in ("emoreason.access", "emoreason.gateway"):
        logger = logging.getLogger(logger_name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    app = create_app(engines, settings)
    try:
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
    finally:
        for engine in engines.values():
            engine.close()


def settings_from_args(args: Any) -> GatewaySettings:
    return GatewaySettings(
        api_keys=GatewaySettings.keys_from_env(args.api_key),
        max_body_bytes=int(args.max_body_mb * MIB),
        max_image_bytes=int(args.max_image_mb * MIB),
        max_pixels=int(args.max_pixels),
        max_faces=args.max_faces,
        allowed_url_prefixes=tuple(args.allow_url or ()),
        request_timeout_s=args.timeout,
        max_concurrency=args.max_concurrency,
    )


class BackgroundServer:
    """The gateway under uvicorn in a daemon thread on a free loopback port (tests, benchmarks, the demo)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0):
        import threading

        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> BackgroundServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError("the gateway did not start within 30 s")
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
