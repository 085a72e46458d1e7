"""The held-out validation split every model is trained and evaluated with: by lesson, by person,
or stratified by label; reproducible from the labels alone, so evaluation rebuilds it exactly."""

from __future__ import annotations

import hashlib
import logging

import cv2
import numpy as np

from highlights.tools.training.datasets import LabelledImages

log = logging.getLogger(__name__)

LEAK_SIMILARITY = 0.93
"""Cosine similarity (16x16 z-normalised crops) above which a training face without identity is
taken for a copy of a validation photo and dropped."""

MAX_VALIDATION_IDENTITY_IMAGES = 30
"""People with more images than this stay in training (keeps validation many-person, not
dominated by a few much-photographed people)."""

def _stable_fraction(text: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``text`` and ``seed`` (independent of order and platform)."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def validation_split(
    images: LabelledImages, seed: int = 0, fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation row indices; needs labels only, so evaluation can rebuild it.

    * Faces cut from lessons (the labeller's rows, :attr:`LabelledImages.lesson`): whole lessons
      go to one side, never a lesson on both (consecutive seconds of one lesson are near copies:
      a split by face would measure memory, not the model). Validation holds
      ``round(fraction * lessons)`` lessons, at least one, never all: with a single lesson
      everything trains (a warning says so) and validation comes from the other rows only.
      The rows without a lesson are split as below.
    * With identities (the expression set, or a ``labels.csv`` with an ``identity`` column): a
      person's images all fall on one side; validation holds ``fraction`` of the people with at
      most :data:`MAX_VALIDATION_IDENTITY_IMAGES` images, and *only* identity-bearing images.
      Rows without identity (SMILEsmileD, unnamed expression images) go to training; they may
      show validation people: :func:`drop_validation_lookalikes` removes those.
    * Without identities: a seeded split stratified by label (and age band, for UTKFace).
    """
    from_lesson = np.array([bool(name) for name in images.lesson], dtype=bool)
    if from_lesson.any():
        return _lesson_split(images, from_lesson, seed, fraction)
    n = len(images)
    has_identity = np.array([bool(i) for i in images.identity])
    is_val = np.zeros(n, bool)
    if has_identity.any():
        counts: dict[str, int] = {}
        for name in images.identity:
            if name:
                counts[name] = counts.get(name, 0) + 1
        held_out = {
            name
            for name, count in counts.items()
            if count <= MAX_VALIDATION_IDENTITY_IMAGES and _stable_fraction(name, seed) < fraction
        }
        is_val = np.array([name in held_out for name in images.identity])
    else:
        # Stratify: each (label, age decade) stratum is shuffled and cut at ``fraction``.
        strata = [
            f"{label}:{min(age, 90) // 10 if age >= 0 else -1}"
            for label, age in zip(images.labels, images.age)
        ]
        keys = np.array(
            [_stable_fraction(f"{i}:{p.name}", seed) for i, p in enumerate(images.paths)]
        )
        for stratum in sorted(set(strata)):
            rows = np.array([i for i, s in enumerate(strata) if s == stratum])
            order = rows[np.argsort(keys[rows], kind="stable")]
            is_val[order[: int(round(fraction * len(rows)))]] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def held_out_lessons(lessons: list[str] | set[str], seed: int = 0, fraction: float = 0.2) -> set[str]:
    """The lessons :func:`validation_split` holds out: the ``round(fraction * n)`` (at least 1,
    at most n - 1) with the lowest seeded hash, so the choice is independent of row order."""
    names = sorted({name for name in lessons if name})
    if len(names) < 2:
        return set()
    count = min(max(int(round(fraction * len(names))), 1), len(names) - 1)
    return set(sorted(names, key=lambda name: _stable_fraction(f"lesson:{name}", seed))[:count])


def _lesson_split(
    images: LabelledImages, from_lesson: np.ndarray, seed: int, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    held_out = held_out_lessons(set(images.lesson), seed, fraction)
    if not held_out:
        log.warning(
            "labels from one lesson only (%s): no lesson-disjoint validation from it; "
            "label a second lesson to measure the model on lessons it has not seen",
            next(name for name in images.lesson if name),
        )
    is_val = np.array([name in held_out for name in images.lesson], dtype=bool)
    train = list(np.flatnonzero(from_lesson & ~is_val))
    val = list(np.flatnonzero(is_val))
    others = np.flatnonzero(~from_lesson)
    if len(others):
        rest_train, rest_val = validation_split(images.subset(others), seed, fraction)
        train += list(others[rest_train])
        val += list(others[rest_val])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def _signature(crops: np.ndarray) -> np.ndarray:
    small = np.stack([cv2.resize(c, (16, 16), interpolation=cv2.INTER_AREA) for c in crops])
    small = small.reshape(len(crops), -1).astype(np.float32)
    small -= small.mean(axis=1, keepdims=True)
    small /= np.linalg.norm(small, axis=1, keepdims=True) + 1e-6
    return small


def drop_validation_lookalikes(
    images: LabelledImages,
    crops: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
) -> tuple[np.ndarray, dict[str, int]]:
    """Training rows without identity whose face is nearest to a validation person's face, or
    nearly identical to one, are dropped (``train``/``val`` index ``crops`` rows).

    SMILEsmileD's crops come from the same LFW photos as the expression set but carry no names;
    each crop is matched to its most similar identity-bearing crop, and it leaves training when
    that crop belongs to a validation person or when it is near-identical
    (cosine >= :data:`LEAK_SIMILARITY`) to any validation crop.
    """
    no_identity = np.array([not images.identity[i] for i in train])
    candidates = train[no_identity]
    named = np.array([i for i in range(len(images)) if images.identity[i]])
    if len(candidates) == 0 or len(val) == 0:
        return train, {"checked": 0, "dropped": 0}
    val_set = set(val.tolist())
    sig_named = _signature(crops[named])
    named_is_val = np.array([i in val_set for i in named])
    dropped = np.zeros(len(candidates), bool)
    for start in range(0, len(candidates), 1024):
        part = candidates[start : start + 1024]
        sims = _signature(crops[part]) @ sig_named.T
        nearest = sims.argmax(axis=1)
        best_val = np.where(named_is_val[None, :], sims, -1).max(axis=1)
        dropped[start : start + len(part)] = named_is_val[nearest] | (best_val >= LEAK_SIMILARITY)
    kept = np.concatenate([train[~no_identity], candidates[~dropped]])
    return np.sort(kept), {"checked": int(len(candidates)), "dropped": int(dropped.sum())}


__all__ = ["drop_validation_lookalikes", "held_out_lessons", "validation_split"]
