"""`emoreason serve`: the OpenAI-compatible gateway (chat completions, /v1/analyze, models, health)."""

from __future__ import annotations

import argparse
import sys

from ...defaults import FRONTEND_MAX_BATCH, GATEWAY_PORT, LOCAL_VLLM_URL, MAX_NEW_TOKENS, REQUEST_TIMEOUT_S
from ..options import EXPRESSION_HELP


def register(sub) -> None:
    g = sub.add_parser("serve", help="the OpenAI-compatible gateway (chat completions, analyze, models)")
    g.add_argument("--host", default="127.0.0.1")
    g.add_argument("--port", type=int, default=GATEWAY_PORT)
    g.add_argument("--backend", choices=("embedded", "vllm", "openai"), default="embedded",
                   help="embedded (no model), vllm (emoreason vllm-serve) or openai (any compatible)")  # fmt: skip
    g.add_argument("--name", default="emoreason", help="the model name clients ask for (the base)")
    g.add_argument("--expression-model", default=None, help=EXPRESSION_HELP)
    g.add_argument("--base-url", default=None, help=f"vllm/openai: the VLM server (vllm default: {LOCAL_VLLM_URL})")
    g.add_argument("--model", default=None, help="vllm/openai: the upstream served model name")
    g.add_argument("--face-projector", default=None, metavar="DIR",
                   help="vllm: send face tokens made by DIR's projector")  # fmt: skip
    g.add_argument("--adapter", action="append", default=None, metavar="NAME",
                   help="openai: a LoRA adapter the server serves under NAME (exposed under NAME too)")  # fmt: skip
    g.add_argument("--upstream-api-key", default=None, help="openai: key for the VLM server")
    g.add_argument("--api-key", action="append", default=None,
                   help="accept this client key (repeatable; default $EMOREASON_API_KEYS; none: no auth)")  # fmt: skip
    g.add_argument("--face-mode", choices=("detect", "full"), default="detect")
    g.add_argument("--max-faces", type=int, default=8, help="analyse at most the N largest faces")
    g.add_argument("--max-body-mb", type=float, default=16.0)
    g.add_argument("--max-image-mb", type=float, default=10.0)
    g.add_argument("--max-pixels", type=float, default=25e6, help="decoded image size limit")
    g.add_argument("--allow-url", action="append", default=None, metavar="PREFIX",
                   help="remote image URLs starting with PREFIX may be fetched (default: none)")  # fmt: skip
    g.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT_S, help="seconds per analysis")
    g.add_argument("--max-concurrency", type=int, default=4, help="analyses in flight; more get 429")
    g.add_argument("--frontend-batch", type=int, default=FRONTEND_MAX_BATCH, metavar="N",
                   help="at most N waiting requests' images go through the face front-end in one call (1: each "
                        "alone); requests then reach the model server together")  # fmt: skip
    g.add_argument("--frontend-workers", type=int, default=1, metavar="N",
                   help="face front-end processes per model (each one thread); a batch's images are dealt out to "
                        "them: for machines with cores to spare")  # fmt: skip
    g.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    g.add_argument("--resample-contradicted", type=int, default=0, metavar="N",
                   help="vllm/openai: ask again (sampling) up to N times where a text contradicts the measurements "
                        "(not for streamed replies)")  # fmt: skip
    g.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ...serving.server import build_engines, serve, settings_from_args

    options = {} if args.backend == "embedded" else {"max_new_tokens": args.max_new_tokens,
                                                      "resample_contradicted": args.resample_contradicted}  # fmt: skip
    if args.backend == "vllm" and args.face_projector:
        options["face_projector"] = args.face_projector
    engines = build_engines(args.backend, args.name, args.face_mode, args.max_faces, args.base_url, args.model,
                            args.upstream_api_key, args.adapter, args.expression_model, args.frontend_batch,
                            args.frontend_workers, **options)  # fmt: skip
    settings = settings_from_args(args)
    if not settings.api_keys and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"emoreason: warning: serving on {args.host} without an API key", file=sys.stderr)
    print(f"emoreason gateway on http://{args.host}:{args.port}/v1 (models: {', '.join(engines)})", file=sys.stderr)
    serve(engines, settings, args.host, args.port)
    return 0
