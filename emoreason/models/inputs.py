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
    from .face_tokens import face_token_inputs

    texts = [processor.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
    layout = projector.config.layout if projector is not None else None
    batch = encode_texts(processor, texts, [image for group in images for image in group], layout)
    if projector is not None:
        if face_crops is None or any(c is None for c in face_crops):
            raise ValueError("face tokens need the aligned crop of every face")
        batch.update(face_token_inputs(features(list(face_crops)), layout))
    return batch


def encode_texts(processor: Any, texts: Sequence[str], images: Sequence[Any], layout: Any = None) -> Any:
    """Rendered chat texts + their images (flat, in order) -> BatchFeature; with a face-token
    `layout`, the texts' video placeholders become K video pads (the features go in separately)."""
    from .face_tokens import restore_placeholders

    if layout is not None:
        texts = [layout.mark(t) for t in texts]
    batch = processor(text=list(texts), images=list(images) or None, return_tensors="pt", padding=True)
    if layout is not None:
        restore_placeholders(batch, processor.tokenizer)
    return batch
