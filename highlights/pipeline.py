"""Orchestration: which lessons run, what a rerun skips, the lesson's lock, and where results go.

For each lesson of a manifest, :func:`run_lesson` skips it when its ``result.json`` carries the
current overall fingerprint (unless ``force``) or when it was withdrawn by hand (unless named one
by one with ``force``: ``Settings.republish_withdrawn``); otherwise it takes
the lesson's lock, runs its stages (:func:`highlights.runner.run_stages`: timeline, scores,
analytics, selection, gif, snippet, report, each reused where ``stages.json`` says it is current,
see :mod:`highlights.stages`), then saves the database row and writes ``result.json`` last.
A problem with one lesson becomes its ``failed`` result, never the batch's. The lesson folder's
files are listed in :mod:`highlights.artifacts`.

So a rerun after a crash resumes at the first unfinished stage, and a lesson whose inputs, code,
models and settings have not changed is skipped altogether.

From Python::

    from highlights.config import Settings
    from highlights.pipeline import run_manifest

    results = run_manifest("manifest.csv", Settings(out_dir=Path("out")))
    for result in results:
        print(result.lesson_id, result.status, result.gif_path)
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import highlights
from highlights.artifacts import (
    REPORT_FILE,
    SNIPPET_HTML,
    SNIPPET_TEXT,
    remove_leftover_temp_files,
    remove_stale_gifs,
)
from highlights.config import Settings
from highlights.io import PRIVATE_MODE, jsonable, make_dirs, write_text_atomic
from highlights.recordings import LessonInput, Manifest, is_valid_lesson_id, read_manifest
from highlights.report import mark_withdrawn
from highlights.results import RESULT_FILE, LessonResult, read_result, utc_now_iso, write_result
from highlights.runner import GIF, REPORT, SNIPPET, LessonFailed, LessonRun, Progress, StageError, run_stages
from highlights.stages import StageState, code_fingerprint, stage_keys
from highlights.store import ResultStore, sqlite_file

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"


# --------------------------------------------------------------------------- errors


def describe_error(lesson: LessonInput, stage: str, error: BaseException) -> str:
    """One line for the result and the log: lesson, stage, file and manifest row, the error.

    Holds file names and row numbers, never the lesson's metadata (student names)."""
    recording = lesson.recording_of(error)
    where = f" ({recording.role} recording, {recording.source})" if recording else ""  # file and row, no folders
    message = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None:
        # str() of an OSError holds the whole path (private folders, a child's name in them):
        # the file's name only, as everywhere else.
        names = [Path(str(f)).name for f in (error.filename, error.filename2) if f is not None]
        message = f"{error.strerror or 'cannot be used'}: {' -> '.join(names)}"
    if type(error).__name__ not in message and not isinstance(error, (LessonFailed,)):
        message = f"{type(error).__name__}: {message}"
    return f"lesson {lesson.lesson_id}: {stage} stage failed{where}: {message}"


# --------------------------------------------------------------------------- the scorer


def load_scorer(settings: Settings) -> Any:
    """The face models and detector, loaded once per batch."""
    from highlights.faces.detection import FaceDetector
    from highlights.faces.models import load_face_model
    from highlights.faces.scoring import FaceScorer

    smile = load_face_model("smile", settings.smile_weights) if settings.smile_weights else None
    age = load_face_model("age", settings.age_weights) if settings.age_weights else None
    return FaceScorer(detector=FaceDetector(settings.detection), smile_model=smile, age_model=age)


def scorer_versions(scorer: Any, settings: Settings) -> dict[str, Any]:
    versions = {"highlights": highlights.__version__, "code": code_fingerprint()}
    versions.update(jsonable(getattr(scorer, "versions", {}) or {}))
    versions.setdefault("detector", {"name": "mtcnn", **jsonable(settings.detection)})
    return versions


# --------------------------------------------------------------------------- one lesson


