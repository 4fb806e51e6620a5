"""Ship a trained emoreason-mini into the package: `make mini-ship` (after `make train-mini` and `make bench-mini`).

The release is what a deployment runs: the SFT model (trained in full) as the base, in bfloat16,
with its face projector, and the GRPO adapter (LoRA + face projector) in `adapter/`, also in
bfloat16 (loading upcasts to float32 on a CPU). Its MODEL_CARD.md is written from the run
itself: the data and its counts, the split rule, both recipes, steps and wall time, the learning
and reward curves from the trainers' logs, the loop round's figures, and bench/mini.py's figures
when the bench ran on this run's models.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from ..faithfulness import stated_probabilities
from ..models.loading import MINI_MODEL, write_weight_index

PROJECTOR_FILES = ("face_projector.json", "face_projector.safetensors")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


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
    model.config.use_cache = True  # training turned it off; generation wants the KV cache
    model.save_pretrained(dest)
    AutoProcessor.from_pretrained(sft_model).save_pretrained(dest)
    adapter = dest / "adapter"
    adapter.mkdir()
    # The base's projector (SFT) and the adapter's (GRPO went on training it); the LoRA and both projectors in
    # bf16 like the base. The adapter keeps only what loading it reads (the tokenizer and processor are the base's).
    copies = [(sft_model, dest, PROJECTOR_FILES), (grpo_adapter, adapter, ADAPTER_FILES + PROJECTOR_FILES)]
    for source, target, names in copies:
        for name in names:
            if not (source / name).is_file():
                continue
            if name.endswith(".safetensors"):
                save_file({k: v.to(torch.bfloat16) for k, v in load_file(source / name).items()}, target / name)
            else:
                shutil.copy(source / name, target / name)
    write_weight_index(dest)  # vLLM loads model.safetensors only, not the projector beside it
    (dest / "README.md").unlink(missing_ok=True)
    (dest / "MODEL_CARD.md").write_text(model_card(loop_dir, last, dest, bench), encoding="utf-8")
    return dest


def _trainer_log(run_dir: Path) -> list[dict[str, Any]]:
    """The trainer's log history: the finished run's (its closing summary, steps and runtime, is in no
    checkpoint, which are written before it), else its last checkpoint's."""
    if (run_dir / "trainer_state.json").is_file():
        return json.loads((run_dir / "trainer_state.json").read_text())["log_history"]
    states = sorted(run_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    return json.loads(states[-1].read_text())["log_history"] if states else []


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def _count(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()) if path.is_file() else 0


def model_card(loop_dir: Path, last: dict[str, Any], dest: Path, bench: str | Path | None) -> str:
    """MODEL_CARD.md: what the model is, its data and split, recipe, curves and figures, how to use it."""
    round_dir = Path(last["sft_adapter"]).parent.parent
    grpo = json.loads((round_dir / "grpo" / "recipe.json").read_text())
    # the rewards GRPO trained with: a reward at weight 0 adds nothing to the advantages, so neither the recipe
    # line nor the curves name it
    rewards = {name: weight for name, weight in grpo["rewards"].items() if weight}
    sections = [
        _card_header(dest),
        _card_data(last, round_dir),
        _card_recipe(round_dir, last, grpo, rewards),
        _card_curves(round_dir, rewards),
        _card_figures(bench, {Path(last["sft_adapter"]).resolve(), dest.resolve()}),
        _card_use(loop_dir),
    ]
    return "\n\n".join(sections) + "\n"


def _card_header(dest: Path) -> str:
    # the shape from the shipped config and the count from the weights, so the card cannot describe another size
    from safetensors import safe_open

    config = json.loads((dest / "config.json").read_text())
    text, vision = config["text_config"], config["vision_config"]
    with safe_open(dest / "model.safetensors", "pt") as weights:
        params = sum(math.prod(weights.get_slice(k).get_shape()) for k in weights.keys())
    heads = text["num_attention_heads"]
    return (
        "# emoreason-mini\n\n"
        f"A {params / 1e6:.1f}M-parameter Qwen2.5-VL-architecture model (text: hidden {text['hidden_size']}, "
        f"{text['num_hidden_layers']} layers, {heads} heads of {text['hidden_size'] // heads}, MLP "
        f"{text['intermediate_size']}; vision: {vision['depth']} layers of {vision['hidden_size']}; a byte-level "
        f"BPE vocabulary of {text['vocab_size']} trained offline on emoreason's prompts and analyses; "
        "`emoreason.tiny.SIZES['mini']`) that writes FACS analyses of a face. Trained on a 2-core CPU machine "
        "from random initialisation with emoreason's own commands (`make train-mini`). Weights in bfloat16: the "
        f"base (the SFT model) and `adapter/` (the GRPO LoRA and its face projector), {_size_mb(dest):.1f} MB in all."
    )


def _card_data(last: dict[str, Any], round_dir: Path) -> str:
    total = last["sft_records"] + last["pool_before"]
    # `data synth --no-prior-numbers` states no probability: ask the texts themselves, with the invariants' reader
    sft_file = round_dir / "sft.jsonl"
    lines = sft_file.read_text(encoding="utf-8").splitlines() if sft_file.is_file() else []
    stated = any(stated_probabilities(json.loads(line).get("description") or "") for line in lines if line.strip())
    impression = (
        "with the expression model's probability"
        if stated
        else "by name only, without the expression model's probability (`data synth --no-prior-numbers`)"
    )
    return "\n".join([
        "## Data and split",
        "",
        "- FER2013 (research use only; 48x48 grey faces): Training's `vlm` split (15% of the Training faces by the "
        "SHA-1 of the file name, `training/face_model.split_of`; the face model whose prior and face tokens the "
        "prompts carry never trained on or selected with them) and PublicTest minus the 350 development faces. "
        "The development faces (`fer2013-dev`) were never used for training or for any choice.",
        f"- `emoreason data synth` explained {last['sft_records']} of these {total} faces with the embedded engine "
        f"(the gold emotion as the answer, kept only where the reasoning supports it: the detected AUs do, or the "
        f"text says that the whole-face impression outweighs them); the other "
        f"{last['pool_before']} are "
        f"the pool. GRPO trains on all {total} (rewards need labels, not text). The texts give the whole-face "
        f"impression {impression}.",
        "- FER2013 has no AU labels: the AU reward is off. The detector's AUs are in the prompt already; the "
        "faithfulness reward checks the text against them.",
    ])  # fmt: skip


def _card_recipe(round_dir: Path, last: dict[str, Any], grpo: dict[str, Any], rewards: dict[str, float]) -> str:
    sft = json.loads((round_dir / "sft" / "recipe.json").read_text())
    st, gt = sft["trainer"], grpo["trainer"]
    sft_end = next((h for h in reversed(_trainer_log(round_dir / "sft")) if "train_runtime" in h), {})
    grpo_end = next((h for h in reversed(_trainer_log(round_dir / "grpo")) if "train_runtime" in h), {})
    trained = (grpo.get("face_tokens") or {}).get("train_projector", True)
    projector = " and the face projector" if trained else " (the face projector held as SFT left it)"
    epochs = st.get("num_train_epochs", 1)
    epochs_text = "one epoch" if epochs == 1 else f"{epochs:g} epochs"
    return "\n".join([
        "## Recipe (training/recipes/mini/)",
        "",
        f"- SFT: every weight, {sft_end.get('step', '?')} steps ({epochs_text}) of "
        f"{st.get('per_device_train_batch_size')} analyses, learning rate {st.get('learning_rate')} "
        f"({st.get('lr_scheduler_type')}), face tokens from "
        f"`{sft['face_tokens']['encoder']}` ({sft['face_tokens']['num_tokens']} tokens), seed {st.get('seed')}; "
        f"{_duration(sft_end.get('train_runtime'))}.",
        f"- GRPO: a LoRA (r {grpo['lora']['r']}, alpha {grpo['lora']['alpha']}, on "
        f"{', '.join(grpo['lora']['target_modules'])}){projector}, {grpo_end.get('step', '?')} steps of "
        f"{gt.get('per_device_train_batch_size')} completions ({gt.get('num_generations')} per face, at most "
        f"{gt.get('max_completion_length')} tokens, temperature {gt.get('temperature')}), rewards {rewards} "
        f"({grpo['reward_reading']} reading), learning rate {gt.get('learning_rate')}, seed {gt.get('seed')}; "
        f"{_duration(grpo_end.get('train_runtime'))}.",
        f"- Loop round: the GRPO model explained {last.get('explained', last['pool_before'])} pool faces; the "
        f"filter kept {last['accepted']} (acceptance {last['acceptance_rate']:.3f}), the SFT set of a next round.",
    ])  # fmt: skip


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "wall time not recorded"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _card_curves(round_dir: Path, rewards: dict[str, float]) -> str:
    losses = [(h["step"], h["loss"]) for h in _trainer_log(round_dir / "sft") if "loss" in h]
    logged = [h for h in _trainer_log(round_dir / "grpo") if "reward" in h]
    lines = [
        "## Learning curves",
        "",
        "SFT loss (step: loss): " + ", ".join(f"{s}: {v:.3f}" for s, v in losses[:: max(1, len(losses) // 12)]),
        "",
        "GRPO, every few logged steps (step: mean total reward; the mean of each reward it trained with):",
        "",
    ]
    for h in logged[:: max(1, len(logged) // 10)] + logged[-1:]:
        parts = ", ".join(f"{n} {h.get(f'rewards/{n}/mean', float('nan')):.2f}" for n in rewards)
        lines.append(f"- {h['step']}: {h['reward']:.3f} ({parts})")
    return "\n".join(lines)


# The model card's figure columns: (header, bench/mini.py key), one list so the two cannot drift apart.
_FIGURE_COLUMNS = [("accuracy", "accuracy"), ("macro-F1", "macro_f1"), ("format", "format_valid"),
                   ("consistency", "consistency"), ("faithful", "faithful"), ("AUs faithful", "faithful_aus"),
                   ("intensities right", "intensities_right"), ("mean reward", "reward"),
                   ("answer = prior's", "agrees_with_prior")]  # fmt: skip


def _card_figures(bench: str | Path | None, measured: set[Path]) -> str:
    lines = ["## Figures (bench/mini.py, the 350 development faces)", ""]
    figures = json.loads(Path(bench).read_text()) if bench and Path(bench).is_file() else None
    if figures and Path(figures.get("model", "")).resolve() not in measured:
        figures = None  # the bench ran on other models: its figures are not this release's
    if not figures:
        return "\n".join([*lines, "Not measured yet: run `make bench-mini`, then `make mini-ship` again."])
    lines += [f"Measured on {figures.get('machine', '?')}, {figures.get('date', '?')}, in one run.", "",
              "| system | " + " | ".join(h for h, _ in _FIGURE_COLUMNS) + " | tokens | cut off |",
              "|---" * (len(_FIGURE_COLUMNS) + 3) + "|"]  # fmt: skip
    for name, row in figures["systems"].items():
        keys = [k for _, k in _FIGURE_COLUMNS]
        cells = [f"{row[k]:.3f}" if row.get(k) is not None else "-" for k in keys]
        cells += [f"{row['tokens']:.1f}" if "tokens" in row else "-", str(row.get("cut_off", "-"))]
        faces = f" ({row['faces']} faces)" if "faces" in row else ""
        lines.append(f"| {name}{faces} | {' | '.join(cells)} |")
    lines += [
        "",
        "faithful: no claim of the text breaks an invariant of emoreason/faithfulness.py (an AU cited as "
        "present was measured present, one denied was not, no 'at rest' on an active face, the impression "
        "named or its probability is the expression model's, an AU's intensity word within one FACS letter of "
        "the measured intensity); AUs faithful: the AU invariants alone (cited, denied, at rest, intensity); "
        "intensities right: the share of the intensities the texts give measured AUs that keep that invariant.",
        "",
        "Speed: " + ", ".join(f"{k} {v}" for k, v in figures.get("speed", {}).items()),
    ]
    ceiling = Path(bench).with_name("mini_ceiling.json") if bench else None
    if ceiling is not None and ceiling.is_file():  # bench/mini_ceiling.py: how far the mini's inputs go
        acc = json.loads(ceiling.read_text())["accuracy"]
        lines += ["", "What any reader of the mini's inputs reaches (bench/mini_ceiling.py: logistic regression "
                  "fit on the same training faces, best of three strengths chosen on dev): the prior's logits "
                  f"{acc['logits']:.3f}, the face tokens' features {acc['features']:.3f}, both {acc['both']:.3f}, "
                  f"against the prior's own answer {acc['prior']:.3f}."]  # fmt: skip
    return "\n".join(lines)


def _card_use(loop_dir: Path) -> str:
    return (
        "## Use\n\n"
        "It is the default of every VLM path: `emoreason analyze FACE.png --backend transformers` (no --model), "
        "`emoreason vllm-serve` (no --model: the base, and this adapter as the LoRA module `emoreason-mini`), "
        "`emoreason serve --backend vllm`, the demo on either. Reproduce it: `make train-mini && make bench-mini "
        f"&& make mini-ship` (the run lives in `{loop_dir}`)."
    )
