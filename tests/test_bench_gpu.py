"""bench/gpu.py's CPU smoke mode: the GPU benchmark's code paths (generate, LoRA SFT step, GRPO step, face-model
training) run on the tiny model, so the script is known to work before a GPU machine is lent."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # builds the tiny tokenizer and model, then trains a step of each kind
def test_gpu_bench_smoke_mode_runs_every_part_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    for key in (
        "tiny_gen_b1_tokens_per_s",
        "tiny_gen_b2_analyses_per_s",
        "tiny_sft_step_s",
        "tiny_grpo_step_s",
        "face_model_train_faces_per_s",
    ):
        assert figures[key] > 0, key
    assert figures["tiny_grpo_completions"] == 2
    last = proc.stdout.strip().splitlines()[-1]
    assert "face_model_train_faces_per_s=" in last and "tiny_sft_step_s=" in last  # the final key=value line
