"""Tests of :mod:`highlights.batch.dispatch`: the one loop and the one database writer (transient
database errors retried, a row that cannot be written, a database that refuses the run record),
and lessons another run holds (busy, ``--wait``, two runs at once). The lessons are those of
``tests/support/scene.py``, scored by the ``FakeScorer``."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

import highlights.batch.pools
from highlights.batch.dispatch import retry_transient
from highlights.batch.options import BatchOptions
from highlights.batch.run import run_manifest
from highlights.cli import main
from highlights.config import Settings
from highlights.core.result import LessonResult
from highlights.lesson.folder import lesson_lock
from highlights.persist.store import ResultStore

from support.fakes import FakeScorer
from support.lessons import lesson_rows, one_lesson, write_manifest
from support.runs import run_record


def test_transient_database_errors_are_retried_and_others_are_not() -> None:
    from sqlalchemy.exc import OperationalError

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        return "saved"

    assert retry_transient(flaky, retries=2, what="test", first_pause_s=0.01) == "saved" and len(calls) == 3
    calls.clear()
    with pytest.raises(OperationalError):
        retry_transient(flaky, retries=1, what="test", first_pause_s=0.01)
    with pytest.raises(ValueError):
        retry_transient(lambda: (_ for _ in ()).throw(ValueError("bad")), retries=3, what="test", first_pause_s=0.01)


def test_a_lesson_another_run_holds_is_busy_not_failed_and_wait_waits(videos, tmp_path: Path, monkeypatch) -> None:
    for name in [n for n in os.environ if n.startswith("HIGHLIGHTS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(highlights.batch.pools, "load_scorer", lambda settings: FakeScorer())
    root = tmp_path / "rec"
    manifest = write_manifest(root, lesson_rows(videos, root, "L-1") + lesson_rows(videos, root, "L-2"))
    out = tmp_path / "out"
    settings = Settings(out_dir=out)

    with lesson_lock(out / "L-1") as locked:
        assert locked
        outcome = CliRunner().invoke(main, ["run", str(manifest), "--out", str(out), "--no-progress", "--workers", "0"])
    assert outcome.exit_code == 0, outcome.output  # busy is not a failure
    line = next(line for line in outcome.stdout.splitlines() if line.startswith("L-1"))
    assert "busy" in line and "another run is working on it" in line
    assert "1 busy" in outcome.stdout and "1 ok" in outcome.stdout
    assert not (out / "L-1" / "result.json").exists()
    assert ResultStore(settings.database_url).row("L-1") is None  # the other run writes its row
    [record] = run_record(settings)
    assert record["busy"] == 1 and record["ok"] == 1

    # --wait: the lesson runs as soon as the other run lets go of it.
    held = threading.Event()

    def hold_for_a_while():
        with lesson_lock(out / "L-1"):
            held.set()
            time.sleep(1.5)

    holder = threading.Thread(target=hold_for_a_while)
    holder.start()
    held.wait()
    [result, skipped] = run_manifest(manifest, settings, scorer=FakeScorer(),
                                     batch=BatchOptions(workers=0, wait=True, lock_poll_s=0.3))
    holder.join()
    assert result.status == "ok" and skipped.skipped


def test_two_runs_at_once_share_the_lessons_and_do_each_once(videos, tmp_path: Path) -> None:
    root = tmp_path / "rec"
    ids = ["L-1", "L-2", "L-3", "L-4"]
    manifest = write_manifest(root, [row for i in ids for row in lesson_rows(videos, root, i)])
    settings = Settings(out_dir=tmp_path / "out")
    scorers = [FakeScorer(), FakeScorer()]
    outcomes: dict[int, list[LessonResult]] = {}

    def run(k: int, order: list[str]) -> None:
        outcomes[k] = run_manifest(manifest, settings, order, scorer=scorers[k])

    threads = [threading.Thread(target=run, args=(0, ids)), threading.Thread(target=run, args=(1, ids[::-1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    by_lesson: dict[str, list[LessonResult]] = {}
    for results in outcomes.values():
        for result in results:
            by_lesson.setdefault(result.lesson_id, []).append(result)
    for lesson_id, pair in by_lesson.items():
        worked = [r for r in pair if r.status == "ok" and not r.skipped]
        others = [r for r in pair if not any(r is w for w in worked)]
        assert len(worked) == 1, (lesson_id, [(r.status, r.skipped) for r in pair])  # done once, by one run
        assert others[0].status == "busy" or others[0].skipped
    assert not any(r.status == "failed" for results in outcomes.values() for r in results)
    store = ResultStore(settings.database_url)
    try:
        with store.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM lesson_highlights")).scalar() == 4
    finally:
        store.dispose()
    assert len(run_record(settings)) == 2


def test_a_row_that_cannot_be_written_marks_result_json_failed_only_while_it_is_still_the_workers(tmp_path: Path) -> None:
    """The parent replaces a worker's ``result.json`` by ``failed`` when the lesson's row could not
    be written, so the next run redoes it; but only under the lesson's lock, and never over the
    outcome of another run that took the lesson in between (a rerun by hand)."""
    from highlights.batch.dispatch import mark_unrecorded
    from highlights.lesson.folder import read_result, write_result

    folder = tmp_path / "L-1"
    folder.mkdir()
    done = LessonResult("L-1", "ok", fingerprint="f1", finished_at="2026-12-02T01:00:00+00:00", folder=folder)
    failed = LessonResult("L-1", "failed", reason="lesson L-1: database row not written", fingerprint="f1", folder=folder)

    write_result(done, folder)
    with lesson_lock(folder) as locked:  # another run holds the lesson: its outcome will stand
        assert locked
        mark_unrecorded(done, failed)
    assert read_result(folder).status == "ok"

    other = LessonResult("L-1", "ok", fingerprint="f1", finished_at="2026-12-02T01:05:00+00:00", folder=folder)
    write_result(other, folder)  # a rerun by hand finished the lesson since (and wrote its row)
    mark_unrecorded(done, failed)
    assert read_result(folder).finished_at == other.finished_at and read_result(folder).status == "ok"

    write_result(done, folder)  # still the worker's own file: marked failed
    mark_unrecorded(done, failed)
    assert read_result(folder).status == "failed"


# --------------------------------------------------------------------------- bad inputs and faults of issue 9


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
