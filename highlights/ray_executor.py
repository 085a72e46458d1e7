"""The Ray executor (``executor="ray"``): an actor pool on a Ray cluster, one task per lesson.

Only imported for ``--executor ray``; needs the ``ray`` extra (``pip install '.[ray]'`` or
``HIGHLIGHTS_EXTRAS=ray bash scripts/bootstrap.sh``). Ray Core, not Ray Data: a lesson is a few
files decoded with PyAV inside the task (``ray.data.read_videos`` would make a row of every
frame).

Each actor (:class:`LessonWorker`) loads the face models once and runs one lesson per call,
with ``num_cpus`` = its torch threads (1 by default), so Ray packs as many actors on a node as it
has CPUs. This process (the driver) hands out one lesson per idle actor and is the only writer
of database rows and the run record, exactly as with local workers (``highlights.executors``):
the actors write only the lesson folders, so recordings and ``OUT`` must be on a file system
every node mounts at the same path. An actor that dies (crash, lost node) is replaced and its
lesson retried ``retries`` times; a lesson past the time limit has its actor killed.
"""

from __future__ import annotations

import logging
import pickle
import signal
import threading
import time
from typing import Any

from highlights.executors import (
    BatchOptions,
    _Batch,
    inject_test_fault,
    load_worker_scorer,
    setup_worker,
)
from highlights.logs import context as log_context, logging_setup
from highlights.pipeline import failed_result

log = logging.getLogger(__name__)

RAY_VERSION = "2.60.0"
"""The Ray version the project is tested with (pinned in pyproject's ``ray`` extra)."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise RuntimeError(
            "--executor ray needs Ray: pip install '.[ray]' (or HIGHLIGHTS_EXTRAS=ray bash scripts/bootstrap.sh)"
        ) from error
    return ray


class LessonWorker:
    """One Ray actor: models loaded once in ``__init__``, one lesson per :meth:`run`."""

    def __init__(self, settings: Any, scorer_blob: bytes | None, threads: int, log_setup: dict[str, Any] | None,
                 faults: str) -> None:
        setup_worker(threads, log_setup)
        self.settings = settings
        self.faults = faults
        self.scorer = load_worker_scorer(settings, scorer_blob)

    def ready(self) -> bool:
        return True

    def run(self, lesson: Any, attempt: int) -> Any:
        from highlights.pipeline import run_lesson

        inject_test_fault(lesson.lesson_id, self.faults, attempt)
        with log_context(lesson_id=lesson.lesson_id):
            return run_lesson(lesson, self.settings, scorer=self.scorer, store=None)


def run_ray(batch: _Batch, settings: Any, scorer: Any, options: BatchOptions, faults: str) -> None:
    ray = _import_ray()
    from ray.exceptions import GetTimeoutError, RayActorError, RayError

    started_here = False
    if not ray.is_initialized():
        # A cluster's address, or a local Ray for this run (the dashboard is not needed).
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        previous_term = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
        ray.init(address=options.ray_address, **kwargs)
        started_here = True
        if previous_term is not None:
            # ray.init takes SIGTERM over (a Python handler that exits with status 1, and abseil's
            # that aborts the process 3 s later, with a stack dump, if shutting down takes
            # longer): a `systemctl stop` ended in SIGABRT. Handing it back lets the run stop as
            # with the local executor: workers stopped, record 'interrupted', exit 143.
            signal.signal(signal.SIGTERM, previous_term)
    try:
        threads = options.threads or 1
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        size = options.workers if options.workers else max(1, cluster_cpus // threads)
        size = max(1, min(size, len(batch.queue) or 1))
        actor_class = ray.remote(num_cpus=threads, max_restarts=0, max_task_retries=0)(LessonWorker)
        blob = pickle.dumps(scorer) if scorer is not None else None
        args = (settings, blob, threads, logging_setup(), faults)

        actors: list[Any] = [None] * size
        idle: list[int] = []
        starting: dict[Any, int] = {}  # ready() ref -> actor slot: the models are still loading
        start_failures = 0

        def new_actor(slot: int) -> None:
            # The lesson's clock starts once the actor is ready: loading the models is not lesson time.
            actors[slot] = actor_class.remote(*args)
            starting[actors[slot].ready.remote()] = slot

        for slot in range(size):
            new_actor(slot)
        inflight: dict[Any, tuple[int, Any, float]] = {}  # run() ref -> (actor slot, task, started)
        limit = options.time_limit_s or None
        log.info("ray: %d actors x %d threads on a cluster of %d CPUs", size, threads, cluster_cpus,
                 extra={"event": "ray_pool"})
        while not batch.complete:
            while idle:
                task = batch.next_task()
                if task is None:
                    break
                slot = idle.pop()
                batch.dispatched(task)
                inflight[actors[slot].run.remote(task.lesson, task.attempt)] = (slot, task, time.monotonic())
            if not inflight and not starting:
                time.sleep(min(1.0, batch.seconds_to_next_waiting() or 0.05))
                continue
            done, _ = ray.wait([*inflight, *starting], num_returns=1, timeout=1.0)
            for ref in done:
                if ref in starting:
                    slot = starting.pop(ref)
                    try:
                        ray.get(ref)
                    except RayError as error:  # the models cannot be loaded there
                        start_failures += 1
                        if start_failures >= 3:
                            raise RuntimeError(f"Ray workers cannot start: {type(error).__name__}: {error}") from error
                        new_actor(slot)
                    else:
                        start_failures = 0
                        idle.append(slot)
                    continue
                slot, task, _started = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except RayActorError as error:  # the actor died: a crash or a lost node
                    new_actor(slot)
                    batch.lost(task, f"its Ray worker died ({type(error).__name__})", retry=True)
                    continue
                except (RayError, GetTimeoutError) as error:
                    batch.finish(task, failed_result(task.lesson.lesson_id,
                                               f"lesson {task.lesson.lesson_id}: Ray task failed ({type(error).__name__})"))
                else:
                    batch.finish(task, result)
                idle.append(slot)
            if limit:
                now = time.monotonic()
                for ref, (slot, task, started) in list(inflight.items()):
                    if now - started > limit:
                        del inflight[ref]
                        ray.kill(actors[slot], no_restart=True)
                        new_actor(slot)
                        batch.finish(task, failed_result(task.lesson.lesson_id,
                                                   f"lesson {task.lesson.lesson_id}: time limit of {limit:g} s "
                                                   "exceeded; its Ray worker was stopped"))
        for actor in actors:
            ray.kill(actor, no_restart=True)
    finally:
        if started_here:
            ray.shutdown()


__all__ = ["LessonWorker", "RAY_VERSION", "run_ray"]
