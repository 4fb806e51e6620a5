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
from emoreason.cli import main
from emoreason.imageio import MAX_ASPECT, MAX_SIDE, check_dimensions, load_image
from emoreason.samples import write_sample_images


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


def test_large_images_travel_through_shared_memory_and_none_is_left(isolated, astronaut):
    """Pixels over 1 MiB go to the worker through a shared-memory block (not pickled through the pipe); the
    results are the in-process front-end's, and every block is gone afterwards."""
    from emoreason.face.frontend import FaceFrontEnd

    big = np.ascontiguousarray(np.tile(astronaut, (2, 2, 1)))  # 1024 x 1024 x 3: 3 MiB
    before = set(os.listdir("/dev/shm"))
    remote = isolated.observe(big)
    batch = isolated.observe_many([big, astronaut, big])
    assert set(os.listdir("/dev/shm")) == before
    local = FaceFrontEnd()
    try:
        assert [o.box for o in remote] == [o.box for o in local.observe(big)]
    finally:
        local.close()
    assert [len(x) for x in batch] == [len(remote), 1, len(remote)] and len(remote) == 4


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


@pytest.mark.slow  # a worker process or subprocess run of many seconds
def test_worker_deadline_kills_a_stuck_image(astronaut):
    from emoreason.face.worker import FrontEndCrashed, IsolatedFrontEnd

    with IsolatedFrontEnd(timeout_s=1.0) as frontend:
        os.kill(frontend.pid, signal.SIGSTOP)  # stuck: it will never answer
        with pytest.raises(FrontEndCrashed, match="took longer than 1 s"):
            frontend.observe(astronaut)
        assert len(frontend.observe(astronaut)) >= 1


@pytest.mark.slow  # a worker process or subprocess run of many seconds
def test_analyzer_batch_goes_on_after_a_worker_crash(astronaut, two_faces):
    """The batch goes to the worker in one round trip; when the worker dies on it, it is restarted and the
    images go again one at a time (a crash an image causes would then cost that image alone)."""
    from emoreason import Analyzer

    with Analyzer(backend="embedded", isolate_frontend=True) as analyzer:
        killer = threading.Thread(target=_kill_while_waiting, args=(analyzer.frontend,))
        killer.start()
        results = analyzer.analyze_batch([astronaut, two_faces, astronaut])
        killer.join()
        assert analyzer.frontend.restarts == 1
    assert [r.error for r in results] == [None, None, None]
    assert [len(r.faces) for r in results] == [1, 2, 1]
    assert results[2].faces[0].emotion == "happiness"


@pytest.mark.slow  # a worker process or subprocess run of many seconds
def test_one_image_crash_costs_that_image_when_alone(astronaut, two_faces):
    """A batch of one goes straight to `observe`: the crash is that image's error, the next image is fine."""
    from emoreason.face.worker import IsolatedFrontEnd

    with IsolatedFrontEnd() as frontend:
        killer = threading.Thread(target=_kill_while_waiting, args=(frontend,))
        killer.start()
        [crashed] = frontend.observe_many([astronaut])
        killer.join()
        assert isinstance(crashed, InputError) and "crashed on this image" in crashed.reason
        assert [len(x) for x in frontend.observe_many([two_faces, astronaut])] == [2, 1]


@pytest.mark.slow  # a worker process or subprocess run of many seconds
def test_cli_batch_refuses_the_killer_png_and_goes_on(tmp_path, killer_png, capsys):
    good = write_sample_images(tmp_path)
    (tmp_path / "killer.png").write_bytes(killer_png)
    code = main(["analyze", str(good[0]), str(tmp_path / "killer.png"), str(good[1]), "--format", "jsonl",
                 "--quiet"])  # fmt: skip
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and len(rows) == 3
    assert [len(r["faces"]) for r in rows] == [1, 0, 2] and rows[1]["error"]
    killer = tmp_path / "killer.png"
    assert err.splitlines()[0] == f"emoreason: error: {killer}: image too large (32767x8 px; each side at most " \
                                  f"{MAX_SIDE} px)"  # fmt: skip
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
    upload = httpx.post(f"{live.url}/v1/analyze", files={"file": ("k.png", killer_png)}, timeout=60)
    for reply in (_chat(live.url, killer_png), upload):
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
        assert any(line.startswith(f"emoreason: error: {locked}: cannot read the file") for line in lines)
    assert any(line.startswith("emoreason: error: ") and "File name too long" in line for line in lines)


