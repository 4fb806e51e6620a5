"""vLLM (CPU build, its own environment) serving the tiny model: greedy parity with the transformers backend (base,
LoRA adapter, face tokens), and the gateway in front of it reached with the official openai client.

One vLLM server per test run (module fixture). The vLLM environment is `make vllm-env`'s `.venv-vllm`
(or $EMOREASON_VLLM_PYTHON); `make test` builds it, so these run in CI.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from emoreason import Analyzer
from emoreason.serving.vllm_server import VLLMServer, find_vllm_python, vllm_command

pytestmark = pytest.mark.slow
TOKENS = 32


def _vllm_python() -> str:
    try:
        return find_vllm_python()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def adapter(tiny_model_dir, tmp_path_factory):
    """A LoRA with random (non-zero) weights, and a face projector beside it: both change the output."""
    import torch
    from peft import LoraConfig, get_peft_model

    from emoreason.models.face_tokens import FaceFeatureExtractor, FaceTokenLayout
    from emoreason.models.loading import load_model

    folder = tmp_path_factory.mktemp("lora")
    torch.manual_seed(0)
    loaded = load_model(tiny_model_dir("qwen2_5_vl"))
    config = LoraConfig(r=8, lora_alpha=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(loaded.model, config).save_pretrained(folder)
    projector = FaceFeatureExtractor(FaceTokenLayout(16), "ViT-B-32").new_projector(loaded.hidden_size)
    with torch.no_grad():
        projector.mlp[-1].weight.mul_(20)  # loud face tokens: they must change the text, or parity proves nothing
    projector.save(folder)
    return folder


@pytest.fixture(scope="module")
def vllm(tiny_model_dir, adapter):
    port = _free_port()
    command = vllm_command(_vllm_python(), str(tiny_model_dir("qwen2_5_vl")), "tiny", "127.0.0.1", port,
                           {"lora": str(adapter)}, face_tokens=True, max_model_len=1024, kv_cache="64M",
                           dtype="float32")  # fmt: skip
    with VLLMServer(command, "127.0.0.1", port, startup_timeout=600) as server:
        yield server


def _text(backend: str, image, **options) -> list[str]:
    with Analyzer(backend=backend, max_new_tokens=TOKENS, **options) as analyzer:
        return [face.text for face in analyzer.analyze(image).faces]


def test_served_models(vllm):
    assert vllm.models() == ["tiny", "lora"]


@pytest.mark.parametrize("case", ["base", "adapter", "adapter+face tokens"])
def test_greedy_parity_with_the_transformers_backend(vllm, tiny_model_dir, adapter, two_faces, case):
    model = str(tiny_model_dir("qwen2_5_vl"))
    if case == "base":
        served, local = {"model": "tiny"}, {}
    elif case == "adapter":
        served, local = {"model": "lora"}, {"adapter": str(adapter), "face_tokens": False}
    else:
        served, local = {"model": "lora", "face_projector": str(adapter)}, {"adapter": str(adapter)}
    through_vllm = _text("vllm", two_faces, base_url=vllm.url, **served)
    in_process = _text("transformers", two_faces, model=model, **local)
    # The random model's last token may be the first byte of a multi-byte character: HF decodes it as U+FFFD,
    # vLLM's incremental detokenizer holds it back. Everything before it must match exactly.
    assert len(through_vllm) == 2 and [t.rstrip("\ufffd") for t in through_vllm] == [
        t.rstrip("\ufffd") for t in in_process
    ]


def _first_token_logprobs(vllm, astronaut, model: str, face_projector: str | None = None) -> list[float]:
    """The top-5 log-probs of the first answer token, as vLLM computed them for the emoreason prompt."""
    from emoreason.prompting import to_openai_messages
    from emoreason.reasoning.vllm_backend import VLLMBackend

    backend = VLLMBackend(vllm.url, model, face_projector=face_projector)
    with Analyzer(backend="embedded") as analyzer:
        observations = analyzer.frontend.observe(astronaut)
    (request,) = backend.requests([(observations, astronaut)], None)
    (video,) = backend.video_parts([request])
    messages = to_openai_messages(request.messages, request.images, video=video)
    reply = backend.endpoint.complete(messages, max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=5)
    return [t["logprob"] for t in reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]]


def test_the_adapter_and_the_face_tokens_change_the_model(vllm, adapter, astronaut):
    """The parity above is not vacuous: the adapter, and the face tokens on top of it, change what the model
    computes (its next-token distribution; a random tiny model's greedy text may not show it)."""
    import numpy as np

    base = _first_token_logprobs(vllm, astronaut, "tiny")
    lora = _first_token_logprobs(vllm, astronaut, "lora")
    face = _first_token_logprobs(vllm, astronaut, "lora", face_projector=str(adapter))
    assert not np.allclose(base, lora, atol=1e-3) and not np.allclose(lora, face, atol=1e-3)


def test_malformed_face_tokens_are_refused_before_they_reach_vllm(adapter):
    import torch

    from emoreason.models.face_tokens import FaceTokenLayout, video_embeds_part

    for bad in (torch.zeros(15, 128), torch.full((16, 128), float("nan")), torch.zeros(16)):
        with pytest.raises(ValueError, match="face tokens must be a finite"):
            video_embeds_part(bad, FaceTokenLayout(16))


def test_gateway_in_front_of_vllm_with_streaming_and_adapter_selection(vllm, astronaut):
    import openai

    from emoreason.prompting import image_data_url
    from emoreason.serving.gateway import create_app
    from emoreason.serving.server import BackgroundServer as LiveServer
    from emoreason.serving.server import build_engines

    engines = build_engines("vllm", name="tiny", base_url=vllm.url, model="tiny", adapters=["lora"],
                            max_new_tokens=TOKENS)  # fmt: skip
    ask = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_data_url(astronaut)}}]}
    try:
        with LiveServer(create_app(engines)) as live:
            client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
            assert [m.id for m in client.models.list().data] == ["tiny", "lora"]
            for model in ("tiny", "lora"):
                reply = client.chat.completions.create(model=model, messages=[ask])
                expected = _text("vllm", astronaut, base_url=vllm.url, model=model)[0]
                assert reply.choices[0].message.content == expected
                assert reply.model_extra["emoreason"]["backend"] == "vllm"
                chunks = list(client.chat.completions.create(model=model, messages=[ask], stream=True))
                pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
                assert "".join(pieces) == expected
                # token by token from vLLM (vLLM may merge a few under load), not the finished text cut into
                # the 4-word pieces the gateway sends for a finished answer
                assert len(pieces) > -(-len(expected.split(" ")) // 4) + 1
                assert chunks[-1].model_extra["emoreason"]["faces"][0]["text"] == expected
            follow = [ask, {"role": "assistant", "content": expected}, {"role": "user", "content": "Why not fear?"}]
            answer = client.chat.completions.create(model="lora", messages=follow).choices[0].message.content
            assert answer  # the served model itself answered the follow-up (through vLLM)
    finally:
        for engine in engines.values():
            engine.close()


def test_the_serving_launch_configurations_parse_with_vllms_own_parser():
    """serving/vllm/*.yaml: every key is a vLLM flag with a valid value (vLLM's own parser; no model loaded)."""
    root = Path(__file__).resolve().parent.parent / "serving" / "vllm"
    configs = sorted(str(p) for p in root.glob("*.yaml"))
    script = (
        "import sys, json\n"
        "from vllm.entrypoints.launchers.cli_args import make_arg_parser\n"
        "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
        "for path in sys.argv[1:]:\n"
        "    a = make_arg_parser(FlexibleArgumentParser()).parse_args(['--config', path])\n"
        "    print(json.dumps({'path': path, 'name': a.served_model_name, 'mm': a.limit_mm_per_prompt,\n"
        "                      'loras': [m.name for m in a.lora_modules or []], 'tp': a.tensor_parallel_size}))\n"
    )
    proc = subprocess.run([_vllm_python(), "-c", script, *configs], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parsed = {Path(d["path"]).name: d for d in map(json.loads, proc.stdout.splitlines())}
    assert set(parsed) == {"cpu.yaml", "gpu.yaml", "gpu-lora.yaml", "gpu-tp2.yaml"}
    assert all(d["name"] == ["emoreason"] for d in parsed.values())
    assert parsed["gpu-lora.yaml"]["loras"] == ["sft", "grpo"] and parsed["gpu-lora.yaml"]["mm"]["video"] == 1
    assert parsed["gpu-tp2.yaml"]["tp"] == 2


def test_vllm_serve_with_no_model_serves_the_shipped_mini_in_parity(astronaut_face):
    """`emoreason vllm-serve` with no --model: emoreason-mini's base, its GRPO adapter as the LoRA module
    `emoreason-mini`, face tokens on; the vllm backend and the gateway with no --model use it, and its greedy
    analysis equals the transformers backend's (no --model there either)."""
    import sys

    from emoreason.models.loading import MINI_NAME
    from emoreason.serving.server import build_engines

    port = _free_port()
    # the real CLI, started and health-waited by the same VLLMServer the other tests use
    cmd = [sys.executable, "-m", "emoreason", "vllm-serve", "--port", str(port), "--kv-cache", "64M",
           "--dtype", "float32", "--max-model-len", "2048", "--python", _vllm_python()]  # fmt: skip
    with VLLMServer(cmd, "127.0.0.1", port, startup_timeout=600) as server:
        assert server.models() == ["emoreason", MINI_NAME]

        def analysis(backend: str, **options) -> str:
            with Analyzer(backend=backend, face_mode="full", max_new_tokens=384, **options) as analyzer:
                return analyzer.analyze(astronaut_face).faces[0].text

        in_process = analysis("transformers")
        assert analysis("vllm", base_url=server.url) == in_process and "</answer>" in in_process
        engines = build_engines("vllm", base_url=server.url, face_mode="full", max_new_tokens=384)
        try:
            result = engines["emoreason"].analyzer.analyze(astronaut_face)
            assert result.model == MINI_NAME and result.faces[0].text == in_process
        finally:
            for engine in engines.values():
                engine.close()
