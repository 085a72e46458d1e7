"""The database contract: one row per lesson in ``lesson_highlights``, read by the email campaign,
and the lesson's analytics beside it (``lesson_minutes``, ``lesson_totals``) for the data team.

Any SQLAlchemy URL works (``sqlite:///out/.highlights/highlights.sqlite`` by default,
``postgresql+psycopg://user@host/db`` in production). The schema is versioned with Alembic
(``highlights/persist/migrations``): opening the store creates or upgrades it to this release's head,
a database of release 0.1.0 included. A rerun updates the lesson's row in place (an upsert
keyed on ``lesson_id``) and replaces its analytics rows, in the same transaction.

The campaign's one query (:data:`CAMPAIGN_SQL`, :func:`highlight_for_lesson`)::

    SELECT gif_url, snippet_html, snippet_text
    FROM lesson_highlights
    WHERE lesson_id = :lesson_id AND status = 'ok'

No row means "no highlight for this lesson (yet)": send the email without it.

A failed rerun of a lesson that already has a completed row does not erase it: the row keeps
its status, GIF and snippet (and its analytics rows stay), and only ``last_error`` /
``updated_at`` change. A successful run clears ``last_error``.

The analytics tables (columns: the models below; the README, "Analytics in the database", has
example queries). Their figures come from the values a :class:`LessonRecord` carries (the
lesson's analytics and the selection's counts, read from its folder by the lesson's own run;
this module reads no file, :func:`figure_rows`); a smile-detection or presence figure switched off
(``[analytics] smiles / presence = false``) is NULL:

* ``lesson_minutes``: one row per lesson and minute (``bucket``; ``minute`` = the minute of
  lesson time it starts in), frames sampled, with the child, with an adult, adult only, smiling
  frames, smiling share (of the frames with the child), mean smile, seconds online per camera.
* ``lesson_totals``: one row per lesson, every status: disconnects and offline seconds per side,
  minutes with a parent (an adult's face) on the student's camera, child / adult presence,
  smiling share, ``reason_category`` (:data:`highlights.stages.analytics.REASON_CATEGORIES`), the run's
  ``started_at`` / ``finished_at`` and ``processing_s``.

Each run of the job adds a row to ``highlight_runs`` (:class:`HighlightRun`): when it started
and finished, on which host, its options, code and model versions, counts per status, lessons
per minute. Only one process of a run writes rows (the batch's dispatcher, see
:mod:`highlights.batch.dispatch`); several runs may write at once. SQLite is opened in WAL mode with a
busy timeout (:data:`SQLITE_BUSY_TIMEOUT_S`) and write transactions that take the write lock
up front (``BEGIN IMMEDIATE``), so concurrent writers wait for each other instead of failing;
PostgreSQL's ``ON CONFLICT`` upsert never doubles a row.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    create_engine,
    delete,
    event,
    select,
    text,
)
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from highlights.core.result import DONE_STATUSES, LessonResult
from highlights.files import make_dirs
from highlights.persist.migrations import upgrade_to_head
from highlights.stages.analytics import LessonAnalytics, reason_category

TABLE_NAME = "lesson_highlights"
MINUTES_TABLE = "lesson_minutes"
TOTALS_TABLE = "lesson_totals"
"""The selection stage's file in the lesson folder (``highlights.lesson.folder.SELECTION_FILE``)."""
RUNS_TABLE = "highlight_runs"
SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another one's lock. A row is written in milliseconds;
30 s covers a burst of many writers and a reader (the campaign) holding a long query."""

CAMPAIGN_SQL = (
    "SELECT gif_url, snippet_html, snippet_text FROM lesson_highlights "
    "WHERE lesson_id = :lesson_id AND status = 'ok'"
)


class Base(DeclarativeBase):
    pass


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime in every database.

    PostgreSQL's ``timestamptz`` keeps the instant but returns it in the session's zone; SQLite
    has no zone at all, and SQLAlchemy there drops the offset as written (a lesson start at
    -05:00 and its end at +05:30 then compare wrong). So values are converted to UTC on the way
    in (naive UTC text in SQLite) and come back aware, in UTC, from both.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: the database stores UTC, give an offset")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class LessonHighlight(Base):
    """One lesson's highlight; columns documented in the README ("Database")."""

    __tablename__ = TABLE_NAME

    lesson_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    gif_path: Mapped[str | None] = mapped_column(Text)
    gif_url: Mapped[str | None] = mapped_column(Text)
    gif_bytes: Mapped[int | None] = mapped_column(Integer)
    snippet_html: Mapped[str | None] = mapped_column(Text)
    snippet_text: Mapped[str | None] = mapped_column(Text)
    lesson_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lesson_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[float | None] = mapped_column(Float)
    student_disconnects: Mapped[int | None] = mapped_column(Integer)
    teacher_disconnects: Mapped[int | None] = mapped_column(Integer)
    student_offline_s: Mapped[float | None] = mapped_column(Float)
    teacher_offline_s: Mapped[float | None] = mapped_column(Float)
    frame_count: Mapped[int] = mapped_column(Integer, default=0)
    code_version: Mapped[str] = mapped_column(String(64), default="")
    versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    result_path: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _lesson_fk() -> Any:
    return mapped_column(String(128), ForeignKey(f"{TABLE_NAME}.lesson_id", ondelete="CASCADE"), primary_key=True)


