"""Stage 1: the recordings manifest (and the optional lessons file) in, one input per lesson out.

The manifest lists every recording segment of every lesson, one row each::

    lesson_id,role,path,started_at[,ended_at]
    L-1001,teacher,L-1001/teacher-1.mp4,2026-11-21T15:00:03+00:00
    L-1001,student,L-1001/student-1.webm,2026-11-21T15:01:40+00:00

as CSV, or as JSON Lines (``.jsonl``/``.ndjson``, or any file whose first character is ``{``)
with the same keys. A nightly batch must not lose every lesson to one bad row, so problems are
collected, not raised: each one names the file and the row it came from, spoils the lesson it
belongs to (``LessonInput.problems``) and leaves the others alone. Rows that belong to no valid
lesson land in ``Manifest.problems``. Only a manifest that is unusable as a whole (missing,
empty, without the required columns) raises :class:`InputError`.

The lessons file (CSV or JSON Lines, ``lesson_id`` plus optional ``student_name``, ``subject``,
``locale``, ``lesson_url`` and any other columns, kept in ``LessonInfo.extra``) carries what the
email stage needs; it joins on ``lesson_id``.

>>> manifest = read_manifest("recordings.csv", lessons_path="lessons.csv")  # doctest: +SKIP
>>> for lesson in manifest.lessons.values():  # doctest: +SKIP
...     print(lesson.lesson_id, len(lesson.recordings), [str(p) for p in lesson.problems])
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone as dt_timezone, tzinfo
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

Role = Literal["student", "teacher"]
ROLES: tuple[Role, ...] = ("student", "teacher")

MANIFEST_COLUMNS = ("lesson_id", "role", "path", "started_at")
"""Required manifest columns; ``ended_at`` is optional."""
MAX_LESSON_S = 24 * 3600
"""Longest a recording segment, and so a lesson, may last (seconds): a lesson takes an hour or
two, a day none. Longer is a typo in an end time (a year off), and the timeline stage would
plan a sample point for every second of it (a century: 3 billion points, unbounded memory), so
such a row is an error of its lesson and :func:`highlights.timeline.plan_lesson` refuses such a lesson."""
LESSON_INFO_FIELDS = ("student_name", "subject", "locale", "lesson_url", "student_age_group")
"""Lessons-file columns with a field of their own in :class:`LessonInfo`; others go to ``extra``."""

# The first character is a letter or digit: lesson folders then never start with a dot, so none
# can be the job's own folder (highlights.config.JOB_DIR_NAME, ".highlights") or a hidden file.
_LESSON_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
AGE_GROUPS = ("child", "adult")
"""Values of the lessons file's ``student_age_group`` column (see :mod:`highlights.selection`)."""
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_JSONL_SUFFIXES = {".jsonl", ".ndjson"}
_JSON_LESSON_ID = re.compile(r'"lesson_id"\s*:\s*"([^"\\]{1,64})"')


