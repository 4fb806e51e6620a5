"""A client of the emoreason gateway with the official openai SDK (and httpx for /v1/analyze).

    python serving/client.py photo.jpg [--base-url http://127.0.0.1:8000/v1] [--api-key sk-local]
                                       [--model emoreason] [--follow-up "Why not fear?"]

Any OpenAI-compatible client works the same way: the image goes as a data URL in a chat message,
the analysis comes back as `<think>...</think><answer>...</answer>` text, and the structured
EmotionAnalysis (faces, AUs, boxes) rides beside it in the reply's `emoreason` field.
"""

from __future__ import annotations

import argparse
import base64
import json
import mimetypes
import os
from pathlib import Path

import httpx
from openai import OpenAI


def data_url(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--base-url", default=os.environ.get("EMOREASON_URL", "http://127.0.0.1:8000/v1"))
    parser.add_argument("--api-key", default=os.environ.get("EMOREASON_API_KEY", "none"))
    parser.add_argument("--model", default="emoreason", help="the base model or an adapter name (GET /v1/models)")
    parser.add_argument("--follow-up", default="Which Action Unit mattered most, and why?")
    args = parser.parse_args()

    # The SDK retries 429s and 5xx with backoff and honours timeouts; a busy gateway answers 429 at once.
    client = OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=3, timeout=120)
    print("models:", [m.id for m in client.models.list().data])

    ask = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(args.image)}},
                                       {"type": "text", "text": "What emotion does this face show?"}]}  # fmt: skip
    reply = client.chat.completions.create(model=args.model, messages=[ask])
    text = reply.choices[0].message.content
    print(text)
    result = reply.model_extra["emoreason"]  # the EmotionAnalysis, as `emoreason analyze --format json` writes it
    for face in result["faces"]:
        aus = ", ".join(f"AU{a['code']} {a['intensity']:.1f}" for a in face["aus"] if a["present"])
        print(f"face {face['index']}: {face['emotion']} (AUs: {aus or 'none'})")

    # A follow-up re-sends the conversation, as with any chat model; the answer streams as server-sent events.
    follow = [ask, {"role": "assistant", "content": text}, {"role": "user", "content": args.follow_up}]
    print("follow-up: ", end="")
    for chunk in client.chat.completions.create(model=args.model, messages=follow, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()

    # /v1/analyze is not part of the OpenAI API: a plain upload, the EmotionAnalysis JSON back.
    root = args.base_url.removesuffix("/v1")
    with args.image.open("rb") as fh:
        analysed = httpx.post(f"{root}/v1/analyze", files={"file": (args.image.name, fh)},
                              headers={"Authorization": f"Bearer {args.api_key}"}, timeout=120)  # fmt: skip
    analysed.raise_for_status()
    print("analyze:", json.dumps({k: analysed.json()[k] for k in ("source", "width", "height", "backend")}))


if __name__ == "__main__":
    main()
