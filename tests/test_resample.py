"""Asking again where a text contradicts the front-end (`--resample-contradicted N`, VLMBackend.resample).

The policy on scripted replies (which texts are kept, how many times the model is asked), then the shipped
emoreason-mini on real faces: its retries leave fewer contradictions, and each kept text's audit is its own.
"""

from __future__ import annotations

import csv

import pytest

from emoreason import Analyzer
from emoreason.faithfulness import contradictions
from emoreason.reasoning.vlm import Generation, VLMBackend, face_requests, group_by_item, to_face_analysis
from emoreason.types import AUActivation, FaceObservation

FAITHFUL = "<think>The lip corners rise (AU12).</think><answer>happiness</answer>"
ONE_WRONG = "<think>The lip corners rise (AU12) and the nose wrinkles (AU9).</think><answer>disgust</answer>"
TWO_WRONG = "<think>The brows lower (AU4) and the nose wrinkles (AU9).</think><answer>anger</answer>"


class Scripted(VLMBackend):
    """A model whose replies are written in advance: the first answer per face, then one list per retry."""

    name = "scripted"
    model = None

    def __init__(self, first: list[str], retries: list[list[str]], resample_contradicted: int):
        self.first, self.retries, self.resample_contradicted = first, retries, resample_contradicted
        self.asked: list[int] = []  # how many faces each retry asked about

    def analyze_batch(self, items, labels=None):
        requests = face_requests(items, labels)
        results = [to_face_analysis(r, Generation(text=t)) for r, t in zip(requests, self.first)]
        return group_by_item(requests, self.resample(requests, results), len(items))

    def generate_again(self, requests, attempt):
        self.asked.append(len(requests))
        return [Generation(text=t) for t in self.retries[attempt - 1][: len(requests)]]


def _smiling_face(index: int) -> FaceObservation:
    return FaceObservation(index=index, box=(0, 0, 48, 48), detection_score=1.0, source="full",
                           aus=[AUActivation(12, 2.0, True, 0.9), AUActivation(9, 0.0, False, 0.1)])  # fmt: skip


def test_a_contradicted_text_is_asked_again_until_one_contradicts_nothing():
    faces = [_smiling_face(0), _smiling_face(1), _smiling_face(2)]
    retries = [[ONE_WRONG, ONE_WRONG], [FAITHFUL, FAITHFUL], [TWO_WRONG]]
    backend = Scripted(first=[FAITHFUL, TWO_WRONG, ONE_WRONG], retries=retries, resample_contradicted=3)
    results = backend.analyze(faces)
    # face 0 was faithful: never asked again; face 1 got better (2 contradictions -> 1), then right; face 2 kept
    # its first text over an equally wrong one (a tie keeps the first), then got it right; no third retry
    assert [r.text for r in results] == [FAITHFUL, FAITHFUL, FAITHFUL]
    assert backend.asked == [2, 2] and all(r.contradictions == [] for r in results)


def test_retries_are_bounded_and_the_least_contradicted_text_is_kept_with_its_audit():
    backend = Scripted(first=[TWO_WRONG], retries=[[ONE_WRONG], [TWO_WRONG]], resample_contradicted=2)
    (result,) = backend.analyze([_smiling_face(0)])
    assert backend.asked == [1, 1] and result.text == ONE_WRONG
    assert result.contradictions == ["cites unmeasured AU9"] == contradictions(_smiling_face(0), result.text)
    assert Scripted([TWO_WRONG], [], resample_contradicted=0).analyze([_smiling_face(0)])[0].text == TWO_WRONG


def test_an_answer_its_own_evidence_does_not_support_is_asked_again():
    # every AU claim true, but AU12 alone does not make anger: the answer contradicts the text's own evidence
    unsupported = "<think>The lip corners rise (AU12).</think><answer>anger</answer>"
    assert contradictions(_smiling_face(0), unsupported) == ["answers anger on evidence that does not support it"]
    backend = Scripted(first=[unsupported], retries=[[FAITHFUL]], resample_contradicted=1)
    assert backend.analyze([_smiling_face(0)])[0].text == FAITHFUL and backend.asked == [1]


def test_a_failed_retry_never_replaces_a_text():
    class Failing(Scripted):
        def generate_again(self, requests, attempt):
            return [Generation(text="", error="endpoint down") for _ in requests]

    (result,) = Failing([ONE_WRONG], [], resample_contradicted=2).analyze([_smiling_face(0)])
    assert result.text == ONE_WRONG and result.error is None


@pytest.mark.slow  # the shipped mini on 16 real faces, greedy and with retries (about 30 s)
def test_the_mini_asked_again_contradicts_the_front_end_less(fer_train):
    from emoreason.training.face_model import shipped_split_of

    with open(fer_train / "labels.csv") as f:  # faces of the face model's validation split: no model trained on them
        paths = [
            p for p in (str(fer_train / row["filename"]) for row in csv.DictReader(f)) if shipped_split_of(p) == "val"
        ]
    counts = {}
    for retries in (0, 3):
        with Analyzer(backend="transformers", face_mode="full", resample_contradicted=retries, seed=0) as analyzer:
            faces = [face for result in analyzer.analyze_many(paths[:16]) for face in result.faces]
        assert len(faces) == 16
        for face in faces:  # the audit belongs to the text kept
            assert face.contradictions == contradictions(face, face.text)
        counts[retries] = sum(len(face.contradictions) for face in faces)
    # one in two of the mini's greedy texts contradicts the front-end somewhere (bench/mini.py); asked again, fewer
    assert counts[3] < counts[0], counts
