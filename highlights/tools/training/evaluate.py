"""Evaluation of a smile or child/adult model: the figures the model card and issue #4 ask for.

* ROC AUC (threshold-free ranking quality), accuracy / true- and false-positive rates at the
  model's decision threshold;
* calibration, since the selection stage uses the probability itself: a reliability table
  (mean predicted probability vs observed positive rate per probability bin), the expected
  calibration error (ECE, bin-size weighted |gap|) and the Brier score;
* for child/adult: ROC AUC per age band, the share of 16-19 year olds called children (they are
  left out of training and AUC), and the share of faces from an adult-only set from another
  source (the LFW expression set) that the model calls children — the out-of-source check.

:func:`evaluate_probabilities` computes these from arrays; :func:`evaluate_model` loads weights,
labels and face crops and calls it.

>>> result = evaluate_probabilities("smile", np.array([0.9, 0.2, 0.7, 0.4]), np.array([1, 0, 1, 0]), 0.5)
>>> result.auc, result.accuracy
(1.0, 1.0)
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from highlights.tools.training.datasets import (
    ADULT_MIN_AGE,
    CHILD_MAX_AGE,
    LabelledImages,
    LabelsError,
    face_crops,
    load_labelled_folder,
    load_lfw_expressions,
)

log = logging.getLogger(__name__)

AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-5", 0, 5),
    ("6-12", 6, 12),
    ("13-17", 13, 17),
    ("18-29", 18, 29),
    ("30+", 30, 10_000),
)
CALIBRATION_BINS = 10


@dataclass
class Calibration:
    """Reliability table over equal-width probability bins, plus ECE and Brier score."""

    bin_edges: list[float]
    counts: list[int]
    mean_probability: list[float]
    positive_rate: list[float]
    ece: float
    brier: float

    @classmethod
    def of(cls, probs: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> Calibration:
        edges = np.linspace(0.0, 1.0, bins + 1)
        which = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
        counts, means, rates = [], [], []
        ece = 0.0
        for b in range(bins):
            mask = which == b
            count = int(mask.sum())
            counts.append(count)
            if count:
                mean, rate = float(probs[mask].mean()), float(labels[mask].mean())
                ece += count / len(probs) * abs(mean - rate)
            else:
                mean = rate = float("nan")
            means.append(mean)
            rates.append(rate)
        brier = float(np.mean((probs - labels) ** 2)) if len(probs) else float("nan")
        return cls([float(e) for e in edges], counts, means, rates, float(ece), brier)


@dataclass
class BandResult:
    band: str
    auc: float
    positives: int
    negatives: int
    called_child: float
    """Share of the band's faces with probability at or above the threshold."""
    faces: int


@dataclass
class EvaluationResult:
    task: str
    faces: int
    positives: int
    auc: float
    threshold: float
    accuracy: float
    true_positive_rate: float
    false_positive_rate: float
    calibration: Calibration
    bands: list[BandResult] = field(default_factory=list)
    teen_child_rate: float | None = None
    """Share of 16-19 year olds (left out of training) called children."""
    teen_faces: int = 0
    adult_only_false_child_rate: float | None = None
    adult_only_faces: int = 0
    adult_only_source: str = ""
    data: str = ""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Plain figures for a weights file's meta and the model card."""
        out: dict[str, Any] = {
            "faces": self.faces,
            "positives": self.positives,
            "roc_auc": round(self.auc, 4),
            "threshold": round(self.threshold, 4),
            "accuracy": round(self.accuracy, 4),
            "true_positive_rate": round(self.true_positive_rate, 4),
            "false_positive_rate": round(self.false_positive_rate, 4),
            "ece": round(self.calibration.ece, 4),
            "brier": round(self.calibration.brier, 4),
        }
        if self.bands:
            out["band_auc"] = {b.band: _round(b.auc) for b in self.bands}
            out["band_called_child"] = {b.band: _round(b.called_child) for b in self.bands}
        if self.teen_child_rate is not None:
            out["age_16_19_called_child"] = _round(self.teen_child_rate)
        if self.adult_only_false_child_rate is not None:
            out["adult_only_false_child_rate"] = _round(self.adult_only_false_child_rate)
            out["adult_only_faces"] = self.adult_only_faces
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def report(self) -> str:
        """A human-readable report (what ``highlights evaluate`` prints)."""
        positive = "smiling" if self.task == "smile" else "child"
        lines = [
            f"{self.task} model on {self.data or 'the given faces'}",
            f"  faces: {self.faces} ({self.positives} {positive}, {self.faces - self.positives} not)",
            f"  ROC AUC: {self.auc:.4f}",
            f"  at threshold {self.threshold:.3f}: accuracy {self.accuracy:.4f}, "
            f"true-positive rate {self.true_positive_rate:.4f}, "
            f"false-positive rate {self.false_positive_rate:.4f}",
            f"  calibration: ECE {self.calibration.ece:.4f}, Brier {self.calibration.brier:.4f}",
            "    predicted bin   faces   mean p   observed",
        ]
        cal = self.calibration
        for b, count in enumerate(cal.counts):
            if count:
                lines.append(
                    f"    {cal.bin_edges[b]:.1f}-{cal.bin_edges[b + 1]:.1f}     {count:6d}   "
                    f"{cal.mean_probability[b]:.3f}    {cal.positive_rate[b]:.3f}"
                )
        if self.bands:
            lines.append("  per age band (band's faces against all faces of the other class):")
            lines.append("    band     faces   ROC AUC   called child")
            for band in self.bands:
                auc = "   n/a" if math.isnan(band.auc) else f"{band.auc:.4f}"
                lines.append(
                    f"    {band.band:7s} {band.faces:6d}   {auc}    {band.called_child:.3f}"
                )
        if self.teen_child_rate is not None:
            lines.append(
                f"  ages 16-19 (not in training or AUC): {self.teen_child_rate:.3f} of "
                f"{self.teen_faces} called child"
            )
        if self.adult_only_false_child_rate is not None:
            lines.append(
                f"  adult-only faces from another source ({self.adult_only_source}): "
                f"{self.adult_only_false_child_rate:.4f} of {self.adult_only_faces} called child"
            )
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _round(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def safe_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """ROC AUC, or NaN when only one class is present."""
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, probs))


