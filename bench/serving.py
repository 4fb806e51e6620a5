"""Serving load test on loopback: the gateway under N concurrent clients, a fixed number of requests.

    python bench/serving.py --out out/bench/serving.json

Three runs, each `--requests` chat completions (the astronaut photo as a data URL) from
`--clients` concurrent clients through the official openai client:
1. gateway -> embedded engine, `emoreason serve` in its own process as deployed, with one front-end
   worker process and with two (`--frontend-workers 2`: `frontend_workers_2_over_1_rps`);
2. gateway -> vLLM (CPU build, `.venv-vllm`) -> the tiny random Qwen2.5-VL, and beside it the
   direct baseline: the same requests (the very messages the gateway's vLLM backend sends for
   the astronaut, built once) straight to the same vLLM server from the same clients. The
   gateway runs as deployed, `emoreason serve --backend vllm` in its own process. The
   difference is what the gateway adds (HTTP hop, image decode, face front-end, prompt,
   parsing): its added p50/p95 latency and its share of the gateway's p50, with 1 client
   (what one request costs) and with `--clients` (where, on a small CPU machine, the
   gateway's work and vLLM's compete for the same cores), and the CPU time per request of
   the gateway process and its front-end worker (read from /proc); and the `--clients` load
   once more with `--frontend-batch 1` (each request through the front-end alone: what batching
   the requests that wait for it buys, `frontend_batching_rps_ratio`);
3. gateway -> the transformers backend in-process -> the same tiny model.
4. overload: `emoreason serve` (embedded engine, 2 slots) in its own process, as deployed, and
   here 8 clients sending a 24 MP JPEG each as fast as they can for `--overload-seconds`, and
   a probe asking /health every 50 ms;
   it reports the latency of the 429 refusals (goal: under 50 ms at p95, they come before the
   body is read) and of /health under that load (goal: under 100 ms at p95), and the 5xx count
   (must be 0). `--only overload` runs this one alone.
Runs 1-3 report requests/s, p50/p95 latency and the failed or lost requests (must be 0); the
last figure is requests/s through vLLM over requests/s through transformers, measured in
this one run. Generation is greedy with `--tokens` new tokens (the tiny model never stops
early, so every request generates exactly that many). The gateway's concurrency limit is
set to the number of clients, so no request is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from emoreason.analyzer import Analyzer  # noqa: E402
from emoreason.prompting import image_data_url  # noqa: E402
from emoreason.serving.engine import Engine  # noqa: E402
from emoreason.serving.gateway import create_app  # noqa: E402
from emoreason.serving.server import BackgroundServer  # noqa: E402
from emoreason.serving.settings import GatewaySettings  # noqa: E402


def timed_requests(one, clients: int, requests: int) -> dict:
    """Run `one(i) -> ok` for `requests` requests from `clients` threads (after one warm-up, not counted):
    requests/s, p50/p95 latency of the good ones, failed and lost counts, this process's CPU seconds."""

    def timed(i: int) -> tuple[bool, float]:
        t0 = time.perf_counter()
        return one(i), time.perf_counter() - t0

    one(-1)  # warm-up
    cpu0, t0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(timed, range(requests)))
    wall = time.perf_counter() - t0
    latencies = np.array([t for ok, t in results if ok])
    return {
        "requests": requests,
        "ok": int(sum(ok for ok, _ in results)),
        "failed": int(sum(not ok for ok, _ in results)),
        "lost": requests - len(results),
        "rps": len(latencies) / wall,
        "p50_ms": float(np.percentile(latencies, 50) * 1000) if len(latencies) else None,
        "p95_ms": float(np.percentile(latencies, 95) * 1000) if len(latencies) else None,
        "process_cpu_s": time.process_time() - cpu0,
    }


def load(url: str, clients: int, requests: int, image_url: str, model: str) -> dict:
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0, timeout=600)
    ask = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_url}}]}]

    def one(_: int) -> bool:
        try:
            reply = client.chat.completions.create(model=model, messages=ask)
            return bool(reply.choices and reply.choices[0].message.content)
        except openai.OpenAIError:
            return False

    return timed_requests(one, clients, requests)


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its children (Linux /proc)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
    return total


