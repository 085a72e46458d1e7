"""Training augmentations for 64x64 gray face crops, batched, deterministic given a generator.

Two groups, both from issue #4:

* **Framing** (both models): horizontal flip, rotation up to 25 degrees, zoom up to 1.25 (in or
  out), a random square crop of at least 60% of the area, brightness/contrast changes, and a black
  band over 10-25% of one side (top and bottom more often than left and right) that imitates a
  face cut off by the frame edge.
* **Source shift** (scaled by :attr:`AugmentOptions.shift`; full strength for child/adult,
  half for smiles): low resolution (down- and up-scaling), blur, sensor noise, JPEG compression,
  and uneven lighting (gamma, a brightness gradient across the face) - what webcam frames and
  other cameras do to a face that a public photo set does not.

All random draws come from the ``numpy.random.Generator`` passed in, so a seeded generator gives
the same batch every time. Each image costs a few cv2 calls on 64x64 pixels (well under 0.1 ms),
so a batch of 128 takes a few milliseconds on one core.

>>> rng = np.random.default_rng(0)
>>> out = augment_batch(np.zeros((8, 64, 64), np.uint8), rng)
>>> out.shape, out.dtype
((8, 64, 64), dtype('uint8'))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentOptions:
    flip: float = 0.5
    max_rotation: float = 25.0
    """Degrees, either way."""
    max_zoom: float = 1.25
    """Scale drawn log-uniformly in [1 / max_zoom, max_zoom]."""
    crop: float = 0.3
    """Probability of a random square crop of ``min_crop_area``..1 of the image, resized back."""
    min_crop_area: float = 0.6
    brightness: float = 0.15
    """Brightness shift, fraction of full scale, either way."""
    contrast: float = 0.3
    """Contrast factor drawn in [1 - contrast, 1 + contrast]."""
    band: float = 0.25
    """Probability of a black band covering 10-25% of one side."""
    band_fraction: tuple[float, float] = (0.10, 0.25)
    band_side_weights: tuple[float, float, float, float] = (0.35, 0.35, 0.15, 0.15)
    """Top, bottom, left, right."""
    shift: float = 1.0
    """Strength of the source-shift group: each of its steps happens with probability
    ``shift * 0.25`` (lighting ``shift * 0.3``); 0 turns it off."""


SMILE_AUGMENT = AugmentOptions(shift=0.5)
AGE_AUGMENT = AugmentOptions(shift=1.0)

BAND_SIDES = ("top", "bottom", "left", "right")


def geometric_matrix(
    size: int, angle: float, scale: float, crop_side: float, crop_x: float, crop_y: float, flip: bool
) -> np.ndarray:
    """The 2x3 affine matrix mapping an output pixel's source: a square crop of side
    ``crop_side`` (fraction of ``size``) at offset ``crop_x, crop_y`` (fractions of the room left),
    resized to ``size``, rotated by ``angle`` degrees and scaled by ``scale`` about the centre,
    then mirrored when ``flip``."""
    c = (size - 1) / 2.0
    side = crop_side * size
    # Crop: the crop's centre goes to the image centre, scaled up by size / side.
    cx = crop_x * (size - side) + side / 2.0 - 0.5
    cy = crop_y * (size - side) + side / 2.0 - 0.5
    zoom = scale * size / side
    rotation = cv2.getRotationMatrix2D((c, c), angle, zoom)
    # getRotationMatrix2D rotates about (c, c); move the crop centre there first.
    rotation[:, 2] += rotation[:, :2] @ np.array([c - cx, c - cy])
    if flip:
        mirror = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        rotation = mirror[:2] @ np.vstack([rotation, [0.0, 0.0, 1.0]])
    return rotation


def black_band(image: np.ndarray, side: str, fraction: float) -> np.ndarray:
    """Blacken ``fraction`` of ``image`` from one ``side`` (in place; returned for chaining)."""
    height, width = image.shape[:2]
    rows = max(1, int(round(fraction * height)))
    cols = max(1, int(round(fraction * width)))
    if side == "top":
        image[:rows] = 0
    elif side == "bottom":
        image[height - rows :] = 0
    elif side == "left":
        image[:, :cols] = 0
    elif side == "right":
        image[:, width - cols :] = 0
    else:
        raise ValueError(f"unknown side {side!r}")
    return image


def _shift(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Source-shift steps on one float32 image in [0, 255]."""
    size = image.shape[0]
    p = 0.25 * strength
    if rng.random() < 0.3 * strength:  # uneven lighting: gamma and a gradient across the face
        gamma = math.exp(rng.uniform(math.log(0.6), math.log(1.6)))
        image = 255.0 * np.power(np.clip(image, 0, 255) / 255.0, gamma)
        if rng.random() < 0.6:
            theta = rng.uniform(0, 2 * math.pi)
            depth = rng.uniform(0.2, 0.5)
            ramp = np.cos(theta) * np.linspace(-1, 1, size)[None, :] + np.sin(theta) * np.linspace(
                -1, 1, size
            )[:, None]
            image = image * (1.0 + depth * ramp / 1.5).astype(np.float32)
    if rng.random() < p:  # low resolution: a small face in a frame, scaled up
        small = int(rng.integers(14, 40))
        image = cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA)
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < p:  # defocus / motion blur
        sigma = rng.uniform(0.5, 1.6)
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if rng.random() < p:  # sensor noise
        image = image + rng.normal(0.0, rng.uniform(2.0, 12.0), image.shape).astype(np.float32)
    if rng.random() < p:  # compression
        quality = int(rng.integers(15, 70))
        ok, encoded = cv2.imencode(
            ".jpg", np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if ok:
            image = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32)
    return image


def augment_batch(
    faces: np.ndarray, rng: np.random.Generator, options: AugmentOptions = AugmentOptions()
) -> np.ndarray:
    """Augmented copies of ``faces`` ``(N, H, W)`` uint8 (square); same shape and dtype."""
    faces = np.asarray(faces)
    if faces.ndim != 3 or faces.shape[1] != faces.shape[2]:
        raise ValueError(f"expected (N, S, S) gray faces, got {faces.shape}")
    n, size = faces.shape[0], faces.shape[1]
    out = np.empty_like(faces, dtype=np.uint8)
    side_probs = np.asarray(options.band_side_weights, float)
    side_probs /= side_probs.sum()
    for i in range(n):
        angle = rng.uniform(-options.max_rotation, options.max_rotation)
        scale = math.exp(rng.uniform(-math.log(options.max_zoom), math.log(options.max_zoom)))
        if rng.random() < options.crop:
            crop_side = math.sqrt(rng.uniform(options.min_crop_area, 1.0))
            crop_x, crop_y = rng.random(), rng.random()
        else:
            crop_side, crop_x, crop_y = 1.0, 0.5, 0.5
        flip = bool(rng.random() < options.flip)
        matrix = geometric_matrix(size, angle, scale, crop_side, crop_x, crop_y, flip)
        image = cv2.warpAffine(
            faces[i].astype(np.float32),
            matrix,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        contrast = rng.uniform(1.0 - options.contrast, 1.0 + options.contrast)
        brightness = rng.uniform(-options.brightness, options.brightness) * 255.0
        image = (image - image.mean()) * contrast + image.mean() + brightness
        if options.shift > 0:
            image = _shift(image, rng, options.shift)
        image = np.clip(image, 0, 255).astype(np.uint8)
        if rng.random() < options.band:
            side = BAND_SIDES[int(rng.choice(4, p=side_probs))]
            black_band(image, side, rng.uniform(*options.band_fraction))
        out[i] = image
    return out
