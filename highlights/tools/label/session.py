"""The labeller's logic, without HTTP: lessons, the strip, batches of faces, saves, frame ranges.

:class:`Labeller` is what the web app (:mod:`highlights.tools.label.app`) calls; tests and scripts can
call it directly.

* **Batches.** :meth:`Labeller.new_batch` offers up to :data:`BATCH_SIZE` faces of a lesson's
  time range that have no label for the task yet (nor a "skip"), in lesson order, so the next
  batch carries on where the last one stopped; a face in a batch not yet saved is not offered
  to another batch (two tabs get different faces) until :data:`RESERVATION_S` has passed.
  ``relabel=True`` offers labelled faces too (each face shows its current label).
* **Default labels.** ``positive`` (child / smiling), ``negative`` (adult / not smiling) or
  ``model``: the probabilities the shipped models gave in ``scores.csv``, cut at their own
  thresholds (for age, ``is_child``, the job's own decision; for smile, the smile model's
  threshold), with the batch ordered by P(adult) or P(smile), most certain first, so the unclear
  faces sit together in the middle and need the clicks.
* **Saves.** :meth:`Labeller.save_batch` writes each face's square (the crop recipe) and one
  ``labels.csv`` row per face (:mod:`highlights.tools.label.store`); faces marked ``skip`` go to
  ``skipped.csv``. :meth:`Labeller.label_frames` labels every sampled frame of a range for
  ``adult_present`` and writes those frames.
"""

from __future__ import annotations

