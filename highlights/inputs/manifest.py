"""The recordings manifest (and the optional lessons file) in, one :class:`LessonInput` per lesson out.

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

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from highlights.core.lesson import (
    MAX_LESSON_S,
    ROLES,
    InputProblem,
    LessonInfo,
    LessonInput,
    Recording,
    SourceRow,
    is_valid_lesson_id,
)
from highlights.inputs.lessons_file import bad_id_message, read_lessons_rows
from highlights.inputs.rows import InputError, read_rows
from highlights.storage import objects

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("lesson_id", "role", "path", "started_at")
"""Required manifest columns; ``ended_at`` is optional."""


@dataclass
class Manifest:
    """A read manifest: lessons in first-seen order (a lesson only in the lessons file is not
    one), and the problems of rows that belong to no lesson of it. ``path`` is the file that was
    read (for a manifest in an object store, a temporary copy under the object's name, gone
    since: only its name is shown), ``location`` where it is (its URL, or ``path``)."""

    path: Path
    lessons: dict[str, LessonInput]
    problems: list[InputProblem] = field(default_factory=list)
    location: str | None = None


def read_manifest(
    path: Path | str, *, lessons_path: Path | str | None = None, timezone: str | None = None
) -> Manifest:
    """Read and validate a recordings manifest (CSV, or JSON Lines by extension or content).

    ``path`` and ``lessons_path`` may be object URLs (``s3://bucket/key``; see
    :mod:`highlights.storage.objects`): they are read from a private temporary copy. A row's
    relative ``path`` is taken from the manifest's own folder, wherever it is (a manifest at
    ``s3://b/2026-12-01/manifest.csv`` and ``L-1/student.webm`` give
    ``s3://b/2026-12-01/L-1/student.webm``); a row may name an object URL itself.

    ``timezone``: an IANA name (``Europe/Berlin``) given to ``started_at``/``ended_at`` values
    that carry no UTC offset; without it such values are problems, since guessing the zone would
    silently shift the lesson.

    Raises :class:`InputError` for a manifest (or lessons file) that is unusable as a whole,
    an object among them that cannot be read included.
    """
    zone = _zone(timezone)
    with _readable(path) as local:
        manifest = _read_manifest(local, str(path) if objects.is_object_url(str(path)) else None, zone)
    manifest.location = str(path) if objects.is_object_url(str(path)) else str(local)
    if lessons_path is not None:
        with _readable(lessons_path) as lessons_local:
            named_elsewhere = _join_lessons_file(manifest, lessons_local)
    else:
        named_elsewhere = 0
    for lesson in manifest.lessons.values():
        lesson.unattributed_rows = len(manifest.problems) - named_elsewhere
        if lesson.problems:
            log.warning("lesson %s: %d input problem(s)", lesson.lesson_id, len(lesson.problems))
    return manifest


@contextmanager
def _readable(location: Path | str) -> Iterator[Path]:
    """The local file to read for ``location``: itself, or a temporary copy of an object."""
    text = str(location)
    if not objects.looks_like_url(text):
        yield Path(location)
        return
    try:
        with objects.local_copy(text) as local:
            yield local
    except objects.ObjectStoreError as error:
        raise InputError(str(error)) from None


def _read_manifest(path: Path, base_url: str | None, zone: tzinfo | None) -> Manifest:
    """The manifest in the local file ``path``; ``base_url``: where it really is (an object
    URL), to resolve relative row paths against."""
    lessons: dict[str, LessonInput] = {}
    problems: list[InputProblem] = []
    seen_files: dict[object, tuple[int, str, str]] = {}  # file identity: (row, lesson, name) of its first mention

    for row_no, values, error in read_rows(path, required=MANIFEST_COLUMNS):
        raw_id = values.get("lesson_id", "").strip() if values else ""
        lesson_id = raw_id if is_valid_lesson_id(raw_id) else None
        if lesson_id is None:
            problems.append(InputProblem(path, row_no, None, error or bad_id_message(raw_id)))
            continue
        lesson = lessons.setdefault(lesson_id, LessonInput(lesson_id, [], LessonInfo(lesson_id)))
        if error is not None:
            lesson.problems.append(InputProblem(path, row_no, lesson_id, error))
            continue
        recording, errors = _recording(path, base_url, row_no, lesson_id, values, zone)
        if recording is not None:
            # A file is one person's camera in one lesson: listed again (any role, any lesson) is a mistake.
            identity = recording.url if recording.url is not None else _file_identity(recording.path)
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

    if problems:
        log.warning("%s: %d row(s) belong to no valid lesson", path.name, len(problems))
    return Manifest(path, lessons, problems)


def _file_identity(path: Path) -> object:
    """What tells two manifest rows name the same file: its device and inode where it can be
    read, so that a hard link (another name for the same file, which resolving the path does not
    reveal) is caught like the same path written twice; else the path itself (resolved already)."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return path
    return (status.st_dev, status.st_ino)


def _join_lessons_file(manifest: Manifest, lessons_path: Path) -> int:
    """Join the lessons file's rows to the manifest's lessons; returns how many of its problems
    went to ``manifest.problems`` although they name their lesson (one absent from the manifest):
    such a row cannot be another lesson's."""
    infos, problems, warnings = read_lessons_rows(lessons_path)
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
    path: Path, base_url: str | None, row_no: int, lesson_id: str, values: Mapping[str, str], zone: tzinfo | None
) -> tuple[Recording | None, list[str]]:
    errors: list[str] = []
    role = values.get("role", "").strip().lower()
    if role not in ROLES:
        errors.append(f"role {values.get('role', '')!r} is not 'student' or 'teacher'")
    raw_path = values.get("path", "").strip()
    media: Path | None = None
    url: str | None = None
    if not raw_path:
        errors.append("path is empty")
    elif objects.looks_like_url(raw_path) or (base_url is not None and not raw_path.startswith("/")):
        # An object: checked when the lesson's run downloads it (one request per recording there,
        # with retries and the lesson's own error), not here in the driver.
        try:
            url = str(objects.parse_url(objects.join_url(base_url, raw_path) if base_url and not
                                        objects.looks_like_url(raw_path) else raw_path))
            # Never a local file: "s3:/bucket/key" opens nothing by mistake before the download,
            # and its name is the object's file name, which the outputs show.
            media = Path(url)
            if not objects.parse_url(url).name:
                errors.append(f"recording {raw_path!r} names a folder, not an object")
        except objects.ObjectStoreError as error:
            errors.append(f"recording {raw_path!r} is not a usable object URL ({error.detail})")
            media = None
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
    return Recording(lesson_id, role, media, started_at, ended_at, SourceRow(path, row_no), url), errors  # type: ignore[arg-type]


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


def _zone(name: str | None) -> tzinfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)") from exc


__all__ = ["MANIFEST_COLUMNS", "InputError", "Manifest", "read_manifest"]
