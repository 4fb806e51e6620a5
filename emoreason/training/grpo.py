"""`emoreason train grpo --config training/recipes/<model>/grpo.yaml [key=value ...]`: reward-guided RL with trl.

Starts from the SFT adapter (`adapter:` in the recipe) and keeps training that LoRA with
trl's GRPOTrainer: for each prompt (the same inference prompt SFT used, see prepare.py) it
samples `num_generations` analyses, scores each with the rewards named in the recipe
(`rewards: {format: 0.5, emotion: 1.0, au: 1.0, consistency: 0.5}`; emoreason/rewards.py,
the gold `emotion` and `aus` columns reach them; `reward_reading: strict` gives a truncated or
untagged completion no emotion or AU credit), and pushes the policy towards the
better-than-average ones. Each reward is logged separately by trl (rewards/<name>/mean).
Generation runs through vLLM when the recipe sets `trainer.use_vllm: true` (trl colocate or
server mode, GPU only), through HF generate otherwise. Resumes from the last checkpoint;
saves the adapter like SFT does.

With face tokens (the SFT adapter has a face projector, or the recipe turns them on) the
trainer is FaceTokenGRPOTrainer (face_grpo.py): the same GRPO, with the face tokens in every
generation and log-prob forward; the projector keeps training and is saved with the LoRA, or stays
as SFT left it with `face_tokens.train_projector: false` (the mini's recipe).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..rewards import REWARDS
from .config import Recipe, check_and_record_run, trainer_config
from .sft import (
    ProjectorCheckpoints,
    build_model,
    last_checkpoint,
    prepared_dataset,
    restore_projector,
    save_artefact,
)


def run_grpo(recipe: Recipe) -> Path:
    """Train; returns the adapter folder."""
    trainer, projector = build_grpo_trainer(recipe)
    trainer.train(resume_from_checkpoint=last_checkpoint(recipe.output_dir))
    trainer.save_state()  # output_dir/trainer_state.json: the whole log, with the run's closing summary
    return save_artefact(trainer, projector, recipe.output_dir / "adapter", recipe)


def build_grpo_trainer(recipe: Recipe) -> tuple[Any, Any]:
    """(trl trainer ready to train, face projector or None); the projector restored on resume."""
    from trl import GRPOTrainer

    from .face_grpo import FaceTokenGRPOTrainer

    unknown = set(recipe.rewards) - set(REWARDS)
    if unknown:
        raise ValueError(f"unknown reward(s) {sorted(unknown)} in the recipe; known: {sorted(REWARDS)}")
    if recipe.reward_reading not in ("strict", "lenient"):
        raise ValueError(f"reward_reading must be strict or lenient, not {recipe.reward_reading!r}")
    check_and_record_run(recipe, has_checkpoint=last_checkpoint(recipe.output_dir) is not None)
    (recipe.output_dir / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2))
    names = list(recipe.rewards)
    args = trainer_config(recipe, reward_weights=[float(recipe.rewards[n]) for n in names])
    dataset = prepared_dataset(recipe, args, require_description=False)
    # trl's VLM path reads the prompt and image columns; the rewards read emotion and aus.
    dataset = dataset.remove_columns(["completion"])
    model, processor, projector, features = build_model(recipe)
    restore_projector(projector, last_checkpoint(recipe.output_dir))
    # A sampled vision placeholder would make the log-prob forward count more image/face slots than it has
    # features for (trl suppresses only the image pad): none of them may be generated.
    placeholders = ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>"]
    ids = [i for i in processor.tokenizer.convert_tokens_to_ids(placeholders) if i is not None and i >= 0]
    args.generation_kwargs = {"suppress_tokens": ids, **(args.generation_kwargs or {})}
    common = dict(
        model=model,
        reward_funcs=[_named(REWARDS[n], n, strict=recipe.reward_reading == "strict") for n in names],
        args=args,
        train_dataset=dataset,
        processing_class=processor,
    )
    if projector is None:
        trainer = GRPOTrainer(**common)
    else:
        trainer = FaceTokenGRPOTrainer(
            **common, projector=projector, features=features, callbacks=[ProjectorCheckpoints(projector)]
        )
    return trainer, projector


def _named(fn, name: str, strict: bool):
    """trl logs each reward under the function's __name__: make it the registry name."""

    def reward(completions, **columns):
        return fn(completions, strict=strict, **columns)

    reward.__name__ = name
    return reward