class InputError(ValueError):
    """The manifest (or lessons) file as a whole is unusable: missing, empty, no header,
    required columns absent, or an unknown time zone was named."""


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
    :func:`highlights.probing.resolve_end_times` reads it from the media."""

    lesson_id: str
    role: Role
    path: Path
    started_at: datetime
    ended_at: datetime | None
    source: SourceRow


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
    (:func:`highlights.timeline.covering_recording`: the later start, the first listed on a tie).
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


@dataclass
class Manifest:
    """A read manifest: lessons in first-seen order (a lesson only in the lessons file is not
    one), and the problems of rows that belong to no lesson of it."""

    path: Path
    lessons: dict[str, LessonInput]
    problems: list[InputProblem] = field(default_factory=list)


def is_valid_lesson_id(value: str) -> bool:
    """Lesson ids name folders and files of later stages, so they must be safe as one path
    component: ``[A-Za-z0-9_.-]{1,64}``, starting with a letter or digit, and no ``..``."""
    return bool(_LESSON_ID.fullmatch(value)) and ".." not in value and value not in {".", ".."}


def read_manifest(
    path: Path | str, *, lessons_path: Path | str | None = None, timezone: str | None = None
) -> Manifest:
    """Read and validate a recordings manifest (CSV, or JSON Lines by extension or content).

    ``timezone``: an IANA name (``Europe/Berlin``) given to ``started_at``/``ended_at`` values
    that carry no UTC offset; without it such values are problems, since guessing the zone would
    silently shift the lesson.
    """
    path = Path(path)
    zone = _zone(timezone)
    lessons: dict[str, LessonInput] = {}
    problems: list[InputProblem] = []
    seen_files: dict[object, tuple[int, str, str]] = {}  # file identity: (row, lesson, name) of its first mention

    for row_no, values, error in _rows(path, required=MANIFEST_COLUMNS):
        raw_id = values.get("lesson_id", "").strip() if values else ""
        lesson_id = raw_id if is_valid_lesson_id(raw_id) else None
        if lesson_id is None:
            problems.append(InputProblem(path, row_no, None, error or _bad_id(raw_id)))
            continue
        lesson = lessons.setdefault(lesson_id, LessonInput(lesson_id, [], LessonInfo(lesson_id)))
        if error is not None:
            lesson.problems.append(InputProblem(path, row_no, lesson_id, error))
            continue
        recording, errors = _recording(path, row_no, lesson_id, values, zone)
        if recording is not None:
            # A file is one person's camera in one lesson: listed again (any role, any lesson) is a mistake.
            identity = _file_identity(recording.path)
            if identity in seen_files:
                first_row, first_lesson, first_name = seen_files[identity]
                name = recording.path.name
                errors.append(f"{name} is listed twice (also row {first_row})" if name == first_name
                              else f"{name} is the same file as {first_name} (row {first_row})")
                if first_lesson != lesson_id:
                    # Which of the two lessons the file belongs to is unknown: the first mention
                    # must not win (a typo in one lesson's row would give it another child's
                    # face, and the outcome would hang on the order of the rows). Both fail.
                    again = "" if name == first_name else f" as {name}"
                    lessons[first_lesson].problems.append(InputProblem(
                        path, first_row, first_lesson,
                        f"{first_name} is listed again for lesson {lesson_id} (row {row_no}{again})"))
            else:
                seen_files[identity] = (row_no, lesson_id, recording.path.name)
        lesson.problems += [InputProblem(path, row_no, lesson_id, message) for message in errors]
        if recording is not None and not errors:
            lesson.recordings.append(recording)

    unattributed_here = len(problems)
    manifest = Manifest(path, lessons, problems)
    named_elsewhere = _join_lessons_file(manifest, Path(lessons_path)) if lessons_path is not None else 0
    for lesson in manifest.lessons.values():
        lesson.unattributed_rows = len(manifest.problems) - named_elsewhere
        if lesson.problems:
            log.warning("lesson %s: %d input problem(s)", lesson.lesson_id, len(lesson.problems))
    if unattributed_here:
        log.warning("%s: %d row(s) belong to no valid lesson", path.name, unattributed_here)
    return manifest


def _file_identity(path: Path) -> object:
    """What tells two manifest rows name the same file: its device and inode where it can be
    read, so that a hard link (another name for the same file, which resolving the path does not
    reveal) is caught like the same path written twice; else the path itself (resolved already)."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return path
    return (status.st_dev, status.st_ino)


def read_lessons_file(path: Path | str) -> tuple[dict[str, LessonInfo], list[InputProblem]]:
    """Read the lessons file alone: infos by lesson id, and the problems of its rows (each with
    the lesson it spoils, or None when the row names no valid lesson). Warnings (see
    :attr:`LessonInput.warnings`) are left out; :func:`read_manifest` attaches them to lessons."""
    infos, problems, _ = _read_lessons_file(Path(path))
    return infos, problems


