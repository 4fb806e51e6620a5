"""`emoreason analyze PATH...`: analyse images, folders, globs or videos; one result per input."""

from __future__ import annotations

import argparse
import json
import sys

from ...reasoning.base import BACKENDS
from ..options import EXPRESSION_HELP, FACE_MODE_HELP, add_backend_arguments, backend_options


def register(sub) -> None:
    a = sub.add_parser("analyze", help="analyse images, folders, globs or videos")
    a.add_argument("paths", nargs="+", metavar="PATH", help="image or video files, folders (recursive) or globs")
    a.add_argument("--backend", default="embedded", choices=BACKENDS, help="reasoning backend (default: embedded)")
    a.add_argument("--face-mode", choices=("detect", "full"), default="detect", help=FACE_MODE_HELP)
    a.add_argument(
        "--detector",
        choices=("auto", "both", "short", "full"),
        default="auto",
        help="BlazeFace range model: auto = full range, then short range if it found nothing; both = union",
    )
    a.add_argument("--min-face-size", type=int, default=20, help="ignore faces smaller than this (px)")
    a.add_argument("--max-faces", type=int, default=16, help="analyse at most the N largest faces")
    a.add_argument("--labels", default=None, help="comma-separated label set to answer from (default: all 8)")
    a.add_argument("--no-prior", action="store_true", help="do not use the expression prior (AU evidence only)")
    a.add_argument("--expression-model", default=None, help=EXPRESSION_HELP)
    a.add_argument(
        "--format",
        choices=("text", "json", "jsonl", "csv"),
        default="text",
        help="json: a list (one entry per input); jsonl: one line per input; csv: one row per face",
    )
    a.add_argument("--out", default=None, help="write results here instead of stdout")
    a.add_argument("--annotate", default=None, metavar="DIR", help="write annotated images into DIR")
    a.add_argument("--landmarks", action="store_true", help="include the 478 landmarks in JSON output")
    a.add_argument("--fps", type=float, default=2.0, help="video sampling rate (frames per second)")
    a.add_argument(
        "--smooth-alpha",
        type=float,
        default=0.5,
        metavar="A",
        help="video: weight of each new frame in the per-track AU moving average (1 = none)",
    )
    a.add_argument(
        "--hysteresis",
        type=float,
        default=0.5,
        metavar="H",
        help="video: a present AU turns off only H intensity units below its threshold",
    )
    a.add_argument("--no-smoothing", action="store_true", help="video: AUs as measured in each frame")
    a.add_argument("--quiet", action="store_true", help="no progress bar")
    a.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="front-end processes working side by side (one per core helps on large folders)",
    )
    add_backend_arguments(a)
    # Before 0.2 `analyze --sample` meant sampled decoding; kept working, shown nowhere.
    a.add_argument("--sample", dest="sample", action="store_true", help=argparse.SUPPRESS)
    a.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ...analyzer import Analyzer
    from ...annotate import annotate_result
    from ...face.frontend import FrontEndConfig
    from ...imageio import InputError, expand_inputs
    from .. import CommandError, report_error

    paths = expand_inputs(args.paths)
    if not paths:
        raise CommandError("no input files found")
    labels = [x.strip() for x in args.labels.split(",")] if args.labels else None
    expression = {"expression_model": args.expression_model} if args.expression_model else {}
    config = FrontEndConfig(face_mode=args.face_mode, detector=args.detector, min_face_size=args.min_face_size,
                            max_faces=args.max_faces, **expression)  # fmt: skip
    try:
        out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    except OSError as exc:
        report_error(f"--out {args.out}: cannot write ({exc.strerror or type(exc).__name__})")
        return 1
    # The front-end in a worker process: an image that crashes native code fails alone, the batch goes on.
    from ...video import AUSmoothing

    try:
        smoothing = None if args.no_smoothing else AUSmoothing(args.smooth_alpha, args.hysteresis)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.workers < 1:
        raise CommandError(f"--workers {args.workers}: expected at least 1")
    analyzer = Analyzer(backend=args.backend, frontend=config, labels=labels, isolate_frontend=True,
                        workers=args.workers, **backend_options(args))  # fmt: skip
    progress = None
    if len(paths) > 1 and not args.quiet:
        from tqdm import tqdm

        progress = tqdm(total=len(paths), unit="file", file=sys.stderr)
    failed, written = 0, 0
    csv_out = None
    if args.format == "csv":
        from ...tables import CSVWriter

        csv_out = CSVWriter(out)
    try:
        for result in analyzer.analyze_many(paths, fps=args.fps, smoothing=smoothing):
            if progress:
                progress.update(1)
            if result.error:
                failed += 1
                report_error(result.error)
            if args.format == "json":  # a list, streamed: a folder of any size is never held in memory
                text = json.dumps(result.to_dict(landmarks=args.landmarks), indent=2, ensure_ascii=False)
                out.write(("[\n" if written == 0 else ",\n") + text)
                written += 1
            elif csv_out is not None:
                csv_out.write(result)
                out.flush()
            elif args.format == "jsonl":
                out.write(json.dumps(result.to_dict(landmarks=args.landmarks), ensure_ascii=False) + "\n")
                out.flush()
            elif not result.error:
                out.write(result.to_text() + "\n")
            if args.annotate and not result.error:
                try:
                    for path in annotate_result(result, args.annotate):
                        print(f"annotated: {path}", file=sys.stderr)
                except (OSError, InputError) as exc:
                    failed += 1
                    report_error(f"{result.source}: cannot write the annotation ({exc})")
        if args.format == "json":
            out.write("\n]\n" if written else "[]\n")
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
