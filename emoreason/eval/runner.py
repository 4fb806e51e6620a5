"""`emoreason eval`: run a backend over a benchmark, one JSONL row per sample, resumable; then the report.

RUN_DIR/
  run.json           what was run (benchmark, data, split, backend and its options)
  predictions.jsonl  one row per sample, appended and flushed as each batch finishes
  report.json, report.md, *.png   (eval/report.py)

A killed run is started again with the same command: the rows already written are kept
(a half-written last line is dropped), only the missing samples are analysed, and no
sample is ever scored twice. Samples that cannot be read, or show no face, get a row with
the error and count as unanswered: the run goes on. A request that failed for good at a
remote endpoint is marked retryable: the next run asks again, and its new row replaces
the old one.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..faithfulness import measured_present
from ..imageio import InputError
from ..labels import EMOTIONS
from .benchmarks import Benchmark, Sample, get_benchmark

PREDICTIONS = "predictions.jsonl"
RUN_FILE = "run.json"


@dataclass
class RunConfig:
    benchmark: str
    data: str
    backend: str = "embedded"
    split: str | None = None
    fold: int | None = None
    face_mode: str | None = None  # None: the benchmark's own
    limit: int | None = None  # the first N samples (after --sample)
    sample: int | None = None  # a seeded random subset of N samples
    seed: int = 0
    expression_model: str | None = None  # None: the front-end's default
    backend_options: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """What must match for a run directory to be resumed (not the sample count: it may grow)."""
        keys = ("benchmark", "data", "backend", "split", "fold", "face_mode", "seed", "expression_model")
        options = {k: v for k, v in self.backend_options.items() if k not in ("concurrency", "timeout", "max_retries")}
        return {**{k: getattr(self, k) for k in keys}, "backend_options": options}


def select(samples: Sequence[Sample], limit: int | None, sample: int | None, seed: int) -> list[Sample]:
    """A seeded random subset (kept in dataset order), then the first `limit`."""
    chosen = list(samples)
    if sample is not None and sample < len(chosen):
        keep = set(random.Random(seed).sample(range(len(chosen)), sample))
        chosen = [s for i, s in enumerate(chosen) if i in keep]
    return chosen[:limit] if limit is not None else chosen


def label_set(bench: Benchmark, samples: Sequence[Sample]) -> list[str] | None:
    """The benchmark's label set, or the labels its samples carry (canonical order); None if it has none."""
    if bench.labels:
        return list(bench.labels)
    present = {s.emotion for s in samples if s.emotion}
    return [e for e in EMOTIONS if e in present] or None


def au_protocol(bench: Benchmark, samples: Sequence[Sample]) -> list[int] | None:
    if bench.au_protocol:
        return list(bench.au_protocol)
    present = sorted({a for s in samples if s.aus for a in s.aus})
    return present or None


