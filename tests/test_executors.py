"""Tests of :mod:`highlights.batch.dispatch`: local worker processes, crash isolation, retries, time
limits, busy lessons, the one writer, the run record, JSON logs, and a run killed with SIGKILL.

The lessons are those of ``tests/test_pipeline.py`` (real H.264 / VP8 files through the real
stages); most tests use its ``FakeScorer`` (sent pickled to each worker process), so a GIF is
made and the outputs can be compared with a serial run. The kill test runs the real CLI with the
real face models in two worker processes. Worker crashes are real: the test-only
``HIGHLIGHTS_TEST_FAULTS`` hook makes a worker kill itself with SIGSEGV or SIGKILL, or hang.
The Ray executor's tests are in ``tests/test_ray_executor.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

import highlights.batch.pools
import highlights.lesson.flow
import highlights.lesson.folder
import highlights.lesson.graph
import highlights.lesson.run
from highlights.cli import main
from highlights.config import Settings
from highlights.batch.dispatch import retry_transient
from highlights.batch.pools import FAULTS_ENV, describe_exit
from highlights.batch.options import BatchOptions, worker_plan
from highlights.batch.run import run_manifest
from highlights.lesson.folder import lesson_lock
from highlights.core.result import LessonResult
from highlights.persist.store import HighlightRun, ResultStore
from concurrent_writer import write_rows
from test_pipeline import FakeScorer, lesson_rows, videos, write_manifest  # noqa: F401 - videos is a fixture

REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- helpers


def mixed_manifest(videos, root: Path) -> Path:
    """Four lessons: two with smiles (ok), a shy child (no_highlight), an unreadable student file (failed)."""
    rows = (lesson_rows(videos, root, "L-1") + lesson_rows(videos, root, "L-2", student="shy")
            + lesson_rows(videos, root, "L-3") + lesson_rows(videos, root, "L-4"))
    (root / "L-3" / "student.webm").write_bytes(b"\x00garbage" * 500)
    return write_manifest(root, rows)


def snapshot(settings: Settings, results: list[LessonResult]) -> dict:
    """What a run produced, with what legitimately differs between two runs taken out: the GIF's
    random name, the output folder, times."""
    out = Path(settings.out_dir)
    store = ResultStore(settings.database_url)
    try:
        rows = {r.lesson_id: store.row(r.lesson_id) for r in results}
    finally:
        store.dispose()
    snap: dict = {}
    for result in results:
        folder = out / result.lesson_id

        def clean(value: str) -> str:
            value = value.replace(str(out.resolve()), "OUT").replace(str(out), "OUT")
            return value.replace(result.gif, "GIF") if result.gif else value

        files = {}
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.name in ("stages.json", "result.json", ".lock"):
                continue
            name = "GIF" if path.suffix == ".gif" else path.name
            data = path.read_bytes()
            files[name] = clean(data.decode()) if path.suffix in (".html", ".txt", ".json", ".csv") else data
        row = dict(rows[result.lesson_id] or {})
        for key in ("created_at", "updated_at"):
            row.pop(key, None)
        row = {k: clean(v) if isinstance(v, str) else v for k, v in row.items()}
        as_dict = result.to_dict()
        for key in ("started_at", "finished_at"):
            as_dict.pop(key)
        snap[result.lesson_id] = {
            "result": json.loads(clean(json.dumps(as_dict))), "files": files, "row": row,
            "stages": sorted(json.loads((folder / "stages.json").read_text())) if (folder / "stages.json").exists() else [],
        }
    return snap


def run_record(settings: Settings) -> list[dict]:
    store = ResultStore(settings.database_url)
    try:
        table = HighlightRun.__table__
        with store.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(select(table).order_by(table.c.started_at))]
    finally:
        store.dispose()


@pytest.fixture(scope="module")
def mixed(videos, tmp_path_factory) -> Path:
    """The four lessons' manifest; the runs compared read the same files (their paths and
    mtimes are part of each lesson's fingerprint)."""
    return mixed_manifest(videos, tmp_path_factory.mktemp("mixed") / "rec")


@pytest.fixture(scope="module")
def serial_run(mixed, tmp_path_factory):
    """The four lessons run serially (the reference the other executors must match)."""
    manifest = mixed
    settings = Settings(out_dir=tmp_path_factory.mktemp("serial") / "out")
    results = run_manifest(manifest, settings, scorer=FakeScorer())
    assert [r.status for r in results] == ["ok", "no_highlight", "failed", "ok"], [r.reason for r in results]
    return snapshot(settings, results)


# --------------------------------------------------------------------------- tests


def test_worker_plan_fits_workers_times_threads_to_the_cores() -> None:
    assert worker_plan(BatchOptions(), cores=8) == (8, 1)  # default: one worker per core
    assert worker_plan(BatchOptions(workers=2), cores=8) == (2, 4)
    assert worker_plan(BatchOptions(workers=3), cores=2) == (3, 1)  # never below one thread
    assert worker_plan(BatchOptions(workers=0), cores=4) == (0, 4)  # serial: this process
    assert worker_plan(BatchOptions(workers=2, threads=3), cores=8) == (2, 3)


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


