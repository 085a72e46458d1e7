"""The database contract: upsert per lesson, reruns update in place, the campaign's query."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from highlights.core.frameref import FrameRef
from highlights.core.result import Disconnects, HighlightFrame, LessonBounds, LessonResult
from highlights.lesson.folder import lesson_record
from highlights.persist.store import (
    CAMPAIGN_SQL,
    NoDatabase,
    ResultStore,
    StoreError,
    highlight_for_lesson,
    in_memory,
    masked_url,
)

START = datetime(2026, 11, 20, 16, 0, tzinfo=timezone.utc)


def _ok(folder, lesson_id="L-1", gif="tok3n.gif", html="<p>hi</p>") -> LessonResult:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "snippet.html").write_text(html)
    (folder / "snippet.txt").write_text("hi")
    (folder / gif).write_bytes(b"GIF89a")
    return LessonResult(
        lesson_id,
        "ok",
        lesson=LessonBounds("2026-11-20T16:00:00+00:00", "2026-11-20T16:30:00+00:00", 1800.0),
        disconnects=Disconnects(1, 0, 20.0, 0.0),
        frames=[HighlightFrame(FrameRef(i, float(i), START + timedelta(seconds=i), Path("s.webm"), float(i)), 0.9, 0.8)
                for i in range(3)],
        gif=gif,
        gif_url=f"https://cdn.example/h/{gif}",
        gif_bytes=6,
        snippet="snippet.html",
        snippet_text="snippet.txt",
        versions={"highlights": "0.1.0", "smile_model": "smile-1"},
        fingerprint="abc",
        folder=folder,
    )


def _exercise(store: ResultStore, tmp_path, lesson_id: str) -> None:
    t0 = datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)
    store.save(lesson_record(_ok(tmp_path / "a", lesson_id)), now=t0)
    row = store.row(lesson_id)
    assert row["status"] == "ok" and row["frame_count"] == 3 and row["student_disconnects"] == 1
    assert row["snippet_html"] == "<p>hi</p>" and row["code_version"] == "0.1.0"
    assert row["versions"]["smile_model"] == "smile-1"
    assert row["gif_path"].endswith("tok3n.gif")

    # A rerun updates the row in place; created_at stays.
    store.save(lesson_record(_ok(tmp_path / "b", lesson_id, gif="n3w.gif", html="<p>new</p>")), now=t0 + timedelta(hours=1))
    row = store.row(lesson_id)
    assert row["gif_url"].endswith("n3w.gif") and row["snippet_html"] == "<p>new</p>"
    assert row["created_at"].replace(tzinfo=None) == t0.replace(tzinfo=None)
    assert row["updated_at"].replace(tzinfo=None) == (t0 + timedelta(hours=1)).replace(tzinfo=None)
    with store.engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM lesson_highlights WHERE lesson_id = :l"), {"l": lesson_id}
        ).scalar()
    assert count == 1

    highlight = store.highlight_for_lesson(lesson_id)
    assert highlight.gif_url.endswith("n3w.gif") and highlight.snippet_html == "<p>new</p>"

    # A failed rerun keeps the completed row the campaign uses, and records the error.
    store.save(LessonResult(lesson_id, "failed", reason="lesson X: student.webm: cannot decode"))
    row = store.row(lesson_id)
    assert row["status"] == "ok" and "cannot decode" in row["last_error"]
    assert store.highlight_for_lesson(lesson_id) is not None

    # A success clears the error; no_highlight removes it from the campaign.
    store.save(LessonResult(lesson_id, "no_highlight", reason="no smiling child", fingerprint="x"))
    row = store.row(lesson_id)
    assert row["status"] == "no_highlight" and row["last_error"] is None and row["gif_url"] is None
    assert store.highlight_for_lesson(lesson_id) is None


def test_sqlite_upsert_and_campaign_query(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'h.sqlite'}")
    _exercise(store, tmp_path, "L-1")
    assert store.highlight_for_lesson("unknown") is None


def test_failed_first_run_is_recorded(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'h.sqlite'}")
    store.save(LessonResult("L-9", "failed", reason="lesson L-9: manifest.csv row 4: bad start time"))
    row = store.row("L-9")
    assert row["status"] == "failed" and "row 4" in row["reason"] and row["last_error"]
    assert store.highlight_for_lesson("L-9") is None


def test_campaign_sql_works_verbatim_and_one_shot_helper(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    store = ResultStore(url)
    store.save(lesson_record(_ok(tmp_path / "a", "L-7")))
    with store.engine.connect() as connection:
        row = connection.execute(text(CAMPAIGN_SQL), {"lesson_id": "L-7"}).one()
    assert row.gif_url.endswith(".gif") and row.snippet_html
    assert highlight_for_lesson(url, "L-7").snippet_text == "hi"


def test_postgresql(tmp_path):
    url = os.environ.get("HIGHLIGHTS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set HIGHLIGHTS_TEST_POSTGRES_URL to a PostgreSQL URL to run the PostgreSQL upsert test")
    pytest.importorskip("psycopg", reason="needs psycopg (pip install 'highlights[postgres]')")
    store = ResultStore(url)
    lesson_id = f"test-{uuid.uuid4().hex[:8]}"
    try:
        _exercise(store, tmp_path, lesson_id)
    finally:
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM lesson_highlights WHERE lesson_id = :l"), {"l": lesson_id})
        store.dispose()


def test_sqlite_database_folder_is_created(tmp_path):
    # The default URL points into the output folder, which a first run has not created yet.
    url = f"sqlite:///{tmp_path / 'fresh' / 'out' / 'highlights.sqlite'}"
    store = ResultStore(url)
    store.save(LessonResult("L-1", "no_highlight", reason="no smiling child"))
    assert (tmp_path / "fresh" / "out" / "highlights.sqlite").is_file()
    assert store.row("L-1")["status"] == "no_highlight"


def test_a_failed_statement_does_not_carry_the_row_values_into_the_error(tmp_path):
    # The error of a failed save ends up in logs, result.json and last_error; the row holds the
    # snippet, i.e. the student's name, which must never get there.
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    store = ResultStore(url)
    with store.engine.begin() as connection:
        connection.execute(text(
            "CREATE TRIGGER refuse BEFORE INSERT ON lesson_highlights BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ))
    with pytest.raises(Exception) as caught:
        store.save(lesson_record(_ok(tmp_path / "a", "L-1", html="<p>Zoë Secretname smiled</p>")))
    assert "refused" in str(caught.value)
    assert "Secretname" not in str(caught.value)
    store.dispose()


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql+psycopg://u:secretpw@localhost:notaport/db", "database URL cannot be parsed"),
        ("nonsense:secretpw", "database URL cannot be parsed"),
        ("postgresql+psycopg://u:secretpw@127.0.0.1:1/db?connect_timeout=3",
         "database postgresql+psycopg://u:***@127.0.0.1:1/db?connect_timeout=3 cannot be opened"),
        ("sqlite:///{tmp}/a-file/h.sqlite", "database sqlite:///{tmp}/a-file/h.sqlite cannot be opened"),
        # These two were printed in full, and as u:***@pw@127.0.0.1 (the part after the '@' shown).
        ("postgresql+psycopg://u@127.0.0.1:1/db?connect_timeout=3&Password=secretpw",
         "database postgresql+psycopg://u@127.0.0.1:1/db?connect_timeout=3&Password=*** cannot be opened"),
        ("postgresql+psycopg://u:secret@pw@127.0.0.1:1/db?connect_timeout=3",
         "database postgresql+psycopg://u:***@127.0.0.1:1/db?connect_timeout=3 cannot be opened"),
    ],
)
def test_a_database_that_cannot_be_opened_is_named_without_its_password(tmp_path, url, expected):
    if url.startswith("postgresql") and "127.0.0.1:1" in url:
        pytest.importorskip("psycopg")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(StoreError) as caught:
        ResultStore(url.replace("{tmp}", str(tmp_path)))
    message = str(caught.value)
    assert expected.replace("{tmp}", str(tmp_path)) in message
    assert "secretpw" not in message and "secret" not in message and "pw@" not in message


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql+psycopg://u:pw@db/x", "postgresql+psycopg://u:***@db/x"),
        ("postgresql+psycopg://u:p@ss:w@rd@db:5432/x", "postgresql+psycopg://u:***@db:5432/x"),
        ("postgresql+psycopg://u@db/x?sslmode=require&PASSWORD=pw&password=pw2",
         "postgresql+psycopg://u@db/x?sslmode=require&PASSWORD=***&password=***"),
        ("postgresql+psycopg://u@db/x?application_name=me@home", "postgresql+psycopg://u@db/x?application_name=me@home"),
        ("postgresql+psycopg://db/x?passwords=fine", "postgresql+psycopg://db/x?passwords=fine"),
        ("sqlite:////srv/a@b/h.sqlite", "sqlite:////srv/a@b/h.sqlite"),
    ],
)
def test_masked_url_hides_every_password_and_nothing_else(url, shown):
    assert masked_url(url) == shown


@pytest.mark.parametrize(
    "url, memory",
    [("sqlite://", True), ("sqlite:///", True), ("sqlite:///:memory:", True), ("sqlite:///file:x?mode=memory&uri=true", True),
     ("sqlite:///out/h.sqlite", False), ("sqlite:///file:out/h.sqlite?uri=true", False), ("postgresql+psycopg://u@db/x", False)],
)
def test_in_memory_databases_are_recognised(url, memory):
    assert in_memory(url) is memory


def test_a_reader_creates_no_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing' / 'h.sqlite'}"
    with pytest.raises(NoDatabase, match="there is no database at"):
        ResultStore(url, create=False)
    assert not (tmp_path / "missing").exists()
    ResultStore(url).dispose()  # a writer creates it
    ResultStore(url, create=False).dispose()


def test_the_store_shows_its_url_masked(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'h.sqlite'}?password=secretpw")
    try:
        assert store.url == f"sqlite:///{tmp_path / 'h.sqlite'}?password=***"
    finally:
        store.dispose()


def _utc_exercise(store: ResultStore, tmp_path, lesson_id: str) -> None:
    # The teacher's row on -05:00, the student's on +05:30: the lesson starts at 15:30 UTC
    # (10:30-05:00) and ends at 15:45 UTC (21:15+05:30); stored as written, the end (21:15)
    # would lie after, and a naive start (10:30) before, the same instants in another order.
    result = _ok(tmp_path / "utc", lesson_id)
    result.lesson = LessonBounds("2026-11-20T10:30:00-05:00", "2026-11-20T21:15:00+05:30", 900.0)
    store.save(lesson_record(result), now=datetime(2026, 11, 21, 7, 0, tzinfo=timezone(timedelta(hours=5))))
    row = store.row(lesson_id)
    utc = timezone.utc
    assert row["lesson_start"] == datetime(2026, 11, 20, 15, 30, tzinfo=utc)
    assert row["lesson_end"] == datetime(2026, 11, 20, 15, 45, tzinfo=utc)
    assert row["created_at"] == row["updated_at"] == datetime(2026, 11, 21, 2, 0, tzinfo=utc)
    for column in ("lesson_start", "lesson_end", "created_at", "updated_at"):
        assert row[column].utcoffset() == timedelta(0), column  # aware, in UTC
    assert row["lesson_start"] < row["lesson_end"]
    with store.engine.connect() as connection:  # the database itself orders them right too
        ordered = connection.execute(
            text("SELECT lesson_start < lesson_end FROM lesson_highlights WHERE lesson_id = :l"), {"l": lesson_id}
        ).scalar()
    assert bool(ordered)


def test_sqlite_stores_timezone_aware_utc(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        _utc_exercise(store, tmp_path, "L-utc")
    finally:
        store.dispose()


def test_postgresql_stores_timezone_aware_utc(tmp_path):
    url = os.environ.get("HIGHLIGHTS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set HIGHLIGHTS_TEST_POSTGRES_URL to a PostgreSQL URL to run the PostgreSQL test")
    pytest.importorskip("psycopg", reason="needs psycopg (pip install 'highlights[postgres]')")
    store = ResultStore(url)
    lesson_id = f"test-{uuid.uuid4().hex[:8]}"
    try:
        with store.engine.begin() as connection:  # a session zone other than UTC must not leak in
            connection.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
        _utc_exercise(store, tmp_path, lesson_id)
    finally:
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM lesson_highlights WHERE lesson_id = :l"), {"l": lesson_id})
        store.dispose()


def test_the_sqlite_file_is_not_world_readable(tmp_path):
    old = os.umask(0o022)
    try:
        store = ResultStore(f"sqlite:///{tmp_path / 'out' / '.highlights' / 'highlights.sqlite'}")
        store.save(LessonResult("L-1", "no_highlight", reason="no smiling child"))
        store.dispose()
    finally:
        os.umask(old)
    import stat

    assert stat.S_IMODE((tmp_path / "out" / ".highlights" / "highlights.sqlite").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "out" / ".highlights").stat().st_mode) == 0o750


def test_a_drivers_message_about_the_database_is_shown_without_its_password(tmp_path):
    from highlights.batch.dispatch import database_problem

    store = ResultStore(f"sqlite:///{tmp_path / 'h.sqlite'}")
    store.engine.url = store.engine.url.set(username="u", password="S3cretPW")  # as a PostgreSQL URL would carry it
    error = RuntimeError("connection to server at host failed:\n FATAL: password S3cretPW rejected for u")
    reason = database_problem("L-1", store, error)
    assert "S3cretPW" not in reason and "***" in reason and "\n" not in reason
