"""The gateway as users reach it: the official `openai` client and plain HTTP against a live server on loopback
(embedded backend), streaming, multi-turn follow-ups, /v1/analyze, and every kind of bad request."""

from __future__ import annotations

import base64
import io
import json
import logging
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from emoreason.prompting import image_data_url
from emoreason.serving.server import BackgroundServer as LiveServer
from emoreason.serving.server import build_engines
from emoreason.serving.settings import GatewaySettings

KEY = "sk-gateway-test"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _data_url(rgb: np.ndarray) -> str:
    return image_data_url(rgb)


@pytest.fixture(scope="module")
def image_host(tmp_path_factory, astronaut):
    """A plain file server on loopback: the only remote image origin the gateway is allowed to fetch from."""
    root = tmp_path_factory.mktemp("www")
    (root / "face.png").write_bytes(_png(astronaut))

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def gateway(image_host):
    from emoreason.serving.gateway import create_app

    settings = GatewaySettings(api_keys=(KEY,), max_body_bytes=3_000_000, max_image_bytes=2_000_000,
                               max_pixels=4_000_000, allowed_url_prefixes=(f"{image_host}/",))  # fmt: skip
    engines = build_engines("embedded")
    with LiveServer(create_app(engines, settings)) as live:
        yield live
    for engine in engines.values():
        engine.close()


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0)


def _ask(astronaut, text="What emotion does this face show?"):
    return {"role": "user", "content": [{"type": "image_url", "image_url": {"url": _data_url(astronaut)}},
                                        {"type": "text", "text": text}]}  # fmt: skip


def test_models_and_health(client, gateway):
    assert [m.id for m in client.models.list().data] == ["emoreason"]
    assert httpx.get(f"{gateway.url}/health").json() == {"status": "ok"}  # liveness needs no key, and says no more
    health = httpx.get(f"{gateway.url}/health", headers={"Authorization": f"bearer {KEY}"}).json()  # any case
    assert health["status"] == "ok" and health["models"] == ["emoreason"] and health["in_flight"] == 0


def test_chat_completion_with_the_openai_client(client, astronaut):
    reply = client.chat.completions.create(model="emoreason", messages=[_ask(astronaut)])
    text = reply.choices[0].message.content
    assert text.startswith("<think>") and text.endswith("<answer>happiness</answer>")
    result = reply.model_extra["emoreason"]  # the structured EmotionAnalysis beside the text
    face = result["faces"][0]
    assert face["emotion"] == "happiness" and face["text"] == text and result["backend"] == "embedded"
    assert {a["code"] for a in face["aus"] if a["present"]} >= {6, 12}


def test_streaming_gives_the_same_text_and_the_result_at_the_end(client, astronaut):
    whole = client.chat.completions.create(model="emoreason", messages=[_ask(astronaut)]).choices[0].message.content
    chunks = list(client.chat.completions.create(model="emoreason", messages=[_ask(astronaut)], stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == whole and len(chunks) > 5
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["emoreason"]["faces"][0]["emotion"] == "happiness"


def test_follow_up_question_about_the_same_image(client, astronaut):
    first = client.chat.completions.create(model="emoreason", messages=[_ask(astronaut)])
    messages = [_ask(astronaut), {"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": "Why not fear?"}]  # fmt: skip
    reply = client.chat.completions.create(model="emoreason", messages=messages)
    answer = reply.choices[0].message.content
    # answered from the first turn's analysis (kept by the image's bytes), not from a second run of the front-end
    assert reply.model_extra["emoreason"]["timings"] == first.model_extra["emoreason"]["timings"]
    assert answer.startswith("Fear is defined by AU1 (inner brow raiser)")
    assert "support happiness" in answer and "AU12 (lip corner puller)" in answer
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "And why happiness?"}]
    again = client.chat.completions.create(model="emoreason", messages=messages).choices[0].message.content
    assert "The answer is happiness because of" in again


