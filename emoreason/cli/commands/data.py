"""`emoreason data convert|validate|synth`: training records from datasets, and the reasoning they lack."""

from __future__ import annotations

import argparse
import sys

from ...defaults import CONCURRENCY, MAX_NEW_TOKENS, REQUEST_TIMEOUT_S


def register(sub) -> None:
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
        dp.add_argument("--split", choices=("face", "val", "vlm"), default=None,
                        help="only the faces of this split of the shipped face model's training data (by file-name "
                             "hash): vlm = the faces held back from it for the VLM's data")  # fmt: skip
        dp.add_argument("--limit", type=int, default=None,
                        help="at most this many records (a seeded sample, the same on every machine)")  # fmt: skip
        if name != "validate":
            dp.add_argument("--out", required=True, help="output .jsonl")
        if name == "synth":
            _add_synth_arguments(dp)
        dp.set_defaults(run=run)


def _add_synth_arguments(dp: argparse.ArgumentParser) -> None:
    dp.add_argument("--face-mode", choices=("detect", "full"), default="full",
                    help="full (default): the images are face crops; detect: find the largest face")  # fmt: skip
    dp.add_argument("--overwrite", action="store_true", help="rewrite existing descriptions too")
    dp.add_argument("--rejected", default=None, help="write the rejected records and reasons here (.jsonl)")
    dp.add_argument("--no-prior-numbers", dest="prior_numbers", action="store_false",
                    help="the embedded engine's texts name the whole-face impression's emotion without its "
                         "probability (for a small student that does not copy numbers from its prompt)")  # fmt: skip
    dp.add_argument("--base-url", default=None,
                    help="write with a model behind this OpenAI-compatible endpoint instead")  # fmt: skip
    dp.add_argument("--model", default=None, help="with --base-url: the served model name")
    dp.add_argument("--api-key", default=None, help="with --base-url (default: $OPENAI_API_KEY)")
    dp.add_argument("--concurrency", type=int, default=CONCURRENCY, help="with --base-url: requests in flight")
    dp.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    dp.add_argument("--temperature", type=float, default=0.0, help="with --base-url: 0 = greedy")
    dp.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT_S, help="with --base-url: seconds per request")


def run(args: argparse.Namespace) -> int:
    from ...data.converters import convert
    from ...data.records import write_jsonl
    from .. import report_error

    records, errors = convert(args.source, args.kind, args.dataset)
    for error in errors:
        report_error(error)
    records = select(records, args.split, args.limit)
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
    return _synth(args, records)


def select(records: list, split: str | None, limit: int | None) -> list:
    """The records of one face-model split (`--split`), then a seeded sample of at most `limit` in the
    original order (`--limit`)."""
    import random

    if split is not None:
        from ...training.face_model import shipped_split_of

        records = [r for r in records if shipped_split_of(r.image_path.name) == split]
    if limit is not None and len(records) > limit:
        keep = set(random.Random(0).sample(range(len(records)), limit))
        records = [r for i, r in enumerate(records) if i in keep]
    return records


def _synth(args: argparse.Namespace, records: list) -> int:
    from tqdm import tqdm

    from ...data.records import write_jsonl
    from ...data.synth import Synthesizer
    from .. import CommandError

    writer = None
    if args.base_url:
        if not args.model:
            raise CommandError("data synth: --base-url needs --model (the served model name)")
        from ...endpoint import ChatEndpoint

        writer = ChatEndpoint(args.base_url, args.model, api_key=args.api_key, timeout=args.timeout,
                              concurrency=args.concurrency, max_tokens=args.max_new_tokens,
                              temperature=args.temperature)  # fmt: skip
    synth = Synthesizer(face_mode=args.face_mode, writer=writer, prior_numbers=args.prior_numbers)
    kept, rejected = [], []
    try:
        for result in tqdm(synth.run(records, overwrite=args.overwrite), total=len(records), file=sys.stderr):
            (kept if result.accepted else rejected).append(result)
    finally:
        synth.close()
    write_jsonl([r.record for r in kept], args.out)
    if args.rejected:  # FEA-20K records too (no description): `train loop` explains them
        write_jsonl([r.record for r in rejected], args.rejected, extras=[{"reason": r.reason} for r in rejected])
    print(f"{args.out}: {len(kept)} records with a description; {len(rejected)} rejected", file=sys.stderr)
    reasons: dict[str, int] = {}
    for r in rejected:
        reasons[r.category] = reasons.get(r.category, 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  rejected {count}: {reason}", file=sys.stderr)
    return 0
