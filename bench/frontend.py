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

What the tiles buy, in the same run (`small_face_recall`): the astronaut's face pasted at 48-96 px
wide into scikit-image's coffee photo scaled to 768 and 1,024 px, at four places each, found by
the detector on the whole image alone (the floor's single pass) and with the tiles.
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


def small_face_recall(sizes=(48, 64, 80, 96), sides=(768, 1024)) -> dict[str, float]:
    """Share of pasted faces found, by face width (px): the whole image alone vs whole image + tiles."""
    from skimage import data

    from emoreason.face.detect import FaceDetector

    head, scene = data.astronaut()[0:300, 110:350], data.coffee()  # the face is ~130 px wide in `head`
    with_tiles, whole_only = FaceDetector("auto"), FaceDetector("auto", tile_above=1 << 30)
    found = {("whole", s): 0 for s in sizes} | {("tiles", s): 0 for s in sizes}
    places = [(0.2, 0.3), (0.6, 0.5), (0.4, 0.2), (0.75, 0.65)]
    for side in sides:
        background = cv2.resize(scene, (side, side * 3 // 4))
        for size in sizes:
            w = int(size * head.shape[1] / 130)
            h = int(w * head.shape[0] / head.shape[1])
            pasted = cv2.resize(head, (w, h), interpolation=cv2.INTER_AREA)
            for fx, fy in places:
                img = background.copy()
                x, y = int(fx * (side - w)), int(fy * (img.shape[0] - h))
                img[y : y + h, x : x + w] = pasted
                cx, cy = x + w / 2, y + 0.45 * h  # the face's centre in the pasted head
                for name, detector in (("whole", whole_only), ("tiles", with_tiles)):
                    boxes = [d.box for d in detector.detect(img)]
                    found[name, size] += any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes)
    with_tiles.close()
    whole_only.close()
    n = len(sides) * len(places)
    return {f"recall_{name}_{size}px": found[name, size] / n for name, size in found}


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
    result["small_faces"] = small_face_recall()
    result["batched_ratio_to_floor"] = result["batched_faces_per_s"] / result["floor_faces_per_s"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(
        f"faces per image {counts}; the floor's detector+mesh found {result['floor_faces_found']:.0f} of {sum(counts)}"
    )
    print("front-end ms per face by stage (observe):", result["stage_ms_per_face"])
    print("small faces found (768 and 1,024 px photos), whole image alone vs with tiles:", result["small_faces"])
    flat = {k: v for k, v in result.items() if isinstance(v, float)} | result["small_faces"]
    print(" ".join(f"{k}={v:.3f}" for k, v in flat.items()))


if __name__ == "__main__":
    main()
