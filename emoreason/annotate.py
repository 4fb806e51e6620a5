"""Draw an analysis onto its image: boxes, landmarks, and a panel of AU bars + emotion per face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .types import EmotionAnalysis

_COLOURS = [(46, 204, 113), (52, 152, 219), (231, 76, 60), (241, 196, 15), (155, 89, 182), (26, 188, 156)]
PANEL_WIDTH = 260


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def annotate(rgb: np.ndarray, analysis: EmotionAnalysis, max_aus: int = 8) -> Image.Image:
    """The image with boxes and mesh points, and a side panel listing each face's emotion and AUs."""
    img = Image.fromarray(rgb).convert("RGB")
    scale = max(1.0, 480 / max(img.size))  # small benchmark crops are enlarged so the drawing is legible
    if scale > 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    line = max(2, round(min(img.size) / 200))
    font = _font(14)
    for face in analysis.faces:
        colour = _COLOURS[face.index % len(_COLOURS)]
        x0, y0, x1, y1 = (v * scale for v in face.box)
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=line)
        if face.landmarks is not None:
            r = max(1, line // 2)
            for x, y in face.landmarks[:, :2] * scale:
                draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        tag = f"#{face.index} {face.emotion or '?'} {_percent(face.confidence)}"
        draw.rectangle([x0, max(0, y0 - 18), x0 + 8 * len(tag), max(0, y0 - 18) + 18], fill=colour)
        draw.text((x0 + 2, max(0, y0 - 17)), tag, fill=(0, 0, 0), font=font)

    panel_h = max(img.height, 40 + 30 * len(analysis.faces) + 18 * max_aus * max(1, len(analysis.faces)))
    canvas = Image.new("RGB", (img.width + PANEL_WIDTH, panel_h), (24, 24, 24))
    canvas.paste(img, (0, 0))
    d = ImageDraw.Draw(canvas)
    x, y = img.width + 10, 10
    if not analysis.faces:
        d.text((x, y), "no face found", fill=(230, 230, 230), font=font)
    for face in analysis.faces:
        colour = _COLOURS[face.index % len(_COLOURS)]
        d.text(
            (x, y),
            f"face #{face.index}: {face.emotion or '?'} ({_percent(face.confidence)})",
            fill=colour,
            font=_font(16),
        )
        y += 24
        top = sorted(face.aus, key=lambda a: -a.intensity)[:max_aus]
        for au in top:
            bar = int((PANEL_WIDTH - 110) * au.intensity / 5)
            d.rectangle([x + 50, y + 3, x + 50 + bar, y + 13], fill=colour if au.present else (90, 90, 90))
            d.text((x, y), au.label, fill=(230, 230, 230), font=font)
            d.text((x + PANEL_WIDTH - 55, y), f"{au.intensity:.1f}", fill=(200, 200, 200), font=font)
            y += 18
        y += 12
    return canvas


def save_annotation(rgb: np.ndarray, analysis: EmotionAnalysis, out_dir: str | Path, name: str | None = None) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(name or analysis.source).stem or "image"
    suffix = f"_f{analysis.frame_index}" if analysis.frame_index is not None else ""
    path = out_dir / f"{stem}{suffix}.annotated.png"
    annotate(rgb, analysis).save(path)
    return path


def annotate_result(result, out_dir: str | Path) -> list[Path]:
    """Annotate an image or video result from its source file (results do not carry pixels)."""
    from .imageio import load_image
    from .video import VideoAnalysis

    if isinstance(result, VideoAnalysis):
        paths: list[Path] = []

        def frames():
            for rgb, frame in annotated_frames(result.source, result):
                paths.append(save_annotation(rgb, frame, out_dir))
                yield np.asarray(annotate(rgb, frame).convert("RGB"))

        video_path = write_video(frames(), Path(out_dir) / f"{Path(result.source).stem or 'video'}.annotated.avi",
                                 result.fps)  # fmt: skip
        return paths + ([video_path] if video_path else []) + plot_tracks(result, out_dir)
    return [save_annotation(load_image(result.source), result, out_dir)]


def annotated_frames(path: str, video):
    """(rgb, that frame's EmotionAnalysis) for each analysed frame of a VideoAnalysis, decoded again from `path`
    (results do not carry pixels)."""
    from .video import iter_frames

    wanted = {f.frame_index: f for f in video.frames}
    for index, _, rgb in iter_frames(path, fps=video.fps):
        if index in wanted:
            yield rgb, wanted.pop(index)
        if not wanted:  # the last analysed frame: the rest of the clip need not be decoded
            return


# OpenCV writes these itself, no ffmpeg: Motion-JPEG in AVI, and VP8 in WebM (what browsers play)
CODECS = {".avi": "MJPG", ".webm": "VP80"}


def write_video(frames, out: Path, fps: float) -> Path | None:
    """RGB frames into a video at `out` (the codec from its suffix, CODECS); None when there was no frame."""
    writer, size = None, (0, 0)
    try:
        for frame in frames:
            if writer is None:
                size = (frame.shape[1] // 2 * 2, frame.shape[0] // 2 * 2)  # VP8 needs even sizes
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*CODECS[out.suffix]), fps, size)
            writer.write(cv2.cvtColor(cv2.resize(frame, size), cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
    return out if writer is not None else None


def plot_tracks(video, out_dir: str | Path, max_aus: int = 6) -> list[Path]:
    """One PNG per face track: its strongest AUs' intensities over time (0-5, smoothed as analysed) above
    the emotion it was given at each sampled frame and that answer's confidence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out, stem = Path(out_dir), Path(video.source).stem or "video"
    paths = []
    for track in video.tracks:
        if not track.points:
            continue
        times = [p.time_s for p in track.points]
        strongest = sorted({c for p in track.points for c in p.aus},
                           key=lambda c: -max(p.aus.get(c, 0.0) for p in track.points))[:max_aus]  # fmt: skip
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, height_ratios=[2, 1])
        for code in strongest:
            top.plot(times, [p.aus.get(code, 0.0) for p in track.points], marker=".", label=f"AU{code}")
        top.set_ylim(0, 5.2)
        top.set_ylabel("AU intensity (0-5)")
        top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the plot, not over it
        emotions = sorted({p.emotion for p in track.points if p.emotion})
        bottom.scatter(times, [emotions.index(p.emotion) if p.emotion else -1 for p in track.points],
                       c=[p.confidence or 0.0 for p in track.points], cmap="viridis", vmin=0, vmax=1)  # fmt: skip
        bottom.set_yticks(range(len(emotions)), emotions)
        bottom.set_xlabel("time (s)")
        fig.suptitle(f"{stem}: face track {track.track_id} (colour: the answer's confidence)")
        fig.tight_layout()
        path = out / f"{stem}.track{track.track_id}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def _percent(p: float | None) -> str:
    return "?" if p is None else f"{p:.0%}"