class LessonMinute(Base):
    """One lesson's figures for one minute of lesson time (a bucket of ``bucket_s`` seconds)."""

    __tablename__ = MINUTES_TABLE

    lesson_id: Mapped[str] = _lesson_fk()
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    minute: Mapped[int] = mapped_column(Integer)
    """Minute of lesson time the bucket starts in (= ``bucket`` with the default 60 s buckets)."""
    bucket_s: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Wall-clock (UTC) start of the bucket: the lesson's start + ``start_s``."""
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    child_frames: Mapped[int | None] = mapped_column(Integer)
    adult_frames: Mapped[int | None] = mapped_column(Integer)
    adult_only_frames: Mapped[int | None] = mapped_column(Integer)
    smile_frames: Mapped[int | None] = mapped_column(Integer)
    smile_share: Mapped[float | None] = mapped_column(Float)
    """smile_frames / child_frames (NULL when the child was not seen)."""
    mean_smile: Mapped[float | None] = mapped_column(Float)
    """Mean smile-detection probability over the child's faces."""
    student_online_s: Mapped[float | None] = mapped_column(Float)
    teacher_online_s: Mapped[float | None] = mapped_column(Float)


class LessonTotals(Base):
    """One lesson's totals and outcome category (a row for every saved lesson, any status)."""

    __tablename__ = TOTALS_TABLE

    lesson_id: Mapped[str] = _lesson_fk()
    reason_category: Mapped[str | None] = mapped_column(String(32), index=True)
    bucket_s: Mapped[float | None] = mapped_column(Float)
    minutes: Mapped[int | None] = mapped_column(Integer)
    frames: Mapped[int | None] = mapped_column(Integer)
    student_disconnects: Mapped[int | None] = mapped_column(Integer)
    teacher_disconnects: Mapped[int | None] = mapped_column(Integer)
    student_offline_s: Mapped[float | None] = mapped_column(Float)
    teacher_offline_s: Mapped[float | None] = mapped_column(Float)
    minutes_with_parent: Mapped[int | None] = mapped_column(Integer)
    """Minutes (buckets) in which an adult's face was seen on the student's camera."""
    child_presence: Mapped[float | None] = mapped_column(Float)
    adult_presence: Mapped[float | None] = mapped_column(Float)
    smile_frames: Mapped[int | None] = mapped_column(Integer)
    smile_share: Mapped[float | None] = mapped_column(Float)
    smiliest_minute: Mapped[int | None] = mapped_column(Integer)
    processing_s: Mapped[float | None] = mapped_column(Float)
    """Seconds the run took on this lesson (``finished_at - started_at``, 1 s resolution)."""
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


COLUMNS = [c.name for c in LessonHighlight.__table__.columns]

