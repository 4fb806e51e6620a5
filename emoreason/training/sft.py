"""`emoreason train sft --config training/recipes/<model>/sft.yaml [key=value ...]`: LoRA SFT with trl.

Steps: build the tiny model if the recipe asks for one -> read the records -> run the
front-end once per image and render the inference prompt (prepare.py) -> load the VLM
(4-bit for QLoRA) -> wrap it in a peft LoRA (and attach a trainable face projector when face
tokens are on) -> trl SFTTrainer with emoreason's collator -> resume from the last
checkpoint in `output_dir` if one exists (a killed run goes on) -> save the adapter and the
projector together in `output_dir/adapter`, the folder `analyze --adapter` takes.

With `finetune: full` (a small model trained from random initialisation, where a LoRA on a
random base learns little) there is no LoRA: every weight trains, and the result is a whole
model folder, `output_dir/model` (weights, processor, the face projector beside them), that
`analyze --model` loads and that GRPO then adapts with a LoRA of its own.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .config import Recipe, check_and_record_run, trainer_config


class ProjectorCheckpoints(TrainerCallback):
    """Keep the face projector in every checkpoint (peft saves only the LoRA)."""

    def __init__(self, projector: Any):
        self.projector = projector

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # One writer. Under ZeRO-3 the live weights are shards (numel 0); the DeepSpeed
        # checkpoint holds the projector then and restores it itself.
        if state.is_world_process_zero and all(p.numel() for p in self.projector.parameters()):
            self.projector.save(Path(args.output_dir) / f"checkpoint-{state.global_step}")


def restore_projector(projector: Any, checkpoint: str | None) -> None:
    """On resume: the projector as it was in the checkpoint (the Trainer restores only the LoRA)."""
    from ..models.face_tokens import FaceProjector

    if checkpoint and projector is not None and (Path(checkpoint) / "face_projector.safetensors").exists():
        projector.load_state_dict(FaceProjector.load(checkpoint).state_dict())


def inherited_projector(recipe: Recipe) -> Path | None:
    """The folder whose face projector this run continues: the adapter's, else the base model folder's (a
    model trained in full with face tokens keeps its projector beside its weights)."""
    for folder in (recipe.adapter, recipe.model):
        if folder and (Path(folder) / "face_projector.safetensors").exists():
            return Path(folder)
    return None


def uses_face_tokens(recipe: Recipe) -> bool:
    """Face tokens are on by the recipe, or because the adapter or model being trained on has a projector."""
    return recipe.face_tokens.enabled or inherited_projector(recipe) is not None


def build_model(recipe: Recipe) -> tuple[Any, Any, Any, Any]:
    """(peft model, processor, projector or None, feature extractor or None), ready to train."""
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

    from ..models.face_tokens import FaceFeatureExtractor, FaceProjector, FaceTokenLayout, attach_face_tokens
    from ..models.loading import load_model

    if recipe.make_tiny_model and not (Path(recipe.model) / "config.json").exists():
        from ..tiny import make_tiny_model

        family, _, size = recipe.make_tiny_model.partition(":")  # qwen2_5_vl, or qwen2_5_vl:mini (tiny.SIZES)
        make_tiny_model(recipe.model, family, size=size or "tiny")
    device = placement(recipe)
    loaded = load_model(recipe.model, dtype=recipe.dtype, device=device, quantization=recipe.quantization)
    model = loaded.model
    if recipe.quantization:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe.gradient_checkpointing)
    if recipe.finetune not in ("lora", "full"):
        raise ValueError(f"finetune {recipe.finetune!r}: expected lora or full")
    source = inherited_projector(recipe)
    projector = FaceProjector.load(source, device=loaded.device).train() if source is not None else None
    if recipe.finetune == "full":
        if recipe.adapter or recipe.quantization:
            raise ValueError("finetune: full trains the model's own weights: no adapter, no quantization")
        model.requires_grad_(True)
        model.train()
    elif recipe.adapter:  # continue training a saved adapter (GRPO after SFT)
        model = PeftModel.from_pretrained(model, recipe.adapter, is_trainable=True)
    else:
        lora = recipe.lora
        config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                            target_modules=lora.target_modules, modules_to_save=lora.modules_to_save,
                            task_type="CAUSAL_LM")  # fmt: skip
        model = get_peft_model(model, config)
    features = None
    if uses_face_tokens(recipe):
        ft = recipe.face_tokens
        layout = projector.config.layout if projector is not None else FaceTokenLayout(ft.num_tokens)
        encoder = projector.config.encoder if projector is not None else ft.encoder
        pretrained = projector.config.encoder_pretrained if projector is not None else ft.pretrained
        features = FaceFeatureExtractor(layout, encoder, pretrained, device=str(loaded.device))
        projector = projector or features.new_projector(loaded.hidden_size).to(loaded.device)
        attach_face_tokens(model, projector)  # after peft: the projector stays fully trainable
        projector.requires_grad_(ft.train_projector)
    return model, loaded.processor, projector, features


def placement(recipe: Recipe) -> str | None:
    """Where to load the model. Under `accelerate launch` (LOCAL_RANK set) the Trainer (DDP) or
    DeepSpeed places it, so it loads on the CPU, except 4/8-bit weights, which bitsandbytes
    must put on this process's own GPU. Otherwise: the default device (a GPU if there is one)."""
    if recipe.trainer.get("use_cpu"):
        return "cpu"
    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank is None:
        return None
    return f"cuda:{local_rank}" if recipe.quantization else "cpu"


