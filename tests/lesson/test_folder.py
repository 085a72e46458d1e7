"""The lesson folder's ``result.json`` (:mod:`highlights.lesson.folder`): the schema round-trips,
the file is written atomically, times are written in UTC."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from highlights.config import Settings
from highlights.core.frameref import UNKNOWN_INDEX, FrameRef, parse_utc
from highlights.core.result import Disconnects, HighlightFrame, LessonBounds, LessonResult
from highlights.lesson.folder import RESULT_FILE, read_result, write_result

from support.fakes import FakeScorer
from support.lessons import lesson_rows, run_one, write_manifest
from support.scene import T0


def _result(tmp_path, **changes) -> LessonResult:
    values = dict(
        lesson_id="L-1",
        status="ok",
        lesson=LessonBounds("2026-11-20T16:00:00+00:00", "2026-11-20T16:30:00+00:00", 1800.0),
        disconnects=Disconnects(student=1, teacher=0, student_offline_s=12.5, teacher_offline_s=0.0),
        frames=[HighlightFrame(FrameRef(UNKNOWN_INDEX, 12.0, parse_utc("2026-11-20T16:00:12+00:00"), Path("student"), 14.0),
                               0.97, 0.88, (1, 2, 30, 40))],
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


# result.json's frames as the previous version wrote them (before FrameRef), and as the first
# versions did (no source, offset or box).
OLD_FRAME = {"t": 312.0, "at": "2026-11-20T16:05:15+00:00", "smile": 0.97, "child": 0.91,
             "source": "student-1.webm", "offset_s": 318.5, "box": [10.0, 20.0, 90.0, 110.0]}
FIRST_FRAME = {"t": 312.0, "at": "2026-11-20T16:05:15+00:00", "smile": 0.97, "child": 0.91}


def test_result_json_of_the_previous_versions_reads_and_writes_back_unchanged(tmp_path):
    data = _result(tmp_path).to_dict() | {"frames": [OLD_FRAME, FIRST_FRAME]}
    (tmp_path / RESULT_FILE).write_text(json.dumps(data), encoding="utf-8")
    again = read_result(tmp_path)
    assert again is not None
    old, first = again.frames
    assert old.ref == FrameRef(UNKNOWN_INDEX, 312.0, datetime(2026, 11, 20, 16, 5, 15, tzinfo=timezone.utc),
                               Path("student-1.webm"), 318.5)
    assert old.box == (10.0, 20.0, 90.0, 110.0) and first.box is None and first.ref.source.name == ""
    written = again.to_dict()["frames"]
    assert json.dumps(written[0]) == json.dumps(OLD_FRAME)  # same keys, same order, same text
    assert written[1] == FIRST_FRAME | {"source": "", "offset_s": 0.0, "box": None}  # as the old reader filled in


def test_a_frame_is_written_with_its_file_name_and_utc_time_and_without_its_index(tmp_path):
    at = datetime.fromisoformat("2026-11-20T21:35:15+05:30")  # the instant of OLD_FRAME, in India
    ref = FrameRef(7, 312.0, at, Path("/recordings/L-1/student-1.webm"), 318.5)
    write_result(_result(tmp_path, frames=[HighlightFrame(ref, 0.97, 0.91, (10.0, 20.0, 90.0, 110.0))]))
    frame = json.loads((tmp_path / RESULT_FILE).read_text())["frames"][0]
    assert frame == {"t": 312.0, "at": "2026-11-20T16:05:15+00:00", "smile": 0.97, "child": 0.91,
                     "source": "student-1.webm", "offset_s": 318.5, "box": [10.0, 20.0, 90.0, 110.0]}
    [again] = read_result(tmp_path).frames
    assert again.ref == FrameRef(UNKNOWN_INDEX, 312.0, at, Path("student-1.webm"), 318.5)


def test_a_frame_field_of_a_newer_schema_makes_the_result_unreadable(tmp_path):
    data = _result(tmp_path).to_dict() | {"frames": [OLD_FRAME | {"blur": 0.1}]}
    (tmp_path / RESULT_FILE).write_text(json.dumps(data), encoding="utf-8")
    assert read_result(tmp_path) is None  # counts as not done: the lesson reruns


def test_failed_result_without_bounds(tmp_path):
    result = LessonResult("L-2", "failed", reason="lesson L-2: manifest.csv row 3: bad time", folder=tmp_path)
    write_result(result)
    again = read_result(tmp_path)
    assert again.status == "failed" and again.lesson is None and again.frames == []
    assert not again.done


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


# --------------------------------------------------------------------------- UTC in result.json (issue 9)


def test_result_json_uses_one_offset(videos, tmp_path: Path) -> None:
    from datetime import timezone

    root = tmp_path / "rec"
    teacher, student = lesson_rows(videos, root, "L-1001")
    teacher[3] = T0.astimezone(timezone(timedelta(hours=-5))).isoformat()
    student[3] = (T0 + timedelta(seconds=2)).astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    result = run_one(write_manifest(root, [teacher, student]), Settings(out_dir=tmp_path / "out"), FakeScorer())

    data = json.loads((tmp_path / "out" / "L-1001" / "result.json").read_text(encoding="utf-8"))
    times = [data["lesson"]["start"], data["lesson"]["end"], *(f["at"] for f in data["frames"])]
    assert result.status == "ok" and all(t.endswith("+00:00") for t in times), times
