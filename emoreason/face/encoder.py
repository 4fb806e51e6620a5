"""Face encoder: emoreason's face model (the default), or an open_clip image tower over the aligned crop.

`make_face_encoder("emoreason-face")` is the face model trained on real faces
(face/face_model.py, `FaceModelEncoder`); `"emoreason-face+prior"` is the same model with its own
expression log-probabilities appended to every patch feature (the prior as the VLM reads it best,
see `FaceModelEncoder`); any other name is an open_clip architecture.

No CLIP or face-CLIP weights can be downloaded on an offline machine, so nothing is loaded
unless the user names an architecture. `pretrained` is an open_clip tag (e.g. "openai",
"laion2b_s34b_b79k") or a local checkpoint path (e.g. FaRL's); None builds random weights,
which is only useful for tests and shape checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..compat.torchvision_cpu import ensure_torchvision

RANDOM_TOWER_SEED = 0
FACE_MODEL_ENCODER = "emoreason-face"
FACE_MODEL_WITH_PRIOR = "emoreason-face+prior"


def make_face_encoder(architecture: str = FACE_MODEL_ENCODER, pretrained: str | None = None, device: str = "cpu"):
    """The face model (`emoreason-face`, `emoreason-face+prior`; `pretrained` = another face-model folder) or an
    open_clip tower."""
    if architecture in (FACE_MODEL_ENCODER, FACE_MODEL_WITH_PRIOR):
        from .face_model import FaceModelEncoder

        return FaceModelEncoder(pretrained, device=device, with_prior=architecture == FACE_MODEL_WITH_PRIOR)
    return FaceEncoder(architecture, pretrained, device=device)


class FaceEncoder:
    def __init__(self, architecture: str = "ViT-B-16", pretrained: str | None = None, device: str = "cpu"):
        ensure_torchvision()
        import open_clip

        if pretrained and Path(pretrained).suffix and not Path(pretrained).exists():
            raise FileNotFoundError(f"{pretrained}: face-encoder checkpoint not found")
        # Without weights the tower is random: make it the *same* random tower in every process
        # (a projector trained on its features must see those features again at inference).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_TOWER_SEED)
            model, _, preprocess = open_clip.create_model_and_transforms(architecture, pretrained=pretrained or None)
        self.model = model.visual.to(device).eval()  # only the image tower is needed
        self.preprocess = preprocess
        self.device = device
        self.architecture = architecture
        self.pretrained = pretrained

    @property
    def dim(self) -> int:
        return int(self.model.output_dim)

    @property
    def width(self) -> int:
        """Size of one patch feature (the transformer width), what face tokens are projected from."""
        return int(self.model.transformer.width)

    @torch.no_grad()  # not inference_mode: the features feed a projector that is trained
    def encode_patches(self, crops: list[np.ndarray]) -> torch.Tensor:
        """(N, g, g, width) patch features of RGB uint8 crops (a ViT's token grid, class token dropped)."""
        x = torch.stack([self.preprocess(Image.fromarray(c)) for c in crops]).to(self.device)
        self.model.output_tokens = True
        try:
            _, tokens = self.model(x)
        finally:
            self.model.output_tokens = False
        g = int(round(tokens.shape[1] ** 0.5))
        return tokens.float().reshape(len(crops), g, g, -1)

    @torch.inference_mode()
    def encode(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, dim) L2-normalised embeddings of RGB uint8 crops."""
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        x = torch.stack([self.preprocess(Image.fromarray(c)) for c in crops]).to(self.device)
        feats = self.model(x)
        feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return feats.cpu().numpy()
