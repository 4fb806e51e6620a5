"""`emoreason ui`: the Gradio chat demo, a client of the gateway.

Upload or take (webcam) a photo, or upload a video. The photo goes to the gateway's chat
endpoint with streaming on: the reasoning streams into an open "Reasoning" block, then folds
away under the answer as a headline (AU codes link to a glossary of what each one moves), and
the annotated image (boxes and mesh), the AU intensity bars and the emotion scores appear,
with a face selector when there are several faces, and the result to download as JSON, CSV
and an annotated PNG. Follow-up questions ("why not fear?") continue the same conversation
about the same image. A video is sampled to a frame budget over its whole length, each frame
goes to /v1/analyze, faces are followed across frames (one timeline row per face per frame,
a summary per track) and an annotated WebM plays in the page. The model (base or adapter) is
picked from the gateway's /v1/models. What is shown is built in `render.py`.

It talks to a running gateway (`--gateway URL`), or starts one in-process with the embedded
engine (the default: no model, no GPU).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..annotate import annotate, annotated_frames, write_video
from ..imageio import InputError
from ..prompting import image_data_url
from ..types import EmotionAnalysis
from ..video import IoUTracker, VideoAnalysis, iter_frames, video_info
from . import render

VIDEO_FRAME_BUDGET = 48  # frames analysed per clip, spread over its whole length (2 per second when short)


def data_url(rgb: np.ndarray) -> str:
    # PNG, lossless: the gateway measures the very pixels the demo was given, as the CLI does on the same file
    # (JPEG re-encoding moved AU intensities by up to 0.4: AU6 3.9 in the CLI, 4.3 in the demo).
    return image_data_url(rgb, "PNG")


class GatewayClient:
    """What the page needs from the gateway, through the official openai client and plain HTTP."""

    def __init__(self, url: str, api_key: str | None = None):
        import openai

        self.url = url.rstrip("/")
        self.api_key = api_key or "none"
        self.client = openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.api_key, max_retries=1, timeout=600)

    def models(self) -> list[str]:
        return [m.id for m in self.client.models.list().data]

    def stream_chat(self, model: str, messages: list[dict[str, Any]]):
        """Yield (text so far, result dict or None); the result comes with the last chunk."""
        text, result = "", None
        stream = self.client.chat.completions.create(model=model, messages=messages, stream=True,
                                                     extra_body={"emoreason": {"landmarks": True}})  # fmt: skip
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            extra = chunk.model_extra or {}
            if extra.get("emoreason"):
                result = extra["emoreason"]
            yield text, result

    def analyze(self, model: str, rgb: np.ndarray) -> dict[str, Any]:
        import httpx

        response = httpx.post(f"{self.url}/v1/analyze", json={"image": data_url(rgb), "model": model},
                              headers={"Authorization": f"Bearer {self.api_key}"}, timeout=600)  # fmt: skip
        body = response.json()
        if response.status_code != 200:
            raise ValueError(body.get("error", {}).get("message", response.text))
        return body


def _rgb(image) -> np.ndarray:
    return np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.uint8)


def _one_line(exc: Exception) -> str:
    """The gateway's own message for a refused request ('image_url: image too small (1x1 px; ...)'), else the
    exception's first line."""
    body = getattr(exc, "body", None)  # openai.APIStatusError: the JSON error the gateway sent
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class DemoHandlers:
    """The demo's callbacks. A photo analysis streams the photo outputs: the chat, the conversation sent to the
    gateway, the annotated image, the AU bars, the emotion scores, the question box, the result, the face
    selector, the downloads and the AU glossary."""

    def __init__(self, client: GatewayClient, work_dir: str | Path | None = None):
        self.client = client
        # downloads and annotated videos; Gradio serves files from the system temp dir
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="emoreason-ui-"))

    @staticmethod
    def _chat_only(history, conversation, question=None):
        """The photo outputs with only the chat (and the conversation) changed; `question` "" clears the box."""
        import gradio as gr

        skip = gr.update()
        return (
            history,
            conversation,
            skip,
            skip,
            skip,
            skip if question is None else question,
            skip,
            skip,
            skip,
            skip,
        )

    def ask(self, image, model, history, conversation):
        import gradio as gr

        if image is None:  # a hint, not an error: nothing else on the page changes
            gr.Info("Upload or take a photo first.")
            yield self._chat_only(history, conversation)
            return
        rgb = _rgb(image)
        prompt = "Which emotion does this face show? Reason from the Action Units."
        parts = [{"type": "image_url", "image_url": {"url": data_url(rgb)}}, {"type": "text", "text": prompt}]
        conversation = [{"role": "user", "content": parts}]
        history = [{"role": "user", "content": "Which emotion does this face show?"}]
        yield from self._stream(model, history, conversation, rgb)

    def follow_up(self, question, model, history, conversation, image):
        import gradio as gr

        hint = ("Analyse a photo first, then ask about it." if not conversation or image is None
                else "Type a question, e.g. 'Why not fear?'" if not question.strip() else None)  # fmt: skip
        if hint:
            gr.Info(hint)
            yield self._chat_only(history, conversation)
            return
        conversation = [*conversation, {"role": "user", "content": question}]
        history = [*history, {"role": "user", "content": question}]
        yield from self._stream(model, history, conversation, _rgb(image), follow=True)

    def _stream(self, model, history, conversation, rgb, follow=False):
        import gradio as gr

        done = list(history)  # the turns before this answer; the answer is re-rendered on every chunk
        text = ""
        try:
            for text, result in self.client.stream_chat(model, conversation):
                if follow:
                    yield self._chat_only(done + [render.follow_up_message(text)], conversation, "")
                    continue
                if result is None:
                    yield self._chat_only(done + [render.streaming_message(text)], conversation, "")
                    continue
                analysis = EmotionAnalysis.from_dict(result)
                choices = render.face_choices(analysis)
                files = render.write_downloads(analysis, rgb, tempfile.mkdtemp(dir=self.work_dir))
                selector = gr.update(choices=choices, value=0 if choices else None, visible=len(choices) > 1)
                answered = [*conversation, {"role": "assistant", "content": text}]
                shown = (annotate(rgb, analysis), render.au_bars(analysis), render.scores(analysis), "", result)
                extras = (selector, [str(p) for p in files], render.glossary_html(analysis))
                yield (done + render.reasoning_messages(analysis), answered, *shown, *extras)
            if follow:
                conversation = [*conversation, {"role": "assistant", "content": text}]
                yield self._chat_only(done + [render.follow_up_message(text)], conversation, "")
        except Exception as exc:  # noqa: BLE001 - one line for the user, in the chat and as a warning; no traceback
            message = _one_line(exc)
            gr.Warning(message)
            failed = {"role": "assistant", "content": f"Could not analyse this: {message}"}
            yield self._chat_only(done + [failed], conversation, "")

    def select_face(self, index, result):
        """The face selector (its values are face indices): that face's AU bars and emotion scores."""
        analysis = EmotionAnalysis.from_dict(result) if result else None
        return render.au_bars(analysis, index or 0), render.scores(analysis, index or 0)

    def video(self, path, model, progress=None):
        """Frames spread over the whole clip (at most VIDEO_FRAME_BUDGET, 2 per second for short clips), each
        analysed by the gateway; faces followed across frames; a timeline row per face per frame, a summary
        per track and an annotated WebM (VP8, written by OpenCV itself: browsers play it, no ffmpeg)."""
        import gradio as gr

        if not path:
            gr.Info("Upload a video first.")
            return gr.update(), gr.update(), gr.update(), gr.update()
        try:
            video = self._analyse_video(path, model, progress)
        except InputError as exc:
            gr.Warning(str(exc))
            return [], f"Could not read this video: {exc}", None, None
        rows = [[frame.time_s, "-", "no face", None, ""] for frame in video.frames if not frame.faces]
        rows += [[frame.time_s, face.track_id, face.emotion or "-", face.confidence,
                  ", ".join(f"AU{a.code}" for a in face.aus if a.present)]
                 for frame in video.frames for face in frame.faces]  # fmt: skip
        rows.sort(key=lambda r: (r[0], str(r[1])))
        out = Path(tempfile.mkdtemp(dir=self.work_dir))
        (out / "video.json").write_text(json.dumps(video.to_dict(), indent=2))
        # VP8 WebM: browsers play it; at least 1 frame/s, so a long clip's few frames do not crawl
        frames = (np.asarray(annotate(rgb, frame).convert("RGB")) for rgb, frame in annotated_frames(path, video))
        clip = write_video(frames, out / "annotated.webm", max(video.fps, 1.0))
        return rows, "\n".join(video.summary_lines()), str(clip) if clip else None, str(out / "video.json")

    def _analyse_video(self, path: str, model: str, progress) -> VideoAnalysis:
        native, duration = video_info(path)
        fps = min(2.0, VIDEO_FRAME_BUDGET / duration) if duration > 0 else 2.0
        expected = max(1, min(VIDEO_FRAME_BUDGET, int(duration * fps) + 1))
        tracker, frames = IoUTracker(), []
        for k, (index, time_s, rgb) in enumerate(iter_frames(path, fps=fps, max_frames=VIDEO_FRAME_BUDGET)):
            if progress is not None:
                progress(k / expected, desc=f"frame {k + 1} of about {expected}")
            try:
                analysis = EmotionAnalysis.from_dict(self.client.analyze(model, rgb))
            except ValueError as exc:  # one bad frame is a row with its error; the clip goes on
                analysis = EmotionAnalysis(
                    source=path, width=rgb.shape[1], height=rgb.shape[0], faces=[], backend=model, error=str(exc)
                )
            analysis.frame_index, analysis.time_s = index, round(time_s, 3)
            tracker.update(analysis)
            frames.append(analysis)
        if not frames:
            raise InputError(path, "no frames could be decoded")
        # named by its file name: Gradio's upload folder is no one's business
        return VideoAnalysis(
            source=Path(path).name, fps=fps, duration_s=round(duration, 3), frames=frames, tracks=tracker.tracks
        )


