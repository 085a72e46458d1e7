"""MediaPipe's BlazeFace short-range face detector, run in PyTorch (no mediapipe at run time).

The model (``weights/face_detection_short_range.tflite``, Apache-2.0, from the mediapipe 0.10.21
wheel) runs through :class:`highlights.models.tflite.TFLiteModule`; the steps around it repeat
what MediaPipe's Tasks ``FaceDetector`` graph does (mediapipe/tasks/cc/vision/face_detector/
face_detector_graph.cc), so boxes and scores match MediaPipe's:

1. Letterbox: the whole frame, padded to a centred square (black bands), is sampled to 128x128
   by ``cv2.warpPerspective`` with bilinear interpolation on the uint8 frame, exactly as
   MediaPipe's ImageToTensor calculator (pixel ``u`` of the tensor samples the frame at
   ``x0 + u * side / 128``), then scaled to [-1, 1] (the model's metadata: mean 127.5, std 127.5).
2. Decode 896 SSD anchors (4 layers, strides 8, 16, 16, 16, fixed anchor size, aspect ratio 1
   plus the interpolated scale: 2 anchors per cell of the 16x16 map, 6 per cell of the 8x8 map):
   box centre = raw / 128 + anchor centre, size = raw / 128; score = sigmoid(logit clipped to
   +-100); keep scores >= ``min_score``; drop boxes of negative size.
3. Weighted NMS ("blending"), highest score first: every box whose IoU with the best remaining
   one is > ``suppression`` (0.3) is merged into it, coordinates averaged with score weights;
   the merged detection keeps the best score.
4. Map back from the letterboxed square to frame pixels.

MediaPipe's own result rounds boxes down to whole pixels and clips them to the frame; here they
stay float and may reach past the frame's edge (as the project's boxes do). BlazeFace boxes are
square and tight (eyebrows to chin), unlike MTCNN's taller boxes with the forehead: compare the
two at IoU >= 0.3. Several frames go through the network in one batch (:meth:`detect_batch`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from highlights.core.boxes import box_iou
from highlights.models.tflite import TFLiteModule, read_model

WEIGHTS = Path(__file__).resolve().parent / "weights" / "face_detection_short_range.tflite"
WEIGHTS_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
INPUT_SIZE = 128
NUM_KEYPOINTS = 6
"""BlazeFace keypoints, in order: right eye, left eye, nose tip, mouth centre, right ear tragion,
left ear tragion (the subject's right and left)."""


def ssd_anchors(size: int = INPUT_SIZE, strides: Sequence[int] = (8, 16, 16, 16)) -> np.ndarray:
    """Anchor centres (N, 2) x, y in [0, 1], in the model's output order (MediaPipe's
    SsdAnchorsCalculator with face_detector_graph.cc's options: fixed anchor size, so only the
    centres matter). Consecutive layers with the same stride share one feature map; each layer
    adds two anchors per cell (aspect ratio 1 and the interpolated scale)."""
    centres, i = [], 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        cells = math.ceil(size / strides[i])
        grid = (np.arange(cells) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], 1), 2 * (j - i), axis=0))
        i = j
    return np.concatenate(centres).astype(np.float32)


def letterbox_matrix(height: int, width: int, size: int = INPUT_SIZE) -> tuple[np.ndarray, float, float, float]:
    """The perspective matrix MediaPipe's ImageToTensor builds for the whole frame with
    ``keep_aspect_ratio`` (a centred square of side max(height, width)), and that square's
    x0, y0, side in frame pixels (tensor coordinate t in [0, 1] is frame x0 + t * side)."""
    side = float(max(height, width))
    x0, y0 = width / 2 - side / 2, height / 2 - side / 2
    source = np.float32([[x0, y0 + side], [x0, y0], [x0 + side, y0], [x0 + side, y0 + side]])
    target = np.float32([[0, size], [0, 0], [size, 0], [size, size]])
    return cv2.getPerspectiveTransform(source, target), x0, y0, side


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, extra: np.ndarray | None = None):
    """MediaPipe's WEIGHTED non-maximum suppression: indices of the kept (best) detections and
    the blended boxes (and ``extra`` rows, e.g. keypoints, blended the same way)."""
    remaining = np.argsort(-scores, kind="stable")
    kept, merged_boxes, merged_extra = [], [], []
    while remaining.size:
        best = remaining[0]
        overlap = box_iou(boxes[best], boxes[remaining])[0] > threshold
        members = remaining[overlap]
        if members.size == 0:  # a box without area: MediaPipe stops here
            break
        weights = scores[members, None].astype(np.float64)
        kept.append(best)
        merged_boxes.append((boxes[members] * weights).sum(0) / weights.sum())
        if extra is not None:
            merged_extra.append((extra[members].reshape(members.size, -1) * weights).sum(0) / weights.sum())
        remaining = remaining[~overlap]
    kept = np.asarray(kept, np.int64)
    merged = np.asarray(merged_boxes, np.float32).reshape(-1, 4)
    if extra is None:
        return kept, merged
    return kept, merged, np.asarray(merged_extra, np.float32).reshape(-1, *extra.shape[1:])


MTCNN_FRAMING = (0.96, 1.16, -0.13)
"""(width, height, centre shift down) of MTCNN's box for the same face, in BlazeFace box widths,
heights and heights: medians of 174 faces both found (stills, the head-pose clips, UTKFace
children pasted at 110-170 px; IQR 0.93-0.99, 1.12-1.22, -0.15 to -0.11). MTCNN's box is taller
and reaches up to the forehead; the face models were trained on its framing."""


