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


def test_bad_video_is_an_input_error(analyzer, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(InputError):
        analyzer.analyze_video(str(bad))
    with pytest.raises(InputError, match="file not found"):
        analyzer.analyze_video(str(tmp_path / "missing.mp4"))
