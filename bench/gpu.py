"""GPU questions in one run: generation throughput, a LoRA SFT step, a GRPO step, face-model training speed.

    python bench/gpu.py --out out/bench/gpu.json                 # on a CUDA machine (about 6 min on an H200)
    python bench/gpu.py --smoke --out out/bench/gpu-smoke.json   # CPU, the tiny model (the test suite runs this)

What only a GPU can answer, for Qwen2.5-VL-3B- and 7B-shaped models built from their published
configs (`CONFIGS`, copied from the hub's config.json) with random weights, so nothing is
downloaded:
- batched `generate` with the project's prompts (system + user message from
  `prompting.build_messages`, one 224 px face crop each) at batch 1, 8 and 32: new tokens/s
  and analyses/s (every analysis generates exactly `--new-tokens`: random weights never stop);
- one LoRA SFT step (the recipes' LoRA: r 16 on every projection of the language model) on a
  batch of 4 prompt+analysis pairs, the analyses written by the embedded engine: seconds and
  peak GPU memory;
- one GRPO step: 8 sampled completions for each of 2 prompts, rewards from `emoreason.rewards`
  (format, emotion, consistency), group-normalised advantages, the policy-gradient loss with
  the KL term against the LoRA-free base, backward and an optimiser step: the work of one trl
  GRPOTrainer step without its bookkeeping: seconds and peak GPU memory;
- the face model's training throughput (faces/s; `training/face_model.py`'s network, its
  augmentation, batch 256, random 48 px faces).
The face front-end is not needed: the observations are built here (AUs, prior) as the
front-end would give them.

The GPU machine has torch, transformers, peft, accelerate and timm, and no network. emoreason's
own modules used here import nothing more (numpy, PIL, jinja2, safetensors come with those).
Nothing has to be carried; trl is not needed (the GRPO step is written out below). Copy the
repository and run from its root: `python bench/gpu.py`.

Prints key=value lines as it goes and a final line of all of them; writes JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

# The published configs of Qwen/Qwen2.5-VL-3B-Instruct and -7B-Instruct (the fields that shape the model).
_VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, patch_size=14, spatial_merge_size=2,
               temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31], hidden_act="silu",
               in_channels=3)  # fmt: skip
_TEXT = dict(rms_norm_eps=1e-6, max_position_embeddings=128000,
             rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]})  # fmt: skip


def _published(hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, vocab: int, tie: bool) -> dict:
    return dict(text=dict(_TEXT, hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                          num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=vocab),
                vision=dict(_VISION, out_hidden_size=hidden), tie_word_embeddings=tie)  # fmt: skip


CONFIGS = {
    "qwen2.5-vl-3b": _published(2048, 11008, 36, 16, 2, 151936, tie=True),
    "qwen2.5-vl-7b": _published(3584, 18944, 28, 28, 4, 152064, tie=False),
}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # the recipes' LoRA
FIGURES: dict[str, float | int | str] = {}


def report(**figures: float | int | str) -> None:
    FIGURES.update(figures)
    print(" ".join(f"{k}={round(v, 4) if isinstance(v, float) else v}" for k, v in figures.items()), flush=True)


def observations(n: int, seed: int = 0) -> list:
    """Faces as the front-end would describe them: AU intensities, a prior, a 224 px crop (random pixels)."""
    from emoreason.facs import DETECTED_AUS
    from emoreason.labels import BASIC7
    from emoreason.types import AUActivation, FaceObservation

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        aus = [AUActivation(code, float(x), bool(x >= 1.5), float(min(1.0, x / 4)))
               for code, x in zip(DETECTED_AUS, np.round(rng.gamma(1.0, 0.8, len(DETECTED_AUS)), 1))]  # fmt: skip
        p = rng.dirichlet(np.ones(len(BASIC7)))
        out.append(FaceObservation(index=0, box=(0.0, 0.0, 224.0, 224.0), detection_score=1.0, source="full", aus=aus,
                                   expression_prior={e: float(v) for e, v in zip(BASIC7, p)},
                                   aligned_crop=rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)))  # fmt: skip
    return out


def teacher_texts(obs: list) -> list[tuple[str, str]]:
    """(emotion, analysis) pairs written by the embedded engine: the SFT targets."""
    from emoreason.reasoning.embedded import EmbeddedBackend

    engine = EmbeddedBackend()
    out = []
    for o in obs:
        emotion = max(o.expression_prior, key=o.expression_prior.get)
        out.append((emotion, f"<think>{engine.write_reasoning(o, emotion)}</think>\n<answer>{emotion}</answer>"))
    return out


def build(name: str | None, device: str, dtype: torch.dtype):
    """(model, processor): a random full-size model from CONFIGS, or the project's tiny model (name None)."""
    from transformers import AutoModelForImageTextToText, Qwen2_5_VLConfig

    from emoreason import tiny

    tokenizer = tiny.build_tokenizer()
    processor = tiny._processor("qwen2_5_vl", tokenizer)
    processor.image_processor.size = {"shortest_edge": 56 * 56, "longest_edge": 224 * 224}  # a 224 px face crop
    if name is None:
        config = tiny._config("qwen2_5_vl", tokenizer)
    else:
        spec = CONFIGS[name]
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in tiny.SPECIAL_TOKENS}
        text = dict(spec["text"], bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                    pad_token_id=ids["<|endoftext|>"], tie_word_embeddings=spec["tie_word_embeddings"])  # fmt: skip
        config = Qwen2_5_VLConfig(text_config=text, vision_config=spec["vision"],
                                  tie_word_embeddings=spec["tie_word_embeddings"],
                                  image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                                  vision_start_token_id=ids["<|vision_start|>"],
                                  vision_end_token_id=ids["<|vision_end|>"])  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):  # parameters are created (and randomly initialised) on the GPU: seconds, not minutes
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype)
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    return model.eval(), processor