def run_lesson(
    lesson: LessonInput,
    settings: Settings,
    *,
    scorer: Any = None,
    store: ResultStore | None = None,
    progress: Progress | None = None,
) -> LessonResult:
    """Run every stage for one lesson; never raises for a problem with the lesson itself.

    ``scorer`` (a :class:`~highlights.faces.scoring.FaceScorer`) is loaded here when not given:
    pass one when running many lessons. ``store`` receives the lesson's row when given.
    """
    progress = progress or Progress()
    scorer = scorer if scorer is not None else load_scorer(settings)
    settings = lesson_settings(lesson, settings)
    folder = Path(settings.out_dir) / lesson.lesson_id
    versions = scorer_versions(scorer, settings)
    keys = stage_keys(lesson, settings, versions)
    started = utc_now_iso()

    clash = _job_file_clash(settings, lesson.lesson_id)
    if clash:
        reason = (f"lesson {lesson.lesson_id}: its folder would sit among the database's files ({clash} in the "
                  "output folder); rename the lesson or move the database (see README, Database)")
        return failed_result(lesson.lesson_id, reason, versions, started, fingerprint=keys.overall)

    previous = read_result(folder)
    if previous is not None and previous.status == "withdrawn" and not (settings.force and settings.republish_withdrawn):
        # A deliberate withdrawal sticks: only a rerun of this lesson by name with force makes
        # the highlight again, never a whole night's --force.
        previous.skipped = True
        log.info("lesson %s: withdrawn by hand, skipped (run it with --lesson and --force to make it again)",
                 lesson.lesson_id)
        _finish_withdrawal(folder)
        if store is not None:
            try:
                _sync_store(store, previous)
            except Exception as error:  # noqa: BLE001
                return failed_result(lesson.lesson_id, _database_problem(lesson.lesson_id, store, error),
                                     versions, started, fingerprint=keys.overall, folder=folder)
        return previous
    if not settings.force:
        current = previous is not None and previous.done and previous.fingerprint == keys.overall
        missing = _missing_artifacts(previous) if current else []
        if missing:  # result.json outlived its files: redo what is missing, under the same GIF name
            log.warning("lesson %s: done before, but %s missing: redoing it", lesson.lesson_id, ", ".join(missing))
        elif current:
            log.info("lesson %s: already done (%s), skipped", lesson.lesson_id, previous.status)
            return _skipped(previous, store, versions, started, keys.overall, folder)

    try:
        with lesson_lock(folder) as locked:
            if not locked:
                # Not a failure: the other run does the lesson (it gets no row or result.json
                # from this run); the executors wait for it with --wait.
                reason = f"lesson {lesson.lesson_id}: another highlights run is working on it (lock {folder / LOCK_FILE})"
                log.info("%s", reason)
                return LessonResult(lesson.lesson_id, "busy", reason=reason, versions=versions, started_at=started,
                                    finished_at=utc_now_iso(), folder=folder)
            now = read_result(folder)
            if now is not None and now.status == "withdrawn" and not (settings.force and settings.republish_withdrawn):
                # `highlights withdraw` took the lock between the check above and this run: it sticks.
                now.skipped = True
                log.info("lesson %s: withdrawn by hand while this run started it, skipped", lesson.lesson_id)
                return now
            if not settings.force:
                # Another run may have finished it between the check above and the lock.
                done = read_result(folder)
                if done is not None and done.done and done.fingerprint == keys.overall and not _missing_artifacts(done):
                    return _skipped(done, store, versions, started, keys.overall, folder)
            return _run_locked(lesson, settings, scorer, store, progress, folder, versions, keys, started)
    except OSError as error:
        # The lesson's folder cannot be created or written (a file in its place, permissions, a
        # full disk): this lesson fails, the batch goes on.
        problem = error.strerror or type(error).__name__
        name = Path(error.filename).name if getattr(error, "filename", None) else folder.name
        if folder.exists() and not folder.is_dir():
            problem = "a file is in its place"
        elif name != folder.name:
            problem = f"{name}: {problem}"  # the file's name only, never the folders above it
        reason = f"lesson {lesson.lesson_id}: output folder {folder.name} cannot be written ({problem})"
        result = failed_result(lesson.lesson_id, reason, versions, started, fingerprint=keys.overall)
        if store is not None:
            try:
                store.save(result)
            except Exception as db_error:  # noqa: BLE001
                log.warning("lesson %s: database %s: %s", lesson.lesson_id, store.url, type(db_error).__name__)
        return result


def failed_result(lesson_id: str, reason: str, versions: dict[str, Any] | None = None, started: str | None = None,
                  **fields: Any) -> LessonResult:
    """A ``failed`` result (logged): the lesson's problem, never the batch's. Used by the stage
    runner and by the executors (a crashed or stuck worker)."""
    log.warning("%s", reason, extra={"lesson_id": lesson_id, "event": "lesson_failed"})
    finished = utc_now_iso()
    return LessonResult(lesson_id, "failed", reason=reason, versions=versions or {}, started_at=started or finished,
                        finished_at=finished, **fields)


