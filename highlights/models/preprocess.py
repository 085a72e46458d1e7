"""Per-face preprocessing: the recipe the smile and child/adult models are trained and run with.

Face box padded to a square (black where the square leaves the frame), grayscale, CLAHE
(clip limit 2.0, 4x4 tiles), resized to 64x64. Training and inference share these functions so
that a training crop is framed exactly like a crop cut from a lesson frame.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from highlights.core.boxes import Box

MODEL_INPUT_SIZE = 64
CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (4, 4)


def square_box(box: Box, scale: float = 1.0) -> tuple[int, int, int, int]:
    """The square with the same centre as ``box`` and side ``scale * max(width, height)``.

    The square may reach outside the frame; :func:`crop_square` fills that part with black.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * scale
    side = max(int(round(side)), 1)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left = int(round(cx - side / 2.0))
    top = int(round(cy - side / 2.0))
    return left, top, left + side, top + side


def crop_square(image: np.ndarray, box: Box, scale: float = 1.0) -> np.ndarray:
    """Cut the square around ``box`` out of ``image``; parts outside the frame come out black."""
    return cut_padded(image, *square_box(box, scale))


def cut_padded(image: np.ndarray, left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """The pixels of ``image`` in columns ``[left, right)`` and rows ``[top, bottom)`` (whole
    pixels, ``right > left`` and ``bottom > top``), black where that lies outside the frame."""
    height, width = image.shape[:2]
    out = np.zeros((bottom - top, right - left) + image.shape[2:], dtype=image.dtype)
    src_x1, src_y1 = max(left, 0), max(top, 0)
    src_x2, src_y2 = min(right, width), min(bottom, height)
    if src_x2 > src_x1 and src_y2 > src_y1:
        out[src_y1 - top : src_y2 - top, src_x1 - left : src_x2 - left] = image[src_y1:src_y2, src_x1:src_x2]
    return out


def to_gray(image: np.ndarray) -> np.ndarray:
    """RGB (or already gray) uint8 image to a 2-D uint8 gray image."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


_clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)


def resize_face(face: np.ndarray, size: int = MODEL_INPUT_SIZE) -> np.ndarray:
    """Resize a square crop to ``size`` x ``size``: area averaging when shrinking, linear when growing."""
    interpolation = cv2.INTER_AREA if face.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(face, (size, size), interpolation=interpolation)


def normalise_face(face: np.ndarray, size: int = MODEL_INPUT_SIZE) -> np.ndarray:
    """Square face crop (RGB or gray) -> grayscale, CLAHE, ``size`` x ``size`` uint8.

    CLAHE runs at the crop's own resolution, before the resize (the order training used).
    """
    gray = to_gray(face)
    equalised = _clahe.apply(np.ascontiguousarray(gray))
    return resize_face(equalised, size)


def in_frame_region(
    frame_shape: tuple[int, ...], box: Box, size: int = MODEL_INPUT_SIZE, scale: float = 1.0
) -> tuple[int, int, int, int]:
    """Rows and columns ``(top, bottom, left, right)`` of a ``size`` x ``size`` square crop that
    come wholly from inside the frame (not from the black padding), end-exclusive.

    A pixel that resizing blends from frame and padding is left out, so statistics over the
    region (brightness, sharpness) see neither the black nor the artificial edge it makes.
    """
    left, top, right, bottom = square_box(box, scale)
    height, width = frame_shape[:2]
    factor = size / (right - left)

    def span(start: int, end: int, limit: int) -> tuple[int, int]:
        first = math.ceil((max(start, 0) - start) * factor)
        last = math.floor((min(end, limit) - start) * factor)
        return min(max(first, 0), size), max(min(last, size), 0)

    rows, cols = span(top, bottom, height), span(left, right, width)
    return rows[0], max(rows), cols[0], max(cols)


def face_model_input(image: np.ndarray, box: Box) -> np.ndarray:
    """The 64x64 gray CLAHE crop of one face in a frame, as the models take it."""
    return normalise_face(crop_square(image, box))


def to_tensor_batch(faces: list[np.ndarray] | np.ndarray):
    """Stack 64x64 uint8 faces into a float tensor ``(N, 1, 64, 64)`` scaled to [0, 1]."""
    import torch

    array = np.asarray(faces, dtype=np.uint8)
    if array.ndim == 2:
        array = array[None]
    return torch.from_numpy(array).float().div_(255.0).unsqueeze(1)
