"""What the demo shows, as plain data and HTML: no Gradio here, so every piece is tested without a browser.

- `reasoning_messages`: a model's `<think>...</think><answer>...</answer>` as chat messages, the
  thinking as a collapsible block (Gradio's `metadata.title`) and the answer as a headline, one
  pair per face; the tags themselves are never shown.
- `link_aus`: every AU code in a text becomes a link to its entry in the glossary (`glossary_html`),
  with its FACS name as the tooltip.
- `au_bars`: one face's AU intensities as bars, with a legend for present and absent.
- `write_downloads`: the result as JSON, CSV (the table rows of `emoreason analyze --format csv`)
  and the annotated image.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..annotate import annotate
from ..facs import AU_CATALOGUE
from ..parsing import parse_output
from ..tables import CSVWriter
from ..types import EmotionAnalysis, FaceAnalysis

PRESENT_COLOUR, ABSENT_COLOUR = "#e4572e", "#bbbbbb"
_AU_CODE = re.compile(r"\bAU ?(\d{1,2})\b")
_TAGS = re.compile(r"</?(think|answer)>", re.IGNORECASE)


def link_aus(text: str) -> str:
    """Markdown: `AU12` -> `[AU12](#au-12 "lip corner puller")` for the AUs emoreason knows; others unchanged."""

    def link(match: re.Match) -> str:
        au = AU_CATALOGUE.get(int(match.group(1)))
        return f'[AU{au.code}](#au-{au.code} "{au.name}")' if au else match.group(0)

    return _AU_CODE.sub(link, text)


def streaming_message(text: str) -> dict[str, Any]:
    """The assistant's turn while it streams: the reasoning so far, in an open 'thinking' block."""
    shown = _TAGS.sub("", text).strip() or "..."
    return {"role": "assistant", "content": shown, "metadata": {"title": "Reasoning", "status": "pending"}}


def reasoning_messages(analysis: EmotionAnalysis) -> list[dict[str, Any]]:
    """The finished turn: per face, the reasoning (collapsible) and the answer as a headline."""
    if analysis.error:
        return [{"role": "assistant", "content": f"Could not analyse this image: {analysis.error}"}]
    if not analysis.faces:
        return [{"role": "assistant", "content": "No face was found in this image."}]
    many = len(analysis.faces) > 1
    messages = []
    for i, face in enumerate(analysis.faces):
        who = f"Face {i + 1}: " if many else ""
        if face.error or not face.text:
            messages.append({"role": "assistant", "content": f"{who}no analysis ({face.error or 'empty'})"})
            continue
        parsed = parse_output(face.text)
        thinking = parsed.think if parsed.think is not None else _TAGS.sub("", face.text).strip()
        title = f"Reasoning, face {i + 1}" if many else "Reasoning"
        messages.append({"role": "assistant", "content": link_aus(thinking),
                         "metadata": {"title": title, "status": "done"}})  # fmt: skip
        messages.append({"role": "assistant", "content": headline(face, who)})
    return messages


def headline(face: FaceAnalysis, prefix: str = "") -> str:
    """'### Happiness' and a line with the confidence and the AUs the front-end measured as present."""
    emotion = (face.emotion or "no committed answer").capitalize()
    confidence = f"{face.confidence:.0%} confidence" if face.confidence is not None else "no confidence given"
    present = ", ".join(link_aus(f"AU{a.code}") for a in sorted(face.present_aus(), key=lambda a: a.code))
    line = f"### {prefix}{emotion}\n{confidence} · AUs present: {present or 'none'}"
    if face.contradictions:  # the text says what the front-end did not measure, or more than its evidence: say so
        line += "\n\n**The reasoning contradicts the measurements or itself:** " + "; ".join(face.contradictions)
    return line


def follow_up_message(text: str) -> dict[str, Any]:
    """An answer to a follow-up question: plain prose (tags dropped, AUs linked)."""
    parsed = parse_output(text)
    body = parsed.think if parsed.think else _TAGS.sub("", text).strip()
    if parsed.emotion and parsed.think:
        body += f"\n\n**Answer: {parsed.emotion}**"
    return {"role": "assistant", "content": link_aus(body)}


