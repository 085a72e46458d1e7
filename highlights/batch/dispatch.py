"""A batch of lessons: one dispatch loop over a pool of workers, and the one writer of the database.

:func:`run_batch` puts the lessons in a queue and hands one to each idle worker of a pool
(:mod:`highlights.batch.pools`: this process, local worker processes, Ray actors), then takes
what comes back. However a lesson ran, it is recorded the same way, in this process only:

1. the lesson's own run wrote its folder, ``result.json`` last (:mod:`highlights.lesson.run`);
2. here, its row is written to the database (:meth:`Batch.finish`), transient errors retried;
3. if the row cannot be written, the lesson is failed and its ``result.json`` says so, so the
   next run redoes it. A run killed between 1 and 2 leaves a lesson whose ``result.json`` is
   current and whose row is missing: the next run skips the lesson and writes the row.

What every pool but the serial one guarantees besides (tested in ``tests/batch``):

- **Crashes stay with their lesson.** A worker that dies while running a lesson (a segfault in
  a decoder, an abort) records the lesson ``failed`` with the signal and the stage it was in;
  a new worker takes its place and the batch goes on. A worker killed by SIGKILL (the kernel's
  out-of-memory killer, a lost machine) counts as a transient loss and the lesson is retried
  up to ``retries`` times before it is recorded ``failed``. On Ray every actor death counts as a
  loss (Ray does not say reliably whether the process crashed or its node went away).
- **Time limit.** A lesson still running after ``time_limit_s`` has its worker killed and is
  recorded ``failed`` ("time limit ... exceeded in stage ..."); not retried.
- **Busy lessons.** A lesson whose lock another run holds comes back ``busy`` (not written to
  the database, not counted as a failure); with ``wait`` it is put back in the queue and tried
  again every ``lock_poll_s`` seconds until the other run lets go of it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from highlights.batch.options import BatchOptions, worker_plan
from highlights.batch.pools import FAULTS_ENV, Finished, Lost, Pool, ProcessPool, SerialPool, Task
from highlights.config import Settings
from highlights.core.result import LessonResult, utc_now_iso
from highlights.inputs.manifest import Manifest
from highlights.lesson import bucket
from highlights.lesson import folder as files
from highlights.lesson.graph import Progress
from highlights.lesson.run import failed_result
from highlights.logs import context as log_context
from highlights.persist.store import LessonRecord, ResultStore, StoreError
from highlights.storage import objects

log = logging.getLogger(__name__)


class Batch:
    """The bookkeeping every pool shares: the queue, retries, busy lessons, and the database.

    :meth:`finish` is the only place a lesson's row is written."""

    def __init__(self, tasks: list[Task], options: BatchOptions, store: ResultStore | None, progress: Progress,
                 results: dict[int, LessonResult]) -> None:
        self.options = options
        self.store = store
        self.progress = progress
        self.queue: deque[Task] = deque(tasks)
        self.waiting: list[tuple[float, Task]] = []
        self.results = results
        self.expected = len(tasks) + len(results)
        self.started: dict[int, float] = {}

    @property
    def complete(self) -> bool:
        return len(self.results) >= self.expected

    def next_task(self) -> Task | None:
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

    def dispatched(self, task: Task) -> None:
        self.started.setdefault(task.index, time.monotonic())
        task.published = self._published_row(task.lesson.lesson_id)
        if task.attempt == 1 and task.index not in self.results:
            self.progress.lesson_started(task.lesson.lesson_id, task.index, self.expected)
        log.info("lesson %s: started (attempt %d)", task.lesson.lesson_id, task.attempt,
                 extra={"event": "lesson_started", "lesson_id": task.lesson.lesson_id})

    def _published_row(self, lesson_id: str) -> bool:
        """Whether the database has an ``ok`` row for the lesson (emails may link its GIF)."""
        if self.store is None:
            return False
        try:
            row = self.store.row(lesson_id)
        except Exception:  # noqa: BLE001 - the row's write reports a database that cannot be read
            return False
        return row is not None and row.get("status") == "ok"

    def lost(self, task: Task, reason: str, *, retry: bool, counted: bool = True) -> None:
        """A worker disappeared under ``task``: try again (a transient loss) or record it failed."""
        lesson_id = task.lesson.lesson_id
        if not counted:
            self.queue.appendleft(task)
            return
        if retry and task.attempt <= self.options.retries:
            log.warning("lesson %s: %s; retrying (attempt %d of %d)", lesson_id, reason, task.attempt + 1,
                        self.options.retries + 1, extra={"event": "lesson_retried", "lesson_id": lesson_id})
            self.queue.appendleft(Task(task.lesson, task.index, task.attempt + 1))
            return
        attempts = f" (after {task.attempt} attempts)" if task.attempt > 1 else ""
        self.finish(task, LessonRecord(failed_result(lesson_id, f"lesson {lesson_id}: {reason}{attempts}")))

    def finish(self, task: Task, record: LessonRecord) -> None:
        result = record.result
        lesson_id = task.lesson.lesson_id
        if result.status == "busy" and self.options.wait:
            log.info("lesson %s: held by another run, waiting", lesson_id,
                     extra={"event": "lesson_waiting", "lesson_id": lesson_id})
            self.waiting.append((time.monotonic() + self.options.lock_poll_s, task))
            return
        if self.store is not None and result.status != "busy":
            result = self._record(record)
        self._done(task.index, result)

    def _done(self, index: int, result: LessonResult) -> None:
        self.results[index] = result
        duration = time.monotonic() - self.started.get(index, time.monotonic())
        log.info("lesson %s: %s%s", result.lesson_id, result.status, " (already done, skipped)" if result.skipped else "",
                 extra={"event": "lesson_finished", "lesson_id": result.lesson_id, "duration_s": round(duration, 3),
                        "status": result.status})
        self.progress.lesson_finished(result)

    def _record(self, record: LessonRecord) -> LessonResult:
        """Write the lesson's row (this process is the only writer), retrying transient errors."""
        assert self.store is not None
        store, result = self.store, record.result

        def write() -> None:
            if result.skipped:
                sync_row(store, record)
            else:
                store.save(record)

        try:
            retry_transient(write, retries=self.options.retries, what=f"lesson {result.lesson_id}: database row")
        except Exception as error:  # noqa: BLE001 - one lesson's row must not stop the batch
            # The lesson is failed, and result.json says so, so the next run redoes it (its row
            # is written then).
            failed = failed_result(result.lesson_id, database_problem(result.lesson_id, store, error),
                                   versions=result.versions, fingerprint=result.fingerprint)
            failed.folder, failed.location = result.folder, result.location
            if (result.folder is not None or result.location is not None) and not result.skipped:
                mark_unrecorded(result, failed)
            return failed
        return result


