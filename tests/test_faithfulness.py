"""The embedded engine's texts keep the faithfulness invariants on any observation (hypothesis),
and the check itself catches what it should."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoreason.facs import DETECTED_AUS
from emoreason.faithfulness import breaks, stated_probabilities
from emoreason.labels import BASIC7, EMOTIONS
from emoreason.reasoning.embedded import EmbeddedBackend
from emoreason.rewards import REWARDS, consistency_score
from emoreason.types import AUActivation, FaceObservation

ENGINE = EmbeddedBackend()


@st.composite
def observations(draw):
    intensities = draw(st.lists(st.sampled_from([0.0, 0.0, 0.3, 0.9, 1.5, 2.2, 3.1, 4.4, 5.0]),
                                min_size=len(DETECTED_AUS), max_size=len(DETECTED_AUS)))  # fmt: skip
    aus = [AUActivation(c, x, x >= 1.0, min(1.0, x / 4)) for c, x in zip(DETECTED_AUS, intensities)]
    prior = {}
    if draw(st.booleans()):
        weights = draw(st.lists(st.floats(0.01, 1.0), min_size=7, max_size=7))
        prior = {e: w / sum(weights) for e, w in zip(BASIC7, weights)}
    labels = draw(st.lists(st.sampled_from(EMOTIONS), min_size=1, max_size=8, unique=True))
    obs = FaceObservation(index=0, box=(0, 0, 1, 1), detection_score=1.0, source="full", aus=aus,
                          expression_prior=prior)  # fmt: skip
    return obs, labels


@settings(max_examples=300, deadline=None)
@given(observations())
def test_engine_texts_keep_the_invariants(case):
    obs, labels = case
    result = ENGINE.analyze([obs], labels=labels)[0]
    present = {a.code: a.intensity for a in obs.present_aus()}
    # 1-4: what the text cites, denies, calls at rest, gives as a probability or as an intensity agrees with the
    # measurements
    assert breaks(result.text, present, obs.expression_prior) == [], result.text
    assert result.cited_aus == sorted(present), result.text
    # 3: the answer follows from the evidence the text gives, whenever an expression model was consulted
    if obs.expression_prior and result.emotion in obs.expression_prior:
        assert consistency_score(result.text) == 1.0, result.text
    # 4: the label set changes the answer, never the measurements
    other = ENGINE.analyze([obs], labels=list(EMOTIONS))[0]
    assert other.aus == result.aus and other.cited_aus == result.cited_aus


WORDS_ONLY = EmbeddedBackend(prior_numbers=False)  # `data synth --no-prior-numbers`: texts for a small student


@settings(max_examples=200, deadline=None)
@given(observations())
def test_engine_texts_without_prior_numbers_decide_alike_and_state_no_probability(case):
    """The same answer and the same cited AUs as the engine's own text, every invariant kept, and the
    whole-face impression named by its emotion only: no probability a student would have to copy."""
    obs, labels = case
    result = WORDS_ONLY.analyze([obs], labels=labels)[0]
    usual = ENGINE.analyze([obs], labels=labels)[0]
    assert (result.emotion, result.cited_aus) == (usual.emotion, usual.cited_aus)
    assert "%" not in result.text and stated_probabilities(result.reasoning) == [], result.text
    present = {a.code: a.intensity for a in obs.present_aus()}
    assert breaks(result.text, present, obs.expression_prior) == [], result.text
    if obs.expression_prior and result.emotion in obs.expression_prior:
        assert consistency_score(result.text) == 1.0, result.text


def test_breaks_names_each_kind_of_unfaithful_text():
    think = "No facial muscle action is clearly visible (no AU12); the brows knit (AU4)."
    text = f"<think>{think}</think><answer>anger</answer>"
    assert breaks(text, present=[12, 14]) == [
        "cites unmeasured AU4",
        "denies measured AU12",
        "calls an active face at rest",
    ]
    assert breaks("<think>The lids are relaxed (no AU7); AU12 lifts.</think><answer>happiness</answer>", [12]) == []


def test_faithfulness_reward_is_registered_and_skips_unmeasured_faces():
    text = "<think>(AU6) (AU12)</think><answer>happiness</answer>"
    assert REWARDS["faithfulness"]([text] * 3, measured_aus=[[6, 12], [12], None]) == [1.0, 0.0, None]


def test_a_misstated_prior_breaks_invariant_3_within_the_prompts_rounding():
    prior = {"sadness": 0.624, "fear": 0.2, "neutral": 0.176}
    think = "The brows rise (AU1). The whole-face impression is sadness ({s}%), with fear ({f}%) next."
    honest = f"<think>{think.format(s=62, f=20)}</think><answer>sadness</answer>"
    assert breaks(honest, [1], prior) == []
    assert breaks(honest, [1]) == []  # no prior given: nothing to check the numbers against
    inflated = f"<think>{think.format(s=85, f=20)}</think><answer>sadness</answer>"
    assert breaks(inflated, [1], prior) == ["misstates the expression prior: sadness 85%, measured 62%"]
    # an emotion the model gave (almost) nothing cannot be stated at 30%
    assert breaks("<think>AU1; 30% for anger.</think><answer>anger</answer>", [1], prior) == [
        "misstates the expression prior: anger 30%, measured 0%"
    ]


def test_stated_probabilities_reads_every_form_the_engine_writes():
    text = ("The whole face reads as sadness (62%), ahead of fear (20%); the impression (62% sadness) outweighs "
            "it, at 20% for fear; 5% against happy.")  # fmt: skip
    assert stated_probabilities(text) == [("sadness", 62), ("fear", 20), ("sadness", 62), ("fear", 20)]


def test_stated_probabilities_reads_how_other_models_and_people_write_them():
    """Hand-written and other models' analyses give the prior in more forms than the engine's three."""
    cases = {
        "The expression model gives 55 % disgust.": [("disgust", 55)],
        "The classifier puts happiness at 81%.": [("happiness", 81)],
        "an 81% probability of happiness": [("happiness", 81)],
        "happiness with probability 0.81": [("happiness", 81)],
        "the probability of anger is 0.4": [("anger", 40)],
        "neutral: 0.10, happiness: 0.81": [("neutral", 10), ("happiness", 81)],
        "P(fear) = 0.05.": [("fear", 5)],
        "Happy 90 percent": [("happiness", 90)],
        "fear 20%, anger 10%": [("fear", 20), ("anger", 10)],
        "62% sadness, 20% fear": [("sadness", 62), ("fear", 20)],  # the 20 is fear's, not sadness's
        # numbers that are not an emotion's probability
        "AU12 at intensity 2.8 and AU6 (3.1); the AU12 intensity is 80%; the lips part (25%)": [],
        "happiness: 1, surprise: 2 (a ranking)": [],
    }
    for text, expected in cases.items():
        assert stated_probabilities(text) == expected, text
    prior = {"happiness": 0.6, "surprise": 0.3, "neutral": 0.1}
    misstated = "<think>AU6 and AU12 are active (AU6) (AU12); P(happiness) = 0.90.</think><answer>happiness</answer>"
    assert breaks(misstated, [6, 12], prior) == ["misstates the expression prior: happiness 90%, measured 60%"]


def test_every_probability_the_engine_states_is_the_priors():
    # AUs of happiness against a prior that reads neutral: the engine weighs the two in numbers
    prior = {"neutral": 0.9, "happiness": 0.06, "surprise": 0.04}
    for level in (1.5, 2.0, 2.5, 3.0, 3.5, 4.0):  # the phrasing is seeded by the measurements: vary them
        aus = [AUActivation(c, level if c in (6, 12) else 0.0, c in (6, 12), 0.8) for c in DETECTED_AUS]
        obs = FaceObservation(index=0, box=(0, 0, 1, 1), detection_score=1.0, source="full", aus=aus,
                              expression_prior=prior)  # fmt: skip
        result = ENGINE.analyze([obs], labels=list(BASIC7))[0]
        assert result.emotion == "neutral" and stated_probabilities(result.reasoning), result.reasoning
        assert breaks(result.text, [6, 12], prior) == [], result.reasoning


def test_faithfulness_reward_reads_the_prior_column_as_json():
    text = "<think>(AU6) (AU12); the face reads as happiness (90%).</think><answer>happiness</answer>"
    column = ['{"happiness": 0.9}', '{"happiness": 0.4}', None]
    assert REWARDS["faithfulness"]([text] * 3, measured_aus=[[6, 12]] * 3, expression_prior=column) == [1.0, 0.0, 1.0]


def test_the_graded_reward_counts_each_claim_and_agrees_with_the_invariants():
    """faithfulness_share: the share of claims that hold. 1.0 exactly where no invariant breaks; dropping a false
    claim raises it and dropping a true one lowers it (the direction the all-or-nothing reward cannot give)."""
    prior = {"anger": 0.3, "sadness": 0.26}
    texts = {
        "honest": "<think>The brows knit (AU4) and the lips press (AU24); no AU12. Anger (30%).</think>"
        "<answer>anger</answer>",
        "one false": "<think>The brows knit (AU4), the lips press (AU24) and the jaw drops (AU26); no AU12. Anger "
        "(30%).</think><answer>anger</answer>",
        "false dropped": "<think>The brows knit (AU4) and the lips press (AU24); no AU12.</think>"
        "<answer>anger</answer>",
        "true dropped too": "<think>The brows knit (AU4), the jaw drops (AU26).</think><answer>anger</answer>",
        "prior misstated": "<think>The brows knit (AU4) and the lips press (AU24); no AU12. Anger (76%).</think>"
        "<answer>anger</answer>",
    }
    scores = REWARDS["faithfulness_share"](list(texts.values()), measured_aus=[[4, 24]] * 5,
                                           expression_prior=[prior] * 5)  # fmt: skip
    share = dict(zip(texts, scores))
    assert share["honest"] == share["false dropped"] == 1.0
    assert share["one false"] == 4 / 5 and share["prior misstated"] == 3 / 4 and share["true dropped too"] == 1 / 2
    for name, text in texts.items():  # one source of truth with the invariants
        assert (share[name] == 1.0) == (breaks(text, [4, 24], prior) == []), name
    assert REWARDS["faithfulness_share"](["<think>(AU4)</think><answer>anger</answer>"], measured_aus=[None]) == [None]


def test_an_intensity_two_facs_letters_off_or_a_wrong_number_breaks_invariant_4():
    """A word within one letter of the measured intensity is wording; two letters off, or a number more than the
    prompt's rounding away, says what the detector did not measure. Only where intensities are given."""
    text = ("<think>The lips part intensely (AU25), the brows knit clearly downwards (AU4) and the jaw falls "
            "slightly, opening the mouth (AU26).</think><answer>anger</answer>")  # fmt: skip
    assert breaks(text, {25: 4.9, 4: 2.2, 26: 1.4}) == []
    assert breaks(text, {25: 4.9, 4: 3.4, 26: 1.9}) == []  # one letter off: D for "clearly", B for "slightly"
    assert breaks(text, {25: 2.4, 4: 2.2, 26: 3.9}) == [
        "misstates AU25's intensity: 'intensely' (E), measured 2.4 (C)",
        "misstates AU26's intensity: 'slightly' (B), measured 3.9 (D)",
    ]
    assert breaks(text, [25, 4, 26]) == []  # codes alone: nothing to check the words against
    numbers = "<think>AU12 at 3.1 and AU6 (cheek raiser, intensity 2.0) with AU25: 4.0.</think><answer>joy</answer>"
    assert breaks(numbers, {12: 3.14, 6: 2.0, 25: 4.0}) == []
    assert breaks(numbers, {12: 1.2, 6: 2.0, 25: 4.3}) == [
        "misstates AU12's intensity: 3.1, measured 1.2",
        "misstates AU25's intensity: 4.0, measured 4.3",
    ]
    # the forms people write
    people = ("<think>AU6 (cheek raiser): 2.0; mild brow lowering (AU4, intensity 1.5); AU12 is present at high "
              "intensity (4.2).</think><answer>happiness</answer>")  # fmt: skip
    assert breaks(people, {6: 2.0, 4: 1.5, 12: 4.2}) == []
    assert [b.split(":")[0] for b in breaks(people, {6: 3.0, 4: 1.5, 12: 2.2})] == [
        "misstates AU6's intensity",
        "misstates AU12's intensity",
    ]
    # another AU's code is never read as an intensity, nor a probability, nor a word outside the citing clause
    assert breaks("<think>AU6 and AU12 rise; 62% happiness. Strong. The lip corners rise (AU12).</think>"
                  "<answer>happiness</answer>", {6: 1.0, 12: 1.0}) == []  # fmt: skip