def _read_lessons_file(path: Path) -> tuple[dict[str, LessonInfo], list[InputProblem], list[InputProblem]]:
    infos: dict[str, LessonInfo] = {}
    problems: list[InputProblem] = []
    warnings: list[InputProblem] = []
    for row_no, values, error in _rows(path, required=("lesson_id",)):
        raw_id = values.get("lesson_id", "").strip() if values else ""
        lesson_id = raw_id if is_valid_lesson_id(raw_id) else None
        if error is not None or lesson_id is None:
            problems.append(InputProblem(path, row_no, lesson_id, error or _bad_id(raw_id)))
            continue
        if lesson_id in infos:
            previous = infos[lesson_id].source
            problems.append(InputProblem(path, row_no, lesson_id, f"lesson listed twice (also row {previous.row if previous else '?'})"))
            continue
        info, errors, notes = _lesson_info(path, row_no, lesson_id, values)
        problems += [InputProblem(path, row_no, lesson_id, message) for message in errors]
        warnings += [InputProblem(path, row_no, lesson_id, message) for message in notes]
        infos[lesson_id] = info
    return infos, problems, warnings


def _bad_id(raw_id: str) -> str:
    if not raw_id:
        return "lesson_id is empty"
    return f"lesson_id {raw_id!r} is not a valid id (1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit, no '..')"


def _join_lessons_file(manifest: Manifest, lessons_path: Path) -> int:
    """Join the lessons file's rows to the manifest's lessons; returns how many of its problems
    went to ``manifest.problems`` although they name their lesson (one absent from the manifest):
    such a row cannot be another lesson's."""
    infos, problems, warnings = _read_lessons_file(lessons_path)
    for problem in warnings:
        if problem.lesson_id in manifest.lessons:
            manifest.lessons[problem.lesson_id].warnings.append(problem)
    named_elsewhere = 0
    for problem in problems:
        if problem.lesson_id in manifest.lessons:
            manifest.lessons[problem.lesson_id].problems.append(problem)
        elif problem.lesson_id is None:
            manifest.problems.append(problem)
        else:
            # No lesson to spoil: a line of the summary ("lessons file problem: ..."), not a
            # failed lesson (and a database row) for a lesson this run has no recordings of.
            message = f"lesson {problem.lesson_id} (not in the manifest): {problem.message}"
            manifest.problems.append(replace(problem, lesson_id=None, message=message))
            named_elsewhere += 1
    for lesson_id, info in infos.items():
        if lesson_id in manifest.lessons:
            manifest.lessons[lesson_id].info = info
        else:
            # A lessons file may list more lessons than this manifest (a day's schedule, one
            # manifest per shard): such a lesson is not this run's, and gets no row from it.
            log.info("lesson %s is in %s but not in the manifest: not run", lesson_id, lessons_path.name)
    return named_elsewhere


def _recording(
    path: Path, row_no: int, lesson_id: str, values: Mapping[str, str], zone: tzinfo | None
) -> tuple[Recording | None, list[str]]:
    errors: list[str] = []
    role = values.get("role", "").strip().lower()
    if role not in ROLES:
        errors.append(f"role {values.get('role', '')!r} is not 'student' or 'teacher'")
    raw_path = values.get("path", "").strip()
    media: Path | None = None
    if not raw_path:
        errors.append("path is empty")
    else:
        try:
            media = Path(raw_path).expanduser()
            media = (media if media.is_absolute() else path.parent / media).resolve()
            if not media.is_file():
                errors.append(f"recording {raw_path!r} not found" if not media.exists() else f"{raw_path!r} is not a file")
        except (OSError, RuntimeError, ValueError) as exc:
            # A symlink loop (RuntimeError from resolve), a name too long for the file system,
            # a folder on the way the job may not enter, a NUL byte: a problem of this row, not
            # a traceback that stops the whole batch.
            reason = "a symlink loop" if isinstance(exc, RuntimeError) else (
                exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a usable path")
            errors.append(f"recording {raw_path!r} cannot be opened ({reason})")
            media = None
    started_at = _timestamp("started_at", values.get("started_at", ""), zone, errors, required=True)
    ended_at = _timestamp("ended_at", values.get("ended_at", ""), zone, errors, required=False)
    if started_at is not None and ended_at is not None and ended_at <= started_at:
        errors.append(f"ended_at {values['ended_at'].strip()!r} is not after started_at")
    elif started_at is not None and ended_at is not None and (ended_at - started_at).total_seconds() > MAX_LESSON_S:
        errors.append(f"ended_at {values['ended_at'].strip()!r} is {_span(ended_at - started_at)} after started_at: "
                      f"a recording lasts at most {MAX_LESSON_S // 3600} hours")
    if errors or media is None or started_at is None:
        return None, errors
    return Recording(lesson_id, role, media, started_at, ended_at, SourceRow(path, row_no)), errors  # type: ignore[arg-type]


def _span(delta: timedelta) -> str:
    """A long duration for people: hours up to two days, then days."""
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:,.0f} days"


