"""The gateway's front-end batcher (serving/batching.py) on the real face front-end: images that wait for the
front-end go through it in one call, each request gets its own image's observations (or its own error), and a
failed call leaves nothing stuck."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from emoreason.face.frontend import FaceFrontEnd
from emoreason.imageio import InputError
from emoreason.serving.batching import FrontEndBatcher


class HeldFrontEnd:
    """The real front-end, with its first call held until the test lets it go (so that others queue behind
    it) and a record of how many images each call took."""

    def __init__(self, inner: FaceFrontEnd, fail_batches: int = 0):
        self.inner = inner
        self.calls: list[int] = []
        self.release = threading.Event()
        self.fail_batches = fail_batches

    def observe(self, rgb):
        self.calls.append(1)
        assert self.release.wait(60)
        return self.inner.observe(rgb)

    def observe_many(self, images):
        self.calls.append(len(images))
        if self.fail_batches:
            self.fail_batches -= 1
            raise RuntimeError("the front-end fell over")
        return self.inner.observe_many(images)


@pytest.fixture(scope="module")
def frontend():
    f = FaceFrontEnd()
    yield f
    f.close()


def _queue_behind_a_held_call(batcher: FrontEndBatcher, held: HeldFrontEnd, first, others):
    """Start `first` (held in the front-end), then `others`, wait until they all queue, then let go.
    The outcome of each call in order: its observations or the exception it raised."""

    def call(rgb):
        try:
            return batcher.observe(rgb)
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            return exc

    with ThreadPoolExecutor(1 + len(others)) as pool:
        futures = [pool.submit(call, first)]
        while not held.calls:
            time.sleep(0.01)
        futures += [pool.submit(call, rgb) for rgb in others]
        deadline = time.monotonic() + 30
        while len(batcher._queue) < len(others) and time.monotonic() < deadline:
            time.sleep(0.01)
        held.release.set()
        return [f.result() for f in futures]


def _faces(observations):
    return [(tuple(round(v) for v in o.box), max(o.expression_prior, key=o.expression_prior.get))
            for o in observations]  # fmt: skip


def test_images_waiting_for_the_front_end_go_through_it_together(frontend, astronaut, two_faces, no_face):
    tiny = np.zeros((4, 4, 3), np.uint8)  # refused by the front-end's size check
    held = HeldFrontEnd(frontend)
    batcher = FrontEndBatcher(held, max_batch=8)
    outcomes = _queue_behind_a_held_call(batcher, held, astronaut, [two_faces, tiny, no_face])

    assert held.calls == [1, 3]  # the first alone, the three that queued behind it in one call: 2 calls, 4 images
    astronaut_faces, two, refused, none = outcomes
    assert _faces(astronaut_faces) == _faces(frontend.observe(astronaut))
    assert _faces(two) == _faces(frontend.observe(two_faces)) and len(two) == 2
    assert isinstance(refused, InputError) and "too small" in str(refused)  # its own error; the rest went on
    assert none == []


def test_a_batch_never_takes_more_than_max_batch(frontend, astronaut):
    held = HeldFrontEnd(frontend)
    batcher = FrontEndBatcher(held, max_batch=2)
    outcomes = _queue_behind_a_held_call(batcher, held, astronaut, [astronaut] * 3)
    assert held.calls == [1, 2, 1]  # the held one; then two of the three that queued; then the last
    assert all(_faces(o) == _faces(outcomes[0]) for o in outcomes)


def test_a_failed_front_end_call_fails_its_batch_and_the_next_call_runs(frontend, astronaut):
    held = HeldFrontEnd(frontend, fail_batches=1)
    batcher = FrontEndBatcher(held, max_batch=8)
    outcomes = _queue_behind_a_held_call(batcher, held, astronaut, [astronaut, astronaut])
    assert len(outcomes[0]) == 1  # the first call ran alone and succeeded
    assert all(isinstance(o, RuntimeError) and "fell over" in str(o) for o in outcomes[1:])
    assert len(batcher.observe(astronaut)) == 1 and not batcher._running and not batcher._queue


@pytest.mark.slow  # two front-end worker processes start (about 20 s)
def test_a_gateway_with_two_front_end_workers_answers_concurrent_requests_as_one_does(
    analyzer, astronaut, two_faces, no_face
):
    """`emoreason serve --frontend-workers 2`: the requests that wait together are dealt out to two front-end
    processes; each still gets its own image's analysis (the embedded engine in process as the reference)."""
    import httpx

    from emoreason.prompting import image_data_url
    from emoreason.serving.gateway import create_app
    from emoreason.serving.server import BackgroundServer, build_engines
    from emoreason.serving.settings import GatewaySettings

    images = [astronaut, two_faces, no_face, astronaut[:, ::-1].copy()]
    engines = build_engines("embedded", frontend_workers=2)
    try:
        assert len(engines["emoreason"].analyzer.frontend.members) == 2
        with BackgroundServer(create_app(engines, GatewaySettings(max_concurrency=8))) as live:

            def analyse(rgb):
                reply = httpx.post(f"{live.url}/v1/analyze", json={"image": image_data_url(rgb)}, timeout=120)
                assert reply.status_code == 200, reply.text
                return [(face["emotion"], len(face["aus"])) for face in reply.json()["faces"]]

            with ThreadPoolExecutor(len(images)) as pool:
                served = list(pool.map(analyse, images))
    finally:
        for engine in engines.values():
            engine.close()
    expected = [[(f.emotion, len(f.aus)) for f in analyzer.analyze(rgb).faces] for rgb in images]
    assert served == expected and served[2] == [] and all(served[i] for i in (0, 1, 3))
