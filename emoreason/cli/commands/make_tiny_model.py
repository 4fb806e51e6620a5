"""`emoreason make-tiny-model OUT`: a tiny random Qwen-VL checkpoint built offline (tests, benchmarks)."""

from __future__ import annotations

import argparse

from ...tiny import FAMILIES


def register(sub) -> None:
    t = sub.add_parser("make-tiny-model", help="build a tiny random Qwen-VL model offline (tests, benchmarks)")
    t.add_argument("out_dir")
    t.add_argument("--family", choices=FAMILIES, default="qwen2_5_vl")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--size",
        choices=("tiny", "mini"),
        default="tiny",
        help="tiny: tests (~0.8M parameters); mini: ~12M, the size emoreason-mini trains at",
    )
    t.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ...tiny import make_tiny_model

    print(make_tiny_model(args.out_dir, args.family, seed=args.seed, size=args.size))
    return 0
