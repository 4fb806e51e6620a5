"""The optional open_clip face encoder: configurable, and never downloads in tests."""

import numpy as np
import pytest

from emoreason.face.frontend import FaceFrontEnd, FrontEndConfig


def test_encoder_off_by_default(analyzer, astronaut):
    assert analyzer.frontend.encoder is None
    assert analyzer.frontend.observe(astronaut)[0].embedding is None


def test_encoder_random_weights_embeds_aligned_crops(astronaut):
    # pretrained=None builds the architecture with random weights: offline, for shape checks
    fe = FaceFrontEnd(FrontEndConfig(encoder="ViT-S-32", encoder_pretrained=None, expression_prior=False))
    try:
        obs = fe.observe(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1))
        assert len(obs) == 2
        emb = np.stack([o.embedding for o in obs])
        assert emb.shape == (2, fe.encoder.dim)
        assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    finally:
        fe.close()


def test_missing_local_checkpoint_is_a_clear_error(tmp_path):
    from emoreason.face.encoder import FaceEncoder

    with pytest.raises(FileNotFoundError, match="face-encoder checkpoint not found"):
        FaceEncoder("ViT-S-32", pretrained=str(tmp_path / "farl.pt"))
