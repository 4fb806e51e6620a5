"""Reliability: no input kills a process (issue: one small PNG killed the gateway and the CLI).

OpenCV inside mediapipe aborts the whole process on an image side >= 32767 px, however few
pixels the image has. Two defences, each tested here: every image's size is checked before
native code sees it (the boundary, and proof that the largest allowed image is safe for the
real front-end), and the front-end runs in a worker process whose death costs one image
(the worker is killed mid-request, deterministically: stopped with SIGSTOP, then SIGKILLed
while a request waits on it).
"""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from emoreason import InputError
from emoreason.cli import main, write_sample_images
from emoreason.imageio import MAX_ASPECT, MAX_SIDE, check_dimensions, load_image


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@pytest.fixture(scope="module")
def killer_png() -> bytes:
    """The file that aborted the gateway: 32767x8 px, a few hundred bytes."""
    data = _png(32767, 8)
    assert len(data) < 1000
    return data


# ------------------------------------------------------------------ size checks
@pytest.mark.parametrize(
    "width, height, ok",
    [
        (MAX_SIDE, MAX_SIDE // MAX_ASPECT, True),  # the largest side at the most extreme aspect allowed
        (MAX_SIDE + 1, MAX_SIDE // MAX_ASPECT + 1, False),  # one pixel over the side limit
        (MAX_SIDE // MAX_ASPECT, MAX_SIDE, True),  # the same, portrait
        (MAX_SIDE, MAX_SIDE // MAX_ASPECT - 1, False),  # one pixel past the aspect limit
        (32767, 8, False),  # the file that aborted the process
        (8, 8, True),
        (7, 100, False),
    ],
)
def test_size_boundary(width, height, ok):
    if ok:
        check_dimensions(width, height)
    else:
        with pytest.raises(InputError):
            check_dimensions(width, height)


def test_killer_png_is_refused_before_decoding(killer_png):
    with pytest.raises(InputError) as info:
        load_image(killer_png, name="killer.png")
    assert str(info.value) == f"killer.png: image too large (32767x8 px; each side at most {MAX_SIDE} px)"


def test_arrays_from_the_python_api_are_checked_too(analyzer):
    with pytest.raises(InputError, match="too large"):
        analyzer.analyze(np.zeros((8, 32767, 3), np.uint8))
    with pytest.raises(InputError, match="too large"):
        analyzer.frontend.observe(np.zeros((8, 32767, 3), np.uint8))


# ------------------------------------------------------------------ the worker process
@pytest.fixture(scope="module")
def isolated():
    from emoreason.face.worker import IsolatedFrontEnd

    with IsolatedFrontEnd() as frontend:
        yield frontend


def test_largest_allowed_images_are_safe_for_the_real_front_end(isolated):
    """The cap leaves native code room: the biggest allowed shapes go through detection and the mesh
    without killing the worker (a crash would show as FrontEndCrashed and a restart)."""
    restarts = isolated.restarts
    for shape in ((MAX_SIDE // MAX_ASPECT, MAX_SIDE, 3), (MAX_SIDE, MAX_SIDE // MAX_ASPECT, 3)):
        isolated.observe(np.full(shape, 127, np.uint8))
        isolated.observe(np.full(shape, 127, np.uint8), face_mode="full")
    assert isolated.restarts == restarts


def _kill_while_waiting(frontend) -> None:
    """Stop the worker, wait until a request is waiting on it, then kill it: the request dies mid-flight."""
    os.kill(frontend.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 30
    while not frontend.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert frontend.busy, "no request reached the stopped worker"
    os.kill(frontend.pid, signal.SIGKILL)


def test_worker_killed_mid_image_costs_that_image_only(isolated, astronaut):
    from emoreason.face.worker import FrontEndCrashed

    assert len(isolated.observe(astronaut)) >= 1
    dead_pid, restarts = isolated.pid, isolated.restarts
    killer = threading.Thread(target=_kill_while_waiting, args=(isolated,))
    killer.start()
    with pytest.raises(FrontEndCrashed) as info:
        isolated.observe(astronaut, source="astronaut.png")
    killer.join()
    assert str(info.value) == (
        "astronaut.png: the face front-end crashed on this image (killed by SIGKILL); it was restarted"
    )
    faces = isolated.observe(astronaut)  # a fresh worker answers the next image
    assert faces[0].expression_prior and isolated.pid != dead_pid and isolated.restarts == restarts + 1


def test_worker_deadline_kills_a_stuck_image(astronaut):
    from emoreason.face.worker import FrontEndCrashed, IsolatedFrontEnd

    with IsolatedFrontEnd(timeout_s=1.0) as frontend:
        os.kill(frontend.pid, signal.SIGSTOP)  # stuck: it will never answer
        with pytest.raises(FrontEndCrashed, match="took longer than 1 s"):
            frontend.observe(astronaut)
        assert len(frontend.observe(astronaut)) >= 1


def test_analyzer_batch_goes_on_after_a_worker_crash(astronaut, two_faces):
    from emoreason import Analyzer

    with Analyzer(backend="embedded", isolate_frontend=True) as analyzer:
        killer = threading.Thread(target=_kill_while_waiting, args=(analyzer.frontend,))
        killer.start()
        results = analyzer.analyze_batch([astronaut, two_faces, astronaut])
        killer.join()
    assert "crashed on this image" in results[0].error
    assert [len(r.faces) for r in results[1:]] == [2, 1]
    assert results[2].faces[0].emotion == "happiness"


def test_cli_batch_refuses_the_killer_png_and_goes_on(tmp_path, killer_png, capsys):
    good = write_sample_images(tmp_path)
    (tmp_path / "killer.png").write_bytes(killer_png)
    code = main(["analyze", str(good[0]), str(tmp_path / "killer.png"), str(good[1]), "--format", "jsonl",
                 "--quiet"])  # fmt: skip
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and len(rows) == 3
    assert [len(r["faces"]) for r in rows] == [1, 0, 2] and rows[1]["error"]
    assert err.splitlines()[0] == f"error: {tmp_path / 'killer.png'}: image too large (32767x8 px; each side at " \
                                  f"most {MAX_SIDE} px)"  # fmt: skip
    assert "Traceback" not in err


# ------------------------------------------------------------------ the gateway
@pytest.fixture(scope="module")
def gateway():
    from emoreason.serving.gateway import create_app
    from emoreason.serving.server import BackgroundServer, build_engines

    engines = build_engines("embedded")
    with BackgroundServer(create_app(engines)) as live:
        yield live, engines["emoreason"]
    for engine in engines.values():
        engine.close()


def _chat(url: str, png: bytes) -> httpx.Response:
    import base64

    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url}}]}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)


def test_gateway_refuses_the_killer_png_and_keeps_serving(gateway, killer_png, astronaut):
    live, _ = gateway
    for reply in (_chat(live.url, killer_png),
                  httpx.post(f"{live.url}/v1/analyze", files={"file": ("k.png", killer_png)}, timeout=60)):  # fmt: skip
        assert reply.status_code == 413
        assert "32767x8" in reply.json()["error"]["message"]
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, format="PNG")
    assert _chat(live.url, buf.getvalue()).json()["emoreason"]["faces"][0]["emotion"] == "happiness"


def test_gateway_survives_its_front_end_dying_mid_request(gateway, astronaut):
    live, engine = gateway
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, format="PNG")
    frontend = engine.analyzer.frontend
    killer = threading.Thread(target=_kill_while_waiting, args=(frontend,))
    killer.start()
    reply = _chat(live.url, buf.getvalue())
    killer.join()
    assert reply.status_code == 500
    assert reply.json()["error"]["code"] == "frontend_crashed"
    assert httpx.get(f"{live.url}/health", timeout=10).json()["status"] == "ok"
    again = _chat(live.url, buf.getvalue())  # the next request gets a fresh worker
    assert again.status_code == 200 and again.json()["emoreason"]["faces"][0]["emotion"] == "happiness"


