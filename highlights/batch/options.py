"""How a batch runs: where its lessons run, how many at once, retries and time limits.

None of it is part of any fingerprint: results do not depend on it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from highlights.logs import new_run_id


@dataclass(frozen=True)
class BatchOptions:
    """Where and how the lessons of a batch run."""

    executor: Literal["local", "ray"] = "local"
    workers: int | None = None
    """Worker processes (Ray: actors). ``None``: one per core (Ray: one per CPU of the cluster);
    ``0``: no workers, every lesson in this process (local only)."""
    threads: int | None = None
    """Torch threads per worker. ``None``: ``cores // workers``, at least 1 (Ray: 1). More threads
    than free cores is costly: on a saturated 2-core machine one worker with 2 threads used
    10-14 CPU-s per short lesson against 3.0 with 1 thread (``bench/throughput.py``, README)."""
    retries: int = 1
    """Extra attempts for a transient failure: a worker lost to SIGKILL, a database error."""
    time_limit_s: float | None = 1800.0
    """A lesson running longer is stopped and recorded failed. A 45-minute lesson takes about 4
    CPU-minutes on this project's machine (README, "Running it"): 30 min leaves room for a slow,
    busy node. ``None`` or 0: no limit."""
    wait: bool = False
    """Wait for lessons another run holds instead of reporting them ``busy``."""
    lock_poll_s: float = 2.0
    """With ``wait``: how often a busy lesson is tried again."""
    ray_address: str | None = None
    """Ray cluster to join (``ray start --head`` prints it); None: a local Ray for this run,
    unless one is already initialised in this process."""
    run_id: str = field(default_factory=new_run_id)

    def to_record(self) -> dict[str, Any]:
        """The options as stored in the run record (no addresses, no URLs)."""
        data = asdict(self)
        data.pop("ray_address")
        data.pop("run_id")
        return data


def available_cores() -> int:
    """CPU cores this process may use (its affinity, which a container or taskset may narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def worker_plan(options: BatchOptions, cores: int | None = None, lessons: int | None = None) -> tuple[int, int]:
    """(workers, torch threads per worker) for the local executor. With ``lessons``, never more
    workers than lessons (each one loads the models: a lesson run by hand starts one)."""
    cores = cores or available_cores()
    workers = cores if options.workers is None else max(0, int(options.workers))
    if lessons is not None and workers > 0:
        workers = max(1, min(workers, lessons))
    threads = options.threads or max(1, cores // max(1, workers))
    return workers, threads


__all__ = ["BatchOptions", "available_cores", "worker_plan"]
