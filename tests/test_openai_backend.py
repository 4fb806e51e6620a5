"""The openai backend against a live OpenAI-compatible server (a tiny Qwen-VL behind HTTP on loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emoreason import Analyzer
from emoreason.data.records import TrainingRecord, read_jsonl
from emoreason.data.synth import Synthesizer, synth_conversation
from emoreason.endpoint import ChatEndpoint
from emoreason.models.loading import load_model
from emoreason.parsing import parse_output
from emoreason.reasoning.openai_backend import EndpointError, OpenAIBackend
from emoreason.reasoning.vlm import FaceRequest, face_requests

from .conftest import ASTRONAUT_ANALYSIS, teach
from .openai_server import TinyChatServer

pytestmark = pytest.mark.slow  # a tiny model is taught, then served over HTTP (make test-fast skips them)

KEY = "sk-test-key"


@pytest.fixture(scope="module")
def server(tiny_model_dir, astronaut):
    """The server's model is taught the astronaut analysis (as inference and as `data synth`
    labelled happiness ask for it), so its answers are parseable."""
    from emoreason.reasoning.transformers_backend import TransformersBackend

    loaded = load_model(tiny_model_dir("qwen2_5_vl"))
    backend = TransformersBackend(loaded=loaded)
    with Analyzer(backend="embedded") as a:
        observations = a.frontend.observe(astronaut)
    labelled = TrainingRecord(id="x", image="x.png", emotion="happiness")
    synth = FaceRequest(0, observations[0], *synth_conversation(labelled, observations[0]), None)
    requests = [*face_requests([(observations, astronaut)]), synth]
    losses = teach(backend, requests, [ASTRONAUT_ANALYSIS] * 2)
    assert losses[-1] < 0.05, f"the tiny model did not learn the analysis (loss {losses[-1]:.3f})"
    with TinyChatServer(loaded, api_key=KEY) as running:
        yield running


@pytest.fixture
def fresh(server):
    deadline = time.monotonic() + 10
    while server.in_flight and time.monotonic() < deadline:  # requests a timed-out test left behind
        time.sleep(0.05)
    server.fail_next.clear()
    server.raw_next.clear()
    server.delay_s = 0.0
    server.max_in_flight = 0
    server.requests.clear()
    return server


def _analyzer(server, **options):
    opts = dict(base_url=server.base_url, model="tiny", api_key=KEY, max_new_tokens=60)
    opts.update(options)
    return Analyzer(backend="openai", **opts)


def test_same_prompt_and_images_reach_the_server(fresh, astronaut):
    with _analyzer(fresh) as analyzer:
        face = analyzer.analyze(astronaut).faces[0]
    body = fresh.requests[-1]
    assert body["model"] == "tiny" and body["temperature"] == 0.0 and body["logprobs"] is True
    system, user = body["messages"]
    assert system["role"] == "system" and "FACS coder" in system["content"]
    assert user["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "The AU detector measured" in user["content"][-1]["text"]
    # the real model's answer, parsed, with a confidence from the server's log-probs
    assert face.text == ASTRONAUT_ANALYSIS and face.emotion == "happiness" and face.cited_aus == [6, 12]
    assert parse_output(face.text).format_valid
    assert face.confidence is not None and face.confidence > 0.5


def test_server_without_logprobs_gives_unknown_confidence(fresh, astronaut):
    with _analyzer(fresh, logprobs=False) as analyzer:
        face = analyzer.analyze(astronaut).faces[0]
    assert face.emotion == "happiness" and face.confidence is None and face.emotion_scores == {}


def test_retries_with_backoff_on_429_and_5xx(fresh, astronaut):
    fresh.fail_next[:] = [503, 429, 502]
    with _analyzer(fresh, max_retries=3) as analyzer:
        face = analyzer.analyze(astronaut).faces[0]
    assert face.emotion == "happiness" and len(fresh.requests) == 4


def test_gives_up_after_the_retries_and_the_batch_goes_on(fresh, astronaut, two_faces):
    fresh.fail_next[:] = [503, 503]
    backend = OpenAIBackend(fresh.base_url, "tiny", api_key=KEY, max_retries=1, concurrency=1)
    with Analyzer(backend="embedded") as a:
        items = [(a.frontend.observe(img), img) for img in (astronaut, two_faces)]
    results = backend.analyze_batch(items)
    first = results[0][0]
    assert first.emotion is None and first.text == "" and "failed after 2 attempts" in first.error
    assert [f.emotion for f in results[1]] and all(f.text for f in results[1])  # the other faces were served


def test_client_errors_are_not_retried(fresh):
    backend = OpenAIBackend(fresh.base_url, "tiny", api_key="wrong", max_retries=3)
    with pytest.raises(EndpointError, match="HTTP 401: invalid api key"):
        backend.endpoint.complete([{"role": "user", "content": "hi"}])
    assert len(fresh.requests) == 1


def test_timeout_is_retried_then_reported(fresh):
    fresh.delay_s = 1.0
    backend = OpenAIBackend(fresh.base_url, "tiny", api_key=KEY, timeout=0.2, max_retries=1)
    with pytest.raises(EndpointError, match="failed after 2 attempts"):
        backend.endpoint.complete([{"role": "user", "content": "hi"}])
    deadline = time.monotonic() + 30  # both attempts reached the server and ended there: none leaks into the next test
    while (len(fresh.requests) < 2 or fresh.in_flight) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fresh.requests) == 2


def test_concurrency_limit(fresh, two_faces):
    fresh.delay_s = 0.2
    backend = OpenAIBackend(fresh.base_url, "tiny", api_key=KEY, concurrency=2, max_new_tokens=4)
    with Analyzer(backend="embedded") as a:
        items = [(a.frontend.observe(two_faces), two_faces)] * 3  # six faces
    results = backend.analyze_batch(items)
    assert sum(len(r) for r in results) == 6
    assert fresh.max_in_flight == 2


def test_cli_openai_backend(fresh, tmp_path):
    from emoreason.samples import write_sample_images

    image = write_sample_images(tmp_path)[0]
    proc = subprocess.run(
        [sys.executable, "-m", "emoreason", "analyze", str(image), "--backend", "openai",
         "--base-url", fresh.base_url, "--model", "tiny", "--api-key", KEY, "--max-new-tokens", "60",
         "--format", "json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert '"emotion": "happiness"' in proc.stdout and '"backend": "openai"' in proc.stdout


def test_openai_backend_needs_url_and_model(tmp_path):
    from emoreason.samples import write_sample_images

    image = write_sample_images(tmp_path)[0]
    proc = subprocess.run(
        [sys.executable, "-m", "emoreason", "analyze", str(image), "--backend", "openai"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "emoreason: error: --backend openai needs --base-url and --model"


DONE = "<think>AU4</think><answer>anger</answer>"


def _astronaut_records(tmp_path, astronaut) -> Path:
    from PIL import Image

    Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
    rows = [
        {"id": "smile", "image": "astronaut.png", "labels": "happiness"},
        {"id": "sad", "image": "astronaut.png", "labels": "sadness"},  # the model still answers happiness
        {"id": "done", "image": "astronaut.png", "labels": "anger", "description": DONE},
        {"id": "nolabel", "image": "astronaut.png"},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def test_synth_through_the_endpoint_keeps_what_agrees_with_the_labels(fresh, tmp_path, astronaut):
    records = read_jsonl(_astronaut_records(tmp_path, astronaut))[0]
    writer = ChatEndpoint(fresh.base_url, "tiny", api_key=KEY, max_tokens=60, temperature=0.0, concurrency=2)
    synth = Synthesizer(face_mode="detect", writer=writer)
    results = list(synth.run(records))
    synth.close()
    assert [r.record.id for r in results] == ["smile", "sad", "done", "nolabel"]  # in order
    smile, sad, done, nolabel = results
    assert smile.accepted and smile.record.description == ASTRONAUT_ANALYSIS  # the served model wrote it
    assert not sad.accepted and sad.category in ("wrong answer", "bad format")
    assert done.accepted and done.record.description.endswith("<answer>anger</answer>")
    assert nolabel.category == "no emotion label"
    asked = [m["content"][-1]["text"] for body in fresh.requests for m in body["messages"] if m["role"] == "user"]
    assert len(asked) == 2 and "This face is labelled happiness." in asked[0] and "labelled sadness" in asked[1]


def test_synth_cli_with_an_endpoint(fresh, tmp_path, astronaut):
    source = _astronaut_records(tmp_path, astronaut)
    proc = subprocess.run(
        [sys.executable, "-m", "emoreason", "data", "synth", str(source), "--out", str(tmp_path / "sft.jsonl"),
         "--face-mode", "detect", "--base-url", fresh.base_url, "--model", "tiny", "--api-key", KEY,
         "--max-new-tokens", "60"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    kept = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert [r["id"] for r in kept] == ["smile", "done"] and kept[0]["description"] == ASTRONAUT_ANALYSIS
    assert "2 records with a description; 2 rejected" in proc.stderr


def test_eval_judge_scores_each_answer_once(fresh, tmp_path, astronaut):
    from emoreason.eval.judge import JUDGE_FILE, Judge
    from emoreason.eval.runner import RunConfig, run_eval

    for i, label in enumerate(("happy", "sad")):
        (tmp_path / "faces" / label).mkdir(parents=True)
        from PIL import Image

        Image.fromarray(astronaut[40 + i : 230 + i, 130:320]).save(tmp_path / "faces" / label / f"{i}.png")
    judge = Judge(fresh.base_url, "tiny", api_key=KEY, concurrency=2)
    config = RunConfig("folder", str(tmp_path / "faces"))
    report = run_eval(config, tmp_path / "run", progress=False, judge=judge)
    entries = [json.loads(line) for line in (tmp_path / "run" / JUDGE_FILE).read_text().splitlines()]
    assert sorted(e["id"] for e in entries) == ["happy/0", "sad/1"]
    assert all(e["reply"] and e["error"] is None for e in entries)  # the served model replied
    prompt = fresh.requests[-1]["messages"][0]["content"]
    assert "Gold emotion label:" in prompt and "<answer>" in prompt  # the analysis went to the judge
    assert report["n"] == 2
    asked = len(fresh.requests)
    run_eval(config, tmp_path / "run", progress=False, judge=judge)  # resumed: nothing new to ask
    assert len(fresh.requests) == asked


def test_eval_retries_endpoint_failures_on_the_next_run(fresh, tmp_path, astronaut):
    from PIL import Image

    from emoreason.eval.runner import RunConfig, read_rows, run_eval

    (tmp_path / "faces" / "happy").mkdir(parents=True)
    Image.fromarray(astronaut[40:230, 130:320]).save(tmp_path / "faces" / "happy" / "a.png")
    options = dict(base_url=fresh.base_url, model="tiny", api_key=KEY, max_new_tokens=60, max_retries=0)
    config = RunConfig("folder", str(tmp_path / "faces"), backend="openai", backend_options=options)
    fresh.fail_next[:] = [503]
    failed = run_eval(config, tmp_path / "run", progress=False)
    assert failed["errors"] == 1 and "HTTP 503" in failed["error_examples"][0]
    healed = run_eval(config, tmp_path / "run", progress=False)  # the endpoint is back: asked again
    assert healed["errors"] == 0 and healed["n"] == 1
    row = read_rows(tmp_path / "run" / "predictions.jsonl")["happy/a"]
    assert row["text"] and not row["error"] and "retryable" not in row  # the served model's answer replaced it


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_a_reply_that_is_not_a_json_object_is_one_line_naming_the_endpoint(fresh, body):
    """The reply is read as plain JSON (endpoint.py): what is not a JSON object is an EndpointError, not a crash."""
    fresh.raw_next.append(body)
    endpoint = ChatEndpoint(fresh.base_url, "tiny", api_key=KEY, max_retries=0)
    with pytest.raises(EndpointError, match=r"/v1/chat/completions: unreadable reply \(\w+\)$"):
        endpoint.complete([{"role": "user", "content": "hi"}])


def test_a_contradicted_reply_is_asked_for_again_sampling(fresh, astronaut):
    """The server's first reply cites an AU the front-end did not measure; `resample_contradicted` asks again at
    the resampling temperature, and keeps whichever of the two texts contradicts the measurements less."""
    from emoreason.faithfulness import contradictions

    wrong = "<think>The brows lower and draw together (AU4).</think><answer>anger</answer>"
    fresh.raw_next.append(json.dumps({"choices": [{"message": {"content": wrong}}]}).encode())
    with _analyzer(fresh, resample_contradicted=1, seed=3) as analyzer:
        face = analyzer.analyze(astronaut).faces[0]
    first, again = fresh.requests[-2:]
    assert (first["temperature"], again["temperature"], again["top_p"], again["seed"]) == (0.0, 1.0, 1.0, 4)
    assert first["messages"] == again["messages"]
    assert contradictions(face, wrong) == [
        "cites unmeasured AU4",
        "answers anger on evidence that does not support it",
    ]
    assert face.contradictions == contradictions(face, face.text) and len(face.contradictions) <= 1