def sync_row(store: ResultStore, record: LessonRecord) -> None:
    """Make sure a skipped lesson's row is in this database too (it may be a new one)."""
    result = record.result
    row = store.row(result.lesson_id)
    if row is None or row.get("fingerprint") != result.fingerprint or row.get("status") != result.status:
        store.save(record)


def database_problem(lesson_id: str, store: ResultStore, error: Exception) -> str:
    """One line (drivers' messages span several: SQL, background links; the summary table and
    logs show one line per lesson), and never the URL's password, which drivers may echo."""
    return f"lesson {lesson_id}: database {store.url}: {type(error).__name__}: {store.error_text(error)}"


def mark_unrecorded(done: LessonResult, failed: LessonResult) -> None:
    """Replace the ``result.json`` a lesson's run wrote for ``done`` by ``failed`` (its database
    row could not be written), so the next run redoes the lesson. Only under the lesson's lock and
    only while the file is still that run's: another run (a rerun by hand) that took the lesson
    since then writes its own outcome, and that must not be overwritten."""
    if done.location is not None:  # the lesson's folder is in a bucket
        try:
            if _still_theirs(done, bucket.read_result(done.location)):
                bucket.write_result(failed, done.location)
        except objects.ObjectStoreError as error:
            log.warning("lesson %s: its result.json in the bucket cannot be marked failed: %s", done.lesson_id, error)
        return
    folder = done.folder
    assert folder is not None
    with files.lesson_lock(folder) as locked:
        if not locked:
            log.warning("lesson %s: its result.json is left to the run now holding it", done.lesson_id)
            return
        if _still_theirs(done, files.read_result(folder)):
            files.write_result(failed, folder)


def _still_theirs(done: LessonResult, current: LessonResult | None) -> bool:
    """Whether the lesson's ``result.json`` (``current``) is still the one ``done``'s run wrote."""
    if done.status == "failed" and current is not None and current.status == "ok":
        return False  # the run kept a published highlight (bad input): its result.json stays
    if current is not None and (current.fingerprint, current.status, current.finished_at) != (
        done.fingerprint, done.status, done.finished_at,
    ):
        log.warning("lesson %s: another run has rewritten its result.json since; left as it is", done.lesson_id)
        return False
    return True


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
        except Exception as error:
            if attempt >= retries or not is_transient(error):
                raise
            pause = first_pause_s * 2**attempt
            log.warning("%s: %s, trying again in %.0f s", what, type(error).__name__, pause,
                        extra={"event": "db_retry"})
            time.sleep(pause)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- the loop


