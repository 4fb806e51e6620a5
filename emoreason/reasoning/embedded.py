"""The embedded backend: a FACS rule engine that reasons from AU evidence, no LLM needed.

Scoring (per face) treats the EMFACS prototype table (facs.EMOTION_PROTOTYPES) as a
generative model of what a noisy AU detector reports:
1. For emotion e, an AU is truly active with probability 0.75 if it is one of e's core AUs,
   0.4 if supporting, 0.03 if conflicting, 0.15 otherwise (neutral: 0.05 for any
   emotion-defining AU, 0.15 otherwise).
2. The geometric detector sees a truly active AU with probability `sensitivity` (0.4: it
   misses most subtle movements) and reports an inactive one with probability
   `false_alarm` (0.15, about its rate on neutral faces). So
   P(detected | e) = P(active | e) * sensitivity + (1 - P(active | e)) * false_alarm.
3. Each AU's detector score s (0-1) is a soft observation:
   log L(e) = sum_AU s * log P(detected | e) + (1 - s) * log(1 - P(detected | e)).
4. With the expression prior: log p(e) = log prior(e) + au_weight * log L(e), normalised
   (a product of experts, down-weighted because AUs are correlated and naive Bayes would count
   the same movement twice). au_weight = 0.5. With emoreason's face model as the prior, a sweep on
   FER2013 publictest (3,239 faces none of the models trained on) gave accuracy 0.534 at 0, 0.535
   at 0.15, 0.530 at 0.3 and 0.522 at 0.5: on 48 px faces the geometric AUs add nothing to that
   prior. The weight stays at 0.5 so that a clear, measured movement (a smile) can still overturn a
   prior that leans weakly the other way on a photo, where the AUs are reliable; a rule fitted per
   emotion replaces this constant next. Without a prior only the AU likelihood counts.
5. The emotion is the most probable label of the allowed set; confidence is its probability.

The written analysis is deterministic (seeded by the measurements) but varied: several
phrasings per AU, per intensity and per argument, so that it can serve as SFT data. It
cites every AU measured present as "(AU<n>)", strongest first, writes "no AU<n>" only for
AUs measured absent, and either shows the answer's support in the cited AUs (the prototype
table the consistency reward uses) or says plainly that the whole-face impression outweighs
the AU evidence and what the AUs alone would suggest (faithfulness.py holds it to that).
"""

from __future__ import annotations

import math
import random
import time
import zlib
from collections.abc import Sequence

import numpy as np

from ..facs import EMOTION_PROTOTYPES, au_name, supported_emotions
from ..faithfulness import contradictions, intensity_letter
from ..labels import EMOTIONS, normalize_label
from ..parsing import find_aus
from ..types import AUActivation, FaceAnalysis, FaceObservation
from .decision_rule import DecisionRule, load_default_rule

_DEFINING = frozenset(c for p in EMOTION_PROTOTYPES.values() for c in p.core)
PRIOR_FLOOR = 1e-3  # labels the prior does not cover (contempt for the FER model) get this probability

