"""Video input: frames sampled at a given fps, faces tracked across frames, a summary per face."""

import cv2
import numpy as np
import pytest

from emoreason import InputError


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut):
    """3 s at 10 fps: the astronaut drifting right, joined by a second (smaller, mirrored) face after 1 s."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 512))
    small = cv2.resize(astronaut[40:296, 100:356], (160, 160))[:, ::-1]
    for i in range(30):
        frame = np.zeros((512, 768, 3), np.uint8)
        frame[:, 2 * i : 2 * i + 512] = astronaut
        if i >= 10:
            frame[300:460, 590:750] = small
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_video_tracks_and_summary(analyzer, clip):
    video = analyzer.analyze_video(str(clip), fps=2.0)
    assert len(video.frames) == 6  # every 5th frame of 30
    assert [f.frame_index for f in video.frames] == [0, 5, 10, 15, 20, 25]
    assert len(video.tracks) == 2
    first, second = video.tracks
    assert len(first.points) == 6 and len(second.points) == 4  # the second face appears at 1 s
    s = first.summary()
    assert s["dominant_emotion"] == "happiness" and s["start_s"] == 0 and s["end_s"] == 2.5
    assert s["mean_au_intensity"]["AU12"] > 2
    d = video.to_dict()
    assert d["summary"][0]["track_id"] == 0 and len(d["frames"]) == 6
    assert all(f["faces"][0]["track_id"] == 0 for f in d["frames"])
    # one JSON shape: the row says it is a video, AU keys read "AU12" in the series as in the summary
    assert d["kind"] == "video" and d["frames"][0]["kind"] == "image"
    assert set(d["tracks"][0]["series"][0]["aus"]) == {f"AU{a['code']}" for a in d["frames"][0]["faces"][0]["aus"]}


def test_video_table_has_a_row_per_face_per_frame(analyzer, clip):
    from emoreason.tables import COLUMNS

    table = analyzer.analyze_video(str(clip), fps=2.0).to_pandas()
    assert list(table.columns) == COLUMNS
    assert len(table) == 6 + 4  # the first face in 6 frames, the second in 4
    assert set(table["kind"]) == {"video"} and sorted(set(table["track_id"])) == [0, 1]
    assert list(table[table["track_id"] == 0]["time_s"]) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert (table[table["track_id"] == 0]["emotion"] == "happiness").all()


def test_text_has_a_timeline_and_ties_are_ties(analyzer, clip):
    from emoreason.video import FaceTrack, TrackPoint

    video = analyzer.analyze_video(str(clip), fps=2.0)
    text = video.to_text()
    timeline = video.timeline()
    assert len(timeline) == 6 + 4 and timeline[0].startswith("   0.00 s  track 0: happiness (")
    assert "AU12" in timeline[0] and "timeline:" in text
    track = FaceTrack(7, [TrackPoint(i, i / 2, (0, 0, 1, 1), e, 0.5, {}) for i, e in enumerate(["fear", "anger"])])
    summary = track.summary()
    assert summary["dominant_emotion"] is None and summary["tied_emotions"] == ["fear", "anger"]


def test_annotate_writes_frames_and_a_playable_video(analyzer, clip, tmp_path):
    from emoreason.annotate import annotate_result

    video = analyzer.analyze_video(str(clip), fps=2.0)
    paths = annotate_result(video, tmp_path)
    assert [p.suffix for p in paths] == [".png"] * 6 + [".avi"] + [".png"] * 2  # frames, the video, a plot a track
    assert [p.name for p in paths[-2:]] == ["clip.track0.png", "clip.track1.png"]
    capture = cv2.VideoCapture(str(paths[6]))  # Motion-JPEG: OpenCV reads back what it wrote, no ffmpeg
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == 6


def test_bad_video_is_an_input_error(analyzer, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(InputError):
        analyzer.analyze_video(str(bad))
    with pytest.raises(InputError, match="file not found"):
        analyzer.analyze_video(str(tmp_path / "missing.mp4"))


def test_smoother_holds_an_au_through_jitter_around_its_threshold():
    from emoreason.types import AUActivation
    from emoreason.video import AUSmoother, AUSmoothing

    smoother = AUSmoother(AUSmoothing(alpha=0.5, hysteresis=0.5))
    seen = [smoother.apply(0, [AUActivation(10, x, x >= 2.0, 0.5)])[0] for x in (2.6, 1.8, 2.2, 1.7, 2.3, 1.9)]
    assert [a.present for a in seen] == [True] * 6  # raw, AU10 would flip 5 times
    raw_off = [smoother.apply(1, [AUActivation(10, x, False, 0.0)])[0].present for x in (0.5, 0.4, 0.6)]
    assert raw_off == [False] * 3  # another track keeps its own state
    assert [smoother.apply(0, [AUActivation(10, 0.0, False, 0.0)])[0].present for _ in range(3)][-1] is False


def test_a_still_face_holds_its_aus_and_the_text_follows_the_smoothed_ones(analyzer, tmp_path, astronaut):
    from emoreason.parsing import find_aus
    from emoreason.video import presence_flips

    path = tmp_path / "still.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 512))
    rng = np.random.default_rng(0)
    for _ in range(12):  # a face that does not move, shifted by 0-3 px and re-encoded each frame
        dx, dy = rng.integers(-3, 4, 2)
        frame = cv2.warpAffine(astronaut, np.float32([[1, 0, dx], [0, 1, dy]]), (512, 512),
                               borderMode=cv2.BORDER_REFLECT)  # fmt: skip
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    raw = analyzer.analyze_video(str(path), fps=10, smoothing=None)
    smoothed = analyzer.analyze_video(str(path), fps=10)
    assert presence_flips(smoothed) <= presence_flips(raw)
    assert presence_flips(smoothed) <= 1 / 11  # at most one change over the clip (bench/video.py measures it)
    for frame in smoothed.frames:  # the reasoning was written from the smoothed AUs it is shown with
        face = frame.faces[0]
        assert set(find_aus(face.text).cited) <= {a.code for a in face.aus if a.present}
