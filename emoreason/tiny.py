"""Build a tiny random Qwen-VL model, tokenizer and processor offline (`emoreason make-tiny-model`).

No model hub can be reached from the machines tests and CI run on, so the tests build what a
hub checkpoint would contain: a byte-level BPE tokenizer trained on emoreason's own text
(the rendered prompts and embedded-engine analyses, so prompts tokenise compactly), the
Qwen special tokens in Qwen's order, a Qwen-style chat template, a real Qwen2-VL image and
video processor with small pixel limits, and a random model of the chosen family. The result
is an ordinary checkpoint folder: `AutoModelForImageTextToText.from_pretrained(path)` and
vLLM load it like the real ones.

It sits at the top of the package, not in `models/`: its tokenizer learns from the embedded
engine's analyses (`reasoning/`), and `models` stays below `reasoning` (tests/test_layers.py).

Sizes (`SIZES`): `tiny` has text hidden 128 with 4 heads of 32 (vLLM's CPU attention needs
head_dim >= 32), 2 layers and a 2-layer vision tower (tests, CI); `mini` has hidden 384, 6
layers of 6 heads of 64, MLP 768, a 4-layer vision tower and tied embeddings, 11.0M parameters,
the size emoreason-mini is trained at. mrope sections sum to head_dim / 2. A 112x112 face crop
becomes 16 visual tokens (8x8 patches of 14 px, merged 2x2).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from .compat.torchvision_cpu import ensure_torchvision

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
# Qwen's own order, so the ids line up with the real vocabularies' special-token block layout.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
MIN_PIXELS = 56 * 56
MAX_PIXELS = 112 * 112


@dataclass(frozen=True)
class Size:
    """The shape of a built model. head_dim = hidden / heads must be >= 32 (vLLM's CPU attention);
    mrope (t, h, w) splits head_dim / 2 rotary frequencies."""

    hidden: int
    heads: int
    kv_heads: int
    layers: int
    intermediate: int
    mrope: tuple[int, int, int]
    vision_depth: int
    vision_hidden: int
    vision_heads: int
    vision_intermediate: int
    tie_embeddings: bool


SIZES = {
    # tests and CI: seconds to build, about a minute to teach
    "tiny": Size(128, 4, 2, 2, 256, (4, 6, 6), 2, 64, 2, 128, tie_embeddings=False),
    # emoreason-mini: small enough to train in full on 2 CPU cores in hours, 11.0M parameters
    # (25.5 MB shipped in bf16 with its GRPO adapter; MLP 768, was 1024 and 29 MB)
    "mini": Size(384, 6, 2, 6, 768, (8, 12, 12), 4, 192, 3, 512, tie_embeddings=True),
}


def training_corpus(n_faces: int = 400, seed: int = 0) -> list[str]:
    """Text the tokenizer is trained on: the prompts and analyses emoreason writes, plus labels."""
    from .facs import AU_CATALOGUE, DETECTED_AUS
    from .labels import EMOTIONS, label_aliases
    from .prompting import render_system, render_user
    from .reasoning.embedded import EmbeddedBackend
    from .types import AUActivation, FaceObservation

    rng = random.Random(seed)
    engine = EmbeddedBackend(use_prior=False)
    texts = [render_system()] + [f"{alias} {canon}" for alias, canon in label_aliases().items()]
    for i in range(n_faces):
        aus = []
        for code in DETECTED_AUS:
            intensity = round(max(0.0, rng.gauss(0.5, 1.5)), 1)
            aus.append(AUActivation(code, intensity, intensity >= 2.0, min(1.0, intensity / 4)))
        prior = {e: rng.random() for e in EMOTIONS[:7]}
        total = sum(prior.values())
        obs = FaceObservation(
            index=rng.randrange(3),
            box=(10.0, 20.0, 110.0, 130.0),
            detection_score=0.9,
            source="detector",
            aus=aus,
            expression_prior={k: v / total for k, v in prior.items()},
        )
        emotion = EMOTIONS[i % len(EMOTIONS)]
        think = engine.write_reasoning(obs, emotion, seed_extra=str(i))
        texts.append(render_user(obs, n_faces=1 + i % 3, labels=list(EMOTIONS[: 4 + i % 5])))
        texts.append(f"<think>{think}</think>\n<answer>{emotion}</answer>")
    texts += [f"AU{c} {au.name} ({au.region})" for c, au in AU_CATALOGUE.items()]
    return texts


def build_tokenizer(vocab_size: int = 3000, seed: int = 0):
    """A byte-level BPE in a PreTrainedTokenizerFast with Qwen's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from .prompting import PROMPT_DIR

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(training_corpus(seed=seed), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        model_max_length=4096,
        padding_side="left",  # decoder-only generation pads on the left
    )
    tokenizer.chat_template = (PROMPT_DIR / "qwen_vl_chat_template.jinja").read_text(encoding="utf-8")
    return tokenizer


def _processor(family: str, tokenizer):
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    patch = 16 if family == "qwen3_vl" else 14
    size = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=patch)
    if family == "qwen3_vl":
        from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

        video_processor = Qwen3VLVideoProcessor(size=size, patch_size=patch)
        return Qwen3VLProcessor(image_processor, tokenizer, video_processor, chat_template=tokenizer.chat_template)
    video_processor = Qwen2VLVideoProcessor(size=size, patch_size=patch)
    return Qwen2VLProcessor(image_processor, tokenizer, video_processor, chat_template=tokenizer.chat_template)


