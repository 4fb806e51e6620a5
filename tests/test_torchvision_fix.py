"""The CPU torchvision fix (emoreason/compat/torchvision_cpu.py), in-process and as installed."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch


def test_fix_makes_torchvision_importable_and_nms_correct():
    from emoreason.compat.torchvision_cpu import _nms_cpu, ensure_torchvision

    ensure_torchvision()
    import torchvision  # noqa: F401  (would raise "operator torchvision::nms does not exist" without the fix)
    from torchvision import transforms

    assert transforms.Resize(8)(torch.zeros(3, 16, 16)).shape == (3, 8, 8)
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 9, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    keep = torch.ops.torchvision.nms(boxes, scores, 0.5)
    assert keep.tolist() == [3, 2]  # box 3 (best) suppresses 0 and 1; box 2 is far away
    assert _nms_cpu(boxes[:0], scores[:0], 0.5).numel() == 0


def test_installed_pth_hook_fixes_a_fresh_interpreter():
    """`pip install` puts emoreason_torchvision_cpu.pth in site-packages: plain `import torchvision` works."""
    pth = Path(sysconfig.get_paths()["purelib"]) / "emoreason_torchvision_cpu.pth"
    if not pth.exists():
        pytest.skip("emoreason is not pip-installed in this environment (make test installs it)")
    code = (
        "import torchvision, torch; "
        "print(torch.ops.torchvision.nms(torch.rand(3, 4).cumsum(1), torch.rand(3), 0.5).numel())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().isdigit()


def test_open_clip_imports_after_fix():
    from emoreason.compat.torchvision_cpu import ensure_torchvision

    ensure_torchvision()
    import open_clip

    assert "ViT-B-16" in open_clip.list_models()
