"""Bad inputs and the `emoreason analyze` command, as a user runs it."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from emoreason import InputError
from emoreason.cli import main
from emoreason.imageio import expand_inputs, load_image
from emoreason.samples import write_sample_images


@pytest.fixture(scope="module")
def files(tmp_path_factory, astronaut, no_face):
    d = tmp_path_factory.mktemp("inputs")
    write_sample_images(d / "good")
    Image.fromarray(no_face).save(d / "coffee.png")
    (d / "notes.jpg").write_text("this is not an image")
    good = (d / "good" / "astronaut.png").read_bytes()
    Image.fromarray(astronaut).save(d / "full.jpg")
    (d / "truncated.jpg").write_bytes((d / "full.jpg").read_bytes()[:3000])
    (d / "empty.png").write_bytes(b"")
    Image.new("RGB", (1, 1)).save(d / "one_pixel.png")
    Image.new("1", (10000, 10000)).save(d / "bomb.png")  # 100 MP of zeros: a few KB on disk
    assert good
    return d


@pytest.mark.parametrize(
    "name, reason",
    [
        ("missing.jpg", "file not found"),
        ("notes.jpg", "not an image"),
        ("truncated.jpg", "truncated"),
        ("empty.png", "file is empty"),
        ("one_pixel.png", "too small"),
        ("bomb.png", "too large"),
    ],
)
def test_bad_input_one_line_error(files, name, reason):
    with pytest.raises(InputError) as info:
        load_image(files / name)
    message = str(info.value)
    assert message.startswith(str(files / name)) and reason in message and "\n" not in message


def test_no_face_gives_empty_faces(analyzer, files):
    result = analyzer.analyze(files / "coffee.png")
    assert result.ok and result.faces == [] and result.emotion is None


def test_batch_goes_on_and_exits_nonzero(files, capsys):
    inputs = [
        str(files / n)
        for n in (
            "missing.jpg",
            "notes.jpg",
            "good/astronaut.png",
            "truncated.jpg",
            "bomb.png",
            "one_pixel.png",
            "coffee.png",
        )
    ]
    code = main(["analyze", *inputs, "--format", "jsonl", "--quiet"])
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert len(rows) == 7  # every input has a row, in order
    assert [r["error"] is None for r in rows] == [False, False, True, False, False, False, True]
    assert rows[2]["faces"][0]["emotion"] == "happiness"
    assert rows[6]["faces"] == []
    assert "Traceback" not in err
    assert sum(line.startswith("emoreason: error: ") for line in err.splitlines()) == 5
    assert "5 of 7 inputs failed" in err


def test_analyze_json_annotate_and_folder(files, tmp_path, capsys):
    out_file = tmp_path / "result.json"
    code = main(
        [
            "analyze",
            str(files / "good"),
            "--format",
            "json",
            "--out",
            str(out_file),
            "--annotate",
            str(tmp_path / "ann"),
            "--quiet",
            "--landmarks",
        ]
    )
    assert code == 0
    rows = json.loads(out_file.read_text())
    by_name = {r["source"].split("/")[-1]: r for r in rows}
    assert len(by_name["astronaut.png"]["faces"]) == 1
    assert len(by_name["two_faces.png"]["faces"]) == 2
    face = by_name["astronaut.png"]["faces"][0]
    assert face["emotion"] == "happiness" and len(face["landmarks"]) == 478
    assert any(a["code"] == 12 and a["present"] for a in face["aus"])
    assert face["text"].startswith("<think>") and face["text"].endswith("</answer>")
    for name in ("astronaut", "two_faces"):
        img = Image.open(tmp_path / "ann" / f"{name}.annotated.png")
        assert img.width > 512  # image + AU panel
    capsys.readouterr()


def test_text_output_prints_reasoning(files, capsys):
    assert main(["analyze", str(files / "good" / "astronaut.png")]) == 0
    out = capsys.readouterr().out
    assert "happiness" in out and "<think>" in out and "AU12 lip corner puller" in out


def test_globs_expand(files):
    got = expand_inputs([str(files / "good" / "*.png"), str(files / "nothing-*.png")])
    assert [p.split("/")[-1] for p in got] == ["astronaut.png", "two_faces.png", "nothing-*.png"]


def test_full_face_mode_and_labels(files, capsys):
    crop = files / "crop.png"
    Image.open(files / "good" / "astronaut.png").crop((165, 70, 290, 200)).save(crop)
    assert (
        main(["analyze", str(crop), "--face-mode", "full", "--labels", "happy,sad,neutral", "--format", "json"]) == 0
    )
    [row] = json.loads(capsys.readouterr().out)  # --format json is a list, one entry per input
    assert row["kind"] == "image" and row["faces"][0]["source"] == "full"
    assert set(row["faces"][0]["emotion_scores"]) == {"happiness", "sadness", "neutral"}


def test_installed_command_runs(files):
    """The console script as a user calls it (python -m emoreason in this environment)."""
    out = subprocess.run(
        [sys.executable, "-m", "emoreason", "analyze", str(files / "good" / "astronaut.png"), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)[0]["faces"][0]["emotion"] == "happiness"
    # stderr carries only emoreason's own lines: mediapipe/TFLite's native logging is kept off it
    assert "XNNPACK" not in out.stderr and "W0000" not in out.stderr and "absl" not in out.stderr, out.stderr


def test_array_input_and_result_roundtrip(analyzer, astronaut):
    from emoreason import EmotionAnalysis

    result = analyzer.analyze(astronaut)
    again = EmotionAnalysis.from_dict(json.loads(result.to_json(landmarks=True)))
    assert again.faces[0].emotion == result.faces[0].emotion
    assert [a.code for a in again.faces[0].aus] == [a.code for a in result.faces[0].aus]
    assert again.faces[0].landmarks.shape == (478, 3)
    assert isinstance(np.asarray(result.faces[0].box), np.ndarray)


def test_one_meaning_per_flag_with_the_old_names_still_accepted():
    from emoreason.cli import build_parser

    parser = build_parser()
    for argv in (["analyze", "x.png", "--do-sample"], ["analyze", "x.png", "--sample"], ["eval", "--do-sample"]):
        assert parser.parse_args(argv).sample is True  # sampled decoding
    for argv in (["eval", "--subset", "50"], ["eval", "--sample", "50"]):
        args = parser.parse_args(argv)
        assert args.subset == 50 and args.sample is False  # a subset, not decoding


@pytest.mark.slow  # two front-end worker processes
def test_two_workers_give_the_same_results_in_input_order(files, tmp_path, capsys):
    """`--workers 2` deals the images to two front-end processes; the streamed JSON array keeps the input
    order, a bad file keeps its place as an error, and the results equal one worker's."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("astronaut.png", "two_faces.png"):
        (folder / name).write_bytes((files / "good" / name).read_bytes())
    (folder / "b_notes.jpg").write_bytes((files / "notes.jpg").read_bytes())
    rows = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.json"
        assert main(["analyze", str(folder), "--format", "json", "--out", str(out), "--quiet",
                     "--workers", str(workers)]) == 1  # fmt: skip
        rows[workers] = json.loads(out.read_text())
    assert [r["source"].split("/")[-1] for r in rows[2]] == ["astronaut.png", "b_notes.jpg", "two_faces.png"]
    assert "not an image" in rows[2][1]["error"]
    emotions = {w: [[f["emotion"] for f in r["faces"]] for r in rows[w]] for w in rows}
    assert emotions[2] == emotions[1]
    assert [len(r["faces"]) for r in rows[2]] == [1, 0, 2]
    capsys.readouterr()
