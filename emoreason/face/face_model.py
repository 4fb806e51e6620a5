"""emoreason's own face model: an expression classifier for 48 px grey faces, and its features.

The network is a ResNet-18 layout (timm's `ResNet` with `BasicBlock`, 2-2-2-2 blocks) at a
quarter of the usual width (32-64-128-256 channels, 2.8M parameters), with a 3x3 stride-1
stem instead of the 7x7 stride-2 one: at 48 px the standard stem throws away the detail
(mouth corners, brow furrows) that FER depends on. Residual nets of this shape are the
standard strong baselines on FER2013 (Pramerdorfer & Kampel 2016; Khaireddin & Chen 2021),
and a narrow one trains on a 2-core CPU in about two hours. Random initialisation: nothing
is downloaded.

Inputs: grey faces resized to 48x48 and centre-cropped to 44x44 (training crops at random),
scaled to [0, 1] and normalised with the training set's mean and std. The classifier was
trained with logit adjustment (Menon et al. 2021), so its probabilities are for a world where
the emotions are equally likely, not FER2013's 25% happiness.

The same network is the default face encoder: `features` returns its last feature map
(256 x 3 x 3 at 44 px) or, from `feature_layer="layer3"`, the 128 x 6 x 6 map before it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ..labels import BASIC7

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_FACE_MODEL = WEIGHTS_DIR / "emoreason-face-v6"  # <dir>/model.safetensors + config.json + MODEL_CARD.md


def face_model_path(name_or_path: str | Path) -> Path:
    """A face-model folder: the path itself, or a shipped model by its name ("emoreason-face-v3")."""
    path = Path(name_or_path)
    return WEIGHTS_DIR / path if not path.exists() and (WEIGHTS_DIR / path).is_dir() else path


@dataclass
class FaceNetConfig:
    """The architecture and input contract of a face model (saved beside its weights as config.json)."""

    classes: list[str] = field(default_factory=lambda: list(BASIC7))
    layers: list[int] = field(default_factory=lambda: [2, 2, 2, 2])  # BasicBlocks per stage (ResNet-18)
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    drop_rate: float = 0.3  # dropout before the classifier
    image_size: int = 48  # faces are resized to this (FER2013's own size)...
    input_size: int = 44  # ...and cropped to this (random in training, centre at inference)
    mean: float = 0.5  # of the training faces' grey values in [0, 1]; set by the trainer
    std: float = 0.25


def build_face_net(config: FaceNetConfig) -> nn.Module:
    """timm's ResNet with a 3x3 stride-1 stem (see the module docstring), one grey input channel."""
    from timm.models.resnet import BasicBlock, ResNet

    net = ResNet(BasicBlock, list(config.layers), num_classes=len(config.classes), in_chans=1,
                 channels=tuple(config.channels), drop_rate=config.drop_rate)  # fmt: skip
    net.conv1 = nn.Conv2d(1, net.bn1.num_features, kernel_size=3, stride=1, padding=1, bias=False)
    return net


def to_grey48(face: np.ndarray, size: int = 48) -> np.ndarray:
    """An RGB or grey face crop -> grey uint8 size x size (area resampling when shrinking)."""
    grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY) if face.ndim == 3 else face
    if grey.shape[:2] != (size, size):
        shrink = grey.shape[0] > size or grey.shape[1] > size
        grey = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return np.ascontiguousarray(grey, dtype=np.uint8)


def normalise(batch_uint8: torch.Tensor, config: FaceNetConfig) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 1, H, W) float, normalised as in training."""
    return ((batch_uint8.float() / 255.0 - config.mean) / config.std)[:, None]


def centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


class FaceModel:
    """A trained face model folder: predict emotion probabilities, or give features for the face tokens."""

    def __init__(self, path: str | Path = DEFAULT_FACE_MODEL, flip_tta: bool = True):
        from safetensors.torch import load_file

        path = face_model_path(path)
        self.name = path.name  # recorded on each observation's prior (the decision rule checks it)
        if not (path / "model.safetensors").is_file():
            raise FileNotFoundError(f"{path}: no face model here (expected model.safetensors and config.json)")
        meta = json.loads((path / "config.json").read_text())
        self.config = FaceNetConfig(**meta["net"])
        self.meta = meta
        self.net = build_face_net(self.config)
        state = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
        self.net.load_state_dict(state)
        # channels-last: measured 1.5x faster than the default layout for one face on one CPU thread
        self.net.eval().to(memory_format=torch.channels_last)
        self._classify = _frozen(self.net, self.config.input_size)
        self.labels = list(self.config.classes)
        self.flip_tta = flip_tta  # average the face and its mirror image (measured: see the model card)

    def _inputs(self, faces: list[np.ndarray]) -> torch.Tensor:
        grey = torch.from_numpy(np.stack([to_grey48(f, self.config.image_size) for f in faces]))
        x = centre_crop(normalise(grey, self.config), self.config.input_size)
        return x.contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def logits(self, faces: list[np.ndarray], chunk: int = 128, flip_tta: bool | None = None) -> torch.Tensor:
        """(N, classes) logits; `flip_tta` None = the model's own setting."""
        flip_tta = self.flip_tta if flip_tta is None else flip_tta
        if len(faces) > chunk:  # bounded memory for long lists (activations grow with the batch)
            parts = [self.logits(faces[i : i + chunk], flip_tta=flip_tta) for i in range(0, len(faces), chunk)]
            return torch.cat(parts)
        x = self._inputs(faces)
        if not flip_tta:
            return self._classify(x)
        both = self._classify(torch.cat([x, torch.flip(x, dims=[-1])]))  # one batched pass: the face and its mirror
        return (both[: len(faces)] + both[len(faces) :]) / 2

    def predict(self, faces: list[np.ndarray]) -> list[dict[str, float]]:
        """Emotion probabilities per face (canonical label names)."""
        if not faces:
            return []
        probs = torch.softmax(self.logits(faces), dim=-1).numpy()
        return [{lab: round(float(p), 4) for lab, p in zip(self.labels, row)} for row in probs]

    @torch.no_grad()  # not inference_mode: the features may feed a projector that is trained
    def features(self, faces: list[np.ndarray], layer: str = "layer4") -> torch.Tensor:
        """The feature map of `layer` (layer3: 128x6x6, layer4: 256x3x3 at 44 px), (N, C, h, w)."""
        net, x = self.net, self._inputs(faces)
        x = net.maxpool(net.act1(net.bn1(net.conv1(x))))
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(net, name)(x)
            if name == layer:
                return x
        raise ValueError(f"layer {layer!r}: expected layer1..layer4")


