"""Rewards: table-driven cases, trl's input forms, and agreement with the embedded engine's writing."""

from __future__ import annotations

import random

import pytest

from emoreason.facs import DETECTED_AUS, supported_emotions
from emoreason.labels import EMOTIONS
from emoreason.reasoning.embedded import EmbeddedBackend
from emoreason.rewards import REWARDS, au_reward, combined_reward, consistency_reward, emotion_reward, format_reward
from emoreason.types import AUActivation, FaceObservation

GOOD = "<think>The cheeks rise (AU6) and the lip corners pull up (AU12); no AU4.</think>\n<answer>happiness</answer>"

# (completion, gold emotion, gold AUs, expected format, emotion, au, consistency)
CASES = [
    (GOOD, "happiness", [6, 12], 1.0, 1.0, 1.0, 1.0),  # perfect
    (GOOD, "happy", [6, 12, 25], 1.0, 1.0, 2 * 0.8 - 1, 1.0),  # gold alias; one gold AU missed
    (GOOD, None, [], 1.0, 0.5, 0.0, 1.0),  # no labels at all: neutral emotion reward, no AU reward
    (GOOD, "sadness", [1, 4, 15], 1.0, 0.0, -1.0, 1.0),  # wrong emotion, disjoint AUs: F1 0 -> -1
    ("<think>smiling broadly</think><answer>happiness</answer>", "happiness", [6, 12], 1.0, 1.0, -1.0, 0.0),
    ("<answer>happiness</answer>", "happiness", [6, 12], 0.0, 1.0, -1.0, 0.0),  # no think: no AUs, no support
    ("<think>(AU6) (AU12)</think><answer>happiness or surprise</answer>", "happiness", [6], 1.0, 0.0, 2 / 3 * 2 - 1,
     0.0),  # two labels: not a valid answer
    ("<think>no AU4, no AU9, no AU12</think><answer>neutral</answer>", "neutral", [], 1.0, 1.0, 0.0, 1.0),
    ("<think>(AU4) (AU7) (AU23)</think><answer>anger</answer><answer>fear</answer>", "anger", [4, 7, 23], 0.0, 0.0,
     1.0, 0.0),  # doubled answers: format 0, and the answer read (fear) is neither gold nor supported
]  # fmt: skip


@pytest.mark.parametrize("text,gold,gold_aus,fmt,emo,au,cons", CASES)
def test_reward_cases(text, gold, gold_aus, fmt, emo, au, cons):
    assert format_reward([text]) == [fmt]
    assert emotion_reward([text], emotion=[gold]) == [emo]
    assert au_reward([text], aus=[gold_aus]) == [pytest.approx(au)]
    assert consistency_reward([text]) == [cons]


def test_conversational_completions_are_read():
    conversational = [[{"role": "assistant", "content": GOOD}]]
    parts = [[{"role": "assistant", "content": [{"type": "text", "text": GOOD}]}]]
    assert format_reward(conversational) == format_reward(parts) == [1.0]


def test_registry_and_weighted_sum():
    assert {"format", "emotion", "au", "consistency"} <= set(REWARDS)
    total, parts = combined_reward([GOOD, "nothing"], {"format": 0.5, "emotion": 1.0, "au": 1.0, "consistency": 0.5},
                                   emotion=["happiness", "happiness"], aus=[[6, 12], [6, 12]])  # fmt: skip
    assert total == [3.0, -1.0] and parts["format"] == [1.0, 0.0]
    with pytest.raises(ValueError, match="unknown reward"):
        combined_reward([GOOD], {"style": 1.0})


def test_embedded_writer_cites_the_evidence_the_consistency_reward_looks_for():
    """Whenever the detected AUs support the engine's answer (by the shared prototype table),
    its written analysis cites them, so the consistency reward sees the same support. (On
    weak evidence the engine still answers its likeliest emotion, and the reward rightly
    calls that unsupported: on these random AU vectors about a third of the answers.)"""
    rng = random.Random(0)
    engine = EmbeddedBackend(use_prior=False)
    supported, consistent = 0, 0
    for _ in range(300):
        aus = [AUActivation(c, x, x >= 2.0, min(1.0, x / 4)) for c in DETECTED_AUS
               for x in [round(max(0.0, rng.gauss(0.3, 1.6)), 1)]]  # fmt: skip
        obs = FaceObservation(index=0, box=(0, 0, 1, 1), detection_score=1.0, source="full", aus=aus)
        result = engine.analyze([obs], labels=list(EMOTIONS))[0]
        assert format_reward([result.text]) == [1.0]
        if result.emotion in supported_emotions([a.code for a in obs.present_aus()]):
            supported += 1
            consistent += consistency_reward([result.text])[0]
    assert supported >= 100 and consistent == supported
