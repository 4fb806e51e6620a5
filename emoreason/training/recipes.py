"""The recipes that ship with emoreason (`training/recipes/` in the repository, `emoreason/recipes` in the
wheel): found by name (`tiny/sft`, `qwen2.5-vl-3b/grpo`, `face-model/fer2013`), listed, shown, copied.

`--config` takes a path or such a name, so an installed emoreason trains without a checkout:
`emoreason train sft --config tiny/sft train_file=...`.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def recipes_dir() -> Path:
    """`emoreason/recipes` in an installed wheel; the repository's `training/recipes` in a source checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "recipes", here.parent / "training" / "recipes"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no recipes next to {here}: reinstall emoreason")


def recipe_names() -> list[str]:
    root = recipes_dir()
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def resolve_recipe(name_or_path: str | Path) -> Path:
    """A recipe file: the path itself when it exists, else the shipped recipe of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = recipes_dir() / f"{str(name_or_path).removesuffix('.yaml')}.yaml"
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(f"{name_or_path}: no such file and no shipped recipe of that name "
                            f"(`emoreason recipes list`: {', '.join(recipe_names())})")  # fmt: skip


def copy_recipe(name: str, dest: str | Path) -> Path:
    """Copy a shipped recipe into `dest` (a folder, or a file name) to edit it."""
    source = resolve_recipe(name)
    dest = Path(dest)
    target = dest / f"{name.replace('/', '-')}.yaml" if dest.is_dir() or not dest.suffix else dest
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise FileExistsError(f"{target}: exists; not overwritten")
    shutil.copyfile(source, target)
    return target
