"""Training records -> model-ready examples with the *same* prompt the model sees at inference.

For each record the face front-end runs once on its image (largest face; `face_mode="full"`
for pre-cropped benchmark faces): the aligned crop is written to `cache_dir/crops/` and the
conversation is rendered from the observation by `emoreason/prompting.py`, exactly as the
transformers backend does. So a model trained here is prompted the same way by `analyze`,
the gateway and evaluation. The result is a `datasets.Dataset` with columns

    id, image (the crop, decoded as PIL), prompt (system + user messages), completion
    (the record's description, "" if none), emotion, aus

which both trainers use: SFT with emoreason's collator, GRPO through trl's own VLM path
(the `emotion` and `aus` columns reach the reward functions).

The examples are cached in `cache_dir` under a fingerprint of their inputs (records,
options, prompt templates, emoreason version): a resumed run, and the other processes of a
multi-GPU run (which wait for the main one), read the cache instead of running the
front-end again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from PIL import Image

from ..data.records import RecordError, TrainingRecord
from ..face.frontend import FaceFrontEnd, FrontEndConfig
from ..faithfulness import measured_present
from ..imageio import InputError, load_image
from ..prompting import build_messages


def prepare_examples(
    records: Sequence[TrainingRecord],
    cache_dir: str | Path,
    face_mode: str = "full",
    labels: Sequence[str] | None = None,
    face_tokens: bool = False,
    require_description: bool = False,
):
    """(dataset, errors). Records whose image cannot be read or shows no face are reported, not fatal."""
    from datasets import Dataset
    from datasets import Image as ImageFeature

    cache = Path(cache_dir)
    (cache / "crops").mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(records, face_mode, labels, face_tokens, require_description)
    cached = _read_cache(cache, fingerprint)
    if cached is not None:
        rows, errors = cached
    else:
        rows, errors = _build_rows(records, cache, face_mode, labels, face_tokens, require_description)
        _write_cache(cache, fingerprint, rows, errors)
    if not rows:
        return None, errors
    dataset = Dataset.from_list(rows).cast_column("image", ImageFeature())
    # Conversations are stored as JSON text (Arrow would merge the content blocks' keys) and
    # decoded on access, so trl and the collator both see ordinary message lists.
    dataset.set_transform(_decode_prompt)
    return dataset, errors


# Bumped whenever a row gains or changes a column, so that caches built before rebuild.
ROW_SCHEMA = 3  # 2: expression_prior; 3: measured_aus with their intensities


def _build_rows(records, cache, face_mode, labels, face_tokens, require_description):
    frontend = FaceFrontEnd(FrontEndConfig(face_mode=face_mode))
    rows, errors = [], []
    try:
        for record in records:
            if require_description and not record.description:
                errors.append(RecordError(str(record.image_path), "no description (run `emoreason data synth`)"))
                continue
            try:
                rgb = load_image(record.image_path)
            except InputError as exc:
                errors.append(RecordError(str(record.image_path), str(exc).split(": ", 1)[-1]))
                continue
            observations = frontend.observe(rgb)
            if not observations or observations[0].aligned_crop is None:
                errors.append(RecordError(str(record.image_path), "no face found"))
                continue
            obs = observations[0]
            crop_path = cache / "crops" / f"{_safe(record.id)}.png"
            Image.fromarray(obs.aligned_crop).save(crop_path)
            messages, _ = build_messages(obs, n_faces=1, labels=labels, face_tokens=face_tokens)
            rows.append(
                {
                    "id": record.id,
                    "image": str(crop_path),
                    "prompt": json.dumps(messages),
                    "completion": record.description or "",
                    "emotion": record.emotion,
                    "aus": list(record.aus),
                    # what the front-end measured on this face, {code: intensity} as JSON (Arrow would merge the
                    # dicts' keys): the faithfulness rewards check the text's AUs and intensities against it
                    "measured_aus": json.dumps(measured_present(obs)) if obs.aus else None,
                    # and the expression model's probabilities, as JSON (Arrow would merge the dicts' keys)
                    "expression_prior": json.dumps(obs.expression_prior) if obs.expression_prior else None,
                }
            )
    finally:
        frontend.close()
    return rows, errors


def _fingerprint(records, face_mode, labels, face_tokens, require_description) -> str:
    from .. import __version__
    from ..prompting import PROMPT_DIR

    h = hashlib.sha256()
    options = [face_mode, list(labels or []), face_tokens, require_description, __version__, ROW_SCHEMA]
    h.update(json.dumps(options).encode())
    for template in sorted(PROMPT_DIR.glob("*.jinja")):
        h.update(template.read_bytes())
    for record in records:
        h.update(json.dumps({**record.to_json(), "path": str(record.image_path.resolve())}).encode())
    return h.hexdigest()


def _read_cache(cache: Path, fingerprint: str):
    manifest = cache / "examples.json"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if data.get("fingerprint") != fingerprint:
        return None
    return data["rows"], [RecordError(**e) for e in data["errors"]]


def _write_cache(cache: Path, fingerprint: str, rows: list, errors: list) -> None:
    manifest = cache / "examples.json"
    tmp = manifest.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "rows": rows, "errors": [asdict(e) for e in errors]}))
    os.replace(tmp, manifest)  # atomic: a reader sees the old manifest or the whole new one


def _decode_prompt(batch: dict) -> dict:
    return {**batch, "prompt": [json.loads(p) for p in batch["prompt"]]}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def class_balanced_indices(emotions: Sequence[str | None], seed: int) -> list[int]:
    """As many example indices as there are examples, drawn with replacement so that each emotion is drawn
    equally often on average (an example's weight is 1 / its emotion's count; examples with no emotion form
    one more group). FER2013 is 1% disgust and a third happiness: a model trained on it as it comes learns
    those rates and, on faces where every emotion is equally likely (the development faces, UAR), almost never
    answers disgust. The face model (balanced sampling) and the decision rule (balanced loss) assume equally
    likely emotions already. Seeded, so a resumed run draws the same epoch.

    >>> drawn = class_balanced_indices(["a"] * 99 + ["b"], seed=0)
    >>> len(drawn), sum(i == 99 for i in drawn) > 30  # "b" drawn about 50 times, not once
    (100, True)
    """
    import numpy as np

    groups: dict[str | None, int] = {}
    for e in emotions:
        groups[e] = groups.get(e, 0) + 1
    weights = np.array([1.0 / groups[e] for e in emotions])
    rng = np.random.default_rng(seed)
    draw = rng.choice(len(emotions), size=len(emotions), replace=True, p=weights / weights.sum())
    return sorted(int(i) for i in draw)  # sorted: the trainer shuffles; duplicates sit side by side in the cache
