"""The lessons ``highlights run`` processed, as the labeller reads them: faces, frames, pixels.

A processed lesson is a folder ``OUT/<lesson_id>/`` with ``result.json`` and ``scores.csv``
(folders whose name starts with ``.`` hold the job's own files and are skipped). ``scores.csv``
names each frame's recording by file name and offset (``source``, ``offset_s``); the manifest
the lesson was run from maps those names back to the files, so the labeller reads pixels with
the pipeline's own reader (:func:`highlights.media.decode.iter_frames_at`, the function behind
:func:`~highlights.media.decode.read_frame_at`) and cuts faces with the crop recipe
(:func:`highlights.models.preprocess.crop_square` of the scores.csv box: the square the models
were given, before grayscale and CLAHE).

Frames are read in clusters: offsets of one recording less than :data:`CLUSTER_GAP_S` apart
share one seek and one forward decode, so a batch of 27 faces from 27 consecutive seconds costs
one seek, not 27 (a seek decodes from the keyframe before it: up to a whole GOP, ~10 s of
video for a webcam's 250-frame GOP). Decoded frames stay in a small LRU cache
(:data:`FRAME_CACHE_SIZE`), since the strip, a batch and its save ask for the same ones.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from highlights.core.frameref import FRAME_COLUMNS, FrameRef
from highlights.core.lesson import Recording, recording_of_frame
from highlights.inputs.manifest import read_manifest
from highlights.lesson.folder import read_result, read_scores
from highlights.media.container import RecordingError
from highlights.media.decode import iter_frames_at
from highlights.models.preprocess import crop_square
from highlights.stages.persons import PersonOptions, judge_lesson
from highlights.stages.tracks import TrackOptions

log = logging.getLogger(__name__)

CLUSTER_GAP_S = 20.0
"""Offsets of one recording closer than this are read in one decode pass (decoding 20 s of a
480p webcam picture costs about as much as one seek to a keyframe 10 s back)."""
FRAME_CACHE_SIZE = 96
"""Decoded frames kept (about 50 MB at 640x480): a batch's 27 and a strip's 27 with room."""


class LessonError(LookupError):
    """A lesson the labeller cannot use: unknown id, unreadable scores, recordings not found.
    The message names the lesson and the file, never personal data."""


@dataclass(frozen=True)
class Face:
    """One face of one sampled frame, as ``scores.csv`` has it: the frame (``ref``, the
    pipeline's :class:`~highlights.core.frameref.FrameRef`, shared by every face of that frame) and
    the face's own columns."""

    lesson_id: str
    ref: FrameRef
    face: int
    box: tuple[float, float, float, float]
    child_prob: float
    smile_prob: float
    is_child: bool
    judged_child: bool = False
    """The job's verdict on this face's person (:func:`highlights.stages.persons.judge_lesson`):
    what the GIF and the analytics went by, and the labeller's pre-label."""
    picture: bool = False
    """The face is a picture's (a poster, a photo on the wall): never offered for labelling."""

    @property
    def frame(self) -> int:
        """The sampled frame's index (``scores.csv``'s ``frame``)."""
        return self.ref.index

    @property
    def t(self) -> float:
        return self.ref.t

    @property
    def source(self) -> Path:
        """The student recording's file name, as ``scores.csv`` names it."""
        return self.ref.source

    @property
    def offset_s(self) -> float:
        return self.ref.offset_s

    @property
    def key(self) -> str:
        return f"{self.lesson_id}/{self.frame}/{self.face}"


class ProcessedLesson:
    """One processed lesson: its scores table and the student's recordings (from the manifest)."""

    def __init__(self, lesson_id: str, folder: Path, recordings: Sequence[Recording]) -> None:
        self.lesson_id = lesson_id
        self.folder = folder
        self.recordings = list(recordings)
        self.scores_stamp = _stamp(folder / "scores.csv")
        result = read_result(folder)
        self.status = result.status if result else "unknown"
        self.duration_s = float(result.lesson.duration_s) if result and result.lesson else 0.0
        try:
            judged = judge_lesson(read_scores(folder / "scores.csv"), PersonOptions(), TrackOptions()).table
            self.scores = judged.sort_values(["frame", "face"], kind="stable").reset_index(drop=True)
            frames = self.scores.drop_duplicates("frame")[list(FRAME_COLUMNS)]
            # The pipeline's own FrameRef of each sampled frame (a bad time fails here, as a bad cell).
            self.frames = [FrameRef.from_record(record) for record in frames.to_dict("records")]
        except Exception as error:
            raise LessonError(f"lesson {lesson_id}: scores.csv cannot be read ({type(error).__name__})") from error
        if not self.duration_s and len(self.scores):
            self.duration_s = float(self.scores["t"].max()) + 1.0
        self._frame_by_index = {f.index: f for f in self.frames}
        faces = self.scores[self.scores["face"] >= 0]
        self.faces = [
            Face(
                lesson_id, self._frame_by_index[int(r.frame)], int(r.face),
                (float(r.x1), float(r.y1), float(r.x2), float(r.y2)),
                float(r.child_prob), float(r.smile_prob), bool(r.is_child),
                judged_child=r.person_kind == "child" if r.person_kind else bool(r.track_child),
                picture=bool(r.picture),
            )
            for r in faces.itertuples(index=False)
            if not r.picture
        ]  # fmt: skip
        self._times = np.array([f.t for f in self.frames])
        # Each frame's recording, once: by file name and the start its instant and offset imply
        # (two segments may share a name in different folders; scores.csv keeps only the name).
        self._paths: dict[int, Path | None] = {}
        for f in self.frames:
            recording = recording_of_frame(f.source, f.at, f.offset_s, self.recordings)
            self._paths[f.index] = Path(recording.path) if recording is not None else None

    @property
    def has_recordings(self) -> bool:
        return all(path is not None for path in self._paths.values())

    def frame(self, index: int) -> FrameRef:
        try:
            return self._frame_by_index[int(index)]
        except KeyError:
            raise LessonError(f"lesson {self.lesson_id}: no sampled frame {index}") from None

    def frames_between(self, start: float, end: float) -> list[FrameRef]:
        return [f for f in self.frames if start <= f.t <= end]

    def faces_between(self, start: float, end: float) -> list[Face]:
        return [f for f in self.faces if start <= f.t <= end]

    def strip(self, start: float, end: float, count: int) -> list[FrameRef]:
        """Up to ``count`` sampled frames at equal spacing over ``[start, end]`` (the nearest
        sampled frame to each point; a disconnect leaves fewer distinct ones)."""
        inside = [f for f in self.frames if start <= f.t <= end]
        if len(inside) <= count:
            return inside
        times = np.array([f.t for f in inside])
        points = np.linspace(start, end, count)
        chosen = sorted({int(np.abs(times - p).argmin()) for p in points})
        return [inside[i] for i in chosen]

    def path_of(self, frame: FrameRef | Face) -> Path:
        """The recording a sampled frame (or a face's frame) was read from."""
        ref = frame.ref if isinstance(frame, Face) else frame
        path = self._paths.get(ref.index)
        if path is None:
            raise LessonError(
                f"lesson {self.lesson_id}: recording {ref.source.name} is not in the manifest given to the labeller"
            )
        return path


class FrameReader:
    """Frames of recordings by (file, offset), read in clusters and kept in an LRU cache.

    Thread-safe: the web server reads thumbnails in parallel; two threads asking for the same
    uncached frame may both decode it (harmless, rarer than the lock contention it would save).
    """

    def __init__(self, cache_size: int = FRAME_CACHE_SIZE) -> None:
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, float], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, key: tuple[str, float]) -> np.ndarray | None:
        with self._lock:
            image = self._cache.get(key)
            if image is not None:
                self._cache.move_to_end(key)
            return image

    def _put(self, key: tuple[str, float], image: np.ndarray) -> None:
        with self._lock:
            self._cache[key] = image
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def read(self, wanted: Iterable[tuple[Path, float]]) -> dict[tuple[Path, float], np.ndarray]:
        """The frame on screen at each (recording, offset); offsets outside the media are left
        out. Raises :class:`~highlights.media.decode.RecordingError` for a file that cannot be read."""
        out: dict[tuple[Path, float], np.ndarray] = {}
        todo: dict[Path, list[float]] = {}
        for path, offset in wanted:
            image = self._get((str(path), float(offset)))
            if image is not None:
                out[(path, offset)] = image
            else:
                todo.setdefault(path, []).append(float(offset))
        for path, offsets in todo.items():
            for cluster in _clusters(sorted(set(offsets)), CLUSTER_GAP_S):
                # seek_threshold_s=0: seek to the keyframe before the cluster's first offset.
                for offset, image in zip(cluster, iter_frames_at(path, cluster, seek_threshold_s=0.0)):
                    if image is not None:
                        self._put((str(path), offset), image)
                        out[(path, offset)] = image
        return out

    def read_one(self, path: Path, offset: float) -> np.ndarray:
        image = self.read([(path, offset)]).get((path, offset))
        if image is None:
            raise RecordingError(path, f"no frame at {offset:.3f} s")
        return image


