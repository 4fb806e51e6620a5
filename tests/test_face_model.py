"""emoreason's face model: the trainer (`emoreason train face-model`) on drawn faces, resume after a stop,
the exported folder as expression prior and as face encoder, the split rule, recipe errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from emoreason.cli import main
from emoreason.training.face_model import load_face_recipe, split_of

pytestmark = pytest.mark.slow  # face-model training runs (small, but training) (make test-fast skips them)

EMOTIONS = ("happiness", "sadness", "surprise", "anger")
TINY = ["epochs=2", "batch_size=16", "net.channels=[8,16,16,32]", "net.layers=[1,1,1,1]",
        "split_val_percent=30", "split_vlm_percent=10", "lr=0.05", "threads=1"]  # fmt: skip


@pytest.fixture(scope="module")
def drawn_faces(tmp_path_factory):
    """A labelled folder of procedural faces (labels.csv + PNGs), as FER2013 is laid out."""
    from emoreason.data.procedural import make_faces

    root = tmp_path_factory.mktemp("faces")
    with open(root / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "emotion"])
        for i, face in enumerate(make_faces(160, EMOTIONS, seed=1, size=96)):
            Image.fromarray(face.image).save(root / f"face_{i:04d}.png")
            writer.writerow([f"face_{i:04d}.png", face.emotion])
    return root


def test_split_is_stable_and_sized():
    names = [f"Training_{i}.jpg" for i in range(4000)]
    splits = [split_of(n, 5, 15) for n in names]
    assert splits == [split_of(n, 5, 15) for n in names]  # the same on every machine and run
    share = {s: splits.count(s) / len(splits) for s in ("face", "val", "vlm")}
    assert abs(share["val"] - 0.05) < 0.02 and abs(share["vlm"] - 0.15) < 0.03
    assert split_of("a/b/Training_7.jpg", 5, 15) == split_of("Training_7.jpg", 5, 15)  # by file name


def test_recipe_errors_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="epocs"):
        load_face_recipe(None, ["epocs=3"])
    with pytest.raises(ValueError, match="widht"):
        load_face_recipe(None, ["net.widht=3"])
    recipe = load_face_recipe("training/recipes/face-model/fer2013.yaml", ["epochs=3", "net.drop_rate=0.1"])
    assert recipe.epochs == 3 and recipe.net.drop_rate == 0.1 and recipe.net.layers == [2, 2, 2, 2]


def test_train_resume_and_use(drawn_faces, tmp_path, capsys, astronaut):
    out = tmp_path / "run"
    args = ["train", "face-model", "--config", "training/recipes/face-model/fer2013.yaml", "--data", str(drawn_faces),
            "--out", str(out), *TINY]  # fmt: skip
    assert main([*args, "epochs=1"]) == 0  # a run stopped after its first epoch...
    assert main(args) == 0  # ...resumes there and finishes
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]  # no epoch trained twice
    assert "resuming" in capsys.readouterr().err
    # resuming onto other faces (here: 40% instead of 30% held out for validation) is refused, by name
    assert main([*args, "epochs=3", "split_val_percent=40"]) == 2
    assert "its checkpoint was trained on other faces" in capsys.readouterr().err  # one line, naming the override
    assert (out / "tb").is_dir() and (out / "model" / "model.safetensors").is_file()
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["net"]["classes"][:7] == ["neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger"]

    from emoreason.face.face_model import FaceModel, FaceModelEncoder
    from emoreason.face.frontend import FaceFrontEnd, FrontEndConfig

    model = FaceModel(out / "model")
    probs = model.predict([astronaut[70:200, 165:290], np.zeros((48, 48), np.uint8)])
    assert all(abs(sum(p.values()) - 1) < 1e-3 for p in probs)
    frontend = FaceFrontEnd(FrontEndConfig(expression_model=str(out / "model")))
    face = frontend.observe(astronaut)[0]
    frontend.close()
    assert set(face.expression_prior) == set(config["net"]["classes"])
    assert face.expression_crop.shape == (96, 96, 3)  # FER2013's crop geometry, cut from the photo
    encoder = FaceModelEncoder(out / "model")
    assert tuple(encoder.encode_patches([face.aligned_crop]).shape) == (1, 6, 6, 16)  # layer3 grid, channels last

    from emoreason.training.face_model import ship

    shipped = ship(out, tmp_path / "shipped")  # what `make face-model-ship` does, without bench figures
    card = (shipped / "MODEL_CARD.md").read_text()
    assert "| 2 |" in card and "split" in card and "research" in card  # learning curve, split, licence note
    assert "the median epoch took" in card  # the pace, which a paused run's cumulative seconds overstate
    assert FaceModel(shipped).predict([astronaut])[0] == FaceModel(out / "model").predict([astronaut])[0]


def test_face_model_as_face_token_encoder(drawn_faces, tmp_path, astronaut):
    """The face-token layout pools the face model's feature grid like a ViT's patch grid."""
    from emoreason.models.face_tokens import FaceFeatureExtractor, FaceTokenLayout

    out = tmp_path / "run"
    assert main(["train", "face-model", "--data", str(drawn_faces), "--out", str(out), *TINY, "epochs=1"]) == 0
    extractor = FaceFeatureExtractor(FaceTokenLayout(16), "emoreason-face", str(out / "model"))
    rows = extractor([astronaut[:224, 100:324]] * 2)
    assert tuple(rows.shape) == (2 * 64, 16) and extractor.dim == 16
    projector = extractor.new_projector(hidden_size=32)
    assert projector.config.encoder == "emoreason-face" and projector.config.encoder_pretrained == str(out / "model")
    assert tuple(projector(rows).shape) == (2 * 16, 32)


def test_a_warm_restart_starts_from_the_finished_model_and_its_card_shows_both_stages(drawn_faces, tmp_path, capsys):
    import torch
    from safetensors.torch import load_file

    from emoreason.face.face_model import build_face_net
    from emoreason.training.face_model import _start_from, ship

    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["train", "face-model", "--data", str(drawn_faces), "--out", str(first), *TINY]) == 0
    # the restart's net begins with the first stage's exported weights and normalisation, not at random
    recipe = load_face_recipe(None, [*TINY, f"init={first / 'model'}"])
    net = build_face_net(recipe.net)
    _start_from(first / "model", net, recipe)
    shipped_weights = load_file(str(first / "model" / "model.safetensors"))
    assert all(torch.equal(net.state_dict()[k].float(), v.float()) for k, v in shipped_weights.items())
    assert recipe.net.mean == json.loads((first / "model" / "config.json").read_text())["net"]["mean"]
    with pytest.raises(ValueError, match="another architecture"):
        _start_from(first / "model", build_face_net(load_face_recipe(None).net), load_face_recipe(None))

    restart = ["train", "face-model", "--data", str(drawn_faces), "--out", str(second), *TINY, "lr=0.01"]
    assert main([*restart, f"init={first / 'model'}"]) == 0
    card = (ship(second, tmp_path / "shipped") / "MODEL_CARD.md").read_text()
    assert "Then a warm restart" in card
    assert "| 1 | 2 |" in card and "| 2 | 3 |" in card and "| 2 | 4 |" in card  # stage one's epochs, then two's
    assert main([*restart, f"init={tmp_path / 'nowhere'}", f"--out={tmp_path / 'third'}"]) == 2
    assert "nowhere: no face model here" in capsys.readouterr().err  # one line that names the init


def test_bf16_training_follows_the_float32_run_and_exports_a_float32_model(drawn_faces, tmp_path, capsys, astronaut):
    """precision=bf16 changes only the forward pass's number format: with the same seed and faces the losses
    and validation figures stay close to float32's, and the exported model infers in float32 as any other."""
    from emoreason.face.face_model import FaceModel

    runs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        args = ["train", "face-model", "--data", str(drawn_faces), "--out", str(out), *TINY, f"precision={precision}"]
        assert main(args) == 0
        runs[precision] = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    for fp32, bf16 in zip(runs["fp32"], runs["bf16"]):
        assert abs(fp32["train_loss"] - bf16["train_loss"]) < 0.05, (fp32, bf16)
    probs = FaceModel(tmp_path / "bf16" / "model").predict([astronaut])[0]
    assert abs(sum(probs.values()) - 1) < 1e-3
    wrong = ["train", "face-model", "--data", str(drawn_faces), "--out", str(tmp_path / "x"), "precision=fp16"]
    assert main(wrong) == 2
    assert "precision='fp16', expected fp32 or bf16" in capsys.readouterr().err


