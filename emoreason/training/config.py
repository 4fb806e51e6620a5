"""Training recipes: YAML per model x stage (`training/recipes/<model>/<stage>.yaml`), overridable from the CLI.

A recipe has emoreason's own settings (model, data, LoRA, face tokens, rewards) and a
`trainer:` section parsed into trl's `SFTConfig` / `GRPOConfig` as extended in trl_configs.py
(any of their fields: learning_rate, max_steps, per_device_train_batch_size, save_steps,
report_to, ...).
Overrides are `dotted.key=value` with YAML values: `trainer.max_steps=10 lora.r=16`.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


@dataclass
class LoraSettings:
    r: int = 16  # rank of the LoRA update
    alpha: int = 32  # scaling numerator (scale = alpha / r)
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    modules_to_save: list[str] | None = None  # trained in full and saved with the adapter (e.g. lm_head)


@dataclass
class FaceTokenSettings:
    enabled: bool = False
    num_tokens: int = 16  # K tokens per face (a x b grid)
    encoder: str = "emoreason-face"  # the (frozen) face encoder: emoreason's face model, or an open_clip architecture
    pretrained: str | None = None  # open_clip tag or checkpoint path (another face-model folder for emoreason-face)
    # Train the face projector with the model (SFT), or keep the one it inherits fixed. GRPO's few noisy
    # rewards move a full-rank projector more than the LoRA: on the mini it cost 7 points of accuracy
    # that the same LoRA with the SFT projector did not (docs/emoreason-mini.md, item 12).
    train_projector: bool = True


@dataclass
class Recipe:
    model: str  # hub id or folder of the base VLM
    train_file: str  # records (FEA-20K JSONL, CSV or class folders)
    stage: str = "sft"  # sft | grpo
    adapter: str | None = None  # start from this adapter (GRPO starts from the SFT adapter)
    # lora: train a LoRA adapter on the base (saved in output_dir/adapter); full: train every weight of the
    # model (SFT of a small model from random initialisation; saved as a whole model in output_dir/model)
    finetune: str = "lora"
    # build an offline random model of this family at `model` if missing; `family:size` picks a tiny.SIZES size
    make_tiny_model: str | None = None
    face_mode: str = "full"  # full: training images are face crops; detect: find the largest face
    labels: list[str] | None = None  # label set written into the prompt (None: all 8)
    dtype: str = "auto"
    quantization: str | None = None  # 4bit -> QLoRA
    gradient_checkpointing: bool = False
    lora: LoraSettings = field(default_factory=LoraSettings)
    face_tokens: FaceTokenSettings = field(default_factory=FaceTokenSettings)
    rewards: dict[str, float] = field(default_factory=lambda: {"format": 0.5, "emotion": 1.0, "au": 1.0,
                                                               "consistency": 0.5})  # fmt: skip
    # strict: emotion only from a closed <answer>, AUs only from a closed <think> (Facial-R1's rule for
    # truncated or untagged completions); lenient reads them anyway, as evaluation does (rewards.py).
    reward_reading: str = "strict"
    # SFT only: the fraction of examples whose face the model does not see (image and face tokens from a flat
    # grey crop; which ones, by a hash of the example id, so a resumed run blanks the same). On those only the
    # prompt's prior and AU lines tell the answer, so the model has to learn to read them: they say what the
    # face tokens carry, and a model that sees the face always learns the face tokens first and leaves them unread.
    face_dropout: float = 0.0
    # Draw the training examples class-balanced (prepare.class_balanced_indices: as many as there are, each
    # emotion equally often on average) instead of at FER2013's rates (1% disgust), which a model learns as a
    # prior over its answers.
    class_balance: bool = False
    force_resume: bool = False  # resume a run in output_dir even if its data or model settings changed
    trainer: dict[str, Any] = field(default_factory=dict)  # trl SFTConfig / GRPOConfig fields

    @property
    def output_dir(self) -> Path:
        return Path(self.trainer.get("output_dir", f"out/runs/{self.stage}"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_recipe(path: str | Path, overrides: list[str] | None = None, workdir: str | Path | None = None) -> Recipe:
    """Read a recipe YAML (a path, or a shipped recipe's name such as `tiny/sft`) and apply `dotted.key=value`
    overrides. Unknown keys are one-line errors. With `workdir`, the recipe's relative paths (data, adapter,
    output_dir, and a model folder that is not a hub id) are taken from there, not from wherever the command
    runs."""
    from .recipes import resolve_recipe

    path = resolve_recipe(path)
    data = apply_overrides(yaml.safe_load(path.read_text()) or {}, overrides)
    if isinstance(data.get("trainer"), dict):
        data["trainer"] = {k: _number(v) for k, v in data["trainer"].items()}
    recipe = _build(Recipe, data, str(path))
    check_trainer_keys(recipe, str(path))
    if recipe.face_dropout and recipe.stage != "sft":
        # GRPO's rollouts see the real face; a silently ignored key would read as if it had been applied
        raise ValueError(f"{path}: face_dropout is an SFT option (stage {recipe.stage!r}); in `train loop` write "
                         f"sft:face_dropout={recipe.face_dropout}")  # fmt: skip
    if workdir is not None:
        _resolve_paths(recipe, Path(workdir))
    return recipe


def _resolve_paths(recipe: Recipe, workdir: Path) -> None:
    def under(value: str | None) -> str | None:
        return value if value is None or Path(value).is_absolute() else str(workdir / value)

    recipe.train_file = under(recipe.train_file) or recipe.train_file
    recipe.adapter = under(recipe.adapter)
    recipe.trainer["output_dir"] = under(str(recipe.output_dir))
    # a model is a folder when the recipe builds it (make_tiny_model) or one is there; else a hub id (Org/Name)
    if recipe.make_tiny_model or (workdir / recipe.model).exists():
        recipe.model = under(recipe.model) or recipe.model


def check_trainer_keys(recipe: Recipe, where: str) -> None:
    """A mistyped `trainer:` key is an error that names it, before any model is loaded.

    The section becomes trl's SFTConfig / GRPOConfig as extended in trl_configs.py; their dataclass fields
    are the allowed keys (trl's and transformers' documentation list them)."""
    from dataclasses import fields as dataclass_fields

    from .trl_configs import TRAINER_CONFIGS

    config = TRAINER_CONFIGS.get(recipe.stage)
    if config is None:
        raise ValueError(f"{where}: stage {recipe.stage!r}: expected sft or grpo")
    known = {f.name for f in dataclass_fields(config)}
    unknown = sorted(set(recipe.trainer) - known)
    if unknown:
        import difflib

        hints = [f"{k} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(k, known, 1)) else k
                 for k in unknown]  # fmt: skip
        raise ValueError(f"{where}: trainer: unknown trl {config.__mro__[1].__name__} field(s): {', '.join(hints)}")


def trainer_config(recipe: Recipe, **values: Any) -> Any:
    """The recipe's typed trainer settings (trl_configs.py: trl's config for its stage, extended), parsed by
    transformers' HfArgumentParser as trl's own scripts parse theirs: `values` (what the run sets itself),
    then the recipe's `trainer:` section over them. An unknown key is an error that names it
    (check_trainer_keys has already said so with a hint, before any model loaded)."""
    from transformers import HfArgumentParser

    from .trl_configs import TRAINER_CONFIGS

    (config,) = HfArgumentParser(TRAINER_CONFIGS[recipe.stage]).parse_dict(
        {
            "output_dir": str(recipe.output_dir),
            "activation_checkpointing": recipe.gradient_checkpointing,  # transformers 5's name for it
            **values,
            **recipe.trainer,
        },
        allow_extra_keys=False,
    )
    return config


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """`dotted.key=value` items (YAML values) written into a recipe's nested dict; returns it."""
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r}: expected key=value (e.g. trainer.max_steps=10)")
        node = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _number(yaml.safe_load(value))
    return data