def worker_cpu_s(engines: dict) -> float:
    """CPU seconds used so far by the engines' front-end worker processes (0 without workers)."""
    pids = [getattr(engine.analyzer.frontend, "pid", None) for engine in engines.values()]
    return sum(process_tree_cpu_s(pid) for pid in pids if pid)


def cpu_during(pids: list[int], run) -> tuple[dict, list[float]]:
    """run()'s result and the CPU seconds each process of `pids` (with its children) used meanwhile."""
    before = [process_tree_cpu_s(pid) for pid in pids]
    result = run()
    return result, [process_tree_cpu_s(pid) - b for pid, b in zip(pids, before)]


def through_served_gateway(args: list[str], clients: int, requests: int, image_url: str, model: str,
                           vllm_pid: int | None = None) -> dict:  # fmt: skip
    """The load through `emoreason serve ARGS` in its own process, with the CPU seconds of the gateway (and its
    front-end workers) and of the vLLM server (`vllm_pid`, where there is one) over that load."""
    with served_gateway(args) as live:
        run = functools.partial(load, live.url, clients, requests, image_url, model)
        result, cpu = cpu_during([live.pid] + ([vllm_pid] if vllm_pid else []), run)
        return result | {"gateway_cpu_s": cpu[0]} | ({"vllm_cpu_s": cpu[1]} if vllm_pid else {})


def through_gateway(engines: dict, clients: int, requests: int, image_url: str, model: str) -> dict:
    settings = GatewaySettings(max_concurrency=clients, request_timeout_s=600)
    with BackgroundServer(create_app(engines, settings)) as live:
        worker0 = worker_cpu_s(engines)
        result = load(live.url, clients, requests, image_url, model)  # process_cpu_s: gateway + clients
        result["frontend_worker_cpu_s"] = worker_cpu_s(engines) - worker0  # the gateway's face front-end
        return result


def direct_to_vllm(url: str, model: str, tokens: int, clients: int, requests: int, vllm_pid: int) -> dict:
    """The vLLM backend's own request for the astronaut (its messages and options, built once) sent straight
    to the server: what a client that skipped the gateway would cost (with the server's CPU seconds)."""
    from skimage import data

    from emoreason.face.frontend import FaceFrontEnd
    from emoreason.reasoning.vllm_backend import VLLMBackend

    rgb = data.astronaut()
    frontend = FaceFrontEnd()
    observations = frontend.observe(rgb)
    frontend.close()
    backend = VLLMBackend(base_url=url, model=model, max_new_tokens=tokens)
    request = backend.requests([(observations, rgb)], None)[0]
    messages, options = backend.messages(request), backend._logprob_options()

    def one(_: int) -> bool:
        try:
            return bool(backend.endpoint.complete(messages, **options))
        except Exception:  # noqa: BLE001 - counted as a failed request
            return False

    result, (vllm_s,) = cpu_during([vllm_pid], lambda: timed_requests(one, clients, requests))
    return result | {"vllm_cpu_s": vllm_s}


class _Live:
    def __init__(self, url: str, pid: int):
        self.url, self.pid = url, pid


