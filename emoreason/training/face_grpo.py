"""GRPO with face tokens: trl's GRPOTrainer, taught where the face tokens come from.

trl builds a VLM's inputs itself, at three places, from the prompt and its images:
1. the generation prompt (`_tokenize_prompts`), which `generate` reads;
2. the old/reference log-probs over prompt + completions (`processing_class(...)`);
3. the loss over the same tokens, later and in shuffled micro-batches (`_compute_loss`).
Face tokens are not pixels the processor knows: they are pooled face-encoder features
(`pixel_values_videos`) at K video pads (models/face_tokens.py). So:
- each generation batch's face features are computed once, from the aligned crop (the
  `image` column), and carried in the batch as `face_features` (one (4K, D) block per row),
  so trl's shuffle and split keep them with their rows;
- (1) uses emoreason's own prompt encoding (models/inputs.py, as SFT and inference) with those features;
- (2) goes through `FaceTokenProcessor`, which turns the video placeholder into K pads;
- every forward that computes log-probs gets the rows' features through a forward pre-hook
  (trl calls the model chunk by chunk, in order, so a cursor walks the rows).
The projector is trained with the LoRA and saved beside it, as in SFT (unless the recipe's
`face_tokens.train_projector` is false: then it is saved as the SFT adapter had it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from trl import GRPOTrainer

from ..models.face_tokens import face_token_inputs
from ..models.inputs import encode_texts


class FaceTokenProcessor:
    """The Qwen-VL processor, with the face-token placeholder turned into K video pads.

    Everything else (tokenizer, image processor, decoding, saving) is the wrapped processor's.
    """

    def __init__(self, processor: Any, layout: Any):
        self.processor = processor
        self.layout = layout

    def __getattr__(self, name: str) -> Any:
        return getattr(self.processor, name)

    def __call__(self, text: list[str], images: list[list[Any]] | None = None, **_: Any) -> Any:
        # trl asks for padded "pt" tensors here; encode_texts always gives those.
        flat = [image for group in images or [] for image in group or []]
        return encode_texts(self.processor, text, flat, self.layout)


class FaceTokenGRPOTrainer(GRPOTrainer):
    def __init__(self, *args: Any, projector: Any, features: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.use_vllm:
            raise ValueError("GRPO with face tokens generates with transformers: set trainer.use_vllm: false")
        self.projector = projector
        self.features = features
        self.processing_class = FaceTokenProcessor(self.processing_class, projector.config.layout)
        self._face_features: torch.Tensor | None = None  # (rows of the batch, 4K, D)

    # ---------------------------------------------------------------- the batch's faces
    @staticmethod
    def _crops(inputs: list[dict[str, Any]]) -> list[np.ndarray]:
        return [np.asarray(example["image"].convert("RGB")) for example in inputs]

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        rows = self.features(self._crops(inputs))
        self._face_features = rows.view(len(inputs), self.projector.config.layout.rows, -1)
        output = super()._generate_and_score_completions(inputs)
        output["face_features"] = self._face_features  # split and shuffled with the other per-row tensors
        return output

    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        self._face_features = inputs["face_features"]
        return super()._compute_loss(model, inputs)

    # ---------------------------------------------------------------- (1) generation
    def _tokenize_prompts(self, prompts: list) -> tuple[list[list[int]], list, dict[str, Any]]:
        images = [
            [part["image"] for message in prompt if isinstance(message["content"], list)
             for part in message["content"] if part["type"] == "image"]
            for prompt in prompts
        ]  # fmt: skip
        # The same encoding as inference (models/inputs.py); the face features are the ones this
        # generation batch already computed (`_generate_and_score_completions`), not a second encoder pass.
        processor, layout = self.processing_class.processor, self.projector.config.layout
        if self._face_features is None or self._face_features.shape[0] != len(prompts):
            raise RuntimeError("face features are out of step with the prompts")
        texts = [processor.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
        batch = encode_texts(processor, texts, [image for group in images for image in group], layout)
        batch.update(face_token_inputs(self._face_features.flatten(0, 1), layout))
        # trl wants each prompt unpadded (it pads again itself); per-token fields likewise.
        keep = batch.pop("attention_mask").bool()
        prompt_ids = [row[m].tolist() for row, m in zip(batch.pop("input_ids"), keep)]
        fields = dict(batch)
        if "mm_token_type_ids" in fields:
            fields["mm_token_type_ids"] = [row[m].tolist() for row, m in zip(fields["mm_token_type_ids"], keep)]
        return prompt_ids, images, fields

    # ---------------------------------------------------------------- (2), (3) log-probs
    def _get_per_token_logps_and_entropies(self, model: Any, input_ids: torch.Tensor, *args: Any, **kwargs: Any):
        faces = self._face_features
        if faces is None or faces.shape[0] != input_ids.shape[0]:
            raise RuntimeError("face features are out of step with the batch")
        layout = self.projector.config.layout
        cursor = 0

        def add_face_tokens(module: Any, call_args: tuple, call_kwargs: dict) -> tuple[tuple, dict]:
            nonlocal cursor
            n = call_kwargs["input_ids"].shape[0]
            device = call_kwargs["input_ids"].device
            chunk = faces[cursor : cursor + n].flatten(0, 1)
            cursor += n
            call_kwargs.update({k: v.to(device) for k, v in face_token_inputs(chunk, layout).items()})
            return call_args, call_kwargs

        handle = model.register_forward_pre_hook(add_face_tokens, with_kwargs=True)
        try:
            return super()._get_per_token_logps_and_entropies(model, input_ids, *args, **kwargs)
        finally:
            handle.remove()
