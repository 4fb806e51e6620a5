"""`emoreason train decision-rule --data DIR --out FILE`: fit the embedded engine's decision rule.

The faces: FER2013 Training's "vlm" split (15%, by the same file-name hash as the face model's
recipe), which the face model never trained on or selected with, so its prior is as (over)
confident there as on new faces. Each face goes through the default front-end (full mode, the
mesh, the 18 geometric AUs, the shipped face model's flip-TTA prior); faces whose mesh did not
fit have no AUs and are left out (the rule never applies to them).

The model (reasoning/decision_rule.py): multinomial logistic regression over the prior's 7
log-probabilities and the 18 AU intensities, class-balanced (each emotion weighs the same in
the loss, so the probabilities assume equally likely emotions, like the prior's). It is a
correction to the prior, not a new classifier: the prior's weights start at the identity (the
rule's logits are the prior's own log-probabilities) and the L2 penalty pulls them back there
and the AU weights to zero, so with little evidence the rule is the prior, and it departs
from it only as far as the AUs earn on held-out faces. L2 chosen by 5-fold cross-validation
on balanced accuracy from a grid that reaches "the prior alone" at its strong end, with the
one-standard-error rule (Breiman et al. 1984; glmnet's lambda.1se): the strongest penalty whose
cross-validated UAR is within one standard error (across the folds) of the best one. The
grid's UARs differ by less than that error (a few tenths of a point on ~4,200 faces), and the
penalty with the best UAR is then a draw of the folds' noise; the rule should depart from the
prior only where the departure is measurably better. Fitted by full-batch L-BFGS in torch.
The development faces are never touched.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..face.face_model import DEFAULT_FACE_MODEL
from ..facs import DETECTED_AUS
from ..labels import BASIC7
from .face_model import read_labelled_faces, split_of

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
FOLDS = 5


def extract_features(data: str | Path, cache: Path | None = None, split: str = "vlm") -> dict[str, np.ndarray]:
    """log-prior (n, 7), AU intensities (n, 18) and labels (n,) for the faces of `split` with a fitted mesh."""
    if cache is not None and cache.is_file():
        return dict(np.load(cache))
    from ..face.frontend import FaceFrontEnd, FrontEndConfig, load_expression_model
    from ..imageio import load_image

    rows = [(p, y) for p, y in read_labelled_faces(data) if y in BASIC7 and split_of(p.name, 5, 15) == split]
    frontend = FaceFrontEnd(FrontEndConfig(face_mode="full", expression_prior=False))
    model = load_expression_model("emoreason")
    aus, crops, labels = [], [], []
    try:
        for path, label in rows:
            faces = frontend.observe(load_image(path))
            if not faces or not faces[0].aus or faces[0].expression_crop is None:
                continue
            intensity = {a.code: a.intensity for a in faces[0].aus}
            aus.append([intensity.get(c, 0.0) for c in DETECTED_AUS])
            crops.append(faces[0].expression_crop)
            labels.append(BASIC7.index(label))
    finally:
        frontend.close()
    priors = []
    for start in range(0, len(crops), 256):
        priors += model.predict(crops[start : start + 256])
    log_prior = np.log(np.maximum([[p.get(e, 0.0) for e in BASIC7] for p in priors], 1e-3))
    out = {"log_prior": log_prior.astype(np.float32), "aus": np.asarray(aus, np.float32),
           "y": np.asarray(labels, np.int64), "n_split": np.asarray(len(rows))}  # fmt: skip
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, **out)
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced multinomial logistic regression (weights (classes, features), bias (classes,)).

    The first `n_classes` features are the prior's log-probabilities: their weights are the identity plus
    a learned correction, and L2 shrinks the correction, the other weights and the class biases to zero, i.e.
    to the prior (a bias is a departure from the prior too: an unpenalised one would shift every answer by
    what the fitting split's faces favour, however little the AUs add)."""
    import torch

    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y)
    counts = torch.bincount(yt, minlength=n_classes).clamp(min=1).double()
    sample_weight = (len(y) / (n_classes * counts))[yt]
    anchor = torch.zeros(n_classes, x.shape[1], dtype=torch.float64)
    anchor[:, :n_classes] = torch.eye(n_classes, dtype=torch.float64)  # the prior itself
    delta = torch.zeros(n_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([delta, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        nll = torch.nn.functional.cross_entropy(xt @ (anchor + delta).T + b, yt, reduction="none")
        loss = (sample_weight * nll).mean() + l2 * ((delta**2).sum() + (b**2).sum())
        loss.backward()
        return loss

    optimizer.step(closure)
    return (anchor + delta).detach().numpy(), b.detach().numpy()


def balanced_accuracy(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    recalls = [float(np.mean(pred[y == k] == k)) for k in range(n_classes) if np.any(y == k)]
    return float(np.mean(recalls))


def cross_validate(x: np.ndarray, y: np.ndarray, l2: float, n_classes: int, seed: int = 0) -> float:
    """The balanced accuracy of the out-of-fold predictions (all folds pooled)."""
    return cross_validate_with_error(x, y, l2, n_classes, seed)[0]


def cross_validate_with_error(x: np.ndarray, y: np.ndarray, l2: float, n_classes: int,
                              seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """(pooled out-of-fold UAR, its standard error: the spread of the per-fold UARs / sqrt(folds))."""
    folds = np.random.default_rng(seed).permutation(len(y)) % FOLDS
    pred = np.empty_like(y)
    for k in range(FOLDS):
        w, b = fit_logistic(x[folds != k], y[folds != k], l2, n_classes)
        pred[folds == k] = np.argmax(x[folds == k] @ w.T + b, axis=1)
    per_fold = [balanced_accuracy(y[folds == k], pred[folds == k], n_classes) for k in range(FOLDS)]
    return balanced_accuracy(y, pred, n_classes), float(np.std(per_fold, ddof=1) / np.sqrt(FOLDS))


def one_standard_error_choice(cv: dict[float, tuple[float, float]]) -> float:
    """The strongest penalty whose UAR is within one standard error of the best penalty's."""
    best = max(cv, key=lambda k: cv[k][0])
    return max(k for k, (uar, _) in cv.items() if uar >= cv[best][0] - cv[best][1])


def fit_decision_rule(data: str | Path, out: str | Path, cache: Path | None = None) -> dict:
    """Extract, cross-validate the L2 strength, fit on all the split's faces, write the rule JSON."""
    t0 = time.perf_counter()
    f = extract_features(data, cache)
    x, y = np.concatenate([f["log_prior"], f["aus"]], axis=1), f["y"]
    n_classes = len(BASIC7)
    cv = {l2: cross_validate_with_error(x, y, l2, n_classes) for l2 in L2_GRID}
    best = one_standard_error_choice(cv)
    w, b = fit_logistic(x, y, best, n_classes)
    prior_alone = balanced_accuracy(y, np.argmax(f["log_prior"], axis=1), n_classes)
    rule = {
        "classes": list(BASIC7),
        "prior_terms": list(BASIC7),
        "au_terms": list(DETECTED_AUS),
        "bias": {e: round(float(b[i]), 4) for i, e in enumerate(BASIC7)},
        "w_prior": {e: {k: round(float(w[i, j]), 4) for j, k in enumerate(BASIC7)} for i, e in enumerate(BASIC7)},
        "w_au": {
            e: {str(c): round(float(w[i, 7 + j]), 4) for j, c in enumerate(DETECTED_AUS)} for i, e in enumerate(BASIC7)
        },  # fmt: skip
        "face_model": DEFAULT_FACE_MODEL.name,
        "meta": {
            "data": "FER2013 Training, the 'vlm' split (15% by file-name hash; the face model never saw it)",
            "faces_in_split": int(f["n_split"]),
            "faces_with_mesh": len(y),
            "l2_grid_cv_uar": {str(k): round(v, 4) for k, (v, _) in cv.items()},
            "l2_grid_cv_uar_se": {str(k): round(se, 4) for k, (_, se) in cv.items()},
            "l2_choice": "the strongest within one standard error of the best cross-validated UAR",
            "l2": best,
            "cv_uar": round(cv[best][0], 4),
            "prior_alone_uar": round(prior_alone, 4),
            "seconds": round(time.perf_counter() - t0, 1),
        },
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(rule, indent=1))
    return rule["meta"]
