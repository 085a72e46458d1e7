"""The Ray pool (``executor="ray"``): an actor pool on a Ray cluster, one task per lesson.

Only imported for ``--executor ray``; needs the ``ray`` extra (``pip install '.[ray]'`` or
``HIGHLIGHTS_EXTRAS=ray bash scripts/bootstrap.sh``). Ray Core, not Ray Data: a lesson is a few
files decoded with PyAV inside the task (``ray.data.read_videos`` would make a row of every
frame).

Each actor (:class:`LessonWorker`) loads the face models once and runs one lesson per call,
with ``num_cpus`` = its torch threads (1 by default), so Ray packs as many actors on a node as it
has CPUs. The driver hands out one lesson per idle actor (:mod:`highlights.batch.dispatch`) and
is the only writer of database rows and the run record, exactly as with local workers: an actor
writes only its lesson's folder and returns the lesson's record. An actor that dies (crash, lost
node) is replaced and its lesson retried ``retries`` times; a lesson past the time limit has its
actor killed.
"""

from __future__ import annotations

import logging
import pickle
import signal
import threading
import time
from typing import Any

from highlights.batch.options import BatchOptions
from highlights.batch.pools import (
    Event,
    Finished,
    Lost,
    Task,
    inject_test_fault,
    load_worker_scorer,
    setup_worker,
    timed_out,
)
from highlights.config import Settings
from highlights.core.lesson import LessonInput
from highlights.lesson.run import failed_result, run_and_record
from highlights.logs import context as log_context
from highlights.logs import logging_setup
from highlights.persist.store import LessonRecord

log = logging.getLogger(__name__)

RAY_VERSION = "2.60.0"
"""The Ray version the project is tested with (pinned in pyproject's ``ray`` extra)."""
MAX_START_FAILURES = 3


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

    def __init__(self, settings: Settings, scorer_blob: bytes | None, threads: int, log_setup: dict[str, Any] | None,
                 faults: str) -> None:
        setup_worker(threads, log_setup)
        self.settings = settings
        self.faults = faults
        self.scorer = load_worker_scorer(settings, scorer_blob)

    def ready(self) -> bool:
        return True

    def run(self, lesson: LessonInput, attempt: int, published: bool) -> LessonRecord:
        inject_test_fault(lesson.lesson_id, self.faults, attempt)
        with log_context(lesson_id=lesson.lesson_id):
            return run_and_record(lesson, self.settings, scorer=self.scorer, published=published)


class RayPool:
    """Actors on a Ray cluster (see the module's docstring)."""

    def __init__(self, settings: Settings, scorer: Any, options: BatchOptions, *, faults: str, lessons: int) -> None:
        ray = self.ray = _import_ray()
        self.started_here = False
        if not ray.is_initialized():
            # A cluster's address, or a local Ray for this run (the dashboard is not needed).
            main = threading.current_thread() is threading.main_thread()
            previous_term = signal.getsignal(signal.SIGTERM) if main else None
            ray.init(address=options.ray_address, include_dashboard=False, log_to_driver=True)
            self.started_here = True
            if previous_term is not None:
                # ray.init takes SIGTERM over (a Python handler that exits with status 1, and
                # abseil's that aborts the process 3 s later, with a stack dump, if shutting down
                # takes longer): a `systemctl stop` ended in SIGABRT. Handing it back lets the run
                # stop as with the local pool: workers stopped, record 'interrupted', exit 143.
                signal.signal(signal.SIGTERM, previous_term)
        threads = options.threads or 1
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        size = options.workers if options.workers else max(1, cluster_cpus // threads)
        size = max(1, min(size, lessons or 1))
        self.actor_class = ray.remote(num_cpus=threads, max_restarts=0, max_task_retries=0)(LessonWorker)
        blob = pickle.dumps(scorer) if scorer is not None else None
        self.args = (settings, blob, threads, logging_setup(), faults)
        self.limit = options.time_limit_s or None
        self.actors: list[Any] = [None] * size
        self.idle: list[int] = []
        self.starting: dict[Any, int] = {}  # ready() ref -> actor slot: the models are still loading
        self.inflight: dict[Any, tuple[int, Task, float]] = {}  # run() ref -> (slot, task, started)
        self.start_failures = 0
        for slot in range(size):
            self._new_actor(slot)
        log.info("ray: %d actors x %d threads on a cluster of %d CPUs", size, threads, cluster_cpus,
                 extra={"event": "ray_pool"})

    def _new_actor(self, slot: int) -> None:
        # The lesson's clock starts once the actor is ready: loading the models is not lesson time.
        self.actors[slot] = self.actor_class.remote(*self.args)
        self.starting[self.actors[slot].ready.remote()] = slot

    def has_idle(self) -> bool:
        return bool(self.idle)

    def submit(self, task: Task) -> None:
        slot = self.idle.pop()
        ref = self.actors[slot].run.remote(task.lesson, task.attempt, task.published)
        self.inflight[ref] = (slot, task, time.monotonic())

    def running(self) -> int:
        # Actors still loading count: the dispatcher must wait for them rather than sleep.
        return len(self.inflight) + len(self.starting)

    def events(self, timeout: float) -> list[Event]:
        ray = self.ray
        from ray.exceptions import GetTimeoutError, RayActorError, RayError

        events: list[Event] = []
        done, _ = ray.wait([*self.inflight, *self.starting], num_returns=1, timeout=timeout)
        for ref in done:
            if ref in self.starting:
                slot = self.starting.pop(ref)
                try:
                    ray.get(ref)
                except RayError as error:  # the models cannot be loaded there
                    self.start_failures += 1
                    if self.start_failures >= MAX_START_FAILURES:
                        raise RuntimeError(f"Ray workers cannot start: {type(error).__name__}: {error}") from error
                    self._new_actor(slot)
                else:
                    self.start_failures = 0
                    self.idle.append(slot)
                continue
            slot, task, _started = self.inflight.pop(ref)
            try:
                record = ray.get(ref)
            except RayActorError as error:  # the actor died: a crash or a lost node
                self._new_actor(slot)
                events.append(Lost(task, f"its Ray worker died ({type(error).__name__})", retry=True))
                continue
            except (RayError, GetTimeoutError) as error:
                lesson_id = task.lesson.lesson_id
                record = LessonRecord(failed_result(lesson_id, f"lesson {lesson_id}: Ray task failed ({type(error).__name__})"))
            events.append(Finished(task, record))
            self.idle.append(slot)
        if self.limit:
            now = time.monotonic()
            for ref, (slot, task, started) in list(self.inflight.items()):
                if now - started > self.limit:
                    del self.inflight[ref]
                    ray.kill(self.actors[slot], no_restart=True)
                    self._new_actor(slot)
                    events.append(timed_out(task, self.limit, "; its Ray worker was stopped"))
        return events

    def close(self, *, kill: bool) -> None:
        try:
            for actor in self.actors:
                if actor is not None:
                    self.ray.kill(actor, no_restart=True)
        finally:
            if self.started_here:
                self.ray.shutdown()


__all__ = ["RAY_VERSION", "LessonWorker", "RayPool"]
