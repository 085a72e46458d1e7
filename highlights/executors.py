"""Executors: run a batch of lessons serially, in N local worker processes, or on a Ray cluster.

The unit of work is :func:`highlights.pipeline.run_lesson` (one lesson, every stage, never
raises for a problem of the lesson). An executor decides only *where* it runs and keeps the
batch going when a lesson misbehaves:

``serial`` (``workers=0``)
    In this process, one lesson after another (the Python API's default; no crash isolation and
    no time limit: a segfault takes the batch down).
``local`` (``workers=N``, the CLI's default with one worker per core)
    N worker processes (``spawn``). Each loads the models once and sets torch to
    ``cores // N`` threads (at least 1), so workers x threads fits the machine. A worker takes
    one lesson at a time; the parent hands out the next one when a worker is free.
``ray`` (``executor="ray"``, the ``ray`` extra)
    An actor pool on a Ray cluster (Ray Core): one actor per worker, each loading the models once
    (``num_cpus`` = its torch threads), one task per lesson. Ray is imported only here and only
    for this executor.

What every executor (except ``serial``) guarantees, tested in ``tests/test_executors.py``:

- **One writer.** Workers write only their lesson's folder (under its ``flock``); the database
  rows and the run record (``highlight_runs``) are written by this process alone, after the
  worker's ``result.json``. A run killed between the two leaves a lesson whose ``result.json``
  is current and whose row is missing: the next run skips the lesson and writes the row.
- **Crashes stay with their lesson.** A worker that dies while running a lesson (a segfault in
  a decoder, an abort) records the lesson ``failed`` with the signal and the stage it was in;
  a new worker takes its place and the batch goes on. A worker killed by SIGKILL (the kernel's
  out-of-memory killer, a lost machine) counts as a transient loss and the lesson is retried
  up to ``retries`` times before it is recorded ``failed``. On Ray every actor death counts as a
  loss (Ray does not say reliably whether the process crashed or its node went away).
- **Time limit.** A lesson still running after ``time_limit_s`` has its worker killed and is
  recorded ``failed`` ("time limit ... exceeded in stage ..."); not retried.
- **Transient database errors** (server restarting, SQLite locked past its busy timeout) while
  writing a row are retried ``retries`` times with a growing pause (1 s, 2 s, 4 s ...).
- **Busy lessons.** A lesson whose lock another run holds comes back ``busy`` (not written to
  the database, not counted as a failure); with ``wait`` it is put back in the queue and tried
  again every ``lock_poll_s`` seconds until the other run lets go of it.

Test-only fault injection: ``HIGHLIGHTS_TEST_FAULTS="L-1=segv,L-2=hang"`` makes the worker that
takes lesson ``L-1`` kill itself with SIGSEGV before running it (``kill``: SIGKILL; ``killonce``:
SIGKILL on the first attempt only; ``hang``: sleep for an hour). It is read only by worker
processes (never the ``serial`` executor) and exists so the tests can crash a real worker.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from multiprocessing.connection import Connection, wait as wait_for
from pathlib import Path
from typing import Any, Literal

from highlights.logs import context as log_context, configure_worker_logging, logging_setup, new_run_id
from highlights.pipeline import failed_result
from highlights.results import LessonResult, utc_now_iso

log = logging.getLogger(__name__)

FAULTS_ENV = "HIGHLIGHTS_TEST_FAULTS"


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs (not part of any fingerprint: results do not depend on it)."""

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