def _timestamp(name: str, raw: str, zone: tzinfo | None, errors: list[str], *, required: bool) -> datetime | None:
    raw = raw.strip()
    if not raw:
        if required:
            errors.append(f"{name} is empty")
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        errors.append(f"{name} {raw!r} is not an ISO-8601 time (e.g. 2026-11-21T15:00:03+00:00)")
        return None
    local = value.tzinfo is None or value.utcoffset() is None  # a wall-clock time without an offset
    if local and zone is None:
        errors.append(f"{name} {raw!r} has no UTC offset; pass --timezone")
        return None
    try:
        if local:
            problem = _local_time_problem(value, zone)
            if problem:
                errors.append(f"{name} {raw!r} {problem}")
                return None
            # To UTC at once: Python subtracts and compares datetimes sharing one ZoneInfo by
            # wall clock, which is an hour off across a daylight-saving change.
            value = value.replace(tzinfo=zone).astimezone(dt_timezone.utc)
        # The job computes with this time: the end of a recording (start plus its decoded
        # length), UTC for result.json and the database. A time at the edge of what a datetime
        # holds (year 9999, or 9999-12-31T23:00-14:00, which is past it in UTC) would overflow
        # there, failing the lesson without its row or stopping `highlights timeline` altogether.
        utc = value.astimezone(dt_timezone.utc)
        utc - timedelta(seconds=2 * MAX_LESSON_S), utc + timedelta(seconds=2 * MAX_LESSON_S)
    except OverflowError:
        errors.append(f"{name} {raw!r} is out of range: no recording was made then")
        return None
    return value


def _local_time_problem(value: datetime, zone: tzinfo) -> str | None:
    """Why a wall-clock time without an offset cannot be placed in ``zone``, or None.
    Raises OverflowError at the edge of the calendar."""
    where = f"in time zone {getattr(zone, 'key', zone)}"
    first = value.replace(tzinfo=zone)
    if first.astimezone(dt_timezone.utc).astimezone(zone).replace(tzinfo=None) != value:
        # A time the clocks skip (02:30 when they go from 02:00 to 03:00): Python would quietly
        # move it by the jump, and the row would fail later, puzzlingly ("ended_at is not after
        # started_at"), or the lesson would shift by an hour.
        return (f"does not exist {where}: the clocks jump forward over it (daylight saving time); "
                "correct the time or give it with its UTC offset")
    if value.replace(tzinfo=zone, fold=1).utcoffset() != first.utcoffset():
        # A time that happens twice (02:30 when the clocks go back from 03:00 to 02:00): Python
        # takes the first silently, and a lesson whose recordings straddle the change would be
        # put together an hour apart. Only the offset can say which it was.
        return f"happens twice {where}: the clocks go back over it (daylight saving time); give it with its UTC offset"
    return None