def dispatch(batch: Batch, pool: Pool) -> None:
    """Hand the batch's lessons to the pool's idle workers and take back what they report, until
    every lesson has a result."""
    try:
        while not batch.complete:
            while pool.has_idle():
                task = batch.next_task()
                if task is None:
                    break
                batch.dispatched(task)
                pool.submit(task)
            if not pool.running():
                time.sleep(min(1.0, batch.seconds_to_next_waiting() or 0.05))
                continue
            for event in pool.events(timeout=1.0):
                if isinstance(event, Finished):
                    batch.finish(event.task, event.record)
                elif isinstance(event, Lost):
                    batch.lost(event.task, event.reason, retry=event.retry, counted=event.counted)
    finally:
        pool.close(kill=not batch.complete)


def run_batch(
    manifest: Manifest,
    wanted: Sequence[str],
    settings: Settings,
    options: BatchOptions,
    *,
    store: ResultStore | None,
    scorer: Any = None,
    progress: Progress | None = None,
) -> list[LessonResult]:
    """Run lessons ``wanted`` of ``manifest`` where ``options`` says; results in ``wanted``'s
    order. Records the run in ``highlight_runs`` (started, then finished with its counts).
    ``scorer``, when given, is used in this process as is and sent (pickled) to each worker;
    otherwise every worker loads the models itself."""
    progress = progress or Progress()
    started_wall = datetime.now(timezone.utc)
    started = time.monotonic()
    runnable = sum(1 for lesson_id in wanted if lesson_id in manifest.lessons)
    workers, threads = worker_plan(options, lessons=runnable)
    executor = "ray" if options.executor == "ray" else ("serial" if workers == 0 else "local")
    record_options = {**options.to_record(), "executor": executor, "workers": workers, "threads": threads,
                      "lessons": len(wanted), "force": bool(settings.force)}
    with log_context(run_id=options.run_id):
        if store is not None:
            try:
                retry_transient(lambda: store.start_run(options.run_id, host=socket.gethostname(),
                                                        options=record_options, started_at=started_wall),
                                retries=options.retries, what="run record")
            except Exception as error:
                # A read-only SQLite file (or its -wal / -shm), a user without INSERT rights: the
                # first write of the run. Name the database, on one line, as when it cannot be opened.
                raise StoreError(f"database {store.url} cannot be written: {type(error).__name__}: "
                                 f"{_first_line(store.error_text(error))}") from error
        log.info("run %s: %d lessons, executor %s, %d workers x %d threads", options.run_id, len(wanted), executor,
                 workers, threads, extra={"event": "run_started"})
        results: dict[int, LessonResult] = {}
        try:
            tasks: list[Task] = []
            for index, lesson_id in enumerate(wanted):
                lesson = manifest.lessons.get(lesson_id)
                if lesson is None:
                    now = utc_now_iso()
                    results[index] = LessonResult(
                        lesson_id, "failed", reason=f"lesson {lesson_id}: not in manifest {Path(manifest.path).name}",
                        started_at=now, finished_at=now,
                    )
                else:
                    tasks.append(Task(lesson, index))
            progress.batch_started(len(wanted))
            batch = Batch(tasks, options, store, progress, results)
            for index, result in sorted(results.items()):
                progress.lesson_started(result.lesson_id, index, len(wanted))
                progress.lesson_finished(result)
            if tasks:
                dispatch(batch, _pool(executor, settings, scorer, progress, options, workers, threads, len(tasks)))
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


def _pool(executor: str, settings: Settings, scorer: Any, progress: Progress, options: BatchOptions, workers: int,
          threads: int, lessons: int) -> Pool:
    faults = os.environ.get(FAULTS_ENV, "")
    if executor == "serial":
        return SerialPool(settings, scorer, progress)
    if executor == "local":
        return ProcessPool(settings, scorer, progress, workers=min(workers, lessons), threads=threads,
                           time_limit_s=options.time_limit_s, faults=faults)
    from highlights.batch.ray_pool import RayPool  # Ray: only for --executor ray

    return RayPool(settings, scorer, options, faults=faults, lessons=lessons)


def _finish_run_record(store: ResultStore | None, options: BatchOptions, results: Sequence[LessonResult],
                       summary: dict[str, Any], status: str, *, retries: int) -> None:
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


__all__ = [
    "Batch",
    "database_problem",
    "dispatch",
    "is_transient",
    "mark_unrecorded",
    "retry_transient",
    "run_batch",
    "run_summary",
    "sync_row",
]