def _frozen(net: nn.Module, size: int):
    """The classifier traced, frozen and optimised for CPU inference (conv+BN folded, oneDNN layouts):
    measured 7 ms per face against 10.5 ms eager, one thread. Falls back to the eager net where tracing
    is not supported."""
    example = torch.zeros(1, 1, size, size).contiguous(memory_format=torch.channels_last)
    try:
        with torch.inference_mode():
            return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, example)))
    except Exception as exc:  # noqa: BLE001 - a slower but correct classifier beats none
        import warnings

        warnings.warn(f"face model: eager inference ({type(exc).__name__}: {exc})", stacklevel=2)
        return net


def save_face_model(net: nn.Module, config: FaceNetConfig, out_dir: str | Path, extra: dict | None = None) -> Path:
    """model.safetensors (float16: half the size, same predictions to 3 decimals) + config.json."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in net.state_dict().items()
             if not k.endswith("num_batches_tracked")}  # fmt: skip
    save_file(state, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps({"net": asdict(config), **(extra or {})}, indent=2) + "\n")
    return out


class FaceModelEncoder:
    """The face model as the VLM's face encoder (the default when no open_clip weights are given).

    It has `FaceEncoder`'s interface: `encode_patches` gives the layer3 feature grid (6 x 6 x 128),
    which the face-token layout pools to its grid; `encode` gives the pooled layer4 vector. Callers
    pass the front-end's aligned crops (eyes at align.EYE_* of the side); they are re-cut to the
    FER2013 geometry the model was trained on.

    `with_prior`: every patch feature also carries the model's 7 expression log-probabilities (flip
    TTA, as the prompt's prior; floored at 1e-3), so the grid is 6 x 6 x 135. Why: layer3 is one stage
    before the classifier, so from it alone the projector and a small VLM must re-learn layer4 and the
    head; measured, emoreason-mini reads about 0.51 from those tokens, well under the prior's 0.65, and
    ignores the prior written as numbers in its prompt. Appended to the features, the prior reaches the
    VLM through the channel it does read, as a signal one linear map decodes.
    """

    PRIOR_FLOOR = 1e-3  # as the decision rule's: log-probabilities in [-6.9, 0]

    def __init__(self, path: str | Path | None = None, device: str = "cpu", with_prior: bool = False):
        from .encoder import FACE_MODEL_ENCODER, FACE_MODEL_WITH_PRIOR

        self.with_prior = with_prior
        self.architecture = FACE_MODEL_WITH_PRIOR if with_prior else FACE_MODEL_ENCODER
        self.model = FaceModel(path or DEFAULT_FACE_MODEL, flip_tta=False)
        # A projector trained on these features records this (ProjectorConfig.encoder_pretrained): the default's
        # own name, not "the default", so that a later default face model does not feed it features it never saw.
        self.pretrained = str(path) if path else DEFAULT_FACE_MODEL.name
        self.device = device  # features are computed on the CPU (a 2.8M-parameter net); the projector moves them

    @property
    def width(self) -> int:
        return int(self.model.config.channels[2]) + (len(self.model.labels) if self.with_prior else 0)

    @property
    def dim(self) -> int:
        return int(self.model.config.channels[3])

    def _fer_geometry(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        from .align import EYE_LEFT_X, EYE_RIGHT_X, EYE_Y, FER_TEMPLATE, align_face

        out = []
        for crop in crops:
            side = crop.shape[0]
            right_eye, left_eye = (
                np.array([EYE_LEFT_X * side, EYE_Y * side]),
                np.array([EYE_RIGHT_X * side, EYE_Y * side]),
            )
            out.append(align_face(crop, right_eye, left_eye, self.model.config.image_size, template=FER_TEMPLATE))
        return out

    @torch.no_grad()  # not inference_mode: the features feed a projector that is trained
    def encode_patches(self, crops: list[np.ndarray]) -> torch.Tensor:
        """(N, 6, 6, 128) layer3 features of RGB uint8 aligned crops, channels last (135 with the prior)."""
        faces = self._fer_geometry(crops)
        patches = self.model.features(faces, layer="layer3").permute(0, 2, 3, 1)
        if self.with_prior:
            logits = self.model.logits(faces, flip_tta=True).clone()  # a plain tensor, not an inference-mode one
            log_prior = torch.log_softmax(logits, dim=-1).clamp(min=np.log(self.PRIOR_FLOOR))
            patches = torch.cat([patches, log_prior[:, None, None, :].expand(*patches.shape[:3], -1)], dim=-1)
        return patches.contiguous()

    @torch.no_grad()
    def encode(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, 256) L2-normalised pooled layer4 features."""
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        feats = self.model.features(self._fer_geometry(crops), layer="layer4").mean(dim=(2, 3))
        return torch.nn.functional.normalize(feats, dim=-1).numpy()
