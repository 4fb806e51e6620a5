"""The `vllm` backend: a vLLM OpenAI server (`emoreason vllm-serve`), sent the transformers backend's prompts.

It is the openai backend plus what vLLM adds: LoRA adapters are served as models of their
own (`--model ADAPTER_NAME`), and face tokens travel as precomputed embeddings. With
`face_projector` (the adapter folder saved by `emoreason train` with face tokens on), the
face encoder and projector run here, and each face's K tokens are sent as a
`video_embeds` content part at the conversation's video placeholder, the same place and
grid the transformers backend injects them (models/face_tokens.py). Every embedding is
validated (shape, finiteness) before it is sent: a malformed one would kill the vLLM
engine. The server needs `--enable-mm-embeds` (vllm-serve passes it with --face-tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..defaults import LOCAL_VLLM_URL
from .openai_backend import OpenAIBackend
from .vlm import FaceRequest, face_requests

DEFAULT_URL = LOCAL_VLLM_URL  # a local `emoreason vllm-serve`


class VLLMBackend(OpenAIBackend):
    name = "vllm"

    def __init__(self, base_url: str | None = None, model: str | None = None, face_projector: str | None = None,
                 **options: Any):  # fmt: skip
        if not model:  # the shipped emoreason-mini, as `emoreason vllm-serve` with no --model serves it
            from ..models.loading import DEFAULT_MODEL, MINI_ADAPTER, MINI_MODEL, MINI_NAME

            if DEFAULT_MODEL != str(MINI_MODEL):
                raise ValueError("--backend vllm needs --model (the served model or adapter name)")
            model, face_projector = MINI_NAME, face_projector or str(MINI_ADAPTER)
        super().__init__(base_url or DEFAULT_URL, model, **options)
        self.projector = self.features = None
        if face_projector:
            from ..models.face_tokens import FaceFeatureExtractor, FaceProjector

            folder = Path(face_projector)
            if not (folder / "face_projector.safetensors").exists():
                raise ValueError(f"{folder}: no face_projector.safetensors (an adapter saved with face tokens on)")
            self.projector = FaceProjector.load(folder)
            c = self.projector.config
            self.features = FaceFeatureExtractor(c.layout, c.encoder, c.encoder_pretrained)

    def requests(self, items, labels) -> list[FaceRequest]:
        return face_requests(items, labels, self.include_scene, face_tokens=self.projector is not None)

    def video_parts(self, requests: Sequence[FaceRequest]) -> list[dict[str, Any] | None]:
        """Each face's tokens as a validated `video_embeds` part: encoder + projector once for the batch,
        here in the calling thread (the encoder is not thread-safe), before the requests fan out."""
        if self.projector is None or not requests:
            return [None] * len(requests)
        from ..models.face_tokens import video_embeds_part

        crops = [request.observation.aligned_crop for request in requests]
        if any(crop is None for crop in crops):
            raise ValueError("face tokens need the aligned crop of every face")
        layout = self.projector.config.layout
        with torch.inference_mode():
            tokens = self.projector(self.features([np.asarray(c) for c in crops])).float()
        return [video_embeds_part(t, layout) for t in tokens.split(layout.num_tokens)]
