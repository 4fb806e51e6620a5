"""The embedded FACS rule engine: scoring, and the text it writes."""

import re

import pytest

from emoreason.facs import supported_emotions
from emoreason.reasoning.embedded import EmbeddedBackend, au_log_likelihood
from emoreason.types import AUActivation, FaceObservation

FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)  # Facial-R1's fullmatch


def face(intensities: dict[int, float], prior: dict[str, float] | None = None) -> FaceObservation:
    aus = [
        AUActivation(
            c,
            intensities.get(c, 0.0),
            intensities.get(c, 0.0) >= 2.0,
            1 / (1 + 2.718 ** (-2 * (intensities.get(c, 0.0) - 2.0))),
        )
        for c in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 43)
    ]
    return FaceObservation(
        index=0, box=(0, 0, 10, 10), detection_score=1.0, source="full", aus=aus, expression_prior=prior
    )


def cited(text: str) -> set[int]:
    """AUs cited as present: "(AU12)" counts, "(no AU12)" does not."""
    return {int(c) for c in re.findall(r"\((?:AU)(\d+)\)", text)}


@pytest.mark.parametrize(
    "aus, expected",
    [
        ({6: 4, 12: 5, 25: 3}, "happiness"),  # Duchenne smile with parted lips
        ({1: 4, 2: 4, 5: 4, 26: 4, 25: 4}, "surprise"),
        ({4: 4, 7: 4, 23: 4, 24: 3}, "anger"),
        ({9: 4, 10: 4, 4: 2}, "disgust"),
        ({1: 4, 4: 4, 15: 4}, "sadness"),
        ({1: 4, 2: 3, 4: 3, 5: 4, 20: 4, 25: 3}, "fear"),
        ({}, "neutral"),  # nothing moves
    ],
)
def test_au_evidence_alone_picks_the_prototype(aus, expected):
    engine = EmbeddedBackend(use_prior=False)
    result = engine.analyze([face(aus)])[0]
    assert result.emotion == expected
    assert FORMAT.fullmatch(result.text)
    assert result.text.endswith(f"<answer>{expected}</answer>")
    assert 0 < result.confidence <= 1 and abs(sum(result.emotion_scores.values()) - 1) < 1e-3


def test_reasoning_cites_aus_consistent_with_the_answer():
    engine = EmbeddedBackend(use_prior=False)
    for aus in ({6: 4, 12: 5}, {1: 4, 2: 4, 5: 4, 26: 4}, {4: 4, 7: 4, 23: 4}, {9: 4, 10: 4}, {25: 3}, {}):
        r = engine.analyze([face(aus)])[0]
        assert r.emotion in supported_emotions(cited(r.reasoning)), (aus, r.text)


def test_a_prior_that_outweighs_the_aus_is_said_plainly_and_the_aus_stay_cited():
    # a strong neutral prior overrules weak AU evidence: the text still cites what was measured
    # (never "no AU12" or "at rest" for a face with AU12), and says what decided and what the AUs suggest
    r = EmbeddedBackend().analyze([face({12: 2.2, 25: 3}, prior={"neutral": 0.97, "happiness": 0.03})])[0]
    assert r.emotion == "neutral"
    assert cited(r.reasoning) == {12, 25}
    assert "at rest" not in r.reasoning and "no AU12" not in r.reasoning
    assert "would suggest happiness" in r.reasoning and "(97% neutral) outweighs" in r.reasoning


def test_prior_and_aus_combine():
    engine = EmbeddedBackend()
    # no AU evidence: the prior decides
    assert engine.analyze([face({}, prior={"sadness": 0.9, "neutral": 0.1})])[0].emotion == "sadness"
    # a clear smile overturns a prior that leans (weakly) to neutral
    assert engine.analyze([face({6: 3, 12: 4}, prior={"happiness": 0.4, "neutral": 0.6})])[0].emotion == "happiness"


def test_label_set_restricts_the_answer():
    r = EmbeddedBackend(use_prior=False).analyze([face({6: 4, 12: 5})], labels=["neutral", "sadness"])[0]
    assert r.emotion in ("neutral", "sadness") and set(r.emotion_scores) == {"neutral", "sadness"}
    with pytest.raises(ValueError, match="no known emotion"):
        EmbeddedBackend().emotion_scores(face({}), labels=["boredom"])


def test_deterministic_but_varied():
    engine = EmbeddedBackend(use_prior=False)
    first = engine.analyze([face({6: 4, 12: 5})])[0].text
    assert engine.analyze([face({6: 4, 12: 5})])[0].text == first
    texts = {engine.analyze([face({6: 3 + k / 10, 12: 4.5})])[0].reasoning for k in range(10)}
    assert len(texts) >= 4  # several phrasings, not one template


def test_likelihood_prefers_the_matching_prototype():
    smile = face({6: 4, 12: 5}).aus
    assert au_log_likelihood(smile, "happiness") > max(
        au_log_likelihood(smile, e) for e in ("sadness", "anger", "fear", "disgust", "surprise", "neutral")
    )


def test_face_without_landmarks_still_gets_an_answer():
    obs = FaceObservation(
        index=0,
        box=(0, 0, 1, 1),
        detection_score=0.9,
        source="detector",
        aus=[],
        expression_prior={"happiness": 0.8, "neutral": 0.2},
    )
    r = EmbeddedBackend().analyze([obs])[0]
    assert r.emotion == "happiness" and "could not be measured" in r.reasoning and FORMAT.fullmatch(r.text)