# Phrasings per AU: "{adv}" is an intensity adverb. The first clause form is used in lists.
AU_PHRASES: dict[int, tuple[str, ...]] = {
    1: (
        "the inner corners of the brows are {adv} raised",
        "the inner brows lift {adv}",
        "the brow heads are {adv} drawn upwards",
    ),
    2: (
        "the outer brows are {adv} raised",
        "the outer ends of the brows lift {adv}",
        "the lateral brows arch {adv} upwards",
    ),
    4: (
        "the brows are {adv} lowered and drawn together",
        "the brows knit {adv} downwards",
        "a {adj} frown pulls the brows down and together",
    ),
    5: (
        "the upper lids are {adv} raised, widening the eyes",
        "the eyes are {adv} widened",
        "more of the eyeball shows as the upper lids lift {adv}",
    ),
    6: (
        "the cheeks are {adv} raised, narrowing the eyes from below",
        "the cheeks lift {adv} towards the eyes",
        "{adj} cheek raising bunches the skin under the eyes",
    ),
    7: (
        "the lower lids are {adv} tightened",
        "the lids tense {adv}, narrowing the eye opening",
        "the eyes are {adv} narrowed by tightened lids",
    ),
    9: (
        "the nose is {adv} wrinkled",
        "the nostril wings are {adv} pulled up, wrinkling the nose",
        "{adj} wrinkling appears along the nose",
    ),
    10: (
        "the upper lip is {adv} raised",
        "the upper lip lifts {adv} towards the nose",
        "the upper lip is {adv} drawn up",
    ),
    12: (
        "the lip corners are {adv} pulled up",
        "the mouth corners rise {adv} into a smile",
        "the lip corners are {adv} drawn up and back",
    ),
    14: (
        "the lip corners are {adv} tightened into dimples",
        "{adj} dimpling tightens the mouth corners",
        "the corners of the mouth are {adv} pulled inwards",
    ),
    15: (
        "the lip corners are {adv} pulled down",
        "the mouth corners turn {adv} downwards",
        "the lip corners are {adv} depressed",
    ),
    17: (
        "the chin is {adv} pushed up",
        "the chin boss rises {adv}, pushing the lower lip up",
        "the chin is {adv} raised",
    ),
    20: (
        "the lips are {adv} stretched sideways",
        "the mouth is {adv} stretched horizontally",
        "the lip corners are {adv} pulled out to the sides",
    ),
    23: ("the lips are {adv} tightened", "the lips narrow {adv}", "the red of the lips thins {adv}"),
    24: (
        "the lips are {adv} pressed together",
        "the lips press {adv} against each other",
        "{adj} pressure closes the lips",
    ),
    25: ("the lips are {adv} parted", "the lips part {adv}", "the mouth is {adv} open at the lips"),
    26: ("the jaw is {adv} dropped", "the jaw falls {adv}, opening the mouth", "the mouth hangs {adv} open"),
    43: ("the eyes are {adv} closed", "the eyelids are {adv} shut", "the eyes close {adv}"),
}
# FACS intensity letters A..E -> words.
_ADVERBS = ("barely", "slightly", "clearly", "strongly", "intensely")
_ADJECTIVES = ("faint", "slight", "clear", "strong", "intense")
_ABSENT = {
    1: "the inner brows are not raised",
    2: "the outer brows stay level",
    4: "the brows are not lowered",
    5: "the eyes are not widened",
    6: "the cheeks are not raised",
    7: "the lids are relaxed",
    9: "the nose is smooth",
    10: "the upper lip rests",
    12: "the lip corners are not pulled up",
    14: "there is no dimpling",
    15: "the lip corners are not pulled down",
    17: "the chin is relaxed",
    20: "the lips are not stretched",
    23: "the lips are not tightened",
    24: "the lips are not pressed",
    25: "the lips are together",
    26: "the jaw is not dropped",
    43: "the eyes are open",
}
_OPENERS = ("Looking at the face, ", "Examining the face, ", "On this face, ", "")
_CONCLUDERS = (
    "Together, {aus} form the pattern of {emotion}: {rationale}.",
    "{aus} together point to {emotion}, since {rationale}.",
    "This combination ({aus}) is characteristic of {emotion}; {rationale}.",
    "Taken together, {aus} indicate {emotion} because {rationale}.",
)
_SINGLE_CONCLUDERS = (  # one cited AU: "together" would read wrongly
    "{aus} alone points to {emotion}, since {rationale}.",
    "Here {aus} is the cue for {emotion}: {rationale}.",
)
_RULE_OUTS = ("{alt} is less likely because {why}.", "it is not {alt}: {why}.", "{alt} can be ruled out since {why}.")
_AT_REST = (  # only when no AU is measured present (faithfulness invariant 2)
    "The brows, eyes and mouth are all at rest; no action unit reaches a visible intensity.",
    "No facial muscle action is clearly visible: the brows, lids and lips stay relaxed.",
    "The face is still, with no action unit above trace level.",
)
_NEUTRAL_AT_REST = (
    "With no emotion-defining movement, the face is at rest: neutral.",
    "The face shows no meaningful AU activity beyond a resting state, which reads as neutral.",
)
_NEUTRAL_WITH_ACTION = (
    "None of the muscle actions that define an emotion are active, so the expression is neutral.",
    "These movements define no emotion on their own, so the expression reads as neutral.",
)