def test_the_graded_reward_counts_each_intensity_as_a_claim():
    text = "<think>The brows are strongly lowered (AU4) and the lips pressed (AU24).</think><answer>anger</answer>"
    measured = [{4: 3.5, 24: 2.0}, '{"4": 1.0, "24": 2.0}', [4, 24]]
    scores = REWARDS["faithfulness_share"]([text] * 3, measured_aus=measured)
    # 3 claims (two AUs, one intensity), the intensity wrong in the second; codes alone: 2 claims, both true
    assert scores == pytest.approx([1.0, 2 / 3, 1.0])


def test_every_result_carries_what_its_text_contradicts_through_json_tables_and_the_report():
    from emoreason.reasoning.vlm import FaceRequest, Generation, to_face_analysis
    from emoreason.tables import rows
    from emoreason.types import EmotionAnalysis

    aus = [AUActivation(12, 2.4, True, 0.9), AUActivation(6, 1.2, True, 0.7), AUActivation(4, 0.0, False, 0.1)]
    obs = FaceObservation(index=0, box=(0, 0, 48, 48), detection_score=1.0, source="full", aus=aus,
                          expression_prior={"happiness": 0.8, "neutral": 0.2})  # fmt: skip
    request = FaceRequest(0, obs, [], None, None)  # type: ignore[arg-type]  # no prompt needed to read a reply
    text = ("<think>The lip corners rise intensely (AU12), the brows lower (AU4) and the face reads 95% "
            "happiness.</think><answer>happiness</answer>")  # fmt: skip
    face = to_face_analysis(request, Generation(text=text))
    assert face.contradictions == [
        "cites unmeasured AU4",
        "misstates the expression prior: happiness 95%, measured 80%",
        "misstates AU12's intensity: 'intensely' (E), measured 2.4 (C)",
    ]
    unsupported = to_face_analysis(request, Generation(text="<think>The lip corners rise (AU12).</think>"
                                                            "<answer>fear</answer>"))  # fmt: skip
    assert unsupported.contradictions == ["answers fear on evidence that does not support it"]
    # the engine keeps every invariant, so its results list none; a failed face has no text to audit
    assert ENGINE.analyze([obs])[0].contradictions == []
    assert to_face_analysis(request, Generation(text="", error="endpoint down")).contradictions == []

    analysis = EmotionAnalysis(source="x.png", width=48, height=48, faces=[face], backend="transformers")
    assert EmotionAnalysis.from_dict(analysis.to_dict()).faces[0].contradictions == face.contradictions
    assert "contradicts the measurements or itself: cites unmeasured AU4" in analysis.to_text()
    assert rows(analysis)[0]["contradictions"].startswith("cites unmeasured AU4; misstates the expression prior")
