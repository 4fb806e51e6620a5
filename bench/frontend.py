"""Front-end throughput: faces/s of the whole face front-end vs the bare mediapipe calls (the floor).

    python bench/frontend.py --out out/bench/frontend.json

Images: scikit-image's astronaut (1 face), a two-face composite and a four-face grid, each
analysed `--repeats` times. The floor is the bare mediapipe work on the same images in the
same run: one full-range BlazeFace call per image, then one face-mesh call per detected face
on its crop (the mesh model run on a whole group photo finds only the largest faces, so a
per-face call is the least any pipeline must do). The ratio (front-end faces/s over floor
faces/s) is what the front-end's extra work (per-face crops, tiles, AUs, alignment,
expression prior) costs.

Two front-end paths: `observe` one image at a time (the latency path: the gateway, the demo),
and `observe_many` over groups of 8 images (the throughput path: `analyze_many`, the CLI on a
folder), where the expression model runs once over the faces of all 8 images. Everything
runs on one thread (OMP_NUM_THREADS=1; mediapipe's XNNPACK uses one thread on desktop Linux),
so the ratio compares like with like. Prints a final line of key=value pairs; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from emoreason.face._mediapipe import import_mediapipe  # noqa: E402
from emoreason.face.frontend import FaceFrontEnd  # noqa: E402


def images() -> list[np.ndarray]:
    from skimage import data

    a = data.astronaut()
    two = np.concatenate([a, a[:, ::-1]], axis=1)
    small = cv2.resize(a, (384, 384))
    grid = np.concatenate([np.concatenate([small, small[:, ::-1]], 1), np.concatenate([small[:, ::-1], small], 1)], 0)
    return [a, two, grid]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default="out/bench/frontend.json")
    args = parser.parse_args()
    imgs = images()
    mp = import_mediapipe()
    frontend = FaceFrontEnd()
    counts = [len(frontend.observe(img)) for img in imgs]  # also warms up
    detector = mp.solutions.face_detection.FaceDetection(model_selection=1)
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)

    def floor(img: np.ndarray) -> int:
        h, w = img.shape[:2]
        found = 0
        for d in detector.process(img).detections or []:
            b = d.location_data.relative_bounding_box
            cx, cy, side = (
                (b.xmin + b.width / 2) * w,
                (b.ymin + b.height / 2) * h,
                1.6 * max(b.width * w, b.height * h),
            )
            x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
            crop = np.ascontiguousarray(img[y0 : int(cy + side / 2), x0 : int(cx + side / 2)])
            found += bool(mesh.process(crop).multi_face_landmarks)
        return found

    for img in imgs:  # warm-up
        floor(img)

    faces = sum(counts) * args.repeats
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        for img in imgs:
            for o in frontend.observe(img):
                for k, v in o.timings.items():
                    stages[k] = stages.get(k, 0.0) + v
    frontend_s = time.perf_counter() - t0
    stream = [img for _ in range(args.repeats) for img in imgs]
    t0 = time.perf_counter()
    batched_found = sum(len(f) for i in range(0, len(stream), 8) for f in frontend.observe_many(stream[i : i + 8]))
    batched_s = time.perf_counter() - t0
    assert batched_found == faces, (batched_found, faces)
    t0 = time.perf_counter()
    floor_found = sum(floor(img) for _ in range(args.repeats) for img in imgs)
    floor_s = time.perf_counter() - t0

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS')}",
        "faces_per_image": counts,
        "stage_ms_per_face": {k: round(v / faces, 2) for k, v in stages.items()},
        "frontend_faces_per_s": faces / frontend_s,
        "batched_faces_per_s": faces / batched_s,
        "floor_faces_per_s": faces / floor_s,
        "floor_faces_found": floor_found / args.repeats,
        "frontend_ms_per_face": 1000 * frontend_s / faces,
        "floor_ms_per_face": 1000 * floor_s / faces,
    }
    result["ratio_to_floor"] = result["frontend_faces_per_s"] / result["floor_faces_per_s"]
    result["batched_ratio_to_floor"] = result["batched_faces_per_s"] / result["floor_faces_per_s"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(
        f"faces per image {counts}; the floor's detector+mesh found {result['floor_faces_found']:.0f} of {sum(counts)}"
    )
    print("front-end ms per face by stage (observe):", result["stage_ms_per_face"])
    print(" ".join(f"{k}={v:.3f}" for k, v in result.items() if isinstance(v, float)))


if __name__ == "__main__":
    main()
