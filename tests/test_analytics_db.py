"""The analytics tables: what a save writes, the README's example queries (run verbatim from the
README on SQLite and PostgreSQL), the reason categories, and the smile / presence switch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from analytics_lessons import LAST_WEEK, save_lessons
from databases import BACKENDS, fresh_database
from sqlalchemy import text

from highlights.core.result import LessonResult
from highlights.lesson.folder import lesson_record
from highlights.persist.store import CAMPAIGN_SQL, ResultStore
from highlights.stages.analytics import AnalyticsOptions, reason_category
from highlights.stages.selection import SelectionStats

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_query(name: str) -> str:
    """The SQL block of the README that starts with ``-- example: <name>``."""
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    found = [b for b in blocks if b.startswith(f"-- example: {name}\n")]
    assert len(found) == 1, f"README has no single example query {name!r}"
    return found[0]


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    with fresh_database(request.param, tmp_path) as url:
        store = ResultStore(url)
        try:
            yield store
        finally:
            store.dispose()


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


@pytest.mark.parametrize(
    "status, reason, stats, expected",
    [
        ("ok", "", None, None),
        ("no_lesson", "the cameras were never on together", None, "no_lesson"),
        ("no_highlight", "", SelectionStats(), "no_frames"),
        ("no_highlight", "", SelectionStats(frames=90, with_face=80, with_adult=80), "no_child"),
        ("no_highlight", "", SelectionStats(frames=90, with_face=80, with_child=70), "no_smile"),
        ("no_highlight", "", SelectionStats(frames=90, with_child=70, child_smiling=12, candidates=0), "no_usable_smile"),
        ("no_highlight", "", {"frames": 90, "with_child": 70, "child_smiling": 12, "candidates": 4}, "too_few_moments"),
        ("failed", "lesson L: manifest.csv row 3: started_at has no UTC offset", None, "bad_input"),
        ("failed", "lesson L: another highlights run is working on it (lock out/L/.lock)", None, "busy"),
        ("failed", "lesson L: output folder L cannot be written (a file is in its place)", None, "output_folder"),
        ("failed", "lesson L: database sqlite:///x: OperationalError: locked", None, "database"),
        ("failed", "lesson L: scores stage failed (student recording, s.webm row 2): InvalidDataError", None,
         "unreadable_recording"),
        ("failed", "lesson L: gif stage failed: MemoryError", None, "error"),
    ],
)  # fmt: skip
def test_reason_categories(status, reason, stats, expected):
    assert reason_category(status, reason, stats) == expected
