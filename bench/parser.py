"""How fast the output parser and the GRPO rewards read completions (they run on every GRPO sample).

    python bench/parser.py --out out/bench/parser.json

The corpus: analyses the embedded engine writes for random AU vectors (long, clean, the SFT
style), plus short sloppy outputs of the kinds real VLMs write (checklists, untagged answers,
hedges, full-width and CJK text), mixed 4:1. Reported: completions per second for
`parse_output` alone and for the four GRPO rewards together (format, emotion, AU, consistency),
each the best of `--repeats` passes on one thread. Prints a final key=value line; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emoreason.facs import DETECTED_AUS  # noqa: E402
from emoreason.labels import EMOTIONS  # noqa: E402
from emoreason.parsing import parse_output  # noqa: E402
from emoreason.reasoning.embedded import EmbeddedBackend  # noqa: E402
from emoreason.rewards import combined_reward  # noqa: E402
from emoreason.rewards import parse_output as rewards_parse_cache  # noqa: E402
from emoreason.types import AUActivation, FaceObservation  # noqa: E402

SLOPPY = [
    "<think>1. **AU1 (Inner Brow Raiser)**: Not present.\n2. **AU4 (Brow Lowerer)**: Present.\n"
    "3. **AU15 (Lip Corner Depressor)**: Slightly present.</think>\n<answer>Sadness</answer>",
    "The brows rise (AU1+2) and the jaw drops (AU26). Fear would also need AU4 and AU20, which are "
    "absent.\nFinal answer: Surprise",
    "<think>Active AUs: 6, 12, 25. No AU4.</think><answer>Surprise or happiness - most likely happiness.</answer>",
    "<think>在这张脸上，AU6和AU12最为明显，没有AU4。</think><answer>快乐</answer>",
    "<think>| AU | present |\n| AU12 | no |\n| AU9 | yes |\n| AU10 | yes |</think><answer>disgust",
]


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    engine = EmbeddedBackend(use_prior=False)
    texts = []
    for i in range(n):
        if i % 5 == 4:
            texts.append(SLOPPY[i // 5 % len(SLOPPY)])
            continue
        aus = [AUActivation(c, x, x >= 2.0, min(1.0, x / 4)) for c in DETECTED_AUS
               for x in [round(max(0.0, rng.gauss(0.3, 1.6)), 1)]]  # fmt: skip
        obs = FaceObservation(index=0, box=(0, 0, 1, 1), detection_score=1.0, source="full", aus=aus)
        texts.append(engine.analyze([obs], labels=list(EMOTIONS))[0].text)
    return texts


def best_rate(fn, n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="completions in the corpus")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="out/bench/parser.json")
    args = parser.parse_args()

    texts = corpus(args.n)
    golds = {"emotion": [EMOTIONS[i % len(EMOTIONS)] for i in range(len(texts))], "aus": [[6, 12]] * len(texts)}
    weights = {"format": 0.5, "emotion": 1.0, "au": 1.0, "consistency": 0.5}
    parse_rate = best_rate(lambda: [parse_output(t) for t in texts], len(texts), args.repeats)

    def rewards() -> None:
        rewards_parse_cache.cache_clear()  # a GRPO step sees new completions: no reuse across passes
        combined_reward(texts, weights, strict=True, **golds)

    reward_rate = best_rate(rewards, len(texts), args.repeats)
    result = {
        "completions": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
        "cases_per_s": round(parse_rate, 1),
        "rewards_per_s": round(reward_rate, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 thread",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(" ".join(f"{k}={v}" for k, v in result.items() if k != "machine"))


if __name__ == "__main__":
    main()