def glossary_html(analysis: EmotionAnalysis | None) -> str:
    """The AUs this result measured as present or its reasoning names, each with what moves (and the muscle)."""
    codes: set[int] = set()
    for face in analysis.faces if analysis else []:
        codes |= {a.code for a in face.present_aus()}
        codes |= {int(c) for c in _AU_CODE.findall(face.text or "") if int(c) in AU_CATALOGUE}
    if not codes:
        return "<p class='au-glossary'>The Action Units of an analysis are explained here.</p>"
    rows = [
        f'<div id="au-{c}" class="au-term"><b>AU{c} {html.escape(AU_CATALOGUE[c].name)}</b> '
        f"({AU_CATALOGUE[c].region}): {html.escape(AU_CATALOGUE[c].movement)}</div>"
        for c in sorted(codes)
    ]
    return f'<div class="au-glossary" style="font:13px sans-serif;line-height:1.5">{"".join(rows)}</div>'


def _legend() -> str:
    swatch = '<span style="display:inline-block;width:10px;height:10px;background:{};margin:0 4px 0 10px"></span>'
    return (
        '<div class="au-legend" style="font:12px sans-serif;margin:4px 0 6px">'
        f"{swatch.format(PRESENT_COLOUR)}present (at or above the AU's threshold)"
        f"{swatch.format(ABSENT_COLOUR)}absent (measured below it)</div>"
    )


def au_bars(analysis: EmotionAnalysis | None, face_index: int = 0) -> str:
    """HTML bars of one face's AU intensities (0-5), strongest first, present AUs highlighted, with a legend."""
    if analysis is None or not analysis.faces:
        return "<p>No face found.</p>" if analysis is not None else ""
    face = analysis.faces[min(face_index, len(analysis.faces) - 1)]
    rows = []
    for au in sorted(face.aus, key=lambda a: -a.intensity):
        width = max(0.0, min(au.intensity / 5.0, 1.0)) * 100
        colour = PRESENT_COLOUR if au.present else ABSENT_COLOUR
        state = "present" if au.present else "absent"
        rows.append(
            f'<div class="au-row {state}" style="display:flex;align-items:center;gap:6px;font:12px sans-serif">'
            f'<span style="width:190px">AU{au.code} {html.escape(au.name)}</span>'
            f'<span style="flex:1;background:#eee;height:10px"><span style="display:block;height:10px;'
            f'width:{width:.0f}%;background:{colour}"></span></span>'
            f'<span style="width:28px">{au.intensity:.1f}</span></div>'
        )
    n = len(analysis.faces)
    title = f"Face {face.index + 1} of {n}: {html.escape(face.emotion or '?')}" if n > 1 else "Action Units"
    return f'<div class="au-bars"><b>{title}</b>{_legend()}{"".join(rows)}</div>'


def face_choices(analysis: EmotionAnalysis | None) -> list[tuple[str, int]]:
    """The face selector's (label, value) entries: ('Face 1: happiness', 0), ... (one per face found)."""
    faces = analysis.faces if analysis else []
    return [(f"Face {i + 1}: {f.emotion or 'no answer'}", i) for i, f in enumerate(faces)]


def scores(analysis: EmotionAnalysis | None, face_index: int = 0) -> dict[str, float]:
    """One face's emotion probabilities for the label panel, or its answer alone when the backend gives none."""
    if analysis is None or not analysis.faces:
        return {}
    face = analysis.faces[min(face_index, len(analysis.faces) - 1)]
    if face.emotion_scores:
        return face.emotion_scores
    return {face.emotion: 1.0} if face.emotion else {}


def write_downloads(analysis: EmotionAnalysis, rgb: np.ndarray, out_dir: str | Path) -> list[Path]:
    """analysis.json (the EmotionAnalysis), analysis.csv (one row per face) and annotated.png, in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "analysis.json", out / "analysis.csv", out / "annotated.png"]
    paths[0].write_text(json.dumps(analysis.to_dict(), indent=2))
    with open(paths[1], "w", newline="", encoding="utf-8") as fh:
        CSVWriter(fh).write(analysis)
    annotate(rgb, analysis).save(paths[2])
    return paths
