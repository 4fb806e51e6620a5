"""`emoreason recipes list | show NAME | copy NAME DEST`: the training recipes that ship with emoreason."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    r = sub.add_parser("recipes", help="list, show or copy the training recipes that ship with emoreason")
    r.add_argument("action", choices=("list", "show", "copy"))
    r.add_argument("name", nargs="?", default=None, help="show/copy: a recipe name, e.g. tiny/sft")
    r.add_argument("dest", nargs="?", default=None, help="copy: a folder or a .yaml file name")
    r.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ...training.recipes import copy_recipe, recipe_names, recipes_dir, resolve_recipe
    from .. import CommandError

    if args.action == "list":
        root = recipes_dir()
        for name in recipe_names():
            first = (root / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
            print(f"{name:<26} {first}")
        return 0
    if not args.name:
        raise CommandError(f"recipes {args.action} needs a recipe name (emoreason recipes list)")
    try:
        if args.action == "show":
            print(resolve_recipe(args.name).read_text(encoding="utf-8"), end="")
            return 0
        if not args.dest:
            raise CommandError("recipes copy needs a destination folder or file")
        print(copy_recipe(args.name, args.dest))
    except (FileNotFoundError, FileExistsError) as exc:
        raise CommandError(str(exc)) from None
    return 0