def _lesson_info(
    path: Path, row_no: int, lesson_id: str, values: Mapping[str, str]
) -> tuple[LessonInfo, list[str], list[str]]:
    """The row's :class:`LessonInfo`, its errors (they fail the lesson) and warnings (they do
    not). Messages name columns, never their values: lesson metadata stays out of logs."""
    errors: list[str] = []
    warnings: list[str] = []

    def optional(key: str) -> str | None:
        value = values.get(key, "").strip()
        return value or None

    locale = (optional("locale") or "en").replace("_", "-")
    if not _LOCALE.fullmatch(locale):
        errors.append("locale is not a language tag such as 'en' or 'pt-BR'")
        locale = "en"
    url = optional("lesson_url")
    if url is not None and not _usable_link(url):
        # The link is a nicety of the email: the snippet goes out without it, and the problem
        # is reported without the value (it may carry the student's name in its query string).
        warnings.append("lesson_url is not a usable http(s) link: left out of the snippet")
        url = None
    age_group = optional("student_age_group")
    if age_group is not None and age_group.lower() not in AGE_GROUPS:
        # Not a warning: guessing would put a child's lesson under the adult rule.
        errors.append(f"student_age_group must be {' or '.join(AGE_GROUPS)}")
        age_group = None
    extra = {key: value for key, value in values.items() if key not in ("lesson_id", *LESSON_INFO_FIELDS) and value != ""}
    info = LessonInfo(
        lesson_id, student_name=optional("student_name"), subject=optional("subject"), locale=locale,
        lesson_url=url, student_age_group=age_group.lower() if age_group else None, extra=extra,
        source=SourceRow(path, row_no),
    )
    return info, errors, warnings


def _usable_link(url: str) -> bool:
    """Whether ``url`` can be an ``href`` in the email: an absolute http(s) URL without
    characters that must be percent-encoded (the rule of :func:`highlights.email.check_absolute_url`);
    never javascript: & co."""
    from highlights.email import check_absolute_url  # the email stage owns the rule

    try:
        check_absolute_url(url, what="lesson_url")
    except ValueError:
        return False
    return urlsplit(url).scheme in ("http", "https")


def _rows(path: Path, *, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    """(row number, values as stripped strings or None, error or None) for every data row."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: the file is empty")
    if path.suffix.lower() in _JSONL_SUFFIXES or _starts_like_json(path):
        yield from _jsonl_rows(path, required)
    else:
        yield from _csv_rows(path, required)


def _starts_like_json(path: Path) -> bool:
    """Whether the file's first non-blank character is ``{``: JSON Lines under another name
    (``manifest.json``, ``.txt``). No CSV header starts with a brace."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{")


def _csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    try:
        # surrogateescape: a stray non-UTF-8 byte spoils its row (found below), not the file.
        handle = open(path, newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read: {exc}") from exc
    with handle:
        lines = _LineLog(handle)
        reader = csv.reader(lines)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path.name}: cannot read the header: {exc}") from exc
        if header and any(_undecodable(name) for name in header):
            raise InputError(f"{path.name}: the header is not UTF-8 text")
        columns = [name.strip().lower() for name in header or []]
        missing = [name for name in required if name not in columns]
        if not columns or missing:
            raise InputError(
                f"{path.name}: the header must name the columns {', '.join(required)}"
                + (f" (missing: {', '.join(missing)})" if columns else " (no header)")
            )
        duplicated = sorted({name for name in columns if columns.count(name) > 1 and name})
        if duplicated:
            raise InputError(f"{path.name}: column(s) named twice in the header: {', '.join(duplicated)}")
        last_line = reader.line_num
        while True:
            first_line = last_line + 1
            lines.taken.clear()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                last_line = reader.line_num
                # The row still names its lesson (a name past the field size limit, a stray
                # quote): the problem then spoils that lesson instead of vanishing among rows
                # that belong to none.
                yield from _unreadable(first_line, last_line, lines.taken, columns, str(exc))
                continue
            last_line = reader.line_num
            if last_line > first_line and any(_lesson_id_of_line(line, columns) for line in lines.taken[1:]):
                # A quoted value ran over line breaks that start rows of their own (each names a
                # lesson): a stray quote swallowed them, and each of those lessons would otherwise
                # run without its row, or vanish. A value that merely spans lines (a notes cell
                # exported from a spreadsheet) is read as it is.
                yield from _unreadable(first_line, last_line, lines.taken, columns, None)
                continue
            if not fields or all(not value.strip() for value in fields):
                continue  # blank lines are layout, not rows
            if any(_undecodable(value) for value in fields):
                values = {k: v.strip() for k, v in zip(columns, fields) if not _undecodable(v)}
                yield first_line, values, "not UTF-8 text (save the file as UTF-8)"
                continue
            if len(fields) != len(columns):
                values = dict(zip(columns, (v.strip() for v in fields)))
                yield first_line, values, f"{len(fields)} fields where the header has {len(columns)}"
                continue
            yield first_line, {name: value.strip() for name, value in zip(columns, fields) if name}, None


