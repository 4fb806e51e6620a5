"""Scale: thousands of images through the embedded engine, throughput and memory as the count grows.

    python bench/scale.py --data ../shared/data/fer2013/train --images 5000 --out out/bench/scale.json

The first `--images` faces of the folder (sorted by name), three ways:
1. `Analyzer.analyze_many` in this process (the Python API), every result written to a JSONL
   file as it comes (nothing held);
2. the gateway (in this process, on loopback), one `POST /v1/analyze` per image from 2
   clients, every reply written to a JSONL file;
3. the CLI, `emoreason analyze FOLDER --format jsonl --out FILE` in a subprocess, with
   `--workers 1` and `--workers 2` on all of them (the speed-up; each worker process costs a
   few seconds to start, which a short run would mostly measure), and with 2 workers on the
   first 1,000 (its peak memory against the full run's: bounded memory means the same).
For 1 and 2: images/s over each window (0-500, 500-1,000, 1,000-end) and the process RSS
at 500, 1,000 and the end. The goals: steady throughput, and RSS growth from 1,000 to the
end under 50 MB (no leak; results streamed, not held). Prints a final line of key=value
pairs; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emoreason.analyzer import Analyzer  # noqa: E402
from emoreason.imageio import IMAGE_SUFFIXES  # noqa: E402

MARKS = (500, 1000)  # plus the end


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Meter:
    """Images/s per window and RSS at each mark, from a stream of completions."""

    def __init__(self, total: int):
        self.marks = [m for m in MARKS if m < total] + [total]
        self.t0 = self.last_t = time.perf_counter()
        self.last_n, self.done = 0, 0
        self.windows: list[dict] = []

    def tick(self) -> None:
        self.done += 1
        if self.done in self.marks:
            now = time.perf_counter()
            rate = (self.done - self.last_n) / (now - self.last_t)
            self.windows.append({"images": self.done, "window_images_per_s": rate, "rss_mb": rss_mb()})
            self.last_t, self.last_n = now, self.done

    def summary(self) -> dict:
        total_s = time.perf_counter() - self.t0
        by_mark = {w["images"]: w for w in self.windows}
        growth = by_mark[self.marks[-1]]["rss_mb"] - by_mark[1000]["rss_mb"] if 1000 in by_mark else None
        return {"images": self.done, "seconds": total_s, "images_per_s": self.done / total_s,
                "windows": self.windows, "rss_growth_from_1000_mb": growth}  # fmt: skip


def through_analyze_many(paths: list[Path], out: Path) -> dict:
    meter = Meter(len(paths))
    with Analyzer(backend="embedded") as analyzer, open(out, "w", encoding="utf-8") as fh:
        for result in analyzer.analyze_many(str(p) for p in paths):
            fh.write(result.to_json() + "\n")
            meter.tick()
    return meter.summary()


def through_gateway(paths: list[Path], out: Path, clients: int = 2) -> dict:
    import threading

    import httpx

    from emoreason.serving.gateway import create_app
    from emoreason.serving.server import BackgroundServer, build_engines
    from emoreason.serving.settings import GatewaySettings

    engines = build_engines("embedded")
    lock, failed = threading.Lock(), [0]
    with BackgroundServer(create_app(engines, GatewaySettings(max_concurrency=clients))) as live, \
            open(out, "w", encoding="utf-8") as fh, httpx.Client(base_url=live.url, timeout=120) as http:  # fmt: skip
        meter = Meter(len(paths))

        def one(path: Path) -> None:
            reply = http.post("/v1/analyze", files={"file": (path.name, path.read_bytes())})
            with lock:
                failed[0] += reply.status_code != 200
                fh.write(reply.text.strip() + "\n")
                meter.tick()

        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one, paths))
        summary = meter.summary()
    for engine in engines.values():
        engine.close()
    summary["failed"] = failed[0]
    return summary


# The CLI run in a child that reports its own peak RSS (the CLI process, without its front-end workers) and
# its largest front-end worker's, after the run.
_CLI = """
import resource, sys
from emoreason.cli import main
code = main(sys.argv[1:])
usage = resource.getrusage
print("PEAK", usage(resource.RUSAGE_SELF).ru_maxrss, usage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def through_cli(folder: Path, workers: int, out: Path) -> dict:
    """`emoreason analyze FOLDER` in a subprocess: images/s and peak RSS (the CLI process; its largest worker)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-c", _CLI, "analyze", str(folder), "--format", "jsonl", "--out", str(out), "--quiet",
           "--workers", str(workers)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    lines = sum(1 for _ in open(out, encoding="utf-8"))
    peak = next((line.split()[1:] for line in proc.stderr.splitlines() if line.startswith("PEAK ")), ["0", "0"])
    return {"workers": workers, "images": lines, "seconds": seconds, "images_per_s": lines / seconds,
            "exit_code": proc.returncode, "peak_rss_mb": int(peak[0]) / 1024,
            "peak_worker_rss_mb": int(peak[1]) / 1024}  # fmt: skip


def linked_folder(paths: list[Path], root: Path) -> Path:
    """A folder of symlinks to `paths` (the CLI takes a folder; the shared images are never copied)."""
    root.mkdir(parents=True, exist_ok=True)
    for p in paths:
        (root / p.name).symlink_to(p.resolve())
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013/train")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--cli-images", type=int, default=1000, help="images for the CLI's small (memory) run")
    parser.add_argument("--out", default="out/bench/scale.json")
    args = parser.parse_args()
    paths = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[: args.images]
    if len(paths) < args.images:
        raise SystemExit(f"{args.data}: only {len(paths)} images (asked for {args.images})")
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    figures: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                     "data": str(args.data), "images": len(paths)}  # fmt: skip

    figures["analyze_many"] = through_analyze_many(paths, work / "analyze_many.jsonl")
    figures["gateway"] = through_gateway(paths, work / "gateway.jsonl")
    everything = linked_folder(paths, work / "cli-all")
    figures["cli"] = [through_cli(everything, w, work / f"cli-{w}.jsonl") for w in (1, 2)]
    figures["cli_small"] = through_cli(linked_folder(paths[: args.cli_images], work / "cli-small"), 2,
                                       work / "cli-small.jsonl")  # fmt: skip
    figures["cli_speedup_2_workers"] = figures["cli"][1]["images_per_s"] / figures["cli"][0]["images_per_s"]

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    flat = {"images": len(paths)}
    for name in ("analyze_many", "gateway"):
        r = figures[name]
        for w in r["windows"]:
            flat[f"{name}_ips_at_{w['images']}"] = round(w["window_images_per_s"], 2)
            flat[f"{name}_rss_mb_at_{w['images']}"] = round(w["rss_mb"], 1)
        flat[f"{name}_rss_growth_mb"] = None if r["rss_growth_from_1000_mb"] is None else round(
            r["rss_growth_from_1000_mb"], 1)  # fmt: skip
    flat["gateway_failed"] = figures["gateway"]["failed"]
    for r in figures["cli"]:
        flat[f"cli_{r['workers']}w_ips"] = round(r["images_per_s"], 2)
    flat["cli_speedup_2_workers"] = round(figures["cli_speedup_2_workers"], 3)
    for key in ("peak_rss_mb", "peak_worker_rss_mb"):  # 2 workers on 1,000 images and on all of them
        flat[f"cli_{args.cli_images}_{key}"] = round(figures["cli_small"][key], 1)
        flat[f"cli_{len(paths)}_{key}"] = round(figures["cli"][1][key], 1)
    print(" ".join(f"{k}={v}" for k, v in flat.items()))


if __name__ == "__main__":
    main()