def band_results(
    probs: np.ndarray, labels: np.ndarray, ages: np.ndarray, threshold: float
) -> list[BandResult]:
    """Per age band: the band's children against all adults, or the band's adults against all
    children (a band holding both classes uses only its own faces). 16-19 year olds (label -1)
    count in "called child" but not in AUC."""
    results = []
    for name, low, high in AGE_BANDS:
        in_band = (ages >= low) & (ages <= high)
        labelled = in_band & (labels >= 0)
        pos = labelled & (labels == 1)
        neg = labelled & (labels == 0)
        if pos.any() and neg.any():
            use_pos, use_neg = pos, neg
        elif pos.any():
            use_pos, use_neg = pos, labels == 0
        else:
            use_pos, use_neg = labels == 1, neg
        mask = use_pos | use_neg
        auc = safe_auc(labels[mask], probs[mask]) if use_pos.any() and use_neg.any() else float("nan")
        called = float((probs[in_band] >= threshold).mean()) if in_band.any() else float("nan")
        results.append(
            BandResult(name, auc, int(pos.sum()), int(neg.sum()), called, int(in_band.sum()))
        )
    return results


def evaluate_probabilities(
    task: str,
    probs: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    ages: np.ndarray | None = None,
    adult_only_probs: np.ndarray | None = None,
    adult_only_source: str = "",
    data: str = "",
) -> EvaluationResult:
    """All figures from predicted probabilities and labels (label -1: 16-19, reported apart)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    known = labels >= 0
    p, y = probs[known], labels[known]
    called = p >= threshold
    pos, neg = y == 1, y == 0
    result = EvaluationResult(
        task=task,
        faces=int(known.sum()),
        positives=int(pos.sum()),
        auc=safe_auc(y, p),
        threshold=float(threshold),
        accuracy=float((called == (y == 1)).mean()) if len(y) else float("nan"),
        true_positive_rate=float(called[pos].mean()) if pos.any() else float("nan"),
        false_positive_rate=float(called[neg].mean()) if neg.any() else float("nan"),
        calibration=Calibration.of(p, y.astype(np.float64)),
        data=data,
    )
    if ages is not None and task == "age":
        ages = np.asarray(ages)
        if (ages >= 0).any():
            result.bands = band_results(probs, labels, ages, threshold)
        teens = (ages > CHILD_MAX_AGE) & (ages < ADULT_MIN_AGE)
        if teens.any():
            result.teen_child_rate = float((probs[teens] >= threshold).mean())
            result.teen_faces = int(teens.sum())
    if adult_only_probs is not None and len(adult_only_probs):
        result.adult_only_false_child_rate = float((np.asarray(adult_only_probs) >= threshold).mean())
        result.adult_only_faces = len(adult_only_probs)
        result.adult_only_source = adult_only_source
    return result


def predict(network, crops: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Positive-class probabilities of a FaceCNN for ``(N, 64, 64)`` uint8 crops."""
    import torch

    from highlights.models.preprocess import to_tensor_batch

    network.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            out.append(torch.sigmoid(network(to_tensor_batch(crops[start : start + batch_size]))))
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def default_adult_only_folder(data_dir: Path) -> Path | None:
    """The shared LFW expression set (all adults) when ``data_dir`` sits in the shared data."""
    data_dir = Path(data_dir).resolve()
    for parent in [data_dir, *data_dir.parents][:4]:
        candidate = parent / "smile" / "lfw_expressions"
        if (candidate / "labels.csv").is_file():
            return candidate
    return None


