"""Score sampled frames: every face found, child or adult, how much it smiles, how usable the crop is.

The stage's value is the lesson's face table (:class:`highlights.core.faces.FaceTable`, whose
schema documents every column): one row per face, plus one row with ``face = -1`` for each sampled
frame where no face was found, so the table covers every sampled frame.

>>> scorer = FaceScorer()                                    # doctest: +SKIP
>>> table = score_frames(frames_at_points(points), scorer)  # doctest: +SKIP
>>> table.faces().sort_values("smile_prob").tail(3)          # doctest: +SKIP

How the crop columns are measured: ``sharpness`` and ``brightness`` are the variance of the
Laplacian and the mean gray level (0-255) of the 64x64 gray square crop *before* CLAHE (the
model-input crop without its contrast equalisation, which would hide both blur and darkness),
over the part of the crop inside the frame (black padding at frame edges would add a false edge
and darken the mean); NaN when less than 3x3 pixels of the crop are inside the frame.
``crop_hash`` is ``imagehash.phash`` of that same crop: a Hamming distance of a few bits means a
near-duplicate face.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import imagehash
import numpy as np
import torch
from PIL import Image

from highlights.core.boxes import box_iou
from highlights.core.faces import BODY_COLUMNS, NO_FACE, FaceTable
from highlights.models.detection import (
    DetectionOptions,
    Detections,
    FaceDetector,
    FaceFollower,
    picture_change,
    thumbnail,
)
from highlights.models.face_cnn import FaceModel, load_face_model
from highlights.models.preprocess import (
    Box,
    crop_square,
    in_frame_region,
    normalise_face,
    resize_face,
    to_gray,
    to_tensor_batch,
)

if TYPE_CHECKING:
    from highlights.media.decode import SampledFrame

__all__ = [
    "FaceScore",
    "FaceScorer",
    "KeptFrames",
    "Lookout",
    "PeopleModels",
    "crop_quality",
    "score_frames",
]

MODEL_BATCH = 256
"""Faces per forward pass of the per-face models (bounds memory on frames crowded with faces)."""


@dataclass(frozen=True)
class FaceScore:
    """One face in one image: where, how sure, child or adult, smiling, and crop quality."""

    face: int
    box: Box
    det_prob: float
    child_prob: float
    smile_prob: float
    is_child: bool
    sharpness: float
    brightness: float
    crop_hash: str


def crop_quality(frame_shape: tuple[int, ...], box: Box, gray64: np.ndarray) -> tuple[float, float]:
    """``(sharpness, brightness)`` of a 64x64 gray crop before CLAHE, over its in-frame part.

    Sharpness is the variance of the Laplacian, brightness the mean gray level 0-255; both NaN
    when less than 3x3 pixels of the crop come from inside the frame.
    """
    top, bottom, left, right = in_frame_region(frame_shape, box, gray64.shape[0])
    if bottom - top < 3 or right - left < 3:
        return math.nan, math.nan
    region = np.ascontiguousarray(gray64[top:bottom, left:right])
    sharpness = float(cv2.Laplacian(region, cv2.CV_64F).var())
    return sharpness, float(region.mean())


def _crop_hash(gray64: np.ndarray) -> str:
    return str(imagehash.phash(Image.fromarray(gray64)))


@dataclass
class PeopleModels:
    """The models that tell who is in view besides the face scores, each optional: a face-identity
    embedding (:class:`highlights.models.embedding.FaceEmbedder`), a whole-frame person model
    (:class:`highlights.models.segmentation.PersonSegmenter`) and a second face detector for the
    faces MTCNN misses in the dark or cut by the frame's edge
    (:class:`highlights.models.blazeface.BlazeFaceDetector`)."""

    embedder: Any = None
    segmenter: Any = None
    second_detector: Any = None

    @property
    def versions(self) -> dict[str, str]:
        return {name: str(getattr(model, "version", type(model).__name__))
                for name, model in (("embedding", self.embedder), ("segmentation", self.segmenter),
                                    ("second_detector", self.second_detector)) if model is not None}


class Lookout:
    """What one stream of frames shows besides the scored faces, gathered while scoring
    (:func:`score_frames`): aligned face chips for the persons' identities, the person region no
    face explains, and the faces the second detector finds that MTCNN did not.

    Chips are kept for every face of every ``chip_every``-th frame and for every face that is
    where no face was the frame before (a track's first), so that every track has a few to choose
    from (:func:`highlights.stages.persons.faces_to_embed`); at most ``chip_limit`` (67 KB each).
    They are pixels of faces, kept in memory only, and dropped with the lookout.

    The person model's mask of a frame is used again, with the frame's own face boxes, for up to
    ``mask_reuse`` frames after it while the picture stays the same: the same number of faces,
    each where one was (IoU >= 0.3), and no cell of the frame's thumbnail changed by more than
    ``mask_change`` gray levels (the face follower's test on the frame's thumbnail with its
    brightness removed, :func:`highlights.models.detection.picture_change`). Someone coming in by
    a shoulder changes the picture, so the model looks again at once. On the 45-minute webcam
    lesson of ``bench/lesson.py`` the model ran on 1,548 of 2,645 frames (issue 25, 19 -> 12
    CPU-s); the tuning lessons of ``bench/persons.py`` kept their figures (child recall 0.852 ->
    0.851, one second), but on its report lessons one pick moved from beside a parent's shoulder
    to beside a half face: so it is off by default (``mask_reuse`` 0) until the body rule is
    measured with it."""

    def __init__(self, people: PeopleModels, *, chip_every: int = 5, chip_limit: int = 3000,
                 body_every: int = 1, second_min_score: float = 0.5, mask_reuse: int = 0,
                 mask_change: float = 12.0) -> None:
        self.people = people
        self.chip_every = max(1, chip_every)
        self.chip_limit = chip_limit
        self.body_every = max(1, body_every)
        self.second_min_score = second_min_score
        self.mask_reuse = max(0, mask_reuse)
        self.mask_change = mask_change
        self.chips: dict[tuple[int, int], np.ndarray] = {}
        self._previous: np.ndarray = np.zeros((0, 4))
        self._seen = 0
        self._mask: tuple[np.ndarray, np.ndarray, np.ndarray, tuple] | None = None  # prob, boxes, thumbnail, shape
        self._mask_uses = 0
        self.masks_computed = 0
        self.masks_reused = 0

    def more_faces(self, images: Sequence[np.ndarray], detections: Sequence[Detections]) -> list[Detections]:
        """``detections`` with the second detector's faces that none of MTCNN's covers, mapped to
        MTCNN's framing (the face models were trained on its crops), its score as ``det_prob``.

        Covered: an IoU of 0.3 with one of MTCNN's, or half the box inside one. BlazeFace's box of
        a face's middle (eyes to mouth) inside MTCNN's box of the whole face has an IoU of about
        0.25 with it, yet it is the same face, and as a second face it would keep that person
        apart from themselves (never two faces of one person in a frame)."""
        detector = self.people.second_detector
        if detector is None:
            return list(detections)
        from highlights.core.boxes import box_cover, box_iou

        out = []
        seconds = detector.detect_mtcnn_like_batch(images, min_score=self.second_min_score)  # one pass per batch
        for (boxes, scores), found in zip(seconds, detections):
            if len(found.boxes):  # each of the second's boxes against all of MTCNN's at once
                covered = (box_iou(boxes, found.boxes).max(axis=1) >= 0.3) | (box_cover(boxes, found.boxes).max(axis=1) >= 0.5)
                keep = np.flatnonzero(~covered)
            else:
                keep = np.arange(len(boxes))
            if len(keep):
                found = Detections(np.concatenate([np.asarray(found.boxes, np.float32).reshape(-1, 4), boxes[keep]]),
                                   np.concatenate([np.asarray(found.probs, np.float32), scores[keep]]))
            out.append(found)
        return out

    def look(self, frame: SampledFrame, faces: Sequence[FaceScore]) -> dict[str, float]:
        """Keep the frame's chips where due; the body columns of its rows."""
        from highlights.stages.persons import NOT_MEASURED, unexplained_body

        index = int(frame.ref.index)
        boxes = np.array([face.box for face in faces], dtype=float).reshape(-1, 4)
        embedder = self.people.embedder
        if embedder is not None and len(boxes) and len(self.chips) < self.chip_limit:
            periodic = self._seen % self.chip_every == 0
            new = [k for k in range(len(boxes))
                   if not len(self._previous) or box_iou(boxes[k:k + 1], self._previous).max() < 0.3]
            wanted = list(range(len(boxes))) if periodic else new
            if wanted:
                for k, chip in zip(wanted, embedder.chips(frame.image, boxes[wanted])):
                    self.chips[(index, faces[k].face)] = chip
        self._previous = boxes
        self._seen += 1
        segmenter = self.people.segmenter
        if segmenter is None or (self._seen - 1) % self.body_every:
            return dict(NOT_MEASURED)
        prob = self._reusable_mask(frame.image, boxes)
        if prob is None:
            prob = segmenter.mask(frame.image)
            self._mask = (prob, boxes, thumbnail(frame.image), frame.image.shape)
            self._mask_uses = 0
            self.masks_computed += 1
        else:
            self._mask_uses += 1
            self.masks_reused += 1
        return unexplained_body(prob, boxes, frame.image.shape[:2]).columns()

    def _reusable_mask(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray | None:
        """The last mask, where this frame shows the same picture (see the class)."""
        if self._mask is None or self._mask_uses >= self.mask_reuse:
            return None
        prob, before, thumb, shape = self._mask
        if image.shape != shape or len(boxes) != len(before):
            return None
        if len(boxes) and (box_iou(boxes, before).max(axis=1) < 0.3).any():
            return None
        return prob if picture_change(thumbnail(image), thumb) <= self.mask_change else None


class FaceScorer:
    """Detector plus the smile and child/adult models; turns images into :class:`FaceScore` lists.

    ``None`` for any part means the shipped default: ``FaceDetector()`` with the measured
    :class:`DetectionOptions`, and the weights in ``highlights/models/weights`` (checksummed;
    a missing or corrupt file raises :class:`~highlights.models.face_cnn.WeightsError`).
    """

    def __init__(
        self,
        detector: FaceDetector | None = None,
        smile_model: FaceModel | None = None,
        age_model: FaceModel | None = None,
        people: PeopleModels | None = None,
    ) -> None:
        smile_model = smile_model if smile_model is not None else load_face_model("smile")
        age_model = age_model if age_model is not None else load_face_model("age")
        for model, task in ((smile_model, "smile"), (age_model, "age")):
            if model.task != task:
                raise ValueError(f"{task}_model is a {model.task!r} model ({model.path})")
        self.detector = detector if detector is not None else FaceDetector()
        self.device = getattr(self.detector, "device", torch.device("cpu"))
        # Copies made to run (batch norms folded, on the detector's device): the caller's models
        # stay as they were.
        self.smile_model = smile_model.folded(self.device)
        self.age_model = age_model.folded(self.device)
        self.people = people

    @property
    def options(self) -> DetectionOptions:
        return self.detector.options

    @property
    def versions(self) -> dict[str, str]:
        """What produced the scores, for caching and the run record."""
        return {
            "detector": self.detector.version,
            "smile": self.smile_model.version,
            "age": self.age_model.version,
            **(self.people.versions if getattr(self, "people", None) is not None else {}),
        }

    def lookout(self, **options: Any) -> Lookout | None:
        """A :class:`Lookout` for one stream of frames (None: no people models)."""
        people = getattr(self, "people", None)
        return Lookout(people, **options) if people is not None else None

    def follower(self) -> FaceFollower | None:
        """A :class:`FaceFollower` for one stream of frames (None: the detector cannot follow,
        or ``full_every`` is 1)."""
        if self.options.full_every <= 1 or not hasattr(self.detector, "refine"):
            return None
        return FaceFollower(self.detector)

    def score_images(
        self,
        images: Sequence[np.ndarray],
        follower: FaceFollower | None = None,
        keys: Sequence[tuple] | None = None,
    ) -> list[list[FaceScore]]:
        """Faces in each RGB uint8 image, largest first (an empty list where there is none).

        Without ``follower``, same-size images are detected in one MTCNN batch; with one, the
        images are frames of one stream in order (``keys``: see :meth:`FaceFollower.detect`).
        The crops of all images go through the two models together.
        """
        if follower is not None:
            detections = follower.detect(images, keys)
        else:
            detections = self.detect(images)
        return self.score_detections(images, detections)

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Faces in each image without following a stream: MTCNN, then the faces cut by the
        frame's edge that it missed (:attr:`DetectionOptions.edge_search`)."""
        found = self.detector.detect(images)
        with_edges = getattr(self.detector, "with_edge_faces", None)
        return [with_edges(image, f) for image, f in zip(images, found)] if callable(with_edges) else found

    def score_detections(self, images: Sequence[np.ndarray], detections: Sequence[Detections]) -> list[list[FaceScore]]:
        """The per-face models and crop figures for faces already found in ``images``."""
        inputs, crops, owners = [], [], []
        for index, (image, found) in enumerate(zip(images, detections)):
            for face, (box, prob) in enumerate(zip(found.boxes, found.probs)):
                gray = to_gray(crop_square(np.asarray(image), tuple(box)))
                inputs.append(normalise_face(gray))
                crops.append(resize_face(gray))
                owners.append((index, face, tuple(float(v) for v in box), float(prob)))
        smile, child = self._probabilities(inputs)
        results: list[list[FaceScore]] = [[] for _ in images]
        for k, (index, face, box, prob) in enumerate(owners):
            sharpness, brightness = crop_quality(np.shape(images[index]), box, crops[k])
            child_prob = float(child[k])
            results[index].append(
                FaceScore(
                    face=face,
                    box=box,
                    det_prob=prob,
                    child_prob=child_prob,
                    smile_prob=float(smile[k]),
                    is_child=child_prob >= self.age_model.threshold,
                    sharpness=sharpness,
                    brightness=brightness,
                    crop_hash=_crop_hash(crops[k]),
                )
            )
        return results

    def _probabilities(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if not inputs:
            return np.zeros(0), np.zeros(0)
        smile, child = [], []
        for start in range(0, len(inputs), MODEL_BATCH):
            batch = to_tensor_batch(inputs[start : start + MODEL_BATCH]).to(self.device)
            with torch.inference_mode():
                smile.append(self.smile_model.probabilities(batch).cpu().numpy())
                child.append(self.age_model.probabilities(batch).cpu().numpy())
        return np.concatenate(smile), np.concatenate(child)


def _rows(frame: SampledFrame, faces: list[FaceScore], extra: dict[str, float] | None = None) -> Iterator[dict]:
    common = {**frame.ref.to_record(), **(extra or {})}
    if not faces:
        yield {**common, **NO_FACE}
        return
    for score in faces:
        x1, y1, x2, y2 = score.box
        yield {
            **common, "face": score.face, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
            "det_prob": score.det_prob, "child_prob": score.child_prob,
            "smile_prob": score.smile_prob, "is_child": score.is_child,
            "sharpness": score.sharpness, "brightness": score.brightness,
            "crop_hash": score.crop_hash,
        }  # fmt: skip


class KeptFrames:
    """The frames most likely to be picked for the GIF, kept while scoring so that the GIF stage
    need not decode them again: the ``limit`` frames with the best-smiling child face (each
    frame's highest ``smile_prob`` among its ``is_child`` faces). Memory is bounded by ``limit``
    frames whatever the lesson's length (the job's: :data:`highlights.lesson.graph.KEPT_FRAMES`); a pick
    that is not here is read from its recording (:meth:`get` returns None).
    """

    def __init__(self, limit: int) -> None:
        import heapq

        self._heapq = heapq
        self.limit = limit
        self._heap: list[tuple[float, int, int]] = []  # (smile, frame index, tie-break), worst first
        self._images: dict[int, np.ndarray] = {}
        self._count = 0

    def offer(self, frame: SampledFrame, faces: Sequence[FaceScore]) -> None:
        smiles = [face.smile_prob for face in faces if face.is_child]
        if not smiles or self.limit <= 0:
            return
        entry = (max(smiles), int(frame.ref.index), self._count)
        self._count += 1
        if len(self._heap) < self.limit:
            self._heapq.heappush(self._heap, entry)
        elif entry > self._heap[0]:
            dropped = self._heapq.heapreplace(self._heap, entry)
            self._images.pop(dropped[1], None)
        else:
            return
        self._images[int(frame.ref.index)] = frame.image

    def get(self, index: int) -> np.ndarray | None:
        """The kept image of sampled frame ``index`` (None if it was not kept)."""
        return self._images.get(int(index))

    def __len__(self) -> int:
        return len(self._images)


def score_frames(
    frames: Iterable[SampledFrame],
    scorer: FaceScorer | None = None,
    *,
    batch_size: int = 16,
    progress: Callable[[int], object] | None = None,
    keep: KeptFrames | None = None,
    lookout: Lookout | None = None,
) -> FaceTable:
    """Score a stream of sampled frames into a :class:`~highlights.core.faces.FaceTable` (the
    scores stage's columns, :data:`~highlights.core.faces.SCORE_COLUMNS`).

    Frames are consumed ``batch_size`` at a time and their images dropped once scored, so memory
    stays bounded for a lesson of any length. ``progress`` is called with the number of frames
    just scored after each batch (``tqdm(...).update`` fits). Rows come in input order, faces
    largest first. ``keep`` is offered every scored frame (:class:`KeptFrames`); ``lookout``
    (:meth:`FaceScorer.lookout`) adds the second detector's faces, keeps face chips and measures
    the person region no face explains (the table then has the body columns).

    With :class:`FaceScorer`, the frames are one stream: its :meth:`FaceScorer.follower` finds
    the faces (the full detector every few frames and on change, O-net in between).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    scorer = scorer if scorer is not None else FaceScorer()
    follow = getattr(scorer, "follower", None)
    follower = follow() if callable(follow) else None
    rows: list[dict] = []
    batch: list[SampledFrame] = []
    # Faces are found in stream order (each frame's search starts from the boxes of the one
    # before), but the crops and the two models need only a batch's boxes: they run on a thread
    # of their own, one batch behind, so that they overlap with the next batch's detection on the
    # other core (torch ops release the GIL; with one torch thread each op runs in its caller).
    pipelined = follower is not None and callable(getattr(scorer, "score_detections", None))
    pool = ThreadPoolExecutor(1, thread_name_prefix="highlights-face-models") if pipelined else None
    pending: tuple[list[SampledFrame], Future] | None = None

    def finish(done: list[SampledFrame], scores: list[list[FaceScore]]) -> None:
        for frame, faces in zip(done, scores):
            rows.extend(_rows(frame, faces, lookout.look(frame, faces) if lookout is not None else None))
            if keep is not None:
                keep.offer(frame, faces)
        if progress is not None:
            progress(len(done))

    def flush() -> None:
        nonlocal pending
        current = list(batch)
        batch.clear()
        images = [frame.image for frame in current]
        if follower is None and lookout is None:
            finish(current, scorer.score_images(images))
            return
        keys = [(str(frame.ref.source), int(frame.ref.index)) for frame in current]
        if follower is not None:
            detections = follower.detect(images, keys)
        else:
            detections = (scorer.detect if hasattr(scorer, "detect") else scorer.detector.detect)(images)
        if lookout is not None:
            detections = lookout.more_faces(images, detections)
        if pool is None:
            finish(current, scorer.score_detections(images, detections))
            return
        future = pool.submit(scorer.score_detections, images, detections)
        if pending is not None:
            finish(pending[0], pending[1].result())
        pending = (current, future)

    try:
        for frame in frames:
            batch.append(frame)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        if pending is not None:
            finish(pending[0], pending[1].result())
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if lookout is not None:
        return FaceTable.from_records(rows, extra=BODY_COLUMNS)
    return FaceTable.from_records(rows)

