"""Quality on real in-the-wild faces (the shared FER2013 development subset; skipped if absent).

The AU evidence combined with the expression prior must beat the prior alone, on accuracy
and macro-F1 (bench/accuracy.py prints the same figures).
"""

import importlib.util
from pathlib import Path

import pytest


@pytest.mark.slow
def test_combined_beats_prior_alone(fer_dev):
    spec = importlib.util.spec_from_file_location(
        "bench_accuracy", Path(__file__).parent.parent / "bench" / "accuracy.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.evaluate(fer_dev)
    assert r["n"] == 350 and r["mesh_found"] >= 330  # the mesh fits >94% of 48 px in-the-wild crops
    assert r["combined"]["accuracy"] > r["prior"]["accuracy"]
    assert r["combined"]["macro_f1"] > r["prior"]["macro_f1"]
    assert r["aus"]["accuracy"] > 0.25  # AU evidence alone: well above chance (1/7)