def _softmax(logits: dict[str, float]) -> dict[str, float]:
    top = max(logits.values())
    exp = {e: math.exp(z - top) for e, z in logits.items()}
    total = sum(exp.values())
    return {e: v / total for e, v in exp.items()}


def _phrase(au: AUActivation, rng: random.Random) -> str:
    k = intensity_letter(au.intensity)  # FACS letter A..E, the scale invariant 4 holds texts to
    template = rng.choice(AU_PHRASES[au.code])
    return template.format(adv=_ADVERBS[k], adj=_ADJECTIVES[k]) + f" ({au.label})"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _p_active(emotion: str, code: int) -> float:
    """P(AU truly active | emotion) from the prototype table."""
    if emotion not in EMOTION_PROTOTYPES:  # neutral
        return 0.05 if code in _DEFINING else 0.15
    p = EMOTION_PROTOTYPES[emotion]
    if code in p.core:
        return 0.75
    if code in p.supporting:
        return 0.4
    if code in p.conflicting:
        return 0.03
    return 0.15


def au_log_likelihood(
    aus: Sequence[AUActivation], emotion: str, sensitivity: float = 0.4, false_alarm: float = 0.15
) -> float:
    """log P(detector output | emotion) under the noisy-detector prototype model (module docstring).

    >>> smile = [AUActivation(6, 4.0, True, 0.98), AUActivation(12, 5.0, True, 0.99)]
    >>> au_log_likelihood(smile, "happiness") > au_log_likelihood(smile, "sadness")
    True
    """
    total = 0.0
    for au in aus:
        q = _p_active(emotion, au.code) * sensitivity + (1 - _p_active(emotion, au.code)) * false_alarm
        total += au.score * math.log(q) + (1 - au.score) * math.log(1 - q)
    return total