def worker_plan(options: BatchOptions, cores: int | None = None) -> tuple[int, int]:
    """(workers, torch threads per worker) for the local executor."""
    cores = cores or available_cores()
    workers = cores if options.workers is None else max(0, int(options.workers))
    threads = options.threads or max(1, cores // max(1, workers))
    return workers, threads


# --------------------------------------------------------------------------- the batch


@dataclass
class _Task:
    lesson: Any  # LessonInput
    index: int
    attempt: int = 1


class _Batch:
    """The bookkeeping every executor shares: the queue, retries, busy lessons, the one writer.

    ``finish`` is the only place a row is written."""

    def __init__(self, tasks: list[_Task], options: BatchOptions, store: Any, progress: Any,
                 results: dict[int, LessonResult]) -> None:
        self.options = options
        self.store = store
        self.progress = progress
        self.queue: deque[_Task] = deque(tasks)
        self.waiting: list[tuple[float, _Task]] = []
        self.results = results
        self.expected = len(tasks) + len(results)
        self.started: dict[int, float] = {}

    @property
    def complete(self) -> bool:
        return len(self.results) >= self.expected

    def next_task(self) -> _Task | None:
        now = time.monotonic()
        due = [item for item in self.waiting if item[0] <= now]
        for item in due:
            self.waiting.remove(item)
            self.queue.append(item[1])
        return self.queue.popleft() if self.queue else None

    def seconds_to_next_waiting(self) -> float | None:
        if not self.waiting:
            return None
        return max(0.0, min(due for due, _ in self.waiting) - time.monotonic())

    def dispatched(self, task: _Task) -> None:
        self.started.setdefault(task.index, time.monotonic())
        if task.attempt == 1 and task.index not in self.results:
            self.progress.lesson_started(task.lesson.lesson_id, task.index, self.expected)
        log.info("lesson %s: started (attempt %d)", task.lesson.lesson_id, task.attempt,
                 extra={"event": "lesson_started", "lesson_id": task.lesson.lesson_id})

    def lost(self, task: _Task, reason: str, *, retry: bool) -> None:
        """A worker disappeared under ``task``: try again (a transient loss) or record it failed."""
        lesson_id = task.lesson.lesson_id
        if retry and task.attempt <= self.options.retries:
            log.warning("lesson %s: %s; retrying (attempt %d of %d)", lesson_id, reason, task.attempt + 1,
                        self.options.retries + 1, extra={"event": "lesson_retried", "lesson_id": lesson_id})
            self.queue.appendleft(_Task(task.lesson, task.index, task.attempt + 1))
            return
        attempts = f" (after {task.attempt} attempts)" if task.attempt > 1 else ""
        self.finish(task, failed_result(lesson_id, f"lesson {lesson_id}: {reason}{attempts}"))

    def finish(self, task: _Task, result: LessonResult) -> None:
        lesson_id = task.lesson.lesson_id
        if result.status == "busy" and self.options.wait:
            log.info("lesson %s: held by another run, waiting", lesson_id,
                     extra={"event": "lesson_waiting", "lesson_id": lesson_id})
            self.waiting.append((time.monotonic() + self.options.lock_poll_s, task))
            return
        if self.store is not None and result.status != "busy":
            result = self._record(result)
        self._done(task.index, result)

    def _done(self, index: int, result: LessonResult) -> None:
        self.results[index] = result
        duration = time.monotonic() - self.started.get(index, time.monotonic())
        log.info("lesson %s: %s%s", result.lesson_id, result.status, " (already done, skipped)" if result.skipped else "",
                 extra={"event": "lesson_finished", "lesson_id": result.lesson_id, "duration_s": round(duration, 3),
                        "status": result.status})
        self.progress.lesson_finished(result)

    def _record(self, result: LessonResult) -> LessonResult:
        """Write the lesson's row (this process is the only writer), retrying transient errors."""
        from highlights.pipeline import _database_problem, _sync_store

        def write() -> None:
            if result.skipped:
                _sync_store(self.store, result)
            else:
                self.store.save(result)

        try:
            retry_transient(write, retries=self.options.retries, what=f"lesson {result.lesson_id}: database row")
        except Exception as error:  # noqa: BLE001 - one lesson's row must not stop the batch
            # As in a serial run: the lesson is failed, and result.json says so, so the next run
            # redoes it (its row is written then).
            failed = failed_result(result.lesson_id, _database_problem(result.lesson_id, self.store, error),
                             versions=result.versions, fingerprint=result.fingerprint)
            failed.folder = result.folder
            if result.folder is not None and not result.skipped:
                _mark_unrecorded(result, failed)
            return failed
        return result


def _mark_unrecorded(done: LessonResult, failed: LessonResult) -> None:
    """Replace the ``result.json`` a worker wrote for ``done`` by ``failed`` (its database row
    could not be written), so the next run redoes the lesson. Only under the lesson's lock and
    only while the file is still the worker's: another run (a rerun by hand) that took the lesson
    since then writes its own outcome, and that must not be overwritten."""
    from highlights.pipeline import lesson_lock
    from highlights.results import read_result, write_result

    folder = done.folder
    assert folder is not None
    with lesson_lock(folder) as locked:
        if not locked:
            log.warning("lesson %s: its result.json is left to the run now holding it", done.lesson_id)
            return
        current = read_result(folder)
        if done.status == "failed" and current is not None and current.status == "ok":
            return  # the worker kept a published highlight (bad input): its result.json stays
        if current is not None and (current.fingerprint, current.status, current.finished_at) != (
            done.fingerprint, done.status, done.finished_at,
        ):
            log.warning("lesson %s: another run has rewritten its result.json since; left as it is", done.lesson_id)
            return
        write_result(failed, folder)


def is_transient(error: BaseException) -> bool:
    """A database error worth another try: the server unreachable or restarting, a lock timeout."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(error, (OperationalError, InterfaceError)):
        return True
    return isinstance(error, DBAPIError) and bool(getattr(error, "connection_invalidated", False))


def retry_transient(action: Callable[[], Any], *, retries: int, what: str, first_pause_s: float = 1.0) -> Any:
    """Run ``action``; on a transient database error pause (1 s, 2 s, 4 s ...) and try again,
    ``retries`` times at most. Other errors, and the last transient one, propagate."""
    for attempt in range(retries + 1):
        try:
            return action()
        except Exception as error:  # noqa: BLE001
            if attempt >= retries or not is_transient(error):
                raise
            pause = first_pause_s * 2**attempt
            log.warning("%s: %s, trying again in %.0f s", what, type(error).__name__, pause,
                        extra={"event": "db_retry"})
            time.sleep(pause)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- entry point


def run_batch(
    manifest: Any,
    wanted: Sequence[str],
    settings: Any,
    options: BatchOptions,
    *,
    store: Any,
    scorer: Any = None,
    progress: Any = None,
) -> list[LessonResult]:
    """Run lessons ``wanted`` of ``manifest`` with the executor ``options`` name; results in
    ``wanted``'s order. Records the run in ``highlight_runs`` (started, then finished with its
    counts). ``scorer``, when given, is used by the serial executor as is and sent (pickled) to
    each worker; otherwise every worker loads the models itself."""
    from highlights.pipeline import Progress

    progress = progress or Progress()
    started_wall = datetime.now(timezone.utc)
    started = time.monotonic()
    workers, threads = worker_plan(options)
    executor = "ray" if options.executor == "ray" else ("serial" if workers == 0 else "local")
    record_options = {**options.to_record(), "executor": executor, "workers": workers, "threads": threads,
                      "lessons": len(wanted), "force": bool(settings.force)}
    with log_context(run_id=options.run_id):
        if store is not None:
            try:
                retry_transient(lambda: store.start_run(options.run_id, host=socket.gethostname(),
                                                        options=record_options, started_at=started_wall),
                                retries=options.retries, what="run record")
            except Exception as error:  # noqa: BLE001 - nothing can be recorded: no lesson runs
                # A read-only SQLite file (or its -wal / -shm), a user without INSERT rights: the
                # first write of the run. Name the database, on one line, as when it cannot be opened.
                from highlights.store import StoreError

                raise StoreError(f"database {store.url} cannot be written: {type(error).__name__}: "
                                 f"{_first_line(store.error_text(error))}") from error
        log.info("run %s: %d lessons, executor %s, %d workers x %d threads", options.run_id, len(wanted), executor,
                 workers, threads, extra={"event": "run_started"})
        results: dict[int, LessonResult] = {}
        try:
            tasks: list[_Task] = []
            for index, lesson_id in enumerate(wanted):
                lesson = manifest.lessons.get(lesson_id)
                if lesson is None:
                    now = utc_now_iso()
                    results[index] = LessonResult(
                        lesson_id, "failed", reason=f"lesson {lesson_id}: not in manifest {Path(manifest.path).name}",
                        started_at=now, finished_at=now,
                    )
                else:
                    tasks.append(_Task(lesson, index))
            progress.batch_started(len(wanted))
            batch = _Batch(tasks, options, store, progress, results)
            for index, result in sorted(results.items()):
                progress.lesson_started(result.lesson_id, index, len(wanted))
                progress.lesson_finished(result)
            faults = os.environ.get(FAULTS_ENV, "")
            if executor == "serial":
                _run_serial(batch, settings, scorer)
            elif executor == "local":
                _run_local(batch, settings, scorer, workers, threads, faults)
            else:
                from highlights.ray_executor import run_ray

                run_ray(batch, settings, scorer, options, faults)
        except BaseException as stop:
            # Stopped before its end: Ctrl-C, SIGTERM (a systemd stop or timeout; the CLI turns
            # it into SystemExit), or an error that ended the whole run (the models cannot be
            # loaded, workers that keep dying). The record says so with what was done, rather
            # than staying 'running' like a killed run's.
            status = "failed" if isinstance(stop, Exception) else "interrupted"
            done = [results[i] for i in sorted(results)]
            _finish_run_record(store, options, done, run_summary(done, time.monotonic() - started), status, retries=0)
            raise
        ordered = [results[i] for i in range(len(wanted))]
        elapsed = time.monotonic() - started
        summary = run_summary(ordered, elapsed)
        _finish_run_record(store, options, ordered, summary, "finished", retries=options.retries)
        log.info("run %s: finished in %.1f s, %s", options.run_id, elapsed,
                 ", ".join(f"{n} {s}" for s, n in sorted(summary["counts"].items())),
                 extra={"event": "run_finished", "duration_s": round(elapsed, 3)})
    return ordered


def _finish_run_record(store: Any, options: BatchOptions, results: Sequence[LessonResult], summary: dict[str, Any],
                       status: str, *, retries: int) -> None:
    """Complete the run's row in ``highlight_runs`` with ``status`` and ``summary``
    (:func:`run_summary` of ``results``); a database error is logged, never raised (the lessons
    are recorded already)."""
    if store is None:
        return
    versions = next((r.versions for r in results if r.versions), {})
    try:
        retry_transient(lambda: store.finish_run(options.run_id, finished_at=datetime.now(timezone.utc),
                                                 counts=summary["counts"], versions=versions,
                                                 lessons_per_minute=summary["lessons_per_minute"], status=status),
                        retries=retries, what="run record")
    except Exception as error:  # noqa: BLE001 - the lessons are done; say so, do not crash
        log.error("run %s: the run record could not be finished: %s", options.run_id, type(error).__name__)


def _first_line(message: str) -> str:
    """A driver's message without the statement SQLAlchemy appends (``[SQL: ...]``, its link)."""
    return message.split(" [SQL:")[0].strip()


