"""Shared fixtures: real pixels only (scikit-image's astronaut is a real smiling face)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may reach a model hub

REPO = Path(__file__).resolve().parent.parent
FER_DEV = REPO.parent / "shared" / "data" / "fer2013-dev"


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def astronaut_face(astronaut) -> np.ndarray:
    """The face region alone (a tight crop, like a benchmark image)."""
    return astronaut[70:200, 165:290]


@pytest.fixture(scope="session")
def two_faces(astronaut) -> np.ndarray:
    return np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)


@pytest.fixture(scope="session")
def no_face() -> np.ndarray:
    from skimage import data

    return data.coffee()  # a cup of coffee on a table


@pytest.fixture(scope="session")
def analyzer():
    from emoreason import Analyzer

    a = Analyzer(backend="embedded")
    yield a
    a.close()


@pytest.fixture(scope="session")
def fer_dev() -> Path:
    if not (FER_DEV / "labels.csv").exists():
        pytest.skip(f"{FER_DEV} not found (the shared FER2013 development subset sits beside the repo)")
    return FER_DEV


# ----------------------------------------------------------------- tiny VLMs
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Builds `family`'s tiny random checkpoint once per test run (offline, seconds)."""
    from emoreason.models.tiny import make_tiny_model

    built: dict[str, Path] = {}

    def build(family: str = "qwen2_5_vl") -> Path:
        if family not in built:
            built[family] = make_tiny_model(tmp_path_factory.mktemp(f"tiny-{family}"), family)
        return built[family]

    return build


ASTRONAUT_ANALYSIS = (
    "<think>The cheeks are raised (AU6) and the lip corners are pulled up (AU12); "
    "no AU4.</think>\n<answer>happiness</answer>"
)


def teach(backend, requests, targets, max_steps: int = 300, lr: float = 2e-3, until: float = 0.02) -> list[float]:
    """Teacher-force `targets` as the answers to `requests` (plain torch; loss on the answer only).

    Makes a tiny random model write real-looking analyses, so tests can check the parser and
    the confidence on text a model generated rather than on strings typed into the test.
    """
    import torch

    model, tokenizer = backend.loaded.model, backend.loaded.tokenizer
    batch = backend.encode(requests)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    answers = [tokenizer(t, add_special_tokens=False)["input_ids"] + [end] for t in targets]
    width = max(len(a) for a in answers)
    pad = tokenizer.pad_token_id
    # Right-pad each answer after its left-padded prompt.
    answer_ids = torch.tensor([a + [pad] * (width - len(a)) for a in answers])
    answer_mask = torch.tensor([[1] * len(a) + [0] * (width - len(a)) for a in answers])
    inputs = dict(batch)
    inputs["input_ids"] = torch.cat([batch["input_ids"], answer_ids], 1)
    inputs["attention_mask"] = torch.cat([batch["attention_mask"], answer_mask], 1)
    if "mm_token_type_ids" in batch:
        inputs["mm_token_type_ids"] = torch.cat([batch["mm_token_type_ids"], torch.zeros_like(answer_ids)], 1)
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, -width:] = torch.where(answer_mask.bool(), answer_ids, -100)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(max_steps):  # until the answer is learnt (how many steps depends on the random init)
        loss = model(**inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if losses[-1] < until:
            break
    model.eval()
    return losses