def evaluate_model(
    task: str,
    data_dir: Path | str,
    weights: Path | str | None = None,
    split: str = "validation",
    max_faces: int | None = None,
    subset_seed: int = 0,
    adult_only: Path | str | None = "auto",
    max_adult_only: int | None = 2000,
    cache_dir: Path | None = None,
) -> EvaluationResult:
    """Evaluate the shipped weights for ``task`` (or ``weights``) on the faces in ``data_dir``.

    ``split="validation"`` rebuilds the held-out split the weights were trained with (seed and
    fraction from their meta; for the shared smile sets: held-out identities of the expression
    set); ``"all"`` uses every image (a folder the model never saw). ``max_faces`` draws a fixed,
    seeded subset. For ``age``, ``adult_only`` names a folder of adult faces from another source
    (default: the shared LFW expression set, when found) for the false-child rate.
    """
    from highlights.models.face_cnn import load_face_model
    from highlights.tools.training.splits import validation_split

    model = load_face_model(task, Path(weights) if weights else None)  # type: ignore[arg-type]
    data_dir = Path(data_dir)
    images = load_labelled_folder(data_dir, task, keep_teens=True)
    notes = []
    if split == "validation":
        split_meta = model.meta.get("split", {})
        _, val = validation_split(
            images,
            seed=int(split_meta.get("seed", 0)),
            fraction=float(split_meta.get("fraction", 0.2)),
        )
        images = images.subset(val)
        notes.append(
            f"held-out validation split (seed {split_meta.get('seed', 0)}, "
            f"fraction {split_meta.get('fraction', 0.2)}) as in training"
        )
        lessons = sorted({name for name in images.lesson if name})
        if lessons:
            notes.append(f"held-out lessons (none of their faces in training): {', '.join(lessons)}")
        if not len(images):
            raise LabelsError(
                f"no held-out faces in {data_dir}: labels from one lesson cannot be split by lesson "
                "(label a second lesson, or use --split all on a folder the model never saw)"
            )
    elif split != "all":
        raise ValueError(f"split must be 'validation' or 'all', not {split!r}")
    if max_faces is not None and len(images) > max_faces:
        rng = np.random.default_rng(subset_seed)
        images = images.subset(np.sort(rng.choice(len(images), max_faces, replace=False)))
        notes.append(f"fixed subset of {max_faces} faces (seed {subset_seed})")
    crops = face_crops(images.paths, cache_dir=cache_dir, whole=images.whole)
    kept = images.subset(crops.index)
    if len(crops.index) < len(images):
        notes.append(f"{len(images) - len(crops.index)} images without a usable face left out")
    probs = predict(model.network, crops.crops)
    adult_probs, adult_source = None, ""
    if task == "age" and adult_only is not None:
        folder = default_adult_only_folder(data_dir) if adult_only == "auto" else Path(adult_only)
        if folder is not None:
            adults = load_adult_only(folder)
            if max_adult_only is not None and len(adults) > max_adult_only:
                rng = np.random.default_rng(subset_seed + 1)
                adults = adults.subset(np.sort(rng.choice(len(adults), max_adult_only, replace=False)))
            adult_crops = face_crops(adults.paths, cache_dir=cache_dir)
            adult_probs = predict(model.network, adult_crops.crops)
            adult_source = f"{folder.name}, {len(adult_crops.index)} faces"
    result = evaluate_probabilities(
        task,
        probs,
        kept.labels,
        model.threshold,
        ages=kept.age if task == "age" else None,
        adult_only_probs=adult_probs,
        adult_only_source=adult_source,
        data=f"{data_dir} ({split})",
    )
    result.notes.extend(notes)
    result.notes.append(f"weights {model.path} ({model.version})")
    return result


def load_adult_only(folder: Path | str) -> LabelledImages:
    """A folder of adult faces (the LFW expression set, or any ``labels.csv`` folder), all label 0."""
    folder = Path(folder)
    try:
        images = load_lfw_expressions(folder)
    except Exception:  # noqa: BLE001 - not the expression set: a generic folder
        try:
            images = load_labelled_folder(folder, "age")
        except LabelsError:  # a smile set (SMILEsmileD's file,smile): its faces are adults too
            images = load_labelled_folder(folder, "smile")
    images.labels = np.zeros(len(images), np.int64)
    return images
