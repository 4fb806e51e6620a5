"""The `emoreason` command: one module per subcommand in `cli/commands/`, each with `register` and `run`.

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
emoreason train face-model --data DIR_OR_CSV --out DIR [--config RECIPE] [key=value ...]
emoreason eval --benchmark rafdb --data ~/data/RAF-DB/basic --backend embedded --out runs/rafdb-embedded
emoreason eval compare runs/rafdb-embedded runs/rafdb-qwen   # one side-by-side table
emoreason vllm-serve --model ID_OR_PATH [--adapter NAME=PATH ...] [--face-tokens] [--port 8001]
emoreason serve [--backend embedded|vllm --base-url URL --model NAME] [--api-key KEY] [--port 8000]
emoreason ui [--gateway http://127.0.0.1:8000]     # the Gradio chat demo

Why argparse and not typer or click: no extra dependency, `parse_known_args` carries the
`KEY=VALUE` recipe overrides of `train` as trl's own CLI does, and a subcommand is a module with
two functions a newcomer can read without learning a framework. The commands hold no analysis
logic: they turn flags into library calls and library results into lines.

Errors: a bad input or setting raises `ValueError` / `FileNotFoundError` / `ImportError` (or
`CommandError`) and ends here as one line, `emoreason: error: ...`, exit status 2; a failure of
one input among many is reported with `report_error` and the batch goes on (exit status 1).
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..samples import write_sample_images  # noqa: F401 - importable from here, as before 0.2
from .commands import COMMANDS


class CommandError(Exception):
    """A command cannot go on; main() prints it as one line and exits with status 2."""


def report_error(message: str) -> None:
    """The one way a command tells the user about a failure: `emoreason: error: <what>: <why>`."""
    print(f"emoreason: error: {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emoreason", description="Explainable facial emotion analysis from Action Units."
    )
    parser.add_argument("--version", action="version", version=f"emoreason {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="keep mediapipe/TFLite's native log lines on stderr (hidden by default)")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # small models: measured 10-30x faster than 2 threads
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Only `train` takes extra arguments: recipe overrides KEY=VALUE.
    if extra and (args.command != "train" or any("=" not in x or x.startswith("-") for x in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    if args.verbose:
        os.environ["EMOREASON_VERBOSE"] = "1"  # read where the face graphs are built (face/_mediapipe.py)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except (CommandError, ValueError, FileNotFoundError, ImportError) as exc:
        report_error(str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