def test_cli_unwritable_out_is_a_one_line_error(tmp_path, capsys):
    good = write_sample_images(tmp_path)
    code = main(["analyze", str(good[0]), "--out", str(tmp_path / "no" / "such" / "dir" / "out.jsonl")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("emoreason: error: --out ") and "cannot write" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------ the gateway: fetches, admission, bad bodies
class _Origin:
    """Loopback HTTP origins for the allow-list tests: a redirect to another host, a slow drip, an image."""

    def __init__(self, png: bytes):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path == "/face.png":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(png)))
                    self.end_headers()
                    self.wfile.write(png)
                elif self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", origin.redirect_to)
                    self.end_headers()
                elif self.path == "/drip":  # one byte every 0.5 s: a per-read timeout never fires
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    for _ in range(40):
                        try:
                            self.wfile.write(b"x")
                            self.wfile.flush()
                        except OSError:
                            return
                        time.sleep(0.5)

            def log_message(self, *args):
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.redirect_to = ""
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def guarded(astronaut):
    """A gateway with a key, an allow-list of one loopback origin, a 2 s fetch deadline and a limit of 1."""
    from emoreason.serving.gateway import create_app
    from emoreason.serving.server import BackgroundServer, build_engines
    from emoreason.serving.settings import GatewaySettings

    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, format="PNG")
    origin, elsewhere = _Origin(buf.getvalue()), _Origin(buf.getvalue())
    closed = f"http://127.0.0.1:{socket_free_port()}"  # allow-listed, but nothing listens there
    settings = GatewaySettings(api_keys=("k",), allowed_url_prefixes=(f"{origin.url}/", f"{closed}/"),
                               fetch_timeout_s=2.0, max_concurrency=1, request_timeout_s=60)  # fmt: skip
    engines = build_engines("embedded")
    with BackgroundServer(create_app(engines, settings)) as live:
        live.closed = closed
        yield live, origin, elsewhere, buf.getvalue()
    for engine in engines.values():
        engine.close()
    origin.close()
    elsewhere.close()


def _url_chat(base: str, image_url: str, key: str = "k", **extra) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_url}}]}],
            **extra}  # fmt: skip
    return httpx.post(f"{base}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"},
                      timeout=60)  # fmt: skip


def test_redirect_off_the_allow_list_is_not_followed(guarded):
    live, origin, elsewhere, _ = guarded
    assert _url_chat(live.url, f"{origin.url}/face.png").status_code == 200  # the allow-listed origin works
    origin.redirect_to = f"{elsewhere.url}/face.png"  # a hop to a host that is not on the list
    reply = _url_chat(live.url, f"{origin.url}/redirect")
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "fetch_failed"
    origin.redirect_to = f"{origin.url}/face.png"  # a hop that stays on the list is followed
    assert _url_chat(live.url, f"{origin.url}/redirect-ok").status_code == 200


def test_fetch_failures_all_read_the_same(guarded):
    """A closed port, a missing file and a redirect off the list: one message, nothing about the network."""
    live, origin, elsewhere, _ = guarded
    origin.redirect_to = f"{elsewhere.url}/face.png"
    messages = {
        _url_chat(live.url, f"{live.closed}/face.png").json()["error"]["message"],
        _url_chat(live.url, f"{origin.url}/missing.png").json()["error"]["message"],
        _url_chat(live.url, f"{origin.url}/redirect").json()["error"]["message"],
    }
    assert messages == {"messages[0].image_url: could not fetch the image"}


def socket_free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _in_flight(url: str) -> int:
    return httpx.get(f"{url}/health", headers={"Authorization": "Bearer k"}, timeout=30).json()["in_flight"]


