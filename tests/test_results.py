"""result.json: the schema round-trips, statuses are checked, the file is written atomically."""

from __future__ import annotations

import json

import pytest

from highlights.results import (
    RESULT_FILE,
    STATUSES,
    Disconnects,
    HighlightFrame,
    LessonBounds,
    LessonResult,
    read_result,
    write_result,
)


def _result(tmp_path, **changes) -> LessonResult:
    values = dict(
        lesson_id="L-1",
        status="ok",
        lesson=LessonBounds("2026-11-20T16:00:00+00:00", "2026-11-20T16:30:00+00:00", 1800.0),
        disconnects=Disconnects(student=1, teacher=0, student_offline_s=12.5, teacher_offline_s=0.0),
        frames=[HighlightFrame(12.0, "2026-11-20T16:00:12+00:00", 0.97, 0.88, "student", 14.0, (1, 2, 30, 40))],
        gif="abc.gif",
        snippet="snippet.html",
        versions={"highlights": "0.1.0", "smile_model": "smile-123"},
        fingerprint="f" * 64,
        folder=tmp_path,
    )
    values.update(changes)
    return LessonResult(**values)


def test_round_trip(tmp_path):
    result = _result(tmp_path)
    path = write_result(result)
    assert path == tmp_path / RESULT_FILE
    again = read_result(tmp_path)
    assert again == result
    assert again.folder == tmp_path
    assert again.gif_path == tmp_path / "abc.gif"


def test_json_has_the_documented_fields(tmp_path):
    write_result(_result(tmp_path))
    data = json.loads((tmp_path / RESULT_FILE).read_text())
    for key in ("lesson_id", "status", "reason", "lesson", "disconnects", "frames", "gif", "snippet", "versions"):
        assert key in data
    assert set(data["lesson"]) == {"start", "end", "duration_s"}
    assert set(data["disconnects"]) == {"student", "teacher", "student_offline_s", "teacher_offline_s"}
    assert {"t", "at", "smile", "child"} <= set(data["frames"][0])
    assert "folder" not in data and "skipped" not in data


def test_failed_result_without_bounds(tmp_path):
    result = LessonResult("L-2", "failed", reason="lesson L-2: manifest.csv row 3: bad time", folder=tmp_path)
    write_result(result)
    again = read_result(tmp_path)
    assert again.status == "failed" and again.lesson is None and again.frames == []
    assert not again.done


def test_unknown_status_is_rejected():
    with pytest.raises(ValueError):
        LessonResult("L", "great")
    assert set(STATUSES) == {"ok", "no_highlight", "no_lesson", "failed", "withdrawn", "busy"}


def test_missing_or_unreadable_result_counts_as_not_done(tmp_path):
    assert read_result(tmp_path) is None
    (tmp_path / RESULT_FILE).write_text("{not json")
    assert read_result(tmp_path) is None
    (tmp_path / RESULT_FILE).write_text(json.dumps({"schema": 99, "lesson_id": "x", "status": "ok"}))
    assert read_result(tmp_path) is None


def test_no_temporary_files_left(tmp_path):
    write_result(_result(tmp_path))
    write_result(_result(tmp_path, status="no_highlight", gif=None))
    assert sorted(p.name for p in tmp_path.iterdir()) == [RESULT_FILE]
