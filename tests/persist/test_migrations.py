"""The versioned schema (highlights/migrations): a new database, a database of release 0.1.0
(no alembic_version), each revision down and up again, a newer database refused; the models
and the migrated schema agree; the campaign's query keeps working. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from alembic import command
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    inspect,
    text,
)

from highlights.core.result import LessonResult
from highlights.persist.migrations import BASELINE, alembic_config, head_revision, schema_differences, upgrade_to_head
from highlights.persist.store import CAMPAIGN_SQL, Base, ResultStore, StoreError

ANALYTICS_TABLES = {"lesson_minutes", "lesson_totals"}


def release_0_1_0_table(metadata: MetaData) -> Table:
    """``lesson_highlights`` exactly as release 0.1.0's model declared it (frozen copy: the
    model in store.py may grow; this is what databases in the field were created with)."""
    return Table(
        "lesson_highlights", metadata,
        Column("lesson_id", String(128), primary_key=True),
        Column("status", String(16), index=True, nullable=False),
        Column("reason", Text, nullable=False),
        Column("gif_path", Text), Column("gif_url", Text), Column("gif_bytes", Integer),
        Column("snippet_html", Text), Column("snippet_text", Text),
        Column("lesson_start", DateTime(timezone=True)), Column("lesson_end", DateTime(timezone=True)),
        Column("duration_s", Float),
        Column("student_disconnects", Integer), Column("teacher_disconnects", Integer),
        Column("student_offline_s", Float), Column("teacher_offline_s", Float),
        Column("frame_count", Integer, nullable=False),
        Column("code_version", String(64), nullable=False),
        Column("versions", JSON, nullable=False),
        Column("fingerprint", String(64), nullable=False),
        Column("result_path", Text), Column("last_error", Text),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )  # fmt: skip


def make_release_0_1_0_database(url: str) -> None:
    """What 0.1.0 left behind: its table made by create_all, two lessons in it, no alembic_version."""
    engine = create_engine(url)
    metadata = MetaData()
    table = release_0_1_0_table(metadata)
    metadata.create_all(engine)
    t = datetime(2026, 11, 20, 2, 30, tzinfo=timezone.utc)
    common = dict(reason="", gif_url=None, snippet_html=None, snippet_text=None, student_disconnects=None,
                  frame_count=0, code_version="0.1.0", versions={"highlights": "0.1.0"},
                  fingerprint="f0", created_at=t, updated_at=t)  # fmt: skip
    with engine.begin() as connection:
        connection.execute(table.insert(), [
            dict(common, lesson_id="OLD-1", status="ok", gif_url="https://cdn.example/h/OLD-1/x.gif",
                 snippet_html="<p>old</p>", snippet_text="old", frame_count=9, student_disconnects=2),
            dict(common, lesson_id="OLD-2", status="no_highlight", reason="no child's face was found"),
        ])  # fmt: skip
    engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def revision_of(store: ResultStore) -> str:
    with store.engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def assert_models_match(store: ResultStore) -> None:
    with store.engine.connect() as connection:
        assert schema_differences(connection, Base.metadata) == []


def test_a_new_database_gets_every_revision_and_matches_the_models(database_url):
    store = ResultStore(database_url)
    try:
        assert revision_of(store) == head_revision()
        assert {"lesson_highlights", "alembic_version"} | ANALYTICS_TABLES <= tables(database_url)
        assert_models_match(store)
        ResultStore(database_url).dispose()  # opening an up-to-date database again changes nothing
        assert revision_of(store) == head_revision()
    finally:
        store.dispose()


def test_a_release_0_1_0_database_is_stamped_and_upgraded_keeping_its_rows(database_url):
    make_release_0_1_0_database(database_url)
    assert "alembic_version" not in tables(database_url)

    store = ResultStore(database_url)
    try:
        assert revision_of(store) == head_revision()
        assert ANALYTICS_TABLES <= tables(database_url)
        assert_models_match(store)
        # The old rows are all there, and the campaign's query, verbatim, still answers.
        old = store.row("OLD-1")
        assert old["status"] == "ok" and old["student_disconnects"] == 2 and old["frame_count"] == 9
        assert store.row("OLD-2")["reason"] == "no child's face was found"
        with store.engine.connect() as connection:
            found = connection.execute(text(CAMPAIGN_SQL), {"lesson_id": "OLD-1"}).one()
            assert connection.execute(text(CAMPAIGN_SQL), {"lesson_id": "OLD-2"}).first() is None
        assert found.gif_url.endswith("x.gif") and found.snippet_html == "<p>old</p>"
        # New rows get their analytics beside them.
        store.save(LessonResult("NEW-1", "no_lesson", reason="the cameras were never on together"))
        totals, minutes = store.figures("NEW-1")
        assert totals["reason_category"] == "no_lesson" and minutes == []
        assert store.figures("OLD-1") == (None, [])
    finally:
        store.dispose()


def test_each_revision_goes_down_and_up_again(database_url):
    engine = create_engine(database_url)
    try:
        assert upgrade_to_head(engine, target=BASELINE) == BASELINE
        assert tables(database_url) & ANALYTICS_TABLES == set()
        assert upgrade_to_head(engine) == head_revision()
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        assert tables(database_url) - {"alembic_version"} == set()
        store = ResultStore(engine)
        assert revision_of(store) == head_revision()
        assert_models_match(store)
    finally:
        engine.dispose()


def test_a_database_upgraded_by_a_newer_release_is_refused_by_name(database_url):
    ResultStore(database_url).dispose()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError) as caught:
        ResultStore(database_url)
    assert "revision 9999" in str(caught.value) and "newer highlights" in str(caught.value)