def _number(value: Any) -> Any:
    """YAML 1.1 reads `1e-3` (no dot) as a string; it is the number everyone means by it."""
    import re

    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+(\.\d*)?[eE][+-]?\d+", value.strip()):
        return float(value)
    return value


def stage_overrides(overrides: list[str], stage: str) -> list[str]:
    """The overrides for one stage of `train loop`: unprefixed ones, and `stage:`-prefixed ones unprefixed.

    >>> stage_overrides(["seed=1", "sft:trainer.max_steps=5", "grpo:lora.r=4"], "sft")
    ['seed=1', 'trainer.max_steps=5']
    """
    out = []
    for item in overrides:
        prefix, sep, rest = item.partition(":")
        if sep and prefix in ("sft", "grpo"):
            if prefix == stage:
                out.append(rest)
        else:
            out.append(item)
    return out


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{where}: unknown recipe key(s) {sorted(unknown)}; known: {sorted(known)}")
    kwargs = dict(data)
    for name, sub in (("lora", LoraSettings), ("face_tokens", FaceTokenSettings)):
        if isinstance(kwargs.get(name), dict):
            kwargs[name] = _build(sub, kwargs[name], f"{where}: {name}")
    missing = [
        f.name
        for f in known.values()
        if f.name not in kwargs and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise ValueError(f"{where}: missing recipe key(s) {missing}")
    return cls(**kwargs)


# What a run is: resuming a checkpoint under different values of these would mix two runs in one.
# (Trainer settings such as max_steps or the learning rate may change on resume: that is how a run is extended.)
RUN_IDENTITY = ("model", "stage", "adapter", "finetune", "face_mode", "labels", "lora", "face_tokens", "rewards",
                "reward_reading", "face_dropout", "class_balance")  # fmt: skip


def data_fingerprint(train_file: str | Path) -> str:
    """SHA-256 of the training data: the bytes of a file, or every file's path, size and bytes under a folder."""
    import hashlib

    path, digest = Path(train_file), hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if not f.exists():
            continue
        digest.update(f"{f.relative_to(path) if path.is_dir() else f.name}:{f.stat().st_size}\n".encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def check_and_record_run(recipe: Recipe, has_checkpoint: bool) -> dict[str, Any]:
    """Write `output_dir/fingerprint.json` (the data's hash and the recipe's identity); when a checkpoint is
    there to resume and the recorded run differs, stop with a one-line error that names what changed and
    the override (`force_resume=true`, or `--force-resume`)."""
    now = {
        "train_file": str(recipe.train_file),
        "data_sha256": data_fingerprint(recipe.train_file),
        "recipe": {k: _plain(getattr(recipe, k)) for k in RUN_IDENTITY},
    }
    path = recipe.output_dir / "fingerprint.json"
    if has_checkpoint and path.is_file() and not recipe.force_resume:
        before = json.loads(path.read_text())
        changed = ["train data" if before.get("data_sha256") != now["data_sha256"] else None]
        # a key the recorded run predates had its default value then
        defaults = {f.name: f.default for f in fields(Recipe) if f.default is not MISSING}
        recorded = {k: _plain(defaults[k]) for k in RUN_IDENTITY if k in defaults} | (before.get("recipe") or {})
        for name, settings in (("lora", LoraSettings), ("face_tokens", FaceTokenSettings)):  # likewise a sub-key
            if isinstance(recorded.get(name), dict):
                recorded[name] = _plain(settings()) | recorded[name]
        changed += [k for k in RUN_IDENTITY if recorded.get(k) != now["recipe"][k]]
        changed = [c for c in changed if c]
        if changed:
            what = ", ".join(changed)
            raise ValueError(f"{recipe.output_dir}: its checkpoint is from another run ({what} changed); use a new "
                             "trainer.output_dir, or force_resume=true (--force-resume) to go on")  # fmt: skip
    recipe.output_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(now, indent=2))
    return now


def _plain(value: Any) -> Any:
    from dataclasses import is_dataclass

    return asdict(value) if is_dataclass(value) else value