def _config(family: str, tokenizer, size: Size = SIZES["tiny"]):
    """The family's config at `size`: one text model and vision tower per family, the special tokens' ids."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads,
        max_position_embeddings=4096,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=size.tie_embeddings,
    )
    tokens = dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=size.tie_embeddings,
    )
    build = {"qwen3_vl": _qwen3_vl_config, "qwen2_5_vl": _qwen2_5_vl_config}.get(family, _qwen2_vl_config)
    return build(text, tokens, size)


def _qwen3_vl_config(text: dict, tokens: dict, size: Size):
    from transformers import Qwen3VLConfig

    # mrope splits each head's rotary half (head_dim / 2 = 16 frequencies) into t, h, w parts.
    head_dim = size.hidden // size.heads
    text.update(
        head_dim=head_dim,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 5e5,
            "mrope_section": [head_dim // 2 - 2 * (head_dim // 6), head_dim // 6, head_dim // 6],
            "mrope_interleaved": True,
        },
    )
    vision = dict(
        depth=size.vision_depth,
        hidden_size=size.vision_hidden,
        intermediate_size=size.vision_intermediate,
        num_heads=size.vision_heads,
        patch_size=16,
        out_hidden_size=size.hidden,
        num_position_embeddings=64,
        deepstack_visual_indexes=[0],
    )
    return Qwen3VLConfig(text_config=text, vision_config=vision, **tokens)


def _qwen2_5_vl_config(text: dict, tokens: dict, size: Size):
    from transformers import Qwen2_5_VLConfig

    text.update(rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": list(size.mrope)})
    vision = dict(
        depth=size.vision_depth,
        hidden_size=size.vision_hidden,
        intermediate_size=size.vision_intermediate,
        num_heads=size.vision_heads,
        out_hidden_size=size.hidden,
        fullatt_block_indexes=[size.vision_depth - 1],
        window_size=56,
    )
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **tokens)


def _qwen2_vl_config(text: dict, tokens: dict, size: Size):
    from transformers import Qwen2VLConfig

    text.update(rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": list(size.mrope)})
    vision = dict(depth=size.vision_depth, embed_dim=size.vision_hidden,
                  mlp_ratio=size.vision_intermediate // size.vision_hidden, num_heads=size.vision_heads,
                  hidden_size=size.hidden)  # fmt: skip
    return Qwen2VLConfig(text_config=text, vision_config=vision, **tokens)


def make_tiny_model(out: str | Path, family: str = "qwen2_5_vl", seed: int = 0, size: str = "tiny") -> Path:
    """Write a random `family` checkpoint of `size` (SIZES: tiny, mini) with its tokenizer and processor to
    `out`; returns the path."""
    if family not in FAMILIES:
        raise ValueError(f"family {family!r}: expected one of {', '.join(FAMILIES)}")
    if size not in SIZES:
        raise ValueError(f"size {size!r}: expected one of {', '.join(SIZES)}")
    ensure_torchvision()
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(seed=seed)
    config = _config(family, tokenizer, SIZES[size])
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=config.text_config.eos_token_id,
        pad_token_id=config.text_config.pad_token_id,
        bos_token_id=config.text_config.bos_token_id,
        do_sample=False,
    )
    model.save_pretrained(out)
    _processor(family, tokenizer).save_pretrained(out)
    return out
