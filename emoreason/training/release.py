"""Ship a trained emoreason-mini into the package: `make mini-ship` (after `make train-mini` and `make bench-mini`).

The release is what a deployment runs: the SFT model (trained in full) as the base, in bfloat16,
with its face projector, and the GRPO adapter (LoRA + face projector) in `adapter/`, also in
bfloat16. Its MODEL_CARD.md is written from the run itself: the data files and their counts,
the split rule, both recipes, steps and wall time, the learning and reward curves from the
trainers' logs, the loop round's figures, and bench/mini.py's figures when the bench ran on this
run's models.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..models.loading import MINI_MODEL


def ship_mini(loop_dir: str | Path, dest: str | Path = MINI_MODEL, bench: str | Path | None = None) -> Path:
    """Copy the last round of `train loop` in `loop_dir` to `dest` (bf16) with its model card; returns dest."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForImageTextToText, AutoProcessor

    loop_dir, dest = Path(loop_dir), Path(dest)
    history = json.loads((loop_dir / "history.json").read_text())
    last = history[-1]
    sft_model, grpo_adapter = Path(last["sft_adapter"]), Path(last["grpo_adapter"])
    if not (sft_model / "config.json").is_file():
        raise ValueError(f"{sft_model}: not a model folder (the mini's SFT recipe trains in full: finetune: full)")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    model = AutoModelForImageTextToText.from_pretrained(sft_model, dtype=torch.bfloat16)
    model.save_pretrained(dest)
    AutoProcessor.from_pretrained(sft_model).save_pretrained(dest)
    for name in ("face_projector.json", "face_projector.safetensors"):
        if (sft_model / name).is_file():
            shutil.copy(sft_model / name, dest / name)
    adapter = dest / "adapter"
    adapter.mkdir()
    for f in grpo_adapter.iterdir():
        if f.name == "adapter_model.safetensors":  # LoRA weights in bf16, like the base
            save_file({k: v.to(torch.bfloat16) for k, v in load_file(f).items()}, adapter / f.name)
        elif f.is_file() and f.name != "README.md":
            shutil.copy(f, adapter / f.name)
    (dest / "README.md").unlink(missing_ok=True)
    (dest / "MODEL_CARD.md").write_text(model_card(loop_dir, last, dest, bench), encoding="utf-8")
    return dest


