"""A lesson's outcome: the :class:`LessonResult` value, as ``OUT/<lesson_id>/result.json`` holds it.

``result.json`` is the last file a lesson's run writes in its folder (atomically,
:func:`highlights.lesson.folder.write_result`), so its presence means every other artifact it names
is complete. Its schema (``schema`` = 1)::

    {
      "schema": 1,
      "lesson_id": "L-1001",
      "status": "ok",                 # ok | no_highlight | no_lesson | failed | withdrawn
      "reason": "",                   # why, when status is not ok (names lesson, file and row)
      "warnings": [],                 # problems that did not stop the lesson (file, row, column)
      "lesson": {"start": "2026-11-20T16:00:03+00:00", "end": "...", "duration_s": 1795.0},
      "disconnects": {"student": 1, "teacher": 0,
                      "student_offline_s": 42.0, "teacher_offline_s": 0.0},
      "frames": [                     # the GIF's frames, in GIF order
        {"t": 312.0, "at": "2026-11-20T16:05:15+00:00", "smile": 0.97, "child": 0.91}
      ],
      "gif": "a4f1...e2.gif",         # file names relative to the lesson folder (null if none)
      "gif_url": "https://cdn.example/highlights/a4f1...e2.gif",
      "snippet": "snippet.html", "snippet_text": "snippet.txt", "report": "report.html",
      "scores": "scores.csv", "analytics": "analytics.json",
      "versions": {"highlights": "0.1.0", "smile_model": "smile-...", ...},
      "fingerprint": "sha256 of inputs, code, models and settings",
      "started_at": "...", "finished_at": "..."
    }
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from highlights.core.frameref import FrameRef, utc_iso

SCHEMA_VERSION = 1
RESULT_FILE = "result.json"

Status = Literal["ok", "no_highlight", "no_lesson", "failed", "withdrawn", "busy"]
STATUSES: tuple[str, ...] = ("ok", "no_highlight", "no_lesson", "failed", "withdrawn", "busy")
"""``busy``: another run holds the lesson's lock; never written to result.json or the database."""
DONE_STATUSES: frozenset[str] = frozenset({"ok", "no_highlight", "no_lesson", "withdrawn"})
"""Outcomes a rerun with the same inputs would only repeat: such a lesson is skipped.
``withdrawn`` (``highlights withdraw``) is skipped whatever the inputs, until a run with ``force``."""


@dataclass(frozen=True)
class LessonBounds:
    """When the lesson really took place: both people online (ISO-8601 with offset)."""

    start: str
    end: str
    duration_s: float


@dataclass(frozen=True)
class Disconnects:
    student: int = 0
    teacher: int = 0
    student_offline_s: float = 0.0
    teacher_offline_s: float = 0.0


@dataclass(frozen=True)
class HighlightFrame:
    """One frame of the GIF: the sampled frame it shows (``ref``: lesson time, UTC instant,
    the student recording's file name and the offset into it), the chosen face's smile and child
    probabilities, and its box.

    In ``result.json`` it is ``{"t", "at", "smile", "child", "source", "offset_s", "box"}``
    (:meth:`to_dict`); the file does not keep the frame's index, so one read back
    (:meth:`from_dict`) has ``ref.index`` :data:`~highlights.core.frameref.UNKNOWN_INDEX`."""

    ref: FrameRef
    smile: float
    child: float
    box: tuple[float, float, float, float] | None = None
    """The chosen face, x1, y1, x2, y2 in the recording's pixels."""

    def to_dict(self) -> dict[str, Any]:
        ref = self.ref
        return {
            "t": ref.t, "at": utc_iso(ref.at), "smile": self.smile, "child": self.child,
            "source": ref.source.name, "offset_s": ref.offset_s,
            "box": list(self.box) if self.box is not None else None,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HighlightFrame:
        unknown = set(data) - _HIGHLIGHT_KEYS
        if unknown:  # a newer schema: read_result calls the file unreadable, and the lesson reruns
            raise TypeError(f"unknown frame field(s) {', '.join(sorted(unknown))}")
        box = data.get("box")
        return cls(FrameRef.from_record(data), data["smile"], data["child"], tuple(box) if box is not None else None)


_HIGHLIGHT_KEYS = frozenset({"t", "at", "smile", "child", "source", "offset_s", "box"})


_NOT_STORED = frozenset({"folder", "skipped", "location"})


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class LessonResult:
    """What happened to one lesson. ``folder``, ``skipped`` and ``location`` are not part of
    ``result.json``."""

    lesson_id: str
    status: Status
    reason: str = ""
    lesson: LessonBounds | None = None
    disconnects: Disconnects | None = None
    frames: list[HighlightFrame] = field(default_factory=list)
    gif: str | None = None
    gif_url: str | None = None
    gif_bytes: int | None = None
    snippet: str | None = None
    snippet_text: str | None = None
    report: str | None = None
    scores: str | None = None
    analytics: str | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    started_at: str = ""
    finished_at: str = ""
    warnings: list[str] = field(default_factory=list)
    """Input problems that did not stop the lesson (a lesson_url left out of the snippet); each
    names file, row and column, never the value."""
    folder: Path | None = field(default=None, compare=False)
    skipped: bool = field(default=False, compare=False)
    """True when this run found the lesson already done and reused its result."""
    location: str | None = field(default=None, compare=False)
    """Where the lesson's folder is kept when the outputs live in a bucket
    (``s3://bucket/prefix/<lesson_id>``); ``folder`` was then only where it ran."""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; expected one of {STATUSES}")

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    @property
    def gif_path(self) -> Path | None:
        if self.gif is None or self.folder is None:
            return None
        return self.folder / self.gif

    def path(self, name: str | None) -> Path | None:
        """An artifact's full path (``result.path(result.snippet)``), or None."""
        if name is None or self.folder is None:
            return None
        return self.folder / name

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"schema": SCHEMA_VERSION}
        for f in fields(self):
            if f.name in _NOT_STORED:
                continue
            value = getattr(self, f.name)
            if f.name == "frames":
                value = [frame.to_dict() for frame in value]
            elif value is not None and f.name in ("lesson", "disconnects"):
                value = asdict(value)
            data[f.name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path | None = None) -> LessonResult:
        schema = data.get("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            raise ValueError(f"result schema {schema} is not supported (expected {SCHEMA_VERSION})")
        known = {f.name for f in fields(cls)} - _NOT_STORED
        values = {k: v for k, v in data.items() if k in known}
        if values.get("lesson") is not None:
            values["lesson"] = LessonBounds(**values["lesson"])
        if values.get("disconnects") is not None:
            values["disconnects"] = Disconnects(**values["disconnects"])
        values["frames"] = [HighlightFrame.from_dict(f) for f in values.get("frames", [])]
        return cls(**values, folder=folder)
