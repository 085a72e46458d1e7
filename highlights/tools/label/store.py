"""The labels folder (``--labels DIR``): what the labeller writes and ``highlights train`` reads.

Layout::

    DIR/labels.csv                      file,label,task,by,created_at,lesson_id,t
    DIR/faces/<lesson_id>/<frame>-<face>.png   the face's square, cut by the crop recipe
    DIR/frames/<lesson_id>/<frame>.jpg         whole frames of frame-range labels
    DIR/skipped.csv                     faces marked "not a face / unclear" (same columns, no label)
    DIR/.state.json                     where the labeller stopped (lesson, range, task, default)

``labels.csv`` rows: ``task`` ``age`` (label 1 = child, 0 = adult), ``smile`` (1 = smiling,
0 = not) or ``adult_present`` (a whole frame: 1 = an adult is in view, even without a face,
0 = no adult); ``file`` relative to DIR; ``t`` the lesson time in seconds; ``by`` who labelled;
``created_at`` ISO-8601 UTC. Rows are only appended: a face labelled again gets a new row, and
the last row of a file and task wins (:func:`highlights.tools.training.datasets.load_labels_csv`
reads it so). ``highlights train smile|age --data DIR`` reads the folder as it is.

Face files are PNG (lossless): the trainer normalises them exactly as the pipeline normalises
the box in the frame, so a model trained on them sees what it sees in a lesson.

Writes are atomic (each file through :func:`highlights.files.atomic_path`) and serialised across
threads, tabs and processes by an exclusive ``flock`` on ``DIR/.lock``: ``labels.csv`` is
rewritten whole (old rows + new) under the lock, so two saves at once both land and a reader
never sees half a row. DIR is created ``0700``: the crops are children's faces.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from highlights.files import atomic_path, write_json_atomic

LABEL_COLUMNS = ("file", "label", "task", "by", "created_at", "lesson_id", "t")
FACE_TASKS = ("age", "smile")
FRAME_TASK = "adult_present"
TASKS = (*FACE_TASKS, FRAME_TASK)
FRAME_JPEG_QUALITY = 92
"""Whole frames are kept as JPEG (a 640x480 frame: ~60 KB, PNG ~500 KB); faces as PNG."""


class LabelsFolderError(ValueError):
    """The labels folder cannot be used (inside the repository, not writable, bad file)."""


@dataclass(frozen=True)
class LabelRow:
    file: str
    label: str  # "1" / "0"; "" in skipped.csv
    task: str
    by: str
    created_at: str
    lesson_id: str
    t: str


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def repository_root() -> Path:
    """The checkout this package runs from (labels must never land inside it)."""
    return Path(__file__).resolve().parents[3]


def face_file(lesson_id: str, frame: int, face: int) -> str:
    return f"faces/{lesson_id}/{frame:06d}-{face}.png"


def frame_file(lesson_id: str, frame: int) -> str:
    return f"frames/{lesson_id}/{frame:06d}.jpg"


class LabelStore:
    """Reads and appends the labels folder; one instance per folder and process is enough."""

    def __init__(self, root: Path | str, *, allow_inside_repository: bool = False) -> None:
        root = Path(root).expanduser().resolve()
        repo = repository_root()
        if not allow_inside_repository and (repo / "pyproject.toml").is_file() and root.is_relative_to(repo):
            raise LabelsFolderError(
                f"labels folder {root} is inside the repository {repo}: face crops of children must "
                "never be committed; choose a folder outside it"
            )
        if root.exists() and not root.is_dir():
            raise LabelsFolderError(f"labels folder {root} is a file, not a folder")
        created = not root.exists()
        root.mkdir(parents=True, exist_ok=True)
        if created:
            os.chmod(root, 0o700)
        if not os.access(root, os.W_OK | os.X_OK):
            raise LabelsFolderError(f"labels folder {root} is not writable")
        self.root = root
        self.labels_csv = root / "labels.csv"
        self.skipped_csv = root / "skipped.csv"
        self.state_file = root / ".state.json"
        self._thread_lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple[int, int], list[LabelRow]]] = {}

    # ------------------------------------------------------------------------- locking

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across threads (a lock) and processes (``flock`` on ``DIR/.lock``)."""
        with self._thread_lock, open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ------------------------------------------------------------------------- reading

    def _read(self, path: Path) -> list[LabelRow]:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return []
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached and cached[0] == key:
            return cached[1]
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = set(LABEL_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise LabelsFolderError(f"{path}: missing columns {', '.join(sorted(missing))}")
            rows = [LabelRow(*(row.get(c, "") or "" for c in LABEL_COLUMNS)) for row in reader]
        self._cache[path] = (key, rows)
        return rows

    def rows(self) -> list[LabelRow]:
        return self._read(self.labels_csv)

    def skipped(self) -> list[LabelRow]:
        return self._read(self.skipped_csv)

    def done_files(self, task: str) -> set[str]:
        """Files labelled or skipped for ``task``: the faces a new batch does not offer again."""
        return {r.file for r in self.rows() if r.task == task} | {r.file for r in self.skipped() if r.task == task}

    def latest(self, task: str, lesson_id: str | None = None) -> dict[str, LabelRow]:
        """The last row of each file for ``task`` (the one that counts)."""
        out: dict[str, LabelRow] = {}
        for row in self.rows():
            if row.task == task and (lesson_id is None or row.lesson_id == lesson_id):
                out[row.file] = row
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        """Per lesson and task: files labelled (each counted once)."""
        seen: dict[str, dict[str, set[str]]] = {}
        for row in self.rows():
            seen.setdefault(row.lesson_id, {}).setdefault(row.task, set()).add(row.file)
        return {lesson: {task: len(files) for task, files in tasks.items()} for lesson, tasks in seen.items()}

    # ------------------------------------------------------------------------- writing

    def write_face(self, relative: str, square_rgb: np.ndarray) -> None:
        ok, data = cv2.imencode(".png", cv2.cvtColor(square_rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise LabelsFolderError(f"could not encode {relative}")
        self._write_bytes(relative, data.tobytes())

    def write_frame(self, relative: str, frame_rgb: np.ndarray) -> None:
        params = [cv2.IMWRITE_JPEG_QUALITY, FRAME_JPEG_QUALITY]
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise LabelsFolderError(f"could not encode {relative}")
        self._write_bytes(relative, data.tobytes())

    def _write_bytes(self, relative: str, data: bytes) -> None:
        target = self.root / relative
        if not target.resolve().is_relative_to(self.root):
            raise LabelsFolderError(f"{relative} is outside the labels folder")
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)

    def append(self, rows: Sequence[LabelRow], skipped: Sequence[LabelRow] = ()) -> None:
        """Append rows to ``labels.csv`` (and ``skipped.csv``) under the folder lock. The image
        files the rows name must be written first (a row never names a missing file)."""
        with self.locked():
            if rows:
                self._append(self.labels_csv, rows)
            if skipped:
                self._append(self.skipped_csv, skipped)

    def _append(self, path: Path, rows: Sequence[LabelRow]) -> None:
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if not old:
            writer.writerow(LABEL_COLUMNS)
        elif not old.endswith("\n"):
            buffer.write("\n")
        writer.writerows(astuple(row) for row in rows)
        with atomic_path(path) as tmp:
            tmp.write_text(old + buffer.getvalue(), encoding="utf-8")

    # ------------------------------------------------------------------------- state

    def state(self) -> dict[str, Any]:
        try:
            value = json.loads(self.state_file.read_text(encoding="utf-8"))
            return value if isinstance(value, dict) else {}
        except (OSError, ValueError):
            return {}

    def save_state(self, value: dict[str, Any]) -> None:
        with self.locked():
            write_json_atomic(self.state_file, value)


__all__ = [
    "FACE_TASKS", "FRAME_TASK", "LABEL_COLUMNS", "LabelRow", "LabelStore", "LabelsFolderError",
    "TASKS", "face_file", "frame_file", "utc_now",
]  # fmt: skip
