"""Is an analysis faithful to what the front-end measured? One check for every backend.

The invariants (issue: faithful analyses), read from the text by the shared parser:
1. an AU the text cites as present was measured present, and an AU it denies was not;
2. a whole-face "at rest" / "no visible action" claim only when no AU was measured present;
3. a probability the text gives an emotion ("62% sadness", "sadness (62%)": the expression
   model's reading) is the one the expression model gave it, to the prompt's rounding; and where the
   text names the whole-face impression's emotion in words only ("the whole-face impression of
   sadness", "the overall appearance reads as sadness"), it is the expression model's most likely one.
4. an intensity the text gives a measured AU agrees with the detector's: a word ("the lips part
   slightly (AU25)") within one FACS letter of the measured one, a number ("AU12 at 3.1") within
   0.1 of it. Checked where the intensities are given (a mapping AU -> intensity for `present`).
The embedded engine is built to keep them (property-tested), `data synth` rejects texts that
break them, eval reports the share of analyses that break them (`faithfulness`), for a VLM as
for the engine, and the reward registry has the same check as an optional reward.

>>> breaks("<think>The lip corners rise (AU12); no AU4.</think><answer>happiness</answer>", present=[12])
[]
>>> breaks("<think>The face is at rest (no AU12).</think><answer>neutral</answer>", present=[12])
['denies measured AU12', 'calls an active face at rest']
>>> breaks("<think>The classifier reads anger (70%).</think><answer>anger</answer>", [], prior={"anger": 0.4})
['misstates the expression prior: anger 70%, measured 40%']
>>> breaks("<think>The whole-face impression of anger outweighs them.</think><answer>anger</answer>", [],
...        prior={"anger": 0.3, "sadness": 0.6})
['misstates the expression prior: the impression favours anger, measured sadness 60%']
>>> breaks("<think>The lips part intensely (AU25).</think><answer>surprise</answer>", present={25: 1.4})
["misstates AU25's intensity: 'intensely' (E), measured 1.4 (B)"]
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from .facs import supported_emotions
from .labels import normalize_label
from .parsing import ParsedOutput, parse_output

# Whole-face claims of no movement. Region-level ones ("the lids are relaxed") are fine.
AT_REST = re.compile(
    r"\b(?:at\s+rest|no\s+(?:facial\s+)?(?:muscle\s+)?action(?:\s+unit)?s?\s+(?:is\s+|are\s+)?(?:clearly\s+)?visible|"
    r"no\s+visible\s+(?:muscle\s+)?(?:action|movement)|no\s+action\s+unit\s+(?:reaches|above|is\s+active)|"
    r"no\s+meaningful\s+AU\s+activity|face\s+is\s+(?:still|motionless|expressionless)|expressionless)\b",
    re.IGNORECASE,
)


# The plain statement that the whole-face impression decided against the AUs ("... the whole-face
# impression (62% sadness) outweighs the AU evidence"), or alone where no AU could be measured
# ("Judging from the overall appearance alone, the expression reads as anger (62%)").
_OUTWEIGHS = re.compile(
    r"[^.;]*\b(?:outweighs?|overrides?|overrules?|(?:appearance|impression)\s+alone)\b[^.;]*", re.IGNORECASE
)


_IMPRESSION = re.compile(r"\b(?:impression|appearance)\b", re.IGNORECASE)


def states_impression_outweighs(reasoning: str, emotion: str) -> bool:
    """Does the text say plainly that the whole-face impression (by its probability, or named as the
    impression or appearance) outweighs the AU evidence for `emotion`? (The second way an answer may be
    supported, besides the cited AUs; whether what it says of the impression is true is invariant 3.)

    >>> states_impression_outweighs("The AUs suggest fear; the whole-face impression (70% sadness) outweighs them.",
    ...                             "sadness")
    True
    >>> states_impression_outweighs("The AUs suggest fear; the impression of sadness outweighs them.", "sadness")
    True
    >>> states_impression_outweighs("The AUs suggest fear, but sadness outweighs them.", "sadness")
    False
    """
    for m in _OUTWEIGHS.finditer(reasoning or ""):
        sentence = m.group()
        if ("%" in sentence or _IMPRESSION.search(sentence)) and emotion in {
            normalize_label(w) for w in re.findall(r"[A-Za-z]+", sentence)
        }:
            return True
    return False


# The whole-face impression's emotion named in words, with no probability: "the whole-face impression of anger",
# "the whole-face impression favours anger", "the overall appearance ... reads as anger", "agrees (anger)". Only in
# a sentence about the expression model's reading by the names the engine and the prompt give it (a person's "an
# overall impression of anger" is their own reading, not a claim about the model's); a sentence that restricts
# the comparison ("among the allowed answers") is not held to the model's overall top.
_MODEL_READING = re.compile(
    r"\b(?:whole[- ]face\s+impression|overall\s+appearance|expression\s+(?:model|classifier))\b", re.IGNORECASE
)
_NAMES_IMPRESSION = re.compile(
    r"\b(?:impression\s+of|favou?rs|favou?ring|reads\s+as|agrees?\s*\()\s*([A-Za-z]+)", re.IGNORECASE
)


def impression_statements(reasoning: str) -> list[str]:
    """The emotions the text says, in words only, that the whole-face impression favours.

    >>> impression_statements("The overall appearance of the face, which reads as fear, outweighs them. 62% anger.")
    ['fear']
    >>> impression_statements("The whole-face impression (62% anger) outweighs them; reads as anger (62%).")
    []
    >>> impression_statements("AU4 and AU24 give an overall impression of anger.")  # the writer's own reading
    []
    """
    out = []
    for sentence in re.split(r"[.;]\s", reasoning or ""):
        if not _MODEL_READING.search(sentence) or "allowed answers" in sentence or stated_probabilities(sentence):
            continue
        out += [e for e in (normalize_label(m.group(1)) for m in _NAMES_IMPRESSION.finditer(sentence)) if e]
    return out


# A probability stated for an emotion. The engine writes "62% sadness", "62% for sadness" and "sadness (62%)";
# other models and people also write "sadness: 62%", "sadness at 62%", "62 % probability of sadness",
# "P(sadness) = 0.62" or "sadness with probability 0.62". Invariant 3 holds each to the expression model's output.
# Each number is read once, by the first pattern that claims it, most specific first: in "62% sadness, 20% fear"
# the 20 is fear's (number first), not sadness's; in "sadness (62%) fear" the parentheses tie 62 to sadness.
_NUM = r"(\d{1,3}(?:\.\d+)?)\s?(?:%|percent\b)"  # a percentage ("62%", "62 %", "62.4%", "62 percent")
_DEC = r"(0?\.\d+|1\.0+)(?![\d%]|\.\d)"  # a probability as a fraction, "0.62" (a point: "happiness: 1" is a rank)
_PROB = r"(?:probability|likelihood|confidence|chance|score)"
_IS = r"\s+(?:is|=|:|of|at)\s+"
_PATTERNS = [  # (pattern, group of the emotion word, group of the number, scale to percent), most specific first
    (r"\b([A-Za-z]+)\s*\(\s*" + _NUM + r"\s*\)", 1, 2, 1.0),  # sadness (62%)
    (r"\bP\s*\(\s*([A-Za-z]+)\s*\)\s*(?:=|:|is)\s*" + _DEC, 1, 2, 100.0),  # P(sadness) = 0.62
    (
        r"\b([A-Za-z]+)\s+with\s+(?:a\s+)?" + _PROB + r"\s+(?:of\s+)?" + _DEC,
        1,
        2,
        100.0,
    ),  # sadness with probability 0.62
    (r"\b" + _PROB + r"\s+(?:of|for)\s+([A-Za-z]+)" + _IS + _DEC, 1, 2, 100.0),  # the probability of sadness is 0.62
    (r"\b" + _PROB + r"\s+(?:of|for)\s+([A-Za-z]+)" + _IS + _NUM, 1, 2, 1.0),  # the probability of sadness is 62%
    (_NUM + r"\s+(?:" + _PROB + r"\s+)?(?:(?:of|for|on)\s+)?([A-Za-z]+)", 2, 1, 1.0),  # 62% (probability of) sadness
    (r"\b([A-Za-z]+)(?:\s*[:=]|\s+(?:at|of|is))?\s+" + _NUM, 1, 2, 1.0),  # sadness: 62%, sadness at 62%
    (r"\b([A-Za-z]+)\s*[:=]\s*" + _DEC, 1, 2, 100.0),  # sadness: 0.62
]
_COMPILED = [(re.compile(p, re.IGNORECASE), word, number, scale) for p, word, number, scale in _PATTERNS]
PRIOR_TOLERANCE = 1.5  # percentage points: the prompt and the text both give the prior to 1%


def stated_probabilities(reasoning: str) -> list[tuple[str, int]]:
    """(emotion, percent) for each probability the text gives an emotion, in the order they appear.

    >>> stated_probabilities("The impression (62% sadness) outweighs it; fear (20%) and 5% against.")
    [('sadness', 62), ('fear', 20)]
    >>> stated_probabilities("Scores: happiness: 81 %, surprise at 10%; P(fear) = 0.05.")
    [('happiness', 81), ('surprise', 10), ('fear', 5)]
    """
    text = reasoning or ""
    claimed: dict[int, tuple[str, int]] = {}  # the number's position -> (emotion, percent)
    for pattern, word_group, number_group, scale in _COMPILED:
        for m in pattern.finditer(text):
            at = m.start(number_group)
            emotion = normalize_label(m.group(word_group))
            if at in claimed or not emotion:
                continue
            claimed[at] = (emotion, round(float(m.group(number_group)) * scale))
    return [claimed[at] for at in sorted(claimed)]


# Invariant 4: the intensity a text gives a measured AU. FACS scores intensity in five letters, A (trace) to E
# (maximum), one per unit of the detector's 0-5 scale ((0, 1] is A, (4, 5] is E). The words are the engine's
# (embedded._ADVERBS and _ADJECTIVES) and the usual synonyms; a word one letter off is wording, given how coarse a
# geometric intensity is, two letters off says something the detector did not measure ("slightly" at 3.9).
LETTERS = "ABCDE"
INTENSITY_WORDS = {
    0: ("barely", "faint", "faintly", "trace", "subtle", "subtly", "minimal", "minimally"),
    1: ("slight", "slightly", "mild", "mildly", "weak", "weakly", "light", "lightly"),
    2: ("clear", "clearly", "moderate", "moderately", "marked", "markedly"),
    3: ("strong", "strongly", "pronounced", "severe", "severely"),
    4: ("intense", "intensely", "extreme", "extremely", "maximal", "maximally", "maximum"),
}
_WORD_LETTER = {w: k for k, words in INTENSITY_WORDS.items() for w in words}
_INTENSITY_WORD = re.compile(r"\b(" + "|".join(sorted(_WORD_LETTER, key=len, reverse=True)) + r")\b", re.IGNORECASE)
_CITED = re.compile(r"\(\s*AU\s?(\d+)\s*\)")  # "the lips part slightly (AU25)": the engine's way to cite
_CLAUSE_END = re.compile(r"[.;:!?]")
# A number given as an AU's intensity: "AU12 at 3.1", "AU12 (3.1)", "AU12: 3.1", "AU12 lip corner puller: 3.1" (the
# prompt's line), "AU12 (lip corner puller, intensity 3.1)", "AU12 (lip corner puller): 3.1". Always with a decimal
# point, as the prompt writes it, so that another AU's code ("AU6 and AU12") is never read as a number.
_STATED_INTENSITY = re.compile(
    r"\bAU\s?(\d+)\b(?:\s*\(\s*[a-z][a-z ]*(?:,|\))?|\s+[a-z][a-z ]{0,30}?)?\s*(?:[:=,]|\bat\b)?\s*"
    r"(?:\(?\s*intensity\s*(?:of\s*|[:=]\s*)?)?\(?\s*(\d\.\d+)\b(?!\s*%)",
    re.IGNORECASE,
)
INTENSITY_TOLERANCE = 0.1  # the prompt gives each intensity to 0.1


def intensity_letter(intensity: float) -> int:
    """The FACS letter's index (0 = A ... 4 = E) of a 0-5 intensity: the engine's words are chosen by it."""
    return int(min(4, max(0, math.ceil(intensity) - 1)))


def intensity_statements(reasoning: str) -> list[tuple[int, str, float | None]]:
    """(AU, what the text says, the number if it gave one) for each intensity the text gives an AU: the intensity
    word of the clause that ends in the AU's citation, and each number it states for an AU.

    >>> intensity_statements("The lips part slightly, opening the mouth (AU25) and the brows knit (AU4); AU12 at 3.1.")
    [(25, 'slightly', None), (12, '3.1', 3.1)]
    """
    text = reasoning or ""
    out: list[tuple[int, str, float | None]] = []
    start = 0
    for m in _CITED.finditer(text):
        clause = text[start : m.start()]
        ends = list(_CLAUSE_END.finditer(clause))
        clause = clause[ends[-1].end() :] if ends else clause
        words = _INTENSITY_WORD.findall(clause)
        if words:  # the word nearest the citation
            out.append((int(m.group(1)), words[-1].lower(), None))
        start = m.end()
    out += [(int(m.group(1)), m.group(2), float(m.group(2))) for m in _STATED_INTENSITY.finditer(text)]
    return out


def intensity_breaks(reasoning: str, intensities: Mapping[int, float]) -> tuple[list[str], int]:
    """Invariant 4 alone: (the intensity claims that contradict the measurement, how many intensity claims the
    text makes on measured AUs)."""
    found, claims = [], 0
    for code, said, number in intensity_statements(reasoning):
        if code not in intensities:
            continue  # an unmeasured AU is invariant 1's
        claims += 1
        measured = intensities[code]
        letter = intensity_letter(measured)
        if number is not None and abs(number - measured) > INTENSITY_TOLERANCE + 1e-9:
            found.append(f"misstates AU{code}'s intensity: {said}, measured {measured:.1f}")
        elif number is None and abs(_WORD_LETTER[said] - letter) > 1:
            found.append(
                f"misstates AU{code}'s intensity: '{said}' ({LETTERS[_WORD_LETTER[said]]}), "
                f"measured {measured:.1f} ({LETTERS[letter]})"
            )
    return found, claims


def measured_present(face) -> dict[int, float] | None:
    """What a text about `face` (a FaceObservation or a FaceAnalysis) is checked against: {code: intensity} of the
    AUs measured present, None where no AUs were measured (the mesh did not fit) and there is nothing to check."""
    return {a.code: a.intensity for a in face.present_aus()} if face.aus else None


def contradictions(face, text: str) -> list[str]:
    """What `text` says about `face` (a FaceObservation or a FaceAnalysis) that contradicts what the front-end
    measured of it (the invariants it breaks; none checked where no AUs were measured) or its own evidence (an
    answer that does not follow from what it names, `answer_follows`): one line each, empty when none.
    Every backend's results carry it (`FaceAnalysis.contradictions`), so a user sees where a text is wrong.

    >>> from emoreason.types import AUActivation, FaceObservation
    >>> face = FaceObservation(0, (0, 0, 48, 48), 1.0, "full", aus=[AUActivation(12, 2.4, True, 0.9)])
    >>> contradictions(face, "<think>The lip corners rise (AU12) and the brows lower (AU4).</think>")
    ['cites unmeasured AU4']
    >>> contradictions(face, "<think>The lip corners rise (AU12).</think><answer>anger</answer>")
    ['answers anger on evidence that does not support it']
    """
    if not text:
        return []
    present = measured_present(face)
    parsed = parse_output(text)  # once, for both halves
    found = [] if present is None else _audit(text, present, face.expression_prior, parsed)[0]
    if parsed.emotion is not None and not answer_follows(parsed):  # the text against its own evidence
        found.append(f"answers {parsed.emotion} on evidence that does not support it")
    return found


def answer_follows(parsed: ParsedOutput) -> bool:
    """Does the answer follow from the evidence the reasoning names? (The other half of a faithful
    explanation: the invariants above hold the text to the measurements, this holds the answer to the text.)

    Two ways: the AUs cited support it under the FACS prototype table the embedded engine reasons with
    (`facs.supported_emotions`: at least half of the emotion's core AUs cited; a neutral answer when no
    emotion-defining AU is cited), or the reasoning says plainly that the whole-face impression outweighs
    the AU evidence for this answer (`states_impression_outweighs`). The consistency reward and metric
    (`rewards.consistency_score`) are this check.

    >>> answer_follows(parse_output("<think>(AU6) and (AU12)</think><answer>happiness</answer>"))
    True
    >>> answer_follows(parse_output("<think>(AU6) and (AU12)</think><answer>anger</answer>"))
    False
    """
    if parsed.emotion is None:
        return False
    return parsed.emotion in supported_emotions(parsed.aus) or states_impression_outweighs(
        parsed.think or "", parsed.emotion
    )


def breaks(
    text: str, present: Iterable[int] | Mapping[int, float], prior: dict[str, float] | None = None
) -> list[str]:
    """The invariants `text` breaks given the AUs measured present (their codes, or a mapping code -> intensity,
    which adds invariant 4) and, where given, the expression model's probabilities (empty list: faithful)."""
    return _audit(text, present, prior)[0]


