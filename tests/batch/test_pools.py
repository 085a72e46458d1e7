"""Tests of :mod:`highlights.batch.pools`: local worker processes, crash isolation, retries, time
limits, the run record, a run killed with SIGKILL or stopped with SIGTERM, workers that die with
their parent.

The lessons are those of ``tests/support/scene.py`` (real H.264 / VP8 files through the real
stages); most tests use its ``FakeScorer`` (sent pickled to each worker process), so a GIF is
made and the outputs can be compared with a serial run (``tests/batch/conftest.py``). The kill
test runs the real CLI with the real face models in two worker processes. Worker crashes are
real: the test-only ``HIGHLIGHTS_TEST_FAULTS`` hook makes a worker kill itself with SIGSEGV or
SIGKILL, or hang. The Ray executor's tests are in ``tests/batch/test_ray_pool.py``; the one loop
and the one database writer (busy lessons, retries) in ``tests/batch/test_dispatch.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from highlights.batch.options import BatchOptions
from highlights.batch.pools import FAULTS_ENV, describe_exit
from highlights.batch.run import run_manifest
from highlights.config import Settings
from highlights.persist.store import ResultStore

from support.fakes import FakeScorer
from support.lessons import lesson_rows, write_manifest
from support.paths import REPO_ROOT, TESTS
from support.runs import run_record, snapshot, start_run_with_a_hanging_lesson


def test_two_workers_give_the_serial_runs_statuses_files_and_rows(mixed, tmp_path: Path, serial_run) -> None:
    manifest = mixed
    settings = Settings(out_dir=tmp_path / "out")
    options = BatchOptions(workers=2)
    results = run_manifest(manifest, settings, scorer=FakeScorer(), batch=options)

    assert [r.lesson_id for r in results] == ["L-1", "L-2", "L-3", "L-4"]  # the manifest's order
    assert snapshot(settings, results) == serial_run
    assert any(r.gif for r in results)

    [record] = run_record(settings)
    assert record["run_id"] == options.run_id and record["status"] == "finished"
    assert (record["ok"], record["no_highlight"], record["failed"], record["busy"], record["skipped"]) == (2, 1, 1, 0, 0)
    assert record["lessons"] == 4 and record["lessons_per_minute"] > 0
    assert record["options"]["executor"] == "local" and record["options"]["workers"] == 2
    assert record["versions"]["smile"] == "fake-smile-1" and record["host"]
    assert record["finished_at"] >= record["started_at"]


def test_crashed_lost_and_stuck_workers_fail_their_lesson_only(videos, tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "rec"
    ids = ["L-ok", "L-segv", "L-lost-once", "L-lost", "L-stuck", "L-after"]
    rows = [row for lesson_id in ids for row in lesson_rows(videos, root, lesson_id)]
    monkeypatch.setenv(FAULTS_ENV, "L-segv=segv,L-lost-once=killonce,L-lost=kill,L-stuck=hang")
    settings = Settings(out_dir=tmp_path / "out")
    results = {r.lesson_id: r for r in run_manifest(
        write_manifest(root, rows), settings, scorer=FakeScorer(),
        batch=BatchOptions(workers=2, retries=1, time_limit_s=20),  # generous: a loaded CI machine
    )}

    # A segfault is the lesson's own: failed at once, with the signal, not retried.
    assert results["L-segv"].status == "failed"
    assert "crashed (SIGSEGV)" in results["L-segv"].reason and "attempts" not in results["L-segv"].reason
    # SIGKILL (the OOM killer, a lost worker) is transient: retried, and the second try succeeds...
    assert results["L-lost-once"].status == "ok", results["L-lost-once"].reason
    # ... or, killed every time, failed after 1 + retries attempts.
    assert results["L-lost"].status == "failed" and "SIGKILL" in results["L-lost"].reason
    assert "after 2 attempts" in results["L-lost"].reason
    # A lesson past its time limit is stopped.
    assert results["L-stuck"].status == "failed" and "time limit of 20 s exceeded" in results["L-stuck"].reason
    # The rest of the batch went on.
    assert results["L-ok"].status == "ok" and results["L-after"].status == "ok"

    store = ResultStore(settings.database_url)
    try:
        assert store.row("L-segv")["status"] == "failed" and "SIGSEGV" in store.row("L-segv")["last_error"]
        assert store.row("L-ok")["status"] == "ok"
    finally:
        store.dispose()


def test_exit_descriptions() -> None:
    assert describe_exit(-signal.SIGSEGV) == ("its worker process crashed (SIGSEGV)", False)
    assert describe_exit(-signal.SIGKILL)[1] is True
    assert describe_exit(3) == ("its worker process exited unexpectedly (exit status 3)", False)


# --------------------------------------------------------------------------- the kill test


def test_a_real_multi_worker_run_killed_with_sigkill_finishes_the_rest_when_started_again(videos, tmp_path: Path) -> None:
    """SIGKILL to the whole process group of `highlights run --workers 2` (real models) mid-way;
    the second run finishes the rest, redoes none that were complete, leaves no temporary file,
    and the database has one row per lesson."""
    root = tmp_path / "rec"
    ids = [f"L-{i}" for i in range(1, 7)]
    manifest = write_manifest(root, [row for i in ids for row in lesson_rows(videos, root, i, student="shy")])
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIGHLIGHTS_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    command = [sys.executable, "-c", "from highlights.cli import main; main()", "run", str(manifest), "--out", str(out),
               "--workers", "2", "--no-progress"]

    def done() -> dict[str, tuple[int, bytes]]:
        found = {}
        for lesson_id in ids:
            path = out / lesson_id / "result.json"
            try:
                found[lesson_id] = (path.stat().st_mtime_ns, path.read_bytes())
            except FileNotFoundError:
                pass
        return found

    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while len(done()) < 2 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the parent and both workers, at once
    first.communicate(timeout=30)
    before = done()
    assert 2 <= len(before) < len(ids), f"the kill came too late or too early: {len(before)} of {len(ids)} done"
    for _, data in before.values():
        json.loads(data)  # every visible result.json is whole

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    after = done()
    assert sorted(after) == ids
    assert {k: after[k] for k in before} == before  # the complete lessons were not redone
    skipped = [line.split()[0] for line in second.stdout.splitlines() if "already done, skipped" in line]
    assert sorted(skipped) == sorted(before)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.tmp*")) == []  # no half-written file left
    for lesson_id in ids:
        assert json.loads(after[lesson_id][1])["status"] == "no_highlight"  # no faces in these frames

    store = ResultStore(Settings(out_dir=out).database_url)
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(text("SELECT lesson_id, count(*) FROM lesson_highlights GROUP BY lesson_id")).all()
            runs = connection.execute(text("SELECT status, skipped, no_highlight FROM highlight_runs "
                                           "ORDER BY started_at")).all()
    finally:
        store.dispose()
    assert sorted(r[0] for r in rows) == ids and {r[1] for r in rows} == {1}
    assert [r[0] for r in runs] == ["running", "finished"]  # the killed run's record stays open
    assert runs[1][1] == len(before) and runs[1][2] == len(ids)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _kill(*pids: int | None) -> None:
    """SIGKILL to each process still there (a test's clean-up)."""
    for pid in filter(None, pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_worker_dies_with_its_parent_instead_of_finishing_its_lesson(videos, tmp_path: Path) -> None:
    """The parent alone killed with SIGKILL (not its process group) while its worker is in the
    middle of a lesson (here: hung in it): the worker goes at once, not an hour later."""
    root = tmp_path / "rec"
    manifest = write_manifest(root, lesson_rows(videos, root, "L-1"))
    script = (
        "import sys; sys.path[:0] = [{repo!r}, {tests!r}]\n"
        "from highlights.config import Settings\n"
        "from highlights.api import BatchOptions\n"
        "from highlights.api import run_manifest\n"
        "from support.fakes import FakeScorer\n"
        "run_manifest({manifest!r}, Settings(out_dir={out!r}), scorer=FakeScorer(), batch=BatchOptions(workers=1))\n"
    ).format(repo=str(REPO_ROOT), tests=str(TESTS), manifest=str(manifest), out=str(tmp_path / "out"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIGHLIGHTS_")}
    env[FAULTS_ENV] = "L-1=hang"
    parent = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        deadline = time.monotonic() + 120
        while worker is None and time.monotonic() < deadline and parent.poll() is None:
            for pid in _children(parent.pid):
                try:
                    if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        worker = pid
                except OSError:
                    pass
            time.sleep(0.1)
        assert worker is not None, "no worker process appeared"
        # Wait until the worker has loaded and sits in its lesson: its CPU time stops growing.
        last, still_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            ticks = _cpu_ticks(worker)
            if ticks != last:
                last, still_since = ticks, time.monotonic()
            elif time.monotonic() - still_since > 2.0:
                break
            time.sleep(0.1)
        os.kill(parent.pid, signal.SIGKILL)  # the parent only: its worker is not in the signal
        parent.wait(timeout=30)
        gone_by = time.monotonic() + 15
        while Path(f"/proc/{worker}").exists() and time.monotonic() < gone_by:
            try:
                if Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    break  # dead, waiting to be reaped by init
            except OSError:
                break
            time.sleep(0.1)
        state = ""
        try:
            state = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            pass
        assert state in ("", "Z"), f"the worker outlived its parent (state {state})"
    finally:
        _kill(worker, parent.pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("to", ["parent", "group"])
def test_sigterm_stops_a_run_its_workers_and_records_it_interrupted(videos, tmp_path: Path, to: str) -> None:
    """`systemctl stop` (or a unit's timeout) sends SIGTERM: the run stops its workers, exits 143
    and its record says `interrupted` with an end time, instead of dying with `running` for ever.
    systemd's default (``KillMode=control-group``) signals every process of the unit at once:
    the workers leave the stopping to the parent, so the lesson they were on is not recorded as
    a crash."""
    parent, out = start_run_with_a_hanging_lesson(videos, tmp_path, "--workers", "1")
    worker = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and parent.poll() is None:
            if (out / "L-1" / "result.json").exists():  # L-1 done: the worker now hangs in L-2
                workers = [pid for pid in _children(parent.pid)
                           if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
                if workers:
                    worker = workers[0]
                    break
            time.sleep(0.1)
        assert worker is not None, "the worker never reached the second lesson"
        time.sleep(1.0)
        if to == "parent":
            os.kill(parent.pid, signal.SIGTERM)  # `kill PID`, or KillMode=mixed
        else:
            os.killpg(parent.pid, signal.SIGTERM)  # KillMode=control-group: the parent and its workers
        _, stderr = parent.communicate(timeout=60)
        assert parent.returncode == 143, stderr
        assert b"SIGTERM: stopping the run" in stderr
        assert not Path(f"/proc/{worker}").exists() or \
            Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    finally:
        _kill(worker, parent.pid)
    [run] = run_record(Settings(out_dir=out))
    assert run["status"] == "interrupted" and run["finished_at"] is not None
    assert run["ok"] + run["no_highlight"] == 1  # L-1, done before the signal
    assert run["failed"] == 0  # L-2 is not a crash: the next run does it


def test_a_run_whose_workers_cannot_load_the_models_is_recorded_failed(videos, tmp_path: Path) -> None:
    root = tmp_path / "rec"
    manifest = write_manifest(root, lesson_rows(videos, root, "L-1"))
    bad = tmp_path / "age.pt"
    bad.write_text("not a weights file\n")
    settings = Settings(out_dir=tmp_path / "out", age_weights=bad)
    with pytest.raises(RuntimeError, match="the face models cannot be loaded"):
        run_manifest(manifest, settings, batch=BatchOptions(workers=1))
    [run] = run_record(settings)
    assert run["status"] == "failed" and run["finished_at"] is not None  # it stayed "running"