import getpass
import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from highlights.tools.label.lessons import Face, FrameReader, LessonError, ProcessedLesson, face_square, load_lessons
from highlights.tools.label.store import (
    FACE_TASKS,
    FRAME_TASK,
    LabelRow,
    LabelStore,
    face_file,
    frame_file,
    utc_now,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 27
"""Faces per batch: a 9 x 3 grid fits a laptop screen at 128 px per face, and at the issue's
target pace (100 faces a minute) one batch is about 16 s of work."""
STRIP_SIZE = 27
"""Thumbnails in the strip over the lesson (or the zoomed part of it)."""
RESERVATION_S = 600.0
"""A batch's faces are held back from other batches this long, or until it is saved."""
MAX_OPEN_BATCHES = 32
"""Batches kept in memory (each holds its faces' squares, ~2 MB); the oldest is dropped."""
DISPLAY_SCALE = 1.6
"""The face tiles show 1.6x the face box: hair, shoulders and hands help a person tell a child
from an adult; the saved crop is the recipe's 1.0x square, what the model sees."""
DISPLAY_SIZE = 128
THUMB_WIDTH = 160
FRAME_CHUNK = 60
"""Frames of a frame-range label read and written at a time (a minute of lesson, ~55 MB at 640x480)."""
MODES = ("positive", "negative", "model")
LABEL_NAMES = {"age": ("adult", "child"), "smile": ("not smiling", "smiling"), FRAME_TASK: ("no adult", "adult present")}


class LabelRequestError(ValueError):
    """A request the labeller cannot honour (unknown batch, bad task or label): a 400 to the user."""


@dataclass
class Batch:
    id: str
    lesson_id: str
    task: str
    mode: str
    faces: list[Face]
    labels: list[int]
    current: list[int | None]
    display: list[bytes]
    squares: list[np.ndarray]
    model: list[int] = field(default_factory=list)
    created: float = field(default_factory=time.monotonic)

    def to_dict(self, remaining: int) -> dict[str, Any]:
        positive = [f.child_prob if self.task == "age" else f.smile_prob for f in self.faces]
        return {
            "batch": self.id,
            "lesson_id": self.lesson_id,
            "task": self.task,
            "mode": self.mode,
            "names": LABEL_NAMES[self.task],
            "remaining": remaining,
            "faces": [
                {
                    "index": i, "key": f.key, "frame": f.frame, "face": f.face, "t": round(f.t, 2),
                    "p": round(p, 4), "label": self.labels[i], "current": self.current[i],
                    "model": self.model[i],
                    "image": f"/api/batch/{self.id}/{i}.jpg",
                }
                for i, (f, p) in enumerate(zip(self.faces, positive))
            ],
        }  # fmt: skip


def _jpeg(image_rgb: np.ndarray, quality: int = 85) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def _resize(image: np.ndarray, width: int) -> np.ndarray:
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    interpolation = cv2.INTER_AREA if image.shape[1] > width else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def _smile_threshold() -> float:
    from highlights.models.face_cnn import load_face_model

    return float(load_face_model("smile").threshold)


class Labeller:
    """Everything the labelling page does, over processed lessons in ``out_dir`` and the labels
    folder ``labels_dir``. ``manifests`` map scores.csv's recording names back to files."""

    def __init__(
        self,
        out_dir: Path | str,
        labels_dir: Path | str,
        manifests: list[Path | str],
        *,
        by: str | None = None,
        timezone: str | None = None,
        batch_size: int = BATCH_SIZE,
        smile_threshold: float | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.store = LabelStore(labels_dir)
        self.manifests = [Path(m) for m in manifests]
        self.timezone = timezone
        self.by = by or getpass.getuser()
        self.batch_size = batch_size
        self.smile_threshold = smile_threshold if smile_threshold is not None else _smile_threshold()
        self.reader = FrameReader()
        self._lessons: dict[str, ProcessedLesson] = {}
        self._batches: OrderedDict[str, Batch] = OrderedDict()
        self._reserved: dict[tuple[str, str], tuple[str, float]] = {}  # (task, file) -> (batch, until)
        self._lock = threading.Lock()
        self.reload()

    def reload(self) -> None:
        """Find the processed lessons again (a run may have added or redone some); lessons whose
        ``scores.csv`` has not changed are kept, not read again."""
        self._lessons = load_lessons(self.out_dir, self.manifests, self.timezone, known=self._lessons)

    def lesson(self, lesson_id: str) -> ProcessedLesson:
        lesson = self._lessons.get(lesson_id)
        if lesson is None:
            self.reload()
            lesson = self._lessons.get(lesson_id)
        if lesson is None:
            raise LessonError(f"no processed lesson {lesson_id!r} in {self.out_dir}")
        return lesson

    # --------------------------------------------------------------------------- views

    def lessons(self) -> list[dict[str, Any]]:
        """The lesson picker: id, length, faces, and how many are labelled per task."""
        counts = self.store.counts()
        return [
            {
                "lesson_id": lesson.lesson_id, "status": lesson.status,
                "duration_s": round(lesson.duration_s, 1), "frames": len(lesson.frames),
                "faces": len(lesson.faces), "recordings": lesson.has_recordings,
                "labelled": {task: counts.get(lesson.lesson_id, {}).get(task, 0) for task in (*FACE_TASKS, FRAME_TASK)},
            }
            for lesson in self._lessons.values()
        ]  # fmt: skip

    def lesson_view(self, lesson_id: str, start: float | None = None, end: float | None = None,
                    strip_size: int = STRIP_SIZE) -> dict[str, Any]:
        """One lesson: its length, the strip of thumbnails over ``[start, end]`` (default: the
        whole lesson), the sampled seconds and the frame-range labels so far."""
        lesson = self.lesson(lesson_id)
        start = 0.0 if start is None else float(start)
        end = lesson.duration_s if end is None else float(end)
        frame_labels = self.store.latest(FRAME_TASK, lesson_id)
        by_file = {frame_file(lesson_id, f.index): f for f in lesson.frames}
        marks = sorted(
            ((by_file[name].t, int(row.label)) for name, row in frame_labels.items() if name in by_file),
        )
        return {
            "lesson_id": lesson_id,
            "duration_s": lesson.duration_s,
            "recordings": lesson.has_recordings,
            "times": [f.t for f in lesson.frames],
            "face_times": sorted({f.t for f in lesson.faces}),
            "strip": [{"frame": f.index, "t": f.t, "image": f"/api/lessons/{lesson_id}/frames/{f.index}.jpg"}
                      for f in lesson.strip(start, end, strip_size)],
            "frame_labels": [{"t": t, "label": label} for t, label in marks],
            "counts": self.range_counts(lesson_id, 0.0, lesson.duration_s),
        }  # fmt: skip

    def range_counts(self, lesson_id: str, start: float, end: float) -> dict[str, Any]:
        lesson = self.lesson(lesson_id)
        faces = lesson.faces_between(start, end)
        out: dict[str, Any] = {"faces": len(faces), "frames": len(lesson.frames_between(start, end))}
        for task in FACE_TASKS:
            done = self.store.done_files(task)
            out[f"{task}_done"] = sum(face_file(lesson_id, f.frame, f.face) in done for f in faces)
        return out

    def thumbnail(self, lesson_id: str, frame: int, width: int = THUMB_WIDTH) -> bytes:
        lesson = self.lesson(lesson_id)
        ref = lesson.frame(frame)
        image = self.reader.read_one(lesson.path_of(ref), ref.offset_s)
        return _jpeg(_resize(image, min(int(width), image.shape[1])), 80)

    # --------------------------------------------------------------------------- batches

    def _prelabel(self, task: str, mode: str, face: Face) -> int:
        if mode == "positive":
            return 1
        if mode == "negative":
            return 0
        if task == "age":
            return int(face.judged_child)  # the decision the GIF and the analytics went by
        return int(face.smile_prob >= self.smile_threshold)

    def new_batch(self, lesson_id: str, start: float, end: float, task: str = "age", mode: str = "model",
                  relabel: bool = False) -> dict[str, Any]:
        """Up to ``batch_size`` faces of ``[start, end]`` to label for ``task`` (see the module
        docstring); also records where the user is (the page resumes there)."""
        if task not in FACE_TASKS:
            raise LabelRequestError(f"task must be one of {', '.join(FACE_TASKS)}, not {task!r}")
        if mode not in MODES:
            raise LabelRequestError(f"default must be one of {', '.join(MODES)}, not {mode!r}")
        lesson = self.lesson(lesson_id)
        start, end = sorted((float(start), float(end)))
        now = time.monotonic()
        done = self.store.done_files(task)
        current = self.store.latest(task, lesson_id) if relabel else {}
        with self._lock:
            self._reserved = {k: v for k, v in self._reserved.items() if v[1] > now}
            candidates = [
                f for f in lesson.faces_between(start, end)
                if (task, face_file(lesson_id, f.frame, f.face)) not in self._reserved
                and (relabel or face_file(lesson_id, f.frame, f.face) not in done)
            ]  # fmt: skip
            chosen = candidates[: self.batch_size]
            batch_id = secrets.token_urlsafe(9)
            for f in chosen:
                self._reserved[(task, face_file(lesson_id, f.frame, f.face))] = (batch_id, now + RESERVATION_S)
        if mode == "model":  # most certain first: adults (or smiles) at the top, unclear in the middle
            key = (lambda f: -(1.0 - f.child_prob)) if task == "age" else (lambda f: -f.smile_prob)
            chosen = sorted(chosen, key=key)
        try:
            frames = self.reader.read([(lesson.path_of(f), f.offset_s) for f in chosen])
        except Exception:
            self._release(batch_id)
            raise
        faces, squares, display, labels, now_labels, model = [], [], [], [], [], []
        for f in chosen:
            image = frames.get((lesson.path_of(f), f.offset_s))
            if image is None:  # outside what decodes (a truncated file): cannot be shown
                continue
            faces.append(f)
            squares.append(face_square(image, f))
            display.append(_jpeg(cv2.resize(face_square(image, f, DISPLAY_SCALE), (DISPLAY_SIZE, DISPLAY_SIZE),
                                            interpolation=cv2.INTER_AREA)))  # fmt: skip
            row = current.get(face_file(lesson_id, f.frame, f.face))
            now_labels.append(int(row.label) if row else None)
            labels.append(int(row.label) if row else self._prelabel(task, mode, f))
            model.append(self._prelabel(task, "model", f))
        batch = Batch(batch_id, lesson_id, task, mode, faces, labels, now_labels, display, squares, model)
        with self._lock:
            self._batches[batch_id] = batch
            while len(self._batches) > MAX_OPEN_BATCHES:
                old, _ = self._batches.popitem(last=False)
                self._release(old, locked=True)
        self.save_state({"lesson_id": lesson_id, "start": start, "end": end, "task": task, "mode": mode})
        remaining = len(candidates) - len(chosen)
        return batch.to_dict(remaining)

    def _release(self, batch_id: str, locked: bool = False) -> None:
        def release() -> None:
            self._reserved = {k: v for k, v in self._reserved.items() if v[0] != batch_id}

        if locked:
            release()
        else:
            with self._lock:
                release()

    def release_batch(self, batch_id: str) -> None:
        """Forget an unsaved batch and offer its faces again (a page reload, a tab closed)."""
        with self._lock:
            self._batches.pop(batch_id, None)
            self._release(batch_id, locked=True)

    def batch(self, batch_id: str) -> Batch:
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None:
            raise LabelRequestError("this batch is no longer open (the server restarted or it was saved): ask for a new batch")
        return batch

    def face_image(self, batch_id: str, index: int) -> bytes:
        batch = self.batch(batch_id)
        if not 0 <= index < len(batch.display):
            raise LabelRequestError(f"batch has no face {index}")
        return batch.display[index]

    def save_batch(self, batch_id: str, labels: list[int | str | None]) -> dict[str, Any]:
        """Write the batch: ``labels[i]`` is 1, 0, or ``"skip"`` (not a face / unclear: kept out
        of training, not offered again) for face ``i``. Returns counts written."""
        batch = self.batch(batch_id)
        if len(labels) != len(batch.faces):
            raise LabelRequestError(f"expected {len(batch.faces)} labels, got {len(labels)}")
        created, rows, skipped = utc_now(), [], []
        for face, square, label in zip(batch.faces, batch.squares, labels):
            name = face_file(face.lesson_id, face.frame, face.face)
            if label in ("skip", None):
                skipped.append(LabelRow(name, "", batch.task, self.by, created, face.lesson_id, f"{face.t:g}"))
                continue
            if str(label) not in ("0", "1"):
                raise LabelRequestError(f"label {label!r} is not 0, 1 or 'skip'")
            if not (self.store.root / name).is_file():
                self.store.write_face(name, square)
            rows.append(LabelRow(name, str(int(label)), batch.task, self.by, created, face.lesson_id, f"{face.t:g}"))
        self.store.append(rows, skipped)
        self.release_batch(batch_id)
        positives = sum(r.label == "1" for r in rows)
        log.info("lesson %s: saved %d %s labels (%d positive), %d skipped", batch.lesson_id, len(rows),
                 batch.task, positives, len(skipped))  # fmt: skip
        return {"saved": len(rows), "positive": positives, "skipped": len(skipped), "task": batch.task}

    # --------------------------------------------------------------------------- frame ranges

    def label_frames(self, lesson_id: str, start: float, end: float, label: int) -> dict[str, Any]:
        """Label every sampled frame of ``[start, end]`` for ``adult_present`` (1: an adult is in
        view, even without a face; 0: no adult) and write those frames."""
        if str(label) not in ("0", "1"):
            raise LabelRequestError(f"label {label!r} is not 0 or 1")
        lesson = self.lesson(lesson_id)
        start, end = sorted((float(start), float(end)))
        refs = lesson.frames_between(start, end)
        missing = [f for f in refs if not (self.store.root / frame_file(lesson_id, f.index)).is_file()]
        # In chunks, so a range of a whole 45-minute lesson never holds 2,700 frames in memory.
        for first in range(0, len(missing), FRAME_CHUNK):
            chunk = missing[first : first + FRAME_CHUNK]
            images = self.reader.read([(lesson.path_of(f), f.offset_s) for f in chunk])
            for f in chunk:
                image = images.get((lesson.path_of(f), f.offset_s))
                if image is not None:
                    self.store.write_frame(frame_file(lesson_id, f.index), image)
        created = utc_now()
        rows = [
            LabelRow(frame_file(lesson_id, f.index), str(int(label)), FRAME_TASK, self.by, created, lesson_id, f"{f.t:g}")
            for f in refs if (self.store.root / frame_file(lesson_id, f.index)).is_file()
        ]  # fmt: skip
        self.store.append(rows)
        return {"saved": len(rows), "label": int(label), "start": start, "end": end}

    # --------------------------------------------------------------------------- resume

    def state(self) -> dict[str, Any]:
        state = self.store.state().get(self.by, {})
        return state if isinstance(state, dict) else {}

    def save_state(self, value: dict[str, Any]) -> None:
        allowed = {k: value[k] for k in ("lesson_id", "start", "end", "task", "mode", "view_start", "view_end") if k in value}
        everyone = self.store.state()
        everyone[self.by] = {**(everyone.get(self.by) or {}), **allowed}
        self.store.save_state(everyone)


__all__ = ["BATCH_SIZE", "Batch", "LabelRequestError", "Labeller"]
