"""Withdrawing a published highlight (:mod:`highlights.lesson.withdraw`, ``highlights withdraw``):
the GIF and snippets go, the row and report say so, later runs leave it withdrawn until a rerun by
name with ``--force``, and a withdrawal refused or cut short leaves nothing half done (issue 9).
The lessons are those of ``tests/support/scene.py``, scored by the ``FakeScorer``."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from highlights.batch.run import run_manifest
from highlights.cli import main
from highlights.lesson.folder import read_result
from highlights.lesson.withdraw import withdraw_lesson
from highlights.persist.store import ResultStore

from support.fakes import FakeScorer
from support.lessons import db_row, done_lesson, gifs_in, run_one


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
