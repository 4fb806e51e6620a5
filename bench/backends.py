"""Transformers-backend throughput: images/s at batch 1 vs batch 8 on the same model, in one run.

    python bench/backends.py --out out/bench/backends.json                 # builds the tiny model
    python bench/backends.py --model Qwen/Qwen2.5-VL-3B-Instruct --device cuda   # a real one

Images: `--images` one-face crops (scikit-image's astronaut, shifted so no two are
identical). The face front-end runs once before timing: this measures the reasoning
backend alone (prompt encoding, vision tower, generation, parsing), which is what the vLLM
backend will be compared against later. Every face generates exactly `--tokens` new tokens
(min = max), so a random model's early stops cannot flatter either batch size. The ratio
batch8/batch1 is measured in the same process, interleaved over `--rounds`, because these
machines are noisy. Prints a final line of key=value pairs; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from emoreason.face.frontend import FaceFrontEnd  # noqa: E402
from emoreason.models.loading import load_model  # noqa: E402
from emoreason.reasoning.transformers_backend import TransformersBackend  # noqa: E402


def face_images(n: int) -> list[np.ndarray]:
    from skimage import data

    a = data.astronaut()
    out = []
    for i in range(n):
        dy, dx = 3 * (i % 6), 3 * (i // 6 % 6)
        img = a[30 + dy : 250 + dy, 120 + dx : 340 + dx]
        # (no mirroring: the mirrored crop shows the suit's patch, which the detector takes for a second face)
        out.append(np.ascontiguousarray(img))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="hub id or folder; default: build the tiny qwen2_5_vl")
    parser.add_argument("--family", default="qwen2_5_vl", help="tiny model family when --model is not given")
    parser.add_argument("--device", default=None)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per face (fixed)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="out/bench/backends.json")
    args = parser.parse_args()

    model = args.model
    if model is None:
        from emoreason.tiny import make_tiny_model

        model = str(make_tiny_model(Path(tempfile.mkdtemp()) / "tiny", args.family))
    loaded = load_model(model, device=args.device)
    frontend = FaceFrontEnd()
    imgs = face_images(args.images)
    items = [(frontend.observe(img), img) for img in imgs]
    faces = sum(len(obs) for obs, _ in items)
    backends = {}
    for batch in (1, 8):
        backend = TransformersBackend(loaded=loaded, batch_size=batch, max_new_tokens=args.tokens)
        backend.generate_options["min_new_tokens"] = args.tokens
        backend.analyze_batch(items[:batch])  # warm-up
        backends[batch] = backend

    seconds = {1: 0.0, 8: 0.0}
    for _ in range(args.rounds):
        for batch, backend in backends.items():
            t0 = time.perf_counter()
            backend.analyze_batch(items)
            seconds[batch] += time.perf_counter() - t0

    import torch

    device = str(loaded.device)
    gpu = torch.cuda.get_device_name() if device.startswith("cuda") else None
    result = {
        "machine": gpu
        or f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
        "model": args.model or f"tiny {args.family} (random weights)",
        "images": len(imgs),
        "faces": faces,
        "new_tokens_per_face": args.tokens,
        "batch1_images_per_s": args.rounds * len(imgs) / seconds[1],
        "batch8_images_per_s": args.rounds * len(imgs) / seconds[8],
        "batch1_tokens_per_s": args.rounds * faces * args.tokens / seconds[1],
        "batch8_tokens_per_s": args.rounds * faces * args.tokens / seconds[8],
    }
    result["batch8_over_batch1"] = result["batch8_images_per_s"] / result["batch1_images_per_s"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"{result['model']} on {result['machine']}: {len(imgs)} images, {faces} faces, {args.tokens} tokens each")
    print(" ".join(f"{k}={v:.3f}" for k, v in result.items() if isinstance(v, float)))


if __name__ == "__main__":
    main()
