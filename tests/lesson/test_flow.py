"""The stages in order and their early outcomes (:mod:`highlights.lesson.flow`): a rerun whose
input is in doubt (a row missing or unreadable, the lessons file absent, the recording cut short)
fails and keeps the published highlight instead of withdrawing it (issue 9). The lessons are those
of ``tests/support/scene.py``, scored by the ``FakeScorer``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from highlights.batch.run import run_manifest
from highlights.cli import main
from highlights.config import Settings

from support.fakes import FakeScorer
from support.lessons import assert_kept, done_lesson, lesson_rows, one_lesson, run_one, write_manifest


def test_a_rerun_without_the_students_row_keeps_the_published_highlight(videos, tmp_path: Path, clean_env) -> None:
    _, settings, folder, first = done_lesson(videos, tmp_path)
    rows = lesson_rows(videos, tmp_path / "rec2", "L-1001")[:1]  # the teacher's row only
    manifest = write_manifest(tmp_path / "rec2", rows)

    outcome = clean_env.invoke(main, ["run", str(manifest), "--out", str(settings.out_dir), "--no-progress"])

    assert outcome.exit_code == 1, outcome.output  # not 0: a published lesson lost its input
    [result] = run_manifest(manifest, settings, scorer=FakeScorer())
    assert "no student recording" in result.reason and "highlights withdraw L-1001" in result.reason
    assert_kept(settings, folder, first, result)


@pytest.mark.parametrize(
    "broken",
    ['{"lesson_id": "L-1001", "role": "student", "path": ', '{"lesson_id": "L-1001\u200b", "role": "student"}'],
    ids=["broken JSON line", "zero-width character in the id"],
)
def test_a_broken_student_row_keeps_the_published_highlight(videos, tmp_path: Path, broken: str) -> None:
    _, settings, folder, first = done_lesson(videos, tmp_path)
    teacher, _ = lesson_rows(videos, tmp_path / "rec2", "L-1001")
    keys = ["lesson_id", "role", "path", "started_at"]
    manifest = tmp_path / "rec2" / "manifest.jsonl"
    manifest.write_text(json.dumps(dict(zip(keys, teacher))) + "\n" + broken + "\n", encoding="utf-8")

    [result] = run_manifest(manifest, settings, scorer=FakeScorer())

    assert "published highlight is kept" in result.reason or "manifest.jsonl row 2" in result.reason, result.reason
    assert_kept(settings, folder, first, result)


def test_a_forced_rerun_with_a_stray_row_elsewhere_keeps_the_published_highlight(videos, tmp_path: Path) -> None:
    """The lesson's rows are all there and would give a highlight again, but a row of the
    manifest belongs to no valid lesson (it may be one of this lesson's segments): the rerun
    ends ``failed`` and the published GIF, ``result.json`` and ``ok`` row stay as they were."""
    _, settings, folder, first = done_lesson(videos, tmp_path)
    gif_bytes = (folder / first.gif).read_bytes()
    teacher, student = lesson_rows(videos, tmp_path / "rec2", "L-1001")
    keys = ["lesson_id", "role", "path", "started_at"]
    manifest = tmp_path / "rec2" / "manifest.jsonl"
    lines = [json.dumps(dict(zip(keys, teacher))), json.dumps(dict(zip(keys, student))), '{"role": "student", "path": "L-1001/stu']
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")

    [result] = run_manifest(manifest, replace(settings, force=True), scorer=FakeScorer())

    assert "belong to no valid lesson" in result.reason and "published highlight is kept" in result.reason
    assert_kept(settings, folder, first, result)
    assert (folder / first.gif).read_bytes() == gif_bytes


def test_a_rerun_without_the_lessons_file_keeps_a_highlight_made_with_it(videos, tmp_path: Path, clean_env) -> None:
    """A highlight made with the lesson's lessons-file row (whose face: an adult student) is not
    replaced by a rerun that lacks the row (the nightly cron line without --lessons), which would
    judge the lesson under the children's rule and withdraw its GIF."""
    manifest = one_lesson(videos, tmp_path / "rec")
    lessons = tmp_path / "rec" / "lessons.csv"
    lessons.write_text("lesson_id,student_name,student_age_group\nL-1001,Ann,child\n", encoding="utf-8")
    settings = Settings(out_dir=tmp_path / "out")
    folder = settings.out_dir / "L-1001"
    [first] = run_manifest(manifest, settings, lessons_path=lessons, scorer=FakeScorer())
    assert first.status == "ok", first.reason

    outcome = clean_env.invoke(main, ["run", str(manifest), "--out", str(settings.out_dir), "--no-progress", "--force"])

    assert outcome.exit_code == 1, outcome.output
    [result] = run_manifest(manifest, replace(settings, force=True), scorer=FakeScorer())
    assert "no row in the lessons file" in result.reason
    assert_kept(settings, folder, first, result)
    # With its row again, the rerun goes through.
    [again] = run_manifest(manifest, replace(settings, force=True), lessons_path=lessons, scorer=FakeScorer())
    assert again.status == "ok" and again.gif == first.gif


def _cut(path: Path, share: float) -> None:
    """Keep the first ``share`` of a file's bytes, as a failed copy or an upload still running does."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])


def test_a_rerun_on_a_truncated_recording_keeps_the_published_highlight(videos, tmp_path: Path) -> None:
    """The student's file was cut short (a copy that failed, an upload still running at night):
    the forced rerun decodes a fraction of the lesson and would withdraw the GIF as
    ``no_highlight``; instead it ends ``failed``, saying so, and the highlight stays."""
    _, settings, folder, first = done_lesson(videos, tmp_path)
    gif_bytes = (folder / first.gif).read_bytes()
    _cut(tmp_path / "rec" / "L-1001" / "student.webm", 0.3)

    [result] = run_manifest(tmp_path / "rec" / "manifest.csv", replace(settings, force=True), scorer=FakeScorer())

    assert "recordings decode to" in result.reason and "published highlight is kept" in result.reason, result.reason
    assert_kept(settings, folder, first, result)
    assert (folder / first.gif).read_bytes() == gif_bytes


def test_a_lesson_published_from_a_short_recording_reruns_as_before(videos, tmp_path: Path) -> None:
    """A recording that was already short when its highlight was made is not a doubt on a rerun:
    the comparison is with what the highlight was made from, not with the manifest's promise."""
    manifest = one_lesson(videos, tmp_path / "rec")
    _cut(tmp_path / "rec" / "L-1001" / "student.webm", 0.7)
    settings = Settings(out_dir=tmp_path / "out")
    first = run_one(manifest, settings, FakeScorer())
    if first.status != "ok":
        pytest.skip(f"the cut recording gave no highlight to keep: {first.reason}")
    again = run_one(manifest, replace(settings, force=True), FakeScorer())
    assert again.status == "ok", again.reason