# ------------------------------------------------------------------ the CLI: files the OS refuses
def test_cli_unreadable_and_overlong_names_are_one_line_errors(tmp_path, capsys):
    good = write_sample_images(tmp_path)
    locked = tmp_path / "locked.png"
    locked.write_bytes(good[0].read_bytes())
    locked.chmod(0)
    overlong = str(tmp_path / ("x" * 300 + ".png"))  # longer than any file name the OS allows
    try:
        code = main(["analyze", str(locked), overlong, str(good[0]), "--format", "jsonl", "--quiet"])
    finally:
        locked.chmod(0o644)
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and len(rows) == 3 and rows[2]["faces"][0]["emotion"] == "happiness"
    lines = err.splitlines()
    assert "Traceback" not in err
    if os.geteuid() != 0:  # root reads any file: the permission case only exists for other users
        assert any(line.startswith(f"error: {locked}: cannot read the file") for line in lines)
    assert any(line.startswith("error: ") and "File name too long" in line for line in lines)


def test_cli_unwritable_out_is_a_one_line_error(tmp_path, capsys):
    good = write_sample_images(tmp_path)
    code = main(["analyze", str(good[0]), "--out", str(tmp_path / "no" / "such" / "dir" / "out.jsonl")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: --out ") and "cannot write" in err and "Traceback" not in err