def faithful_share(
    text: str, present: Iterable[int] | Mapping[int, float] | None, prior: dict[str, float] | None = None
) -> float | None:
    """The share of the text's checkable claims that hold: each AU cited or denied, a face-at-rest claim, each
    probability stated and each intensity given (1.0 for a text that claims nothing); None when no AUs were measured.

    Graded where `faithfulness_score` is all or nothing: dropping one false claim raises it, dropping a true one
    lowers it, so a policy whose every text breaks some invariant still has a direction to improve in.

    >>> text = "<think>(AU6) (AU12) (AU26); anger (70%).</think><answer>anger</answer>"
    >>> faithful_share(text, [6, 12], {"anger": 0.7})  # 4 claims, AU26 was not measured
    0.75
    """
    if present is None:
        return None
    found, claims = _audit(text, present, prior)
    return 1.0 - len(found) / claims if claims else 1.0


def _audit(
    text: str,
    present: Iterable[int] | Mapping[int, float],
    prior: dict[str, float] | None,
    parsed: ParsedOutput | None = None,
) -> tuple[list[str], int]:
    """(the invariants broken, how many checkable claims the text makes): one parse for both (`parsed`, where the
    caller has it already). Every break is one claim that does not hold, so there are never more breaks than claims."""
    # a mapping code -> intensity adds invariant 4; codes alone check invariants 1-3
    intensities = {int(c): float(x) for c, x in present.items()} if isinstance(present, Mapping) else {}
    measured = set(intensities) or set(present)
    parsed = parsed or parse_output(text)
    reasoning = parsed.think if parsed.think is not None else text
    at_rest = bool(AT_REST.search(reasoning))
    statements = prior_statements(reasoning, prior) if prior else []
    named = impression_statements(reasoning) if prior else []
    found = [f"cites unmeasured AU{c}" for c in parsed.aus if c not in measured]
    found += [f"denies measured AU{c}" for c in parsed.negated_aus if c in measured]
    if measured and at_rest:
        found.append("calls an active face at rest")
    found += [f"misstates the expression prior: {e} {pct}%, measured {p:.0f}%"
              for e, pct, p in statements if abs(pct - p) > PRIOR_TOLERANCE]  # fmt: skip
    if named:
        top = max(prior, key=prior.get)  # to the prompt's rounding, a near tie may be named either way
        found += [f"misstates the expression prior: the impression favours {e}, measured {top} {100 * prior[top]:.0f}%"
                  for e in named if 100 * (prior[top] - prior.get(e, 0.0)) > PRIOR_TOLERANCE]  # fmt: skip
    misstated, intensity_claims = intensity_breaks(reasoning, intensities)
    found += misstated
    claims = len(parsed.aus) + len(parsed.negated_aus) + at_rest + len(statements) + len(named) + intensity_claims
    return found, claims


def prior_statements(reasoning: str, prior: dict[str, float]) -> list[tuple[str, int, float]]:
    """(emotion, percent stated, percent the expression model gave) for each probability the text states
    (invariant 3 holds where the two are within PRIOR_TOLERANCE).

    >>> prior_statements("The impression (72% anger) outweighs them.", {"anger": 0.75})
    [('anger', 72, 75.0)]
    """
    return [(emotion, pct, 100 * prior.get(emotion, 0.0)) for emotion, pct in stated_probabilities(reasoning)]


def faithfulness_score(
    text: str, present: Iterable[int] | Mapping[int, float] | None, prior: dict[str, float] | None = None
) -> float | None:
    """1.0 when the text breaks no invariant, 0.0 when it does; None when no AUs were measured."""
    if present is None:
        return None
    return 0.0 if breaks(text, present, prior) else 1.0
