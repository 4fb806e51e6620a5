"""`class_balance: true` in a recipe: the training examples drawn so that each emotion is equally likely.

FER2013 is 1% disgust and a third happiness; a VLM trained on it as it comes learns those rates as a prior
over its answers (the emoreason-mini SFT model answered disgust on none of the 50 disgust faces of the
balanced development set, docs/emoreason-mini.md item 11).
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from emoreason.training.config import check_and_record_run, load_recipe, trainer_config
from emoreason.training.prepare import class_balanced_indices
from emoreason.training.sft import prepared_dataset


def test_indices_draw_each_emotion_equally_often_and_are_seeded():
    emotions = ["happiness"] * 900 + ["disgust"] * 10 + ["fear"] * 90 + [None] * 100
    drawn = class_balanced_indices(emotions, seed=0)
    assert len(drawn) == len(emotions) and drawn == sorted(drawn)
    counts = Counter(emotions[i] for i in drawn)
    assert set(counts) == {"happiness", "disgust", "fear", None}
    for group in counts:  # 4 groups of 1,100 draws: 275 each on average
        assert 200 < counts[group] < 350, counts
    assert class_balanced_indices(emotions, seed=0) == drawn  # a resumed run draws the same epoch
    assert class_balanced_indices(emotions, seed=1) != drawn


def _records(tmp_path, astronaut) -> str:
    rows = []
    for i, emotion in enumerate(["happiness"] * 5 + ["sadness"]):
        crop = np.ascontiguousarray(astronaut[40 + 2 * i : 230 + 2 * i, 130:320])
        Image.fromarray(crop).save(tmp_path / f"{i}.png")
        text = f"<think>The face (AU12).</think>\n<answer>{emotion}</answer>"
        rows.append({"id": str(i), "image": f"{i}.png", "labels": emotion, "AUs": ["AU12"], "description": text})
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    return str(data)


def test_a_recipe_with_class_balance_trains_on_a_balanced_draw(tmp_path, astronaut):
    data = _records(tmp_path, astronaut)
    overrides = [f"train_file={data}", f"trainer.output_dir={tmp_path / 'run'}", "face_tokens.enabled=false"]
    plain = load_recipe("training/recipes/tiny/sft.yaml", overrides)
    assert plain.class_balance is False  # off unless a recipe asks
    as_it_comes = prepared_dataset(plain, trainer_config(plain), require_description=True)
    assert Counter(as_it_comes["emotion"]) == {"happiness": 5, "sadness": 1}

    balanced = load_recipe("training/recipes/tiny/sft.yaml", [*overrides, "class_balance=true"])
    dataset = prepared_dataset(balanced, trainer_config(balanced), require_description=True)
    ids = dataset["id"]
    assert len(ids) == 6 and ids == [str(i) for i in class_balanced_indices(as_it_comes["emotion"], seed=0)]
    assert Counter(dataset["emotion"])["sadness"] >= 2  # 1 of 6 as it comes; 3 of 6 on average when balanced


def test_a_run_resumes_across_the_new_key_but_not_across_a_change_of_it(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"image": "a.png", "emotion": "happiness"}\n')
    overrides = [f"train_file={data}", f"trainer.output_dir={tmp_path / 'run'}"]
    recipe = load_recipe("training/recipes/tiny/sft.yaml", overrides)
    recorded = check_and_record_run(recipe, has_checkpoint=False)
    fingerprint = tmp_path / "run" / "fingerprint.json"
    del recorded["recipe"]["class_balance"]  # a run recorded before the key existed
    fingerprint.write_text(json.dumps(recorded))
    check_and_record_run(recipe, has_checkpoint=True)  # resumes: it drew its examples as they come
    balanced = load_recipe("training/recipes/tiny/sft.yaml", [*overrides, "class_balance=true"])
    with pytest.raises(ValueError, match=r"\(class_balance changed\)"):
        check_and_record_run(balanced, has_checkpoint=True)


def test_a_run_resumes_across_a_new_face_tokens_key_but_not_across_a_change_of_it(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"image": "a.png", "emotion": "happiness"}\n')
    overrides = [f"train_file={data}", f"trainer.output_dir={tmp_path / 'run'}"]
    recipe = load_recipe("training/recipes/tiny/grpo.yaml", overrides)
    recorded = check_and_record_run(recipe, has_checkpoint=False)
    del recorded["recipe"]["face_tokens"]["train_projector"]  # recorded before the sub-key existed
    (tmp_path / "run" / "fingerprint.json").write_text(json.dumps(recorded))
    check_and_record_run(recipe, has_checkpoint=True)  # resumes: the projector was trained then, as by default
    frozen = load_recipe("training/recipes/tiny/grpo.yaml", [*overrides, "face_tokens.train_projector=false"])
    with pytest.raises(ValueError, match=r"\(face_tokens changed\)"):
        check_and_record_run(frozen, has_checkpoint=True)