def save_artefact(trainer: Any, projector: Any, out: Path, recipe: Recipe | None = None) -> Path:
    """The adapter folder `analyze --adapter` loads: the LoRA, the face projector when there is one, and a
    model card that says what was trained on what (replacing peft's empty template). A model trained in
    full is saved whole instead (`save_full_model`).

    Every process calls this (under ZeRO-3 the weights are gathered from all of them); only
    the main process writes.
    """
    if recipe is not None and recipe.finetune == "full":
        return save_full_model(trainer, projector, out, recipe)
    trainer.save_model(str(out))  # the LoRA (gathered under ZeRO-3), written by the main process
    if recipe is not None and trainer.is_world_process_zero():
        (out / "README.md").write_text(adapter_card(recipe, trainer.state), encoding="utf-8")
    if projector is not None:
        state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
        if trainer.is_world_process_zero():
            prefix = "face_projector."
            weights = {k.split(prefix, 1)[1]: v for k, v in state.items() if prefix in k}
            projector.save(out, state_dict=weights)
    trainer.accelerator.wait_for_everyone()
    return out


def save_full_model(trainer: Any, projector: Any, out: Path, recipe: Recipe) -> Path:
    """A whole checkpoint folder (what `from_pretrained` and vLLM load): the weights without the face
    projector (it is not part of the Qwen-VL architecture), the processor, and the projector in its own files
    beside them. Single-process (the CPU recipes that train in full)."""
    from ..models.face_tokens import vision_language_core
    from ..models.loading import write_weight_index

    model = trainer.accelerator.unwrap_model(trainer.model)
    core = vision_language_core(model)
    attached = core._modules.pop("face_projector", None)  # out of the state dict while the weights are written
    try:
        model.save_pretrained(str(out))
    finally:
        if attached is not None:
            core.face_projector = attached
    trainer.processing_class.save_pretrained(str(out))
    if projector is not None:
        projector.save(out)
        write_weight_index(out)  # so that vLLM loads the weights, not the projector beside them
    (out / "README.md").write_text(adapter_card(recipe, trainer.state), encoding="utf-8")
    return out


