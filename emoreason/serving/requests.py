"""The request bodies the gateway accepts, as pydantic models (the OpenAI shapes it uses).

The gateway admits a request (or answers 429) before it reads the body, so the body is
validated here, in a worker thread, rather than by FastAPI's parameter injection (which
would read and parse it before admission). A body that does not fit gets one 400 line that
names the field: `messages[1].content[0].text: Input should be a valid string`.
Fields the gateway does not use (temperature, max_tokens, ...) are accepted and ignored, as
OpenAI clients send them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from .errors import APIError


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ImageURL(_Open):
    url: StrictStr = Field(min_length=1)


class ContentPart(_Open):
    type: StrictStr
    text: StrictStr | None = None
    image_url: ImageURL | None = None


class Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StrictStr | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text: the string, or its text parts joined."""
        if isinstance(self.content, list):
            return " ".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""

    def image_url(self) -> str | None:
        """The URL of the message's first image part, if any."""
        if isinstance(self.content, list):
            for part in self.content:
                if part.type == "image_url":
                    return part.image_url.url if part.image_url else ""
        return None


class EmoreasonOptions(_Open):
    landmarks: StrictBool = False  # the demo draws the mesh


class ChatRequest(_Open):
    model: StrictStr | None = None  # any length: an unknown name is a 404 that echoes it shortened
    messages: list[Message] = Field(min_length=1)
    stream: StrictBool = False
    emoreason: EmoreasonOptions = EmoreasonOptions()


class AnalyzeRequest(_Open):
    image: StrictStr | None = None  # base64 or a data URL (a missing one is its own error)
    model: StrictStr | None = None
    landmarks: StrictBool = False


def parse(model: type[BaseModel], body: object):
    """`body` as `model`, or the 400 that names the first field that does not fit."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        worst = max(errors, key=lambda e: len(e["loc"]))  # a union's deepest branch says the most
        where = _where(worst["loc"])
        raise APIError(400, f"{where}: {worst['msg'][:120]}" if where else worst["msg"][:160],
                       param=where or None) from None  # fmt: skip


def _where(loc: tuple) -> str:
    """('messages', 1, 'content', 'list[ContentPart]', 0, 'text') -> 'messages[1].content[0].text'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in part or part in ("str", "none", "bool", "int"):  # the name of a union's branch
            continue
        else:
            out += f".{part}" if out else part
    return out
