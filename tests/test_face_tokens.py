"""Face tokens: layout, injection into each Qwen-VL family, equality with a by-hand computation,
and the projector saved beside the LoRA adapter as one artefact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emoreason.models.face_tokens import (
    FaceFeatureExtractor,
    FaceTokenLayout,
    ProjectorConfig,
    attach_face_tokens,
    face_token_inputs,
    restore_placeholders,
    video_embeds_part,
    vision_language_core,
)
from emoreason.models.loading import load_model
from emoreason.prompting import build_messages
from emoreason.reasoning.transformers_backend import TransformersBackend
from emoreason.reasoning.vlm import face_requests
from emoreason.tiny import FAMILIES

from .test_prompts import fixed_face

pytestmark = pytest.mark.slow  # tiny Qwen-VL models built and taught per family (make test-fast skips them)

ENCODER = "ViT-B-32"  # random weights: shapes and plumbing only


@pytest.fixture(scope="module")
def extractor():
    torch.manual_seed(0)
    return FaceFeatureExtractor(FaceTokenLayout(16), ENCODER)


def _projector(extractor, hidden=128, seed=0):
    torch.manual_seed(seed)
    return extractor.new_projector(hidden).eval()


def test_new_projector_records_its_encoder(extractor):
    config = extractor.new_projector(128).config
    assert config == ProjectorConfig(in_dim=768, out_dim=128, num_tokens=16, encoder=ENCODER, encoder_pretrained=None)


def _crop(seed=0):
    return np.random.default_rng(seed).integers(0, 255, (224, 224, 3), dtype=np.uint8)


def test_layout_grid_and_counts():
    layout = FaceTokenLayout(16)
    assert layout.grid == (4, 4) and layout.grid_thw == [1, 8, 8] and layout.rows == 64
    assert FaceTokenLayout(12).grid == (3, 4) and FaceTokenLayout(12).grid_thw == [1, 6, 8]
    # the chat template's one video pad becomes K slots (processor) / K pads (final prompt)
    text = "a<|vision_start|><|video_pad|><|vision_end|>b"
    assert layout.mark(text).count("<|vision_pad|>") == 16 and layout.expand(text).count("<|video_pad|>") == 16


def test_features_and_projection_shapes(extractor):
    features = extractor([_crop(0), _crop(1)])
    assert features.shape == (2 * 64, extractor.dim)
    tokens = _projector(extractor)(features)
    assert tokens.shape == (2 * 16, 128) and torch.isfinite(tokens).all()


def _face_only_batch(loaded, extractor, crops):
    """A face-token-only prompt (no image) per crop, encoded exactly as the backend does."""
    layout = FaceTokenLayout(16)
    face = fixed_face(0)
    face.aligned_crop = None  # no raw image: the face is seen through its tokens only
    messages, _ = build_messages(face, face_tokens=True)
    text = layout.mark(loaded.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    batch = loaded.processor(text=[text] * len(crops), return_tensors="pt", padding=True)
    restore_placeholders(batch, loaded.tokenizer)
    batch.update(face_token_inputs(extractor(crops), layout))
    return batch


@pytest.mark.parametrize("family", FAMILIES)
def test_injected_face_tokens_reach_the_model(tiny_model_dir, extractor, family):
    loaded = load_model(tiny_model_dir(family))
    attach_face_tokens(loaded.model, _projector(extractor))
    batch = _face_only_batch(loaded, extractor, [_crop(0), _crop(1)])
    assert int((batch["input_ids"] == loaded.model.config.video_token_id).sum()) == 2 * 16
    with torch.inference_mode():
        logits = loaded.model(**batch).logits
    # different faces -> different logits at the end of the prompt (same text)
    assert not torch.allclose(logits[0, -1], logits[1, -1], atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_injection_equals_embeddings_computed_by_hand(tiny_model_dir, extractor, family):
    loaded = load_model(tiny_model_dir(family))
    projector = _projector(extractor)
    attach_face_tokens(loaded.model, projector)
    batch = _face_only_batch(loaded, extractor, [_crop(3)])
    with torch.inference_mode():
        injected = loaded.model(**batch).logits
        # By hand: token embeddings, the projected face tokens written into the video pads,
        # and the M-RoPE positions the video grid defines.
        core = vision_language_core(loaded.model)
        ids = batch["input_ids"]
        embeds = core.get_input_embeddings()(ids).clone()
        slots = ids == loaded.model.config.video_token_id
        embeds[slots] = projector(batch["pixel_values_videos"])
        positions, _ = core.get_rope_index(
            ids,
            mm_token_type_ids=batch["mm_token_type_ids"],
            video_grid_thw=batch["video_grid_thw"],
            attention_mask=batch["attention_mask"],
        )
        by_hand = loaded.model(inputs_embeds=embeds, position_ids=positions, attention_mask=batch["attention_mask"])
    torch.testing.assert_close(injected, by_hand.logits, atol=1e-5, rtol=1e-5)


def test_face_tokens_with_the_face_image_through_the_backend(tiny_model_dir, extractor, astronaut, analyzer):
    """Image + face tokens in one prompt, generated through the backend the CLI uses."""
    loaded = load_model(tiny_model_dir("qwen2_5_vl"))
    backend = TransformersBackend(loaded=loaded, face_projector=_projector(extractor), max_new_tokens=6)
    observations = analyzer.frontend.observe(astronaut)
    batch = backend.encode(face_requests([(observations, astronaut)], face_tokens=True))
    assert {"pixel_values", "pixel_values_videos", "video_grid_thw"} <= set(batch)
    faces = backend.analyze(observations, astronaut)
    assert len(faces) == 1 and faces[0].text


def test_projector_and_lora_saved_as_one_artefact(tiny_model_dir, extractor, tmp_path):
    from peft import LoraConfig, get_peft_model

    model_dir = tiny_model_dir("qwen2_vl")
    artefact = tmp_path / "adapter"
    peft_model = get_peft_model(
        load_model(model_dir).model, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(artefact)
    projector = _projector(extractor, seed=7)
    projector.save(artefact)

    loaded = load_model(model_dir, adapter=artefact)
    assert loaded.face_projector is not None
    for name, value in projector.state_dict().items():
        torch.testing.assert_close(loaded.face_projector.state_dict()[name], value)
    # the backend turns face tokens on by itself when the adapter carries a projector
    backend = TransformersBackend(loaded=loaded, max_new_tokens=4)
    assert backend.projector is loaded.face_projector
    assert TransformersBackend(loaded=load_model(model_dir, adapter=artefact), face_tokens=False).projector is None


def test_face_tokens_without_a_projector_is_a_clear_error(tiny_model_dir):
    with pytest.raises(ValueError, match="face tokens need a trained projector"):
        TransformersBackend(model=str(tiny_model_dir("qwen2_vl")), face_tokens=True)


def test_vllm_content_part_is_validated(extractor):
    layout = FaceTokenLayout(16)
    part = video_embeds_part(torch.zeros(16, 128), layout)
    assert part["type"] == "video_embeds" and part["video_embeds"]["video_grid_thw"] == [1, 8, 8]
    with pytest.raises(ValueError, match="finite"):
        video_embeds_part(torch.full((16, 128), float("nan")), layout)
    with pytest.raises(ValueError):
        video_embeds_part(torch.zeros(15, 128), layout)


def test_projector_hidden_size_must_match_the_model(tiny_model_dir, extractor):
    loaded = load_model(tiny_model_dir("qwen2_vl"))
    with pytest.raises(ValueError, match="hidden size"):
        attach_face_tokens(loaded.model, _projector(extractor, hidden=64))
