"""Reading the lessons file (:mod:`highlights.inputs.lessons_file`) beside a manifest: joined on
``lesson_id``, what becomes a problem or a warning of one lesson (naming file and row), and, at
the end, whole lessons run with a lessons file (issue 9)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import highlights.lesson.run
from highlights.batch.run import run_manifest
from highlights.cli import main
from highlights.cli.lessons import _summary_table
from highlights.config import Settings
from highlights.inputs.lessons_file import read_lessons_file
from highlights.inputs.manifest import InputError, read_manifest
from highlights.lesson.folder import read_result
from highlights.stages.selection import SelectionOptions

from support.fakes import FakeScorer
from support.lessons import db_row, done_lesson, gifs_in, one_lesson
from support.manifests import GOOD, problems, write_csv, write_jsonl
from support.scene import T0

LESSONS_HEADER = "lesson_id,student_name,subject,locale,lesson_url,tutor"


def test_lessons_file_joins_on_lesson_id_and_keeps_extra_columns(folder: Path):
    lessons = write_csv(
        folder,
        "L-2,Ada,Maths,pt_BR,https://school.example/l/2,Grace",
        "L-1,,,,,",
        header=LESSONS_HEADER,
        name="lessons.csv",
    )
    manifest = read_manifest(write_csv(folder, *GOOD), lessons_path=lessons)
    info = manifest.lessons["L-2"].info
    assert (info.student_name, info.subject, info.locale, info.lesson_url) == ("Ada", "Maths", "pt-BR", "https://school.example/l/2")
    assert dict(info.extra) == {"tutor": "Grace"}
    assert (info.source.file.name, info.source.row) == ("lessons.csv", 2)
    l1 = manifest.lessons["L-1"].info
    assert (l1.student_name, l1.locale, l1.lesson_url, dict(l1.extra)) == (None, "en", None, {})
    assert all(lesson.ok for lesson in manifest.lessons.values())


def test_lessons_file_as_json_lines(folder: Path):
    lessons = write_jsonl(folder, {"lesson_id": "L-1", "locale": "de", "room": 12}, name="lessons.jsonl")
    info = read_manifest(write_csv(folder, *GOOD), lessons_path=lessons).lessons["L-1"].info
    assert info.locale == "de" and dict(info.extra) == {"room": "12"}


def test_a_lesson_only_in_the_lessons_file_is_not_a_lesson_of_the_run(folder: Path):
    # It used to be run with no recordings: a no_lesson row (or, with a bad row, a failed one)
    # for a lesson whose recordings are simply not in this manifest.
    lessons = write_csv(folder, "L-9,Ada,Maths,en,,", "L-8,Bob,Maths,english!,,", header=LESSONS_HEADER,
                        name="lessons.csv")
    manifest = read_manifest(write_csv(folder, *GOOD), lessons_path=lessons)
    assert list(manifest.lessons) == ["L-1", "L-2"]
    assert all(lesson.ok and lesson.unattributed_rows == 0 for lesson in manifest.lessons.values())
    # A bad row of such a lesson is a lessons-file problem that names it, and no other lesson's.
    assert [str(p) for p in manifest.problems] == [
        "lessons.csv row 3: lesson L-8 (not in the manifest): locale is not a language tag such as 'en' or 'pt-BR'"
    ]


def test_a_stray_quote_in_the_lessons_file_spoils_the_lessons_whose_rows_it_swallows(folder: Path):
    # The tester's case: L-9's stray quote swallowed L-1's row; L-1 then ran without its
    # lessons-file row (under the default rule, its published GIF deleted) and L-9 got a failed row.
    lessons = write_csv(folder, 'L-9,"Bob,Maths,en,https://school.example/x,', "L-1,Ada,Maths,en,,",
                        header=LESSONS_HEADER, name="lessons.csv")
    manifest = read_manifest(write_csv(folder, *GOOD), lessons_path=lessons)
    swallowed = "unreadable row: lines 2-3 read as one row (a quote opened on line 2 is not closed on it: a stray quote?)"
    assert problems(manifest.lessons["L-1"]) == [f"lessons.csv row 3 (lesson L-1): {swallowed}"]
    assert manifest.lessons["L-2"].ok and list(manifest.lessons) == ["L-1", "L-2"]
    assert [str(p) for p in manifest.problems] == [f"lessons.csv row 2: lesson L-9 (not in the manifest): {swallowed}"]
    assert "Ada" not in str(manifest.problems) + str(problems(manifest.lessons["L-1"]))


def test_a_value_spanning_lines_in_the_lessons_file_is_read_as_it_is(folder: Path):
    # A notes cell exported from a spreadsheet: its quoted value spans lines, none of which starts
    # a row of its own, so nothing was swallowed.
    header = LESSONS_HEADER + ",notes"
    lessons = write_csv(folder, 'L-1,Ada,Maths,en,,,"first line', 'L-1 did well,', 'more"', "L-2,Bob,Art,fr,,,",
                        header=header, name="lessons.csv")
    manifest = read_manifest(write_csv(folder, *GOOD), lessons_path=lessons)
    assert manifest.lessons["L-1"].ok and manifest.lessons["L-2"].ok and not manifest.problems
    assert manifest.lessons["L-1"].info.extra["notes"] == "first line\nL-1 did well,\nmore"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("L-1,Ada,Maths,english!,,", "locale is not a language tag"),
        ("L-1,Ada,Maths", "3 fields where the header has 6"),
    ],
)
def test_a_bad_lessons_row_spoils_its_lesson_only(folder: Path, row: str, message: str):
    lessons = write_csv(folder, row, "L-2,Bob,Art,fr,http://school.example/2,", header=LESSONS_HEADER, name="lessons.csv")
    manifest = read_manifest(write_csv(folder, *GOOD), lessons_path=lessons)
    assert manifest.lessons["L-2"].ok and manifest.lessons["L-2"].info.locale == "fr"
    messages = problems(manifest.lessons["L-1"])
    assert len(messages) == 1 and messages[0].startswith("lessons.csv row 2 (lesson L-1): ") and message in messages[0]
    info = manifest.lessons["L-1"].info
    assert info.lesson_url is None or info.lesson_url.startswith("http")
    assert "Ada" not in messages[0]  # student names stay out of messages
    assert "english!" not in messages[0]  # nor any other lesson metadata


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "https:///nohost", "ftp://school.example/x", "school.example/l?student=Ada+Smith",
     "https://school.example/l?student=Ada Smith"],
)
def test_a_bad_lesson_url_is_a_warning_without_its_value_not_a_failure(folder: Path, url: str):
    lessons = write_csv(folder, f"L-1,Ada,Maths,en,{url},", header=LESSONS_HEADER, name="lessons.csv")
    lesson = read_manifest(write_csv(folder, *GOOD), lessons_path=lessons).lessons["L-1"]
    assert lesson.ok and lesson.info.lesson_url is None  # left out of the snippet, the lesson runs
    [warning] = [str(w) for w in lesson.warnings]
    assert warning == "lessons.csv row 2 (lesson L-1): lesson_url is not a usable http(s) link: left out of the snippet"
    assert "Ada" not in warning and "school.example" not in warning and "javascript" not in warning


def test_lessons_file_rows_with_a_bad_id_or_listed_twice(folder: Path):
    lessons = write_csv(folder, "../x,Ada,,,,", "L-1,Ada,,,,", "L-1,Eve,,,,", header=LESSONS_HEADER, name="lessons.csv")
    manifest = read_manifest(write_csv(folder, *GOOD), lessons_path=lessons)
    assert [str(p) for p in manifest.problems] == [
        "lessons.csv row 2: lesson_id '../x' is not a valid id (1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit, no '..')"
    ]
    assert problems(manifest.lessons["L-1"]) == ["lessons.csv row 4 (lesson L-1): lesson listed twice (also row 3)"]
    assert manifest.lessons["L-1"].info.student_name == "Ada"
    assert manifest.lessons["L-2"].ok


def test_lessons_file_must_have_a_lesson_id_column(folder: Path):
    lessons = write_csv(folder, "L-1,Ada", header="id,student_name", name="lessons.csv")
    with pytest.raises(InputError, match="lessons.csv.*missing: lesson_id"):
        read_manifest(write_csv(folder, *GOOD), lessons_path=lessons)
    with pytest.raises(InputError, match="no such file"):
        read_lessons_file(folder / "absent.csv")


# --------------------------------------------------------------------------- whole lessons run with a lessons file (issue 9)


def test_an_unreadable_lessons_row_is_reported_for_its_lesson(videos, tmp_path: Path) -> None:
    manifest = one_lesson(videos, tmp_path / "rec")
    lessons = tmp_path / "rec" / "lessons.csv"
    lessons.write_text(f'lesson_id,student_name,locale\nL-1001,"{"A" * 200_000}",ru\n', encoding="utf-8")

    [result] = run_manifest(manifest, Settings(out_dir=tmp_path / "out"), lessons_path=lessons, scorer=FakeScorer())

    assert result.status == "failed"
    assert "lessons.csv row 2 (lesson L-1001): unreadable row" in result.reason and "AAAA" not in result.reason


def test_a_stray_quote_in_another_lessons_row_keeps_the_published_highlight(videos, tmp_path: Path, clean_env) -> None:
    # L-9's stray quote swallowed L-1001's row: L-1001 reran without it, ended no_highlight
    # and its published GIF was deleted; L-9, not in the manifest, got a failed row.
    manifest, settings, folder, first = done_lesson(videos, tmp_path)
    lessons = tmp_path / "rec" / "lessons.csv"
    lessons.write_text('lesson_id,student_name,student_age_group\nL-9,"Bob,adult\nL-1001,Ada,adult\n', encoding="utf-8")

    outcome = clean_env.invoke(main, ["run", str(manifest), "--lessons", str(lessons), "--out", str(settings.out_dir),
                                      "--no-progress", "--force"])

    assert outcome.exit_code == 1, outcome.output
    assert "lessons file problem: lessons.csv row 2: lesson L-9 (not in the manifest): unreadable row" in outcome.stderr
    row, highlight = db_row(settings, "L-1001")
    assert row["status"] == "ok" and "lessons.csv row 3 (lesson L-1001): unreadable row: lines 2-3" in row["last_error"]
    assert highlight is not None and highlight.gif_url == first.gif_url
    assert gifs_in(folder) == [first.gif] and read_result(folder).status == "ok"
    assert db_row(settings, "L-9")[0] is None and not (settings.out_dir / "L-9").exists()


def test_a_bad_lesson_url_is_left_out_and_reported_without_its_value(videos, tmp_path: Path, caplog) -> None:
    manifest = one_lesson(videos, tmp_path / "rec")
    lessons = tmp_path / "rec" / "lessons.csv"
    lessons.write_text("lesson_id,student_name,lesson_url\nL-1001,Ada,school.example/l?student=Secretname\n",
                       encoding="utf-8")
    settings = Settings(out_dir=tmp_path / "out")

    with caplog.at_level(logging.DEBUG):
        [result] = run_manifest(manifest, settings, lessons_path=lessons, scorer=FakeScorer())

    assert result.status == "ok" and result.reason == ""
    assert result.warnings == ["lessons.csv row 2 (lesson L-1001): lesson_url is not a usable http(s) link: "
                               "left out of the snippet"]
    folder = settings.out_dir / "L-1001"
    assert "Secretname" not in (folder / "snippet.html").read_text(encoding="utf-8")
    assert "Secretname" not in (folder / "result.json").read_text(encoding="utf-8")
    assert "Secretname" not in caplog.text
    row, _ = db_row(settings, "L-1001")
    assert row["status"] == "ok" and row["last_error"] is None
    assert "warning: lessons.csv row 2" in _summary_table([result], {})


def test_the_lessons_file_names_the_students_age_group(tmp_path: Path) -> None:
    for name in ("s.webm", "t.mp4"):
        (tmp_path / name).write_bytes(b"\0")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"lesson_id,role,path,started_at\nL-1,student,s.webm,{T0.isoformat()}\n"
                        f"L-2,teacher,t.mp4,{T0.isoformat()}\n", encoding="utf-8")
    lessons = tmp_path / "lessons.csv"
    lessons.write_text("lesson_id,student_age_group\nL-1,Adult\nL-2,grown-up\n", encoding="utf-8")
    parsed = read_manifest(manifest, lessons_path=lessons)
    assert parsed.lessons["L-1"].info.student_age_group == "adult" and parsed.lessons["L-1"].ok
    [problem] = parsed.lessons["L-2"].problems  # a typo must not put a child's lesson under the adult rule
    assert "student_age_group must be child or adult" in str(problem)
    settings = highlights.lesson.run.lesson_settings(parsed.lessons["L-1"], Settings())
    assert settings.selection.student_age_group == "adult"
    with pytest.raises(ValueError, match="student_age_group"):
        SelectionOptions(student_age_group="teen")
