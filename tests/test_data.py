"""Training data: converters for each layout, all problems reported at once, synthesis that agrees with labels."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from emoreason.data.converters import convert, from_csv, from_folders
from emoreason.data.records import read_jsonl, to_dataset, write_jsonl
from emoreason.data.synth import Synthesizer, check_description, with_gold_aus
from emoreason.parsing import parse_output
from emoreason.rewards import consistency_score


@pytest.fixture
def face_png(tmp_path, astronaut_face):
    def write(rel: str):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(astronaut_face).save(path)
        return path

    return write


def test_folder_per_class_with_aliases_and_a_bad_folder(tmp_path, face_png):
    face_png("faces/happy/a.png")
    face_png("faces/Surprised/b.png")
    face_png("faces/bored/c.png")
    records, errors = from_folders(tmp_path / "faces")
    assert sorted(r.emotion for r in records) == ["happiness", "surprise"]
    assert [str(e) for e in errors] == [f"{tmp_path / 'faces' / 'bored'}: folder name 'bored' is not an emotion label"]
    assert all(r.image_path.is_file() for r in records)


def test_csv_with_au_columns_reports_every_problem(tmp_path, face_png):
    face_png("img/1.png")
    face_png("img/2.png")
    (tmp_path / "labels.csv").write_text(
        "path,label,AU6,AU12,AU04\n"
        "img/1.png,happy,1,1,0\n"
        "img/2.png,angry,0,0,2\n"
        "img/missing.png,sad,0,0,1\n"
        "img/2.png,boredom,0,0,0\n"
    )
    records, errors = from_csv(tmp_path / "labels.csv")
    assert [(r.emotion, r.aus) for r in records] == [("happiness", [6, 12]), ("anger", [4])]
    assert len(errors) == 2
    assert "labels.csv:4: image not found" in str(errors[0]) and "labels.csv:5: unknown label 'boredom'" in str(
        errors[1]
    )


def test_csv_without_an_image_column_is_one_clear_error(tmp_path):
    (tmp_path / "x.csv").write_text("name,label\na.png,happy\n")
    with pytest.raises(ValueError, match="no image column"):
        from_csv(tmp_path / "x.csv")


def test_fea20k_jsonl_lenient_read_and_canonical_write(tmp_path, face_png):
    face_png("data/a.png")
    lines = [
        {"id": "a", "dataset": "RAF-DB", "image": "a.png", "question": "Q?", "AUs": "AU6, AU12", "labels": "Happy",
         "description": "<think>(AU6) (AU12)</think><answer>happiness</answer>"},
        {"id": "b", "image": "a.png", "AUs": ["AU1", "AUx"], "labels": "fear"},
        {"id": "a", "image": "a.png", "labels": "fear"},
        "not an object",
    ]  # fmt: skip
    path = tmp_path / "data" / "train.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    records, errors = read_jsonl(path)
    assert [(r.id, r.emotion, r.aus) for r in records] == [("a", "happiness", [6, 12])]
    assert [str(e).split(": ")[0] for e in errors] == [
        "train.jsonl:2",
        "train.jsonl:3",
        "train.jsonl:4",
        "train.jsonl:5",
    ]
    assert "bad AU code" in str(errors[0]) and "duplicate id" in str(errors[1])
    out = write_jsonl(records, tmp_path / "out" / "clean.jsonl")
    row = json.loads(out.read_text())
    assert row == {
        "id": "a", "dataset": "RAF-DB", "image": "../data/a.png", "question": "Q?", "AUs": ["AU6", "AU12"],
        "labels": "happiness", "description": "<think>(AU6) (AU12)</think><answer>happiness</answer>",
    }  # fmt: skip
    again, problems = read_jsonl(out)
    assert not problems and again[0].image_path.resolve() == records[0].image_path.resolve()
    ds = to_dataset(again)
    assert ds.column_names == ["id", "image", "dataset", "question", "aus", "emotion", "description"]
    assert ds[0]["aus"] == [6, 12]


def test_validate_cli_reports_all_at_once(tmp_path, face_png):
    face_png("faces/happy/a.png")
    face_png("faces/nonsense/b.png")
    face_png("faces/ANGRY/c.png")
    (tmp_path / "faces" / "fear").mkdir()
    proc = subprocess.run([sys.executable, "-m", "emoreason", "data", "validate", str(tmp_path / "faces")],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1
    assert "folder name 'nonsense' is not an emotion label" in proc.stderr
    assert "2 usable records (2 labelled, 0 with AUs, 0 with a description), 1 problems" in proc.stdout


def test_gold_aus_replace_the_detector(analyzer, astronaut_face):
    obs = analyzer.frontend.observe(astronaut_face, face_mode="full")[0]
    gold = with_gold_aus(obs, [4, 7, 23])
    assert sorted(a.code for a in gold.present_aus()) == [4, 7, 23]


def test_synth_writes_descriptions_that_agree_with_the_labels(tmp_path, face_png):
    face_png("d/a.png")
    rows = [
        {"id": "smile", "image": "a.png", "labels": "happiness"},  # detector AUs (6, 12) support it
        {"id": "anger", "image": "a.png", "labels": "anger", "AUs": ["AU4", "AU7", "AU23"]},  # gold AUs win
        {"id": "nolabel", "image": "a.png"},
        {"id": "sad-on-a-smile", "image": "a.png", "labels": "sadness"},  # no gold AUs, evidence contradicts
    ]
    (tmp_path / "d" / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    records, _ = convert(tmp_path / "d" / "in.jsonl")
    synth = Synthesizer(face_mode="full")
    results = {r.record.id: r for r in synth.run(records)}
    synth.close()
    assert results["smile"].accepted and results["anger"].accepted
    assert results["nolabel"].category == "no emotion label"
    assert results["sad-on-a-smile"].category == "detected AUs do not support the label"
    smile = parse_output(results["smile"].record.description)
    assert smile.format_valid and smile.emotion == "happiness" and {6, 12} <= set(smile.aus)
    assert consistency_score(results["smile"].record.description) == 1.0
    anger = parse_output(results["anger"].record.description)
    assert anger.emotion == "anger" and anger.aus == [4, 7, 23]


def test_check_description_names_the_disagreement():
    text = "<think>(AU4) (AU7)</think>\n<answer>anger</answer>"
    assert check_description(text, "anger", [4, 7]) == ("", "")
    assert check_description(text, "anger", [4, 7, 23])[0] == "AUs differ from the labels"
    assert check_description(text, "fear", [])[0] == "wrong answer"
    assert check_description("anger", "anger", [])[0] == "bad format"


@pytest.mark.slow  # whole CLI runs in subprocesses, 7-24 s (make test-fast skips it)
def test_synth_cli(tmp_path, face_png):
    face_png("faces/happy/a.png")
    face_png("faces/sad/b.png")
    out = tmp_path / "sft.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "emoreason", "data", "synth", str(tmp_path / "faces"), "--out", str(out),
         "--rejected", str(tmp_path / "rejected.jsonl")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [r["labels"] for r in kept] == ["happiness"] and [r["labels"] for r in rejected] == ["sadness"]
    assert "1 records with a description; 1 rejected" in proc.stderr
    assert np.all([r["description"].endswith("<answer>happiness</answer>") for r in kept])
    # --no-prior-numbers: the same decision and AUs, the whole-face impression in words (for a small student)
    words = tmp_path / "sft-words.jsonl"
    proc = subprocess.run([sys.executable, "-m", "emoreason", "data", "synth", str(tmp_path / "faces"), "--out",
                           str(words), "--no-prior-numbers"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [worded] = [json.loads(line) for line in words.read_text().splitlines()]
    assert "%" not in worded["description"]
    assert parse_output(worded["description"]).aus == parse_output(kept[0]["description"]).aus


@pytest.mark.slow  # whole CLI runs in subprocesses, 7-24 s (make test-fast skips it)
def test_synth_cli_keeps_one_split_and_a_seeded_sample_and_the_rejects_read_back(tmp_path, face_png):
    """`--split vlm`: only the faces the shipped face model held back for the VLM (by file-name hash);
    `--limit`: a sample that is the same on every run; the rejected file is records `train loop` can read."""
    from emoreason.training.face_model import shipped_split_of

    names = [f"face_{i:03d}.png" for i in range(60)]
    for i, name in enumerate(names):
        face_png(f"faces/{'happy' if i % 2 else 'sad'}/{name}")
    held_back = {n for n in names if shipped_split_of(n) == "vlm"}
    assert 0 < len(held_back) < 30  # 15% of the hash buckets

    def synth(*options):
        out = tmp_path / "out.jsonl"
        cmd = [sys.executable, "-m", "emoreason", "data", "synth", str(tmp_path / "faces"), "--out", str(out),
               "--rejected", str(tmp_path / "rej" / "rejected.jsonl"), *options]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        rows = [json.loads(x) for x in out.read_text().splitlines()]
        rejected, errors = read_jsonl(tmp_path / "rej" / "rejected.jsonl")
        assert not errors and all(r.image_path.is_file() and r.description is None for r in rejected)
        return {r["image"].rsplit("/", 1)[-1] for r in rows} | {r.image_path.name for r in rejected}

    assert synth("--split", "vlm") == held_back
    sample = synth("--limit", "7")
    assert len(sample) == 7 and synth("--limit", "7") == sample
