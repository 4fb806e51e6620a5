"""`emoreason train sft|grpo|loop|face-model|decision-rule`: LoRA training from a YAML recipe, the face
model, and the embedded engine's decision rule.

Recipe overrides are the remaining `KEY=VALUE` arguments (e.g. `trainer.max_steps=10 lora.r=16`);
in `train loop`, `sft:KEY=VALUE` or `grpo:KEY=VALUE` applies to one stage only.
"""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    tr = sub.add_parser(
        "train",
        help="LoRA training: sft, then grpo (trl); the face model (face-model)",
        usage="emoreason train {sft,grpo,loop} --config RECIPE [--grpo-config RECIPE] [KEY=VALUE ...]\n"
        "       emoreason train face-model --data DIR_OR_CSV --out DIR [--config RECIPE] [KEY=VALUE ...]\n"
        "       emoreason train decision-rule --data DIR_OR_CSV --out RULE.json",
    )
    tr.add_argument("stage", choices=("sft", "grpo", "loop", "face-model", "decision-rule"))
    tr.add_argument("--config", default=None,
                    help="recipe YAML (loop: the SFT recipe), e.g. training/recipes/tiny/sft.yaml")  # fmt: skip
    tr.add_argument("--grpo-config", default=None, help="loop: the GRPO recipe (overrides apply to both)")
    tr.add_argument(
        "--workdir",
        default=None,
        metavar="DIR",
        help="sft/grpo/loop: the recipe's relative paths (data, model folder, output) are under DIR",
    )
    tr.add_argument(
        "--force-resume",
        action="store_true",
        help="sft/grpo: resume the run in output_dir even if its data or model settings changed",
    )
    tr.add_argument("--rounds", type=int, default=2, help="loop: SFT -> GRPO -> synthesize rounds")
    tr.add_argument("--pool-limit", type=int, default=None,
                    help="loop: explain at most this many pool records per round (a seeded sample)")  # fmt: skip
    tr.add_argument("--data", default=None, help="face-model: a folder with labels.csv, or a CSV (filename,emotion)")
    tr.add_argument("--out", default=None,
                    help="loop: where each round's data and metrics go (default out/runs/loop); "
                         "face-model: the run folder (default out/runs/face-model)")  # fmt: skip
    tr.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import CommandError

    if args.stage == "face-model":
        return _face_model(args)
    if args.stage == "decision-rule":
        return _decision_rule(args)
    if not args.config:
        raise CommandError(f"train {args.stage} needs --config (a recipe YAML under training/recipes/)")
    from ...training.config import load_recipe, stage_overrides

    if args.stage == "loop":
        from ...training.loop import run_loop

        if not args.grpo_config:
            raise CommandError("train loop needs --grpo-config as well as --config (the SFT recipe)")
        sft = load_recipe(args.config, [*stage_overrides(args.overrides, "sft"), "stage=sft"], args.workdir)
        grpo = load_recipe(args.grpo_config, [*stage_overrides(args.overrides, "grpo"), "stage=grpo"], args.workdir)
        history = run_loop(sft, grpo, args.rounds, args.out or "out/runs/loop", pool_limit=args.pool_limit)
        print(json.dumps(history[-1] if history else {}, indent=2))
        return 0
    forced = ["force_resume=true"] if args.force_resume else []
    recipe = load_recipe(args.config, [*args.overrides, *forced, f"stage={args.stage}"], args.workdir)
    if args.stage == "sft":
        from ...training.sft import run_sft as run_stage
    else:
        from ...training.grpo import run_grpo as run_stage
    print(f"adapter: {run_stage(recipe)}")
    return 0


def _face_model(args: argparse.Namespace) -> int:
    from ...training.face_model import load_face_recipe, train_face_model
    from .. import CommandError

    if not args.data:
        raise CommandError("train face-model needs --data (a folder with labels.csv, or a CSV)")
    recipe = load_face_recipe(args.config, args.overrides)
    result = train_face_model(recipe, args.data, args.out or "out/runs/face-model")
    print(json.dumps(result, indent=2))
    return 0


def _decision_rule(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ...face.face_model import DEFAULT_FACE_MODEL
    from ...training.decision_rule import fit_decision_rule
    from .. import CommandError

    if not args.data:
        raise CommandError("train decision-rule needs --data (FER2013 Training: a folder with labels.csv)")
    out = Path(args.out or "out/decision-rule/fer2013-logistic.json")
    # The front-end's measurements of the faces, cached outside the package (delete it when the front-end changes)
    cache = Path("out/decision-rule") / f"features-{DEFAULT_FACE_MODEL.name}.npz"
    print(json.dumps(fit_decision_rule(args.data, out, cache), indent=2))
    return 0
