"""What one lesson is before anything is decoded: its recordings and what the lessons file says.

Values only (no file is read here): :mod:`highlights.inputs.manifest` builds them from the manifest
and lessons files, and every later layer passes them on. ``student_name`` is personal data:
never log it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

Role = Literal["student", "teacher"]
ROLES: tuple[Role, ...] = ("student", "teacher")

MAX_LESSON_S = 24 * 3600
"""Longest a recording segment, and so a lesson, may last (seconds): a lesson takes an hour or
two, a day none. Longer is a typo in an end time (a year off), and the timeline stage would
plan a sample point for every second of it (a century: 3 billion points, unbounded memory), so
such a row is an error of its lesson and :func:`highlights.stages.timeline.plan_lesson` refuses such a lesson."""

# The first character is a letter or digit: lesson folders then never start with a dot, so none
# can be the job's own folder (highlights.config.JOB_DIR_NAME, ".highlights") or a hidden file.
_LESSON_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
AGE_GROUPS = ("child", "adult")
"""Values of the lessons file's ``student_age_group`` column (see :mod:`highlights.stages.selection`)."""

@dataclass(frozen=True)
class SourceRow:
    """Where a value came from: ``row`` counts as a person does in that file (CSV: the header is
    line 1 and the first data row 2; JSON Lines: the line number)."""

    file: Path
    row: int

    def __str__(self) -> str:
        return f"{self.file.name} row {self.row}"


@dataclass(frozen=True)
class Recording:
    """One recording segment of one role. ``path`` is absolute; ``ended_at`` is None until
    :func:`highlights.media.probe.resolve_end_times` reads it from the media.

    A recording in an object store has its ``url`` (``s3://bucket/key``); its ``path`` is then
    ``Path(url)`` (whose name is the object's file name, and which opens no local file), until
    the lesson's run downloads it
    (:mod:`highlights.lesson.staging`) and puts the local copy's path there. Outputs name a
    recording by its file name either way, so a lesson read from a bucket gives the same
    files as read from disk."""

    lesson_id: str
    role: Role
    path: Path
    started_at: datetime
    ended_at: datetime | None
    source: SourceRow
    url: str | None = None

    @property
    def location(self) -> str:
        """Where the recording is, as the manifest named it: its URL, or its local path."""
        return self.url or str(self.path)


SAME_FRAME_TOLERANCE_S = 0.001
"""How far the start a frame's instant and offset imply may lie from a recording's own start
(the instant is stored to the microsecond, the offset as a float)."""


def recording_of_frame(
    name: str | Path, at: datetime, offset_s: float, recordings: Sequence[Recording]
) -> Recording | None:
    """The student recording a sampled frame came from, given what an artifact stores of it: the
    file's name, the frame's instant ``at`` and its ``offset_s`` into the file. Two recordings of
    one lesson may share a name in different folders (``conn-1/student.webm``,
    ``conn-2/student.webm``): the one that started ``offset_s`` before ``at`` is the frame's; where
    several did (a copy exported twice), the one sampling chose
    (:func:`highlights.stages.timeline.covering_recording`: the later start, the first listed on a tie).
    None when no student recording of that name started there, or when the name alone is
    ambiguous and no start matches."""
    name = Path(name).name
    named = [r for r in recordings if r.role == "student" and Path(r.path).name == name]
    started = at - timedelta(seconds=float(offset_s))
    timed = [r for r in named if abs((r.started_at - started).total_seconds()) <= SAME_FRAME_TOLERANCE_S]
    if timed:
        return max(timed, key=lambda r: r.started_at)  # max keeps the first of equals
    return named[0] if len(named) == 1 else None


@dataclass(frozen=True)
class LessonInfo:
    """What the later stages (email) know about a lesson besides its recordings. All optional
    but ``lesson_id``; ``student_name`` is personal data: never log it."""

    lesson_id: str
    student_name: str | None = None
    subject: str | None = None
    locale: str = "en"
    lesson_url: str | None = None
    student_age_group: str | None = None
    """``child`` or ``adult`` from the lessons file; None: the ``selection.student_age_group``
    setting decides (default ``child``)."""
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)
    source: SourceRow | None = field(default=None, compare=False)
    """The lessons-file row it came from (None: the lesson has no row there)."""


@dataclass(frozen=True)
class InputProblem:
    """Something wrong with the input, with its origin so a person can find and fix it."""

    file: Path
    row: int | None
    lesson_id: str | None
    message: str

    def __str__(self) -> str:
        where = self.file.name if self.row is None else f"{self.file.name} row {self.row}"
        if self.lesson_id is not None:
            where += f" (lesson {self.lesson_id})"
        return f"{where}: {self.message}"


@dataclass
class LessonInput:
    """Everything known about one lesson before decoding. Non-empty ``problems`` mean the lesson
    fails with these messages; other lessons are unaffected."""

    lesson_id: str
    recordings: list[Recording]
    info: LessonInfo
    problems: list[InputProblem] = field(default_factory=list)
    warnings: list[InputProblem] = field(default_factory=list)
    """Problems that do not stop the lesson (a lesson_url that is not a usable link is left out of
    the snippet); reported with the lesson's result. Never hold the values themselves."""
    unattributed_rows: int = 0
    """Rows of the input files that belong to no valid lesson (a broken JSON line, an invalid id):
    one of them may be this lesson's, so a published highlight is not withdrawn on this input.
    A bad lessons-file row that names a lesson absent from the manifest is no other lesson's and
    is not counted."""

    def by_role(self, role: Role) -> list[Recording]:
        """This role's recordings, earliest first."""
        return sorted((r for r in self.recordings if r.role == role), key=lambda r: r.started_at)

    def recording_of(self, error: BaseException) -> Recording | None:
        """The recording a read error is about (its ``path`` or ``filename``), if it is one of
        this lesson's: to name the manifest row in the error's message."""
        error_url = getattr(error, "url", None)
        if error_url is not None:
            return next((recording for recording in self.recordings if recording.url == error_url), None)
        error_path = getattr(error, "path", None) or getattr(error, "filename", None)
        if error_path is None:
            return None
        for recording in self.recordings:
            if Path(recording.path) == Path(error_path) or Path(recording.path).name == Path(str(error_path)).name:
                return recording
        return None

    @property
    def ok(self) -> bool:
        return not self.problems

def is_valid_lesson_id(value: str) -> bool:
    """Lesson ids name folders and files of later stages, so they must be safe as one path
    component: ``[A-Za-z0-9_.-]{1,64}``, starting with a letter or digit, and no ``..``."""
    return bool(_LESSON_ID.fullmatch(value)) and ".." not in value and value not in {".", ".."}

def with_end_times(lesson: LessonInput, ends: Mapping[Path, datetime]) -> LessonInput:
    """A copy of ``lesson`` whose recordings without ``ended_at`` take it from ``ends``."""
    recordings = [
        replace(r, ended_at=ends[r.path]) if r.ended_at is None and r.path in ends else r for r in lesson.recordings
    ]
    return replace(lesson, recordings=recordings, problems=list(lesson.problems))


__all__ = [
    "AGE_GROUPS", "MAX_LESSON_S", "ROLES", "SAME_FRAME_TOLERANCE_S", "InputProblem", "LessonInfo", "LessonInput",
    "Recording", "Role", "SourceRow", "is_valid_lesson_id", "recording_of_frame", "with_end_times",
]  # fmt: skip
