"""A night's batch from a manifest (:mod:`highlights.batch.run`): a manifest without lessons
warns, and problems of rows that belong to no lesson are labelled by their file."""

from __future__ import annotations

import logging
from pathlib import Path

from highlights.batch.run import run_manifest
from highlights.cli import main
from highlights.config import Settings
from highlights.inputs.manifest import read_manifest

from support.lessons import one_lesson


def test_a_manifest_with_only_its_header_warns_but_succeeds(tmp_path: Path, clean_env, caplog) -> None:
    # A day without lessons is not an error, but a nightly export that failed writes the same
    # file: it used to pass without a word.
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("lesson_id,role,path,started_at,ended_at\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="highlights.batch.run"):
        outcome = clean_env.invoke(main, ["run", str(manifest), "--out", str(tmp_path / "out"), "--no-progress",
                                          "--workers", "0"])
    assert outcome.exit_code == 0, outcome.output
    assert "manifest manifest.csv lists no recordings: no lesson to run" in caplog.text
    assert str(tmp_path) not in caplog.text


def test_lessons_file_problems_are_labelled_as_such(videos, tmp_path: Path, clean_env) -> None:
    manifest = one_lesson(videos, tmp_path / "rec")
    lessons = tmp_path / "rec" / "lessons.csv"
    lessons.write_text("lesson_id,student_name\n../x,Ada\n", encoding="utf-8")
    outcome = clean_env.invoke(main, ["run", str(manifest), "--lessons", str(lessons), "--out", str(tmp_path / "out"),
                                      "--no-progress"])
    assert "lessons file problem: lessons.csv row 2" in outcome.stderr
    assert "manifest problem" not in outcome.stderr


def test_a_manifest_with_only_its_header_warns_even_beside_a_lessons_file_with_a_bad_row(tmp_path: Path, caplog) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("lesson_id,role,path,started_at,ended_at\n", encoding="utf-8")
    lessons = tmp_path / "lessons.csv"
    lessons.write_text("lesson_id,student_name,locale\nL-9,Ann,not a language tag!\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="highlights.batch.run"):
        run_manifest(read_manifest(manifest, lessons_path=lessons), Settings(out_dir=tmp_path / "out"))
    assert "manifest manifest.csv lists no recordings" in caplog.text
