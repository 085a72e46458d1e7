"""The batch options (:mod:`highlights.batch.options`): workers times threads fit the cores."""

from __future__ import annotations

from highlights.batch.options import BatchOptions, worker_plan


def test_worker_plan_fits_workers_times_threads_to_the_cores() -> None:
    assert worker_plan(BatchOptions(), cores=8) == (8, 1)  # default: one worker per core
    assert worker_plan(BatchOptions(workers=2), cores=8) == (2, 4)
    assert worker_plan(BatchOptions(workers=3), cores=2) == (3, 1)  # never below one thread
    assert worker_plan(BatchOptions(workers=0), cores=4) == (0, 4)  # serial: this process
    assert worker_plan(BatchOptions(workers=2, threads=3), cores=8) == (2, 3)
