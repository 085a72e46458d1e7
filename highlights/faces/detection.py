"""Face detection with facenet-pytorch's MTCNN, batched, at a reduced detection resolution.

Detection cost is dominated by MTCNN's image pyramid, so frames are shrunk to at most
``DetectionOptions.max_side`` pixels on their longer side before detection and the boxes are
mapped back to the original frame. The defaults come from ``bench/detection.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from highlights.faces import _torchvision_shim


MIN_DETECTION_SIDE = 64
"""Smallest ``max_side`` accepted: below it a webcam face shrinks under MTCNN's 12 px window."""


@dataclass(frozen=True)
class DetectionOptions:
    """How MTCNN is run. The defaults were chosen with ``bench/detection.py`` (2026-11-22).

    Recall is relative to full-resolution detection with min_face_size 20 (a face counts as
    found at IoU >= 0.5); times are CPU ms per frame with one torch thread on this project's
    2-core machine (two threads: about 0.75x the wall time), +-30% on a shared machine.

    ====================  ========  =======  ======  ======  ======  =======  ==============
    max_side / min_face   640x480   webcam   dim     office  street  photos   all (109 faces)
    ====================  ========  =======  ======  ======  ======  =======  ==============
    full / 20              (= 640)  48/48    18/18   1/1     30/30   8/8      100%
    640 / 20               73 ms    48/48    18/18   0/1     25/30   8/8      94%
    480 / 20 (default)     50 ms    48/48    16/18   0/1     21/30   8/8      89%
    480 / 40               32 ms    48/48    15/18   0/1     9/30    8/8      76%
    320 / 20               29 ms    48/48    16/18   0/1     7/30    8/8      75%
    320 / 40               20 ms    46/48    13/18   0/1     0/30    8/8      64%
    ====================  ========  =======  ======  ======  ======  =======  ==============

    Groups (``../shared/data``): webcam = head-pose GIFs, 480x270, one or two adults framed like
    a video call, faces 25-30% of the frame height; dim = stage clip in dim light with profiles,
    faces 8-30% of the height; office = people walking in a room (one face, 8%); street =
    1080p, faces 3-7% of the height; photos = the seven stills.

    Why 480 / 20: every face framed like a lesson participant (webcam) is found at every
    setting down to 320 / 20, so the choice is about the smaller faces: a parent in the back, a
    child who leans back or stands up (about 6-15% of the frame height). 480 / 20 keeps faces
    down to about 20 px in the shrunk frame (5.6% of a 4:3 frame's height) and finds 3x as many
    of the small street faces as 320 / 20 (21 vs 7 of 30), for 50 instead of 29 ms per 640x480
    frame: about 2.3 CPU-minutes for a 45-minute lesson sampled at 1 frame/s, in a nightly
    batch. The two dim faces it misses (30 and 41 px, profiles in stage light) are missed by
    every setting below full resolution. min_face 30 or 40 saves a third of the time but loses
    dim and small faces (and, at 30, two webcam faces: MTCNN's pyramid scales shift with it).
    For faster runs where only the nearest face matters, ``max_side=320`` is the next step.
    """

    max_side: int = 480
    """Frames are downscaled so the longer side is at most this many pixels (0: never)."""
    min_face_size: int = 20
    """Smallest face MTCNN looks for, in pixels of the downscaled frame."""
    min_probability: float = 0.90
    """Faces MTCNN is less sure of are dropped."""
    batch_size: int = 16
    """Same-size frames detected per MTCNN call (MTCNN needs one size per batch)."""
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    """MTCNN's P-, R- and O-net thresholds (its defaults)."""

    def __post_init__(self) -> None:
        # Checked up front: a detection size of a few pixels finds no face in any lesson.
        if self.max_side != 0 and not MIN_DETECTION_SIDE <= self.max_side:
            raise ValueError(f"max_side must be 0 (never shrink) or at least {MIN_DETECTION_SIDE} px, not {self.max_side}")
        if not 12 <= self.min_face_size or (self.max_side and self.min_face_size > self.max_side):
            raise ValueError(f"min_face_size must be at least 12 px (MTCNN's window) and at most max_side, not {self.min_face_size}")
        if not 0 <= self.min_probability <= 1 or not all(0 < t <= 1 for t in self.thresholds):
            raise ValueError("min_probability and thresholds must lie between 0 and 1")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be 1 or more, not {self.batch_size}")


@dataclass(frozen=True)
class Detections:
    """Faces found in one image: ``boxes`` ``(N, 4)`` x1, y1, x2, y2 in the image's own pixels,
    ``probs`` ``(N,)`` MTCNN's face probability; largest face first."""

    boxes: np.ndarray
    probs: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return len(self.probs)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """HxWx3 contiguous uint8 from an RGB, RGBA or gray uint8 image."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"face detection needs uint8 images, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    return np.ascontiguousarray(image[:, :, :3])


def _facenet_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("facenet-pytorch")
    except PackageNotFoundError:  # pragma: no cover - vendored or source checkout
        return "unknown"


class FaceDetector:
    """MTCNN on CPU, loaded once (its weights ship inside the facenet-pytorch wheel).

    >>> detector = FaceDetector()
    >>> [faces] = detector.detect([rgb_image])  # doctest: +SKIP
    >>> faces.boxes, faces.probs  # doctest: +SKIP
    """

    def __init__(self, options: DetectionOptions | None = None) -> None:
        self.options = options or DetectionOptions()
        _torchvision_shim.install()
        from facenet_pytorch import MTCNN

        self._mtcnn = MTCNN(
            keep_all=True,
            select_largest=True,
            min_face_size=self.options.min_face_size,
            thresholds=list(self.options.thresholds),
            post_process=False,
            device=torch.device("cpu"),
        )

    def _shrink(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        height, width = image.shape[:2]
        longest = max(height, width)
        max_side = self.options.max_side
        if not max_side or longest <= max_side:
            return image, 1.0
        scale = max_side / longest
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale

    @property
    def version(self) -> str:
        """Identifies what produced the boxes: library version, detection size, minimum face."""
        options = self.options
        return f"mtcnn-facenet-pytorch-{_facenet_version()}-{options.max_side}-{options.min_face_size}"

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Faces in each RGB (or gray) uint8 image; any sizes, same-size images are batched together."""
        results: list[Detections | None] = [None] * len(images)
        shrunk = [self._shrink(_as_rgb(image)) for image in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, (small, _) in enumerate(shrunk):
            # MTCNN's image pyramid has no level for a picture smaller than the smallest face it
            # looks for (it fails inside torch.cat): such a frame has no detectable face.
            if min(small.shape[:2]) < self.options.min_face_size:
                continue
            by_shape.setdefault(small.shape, []).append(index)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.options.batch_size):
                chunk = indices[start : start + self.options.batch_size]
                batch = np.stack([shrunk[i][0] for i in chunk])
                with torch.inference_mode():
                    boxes, probs = self._mtcnn.detect(batch)
                for i, image_boxes, image_probs in zip(chunk, boxes, probs):
                    results[i] = self._to_detections(image_boxes, image_probs, shrunk[i][1])
        return [r if r is not None else Detections.empty() for r in results]

    def _to_detections(self, boxes, probs, scale: float) -> Detections:
        if boxes is None or len(boxes) == 0:
            return Detections.empty()
        boxes = np.asarray(boxes, dtype=np.float32) / scale
        probs = np.asarray(probs, dtype=np.float32)
        keep = probs >= self.options.min_probability
        return Detections(boxes[keep], probs[keep])
