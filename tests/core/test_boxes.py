"""Face boxes (highlights/core/boxes.py): the overlap measures."""

from __future__ import annotations

import numpy as np
import pytest

from highlights.core.boxes import box_cover, box_iou


def test_a_box_inside_another_covers_it_fully_while_their_iou_stays_small():
    face = np.array([[416, 73, 559, 218]])  # MTCNN's box of a whole face
    middle = np.array([[420, 105, 486, 185]])  # a second detector's box of its middle
    assert box_iou(middle, face)[0, 0] == pytest.approx(5280 / 20735)
    assert box_cover(middle, face)[0, 0] == pytest.approx(1.0)
    assert box_cover(face, middle)[0, 0] == pytest.approx(5280 / 20735)


def test_overlaps_are_n_by_m_and_zero_for_empty_or_apart_boxes():
    a = np.array([[0, 0, 10, 10], [5, 5, 5, 5]])
    b = np.array([[5, 0, 15, 10], [100, 100, 110, 110], [0, 0, 10, 10]])
    assert box_cover(a, b).tolist() == [[0.5, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert box_iou(a, b).shape == (2, 3) and box_iou(a, b)[0, 0] == pytest.approx(50 / 150)
