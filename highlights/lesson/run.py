"""One lesson, start to finish: whether it runs at all, its lock, its stages, its ``result.json``.

:func:`run_lesson` skips a lesson whose ``result.json`` carries the current overall fingerprint
(unless ``force``) or that was withdrawn by hand (unless named one by one with ``force``:
``Settings.republish_withdrawn``); otherwise it takes the lesson's lock, runs its stages
(:func:`highlights.lesson.flow.run_stages`, each reused where ``stages.json`` says it is current)
and writes ``result.json`` last. A problem with the lesson becomes its ``failed`` result, never
an exception. It writes no database row: the batch's dispatcher (:mod:`highlights.batch`) is the
one writer, from the :class:`~highlights.persist.store.LessonRecord` that :func:`run_and_record`
returns, however the lesson was run (in the calling process, a worker, a Ray actor).

So a rerun after a crash resumes at the first unfinished stage, and a lesson whose inputs, code,
models and settings have not changed is skipped altogether.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from highlights.config import Settings
from highlights.core.lesson import LessonInput
from highlights.core.result import LessonResult, utc_now_iso
from highlights.lesson import bucket
from highlights.lesson import folder as files
from highlights.lesson.flow import run_stages
from highlights.lesson.graph import LessonFailed, LessonRun, Progress, StageError, stage_keys
from highlights.lesson.resume import StageState
from highlights.lesson.scorer import load_scorer, scorer_versions
from highlights.lesson.staging import local_recordings
from highlights.lesson.withdraw import finish_withdrawal
from highlights.persist.store import LessonRecord, sqlite_file
from highlights.storage import objects

log = logging.getLogger(__name__)


def run_lesson(
    lesson: LessonInput,
    settings: Settings,
    *,
    scorer: Any = None,
    progress: Progress | None = None,
    published: bool = False,
) -> LessonResult:
    """Run every stage for one lesson; never raises for a problem with the lesson itself.

    ``scorer`` (a :class:`~highlights.stages.scores.FaceScorer`) is loaded here when not given:
    pass one when running many lessons. ``published``: the database already has an ``ok`` row
    for the lesson (its ``result.json`` may not say so: a new output folder), so bad input must
    not replace it (:mod:`highlights.lesson.flow`). With the outputs in a bucket
    (``settings.out_url``) the lesson's folder is brought from there and put back
    (:mod:`highlights.lesson.bucket`); the result's ``location`` names it there.
    """
    if settings.out_url:
        return run_and_record(lesson, settings, scorer=scorer, progress=progress, published=published).result
    return _run_here(lesson, settings, scorer=scorer, progress=progress, published=published)


def _run_here(lesson: LessonInput, settings: Settings, *, scorer: Any = None, progress: Progress | None = None,
              published: bool = False, lock_held: bool = False) -> LessonResult:
    """:func:`run_lesson` in the lesson's local folder (``settings.lessons_root / lesson_id``);
    ``lock_held``: the caller holds the lesson's lock."""
    progress = progress or Progress()
    scorer = scorer if scorer is not None else load_scorer(settings)
    settings = lesson_settings(lesson, settings)
    folder = settings.lessons_root / lesson.lesson_id
    versions = scorer_versions(scorer, settings)
    keys = stage_keys(lesson, settings, versions)
    started = utc_now_iso()

    clash = _job_file_clash(settings, lesson.lesson_id)
    if clash:
        reason = (f"lesson {lesson.lesson_id}: its folder would sit among the database's files ({clash} in the "
                  "output folder); rename the lesson or move the database (see README, Database)")
        return failed_result(lesson.lesson_id, reason, versions, started, fingerprint=keys.overall)

    previous = files.read_result(folder)
    if _stays_withdrawn(previous, settings):
        # A deliberate withdrawal sticks: only a rerun of this lesson by name with force makes
        # the highlight again, never a whole night's --force.
        log.info("lesson %s: withdrawn by hand, skipped (run it with --lesson and --force to make it again)",
                 lesson.lesson_id)
        finish_withdrawal(folder, lock_held=lock_held)
        return replace(previous, skipped=True)
    if not settings.force:
        current = previous is not None and previous.done and previous.fingerprint == keys.overall
        missing = files.missing_artifacts(previous) if current else []
        if missing:  # result.json outlived its files: redo what is missing, under the same GIF name
            log.warning("lesson %s: done before, but %s missing: redoing it", lesson.lesson_id, ", ".join(missing))
        elif current:
            log.info("lesson %s: already done (%s), skipped", lesson.lesson_id, previous.status)
            return replace(previous, skipped=True)

    try:
        with files.lesson_lock(folder, held=lock_held) as locked:
            if not locked:
                # Not a failure: the other run does the lesson (it gets no row or result.json
                # from this run); the batch waits for it with --wait.
                reason = (f"lesson {lesson.lesson_id}: another highlights run is working on it "
                          f"(lock {folder / files.LOCK_FILE})")
                log.info("%s", reason)
                return LessonResult(lesson.lesson_id, "busy", reason=reason, versions=versions, started_at=started,
                                    finished_at=utc_now_iso(), folder=folder)
            now = files.read_result(folder)
            if _stays_withdrawn(now, settings):
                # `highlights withdraw` took the lock between the check above and this run: it sticks.
                log.info("lesson %s: withdrawn by hand while this run started it, skipped", lesson.lesson_id)
                return replace(now, skipped=True)
            if not settings.force and now is not None and now.done and now.fingerprint == keys.overall \
                    and not files.missing_artifacts(now):
                return replace(now, skipped=True)  # another run finished it between the check and the lock
            context = LessonRun(lesson, settings, folder, keys, StageState(folder, settings.force), versions, progress,
                                scorer, published=published or (now is not None and now.status == "ok"))
            return _run_locked(context, started)
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
        return failed_result(lesson.lesson_id, reason, versions, started, fingerprint=keys.overall)


