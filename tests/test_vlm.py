"""The transformers backend on offline tiny Qwen-VL models: build, load, generate, adapters, 4-bit.

Every family is built from nothing (tokenizer trained on the spot, random weights) and run
through the same `Analyzer` a user calls.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from emoreason import Analyzer
from emoreason.models.loading import load_model
from emoreason.parsing import parse_output
from emoreason.reasoning.vlm import face_requests
from emoreason.tiny import FAMILIES, SPECIAL_TOKENS

from .conftest import ASTRONAUT_ANALYSIS, teach

pytestmark = pytest.mark.slow  # tiny Qwen-VL models built and taught per family (make test-fast skips them)


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_model_is_an_ordinary_offline_checkpoint(tiny_model_dir, family):
    path = tiny_model_dir(family)
    config = json.loads((path / "config.json").read_text())
    text = config["text_config"]
    head_dim = text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"]
    assert config["model_type"] == family
    assert head_dim >= 32  # vLLM's CPU attention needs it
    assert sum(text["rope_parameters"]["mrope_section"]) == head_dim // 2
    loaded = load_model(path)  # HF_HUB_OFFLINE=1 in conftest: nothing is fetched
    tok = loaded.tokenizer
    assert tok.convert_ids_to_tokens(list(range(len(SPECIAL_TOKENS)))) == SPECIAL_TOKENS
    assert loaded.model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert loaded.family == family and loaded.hidden_size == 128


def test_make_tiny_model_cli(tmp_path):
    out = tmp_path / "tiny"
    proc = subprocess.run(
        [sys.executable, "-m", "emoreason", "make-tiny-model", str(out), "--family", "qwen2_vl"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= {
        p.name for p in out.iterdir()
    }


@pytest.mark.slow  # builds an 11M-parameter model
def test_mini_size_fits_the_shipping_budget_and_generates(tmp_path, astronaut):
    """emoreason-mini's shape: 11.0M parameters (at most ~25 MB in bf16), served by the same backend."""
    from transformers import AutoModelForImageTextToText

    from emoreason import Analyzer
    from emoreason.tiny import make_tiny_model

    path = make_tiny_model(tmp_path / "mini", "qwen2_5_vl", size="mini")
    model = AutoModelForImageTextToText.from_pretrained(path)
    params = sum(p.numel() for p in model.parameters())
    assert 10.5e6 < params < 11.5e6 and params * 2 < 25e6  # bf16 bytes
    assert model.config.text_config.num_hidden_layers == 6 and model.config.text_config.hidden_size == 384
    with Analyzer(backend="transformers", model=str(path), max_new_tokens=8) as analyzer:
        assert analyzer.analyze(astronaut).faces[0].text  # random weights: some text, from the real pipeline


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_end_to_end_through_analyze(tiny_model_dir, family, two_faces):
    with Analyzer(backend="transformers", model=str(tiny_model_dir(family)), max_new_tokens=12) as analyzer:
        result = analyzer.analyze(two_faces)
    assert result.backend == "transformers" and len(result.faces) == 2
    for face in result.faces:
        assert face.text  # a random model writes random text: the parser must still cope
        assert face.timings["generate"] > 0
    assert result.timings["reasoning"] > 0


def test_batched_generation_equals_one_at_a_time(tiny_model_dir, astronaut, two_faces):
    """Three images (four faces) in one left-padded batch give what each gives alone (greedy)."""
    model = str(tiny_model_dir("qwen2_5_vl"))
    images = [astronaut, two_faces, astronaut[:, ::-1]]
    with Analyzer(backend="transformers", model=model, max_new_tokens=8, batch_size=8) as batched:
        together = batched.analyze_batch(images)
        single = Analyzer(backend="transformers", model=model, max_new_tokens=8, batch_size=1)
        single.frontend = batched.frontend  # same front-end, one model per analyzer
        alone = [single.analyze(img) for img in images]
    assert [len(r.faces) for r in together] == [1, 2, 1]
    assert [f.text for r in together for f in r.faces] == [f.text for r in alone for f in r.faces]