def mtcnn_framing(boxes: np.ndarray) -> np.ndarray:
    """BlazeFace boxes as MTCNN would frame the same faces (:data:`MTCNN_FRAMING`)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    width_k, height_k, shift = MTCNN_FRAMING
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2 + shift * h
    half_w, half_h = width_k * w / 2, height_k * h / 2
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1).astype(np.float32)


class BlazeFaceDetector:
    """Faces in RGB uint8 frames of any size: ``detect(frame) -> (boxes (N, 4) float32 x1, y1,
    x2, y2 in frame pixels, scores (N,) float32)``, best first (see the module's docstring).

    ``min_score`` and ``suppression`` are MediaPipe's ``min_detection_confidence`` (0.5) and
    ``min_suppression_threshold`` (0.3). :meth:`detect_batch` runs ``batch_size`` frames per
    forward pass (8: about 30 % less CPU per frame than one at a time on one core). The detector
    pickles as its model bytes and options and rebuilds the network on unpickling (~0.1 s), so it
    can be sent to worker processes.
    """

    def __init__(
        self, model: bytes | str | Path | None = None, min_score: float = 0.5, suppression: float = 0.3, batch_size: int = 8
    ) -> None:
        self._bytes = read_model(WEIGHTS if model is None else model, WEIGHTS_SHA256 if model is None else None)
        self.min_score, self.suppression, self.batch_size = min_score, suppression, batch_size
        self._build()

    def _build(self) -> None:
        self.model = TFLiteModule(self._bytes).eval()
        if self.model.input_shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3) or self.model.output_shapes[0][-1] != 4 + 2 * NUM_KEYPOINTS:
            raise ValueError(f"not a BlazeFace short-range model: input {self.model.input_shape}, outputs {self.model.output_shapes}")
        self.anchors = ssd_anchors()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("model", "anchors")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._build()

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
        """The model's input for one frame, (128, 128, 3) float32 in [-1, 1], and the
        letterbox square (x0, y0, side) that maps its coordinates back to the frame."""
        frame = np.ascontiguousarray(frame)  # OpenCV rejects negative strides (frame[:, ::-1])
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
        matrix, x0, y0, side = letterbox_matrix(*frame.shape[:2])
        square = cv2.warpPerspective(frame, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return square.astype(np.float32) * np.float32(2 / 255) - np.float32(1), (x0, y0, side)

    def raw(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's outputs for preprocessed inputs (B, 128, 128, 3): regressors
        (B, 896, 16) and score logits (B, 896)."""
        with torch.inference_mode():
            regressors, logits = self.model(torch.from_numpy(np.ascontiguousarray(inputs, np.float32)))
        return regressors.numpy(), logits.numpy()[..., 0]

    def detect(self, frame: np.ndarray, keypoints: bool = False):
        """(boxes, scores) for one frame; with ``keypoints`` also (N, 6, 2) x, y in frame pixels."""
        return self.detect_batch([frame], keypoints=keypoints)[0]

    @property
    def version(self) -> str:
        return f"blazeface-short-{WEIGHTS_SHA256[:8]}-{self.min_score:g}"

    def detect_mtcnn_like(self, frame: np.ndarray, min_score: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`detect`, the boxes framed as MTCNN frames faces (:func:`mtcnn_framing`), only
        those scoring ``min_score`` or more (default: the detector's own)."""
        return self.detect_mtcnn_like_batch([frame], min_score)[0]

    def detect_mtcnn_like_batch(self, frames: Sequence[np.ndarray],
                                min_score: float | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`detect_mtcnn_like` for several frames, ``batch_size`` per forward pass (the
        scoring stage's batches of frames: 4.0 ms per 640x480 frame one at a time)."""
        return [(mtcnn_framing(boxes), scores) for boxes, scores in self.detect_batch(frames, min_score=min_score)]

    def detect_batch(self, frames: Sequence[np.ndarray], keypoints: bool = False,
                     min_score: float | None = None) -> list[tuple[np.ndarray, ...]]:
        """:meth:`detect` for several frames (any sizes), ``batch_size`` frames per forward pass;
        faces scoring ``min_score`` or more (default: the detector's own), before suppression."""
        least = self.min_score if min_score is None else min_score
        results = []
        for start in range(0, len(frames), self.batch_size):
            prepared = [self.preprocess(frame) for frame in frames[start : start + self.batch_size]]
            regressors, logits = self.raw(np.stack([inputs for inputs, _ in prepared]))
            for raw_boxes, raw_logits, (_, square) in zip(regressors, logits, prepared):
                results.append(self._decode(raw_boxes, raw_logits, square, keypoints, least))
        return results

    def _decode(self, raw: np.ndarray, logits: np.ndarray, square, with_keypoints: bool, least: float):
        # sigmoid in float64 (exp(100) overflows float32), then float32 as MediaPipe's scores
        scores = (1 / (1 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))).astype(np.float32)
        keep = np.flatnonzero((scores >= np.float32(least)) & (raw[:, 2] >= 0) & (raw[:, 3] >= 0))
        raw, scores, anchors = raw[keep] / INPUT_SIZE, scores[keep], self.anchors[keep]
        centres, sizes = raw[:, :2] + anchors, raw[:, 2:4]
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1)
        points = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
        kept, boxes, points = weighted_nms(boxes, scores, self.suppression, points)
        x0, y0, side = square
        offset = np.float32([x0, y0])
        boxes = (boxes * side + np.tile(offset, 2)).astype(np.float32)
        if not with_keypoints:
            return boxes, scores[kept]
        return boxes, scores[kept], (points * side + offset).astype(np.float32)


__all__ = ["INPUT_SIZE", "MTCNN_FRAMING", "NUM_KEYPOINTS", "WEIGHTS", "BlazeFaceDetector", "letterbox_matrix",
           "mtcnn_framing", "ssd_anchors", "weighted_nms"]
