"""Prompts: the rendered text and token ids of one fixed face are pinned (golden files).

A change to prompts/*.jinja, to the AU catalogue or to the tiny tokenizer shows up here as a
diff. When the change is meant, regenerate the golden files:
    EMOREASON_UPDATE_GOLDEN=1 python -m pytest tests/test_prompts.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from emoreason.prompting import build_messages, render_user, to_openai_messages
from emoreason.types import AUActivation, FaceObservation

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("EMOREASON_UPDATE_GOLDEN") == "1"


def fixed_face(index: int = 1) -> FaceObservation:
    """Face 2 of 2 in an image: a smile, with an expression prior (hand-set values, no detector)."""
    aus = [
        AUActivation(1, 0.4, False, 0.1),
        AUActivation(4, 0.0, False, 0.0),
        AUActivation(6, 2.6, True, 0.8),
        AUActivation(12, 3.9, True, 0.95),
        AUActivation(25, 2.2, True, 0.7),
    ]
    return FaceObservation(
        index=index,
        box=(312.4, 80.0, 401.6, 190.2),
        detection_score=0.93,
        source="detector",
        aus=aus,
        expression_prior={"happiness": 0.81, "neutral": 0.12, "surprise": 0.05, "sadness": 0.02},
        aligned_crop=np.zeros((224, 224, 3), np.uint8),
    )


def check_golden(name: str, value: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(value, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with EMOREASON_UPDATE_GOLDEN=1 once"
    assert value == path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tokenizer():
    from emoreason.tiny import build_tokenizer

    return build_tokenizer()


def test_golden_prompt_text_and_token_ids(tokenizer):
    messages, images = build_messages(fixed_face(), n_faces=2, labels=["anger", "happiness", "neutral", "sadness"])
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    check_golden("prompt_face2of2.txt", text)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    check_golden("prompt_face2of2_ids.json", json.dumps(ids) + "\n")
    assert len(images.images) == 1 and text.count("<|image_pad|>") == 1


def test_user_prompt_names_the_face_and_its_evidence():
    text = render_user(fixed_face(), n_faces=2, labels=["happiness", "neutral"])
    assert "The image shows 2 faces. Analyse only face 2, the one in the box (312, 80, 402, 190)" in text
    assert "AU6 cheek raiser: 2.6" in text and "AU12 lip corner puller: 3.9" in text
    assert "Not detected: AU1, AU4." in text
    # the prior is restricted to the benchmark's label set
    assert "An expression classifier suggests: happiness 81%, neutral 12%." in text
    assert text.rstrip().endswith("Reason from the Action Units.")
    assert "Answer with exactly one of: happiness, neutral." in text


def test_single_face_prompt_has_no_face_index_and_no_label_line():
    face = fixed_face(index=0)
    face.expression_prior = None
    text = render_user(face, n_faces=1)
    assert "faces" not in text.split("\n")[0] and "Answer with exactly one of" not in text
    assert "expression classifier" not in text


def test_every_face_gets_its_own_conversation(astronaut):
    from emoreason.reasoning.vlm import face_requests

    faces = [fixed_face(0), fixed_face(1)]
    requests = face_requests([(faces, astronaut)], include_scene=True)
    assert [r.observation.index for r in requests] == [0, 1]
    for r in requests:
        user = r.messages[1]["content"]
        assert [p["type"] for p in user] == ["image", "image", "text"]  # face crop, then the scene
        assert f"Analyse only face {r.observation.index + 1}," in user[-1]["text"]


def test_openai_messages_carry_the_images_as_data_urls():
    messages, images = build_messages(fixed_face(), n_faces=2)
    out = to_openai_messages(messages, images)
    assert out[0]["role"] == "system" and isinstance(out[0]["content"], str)
    parts = out[1]["content"]
    assert parts[0]["type"] == "image_url" and parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[1]["type"] == "text"
