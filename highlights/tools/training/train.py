"""Training the smile and child/adult models: split, augment, fit, choose a threshold, save.

:func:`train_model` is the whole job (what ``highlights train`` runs): labels from one or more
folders, the held-out validation split (:func:`validation_split`), face crops (cached), a
:class:`~highlights.models.face_cnn.FaceCNN` trained from scratch or fine-tuned from given weights
(``init``), and a weights file written with :func:`~highlights.models.face_cnn.save_face_model`
whose meta records data, split, recipe, metrics, seed and date.

The fit: AdamW with a one-cycle learning-rate schedule, class-balanced loss (``pos_weight``;
the prior shift is taken back out of the output bias afterwards, so probabilities stay
calibrated to the training prior), augmentations from :mod:`highlights.tools.training.augment`,
validation ROC AUC after every epoch, the best epoch kept, early stop after ``patience`` epochs
without a gain. Everything random comes from ``seed``: same data + same seed = same weights.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from highlights.models.face_cnn import FaceCNN, save_face_model
from highlights.tools.training.augment import AGE_AUGMENT, SMILE_AUGMENT, AugmentOptions, augment_batch
from highlights.tools.training.datasets import (
    ADULT_MIN_AGE,
    CHILD_MAX_AGE,
    CROP_RECIPE_VERSION,
    LabelledImages,
    face_crops,
    load_labelled_folder,
)
from highlights.tools.training.evaluate import EvaluationResult, evaluate_probabilities, predict, safe_auc
from highlights.tools.training.splits import drop_validation_lookalikes, validation_split

log = logging.getLogger(__name__)



@dataclass
class TrainConfig:
    task: str
    epochs: int = 20
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    widths: tuple[int, ...] = (32, 64, 128, 128)
    dropout: float = 0.3
    balance: bool = True
    patience: int = 5
    val_fraction: float = 0.2
    threads: int = 2
    augment: AugmentOptions | None = None
    target_false_child_rate: float = 0.01
    """Age: the threshold is the lowest one that calls at most this share of validation adults
    children."""
    max_minutes: float | None = None
    """Stop after the epoch that passes this wall time (keeps the best epoch so far)."""
    label_smoothing: float = 0.0

    def augment_options(self) -> AugmentOptions:
        if self.augment is not None:
            return self.augment
        return AGE_AUGMENT if self.task == "age" else SMILE_AUGMENT


@dataclass
class TrainResult:
    network: FaceCNN
    threshold: float
    validation: EvaluationResult | None
    history: list[dict[str, float]]
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""


# --------------------------------------------------------------------------------------------
# Split


# --------------------------------------------------------------------------------------------
# Fit


def seed_everything(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def choose_threshold(task: str, probs: np.ndarray, labels: np.ndarray, target_fpr: float) -> float:
    """Smile: the threshold with the best balanced accuracy (Youden's J).
    Age: the lowest threshold calling at most ``target_fpr`` of adults children, since an adult
    taken for the child is the costly error (an adult's face in a child's highlights)."""
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if len(np.unique(labels)) < 2:
        return 0.5
    if task == "age":
        adults = np.sort(probs[labels == 0])
        k = int(math.floor(target_fpr * len(adults)))
        # Strictly above the (k+1)-th highest adult probability: at most k adults at or above.
        cut = adults[len(adults) - k - 1]
        return float(min(max(np.nextafter(cut, 1.0), 0.5), 0.999))
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(labels, probs)
    best = int(np.argmax(tpr - fpr))
    return float(np.clip(thresholds[best], 0.01, 0.99))


def fit(
    config: TrainConfig,
    train_crops: np.ndarray,
    train_labels: np.ndarray,
    val_crops: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    init_network: FaceCNN | None = None,
) -> tuple[FaceCNN, list[dict[str, float]]]:
    """Train a FaceCNN; returns the best-validation-AUC network (the last one without validation).

    Sets torch's thread count and deterministic mode for the run and restores them afterwards.
    """
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        return _fit(config, train_crops, train_labels, val_crops, val_labels, init_network)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _fit(config, train_crops, train_labels, val_crops, val_labels, init_network):
    from highlights.models.preprocess import to_tensor_batch

    seed_everything(config.seed, config.threads)
    rng = np.random.default_rng(config.seed)
    network = init_network if init_network is not None else FaceCNN(config.widths, config.dropout)
    labels = np.asarray(train_labels, dtype=np.float32)
    n_pos, n_neg = float(labels.sum()), float(len(labels) - labels.sum())
    pos_weight = n_neg / n_pos if config.balance and n_pos > 0 and n_neg > 0 else 1.0
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))
    steps = max(1, math.ceil(len(labels) / config.batch_size))
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=steps * config.epochs, pct_start=0.2
    )
    options = config.augment_options()
    history: list[dict[str, float]] = []
    best_auc, best_state, stale = -1.0, None, 0
    started = time.monotonic()
    for epoch in range(config.epochs):
        network.train()
        order = rng.permutation(len(labels))
        total = 0.0
        epoch_start = time.monotonic()
        for step in range(steps):
            rows = order[step * config.batch_size : (step + 1) * config.batch_size]
            batch = to_tensor_batch(augment_batch(train_crops[rows], rng, options))
            target = torch.from_numpy(labels[rows])
            if config.label_smoothing:
                target = target * (1 - config.label_smoothing) + 0.5 * config.label_smoothing
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(network(batch), target)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(rows)
        record = {"epoch": epoch + 1, "loss": total / len(labels), "seconds": time.monotonic() - epoch_start}
        if val_crops is not None and len(val_crops):
            auc = safe_auc(np.asarray(val_labels), predict(network, val_crops))
            record["val_auc"] = auc
            if auc > best_auc:
                best_auc, stale = auc, 0
                best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            else:
                stale += 1
        history.append(record)
        log.warning("%s epoch %d: %s", config.task, epoch + 1, {k: round(v, 4) for k, v in record.items()})
        if stale >= config.patience:
            break
        if config.max_minutes and time.monotonic() - started > 60 * config.max_minutes:
            log.warning("stopping after %.1f min (max_minutes)", (time.monotonic() - started) / 60)
            break
    if best_state is not None:
        network.load_state_dict(best_state)
    if pos_weight != 1.0:
        # Balanced loss trained logits of p * w / (1 - p): take log(w) back out of the bias.
        with torch.no_grad():
            network.head[-1].bias -= math.log(pos_weight)
    network.eval()
    return network, history


def train_model(
    task: str,
    data: list[Path | str] | Path | str,
    out: Path | str,
    config: TrainConfig | None = None,
    init: Path | str | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    exclude: Collection[Path | str] = (),
) -> TrainResult:
    """Train a ``task`` model on the labelled folders ``data`` and write it to ``out``.

    With ``init`` (a weights file, e.g. the shipped one) the network starts from those weights
    (fine-tuning: use a lower ``lr`` and fewer epochs). Validation is the held-out split of
    :func:`validation_split`; the decision threshold is chosen on it (:func:`choose_threshold`).
    ``exclude``: image files never trained on (e.g. the faces of the test lessons); the split
    is made before, so validation is the same with or without them, and they leave training only.
    """
    from highlights.models.face_cnn import load_face_model

    config = config or TrainConfig(task=task)
    if config.task != task:
        config = replace(config, task=task)
    started = time.monotonic()
    folders = [Path(d) for d in ([data] if isinstance(data, (str, Path)) else data)]
    images = LabelledImages.concat([load_labelled_folder(d, task, keep_teens=True) for d in folders])
    train_rows, val_rows = validation_split(images, config.seed, config.val_fraction)
    excluded = {Path(f).resolve() for f in exclude}
    if excluded:
        keep = np.array([Path(images.paths[r]).resolve() not in excluded for r in train_rows], dtype=bool)
        excluded_count = int((~keep).sum())
        train_rows = train_rows[keep]
    else:
        excluded_count = 0
    crops = face_crops(images.paths, cache_dir=cache_dir, progress=progress, whole=images.whole)
    # Rows of ``images`` -> rows of ``crops`` (images without a usable face drop out).
    crop_row = np.full(len(images), -1)
    crop_row[crops.index] = np.arange(len(crops.index))
    train_rows = train_rows[crop_row[train_rows] >= 0]
    val_rows = val_rows[crop_row[val_rows] >= 0]
    face_images = images.subset(crops.index)
    leak_report = {"checked": 0, "dropped": 0}
    if any(images.identity):
        kept, leak_report = drop_validation_lookalikes(
            face_images, crops.crops, crop_row[train_rows], crop_row[val_rows]
        )
        train_c = kept
    else:
        train_c = crop_row[train_rows]
    val_c = crop_row[val_rows]
    # 16-19 year olds (label -1) are neither children nor adults: not trained on.
    train_c = train_c[face_images.labels[train_c] >= 0]
    val_known = val_c[face_images.labels[val_c] >= 0]
    detection_seconds = time.monotonic() - started

    init_network = None
    init_threshold = None
    if init is not None:
        init_model = load_face_model(task, Path(init))  # type: ignore[arg-type]
        init_network, init_threshold = init_model.network, init_model.threshold
        config = replace(config, widths=tuple(init_network.widths))
    network, history = fit(
        config,
        crops.crops[train_c],
        face_images.labels[train_c],
        crops.crops[val_known] if len(val_known) else None,
        face_images.labels[val_known] if len(val_known) else None,
        init_network=init_network,
    )
    validation = None
    # Without validation faces there is nothing to choose a threshold on: a fine-tuned model
    # keeps the one it started from (for age, chosen to call at most 1% of adults children).
    threshold = init_threshold if init_threshold is not None else 0.5
    if len(val_known):
        probs = predict(network, crops.crops[val_c])
        labels = face_images.labels[val_c]
        known = labels >= 0
        threshold = choose_threshold(task, probs[known], labels[known], config.target_false_child_rate)
        validation = evaluate_probabilities(
            task,
            probs,
            labels,
            threshold,
            ages=face_images.age[val_c] if task == "age" else None,
            data=", ".join(str(f) for f in folders) + " (validation)",
        )
    seconds = time.monotonic() - started

    def counts(rows: np.ndarray) -> dict[str, Any]:
        by_source: dict[str, int] = {}
        for r in rows:
            by_source[face_images.source[r]] = by_source.get(face_images.source[r], 0) + 1
        labels = face_images.labels[rows]
        return {"faces": int(len(rows)), "positives": int((labels == 1).sum()), "by_source": by_source}

    recipe = {k: v for k, v in asdict(config).items() if k not in {"augment", "task"}}
    recipe["widths"] = list(config.widths)
    meta = {
        "positive_class": "smiling" if task == "smile" else f"child (age <= {CHILD_MAX_AGE})",
        "data": {
            "folders": [f.name for f in folders],
            "train": counts(train_c),
            "validation": counts(val_known),
            "leak_guard": leak_report,
            "excluded_from_training": excluded_count,
            "whole_image_crops": int((crops.how == 2).sum()),
            "images_without_face": int(len(images) - len(crops.index)),
        },
        "split": {
            "seed": config.seed,
            "fraction": config.val_fraction,
            "method": "lesson" if any(images.lesson) else "identity" if any(images.identity) else "stratified",
            "validation_lessons": sorted({face_images.lesson[r] for r in val_c if face_images.lesson[r]}),
        },
        "recipe": {
            **recipe,
            "augment": asdict(config.augment_options()),
            "crop_recipe": CROP_RECIPE_VERSION,
            "init": Path(init).name if init else None,
            "ages": {"child_max": CHILD_MAX_AGE, "adult_min": ADULT_MIN_AGE, "between": "left out"}
            if task == "age"
            else None,
        },
        "metrics": validation.summary() if validation else {},
        "history": [{k: round(v, 4) for k, v in h.items()} for h in history],
        "seed": config.seed,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "train_seconds": round(seconds, 1),
        "crop_seconds": round(detection_seconds, 1),
        "torch": str(torch.__version__),
    }
    sha = save_face_model(Path(out), network, task, threshold, **meta)  # type: ignore[arg-type]
    return TrainResult(network, threshold, validation, history, seconds, meta, sha)