def read_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The rows written so far, by sample id. A torn last line (a kill mid-write) is cut off the file."""
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows
    good_bytes = 0
    with open(path, "rb") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except ValueError:
                break
            if not line.endswith(b"\n"):
                break
            rows[row["id"]] = row  # a later row (a retried sample) replaces an earlier one
            good_bytes += len(line)
    if good_bytes != path.stat().st_size:
        with open(path, "r+b") as fh:
            fh.truncate(good_bytes)
    return rows


def run_eval(config: RunConfig, out_dir: str | Path, progress: bool = True, judge: Any = None) -> dict[str, Any]:
    """Analyse every sample not yet in RUN_DIR (then ask the `judge`, if any), write and return the report."""
    from ..analyzer import Analyzer
    from .report import write_report

    out = Path(out_dir)
    bench = get_benchmark(config.benchmark)
    loaded = bench.load(config.data, config.split, config.fold)
    dropped = list(getattr(loaded, "dropped", []))
    if dropped:  # said once, on stderr and in the report, never silently
        print(f"warning: {len(dropped)} rows of {config.data} left out (first: {dropped[0]})", file=sys.stderr)
    samples = select(loaded, config.limit, config.sample, config.seed)
    labels, protocol = label_set(bench, samples), au_protocol(bench, samples)
    out.mkdir(parents=True, exist_ok=True)
    _check_same_run(out, config)
    (out / RUN_FILE).write_text(json.dumps({**asdict(config), "provenance": provenance(config)}, indent=2))

    done = read_rows(out / PREDICTIONS)
    todo = [s for s in samples if s.id not in done or done[s.id].get("retryable")]
    if todo:
        from ..face.frontend import FrontEndConfig

        frontend = FrontEndConfig(face_mode=config.face_mode or bench.face_mode)
        if config.expression_model:
            frontend.expression_model = config.expression_model
        with Analyzer(  # the front-end in a worker process: a native crash fails one sample, not the run
            backend=config.backend, frontend=frontend, labels=labels, isolate_frontend=True, **config.backend_options
        ) as analyzer:
            _analyse(analyzer, todo, labels, out / PREDICTIONS, len(samples) - len(todo), len(samples), progress)
    rows = read_rows(out / PREDICTIONS)
    ordered = [rows[s.id] for s in samples if s.id in rows]
    if judge is not None:
        scores = judge.run(ordered, out)
        for row in ordered:
            row["judge"] = (scores.get(row["id"]) or {}).get("judge")
    return write_report(ordered, out, bench=bench, labels=labels, protocol=protocol, config=config, dropped=dropped)


def provenance(config: RunConfig) -> dict[str, Any]:
    """What produced the numbers: code version and commit, date, model and adapter (with a hash of the adapter's
    weights), the face model and AU detector, the presence thresholds, the seed."""
    import datetime
    import hashlib
    import subprocess

    from .. import __version__
    from ..face.au import GeometricAUDetector
    from ..face.face_model import DEFAULT_FACE_MODEL

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or None  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        commit = None  # an installed copy outside a git checkout
    options = config.backend_options
    adapter = options.get("adapter")
    adapter_hash = None
    if adapter and (Path(adapter) / "adapter_model.safetensors").is_file():
        adapter_hash = hashlib.sha256((Path(adapter) / "adapter_model.safetensors").read_bytes()).hexdigest()[:16]
    return {
        "emoreason": __version__,
        "git_commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backend": config.backend,
        "model": options.get("model"),
        "adapter": adapter,
        "adapter_sha256": adapter_hash,
        "face_model": config.expression_model or DEFAULT_FACE_MODEL.name,
        "au_detector": GeometricAUDetector.__name__,
        "au_presence_thresholds": {f"AU{r.code}": r.threshold for r in GeometricAUDetector().rules},
        "seed": config.seed,
    }


def _check_same_run(out: Path, config: RunConfig) -> None:
    previous = out / RUN_FILE
    if not previous.exists():
        return
    recorded = json.loads(previous.read_text())
    recorded.pop("provenance", None)  # what ran it, not what it is
    before = RunConfig(**recorded).identity()
    now = config.identity()
    if before != now:
        changed = sorted(k for k in now if before.get(k) != now[k])
        raise ValueError(f"{out} holds another run (differs in {', '.join(changed)}); use a new --out to start over")


def _analyse(analyzer: Any, todo: list[Sample], labels, path: Path, start: int, total: int, progress: bool) -> None:
    from tqdm import tqdm

    batch_size = max(1, int(analyzer.backend.batch_size))
    bar = tqdm(total=total, initial=start, unit="sample", file=sys.stderr, disable=not progress)
    with open(path, "a", encoding="utf-8") as fh:
        for i in range(0, len(todo), batch_size):
            chunk = todo[i : i + batch_size]
            rows = _analyse_chunk(analyzer, chunk, labels)
            fh.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
            fh.flush()
            os.fsync(fh.fileno())  # a kill loses at most the batch being analysed
            bar.update(len(chunk))
    bar.close()


def _analyse_chunk(analyzer: Any, chunk: list[Sample], labels) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    arrays, where = [], []
    for j, sample in enumerate(chunk):
        try:
            arrays.append(sample.load())
            where.append(j)
        except (InputError, OSError, ValueError) as exc:
            rows[j] = _row(sample, None, error=str(exc))
    results = analyzer.analyze_batch(arrays, labels=labels) if arrays else []
    for j, result in zip(where, results):
        sample = chunk[j]
        if result.error:
            rows[j] = _row(sample, None, error=result.error)
        elif not result.faces:
            rows[j] = _row(sample, None, error="no face found")
        elif result.faces[0].error:  # the endpoint failed after its retries: asked again on the next run
            rows[j] = {**_row(sample, None, error=result.faces[0].error), "retryable": True}
        else:
            rows[j] = _row(sample, result.faces[0], ms=result.timings.get("total"))
    return [rows[j] for j in range(len(chunk))]


def _row(sample: Sample, face: Any, error: str | None = None, ms: float | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": sample.id,
        "image": str(sample.image) if sample.image else None,
        "gold_emotion": sample.emotion,
        "gold_aus": sample.aus,
        "reference": sample.reference,
        "emotion": None,
        "confidence": None,
        "emotion_scores": {},
        "cited_aus": [],
        "detector_aus": [],
        "detector_intensities": {},
        "aus_measured": False,
        "expression_prior": None,
        "text": "",
        "error": error,
        "ms": ms,
    }
    if face is not None:
        row.update(
            emotion=face.emotion,
            confidence=face.confidence,
            emotion_scores=face.emotion_scores,
            cited_aus=face.cited_aus,
            detector_aus=[a.code for a in face.present_aus()],
            detector_intensities=measured_present(face) or {},  # JSON: the codes become strings
            aus_measured=bool(face.aus),
            expression_prior=face.expression_prior,
            text=face.text,
        )
    return row
