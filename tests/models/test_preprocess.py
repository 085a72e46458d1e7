"""Per-face preprocessing: square padding at frame edges, grayscale, CLAHE, 64x64."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from highlights.models.preprocess import (
    MODEL_INPUT_SIZE,
    crop_square,
    face_model_input,
    in_frame_region,
    normalise_face,
    square_box,
    to_gray,
    to_tensor_batch,
)


def numbered_frame(height: int = 60, width: int = 80) -> np.ndarray:
    """RGB frame whose pixels encode their position: R = column, G = row, B = 255 (never black)."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([cols, rows, np.full_like(rows, 255)], axis=-1).astype(np.uint8)


def test_square_box_keeps_centre_and_takes_longer_side():
    assert square_box((10, 20, 30, 60)) == (0, 20, 40, 60)  # 20x40 -> 40x40 around (20, 40)
    assert square_box((10, 10, 20, 20), scale=2.0) == (5, 5, 25, 25)
    left, top, right, bottom = square_box((0.4, 0.4, 0.6, 0.6))
    assert right - left == bottom - top == 1  # never an empty crop


def test_crop_inside_frame_is_an_exact_copy():
    frame = numbered_frame()
    crop = crop_square(frame, (10, 20, 30, 40))
    assert crop.shape == (20, 20, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop, frame[20:40, 10:30])


@pytest.mark.parametrize(
    "box, square",
    [
        ((-10, 5, 10, 25), (-10, 5, 10, 25)),  # off the left edge
        ((70, 50, 90, 70), (70, 50, 90, 70)),  # off the bottom-right corner
        ((30, -15, 50, 5), (30, -15, 50, 5)),  # off the top
        ((-5, 20, 85, 40), (-5, -15, 85, 75)),  # wider than the frame: square spills top and bottom
    ],
)
def test_crop_pads_with_black_exactly_where_the_square_leaves_the_frame(box, square):
    frame = numbered_frame()
    height, width = frame.shape[:2]
    assert square_box(box) == square
    left, top, right, bottom = square
    crop = crop_square(frame, box)
    assert crop.shape == (bottom - top, right - left, 3)
    for y in range(crop.shape[0]):
        for x in range(crop.shape[1]):
            fy, fx = top + y, left + x
            if 0 <= fy < height and 0 <= fx < width:
                assert tuple(crop[y, x]) == (fx, fy, 255)
            else:
                assert not crop[y, x].any()


def test_crop_entirely_outside_is_black_and_keeps_gray_layout():
    gray = np.full((40, 40), 200, np.uint8)
    crop = crop_square(gray, (100, 100, 120, 120))
    assert crop.shape == (20, 20) and not crop.any()


def test_to_gray_accepts_rgb_gray_and_single_channel():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 1] = 255  # pure green: luma 0.587 * 255
    assert to_gray(rgb).shape == (4, 5)
    assert abs(int(to_gray(rgb)[0, 0]) - 150) <= 1
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    assert to_gray(gray) is gray
    np.testing.assert_array_equal(to_gray(gray[:, :, None]), gray)


@pytest.mark.parametrize("side", [20, 64, 150])
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_normalise_face_gives_64x64_uint8_gray(side, channels):
    rng = np.random.default_rng(side)
    shape = (side, side) if channels is None else (side, side, channels)
    face = rng.integers(0, 256, shape, dtype=np.uint8)
    out = normalise_face(face)
    assert out.shape == (MODEL_INPUT_SIZE, MODEL_INPUT_SIZE) and out.dtype == np.uint8
    assert normalise_face(face, size=32).shape == (32, 32)


def test_clahe_stretches_a_low_contrast_crop():
    # A flat, low-contrast crop: a gradient plus texture within about 90..110.
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:128, 0:128]
    face = (90 + 20 * (x + y) / 254 + rng.normal(0, 2, (128, 128))).clip(0, 255).astype(np.uint8)
    out = normalise_face(face)
    plain = cv2.resize(face, (64, 64), interpolation=cv2.INTER_AREA)
    assert out.std() > 1.25 * plain.std()
    assert np.ptp(out) > 1.4 * np.ptp(plain)
    # Exactly the documented recipe: CLAHE clip 2.0 on 4x4 tiles at crop resolution, then resize.
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))
    expected = cv2.resize(clahe.apply(face), (64, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(out, expected)
    # The clip limit keeps a flat crop flat instead of blowing its noise up to full range.
    assert np.ptp(normalise_face(np.full((64, 64), 120, np.uint8))) <= 2


def test_face_model_input_is_crop_then_normalise():
    frame = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    box = (-12.3, 30.7, 40.2, 90.1)
    np.testing.assert_array_equal(face_model_input(frame, box), normalise_face(crop_square(frame, box)))


def test_to_tensor_batch_scales_and_shapes():
    faces = [np.zeros((64, 64), np.uint8), np.full((64, 64), 255, np.uint8)]
    batch = to_tensor_batch(faces)
    assert tuple(batch.shape) == (2, 1, 64, 64)
    assert str(batch.dtype) == "torch.float32"
    assert batch[0].max() == 0 and batch[1].min() == 1
    assert tuple(to_tensor_batch(faces[0]).shape) == (1, 1, 64, 64)


@pytest.mark.parametrize(
    "frame_shape, box, expected",
    [
        ((100, 200), (10, 10, 50, 50), (0, 64, 0, 64)),  # wholly inside
        ((100, 200), (-20, 10, 20, 50), (0, 64, 32, 64)),  # left half outside
        ((100, 200), (180, 70, 220, 110), (0, 48, 0, 32)),  # bottom-right corner outside
        ((100, 200), (-7, 10, 23, 40), (0, 64, 15, 64)),  # edge mid-pixel (14.9): blended px out
        ((100, 200), (300, 300, 340, 340), (0, 0, 0, 0)),  # wholly outside: empty
    ],
)
def test_in_frame_region_matches_the_padding(frame_shape, box, expected):
    region = in_frame_region(frame_shape, box)
    top, bottom, left, right = region
    if expected == (0, 0, 0, 0):
        assert bottom <= top or right <= left
    else:
        assert region == expected
    if bottom > top and right > left:
        frame = np.full(frame_shape + (3,), 255, np.uint8)
        crop = cv2.resize(to_gray(crop_square(frame, box)), (64, 64), interpolation=cv2.INTER_AREA)
        assert (crop[top:bottom, left:right] == 255).all()  # no padding inside the region