def run_and_record(lesson: LessonInput, settings: Settings, *, scorer: Any = None, progress: Progress | None = None,
                   published: bool = False) -> LessonRecord:
    """:func:`run_lesson`, and what the database keeps of its outcome
    (:func:`highlights.lesson.folder.lesson_record`): the unit of work of every pool."""
    if settings.out_url:
        return _run_in_bucket(lesson, settings, scorer=scorer, progress=progress, published=published)
    return _record(_run_here(lesson, settings, scorer=scorer, progress=progress, published=published))


def _record(result: LessonResult) -> LessonRecord:
    if result.status == "busy":
        return LessonRecord(result)
    return files.lesson_record(result)


def _run_in_bucket(lesson: LessonInput, settings: Settings, *, scorer: Any, progress: Progress | None,
                   published: bool) -> LessonRecord:
    """The lesson in its working folder, between bringing its folder from the bucket and putting
    it back (:mod:`highlights.lesson.bucket`), all under its lock; the record is read before the
    working folder is emptied. A bucket that cannot be read or written fails the lesson (the
    bucket keeps what the run before left: ``result.json`` goes up last)."""
    assert settings.out_url is not None
    scorer = scorer if scorer is not None else load_scorer(settings)
    lesson_id = lesson.lesson_id
    prefix = bucket.lesson_prefix(settings.out_url, lesson_id)
    started = utc_now_iso()

    def failure(reason: str, **fields: Any) -> LessonRecord:
        versions = scorer_versions(scorer, lesson_settings(lesson, settings))
        return LessonRecord(failed_result(lesson_id, reason, versions, started, location=prefix, **fields))

    try:
        folder = bucket.working_folder(settings.lessons_root, lesson_id)
        with files.lesson_lock(folder) as locked:
            if not locked:
                reason = f"lesson {lesson_id}: another highlights run on this machine is working on it"
                log.info("%s", reason)
                return LessonRecord(LessonResult(lesson_id, "busy", reason=reason, started_at=started,
                                                 finished_at=utc_now_iso(), location=prefix))
            try:
                checkout = bucket.Checkout(prefix, folder)
            except objects.ObjectStoreError as error:
                return failure(f"lesson {lesson_id}: its earlier outputs cannot be read from the bucket: {error}")
            with checkout:
                record = _record(_run_here(lesson, settings, scorer=scorer, progress=progress, published=published,
                                           lock_held=True))
                try:
                    checkout.push()
                except objects.ObjectStoreError as error:
                    return failure(f"lesson {lesson_id}: its outputs cannot be put in the bucket: {error}",
                                   fingerprint=record.result.fingerprint)
                record.result.location = prefix
                return record
    except OSError as error:  # the working folder cannot be made or written
        return failure(f"lesson {lesson_id}: its working folder cannot be written "
                       f"({error.strerror or type(error).__name__})")


def _stays_withdrawn(result: LessonResult | None, settings: Settings) -> bool:
    return result is not None and result.status == "withdrawn" and not (settings.force and settings.republish_withdrawn)


def _run_locked(c: LessonRun, started: str) -> LessonResult:
    lesson, folder = c.lesson, c.folder
    files.remove_leftover_temp_files(folder)
    try:
        with local_recordings(lesson, folder) as local_lesson:
            c.lesson = local_lesson  # the stages read local files; reasons name the manifest's rows
            result = run_stages(c)
    except Exception as error:
        stage = getattr(error, "stage", "pipeline")
        cause = error.__cause__ if isinstance(error, StageError) and error.__cause__ else error
        log.debug("lesson %s failed", lesson.lesson_id, exc_info=True)
        result = failed_result(lesson.lesson_id, describe_error(lesson, stage, cause), c.versions, started,
                               fingerprint=c.keys.overall)
    result.started_at = started
    result.finished_at = utc_now_iso()
    result.folder = folder
    previous = files.read_result(folder) if result.status == "failed" else None
    if previous is not None and previous.status == "ok":
        # An ok result.json outlives a failed rerun: it names the GIF emails link to. The failure
        # is in the summary, the log and the row's last_error.
        return result
    files.write_result(result, folder)  # last: the lesson is done once it is there
    return result


# --------------------------------------------------------------------------- failures


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
    if type(error).__name__ not in message and not isinstance(error, (LessonFailed, objects.ObjectStoreError)):
        message = f"{type(error).__name__}: {message}"
    return f"lesson {lesson.lesson_id}: {stage} stage failed{where}: {message}"


def failed_result(lesson_id: str, reason: str, versions: dict[str, Any] | None = None, started: str | None = None,
                  **fields: Any) -> LessonResult:
    """A ``failed`` result (logged): the lesson's problem, never the batch's. Used by the lesson's
    run and by the batch (a crashed or stuck worker, a row that cannot be written)."""
    log.warning("%s", reason, extra={"lesson_id": lesson_id, "event": "lesson_failed"})
    finished = utc_now_iso()
    return LessonResult(lesson_id, "failed", reason=reason, versions=versions or {}, started_at=started or finished,
                        finished_at=finished, **fields)


# --------------------------------------------------------------------------- settings per lesson


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
        same_folder = database.parent.resolve() == settings.lessons_root.resolve()
    except OSError:
        return None
    return database.name if same_folder and lesson_id.startswith(database.name) else None


__all__ = [
    "describe_error",
    "failed_result",
    "lesson_settings",
    "run_and_record",
    "run_lesson",
]