def test_recent_analyses_are_bounded_by_the_pixels_they_hold():
    from emoreason.serving.engine import Analysed, RecentAnalyses
    from emoreason.types import EmotionAnalysis

    def analysed(n_bytes: int) -> Analysed:
        return Analysed(EmotionAnalysis("x", 1, 1, [], "embedded"), [], np.zeros(n_bytes, np.uint8))

    recent = RecentAnalyses(max_bytes=250)
    for key in "abc":
        recent.put(key, analysed(100))
    assert recent.get("a") is None and recent.get("b") is not None and len(recent) == 2  # oldest out first
    recent.put("d", analysed(100))  # "b" was used last: "c" goes
    assert recent.get("c") is None and recent.get("b") is not None
    recent.put("huge", analysed(300))  # larger than the whole budget: not kept, nothing else evicted
    assert recent.get("huge") is None and len(recent) == 2


def test_analyze_endpoint_upload_and_base64(gateway, astronaut):
    headers = {"Authorization": f"Bearer {KEY}"}
    upload = httpx.post(f"{gateway.url}/v1/analyze", headers=headers, files={"file": ("a.png", _png(astronaut))})
    assert upload.status_code == 200 and upload.json()["faces"][0]["emotion"] == "happiness"
    b64 = base64.b64encode(_png(astronaut)).decode()
    posted = httpx.post(f"{gateway.url}/v1/analyze", headers=headers, json={"image": b64}, timeout=30)
    assert posted.json()["faces"][0]["emotion"] == "happiness"


def test_allow_listed_remote_image(client, image_host):
    ask = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"{image_host}/face.png"}}]}
    reply = client.chat.completions.create(model="emoreason", messages=[ask])
    assert reply.model_extra["emoreason"]["faces"][0]["emotion"] == "happiness"


def _bad(gateway, path, status, message_part, headers=None, **kwargs):
    headers = AUTH if headers is None else headers
    response = httpx.post(f"{gateway.url}{path}", headers=headers, timeout=30, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message_part in error["message"] and "\n" not in error["message"] and "Traceback" not in response.text
    return error


def test_bad_requests_get_clear_4xx_json_and_the_server_keeps_serving(gateway, client, astronaut):
    chat = "/v1/chat/completions"
    text_only = {"model": "emoreason", "messages": [{"role": "user", "content": "hello"}]}
    _bad(gateway, chat, 400, "no image; send the face as an image_url", json=text_only)

    def with_url(url):
        return {"model": "emoreason", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}]}]}  # fmt: skip

    _bad(gateway, chat, 400, "expected a data:image/...;base64 URL", json=with_url("data:text/plain;base64,aGVsbG8="))
    _bad(gateway, chat, 400, "invalid base64", json=with_url("data:image/png;base64,@@not-base64@@"))
    not_png = "data:image/png;base64," + base64.b64encode(b"x" * 64).decode()
    _bad(gateway, chat, 400, "not an image", json=with_url(not_png))
    huge = np.zeros((2100, 2100, 3), np.uint8)  # 4.4 MP > the 4 MP limit; compresses to a few KB
    _bad(gateway, chat, 413, "image too large (2100x2100 px", json=with_url(_data_url(huge)))
    _bad(gateway, chat, 400, "remote image URLs are refused", json=with_url("http://169.254.169.254/latest/meta-data"))
    wrong_model = {**with_url(_data_url(astronaut)), "model": "gpt-4"}
    _bad(gateway, chat, 404, "model 'gpt-4' not found; available: emoreason", json=wrong_model)
    json_headers = {**AUTH, "Content-Type": "application/json"}
    _bad(gateway, chat, 400, "request body is not valid JSON", content=b"{nope", headers=json_headers)
    _bad(gateway, chat, 413, "request body larger than 3000000 bytes", content=b"x" * 3_000_001)
    error = _bad(gateway, chat, 401, "missing or invalid API key", headers={}, json=with_url(_data_url(astronaut)))
    assert error["type"] == "authentication_error"
    _bad(gateway, "/v1/analyze", 400, "image: missing", json={})
    _bad(gateway, "/v1/analyze", 400, "file: missing", files={"other": ("a.png", b"x")})
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="wrong", max_retries=0).models.list()
    # still serving
    reply = client.chat.completions.create(model="emoreason", messages=[_ask(astronaut)])
    assert reply.model_extra["emoreason"]["faces"][0]["emotion"] == "happiness"


