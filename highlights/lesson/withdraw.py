"""Withdrawing a lesson's highlight on purpose (``highlights withdraw``), and finishing a
withdrawal that a crash cut short."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from highlights.config import Settings
from highlights.core.lesson import is_valid_lesson_id
from highlights.core.result import LessonResult, utc_now_iso
from highlights.lesson import bucket
from highlights.lesson import folder as files
from highlights.lesson.graph import GIF, REPORT, SNIPPET, published_gif_url
from highlights.lesson.resume import StageState
from highlights.persist.store import ResultStore
from highlights.stages.report import mark_withdrawn
from highlights.storage import objects

log = logging.getLogger(__name__)


class NothingToWithdraw(LookupError):
    """``highlights withdraw`` named a lesson with neither a result nor a database row."""


def withdraw_lesson(lesson_id: str, settings: Settings, *, store: ResultStore | None = None) -> LessonResult:
    """Withdraw a lesson's highlight on purpose: delete its GIF and snippets, mark its
    ``result.json`` and database row ``withdrawn`` (no GIF URL, no snippet: the campaign's query
    finds nothing). Later runs skip the lesson, a whole night's ``force`` included, until one
    names it with ``force`` (``highlights run MANIFEST --lesson ID --force``), which makes a new
    GIF under a new name. The scores, analytics and report stay (they are private); the report
    is marked withdrawn (:func:`highlights.stages.report.mark_withdrawn`), so it no longer shows the
    highlight as published.

    Raises :class:`NothingToWithdraw` when neither ``OUT/<lesson_id>/result.json`` nor a row
    exists, ValueError for an invalid id, and what the database raises.
    """
    if not is_valid_lesson_id(lesson_id):
        raise ValueError(f"{lesson_id!r} is not a valid lesson id")
    own_store = store is None
    store = store if store is not None else ResultStore(settings.database_url)
    try:
        if settings.out_url:
            return _withdraw_in_bucket(lesson_id, settings, store)
        folder = settings.lessons_root / lesson_id
        return _withdraw(lesson_id, settings, store, folder, folder.is_dir())
    finally:
        if own_store:
            store.dispose()


def _withdraw_in_bucket(lesson_id: str, settings: Settings, store: ResultStore) -> LessonResult:
    """:func:`withdraw_lesson` with the lesson's folder in a bucket: brought into the working
    folder, withdrawn there, put back (the withdrawn ``result.json`` before the GIF's and
    snippets' objects are deleted: :meth:`highlights.lesson.bucket.Checkout.push`)."""
    assert settings.out_url is not None
    prefix = bucket.lesson_prefix(settings.out_url, lesson_id)
    folder = bucket.working_folder(settings.lessons_root, lesson_id)
    with files.lesson_lock(folder) as locked:
        if not locked:
            raise RuntimeError(f"lesson {lesson_id}: another highlights run on this machine is working on it; "
                               "try again later")
        try:
            checkout = bucket.Checkout(prefix, folder)
        except objects.ObjectStoreError as error:
            raise RuntimeError(f"lesson {lesson_id}: its outputs cannot be read from the bucket: {error}") from None
        with checkout:
            try:
                result = _withdraw(lesson_id, settings, store, folder, bool(checkout.pulled), lock_held=True)
            except BaseException:
                # What it did change stays changed in the bucket too: a result.json marked
                # withdrawn (the row was written, the published object's delete then failed)
                # must not be undone by the next run's skip bringing the ok row back.
                with contextlib.suppress(objects.ObjectStoreError):
                    checkout.push()
                raise
            try:
                checkout.push()
            except objects.ObjectStoreError as error:
                raise RuntimeError(f"lesson {lesson_id}: withdrawn in the database, but its outputs in the bucket are "
                                   f"not: {error}; run `highlights withdraw {lesson_id}` again") from None
            result.location = prefix
            return result


def _withdraw(lesson_id: str, settings: Settings, store: ResultStore, folder: Path, has_folder: bool, *,
              lock_held: bool = False) -> LessonResult:
    """The withdrawal in the lesson's local folder (``has_folder``: the lesson has one;
    ``lock_held``: the caller holds its lock)."""
    row = store.row(lesson_id)
    previous = files.read_result(folder)
    if previous is None and row is None:
        where = bucket.lesson_prefix(settings.out_url, lesson_id) if settings.out_url else folder
        raise NothingToWithdraw(f"lesson {lesson_id}: no result in {where} and no database row: nothing to withdraw")
    when = utc_now_iso()
    reason = f"withdrawn by hand at {when}"
    if previous is not None:
        result = replace(previous, status="withdrawn", reason=reason, frames=[], gif=None, gif_url=None,
                         gif_bytes=None, snippet=None, snippet_text=None, finished_at=when, folder=folder)
    else:
        result = LessonResult(lesson_id, "withdrawn", reason=reason, started_at=when, finished_at=when)
    published = published_object(folder, settings, lesson_id, previous, row)
    if has_folder:
        with files.lesson_lock(folder, held=lock_held) as locked:
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
            files.write_result(result, folder)
            try:
                store.save(files.lesson_record(result))
            except BaseException:
                if previous is not None:
                    files.write_result(previous, folder)
                else:
                    (folder / files.RESULT_FILE).unlink(missing_ok=True)
                if report is not None:
                    files.write_report(report, folder)
                raise
            # The published object before the local files and the GIF's record, which name
            # it: a delete that fails leaves both, and the next withdraw or run finishes it.
            _unpublish(lesson_id, published)
            files.delete_published_files(folder)
            # A forced rerun draws a new GIF name, and writes its own report.
            StageState(folder).forget(GIF.name, SNIPPET.name, REPORT.name)
    else:
        store.save(result)
        _unpublish(lesson_id, published)
    log.warning("lesson %s: highlight withdrawn by hand", lesson_id)
    return result


def finish_withdrawal(folder: Path, *, lock_held: bool = False) -> None:
    """Delete what a withdrawal that stopped half way left (its result.json and row were written,
    then the process died, or the store failed, before the files and the published object went):
    a withdrawn GIF must not stay public. Only while no other run holds the lesson (a rerun by
    name may be making a new GIF)."""
    if not files.has_published_files(folder):
        return
    with files.lesson_lock(folder, held=lock_held) as locked:
        if not locked:
            return
        current = files.read_result(folder)
        if current is None or current.status != "withdrawn":
            return  # made again meanwhile
        _unpublish(folder.name, _recorded_object(folder))
        files.delete_published_files(folder)
        StageState(folder).forget(GIF.name, SNIPPET.name, REPORT.name)
        log.warning("lesson %s: removed the files a withdrawal had left", folder.name)


def published_object(folder: Path, settings: Settings, lesson_id: str, previous: LessonResult | None,
                     row: dict[str, Any] | None) -> str | None:
    """The object the lesson's GIF was published as: as its GIF stage recorded it, or else (no
    lesson folder here: a Ray node without a shared file system ran it) under the ``publish``
    setting with the GIF's name from ``result.json`` or the row's URL. None: never published."""
    recorded = _recorded_object(folder)
    if recorded or not settings.publish:
        return recorded
    name = previous.gif if previous is not None else None
    if not name and row is not None and row.get("gif_url"):
        name = str(row["gif_url"]).rsplit("/", 1)[-1]
    return published_gif_url(settings.publish, lesson_id, name) if name and name.endswith(".gif") else None


def _recorded_object(folder: Path) -> str | None:
    record = StageState(folder).earlier.get(GIF.name) if folder.is_dir() else None
    url = record.get("published") if isinstance(record, dict) else None
    return url if isinstance(url, str) and objects.is_object_url(url) else None


def _unpublish(lesson_id: str, url: str | None) -> None:
    """Delete the published GIF (a missing one is no error: withdrawing twice is fine)."""
    if url is None:
        return
    try:
        objects.delete(url)
    except objects.ObjectStoreError as error:
        raise RuntimeError(f"lesson {lesson_id}: withdrawn in the database, but its published {error}; "
                           f"run `highlights withdraw {lesson_id}` again") from None
    log.warning("lesson %s: published GIF deleted", lesson_id)


def _mark_report_withdrawn(folder: Path, reason: str) -> str | None:
    """Mark the lesson's ``report.html`` withdrawn (:func:`highlights.stages.report.mark_withdrawn`),
    atomically and as private as the stage wrote it: it no longer shows the highlight as published.
    Returns the page as it was (None where there was none), to put back if the withdrawal fails."""
    path = folder / files.REPORT_FILE
    try:
        html = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None  # no report (a lesson that failed before its report stage): nothing shows the highlight
    files.write_report(mark_withdrawn(html, reason), folder)
    return html


__all__ = ["NothingToWithdraw", "finish_withdrawal", "withdraw_lesson"]