RUN_COUNT_COLUMNS = ("ok", "no_highlight", "no_lesson", "failed", "busy", "withdrawn", "skipped")
RUN_STATUSES = ("running", "finished", "interrupted", "failed")
"""A run's ``status``: ``running`` from its start (and for ever where it was killed with SIGKILL
or its machine died), then ``finished``; ``interrupted`` where it was stopped (SIGTERM, Ctrl-C)
and ``failed`` where an error ended the whole run (the face models cannot be loaded, workers
that keep dying), both with the counts of the lessons done by then."""


class HighlightRun(Base):
    """One run of the job (``highlights run``); one row per run, written at its start and end.

    A run killed with SIGKILL keeps ``status = 'running'`` and no ``finished_at``; see
    :data:`RUN_STATUSES`."""

    __tablename__ = RUNS_TABLE

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16), default="running")  # RUN_STATUSES
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """executor, workers, threads, retries, time_limit_s, wait, force, lessons asked for."""
    code_version: Mapped[str] = mapped_column(String(64), default="")
    versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Code fingerprint and model versions (as in each lesson's result)."""
    lessons: Mapped[int] = mapped_column(Integer, default=0)
    ok: Mapped[int] = mapped_column(Integer, default=0)
    no_highlight: Mapped[int] = mapped_column(Integer, default=0)
    no_lesson: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    busy: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn: Mapped[int] = mapped_column(Integer, default=0)
    """Lessons withdrawn by hand (``highlights withdraw``), skipped by the run."""
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    """Lessons already done with the same inputs (counted in their status too)."""
    lessons_per_minute: Mapped[float | None] = mapped_column(Float)
    """Lessons processed (not skipped, not busy) per minute of the run's wall time."""


@dataclass
class LessonRecord:
    """Everything the database keeps of one lesson, as values: its result, the snippet's HTML and
    text, its analytics (:class:`~highlights.stages.analytics.LessonAnalytics`) and, for a
    ``no_highlight``, the selection's counts (for its ``reason_category``). The lesson's own run
    builds it (:func:`highlights.lesson.folder.lesson_record`); rows are made from it alone."""

    result: LessonResult
    snippet_html: str | None = None
    snippet_text: str | None = None
    analytics: LessonAnalytics | None = None
    selection_stats: dict[str, Any] | None = None

    @property
    def lesson_id(self) -> str:
        return self.result.lesson_id


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def row_values(record: LessonRecord) -> dict[str, Any]:
    """The ``lesson_highlights`` row a lesson maps to (without the timestamps)."""
    result = record.result
    bounds, disconnects = result.lesson, result.disconnects
    gif_path = str(result.gif_path.resolve()) if result.gif_path is not None else None
    result_path = str((result.folder / "result.json").resolve()) if result.folder else None
    if result.location:  # outputs in a bucket: the objects, not the folder it ran in
        gif_path = f"{result.location}/{result.gif}" if result.gif else None
        result_path = f"{result.location}/result.json"
    return {
        "lesson_id": result.lesson_id,
        "status": result.status,
        "reason": result.reason or "",
        "gif_path": gif_path,
        "gif_url": result.gif_url,
        "gif_bytes": result.gif_bytes,
        "snippet_html": record.snippet_html,
        "snippet_text": record.snippet_text,
        "lesson_start": _parse_time(bounds.start) if bounds else None,
        "lesson_end": _parse_time(bounds.end) if bounds else None,
        "duration_s": bounds.duration_s if bounds else None,
        "student_disconnects": disconnects.student if disconnects else None,
        "teacher_disconnects": disconnects.teacher if disconnects else None,
        "student_offline_s": disconnects.student_offline_s if disconnects else None,
        "teacher_offline_s": disconnects.teacher_offline_s if disconnects else None,
        "frame_count": len(result.frames),
        "code_version": str(result.versions.get("highlights", "")),
        "versions": result.versions,
        "fingerprint": result.fingerprint,
        "result_path": result_path,
        "last_error": None if result.status != "failed" else result.reason,
    }


def _number(value: Any) -> Any:
    """A JSON / pandas value as a plain number or None (NaN is None)."""
    if value is None:
        return None
    try:
        if value != value:  # NaN
            return None
    except (TypeError, ValueError):
        return None
    return value.item() if hasattr(value, "item") else value


def figure_rows(record: LessonRecord) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The lesson's ``lesson_totals`` row and ``lesson_minutes`` rows (without ``updated_at``)."""
    result, analytics = record.result, record.analytics
    summary = analytics.summary if analytics else {}
    disconnects = result.disconnects
    started, finished = _parse_time(result.started_at or None), _parse_time(result.finished_at or None)
    bucket_s = analytics.bucket_s if analytics else None
    smiliest = _number(summary.get("smiliest_bucket"))
    totals = {
        "lesson_id": result.lesson_id,
        "reason_category": reason_category(result.status, result.reason, record.selection_stats),
        "bucket_s": bucket_s,
        "minutes": len(analytics.series) if analytics else None,
        "frames": _number(summary.get("frames")),
        "student_disconnects": disconnects.student if disconnects else None,
        "teacher_disconnects": disconnects.teacher if disconnects else None,
        "student_offline_s": disconnects.student_offline_s if disconnects else None,
        "teacher_offline_s": disconnects.teacher_offline_s if disconnects else None,
        "minutes_with_parent": _number(summary.get("buckets_with_adult")),
        "child_presence": _number(summary.get("child_presence")),
        "adult_presence": _number(summary.get("adult_presence")),
        "smile_frames": _number(summary.get("smile_frames")),
        "smile_share": _number(summary.get("smile_share")),
        "smiliest_minute": int(smiliest * bucket_s // 60) if smiliest is not None and bucket_s else None,
        "processing_s": (finished - started).total_seconds() if started and finished else None,
        "started_at": started,
        "finished_at": finished,
    }
    minutes: list[dict[str, Any]] = []
    if analytics is not None and len(analytics.series):
        lesson_start = _parse_time(result.lesson.start) if result.lesson else None
        for record in analytics.series.to_dict("records"):
            start_s = float(record["start_s"])
            minutes.append({
                "lesson_id": result.lesson_id,
                "bucket": int(record["bucket"]),
                "minute": int(start_s // 60),
                "bucket_s": analytics.bucket_s,
                "started_at": lesson_start + timedelta(seconds=start_s) if lesson_start else None,
                "start_s": start_s,
                "end_s": float(record["end_s"]),
                "frames": int(record["frames"]),
                **{name: _number(record.get(name)) for name in (
                    "child_frames", "adult_frames", "adult_only_frames", "smile_frames", "smile_share",
                    "student_online_s", "teacher_online_s")},
                "mean_smile": _number(record.get("mean_child_smile")),
            })  # fmt: skip
    return totals, minutes


@dataclass(frozen=True)
class Highlight:
    """What the campaign gets for a lesson that has a highlight."""

    gif_url: str | None
    snippet_html: str
    snippet_text: str | None


class StoreError(RuntimeError):
    """The database cannot be opened (bad URL, missing driver, server unreachable, folder not
    creatable). The message names the database by its URL without the password."""


_PASSWORD_PARAMETER = re.compile(r"([?&;]password=)([^&;#]*)", re.IGNORECASE)


def _userinfo_password(url: str) -> tuple[int, int] | None:
    """Where the password of ``url``'s userinfo lies (start, end), or None: from the ``:``
    after the user name to the last ``@``, so a password with an unescaped ``@`` is whole
    (SQLAlchemy takes its first part for the password and the rest for the host)."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    end = url.rfind("@", start)
    colon = url.find(":", start, end) if end >= 0 else -1
    if colon < 0 or "@" in url[start:colon]:  # no password, or the user name ends at an earlier '@'
        return None
    return colon + 1, end


def masked_url(url: str) -> str:
    """``url`` as it may be shown (messages, the run summary, logs): the password in its
    userinfo and the value of every query parameter named ``password`` (in any case) are
    ``***``. The one place that decides what of a database URL is secret."""
    found = _userinfo_password(url)
    head, tail = (url[:found[0]] + "***", url[found[1]:]) if found else ("", url)
    return head + _PASSWORD_PARAMETER.sub(r"\1***", tail)


def hide_url_secrets(text: str, url: str) -> str:
    """``text`` (a driver's error message) with every password of ``url`` (see
    :func:`masked_url`) replaced by ``***``. Of a password with an unescaped ``@``, SQLAlchemy
    takes the part before it for the password and puts the rest in front of the host, which a
    driver names ("cannot resolve host 'rest@db'"): that rest is hidden where it precedes an ``@``."""
    secrets: set[str] = {match.group(2) for match in _PASSWORD_PARAMETER.finditer(url)}
    found = _userinfo_password(url)
    if found:
        password = url[found[0]:found[1]]
        first, at, rest = password.partition("@")
        secrets.update((password, first))
        if at:
            text = text.replace(rest + "@", "***@")
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def sqlite_file(url: URL | str) -> Path | None:
    """The file of a SQLite database URL (``sqlite:///out/h.sqlite``); None for another
    database, an in-memory one (:func:`in_memory`) or a ``file:`` URI (SQLite resolves those)."""
    url = make_url(url)
    database = url.database
    if url.get_backend_name() != "sqlite" or in_memory(url) or not database or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def in_memory(url: URL | str) -> bool:
    """Whether ``url`` is an in-memory SQLite database (``sqlite://``, ``sqlite:///``,
    ``sqlite:///:memory:``, a ``file:`` URI with ``mode=memory``): it is gone when the
    process ends, so a run's rows and a reader's view of them would be nothing."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return (database in ("", ":memory:") or url.query.get("mode") == "memory"
            or (database.startswith("file:") and "mode=memory" in database))


class NoDatabase(StoreError):
    """A reader (``highlights dashboard``) was pointed at a SQLite file that does not exist:
    readers create no database, so a typo in ``--db`` is not an empty night."""


def _make_sqlite_folder(url: URL) -> None:
    """Create the folder of a SQLite database file (SQLite creates the file, not its folder),
    and the file itself, not world-readable (0640 less the umask): it holds student names.
    SQLite gives its journal and WAL files the database file's permissions."""
    import os

    path = sqlite_file(url)
    if path is not None:
        if not path.parent.is_dir():
            make_dirs(path.parent, mode=0o750)  # e.g. OUT/.highlights
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o640))


class ResultStore:
    """The ``lesson_highlights`` table behind one SQLAlchemy URL.

    >>> store = ResultStore("sqlite:///out/highlights.sqlite")  # doctest: +SKIP
    >>> store.save(result)  # doctest: +SKIP
    >>> store.highlight_for_lesson("L-1001").gif_url  # doctest: +SKIP
    """

    def __init__(self, url_or_engine: str | Engine, *, create: bool = True) -> None:
        """``create=False`` (a reader): a SQLite file that does not exist raises
        :class:`NoDatabase` instead of being created, with its folder."""
        if isinstance(url_or_engine, Engine):
            self.engine = url_or_engine
            upgrade_to_head(self.engine)
            return
        try:
            parsed = make_url(url_or_engine)
        except Exception as error:
            detail = hide_url_secrets(str(error), url_or_engine)
            raise StoreError(
                f"database URL cannot be parsed ({type(error).__name__}: {detail}); "
                "expected e.g. postgresql+psycopg://user@host/db or sqlite:///out/highlights.sqlite"
            ) from error
        path = sqlite_file(parsed)
        if not create and path is not None and not path.is_file():
            raise NoDatabase(f"database {masked_url(url_or_engine)} cannot be opened: there is no database at {path}")
        try:
            _make_sqlite_folder(parsed)
            # hide_parameters: a failed statement's message must not carry the row's values
            # (the snippet holds the student's name) into logs, result.json and last_error.
            self.engine = create_engine(parsed, future=True, hide_parameters=True)
            if parsed.get_backend_name() == "sqlite":
                _sqlite_for_concurrent_writers(self.engine)
                _upgrade_sqlite_when_free(self.engine)
            else:
                upgrade_to_head(self.engine)  # creates or upgrades the schema (highlights.persist.migrations)
        except Exception as error:
            message = hide_url_secrets(str(error) or type(error).__name__, url_or_engine)
            raise StoreError(
                f"database {masked_url(url_or_engine)} cannot be opened: {type(error).__name__}: {message}"
            ) from error

    @property
    def url(self) -> str:
        """The database's URL as it may be shown (:func:`masked_url`)."""
        return masked_url(self.engine.url.render_as_string(hide_password=False))

    def error_text(self, error: BaseException) -> str:
        """A driver's message about this database as it may be shown (a result's reason,
        ``last_error``, the log): on one line, without the URL's password."""
        message = " ".join(str(error).split())
        if "readonly database" in message:
            message += self._unwritable_sqlite_files()
        return hide_url_secrets(message, self.engine.url.render_as_string(hide_password=False))

    def _unwritable_sqlite_files(self) -> str:
        """Which of a SQLite database's files this process may not write, by name: SQLite makes
        the ``-wal`` and ``-shm`` files with the database file's permissions, so a database once
        read-only stays so after ``chmod`` of its main file alone ('' for other databases)."""
        main = sqlite_file(self.engine.url)
        if main is None:
            return ""
        files = [main, main.with_name(main.name + "-wal"), main.with_name(main.name + "-shm")]
        refused = [f.name for f in files if f.exists() and not os.access(f, os.W_OK)]
        if not os.access(main.parent, os.W_OK):
            refused.append(f"its folder {main.parent.name or '.'}")
        return f" (not writable for this user: {', '.join(refused)})" if refused else ""

    def dispose(self) -> None:
        self.engine.dispose()

    def save(self, record: LessonRecord | LessonResult, *, now: datetime | None = None) -> None:
        """Insert or update the lesson's row and replace its analytics rows, in one transaction.

        A bare :class:`LessonResult` is a record without snippet or figures (a lesson that
        failed before making any)."""
        record = record if isinstance(record, LessonRecord) else LessonRecord(record)
        result = record.result
        now = now or datetime.now(timezone.utc)
        values = row_values(record)
        totals, minutes = figure_rows(record)
        table = LessonHighlight.__table__
        with self.engine.begin() as connection:
            existing = connection.execute(
                select(table.c.status).where(table.c.lesson_id == result.lesson_id)
            ).first()
            if result.status == "failed" and existing is not None and existing.status in DONE_STATUSES:
                # Keep the last completed outcome the campaign may already use; note the error.
                connection.execute(
                    table.update()
                    .where(table.c.lesson_id == result.lesson_id)
                    .values(last_error=result.reason, updated_at=now)
                )
                return
            update = {k: v for k, v in values.items() if k != "lesson_id"} | {"updated_at": now}
            dialect = connection.dialect.name
            if dialect in ("sqlite", "postgresql"):
                if dialect == "sqlite":
                    from sqlalchemy.dialects.sqlite import insert
                else:
                    from sqlalchemy.dialects.postgresql import insert
                statement = insert(table).values(**values, created_at=now, updated_at=now)
                statement = statement.on_conflict_do_update(index_elements=["lesson_id"], set_=update)
                connection.execute(statement)
            elif existing is None:
                connection.execute(table.insert().values(**values, created_at=now, updated_at=now))
            else:
                connection.execute(
                    table.update().where(table.c.lesson_id == result.lesson_id).values(**update)
                )
            # The analytics rows: a rerun replaces them (a lesson may have fewer minutes now).
            for model in (LessonMinute, LessonTotals):
                connection.execute(delete(model.__table__).where(model.__table__.c.lesson_id == result.lesson_id))
            connection.execute(LessonTotals.__table__.insert().values(**totals, updated_at=now))
            if minutes:
                connection.execute(LessonMinute.__table__.insert(), minutes)

    def start_run(self, run_id: str, *, host: str, options: dict[str, Any], started_at: datetime) -> None:
        """Insert the run's row (``status = 'running'``)."""
        table = HighlightRun.__table__
        with self.engine.begin() as connection:
            connection.execute(table.insert().values(
                run_id=run_id, host=host, status="running", started_at=started_at, options=options,
                lessons=int(options.get("lessons", 0)),
            ))

    def finish_run(self, run_id: str, *, finished_at: datetime, counts: dict[str, int], versions: dict[str, Any],
                   lessons_per_minute: float, status: str = "finished") -> None:
        """Complete the run's row: ``status`` (:data:`RUN_STATUSES`), end time, counts per status,
        versions, lessons per minute."""
        if status not in RUN_STATUSES:
            raise ValueError(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")
        table = HighlightRun.__table__
        values = {name: int(counts.get(name, 0)) for name in RUN_COUNT_COLUMNS}
        with self.engine.begin() as connection:
            connection.execute(table.update().where(table.c.run_id == run_id).values(
                status=status, finished_at=finished_at, versions=versions,
                code_version=str(versions.get("highlights", "")), lessons_per_minute=lessons_per_minute, **values,
            ))

    def run(self, run_id: str) -> dict[str, Any] | None:
        """A run's row as a dict, or None."""
        table = HighlightRun.__table__
        with self.engine.connect() as connection:
            found = connection.execute(select(table).where(table.c.run_id == run_id)).first()
        return dict(found._mapping) if found is not None else None

    def row(self, lesson_id: str) -> dict[str, Any] | None:
        """The lesson's whole row as a dict, or None."""
        table = LessonHighlight.__table__
        with self.engine.connect() as connection:
            found = connection.execute(select(table).where(table.c.lesson_id == lesson_id)).first()
        return dict(found._mapping) if found is not None else None

    def figures(self, lesson_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The lesson's ``lesson_totals`` row (or None) and its ``lesson_minutes`` rows in order."""
        totals, minutes = LessonTotals.__table__, LessonMinute.__table__
        with self.engine.connect() as connection:
            found = connection.execute(select(totals).where(totals.c.lesson_id == lesson_id)).first()
            rows = connection.execute(
                select(minutes).where(minutes.c.lesson_id == lesson_id).order_by(minutes.c.bucket)
            ).all()
        return (dict(found._mapping) if found is not None else None), [dict(r._mapping) for r in rows]

    def highlight_for_lesson(self, lesson_id: str) -> Highlight | None:
        """The campaign's query: the GIF and snippet of lesson ``lesson_id``, if it has one."""
        with self.engine.connect() as connection:
            found = connection.execute(text(CAMPAIGN_SQL), {"lesson_id": lesson_id}).first()
        if found is None:
            return None
        return Highlight(found.gif_url, found.snippet_html, found.snippet_text)


def _sqlite_for_concurrent_writers(engine: Engine) -> None:
    """WAL (readers never block the writer), a busy timeout, and ``BEGIN IMMEDIATE``: a
    transaction that reads then writes (the upsert) takes the write lock first, so two writers
    queue on the busy timeout instead of one failing with "database is locked" on the upgrade."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # pysqlite must not issue its own BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        # WAL is a property of the file: set once, by the first opener (switching needs a lock
        # that another opener may hold at that moment, and SQLite does not wait for it).
        if engine.url.database not in (None, "", ":memory:") and cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _upgrade_sqlite_when_free(engine: Engine) -> None:
    """:func:`upgrade_to_head` on SQLite, retried while another process opening the same new
    file at the same moment holds the lock SQLite will not wait for (switching a fresh file to
    WAL; two runs of a night starting together), for up to :data:`SQLITE_BUSY_TIMEOUT_S`."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    pause = 0.05
    while True:
        try:
            upgrade_to_head(engine)
            return
        except OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause > deadline:
                raise
            engine.dispose()  # a connection that saw the lock may hold a half-made state
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def highlight_for_lesson(url: str, lesson_id: str) -> Highlight | None:
    """One-shot form of :meth:`ResultStore.highlight_for_lesson` for a database URL."""
    store = ResultStore(url)
    try:
        return store.highlight_for_lesson(lesson_id)
    finally:
        store.dispose()
