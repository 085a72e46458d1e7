"""The Ray executor against a real local Ray, started by this module on 127.0.0.1 with two CPUs
and a small object store, and stopped after.

Skipped where Ray is not installed (it is an optional extra: ``pip install '.[ray]'``); CI
installs it (``HIGHLIGHTS_EXTRAS=ray``), so these tests run there. The scorer is the pipeline
tests' ``FakeScorer`` (``tests/support/fakes.py``), pickled to each actor; the actors find its
module through the ``PYTHONPATH`` this module gives the Ray workers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from highlights.batch.options import BatchOptions
from highlights.batch.pools import FAULTS_ENV
from highlights.batch.run import run_manifest
from highlights.config import Settings

from support.fakes import FakeScorer
from support.lessons import lesson_rows, write_manifest
from support.ray_head import local_ray_head
from support.runs import run_record, snapshot, start_run_with_a_hanging_lesson

ray = pytest.importorskip("ray", reason="the Ray executor needs the ray extra (pip install '.[ray]')")

@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A Ray head on 127.0.0.1: 2 CPUs, an 80 MB object store, no dashboard; shut down after."""
    with local_ray_head(ray) as head:
        yield head


def test_ray_gives_the_serial_runs_statuses_files_and_rows(local_ray, mixed, serial_run, tmp_path: Path) -> None:
    settings = Settings(out_dir=tmp_path / "out")
    options = BatchOptions(executor="ray", workers=2)
    results = run_manifest(mixed, settings, scorer=FakeScorer(), batch=options)

    assert [r.lesson_id for r in results] == ["L-1", "L-2", "L-3", "L-4"]
    assert snapshot(settings, results) == serial_run
    [record] = run_record(settings)
    assert record["run_id"] == options.run_id and record["options"]["executor"] == "ray"
    assert (record["ok"], record["no_highlight"], record["failed"]) == (2, 1, 1)
    assert ray.is_initialized()  # a Ray the caller started is left running for the caller


def test_ray_actor_crash_and_time_limit_fail_their_lesson_only(local_ray, videos, tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "rec"
    ids = ["L-ok", "L-segv", "L-lost-once", "L-stuck"]
    manifest = write_manifest(root, [row for i in ids for row in lesson_rows(videos, root, i)])
    monkeypatch.setenv(FAULTS_ENV, "L-segv=segv,L-lost-once=killonce,L-stuck=hang")
    results = {r.lesson_id: r for r in run_manifest(
        manifest, Settings(out_dir=tmp_path / "out"), scorer=FakeScorer(),
        batch=BatchOptions(executor="ray", workers=2, retries=1, time_limit_s=20),
    )}
    # Ray cannot tell a crash from a lost node: every actor death is retried, then failed.
    assert results["L-segv"].status == "failed" and "Ray worker died" in results["L-segv"].reason
    assert "after 2 attempts" in results["L-segv"].reason
    assert results["L-lost-once"].status == "ok", results["L-lost-once"].reason
    assert results["L-stuck"].status == "failed" and "time limit of 20 s exceeded" in results["L-stuck"].reason
    assert results["L-ok"].status == "ok"


def test_sigterm_stops_a_ray_run_with_exit_143_and_records_it_interrupted(videos, tmp_path: Path) -> None:
    """ray.init takes SIGTERM over: the run used to end in Ray's own exit (status 1, or SIGABRT
    with a stack dump when shutting down took over 3 s) instead of the local executor's 143."""
    import signal
    import time

    parent, out = start_run_with_a_hanging_lesson(videos, tmp_path, "--executor", "ray", "--workers", "1")
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and parent.poll() is None and not (out / "L-1" / "result.json").exists():
            time.sleep(0.2)
        assert (out / "L-1" / "result.json").exists(), "the first lesson never finished"
        time.sleep(1.0)  # the actor now hangs in L-2
        os.kill(parent.pid, signal.SIGTERM)
        _, stderr = parent.communicate(timeout=120)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
    assert parent.returncode == 143, stderr[-3000:]
    assert b"SIGTERM: stopping the run" in stderr and b"SIGTERM received" not in stderr  # not abseil's
    [run] = run_record(Settings(out_dir=out))
    assert run["status"] == "interrupted" and run["ok"] + run["no_highlight"] == 1