def test_a_dripping_source_neither_freezes_the_gateway_nor_outlives_its_deadline(guarded):
    live, origin, _, _ = guarded
    result = {}
    fetcher = threading.Thread(target=lambda: result.update(reply=_url_chat(live.url, f"{origin.url}/drip")))
    t0 = time.monotonic()
    fetcher.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _in_flight(live.url) < 1:
        time.sleep(0.02)  # the fetch has started
    for _ in range(5):
        assert httpx.get(f"{live.url}/health", timeout=10).status_code == 200
    # The loop is free while the fetch drips: five answers came back while the fetch was still running
    # (a loop blocked by the fetch would have answered them only after it ended).
    assert fetcher.is_alive()
    fetcher.join()
    assert result["reply"].status_code == 400 and time.monotonic() - t0 < 10  # the 2 s deadline, not 20 s


def test_429_comes_before_the_body_is_read(guarded):
    """With the one slot taken, a refusal does not wait for the body: the server answers 429 to a request
    whose body has not even been sent (shown by the order of events, not by a clock)."""
    import socket
    from urllib.parse import urlsplit

    live, origin, _, _ = guarded
    result = {}
    slow = threading.Thread(target=lambda: result.update(reply=_url_chat(live.url, f"{origin.url}/drip")))
    slow.start()  # holds the only slot for ~2 s
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _in_flight(live.url) < 1:
        time.sleep(0.02)
    address = urlsplit(live.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as conn:
        conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 8000000\r\n\r\n{\"messages\": [")  # fmt: skip
        head = conn.recv(4096).decode("latin-1")  # 8 MB announced, 14 bytes sent: only an early answer comes back
    slow.join()
    assert head.startswith("HTTP/1.1 429") and "retry-after: 1" in head.lower()


@pytest.mark.parametrize(
    "body, status",
    [
        ('{"messages": ' + "[" * 10000 + "]" * 10000 + "}", 400),  # nested 10,000 deep
        ({"model": ["emoreason"], "messages": [{"role": "user", "content": "hi"}]}, 400),
        ({"model": {"a": 1}, "messages": [{"role": "user", "content": "hi"}]}, 400),
        ({"model": "m" * 5000, "messages": [{"role": "user", "content": "hi"}]}, 404),
        ({"stream": "no", "messages": [{"role": "user", "content": "hi"}]}, 400),
    ],
)
def test_malformed_bodies_are_4xx(guarded, body, status):
    live = guarded[0]
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    reply = httpx.post(f"{live.url}/v1/chat/completions", headers={"Authorization": "Bearer k",
                       "Content-Type": "application/json"}, timeout=30, **kwargs)  # fmt: skip
    assert reply.status_code == status
    error = reply.json()["error"]
    assert "\n" not in error["message"] and len(error["message"]) < 300


def test_interop_bearer_case_wrapped_base64_and_non_string_follow_up(guarded):
    import base64
    import textwrap

    live, _, _, png = guarded
    wrapped = "\n".join(textwrap.wrap(base64.b64encode(png).decode(), 76))  # MIME-style base64
    reply = httpx.post(f"{live.url}/v1/analyze", json={"image": wrapped}, headers={"Authorization": "bearer k"},
                       timeout=60)  # fmt: skip
    assert reply.status_code == 200 and reply.json()["faces"][0]["emotion"] == "happiness"
    image_part = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}}
    messages = [{"role": "user", "content": [image_part]}, {"role": "assistant", "content": "happiness"},
                {"role": "user", "content": [{"type": "text", "text": 42}]}]  # fmt: skip
    reply = httpx.post(f"{live.url}/v1/chat/completions", json={"messages": messages},
                       headers={"Authorization": "Bearer k"}, timeout=60)  # fmt: skip
    assert reply.status_code == 400 and "text" in reply.json()["error"]["message"]


