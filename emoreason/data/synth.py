"""`emoreason data synth`: write the missing `description` of labelled images, agreeing with the labels.

The embedded engine (front-end AU detector + FACS rules) writes the analysis with the gold
emotion as its answer. When the record has gold AUs, they replace the detector's verdicts
(present exactly when gold; the detector's intensity where it saw the AU, else a moderate
2.5), so the text cites the gold AUs. Every written analysis is then checked with the same
parser the rewards use, and kept only if
- the format is valid and the answer is the gold emotion,
- the cited AUs equal the gold AUs (records with gold AUs), or, without gold AUs, the AUs it
  cites support the gold emotion by the FACS prototype table (consistency reward = 1).
Rejected records are reported with the reason. This is ExpLLM's "CoT engine" idea without a
paid API: a user with only labels gets an SFT set.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from ..face.frontend import FaceFrontEnd, FrontEndConfig
from ..imageio import InputError, load_image
from ..parsing import parse_output
from ..reasoning.embedded import EmbeddedBackend
from ..rewards import consistency_score
from ..types import AUActivation, FaceObservation
from .records import RecordError, TrainingRecord

GOLD_INTENSITY = 2.5  # a gold AU the detector did not measure is written as moderate (FACS "C")


@dataclass
class SynthResult:
    record: TrainingRecord  # with `description` filled when accepted
    accepted: bool
    reason: str = ""  # the detail ("cites AUs [4], labels say [4, 7]")
    category: str = ""  # the kind of rejection, for counts


def with_gold_aus(obs: FaceObservation, gold: list[int]) -> FaceObservation:
    """The observation with AU presence set by the gold labels."""
    measured = {a.code: a for a in obs.aus}
    aus = []
    for code in sorted(set(measured) | set(gold)):
        a = measured.get(code)
        if code in gold:
            intensity = a.intensity if a is not None and a.intensity >= 1.0 else GOLD_INTENSITY
            aus.append(AUActivation(code, intensity, True, 1.0))
        else:
            aus.append(AUActivation(code, min(a.intensity, 0.9) if a else 0.0, False, 0.0))
    return replace(obs, aus=aus)


def check_description(text: str, emotion: str, gold_aus: list[int]) -> tuple[str, str]:
    """('', '') when `text` agrees with the labels, else (category, detail)."""
    parsed = parse_output(text)
    if not parsed.format_valid:
        return "bad format", "format is not <think>...</think><answer>...</answer>"
    if parsed.emotion != emotion or not parsed.label_valid:
        return "wrong answer", f"answer {parsed.emotion!r} is not the label {emotion!r}"
    if gold_aus and parsed.aus != sorted(gold_aus):
        return "AUs differ from the labels", f"cites AUs {parsed.aus}, labels say {sorted(gold_aus)}"
    if not gold_aus and consistency_score(text) < 1.0:
        return "detected AUs do not support the label", f"the detected AUs {parsed.aus} do not support {emotion}"
    return "", ""


class Synthesizer:
    def __init__(self, face_mode: str = "full", frontend: FaceFrontEnd | None = None):
        self.frontend = frontend or FaceFrontEnd(FrontEndConfig(face_mode=face_mode))
        self.engine = EmbeddedBackend()

    def explain(self, record: TrainingRecord) -> SynthResult:
        if record.emotion is None:
            return SynthResult(record, False, "no emotion label", "no emotion label")
        try:
            rgb = load_image(record.image_path)
        except InputError as exc:
            return SynthResult(record, False, str(exc), "unreadable image")
        observations = self.frontend.observe(rgb)
        if not observations:
            return SynthResult(record, False, "no face found", "no face found")
        obs = observations[0]
        if record.aus:
            obs = with_gold_aus(obs, record.aus)
        think = self.engine.write_reasoning(obs, record.emotion, seed_extra=record.id)
        text = f"<think>{think}</think>\n<answer>{record.emotion}</answer>"
        category, detail = check_description(text, record.emotion, record.aus)
        if category:
            return SynthResult(record, False, detail, category)
        return SynthResult(replace(record, description=text), True)

    def run(self, records: Iterable[TrainingRecord], overwrite: bool = False) -> Iterator[SynthResult]:
        """Explain the records that have no description (all of them with `overwrite`)."""
        for record in records:
            if record.description and not overwrite:
                yield SynthResult(record, True, "kept existing description")
            else:
                yield self.explain(record)

    def close(self) -> None:
        self.frontend.close()


def rejection_errors(results: Iterable[SynthResult]) -> list[RecordError]:
    return [RecordError(str(r.record.image_path), r.reason) for r in results if not r.accepted]
