"""Face tokens: the face encoder's view of the aligned crop, as K extra visual tokens for the VLM.

This one module fixes the layout that training (HF), in-process inference (HF) and serving
(vLLM precomputed embeddings) all share:

    aligned crop --face encoder (frozen)--> patch features (g x g x D): emoreason's face model
                                            (6 x 6 x 128, the default) or an open_clip ViT
                 --adaptive average pool-->  a 2a x 2b grid, flattened row-major: 4K rows of D
                 --FaceProjector (trained)-> 2x2 merge (like Qwen's patch merger) -> MLP -> K x H

- Placeholder: the model's *video* placeholder, `<|vision_start|>` + K x `<|video_pad|>` +
  `<|vision_end|>`, with `video_grid_thw = (1, 2a, 2b)`. The video path leaves the image
  placeholder free for the real face crop, its grid gives well-defined M-RoPE positions (a
  one-frame video gets the same positions as an image), and vLLM accepts it as
  `video_embeds` next to a raw image (it refuses raw images mixed with `image_embeds`).
- Injection (HF): `attach_face_tokens` replaces the vision-language core's
  `get_video_features` so that `pixel_values_videos` carries the 4K pooled encoder rows per
  face and the projector turns them into K tokens; the model's own code scatters them into
  the placeholders and computes positions. emoreason never sends real videos to the VLM
  (video is analysed frame by frame), so the video path is free for this.
- Serving (vLLM): `video_embeds_part` builds the content part with the projected K x H
  tokens and the same grid.
- Artefact: `FaceProjector.save(folder)` writes `face_projector.safetensors` +
  `face_projector.json` beside the LoRA adapter; `load_model(..., adapter=folder)` reads both.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

PROJECTOR_FILE = "face_projector.safetensors"
PROJECTOR_CONFIG = "face_projector.json"
VIDEO_PAD = "<|video_pad|>"
FACE_SLOT = "<|vision_pad|>"
VIDEO_TOKEN_TYPE = 2  # mm_token_type_ids value transformers uses for video tokens
MERGE = 2  # Qwen-VL merges 2x2 patches into one LLM token; the grid counts patches before merging


@dataclass(frozen=True)
class FaceTokenLayout:
    """K face tokens laid out as an a x b grid (after the 2x2 merge)."""

    num_tokens: int = 16

    @property
    def grid(self) -> tuple[int, int]:
        """(a, b) with a * b = K and a as close to sqrt(K) as possible (a <= b)."""
        a = int(math.isqrt(self.num_tokens))
        while self.num_tokens % a:
            a -= 1
        return a, self.num_tokens // a

    @property
    def grid_thw(self) -> list[int]:
        """The `video_grid_thw` row of one face: one frame, patch grid before the 2x2 merge."""
        a, b = self.grid
        return [1, MERGE * a, MERGE * b]

    @property
    def rows(self) -> int:
        """Encoder rows per face fed to the projector (4K)."""
        return self.num_tokens * MERGE * MERGE

    def mark(self, text: str) -> str:
        """Before the processor: each `<|video_pad|>` of a rendered chat template -> K stand-ins.

        The processor refuses video pads without videos (the face tokens are not pixels), so
        the K slots travel through it as `<|vision_pad|>`, a Qwen special token no processor
        touches, and `restore` turns them back into video pads after tokenisation.
        """
        return text.replace(VIDEO_PAD, FACE_SLOT * self.num_tokens)

    def expand(self, text: str) -> str:
        """The final prompt text: each `<|video_pad|>` expanded to K copies (what vLLM builds)."""
        return text.replace(VIDEO_PAD, VIDEO_PAD * self.num_tokens)


@dataclass
class ProjectorConfig:
    in_dim: int  # face-encoder width (patch feature size)
    out_dim: int  # LLM hidden size
    num_tokens: int = 16
    encoder: str = "emoreason-face"  # the face model, or the open_clip architecture the features come from
    encoder_pretrained: str | None = None  # open_clip tag or checkpoint path; None = random (tests)

    @property
    def layout(self) -> FaceTokenLayout:
        return FaceTokenLayout(self.num_tokens)


class FaceProjector(nn.Module):
    """4K pooled encoder rows per face -> K tokens in the LLM hidden size (2x2 merge + MLP)."""

    def __init__(self, config: ProjectorConfig):
        super().__init__()
        self.config = config
        merged = config.in_dim * MERGE * MERGE
        self.norm = nn.LayerNorm(config.in_dim)
        self.mlp = nn.Sequential(nn.Linear(merged, merged), nn.GELU(), nn.Linear(merged, config.out_dim))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """rows: (F * 4K, D) for F faces, row-major over the 2a x 2b grid. Returns (F * K, H)."""
        a, b = self.config.layout.grid
        d = self.config.in_dim
        x = self.norm(rows.to(self.mlp[0].weight.dtype)).reshape(-1, a, MERGE, b, MERGE, d)
        # Gather each 2x2 neighbourhood into one vector, in token order (row-major over a x b).
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, MERGE * MERGE * d)
        return self.mlp(x)

    def save(self, folder: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Weights + config into `folder`; `state_dict` overrides the live weights (gathered ZeRO-3 shards)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        weights = self.state_dict() if state_dict is None else state_dict
        save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, folder / PROJECTOR_FILE)
        (folder / PROJECTOR_CONFIG).write_text(json.dumps(asdict(self.config), indent=2))

    @classmethod
    def load(cls, folder: str | Path, device: Any = "cpu") -> FaceProjector:
        from safetensors.torch import load_file

        folder = Path(folder)
        config = ProjectorConfig(**json.loads((folder / PROJECTOR_CONFIG).read_text()))
        projector = cls(config)
        projector.load_state_dict(load_file(folder / PROJECTOR_FILE))
        return projector.to(device).eval()


class FaceFeatureExtractor:
    """The frozen encoder side: aligned crops -> (F * 4K, D) pooled patch features."""

    def __init__(
        self, layout: FaceTokenLayout, encoder: str = "emoreason-face", pretrained: str | None = None,
        device: str = "cpu",
    ):  # fmt: skip
        from ..face.encoder import make_face_encoder

        self.layout = layout
        self.encoder = make_face_encoder(encoder, pretrained, device=device)

    @property
    def dim(self) -> int:
        return self.encoder.width

    def new_projector(self, hidden_size: int) -> FaceProjector:
        """A freshly initialised projector from this encoder's features to `hidden_size` (to be trained)."""
        config = ProjectorConfig(
            in_dim=self.dim,
            out_dim=hidden_size,
            num_tokens=self.layout.num_tokens,
            encoder=self.encoder.architecture,
            encoder_pretrained=self.encoder.pretrained,
        )
        return FaceProjector(config)

    @torch.no_grad()  # not inference_mode: training backpropagates into the projector from these
    def __call__(self, crops: list[np.ndarray]) -> torch.Tensor:
        patches = self.encoder.encode_patches(crops)  # (F, g, g, D)
        return pool_to_layout(patches, self.layout)


