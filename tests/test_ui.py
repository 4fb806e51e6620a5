"""The Gradio demo driven in headless Chromium (Debian's chromium + playwright), as a user would: upload a photo,
analyse it, read the emotion, ask a follow-up, analyse a short video. Screenshots are saved by the test."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(os.environ.get("EMOREASON_SCREENSHOTS", "out/test-screenshots"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (make test installs Debian's chromium where it can)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    from emoreason.samples import write_demo_examples
    from emoreason.serving.gateway import create_app
    from emoreason.serving.server import BackgroundServer, build_engines
    from emoreason.ui.app import GatewayClient, build_demo

    samples = [str(p) for p in write_demo_examples(tmp_path_factory.mktemp("samples"))]
    engines = build_engines("embedded")
    port = _free_port()
    with BackgroundServer(create_app(engines)) as gateway:
        demo = build_demo(GatewayClient(gateway.url), samples)
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.goto(f"http://127.0.0.1:{port}")
            tab.samples = samples
            yield tab
            browser.close()
        demo.close()
    for engine in engines.values():
        engine.close()


def _shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 20_000
    return path


def test_nothing_uploaded_is_a_hint_not_an_error(page):
    page.click("#analyse")
    page.wait_for_selector(":text('Upload or take a photo first.')", timeout=30_000)  # an info toast
    page.wait_for_timeout(500)
    assert page.locator(":text-is('Error')").count() == 0  # no red error in the panels
    _shot(page, "ui-nothing-uploaded.png")


def test_upload_analyse_and_see_the_result(page):
    page.locator("#photo input[type=file]").set_input_files(page.samples[0])
    page.locator("#photo img").wait_for(timeout=30_000)  # the upload is shown
    page.click("#analyse")
    page.wait_for_selector("#emotion :text('happiness')", timeout=60_000)
    # the answer is a headline, the reasoning a folded block above it; the tags themselves never show
    page.wait_for_selector("#chat h3:has-text('Happiness')", timeout=60_000)
    chat = page.locator("#chat")
    assert "Reasoning" in chat.inner_text() and "<answer>" not in chat.inner_text()
    assert chat.locator("a[href='#au-12']").count() >= 1  # AU codes link to the glossary
    glossary = page.locator("#glossary").inner_text()
    assert "AU12 lip corner puller" in glossary and "zygomaticus major" in glossary
    page.locator("#annotated img").wait_for(timeout=30_000)
    bars = page.locator("#au-bars")
    assert "AU12 lip corner puller" in bars.inner_text() and "AU6 cheek raiser" in bars.inner_text()
    assert "present (at or above" in bars.inner_text() and bars.locator(".au-row.present").count() >= 2  # legend
    assert not page.locator("#face-select").is_visible()  # one face: no selector
    downloads = "".join(page.locator("#downloads").inner_text().split())  # names are split over lines
    assert all(name in downloads for name in ("analysis.json", "analysis.csv", "annotated.png")), downloads
    print("screenshot:", _shot(page, "ui-analysis.png"))


def test_the_reasoning_block_unfolds(page):
    """The reasoning folds away under the headline when the answer is in; one click shows it."""
    # Gradio's thought block: a title (role=button, class "expanded" while open) above the content
    page.wait_for_selector("#chat .thought-group [role=button]:not(.expanded)", timeout=10_000)  # folded
    visible_links = page.locator("#chat a[href='#au-12']:visible")
    assert visible_links.count() == 1  # only the headline's list of present AUs shows AU12
    page.locator("#chat .thought-group [role=button]").first.click()
    visible_links.nth(1).wait_for(timeout=10_000)  # the reasoning's own AU12 links now show
    page.wait_for_timeout(500)  # the unfolding animation, before the screenshot
    assert "lip corners" in page.locator("#chat .thought-group").first.inner_text()
    _shot(page, "ui-reasoning-open.png")


def test_follow_up_question(page):
    page.get_by_placeholder("Ask about this face").fill("Why not fear?")
    page.click("#ask")
    page.wait_for_selector("#chat :text('Fear is defined by')", timeout=60_000)
    _shot(page, "ui-follow-up.png")


def test_two_faces_get_a_face_selector(page):
    page.locator("#photo input[type=file]").set_input_files(page.samples[1])  # the photo and its mirror image
    page.wait_for_timeout(1000)
    page.click("#analyse")
    page.wait_for_selector("#face-select :text('Face 2: happiness')", timeout=60_000)
    assert "Face 1 of 2" in page.locator("#au-bars").inner_text()
    page.locator("#face-select label:has-text('Face 2')").click()
    page.wait_for_selector("#au-bars :text('Face 2 of 2')", timeout=30_000)
    assert page.locator("#chat h3:has-text('Face 2: Happiness')").count() == 1
    _shot(page, "ui-two-faces.png")


def test_a_photo_without_a_face_says_so(page):
    page.locator("#photo input[type=file]").set_input_files(page.samples[3])  # coffee.png
    page.wait_for_timeout(1000)
    page.click("#analyse")
    page.wait_for_selector("#chat :text('No face was found in this image.')", timeout=60_000)
    assert "No face found" in page.locator("#au-bars").inner_text()
    assert page.locator(":text-is('Error')").count() == 0
    _shot(page, "ui-no-face.png")


def test_an_image_the_gateway_refuses_is_a_sentence_not_a_red_error(page, tmp_path):
    from PIL import Image

    Image.new("RGB", (4, 4), "white").save(tmp_path / "tiny.png")
    page.locator("#photo input[type=file]").set_input_files(str(tmp_path / "tiny.png"))
    page.wait_for_timeout(1000)
    page.click("#analyse")
    page.wait_for_selector("#chat :text('Could not analyse this: image_url: image too small')", timeout=60_000)
    assert page.locator(":text-is('Error')").count() == 0
    _shot(page, "ui-refused.png")


def test_video_timeline_tracks_and_annotated_clip(page, astronaut, tmp_path):
    import cv2

    clip = tmp_path / "clip.webm"  # VP8: Chromium plays it (its open build has no MPEG-4 part 2 decoder)
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"VP80"), 10, (256, 256))
    face = np.ascontiguousarray(astronaut[20:276, 100:356, ::-1])  # BGR for OpenCV
    for _ in range(15):  # 1.5 s at 10 fps: 3 frames at 2 frames/s
        writer.write(face)
    writer.release()
    page.locator("input[type=file][accept*='video']").first.set_input_files(str(clip))
    page.wait_for_timeout(1500)
    page.click("#analyse-video")
    for _ in range(120):  # the rows arrive when every sampled frame is analysed
        text = page.locator("#timeline").inner_text()
        if text.count("happiness") >= 2:
            break
        page.wait_for_timeout(500)
    assert text.count("happiness") >= 2, text
    tracks = page.locator("#tracks textarea").input_value()
    assert tracks.startswith("== clip.webm (video, 3 frames") and "track 0: happiness over 3 frames" in tracks
    page.locator("#annotated-video video").wait_for(timeout=30_000)  # the annotated WebM plays in the page
    assert ".webm" in page.locator("#annotated-video video").get_attribute("src")
    assert page.locator(":text('Video not playable')").count() == 0
    _shot(page, "ui-video.png")


def test_the_demo_sends_the_pixels_it_was_given(astronaut):
    """No lossy re-encoding between the upload and the gateway: the data URL decodes to the same pixels, so the
    demo measures the same AUs as `emoreason analyze` on the same image."""
    import base64

    from emoreason.imageio import load_image
    from emoreason.ui.app import data_url

    url = data_url(astronaut)
    assert url.startswith("data:image/png;base64,")
    np.testing.assert_array_equal(load_image(base64.b64decode(url.split(",", 1)[1])), astronaut)
