"""The lesson values (:mod:`highlights.core.lesson`): valid lesson ids, end times filled in, and
which recording a frame of the artifacts came from."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from highlights.core.lesson import is_valid_lesson_id, with_end_times
from highlights.inputs.manifest import read_manifest

from support.manifests import GOOD, write_csv


def test_lesson_ids():
    assert is_valid_lesson_id("L-1001") and is_valid_lesson_id("a.b_c-9") and is_valid_lesson_id("x" * 64)
    for bad in ("", ".", "..", "../x", "a..b", "x" * 65, "a/b", "a b", "ü", "a\\b"):
        assert not is_valid_lesson_id(bad), bad


@pytest.mark.parametrize("lesson_id", [".highlights", "-x", "_x", ".x", "L-1001\u200b"])
def test_lesson_ids_start_with_a_letter_or_digit(lesson_id: str) -> None:
    assert not is_valid_lesson_id(lesson_id)
    assert is_valid_lesson_id("highlights.sqlite-journal")  # lesson folders never meet the job's files now


def test_with_end_times_fills_only_unknown_ends_and_copies(folder: Path):
    lesson = read_manifest(write_csv(folder, *GOOD)).lessons["L-1"]
    teacher, = lesson.by_role("teacher")
    student, = lesson.by_role("student")
    end = datetime(2026, 11, 21, 16, 0, tzinfo=timezone.utc)
    resolved = with_end_times(lesson, {student.path: end, teacher.path: end})
    assert resolved.by_role("student")[0].ended_at == end
    assert resolved.by_role("teacher")[0].ended_at == teacher.ended_at  # given in the manifest: kept
    assert lesson.by_role("student")[0].ended_at is None  # the input is unchanged
    assert resolved.problems is not lesson.problems


def test_recording_of_frame_tells_same_named_segments_apart_by_their_start() -> None:
    from highlights.core.lesson import Recording, SourceRow, recording_of_frame

    t0 = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)
    row = SourceRow(Path("manifest.csv"), 2)
    first = Recording("L-1", "student", Path("/rec/conn-1/student.webm"), t0, None, row)
    second = Recording("L-1", "student", Path("/rec/conn-2/student.webm"), t0 + timedelta(seconds=70), None, row)
    other = Recording("L-1", "student", Path("/rec/late.webm"), t0 + timedelta(seconds=500), None, row)
    teacher = Recording("L-1", "teacher", Path("/rec/conn-2/student.webm"), t0 + timedelta(seconds=30), None, row)
    recordings = [teacher, first, second, other]
    at = t0 + timedelta(seconds=300)
    assert recording_of_frame("student.webm", at, 230.0, recordings) is second
    assert recording_of_frame(Path("student.webm"), t0 + timedelta(seconds=5), 5.0, recordings) is first
    assert recording_of_frame("student.webm", at, 123.0, recordings) is None  # ambiguous, no start fits
    assert recording_of_frame("late.webm", at, 0.2, recordings) is other  # the one of its name
    assert recording_of_frame("gone.webm", at, 0.0, recordings) is None
    assert recording_of_frame("student.webm", t0 + timedelta(seconds=35), 5.0, [teacher]) is None  # students only


def test_recording_of_frame_picks_what_sampling_picked_where_two_same_named_copies_start_together() -> None:
    # A copy exported twice (same name, same start, other folder): its frames could not be placed
    # again, so a resumed run failed the GIF stage of a lesson that had run.
    from highlights.core.lesson import Recording, SourceRow, recording_of_frame
    from highlights.stages.timeline import covering_recording

    t0 = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)
    row = SourceRow(Path("manifest.csv"), 2)
    end = t0 + timedelta(seconds=600)
    first = Recording("L-1", "student", Path("/rec/student.webm"), t0, end, row)
    copy = Recording("L-1", "student", Path("/rec/again/student.webm"), t0, end, row)
    at = t0 + timedelta(seconds=42)
    for recordings in ([first, copy], [copy, first]):
        assert recording_of_frame("student.webm", at, 42.0, recordings) is covering_recording(recordings, at) is recordings[0]