def adapter_card(recipe: Recipe, state: Any) -> str:
    """The adapter's model card: base model, data (path, SHA-256, examples), recipe settings, steps, the last
    logged figures (the trainer's log history), the emoreason version."""
    import datetime

    from .. import __version__

    fingerprint_path = recipe.output_dir / "fingerprint.json"
    fingerprint = json.loads(fingerprint_path.read_text()) if fingerprint_path.is_file() else {}
    logged = [h for h in state.log_history if "loss" in h or "reward" in h]
    last = logged[-1] if logged else {}
    lora = recipe.lora
    full = recipe.finetune == "full"
    lines = [
        f"# emoreason {recipe.stage.upper()} {'model (every weight trained)' if full else 'adapter'}",
        "",
        f"- Base model: `{recipe.model}`" + (f", continuing the adapter `{recipe.adapter}`" if recipe.adapter else ""),
        f"- Data: `{recipe.train_file}` (SHA-256 {fingerprint.get('data_sha256', '?')[:16]}...), face mode "
        f"{recipe.face_mode}, labels {recipe.labels or 'all 8'}",
        "- Trained in full (no LoRA)"
        if full
        else f"- LoRA: r {lora.r}, alpha {lora.alpha}, dropout {lora.dropout}, on {', '.join(lora.target_modules)}"
        + (f"; trained in full: {', '.join(lora.modules_to_save)}" if lora.modules_to_save else ""),
        f"- Face tokens: {'on' if uses_face_tokens(recipe) else 'off'}",
    ]
    if recipe.stage == "grpo":
        lines.append(f"- Rewards: {recipe.rewards} ({recipe.reward_reading} reading)")
    lines += [
        f"- Trainer: {json.dumps(recipe.trainer, sort_keys=True)}",
        f"- Steps: {state.global_step} (epoch {round(float(state.epoch or 0), 3)})",
        f"- Last logged: {json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in last.items()})}",
        f"- Written by emoreason {__version__} on {datetime.date.today().isoformat()}; the full recipe is "
        "`recipe.json` beside the run, the log history `trainer_state.json` in its checkpoints.",
        "",
        "Load it with `emoreason analyze IMAGE --backend transformers --model THIS_FOLDER`."
        if full
        else "Load it with `emoreason analyze IMAGE --backend transformers --model BASE --adapter THIS_FOLDER`.",
        "",
    ]
    return "\n".join(lines)


def prepared_dataset(recipe: Recipe, args: Any, require_description: bool) -> Any:
    """The training examples; under several processes (`args`: the trainer's arguments) the
    main one prepares them and the others then read its cache (prepare.py): the front-end runs once."""
    from ..data.converters import convert
    from .prepare import prepare_examples

    records, errors = convert(recipe.train_file)
    with args.main_process_first(desc="preparing the training examples"):
        dataset, problems = prepare_examples(
            records,
            recipe.output_dir / "prepared",
            face_mode=recipe.face_mode,
            labels=recipe.labels,
            face_tokens=uses_face_tokens(recipe),
            require_description=require_description,
        )
    skipped = errors + problems
    if skipped and args.process_index == 0:
        report = recipe.output_dir / "skipped_records.txt"
        report.write_text("\n".join(map(str, skipped)) + "\n")
        print(f"{len(skipped)} records skipped (reasons in {report})")
    if dataset is None:
        raise ValueError(
            f"{recipe.train_file}: no usable training example (see {recipe.output_dir}/skipped_records.txt)"
        )
    if recipe.class_balance:
        from .prepare import class_balanced_indices

        dataset = dataset.select(class_balanced_indices(dataset["emotion"], seed=int(recipe.trainer.get("seed", 0))))
    return dataset


def last_checkpoint(output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None


def run_sft(recipe: Recipe) -> Path:
    """Train; returns the adapter folder (`finetune: full`: the model folder)."""
    from trl import SFTTrainer

    from .collator import SFTCollator

    check_and_record_run(recipe, has_checkpoint=last_checkpoint(recipe.output_dir) is not None)
    (recipe.output_dir / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2))
    args = trainer_config(recipe)
    dataset = prepared_dataset(recipe, args, require_description=True)
    resume = last_checkpoint(recipe.output_dir)
    # The Trainer restores a checkpoint's weights with a raw load_state_dict, which matches none of a Qwen-VL's
    # keys (saved in the hub layout, `visual.*`; held as `model.visual.*`: transformers#43701), silently: a
    # full fine-tune would go on from its random start with the checkpoint's optimizer and schedule. Load them
    # as from_pretrained does; the Trainer still restores the optimizer, schedule and RNG. (A LoRA resumes
    # through peft's load_adapter, which is not affected.)
    full_resume = resume and recipe.finetune == "full"
    model, processor, projector, features = build_model(replace(recipe, model=resume) if full_resume else recipe)
    restore_projector(projector, resume)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=SFTCollator(processor, projector, features, face_dropout=recipe.face_dropout),
        processing_class=processor,
        callbacks=[ProjectorCheckpoints(projector)] if projector is not None else None,
    )
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_state()  # output_dir/trainer_state.json: the whole log, with the run's closing summary
    folder = "model" if recipe.finetune == "full" else "adapter"
    return save_artefact(trainer, projector, recipe.output_dir / folder, recipe)
