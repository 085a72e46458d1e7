"""Face detection with facenet-pytorch's MTCNN, batched, at a reduced detection resolution.

Detection cost is dominated by MTCNN's image pyramid, so frames can be shrunk to at most
``DetectionOptions.max_side`` pixels on their longer side before detection and the boxes are
mapped back to the original frame. The defaults come from ``bench/detection.py``. MTCNN's pass
itself is :func:`_mtcnn_detect`: facenet-pytorch's nets and arithmetic, with the resampling
read from one summed-area table per frame (``bench/mtcnn_pass.py`` compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from highlights.core.boxes import box_in_frame, box_iou
from highlights.models.preprocess import cut_padded

if TYPE_CHECKING:
    import torch
# torch (and the torchvision shim, which imports it) are imported where a detector is built or
# run: DetectionOptions is part of the settings, and loading the settings (`highlights timeline`,
# `highlights withdraw`) must not pay torch's 1-2 s import.


DEVICES = ("auto", "cpu", "cuda")
"""Values of ``DetectionOptions.device``."""
MIN_DETECTION_SIDE = 64
"""Smallest ``max_side`` accepted: below it a webcam face shrinks under MTCNN's 12 px window."""


@dataclass(frozen=True)
class DetectionOptions:
    """How MTCNN is run. The table below is from ``bench/detection.py`` (2026-11-22), frame by
    frame; since 2026-12-01 a stream of frames is followed (``full_every``) and the full detector
    runs at full resolution (``max_side`` 0); since 2026-12-02 MTCNN's pass is the detector's own
    (:func:`_mtcnn_detect`, the same faces in 1.4x (whole pyramid) to 2.1x (coarse refresh) less
    CPU than facenet's: the times below, taken with facenet's, are now lower).

    Recall is relative to full-resolution detection with min_face_size 20 (a face counts as
    found at IoU >= 0.5); times are CPU ms per frame with one torch thread on this project's
    2-core machine (two threads: about 0.75x the wall time), +-30% on a shared machine.

    ====================  ========  =======  ======  ======  ======  =======  ==============
    max_side / min_face   640x480   webcam   dim     office  street  photos   all (109 faces)
    ====================  ========  =======  ======  ======  ======  =======  ==============
    full / 20              (= 640)  48/48    18/18   1/1     30/30   8/8      100%
    640 / 20               73 ms    48/48    18/18   0/1     25/30   8/8      94%
    480 / 20 (old dflt)    50 ms    48/48    16/18   0/1     21/30   8/8      89%
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

    max_side: int = 0
    """Frames are downscaled so the longer side is at most this many pixels (0: never, the
    default since the whole pyramid runs on a minority of frames: on the 45-minute bench lesson
    338 of 2,660, with 320 coarse refreshes; see ``full_every``).

    Measured with ``bench/lesson.py`` (2026-12-01, followed stream, one torch thread): on the
    real clips, 480 found 75 of full resolution's 115 street faces and 73 of 77 stage faces;
    0 (full resolution) found 117 and 77, for the same CPU time on the 640x480 bench lesson
    (2.5-3.1 s for 140 frames, within the noise of the shared machine); 1080p frames cost about
    4x more (street clip: 10.8 vs 2.5 s for 21 frames). For HD cameras where only the nearest
    face matters, 480 is the cheaper setting the table below measures."""
    min_face_size: int = 20
    """Smallest face MTCNN looks for, in pixels of the downscaled frame."""
    min_probability: float = 0.90
    """Faces MTCNN is less sure of are dropped."""
    batch_size: int = 16
    """Same-size frames detected per MTCNN call (MTCNN needs one size per batch)."""
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    """MTCNN's P-, R- and O-net thresholds (its defaults)."""
    full_every: int = 5
    """In a stream of sampled frames (:class:`FaceFollower`), the full detector runs on every
    ``full_every``-th frame, on a scene change, after a gap and wherever a known face is lost;
    in between, MTCNN's last stage (O-net) re-finds each face of the frame before around its box.
    1: the full detector on every frame. Measured with ``bench/lesson.py`` (see the README)."""
    scene_change: float = 20.0
    """A frame whose 64x48 gray thumbnail differs (mean absolute difference, 0-255, after removing
    the overall brightness change) by more than this in any cell of a ``scene_grid`` grid from
    the frame of the last detection gets the full detector: someone came in or the camera moved.
    Half of it where the frame before showed nobody (a face coming back into an empty room
    changed a cell by 15-17 on the bench lesson; an empty room's noise is 1-3).

    Measured 2026-12-02 against full-resolution MTCNN on every frame of the 10-minute bench
    lesson and the real clips (841 faces), frames held in memory, one torch thread: this 4x4 test
    with the coarse refresh ran 75 full and 69 coarse detections on the lesson (144 full without
    the coarse refresh) and matched 838 faces, like the former default (3 short, on the
    two-person head-pose clip). An 8x8 grid at 16 with ``scene_mask`` matched all 841 and ran
    56 full detections, and on the 45-minute lesson it was 5% faster still (32.9 vs 34.7 s), but
    following a new face in the child's place without a fresh detection cost the plain
    evaluation lessons of ``bench/tracks.py`` child recall (0.834 -> 0.811) and GIF fill (1.000
    -> 0.963): so the mask stays off. An 8x8 grid without the mask fires on the child's own moves
    (45-minute lesson: 62.8 s)."""
    coarse_face_fraction: float = 0.15
    """A routine refresh (``full_every``) of a picture that has not changed runs only the
    pyramid levels for faces at least this fraction of the frame's shorter side (0: the whole
    pyramid every time): 72 px of a 640x480 frame, 40 px of a 480x270 one. A participant framed
    like a video call is 25-45% of the height, so a face that turns to the camera or comes in
    without changing the picture much is found by these levels; smaller ones wait for
    ``pyramid_every``. Measured 2026-12-02 on a 640x480 bench frame: the whole pyramid 64 ms,
    faces from 40 px 37 ms, from 80 px 25 ms; with the detector's own pass (:func:`_mtcnn_detect`,
    ``bench/mtcnn_pass.py``, same day, load 3.7) the whole pyramid 59 ms and faces from 72 px
    19 ms CPU, against 82 and 39 ms for facenet's ``MTCNN.detect`` interleaved with it; later
    that day P-net's pool as strided maxima and a faster resize (the same boxes) took the whole
    pyramid on lesson frames from 58.4 to 45.4 ms (``bench/mtcnn_pass.py``: 40 vs facenet's
    67 ms on the astronaut frames). Against
    full-resolution MTCNN on every frame of the bench lesson and the real clips (841 faces), a
    fixed 80 px and a fraction of 0.2 missed 6 and 8 faces of the 480x270 two-person head-pose
    clip (a head turning to the camera, 68-81 px), 0.15 none, hence 0.15 of the frame rather than
    a fixed size."""
    pyramid_every: int = 15
    """The whole pyramid (down to ``min_face_size``) runs at least every this many frames, so a
    small face that came in quietly is found within that many seconds at 1 frame/s."""
    scene_coarse: bool = False
    """On a scene change, run only the pyramid's coarse levels (``coarse_face_fraction``) and re-find
    the followed faces with O-net (as the routine refresh does), instead of the whole pyramid; the
    whole pyramid still runs where a followed face is not found again and every
    ``pyramid_every`` frames. Off by default. Measured 2026-12-07 (issue 25) on the 45-minute
    webcam lesson of ``bench/lesson.py``: the whole pyramid 920 -> 360 times, MTCNN ~54 -> ~41
    CPU-s (the follower's detector calls, frames in memory), 4,930 instead of 4,929 of
    full-resolution MTCNN's 4,972 faces. But on the report lessons of ``bench/persons.py`` the
    figures moved both ways: child recall 0.737 -> 0.840 (persons) and 0.791 -> 0.794 (webcam),
    yet a webcam pick beside a parent's half face (0 before; precision 1.000 -> 0.963) and larger
    presence errors on the plain lessons (0.002 -> 0.007). Seeding R-net and O-net with the
    followed boxes (and BlazeFace's, which added nothing: 565 vs 568 such passes, the same
    faces) instead cost child recall (persons 0.737 -> 0.734, webcam 0.791 -> 0.780) and GIF fill
    (0.944 -> 0.889). See ``docs/benchmarks-log.md``."""
    scene_grid: int = 4
    """The grid :attr:`scene_change` is judged on (``scene_grid`` x ``scene_grid`` cells)."""
    scene_mask: bool = False
    """Leave the followed faces' own surroundings out of the scene-change test (see
    :func:`_face_territory`): a child who moves, or a new face in the child's place, is then
    followed by O-net without the full detector. Off by default: see :attr:`scene_change`."""
    edge_search: float = 0.9
    """Faces cut by the frame's left or right edge, which MTCNN's first stage misses: squares of
    :attr:`edge_sizes` of the frame's height, :attr:`edge_shares` of them inside the frame,
    every :attr:`edge_step` of their size down each side edge, with black beyond the edge, are
    given to P-net (:attr:`edge_gate`), R-net (kept at its own threshold) and then O-net, as
    MTCNN's own stages, and a face O-net sees with this
    probability or more (0: no search) that no detected face overlaps is added
    (:meth:`FaceDetector.edge_faces`). A stream of frames is searched wherever the detector
    looked again (:class:`FaceFollower`), and O-net's follow (:meth:`FaceDetector.refine`) gives
    a square past the left or right edge black there too, so a face found is followed like any
    other (cut at the edge and stretched, as MTCNN cuts it, O-net dropped it).

    Why: MTCNN rejects a face a third to a half outside the frame in its first two stages; with
    a black margin that keeps the face's proportions R-net and O-net see it. On the tuning
    lessons of ``bench/persons.py``, given the student's true box, O-net said 0.9 or more for 52%
    of the edge faces MTCNN missed and for 0.4% of boxes of the same size on the wall; the search
    (seeds 20-22, 960 frames) added the student in 27 of 102 edge seconds, a parent's half face
    in 32 seconds and a sibling's in 2, and no box that was not a face. The whole job, stop 31 ->
    this: persons tuning child recall 0.907 -> 0.919 (edge seconds 0.53 -> 0.72), report 0.877
    -> 0.894, webcam report 0.851 -> 0.867; parents' half faces seen 0.21 -> 0.46 (report 0.09 ->
    0.34); but on the webcam report lessons (a different child per segment, so a cut face cannot
    join the student, and the age model calls half faces adult about as often as not) child
    presence error 0.024 -> 0.038. See the README's Benchmarks."""
    edge_sizes: tuple[float, ...] = (0.28, 0.36, 0.45)
    """The face sizes the edge search tries, as shares of the frame's height (a participant's face
    framed like a video call is 25-45% of it)."""
    edge_shares: tuple[float, ...] = (0.4, 0.55, 0.7)
    """How much of each square the edge search places inside the frame."""
    edge_step: float = 0.15
    """The edge search's squares lie this share of their size apart down each edge."""
    edge_min_in_frame: float = 0.3
    """A face the edge search finds is kept where at least this share of its box is in the frame."""
    edge_gate: float = 0.05
    """The edge search's first stage, as P-net is MTCNN's: each square shrunk to 12 x 12 goes on
    to R-net only where P-net gives it this probability or more (0: every square goes to R-net).
    Why (issue 25): R-net on all ~300 squares of a frame was ~30 ms, most of the search; P-net on
    them is ~2 ms and passes about 2%. Offline, on the tuning lessons of ``bench/persons.py``
    (persons 20-26, 2,240 frames at one a second, each face found checked against the lessons'
    truth): stop 32's search found the student 48 times, a parent's half face 44, a sibling 3;
    with the gate at 0.05 54 / 45 / 3 (0.1: 53 / 42 / 3; 0.2: 51 / 41 / 3; none: 59 / 46 / 3),
    and nothing that was not a face at any setting. (The crops round differently from stop 32's:
    each side's strip is shrunk on its own and R-net sees the squares P-net passed cut at whole
    pixels; faces near O-net's threshold move both ways.) On the 45-minute webcam lesson of
    ``bench/lesson.py`` the search took 12.9 instead of 37.3 ms a run, the whole job 158.6
    instead of 184.4 CPU-s (see the README's Benchmarks)."""
    threads: int = 1
    """torch's threads in the worker (``torch.set_num_threads``; 0 leaves torch's default, one per
    core). One: the frame decoder runs on the other core, and on a busy machine two threads that
    wait for each other cost 4-10x the CPU time (``bench/lesson.py``, 45-minute lesson: the
    scores stage took 972 s with two threads, see the README). Batch workers run one per core."""
    device: str = "cpu"
    """Where detection and the per-face models run: ``cpu`` (the default, tested path), ``cuda``,
    or ``auto`` (CUDA where torch sees a device, else the CPU)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", str(self.device).strip().lower())  # "CPU" is the CPU
        if self.device not in DEVICES:  # before any lesson runs, not when the first detector is built
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        # Checked up front: a detection size of a few pixels finds no face in any lesson.
        if self.max_side != 0 and not MIN_DETECTION_SIDE <= self.max_side:
            raise ValueError(f"max_side must be 0 (never shrink) or at least {MIN_DETECTION_SIDE} px, not {self.max_side}")
        if not 12 <= self.min_face_size or (self.max_side and self.min_face_size > self.max_side):
            raise ValueError(f"min_face_size must be at least 12 px (MTCNN's window) and at most max_side, not {self.min_face_size}")
        if not 0 <= self.min_probability <= 1 or not all(0 < t <= 1 for t in self.thresholds):
            raise ValueError("min_probability and thresholds must lie between 0 and 1")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be 1 or more, not {self.batch_size}")
        if not 0 <= self.coarse_face_fraction <= 1:
            raise ValueError(f"coarse_face_fraction must lie between 0 (off) and 1, not {self.coarse_face_fraction}")
        if self.pyramid_every < 1 or self.scene_grid < 1:
            raise ValueError("pyramid_every and scene_grid must be 1 or more")
        if self.full_every < 1 or self.threads < 0 or self.scene_change < 0:
            raise ValueError("full_every must be 1 or more, threads and scene_change 0 or more")
        if not 0 <= self.edge_search <= 1 or not 0 < self.edge_min_in_frame <= 1:
            raise ValueError("edge_search must lie in [0, 1] (0: off) and edge_min_in_frame in (0, 1]")
        if not self.edge_sizes or not self.edge_shares or not all(0 < v <= 1 for v in (*self.edge_sizes, *self.edge_shares, self.edge_step)):
            raise ValueError("edge_sizes and edge_shares (not empty) and edge_step must lie in (0, 1]")
        if not 0 <= self.edge_gate < 1:
            raise ValueError(f"edge_gate must lie in [0, 1) (0: every square goes to R-net), not {self.edge_gate}")


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (an error where torch sees no CUDA device) or ``auto``."""
    import torch

    name = str(name).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA device (use 'auto' or 'cpu')")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {name!r}")
    return torch.device(name)


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
    """MTCNN, loaded once (its weights ship inside the facenet-pytorch wheel), on the device
    :attr:`DetectionOptions.device` names (the CPU by default).

    >>> detector = FaceDetector()
    >>> [faces] = detector.detect([rgb_image])  # doctest: +SKIP
    >>> faces.boxes, faces.probs  # doctest: +SKIP
    """

    def __init__(self, options: DetectionOptions | None = None) -> None:
        import torch

        from highlights.models import _torchvision_shim

        self.options = options or DetectionOptions()
        self.device = resolve_device(self.options.device)
        if self.options.threads > 0 and torch.get_num_threads() != self.options.threads:
            torch.set_num_threads(self.options.threads)
        _torchvision_shim.install()
        from facenet_pytorch import MTCNN

        self._mtcnn = MTCNN(
            keep_all=True,
            select_largest=True,
            min_face_size=self.options.min_face_size,
            thresholds=list(self.options.thresholds),
            post_process=False,
            device=self.device,
        )
        _use_strided_max_pools(self._mtcnn)

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
        # "sat": MTCNN's resampling read from a summed-area table (boxes equal facenet's to ~1e-4 px).
        version = f"mtcnn-facenet-pytorch-{_facenet_version()}-sat-{options.max_side}-{options.min_face_size}"
        if options.full_every > 1:  # how a stream is followed changes its boxes: a rerun rescores
            version += (f"-follow{options.full_every}c{options.coarse_face_fraction:g}p{options.pyramid_every}"
                        f"g{options.scene_grid}{'m' if options.scene_mask else ''}{options.scene_change:g}"
                        f"{'s' if options.scene_coarse else ''}")
        if options.edge_search > 0:  # the faces cut by the edge that the search adds
            sizes, shares = ("/".join(f"{v:g}" for v in group) for group in (options.edge_sizes, options.edge_shares))
            version += f"-edge{options.edge_search:g}:{sizes}:{shares}:{options.edge_step:g}:{options.edge_min_in_frame:g}"
            version += f":p{options.edge_gate:g}"  # P-net's gate; strips shrunk per side (stop 33)
        return version

    def detect(self, images: Sequence[np.ndarray], min_face_size: int | None = None) -> list[Detections]:
        """Faces in each RGB (or gray) uint8 image; any sizes, same-size images are batched together.
        ``min_face_size``: look only for faces at least this large (the pyramid's coarse levels;
        default :attr:`DetectionOptions.min_face_size`)."""
        smallest = max(self.options.min_face_size, int(min_face_size or 0))
        results: list[Detections | None] = [None] * len(images)
        shrunk = [self._shrink(_as_rgb(image)) for image in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, (small, _) in enumerate(shrunk):
            # MTCNN's image pyramid has no level for a picture smaller than the smallest face it
            # looks for (it fails inside torch.cat): such a frame has no detectable face.
            if min(small.shape[:2]) < smallest:
                continue
            by_shape.setdefault(small.shape, []).append(index)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.options.batch_size):
                chunk = indices[start : start + self.options.batch_size]
                found = _mtcnn_detect(self._mtcnn, [shrunk[i][0] for i in chunk], smallest)
                for i, (image_boxes, image_probs) in zip(chunk, found):
                    results[i] = self._to_detections(image_boxes, image_probs, shrunk[i][1])
        return [r if r is not None else Detections.empty() for r in results]

    def refine(self, image: np.ndarray, boxes: np.ndarray, rounds: int = 1) -> Detections:
        """The faces near ``boxes`` (x1, y1, x2, y2 in ``image``'s pixels) re-found by MTCNN's
        last stage alone: O-net on the square around each box, its box correction applied,
        ``rounds`` times (a face moves between sampled seconds). A box whose face O-net no
        longer sees (probability below ``min_probability``) is dropped. Largest face first."""
        import torch

        rgb = _as_rgb(image)
        height, width = rgb.shape[:2]
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        probs = np.zeros(len(boxes), np.float32)
        padded_sides = self.options.edge_search > 0
        for _ in range(rounds):
            if not len(boxes):
                break
            squares = _square(boxes)
            crops, keep = [], []
            for k, (x1, y1, x2, y2) in enumerate(squares):
                if padded_sides and (x1 < 0 or x2 > width):
                    # A face cut by the left or right edge, as the edge search saw it: with black
                    # beyond the edge it keeps its proportions (clipped and stretched, O-net drops it).
                    if _cuttable(squares[k], width, height)[0]:
                        crops.append(_square_crops(rgb, squares[k : k + 1], 48)[0])
                        keep.append(k)
                    continue
                # MTCNN's own cut (facenet's pad()): 1-based, clipped to the frame, then resized.
                x, y = max(int(x1), 1), max(int(y1), 1)
                ex, ey = min(int(x2), width), min(int(y2), height)
                if ex > x - 1 and ey > y - 1:
                    crops.append(cv2.resize(rgb[y - 1 : ey, x - 1 : ex], (48, 48), interpolation=cv2.INTER_AREA))
                    keep.append(k)
            if not keep:
                return Detections.empty()
            with torch.inference_mode():
                reg, _, prob = self._mtcnn.onet(_normalised(np.stack(crops).astype(np.float32), self.device))
                reg, prob = reg.cpu(), prob.cpu()
            squares = squares[keep]
            side = (squares[:, 2] - squares[:, 0] + 1)[:, None]
            boxes = squares + reg.numpy() * side
            probs = prob[:, 1].numpy()
            alive = probs >= self.options.thresholds[2]
            boxes, probs = boxes[alive], probs[alive]
        keep = probs >= self.options.min_probability
        return _largest_first(*_dedupe(boxes[keep], probs[keep]))

    def with_edge_faces(self, image: np.ndarray, found: Detections) -> Detections:
        """``found`` and the faces cut by the frame's edge that it lacks (:meth:`edge_faces`;
        ``found`` itself where :attr:`DetectionOptions.edge_search` is 0). Largest first."""
        if self.options.edge_search <= 0:
            return found
        more = self.edge_faces(image, found)
        if not len(more):
            return found
        return _largest_first(np.concatenate([np.asarray(found.boxes, np.float32).reshape(-1, 4), more.boxes]),
                              np.concatenate([np.asarray(found.probs, np.float32), more.probs]))

    def edge_faces(self, image: np.ndarray, found: Detections | None = None) -> Detections:
        """Faces cut by the left or right edge that ``found`` (the frame's detections) lacks:
        :attr:`DetectionOptions.edge_search`. Largest first."""
        import torch

        options = self.options
        rgb = _as_rgb(image)
        height, width = rgb.shape[:2]
        size = 12 if options.edge_gate > 0 else 24
        crops, squares = edge_crops(rgb, options.edge_sizes, options.edge_shares, options.edge_step, size=size)
        if not len(squares):
            return Detections.empty()
        if options.edge_gate > 0:  # P-net on each square, as MTCNN's first stage; R-net on those it passes
            with torch.inference_mode():
                prob = self._mtcnn.pnet(_normalised(crops.astype(np.float32), self.device))[1][:, 1].reshape(-1).cpu().numpy()
            squares = squares[(prob >= options.edge_gate) & _cuttable(squares, width, height)]
            if not len(squares):
                return Detections.empty()
            crops = _square_crops(rgb, squares, 24)
        boxes, probs = squares, np.zeros(len(squares), np.float32)
        for net, threshold in ((self._mtcnn.rnet, options.thresholds[1]), (self._mtcnn.onet, options.edge_search)):
            with torch.inference_mode():
                out = net(_normalised(crops.astype(np.float32), self.device))
            reg, prob = out[0].cpu().numpy(), out[-1][:, 1].cpu().numpy()
            alive = prob >= threshold
            side = (squares[:, 2] - squares[:, 0])[:, None]
            boxes, probs = (squares + reg * side)[alive], prob[alive]
            if not len(boxes):
                return Detections.empty()
            if net is self._mtcnn.rnet:  # O-net looks again at the squares around R-net's boxes
                squares = _square(boxes)
                squares = squares[_cuttable(squares, width, height)]
                if not len(squares):  # every box moved wholly out
                    return Detections.empty()
                crops = _square_crops(rgb, squares, 48)
        boxes, probs = _dedupe(boxes, probs)
        keep = box_in_frame(boxes, width, height) >= options.edge_min_in_frame
        if found is not None and len(found) and keep.any():
            keep &= box_iou(boxes, np.asarray(found.boxes, np.float32).reshape(-1, 4)).max(axis=1) < 0.3
        return _largest_first(boxes[keep], probs[keep])

    def _to_detections(self, boxes, probs, scale: float) -> Detections:
        if len(boxes) == 0:
            return Detections.empty()
        boxes = np.asarray(boxes, dtype=np.float32) / scale
        probs = np.asarray(probs, dtype=np.float32)
        keep = probs >= self.options.min_probability
        return Detections(boxes[keep], probs[keep])


