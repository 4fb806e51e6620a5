"""Conversations -> padded model inputs: the one encoding inference (transformers backend) and training share.

Chat template -> (face-token slots marked) -> processor (text + images) -> slots restored
to video pads -> face features attached. Left padding, so generation continues every row
from its last prompt token; training appends the completion after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def encode_prompts(
    processor: Any,
    conversations: Sequence[list[dict[str, Any]]],
    images: Sequence[Sequence[Any]],
    face_crops: Sequence[Any] | None = None,
    projector: Any = None,
    features: Any = None,
) -> Any:
    """A BatchFeature for `conversations` (each with its `images` in placeholder order).

    With a face `projector` (and its `features` extractor), `face_crops` (one aligned crop per
    conversation) become face tokens at the conversations' video placeholders.
    """
    from .face_tokens import face_token_inputs, restore_placeholders

    texts = [processor.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
    if projector is not None:
        texts = [projector.config.layout.mark(t) for t in texts]
    flat = [image for group in images for image in group]
    batch = processor(text=texts, images=flat or None, return_tensors="pt", padding=True)
    if projector is not None:
        restore_placeholders(batch, processor.tokenizer)
        if face_crops is None or any(c is None for c in face_crops):
            raise ValueError("face tokens need the aligned crop of every face")
        batch.update(face_token_inputs(features(list(face_crops)), projector.config.layout))
    return batch
