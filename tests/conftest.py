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
