"""What lets a rerun resume: the fingerprints' ingredients and ``stages.json``, the record of
the stages a lesson has finished.

A stage's fingerprint (:func:`highlights.lesson.graph.stage_keys`, derived from the stage graph)
hashes what it reads: the recordings' identities (:func:`input_fingerprint`), the code
(:func:`code_fingerprint`), the models' versions, the settings it declares, and the fingerprints
of the stages it takes values from. A stage whose fingerprint matches the one in ``stages.json``
and whose files are all there is not run again (:meth:`StageState.done`)::

    state = StageState(folder)
    if state.done("selection", keys["selection"]) is None:
        ...  # compute, write selection.json atomically
        state.record("selection", keys["selection"], ["selection.json"])

This module knows nothing of what the stages compute.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import highlights
from highlights.core.lesson import LessonInput
from highlights.core.plain import jsonable
from highlights.core.result import utc_now_iso
from highlights.files import write_json_atomic
from highlights.lesson.folder import read_result
from highlights.storage import objects

STAGES_FILE = "stages.json"


# --------------------------------------------------------------------------- fingerprints


def digest(*parts: Any) -> str:
    """sha256 of the canonical JSON of ``parts``."""
    text = json.dumps(jsonable(parts), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Version plus a hash of the package's source files and templates (package data): any change
    to the code or a template redoes lessons."""
    sha = hashlib.sha256(highlights.__version__.encode())
    root = Path(highlights.__file__).resolve().parent
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".html", ".txt", ".j2", ".jinja", ".css") and "__pycache__" not in path.parts:
            sha.update(f"{path.relative_to(root)}".encode())
            sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def input_fingerprint(lesson: LessonInput) -> dict[str, Any]:
    """The lesson's manifest rows and the identity of each recording: a file's size and mtime,
    an object's size, ETag and last-modified time (one HEAD, no download: an unchanged lesson
    in a bucket is skipped as cheaply as one on disk). None where it cannot be read; the
    lesson's run then fails on it, with its own message."""
    recordings = []
    for recording in sorted(lesson.recordings, key=lambda r: (r.role, r.location, str(r.started_at))):
        identity: Any = None
        if recording.url is not None:
            try:
                identity = objects.stat(recording.url).identity()
            except objects.ObjectStoreError:
                identity = None
        else:
            try:
                stat = Path(recording.path).stat()
                identity = [stat.st_size, stat.st_mtime_ns]
            except OSError:
                identity = None
        recordings.append(
            [recording.role, recording.location, jsonable(recording.started_at), jsonable(recording.ended_at), identity]
        )
    return {"lesson_id": lesson.lesson_id, "recordings": recordings}


# --------------------------------------------------------------------------- stages.json


def _gif_name(record: Any) -> str | None:
    """The GIF file name in a ``stages.json`` gif record, if it is a plain ``*.gif`` name."""
    name = record.get("gif") if isinstance(record, dict) else None
    return name if isinstance(name, str) and name.endswith(".gif") and "/" not in name else None


def _published_gif(folder: Path) -> str | None:
    """The GIF file name the lesson's ``result.json`` names (None: none, or withdrawn)."""
    result = read_result(folder)
    name = result.gif if result is not None else None
    return name if isinstance(name, str) and name.endswith(".gif") and "/" not in name else None


class StageState:
    """``stages.json``: the fingerprint and files of each finished stage of one lesson."""

    def __init__(self, folder: Path, force: bool = False) -> None:
        self.path = folder / STAGES_FILE
        self.folder = folder
        try:
            recorded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = {}
        recorded = recorded if isinstance(recorded, dict) else {}
        self.data: dict[str, Any] = {} if force else recorded
        self.earlier: dict[str, Any] = recorded
        """What an earlier run recorded, even with ``force`` (which ignores it for resuming)."""
        self.previous_gif = _gif_name(recorded.get("gif")) or _published_gif(folder)
        """The GIF name an earlier run gave this lesson (even after a failure or with ``force``):
        a rebuilt GIF replaces the file a sent email already links to. From ``stages.json``, or
        else from ``result.json``: a ``force`` run rewrites ``stages.json`` from its first stage
        on, so one cut short before its GIF stage (killed, or failed) leaves no GIF record there."""

    def done(self, stage: str, key: str) -> dict[str, Any] | None:
        """The stage's record if it finished with fingerprint ``key`` and its files exist."""
        record = self.data.get(stage)
        if not record or record.get("key") != key:
            return None
        if not all((self.folder / name).is_file() for name in record.get("files", [])):
            return None
        return record

    def record(self, stage: str, key: str, files: Sequence[str], **extra: Any) -> None:
        self.data[stage] = {"key": key, "files": list(files), "finished_at": utc_now_iso(), **extra}
        write_json_atomic(self.path, self.data)

    def forget(self, *stages: str) -> None:
        """Drop these stages' records (written at once): they run again next time."""
        for stage in stages:
            self.data.pop(stage, None)
        write_json_atomic(self.path, self.data)


__all__ = ["STAGES_FILE", "StageState", "code_fingerprint", "digest", "input_fingerprint"]
