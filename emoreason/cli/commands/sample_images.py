"""`emoreason sample-images DIR`: write real sample faces (scikit-image's astronaut, a two-face composite)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    s = sub.add_parser("sample-images", help="write sample face images (from scikit-image) into a folder")
    s.add_argument("out_dir")
    s.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ...samples import write_sample_images

    for path in write_sample_images(args.out_dir):
        print(path)
    return 0
