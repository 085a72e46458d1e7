"""Face boxes (x1, y1, x2, y2 in frame pixels): their one type, :data:`Box`, which the scorer,
tracks, selection and GIF share, and the overlap measures the detector's follower, the tracks, the
scoring and the benchmarks share. NumPy only, so the pure stages need not import torch."""

from __future__ import annotations

import numpy as np

Box = tuple[float, float, float, float]
"""A face box: x1, y1, x2, y2 in the pixels of its frame (may reach past the frame's edges)."""


def _intersections(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (N, M) intersection areas of the boxes of ``a`` and ``b``, and each box's area."""
    a, b = np.asarray(a, dtype=float).reshape(-1, 4), np.asarray(b, dtype=float).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter, (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (N, 4) with every box in ``b`` (M, 4),
    boxes as x1, y1, x2, y2: an (N, M) array (0 where a box has no area)."""
    inter, area_a, area_b = _intersections(a, b)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def box_cover(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The share of each box of ``a`` (N, 4) that lies inside each box of ``b`` (M, 4): an (N, M)
    array (0 where a box of ``a`` has no area). A box inside a larger one covers it fully while
    their IoU stays small."""
    inter, area_a, _ = _intersections(a, b)
    return np.where(area_a[:, None] > 0, inter / np.maximum(area_a[:, None], 1e-9), 0.0)


def box_in_frame(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Share of each ``(x1, y1, x2, y2)`` box's area that lies inside a ``width x height`` frame
    (NaN for a box without area)."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    inside_w = np.clip(np.minimum(boxes[:, 2], width) - np.maximum(boxes[:, 0], 0), 0, None)
    inside_h = np.clip(np.minimum(boxes[:, 3], height) - np.maximum(boxes[:, 1], 0), 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(area > 0, inside_w * inside_h / area, np.nan)


__all__ = ["Box", "box_cover", "box_in_frame", "box_iou"]