def _trainer_log(run_dir: Path) -> list[dict[str, Any]]:
    """The trainer's log history from the run's last checkpoint."""
    states = sorted(run_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    return json.loads(states[-1].read_text())["log_history"] if states else []


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def _count(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()) if path.is_file() else 0


def model_card(loop_dir: Path, last: dict[str, Any], dest: Path, bench: str | Path | None) -> str:
    round_dir = Path(last["sft_adapter"]).parent.parent
    sft_recipe = json.loads((round_dir / "sft" / "recipe.json").read_text())
    grpo_recipe = json.loads((round_dir / "grpo" / "recipe.json").read_text())
    sft_log, grpo_log = _trainer_log(round_dir / "sft"), _trainer_log(round_dir / "grpo")
    sft_end = next((h for h in reversed(sft_log) if "train_runtime" in h), {})
    grpo_end = next((h for h in reversed(grpo_log) if "train_runtime" in h), {})
    losses = [(h["step"], h["loss"]) for h in sft_log if "loss" in h]
    rewards = [h for h in grpo_log if "reward" in h]
    data_dir = Path(sft_recipe["train_file"]).parent if "round-" not in sft_recipe["train_file"] else None
    lines = [
        "# emoreason-mini",
        "",
        "A 12.8M-parameter Qwen2.5-VL-architecture model (text: hidden 384, 6 layers, 6 heads of 64; vision: 4 "
        "layers of 192; byte-level BPE vocabulary trained offline on emoreason's prompts and analyses; "
        "`emoreason.tiny.SIZES['mini']`) that writes FACS analyses of a face. Trained on this 2-core CPU machine "
        "from random initialisation with emoreason's own commands (`make train-mini`). Weights in bfloat16: the "
        f"base (the SFT model) and `adapter/` (the GRPO LoRA and face projector), {_size_mb(dest):.1f} MB in all.",
        "",
        "## Data and split",
        "",
        "- FER2013 (research use only; 48x48 grey faces): Training's `vlm` split (15% of the Training faces by the "
        "SHA-1 of the file name, `training/face_model.split_of`; the face model whose prior and face tokens the "
        "prompts carry never trained on or selected with them) and PublicTest minus the 350 development faces. "
        "The development faces (`fer2013-dev`) were never used for training or for any choice.",
        f"- `emoreason data synth` explained {last['sft_records']} of these faces with the embedded engine (the "
        "gold emotion, kept only where the detected AUs support it); the other "
        f"{last['pool_before']} are the pool: GRPO trains on all {last['sft_records'] + last['pool_before']} "
        "(rewards need labels, not text).",
        "- FER2013 has no AU labels: the AU reward is off. The detector's AUs are in the prompt already; the "
        "faithfulness reward checks the text against them.",
        "",
        "## Recipe (training/recipes/mini/)",
        "",
        f"- SFT: every weight, {sft_end.get('step', '?')} steps, batch "
        f"{sft_recipe['trainer'].get('per_device_train_batch_size')}, learning rate "
        f"{sft_recipe['trainer'].get('learning_rate')} ({sft_recipe['trainer'].get('lr_scheduler_type')}), face "
        f"tokens from `{sft_recipe['face_tokens']['encoder']}` ({sft_recipe['face_tokens']['num_tokens']} tokens), "
        f"seed {sft_recipe['trainer'].get('seed')}; {sft_end.get('train_runtime', 0) / 60:.1f} min.",
        f"- GRPO: a LoRA (r {grpo_recipe['lora']['r']}, alpha {grpo_recipe['lora']['alpha']}, on "
        f"{', '.join(grpo_recipe['lora']['target_modules'])}) and the face projector, {grpo_end.get('step', '?')} "
        f"steps of {grpo_recipe['trainer'].get('per_device_train_batch_size')} completions "
        f"({grpo_recipe['trainer'].get('num_generations')} per face, at most "
        f"{grpo_recipe['trainer'].get('max_completion_length')} tokens), rewards {grpo_recipe['rewards']} "
        f"({grpo_recipe['reward_reading']}), learning rate {grpo_recipe['trainer'].get('learning_rate')}; "
        f"{grpo_end.get('train_runtime', 0) / 60:.1f} min.",
        f"- Loop round: the GRPO model explained {last.get('explained', last['pool_before'])} pool faces; the "
        f"filter kept {last['accepted']} (acceptance {last['acceptance_rate']:.3f}), the SFT set of a next round.",
        "",
        "## Learning curves",
        "",
        "SFT loss (step: loss): " + ", ".join(f"{s}: {v:.3f}" for s, v in losses[:: max(1, len(losses) // 12)]),
        "",
        "GRPO, every 10th logged step (step: total reward; emotion, format, consistency, faithfulness means):",
        "",
    ]
    for h in rewards[:: max(1, len(rewards) // 10)] + rewards[-1:]:
        parts = ", ".join(f"{n} {h.get(f'rewards/{n}/mean', float('nan')):.2f}"
                          for n in ("emotion", "format", "consistency", "faithfulness"))  # fmt: skip
        lines.append(f"- {h['step']}: {h['reward']:.3f} ({parts})")
    lines += ["", "## Figures (bench/mini.py, the 350 development faces)", ""]
    figures = json.loads(Path(bench).read_text()) if bench and Path(bench).is_file() else None
    measured = {Path(last["sft_adapter"]).resolve(), dest.resolve()}
    if figures and Path(figures.get("model", "")).resolve() not in measured:
        figures = None  # the bench ran on other models: its figures are not this release's
    if figures:
        lines.append(f"Measured on {figures.get('machine', '?')}, {figures.get('date', '?')}.")
        lines += ["", "| system | accuracy | macro-F1 | format | consistency | mean reward | tokens | cut off |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, row in figures["systems"].items():
            keys = ("accuracy", "macro_f1", "format_valid", "consistency")
            cells = [f"{row.get(k, float('nan')):.3f}" for k in keys]
            cells += [f"{row.get('reward', float('nan')):.3f}", f"{row.get('tokens', float('nan')):.1f}"]
            lines.append(f"| {name} | {' | '.join(cells)} | {row.get('cut_off', '-')} |")
        lines += ["", "Speed: " + ", ".join(f"{k} {v}" for k, v in figures.get("speed", {}).items())]
    else:
        lines.append("Not measured yet: run `make bench-mini`, then `make mini-ship` again.")
    lines += [
        "",
        "## Use",
        "",
        "It is the default of every VLM path: `emoreason analyze FACE.png --backend transformers` (no --model), "
        "`emoreason vllm-serve` (no --model: base + this adapter as the LoRA module `emoreason-mini`), "
        "`emoreason serve --backend vllm`, the demo. Reproduce: `make train-mini && make bench-mini && make "
        "mini-ship`.",
        "",
        f"Data files: {data_dir or round_dir}.",
        "",
    ]
    return "\n".join(lines)