class _LineLog:
    """The lines a ``csv.reader`` takes from ``handle`` since ``taken`` was last cleared."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.taken: list[str] = []

    def __iter__(self) -> _LineLog:
        return self

    def __next__(self) -> str:
        line = next(self.handle)
        self.taken.append(line)
        return line


def _unreadable(
    first_line: int, last_line: int, lines: list[str], columns: list[str], error: str | None
) -> Iterator[tuple[int, dict[str, str] | None, str]]:
    """The rows of a CSV record that cannot be read (``error``) or that swallowed line breaks
    (lines ``first_line`` to ``last_line``): one entry for each lesson id found at the start of
    one of its physical lines, with that line's number, so that every lesson whose row was
    swallowed fails instead of running without it; one without an id if none is found."""
    if last_line > first_line:
        message = (f"unreadable row: lines {first_line}-{last_line} read as one row (a quote opened on line "
                   f"{first_line} is not closed on it: a stray quote?)" + (f"; {error}" if error else ""))
    else:
        message = f"unreadable row: {error}"
    found = False
    for offset, line in enumerate(lines):
        lesson_id = _lesson_id_of_line(line, columns)
        if lesson_id is not None:
            found = True
            yield first_line + offset, {"lesson_id": lesson_id}, message
    if not found:
        yield first_line, None, message


def _lesson_id_of_line(line: str, columns: list[str]) -> str | None:
    """The valid lesson id in the ``lesson_id`` column of one physical line read alone, or None.
    Only the id is taken: the rest of a line of a broken row is not trusted."""
    if "lesson_id" not in columns:
        return None
    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(max(limit, len(line) + 1))
        fields = next(csv.reader([line]), [])
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(limit)
    index = columns.index("lesson_id")
    lesson_id = fields[index].strip() if index < len(fields) else ""
    return lesson_id if is_valid_lesson_id(lesson_id) else None


def _jsonl_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    try:
        handle = open(path, encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read: {exc}") from exc
    with handle:
        line_no = 0
        while True:
            try:
                line = handle.readline()
            except UnicodeDecodeError as exc:
                raise InputError(f"{path.name}: not UTF-8 text: {exc}") from exc
            if not line:
                return
            line_no += 1
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                # A broken line that still shows its lesson id spoils that lesson (as _unreadable does for CSV).
                # RecursionError: arrays or objects nested thousands deep, which Python's parser refuses.
                found = _JSON_LESSON_ID.search(line)
                values = {"lesson_id": found.group(1).strip()} if found else None
                why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                yield line_no, values, "not UTF-8 text" if _undecodable(line) else f"not valid JSON: {why}"
                continue
            if not isinstance(record, dict):
                yield line_no, None, "not a JSON object"
                continue
            values = {str(k).strip().lower(): _text(v) for k, v in record.items()}
            if _undecodable(line):
                values = {k: v for k, v in values.items() if not _undecodable(k + v)}
                yield line_no, values, "not UTF-8 text (save the file as UTF-8)"
                continue
            missing = [name for name in required if not values.get(name)]
            if missing:
                yield line_no, values, f"missing {', '.join(missing)}"
                continue
            yield line_no, values, None


def _undecodable(text: str) -> bool:
    """Whether ``text`` holds bytes that were not UTF-8 (kept as lone surrogates by
    ``errors="surrogateescape"``)."""
    return any("\udc80" <= char <= "\udcff" for char in text)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False)


def _zone(name: str | None) -> tzinfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)") from exc


def with_end_times(lesson: LessonInput, ends: Mapping[Path, datetime]) -> LessonInput:
    """A copy of ``lesson`` whose recordings without ``ended_at`` take it from ``ends``."""
    recordings = [
        replace(r, ended_at=ends[r.path]) if r.ended_at is None and r.path in ends else r for r in lesson.recordings
    ]
    return replace(lesson, recordings=recordings, problems=list(lesson.problems))
