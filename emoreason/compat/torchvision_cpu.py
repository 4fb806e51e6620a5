"""Make the CUDA build of torchvision importable next to a CPU-only torch.

PyPI only ships CUDA builds of torchvision 0.28. On a CPU build of torch its C extension
(`torchvision/_C.so`) fails to load, and `import torchvision` then dies in
`_meta_registrations.py` with "operator torchvision::nms does not exist", because that
module registers fake kernels for ops the extension was supposed to define.

The fix defines the two ops torchvision registers fakes for (`nms`, `qnms`) before
torchvision is imported, with a CPU kernel for `nms` written in plain torch. Transforms and
models then work, and so does `torch.ops.torchvision.nms`; the Python wrappers in
`torchvision.ops` still refuse (they check that the extension loaded), and image decoding
(`torchvision.io`) and the roi ops do not work, so emoreason decodes images with PIL.

It is applied in two ways:
- `install_import_hook()` runs from the `emoreason_torchvision_cpu.pth` file that
  `pip install` puts in site-packages: a meta-path finder that applies the fix the first
  time anything imports torchvision (transformers, open_clip, user code), without importing
  torch at interpreter start-up.
- `ensure_torchvision()` applies it directly; emoreason calls it before its own imports.
Where the extension loads (a CUDA torch on a GPU machine) nothing is changed.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

_applied = False


def _nms_cpu(dets, scores, iou_threshold: float):
    """Greedy non-maximum suppression; returns kept indices sorted by decreasing score."""
    import torch

    if dets.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=dets.device)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep = []
    suppressed = torch.zeros(dets.shape[0], dtype=torch.bool)
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        xx1 = torch.maximum(x1[i], x1)
        yy1 = torch.maximum(y1[i], y1)
        xx2 = torch.minimum(x2[i], x2)
        yy2 = torch.minimum(y2[i], y2)
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[i] + areas - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.int64, device=dets.device)


def _extension_loads() -> bool:
    """True when torchvision's own C extension loads (then no fix is needed)."""
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # torchvision not installed: nothing to fix
    folder = Path(next(iter(spec.submodule_search_locations)))
    candidates = sorted(folder.glob("_C*.so")) + sorted(folder.glob("_C*.pyd"))
    if not candidates:
        return False
    try:
        torch.ops.load_library(str(candidates[0]))
    except (OSError, RuntimeError):
        return False
    return True


def ensure_torchvision() -> bool:
    """Apply the fix if torchvision's extension cannot load. Returns True if it was applied.

    Must run before the first `import torchvision`; harmless (a no-op) afterwards or twice.
    """
    global _applied
    if _applied or "torchvision" in sys.modules:
        return _applied
    import torch

    if _extension_loads():
        return False
    if not hasattr(torch.ops.torchvision, "nms"):
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.impl("nms", _nms_cpu, "CPU")
        # The Library object must outlive this call or the definitions are dropped.
        globals()["_library"] = lib
    _applied = True
    return True


class _TorchvisionFinder(importlib.abc.MetaPathFinder):
    """Applies the fix just before the first import of torchvision, then steps aside."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torchvision":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TorchvisionFinder)]
        try:
            ensure_torchvision()
        except Exception as exc:  # never break an unrelated import because of the fix
            print(f"emoreason: torchvision CPU fix not applied: {exc}", file=sys.stderr)
        return None  # let the normal finders load torchvision


def install_import_hook() -> None:
    """Register the finder (called from the .pth file at interpreter start-up; cheap)."""
    if "torchvision" in sys.modules or any(isinstance(f, _TorchvisionFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _TorchvisionFinder())
