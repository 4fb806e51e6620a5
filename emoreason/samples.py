"""Sample face images that ship with the package's dependencies (no download): for the demo, the docs and tests."""

from __future__ import annotations

from pathlib import Path


def write_sample_images(out_dir: str | Path) -> list[Path]:
    """astronaut.png (a real smiling face, public domain) and two_faces.png (it, mirrored, side by side)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    face = data.astronaut()
    paths = [out / "astronaut.png", out / "two_faces.png"]
    Image.fromarray(face).save(paths[0])
    Image.fromarray(np.concatenate([face, face[:, ::-1]], axis=1)).save(paths[1])
    return paths
