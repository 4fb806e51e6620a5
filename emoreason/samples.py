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


# The demo's examples, with what each shows (the README lists them too). Licensed photos of varied expressions
# are not at hand offline, and warping the astronaut's smile into other expressions with a landmark-driven
# piecewise-affine warp was tried and left visible seams at the mouth and brows, so the examples vary what
# the pipeline meets instead: a smile, two faces, an older greyscale photo of a man at work whose face the
# pipeline reads differently, and a photo without a face.
DEMO_EXAMPLES = {
    "astronaut.png": "a posed smile, frontal, colour (Eileen Collins, NASA, public domain)",
    "two_faces.png": "two faces: the astronaut and her mirror image (the face selector)",
    "cameraman.png": "a small greyscale face looking down at a camera, not smiling (scikit-image, CC0)",
    "coffee.png": "no face at all: a cup of coffee (scikit-image, CC0)",
}


def write_demo_examples(out_dir: str | Path) -> list[Path]:
    """The Gradio demo's examples (DEMO_EXAMPLES): the sample faces, then cameraman.png and coffee.png."""
    import numpy as np
    from PIL import Image
    from skimage import data

    out = Path(out_dir)
    paths = write_sample_images(out)
    Image.fromarray(np.stack([data.camera()] * 3, axis=-1)).save(out / "cameraman.png")
    Image.fromarray(data.coffee()).save(out / "coffee.png")
    return [*paths, out / "cameraman.png", out / "coffee.png"]
