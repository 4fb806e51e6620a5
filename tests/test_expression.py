"""The fer mini-Xception ported to PyTorch (weights read from the .hdf5 with h5py); shipped face models by name."""

import math

import pytest
import torch

from emoreason.face.expression import DEFAULT_WEIGHTS, ExpressionClassifier, _pad_same, load_fer_hdf5


def test_weights_and_licence_ship_with_the_package():
    assert DEFAULT_WEIGHTS.exists()
    assert "MIT License" in (DEFAULT_WEIGHTS.parent / "LICENSE-fer.txt").read_text()


def test_every_keras_weight_is_used():
    import h5py

    model = load_fer_hdf5()
    n_torch = sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for name, b in model.named_buffers() if "num_batches" not in name
    )
    sizes = []
    with h5py.File(DEFAULT_WEIGHTS) as f:
        f["model_weights"].visititems(
            lambda name, obj: sizes.append(obj.size) if isinstance(obj, h5py.Dataset) else None
        )
    n_keras = sum(sizes)
    assert n_torch == n_keras


@pytest.mark.parametrize("size, kernel, stride", [(60, 3, 2), (15, 3, 2), (8, 3, 2), (30, 1, 2), (64, 3, 1)])
def test_pad_same_matches_tensorflow_output_size(size, kernel, stride):
    x = torch.zeros(1, 1, size, size)
    y = _pad_same(x, kernel, stride)
    out = (y.shape[-1] - kernel) // stride + 1
    assert out == math.ceil(size / stride)


def test_astronaut_is_happy(astronaut_face):
    probs = ExpressionClassifier().predict([astronaut_face])[0]
    assert set(probs) == {"anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"}
    assert abs(sum(probs.values()) - 1) < 1e-3
    assert max(probs, key=probs.get) == "happiness"


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="expression model weights not found"):
        load_fer_hdf5(tmp_path / "nope.hdf5")


def test_a_shipped_face_model_loads_by_its_name(astronaut_face):
    """`--expression-model emoreason-face-v3` and a projector's `encoder_pretrained` name a shipped model."""
    from emoreason.face.face_model import DEFAULT_FACE_MODEL, FaceModel
    from emoreason.face.frontend import load_expression_model

    by_name = load_expression_model(DEFAULT_FACE_MODEL.name)
    assert by_name.name == DEFAULT_FACE_MODEL.name
    assert by_name.predict([astronaut_face]) == FaceModel(DEFAULT_FACE_MODEL).predict([astronaut_face])
    with pytest.raises(ValueError, match="a shipped face model's name"):
        load_expression_model("emoreason-face-v0")
