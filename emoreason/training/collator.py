"""SFT batches: the inference prompt (shared encoder) followed by the target analysis; loss on the target only."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..models.inputs import encode_prompts

BLANK_GREY = (128, 128, 128)


def face_dropped(example_id: str, fraction: float) -> bool:
    """Is this example's face blanked (the recipe's `face_dropout`)? Fixed per id: every epoch, every resume."""
    return zlib.crc32(example_id.encode()) / 2**32 < fraction


class SFTCollator:
    def __init__(self, processor: Any, projector: Any = None, features: Any = None, face_dropout: float = 0.0):
        self.processor = processor
        self.projector = projector
        self.features = features
        self.face_dropout = face_dropout
        tokenizer = processor.tokenizer
        self.end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.pad_id = tokenizer.pad_token_id

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        images = [[self._face(row)] for row in rows]
        batch = encode_prompts(
            self.processor,
            [row["prompt"] for row in rows],
            images,
            face_crops=[np.asarray(group[0]) for group in images],
            projector=self.projector,
            features=self.features,
        )
        tokenizer = self.processor.tokenizer
        targets = [tokenizer(row["completion"], add_special_tokens=False)["input_ids"] + [self.end_id] for row in rows]
        width = max(len(t) for t in targets)
        # Prompts are left-padded by the processor; each target follows its prompt and is right-padded.
        target_ids = torch.tensor([t + [self.pad_id] * (width - len(t)) for t in targets])
        target_mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in targets])
        out = dict(batch)
        out["input_ids"] = torch.cat([batch["input_ids"], target_ids], 1)
        out["attention_mask"] = torch.cat([batch["attention_mask"], target_mask], 1)
        if "mm_token_type_ids" in batch:
            out["mm_token_type_ids"] = torch.cat([batch["mm_token_type_ids"], torch.zeros_like(target_ids)], 1)
        labels = torch.full_like(out["input_ids"], -100)
        labels[:, -width:] = torch.where(target_mask.bool(), target_ids, -100)
        out["labels"] = labels
        return out

    def _face(self, row: dict[str, Any]) -> Image.Image:
        image = row["image"].convert("RGB")
        if self.face_dropout > 0 and face_dropped(str(row["id"]), self.face_dropout):
            # the same size, so the prompt keeps its image tokens: only what they show is gone
            return Image.new("RGB", image.size, BLANK_GREY)
        return image
