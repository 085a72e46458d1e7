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
* **Webcam** (scaled by :attr:`AugmentOptions.webcam`; off in both shipped recipes, see
  :data:`AGE_AUGMENT`; issue #10):
  what a child's webcam in a lesson does beyond that, each a named step of :func:`_webcam`:

  - ``exposure``: a dim room (the face at 15-45% of its light, sensor noise amplified by the
    camera's gain) or a window behind the person (the surroundings glare, the face at 30-60%);
    the crop is then equalised again with the model's own CLAHE (:func:`~highlights.models.
    preprocess.normalise_face`), as the job does to a dark face: stretched, noisy, banded.
  - ``cast``: a colour cast. The recipe is grayscale, so all that survives of a cast is the skin
    coming out darker or lighter against its surroundings (skin is mostly red: a blue cast darkens
    it in gray, a warm one lightens it): the face region's gain is changed by 0.75-1.3 relative to
    the rest; a cast over the whole picture is the brightness/contrast step above.
  - ``motion``: motion blur, a line kernel 3-9 px long at a random angle (a head moving during
    the exposure); defocus is the source-shift group's Gaussian blur.
  - ``blocks``: a starved connection: the face down to 24-60 px (its size in a webcam frame),
    JPEG at quality 8-30 there (8x8 blocks of a face that size are coarse), back up to 64 px.
  - ``squeeze``: a face turned away, narrowed horizontally to 60-100% of its width about its
    centre (part of the geometric step).

  Small faces scaled up and defocus are the source-shift group's low-resolution and blur steps,
  a face cut by the frame edge the black band; they are not repeated here.

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
    webcam: float = 0.0
    """Strength of the webcam group (:func:`_webcam`): each step happens with probability
    ``webcam`` times its rate in :data:`WEBCAM_RATES`; 0 (the default, and the smile model's
    recipe) turns it off."""
    squeeze: tuple[float, float] = (0.6, 1.0)
    """The webcam ``squeeze`` step's horizontal scale (a head turned by up to ~55 degrees)."""
    turned: float = 0.0
    """Probability of the ``squeeze`` step on its own, whatever the webcam group's strength (the
    step's probability is the larger of this and the group's): a turned head without the group's
    photometric steps (exposure, cast, motion, blocks), which made adults of other photo sets look
    younger to the child/adult model when it was fine-tuned with them."""
    dim_gain: tuple[float, float] = (0.15, 0.45)
    backlit_face_gain: tuple[float, float] = (0.3, 0.6)
    cast_gain: tuple[float, float] = (0.75, 1.3)
    motion_px: tuple[int, int] = (3, 9)
    block_face_px: tuple[int, int] = (24, 60)
    block_jpeg_quality: tuple[int, int] = (8, 30)


WEBCAM_RATES = {"exposure": 0.3, "cast": 0.15, "motion": 0.2, "blocks": 0.25, "squeeze": 0.25}
"""Probability of each webcam step at ``webcam = 1``; ``exposure`` is dim or backlit, half each.
At these rates 27% of the faces pass the group untouched (the model still sees clear faces), 41%
get one step and 32% two or more (webcam troubles come together: a dim room means a slow
shutter, blur and a gained-up sensor)."""

SMILE_AUGMENT = AugmentOptions(shift=0.5)
AGE_AUGMENT = AugmentOptions(shift=1.0)
"""The shipped child/adult model's recipe. The webcam group is off: fine-tuned with it (strength
1 and 0.5, 8 epochs from the shipped weights; ``scripts/train_models.py --init shipped
--webcam S``) or trained from scratch with it, the model called more adults of other photo sets
children (LFW expressions 2.2-2.3% vs 1.6%) and, on the tuning lessons of ``bench/tracks.py``,
lifted webcam child recall (0.61 -> 0.66-0.68) only by also calling an adult track a child
(1 of 13) and lost plain recall (0.86 -> 0.83-0.84). See README, "The face models"."""

BAND_SIDES = ("top", "bottom", "left", "right")


def geometric_matrix(
    size: int,
    angle: float,
    scale: float,
    crop_side: float,
    crop_x: float,
    crop_y: float,
    flip: bool,
    squeeze: float = 1.0,
) -> np.ndarray:
    """The 2x3 affine matrix mapping an output pixel's source: a square crop of side
    ``crop_side`` (fraction of ``size``) at offset ``crop_x, crop_y`` (fractions of the room left),
    resized to ``size``, rotated by ``angle`` degrees and scaled by ``scale`` about the centre,
    then narrowed to ``squeeze`` of its width about the centre column, then mirrored when
    ``flip``."""
    c = (size - 1) / 2.0
    side = crop_side * size
    # Crop: the crop's centre goes to the image centre, scaled up by size / side.
    cx = crop_x * (size - side) + side / 2.0 - 0.5
    cy = crop_y * (size - side) + side / 2.0 - 0.5
    zoom = scale * size / side
    rotation = cv2.getRotationMatrix2D((c, c), angle, zoom)
    # getRotationMatrix2D rotates about (c, c); move the crop centre there first.
    rotation[:, 2] += rotation[:, :2] @ np.array([c - cx, c - cy])
    if squeeze != 1.0:
        narrow = np.array([[squeeze, 0.0, (1.0 - squeeze) * c], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        rotation = narrow[:2] @ np.vstack([rotation, [0.0, 0.0, 1.0]])
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


def _face_region(size: int) -> np.ndarray:
    """A feathered ellipse over where the face sits in a crop (1 inside, 0 outside), float32."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2.0
    r = np.sqrt(((x - c) / (0.36 * size)) ** 2 + ((y - c * 1.05) / (0.46 * size)) ** 2)
    return np.clip((1.15 - r) / 0.3, 0.0, 1.0)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _webcam(image: np.ndarray, rng: np.random.Generator, options: AugmentOptions) -> np.ndarray:
    """The webcam steps (module docstring) on one float32 image in [0, 255], in the order the
    camera and the job apply them: light, motion, sensor gain, the face's size and compression,
    then (after a change of light) the recipe's equalisation at that size, then back to the
    model's size. The ``squeeze`` step is geometric (:func:`geometric_matrix`)."""
    from highlights.models.preprocess import normalise_face

    size = image.shape[0]
    strength = options.webcam
    relit = False
    if rng.random() < WEBCAM_RATES["exposure"] * strength:
        relit = True
        if rng.random() < 0.5:  # a dim room
            image = image * _uniform(rng, options.dim_gain)
        else:  # a window behind: the surroundings glare, the face is in shadow
            face = _face_region(size)
            lit = np.minimum(image * 1.35 + 45.0, 255.0)
            image = face * image * _uniform(rng, options.backlit_face_gain) + (1.0 - face) * lit
    if rng.random() < WEBCAM_RATES["cast"] * strength:
        face = _face_region(size)
        image = image * (1.0 + face * (_uniform(rng, options.cast_gain) - 1.0))
    if rng.random() < WEBCAM_RATES["motion"] * strength:
        length = int(rng.integers(options.motion_px[0], options.motion_px[1] + 1))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0
        turn = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, turn, (length, length))
        image = cv2.filter2D(image, -1, kernel / max(float(kernel.sum()), 1e-6), borderType=cv2.BORDER_REFLECT)
    if relit:  # the sensor's gain in a dark scene: its noise, amplified with the picture
        image = image + rng.normal(0.0, rng.uniform(1.5, 5.0), image.shape).astype(np.float32)
    small = size
    if rng.random() < WEBCAM_RATES["blocks"] * strength:
        small = int(rng.integers(options.block_face_px[0], options.block_face_px[1] + 1))
        image = cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA)
        quality = int(rng.integers(options.block_jpeg_quality[0], options.block_jpeg_quality[1] + 1))
        ok, encoded = cv2.imencode(
            ".jpg", np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if ok:
            image = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32)
    if relit:  # the job equalises every crop at its own size (the inference recipe)
        image = normalise_face(np.clip(image, 0, 255).astype(np.uint8), small).astype(np.float32)
    if small != size:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
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
        squeeze = 1.0
        turn = max(options.turned, WEBCAM_RATES["squeeze"] * options.webcam)
        if turn > 0 and rng.random() < turn:  # no draw at 0: the shipped recipes' streams stay as trained
            squeeze = _uniform(rng, options.squeeze)
        matrix = geometric_matrix(size, angle, scale, crop_side, crop_x, crop_y, flip, squeeze)
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
        if options.webcam > 0:
            image = _webcam(image, rng, options)
        if options.shift > 0:
            image = _shift(image, rng, options.shift)
        image = np.clip(image, 0, 255).astype(np.uint8)
        if rng.random() < options.band:
            side = BAND_SIDES[int(rng.choice(4, p=side_probs))]
            black_band(image, side, rng.uniform(*options.band_fraction))
        out[i] = image
    return out
