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
FER_TRAIN = REPO.parent / "shared" / "data" / "fer2013" / "train"


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


@pytest.fixture(scope="session")
def fer_train() -> Path:
    if not (FER_TRAIN / "labels.csv").exists():
        pytest.skip(f"{FER_TRAIN} not found (the shared FER2013 Training faces sit beside the repo)")
    return FER_TRAIN


# ----------------------------------------------------------------- tiny VLMs
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Builds `family`'s tiny random checkpoint once per test run (offline, seconds)."""
    from emoreason.tiny import make_tiny_model

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
    """Teacher-force `targets` as the answers to `requests` (full fine-tune, plain torch; loss on the answer only).

    Makes a tiny random model write real-looking analyses, so tests can check the parser and
    the confidence on text a model generated rather than on strings typed into the test.
    Batches are built by the SFT collator, i.e. exactly as training builds them.
    """
    import torch
    from PIL import Image

    from emoreason.training.collator import SFTCollator

    rows = [
        {"prompt": r.messages, "image": Image.fromarray(r.images.images[0]), "completion": target}
        for r, target in zip(requests, targets)
    ]
    inputs = SFTCollator(backend.loaded.processor, backend.projector, backend.features)(rows)
    model = backend.loaded.model
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(max_steps):  # until the answer is learnt (how many steps depends on the random init)
        loss = model(**inputs).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if losses[-1] < until:
            break
    model.eval()
    return losses