def _database_problem(lesson_id: str, store: ResultStore, error: Exception) -> str:
    # One line (drivers' messages span several: SQL, background links; the summary table and
    # logs show one line per lesson), and never the URL's password, which drivers may echo.
    return f"lesson {lesson_id}: database {store.url}: {type(error).__name__}: {store.error_text(error)}"


def lesson_settings(lesson: LessonInput, settings: Settings) -> Settings:
    """The settings for this lesson: the lessons file's ``student_age_group`` overrides
    ``selection.student_age_group`` (and so enters the selection's fingerprint)."""
    group = lesson.info.student_age_group
    if group and group != settings.selection.student_age_group:
        return replace(settings, selection=replace(settings.selection, student_age_group=group))
    return settings


def _job_file_clash(settings: Settings, lesson_id: str) -> str | None:
    """The name of a job file the lesson's folder would clash with, or None.

    Lesson ids start with a letter or digit, so ``OUT/.highlights`` (the default database's
    folder) is safe; but a SQLite file directly in ``OUT`` (an older deployment's
    ``OUT/highlights.sqlite``, or a ``--db`` there) writes ``<name>-journal``, ``-wal`` and
    ``-shm`` beside itself, and a lesson folder of such a name breaks the database for everyone.
    """
    try:
        database = sqlite_file(settings.database_url)
    except Exception:  # noqa: BLE001 - a bad URL is reported when the store opens
        return None
    if database is None:
        return None
    try:
        same_folder = database.parent.resolve() == Path(settings.out_dir).resolve()
    except OSError:
        return None
    return database.name if same_folder and lesson_id.startswith(database.name) else None


def _published(lesson_id: str, folder: Path, store: ResultStore | None) -> bool:
    """Whether the lesson has a completed highlight that emails may link to already: an ``ok``
    database row or ``result.json``."""
    previous = read_result(folder)
    if previous is not None and previous.status == "ok":
        return True
    if store is None:
        return False
    try:
        row = store.row(lesson_id)
    except Exception:  # noqa: BLE001 - the save reports a database that cannot be read
        return False
    return row is not None and row.get("status") == "ok"


def _missing_artifacts(result: LessonResult) -> list[str]:
    """The files a finished result names that are no longer in its folder (deleted by hand, a
    sync, a cleanup): such a lesson is not "done" and must be redone, not skipped."""
    if result.folder is None:
        return []
    names = [result.gif, result.snippet, result.snippet_text, result.report, result.scores, result.analytics]
    return [name for name in names if name and not (result.folder / name).is_file()]


def _run_locked(lesson, settings, scorer, store, progress, folder, versions, keys, started) -> LessonResult:
    remove_leftover_temp_files(folder)
    context = LessonRun(lesson, settings, folder, keys, StageState(folder, settings.force), versions, progress,
                        scorer, published=_published(lesson.lesson_id, folder, store))
    try:
        result = run_stages(context)
    except Exception as error:  # noqa: BLE001 - one lesson's failure must not stop the batch
        stage = getattr(error, "stage", "pipeline")
        cause = error.__cause__ if isinstance(error, StageError) and error.__cause__ else error
        log.debug("lesson %s failed", lesson.lesson_id, exc_info=True)
        result = failed_result(lesson.lesson_id, describe_error(lesson, stage, cause), versions, started,
                         fingerprint=keys.overall)
    result.started_at = started
    result.finished_at = utc_now_iso()
    result.folder = folder
    # The database row first, result.json last: a lesson is "done" only once both exist.
    if store is not None:
        try:
            store.save(result)
        except Exception as error:  # noqa: BLE001
            result = failed_result(lesson.lesson_id, _database_problem(lesson.lesson_id, store, error), versions,
                             started, fingerprint=keys.overall, folder=folder)
    previous = read_result(folder) if result.status == "failed" else None
    if previous is not None and previous.status == "ok":
        # Like the database row, an ok result.json outlives a failed rerun: it names the GIF
        # emails link to. The failure is in the summary, the log and the row's last_error.
        return result
    write_result(result, folder)
    return result


