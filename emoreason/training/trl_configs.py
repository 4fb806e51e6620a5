"""The trainer settings of a recipe, typed: trl's own config dataclasses, extended with what emoreason's
training needs of them as defaults (defined once here, not at each call site).

A recipe's `trainer:` section is parsed into one of these by transformers' HfArgumentParser, the
parser trl's own scripts use (`trainer_config`), so every trl / transformers training argument
can be set there, typed, and a mistyped key is an error that names it (`check_trainer_keys`
says so with a "did you mean" hint when the recipe loads, before any model does). emoreason's
own settings (model, data, LoRA, face tokens, rewards) stay in `config.Recipe`, the way trl's
scripts keep their `ScriptArguments` and `ModelConfig` beside `SFTConfig`.

This module imports trl (seconds): it is loaded only when a run or a recipe check needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import GRPOConfig, SFTConfig


@dataclass
class EmoreasonSFTConfig(SFTConfig):
    """trl's SFTConfig for emoreason's vision-language SFT (training/sft.py)."""

    # the collator (sft.SFTCollator) builds the model inputs from the prompt, image and completion columns:
    # trl must neither drop them nor tokenise the data itself
    remove_unused_columns: bool = False
    dataset_kwargs: dict[str, Any] | None = field(default_factory=lambda: {"skip_prepare_dataset": True})
    max_length: int | None = None  # a truncation could cut image tokens away from their features
    # trl sets transformers 5's deprecated alias (True), which warns; the recipe's gradient_checkpointing sets
    # activation_checkpointing instead
    gradient_checkpointing: bool | None = None


@dataclass
class EmoreasonGRPOConfig(GRPOConfig):
    """trl's GRPOConfig for emoreason's GRPO (training/grpo.py); the reward weights come from the recipe's
    `rewards:` (one weight per named reward), not from this section."""

    remove_unused_columns: bool = False  # the rewards read the emotion and AU columns
    gradient_checkpointing: bool | None = None  # as in EmoreasonSFTConfig


TRAINER_CONFIGS: dict[str, type] = {"sft": EmoreasonSFTConfig, "grpo": EmoreasonGRPOConfig}
