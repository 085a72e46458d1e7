"""The database contract: upsert per lesson, reruns update in place, the campaign's query, the
analytics tables (the README's example queries run verbatim on SQLite and PostgreSQL), and
concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import re
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
from highlights.stages.analytics import AnalyticsOptions

from support.analytics_lessons import LAST_WEEK, save_lessons
from support.concurrent_writer import write_rows
from support.paths import REPO_ROOT

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


# --------------------------------------------------------------------------- the analytics tables: what a save writes, the README's example queries, the smile / presence switch


README = REPO_ROOT / "README.md"


def readme_query(name: str) -> str:
    """The SQL block of the README that starts with ``-- example: <name>``."""
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    found = [b for b in blocks if b.startswith(f"-- example: {name}\n")]
    assert len(found) == 1, f"README has no single example query {name!r}"
    return found[0]


def run(store: ResultStore, sql: str, **params) -> list[tuple]:
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql), params).all()]


def test_a_save_writes_totals_and_minutes_and_a_rerun_replaces_them(store, tmp_path):
    results = save_lessons(store, tmp_path / "out")
    totals, minutes = store.figures("L-A")
    assert totals["student_disconnects"] == 2 and totals["teacher_disconnects"] == 0
    assert totals["minutes_with_parent"] == 2 and totals["processing_s"] == 120.0 and totals["minutes"] == 5
    assert totals["reason_category"] is None and results["L-A"].status == "ok"
    assert [m["minute"] for m in minutes] == [0, 1, 2, 3, 4]
    assert [m["adult_frames"] > 0 for m in minutes] == [False, True, False, True, False]
    assert minutes[0]["smile_share"] == 1.0 and minutes[2]["smile_share"] == 0.0
    assert sum(m["frames"] for m in minutes) == totals["frames"] == 300 - 2 * 5  # two 5 s gaps
    assert minutes[0]["started_at"].replace(tzinfo=None).isoformat() == "2026-11-23T15:00:00"
    # Every status gets a totals row with its category.
    assert store.figures("L-D")[0]["reason_category"] == "no_smile"
    assert store.figures("L-E")[0]["reason_category"] == "bad_input"
    assert store.figures("L-F")[0]["reason_category"] == "no_lesson"

    # A rerun replaces: the lesson now has 2 minutes of figures, not 5 + 2.
    import json

    folder = tmp_path / "out" / "L-A"
    data = json.loads((folder / "analytics.json").read_text())
    data["series"] = data["series"][:2]
    (folder / "analytics.json").write_text(json.dumps(data))
    store.save(lesson_record(results["L-A"]))
    totals, minutes = store.figures("L-A")
    assert len(minutes) == 2 and totals["minutes"] == 2
    (count,) = run(store, "SELECT COUNT(*) FROM lesson_totals WHERE lesson_id = 'L-A'")[0]
    assert count == 1

    # A failed rerun of a completed lesson keeps its figures, as it keeps its row.
    store.save(LessonResult("L-A", "failed", reason="lesson L-A: scores stage failed (student recording, "
                                                    "student.webm row 2): cannot decode"))  # fmt: skip
    assert len(store.figures("L-A")[1]) == 2 and store.figures("L-A")[0]["reason_category"] is None


def test_readme_query_most_disconnects_last_week_per_side(store, tmp_path):
    save_lessons(store, tmp_path / "out")
    since, until = LAST_WEEK
    rows = run(store, readme_query("most disconnects per side"), since=since, until=until)
    # L-D (5 student disconnects) is older than a week; lessons without disconnects are left out.
    assert [(side, lesson, n) for side, lesson, _, n, _ in rows] == [
        ("student", "L-A", 2), ("student", "L-C", 1), ("teacher", "L-B", 3), ("teacher", "L-C", 1),
    ]  # fmt: skip
    assert rows[0][4] == pytest.approx(10.0)  # two 5 s gaps offline


def test_readme_query_parent_presence_by_minute(store, tmp_path):
    save_lessons(store, tmp_path / "out")
    rows = run(store, readme_query("parent presence by minute"))
    # Adults: L-A in minutes 1 and 3, L-B and L-D in minute 1, L-C never; four lessons each minute.
    assert [(minute, lessons) for minute, lessons, _ in rows] == [(m, 4) for m in range(5)]
    assert [float(share) for _, _, share in rows] == pytest.approx([0.0, 0.75, 0.0, 0.25, 0.0])


def test_readme_query_smiling_share_by_minute(store, tmp_path):
    save_lessons(store, tmp_path / "out")
    rows = run(store, readme_query("smiling share by minute"))
    # The child smiles through minute 0 in L-A, L-B, L-C, never in L-D.
    assert [(minute, lessons) for minute, lessons, _ in rows] == [(m, 4) for m in range(5)]
    assert [float(share) for _, _, share in rows] == pytest.approx([0.75, 0.0, 0.0, 0.0, 0.0])


def test_the_campaign_query_beside_the_analytics(store, tmp_path):
    save_lessons(store, tmp_path / "out")
    with store.engine.connect() as connection:
        assert connection.execute(text(CAMPAIGN_SQL), {"lesson_id": "L-D"}).first() is None


def test_switched_off_smiles_and_presence_are_not_stored(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'h.sqlite'}")
    save_lessons(store, tmp_path / "out", AnalyticsOptions(smiles=False, presence=False))
    totals, minutes = store.figures("L-A")
    assert totals["student_disconnects"] == 2 and totals["frames"] == 290
    for column in ("minutes_with_parent", "child_presence", "adult_presence", "smile_frames", "smile_share",
                   "smiliest_minute"):  # fmt: skip
        assert totals[column] is None, column
    for column in ("child_frames", "adult_frames", "adult_only_frames", "smile_frames", "smile_share", "mean_smile"):
        assert all(m[column] is None for m in minutes), column
    assert all(m["frames"] > 0 and m["student_online_s"] > 0 for m in minutes)
    csv_header = (tmp_path / "out" / "L-A" / "analytics.csv").read_text().splitlines()[0]
    assert "smile" not in csv_header and "child" not in csv_header and "adult" not in csv_header
    saved = (tmp_path / "out" / "L-A" / "analytics.json").read_text()
    for name in ("smile_frames", "smile_share", "mean_child_smile", "smiliest_bucket", "child_", "adult_"):
        assert name not in saved, name
    assert run(store, readme_query("smiling share by minute")) == []
    assert run(store, readme_query("parent presence by minute")) == []
    store.dispose()


# --------------------------------------------------------------------------- concurrent writers


def _concurrent_writers(url: str, ids: list[str], folder: Path) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=write_rows, args=(url, k, ids if k % 2 else ids[::-1], str(folder)))
                 for k in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]


def test_concurrent_writers_on_sqlite_never_lose_or_double_a_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'highlights.sqlite'}"
    ids = [f"L-{i:03d}" for i in range(40)]
    _concurrent_writers(url, ids, tmp_path)
    store = ResultStore(url)
    try:
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            rows = connection.execute(text("SELECT lesson_id, count(*) FROM lesson_highlights GROUP BY lesson_id")).all()
            runs = connection.execute(text("SELECT status FROM highlight_runs")).scalars().all()
    finally:
        store.dispose()
    assert sorted(r[0] for r in rows) == ids and {r[1] for r in rows} == {1}
    assert runs == ["finished"] * 4


def test_concurrent_writers_on_postgresql_never_lose_or_double_a_row(tmp_path: Path) -> None:
    url = os.environ.get("HIGHLIGHTS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set HIGHLIGHTS_TEST_POSTGRES_URL to a PostgreSQL URL to run the concurrent writers test")
    pytest.importorskip("psycopg", reason="needs psycopg (pip install 'highlights[postgres]')")
    prefix = f"cw-{uuid.uuid4().hex[:6]}-"
    ids = [f"{prefix}{i:03d}" for i in range(40)]
    try:
        _concurrent_writers(url, ids, tmp_path)
        store = ResultStore(url)
        with store.engine.connect() as connection:
            rows = connection.execute(text("SELECT lesson_id, count(*) FROM lesson_highlights WHERE lesson_id LIKE :p "
                                           "GROUP BY lesson_id"), {"p": prefix + "%"}).all()
        assert sorted(r[0] for r in rows) == ids and {r[1] for r in rows} == {1}
    finally:
        store = ResultStore(url)
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM lesson_highlights WHERE lesson_id LIKE :p"), {"p": prefix + "%"})
            connection.execute(text("DELETE FROM highlight_runs WHERE host = 'test'"))
        store.dispose()


# --------------------------------------------------------------------------- bad inputs and faults of issue 9


def test_a_read_only_database_error_names_the_sqlite_files_this_user_cannot_write(tmp_path: Path, monkeypatch) -> None:
    # SQLite makes -wal and -shm with the database file's permissions: after `chmod 644` of the
    # database alone, runs still failed with the same "readonly database", naming no file.
    from sqlalchemy.exc import OperationalError

    folder = tmp_path / "private-folder"
    folder.mkdir()
    store = ResultStore(f"sqlite:///{folder / 'highlights.sqlite'}")
    (folder / "highlights.sqlite-wal").touch()
    (folder / "highlights.sqlite-shm").touch()
    read_only = {"highlights.sqlite-wal", "highlights.sqlite-shm"}
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name not in read_only and real_access(path, mode))
    error = OperationalError("INSERT ...", {}, Exception("attempt to write a readonly database"))
    text = store.error_text(error)
    assert text.endswith("(not writable for this user: highlights.sqlite-wal, highlights.sqlite-shm)"), text
    assert store.error_text(OperationalError("SELECT", {}, Exception("disk I/O error"))).count("writable") == 0
    store.dispose()
