"""`emoreason train face-model`: train the face model (face/face_model.py) on labelled face crops.

    emoreason train face-model --config training/recipes/face-model/fer2013.yaml \
        --data ../shared/data/fer2013/train --out out/runs/face-model

The data is a folder with `labels.csv` (filename, emotion) or a CSV whose paths are relative
to it. Faces are decoded once into a uint8 array (48x48 grey; cached beside the run), so
an epoch is pure tensor work. Every face gets a split by a hash of its file name
(`split_of`): `face` trains the model, `val` selects the epoch, `vlm` is held back for the
VLM's training data, so no VLM prompt carries a prior from a model that saw its face.

Recipe: SGD with Nesterov momentum, a linear warm-up then a cosine schedule, label
smoothing, logit adjustment for the class imbalance (Menon et al. 2021: the loss adds
log class priors to the logits, so the raw logits are balanced; disgust has 436 of
28,709 faces), batched augmentation on the whole batch (random 44 px crop, flip,
rotation, scale, shift, brightness/contrast, random erasing). A checkpoint after every
epoch; a killed run resumes from it. TensorBoard logs under OUT/tb, a progress bar, and
OUT/history.jsonl with one line per epoch. The best epoch by validation UAR (the dev
faces are balanced) is exported to OUT/model (what `FaceModel` loads).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import math
import os
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from ..face.face_model import FaceNetConfig, build_face_net, centre_crop, normalise, save_face_model, to_grey48
from ..labels import normalize_label
from .config import apply_overrides


@dataclass
class FaceModelRecipe:
    """training/recipes/face-model/*.yaml; any field overridable as key=value."""

    net: FaceNetConfig = field(default_factory=FaceNetConfig)
    seed: int = 0
    epochs: int = 16
    batch_size: int = 64
    lr: float = 0.05  # peak SGD learning rate
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    logit_adjustment: float = 1.0  # tau; 0 = plain cross-entropy on the imbalanced data
    split_val_percent: int = 5  # of each file name's hash bucket (0-99): the validation split
    split_vlm_percent: int = 15  # held back from the face model for the VLM's data
    rotate_deg: float = 10.0
    scale: float = 0.1  # +-10% zoom
    shift: float = 0.08  # +- fraction of the side
    brightness: float = 0.25
    contrast: float = 0.25
    erase_p: float = 0.5  # random erasing (a grey box up to a quarter of the face)
    threads: int = 0  # torch threads; 0 = every core
    # bf16: the forward pass under bfloat16 autocast (weights, optimiser and loss stay float32). Measured on these
    # 2 cores (AVX-512 BF16): 355 faces/s against 251 in float32 (channels-last both), 200 in the default layout.
    precision: str = "fp32"
    device: str = "cpu"  # or "cuda": the same recipe on a GPU (augmentation stays on the CPU; batches move)
    limit: int = 0  # use only the first N training faces (tests); 0 = all
    force_resume: bool = False  # resume the checkpoint in the run folder even if the faces differ
    # A face model folder whose weights start the run instead of a random initialisation: a second cosine cycle
    # from a finished run (a warm restart, Loshchilov & Hutter 2017), for a curve still rising when its lr hit 0.
    init: str = ""
    # "cosine" (warm-up, then a cosine decay to 0) or "constant" (warm-up, then lr throughout: the schedule SWA
    # averages over, a walk around a wide minimum rather than a descent into one point of it).
    schedule: str = "cosine"
    # Stochastic weight averaging (Izmailov et al. 2018): the mean of the weights at the end of each of the last
    # N epochs, batch-norm statistics recomputed for it on the training faces; the exported model when N > 0
    # (its validation figures are recorded beside the best single epoch's). 0 = off.
    swa_epochs: int = 0


def load_face_recipe(path: str | Path | None, overrides: list[str] | None = None) -> FaceModelRecipe:
    """A recipe YAML (or the defaults) plus `key=value` / `net.key=value` overrides; unknown keys are errors."""
    data: dict[str, Any] = {}
    if path is not None:
        from .recipes import resolve_recipe

        path = resolve_recipe(path)  # a path, or a shipped recipe's name (face-model/fer2013)
        data = yaml.safe_load(path.read_text()) or {}
    data = apply_overrides(data, overrides)
    net = data.pop("net", {}) or {}
    for cls, values, where in ((FaceModelRecipe, data, "recipe"), (FaceNetConfig, net, "net")):
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"face-model {where}: unknown key(s) {sorted(unknown)}")
    recipe = FaceModelRecipe(net=FaceNetConfig(**net), **data)
    if recipe.precision not in ("fp32", "bf16"):
        raise ValueError(f"face-model recipe: precision={recipe.precision!r}, expected fp32 or bf16")
    if recipe.schedule not in ("cosine", "constant"):
        raise ValueError(f"face-model recipe: schedule={recipe.schedule!r}, expected cosine or constant")
    if not 0 <= recipe.swa_epochs <= recipe.epochs:
        raise ValueError(f"face-model recipe: swa_epochs={recipe.swa_epochs}, expected 0..epochs ({recipe.epochs})")
    return recipe


def split_of(filename: str, val_percent: int, vlm_percent: int) -> str:
    """The split a face belongs to, from a hash of its file name: stable across machines and runs."""
    bucket = int(hashlib.sha1(Path(filename).name.encode()).hexdigest(), 16) % 100
    if bucket < val_percent:
        return "val"
    if bucket < val_percent + vlm_percent:
        return "vlm"
    return "face"


def shipped_split_of(filename: str, model: str | Path | None = None) -> str:
    """The split a face had when the shipped (or the given) face model was trained: face, val or vlm.

    The VLM's data must come from the `vlm` split (or from faces the face model never saw at
    all), so that no prompt carries a prior or face tokens from a model that trained on that face."""
    return split_of(filename, *_split_percents(model))


@functools.lru_cache(maxsize=8)
def _split_percents(model: str | Path | None) -> tuple[int, int]:
    """The model's (val, vlm) split percentages from its config: read once per model, not once per face
    (callers filter tens of thousands of files)."""
    from ..face.face_model import DEFAULT_FACE_MODEL

    recipe = json.loads((Path(model or DEFAULT_FACE_MODEL) / "config.json").read_text())["trained"]["recipe"]
    return recipe["split_val_percent"], recipe["split_vlm_percent"]


def read_labelled_faces(data: str | Path) -> list[tuple[Path, str]]:
    """(image path, canonical emotion) rows of a folder's labels.csv or a CSV file; one-line errors."""
    data = Path(data)
    table = data / "labels.csv" if data.is_dir() else data
    if not table.is_file():
        raise FileNotFoundError(f"{data}: expected a folder with labels.csv or a CSV file (filename,emotion)")
    rows = []
    with open(table, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = set(reader.fieldnames or ())
        name_col = next((c for c in ("filename", "path", "image") if c in columns), None)
        label_col = next((c for c in ("emotion", "label") if c in columns), None)
        if name_col is None or label_col is None:
            raise ValueError(f"{table}: needs a filename and an emotion column, has {sorted(columns)}")
        for row in reader:
            rows.append((table.parent / row[name_col], normalize_label(row[label_col])))
    return rows


def load_faces(rows: list[tuple[Path, str]], classes: list[str], size: int, cache: Path | None) -> tuple:
    """Decode every face once to (N, size, size) uint8 grey + class indices; cached as .npz."""
    key = hashlib.sha1(json.dumps([[str(p), e] for p, e in rows] + [size]).encode()).hexdigest()[:16]
    if cache is not None and (cache / f"faces-{key}.npz").is_file():
        z = np.load(cache / f"faces-{key}.npz")
        return z["images"], z["targets"]
    from tqdm import tqdm

    from ..imageio import load_image

    images = np.zeros((len(rows), size, size), np.uint8)
    targets = np.zeros(len(rows), np.int64)
    for i, (path, emotion) in enumerate(tqdm(rows, desc="decoding faces", unit="face", file=sys.stderr)):
        images[i] = to_grey48(load_image(path), size)
        targets[i] = classes.index(emotion)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f"faces-{key}.tmp.npz"
        np.savez_compressed(tmp, images=images, targets=targets)
        os.replace(tmp, cache / f"faces-{key}.npz")
    return images, targets


def augment(x: torch.Tensor, r: FaceModelRecipe, generator: torch.Generator) -> torch.Tensor:
    """Batched augmentation of normalised (N, 1, 48, 48) faces -> (N, 1, 44, 44)."""
    n = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=generator) * (hi - lo) + lo

    angle = uniform(-r.rotate_deg, r.rotate_deg) * math.pi / 180
    scale = 1 + uniform(-r.scale, r.scale)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, uniform(-r.shift, r.shift)], 1),
                         torch.stack([sin * flip, cos, uniform(-r.shift, r.shift)], 1)], 1)  # fmt: skip
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = 1 + uniform(-r.contrast, r.contrast)
    brightness = uniform(-r.brightness, r.brightness) / r.net.std  # a shift in [0, 1] grey units
    x = x * contrast[:, None, None, None] + brightness[:, None, None, None]
    size = r.net.input_size
    top = torch.randint(0, x.shape[-2] - size + 1, (1,), generator=generator).item()
    left = torch.randint(0, x.shape[-1] - size + 1, (1,), generator=generator).item()
    x = x[..., top : top + size, left : left + size].clone()
    for i in torch.nonzero(torch.rand(n, generator=generator) < r.erase_p).flatten().tolist():
        h = int(torch.randint(size // 6, size // 2, (1,), generator=generator))
        w = int(torch.randint(size // 6, size // 2, (1,), generator=generator))
        y0 = int(torch.randint(0, size - h + 1, (1,), generator=generator))
        x0 = int(torch.randint(0, size - w + 1, (1,), generator=generator))
        x[i, :, y0 : y0 + h, x0 : x0 + w] = 0.0  # the mean grey after normalisation
    return x


@torch.inference_mode()
def evaluate(net: torch.nn.Module, images: np.ndarray, targets: np.ndarray, config: FaceNetConfig,
             device: str = "cpu") -> dict:  # fmt: skip
    """Accuracy and UAR with and without flip TTA, on centre crops, in float32 (as `FaceModel` infers)."""
    net.eval()
    logits, logits_flip = [], []
    for i in range(0, len(images), 256):
        x = centre_crop(normalise(torch.from_numpy(images[i : i + 256]), config), config.input_size)
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        logits.append(net(x).float().cpu())
        logits_flip.append(net(torch.flip(x, dims=[-1])).float().cpu())
    plain, both = torch.cat(logits), (torch.cat(logits) + torch.cat(logits_flip)) / 2
    out = {}
    for name, z in (("", plain), ("_tta", both)):
        pred = z.argmax(1).numpy()
        recalls = [float((pred[targets == c] == c).mean()) for c in range(len(config.classes)) if (targets == c).any()]
        out[f"acc{name}"] = float((pred == targets).mean())
        out[f"uar{name}"] = float(np.mean(recalls))
    return out


def train_face_model(recipe: FaceModelRecipe, data: str | Path, out_dir: str | Path, progress: bool = True) -> dict:
    """Train (or resume) a face model; returns the exported model's figures."""
    from torch.utils.tensorboard import SummaryWriter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(recipe.threads or os.cpu_count() or 1)
    torch.manual_seed(recipe.seed)
    train_x, train_y, val_x, val_y = _face_split(recipe, data, out)
    if not recipe.init:  # a warm restart keeps its init's normalisation (_start_from)
        recipe.net.mean = float(train_x.mean() / 255.0)
        recipe.net.std = float(train_x.std() / 255.0)
    counts = np.bincount(train_y, minlength=len(recipe.net.classes)).astype(np.float64)
    log_prior = torch.tensor(np.log(np.maximum(counts, 1) / counts.sum()), dtype=torch.float32)

    # channels-last: the layout oneDNN's convolutions are fastest in (1.25x here; FaceModel infers in it too)
    net = build_face_net(recipe.net).to(recipe.device, memory_format=torch.channels_last)
    if recipe.init:  # a resumed warm restart keeps the init's normalisation, and its checkpoint's weights
        _start_from(Path(recipe.init), net, recipe, weights=not (out / "checkpoint.pt").is_file())
    optimizer = torch.optim.SGD(net.parameters(), lr=recipe.lr, momentum=recipe.momentum, nesterov=True,
                                weight_decay=recipe.weight_decay)  # fmt: skip
    steps_per_epoch = math.ceil(len(train_x) / recipe.batch_size)
    _check_same_faces(out, recipe, train_x, train_y, val_x, val_y)
    # the running mean of the weights for SWA (a copy of the net; its n_averaged counts the epochs in it)
    swa = torch.optim.swa_utils.AveragedModel(net) if recipe.swa_epochs else None
    state = _resume(out / "checkpoint.pt", net, optimizer, swa)
    (out / "recipe.json").write_text(json.dumps(asdict(recipe), indent=2) + "\n")
    writer = SummaryWriter(str(out / "tb"))
    for epoch in range(state["epoch"], recipe.epochs):
        generator = torch.Generator().manual_seed(recipe.seed * 1000 + epoch)  # an epoch's own, so resuming repeats it
        t0 = time.time()
        loss = _train_epoch(net, optimizer, recipe, train_x, train_y, log_prior, epoch, steps_per_epoch, generator,
                            writer, progress)  # fmt: skip
        metrics = evaluate(net, val_x, val_y, recipe.net, recipe.device)
        state["seconds"] += time.time() - t0
        state["epoch"] = epoch + 1
        for k, v in metrics.items():
            writer.add_scalar(f"val/{k}", v, epoch + 1)
        line = {"epoch": epoch + 1, "train_loss": round(loss, 4), **{k: round(v, 4) for k, v in metrics.items()},
                "seconds": round(state["seconds"], 1),
                "faces_per_s": round(len(train_x) / (time.time() - t0), 1)}  # fmt: skip
        with open(out / "history.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        print(json.dumps(line), file=sys.stderr)
        trained = {"data": str(data), "faces": len(train_x), "val_faces": len(val_x), "epoch": epoch + 1,
                   "val": metrics, "recipe": asdict(recipe)}  # fmt: skip
        if metrics["uar_tta"] > state["best_uar"]:  # model selection on the validation split only
            state["best_uar"], state["best_epoch"] = metrics["uar_tta"], epoch + 1
            if swa is None:
                save_face_model(net, recipe.net, out / "model", {"trained": trained})
        if swa is not None and epoch + 1 > recipe.epochs - recipe.swa_epochs:
            swa.update_parameters(net)
        _checkpoint(out / "checkpoint.pt", net, optimizer, state, swa)
    if swa is not None and "swa" not in state:
        state["swa"] = _finish_swa(swa, recipe, train_x, val_x, val_y, writer)
        averaged = {"epochs": [recipe.epochs - recipe.swa_epochs + 1, recipe.epochs],
                    "best_single_epoch": state["best_epoch"], "best_single_uar_tta": state["best_uar"]}  # fmt: skip
        trained = {"data": str(data), "faces": len(train_x), "val_faces": len(val_x), "epoch": recipe.epochs,
                   "val": state["swa"], "recipe": asdict(recipe), "swa": averaged}  # fmt: skip
        save_face_model(swa.module, recipe.net, out / "model", {"trained": trained})
        _checkpoint(out / "checkpoint.pt", net, optimizer, state, swa)
    writer.close()
    if swa is not None:
        return {
            "best_epoch": state["best_epoch"],
            "best_val_uar_tta": state["best_uar"],
            "swa_val_uar_tta": state["swa"]["uar_tta"],
            "seconds": state["seconds"],
            "model": str(out / "model"),
        }
    return {"best_epoch": state["best_epoch"], "best_val_uar_tta": state["best_uar"], "seconds": state["seconds"],
            "model": str(out / "model")}  # fmt: skip


def _finish_swa(swa, recipe: FaceModelRecipe, train_x: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
                writer) -> dict:  # fmt: skip
    """The averaged weights' batch-norm statistics, recomputed over one augmented pass of the training faces
    (the running statistics of the last epoch belong to the last weights, not to their mean); then its figures."""
    model = swa.module
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative mean over the pass, as torch.optim.swa_utils.update_bn does
    generator = torch.Generator().manual_seed(recipe.seed * 1000 + 999_999)
    model.train()
    with torch.no_grad():
        for i in range(0, len(train_x), 256):
            x = augment(normalise(torch.from_numpy(train_x[i : i + 256]), recipe.net), recipe, generator)
            model(x.to(recipe.device).contiguous(memory_format=torch.channels_last))
    for m in norms:
        m.momentum = 0.1
    metrics = evaluate(model, val_x, val_y, recipe.net, recipe.device)
    for k, v in metrics.items():
        writer.add_scalar(f"val_swa/{k}", v, recipe.epochs)
    print(json.dumps({"swa_epochs": recipe.swa_epochs, **{k: round(v, 4) for k, v in metrics.items()}}),
          file=sys.stderr)  # fmt: skip
    return metrics


def _start_from(init: Path, net: torch.nn.Module, recipe: FaceModelRecipe, weights: bool = True) -> None:
    """Load a finished face model's weights into `net`; its input normalisation comes with them (the weights
    were learnt on inputs scaled by the same mean and std)."""
    from safetensors.torch import load_file

    if not (init / "model.safetensors").is_file():
        raise FileNotFoundError(f"init={init}: no face model here (expected model.safetensors and config.json)")
    before = json.loads((init / "config.json").read_text())["net"]
    if (before["layers"], before["channels"], before["classes"]) != (recipe.net.layers, recipe.net.channels,
                                                                     list(recipe.net.classes)):  # fmt: skip
        raise ValueError(f"init={init}: another architecture or classes than this recipe's net")
    recipe.net.mean, recipe.net.std = before["mean"], before["std"]
    if weights:
        net.load_state_dict({k: v.float() for k, v in load_file(str(init / "model.safetensors")).items()})
        print(f"starting from {init} (a warm restart)", file=sys.stderr)


def _check_same_faces(out: Path, recipe: FaceModelRecipe, *arrays: np.ndarray) -> None:
    """A checkpoint is resumed only onto the faces it was trained on (their pixels and labels hashed into
    `fingerprint.json`); otherwise a one-line error that names the override."""
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    now = {"faces_sha256": digest.hexdigest(), "train_faces": int(len(arrays[0])), "val_faces": int(len(arrays[2]))}
    path = out / "fingerprint.json"
    if (out / "checkpoint.pt").is_file() and path.is_file() and not recipe.force_resume:
        before = json.loads(path.read_text())
        if before.get("faces_sha256") != now["faces_sha256"]:
            raise ValueError(f"{out}: its checkpoint was trained on other faces ({before.get('train_faces')} + "
                             f"{before.get('val_faces')} then, {now['train_faces']} + {now['val_faces']} now); use a "
                             "new --out, or force_resume=true to go on")  # fmt: skip
    path.write_text(json.dumps(now, indent=2) + "\n")


def _face_split(recipe: FaceModelRecipe, data: str | Path, out: Path) -> tuple:
    """(train images, train labels, val images, val labels): the face and val parts of the hashed split."""
    classes = list(recipe.net.classes)
    rows = [(p, e) for p, e in read_labelled_faces(data) if e in classes]
    split = [split_of(p.name, recipe.split_val_percent, recipe.split_vlm_percent) for p, _ in rows]
    train_rows = [r for r, s in zip(rows, split) if s == "face"]
    val_rows = [r for r, s in zip(rows, split) if s == "val"]
    if recipe.limit:
        train_rows, val_rows = train_rows[: recipe.limit], val_rows[: max(1, recipe.limit // 4)]
    if not train_rows or not val_rows:
        raise ValueError(f"{data}: no faces in the training or validation split")
    train_x, train_y = load_faces(train_rows, classes, recipe.net.image_size, out / "cache")
    val_x, val_y = load_faces(val_rows, classes, recipe.net.image_size, out / "cache")
    return train_x, train_y, val_x, val_y


def _lr_at(recipe: FaceModelRecipe, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up, then a cosine decay to zero at the last step (or the peak lr throughout: constant)."""
    total, warmup = recipe.epochs * steps_per_epoch, int(recipe.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    if recipe.schedule == "constant":
        return recipe.lr
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _train_epoch(net, optimizer, recipe: FaceModelRecipe, train_x: np.ndarray, train_y: np.ndarray,
                 log_prior: torch.Tensor, epoch: int, steps_per_epoch: int, generator: torch.Generator, writer,
                 progress: bool) -> float:  # fmt: skip
    """One pass over the shuffled training faces; returns the smoothed training loss."""
    from tqdm import tqdm

    net.train()
    targets = torch.from_numpy(train_y).to(recipe.device)
    log_prior = log_prior.to(recipe.device)
    order = torch.randperm(len(train_x), generator=generator)
    bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{recipe.epochs}", unit="step", file=sys.stderr,
               disable=not progress)  # fmt: skip
    running = 0.0
    for i in bar:
        step = epoch * steps_per_epoch + i
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(recipe, step, steps_per_epoch)
        idx = order[i * recipe.batch_size : (i + 1) * recipe.batch_size]
        x = augment(normalise(torch.from_numpy(train_x[idx.numpy()]), recipe.net), recipe, generator)
        x = x.to(recipe.device).contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=recipe.precision == "bf16"):
            logits = net(x)
        logits = logits.float() + recipe.logit_adjustment * log_prior  # logit adjustment: balanced raw logits
        loss = F.cross_entropy(logits, targets[idx.to(recipe.device)], label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running = 0.98 * running + 0.02 * loss.item() if i else loss.item()
        bar.set_postfix(loss=f"{running:.3f}")
        if step % 50 == 0:
            writer.add_scalar("train/loss", loss.item(), step)
            writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], step)
    return running


def _resume(checkpoint: Path, net, optimizer, swa=None) -> dict:
    """The run's state (epoch, best UAR, seconds), restored with the weights (and the SWA mean) if a checkpoint
    exists."""
    if not checkpoint.is_file():
        return {"epoch": 0, "best_uar": -1.0, "best_epoch": -1, "seconds": 0.0}
    saved = torch.load(checkpoint, weights_only=False, map_location="cpu")  # load_state_dict moves to the net's device
    net.load_state_dict(saved["net"])
    optimizer.load_state_dict(saved["optimizer"])
    if swa is not None and saved.get("swa") is not None:
        swa.load_state_dict(saved["swa"])
    random.setstate(saved["rng"]["python"])
    torch.set_rng_state(saved["rng"]["torch"])
    print(f"resuming {checkpoint.parent} after epoch {saved['state']['epoch']}", file=sys.stderr)
    return saved["state"]


def _checkpoint(path: Path, net, optimizer, state: dict, swa=None) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"net": net.state_dict(), "optimizer": optimizer.state_dict(), "state": state,
                "swa": swa.state_dict() if swa is not None else None,
                "rng": {"python": random.getstate(), "torch": torch.get_rng_state()}}, tmp)  # fmt: skip
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint whole


def ship(run_dir: str | Path, dest: str | Path, bench_json: str | Path | None = None) -> Path:
    """Copy a finished run's exported model into `dest` and write its MODEL_CARD.md from the run's history
    and, when given and present, bench/accuracy.py's JSON (the figures on the dev faces, publictest and in
    photos: ship once, run `make bench-accuracy` with the shipped model, ship again for the card)."""
    import shutil

    run, dest = Path(run_dir), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json"):
        shutil.copy2(run / "model" / name, dest / name)
    meta = json.loads((dest / "config.json").read_text())
    history = _history(run)
    init = meta["trained"]["recipe"].get("init")
    if init:  # a warm restart: the card shows the run it started from first, epochs numbered on
        meta["trained"]["first_stage"] = json.loads((Path(init) / "config.json").read_text())["trained"]
        if (Path(init).parent / "history.jsonl").is_file():
            first = _history(Path(init).parent)
            history = [{**h, "stage": 1} for h in first] + [
                {**h, "stage": 2, "epoch": h["epoch"] + first[-1]["epoch"],
                 "seconds": h["seconds"] + first[-1]["seconds"]}
                for h in history
            ]  # fmt: skip
        else:  # started from a shipped model: its own card has stage one's curve and time
            meta["trained"]["first_stage_card"] = Path(init).name
            history = [{**h, "stage": 2} for h in history]
    bench = json.loads(Path(bench_json).read_text()) if bench_json and Path(bench_json).is_file() else None
    if bench and any(block.get("face_model") != dest.name for block in bench.values()):
        bench = None  # figures from another model's run would mislabel this one
    (dest / "MODEL_CARD.md").write_text(model_card(meta, history, bench, name=dest.name))
    return dest


def _pace_words(history: list[dict]) -> str:
    """The run's pace from its median epoch, which a pause or a busy spell in a few epochs does not move (the
    history's cumulative seconds count every second between an epoch's start and its end)."""
    median_s = statistics.median(np.diff([0.0, *(h["seconds"] for h in history)]))
    return f"the median epoch took {median_s:.0f} s, {median_s * len(history) / 3600:.2f} h at that pace"


def _history(run: Path) -> list[dict]:
    """A run's history.jsonl: one dict per epoch."""
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def model_card(meta: dict, history: list[dict], bench: dict | None, name: str = "emoreason-face") -> str:
    trained, net = meta["trained"], meta["net"]
    recipe = trained["recipe"]
    stage_one = trained.get("first_stage", trained)  # the run that trained from random initialisation
    first = stage_one["recipe"]
    hours = history[-1]["seconds"] / 3600  # the history's seconds are cumulative, resumed runs included
    elsewhere = trained.get("first_stage_card")  # stage one's curve and time are in that model's card
    lines = [
        f"# {name}",
        "",
        "emoreason's expression model and default face encoder: a ResNet-18 layout at a quarter of the usual",
        f"width ({'-'.join(map(str, net['channels']))} channels, {net['layers']} BasicBlocks, a 3x3 stride-1 stem),",
        f"for {net['image_size']} px grey faces centre-cropped to {net['input_size']} px; 7 classes:"
        f" {', '.join(net['classes'])}. Built from timm's `ResNet`, trained from random initialisation by",
        "`make face-model` (`emoreason train face-model`, recipe `training/recipes/face-model/fer2013.yaml`).",
        "",
        "## Data and split",
        "",
        f"- FER2013's Training split (28,709 faces; here `{trained['data']}`, `labels.csv` + 48x48 grey images).",
        "- Each face's split comes from the SHA-1 of its file name (`training/face_model.split_of`):",
        f"  {100 - recipe['split_val_percent'] - recipe['split_vlm_percent']}% trains the model"
        f" ({trained['faces']} faces), {recipe['split_val_percent']}% selects the epoch ({trained['val_faces']}"
        f" faces), {recipe['split_vlm_percent']}% is held back for the VLM's training data, so that no VLM prompt"
        " carries this model's prior or features for a face it trained on.",
        "- Never used for training or selection: the 350 development faces (`fer2013-dev`) and publictest.",
        "",
        "## Recipe",
        "",
        f"seed {first['seed']}, {first['epochs']} epochs, batch {first['batch_size']}, SGD (Nesterov, momentum"
        f" {first['momentum']}) at lr {first['lr']} with {first['warmup_epochs']} warm-up epoch and a cosine"
        f" decay, weight decay {first['weight_decay']}, label smoothing {first['label_smoothing']}, logit"
        f" adjustment tau={first['logit_adjustment']} (balanced logits: the probabilities assume equally likely"
        f" emotions), dropout {net['drop_rate']}; augmentation: random {net['input_size']} px crop, flip, rotation"
        f" +-{first['rotate_deg']} deg, scale +-{first['scale']}, shift +-{first['shift']}, brightness"
        f" +-{first['brightness']}, contrast +-{first['contrast']}, random erasing p={first['erase_p']};"
        f" {_precision_words(first.get('precision', 'fp32'))}."
        f" {_selection_words(stage_one)}",
        *_restart_lines(trained),
        "",
        f"Wall time: {hours:.2f} h of {'the second stage' if elsewhere else 'training'} on 2 CPU cores (AMD EPYC, no"
        f" GPU), sharing them with other work; {_pace_words(history)}"
        + (f" (stage one: see {elsewhere}'s card)." if elsewhere else "."),
        "No GPU was lent for this run; the same recipe is pure tensor work over a 66 MB uint8 array, so on a GPU an",
        "epoch is a few seconds (not measured here).",
        "",
        "## Learning curve (validation split, centre crop; TTA = average with the mirror image)",
        "",
        "| stage | epoch | train loss | val acc | val UAR | val acc TTA | val UAR TTA |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {h.get('stage', 1)} | {h['epoch']} | {h['train_loss']:.3f} | {h['acc']:.3f} | {h['uar']:.3f} |"
              f" {h['acc_tta']:.3f} | {h['uar_tta']:.3f} |" for h in history]  # fmt: skip
    lines += _card_results(bench) if bench else []
    lines += [
        "",
        "## Licence and use",
        "",
        "FER2013 is released for research. These weights were trained on it and are for research use; the images",
        "are not in this repository. emoreason's code is Apache-2.0.",
        "",
    ]
    return "\n".join(lines)


def _precision_words(precision: str) -> str:
    if precision == "bf16":
        return "the forward pass in bfloat16 (autocast; weights, optimiser and loss in float32; inference in float32)"
    return "float32 throughout"


def _selection_words(trained: dict) -> str:
    """Which weights a run exported: its best epoch on the validation split, or the SWA mean."""
    swa = trained.get("swa")
    if not swa:
        return f"Selected epoch: {trained['epoch']} (best validation UAR with flip TTA)."
    return (
        f"Exported: the mean of the weights at the end of epochs {swa['epochs'][0]}-{swa['epochs'][1]} (stochastic"
        " weight averaging), batch-norm statistics recomputed over the training faces; validation UAR with flip"
        f" TTA {trained['val']['uar_tta']:.3f} (the best single epoch, {swa['best_single_epoch']}:"
        f" {swa['best_single_uar_tta']:.3f})."
    )


def _restart_lines(trained: dict) -> list[str]:
    """The card's words for a warm restart's second stage (none for a one-stage run)."""
    if "first_stage" not in trained:
        return []
    r, first = trained["recipe"], trained["first_stage"]
    recipe_file = "fer2013-swa.yaml" if r.get("swa_epochs") else "fer2013-restart.yaml"
    origin = trained.get("first_stage_card", "stage one")
    if r.get("schedule", "cosine") == "constant":
        schedule = f"at a constant lr {r['lr']} after {r['warmup_epochs']} warm-up epoch"
    else:
        schedule = f"one cosine cycle peaking at lr {r['lr']} after {r['warmup_epochs']} warm-up epoch"
    if r.get("swa_epochs"):
        chosen = _selection_words(trained)
    elif "first_stage_card" in trained:
        chosen = f"Selected: epoch {trained['epoch']} of stage two."
    else:
        chosen = (f"Selected: epoch {trained['epoch']} of stage two (epoch"
                  f" {first['recipe']['epochs'] + trained['epoch']} in the curve below).")  # fmt: skip
    return [
        "",
        f"Then a warm restart (recipe `training/recipes/face-model/{recipe_file}`): from {origin}'s selected"
        f" epoch {first['epoch']} (validation UAR with TTA {first['val']['uar_tta']:.3f}), {r['epochs']} more"
        f" epochs, {schedule}, seed {r['seed']}, the same split and augmentation. {chosen}",
    ]


def _card_results(bench: dict) -> list[str]:
    """The model card's results: bench/accuracy.py's rows, and per-class recall on the dev faces."""
    lines = ["", "## Results (`make bench-accuracy`, one run)", ""]
    lines += ["| faces | system | accuracy | macro-F1 | UAR |", "|---|---|---|---|---|"]
    for block, r in bench.items():
        for name in ("prior-fer", "prior-emoreason-noflip", "prior-emoreason", "embedded-emoreason"):
            if name in r:
                m = r[name]
                lines.append(f"| {block} ({r['n']}) | {name} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} |"
                             f" {m['uar']:.4f} |")  # fmt: skip
    dev = next((r for k, r in bench.items() if "dev" in k), None)
    if dev:
        conf = dev["prior-emoreason"]["confusion"]
        lines += ["", "Per class on the development faces (prior-emoreason, flip TTA): recall", ""]
        lines += ["| " + " | ".join(conf) + " |", "|" + "---|" * len(conf)]
        lines.append("| " + " | ".join(f"{conf[g].get(g, 0) / max(1, sum(conf[g].values())):.2f}" for g in conf)
                     + " |")  # fmt: skip
    return lines
