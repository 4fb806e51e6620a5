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
    from ...imageio import expand_inputs
    from .. import CommandError, report_error

    paths = expand_inputs(args.paths)
    if not paths:
        raise CommandError("no input files found")
    analyzer, smoothing = _analyzer(args)
    try:
        out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    except OSError as exc:
        analyzer.close()
        report_error(f"--out {args.out}: cannot write ({exc.strerror or type(exc).__name__})")
        return 1
    progress = None
    if len(paths) > 1 and not args.quiet:
        from tqdm import tqdm

        progress = tqdm(total=len(paths), unit="file", file=sys.stderr)
    writer, failed = ResultWriter(out, args.format, args.landmarks), 0
    try:
        for result in analyzer.analyze_many(paths, fps=args.fps, smoothing=smoothing):
            if progress:
                progress.update(1)
            if result.error:
                failed += 1
                report_error(result.error)
            writer.write(result)
            if args.annotate and not result.error:
                failed += _annotate(result, args.annotate)
        writer.close()
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


def _analyzer(args: argparse.Namespace):
    """The Analyzer the flags ask for (its front-end in worker processes: an image that crashes native code
    fails alone, the batch goes on) and the video smoothing; a bad flag value is a CommandError."""
    from ...analyzer import Analyzer
    from ...face.frontend import FrontEndConfig
    from ...video import AUSmoothing
    from .. import CommandError

    labels = [x.strip() for x in args.labels.split(",")] if args.labels else None
    expression = {"expression_model": args.expression_model} if args.expression_model else {}
    config = FrontEndConfig(face_mode=args.face_mode, detector=args.detector, min_face_size=args.min_face_size,
                            max_faces=args.max_faces, **expression)  # fmt: skip
    try:
        smoothing = None if args.no_smoothing else AUSmoothing(args.smooth_alpha, args.hysteresis)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.workers < 1:
        raise CommandError(f"--workers {args.workers}: expected at least 1")
    analyzer = Analyzer(backend=args.backend, frontend=config, labels=labels, isolate_frontend=True,
                        workers=args.workers, **backend_options(args))  # fmt: skip
    return analyzer, smoothing


class ResultWriter:
    """Each result in the chosen --format as it comes: text, jsonl, csv (one header), or json (one list,
    streamed: a folder of any size is never held in memory)."""

    def __init__(self, out, fmt: str, landmarks: bool):
        self.out, self.format, self.landmarks, self.written = out, fmt, landmarks, 0
        self.csv = None
        if fmt == "csv":
            from ...tables import CSVWriter

            self.csv = CSVWriter(out)

    def write(self, result) -> None:
        if self.format == "json":
            text = json.dumps(result.to_dict(landmarks=self.landmarks), indent=2, ensure_ascii=False)
            self.out.write(("[\n" if self.written == 0 else ",\n") + text)
        elif self.csv is not None:
            self.csv.write(result)
        elif self.format == "jsonl":
            self.out.write(json.dumps(result.to_dict(landmarks=self.landmarks), ensure_ascii=False) + "\n")
        elif not result.error:
            self.out.write(result.to_text() + "\n")
        self.written += 1
        if self.format in ("csv", "jsonl"):
            self.out.flush()

    def close(self) -> None:
        if self.format == "json":
            self.out.write("\n]\n" if self.written else "[]\n")


def _annotate(result, folder: str) -> int:
    """Write the annotated picture(s) of a result; 1 if that failed (said on stderr), else 0."""
    from ...annotate import annotate_result
    from ...imageio import InputError
    from .. import report_error

    try:
        for path in annotate_result(result, folder):
            print(f"annotated: {path}", file=sys.stderr)
    except (OSError, InputError) as exc:
        report_error(f"{result.source}: cannot write the annotation ({exc})")
        return 1
    return 0