@pytest.mark.slow  # a worker process or subprocess run of many seconds
def test_a_timed_out_analysis_keeps_its_slot_until_it_ends(astronaut):
    from emoreason.serving.gateway import create_app
    from emoreason.serving.server import BackgroundServer, build_engines
    from emoreason.serving.settings import GatewaySettings

    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, format="PNG")
    engines = build_engines("embedded")
    settings = GatewaySettings(max_concurrency=1, request_timeout_s=1.0)
    worker = engines["emoreason"].analyzer.frontend
    try:
        with BackgroundServer(create_app(engines, settings)) as live:
            os.kill(worker.pid, signal.SIGSTOP)  # the analysis hangs...
            try:
                first = _chat(live.url, buf.getvalue())
                assert first.status_code == 504  # ...the client hears so after the deadline...
                assert _chat(live.url, buf.getvalue()).status_code == 429  # ...but the work still holds the slot
            finally:
                os.kill(worker.pid, signal.SIGCONT)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _chat(live.url, buf.getvalue()).status_code == 429:
                time.sleep(0.2)  # the stopped analysis finishes and gives the slot back
            assert _chat(live.url, buf.getvalue()).status_code == 200
    finally:
        for engine in engines.values():
            engine.close()


# ------------------------------------------------------------------ decoding: formats and bit depths
def _encoded(array_or_image, fmt: str) -> bytes:
    img = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_high_bit_depth_images_keep_their_grey_levels():
    ramp16 = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    ramp_float = np.linspace(0, 1, 64 * 64).reshape(64, 64).astype(np.float32)
    for data in (_encoded(ramp16, "PNG"), _encoded(ramp_float, "TIFF")):
        rgb = load_image(data)
        assert rgb.dtype == np.uint8 and rgb.min() == 0 and rgb.max() == 255
        assert 120 <= rgb[32, 32, 0] <= 136  # mid-grey stays mid-grey (not near-white or black)


def test_exif_orientation_is_applied_and_a_callers_image_is_left_as_it_was():
    """A camera's portrait JPEG (EXIF orientation 6: turn 90 degrees clockwise to view) comes out upright;
    one without the tag comes out as stored; a PIL image passed in by a caller is not changed."""
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:, :10] = 255  # a white band on the stored image's left edge
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    upright = load_image(buf.getvalue(), name="portrait.jpg")
    assert upright.shape == (60, 40, 3) and upright[:10].mean() > 200 and upright[-10:].mean() < 50  # band on top
    assert load_image(_encoded(stored, "JPEG"), name="plain.jpg").shape == (40, 60, 3)
    theirs = Image.open(io.BytesIO(buf.getvalue()))
    load_image(theirs)
    assert theirs.size == (60, 40) and theirs.getexif()[0x0112] == 6


def test_only_raster_formats_are_opened():
    for fmt in ("EPS", "PDF"):
        data = _encoded(Image.new("RGB", (64, 64)), fmt)
        with pytest.raises(InputError) as info:
            load_image(data, name=f"x.{fmt.lower()}")
        assert str(info.value) == f"x.{fmt.lower()}: not an image (expected JPEG, PNG, BMP, WebP, TIFF or GIF)"