@pytest.mark.slow  # whole CLI runs in subprocesses, 7-24 s (make test-fast skips it)
def test_concurrency_limit_and_timeout(astronaut):
    from emoreason.serving.gateway import create_app

    engines = build_engines("embedded")
    big = np.ascontiguousarray(np.tile(astronaut, (3, 3, 1)))  # slower to analyse: requests overlap
    body = {"model": "emoreason", "messages": [_ask(big)]}
    try:
        with LiveServer(create_app(engines, GatewaySettings(max_concurrency=1))) as live:
            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(lambda _: httpx.post(f"{live.url}/v1/chat/completions", json=body,
                                                              timeout=60), range(8)))  # fmt: skip
            codes = sorted(r.status_code for r in statuses)
            assert set(codes) <= {200, 429} and 200 in codes and 429 in codes, codes
            limited = next(r for r in statuses if r.status_code == 429)
            assert limited.headers["retry-after"] == "1" and "limit 1" in limited.json()["error"]["message"]
            assert httpx.post(f"{live.url}/v1/chat/completions", json=body, timeout=60).status_code == 200
        with LiveServer(create_app(engines, GatewaySettings(request_timeout_s=0.001))) as live:
            slow = httpx.post(f"{live.url}/v1/chat/completions", json=body, timeout=60)
            assert slow.status_code == 504 and "timed out" in slow.json()["error"]["message"]
    finally:
        for engine in engines.values():
            engine.close()


def test_access_log_is_structured_and_has_no_image_bytes(client, astronaut, caplog):
    with caplog.at_level(logging.INFO, logger="emoreason.access"):
        client.chat.completions.create(model="emoreason", messages=[_ask(astronaut)])
        time.sleep(0.1)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "emoreason.access"]
    entry = next(e for e in lines if e["path"] == "/v1/chat/completions")
    assert entry["status"] == 200 and entry["model"] == "emoreason" and entry["ms"] > 0 and entry["request_id"]
    assert all(len(r.getMessage()) < 400 for r in caplog.records)  # no bodies, no base64


def test_the_serving_client_example_against_a_live_gateway(gateway, tmp_path, astronaut):
    """serving/client.py, run as a user runs it: the openai SDK, a streamed follow-up and /v1/analyze."""
    root = Path(__file__).resolve().parent.parent
    image = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(image)
    command = [sys.executable, str(root / "serving" / "client.py"), str(image), "--base-url", f"{gateway.url}/v1",
               "--api-key", KEY]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "models: ['emoreason']" and lines[1].startswith("<think>")
    assert any(line.startswith("face 0: happiness (AUs: ") and "AU12" in line for line in lines)
    assert any(line.startswith("follow-up: ") and len(line) > 40 for line in lines)
    assert '"backend": "embedded"' in lines[-1] and lines[-1].startswith("analyze: ")


def test_the_compose_commands_are_valid_emoreason_commands():
    """serving/compose.yaml runs `emoreason serve` and `emoreason ui`: their flags must exist."""
    import yaml

    from emoreason.cli import build_parser

    services = yaml.safe_load((Path(__file__).resolve().parent.parent / "serving" / "compose.yaml").read_text())
    services = services["services"]
    for name in ("gateway", "demo"):
        command = services[name]["command"]
        assert command[0] == "emoreason"
        args = build_parser().parse_args(command[1:])
        assert args.host == "0.0.0.0"
    gateway = build_parser().parse_args(services["gateway"]["command"][1:])
    assert (
        gateway.backend == "vllm" and gateway.adapter == ["sft", "grpo"] and gateway.base_url == "http://vllm:8001/v1"
    )