@contextlib.contextmanager
def served_gateway(args: list[str], startup_s: float = 300.0):
    """`emoreason serve ARGS` on a free loopback port, in its own process, until /health answers."""
    import subprocess

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "emoreason", "serve", "--host", "127.0.0.1", "--port", str(port),
                             *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            with contextlib.suppress(httpx.HTTPError):  # not listening yet
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"emoreason serve did not start (exit code {proc.poll()})")
            time.sleep(0.5)
        yield _Live(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def overload(seconds: float, clients: int = 8, slots: int = 2) -> dict:
    """Saturate a 2-slot gateway with large images; time the refusals and /health meanwhile."""
    import io
    import threading

    import cv2
    import httpx
    from PIL import Image
    from skimage import data

    big = cv2.resize(data.astronaut(), (6000, 4000), interpolation=cv2.INTER_CUBIC)  # 24 MP
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="JPEG", quality=85)
    jpeg = buf.getvalue()
    # The multipart body is built once: the clients share this process with the gateway, and re-encoding
    # 4 MB per request would be client work charged to the server's latency.
    boundary = "emoreasonbench"
    upload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n"
              f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    codes: dict[int, int] = {}
    refused_ms, health_ms = [], []
    stop = threading.Event()
    # The gateway as deployed, `emoreason serve` in its own process: the clients' work here does not share
    # its interpreter (in one process, the 8 client threads' sends competed with its event loop).
    with served_gateway(["--backend", "embedded", "--max-concurrency", str(slots)]) as live:

        def client() -> None:
            with httpx.Client(base_url=live.url, timeout=600) as http:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    reply = http.post("/v1/analyze", content=upload, headers=headers)
                    codes[reply.status_code] = codes.get(reply.status_code, 0) + 1
                    if reply.status_code == 429:
                        refused_ms.append((time.perf_counter() - t0) * 1000)
                        time.sleep(0.05)  # a polite client backs off a little; still far above the limit

        def probe() -> None:
            with httpx.Client(base_url=live.url, timeout=60) as http:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    http.get("/health")
                    health_ms.append((time.perf_counter() - t0) * 1000)
                    time.sleep(0.05)

        threads = [threading.Thread(target=client) for _ in range(clients)] + [threading.Thread(target=probe)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()

    def pct(values: list[float], q: float) -> float | None:
        return float(np.percentile(values, q)) if values else None

    return {"image_bytes": len(jpeg), "slots": slots, "clients": clients, "seconds": seconds,
            "ok": codes.get(200, 0), "refused": codes.get(429, 0),
            "server_errors": sum(n for c, n in codes.items() if c >= 500),
            "refused_p50_ms": pct(refused_ms, 50), "refused_p95_ms": pct(refused_ms, 95),
            "health_p50_ms": pct(health_ms, 50), "health_p95_ms": pct(health_ms, 95),
            "health_n": len(health_ms)}  # fmt: skip


def _overload_line(r: dict) -> str:
    keys = ("ok", "refused", "server_errors", "refused_p50_ms", "refused_p95_ms", "health_p50_ms", "health_p95_ms")
    return " ".join(f"overload_{k}={round(r[k], 1) if isinstance(r[k], float) else r[k]}" for k in keys)


def gateway_vs_direct(args, model_dir: Path, image_url: str) -> dict:
    """Run 2: the gateway (its own process) -> vLLM, and the same requests straight to vLLM, with 1 client and
    with `args.clients`; what the gateway adds."""
    from emoreason.serving.vllm_server import VLLMServer, find_vllm_python, vllm_command

    figures: dict = {}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = vllm_command(find_vllm_python(), str(model_dir), "tiny", "127.0.0.1", port, {}, max_model_len=1024,
                           kv_cache="256M", dtype="float32")  # fmt: skip
    with VLLMServer(command, "127.0.0.1", port) as server:
        gateway = ["--backend", "vllm", "--base-url", server.url, "--model", "tiny", "--name", "tiny", "--timeout",
                   "600", "--max-new-tokens", str(args.tokens), "--max-concurrency", str(args.clients)]  # fmt: skip
        pid = server.proc.pid
        for clients, suffix in ((args.clients, ""), (1, "_1client")):
            n = args.requests if clients > 1 else args.requests // 3
            figures[f"vllm{suffix}"] = through_served_gateway(gateway, clients, n, image_url, "tiny", pid)
            figures[f"vllm_direct{suffix}"] = direct_to_vllm(server.url, "tiny", args.tokens, clients, n, pid)
        # the same load with the front-end taking one request at a time (no batching of waiting requests)
        figures["vllm_unbatched"] = through_served_gateway([*gateway, "--frontend-batch", "1"], args.clients,
                                                           args.requests, image_url, "tiny", pid)  # fmt: skip
    figures["gateway_overhead"] = {
        "frontend_batching_rps_ratio": figures["vllm"]["rps"] / figures["vllm_unbatched"]["rps"],
        "rps_share_of_direct": figures["vllm"]["rps"] / figures["vllm_direct"]["rps"],
    }
    for suffix in ("", "_1client"):
        g, d = figures[f"vllm{suffix}"], figures[f"vllm_direct{suffix}"]
        figures["gateway_overhead"].update({
            f"added_p50_ms{suffix}": g["p50_ms"] - d["p50_ms"],
            f"added_p95_ms{suffix}": g["p95_ms"] - d["p95_ms"],
            f"share_of_p50{suffix}": (g["p50_ms"] - d["p50_ms"]) / g["p50_ms"],
            f"cpu_ms_per_request{suffix}": 1000 * g["gateway_cpu_s"] / g["requests"],
            # vLLM's own CPU a request (API server + engine; the warm-up request included) in each path: the
            # same if the gateway only adds its own work
            f"vllm_cpu_ms_per_request{suffix}": 1000 * g["vllm_cpu_s"] / (g["requests"] + 1),
            f"vllm_cpu_ms_per_request_direct{suffix}": 1000 * d["vllm_cpu_s"] / (d["requests"] + 1),
        })  # fmt: skip

    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=48)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--out", default="out/bench/serving.json")
    ap.add_argument("--overload-seconds", type=float, default=20.0)
    ap.add_argument("--only", choices=("overload", "gateway"), default=None, help="run one part alone")
    args = ap.parse_args()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.only == "overload":
        figures = {"overload": overload(args.overload_seconds)}
        Path(args.out).write_text(json.dumps(figures, indent=2))
        print(_overload_line(figures["overload"]))
        return

    from skimage import data

    from emoreason.tiny import make_tiny_model

    image_url = image_data_url(data.astronaut())
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    model_dir = make_tiny_model(work / "tiny", "qwen2_5_vl")
    figures: dict = {"clients": args.clients, "requests": args.requests, "tokens": args.tokens}
    if args.only == "gateway":
        figures.update(gateway_vs_direct(args, model_dir, image_url))
        Path(args.out).write_text(json.dumps(figures, indent=2))
        rates = {f"{k}_rps": round(figures[k]["rps"], 3) for k in ("vllm", "vllm_unbatched", "vllm_direct")}
        overhead = {f"gateway_{k}": round(v, 3) for k, v in figures["gateway_overhead"].items()}
        print(" ".join(f"{k}={v}" for k, v in (rates | overhead).items()))
        return

    for workers, name in ((1, "embedded"), (2, "embedded_2workers")):  # as deployed, `--frontend-workers N`
        served = ["--backend", "embedded", "--timeout", "600", "--max-concurrency", str(args.clients),
                  "--frontend-workers", str(workers)]  # fmt: skip
        figures[name] = through_served_gateway(served, args.clients, args.requests, image_url, "emoreason")
    figures["frontend_workers_2_over_1_rps"] = figures["embedded_2workers"]["rps"] / figures["embedded"]["rps"]

    figures.update(gateway_vs_direct(args, model_dir, image_url))
    analyzer = Analyzer(backend="transformers", model=str(model_dir), max_new_tokens=args.tokens, dtype="float32")
    engines = {"tiny": Engine("tiny", analyzer)}
    figures["transformers"] = through_gateway(engines, args.clients, args.requests, image_url, "tiny")
    analyzer.close()
    figures["vllm_over_transformers_rps"] = figures["vllm"]["rps"] / figures["transformers"]["rps"]
    figures["overload"] = overload(args.overload_seconds)

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    flat = {"clients": args.clients, "requests": args.requests}
    names = ("embedded", "embedded_2workers", "vllm", "vllm_unbatched", "vllm_direct", "vllm_1client",
             "vllm_direct_1client")  # fmt: skip
    for name in (*names, "transformers"):
        r = figures[name]
        flat.update({f"{name}_rps": round(r["rps"], 3), f"{name}_p50_ms": round(r["p50_ms"], 1),
                     f"{name}_p95_ms": round(r["p95_ms"], 1), f"{name}_failed": r["failed"] + r["lost"]})  # fmt: skip
    flat["vllm_over_transformers_rps"] = round(figures["vllm_over_transformers_rps"], 3)
    flat["frontend_workers_2_over_1_rps"] = round(figures["frontend_workers_2_over_1_rps"], 3)
    flat.update({f"gateway_{k}": round(v, 3) for k, v in figures["gateway_overhead"].items()})
    print(" ".join(f"{k}={v}" for k, v in flat.items()) + " " + _overload_line(figures["overload"]))


if __name__ == "__main__":
    main()