def test_json_log_lines_carry_run_lesson_stage_event_and_no_personal_data(videos, tmp_path: Path, monkeypatch) -> None:
    for name in [n for n in os.environ if n.startswith("HIGHLIGHTS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(highlights.batch.pools, "load_scorer", lambda settings: FakeScorer())
    root = tmp_path / "rec"
    manifest = write_manifest(root, lesson_rows(videos, root, "L-1") + lesson_rows(videos, root, "L-2", student="shy"))
    lessons = root / "lessons.csv"
    lessons.write_text("lesson_id,student_name,subject,locale,lesson_url\n"
                       "L-1,Zoë Quillfeather,Maths,en,https://school.example/l/1?token=s3cret\n", encoding="utf-8")
    try:
        outcome = CliRunner().invoke(main, ["run", str(manifest), "--lessons", str(lessons), "--out", str(tmp_path / "out"),
                                            "--no-progress", "--workers", "0", "--log-format", "json"])
    finally:
        from highlights.logs import configure

        configure("text")
    assert outcome.exit_code == 0, outcome.output
    records = [json.loads(line) for line in outcome.stderr.splitlines() if line.strip()]
    assert records
    for record in records:
        assert {"time", "level", "run_id", "lesson_id", "stage", "event", "duration_s"} <= set(record)
        datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
    run_ids = {r["run_id"] for r in records}
    assert len(run_ids) == 1 and None not in run_ids, [(r["run_id"], r["event"], r.get("message")) for r in records]
    finished = {r["lesson_id"]: r for r in records if r["event"] == "lesson_finished"}
    assert finished["L-1"]["status"] == "ok" and finished["L-2"]["status"] == "no_highlight"
    assert finished["L-1"]["duration_s"] > 0
    assert {r["stage"] for r in records if r["lesson_id"] == "L-1"} >= {"scores", "gif", "report"}
    assert {r["event"] for r in records} >= {"run_started", "lesson_started", "lesson_finished", "run_finished"}
    assert "Quillfeather" not in outcome.stderr and "s3cret" not in outcome.stderr


# --------------------------------------------------------------------------- concurrent writers


def _concurrent_writers(url: str, ids: list[str], folder: Path) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=write_rows, args=(url, k, ids if k % 2 else ids[::-1], str(folder)))
                 for k in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]


def test_concurrent_writers_on_sqlite_never_lose_or_double_a_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'highlights.sqlite'}"
    ids = [f"L-{i:03d}" for i in range(40)]
    _concurrent_writers(url, ids, tmp_path)
    store = ResultStore(url)
    try:
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            rows = connection.execute(text("SELECT lesson_id, count(*) FROM lesson_highlights GROUP BY lesson_id")).all()
            runs = connection.execute(text("SELECT status FROM highlight_runs")).scalars().all()
    finally:
        store.dispose()
    assert sorted(r[0] for r in rows) == ids and {r[1] for r in rows} == {1}
    assert runs == ["finished"] * 4


def test_concurrent_writers_on_postgresql_never_lose_or_double_a_row(tmp_path: Path) -> None:
    url = os.environ.get("HIGHLIGHTS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set HIGHLIGHTS_TEST_POSTGRES_URL to a PostgreSQL URL to run the concurrent writers test")
    pytest.importorskip("psycopg", reason="needs psycopg (pip install 'highlights[postgres]')")
    prefix = f"cw-{uuid.uuid4().hex[:6]}-"
    ids = [f"{prefix}{i:03d}" for i in range(40)]
    try:
        _concurrent_writers(url, ids, tmp_path)
        store = ResultStore(url)
        with store.engine.connect() as connection:
            rows = connection.execute(text("SELECT lesson_id, count(*) FROM lesson_highlights WHERE lesson_id LIKE :p "
                                           "GROUP BY lesson_id"), {"p": prefix + "%"}).all()
        assert sorted(r[0] for r in rows) == ids and {r[1] for r in rows} == {1}
    finally:
        store = ResultStore(url)
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM lesson_highlights WHERE lesson_id LIKE :p"), {"p": prefix + "%"})
            connection.execute(text("DELETE FROM highlight_runs WHERE host = 'test'"))
        store.dispose()


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
        "from test_pipeline import FakeScorer\n"
        "run_manifest({manifest!r}, Settings(out_dir={out!r}), scorer=FakeScorer(), batch=BatchOptions(workers=1))\n"
    ).format(repo=str(REPO_ROOT), tests=str(REPO_ROOT / "tests"), manifest=str(manifest), out=str(tmp_path / "out"))
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
    root = tmp_path / "rec"
    manifest = write_manifest(root, lesson_rows(videos, root, "L-1") + lesson_rows(videos, root, "L-2", student="shy"))
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIGHLIGHTS_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env[FAULTS_ENV] = "L-2=hang"
    command = [sys.executable, "-c", "from highlights.cli import main; main()", "run", str(manifest), "--out", str(out),
               "--workers", "1", "--no-progress"]
    parent = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
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