def pool_to_layout(patches: torch.Tensor, layout: FaceTokenLayout) -> torch.Tensor:
    """(F, g, g, D) patch grid -> (F * 4K, D) rows on the layout's 2a x 2b grid (row-major)."""
    _, rows, cols = layout.grid_thw
    x = torch.nn.functional.adaptive_avg_pool2d(patches.permute(0, 3, 1, 2), (rows, cols))
    return x.permute(0, 2, 3, 1).reshape(-1, patches.shape[-1]).contiguous()


def vision_language_core(model: Any) -> Any:
    """The inner Qwen*VLModel (owner of `visual` and `get_video_features`) under peft/generation wrappers."""
    seen = model
    for _ in range(6):
        if hasattr(seen, "visual") and hasattr(seen, "language_model"):
            return seen
        seen = getattr(seen, "model", None) or getattr(seen, "base_model", None)
        if seen is None:
            break
    raise TypeError(f"{type(model).__name__}: not a Qwen-VL model (no vision-language core found)")


def attach_face_tokens(model: Any, projector: FaceProjector) -> Any:
    """Route `pixel_values_videos` (pooled encoder rows) through `projector` as face tokens. Returns model.

    The projector becomes a submodule of the core (`core.face_projector`), so it moves with
    `.to()`, and training sees its parameters.
    """
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    core = vision_language_core(model)
    hidden = int(getattr(core.config, "text_config", core.config).hidden_size)
    if projector.config.out_dim != hidden:
        raise ValueError(f"face projector outputs {projector.config.out_dim} values, the LLM hidden size is {hidden}")
    core.face_projector = projector
    family = core.config.model_type
    layout = projector.config.layout

    def get_video_features(
        pixel_values_videos: torch.Tensor, video_grid_thw: torch.LongTensor | None = None, **kwargs: Any
    ) -> BaseModelOutputWithPooling:
        tokens = core.face_projector(pixel_values_videos)
        per_face = torch.split(tokens, layout.num_tokens)
        out = BaseModelOutputWithPooling(last_hidden_state=tokens, pooler_output=per_face)
        if family == "qwen3_vl":
            # Qwen3-VL adds "deepstack" features of the visual tokens to early LLM layers; face
            # tokens have none, so they get zeros (adding zero leaves those layers unchanged).
            layers = len(core.visual.deepstack_visual_indexes)
            out.deepstack_features = [tuple(torch.zeros_like(t) for t in per_face) for _ in range(layers)]
        return out

    core.get_video_features = get_video_features
    return model


def restore_placeholders(batch: Any, tokenizer: Any) -> Any:
    """After the processor: the `mark`ed slots become video pads (ids and modality types)."""
    slots = batch["input_ids"] == tokenizer.convert_tokens_to_ids(FACE_SLOT)
    batch["input_ids"][slots] = tokenizer.convert_tokens_to_ids(VIDEO_PAD)
    if "mm_token_type_ids" in batch:
        batch["mm_token_type_ids"][slots] = VIDEO_TOKEN_TYPE
    return batch


def face_token_inputs(features: torch.Tensor, layout: FaceTokenLayout) -> dict[str, torch.Tensor]:
    """Model kwargs for F faces' pooled features: pixel_values_videos + video_grid_thw."""
    faces = features.shape[0] // layout.rows
    grid = torch.tensor([layout.grid_thw] * faces, dtype=torch.long)
    return {"pixel_values_videos": features, "video_grid_thw": grid}


def video_embeds_part(tokens: torch.Tensor, layout: FaceTokenLayout) -> dict[str, Any]:
    """One face's K x H projected tokens as a vLLM chat content part (`--enable-mm-embeds`)."""
    if tokens.ndim != 2 or tokens.shape[0] != layout.num_tokens or not torch.isfinite(tokens).all():
        raise ValueError(f"face tokens must be a finite ({layout.num_tokens}, H) tensor, got {tuple(tokens.shape)}")
    buf = io.BytesIO()
    torch.save(tokens.detach().cpu().contiguous(), buf)
    return {
        "type": "video_embeds",
        "video_embeds": {
            "video_embeds": base64.b64encode(buf.getvalue()).decode("ascii"),
            "video_grid_thw": layout.grid_thw,
        },
    }
