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
paid API: a user with only labels gets an SFT set. With `--base-url`, a model behind an
OpenAI-compatible endpoint (GPT-4o, a vLLM server with a bigger Qwen-VL) writes the text
instead, told the labels (prompts/synth.jinja), and the same check filters it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from ..endpoint import ChatEndpoint, EndpointError
from ..face.frontend import FaceFrontEnd, FrontEndConfig
from ..faithfulness import breaks, measured_present
from ..imageio import InputError, load_image
from ..parsing import parse_output
from ..prompting import PromptImages, build_messages, render_synth_hint, to_openai_messages
from ..reasoning.embedded import EmbeddedBackend
from ..rewards import consistency_score
from ..types import AUActivation, FaceObservation
from .records import TrainingRecord

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


def check_description(
    text: str,
    emotion: str,
    gold_aus: list[int],
    measured: list[int] | dict[int, float] | None = None,
    prior: dict[str, float] | None = None,
) -> tuple[str, str]:
    """('', '') when `text` agrees with the labels and with what the front-end measured (the AUs present, with
    their intensities where given as {code: intensity}, and the expression prior, where given), else (category,
    detail)."""
    parsed = parse_output(text)
    if not parsed.format_valid:
        return "bad format", "format is not <think>...</think><answer>...</answer>"
    if parsed.emotion != emotion or not parsed.label_valid:
        return "wrong answer", f"answer {parsed.emotion!r} is not the label {emotion!r}"
    if gold_aus and parsed.aus != sorted(gold_aus):
        return "AUs differ from the labels", f"cites AUs {parsed.aus}, labels say {sorted(gold_aus)}"
    if not gold_aus and consistency_score(text) < 1.0:
        return "detected AUs do not support the label", f"the detected AUs {parsed.aus} do not support {emotion}"
    unfaithful = breaks(text, measured, prior) if measured is not None else []
    if unfaithful:
        return "unfaithful to the front-end", "; ".join(unfaithful)
    return "", ""


class Synthesizer:
    """Explains labelled records with the embedded engine, or with a model behind an endpoint.

    `writer=None` uses the embedded engine (FACS rules, no model). A `ChatEndpoint` asks an
    OpenAI-compatible server instead: the inference prompt plus the labels
    (prompts/synth.jinja), `concurrency` requests in flight. Either way every text goes
    through the same check, so a model that ignores the labels only costs rejections.
    """

    def __init__(
        self,
        face_mode: str = "full",
        frontend: FaceFrontEnd | None = None,
        writer: ChatEndpoint | None = None,
        prior_numbers: bool = True,
    ):
        self.frontend = frontend or FaceFrontEnd(FrontEndConfig(face_mode=face_mode))
        # prior_numbers=False: the engine's texts name the whole-face impression without its probability
        self.engine = EmbeddedBackend(prior_numbers=prior_numbers)
        self.writer = writer

    def observe(self, record: TrainingRecord) -> FaceObservation | SynthResult:
        """The face the description is about (gold AUs applied), or the rejection."""
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
        return with_gold_aus(obs, record.aus) if record.aus else obs

    def write(self, record: TrainingRecord, obs: FaceObservation) -> SynthResult:
        """Write the description for one observed face and check it against the labels."""
        if self.writer is None:
            think = self.engine.write_reasoning(obs, record.emotion, seed_extra=record.id)
            text = f"<think>{think}</think>\n<answer>{record.emotion}</answer>"
        else:
            try:
                text = self.writer.text(synth_messages(record, obs))
            except EndpointError as exc:
                return SynthResult(record, False, str(exc), "endpoint error")
        category, detail = check_description(
            text, record.emotion, record.aus, measured_present(obs), obs.expression_prior
        )
        if category:
            return SynthResult(record, False, detail, category)
        return SynthResult(replace(record, description=text.strip()), True)

    def explain(self, record: TrainingRecord) -> SynthResult:
        observed = self.observe(record)
        return observed if isinstance(observed, SynthResult) else self.write(record, observed)

    def run(self, records: Iterable[TrainingRecord], overwrite: bool = False) -> Iterator[SynthResult]:
        """Explain the records that have no description (all of them with `overwrite`), in order."""
        if self.writer is None:
            for record in records:
                yield self._keep(record) if record.description and not overwrite else self.explain(record)
            return
        # Endpoint: the front-end runs here one image at a time; the requests overlap in chunks.
        chunk = max(1, self.writer.concurrency) * 4
        todo = list(records)
        with ThreadPoolExecutor(max_workers=max(1, self.writer.concurrency)) as pool:
            for start in range(0, len(todo), chunk):
                jobs = []
                for record in todo[start : start + chunk]:
                    if record.description and not overwrite:
                        jobs.append(self._keep(record))
                        continue
                    observed = self.observe(record)
                    if isinstance(observed, SynthResult):
                        jobs.append(observed)
                    else:
                        jobs.append(pool.submit(self.write, record, observed))
                for job in jobs:
                    yield job if isinstance(job, SynthResult) else job.result()

    @staticmethod
    def _keep(record: TrainingRecord) -> SynthResult:
        return SynthResult(record, True, "kept existing description")

    def close(self) -> None:
        self.frontend.close()


def synth_conversation(record: TrainingRecord, obs: FaceObservation) -> tuple[list[dict], PromptImages]:
    """The inference conversation for the face, with the labels the analysis must reach appended."""
    messages, images = build_messages(obs)
    text_part = messages[-1]["content"][-1]
    text_part["text"] += "\n" + render_synth_hint(record.emotion, record.aus)
    return messages, images


def synth_messages(record: TrainingRecord, obs: FaceObservation) -> list[dict]:
    """`synth_conversation` in the OpenAI message form (images as data URLs), as sent to the endpoint."""
    return to_openai_messages(*synth_conversation(record, obs))
