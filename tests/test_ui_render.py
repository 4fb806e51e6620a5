"""What the demo shows, without a browser (ui/render.py): the reasoning as blocks, AU links, the glossary, bars,
the face selector's entries and the downloads. The page itself is driven in Chromium in test_ui.py."""

from __future__ import annotations

import csv
import json

from emoreason.types import AUActivation, EmotionAnalysis, FaceAnalysis
from emoreason.ui import render

SMILE = ("<think>The lip corners are clearly pulled up (AU12) and the cheeks lift (AU6); the brows are not "
         "lowered (no AU4).</think>\n<answer>happiness</answer>")  # fmt: skip


def _face(index: int, text: str = SMILE, emotion: str | None = "happiness") -> FaceAnalysis:
    aus = [AUActivation(12, 3.4, True, 0.9, "lip corner puller"), AUActivation(6, 2.6, True, 0.8, "cheek raiser"),
           AUActivation(4, 0.3, False, 0.1, "brow lowerer")]  # fmt: skip
    return FaceAnalysis(index=index, box=(10.0 + 100 * index, 10.0, 90.0 + 100 * index, 90.0), aus=aus,
                        emotion=emotion, confidence=0.87, reasoning="", text=text,
                        emotion_scores={"happiness": 0.87, "neutral": 0.13})  # fmt: skip


def _analysis(n_faces: int = 1) -> EmotionAnalysis:
    return EmotionAnalysis(source="photo.png", width=200 * n_faces, height=100,
                           faces=[_face(i) for i in range(n_faces)], backend="embedded")  # fmt: skip


def test_the_reasoning_is_a_folded_block_and_the_answer_a_headline():
    thought, answer = render.reasoning_messages(_analysis())
    assert thought["metadata"] == {"title": "Reasoning", "status": "done"}
    assert "<think>" not in thought["content"] and "<answer>" not in answer["content"]
    assert '[AU12](#au-12 "lip corner puller")' in thought["content"]  # a link to the glossary, the name as tooltip
    assert "(no [AU4](#au-4" in thought["content"]
    assert answer["content"].startswith("### Happiness\n87% confidence")
    assert "AUs present: [AU6](#au-6" in answer["content"] and "AU4" not in answer["content"]  # measured present


def test_every_face_gets_its_own_block_and_headline():
    messages = render.reasoning_messages(_analysis(2))
    assert [m.get("metadata", {}).get("title") for m in messages] == [
        "Reasoning, face 1",
        None,
        "Reasoning, face 2",
        None,
    ]
    assert messages[3]["content"].startswith("### Face 2: Happiness")
    assert render.face_choices(_analysis(2)) == [("Face 1: happiness", 0), ("Face 2: happiness", 1)]


def test_a_text_that_contradicts_the_measurements_says_so_under_its_answer():
    analysis = _analysis()
    analysis.faces[0].contradictions = ["cites unmeasured AU9"]
    answer = render.reasoning_messages(analysis)[1]["content"]
    assert answer.endswith("**The reasoning contradicts the measurements or itself:** cites unmeasured AU9")
    assert "contradicts" not in render.reasoning_messages(_analysis())[1]["content"]


def test_while_streaming_the_tags_never_show():
    message = render.streaming_message("<think>The lip corners are clearly pul")
    assert message["content"] == "The lip corners are clearly pul" and message["metadata"]["status"] == "pending"


def test_no_face_and_a_failed_face_read_as_sentences():
    empty = EmotionAnalysis(source="cup.png", width=10, height=10, faces=[], backend="embedded")
    assert render.reasoning_messages(empty)[0]["content"] == "No face was found in this image."
    broken = _analysis()
    broken.faces[0] = _face(0, text="", emotion=None)
    broken.faces[0].error = "the model endpoint timed out"
    assert render.reasoning_messages(broken)[0]["content"] == "no analysis (the model endpoint timed out)"


def test_unknown_au_codes_stay_plain_text():
    assert render.link_aus("AU99 and AU 12") == 'AU99 and [AU12](#au-12 "lip corner puller")'


def test_the_glossary_lists_the_measured_and_the_cited_aus():
    glossary = render.glossary_html(_analysis())
    assert [f'id="au-{c}"' in glossary for c in (4, 6, 12)] == [True, True, True]  # AU4: cited as absent
    assert "zygomaticus major" in glossary and 'id="au-1"' not in glossary


def test_bars_show_the_selected_face_with_a_legend():
    analysis = _analysis(2)
    analysis.faces[1].aus[0] = AUActivation(12, 0.4, False, 0.1, "lip corner puller")
    bars = render.au_bars(analysis, face_index=1)
    assert "Face 2 of 2" in bars and "present (at or above" in bars
    assert bars.count('class="au-row present"') == 1 and bars.count('class="au-row absent"') == 2
    assert render.scores(analysis, 1) == {"happiness": 0.87, "neutral": 0.13}


def test_downloads_are_the_json_the_csv_and_the_annotated_image(tmp_path, astronaut):
    analysis = _analysis(2)
    json_path, csv_path, png_path = render.write_downloads(analysis, astronaut, tmp_path)
    assert EmotionAnalysis.from_dict(json.loads(json_path.read_text())).faces[1].emotion == "happiness"
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["face"] for r in rows] == ["0", "1"] and rows[0]["AU12_present"] == "1"
    assert png_path.read_bytes()[:4] == b"\x89PNG"
