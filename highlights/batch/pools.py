"""Pools of workers that run lessons, all with one shape (after Ray's ``ActorPool``): idle workers
take a task each (:meth:`Pool.submit`), and what they report comes back as events
(:meth:`Pool.events`). The dispatcher (:mod:`highlights.batch.dispatch`) owns the queue, the
retries and the database; a pool only runs lessons and tells what happened.

``SerialPool``
    One lesson at a time in this process (the Python API's default, ``workers=0``): no crash
    isolation and no time limit, a segfault takes the batch down.
``ProcessPool``
    N worker processes (``spawn``), the CLI's default with one per core. Each loads the models
    once and sets torch to its share of the cores. A worker that dies is replaced; its lesson is
    reported lost (a SIGKILL: the out-of-memory killer, retried) or crashed (not retried). A
    lesson past the time limit has its worker killed.
``RayPool`` (:mod:`highlights.batch.ray_pool`)
    Actors on a Ray cluster, the same events.

Every pool's unit of work is :func:`highlights.lesson.run.run_and_record`: the lesson's folder is
written (``result.json`` last) where the lesson runs, and the record comes back for the one
database writer.

Test-only fault injection: ``HIGHLIGHTS_TEST_FAULTS="L-1=segv,L-2=hang"`` makes the worker that
takes lesson ``L-1`` kill itself with SIGSEGV before running it (``kill``: SIGKILL; ``killonce``:
SIGKILL on the first attempt only; ``hang``: sleep for an hour). It is read only by worker
processes (never the serial pool) and exists so the tests can crash a real worker.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for
from typing import Any, Protocol

from highlights.config import Settings
from highlights.core.lesson import LessonInput
from highlights.lesson.graph import Progress
from highlights.lesson.run import failed_result, run_and_record
from highlights.lesson.scorer import load_scorer
from highlights.logs import configure_worker_logging, logging_setup, set_stage
from highlights.logs import context as log_context
from highlights.persist.store import LessonRecord

log = logging.getLogger(__name__)

FAULTS_ENV = "HIGHLIGHTS_TEST_FAULTS"
MAX_START_FAILURES = 3
"""Workers that die before their models are loaded, in a row, before the batch gives up."""


@dataclass
class Task:
    """One lesson to run: its input, its place in the batch, which attempt this is, and whether
    the database already has a published (``ok``) row for it."""

    lesson: LessonInput
    index: int
    attempt: int = 1
    published: bool = False


@dataclass(frozen=True)
class Finished:
    """A task ran to its end (whatever the lesson's outcome): its record."""

    task: Task
    record: LessonRecord


@dataclass(frozen=True)
class Lost:
    """A task's worker went away under it: ``retry`` for a transient loss (SIGKILL, a lost node).
    Not ``counted``: the worker broke before it could run anything (its models would not load),
    so the task goes back as it was."""

    task: Task
    reason: str
    retry: bool
    counted: bool = True


Event = Finished | Lost


class Pool(Protocol):
    """Where a batch's lessons run."""

    def has_idle(self) -> bool:
        """A worker is free for :meth:`submit`."""

    def submit(self, task: Task) -> None:
        """Hand ``task`` to an idle worker."""

    def running(self) -> int:
        """Tasks handed out and not yet reported."""

    def events(self, timeout: float) -> list[Event]:
        """What happened to running tasks, waiting at most ``timeout`` seconds for something."""

    def close(self, *, kill: bool) -> None:
        """Stop the workers (``kill``: now, the batch was cut short)."""


class StagedProgress(Progress):
    """Passes progress on, and keeps the log context's ``stage`` current (lessons run in this process)."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner

    def batch_started(self, total: int) -> None:
        self.inner.batch_started(total)

    def lesson_started(self, lesson_id: str, index: int, total: int) -> None:
        self.inner.lesson_started(lesson_id, index, total)

    def stage(self, lesson_id: str, stage: str) -> None:
        set_stage(stage)
        self.inner.stage(lesson_id, stage)

    def frames(self, lesson_id: str, done: int, total: int | None) -> None:
        self.inner.frames(lesson_id, done, total)

    def lesson_finished(self, result: Any) -> None:
        self.inner.lesson_finished(result)


# --------------------------------------------------------------------------- in this process


class SerialPool:
    """Every lesson in this process, one at a time; the models are loaded at the first lesson."""

    def __init__(self, settings: Settings, scorer: Any, progress: Progress) -> None:
        self.settings, self.scorer, self.progress = settings, scorer, StagedProgress(progress)
        self.task: Task | None = None

    def has_idle(self) -> bool:
        return self.task is None

    def submit(self, task: Task) -> None:
        self.task = task

    def running(self) -> int:
        return int(self.task is not None)

    def events(self, timeout: float) -> list[Event]:
        task, self.task = self.task, None
        if task is None:
            return []
        if self.scorer is None:
            self.scorer = load_scorer(self.settings)
        with log_context(lesson_id=task.lesson.lesson_id):
            record = run_and_record(task.lesson, self.settings, scorer=self.scorer, progress=self.progress,
                                    published=task.published)
        return [Finished(task, record)]

    def close(self, *, kill: bool) -> None:
        self.task = None


# --------------------------------------------------------------------------- worker processes


def setup_worker(threads: int, log_setup: dict[str, Any] | None) -> None:
    """In a fresh worker process: torch threads (before torch does any work), logging."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    configure_worker_logging(log_setup)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def exit_with_parent() -> bool:
    """Have the kernel kill this worker (SIGKILL) the moment the process that started it dies.

    Without it, a worker whose parent was killed alone (``kill -9`` of the parent's pid, the OOM
    killer choosing the parent) ran its current lesson to the end and only then noticed, holding a
    core and the lesson's lock meanwhile. A worker's outputs are written atomically and recorded
    by the parent, so dying mid-lesson loses nothing the next run does not redo. Linux only (the
    signal fires when the *thread* that started the worker exits: the dispatcher starts and stops
    its workers on the calling thread, which blocks until the batch is over). Returns whether the
    signal is set."""
    if not sys.platform.startswith("linux"):
        return False
    parent = multiprocessing.parent_process()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent is not None and os.getppid() != parent.pid:  # it died before the signal was set
        os._exit(1)
    return True


def inject_test_fault(lesson_id: str, faults: str, attempt: int) -> None:
    """The test-only faults of ``HIGHLIGHTS_TEST_FAULTS`` (module docstring)."""
    for item in filter(None, (part.strip() for part in faults.split(","))):
        name, _, kind = item.partition("=")
        if name != lesson_id:
            continue
        if kind == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif kind == "kill" or (kind == "killonce" and attempt == 1):
            os.kill(os.getpid(), signal.SIGKILL)
        elif kind == "hang":
            time.sleep(3600)


def load_worker_scorer(settings: Settings, scorer_blob: bytes | None) -> Any:
    return pickle.loads(scorer_blob) if scorer_blob else load_scorer(settings)


class _PipeProgress(Progress):
    """A worker's progress, sent to the parent (which draws the bar)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def stage(self, lesson_id: str, stage: str) -> None:
        set_stage(stage)
        self.conn.send(("stage", lesson_id, stage))

    def frames(self, lesson_id: str, done: int, total: int | None) -> None:
        self.conn.send(("frames", lesson_id, done, total))


def _worker_main(conn: Connection, settings: Settings, scorer_blob: bytes | None, threads: int,
                 log_setup: dict[str, Any] | None, faults: str) -> None:
    """A local worker: load the models once, then run the lessons the parent sends, one at a time."""
    # Ctrl-C and SIGTERM (systemd signals the whole unit at once) are the parent's to handle: it
    # stops the workers and records the run; a worker killed by them would count as a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    exit_with_parent()
    setup_worker(threads, log_setup)
    try:
        scorer = load_worker_scorer(settings, scorer_blob)
    except Exception as error:  # noqa: BLE001 - reported to the parent: nothing can run
        conn.send(("error", f"the face models cannot be loaded: {type(error).__name__}: {error}"))
        return
    conn.send(("ready",))
    progress = _PipeProgress(conn)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is None:
            return
        lesson, attempt, published = message
        conn.send(("started", lesson.lesson_id))
        inject_test_fault(lesson.lesson_id, faults, attempt)
        with log_context(lesson_id=lesson.lesson_id):
            record = run_and_record(lesson, settings, scorer=scorer, progress=progress, published=published)
        conn.send(("result", record))


class _Worker:
    def __init__(self, context: Any, args: tuple[Any, ...], number: int) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, *args), name=f"highlights-worker-{number}",
                                       daemon=True)
        self.process.start()
        child.close()
        self.task: Task | None = None
        self.running_since: float | None = None
        self.stage = "start"
        self.ready = False
        """Models loaded: a worker that dies before is broken, not its lesson."""

    def send(self, task: Task) -> None:
        self.task, self.running_since, self.stage = task, None, "start"
        self.conn.send((task.lesson, task.attempt, task.published))

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


def describe_exit(exitcode: int | None) -> tuple[str, bool]:
    """(what happened to a worker, whether it counts as a transient loss to retry)."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        if -exitcode == signal.SIGKILL:
            return f"its worker process was killed ({name}: out of memory, or killed from outside)", True
        return f"its worker process crashed ({name})", False
    return f"its worker process exited unexpectedly (exit status {exitcode})", False


def where(stage: str) -> str:
    return "before its first stage" if stage == "start" else f"in stage {stage}"


def timed_out(task: Task, limit: float, detail: str) -> Finished:
    """The record of a lesson stopped by the time limit (not retried: it would only run out again)."""
    lesson_id = task.lesson.lesson_id
    return Finished(task, LessonRecord(failed_result(
        lesson_id, f"lesson {lesson_id}: time limit of {limit:g} s exceeded{detail}")))


class ProcessPool:
    """N worker processes on this machine (see the module's docstring)."""

    def __init__(self, settings: Settings, scorer: Any, progress: Progress, *, workers: int, threads: int,
                 time_limit_s: float | None, faults: str = "") -> None:
        # spawn, not fork: a forked child inherits torch's and OpenCV's thread pools in whatever
        # state they were, which can deadlock; a spawned one starts clean (about 2-8 s to import).
        self.context = multiprocessing.get_context("spawn")
        blob = pickle.dumps(scorer) if scorer is not None else None
        self.args = (settings, blob, threads, logging_setup(), faults)
        self.progress = progress
        self.limit = time_limit_s or None
        self.made = 0
        self.start_failures = 0
        self.workers: list[_Worker] = [self._start() for _ in range(max(1, workers))]

    def _start(self) -> _Worker:
        self.made += 1
        return _Worker(self.context, self.args, self.made)

    def has_idle(self) -> bool:
        return any(worker.task is None for worker in self.workers)

    def submit(self, task: Task) -> None:
        next(worker for worker in self.workers if worker.task is None).send(task)

    def running(self) -> int:
        return sum(worker.task is not None for worker in self.workers)

    def events(self, timeout: float) -> list[Event]:
        running = [w for w in self.workers if w.task is not None]
        if not running:
            return []
        if self.limit:
            for w in running:
                if w.running_since is not None:
                    timeout = min(timeout, max(0.0, w.running_since + self.limit - time.monotonic()))
        ready = wait_for([w.conn for w in running] + [w.process.sentinel for w in running], timeout=timeout)
        events: list[Event] = []
        for worker in running:
            if worker.conn in ready or worker.process.sentinel in ready:
                if not self._drain(worker, events):
                    self._replace(worker, events)
            if self.limit and worker.task is not None and worker.running_since is not None \
                    and time.monotonic() - worker.running_since > self.limit:
                task, stage = worker.task, worker.stage
                worker.stop(kill=True)
                self.workers[self.workers.index(worker)] = self._start()
                events.append(timed_out(task, self.limit, f" {where(stage)}; its worker was stopped"))
        return events

    def _drain(self, worker: _Worker, events: list[Event]) -> bool:
        """Handle what the worker sent; False when it died (its lesson is then lost)."""
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                kind = message[0]
                if kind == "ready":
                    worker.ready = True
                elif kind == "started":
                    worker.running_since = time.monotonic()
                elif kind == "stage":
                    worker.stage = message[2]
                    self.progress.stage(message[1], message[2])
                elif kind == "frames":
                    self.progress.frames(*message[1:])
                elif kind == "result":
                    task, worker.task = worker.task, None
                    assert task is not None
                    events.append(Finished(task, message[1]))
                elif kind == "error":
                    raise RuntimeError(message[1])
        except (EOFError, OSError):
            return False
        return worker.process.is_alive() or worker.task is None and worker.process.exitcode == 0

    def _replace(self, worker: _Worker, events: list[Event]) -> None:
        worker.process.join(timeout=5)
        task, stage = worker.task, worker.stage
        worker.task = None
        what, transient = describe_exit(worker.process.exitcode)
        worker.conn.close()
        index = self.workers.index(worker)
        if not worker.ready:
            # Broken before any lesson ran (environment, import error): not the lesson's fault.
            self.start_failures += 1
            if self.start_failures >= MAX_START_FAILURES:
                raise RuntimeError(f"worker processes cannot start: {what.replace('its worker process', 'the last one')}")
            self.workers[index] = self._start()
            if task is not None:
                events.append(Lost(task, what, retry=True, counted=False))
            return
        self.start_failures = 0
        self.workers[index] = self._start()
        if task is not None:
            events.append(Lost(task, f"{what} {where(stage)}", retry=transient))

    def close(self, *, kill: bool) -> None:
        for worker in self.workers:
            worker.stop(kill=kill)


__all__ = [
    "FAULTS_ENV",
    "Event",
    "Finished",
    "Lost",
    "Pool",
    "ProcessPool",
    "SerialPool",
    "Task",
    "describe_exit",
    "exit_with_parent",
    "inject_test_fault",
    "load_worker_scorer",
    "setup_worker",
    "StagedProgress",
]
