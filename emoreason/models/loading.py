"""Load a Qwen-VL checkpoint (hub id or local path), optionally with a LoRA adapter and 4/8-bit weights.

Any Qwen2-VL, Qwen2.5-VL or Qwen3-VL checkpoint loads through the Auto classes, so moving
from the shipped emoreason-mini to Qwen2.5-VL-3B/7B or to Qwen3-VL is one config value (the id).
An adapter folder is what `emoreason train` saves: a peft LoRA adapter, plus the face-token
projector (`face_projector.safetensors`) when the model was trained with face tokens; both
are loaded from it together. A model trained in full (`finetune: full`) keeps its projector
beside its weights; it is used when no adapter brings one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..compat.torchvision_cpu import ensure_torchvision

# emoreason-mini, shipped in the package (issue 16; its MODEL_CARD.md): the base is the SFT model (trained in
# full from random initialisation, with its face projector), `adapter/` the GRPO LoRA (+ face projector). What
# every VLM path runs when no model is named; any Qwen-VL hub id or folder replaces it (`--model`).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MINI_MODEL = WEIGHTS_DIR / "emoreason-mini"
MINI_ADAPTER = MINI_MODEL / "adapter"
MINI_NAME = "emoreason-mini"  # the adapter's served name (vllm-serve, the vllm backend)
HUB_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"  # the default where the package has no shipped model
DEFAULT_MODEL = str(MINI_MODEL) if (MINI_MODEL / "config.json").is_file() else HUB_MODEL


def default_model(model: str | os.PathLike | None, adapter: str | os.PathLike | None) -> tuple[str, str | None]:
    """(model, adapter) to load: what was named, else the shipped emoreason-mini with its GRPO adapter."""
    if model is not None:
        return str(model), str(adapter) if adapter is not None else None
    if adapter is None and DEFAULT_MODEL == str(MINI_MODEL) and (MINI_ADAPTER / "adapter_config.json").is_file():
        adapter = MINI_ADAPTER
    return DEFAULT_MODEL, str(adapter) if adapter is not None else None


SUPPORTED_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
QUANTIZATIONS = (None, "4bit", "8bit")


@dataclass
class LoadedModel:
    model: Any  # a transformers *ForConditionalGeneration (or a peft model wrapping one)
    processor: Any  # the checkpoint's AutoProcessor (tokenizer + image/video processors)
    family: str  # config.model_type: qwen2_vl | qwen2_5_vl | qwen3_vl
    name: str  # what the user passed (hub id or path)
    adapter: str | None = None
    face_projector: Any = None  # models.face_tokens.FaceProjector when the adapter carries one

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def hidden_size(self) -> int:
        return int(text_config(self.model.config).hidden_size)


def text_config(config: Any) -> Any:
    return getattr(config, "text_config", config)


def resolve_dtype(dtype: str | Any, device: str) -> Any:
    """'auto' = bfloat16 on a GPU, float32 on a CPU (CPU bf16 matmuls are slow and imprecise)."""
    import torch

    if not isinstance(dtype, str):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}.get(dtype) or getattr(
            torch, dtype
        )
    except AttributeError:
        raise ValueError(f"dtype {dtype!r}: expected auto, bfloat16, float16 or float32") from None


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(
    model: str | os.PathLike = DEFAULT_MODEL,
    adapter: str | os.PathLike | None = None,
    dtype: str | Any = "auto",
    device: str | None = None,
    device_map: str | dict | None = None,
    quantization: str | None = None,
    merge_adapter: bool = False,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load model + processor (+ adapter and face projector). Raises ValueError with the fix on bad input."""
    ensure_torchvision()
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    name = str(model)
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization {quantization!r}: expected one of 4bit, 8bit or none")
    device = device or default_device()
    torch_dtype = resolve_dtype(dtype, device)
    try:
        config = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except OSError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{name}: not a local checkpoint folder and not reachable on the hub ({reason})") from None
    if config.model_type not in SUPPORTED_FAMILIES:
        raise ValueError(f"{name}: model type {config.model_type!r} is not a Qwen-VL family ({SUPPORTED_FAMILIES})")

    kwargs = _from_pretrained_kwargs(torch_dtype, device, device_map, quantization, attn_implementation)
    kwargs["trust_remote_code"] = trust_remote_code
    vlm = AutoModelForImageTextToText.from_pretrained(name, **kwargs)
    if "device_map" not in kwargs:
        vlm = vlm.to(device)
    processor = AutoProcessor.from_pretrained(name, trust_remote_code=trust_remote_code)
    processor.tokenizer.padding_side = "left"  # batched generation of a decoder-only model

    projector = None
    if adapter is not None:
        vlm, projector = load_adapter(vlm, adapter, merge=merge_adapter)
    if projector is None:  # a model trained in full with face tokens keeps its projector beside its weights
        from .face_tokens import PROJECTOR_FILE, FaceProjector

        if (Path(name) / PROJECTOR_FILE).exists():
            projector = FaceProjector.load(name, device=next(vlm.parameters()).device)
    vlm.eval()
    return LoadedModel(
        model=vlm,
        processor=processor,
        family=config.model_type,
        name=name,
        adapter=str(adapter) if adapter else None,
        face_projector=projector,
    )


def _from_pretrained_kwargs(
    torch_dtype: Any, device: str, device_map: str | dict | None, quantization: str | None, attn: str | None
) -> dict[str, Any]:
    """dtype, attention, bitsandbytes quantization and placement for from_pretrained (a quantized or CUDA
    model is placed by device_map; a CPU one is moved with .to afterwards)."""
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if attn:
        kwargs["attn_implementation"] = attn
    if quantization:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = (
            BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch_dtype)
            if quantization == "4bit"
            else BitsAndBytesConfig(load_in_8bit=True)
        )
    if device_map is not None:
        kwargs["device_map"] = device_map
    elif quantization or device.startswith("cuda"):
        kwargs["device_map"] = {"": device}
    return kwargs


def write_weight_index(folder: str | os.PathLike) -> Path:
    """`model.safetensors.index.json` naming every weight of `model.safetensors`: vLLM then loads that file
    only, not every *.safetensors in the folder (a face projector kept beside the weights is not the model's)."""
    import json

    from safetensors import safe_open

    folder = Path(folder)
    with safe_open(folder / "model.safetensors", "pt") as f:
        weight_map = dict.fromkeys(f.keys(), "model.safetensors")
    path = folder / "model.safetensors.index.json"
    path.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2))
    return path


def load_adapter(vlm: Any, adapter: str | os.PathLike, merge: bool = False) -> tuple[Any, Any]:
    """Apply a saved emoreason adapter (LoRA and/or face projector) to a loaded model."""
    from .face_tokens import PROJECTOR_FILE, FaceProjector

    path = Path(adapter)
    if not path.is_dir():
        raise ValueError(f"{adapter}: adapter folder not found")
    has_lora = (path / "adapter_config.json").exists()
    has_projector = (path / PROJECTOR_FILE).exists()
    if not (has_lora or has_projector):
        raise ValueError(f"{adapter}: no adapter_config.json (LoRA) or {PROJECTOR_FILE} (face projector) in it")
    if has_lora:
        from peft import PeftModel

        vlm = PeftModel.from_pretrained(vlm, str(path))
        if merge:
            vlm = vlm.merge_and_unload()
    projector = None
    if has_projector:
        projector = FaceProjector.load(path, device=next(vlm.parameters()).device)
    return vlm, projector
