"""The package's layers point one way: no two subpackages import each other.

Read from the source (no imports run), so the rule holds for lazy imports inside functions too.
The order, bottom to top: the core modules (types, labels, facs, parsing, prompting, imageio),
then face, models, reasoning, then what is built on them (analyzer, data, training, eval,
serving, ui) and the CLI on top.
"""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "emoreason"
IMPORT = re.compile(r"^\s*from (\.+)([\w.]*) import", re.M)
# Each unit may import only units listed before it here.
ORDER = [
    "compat", "defaults", "labels", "facs", "tables", "types", "parsing", "faithfulness", "imageio", "prompting",
    "endpoint", "samples", "face", "video", "annotate", "models", "reasoning", "tiny", "analyzer", "rewards", "data",
    "training", "eval", "serving", "ui", "cli", "__main__",
]  # fmt: skip


def unit_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def imports() -> dict[str, set[str]]:
    """unit -> the other units it imports (relative imports; the package never imports itself absolutely)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        unit, folder = unit_of(path), list(path.relative_to(PACKAGE).parts[:-1])
        for dots, module in IMPORT.findall(path.read_text(encoding="utf-8")):
            # `from ..x import y` in emoreason/cli/commands/a.py means emoreason.cli.x: resolve, take the unit.
            absolute = folder[: len(folder) - (len(dots) - 1)] + [m for m in module.split(".") if m]
            target = absolute[0] if absolute else ""
            if target and target != unit:
                graph.setdefault(unit, set()).add(target)
    return graph


def test_every_unit_has_a_place_in_the_order():
    units = {unit_of(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert units <= set(ORDER), f"add to ORDER: {sorted(units - set(ORDER))}"


def test_imports_point_down_the_layers():
    rank = {u: i for i, u in enumerate(ORDER)}
    upward = [f"{a} -> {b}" for a, targets in imports().items() for b in targets if rank[b] >= rank[a]]
    assert not upward, f"imports that point up the layers: {sorted(upward)}"
