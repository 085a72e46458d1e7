"""The database contract: one row per lesson in ``lesson_highlights``, read by the email campaign.

Any SQLAlchemy URL works (``sqlite:///out/highlights.sqlite`` by default,
``postgresql+psycopg://user@host/db`` in production). The table is created if missing.
A rerun updates the lesson's row in place (an upsert keyed on ``lesson_id``).

The campaign's one query (:data:`CAMPAIGN_SQL`, :func:`highlight_for_lesson`)::

    SELECT gif_url, snippet_html, snippet_text
    FROM lesson_highlights
    WHERE lesson_id = :lesson_id AND status = 'ok'

No row means "no highlight for this lesson (yet)": send the email without it.

A failed rerun of a lesson that already has a completed row does not erase it: the row keeps
its status, GIF and snippet, and only ``last_error`` / ``updated_at`` change. A successful run
clears ``last_error``.

Each run of the job adds a row to ``highlight_runs`` (:class:`HighlightRun`): when it started
and finished, on which host, its options, code and model versions, counts per status, lessons
per minute. Only one process of a run writes rows (the executors' parent, see
``highlights.executors``); several runs may write at once. SQLite is opened in WAL mode with a
busy timeout (:data:`SQLITE_BUSY_TIMEOUT_S`) and write transactions that take the write lock
up front (``BEGIN IMMEDIATE``), so concurrent writers wait for each other instead of failing;
PostgreSQL's ``ON CONFLICT`` upsert never doubles a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from highlights.results import DONE_STATUSES, LessonResult

TABLE_NAME = "lesson_highlights"
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
    lesson_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lesson_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


COLUMNS = [c.name for c in LessonHighlight.__table__.columns]

RUN_COUNT_COLUMNS = ("ok", "no_highlight", "no_lesson", "failed", "busy", "skipped")


class HighlightRun(Base):
    """One run of the job (``highlights run``); one row per run, written at its start and end.

    A run killed before its end keeps ``status = 'running'`` and no ``finished_at``."""

    __tablename__ = RUNS_TABLE

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | finished
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    """Lessons already done with the same inputs (counted in their status too)."""
    lessons_per_minute: Mapped[float | None] = mapped_column(Float)
    """Lessons processed (not skipped, not busy) per minute of the run's wall time."""


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def row_values(result: LessonResult) -> dict[str, Any]:
    """The row a result maps to (without the timestamps)."""
    bounds, disconnects = result.lesson, result.disconnects
    gif_path = result.gif_path
    snippet_html = snippet_text = None
    if result.snippet and result.folder is not None:
        snippet_html = (result.folder / result.snippet).read_text(encoding="utf-8")
    if result.snippet_text and result.folder is not None:
        snippet_text = (result.folder / result.snippet_text).read_text(encoding="utf-8")
    return {
        "lesson_id": result.lesson_id,
        "status": result.status,
        "reason": result.reason or "",
        "gif_path": str(gif_path.resolve()) if gif_path is not None else None,
        "gif_url": result.gif_url,
        "gif_bytes": result.gif_bytes,
        "snippet_html": snippet_html,
        "snippet_text": snippet_text,
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
        "result_path": str((result.folder / "result.json").resolve()) if result.folder else None,
        "last_error": None if result.status != "failed" else result.reason,
    }


@dataclass(frozen=True)
class Highlight:
    """What the campaign gets for a lesson that has a highlight."""

    gif_url: str | None
    snippet_html: str
    snippet_text: str | None


class StoreError(RuntimeError):
    """The database cannot be opened (bad URL, missing driver, server unreachable, folder not
    creatable). The message names the database by its URL without the password."""


def _make_sqlite_folder(url: URL) -> None:
    """Create the folder of a SQLite database file (SQLite creates the file, not its folder)."""
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


class ResultStore:
    """The ``lesson_highlights`` table behind one SQLAlchemy URL.

    >>> store = ResultStore("sqlite:///out/highlights.sqlite")  # doctest: +SKIP
    >>> store.save(result)  # doctest: +SKIP
    >>> store.highlight_for_lesson("L-1001").gif_url  # doctest: +SKIP
    """

    def __init__(self, url_or_engine: str | Engine) -> None:
        if isinstance(url_or_engine, Engine):
            self.engine = url_or_engine
            Base.metadata.create_all(self.engine)
            return
        try:
            parsed = make_url(url_or_engine)
        except Exception as error:  # noqa: BLE001 - never echo the URL: it may hold a password
            raise StoreError(
                f"database URL cannot be parsed ({type(error).__name__}: {error}); "
                "expected e.g. postgresql+psycopg://user@host/db or sqlite:///out/highlights.sqlite"
            ) from error
        try:
            _make_sqlite_folder(parsed)
            # hide_parameters: a failed statement's message must not carry the row's values
            # (the snippet holds the student's name) into logs, result.json and last_error.
            self.engine = create_engine(parsed, future=True, hide_parameters=True)
            if parsed.get_backend_name() == "sqlite":
                _sqlite_for_concurrent_writers(self.engine)
            Base.metadata.create_all(self.engine)
        except Exception as error:  # noqa: BLE001
            message = str(error) or type(error).__name__
            if parsed.password:
                message = message.replace(str(parsed.password), "***")
            raise StoreError(
                f"database {parsed.render_as_string(hide_password=True)} cannot be opened: "
                f"{type(error).__name__}: {message}"
            ) from error

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()

    def save(self, result: LessonResult, *, now: datetime | None = None) -> None:
        """Insert or update the lesson's row in one transaction."""
        now = now or datetime.now(timezone.utc)
        values = row_values(result)
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

    def start_run(self, run_id: str, *, host: str, options: dict[str, Any], started_at: datetime) -> None:
        """Insert the run's row (``status = 'running'``)."""
        table = HighlightRun.__table__
        with self.engine.begin() as connection:
            connection.execute(table.insert().values(
                run_id=run_id, host=host, status="running", started_at=started_at, options=options,
                lessons=int(options.get("lessons", 0)),
            ))

    def finish_run(self, run_id: str, *, finished_at: datetime, counts: dict[str, int], versions: dict[str, Any],
                   lessons_per_minute: float) -> None:
        """Complete the run's row: end time, counts per status, versions, lessons per minute."""
        table = HighlightRun.__table__
        values = {name: int(counts.get(name, 0)) for name in RUN_COUNT_COLUMNS}
        with self.engine.begin() as connection:
            connection.execute(table.update().where(table.c.run_id == run_id).values(
                status="finished", finished_at=finished_at, versions=versions,
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
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def highlight_for_lesson(url: str, lesson_id: str) -> Highlight | None:
    """One-shot form of :meth:`ResultStore.highlight_for_lesson` for a database URL."""
    store = ResultStore(url)
    try:
        return store.highlight_for_lesson(lesson_id)
    finally:
        store.dispose()