def test_swa_exports_the_mean_of_the_last_epochs_and_a_stopped_run_resumes_it(drawn_faces, tmp_path, monkeypatch):
    """swa_epochs=N: the exported weights are the mean of the last N epochs' (not the last epoch's), with their
    own batch-norm statistics; a run killed inside the averaging window resumes with the mean it had."""
    import torch
    from safetensors.torch import load_file

    import emoreason.training.face_model as trainer
    from emoreason.training.face_model import ship

    args = ["train", "face-model", "--data", str(drawn_faces), *TINY, "epochs=3", "swa_epochs=2", "schedule=constant"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0

    real_checkpoint, saved = trainer._checkpoint, []

    def stop_after_two_epochs(*a, **kw):
        real_checkpoint(*a, **kw)
        saved.append(1)
        if len(saved) == 2:  # epoch 2 is saved (the first in the mean): the machine dies here
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_checkpoint", stop_after_two_epochs)
    assert main([*args, "--out", str(tmp_path / "stopped")]) == 130  # Ctrl-C's exit status
    monkeypatch.setattr(trainer, "_checkpoint", real_checkpoint)
    assert main([*args, "--out", str(tmp_path / "stopped")]) == 0

    whole = load_file(str(tmp_path / "whole" / "model" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "stopped" / "model" / "model.safetensors"))
    assert all(torch.allclose(whole[k].float(), resumed[k].float(), atol=2e-3) for k in whole)
    last = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)["net"]  # the last epoch's weights
    assert any(not torch.allclose(whole[k].float(), last[k].float(), atol=1e-2) for k in whole if "conv" in k)
    config = json.loads((tmp_path / "whole" / "model" / "config.json").read_text())
    assert config["trained"]["swa"]["epochs"] == [2, 3] and 0 <= config["trained"]["val"]["uar_tta"] <= 1
    card = (ship(tmp_path / "whole", tmp_path / "shipped") / "MODEL_CARD.md").read_text()
    assert "the mean of the weights at the end of epochs 2-3" in card
    with pytest.raises(ValueError, match="swa_epochs=4"):
        load_face_recipe(None, ["epochs=3", "swa_epochs=4"])