def _clusters(offsets: Sequence[float], gap: float) -> list[list[float]]:
    clusters: list[list[float]] = []
    for offset in offsets:
        if clusters and offset - clusters[-1][-1] <= gap:
            clusters[-1].append(offset)
        else:
            clusters.append([offset])
    return clusters


def face_square(image: np.ndarray, face: Face, scale: float = 1.0) -> np.ndarray:
    """The face's square from the frame, by the crop recipe (``scale`` 1: what the models see,
    before grayscale and CLAHE; more shows a person the face's surroundings)."""
    return crop_square(image, face.box, scale)


def recordings_by_lesson(manifests: Sequence[Path], timezone: str | None = None) -> dict[str, list[Recording]]:
    """For each lesson in the manifests, its student recordings. Rows with problems are left
    out as the job leaves them."""
    found: dict[str, list[Recording]] = {}
    for manifest_path in manifests:
        manifest = read_manifest(manifest_path, timezone=timezone)
        for lesson_id, lesson in manifest.lessons.items():
            known = found.setdefault(lesson_id, [])
            # The same manifest given twice (a glob that overlaps) must not make a recording
            # ambiguous with itself: its frames could not be placed.
            paths = {r.path for r in known}
            known.extend(r for r in lesson.recordings if r.role == "student" and r.path not in paths)
    return found