def prompt_inputs(processor, obs: list, answers: list[str] | None = None, device: str = "cpu"):
    """The processor's batch for these faces' prompts (with the answers appended for training)."""
    from PIL import Image

    from emoreason.prompting import build_messages

    texts, images = [], []
    for i, o in enumerate(obs):
        messages, prompt_images = build_messages(o)
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        texts.append(text + (answers[i] + "<|im_end|>" if answers else ""))
        images.append([Image.fromarray(x) for x in prompt_images.images])
    return processor(text=texts, images=images, return_tensors="pt", padding=True).to(device)


def peak_gb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bench_generate(tag: str, model, processor, device: str, batches: list[int], new_tokens: int) -> None:
    for batch in batches:
        inputs = prompt_inputs(processor, observations(batch, seed=batch), device=device)
        kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        with torch.inference_mode():
            model.generate(**inputs, **dict(kwargs, max_new_tokens=4, min_new_tokens=4))  # warm-up
            sync(device)
            t0 = time.perf_counter()
            out = model.generate(**inputs, **kwargs)
            sync(device)
        seconds = time.perf_counter() - t0
        generated = (out.shape[1] - inputs["input_ids"].shape[1]) * batch
        report(**{f"{tag}_gen_b{batch}_tokens_per_s": generated / seconds,
                  f"{tag}_gen_b{batch}_analyses_per_s": batch / seconds,
                  f"{tag}_gen_prompt_tokens": int(inputs["input_ids"].shape[1])})  # fmt: skip


def with_lora(model):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def bench_sft(tag: str, model, processor, device: str, batch: int = 4) -> None:
    obs = observations(batch, seed=1)
    answers = [text for _, text in teacher_texts(obs)]
    inputs = prompt_inputs(processor, obs, answers, device=device)
    labels = inputs["input_ids"].clone()
    labels[inputs["attention_mask"] == 0] = -100
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    seconds = []
    for _ in range(2):  # the first step pays for allocation and kernel selection; the second is the figure
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync(device)
        t0 = time.perf_counter()
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        seconds.append(time.perf_counter() - t0)
    model.eval()
    report(**{f"{tag}_sft_step_s": seconds[-1], f"{tag}_sft_peak_gb": peak_gb(device),
              f"{tag}_sft_tokens": int(inputs["input_ids"].numel()), f"{tag}_sft_loss": loss.item()})  # fmt: skip