def test_face_tokens_can_carry_the_prior(astronaut):
    """`emoreason-face+prior`: the shipped face model's layer3 grid with its own flip-TTA log-probabilities
    appended to every patch, so the prior reaches the VLM through the face tokens."""
    import numpy as np
    import torch

    from emoreason.models.face_tokens import FaceFeatureExtractor, FaceTokenLayout

    crops = [astronaut[:224, 100:324], astronaut[50:274, 80:304]]
    plain = FaceFeatureExtractor(FaceTokenLayout(16), "emoreason-face")
    with_prior = FaceFeatureExtractor(FaceTokenLayout(16), "emoreason-face+prior")
    rows, rows_prior = plain(crops), with_prior(crops)
    assert tuple(rows_prior.shape) == (2 * 64, plain.dim + 7) and with_prior.dim == plain.dim + 7
    assert torch.allclose(rows_prior[:, : plain.dim], rows)  # the patch features are untouched
    model = with_prior.encoder.model
    expected = torch.log_softmax(model.logits(with_prior.encoder._fer_geometry(crops), flip_tta=True), dim=-1)
    expected = expected.clamp(min=np.log(1e-3))
    for face in range(2):  # the same 7 numbers on each of a face's 64 rows: that face's own prior
        block = rows_prior[face * 64 : (face + 1) * 64, plain.dim :]
        assert torch.allclose(block, expected[face].expand(64, -1), atol=1e-5)
    config = with_prior.new_projector(hidden_size=32).config
    assert config.encoder == "emoreason-face+prior" and config.in_dim == plain.dim + 7
