"""Person probability per pixel with MediaPipe's selfie segmentation, run in PyTorch. What a
mask means for the lesson (a shoulder no face explains) is
:func:`highlights.stages.persons.unexplained_body`.

The models (Apache-2.0, from the mediapipe 0.10.21 wheel) run through
:class:`highlights.models.tflite.TFLiteModule`; the steps around them repeat MediaPipe's Tasks
``ImageSegmenter`` on the CPU, so the masks match MediaPipe's:

* the whole frame is stretched to the model's input (no letterbox, aspect ratio not kept) by
  ``cv2.warpPerspective`` with bilinear interpolation on the uint8 frame (tensor pixel ``u``
  samples the frame at ``u * width / model_width``, as MediaPipe's ImageToTensor calculator),
  border replicated, then scaled to [0, 1] (the models' metadata: mean 0, std 255);
* the network ends in a sigmoid, so its output is the person probability (MediaPipe passes it
  through unchanged); MediaPipe then resizes it to the frame with ``cv2.resize`` (bilinear):
  :func:`resize_mask` does the same.

Variants (:data:`VARIANTS`): ``"square"`` (``selfie_segmentation.tflite``, 256x256 input and
mask, the model the body rule was measured with) and ``"landscape"``
(``selfie_segmentation_landscape.tflite``, 256 wide x 144 high, trained for 16:9 video calls,
cheaper). A 640x480 frame is squeezed either way (4:3 to 1:1 or to 16:9); the mask's detail is
that of the model's grid whatever the frame size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch

from highlights.models.tflite import TFLiteModule, read_model

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
Variant = Literal["square", "landscape"]
VARIANTS: dict[str, tuple[str, str]] = {
    # variant: (file in weights/, sha256)
    "square": ("selfie_segmentation.tflite", "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
    "landscape": ("selfie_segmentation_landscape.tflite", "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd"),
}


def stretch_matrix(height: int, width: int, out_height: int, out_width: int) -> np.ndarray:
    """MediaPipe's ImageToTensor matrix for the whole frame without letterbox: frame corners to
    tensor corners (so tensor pixel u samples the frame at u * width / out_width)."""
    source = np.float32([[0, height], [0, 0], [width, 0], [width, height]])
    target = np.float32([[0, out_height], [0, 0], [out_width, 0], [out_width, out_height]])
    return cv2.getPerspectiveTransform(source, target)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask at another resolution, ``size`` = (height, width), bilinear as MediaPipe resizes
    its masks to the frame (the mask's detail stays that of the model's grid)."""
    height, width = size
    return cv2.resize(np.asarray(mask, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


class PersonSegmenter:
    """``mask(frame)``: float32 person probability in [0, 1] for an RGB uint8 frame of any size,
    at the model's resolution (:attr:`mask_size`: 256x256 ``"square"``, 144x256 ``"landscape"``),
    or at the frame's with ``full_size=True`` (what MediaPipe's ImageSegmenter returns).

    :meth:`mask_batch` runs ``batch_size`` frames per forward pass (4: about 10-20 % less CPU per
    frame than one at a time on one core; 8 is no better, its activations outgrow the caches).
    Pickles as its model bytes and options; the network is rebuilt on unpickling.
    """

    def __init__(self, variant: Variant = "square", model: bytes | str | Path | None = None, batch_size: int = 4) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant {variant!r}: one of {', '.join(VARIANTS)}")
        name, sha256 = VARIANTS[variant]
        self.variant, self.batch_size = variant, batch_size
        self._bytes = read_model(WEIGHTS_DIR / name if model is None else model, sha256 if model is None else None)
        self._build()

    def _build(self) -> None:
        self.model = TFLiteModule(self._bytes).eval()
        _, height, width, channels = self.model.input_shape
        if channels != 3 or len(self.model.output_shapes) != 1 or self.model.output_shapes[0][1:] != (height, width, 1):
            raise ValueError(f"not a selfie segmentation model: input {self.model.input_shape}, outputs {self.model.output_shapes}")
        self.mask_size = (height, width)

    @property
    def version(self) -> str:
        return f"selfie-segmentation-{self.variant}-{VARIANTS[self.variant][1][:8]}"

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "model"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._build()

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        """The model's input for one frame: (height, width, 3) float32 in [0, 1]."""
        frame = np.ascontiguousarray(frame)  # OpenCV rejects negative strides (frame[:, ::-1])
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
        height, width = self.mask_size
        matrix = stretch_matrix(frame.shape[0], frame.shape[1], height, width)
        small = cv2.warpPerspective(frame, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return small.astype(np.float32) * np.float32(1 / 255)

    def raw(self, inputs: np.ndarray) -> np.ndarray:
        """The network's output (B, height, width) for preprocessed inputs (B, height, width, 3)."""
        with torch.inference_mode():
            (prob,) = self.model(torch.from_numpy(np.ascontiguousarray(inputs, np.float32)))
        return prob.numpy()[..., 0]

    def mask(self, frame: np.ndarray, full_size: bool = False) -> np.ndarray:
        """Person probability (:attr:`mask_size`), or (H, W) of the frame with ``full_size``."""
        return self.mask_batch([frame], full_size=full_size)[0]

    def mask_batch(self, frames: Sequence[np.ndarray], full_size: bool = False) -> list[np.ndarray]:
        """:meth:`mask` for several frames, ``batch_size`` per forward pass."""
        masks: list[np.ndarray] = []
        for start in range(0, len(frames), self.batch_size):
            chunk = frames[start : start + self.batch_size]
            masks.extend(np.ascontiguousarray(m) for m in self.raw(np.stack([self.preprocess(f) for f in chunk])))
        if full_size:
            masks = [resize_mask(m, np.asarray(f).shape[:2]) for m, f in zip(masks, frames)]
        return masks


__all__ = ["VARIANTS", "PersonSegmenter", "Variant", "resize_mask", "stretch_matrix"]
