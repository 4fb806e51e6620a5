"""Results as tables (py-feat / OpenFace style): to_pandas and `analyze --format csv`."""

import csv
import io

import numpy as np

from emoreason.cli import main
from emoreason.facs import DETECTED_AUS
from emoreason.labels import EMOTIONS
from emoreason.tables import COLUMNS, CSVWriter, rows
from emoreason.types import EmotionAnalysis


def test_one_row_per_face_with_every_au_and_probability(analyzer, two_faces):
    result = analyzer.analyze(two_faces)
    table = result.to_pandas()
    assert list(table.columns) == COLUMNS and len(table) == 2
    assert list(table["face"]) == [0, 1] and set(table["kind"]) == {"image"}
    for code in DETECTED_AUS:  # every detected AU has an intensity and a presence column, filled in
        assert table[f"AU{code}"].notna().all() and set(table[f"AU{code}_present"]) <= {0, 1}
    probabilities = table[[f"p_{e}" for e in EMOTIONS]].to_numpy(dtype=float)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=2e-3)
    assert (table["emotion"] == "happiness").all()
    assert table.loc[0, "AU12"] == next(a.intensity for a in result.faces[0].aus if a.code == 12)


def test_failed_and_faceless_inputs_keep_a_row(analyzer, no_face):
    failed = EmotionAnalysis.failed("bad.png", "bad.png: not an image", "embedded")
    [row] = rows(failed)
    assert row["source"] == "bad.png" and row["error"] == "bad.png: not an image" and "face" not in row
    [empty] = rows(analyzer.analyze(no_face))
    assert empty["error"] is None and "emotion" not in empty
    out = io.StringIO()
    writer = CSVWriter(out)
    writer.write(failed)
    lines = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert lines[0]["error"] == "bad.png: not an image" and lines[0]["emotion"] == ""


def test_analyze_writes_csv(tmp_path, astronaut, capsys):
    from PIL import Image

    Image.fromarray(astronaut).save(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_text("not an image")
    out = tmp_path / "faces.csv"
    assert main(["analyze", str(tmp_path / "a.png"), str(tmp_path / "b.jpg"), "--format", "csv", "--out", str(out),
                 "--quiet"]) == 1  # fmt: skip
    table = list(csv.DictReader(out.open()))
    assert [r["source"].split("/")[-1] for r in table] == ["a.png", "b.jpg"]
    assert table[0]["emotion"] == "happiness" and float(table[0]["AU12"]) > 1 and table[0]["AU12_present"] == "1"
    assert "not an image" in table[1]["error"]
    capsys.readouterr()