@contextmanager
def lesson_lock(folder: Path) -> Iterator[bool]:
    """Hold ``folder/.lock`` (an advisory ``flock``) while a lesson runs; yields False when another
    process holds it (a nightly run and a rerun by hand on the same lesson). The lock goes with
    the process, so a crash never leaves it stuck."""
    make_dirs(folder)
    # Private, whatever the umask: another user who could replace the lock file could break it.
    descriptor = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_APPEND, PRIVATE_MODE & ~0o022)
    with os.fdopen(descriptor, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

def _skipped(done: LessonResult, store: ResultStore | None, versions: dict[str, Any], started: str,
             fingerprint: str, folder: Path) -> LessonResult:
    """A lesson already done with these inputs: its result, marked skipped, with its row made
    sure of in ``store`` (a failure to write that row fails the lesson, not the batch)."""
    done.skipped = True
    if store is not None:
        try:
            _sync_store(store, done)
        except Exception as error:  # noqa: BLE001 - one lesson's row must not stop the batch
            return failed_result(done.lesson_id, _database_problem(done.lesson_id, store, error),
                           versions, started, fingerprint=fingerprint, folder=folder)
    return done


def _sync_store(store: ResultStore, result: LessonResult) -> None:
    """Make sure a skipped lesson's row is in this database too (it may be a new one)."""
    row = store.row(result.lesson_id)
    if row is None or row.get("fingerprint") != result.fingerprint or row.get("status") != result.status:
        store.save(result)

# --------------------------------------------------------------------------- a manifest


def run_manifest(
    manifest: Path | str | Manifest,
    settings: Settings,
    lesson_ids: Sequence[str] | None = None,
    *,
    lessons_path: Path | str | None = None,
    progress: Progress | None = None,
    scorer: Any = None,
    store: ResultStore | None = None,
    batch: Any = None,
) -> list[LessonResult]:
    """Run every lesson of a manifest (or those named in ``lesson_ids``); results in that order.

    ``batch`` (:class:`highlights.executors.BatchOptions`) says where: by default one lesson
    after another in this process with the models loaded once; ``BatchOptions(workers=N)`` in N
    worker processes, ``BatchOptions(executor="ray")`` on a Ray cluster. The run is recorded in
    ``highlight_runs``. A lesson named but absent from the manifest, or whose rows are bad,
    comes back ``failed`` with a reason naming the lesson, the file and the row; one another run
    holds comes back ``busy``; the others run. Raises
    :class:`~highlights.recordings.InputError` only when the manifest itself is unusable.
    """
    from highlights.executors import BatchOptions, run_batch

    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest, lessons_path=lessons_path, timezone=settings.timezone)
    for problem in manifest.problems:
        if getattr(problem, "lesson_id", None) is None:
            log.warning("%s: %s", _problem_label(manifest, problem), problem)
    if not manifest.lessons and not any(Path(p.file) == Path(manifest.path) for p in manifest.problems):
        # Not an error (a day without lessons), but a nightly export that failed looks the same.
        log.warning("manifest %s lists no recordings: no lesson to run", Path(manifest.path).name)
    wanted = list(dict.fromkeys(lesson_ids)) if lesson_ids else list(manifest.lessons)
    if lesson_ids and settings.force:  # lessons named one by one: withdrawn ones are made again too
        settings = replace(settings, republish_withdrawn=True)
    own_store = store is None
    store = store if store is not None else ResultStore(settings.database_url)
    try:
        return run_batch(manifest, wanted, settings, batch or BatchOptions(workers=0), store=store, scorer=scorer,
                         progress=progress)
    finally:
        if own_store:
            store.dispose()


def manifest_problems(manifest: Manifest) -> list[str]:
    """Problems of rows that belong to no lesson (each names file and row), labelled by the file
    they are in: ``manifest problem: ...`` or ``lessons file problem: ...``."""
    return [f"{_problem_label(manifest, p)}: {p}" for p in manifest.problems if getattr(p, "lesson_id", None) is None]


def _problem_label(manifest: Manifest, problem: Any) -> str:
    return "manifest problem" if Path(problem.file) == Path(manifest.path) else "lessons file problem"


# --------------------------------------------------------------------------- withdrawing


class NothingToWithdraw(LookupError):
    """``highlights withdraw`` named a lesson with neither a result nor a database row."""