def build_demo(client: GatewayClient, examples: list[str] | None = None):
    import gradio as gr

    models = client.models()
    handlers = DemoHandlers(client)
    with gr.Blocks(title="emoreason") as demo:
        gr.Markdown("# emoreason\nFacial emotion, explained through Action Units.")
        conversation, result = gr.State([]), gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                model = gr.Dropdown(models, value=models[0], label="model (backend / adapter)")
                image = gr.Image(sources=["upload", "webcam"], type="numpy", label="photo", elem_id="photo")
                analyse = gr.Button("Analyse", variant="primary", elem_id="analyse")
                if examples:
                    gr.Examples(
                        examples, inputs=[image], label="examples: a smile, two faces, a greyscale face, no face"
                    )
            with gr.Column(scale=1):
                face = gr.Radio([], label="face", visible=False, elem_id="face-select")
                emotion = gr.Label(label="emotion", num_top_classes=3, elem_id="emotion")
                annotated = gr.Image(label="annotated", interactive=False, elem_id="annotated")
                bars = gr.HTML(elem_id="au-bars")
            with gr.Column(scale=1):
                chat = gr.Chatbot(label="reasoning", elem_id="chat", height=460)
                question = gr.Textbox(placeholder="Ask about this face, e.g. Why not fear?", label="follow-up")
                send = gr.Button("Ask", elem_id="ask")
                with gr.Accordion("AU glossary", open=True):
                    glossary = gr.HTML(render.glossary_html(None), elem_id="glossary")
                downloads = gr.File(label="downloads (JSON, CSV, annotated image)", file_count="multiple",
                                    interactive=False, elem_id="downloads")  # fmt: skip
        with gr.Row():
            with gr.Column(scale=1):
                clip = gr.Video(label="video", sources=["upload"])
                run_video = gr.Button("Analyse video", elem_id="analyse-video")
            with gr.Column(scale=2):
                tracks = gr.Textbox(label="face tracks", lines=3, interactive=False, elem_id="tracks")
                annotated_video = gr.Video(label="annotated video", interactive=False, elem_id="annotated-video")
                video_json = gr.File(label="video analysis (JSON)", interactive=False, height=90, elem_id="video-json")
        timeline = gr.Dataframe(headers=["time (s)", "track", "emotion", "confidence", "AUs present"],
                                label="video timeline", interactive=False, elem_id="timeline")  # fmt: skip
        outputs = [chat, conversation, annotated, bars, emotion, question, result, face, downloads, glossary]
        analyse.click(handlers.ask, [image, model, chat, conversation], outputs, api_name="analyse")
        send.click(handlers.follow_up, [question, model, chat, conversation, image], outputs, api_name="follow_up")
        question.submit(handlers.follow_up, [question, model, chat, conversation, image], outputs, api_name=False)
        face.change(handlers.select_face, [face, result], [bars, emotion], api_name=False)

        def video(path, model_id, progress=gr.Progress()):  # noqa: B008 - Gradio's way to ask for a progress bar
            return handlers.video(path, model_id, progress)

        run_video.click(video, [clip, model], [timeline, tracks, annotated_video, video_json], api_name="video")
    return demo


def run_ui(gateway: str | None, api_key: str | None, host: str, port: int, share: bool = False) -> None:
    from ..samples import write_demo_examples

    samples = [str(p) for p in write_demo_examples(Path.home() / ".cache" / "emoreason" / "samples")]
    if gateway:
        demo = build_demo(GatewayClient(gateway, api_key), samples)
        demo.launch(server_name=host, server_port=port, share=share)
        return
    from ..serving.gateway import create_app
    from ..serving.server import BackgroundServer, build_engines

    engines = build_engines("embedded")
    with BackgroundServer(create_app(engines)) as live:  # in-process: the same gateway, on loopback
        demo = build_demo(GatewayClient(live.url), samples)
        demo.launch(server_name=host, server_port=port, share=share)
