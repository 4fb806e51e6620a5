"""Batch evaluation: metrics against scikit-learn, every benchmark adapter on a fixture laid out like the real
dataset (made here, from the astronaut photo), layout errors, the runner's resume after a kill, reports, compare."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emoreason.eval.benchmarks import BENCHMARKS, LayoutError, get_benchmark
from emoreason.eval.metrics import au_metrics, bootstrap_ci, calibration, emotion_metrics, rouge_l
from emoreason.eval.runner import RunConfig, read_rows, run_eval
from emoreason.face.face_model import DEFAULT_FACE_MODEL

LABELS = ["neutral", "happiness", "sadness", "anger"]


# ------------------------------------------------------------------ metrics
@pytest.mark.parametrize("seed", range(5))
def test_emotion_metrics_match_scikit_learn(seed):
    from sklearn import metrics as sk

    rng = random.Random(seed)
    gold = [rng.choice(LABELS) for _ in range(200)]
    pred = [g if rng.random() < 0.5 else rng.choice([*LABELS, None]) for g in gold]
    ours = emotion_metrics(gold, pred, LABELS)
    pred_sk = [p or "none" for p in pred]
    present = sorted(set(gold))
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(gold, pred_sk))
    assert ours["macro_f1"] == pytest.approx(sk.f1_score(gold, pred_sk, labels=present, average="macro"))
    assert ours["uar"] == pytest.approx(sk.recall_score(gold, pred_sk, labels=present, average="macro"))
    assert ours["war"] == pytest.approx(sk.recall_score(gold, pred_sk, labels=present, average="weighted"))
    matrix = sk.confusion_matrix(gold, pred_sk, labels=[*LABELS, "none"])[: len(LABELS)]
    assert [[ours["confusion"][g][c] for c in [*LABELS, "none"]] for g in LABELS] == matrix.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_per_au_f1_matches_scikit_learn(seed):
    from sklearn.metrics import f1_score

    rng = random.Random(seed)
    protocol = [1, 2, 4, 6, 12, 25]
    gold = [[a for a in protocol if rng.random() < 0.3] for _ in range(100)]
    pred = [[a for a in protocol if (a in g) != (rng.random() < 0.2)] for g in gold]
    ours = au_metrics(gold, pred, protocol)
    for code in protocol:
        expected = f1_score([code in g for g in gold], [code in p for p in pred], zero_division=0)
        assert ours["per_au"][f"AU{code}"]["f1"] == pytest.approx(expected)


def test_bootstrap_intervals_hold_the_point_estimate_and_shrink_with_more_samples():
    rng = random.Random(0)
    labels = ["anger", "fear", "happiness"]

    def sample(n):
        gold = [rng.choice(labels) for _ in range(n)]
        return gold, [g if rng.random() < 0.7 else rng.choice(labels) for g in gold]

    widths = []
    for n in (60, 600):
        gold, pred = sample(n)
        point = emotion_metrics(gold, pred, labels)
        ci = bootstrap_ci(gold, pred, labels)
        for key in ("accuracy", "macro_f1", "uar"):
            assert ci[key][0] <= point[key] <= ci[key][1], (key, n)
        widths.append(ci["accuracy"][1] - ci["accuracy"][0])
    assert widths[1] < widths[0] / 2  # about 1/sqrt(10) as wide with 10x the samples
    aus = bootstrap_ci([], [], labels, [[4, 7]] * 20 + [[12]] * 20, [[4]] * 20 + [[12]] * 20, protocol=[4, 7, 12])
    assert aus["au_cited_f1"][0] <= au_metrics([[4, 7]] * 20 + [[12]] * 20, [[4]] * 20 + [[12]] * 20,
                                                [4, 7, 12])["mean_f1"] <= aus["au_cited_f1"][1]  # fmt: skip


def test_ece_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 500)
    correct = rng.uniform(0, 1, 500) < conf**2  # over-confident
    bins = np.minimum((np.ceil(conf * 10) - 1).astype(int), 9)
    expected = sum(abs(correct[bins == b].mean() - conf[bins == b].mean()) * (bins == b).mean()
                   for b in range(10) if (bins == b).any())  # fmt: skip
    assert calibration(list(conf), list(correct))["ece"] == pytest.approx(expected)


def test_rouge_l():
    assert rouge_l("The cheeks are raised (AU6).", "the cheeks are raised (au6)") == 1.0
    assert rouge_l("a b c d", "a x c y") == pytest.approx(0.5)
    assert rouge_l("", "x") == 0.0


# ------------------------------------------------------------------ fixtures laid out like each dataset
def _save(rgb: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def _face(astronaut) -> np.ndarray:
    return np.ascontiguousarray(astronaut[40:230, 130:320])


def make_rafdb(root: Path, astronaut) -> dict:
    labels = "train_00001.jpg 4\ntest_0001.jpg 4\ntest_0002.jpg 7\n"
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text(labels)
    for name in ("train_00001", "test_0001", "test_0002"):
        _save(_face(astronaut), root / "Image" / "aligned" / f"{name}_aligned.jpg")
    return {"n": 2, "emotions": ["happiness", "neutral"]}


def make_affectnet(root: Path, astronaut) -> dict:
    header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
    rows = ['1/a.jpg,130,40,190,190,"1;2",1,0.6,0.2', '1/b.jpg,130,40,190,190,"1;2",7,-0.5,0.4',
            '2/c.jpg,0,0,10,10,"1;2",9,-2,-2']  # fmt: skip
    root.mkdir(parents=True)
    (root / "validation.csv").write_text("\n".join([header, *rows]) + "\n")
    for name in ("1/a.jpg", "1/b.jpg", "2/c.jpg"):
        _save(astronaut, root / "Manually_Annotated_Images" / name)
    return {"n7": 1, "n8": 2}


def _pixels(seed: int) -> str:
    return " ".join(map(str, np.random.default_rng(seed).integers(0, 256, 48 * 48)))


def make_fer(root: Path) -> dict:
    root.mkdir(parents=True)
    rows = [(3, "Training"), (3, "PrivateTest"), (0, "PrivateTest"), (6, "PublicTest")]
    (root / "fer2013.csv").write_text(
        "emotion,pixels,Usage\n" + "".join(f'{e},"{_pixels(i)}",{u}\n' for i, (e, u) in enumerate(rows))
    )
    votes = ["Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF",
             "Training,fer0000000.png,0,10,0,0,0,0,0,0,0,0",
             "PrivateTest,fer0000001.png,1,8,0,0,0,0,0,0,1,0",  # happiness by majority
             "PrivateTest,fer0000002.png,2,0,0,0,2,0,0,0,6,0",  # unknown wins: dropped
             "PublicTest,,0,0,0,0,0,0,0,0,0,10"]  # fmt: skip  # no image name: dropped by FERPlus
    (root / "fer2013new.csv").write_text("\n".join(votes) + "\n")
    return {}


def make_disfa(root: Path, astronaut) -> dict:
    for code in (1, 2, 4, 6, 9, 12, 25, 26):
        intensity = {6: 3, 12: 4} if code in (6, 12) else {}
        lines = [
            f"{frame},{intensity.get(code, 0) if frame == 2 else (1 if code == 12 else 0)}" for frame in (1, 2, 3)
        ]
        path = root / "ActionUnit_Labels" / "SN001" / f"SN001_au{code}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    for frame in (1, 2):  # frame 3 was not extracted: left out
        _save(astronaut, root / "Frames" / "SN001" / f"{frame:05d}.png")
    return {}


def make_bp4d(root: Path, astronaut) -> dict:
    codes = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]
    rows = ["Frame," + ",".join(map(str, codes))]
    rows.append("1," + ",".join("0" for _ in codes))
    rows.append("2," + ",".join("1" if c in (6, 12) else "0" for c in codes))
    rows.append("3," + ",".join("9" if c == 4 else "0" for c in codes))  # unknown AU4: left out
    path = root / "AUCoding" / "AU_OCC" / "F001_T1.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(rows) + "\n")
    for frame in (1, 2, 3):
        _save(astronaut, root / "2DFaces" / "F001" / "T1" / f"{frame:04d}.jpg")
    return {}


def make_ckplus(root: Path, astronaut) -> dict:
    for seq, code, aus in (("001", 5, [6, 12]), ("002", 1, [4, 7, 23])):
        stem = f"S005_{seq}_00000011"
        _save(astronaut, root / "cohn-kanade-images" / "S005" / seq / f"{stem}.png")
        _save(astronaut, root / "cohn-kanade-images" / "S005" / seq / f"S005_{seq}_00000001.png")
        (root / "Emotion" / "S005" / seq).mkdir(parents=True)
        (root / "Emotion" / "S005" / seq / f"{stem}_emotion.txt").write_text(f"   {code:.7e}\n")
        (root / "FACS" / "S005" / seq).mkdir(parents=True)
        (root / "FACS" / "S005" / seq / f"{stem}_facs.txt").write_text("".join(f"   {a:.7e}   {0:.7e}\n" for a in aus))
    return {}


def make_jaffe(root: Path, astronaut) -> dict:
    root.mkdir(parents=True)
    for name in ("KA.HA1.29.tiff", "KA.NE1.26.tiff", "YM.SU2.59.tiff"):
        Image.fromarray(astronaut[:256, 120:376]).convert("L").save(root / name)
    (root / "README").write_text("JAFFE")
    return {}


def make_emotionet(root: Path, astronaut) -> dict:
    codes = [1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26, 43]
    header = "URL," + ",".join(f"AU{c}" for c in codes)
    rows = [header, "http://example.org/x/img1.jpg," + ",".join("1" if c in (6, 12) else "0" for c in codes),
            "http://example.org/x/img2.jpg," + ",".join("999" if c == 43 else "0" for c in codes)]  # fmt: skip
    root.mkdir(parents=True)
    (root / "emotionet.csv").write_text("\n".join(rows) + "\n")
    _save(astronaut, root / "images" / "img1.jpg")
    return {}


def make_fea20k(root: Path, astronaut) -> dict:
    _save(_face(astronaut), root / "images" / "a.png")
    text = "<think>The cheeks are raised (AU6).</think><answer>happiness</answer>"
    rows = [{"id": "fea-1", "dataset": "RAF-DB", "image": "images/a.png", "question": "?", "AUs": ["AU6", "AU12"],
             "labels": "happiness", "description": text}]  # fmt: skip
    (root / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return {}


def test_rafdb(tmp_path, astronaut):
    expected = make_rafdb(tmp_path / "basic", astronaut)
    samples = get_benchmark("rafdb").load(tmp_path / "basic")
    assert [s.emotion for s in samples] == expected["emotions"]
    assert samples[0].id == "test_0001" and samples[0].load().shape == (190, 190, 3)
    assert len(get_benchmark("rafdb").load(tmp_path / "basic", split="all")) == 3


def test_affectnet_crops_the_face_box_and_drops_non_emotions(tmp_path, astronaut):
    make_affectnet(tmp_path / "an", astronaut)
    seven = get_benchmark("affectnet7").load(tmp_path / "an")
    eight = get_benchmark("affectnet8").load(tmp_path / "an", split="val")
    assert [s.emotion for s in seven] == ["happiness"] and [s.emotion for s in eight] == ["happiness", "contempt"]
    assert seven[0].load().shape == (190, 190, 3)


def test_fer2013_and_ferplus(tmp_path):
    make_fer(tmp_path / "fer")
    fer = get_benchmark("fer2013").load(tmp_path / "fer")
    assert [s.emotion for s in fer] == ["happiness", "anger"] and fer[0].load().shape == (48, 48, 3)
    assert [s.emotion for s in get_benchmark("fer2013").load(tmp_path / "fer", split="val")] == ["neutral"]
    plus = get_benchmark("ferplus").load(tmp_path / "fer")
    assert [(s.id, s.emotion) for s in plus] == [("fer0000001", "happiness")]
    assert get_benchmark("ferplus").load(tmp_path / "fer", split="train")[0].emotion == "happiness"


def test_disfa_binarises_intensities_and_skips_missing_frames(tmp_path, astronaut):
    make_disfa(tmp_path / "disfa", astronaut)
    samples = get_benchmark("disfa").load(tmp_path / "disfa")
    assert [(s.id, s.aus) for s in samples] == [("SN001/1", []), ("SN001/2", [6, 12])]


def test_bp4d_leaves_out_unknown_labels(tmp_path, astronaut):
    make_bp4d(tmp_path / "bp4d", astronaut)
    samples = get_benchmark("bp4d").load(tmp_path / "bp4d")
    assert [(s.id, s.aus, s.subject) for s in samples] == [("F001/T1/1", [], "F001"), ("F001/T1/2", [6, 12], "F001")]


def test_ckplus_peak_frames_with_facs(tmp_path, astronaut):
    make_ckplus(tmp_path / "ck", astronaut)
    samples = get_benchmark("ckplus").load(tmp_path / "ck")
    assert [(s.emotion, s.aus) for s in samples] == [("happiness", [6, 12]), ("anger", [4, 7, 23])]
    assert samples[0].image.name == "S005_001_00000011.png"


def test_jaffe_labels_from_file_names(tmp_path, astronaut):
    make_jaffe(tmp_path / "jaffe", astronaut)
    samples = get_benchmark("jaffe").load(tmp_path / "jaffe")
    assert [(s.id, s.emotion) for s in samples] == [("KA.HA1.29", "happiness"), ("KA.NE1.26", "neutral"),
                                                    ("YM.SU2.59", "surprise")]  # fmt: skip
    assert samples[0].load().shape == (256, 256, 3)  # grey TIFF -> RGB


def test_emotionet_maps_urls_onto_local_images(tmp_path, astronaut):
    make_emotionet(tmp_path / "en", astronaut)
    samples = get_benchmark("emotionet").load(tmp_path / "en")
    assert [(s.image.name, s.aus) for s in samples] == [("img1.jpg", [6, 12])]


def test_fea20k_keeps_the_reference_reasoning(tmp_path, astronaut):
    make_fea20k(tmp_path / "fea", astronaut)
    (sample,) = get_benchmark("fea20k").load(tmp_path / "fea")
    assert sample.emotion == "happiness" and sample.aus == [6, 12] and "(AU6)" in sample.reference


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_a_wrong_layout_is_one_clear_error(tmp_path, name):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError) as err:
        get_benchmark(name).load(tmp_path / "empty")
    message = str(err.value)
    assert message.startswith(f"{name}: ") and "expected" in message and "\n" not in message


def test_cli_layout_error_and_unknown_benchmark(tmp_path):
    proc = _eval_cli("--benchmark", "rafdb", "--data", str(tmp_path), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and proc.stderr.strip().startswith("emoreason: error: rafdb: none of")
    assert "EmoLabel/list_patition_label.txt" in proc.stderr
    proc = _eval_cli("--benchmark", "nope", "--data", str(tmp_path), "--out", str(tmp_path / "run"))
    assert "unknown benchmark 'nope'; choose from rafdb" in proc.stderr


# ------------------------------------------------------------------ runs
def _eval_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emoreason", "eval", *args], capture_output=True, text=True, **kwargs)


@pytest.mark.slow  # whole CLI runs in subprocesses, 7-24 s (make test-fast skips it)
def test_ckplus_end_to_end_with_emotion_au_and_reasoning_metrics(tmp_path, astronaut):
    make_ckplus(tmp_path / "ck", astronaut)
    report = run_eval(RunConfig("ckplus", str(tmp_path / "ck")), tmp_path / "run", progress=False)
    assert report["n"] == 2 and report["errors"] == 0
    assert report["emotion"]["confusion"]["happiness"]["happiness"] == 1  # the smiling astronaut
    assert report["au_protocol"] == [4, 6, 7, 12, 23]  # CK+: the AUs its FACS files use
    assert report["au_detector"]["per_au"]["AU12"]["f1"] > 0
    assert report["reasoning"]["format_valid"] == 1.0
    assert {"confusion.png", "recall.png", "au_f1.png", "reliability.png"} <= set(report["plots"])
    assert all((tmp_path / "run" / p).stat().st_size > 1000 for p in report["plots"])
    md = (tmp_path / "run" / "report.md").read_text()
    assert "| accuracy |" in md and "## Confusion matrix" in md and "## Per-AU F1: AUs from the detector" in md
    # provenance: what produced the numbers, in run.json, the report and its header
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["provenance"]
    shipped = DEFAULT_FACE_MODEL.name  # the default face model, e.g. emoreason-face-v4
    assert recorded["face_model"] == shipped and recorded["seed"] == 0 and recorded["date"]
    assert recorded["au_presence_thresholds"]["AU12"] == 2.0 and recorded["au_detector"] == "GeometricAUDetector"
    assert report["provenance"]["emoreason"] == recorded["emoreason"]
    assert f"face model {shipped}, AU detector GeometricAUDetector" in md
    page = (tmp_path / "run" / "report.html").read_text()  # one self-contained page: tables and the plots
    assert page.startswith("<!doctype html>") and page.count("data:image/png;base64,") == len(report["plots"])
    assert "<th>metric</th>" in page and "Confusion matrix" in page


def test_au_f1_is_scored_only_over_aus_the_system_outputs():
    from emoreason.eval.report import build_report

    rows = [{"id": str(i), "text": "<think>x</think><answer>happiness</answer>", "gold_aus": [12, 11],
             "cited_aus": [12], "detector_aus": [12]} for i in range(3)]  # fmt: skip
    report = build_report(rows, labels=None, protocol=[11, 12])
    assert report["au_not_detected"] == [11]  # AU11 (nasolabial deepener): no detector for it here
    assert list(report["au_detector"]["per_au"]) == ["AU12"] and report["au_detector"]["mean_f1"] == 1.0


@pytest.mark.slow  # whole CLI runs in subprocesses, 7-24 s (make test-fast skips it)
def test_au_only_benchmark_and_an_image_without_a_face(tmp_path, astronaut, no_face):
    make_disfa(tmp_path / "disfa", astronaut)
    _save(no_face, tmp_path / "disfa" / "Frames" / "SN001" / "00001.png")  # frame 1 shows a coffee cup
    report = run_eval(RunConfig("disfa", str(tmp_path / "disfa")), tmp_path / "run", progress=False)
    assert "emotion" not in report and report["au_protocol"] == [1, 2, 4, 6, 9, 12, 25, 26]
    assert report["errors"] == 1 and report["error_examples"] == ["SN001/1: no face found"]
    assert report["au_detector"]["n"] == 2  # the faceless frame still counts (nothing predicted)


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory, astronaut):
    """30 faces in class folders (shifted astronaut crops), the layout `--benchmark folder` reads."""
    root = tmp_path_factory.mktemp("folder")
    for i in range(30):
        label = ("happy", "sad", "angry")[i % 3]
        dy, dx = 2 * (i % 5), 2 * (i // 5)
        _save(np.ascontiguousarray(astronaut[40 + dy : 230 + dy, 130 + dx : 320 + dx]), root / label / f"{i:02d}.png")
    return root


@pytest.mark.slow  # a worker process or subprocess run of many seconds
def test_resume_after_a_kill_scores_each_sample_once(labelled_folder, tmp_path):
    run = tmp_path / "run"
    args = ["--benchmark", "folder", "--data", str(labelled_folder), "--out", str(run), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "emoreason", "eval", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    predictions = run / "predictions.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not predictions.exists() or len(predictions.read_text().splitlines()) < 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = read_rows(predictions)
    assert 5 <= len(written) < 30, "the kill should land mid-run"
    with open(predictions, "a") as fh:
        fh.write('{"id": "happy/99.png", "emot')  # a torn last line, as a kill mid-write leaves it
    done = _eval_cli(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = predictions.read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == 30 and len(set(ids)) == 30  # every sample once, the torn line gone
    again = read_rows(predictions)
    assert all(again[i] == row for i, row in written.items())  # the rows before the kill were kept
    # the same results as a run that was never interrupted
    fresh = run_eval(RunConfig("folder", str(labelled_folder)), tmp_path / "fresh", progress=False)
    resumed = json.loads((run / "report.json").read_text())
    assert resumed["emotion"]["confusion"] == fresh["emotion"]["confusion"] and resumed["n"] == 30


@pytest.mark.slow  # a worker process or subprocess run of many seconds
def test_limit_sample_compare_and_a_mismatched_run_dir(labelled_folder, tmp_path):
    first = run_eval(RunConfig("folder", str(labelled_folder), sample=10, seed=1), tmp_path / "a", progress=False)
    same = run_eval(RunConfig("folder", str(labelled_folder), sample=10, seed=1), tmp_path / "a2", progress=False)
    assert first["n"] == 10 and read_rows(tmp_path / "a" / "predictions.jsonl").keys() == read_rows(
        tmp_path / "a2" / "predictions.jsonl").keys()  # fmt: skip  # the seeded subset is reproducible
    assert same["emotion"] == first["emotion"]
    no_prior = run_eval(RunConfig("folder", str(labelled_folder), limit=6, backend_options={"use_prior": False}),
                        tmp_path / "b", progress=False)  # fmt: skip
    assert no_prior["n"] == 6
    proc = _eval_cli("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.splitlines()
    assert table[0] == "benchmark: folder" and "| metric | a (embedded) | b (embedded) |" in table
    assert any(line.startswith("| samples | 10 | 6 |") for line in table)
    with pytest.raises(ValueError, match="holds another run"):
        run_eval(RunConfig("folder", str(labelled_folder), backend_options={"use_prior": False}), tmp_path / "a")


@pytest.mark.slow  # whole CLI runs in subprocesses, 7-24 s (make test-fast skips it)
def test_run_configuration_file_flags_win_and_the_leaderboard(labelled_folder, tmp_path, monkeypatch, capsys):
    from emoreason.cli import main

    monkeypatch.setenv("EMOREASON_TEST_DATA", str(labelled_folder.parent))
    config = tmp_path / "folder-embedded.yaml"
    config.write_text(f"benchmark: folder\ndata: $EMOREASON_TEST_DATA/{labelled_folder.name}\n"
                      f"out: {tmp_path / 'configured'}\nbackend: embedded\nlimit: 9\nno_prior: true\n")  # fmt: skip
    assert main(["eval", "--config", str(config), "--limit", "4", "--quiet"]) == 0  # the flag wins over `limit: 9`
    report = json.loads((tmp_path / "configured" / "report.json").read_text())
    assert report["n"] == 4 and report["run"]["backend_options"] == {"use_prior": False}
    assert report["run"]["data"] == str(labelled_folder)  # $VARS expanded
    # a generic reader's report, plots and tables name the data it read, not only "folder"
    assert report["dataset"] == f"folder: {labelled_folder.name}"
    md = (tmp_path / "configured" / "report.md").read_text()
    assert md.startswith(f"# labelled folder ({labelled_folder.name}): embedded")
    capsys.readouterr()
    assert main(["eval", "leaderboard", str(tmp_path / "configured"), "--out", str(tmp_path / "RESULTS.md")]) == 0
    board = (tmp_path / "RESULTS.md").read_text().splitlines()
    assert "| benchmark | split | run | backend | expression prior | samples | accuracy |" in board[4]
    row = f"| folder: {labelled_folder.name} | default | configured | embedded (no prior) | - | 4 |"
    assert board[6].startswith(row)

    config.write_text("benchmark: folder\nlimt: 3\n")
    assert main(["eval", "--config", str(config)]) == 2
    assert capsys.readouterr().err.strip() == f"emoreason: error: --config {config}: unknown setting 'limt' " \
                                              "(the keys are `emoreason eval` flags)"  # fmt: skip


def test_the_shipped_run_configurations_name_known_settings():
    """eval/configs/*.yaml: every key is an `emoreason eval` flag and every benchmark exists."""
    import yaml

    from emoreason.cli import build_parser

    configs = sorted((Path(__file__).resolve().parent.parent / "eval" / "configs").glob("*.yaml"))
    assert len(configs) >= 30
    defaults = vars(build_parser().parse_args(["eval"]))
    for path in configs:
        settings = yaml.safe_load(path.read_text())
        assert settings["benchmark"] in BENCHMARKS, path
        assert set(settings) <= set(defaults), (path, set(settings) - set(defaults))


def test_paired_comparison_is_mcnemars_exact_test():
    """The discordant split and its exact two-sided p, as scipy's binomial test gives it (bench/accuracy.py and
    bench/mini.py read GRPO against SFT, the rule against its prior, with it)."""
    from scipy.stats import binomtest

    from emoreason.eval.metrics import paired_comparison

    gold = ["fear"] * 40
    for a_only, b_only, same in ((0, 0, 5), (5, 7, 10), (12, 1, 3), (20, 20, 0)):
        a = ["fear"] * a_only + ["anger"] * b_only + ["fear"] * same + ["sadness"] * (40 - a_only - b_only - same)
        b = ["anger"] * a_only + ["fear"] * b_only + ["fear"] * same + ["anger"] * (40 - a_only - b_only - same)
        pair = paired_comparison(gold, grpo=a, sft=b)
        n = a_only + b_only
        assert (pair["grpo_only_right"], pair["sft_only_right"]) == (a_only, b_only)
        assert pair["mcnemar_p"] == pytest.approx(binomtest(a_only, n, 0.5).pvalue if n else 1.0)