def edge_crops(rgb: np.ndarray, sizes: Sequence[float], shares: Sequence[float], step: float = 0.15,
               size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """The squares :meth:`FaceDetector.edge_faces` tries, as ``size`` x ``size`` crops and their
    boxes (x1, y1, x2, y2, frame pixels): for each face size (a share of the frame's height) and
    each share of it inside the frame, down the left and the right edge every ``step`` of the
    size, from a tenth of it above the top to where 0.4 of it lies below the bottom; black beyond
    the edges. Per face size, one resize of each side's strip (the columns the squares reach,
    black-padded), then slices: a square's corner rounds to the small strip's pixel."""
    height, width = rgb.shape[:2]
    crops, squares = [], []
    for fraction in sizes:
        side = fraction * height
        scale, pad = size / side, int(np.ceil(side))
        reach = int(np.ceil(max(shares) * side)) + 2  # the columns inside the frame a square covers
        for left in (True, False):
            if reach >= width:  # a frame narrower than that: the squares reach past the other edge too
                strip, origin = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0), -pad
            else:
                strip = rgb[:, :reach] if left else rgb[:, width - reach :]
                strip = cv2.copyMakeBorder(strip, pad, pad, pad if left else 0, 0 if left else pad, cv2.BORDER_CONSTANT, value=0)
                origin = -pad if left else width - reach  # the frame's x at the strip's first column
            small = cv2.resize(strip, (int(round(strip.shape[1] * scale)), int(round(strip.shape[0] * scale))),
                               interpolation=cv2.INTER_AREA)
            for share in shares:
                x = -(1 - share) * side if left else width - share * side
                for y in np.arange(-0.1 * side, height - 0.6 * side, step * side):
                    sx, sy = int(round((x - origin) * scale)), int(round((y + pad) * scale))
                    crop = small[sy : sy + size, sx : sx + size]
                    if crop.shape[:2] == (size, size):
                        crops.append(crop)
                        squares.append((x, y, x + side, y + side))
    if not crops:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros((0, 4), np.float32)
    return np.stack(crops), np.array(squares, np.float32)


