"""The `transformers` backend: a Qwen-VL model (+ LoRA, + face tokens) generating in-process.

Faces from several images are batched together (`batch_size` conversations per `generate`
call, left-padded). Greedy decoding by default; `do_sample` with temperature/top-p for
sampling. While generating, a logits processor keeps the top-k log-probabilities of every
step, so the answer's confidence is read from the same distribution the tokens came from.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..defaults import MAX_NEW_TOKENS
from ..types import FaceAnalysis, FaceObservation
from .confidence import label_distribution
from .vlm import (
    RESAMPLE_TEMPERATURE,
    FaceRequest,
    Generation,
    VLMBackend,
    face_requests,
    group_by_item,
    label_set,
    to_face_analysis,
)

TOP_K = 20  # log-probs kept per step (what OpenAI's API offers at most, so both backends see the same)


class TransformersBackend(VLMBackend):
    name = "transformers"

    def __init__(
        self,
        model: str | None = None,
        adapter: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        quantization: str | None = None,
        batch_size: int = 8,
        max_new_tokens: int = MAX_NEW_TOKENS,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
        include_scene: bool = False,
        face_tokens: bool | None = None,
        face_projector: Any = None,
        loaded: Any = None,
        resample_contradicted: int = 0,
    ):
        """`model` is a hub id or checkpoint folder (None: the shipped emoreason-mini and its GRPO adapter);
        `adapter` a folder saved by `emoreason train`; `resample_contradicted`: sampled retries of a face whose
        text contradicts the front-end (VLMBackend.resample).

        Face tokens are on when the adapter carries a face projector (`face_tokens=None`), or
        when a `face_projector` is passed; `face_tokens=False` turns them off.
        """
        from ..models.face_tokens import FaceFeatureExtractor, attach_face_tokens
        from ..models.loading import MINI_ADAPTER, MINI_MODEL, MINI_NAME, default_model, load_model

        if loaded is None:
            model, adapter = default_model(model, adapter)  # no model named: the shipped emoreason-mini
        self.loaded = loaded or load_model(
            model, adapter=adapter, dtype=dtype, device=device, quantization=quantization
        )
        self.model = self.loaded.name if not adapter else f"{self.loaded.name}+{adapter}"
        if (self.loaded.name, adapter) == (str(MINI_MODEL), str(MINI_ADAPTER)):
            self.model = MINI_NAME
        self.batch_size = max(1, int(batch_size))
        self.resample_contradicted = max(0, int(resample_contradicted))
        self.generate_options = dict(max_new_tokens=int(max_new_tokens), do_sample=bool(do_sample))
        if do_sample:
            self.generate_options.update(temperature=float(temperature), top_p=float(top_p))
        self.seed = seed
        self.include_scene = include_scene
        projector = face_projector if face_projector is not None else self.loaded.face_projector
        if face_tokens and projector is None:
            raise ValueError("face tokens need a trained projector: pass an --adapter saved with face tokens on")
        self.projector = projector if face_tokens is not False else None
        self.features = None
        if self.projector is not None:
            attach_face_tokens(self.loaded.model, self.projector.to(self.loaded.device))
            c = self.projector.config
            self.features = FaceFeatureExtractor(
                c.layout, c.encoder, c.encoder_pretrained, device=str(self.loaded.device)
            )

    # ------------------------------------------------------------------ API
    def analyze_batch(
        self,
        items: Sequence[tuple[Sequence[FaceObservation], np.ndarray | None]],
        labels: Sequence[str] | None = None,
    ) -> list[list[FaceAnalysis]]:
        """Faces of all `items` (observations, image) generated together, `batch_size` at a time."""
        requests = face_requests(items, labels, self.include_scene, face_tokens=self.projector is not None)
        results: list[FaceAnalysis] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            results += [to_face_analysis(r, g) for r, g in zip(chunk, self.generate(chunk))]
        return group_by_item(requests, self.resample(requests, results), len(items))

    def generate_again(self, requests: Sequence[FaceRequest], attempt: int) -> list[Generation]:
        out: list[Generation] = []
        for start in range(0, len(requests), self.batch_size):
            out += self.generate(requests[start : start + self.batch_size], attempt)
        return out

    # ------------------------------------------------------------ generation
    def encode(self, requests: Sequence[FaceRequest]) -> Any:
        """Tokenised, padded model inputs for a list of conversations (face tokens included when on)."""
        from ..models.inputs import encode_prompts

        batch = encode_prompts(
            self.loaded.processor,
            [r.messages for r in requests],
            [r.images.images for r in requests],
            face_crops=[r.observation.aligned_crop for r in requests],
            projector=self.projector,
            features=self.features,
        )
        return batch.to(self.loaded.device)

    def generate(self, requests: Sequence[FaceRequest], attempt: int = 0) -> list[Generation]:
        """The decoding the backend was built with; `attempt` > 0: a retry, sampled (VLMBackend.resample)."""
        import torch
        from transformers import LogitsProcessorList

        t0 = time.perf_counter()
        batch = self.encode(requests)
        recorder = _TopLogprobs(TOP_K)
        options = self.generate_options
        if attempt:
            options = {**options, "do_sample": True, "temperature": RESAMPLE_TEMPERATURE, "top_p": 1.0}
        if self.seed is not None:
            torch.manual_seed(self.seed + attempt)
        with torch.inference_mode():
            sequences = self.loaded.model.generate(
                **batch, **options, logits_processor=LogitsProcessorList([recorder])
            )
        elapsed = round((time.perf_counter() - t0) * 1000 / len(requests), 2)
        new_tokens = sequences[:, batch["input_ids"].shape[1] :].cpu()
        tokenizer = self.loaded.tokenizer
        stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id}
        out = []
        for row, request in enumerate(requests):
            ids = new_tokens[row].tolist()
            ids = ids[: next((i for i, t in enumerate(ids) if t in stop_ids), len(ids))]
            pieces = [tokenizer.decode([t]) for t in ids]
            steps = _LazySteps(recorder, row, tokenizer)
            probs = label_distribution(pieces, steps, "".join(pieces), label_set(request.labels))
            text = tokenizer.decode(ids, skip_special_tokens=True)
            out.append(Generation(text=text, label_probs=probs, timings={"generate": elapsed}))
        return out


class _TopLogprobs:
    """A logits processor that keeps each step's top-k log-probabilities (and changes nothing)."""

    def __init__(self, k: int):
        self.k = k
        self.steps: list[tuple[Any, Any]] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        values, ids = scores.float().log_softmax(-1).topk(self.k, dim=-1)
        self.steps.append((values.cpu(), ids.cpu()))
        return scores


class _LazySteps:
    """`top_logprobs[step]` for one batch row, decoding token ids only for the steps asked for."""

    def __init__(self, recorder: _TopLogprobs, row: int, tokenizer: Any):
        self.recorder, self.row, self.tokenizer = recorder, row, tokenizer

    def __len__(self) -> int:
        return len(self.recorder.steps)

    def __getitem__(self, step: int) -> dict[str, float]:
        values, ids = self.recorder.steps[step]
        out: dict[str, float] = {}
        for v, i in zip(values[self.row].tolist(), ids[self.row].tolist()):
            piece = self.tokenizer.decode([i])
            out[piece] = max(out.get(piece, -1e9), v)  # two ids may decode alike: keep the likelier
        return out