def test_bad_input_in_a_batch_does_not_stop_it(tiny_model_dir, astronaut, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with Analyzer(backend="transformers", model=str(tiny_model_dir("qwen2_vl")), max_new_tokens=4) as analyzer:
        results = analyzer.analyze_batch([astronaut, str(bad), astronaut])
    assert [r.ok for r in results] == [True, False, True]
    assert "broken.png" in results[1].error and len(results[2].faces) == 1


SMALL_LABEL_SET = ["happiness", "sadness", "neutral"]


@pytest.fixture(scope="module")
def taught(tiny_model_dir, astronaut):
    """A tiny model taught (until its loss is ~0) to write one real-looking analysis of the astronaut.

    Taught on two prompts: without a label set, and with the set happiness/sadness/neutral.
    """
    analyzer = Analyzer(backend="transformers", model=str(tiny_model_dir("qwen2_5_vl")), max_new_tokens=60)
    items = [(analyzer.frontend.observe(astronaut), astronaut)]
    requests = face_requests(items) + face_requests(items, labels=SMALL_LABEL_SET)
    losses = teach(analyzer.backend, requests, [ASTRONAUT_ANALYSIS] * 2)
    assert losses[-1] < 0.05, f"the tiny model did not learn the analysis (loss {losses[-1]:.3f})"
    yield analyzer
    analyzer.close()


def test_parser_and_confidence_on_generated_text(taught, astronaut):
    face = taught.analyze(astronaut).faces[0]
    parsed = parse_output(face.text)
    assert parsed.format_valid and parsed.label_valid
    assert face.emotion == parsed.emotion == "happiness"
    assert face.cited_aus == parsed.aus == [6, 12] and parsed.negated_aus == [4]
    assert face.reasoning == parsed.think
    # confidence = probability mass on the answer among the labels at the answer's first token
    assert 0.5 < face.confidence <= 1.0 and face.emotion_scores["happiness"] == face.confidence
    assert abs(sum(face.emotion_scores.values()) - 1) < 1e-3


def test_label_set_restricts_the_confidence_distribution(taught, astronaut):
    face = taught.analyze(astronaut, labels=SMALL_LABEL_SET).faces[0]
    assert face.emotion == "happiness" and set(face.emotion_scores) == set(SMALL_LABEL_SET)


def test_sampling_options_are_used(taught, astronaut):
    backend = taught.backend
    saved = dict(backend.generate_options)
    try:
        backend.generate_options.update(do_sample=True, temperature=5.0, top_p=1.0)
        backend.seed = 0
        hot = taught.analyze(astronaut).faces[0].text
    finally:
        backend.generate_options, backend.seed = saved, None
    assert hot != ASTRONAUT_ANALYSIS  # a very hot sample leaves the taught greedy path


def _lora_adapter(model_dir, out):
    """Save a LoRA adapter with non-zero weights (peft initialises B to zero, which would change nothing)."""
    from peft import LoraConfig, get_peft_model

    base = load_model(model_dir).model
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, config)
    peft_model.save_pretrained(out)
    return out


def _logits(loaded, request):
    from emoreason.reasoning.transformers_backend import TransformersBackend

    backend = TransformersBackend(loaded=loaded)
    with torch.inference_mode():
        return loaded.model(**backend.encode([request])).logits


def test_adapter_load_and_merge(tiny_model_dir, tmp_path, analyzer, astronaut):
    model_dir = tiny_model_dir("qwen2_5_vl")
    adapter = _lora_adapter(model_dir, tmp_path / "adapter")
    request = face_requests([(analyzer.frontend.observe(astronaut), astronaut)])[0]
    base = _logits(load_model(model_dir), request)
    with_adapter = _logits(load_model(model_dir, adapter=adapter), request)
    merged = _logits(load_model(model_dir, adapter=adapter, merge_adapter=True), request)
    assert not torch.allclose(base, with_adapter, atol=1e-4)  # the adapter is applied
    torch.testing.assert_close(merged, with_adapter, atol=1e-4, rtol=1e-4)  # merging changes nothing
    # and the CLI takes it the way a user passes it
    with Analyzer(backend="transformers", model=str(model_dir), adapter=str(adapter), max_new_tokens=4) as a:
        assert a.backend.model.endswith(str(adapter)) and a.analyze(astronaut).faces


def test_bad_adapter_and_model_paths_are_one_line_errors(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="adapter folder not found"):
        load_model(tiny_model_dir("qwen2_5_vl"), adapter=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no adapter_config.json"):
        load_model(tiny_model_dir("qwen2_5_vl"), adapter=tmp_path / "empty")
    with pytest.raises(ValueError, match="not a local checkpoint folder"):
        load_model(tmp_path / "missing-model")


@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_quantized_load_on_cpu(tiny_model_dir, astronaut, bits):
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    loaded = load_model(tiny_model_dir("qwen2_5_vl"), quantization=bits, device="cpu")
    layer = bnb.nn.Linear4bit if bits == "4bit" else bnb.nn.Linear8bitLt
    assert any(isinstance(m, layer) for m in loaded.model.modules()), f"no {bits} layers after loading"
    from emoreason.reasoning.transformers_backend import TransformersBackend

    with Analyzer(backend="embedded") as a:
        observations = a.frontend.observe(astronaut)
    faces = TransformersBackend(loaded=loaded, max_new_tokens=4).analyze(observations, astronaut)
    assert len(faces) == 1 and faces[0].text


def test_cli_transformers_backend(tiny_model_dir, tmp_path):
    from emoreason.samples import write_sample_images

    images = write_sample_images(tmp_path / "in")
    proc = subprocess.run(
        [sys.executable, "-m", "emoreason", "analyze", *map(str, images), "--backend", "transformers",
         "--model", str(tiny_model_dir("qwen2_vl")), "--max-new-tokens", "6", "--batch-size", "4",
         "--format", "jsonl", "--quiet"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [len(r["faces"]) for r in rows] == [1, 2]
    assert all(r["backend"] == "transformers" and r["model"] == str(tiny_model_dir("qwen2_vl")) for r in rows)
