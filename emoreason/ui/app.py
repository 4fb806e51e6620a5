"""`emoreason ui`: the Gradio chat demo, a client of the gateway.

Upload or take (webcam) a photo, or upload a short video. The photo goes to the gateway's
chat endpoint with streaming on: the reasoning streams into the chat, then the annotated
image (boxes and mesh), the AU intensity bars and the emotion with its confidence appear.
Follow-up questions ("why not fear?") continue the same conversation about the same image.
A video is sampled at 2 frames/s and each frame goes to /v1/analyze; a table shows the
emotion over time. The model (base or adapter) is picked from the gateway's /v1/models.

It talks to a running gateway (`--gateway URL`), or starts one in-process with the embedded
engine (the default: no model, no GPU).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..annotate import annotate
from ..prompting import image_data_url
from ..types import EmotionAnalysis

MAX_VIDEO_FRAMES = 16


def data_url(rgb: np.ndarray) -> str:
    # PNG, lossless: the gateway measures the very pixels the demo was given, as the CLI does on the same file
    # (JPEG re-encoding moved AU intensities by up to 0.4: AU6 3.9 in the CLI, 4.3 in the demo).
    return image_data_url(rgb, "PNG")


def au_bars(analysis: EmotionAnalysis) -> str:
    """HTML bars of each face's AU intensities (0-5), present AUs highlighted."""
    if not analysis.faces:
        return "<p>No face found.</p>"
    blocks = []
    for i, face in enumerate(analysis.faces):
        rows = []
        for au in sorted(face.aus, key=lambda a: -a.intensity):
            width = max(0.0, min(au.intensity / 5.0, 1.0)) * 100
            colour = "#e4572e" if au.present else "#bbbbbb"
            rows.append(
                f'<div style="display:flex;align-items:center;gap:6px;font:12px sans-serif">'
                f'<span style="width:190px">AU{au.code} {html.escape(au.name)}</span>'
                f'<span style="flex:1;background:#eee;height:10px"><span style="display:block;height:10px;'
                f'width:{width:.0f}%;background:{colour}"></span></span>'
                f'<span style="width:28px">{au.intensity:.1f}</span></div>'
            )
        title = f"Face {i + 1}: {html.escape(face.emotion or '?')}" if len(analysis.faces) > 1 else "Action Units"
        blocks.append(f'<div class="au-bars"><b>{title}</b>{"".join(rows)}</div>')
    return "".join(blocks)


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


class DemoHandlers:
    """The demo's callbacks: each streams (chat, conversation, annotated, AU bars, scores, question box)."""

    def __init__(self, client: GatewayClient):
        self.client = client

    def ask(self, image, model, history, conversation):
        import gradio as gr

        if image is None:  # a hint, not an error: nothing else on the page changes
            gr.Info("Upload or take a photo first.")
            yield history, conversation, gr.update(), gr.update(), gr.update(), gr.update()
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
            yield history, conversation, gr.update(), gr.update(), gr.update(), gr.update()
            return
        conversation = [*conversation, {"role": "user", "content": question}]
        history = [*history, {"role": "user", "content": question}]
        yield from self._stream(model, history, conversation, _rgb(image), follow=True)

    def _stream(self, model, history, conversation, rgb, follow=False):
        import gradio as gr

        history = [*history, {"role": "assistant", "content": ""}]
        skip = gr.update()
        try:
            for text, result in self.client.stream_chat(model, conversation):
                history[-1] = {"role": "assistant", "content": text}
                if result is None or follow:
                    yield history, conversation, skip, skip, skip, ""
                    continue
                analysis = EmotionAnalysis.from_dict(result)
                conversation = [*conversation, {"role": "assistant", "content": text}]
                yield history, conversation, annotate(rgb, analysis), au_bars(analysis), _scores(analysis), ""
            if follow:
                conversation = [*conversation, {"role": "assistant", "content": history[-1]["content"]}]
                yield history, conversation, skip, skip, skip, ""
        except Exception as exc:  # noqa: BLE001 - shown to the user as one line
            raise gr.Error(f"{type(exc).__name__}: {exc}") from None

    def video(self, path, model):
        import gradio as gr

        if not path:
            gr.Info("Upload a video first.")
            return gr.update()
        from ..video import iter_frames

        rows = []
        for _, time_s, rgb in iter_frames(path, fps=2.0, max_frames=MAX_VIDEO_FRAMES):
            result = self.client.analyze(model, rgb)
            faces = result.get("faces") or []
            f = faces[0] if faces else {}
            present = ", ".join(f"AU{a['code']}" for a in f.get("aus", []) if a.get("present"))
            rows.append([round(time_s, 2), len(faces), f.get("emotion") or "-", f.get("confidence"), present])
        return rows


def _scores(analysis: EmotionAnalysis) -> dict[str, float]:
    """The emotion label's values: the backend's probabilities, or the answer alone when it has none."""
    face = analysis.faces[0] if analysis.faces else None
    if face and face.emotion_scores:
        return face.emotion_scores
    return {face.emotion: 1.0} if face and face.emotion else {}


def build_demo(client: GatewayClient, examples: list[str] | None = None):
    import gradio as gr

    models = client.models()
    handlers = DemoHandlers(client)
    with gr.Blocks(title="emoreason") as demo:
        gr.Markdown("# emoreason\nFacial emotion, explained through Action Units.")
        conversation = gr.State([])
        with gr.Row():
            with gr.Column(scale=1):
                model = gr.Dropdown(models, value=models[0], label="model (backend / adapter)")
                image = gr.Image(sources=["upload", "webcam"], type="numpy", label="photo", elem_id="photo")
                analyse = gr.Button("Analyse", variant="primary", elem_id="analyse")
                if examples:
                    gr.Examples(examples, inputs=[image])
                clip = gr.Video(label="short video", sources=["upload"])
                run_video = gr.Button("Analyse video")
            with gr.Column(scale=1):
                emotion = gr.Label(label="emotion", num_top_classes=3, elem_id="emotion")
                annotated = gr.Image(label="annotated", interactive=False, elem_id="annotated")
                bars = gr.HTML(elem_id="au-bars")
            with gr.Column(scale=1):
                chat = gr.Chatbot(label="reasoning", elem_id="chat", height=420)
                question = gr.Textbox(placeholder="Ask about this face, e.g. Why not fear?", label="follow-up")
                send = gr.Button("Ask", elem_id="ask")
        timeline = gr.Dataframe(headers=["time (s)", "faces", "emotion", "confidence", "AUs present"],
                                label="video timeline", interactive=False, elem_id="timeline")  # fmt: skip
        outputs = [chat, conversation, annotated, bars, emotion, question]
        analyse.click(handlers.ask, [image, model, chat, conversation], outputs, api_name="analyse")
        send.click(handlers.follow_up, [question, model, chat, conversation, image], outputs, api_name="follow_up")
        question.submit(handlers.follow_up, [question, model, chat, conversation, image], outputs, api_name=False)
        run_video.click(handlers.video, [clip, model], [timeline], api_name="video")
    return demo


def run_ui(gateway: str | None, api_key: str | None, host: str, port: int, share: bool = False) -> None:
    from ..samples import write_sample_images

    samples = [str(p) for p in write_sample_images(Path.home() / ".cache" / "emoreason" / "samples")]
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