def bench_grpo(tag: str, model, processor, device: str, prompts: int = 2, generations: int = 8,
               new_tokens: int = 128, beta: float = 0.04) -> None:  # fmt: skip
    """One GRPO step as trl does it: sample a group per prompt, reward, normalise within the group,
    policy-gradient loss on the completion tokens plus beta * KL to the reference (the base without LoRA)."""
    from emoreason.rewards import consistency_reward, emotion_reward, format_reward

    obs = observations(prompts, seed=2)
    gold = [emotion for emotion, _ in teacher_texts(obs)]
    inputs = prompt_inputs(processor, [o for o in obs for _ in range(generations)], device=device)
    prompt_len = inputs["input_ids"].shape[1]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():  # not inference_mode: the sampled ids feed the training forward pass
        out = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=True, temperature=1.0)
    sync(device)
    rollout_s = time.perf_counter() - t0
    completions = processor.batch_decode(out[:, prompt_len:], skip_special_tokens=True)
    solutions = [g for g in gold for _ in range(generations)]

    def column(values: list) -> torch.Tensor:  # None (no reading) scores 0
        return torch.tensor([v or 0.0 for v in values], dtype=torch.float32)

    rewards = (0.5 * column(format_reward(completions)) + column(emotion_reward(completions, emotion=solutions))
               + 0.5 * column(consistency_reward(completions)))  # fmt: skip
    grouped = rewards.view(prompts, generations)
    advantages = ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)).flatten()
    full = dict(inputs)
    full["input_ids"] = out.clone()
    full["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(out[:, prompt_len:])], dim=1)
    for key, value in inputs.items():  # per-token columns (mm_token_type_ids): the completion is text, 0
        if key not in ("input_ids", "attention_mask") and value.dim() == 2 and value.shape[1] == prompt_len:
            full[key] = torch.cat([value, torch.zeros_like(out[:, prompt_len:])], dim=1)
    completion_mask = full["attention_mask"][:, prompt_len:].float()

    def token_logprobs(logits: torch.Tensor) -> torch.Tensor:
        logits = logits[:, prompt_len - 1 : -1].float()
        return torch.gather(logits.log_softmax(-1), 2, out[:, prompt_len:, None]).squeeze(-1)

    model.train()
    with torch.no_grad(), model.disable_adapter():  # the reference policy: the base model
        ref = token_logprobs(model(**full).logits)
    logp = token_logprobs(model(**full).logits)
    ratio = torch.exp(logp - logp.detach())  # 1, with the gradient of logp (one optimisation step per batch)
    kl = torch.exp(ref - logp) - (ref - logp) - 1
    per_token = -(ratio * advantages.to(logp.device)[:, None]) + beta * kl
    loss = ((per_token * completion_mask).sum(1) / completion_mask.sum(1).clamp(min=1)).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    sync(device)
    model.eval()
    report(**{f"{tag}_grpo_step_s": time.perf_counter() - t0, f"{tag}_grpo_rollout_s": rollout_s,
              f"{tag}_grpo_completions": prompts * generations, f"{tag}_grpo_peak_gb": peak_gb(device),
              f"{tag}_grpo_mean_reward": float(rewards.mean())})  # fmt: skip


def bench_face_model(device: str, steps: int, batch: int = 256) -> None:
    """The face model's training throughput: forward, backward and SGD on augmented random 48 px faces."""
    from emoreason.face.face_model import FaceNetConfig, build_face_net
    from emoreason.training.face_model import FaceModelRecipe, augment

    recipe = FaceModelRecipe()
    net = build_face_net(FaceNetConfig()).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    generator = torch.Generator().manual_seed(0)
    faces = torch.randn(batch, 1, 48, 48)
    targets = torch.randint(0, 7, (batch,), device=device)
    net.train()
    for step in range(steps + 2):  # two warm-up steps
        if step == 2:
            sync(device)
            t0 = time.perf_counter()
        x = augment(faces, recipe, generator).to(device).contiguous(memory_format=torch.channels_last)
        loss = torch.nn.functional.cross_entropy(net(x), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync(device)
    report(face_model_train_faces_per_s=steps * batch / (time.perf_counter() - t0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, the tiny model, small batches (a test)")
    parser.add_argument("--models", default="qwen2.5-vl-3b,qwen2.5-vl-7b")
    parser.add_argument("--new-tokens", type=int, default=128, help="tokens per analysis (ours are ~100-150)")
    parser.add_argument("--out", default="out/bench/gpu.json")
    args = parser.parse_args()
    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench/gpu.py: no CUDA device here (use --smoke for the CPU check)")
    report(device=torch.cuda.get_device_name() if device == "cuda" else f"cpu ({platform.machine()})",
           torch=torch.__version__)  # fmt: skip
    dtype = torch.float32 if args.smoke else torch.bfloat16
    runs = [(None, "tiny")] if args.smoke else [(name, name.replace(".", "").replace("-", "_"))
                                                for name in args.models.split(",")]  # fmt: skip
    for name, tag in runs:
        t0 = time.perf_counter()
        model, processor = build(name, device, dtype)
        report(**{f"{tag}_build_s": time.perf_counter() - t0,
                  f"{tag}_params_b": sum(p.numel() for p in model.parameters()) / 1e9})  # fmt: skip
        bench_generate(tag, model, processor, device, [1, 2] if args.smoke else [1, 8, 32],
                       8 if args.smoke else args.new_tokens)  # fmt: skip
        model = with_lora(model)
        if not args.smoke:
            model.gradient_checkpointing_enable()  # as the recipes train
            model.enable_input_require_grads()
        bench_sft(tag, model, processor, device, batch=2 if args.smoke else 4)
        bench_grpo(tag, model, processor, device, prompts=1 if args.smoke else 2,
                   generations=2 if args.smoke else 8, new_tokens=8 if args.smoke else args.new_tokens)  # fmt: skip
        del model
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    bench_face_model(device, steps=2 if args.smoke else 50, batch=32 if args.smoke else 256)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(FIGURES, indent=2))
    print(" ".join(f"{k}={round(v, 4) if isinstance(v, float) else v}" for k, v in FIGURES.items()))


if __name__ == "__main__":
    main()