def withdraw_lesson(lesson_id: str, settings: Settings, *, store: ResultStore | None = None) -> LessonResult:
    """Withdraw a lesson's highlight on purpose: delete its GIF and snippets, mark its
    ``result.json`` and database row ``withdrawn`` (no GIF URL, no snippet: the campaign's query
    finds nothing). Later runs skip the lesson, a whole night's ``force`` included, until one
    names it with ``force`` (``highlights run MANIFEST --lesson ID --force``), which makes a new
    GIF under a new name. The scores, analytics and report stay (they are private); the report
    is marked withdrawn (:func:`highlights.report.mark_withdrawn`), so it no longer shows the
    highlight as published.

    Raises :class:`NothingToWithdraw` when neither ``OUT/<lesson_id>/result.json`` nor a row
    exists, ValueError for an invalid id, and what the database raises.
    """
    if not is_valid_lesson_id(lesson_id):
        raise ValueError(f"{lesson_id!r} is not a valid lesson id")
    folder = Path(settings.out_dir) / lesson_id
    own_store = store is None
    store = store if store is not None else ResultStore(settings.database_url)
    try:
        row = store.row(lesson_id)
        previous = read_result(folder)
        if previous is None and row is None:
            raise NothingToWithdraw(f"lesson {lesson_id}: no result in {folder} and no database row: nothing to withdraw")
        when = utc_now_iso()
        reason = f"withdrawn by hand at {when}"
        if previous is not None:
            result = replace(previous, status="withdrawn", reason=reason, frames=[], gif=None, gif_url=None,
                             gif_bytes=None, snippet=None, snippet_text=None, finished_at=when, folder=folder)
        else:
            result = LessonResult(lesson_id, "withdrawn", reason=reason, started_at=when, finished_at=when)
        if folder.is_dir():
            with lesson_lock(folder) as locked:
                if not locked:
                    raise RuntimeError(f"lesson {lesson_id}: another highlights run is working on it; try again later")
                # The order keeps every failure whole. The report first: when it cannot be
                # written, nothing has changed. Then result.json, so that no later run (whose skip
                # path writes the row from it) can bring the ok row back; if the database then
                # refuses the row, result.json is put back and the GIF stays, published as its
                # row says (and so does the report again). Only then the files go: a GIF the row
                # no longer names.
                report = _mark_report_withdrawn(folder, reason)
                result.folder = folder
                write_result(result, folder)
                try:
                    store.save(result)
                except BaseException:
                    if previous is not None:
                        write_result(previous, folder)
                    else:
                        (folder / RESULT_FILE).unlink(missing_ok=True)
                    if report is not None:
                        write_text_atomic(folder / REPORT_FILE, report)
                    raise
                _delete_published_files(folder)
                # A forced rerun draws a new GIF name, and writes its own report.
                StageState(folder).forget(GIF.name, SNIPPET.name, REPORT.name)
        else:
            store.save(result)
        log.warning("lesson %s: highlight withdrawn by hand", lesson_id)
        return result
    finally:
        if own_store:
            store.dispose()


_SNIPPETS = (SNIPPET_HTML, SNIPPET_TEXT)


def _finish_withdrawal(folder: Path) -> None:
    """Delete what a withdrawal that stopped half way left (its result.json and row were written,
    then the process died before the files went): a withdrawn GIF must not stay public. Only
    while no other run holds the lesson (a rerun by name may be making a new GIF)."""
    if not any(folder.glob("*.gif")) and not any((folder / name).exists() for name in _SNIPPETS):
        return
    with lesson_lock(folder) as locked:
        if not locked:
            return
        current = read_result(folder)
        if current is None or current.status != "withdrawn":
            return  # made again meanwhile
        _delete_published_files(folder)
        log.warning("lesson %s: removed the files a withdrawal had left", folder.name)


def _delete_published_files(folder: Path) -> None:
    """The lesson's GIFs and snippets: what a withdrawal takes down."""
    remove_stale_gifs(folder, keep=None)
    for name in _SNIPPETS:
        (folder / name).unlink(missing_ok=True)


def _mark_report_withdrawn(folder: Path, reason: str) -> str | None:
    """Mark the lesson's ``report.html`` withdrawn (:func:`highlights.report.mark_withdrawn`),
    atomically and as private as the stage wrote it: it no longer shows the highlight as published.
    Returns the page as it was (None where there was none), to put back if the withdrawal fails."""
    path = folder / REPORT_FILE
    try:
        html = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None  # no report (a lesson that failed before its report stage): nothing shows the highlight
    write_text_atomic(path, mark_withdrawn(html, reason))
    return html


__all__ = [
    "LOCK_FILE",
    "NothingToWithdraw",
    "describe_error",
    "failed_result",
    "lesson_lock",
    "lesson_settings",
    "load_scorer",
    "manifest_problems",
    "run_lesson",
    "run_manifest",
    "scorer_versions",
    "withdraw_lesson",
    # re-exported from highlights.runner, where they live: the executors and the CLI take them here
    "LessonFailed",
    "Progress",
]