def lesson_folders(out_dir: Path) -> list[Path]:
    """Processed lesson folders under ``out_dir``: ``result.json`` and ``scores.csv`` present,
    name not starting with ``.``."""
    if not out_dir.is_dir():
        return []
    return sorted(
        p for p in out_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".")
        and (p / "result.json").is_file() and (p / "scores.csv").is_file()
    )  # fmt: skip


def load_lessons(
    out_dir: Path,
    manifests: Sequence[Path],
    timezone: str | None = None,
    known: dict[str, ProcessedLesson] | None = None,
) -> dict[str, ProcessedLesson]:
    """Every processed lesson under ``out_dir``, by lesson id; a lesson whose scores cannot be
    read is logged and left out. Lessons in ``known`` whose ``scores.csv`` is unchanged (size,
    mtime) are reused as they are."""
    recordings = recordings_by_lesson(manifests, timezone)
    lessons: dict[str, ProcessedLesson] = {}
    for folder in lesson_folders(Path(out_dir)):
        old = (known or {}).get(folder.name)
        if old is not None and old.scores_stamp == _stamp(folder / "scores.csv"):
            lessons[folder.name] = old
            continue
        try:
            lesson = ProcessedLesson(folder.name, folder, recordings.get(folder.name, []))
        except LessonError as error:
            log.warning("%s", error)
            continue
        if not lesson.has_recordings:
            log.warning("lesson %s: its recordings are not in the manifest(s) given; its frames cannot be shown", folder.name)
        lessons[folder.name] = lesson
    return lessons


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)


__all__ = [
    "Face", "FrameReader", "LessonError", "ProcessedLesson", "face_square",
    "lesson_folders", "load_lessons", "recordings_by_lesson",
]  # fmt: skip