class EmbeddedBackend:
    """FACS rule engine (deterministic); see the module docstring."""

    name = "embedded"
    model = "facs-rules"
    thread_safe = True  # pure computation over the observations
    streams = False  # the text is written whole
    chats = False  # follow-ups are answered from the FACS evidence (serving/followup.py)
    batch_size = 8  # images grouped per call: the front-end's networks then run once over all their faces

    def __init__(
        self,
        au_weight: float = 0.5,
        use_prior: bool = True,
        sensitivity: float = 0.4,
        false_alarm: float = 0.15,
        rule: DecisionRule | None | str = "default",
        prior_numbers: bool = True,
    ):
        self.au_weight = au_weight
        self.use_prior = use_prior
        self.sensitivity = sensitivity
        self.false_alarm = false_alarm
        # The fitted rule (decision_rule.py) decides where it applies; the likelihood model below elsewhere.
        self.rule = load_default_rule() if rule == "default" else rule
        # False: the texts name the whole-face impression's emotion but not its probability ("the whole-face
        # impression of anger outweighs..."), for training a small student: one that has not learnt to copy the
        # number from its prompt writes a memorised one instead, which breaks faithfulness invariant 3
        # (docs/emoreason-mini.md, items 8, 10, 11). The decisions are the same; only the wording changes.
        self.prior_numbers = prior_numbers

    def emotion_scores(self, obs: FaceObservation, labels: Sequence[str] | None = None) -> dict[str, float]:
        """Probability of each allowed emotion for one face."""
        allowed = [e for e in map(normalize_label, labels) if e] if labels else list(EMOTIONS)
        if not allowed:
            raise ValueError(f"no known emotion in the label set {list(labels or [])}")
        use_prior = self.use_prior and bool(obs.expression_prior)
        if use_prior and isinstance(self.rule, DecisionRule) and self.rule.covers(obs, allowed):
            return _softmax(self.rule.logits(obs, allowed))
        logits = {}
        for e in allowed:
            z = au_log_likelihood(obs.aus, e, self.sensitivity, self.false_alarm) if obs.aus else 0.0
            z *= self.au_weight if use_prior else 1.0
            if use_prior:
                z += math.log(max(obs.expression_prior.get(e, 0.0), PRIOR_FLOOR))
            logits[e] = z
        return _softmax(logits)

    def analyze(
        self,
        observations: Sequence[FaceObservation],
        image: np.ndarray | None = None,
        labels: Sequence[str] | None = None,
    ) -> list[FaceAnalysis]:
        out = []
        for obs in observations:
            t0 = time.perf_counter()
            scores = self.emotion_scores(obs, labels)
            emotion = max(scores, key=scores.get)
            reasoning = self.write_reasoning(obs, emotion, scores)
            text = f"<think>{reasoning}</think>\n<answer>{emotion}</answer>"
            result = FaceAnalysis.from_observation(
                obs,
                emotion=emotion,
                confidence=round(scores[emotion], 4),
                reasoning=reasoning,
                text=text,
                emotion_scores={e: round(p, 4) for e, p in sorted(scores.items(), key=lambda kv: -kv[1])},
                cited_aus=find_aus(reasoning).cited,
                contradictions=contradictions(obs, text),  # [] by construction; audited like any backend's text
            )
            result.timings["reasoning"] = round((time.perf_counter() - t0) * 1000, 2)
            out.append(result)
        return out

    def analyze_batch(
        self,
        items: Sequence[tuple[Sequence[FaceObservation], np.ndarray | None]],
        labels: Sequence[str] | None = None,
    ) -> list[list[FaceAnalysis]]:
        return [self.analyze(observations, image, labels) for observations, image in items]

    # ----------------------------------------------------------------- writing
    def write_reasoning(
        self, obs: FaceObservation, emotion: str, scores: dict[str, float] | None = None, seed_extra: str = ""
    ) -> str:
        """The <think> text for `emotion` given the observation (also used to write SFT data).

        Faithful by construction (faithfulness.py, property-tested): it cites exactly the AUs
        measured present, strongest first; writes "no AUx" only for AUs measured absent; calls
        the face at rest only when no AU is present; and either shows the answer's support in
        the cited AUs (the FACS table of facs.py) or says plainly that the whole-face impression
        outweighs the AU evidence and what the AUs alone would suggest.
        """
        key = ",".join(f"{a.code}:{a.intensity:.1f}" for a in obs.aus) + f"|{emotion}|{seed_extra}"
        rng = random.Random(zlib.crc32(key.encode()))
        if not obs.aus:
            return self._write_without_aus(obs, emotion, rng)
        present = sorted(obs.present_aus(), key=lambda a: (-a.intensity, a.code))  # strongest cues first
        codes = {a.code for a in present}
        sentences = [*self._describe(present, rng)]
        supported = emotion in supported_emotions(codes)
        if supported:
            sentences += self._argue_from_aus(present, emotion, rng)
        else:
            sentences += self._argue_from_impression(obs, emotion, codes, scores, rng)
        sentences += self._rule_out_runner_up(emotion, codes, scores, rng)
        sentences += self._rule_terms(obs, emotion, codes, scores)
        if obs.expression_prior and supported:
            p = obs.expression_prior.get(emotion, 0.0)
            if p >= 0.5:
                agrees = (f"The overall appearance of the face agrees ({p:.0%} {emotion}).",
                          f"The holistic expression cues agree, at {p:.0%} for {emotion}.")  # fmt: skip
                if not self.prior_numbers:
                    agrees = (f"The overall appearance of the face agrees ({emotion}).",
                              f"The whole-face impression agrees, favouring {emotion}.")  # fmt: skip
                sentences.append(rng.choice(agrees))
        return " ".join(s for s in sentences if s)

    @staticmethod
    def _describe(present: list[AUActivation], rng: random.Random) -> list[str]:
        """What was measured: every present AU with its intensity, or a face at rest when none is."""
        if not present:
            return [rng.choice(_AT_REST)]
        clauses = [_phrase(a, rng) for a in present]
        opener = rng.choice(_OPENERS)
        if len(clauses) <= 3:
            return [_cap(opener + _join(clauses)) + "."]
        half = (len(clauses) + 1) // 2
        more = rng.choice(("further, ", "weaker still, ", "in addition, ", ""))
        return [_cap(opener + _join(clauses[:half])) + ".", _cap(more + _join(clauses[half:])) + "."]

    @staticmethod
    def _argue_from_aus(present: list[AUActivation], emotion: str, rng: random.Random) -> list[str]:
        """The answer is supported by the cited AUs under the FACS table: say which, and what is missing."""
        codes = {a.code for a in present}
        proto = EMOTION_PROTOTYPES.get(emotion)
        if proto is None:  # neutral, supported: no emotion-defining AU is present
            return [rng.choice(_NEUTRAL_WITH_ACTION if codes else _NEUTRAL_AT_REST)]
        cited = [c for c in proto.core + proto.supporting if c in codes]
        missing = [c for c in proto.core if c not in codes]
        aus_text = _join([f"AU{c}" for c in cited])
        if not missing:
            templates = _CONCLUDERS if len(cited) > 1 else _SINGLE_CONCLUDERS
            # The why, from a small grammar over this face's AUs rather than one fixed clause per emotion.
            names = _join([au_name(c) for c in proto.core])
            rationale = rng.choice((
                proto.rationale,
                f"the {names} {'are' if len(proto.core) > 1 else 'is'} what EMFACS requires of {emotion}",
                f"every core movement of {emotion} in FACS ({names}) is present, the strongest at "
                f"{max(a.intensity for a in present if a.code in proto.core):.1f} of 5",
            ))  # fmt: skip
            return [_cap(rng.choice(templates).format(aus=aus_text, emotion=emotion, rationale=rationale))]
        hits = len(proto.core) - len(missing)
        absent = _join([f"{_ABSENT[c]} (no AU{c})" for c in missing[:2]])
        return [f"{_cap(aus_text)} {'carry' if len(cited) > 1 else 'carries'} {hits} of the {len(proto.core)} core "
                f"movements of {emotion}, enough to read it, although {absent}."]  # fmt: skip

    def _argue_from_impression(
        self, obs: FaceObservation, emotion: str, codes: set[int], scores: dict[str, float] | None, rng: random.Random
    ) -> list[str]:
        """The cited AUs do not support the answer under the FACS table: say so, and what decided instead."""
        proto = EMOTION_PROTOTYPES.get(emotion)
        missing = [c for c in proto.core if c not in codes] if proto else []
        absent = f" ({_join([f'no AU{c}' for c in missing[:2]])})" if missing else ""
        prior = obs.expression_prior if self.use_prior else {}
        p = prior.get(emotion) if prior else None
        scores = scores or self.emotion_scores(obs)
        if max(scores, key=lambda e: scores[e]) != emotion:  # a label imposed from outside (data synth)
            weight = f"the whole-face impression gives it {p:.0%}" if p is not None else "no expression model backs it"
            if p is not None and not self.prior_numbers:
                weight = "the whole-face impression does not favour it"
            return [f"The measured AUs do not show {emotion}{absent}, and {weight}: this evidence does not "
                    f"point to {emotion}."]  # fmt: skip
        if p is None:
            why = "the expression model does not cover it" if prior else "no expression model was consulted"
            return [f"The AU evidence for {emotion} is weak{absent}, and {why}; of the allowed answers it is "
                    f"still the closest fit."]  # fmt: skip
        allowed = [e for e in (scores or prior) if e in prior]
        if max(allowed, key=lambda e: prior[e]) != emotion:  # the AUs tipped it, with the impression's help
            # in words: not "the impression of {emotion}", which would say it is the impression's top
            impression = f"impression ({p:.0%} {emotion})" if self.prior_numbers else "impression"
            return [f"The AU evidence for {emotion} is partial{absent}, but together with the whole-face "
                    f"{impression} it outweighs the alternatives."]  # fmt: skip
        alone = self._au_reading(obs, codes, exclude=emotion)
        suggests = f"would suggest {alone}" if alone else "would fit no single emotion"
        if alone and alone not in scores:
            suggests += " (not among the allowed answers)"
        restricted = set(prior) - set(scores)
        if restricted:  # the prior's probability is small in absolute terms: compare within the allowed set
            alt = self._runner_up({e: prior[e] for e in allowed}, emotion)
            against = f" against {prior[alt]:.0%} for {alt}" if alt else ""
            favours = (
                f"{emotion} ({p:.0%}{against})" if self.prior_numbers else emotion + (f" over {alt}" if alt else "")
            )
            return [f"On these AUs alone the face {suggests}; among the allowed answers the whole-face impression "
                    f"favours {favours}, which outweighs the AU evidence."]  # fmt: skip
        if not self.prior_numbers:
            return [rng.choice((
                f"On these AUs alone the face {suggests}, but the whole-face impression of {emotion} outweighs "
                f"the AU evidence.",
                f"The AUs by themselves {suggests}; the overall appearance of the face, which reads as {emotion}, "
                f"outweighs them.",
            ))]  # fmt: skip
        return [rng.choice((
            f"On these AUs alone the face {suggests}, but the whole-face impression ({p:.0%} {emotion}) "
            f"outweighs the AU evidence.",
            f"The AUs by themselves {suggests}; the overall appearance of the face, at {p:.0%} for {emotion}, "
            f"outweighs them.",
        ))]  # fmt: skip

    def _au_reading(self, obs: FaceObservation, codes: set[int], exclude: str) -> str | None:
        """What the measured AUs alone support, whatever the label set (the likeliest under the AU model)."""
        candidates = [e for e in supported_emotions(codes) if e != exclude]
        if not candidates:
            return None
        return max(candidates, key=lambda e: au_log_likelihood(obs.aus, e, self.sensitivity, self.false_alarm))

    def _rule_out_runner_up(
        self, emotion: str, codes: set[int], scores: dict[str, float] | None, rng: random.Random
    ) -> list[str]:
        """Why the runner-up lost: its core AUs that were measured absent (only those)."""
        alt = self._runner_up(scores, emotion)
        if not alt or alt not in EMOTION_PROTOTYPES:
            return []
        missing = [c for c in EMOTION_PROTOTYPES[alt].core if c not in codes]
        if not missing:
            return []
        why = _join([f"{_ABSENT[c]} (no AU{c})" for c in missing[:2]])
        return [_cap(rng.choice(_RULE_OUTS).format(alt=alt, why=why))]

    def _rule_terms(
        self, obs: FaceObservation, emotion: str, codes: set[int], scores: dict[str, float] | None
    ) -> list[str]:
        """Where the fitted rule decided: the two terms that weighed most for the answer over the runner-up."""
        alt = self._runner_up(scores, emotion)
        rule = self.rule
        if not alt or not isinstance(rule, DecisionRule) or not scores or not rule.covers(obs, list(scores)):
            return []
        mine, theirs = rule.terms(obs, emotion), rule.terms(obs, alt)
        gains = {t: mine[t] - theirs[t] for t in mine if t == "prior" or int(t[2:]) in codes}
        top = [t for t in sorted(gains, key=lambda t: -gains[t]) if gains[t] > 0.05][:2]
        if not top:
            return []
        intensity = {f"AU{a.code}": a.intensity for a in obs.aus}
        names = ["the whole-face impression" if t == "prior" else f"{t} at {intensity[t]:.1f}" for t in top]
        return [f"In the fitted decision rule, {_join(names)} weigh most for {emotion} over {alt}."]

    @staticmethod
    def _runner_up(scores: dict[str, float] | None, emotion: str) -> str | None:
        if not scores:
            return None
        ranked = [e for e in sorted(scores, key=scores.get, reverse=True) if e != emotion]
        return ranked[0] if ranked else None

    def _write_without_aus(self, obs: FaceObservation, emotion: str, rng: random.Random) -> str:
        base = rng.choice(
            (
                "The facial landmarks could not be measured on this face, so no action units can be coded.",
                "Action units could not be measured here (the face mesh did not fit).",
            )
        )
        if obs.expression_prior:
            p = obs.expression_prior.get(emotion, 0.0)
            if not self.prior_numbers and max(obs.expression_prior, key=obs.expression_prior.get) != emotion:
                return (f"{base} Judging from the overall appearance alone, among the allowed answers the expression "
                        f"reads most as {emotion}.")  # fmt: skip
            number = f" ({p:.0%})" if self.prior_numbers else ""
            return f"{base} Judging from the overall appearance alone, the expression reads as {emotion}{number}."
        return f"{base} Without evidence, the face is taken as {emotion}."