def test_decoder_messages_stay_out_of_errors(astronaut):
    data = _encoded(astronaut, "PNG")
    with pytest.raises(InputError) as info:
        load_image(data[: len(data) // 2], name="half.png")
    assert str(info.value) == "half.png: corrupt or truncated image"


# ------------------------------------------------------------------ fuzz: 1,000 malformed requests
def _mutations(rng: np.random.Generator, png: bytes, jpeg: bytes) -> list[tuple[str, dict]]:
    """(route, httpx request kwargs): a seeded mix of broken JSON, wrong types, and broken or odd images."""
    import base64

    def data_url(blob: bytes, mime: str = "image/png") -> str:
        return f"data:{mime};base64," + base64.b64encode(blob).decode()

    def broken_image() -> bytes:
        blob = bytearray(png if rng.random() < 0.5 else jpeg)
        kind = rng.integers(6)
        if kind == 0:  # truncated
            return bytes(blob[: int(rng.integers(1, len(blob)))])
        if kind == 1:  # flipped bytes
            for i in rng.integers(0, len(blob), size=int(rng.integers(1, 50))):
                blob[i] ^= int(rng.integers(1, 256))
            return bytes(blob)
        if kind == 2:  # random bytes
            return rng.bytes(int(rng.integers(0, 4000)))
        if kind == 3:  # a header claiming odd sizes
            w, h = (int(v) for v in rng.choice([1, 7, 8, 9, 16384, 16385, 32767, 65535], size=2))
            return _png(max(w, 1), max(h, 1)) if w * h <= 5_000_000 else _png(8, 8)
        if kind == 4:  # odd modes
            mode = str(rng.choice(["1", "L", "LA", "P", "RGBA", "I;16", "F", "CMYK"]))
            return _encoded(Image.new(mode, (int(rng.integers(8, 80)), int(rng.integers(8, 80)))),
                            "TIFF" if mode in ("F", "CMYK") else "PNG")  # fmt: skip
        return b""

    def junk() -> object:
        options = [None, 0, -1, 1e308, "", "x" * int(rng.integers(1, 3000)), [], {}, [None], {"a": []}, True,
                   "\u0000\ud7ff"]  # fmt: skip
        return options[int(rng.integers(len(options)))]

    cases = []
    for _ in range(1000):
        kind = rng.integers(9)
        if kind == 0:  # not JSON at all
            cases.append(("/v1/chat/completions", {"content": rng.bytes(int(rng.integers(0, 500))),
                                                   "headers": {"Content-Type": "application/json"}}))  # fmt: skip
        elif kind == 1:  # JSON of the wrong shape
            cases.append(("/v1/chat/completions", {"json": {"messages": junk(), "model": junk(), "stream": junk()}}))
        elif kind == 2:  # messages with wrong parts
            part = {"type": junk(), "image_url": junk(), "text": junk()}
            cases.append(("/v1/chat/completions", {"json": {"messages": [{"role": junk(), "content": [part]}]}}))
        elif kind in (3, 4):  # a broken image in a well-formed request
            url = data_url(broken_image(), str(rng.choice(["image/png", "image/jpeg", "text/plain"])))
            body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}
            cases.append(("/v1/chat/completions", {"json": body}))
        elif kind == 5:  # a broken upload
            cases.append(("/v1/analyze", {"files": {"file": ("f.png", broken_image())}}))
        elif kind == 6:  # broken base64
            text = base64.b64encode(broken_image()).decode()
            text = text[: int(rng.integers(0, len(text) + 1))] + str(rng.choice(["", "=", "!!", "\n", " "]))
            cases.append(("/v1/analyze", {"json": {"image": text, "model": junk()}}))
        elif kind == 7:  # URLs that must not be fetched
            url = str(rng.choice(["http://127.0.0.1:1/x.png", "file:///etc/passwd", "ftp://x/y", "data:", "//x"]))
            body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}
            cases.append(("/v1/chat/completions", {"json": body}))
        else:  # a follow-up with odd turns
            first = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(png)}}]}
            cases.append(
                (
                    "/v1/chat/completions",
                    {
                        "json": {
                            "messages": [
                                first,
                                {"role": "assistant", "content": junk()},
                                {"role": "user", "content": junk()},
                            ]
                        }
                    },
                )
            )
    return cases


@pytest.mark.slow
def test_fuzz_a_thousand_malformed_requests(astronaut):
    from emoreason.serving.gateway import create_app
    from emoreason.serving.server import BackgroundServer, build_engines

    small = np.ascontiguousarray(astronaut[40:240, 140:320])
    png, jpeg = _encoded(small, "PNG"), _encoded(small, "JPEG")
    cases = _mutations(np.random.default_rng(2026), png, jpeg)
    engines = build_engines("embedded")
    statuses: dict[int, int] = {}
    try:
        with BackgroundServer(create_app(engines)) as live, httpx.Client(base_url=live.url, timeout=60) as client:
            for route, kwargs in cases:
                reply = client.post(route, **kwargs)
                statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
                assert reply.status_code < 500, (route, reply.status_code, reply.text[:200])
                if reply.status_code >= 400:
                    message = reply.json()["error"]["message"]
                    assert "\n" not in message and len(message) < 400
                assert client.get("/health").status_code == 200  # alive after each
            good = _chat(live.url, png)
            assert good.status_code == 200 and good.json()["emoreason"]["faces"][0]["emotion"] == "happiness"
    finally:
        for engine in engines.values():
            engine.close()
    assert sum(statuses.values()) == 1000 and len(statuses) > 2  # the mix reached several kinds of answer


