"""`emoreason eval`: run a backend over a benchmark (resumable), from flags or a run configuration.

    emoreason eval --config eval/configs/rafdb-embedded.yaml [--limit 100 ...]
    emoreason eval --benchmark rafdb --data DIR --out RUN_DIR [--backend ...]
    emoreason eval compare RUN_DIR...                 # the figures of several runs side by side
    emoreason eval leaderboard RUN_DIR... [--out eval/RESULTS.md]   # one row per run

A run configuration is a YAML file whose keys are this command's flag names (`base_url` or
`base-url`); `$VARS` and `~` in its values are expanded, and a flag given on the command line
wins over the file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...reasoning.base import BACKENDS
from ..options import EXPRESSION_HELP, add_backend_arguments, backend_options


def register(sub) -> None:
    from ...eval.benchmarks import BENCHMARKS

    e = sub.add_parser("eval", help="run a backend over a benchmark; `eval compare RUN...` lines runs up")
    e.add_argument("--config", default=None, metavar="YAML", help="a run configuration (eval/configs/*.yaml)")
    e.add_argument("--benchmark", help="one of: " + ", ".join(BENCHMARKS))
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
    add_backend_arguments(e)
    e.set_defaults(run=lambda args: run(args, e))
    tables = e.add_subparsers(dest="eval_command", required=False, metavar="{compare,leaderboard}")
    compare = tables.add_parser("compare", help="one side-by-side table of finished runs")
    compare.add_argument("runs", nargs="+", metavar="RUN_DIR")
    compare.set_defaults(run=run_compare)
    board = tables.add_parser("leaderboard", help="one row per finished run (eval/RESULTS.md)")
    board.add_argument("runs", nargs="+", metavar="RUN_DIR")
    board.add_argument("--out", default=None, help="write the Markdown here instead of stdout")
    board.add_argument("--machine", default=None, help="what the runs ran on (named beside the timings)")
    board.set_defaults(run=run_leaderboard)


def run_compare(args: argparse.Namespace) -> int:
    from ...eval.report import compare

    print(compare(args.runs), end="")
    return 0


def run_leaderboard(args: argparse.Namespace) -> int:
    from ...eval.report import leaderboard

    table = leaderboard(args.runs, machine=args.machine)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")
        print(args.out)
    else:
        print(table, end="")
    return 0


NOT_SETTINGS = {"run", "config", "command", "eval_command", "overrides"}


def apply_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Fill the flags not given on the command line from the run configuration YAML."""
    import os

    import yaml

    from .. import CommandError

    path = Path(args.config)
    if not path.is_file():
        raise CommandError(f"--config {path}: no such file")
    settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(settings, dict):
        raise CommandError(f"--config {path}: expected a mapping of flag names to values")
    for key, value in settings.items():
        dest = str(key).replace("-", "_")
        if dest in NOT_SETTINGS or not hasattr(args, dest):
            raise CommandError(f"--config {path}: unknown setting {key!r} (the keys are `emoreason eval` flags)")
        if isinstance(value, str):
            value = os.path.expanduser(os.path.expandvars(value))
            if "$" in value:
                raise CommandError(f"--config {path}: {key}: set the environment variable in {value!r}")
        if getattr(args, dest) == parser.get_default(dest):  # a flag on the command line wins
            setattr(args, dest, value)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ...eval.report import markdown
    from ...eval.runner import RunConfig, run_eval
    from .. import CommandError

    if args.config:
        apply_config(args, parser)
    if not (args.benchmark and args.data and args.out):
        raise CommandError("eval needs --benchmark, --data and --out (or `eval compare RUN_DIR...`)")
    config = RunConfig(
        benchmark=args.benchmark, data=str(Path(args.data).resolve()), backend=args.backend, split=args.split,
        fold=args.fold, face_mode=args.face_mode, limit=args.limit, sample=args.subset, seed=args.subset_seed,
        expression_model=args.expression_model, backend_options=backend_options(args),
    )  # fmt: skip
    judge = None
    if args.judge_url:
        from ...eval.judge import Judge

        judge = Judge(args.judge_url, args.judge_model, api_key=args.api_key, concurrency=args.concurrency)
    report = run_eval(config, args.out, progress=not args.quiet, judge=judge)
    print(markdown(report), end="")
    print(f"report: {Path(args.out) / 'report.md'}", file=sys.stderr)
    return 0