def run_summary(results: Sequence[LessonResult], elapsed_s: float) -> dict[str, Any]:
    """Counts per status (plus ``skipped``) and lessons per minute: lessons this run processed
    (not skipped, not busy) per minute of the run's wall time."""
    counts = Counter(r.status for r in results)
    counts["skipped"] = sum(1 for r in results if r.skipped)
    processed = sum(1 for r in results if not r.skipped and r.status != "busy")
    per_minute = processed / (elapsed_s / 60.0) if elapsed_s > 0 else 0.0
    return {"counts": dict(counts), "lessons_per_minute": round(per_minute, 3), "elapsed_s": elapsed_s}


# --------------------------------------------------------------------------- serial


def _run_serial(batch: _Batch, settings: Any, scorer: Any) -> None:
    """Every lesson in this process, the store written by run_lesson itself (row, then result.json)."""
    from highlights.pipeline import load_scorer, run_lesson

    progress = _ContextProgress(batch.progress)
    while True:
        task = batch.next_task()
        if task is None:
            pause = batch.seconds_to_next_waiting()
            if pause is None:
                return
            time.sleep(pause)
            continue
        batch.dispatched(task)
        if scorer is None:
            scorer = load_scorer(settings)
        with log_context(lesson_id=task.lesson.lesson_id):
            result = run_lesson(task.lesson, settings, scorer=scorer, store=batch.store, progress=progress)
        # run_lesson wrote the row already: finish without writing it again.
        if result.status == "busy" and batch.options.wait:
            batch.finish(task, result)
        else:
            batch._done(task.index, result)