def _cuttable(squares: np.ndarray, width: int, height: int) -> np.ndarray:
    """Which of ``squares`` (x1, y1, x2, y2) :func:`_square_crops` can cut from a ``width`` x
    ``height`` frame: not empty at whole pixels and not wholly outside."""
    x1, y1, x2, y2 = np.asarray(squares).reshape(-1, 4).astype(int).T  # truncated, as _square_crops cuts
    return (x2 > x1) & (y2 > y1) & (x2 > 0) & (y2 > 0) & (x1 < width) & (y1 < height)


def _square_crops(rgb: np.ndarray, squares: np.ndarray, size: int) -> np.ndarray:
    """``(N, size, size, 3)``: each square of ``squares`` (x1, y1, x2, y2, each one
    :func:`_cuttable`) cut at whole pixels, black beyond the frame, and resized."""
    return np.stack([cv2.resize(cut_padded(rgb, int(x1), int(y1), int(x2), int(y2)), (size, size), interpolation=cv2.INTER_AREA)
                     for x1, y1, x2, y2 in squares])


class _SummedArea:
    """One image's summed-area table, from which MTCNN's resampling (torch's ``area``
    interpolation, i.e. adaptive average pooling: output cell ``i`` of ``n`` averages input
    rows ``floor(i*H/n)`` to ``ceil((i+1)*H/n)``) is read for every pyramid level and every
    crop with a few lookups per pixel, instead of pooling the whole float frame again per level
    and each crop one by one. The sums are exact integers and are divided as torch divides
    (by the window's height, then its width, in float32): the same numbers as facenet's
    ``imresample``."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.height, self.width = rgb.shape[:2]
        # int32 holds the sums of any frame up to 8 megapixels; larger ones sum in float64 (exact).
        depth = cv2.CV_32S if self.height * self.width * 255 < 2**31 else cv2.CV_64F
        self.table = cv2.integral(rgb, sdepth=depth).reshape(self.height + 1, self.width + 1, -1)

    @staticmethod
    def _edges(start: np.ndarray, length: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        i = np.arange(n)
        lo = (i[None, :] * length[:, None]) // n
        hi = -((-(i[None, :] + 1) * length[:, None]) // n)
        return start[:, None] + lo, start[:, None] + hi

    def windows(self, y0, y1, x0, x1, size: int) -> np.ndarray:
        """``(N, size, size, C)`` float32: rows ``y0[k]:y1[k]``, columns ``x0[k]:x1[k]`` of
        the image (each at least one pixel), each resampled to ``size`` x ``size``."""
        y0, y1, x0, x1 = (np.asarray(v, np.int64).reshape(-1) for v in (y0, y1, x0, x1))
        r0, r1 = self._edges(y0, y1 - y0, size)
        c0, c1 = self._edges(x0, x1 - x0, size)
        t = self.table
        sums = (t[r1[:, :, None], c1[:, None, :]] - t[r0[:, :, None], c1[:, None, :]]
                - t[r1[:, :, None], c0[:, None, :]] + t[r0[:, :, None], c0[:, None, :]])
        sums = sums.astype(np.float32)
        sums /= (r1 - r0).astype(np.float32)[:, :, None, None]
        sums /= (c1 - c0).astype(np.float32)[:, None, :, None]
        return sums

    def resized(self, out_h: int, out_w: int) -> np.ndarray:
        """The whole image resampled to ``out_h`` x ``out_w``, ``(out_h, out_w, C)`` float32
        (rows first, then columns: the window sums are separable)."""
        zero = np.zeros(1, np.int64)
        [r0], [r1] = self._edges(zero, zero + self.height, out_h)
        [c0], [c1] = self._edges(zero, zero + self.width, out_w)
        rows = self.table[r1] - self.table[r0]
        # np.take rather than rows[:, c1] (the same numbers; 0.9 instead of 5 ms on a 640x480
        # frame's largest level), and the divisions over (rows, columns x channels) so that
        # the inner loop runs along memory (0.15 instead of 0.8 ms).
        sums = (np.take(rows, c1, axis=1) - np.take(rows, c0, axis=1)).astype(np.float32)
        flat = sums.reshape(out_h, -1)
        flat /= (r1 - r0).astype(np.float32)[:, None]
        flat /= np.repeat((c1 - c0).astype(np.float32), sums.shape[2])[None, :]
        return sums


def _use_strided_max_pools(mtcnn) -> None:
    """Swap P-net's ``MaxPool2d(2, 2, ceil_mode=True)`` for
    :class:`~highlights.models.pooling.StridedMaxPool` (the same outputs, bit for bit; see
    :func:`~highlights.models.pooling.strided_max_pool` for why only P-net's)."""
    import torch

    from highlights.models.pooling import StridedMaxPool

    for name, layer in list(mtcnn.pnet.named_children()):
        if isinstance(layer, torch.nn.MaxPool2d):
            kernel, stride = layer.kernel_size, layer.stride
            plain = isinstance(kernel, int) and isinstance(stride, int) and not layer.padding and layer.dilation == 1
            if plain and layer.ceil_mode:
                setattr(mtcnn.pnet, name, StridedMaxPool(kernel, stride))


def _normalised(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """NHWC float32 pixels (a fresh array: scaled in place, as facenet scales them, in float32)
    as MTCNN's NCHW input."""
    import torch

    pixels -= 127.5
    pixels *= 0.0078125
    # Left in channels-last memory, as facenet's own (a permuted HWC frame): the nets' convolutions
    # run 1.3-3x faster on it than on NCHW memory here.
    return torch.from_numpy(pixels).to(device).permute(0, 3, 1, 2)


def _mtcnn_detect(mtcnn, images: Sequence[np.ndarray], min_face_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """facenet-pytorch's ``detect_face`` (P-net over the image pyramid, R-net, O-net, with its
    box regression, NMS and thresholds) for same-size RGB uint8 images, without the landmarks,
    returning per image ``(boxes (N, 4), probs (N,))`` largest face first as ``MTCNN.detect``
    with ``select_largest``. The arithmetic is facenet's; the resampling is read from one
    :class:`_SummedArea` per image (the same numbers) and the crops of each stage are cut in
    one go. Same boxes as ``mtcnn.detect`` (``tests/models/test_detection.py`` compares them)."""
    import torch
    from facenet_pytorch.models.utils import detect_face as facenet

    batched_nms = facenet.batched_nms  # torchvision's, or the shim's where torchvision is absent
    device = next(mtcnn.pnet.parameters()).device
    thresholds, factor = mtcnn.thresholds, mtcnn.factor
    tables = [_SummedArea(image) for image in images]
    height, width = images[0].shape[:2]
    scale = 12.0 / min_face_size
    scales, side = [], min(height, width) * scale
    while side >= 12:
        scales.append(scale)
        scale, side = scale * factor, side * factor

    empty = [(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)) for _ in images]
    with torch.inference_mode():
        boxes, image_inds = [], []
        for scale in scales:
            size = (int(height * scale + 1), int(width * scale + 1))
            level = tables[0].resized(*size)[None] if len(tables) == 1 else np.stack([t.resized(*size) for t in tables])
            reg, probs = mtcnn.pnet(_normalised(level, device))
            found, inds = facenet.generateBoundingBox(reg, probs[:, 1], scale, thresholds[0])
            pick = batched_nms(found[:, :4], found[:, 4], inds, 0.5)
            boxes.append(found[pick])
            image_inds.append(inds[pick])
        boxes, image_inds = torch.cat(boxes), torch.cat(image_inds)
        pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes, image_inds = boxes[pick], image_inds[pick]
        if not len(boxes):
            return empty
        regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                             boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], dim=1)
        boxes = facenet.rerec(boxes)

        def crops(boxes: torch.Tensor, image_inds: torch.Tensor, size: int):
            """The crops facenet's pad() cuts (1-based, clipped), resampled to ``size``."""
            y, ey, x, ex = facenet.pad(boxes, width, height)
            ok = (ey > y - 1) & (ex > x - 1)
            keep = np.flatnonzero(ok)
            inds = image_inds.cpu().numpy()[keep]
            pixels = np.zeros((len(keep), size, size, 3), np.float32)
            for index, table in enumerate(tables):
                mine = np.flatnonzero(inds == index)
                if len(mine):
                    k = keep[mine]
                    pixels[mine] = table.windows(y[k] - 1, ey[k], x[k] - 1, ex[k], size)
            keep_t = torch.as_tensor(keep, device=boxes.device)
            return _normalised(pixels, device), boxes[keep_t], image_inds[keep_t]

        def run(net, data: torch.Tensor):
            """``net`` over the crops in facenet's chunks of 512 (its fixed_batch_process)."""
            out = [net(data[i : i + 512]) for i in range(0, len(data), 512)]
            return tuple(torch.cat(v) for v in zip(*out))

        # R-net
        data, boxes, image_inds = crops(boxes, image_inds, 24)
        if not len(data):
            return empty
        reg, probs = run(mtcnn.rnet, data)
        score = probs[:, 1]
        passed = score > thresholds[1]
        boxes = torch.cat((boxes[passed, :4], score[passed].unsqueeze(1)), dim=1)
        image_inds, reg = image_inds[passed], reg[passed]
        pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes = facenet.rerec(facenet.bbreg(boxes[pick], reg[pick]))
        image_inds = image_inds[pick]
        if not len(boxes):
            return empty
        # O-net
        data, boxes, image_inds = crops(boxes, image_inds, 48)
        if not len(data):
            return empty
        reg, _, probs = run(mtcnn.onet, data)
        score = probs[:, 1]
        passed = score > thresholds[2]
        boxes = torch.cat((boxes[passed, :4], score[passed].unsqueeze(1)), dim=1)
        image_inds = image_inds[passed]
        boxes = facenet.bbreg(boxes, reg[passed])
        pick = facenet.batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
        boxes, image_inds = boxes[pick].cpu().numpy(), image_inds[pick].cpu().numpy()
    results = []
    for index in range(len(images)):
        box = boxes[image_inds == index]
        order = np.argsort((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]))[::-1]  # as MTCNN.detect
        results.append((box[order, :4], box[order, 4]))
    return results


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box as the square with its centre and its longer side (facenet's rerec())."""
    boxes = np.array(boxes, np.float32)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1, y1 = boxes[:, 0] + w * 0.5 - side * 0.5, boxes[:, 1] + h * 0.5 - side * 0.5
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def _largest_first(boxes: np.ndarray, probs: np.ndarray) -> Detections:
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable")
    return Detections(boxes[order].astype(np.float32), probs[order].astype(np.float32))


def _dedupe(boxes: np.ndarray, probs: np.ndarray, iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Two followed boxes that converged on one face become one (the surer)."""
    overlap = box_iou(boxes, boxes)
    kept: list[int] = []
    for k in np.argsort(-probs, kind="stable"):
        if all(overlap[k, j] < iou for j in kept):
            kept.append(int(k))
    kept.sort()
    return boxes[kept], probs[kept]


def thumbnail(image: np.ndarray) -> np.ndarray:
    """64x48 gray, float32, brightness removed: what scene changes are judged on (the follower's
    test, and whether the scoring stage's person mask still fits a frame).

    Tried for issue 25 and dropped: the contrast normalised too (a dimming no longer trips it):
    on the 45-minute webcam lesson it ran the whole pyramid 852 instead of 920 times at a
    threshold of 25, but on the tuning lessons of ``bench/persons.py`` it cost child recall
    (0.852 -> 0.839) and put a pick beside a parent's half face into a GIF."""
    rgb = _as_rgb(image)
    gray = cv2.cvtColor(cv2.resize(rgb, (64, 48), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    gray = gray.astype(np.float32)
    return gray - gray.mean()


class FaceFollower:
    """Faces in a stream of sampled frames, in order: the full detector where the picture
    changed, MTCNN's O-net around the known faces in between, and a routine refresh every
    ``options.full_every`` frames (see :class:`DetectionOptions`).

    The full detector (the whole pyramid) runs on a frame when: it is the first; the frame does
    not follow the one before (``key`` says which recording and sample index it is: a
    disconnect, another file); its size changed; some cell of its thumbnail outside the followed
    faces' surroundings changed by more than ``options.scene_change`` since the last detection;
    a face of the frame before was not re-found; or ``pyramid_every`` frames have passed since
    the whole pyramid last ran. Otherwise, every ``full_every`` frames, the routine refresh runs
    only the pyramid's coarse levels (faces of ``coarse_face_fraction`` of the frame and more) and keeps
    the followed faces. So a face of participant size that appears is found at the latest
    ``full_every - 1`` frames later, a small one ``pyramid_every - 1`` frames later, where the
    rest of the picture stays the same; where it changes, at once.
    """

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self.options = detector.options
        self._last: Detections | None = None
        self._reference: np.ndarray | None = None
        self._since_full = 0
        self._since_pyramid = 0
        self._key: tuple | None = None
        self._shape: tuple | None = None
        self._image: np.ndarray | None = None
        self.identical = 0
        self.full_detections = 0
        self.coarse_detections = 0
        self.scene_coarse_detections = 0
        self.followed = 0
        self.edge_found = 0

    def detect(self, images: Sequence[np.ndarray], keys: Sequence[tuple] | None = None) -> list[Detections]:
        """Faces in each image (in stream order); ``keys``: (recording, sample index) of each."""
        results = []
        for k, image in enumerate(images):
            key = keys[k] if keys is not None else None
            results.append(self._one(image, key))
        return results

    def _one(self, image: np.ndarray, key: tuple | None) -> Detections:
        looked = self._detections_run
        found = self._detect(image, key)
        if self.options.edge_search > 0 and self._detections_run > looked:
            # Where the detector looked again, so does the edge search; a face it found is then
            # followed by refine() on the black-padded square like any other.
            with_edges = self.detector.with_edge_faces(image, found)
            self.edge_found += len(with_edges) - len(found)
            found = self._last = with_edges
        return found

    @property
    def _detections_run(self) -> int:
        """How often the detector itself looked (whole pyramid or coarse levels), not O-net alone."""
        return self.full_detections + self.coarse_detections + self.scene_coarse_detections

    def _detect(self, image: np.ndarray, key: tuple | None) -> Detections:
        previous, self._image = self._image, image
        if (
            previous is not None and self._last is not None and self._key is not None and key is not None
            and key[0] == self._key[0] and key[1] == self._key[1] + 1 and np.array_equal(previous, image)
        ):  # the same picture as the second before (a frozen camera, a low frame rate): the same faces
            self._key = key
            self.identical += 1
            return self._last
        thumb = thumbnail(image)
        same_stream = (
            self._last is not None
            and self._reference is not None
            and thumb.shape == self._reference.shape
            and np.shape(image)[:2] == self._shape
            and (key is None or self._key is None or (key[0] == self._key[0] and key[1] == self._key[1] + 1))
        )
        unchanged = same_stream and self._changed(thumb, np.shape(image)) <= self._threshold()
        due = self._since_full >= max(self.options.full_every, 1)
        self._key = key
        if unchanged and not due:
            if len(self._last):
                found = self.detector.refine(image, self._last.boxes)
                if len(found) == len(self._last):
                    self._last, self._since_full, self._since_pyramid = found, self._since_full + 1, self._since_pyramid + 1
                    self.followed += 1
                    return found
            else:  # nobody in the picture, and it has not changed
                self._since_full, self._since_pyramid = self._since_full + 1, self._since_pyramid + 1
                self.followed += 1
                return self._last
        coarse = int(self.options.coarse_face_fraction * min(np.shape(image)[:2]))
        coarse = coarse if coarse > self.options.min_face_size else 0  # not coarser: the whole pyramid
        coarse_ok = coarse and self._since_pyramid < self.options.pyramid_every
        if coarse_ok and ((unchanged and due) or (same_stream and not unchanged and self.options.scene_coarse)):
            # A routine refresh of an unchanged picture (or, with ``scene_coarse``, a scene change):
            # faces coming in or turning to the camera at participant size are found by the
            # pyramid's coarse levels alone; smaller ones wait for the next whole pyramid. The
            # faces followed so far are kept by O-net.
            [found] = self.detector.detect([image], min_face_size=coarse)
            if len(self._last):
                kept = self.detector.refine(image, self._last.boxes)
                found = _largest_first(*_dedupe(np.concatenate([found.boxes, kept.boxes]), np.concatenate([found.probs, kept.probs])))
            if unchanged or _all_found(self._last.boxes, found.boxes):
                if unchanged:
                    self.coarse_detections += 1
                else:
                    self.scene_coarse_detections += 1
                self._last, self._reference, self._since_full, self._since_pyramid = found, thumb, 1, self._since_pyramid + 1
                return found
            # a scene change and a followed face not found again: the whole pyramid below
        [found] = self.detector.detect([image])
        self.full_detections += 1
        self._last, self._reference, self._since_full, self._since_pyramid = found, thumb, 1, 1
        self._shape = np.shape(image)[:2]
        return found

    def _threshold(self) -> float:
        # An empty picture has nothing to follow and its noise is low (1-3 on the bench lesson):
        # a child coming back into it changed some cell by only 15-17 there, so half the threshold.
        empty = self._last is not None and len(self._last) == 0
        return self.options.scene_change / 2 if empty else self.options.scene_change

    def _changed(self, thumb: np.ndarray, image_shape: tuple[int, ...]) -> float:
        """How much the picture changed since the last full detection where no known face is:
        the largest cell change of a ``scene_grid`` grid, leaving out the cells a followed face
        and its head and shoulders may cover (:func:`_face_territory`)."""
        boxes = self._last.boxes if self._last is not None else np.zeros((0, 4), np.float32)
        mask = _face_territory(boxes, image_shape, self.options.scene_grid) if self.options.scene_mask else None
        return picture_change(thumb, self._reference, self.options.scene_grid, mask)


def _all_found(before: np.ndarray, now: np.ndarray, iou: float = 0.3) -> bool:
    """Whether every box of ``before`` overlaps one of ``now`` by ``iou`` or more."""
    before = np.asarray(before, np.float32).reshape(-1, 4)
    if not len(before):
        return True
    now = np.asarray(now, np.float32).reshape(-1, 4)
    return bool(len(now)) and bool((box_iou(before, now).max(axis=1) >= iou).all())


def _face_territory(boxes: np.ndarray, image_shape: tuple[int, ...], grid: int) -> np.ndarray:
    """Cells of a ``grid`` x ``grid`` grid over the picture that the followed faces' own movement
    may change: each box widened by half its width on both sides, from half its height above it
    to one and a half below (a head turns, leans, nods; shoulders and hands move under it). A
    face that comes in elsewhere changes cells outside this territory; one coming in right
    beside a known face reaches beyond it as well, since a face is as wide as the widening."""
    mask = np.zeros((grid, grid), bool)
    height, width = image_shape[:2]
    for x1, y1, x2, y2 in np.asarray(boxes, np.float32).reshape(-1, 4):
        w, h = x2 - x1, y2 - y1
        left, right = (x1 - 0.5 * w) / width, (x2 + 0.5 * w) / width
        top, bottom = (y1 - 0.5 * h) / height, (y2 + 1.5 * h) / height
        c0, c1 = max(0, int(np.floor(left * grid))), min(grid, int(np.ceil(right * grid)))
        r0, r1 = max(0, int(np.floor(top * grid))), min(grid, int(np.ceil(bottom * grid)))
        mask[r0:r1, c0:c1] = True
    return mask


def picture_change(a: np.ndarray, b: np.ndarray, grid: int = 4, skip: np.ndarray | None = None) -> float:
    """The largest mean absolute difference over the cells of a ``grid`` x ``grid`` grid
    (leaving out the cells where ``skip`` is true; 0 where every cell is skipped)."""
    diff = np.abs(a - b)
    h, w = diff.shape
    cells = diff[: h - h % grid, : w - w % grid].reshape(grid, h // grid, grid, w // grid).mean(axis=(1, 3))
    if skip is not None:
        cells = cells[~skip]
    return float(cells.max()) if cells.size else 0.0
