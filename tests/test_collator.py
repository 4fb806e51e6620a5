"""The SFT collator's face dropout: which examples lose their face, and that they lose all of it."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from emoreason.prompting import build_messages
from emoreason.training.collator import BLANK_GREY, SFTCollator, face_dropped
from emoreason.types import FaceObservation


def test_face_dropout_picks_a_fixed_share_of_examples_by_id():
    ids = [f"Training_{i}.jpg" for i in range(4000)]
    half = [face_dropped(i, 0.5) for i in ids]
    assert 0.46 < np.mean(half) < 0.54
    assert half == [face_dropped(i, 0.5) for i in ids]  # the same on every call: a resumed run blanks the same
    assert not any(face_dropped(i, 0.0) for i in ids) and all(face_dropped(i, 1.0) for i in ids)
    assert all(h for i, h in zip(ids, half) if face_dropped(i, 0.3))  # nested: a larger share adds faces


def test_a_dropped_face_reaches_the_model_as_a_flat_grey_crop(tiny_model_dir, astronaut_face):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir("qwen2_5_vl"))
    obs = FaceObservation(0, (0.0, 0.0, 96.0, 96.0), detection_score=1.0, source="full", aligned_crop=astronaut_face)
    messages, _ = build_messages(obs, n_faces=1)
    row = {"id": "face-0", "prompt": messages, "image": Image.fromarray(astronaut_face), "completion": "x"}
    grey = {**row, "image": Image.new("RGB", row["image"].size, BLANK_GREY)}
    kept, dropped = SFTCollator(processor)([row]), SFTCollator(processor, face_dropout=1.0)([row])
    assert torch.equal(dropped["pixel_values"], SFTCollator(processor)([grey])["pixel_values"])
    assert not torch.equal(kept["pixel_values"], dropped["pixel_values"])
    assert torch.equal(kept["input_ids"], dropped["input_ids"])  # the same prompt, image tokens and target