class _ContextProgress:
    """Passes progress on and keeps the log context's ``stage`` current."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stage(self, lesson_id: str, stage: str) -> None:
        from highlights.logs import set_stage

        set_stage(stage)
        self.inner.stage(lesson_id, stage)


# --------------------------------------------------------------------------- local workers


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
    signal fires when the *thread* that started the worker exits: :func:`run_batch` starts and
    stops its workers on the calling thread, which blocks until the batch is over). Returns
    whether the signal is set."""
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


def load_worker_scorer(settings: Any, scorer_blob: bytes | None) -> Any:
    from highlights.pipeline import load_scorer

    return pickle.loads(scorer_blob) if scorer_blob else load_scorer(settings)


class _PipeProgress:
    """A worker's progress, sent to the parent (which draws the bar)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def stage(self, lesson_id: str, stage: str) -> None:
        from highlights.logs import set_stage

        set_stage(stage)
        self.conn.send(("stage", lesson_id, stage))

    def frames(self, lesson_id: str, done: int, total: int | None) -> None:
        self.conn.send(("frames", lesson_id, done, total))

    def batch_started(self, total: int) -> None: ...

    def lesson_started(self, lesson_id: str, index: int, total: int) -> None: ...

    def lesson_finished(self, result: LessonResult) -> None: ...


def _worker_main(conn: Connection, settings: Any, scorer_blob: bytes | None, threads: int,
                 log_setup: dict[str, Any] | None, faults: str) -> None:
    """A local worker: load the models once, then run the lessons the parent sends, one at a time."""
    # Ctrl-C and SIGTERM (systemd signals the whole unit at once) are the parent's to handle: it
    # stops the workers and records the run; a worker killed by them would count as a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    exit_with_parent()
    setup_worker(threads, log_setup)
    from highlights.pipeline import run_lesson

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
        lesson, attempt = message
        conn.send(("started", lesson.lesson_id))
        inject_test_fault(lesson.lesson_id, faults, attempt)
        with log_context(lesson_id=lesson.lesson_id):
            result = run_lesson(lesson, settings, scorer=scorer, store=None, progress=progress)
        conn.send(("result", result))


class _LocalWorker:
    def __init__(self, context: Any, args: tuple[Any, ...], number: int) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, *args), name=f"highlights-worker-{number}",
                                       daemon=True)
        self.process.start()
        child.close()
        self.task: _Task | None = None
        self.running_since: float | None = None
        self.stage = "start"
        self.ready = False
        """Models loaded: a worker that dies before is broken, not its lesson."""

    def send(self, task: _Task) -> None:
        self.task, self.running_since, self.stage = task, None, "start"
        self.conn.send((task.lesson, task.attempt))

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


def _run_local(batch: _Batch, settings: Any, scorer: Any, workers: int, threads: int, faults: str) -> None:
    # spawn, not fork: a forked child inherits torch's and OpenCV's thread pools in whatever
    # state they were, which can deadlock; a spawned one starts clean (about 2-8 s to import).
    context = multiprocessing.get_context("spawn")
    blob = pickle.dumps(scorer) if scorer is not None else None
    args = (settings, blob, threads, logging_setup(), faults)
    pool: list[_LocalWorker] = []
    made = 0

    def start() -> _LocalWorker:
        nonlocal made
        made += 1
        return _LocalWorker(context, args, made)

    limit = batch.options.time_limit_s or None
    start_failures = [0]
    try:
        pool = [start() for _ in range(min(workers, max(1, len(batch.queue))))]
        while not batch.complete:
            for worker in pool:
                if worker.task is None:
                    task = batch.next_task()
                    if task is None:
                        break
                    batch.dispatched(task)
                    worker.send(task)
            running = [w for w in pool if w.task is not None]
            if not running:
                time.sleep(min(1.0, batch.seconds_to_next_waiting() or 0.05))
                continue
            timeout = 1.0
            if limit:
                for w in running:
                    if w.running_since is not None:
                        timeout = min(timeout, max(0.0, w.running_since + limit - time.monotonic()))
            ready = wait_for([w.conn for w in running] + [w.process.sentinel for w in running], timeout=timeout)
            for worker in running:
                if worker.conn in ready or worker.process.sentinel in ready:
                    if not _drain(worker, batch):
                        _replace(pool, worker, batch, start, start_failures)
                if limit and worker.task is not None and worker.running_since is not None \
                        and time.monotonic() - worker.running_since > limit:
                    task, stage = worker.task, worker.stage
                    worker.stop(kill=True)
                    pool[pool.index(worker)] = start()
                    batch.finish(task, failed_result(task.lesson.lesson_id,
                                               f"lesson {task.lesson.lesson_id}: time limit of {limit:g} s exceeded "
                                               f"{_where(stage)}; its worker was stopped"))
    finally:
        for worker in pool:
            worker.stop(kill=batch.complete is False)


def _drain(worker: _LocalWorker, batch: _Batch) -> bool:
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
                batch.progress.stage(message[1], message[2])
            elif kind == "frames":
                batch.progress.frames(*message[1:])
            elif kind == "result":
                task, worker.task = worker.task, None
                batch.finish(task, message[1])
            elif kind == "error":
                raise RuntimeError(message[1])
    except (EOFError, OSError):
        return False
    return worker.process.is_alive() or worker.task is None and worker.process.exitcode == 0


MAX_START_FAILURES = 3
"""Workers that die before their models are loaded, in a row, before the batch gives up."""


def _replace(pool: list[_LocalWorker], worker: _LocalWorker, batch: _Batch, start: Callable[[], _LocalWorker],
             failures: list[int]) -> None:
    worker.process.join(timeout=5)
    task, stage = worker.task, worker.stage
    worker.task = None
    what, transient = describe_exit(worker.process.exitcode)
    worker.conn.close()
    if not worker.ready:
        # Broken before any lesson ran (environment, import error): not the lesson's fault.
        failures[0] += 1
        if failures[0] >= MAX_START_FAILURES:
            raise RuntimeError(f"worker processes cannot start: {what.replace('its worker process', 'the last one')}")
        if task is not None:
            batch.queue.appendleft(task)
        pool[pool.index(worker)] = start()
        return
    failures[0] = 0
    pool[pool.index(worker)] = start()
    if task is not None:
        batch.lost(task, f"{what} {_where(stage)}", retry=transient)


def _where(stage: str) -> str:
    return "before its first stage" if stage == "start" else f"in stage {stage}"


__all__ = ["BatchOptions", "available_cores", "run_batch", "run_summary", "worker_plan"]
