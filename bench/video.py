"""Video AU stability: how often AUs flip on and off on a face that does not move, with and without smoothing.

    python bench/video.py --out out/bench/video.json

The clip: scikit-image's astronaut (a real, still, smiling face), each frame shifted by a
random 0-3 px and re-encoded as MJPG, as a handheld camera or a re-encoded stream would give
a still face; 20 frames at 10 fps, every frame analysed. A flip is an AU whose presence
differs from the previous frame's; the flip rate is flips per frame pair (18 AUs, one face).
Measured in one run: the raw per-frame AUs (`smoothing=None`) and the default smoothing
(moving average + hysteresis, `video.AUSmoothing`), plus which AUs flipped. Prints a final
line of key=value pairs; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from emoreason.analyzer import Analyzer  # noqa: E402
from emoreason.video import AUSmoothing, presence_flip_counts, presence_flips  # noqa: E402


def jitter_clip(path: Path, frames: int = 20, max_shift: int = 3, seed: int = 0) -> Path:
    """The astronaut, still, each frame shifted by up to `max_shift` px (MJPG, 10 fps)."""
    from skimage import data

    face = data.astronaut()
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 512))
    for _ in range(frames):
        dx, dy = rng.integers(-max_shift, max_shift + 1, 2)
        shifted = cv2.warpAffine(face, np.float32([[1, 0, dx], [0, 1, dy]]), (512, 512), borderMode=cv2.BORDER_REFLECT)
        writer.write(cv2.cvtColor(shifted, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def measure(clip: Path) -> dict:
    out = {}
    with Analyzer(backend="embedded") as analyzer:
        for name, smoothing in (("raw", None), ("smoothed", AUSmoothing())):
            video = analyzer.analyze_video(str(clip), fps=10, smoothing=smoothing)
            out[name] = {"frames": len(video.frames), "flip_rate": presence_flips(video),
                         "flips_by_au": presence_flip_counts(video)[0],
                         "emotions": sorted({f.faces[0].emotion for f in video.frames if f.faces})}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/bench/video.json")
    args = parser.parse_args()
    clip = jitter_clip(Path(tempfile.mkdtemp(prefix="bench-video-")) / "still.avi")
    figures = measure(clip)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    raw, smooth = figures["raw"], figures["smoothed"]
    print(
        f"frames={raw['frames']} flip_rate_raw={raw['flip_rate']:.3f} flip_rate_smoothed={smooth['flip_rate']:.3f} "
        f"flips_raw={sum(raw['flips_by_au'].values())} flips_smoothed={sum(smooth['flips_by_au'].values())}"
    )


if __name__ == "__main__":
    main()
