"""Bad inputs and faults of issue 9: each test failed on the code before the fix.

The lessons run through the real stages on recordings built at run time, with the fake face
scorer of ``tests/test_pipeline.py`` (see its docstring); the detector test uses real MTCNN.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import highlights.batch.pools
import highlights.lesson.flow
import highlights.lesson.folder
import highlights.lesson.graph
import highlights.lesson.run
from highlights.cli import main
from highlights.cli.lessons import _summary_table
from highlights.config import ConfigError, Settings, load_settings
from highlights.batch.run import run_manifest
from highlights.lesson.withdraw import withdraw_lesson
from highlights.inputs.manifest import read_manifest
from highlights.core.lesson import is_valid_lesson_id
from highlights.core.result import LessonResult
from highlights.lesson.folder import read_result
from highlights.stages.selection import SelectionOptions, select_highlights
from highlights.persist.store import ResultStore
from test_pipeline import (  # noqa: F401 - videos is a fixture
    T0,
    FakeScorer,
    db_row,
    done_lesson,
    gifs_in,
    lesson_rows,
    one_lesson,
    run_one,
    videos,
    write_manifest,
)


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in [n for n in os.environ if n.startswith("HIGHLIGHTS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(highlights.batch.pools, "load_scorer", lambda settings: FakeScorer())
    return CliRunner()


# --------------------------------------------------------------------------- 1. one namespace


@pytest.mark.parametrize("lesson_id", [".highlights", "-x", "_x", ".x", "L-1001\u200b"])
def test_lesson_ids_start_with_a_letter_or_digit(lesson_id: str) -> None:
    assert not is_valid_lesson_id(lesson_id)
    assert is_valid_lesson_id("highlights.sqlite-journal")  # lesson folders never meet the job's files now


def test_a_lesson_named_like_the_databases_journal_breaks_nothing(videos, tmp_path: Path) -> None:
    root = tmp_path / "rec"
    rows = lesson_rows(videos, root, "highlights.sqlite-journal") + lesson_rows(videos, root, "L-1001")
    rows += lesson_rows(videos, root, "highlights.sqlite")
    settings = Settings(out_dir=tmp_path / "out")

    results = run_manifest(write_manifest(root, rows), settings, scorer=FakeScorer())

    assert [r.status for r in results] == ["ok", "ok", "ok"], [r.reason for r in results]
    assert settings.database_url == f"sqlite:///{tmp_path / 'out' / '.highlights' / 'highlights.sqlite'}"
    for lesson_id in ("highlights.sqlite-journal", "L-1001", "highlights.sqlite"):
        assert db_row(settings, lesson_id)[0]["status"] == "ok"  # the next night opens it fine


def test_an_existing_database_in_out_is_kept_and_lessons_that_would_clash_fail_alone(videos, tmp_path: Path) -> None:
    out = tmp_path / "out"
    legacy = out / "highlights.sqlite"
    ResultStore(f"sqlite:///{legacy}").dispose()  # an older deployment's database
    settings = Settings(out_dir=out)
    assert settings.database_url == f"sqlite:///{legacy}"
    root = tmp_path / "rec"
    rows = lesson_rows(videos, root, "highlights.sqlite-journal") + lesson_rows(videos, root, "L-1001")

    clash, good = run_manifest(write_manifest(root, rows), settings, scorer=FakeScorer())

    assert clash.status == "failed" and "highlights.sqlite" in clash.reason
    assert not (out / "highlights.sqlite-journal").exists()
    assert good.status == "ok", good.reason
    assert db_row(settings, "L-1001")[0]["status"] == "ok"
    assert not (out / ".highlights" / "highlights.sqlite").exists()


# --------------------------------------------------------------------------- 2. no withdrawal by accident


def _kept(settings: Settings, folder: Path, first: LessonResult, result: LessonResult) -> None:
    assert result.status == "failed"
    assert gifs_in(folder) == [first.gif] and (folder / "snippet.html").is_file()
    assert read_result(folder).status == "ok"
    row, highlight = db_row(settings, "L-1001")
    assert row["status"] == "ok" and row["last_error"] == result.reason
    assert highlight is not None and highlight.gif_url == first.gif_url


def test_a_rerun_without_the_students_row_keeps_the_published_highlight(videos, tmp_path: Path, clean_env) -> None:
    _, settings, folder, first = done_lesson(videos, tmp_path)
    rows = lesson_rows(videos, tmp_path / "rec2", "L-1001")[:1]  # the teacher's row only
    manifest = write_manifest(tmp_path / "rec2", rows)

    outcome = clean_env.invoke(main, ["run", str(manifest), "--out", str(settings.out_dir), "--no-progress"])

    assert outcome.exit_code == 1, outcome.output  # not 0: a published lesson lost its input
    [result] = run_manifest(manifest, settings, scorer=FakeScorer())
    assert "no student recording" in result.reason and "highlights withdraw L-1001" in result.reason
    _kept(settings, folder, first, result)


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
    _kept(settings, folder, first, result)


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
    _kept(settings, folder, first, result)
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
    _kept(settings, folder, first, result)
    # With its row again, the rerun goes through.
    [again] = run_manifest(manifest, replace(settings, force=True), lessons_path=lessons, scorer=FakeScorer())
    assert again.status == "ok" and again.gif == first.gif


def test_withdraw_removes_the_gif_marks_the_row_and_sticks_until_force(videos, tmp_path: Path, clean_env) -> None:
    manifest, settings, folder, first = done_lesson(videos, tmp_path)

    outcome = clean_env.invoke(main, ["withdraw", "L-1001", "--out", str(settings.out_dir)])

    assert outcome.exit_code == 0, outcome.output
    assert gifs_in(folder) == [] and not (folder / "snippet.html").exists()
    row, highlight = db_row(settings, "L-1001")
    assert row["status"] == "withdrawn" and row["gif_url"] is None and row["snippet_html"] is None
    assert highlight is None
    assert read_result(folder).status == "withdrawn"

    # The nightly run skips it, even after its inputs change...
    touched = manifest.parent / "L-1001" / "student.webm"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 5_000_000_000))
    again = run_one(manifest, settings, FakeScorer())
    assert again.skipped and again.status == "withdrawn" and gifs_in(folder) == []
    # ... and a whole night's --force (a new model) leaves it withdrawn ...
    night = run_one(manifest, replace(settings, force=True), FakeScorer())
    assert night.skipped and night.status == "withdrawn" and gifs_in(folder) == []
    # ... until a rerun of this lesson by name with force, which makes a GIF under a new name.
    [forced] = run_manifest(manifest, replace(settings, force=True), ["L-1001"], scorer=FakeScorer())
    assert forced.status == "ok" and forced.gif != first.gif and gifs_in(folder) == [forced.gif]

    assert clean_env.invoke(main, ["withdraw", "L-404", "--out", str(settings.out_dir)]).exit_code == 1


def test_withdraw_marks_the_report_withdrawn_atomically_and_privately(videos, tmp_path: Path) -> None:
    # The report used to stay as the run wrote it: status ok, the deleted GIF shown and named.
    old = os.umask(0o022)
    try:
        manifest, settings, folder, first = done_lesson(videos, tmp_path)
        report = folder / "report.html"
        before = report.read_text(encoding="utf-8")
        assert "<title>Lesson L-1001: ok</title>" in before and f'<img src="{first.gif}"' in before
        mode = stat.S_IMODE(report.stat().st_mode)

        result = withdraw_lesson("L-1001", settings)
    finally:
        os.umask(old)

    html = report.read_text(encoding="utf-8")
    assert "<title>Lesson L-1001: withdrawn</title>" in html
    assert '<span class="status status-withdrawn"' in html and '<span class="status status-ok"' not in html
    assert f"Withdrawn: {result.reason}." in html and first.gif not in html and "GIF withdrawn" in html
    assert html.count('class="chart chart-') == before.count('class="chart chart-')  # the figures stay
    assert stat.S_IMODE(report.stat().st_mode) == mode and mode & 0o007 == 0
    assert [p.name for p in folder.iterdir() if ".tmp" in p.name] == []
    assert read_result(folder).report == "report.html"
    # Withdrawn again: one note, the latest reason.
    again = withdraw_lesson("L-1001", settings)
    html = report.read_text(encoding="utf-8")
    assert html.count('class="withdrawn-note"') == 1 and f"Withdrawn: {again.reason}." in html
    # A forced rerun by name writes a fresh report of the new highlight.
    [forced] = run_manifest(manifest, replace(settings, force=True), ["L-1001"], scorer=FakeScorer())
    html = report.read_text(encoding="utf-8")
    assert forced.status == "ok" and "withdrawn" not in html and f'<img src="{forced.gif}"' in html


def test_a_withdrawal_the_database_refuses_changes_nothing(videos, tmp_path: Path) -> None:
    """The GIF and snippets used to be deleted before the row was saved: a database that refused
    the row left an ``ok`` row and result.json pointing at a deleted GIF (a broken image in the
    parents' email). Now everything stays as it was, published, and the error is raised."""
    _, settings, folder, first = done_lesson(videos, tmp_path)
    report = (folder / "report.html").read_text(encoding="utf-8")
    store = ResultStore(settings.database_url)

    def refuse(result):
        raise RuntimeError("database is locked")

    store.save = refuse
    try:
        with pytest.raises(RuntimeError, match="database is locked"):
            withdraw_lesson("L-1001", settings, store=store)
    finally:
        store.dispose()

    assert gifs_in(folder) == [first.gif] and (folder / "snippet.html").is_file()
    assert read_result(folder).status == "ok" and read_result(folder).gif == first.gif
    assert (folder / "report.html").read_text(encoding="utf-8") == report
    row, highlight = db_row(settings, "L-1001")
    assert row["status"] == "ok" and highlight is not None and highlight.gif_url == first.gif_url
    # And once the database takes it, the withdrawal goes through.
    assert withdraw_lesson("L-1001", settings).status == "withdrawn" and gifs_in(folder) == []


def test_republishing_withdrawn_lessons_cannot_be_configured(tmp_path: Path) -> None:
    # Only a rerun naming its lessons with --force makes withdrawn highlights again.
    with pytest.raises(ConfigError, match="unknown setting 'republish_withdrawn'"):
        load_settings(None, env={"HIGHLIGHTS_FORCE": "1", "HIGHLIGHTS_REPUBLISH_WITHDRAWN": "true"})
    config = tmp_path / "highlights.toml"
    config.write_text("force = true\nrepublish_withdrawn = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="republish_withdrawn"):
        load_settings(config, env={})


# --------------------------------------------------------------------------- 3. an unreadable lessons row


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


# --------------------------------------------------------------------------- 4. UTC in result.json


def test_result_json_uses_one_offset(videos, tmp_path: Path) -> None:
    from datetime import timedelta, timezone

    root = tmp_path / "rec"
    teacher, student = lesson_rows(videos, root, "L-1001")
    teacher[3] = T0.astimezone(timezone(timedelta(hours=-5))).isoformat()
    student[3] = (T0 + timedelta(seconds=2)).astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    result = run_one(write_manifest(root, [teacher, student]), Settings(out_dir=tmp_path / "out"), FakeScorer())

    data = json.loads((tmp_path / "out" / "L-1001" / "result.json").read_text(encoding="utf-8"))
    times = [data["lesson"]["start"], data["lesson"]["end"], *(f["at"] for f in data["frames"])]
    assert result.status == "ok" and all(t.endswith("+00:00") for t in times), times


# --------------------------------------------------------------------------- 5. settings out of range


@pytest.mark.parametrize(
    ("toml", "setting"),
    [("fps = 0", "fps"), ("fps = 1e9", "fps"), ("gap_tolerance_s = -5", "gap_tolerance_s"),
     ("[detection]\nmax_side = 5", "max_side"), ("[gif]\nmax_bytes = -5", "max_bytes"),
     ("[gif]\npalettes = [1024]", "palettes"), ('[detection]\ndevice = "tpu"', "device"),
     # Before: accepted. inf / nan: min_gap_s looped for ever, margin and gap_tolerance_s failed every
     # lesson, scene_change = nan switched scene changes off; 1e300 overflowed a timedelta; a bucket
     # of a nanosecond never finished a 2-minute lesson.
     ("[selection]\nmin_gap_s = inf", "min_gap_s"), ("[gif]\nmargin = inf", "margin"),
     ("gap_tolerance_s = inf", "gap_tolerance_s"), ("[detection]\nscene_change = nan", "scene_change"),
     ("gap_tolerance_s = 1e300", "gap_tolerance_s"), ("analytics_bucket_s = 1e-9", "analytics_bucket_s")],
)
def test_settings_out_of_range_stop_the_run_before_any_lesson(videos, tmp_path: Path, clean_env, toml, setting) -> None:
    config = tmp_path / "highlights.toml"
    config.write_text(toml + "\n", encoding="utf-8")
    manifest = one_lesson(videos, tmp_path / "rec")
    out = tmp_path / "out"

    outcome = clean_env.invoke(main, ["run", str(manifest), "--out", str(out), "--config", str(config), "--no-progress"])

    assert outcome.exit_code == 2, outcome.output
    assert setting in outcome.output
    assert not (out / "L-1001").exists()
    with pytest.raises(ConfigError, match=setting):
        load_settings(config, env={})


def test_a_list_setting_of_the_wrong_shape_is_named_once_and_plainly(tmp_path: Path) -> None:
    # Before: "environment variable HIGHLIGHTS_GIF__SIZES: environment variable HIGHLIGHTS_GIF__SIZES:
    # expected a whole number" (an item's error wrapped twice) and "gif.sizes: 'int' object is not iterable".
    with pytest.raises(ConfigError) as raised:
        load_settings(env={"HIGHLIGHTS_GIF__SIZES": "abc"})
    assert str(raised.value) == "environment variable HIGHLIGHTS_GIF__SIZES: expected a whole number, got 'abc'"
    config = tmp_path / "highlights.toml"
    config.write_text("[gif]\nsizes = 360\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"gif\.sizes: expected a list, got 360$"):
        load_settings(config, env={})


def test_a_config_file_that_is_not_utf8_is_a_bad_option_not_a_traceback(videos, tmp_path: Path, clean_env) -> None:
    # Before: UnicodeDecodeError out of the CLI (exit 1 with a traceback) for a Latin-1 comment.
    config = tmp_path / "highlights.toml"
    config.write_bytes(b"fps = 1.0\n# caf\xe9\n")
    manifest = one_lesson(videos, tmp_path / "rec")

    outcome = clean_env.invoke(main, ["run", str(manifest), "--out", str(tmp_path / "out"), "--config", str(config),
                                      "--no-progress"])

    assert outcome.exit_code == 2, outcome.output
    assert "not UTF-8" in outcome.output and "highlights.toml" in outcome.output
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(config, env={})


def test_a_non_finite_number_is_refused_from_the_environment_too() -> None:
    with pytest.raises(ConfigError, match=r"HIGHLIGHTS_SELECTION__MIN_GAP_S: expected a finite number, got 'inf'"):
        load_settings(env={"HIGHLIGHTS_SELECTION__MIN_GAP_S": "inf"})
    with pytest.raises(ValueError, match="min_gap_s"):
        SelectionOptions(min_gap_s=float("inf"))


@pytest.mark.parametrize("command", ["run", "withdraw"])
def test_an_empty_out_option_is_refused_not_the_working_directory(videos, tmp_path: Path, clean_env, monkeypatch,
                                                                   command) -> None:
    # Before: `--out "$OUT"` with OUT unset reached the job as Path('.'): lesson folders and a new
    # database in the working directory (the checkout, under cron), though HIGHLIGHTS_OUT_DIR=''
    # is refused.
    manifest = one_lesson(videos, tmp_path / "rec")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    args = ["run", str(manifest), "--no-progress", "--workers", "0"] if command == "run" else ["withdraw", "L-1001"]

    outcome = clean_env.invoke(main, [*args, "--out", ""])

    assert outcome.exit_code == 2, outcome.output
    assert "'--out': is empty" in outcome.output
    assert list(cwd.iterdir()) == []


def test_a_manifest_with_only_its_header_warns_but_succeeds(tmp_path: Path, clean_env, caplog) -> None:
    # A day without lessons is not an error, but a nightly export that failed writes the same
    # file: it used to pass without a word.
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("lesson_id,role,path,started_at,ended_at\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="highlights.lesson.run"):
        outcome = clean_env.invoke(main, ["run", str(manifest), "--out", str(tmp_path / "out"), "--no-progress",
                                          "--workers", "0"])
    assert outcome.exit_code == 0, outcome.output
    assert "manifest manifest.csv lists no recordings: no lesson to run" in caplog.text
    assert str(tmp_path) not in caplog.text


# --------------------------------------------------------------------------- 6. lesson metadata


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


# --------------------------------------------------------------------------- 7. a tiny video


def test_tiny_frames_have_no_face_instead_of_an_internal_error() -> None:
    from highlights.models.detection import FaceDetector

    detector = FaceDetector()
    tiny = [np.zeros((1, 1, 3), np.uint8), np.zeros((12, 16, 3), np.uint8), np.zeros((19, 40, 3), np.uint8)]
    assert [len(d) for d in detector.detect(tiny)] == [0, 0, 0]


def test_a_tiny_recording_gives_frames_without_a_face(tmp_path: Path) -> None:
    from highlights.models.detection import FaceDetector
    from highlights.media.decode import iter_frames_at
    from highlights.media.synthetic import write_video

    path = write_video(tmp_path / "tiny.webm", (np.full((12, 16, 3), 90 + i, np.uint8) for i in range(10)),
                       fps=5, codec="vp8")
    images = [image for image in iter_frames_at(path, [0.0, 1.0]) if image is not None]
    assert images and images[0].shape[:2] == (12, 16)
    assert [len(d) for d in FaceDetector().detect(images)] == [0] * len(images)


# --------------------------------------------------------------------------- 8. a truncated file


@pytest.mark.parametrize(("suffix", "options"), [(".mp4", {"faststart": True}), (".webm", {"codec": "vp8"})])
def test_a_truncated_file_that_states_its_length_warns(tmp_path: Path, caplog, suffix, options) -> None:
    from highlights.media.probe import probe_recording
    from highlights.media.synthetic import index_frame, truncate_file, write_video

    whole = write_video(tmp_path / f"whole{suffix}", (index_frame(i, (160, 120)) for i in range(150)), fps=25, **options)
    cut = truncate_file(whole, 0.5, out=tmp_path / f"cut{suffix}")
    with caplog.at_level(logging.WARNING, logger="highlights.media.probe"):
        assert probe_recording(whole).duration_s == pytest.approx(6.0, abs=0.1)
        assert not caplog.records
        info = probe_recording(cut)
    assert info.duration_s < 5.0
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"cut{suffix}: truncated?") and "6.0 s" in warning and str(tmp_path) not in warning


# --------------------------------------------------------------------------- smaller things


def test_lesson_files_with_personal_data_are_not_world_readable_but_the_gif_is(videos, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        _, settings, folder, first = done_lesson(videos, tmp_path)
    finally:
        os.umask(old)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    for name in ("result.json", "snippet.html", "snippet.txt", "report.html", "scores.csv", "stages.json",
                 "selection.json", "timeline.json", "analytics.json"):
        assert mode(folder / name) & 0o007 == 0, name
    assert mode(folder / first.gif) == 0o644
    assert mode(settings.out_dir / ".highlights" / "highlights.sqlite") & 0o007 == 0


def test_a_multi_line_database_error_is_one_line_of_the_summary() -> None:
    result = LessonResult("L-1", "failed", reason="lesson L-1: database x: OperationalError: locked\n[SQL: INSERT]\n(Background)")
    table = _summary_table([result, LessonResult("L-2", "ok")], {})
    assert len(table.splitlines()) == 4  # header, two lessons, counts


def test_lessons_file_problems_are_labelled_as_such(videos, tmp_path: Path, clean_env) -> None:
    manifest = one_lesson(videos, tmp_path / "rec")
    lessons = tmp_path / "rec" / "lessons.csv"
    lessons.write_text("lesson_id,student_name\n../x,Ada\n", encoding="utf-8")
    outcome = clean_env.invoke(main, ["run", str(manifest), "--lessons", str(lessons), "--out", str(tmp_path / "out"),
                                      "--no-progress"])
    assert "lessons file problem: lessons.csv row 2" in outcome.stderr
    assert "manifest problem" not in outcome.stderr


# --------------------------------------------------------------------------- adult students


def _scores(rows: list[tuple[int, int, bool, float]]) -> pd.DataFrame:
    """(frame = second, face, is_child, smile) -> a scores table every face of which is usable."""
    from highlights.core.faces import FaceTable

    records = [
        {"frame": f, "t": float(f), "at": (T0 + timedelta(seconds=f)).isoformat(), "source": "s.webm",
         "offset_s": float(f), "face": k,
         "x1": 0.0 + 100 * k, "y1": 0.0, "x2": 80.0 + 100 * k, "y2": 80.0, "det_prob": 0.999,
         "child_prob": 0.9 if child else 0.1, "smile_prob": smile, "is_child": child, "sharpness": 300.0,
         "brightness": 120.0, "crop_hash": f"{(f * 2654435761) % (1 << 64):016x}"}
        for f, k, child, smile in rows
    ]
    return pd.concat([FaceTable.empty().data, pd.DataFrame(records)], ignore_index=True)


def test_an_adult_students_gif_is_her_own_face_alone_and_childrens_lessons_keep_their_rule() -> None:
    # An adult alone, smiling, at 0, 30, 60, 90 s; at 61 s someone else is in view too.
    rows = [(t, 0, False, 0.95) for t in (0, 30, 59, 60, 90)] + [(61, 0, False, 0.95), (61, 1, True, 0.95)]
    scores = _scores(rows)

    adult = select_highlights(scores, SelectionOptions(student_age_group="adult"))
    assert adult.status == "ok"
    assert sorted(p.ref.t for p in adult.picks) == [0.0, 30.0, 90.0]  # 59, 60 lie within 2 s of the second face

    child = select_highlights(scores, SelectionOptions())  # the default rule: an adult is never the subject
    assert child.status == "no_highlight" and "no child's face" not in child.reason


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
    _kept(settings, folder, first, result)
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


def test_folders_and_the_lock_are_not_writable_by_others_under_umask_000(videos, tmp_path: Path) -> None:
    """Under a umask of 000 the lesson folders came out 0777 and ``.lock`` 0666: anyone on the
    machine could replace or delete a published GIF. Folders the job makes are never group- or
    world-writable now; the files keep their modes (GIF 0644, the rest 0640)."""
    old = os.umask(0)
    try:
        manifest = one_lesson(videos, tmp_path / "rec")
        settings = Settings(out_dir=tmp_path / "out" / "nightly")
        result = run_one(manifest, settings, FakeScorer())
    finally:
        os.umask(old)
    assert result.status == "ok", result.reason
    folder = settings.out_dir / "L-1001"
    for path in (tmp_path / "out", settings.out_dir, folder):
        assert stat.S_IMODE(path.stat().st_mode) & 0o022 == 0, (path, oct(path.stat().st_mode))
    assert stat.S_IMODE((folder / ".lock").stat().st_mode) & 0o077 == 0o040
    assert stat.S_IMODE((folder / result.gif).stat().st_mode) == 0o644


def test_a_withdrawal_cut_short_before_its_files_went_is_finished_by_the_next_run(videos, tmp_path: Path) -> None:
    """A withdrawal whose process died after result.json and the row were written but before
    the GIF and snippets were deleted left the withdrawn GIF public; the next run, which skips
    the lesson, now deletes them."""
    manifest, settings, folder, first = done_lesson(videos, tmp_path)
    gif = (folder / first.gif).read_bytes()
    snippet = (folder / "snippet.html").read_bytes()
    withdraw_lesson("L-1001", settings)
    (folder / first.gif).write_bytes(gif)  # as if the process had died before deleting them
    (folder / "snippet.html").write_bytes(snippet)

    [skipped] = run_manifest(manifest, settings, scorer=FakeScorer())

    assert skipped.status == "withdrawn" and skipped.skipped
    assert gifs_in(folder) == [] and not (folder / "snippet.html").exists()


def test_a_database_that_refuses_the_first_write_is_named_on_one_line(videos, tmp_path: Path, clean_env,
                                                                      monkeypatch) -> None:
    # A read-only SQLite file (chmod 444, or a -shm file left read-only by a run on it) opens, then
    # refuses the run record: before, "Error: OperationalError: (sqlite3.OperationalError) attempt
    # to write a readonly database" and the INSERT statement on four lines, no database named.
    from sqlalchemy.exc import OperationalError

    def refuse(self, *args, **kwargs):
        raise OperationalError("INSERT INTO highlight_runs ...", {}, Exception("attempt to write a readonly database"))

    monkeypatch.setattr(ResultStore, "start_run", refuse)
    manifest = one_lesson(videos, tmp_path / "rec")
    out = tmp_path / "out"
    outcome = clean_env.invoke(main, ["run", str(manifest), "--out", str(out), "--no-progress", "--retries", "0"])
    assert outcome.exit_code == 1, outcome.output
    database = f"sqlite:///{out / '.highlights' / 'highlights.sqlite'}"
    assert f"Error: database {database} cannot be written: OperationalError:" in outcome.output, outcome.output
    assert "attempt to write a readonly database" in outcome.output
    assert "[SQL" not in outcome.output and len(outcome.output.strip().splitlines()) == 1, outcome.output
    assert not (out / "L-1001").exists()  # no lesson ran


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


def test_a_withdrawal_between_the_runs_check_and_its_lock_sticks(videos, tmp_path: Path, monkeypatch) -> None:
    # The run read result.json (ok), then `highlights withdraw` took the lesson's lock first: the
    # forced night's run went on under the lock and published the withdrawn highlight again.
    manifest, settings, folder, first = done_lesson(videos, tmp_path)
    real_lock = highlights.lesson.folder.lesson_lock
    withdrawn = []

    def lock_after_a_withdrawal(path):
        if not withdrawn:
            withdrawn.append("started")  # withdraw_lesson takes the lock through here too
            withdrawn.append(withdraw_lesson("L-1001", settings))
        return real_lock(path)

    monkeypatch.setattr(highlights.lesson.folder, "lesson_lock", lock_after_a_withdrawal)
    result = run_one(manifest, replace(settings, force=True), FakeScorer())

    assert withdrawn and result.status == "withdrawn" and result.skipped
    assert read_result(folder).status == "withdrawn" and gifs_in(folder) == []
    assert db_row(settings, "L-1001")[0]["status"] == "withdrawn"


@pytest.mark.parametrize("problem", ["missing", "not weights"])
def test_a_weights_setting_that_names_no_usable_file_is_a_bad_setting(videos, tmp_path: Path, clean_env, problem) -> None:
    # It used to reach the workers, which could not start: exit 1, "the face models cannot be
    # loaded", and a run record marked failed, where the README promises exit 2 for a bad setting.
    root = tmp_path / "rec"
    manifest = write_manifest(root, lesson_rows(videos, root, "L-1001"))
    weights = tmp_path / "age-school.pt"
    if problem == "not weights":
        weights.write_text("not a weights file\n")
    outcome = clean_env.invoke(main, ["run", str(manifest), "--out", str(tmp_path / "out"), "--no-progress"],
                               env={"HIGHLIGHTS_AGE_WEIGHTS": str(weights)})
    assert outcome.exit_code == 2, outcome.output
    assert "age model weights" in outcome.output and "age-school.pt" in outcome.output
    assert not (tmp_path / "out" / "L-1001").exists()  # no lesson ran


def test_a_manifest_with_only_its_header_warns_even_beside_a_lessons_file_with_a_bad_row(tmp_path: Path, caplog) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("lesson_id,role,path,started_at,ended_at\n", encoding="utf-8")
    lessons = tmp_path / "lessons.csv"
    lessons.write_text("lesson_id,student_name,locale\nL-9,Ann,not a language tag!\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="highlights.lesson.run"):
        run_manifest(read_manifest(manifest, lessons_path=lessons), Settings(out_dir=tmp_path / "out"))
    assert "manifest manifest.csv lists no recordings" in caplog.text
