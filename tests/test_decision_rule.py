"""The fitted decision rule: the fit recovers a known rule, the engine applies it only where it holds,
and the shipped rule is readable."""

from __future__ import annotations

import numpy as np

from emoreason.facs import DETECTED_AUS
from emoreason.labels import BASIC7
from emoreason.reasoning.decision_rule import DecisionRule, load_default_rule
from emoreason.reasoning.embedded import EmbeddedBackend
from emoreason.training.decision_rule import (
    balanced_accuracy,
    cross_validate,
    fit_logistic,
    one_standard_error_choice,
)
from emoreason.types import AUActivation, FaceObservation


def test_the_fit_recovers_a_separable_rule():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    y = np.argmax(x[:, :3] * [2.0, 1.0, 1.5], axis=1)
    w, b = fit_logistic(x, y, l2=1e-4, n_classes=3)
    assert balanced_accuracy(y, np.argmax(x @ w.T + b, axis=1), 3) > 0.95
    assert cross_validate(x, y, 1e-4, 3) > 0.9
    assert abs(w[:, 3]).max() < abs(w[:, :3]).max() / 3  # the noise feature gets little weight


def test_the_penalty_is_the_strongest_within_one_standard_error_of_the_best():
    # (UAR, its standard error) per L2 strength: 0.1 is best, 1.0 within its error, 10 beyond it
    cv = {1e-3: (0.650, 0.006), 1e-1: (0.663, 0.007), 1.0: (0.657, 0.005), 10.0: (0.655, 0.004)}
    assert one_standard_error_choice(cv) == 1.0
    assert one_standard_error_choice({1e-3: (0.70, 0.001), 1.0: (0.60, 0.001)}) == 1e-3  # a real gain is kept


def _rule(face_model: str = "test-face") -> DecisionRule:
    zeros = {e: 0.0 for e in BASIC7}
    w_prior = {e: {k: (1.0 if k == e else 0.0) for k in BASIC7} for e in BASIC7}  # the prior's own log-prob
    w_au = {e: {c: 0.0 for c in DETECTED_AUS} for e in BASIC7}
    w_au["happiness"][12] = 2.0  # AU12 pushes happiness hard
    return DecisionRule(list(BASIC7), list(BASIC7), list(DETECTED_AUS), zeros, w_prior, w_au, face_model, {})


def _face(prior_model: str) -> FaceObservation:
    aus = [AUActivation(12, 3.0, True, 0.9), AUActivation(4, 0.0, False, 0.0)]
    prior = {
        "sadness": 0.6,
        "happiness": 0.1,
        **{e: 0.06 for e in ("neutral", "surprise", "fear", "disgust", "anger")},
    }
    return FaceObservation(index=0, box=(0, 0, 1, 1), detection_score=1.0, source="full", aus=aus,
                           expression_prior=prior, prior_model=prior_model)  # fmt: skip


def test_the_engine_applies_the_rule_only_to_the_prior_it_was_fitted_on():
    engine = EmbeddedBackend(rule=_rule())
    fitted = engine.analyze([_face("test-face")], labels=list(BASIC7))[0]
    assert fitted.emotion == "happiness"  # log(0.1) + 2 * 3 beats log(0.6)
    assert "In the fitted decision rule, AU12 at 3.0" in fitted.reasoning
    other = engine.analyze([_face("fer")], labels=list(BASIC7))[0]  # another prior: the likelihood model decides
    assert "fitted decision rule" not in other.reasoning
    with_contempt = engine.analyze([_face("test-face")], labels=[*BASIC7, "contempt"])[0]  # a class it lacks
    assert with_contempt.emotion == "happiness" and with_contempt.emotion_scores["contempt"] < 0.01


def test_the_shipped_rule_loads_and_prints():
    rule = load_default_rule()
    assert rule is not None and rule.classes == list(BASIC7) and rule.au_terms == list(DETECTED_AUS)
    table = rule.table()
    assert table.count("\n") == 1 + 1 + len(BASIC7) + len(DETECTED_AUS)
    assert rule.meta["cv_uar"] > 0.5


def test_strong_regularisation_gives_back_the_prior():
    """The rule is a correction to the prior: shrunk hard, it decides exactly as the prior does."""
    rng = np.random.default_rng(1)
    log_prior = np.log(rng.dirichlet(np.ones(3), size=300))
    x = np.concatenate([log_prior, rng.normal(size=(300, 2))], axis=1)
    y = rng.integers(0, 3, 300)  # labels unrelated to anything: nothing to learn
    w, b = fit_logistic(x, y, l2=1e3, n_classes=3)
    np.testing.assert_allclose(w[:, :3], np.eye(3), atol=1e-2)
    assert abs(w[:, 3:]).max() < 1e-2
    assert (np.argmax(x @ w.T + b, axis=1) == np.argmax(log_prior, axis=1)).mean() > 0.95