@pytest.mark.slow  # a worker process or subprocess run of many seconds
def test_a_half_sent_body_times_out_with_408():
    import socket

    from emoreason.serving.gateway import create_app
    from emoreason.serving.server import BackgroundServer, build_engines
    from emoreason.serving.settings import GatewaySettings

    engines = build_engines("embedded")
    try:
        with BackgroundServer(create_app(engines, GatewaySettings(read_timeout_s=1.0))) as live:
            host, port = live.url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 1000\r\n\r\n{\"image\": \"")  # fmt: skip
                t0 = time.monotonic()
                reply = sock.recv(4096).decode()
            assert reply.startswith("HTTP/1.1 408") and time.monotonic() - t0 < 5
            assert httpx.get(f"{live.url}/health", timeout=10).status_code == 200
    finally:
        for engine in engines.values():
            engine.close()


# ------------------------------------------------------------------ eval: a CSV never shrinks silently
@pytest.mark.slow  # a worker process or subprocess run of many seconds
def test_eval_csv_reports_left_out_rows_and_keeps_ids_unique(tmp_path, astronaut, capsys):
    from emoreason.cli import main as cli

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(astronaut[40:240, 140:320]).save(tmp_path / folder / "face.png")  # same name, two folders
    rows = ["image,label", "a/face.png,happiness", "b/face.png,happy", "missing.png,sadness", "a/face.png,smirk"]
    (tmp_path / "labels.csv").write_bytes(b"\xef\xbb\xbf" + "\n".join(rows).encode() + b"\n")  # with a BOM
    out = tmp_path / "run"
    assert cli(["eval", "--benchmark", "csv", "--data", str(tmp_path / "labels.csv"), "--out", str(out),
                "--quiet"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "warning: 2 rows of" in err
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert sorted(p["id"] for p in predictions) == ["a/face.png", "b/face.png"]
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == 2 and report["dropped"]["count"] == 2
    reasons = set(report["dropped"]["reasons"])
    assert reasons == {"image not found", "unknown label 'smirk' (expected an emotion such as happiness)"}


# ------------------------------------------------------------------ a failed model server: 502 on every path
def test_a_dead_model_server_is_502_on_every_route(astronaut):
    import base64

    from emoreason.serving.gateway import create_app
    from emoreason.serving.server import BackgroundServer, build_engines

    png = _encoded(astronaut, "PNG")
    dead = f"http://127.0.0.1:{socket_free_port()}/v1"
    engines = build_engines("vllm", name="m", base_url=dead, model="m", max_retries=0, timeout=5)
    try:
        with BackgroundServer(create_app(engines)) as live:
            url = "data:image/png;base64," + base64.b64encode(png).decode()
            body = {"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": url}}]}]}  # fmt: skip
            chat = httpx.post(f"{live.url}/v1/chat/completions", json=body, timeout=60)
            analyze = httpx.post(f"{live.url}/v1/analyze", files={"file": ("a.png", png)}, timeout=60)
            for reply in (chat, analyze):
                assert reply.status_code == 502 and reply.json()["error"]["code"] == "upstream_error"
            stream = httpx.post(f"{live.url}/v1/chat/completions", json={**body, "stream": True}, timeout=60)
            events = [json.loads(line[6:]) for line in stream.text.splitlines() if line.startswith("data: {")]
            assert events[-1]["error"]["code"] == "upstream_error"  # an error event, as OpenAI streams end
            assert "[error]" not in stream.text
    finally:
        for engine in engines.values():
            engine.close()


def test_unknown_routes_and_methods_answer_in_the_openai_error_shape(gateway):
    live, _ = gateway
    for reply in (httpx.get(f"{live.url}/v1/nothing", timeout=10), httpx.get(f"{live.url}/v1/chat/completions")):
        error = reply.json()["error"]
        assert reply.status_code in (404, 405) and error["message"] and error["type"] == "invalid_request_error"
