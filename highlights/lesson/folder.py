"""A lesson's folder: the files its stages write there, how they are read back, its lock and its
cleanup. For lesson ``L`` everything goes to ``OUT/L/``::

    timeline.json   when each person was online, the lesson's bounds     (timeline stage)
    scores.csv      the face table: one row per face per sampled frame    (scores stage)
    analytics.json / analytics.csv  smiles and presence over the lesson   (analytics stage)
    selection.json  the chosen frames, GIF order                          (selection stage)
    <token>.gif     the GIF, under a name nobody can guess                (gif stage)
    snippet.html / snippet.txt  the email snippet                         (snippet stage)
    report.html     the per-lesson report for people                      (report stage)
    stages.json     each finished stage's fingerprint and files           (highlights.lesson.resume)
    result.json     written last: the lesson's outcome                    (:func:`write_result`)
    .lock           held while a run works on the lesson                  (:func:`lesson_lock`)

Every file is written atomically (:mod:`highlights.files`): what one stage writes is exactly what
the next one reads when a rerun resumes there. Only this module knows the files' names and
formats; the stages compute values and never touch a path.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from highlights.core.faces import (
    DTYPES,
    PERSON_COLUMNS,
    SCORE_COLUMNS,
    STORED_COLUMNS,
    TEXT_COLUMNS,
    TRACK_COLUMNS,
    FaceTable,
)
from highlights.core.plain import jsonable
from highlights.core.result import LessonResult
from highlights.files import PRIVATE_MODE, atomic_path, make_dirs, write_json_atomic, write_text_atomic
from highlights.persist.store import LessonRecord
from highlights.stages.analytics import LessonAnalytics
from highlights.stages.selection import Selection
from highlights.stages.timeline import LessonTimeline
from highlights.stages.tracks import assign_tracks

log = logging.getLogger(__name__)

TIMELINE_FILE = "timeline.json"
SCORES_FILE = "scores.csv"
ANALYTICS_FILE = "analytics.json"
ANALYTICS_CSV = "analytics.csv"
SELECTION_FILE = "selection.json"
SNIPPET_HTML = "snippet.html"
SNIPPET_TEXT = "snippet.txt"
REPORT_FILE = "report.html"
RESULT_FILE = "result.json"
LOCK_FILE = ".lock"


# --------------------------------------------------------------------------- the stages' files


def write_timeline(timeline: LessonTimeline, folder: Path) -> None:
    write_json_atomic(folder / TIMELINE_FILE, jsonable(timeline))


def write_scores(table: FaceTable, path: Path) -> None:
    """``scores.csv`` at ``path``: the face table's stored columns (never the judged ones)."""
    with atomic_path(path) as tmp:
        table.stored().to_csv(tmp, index=False)


def read_scores(path: Path) -> FaceTable:
    """``scores.csv`` (at ``path``) back as the scores stage made it (same columns and dtypes).

    A file written before face tracks (no ``track`` column) gets its tracks linked now, so
    every later stage sees the same columns."""
    text_columns = [c for c in STORED_COLUMNS if c in TEXT_COLUMNS]
    frame = pd.read_csv(path, dtype={c: "string" for c in text_columns}, keep_default_na=True)
    for column in text_columns:
        frame[column] = frame[column].fillna("").astype(str)
    frame["is_child"] = frame["is_child"].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))
    typed = frame.astype({c: DTYPES[c] for c in SCORE_COLUMNS})
    if "track" not in typed.columns:
        return assign_tracks(typed[list(SCORE_COLUMNS)])
    typed["track"] = typed["track"].fillna(-1).astype("int64")
    typed["in_frame"] = typed["in_frame"].astype(float) if "in_frame" in typed.columns else float("nan")
    columns = [*SCORE_COLUMNS, *TRACK_COLUMNS]
    if all(name in typed.columns for name in PERSON_COLUMNS):  # (a file written before persons is judged by track)
        typed = typed.astype({name: DTYPES[name] for name in PERSON_COLUMNS if name != "person"})
        typed["person"] = typed["person"].fillna(-1).astype("int64")
        columns += PERSON_COLUMNS
    return FaceTable(typed[columns])


def write_analytics(analytics: LessonAnalytics, folder: Path) -> tuple[Path, Path]:
    """``analytics.json`` (summary + series) and ``analytics.csv`` (the series); their paths."""
    folder = Path(folder)
    with atomic_path(folder / ANALYTICS_CSV) as tmp:
        analytics.series.to_csv(tmp, index=False)
    write_json_atomic(folder / ANALYTICS_FILE, analytics.to_dict())
    return folder / ANALYTICS_FILE, folder / ANALYTICS_CSV


def read_analytics(path: Path) -> LessonAnalytics:
    """``analytics.json`` back as :class:`LessonAnalytics` (the series without the dropped columns)."""
    return LessonAnalytics.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def write_selection(selection: Selection, folder: Path) -> None:
    write_json_atomic(folder / SELECTION_FILE, selection.to_dict())


def read_selection(folder: Path) -> Selection:
    return Selection.from_dict(json.loads((folder / SELECTION_FILE).read_text(encoding="utf-8")))


def write_snippet(html: str, text: str, folder: Path) -> None:
    write_text_atomic(folder / SNIPPET_HTML, html)
    write_text_atomic(folder / SNIPPET_TEXT, text)


def write_report(html: str, folder: Path) -> None:
    write_text_atomic(folder / REPORT_FILE, html)


def public_url(public_base_url: str | None, lesson_id: str, gif_name: str, folder: Path) -> str:
    """Where the email's readers fetch the GIF: ``<public_base_url>/<lesson_id>/<gif>``.

    Without a public base URL (a local run) it is the file's own ``file://`` URL.
    """
    if public_base_url:
        return f"{str(public_base_url).rstrip('/')}/{lesson_id}/{gif_name}"
    return (folder / gif_name).resolve().as_uri()


# --------------------------------------------------------------------------- result.json


def write_result(result: LessonResult, folder: Path | str | None = None) -> Path:
    """Write ``result.json`` atomically into ``folder`` (default ``result.folder``)."""
    folder = Path(folder) if folder is not None else result.folder
    if folder is None:
        raise ValueError("write_result needs a folder")
    path = folder / RESULT_FILE
    write_json_atomic(path, result.to_dict())
    return path


def read_result(folder: Path | str) -> LessonResult | None:
    """The result stored in ``folder/result.json``, or None if there is none or it is unreadable.

    An unreadable file (an older schema, a hand edit) counts as "not done": the lesson reruns.
    """
    folder = Path(folder)
    try:
        data = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
        return LessonResult.from_dict(data, folder=folder)
    except OSError:  # missing, or the folder unusable (a file in its place, permissions)
        return None
    except (ValueError, TypeError, KeyError):
        return None


def missing_artifacts(result: LessonResult) -> list[str]:
    """The files a finished result names that are no longer in its folder (deleted by hand, a
    sync, a cleanup): such a lesson is not "done" and must be redone, not skipped."""
    if result.folder is None:
        return []
    names = [result.gif, result.snippet, result.snippet_text, result.report, result.scores, result.analytics]
    return [name for name in names if name and not (result.folder / name).is_file()]


# --------------------------------------------------------------------------- the database's view


def lesson_record(result: LessonResult) -> LessonRecord:
    """What the database keeps of a lesson: its result, plus what its folder holds of it (the
    snippet's HTML and text, the analytics figures, the selection's counts). Read here, in the
    lesson's own run (a worker, a Ray actor), so that the one writer of the database needs no
    access to the lesson folders."""
    folder = result.folder

    def text(name: str | None) -> str | None:
        if not name or folder is None:
            return None
        try:
            return (folder / name).read_text(encoding="utf-8")
        except OSError:
            return None

    analytics = None
    if result.analytics and folder is not None and (folder / result.analytics).is_file():
        try:
            analytics = read_analytics(folder / result.analytics)
        except (OSError, ValueError, KeyError):
            analytics = None
    stats = None
    if result.status == "no_highlight" and folder is not None:
        try:
            stats = json.loads((folder / SELECTION_FILE).read_text(encoding="utf-8")).get("stats")
        except (OSError, ValueError, AttributeError):
            stats = None
    return LessonRecord(result, snippet_html=text(result.snippet), snippet_text=text(result.snippet_text),
                        analytics=analytics, selection_stats=stats)


# --------------------------------------------------------------------------- lock and cleanup


@contextmanager
def lesson_lock(folder: Path, *, held: bool = False) -> Iterator[bool]:
    """Hold ``folder/.lock`` (an advisory ``flock``) while a lesson runs; yields False when another
    process holds it (a nightly run and a rerun by hand on the same lesson). The lock goes with
    the process, so a crash never leaves it stuck. ``held``: the caller holds it already."""
    if held:
        # The caller took it (outputs in a bucket: before the lesson's objects are brought in);
        # a second flock on a new descriptor would find it taken, by this very run.
        yield True
        return
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


def remove_leftover_temp_files(folder: Path) -> None:
    """Delete the temporary files (``.<name>.<random>.tmp<suffix>``, see
    :func:`highlights.files.atomic_path`) that a crashed or killed run left in the lesson's folder:
    half-written GIFs and snippets (with the student's name) must not linger in a served folder.
    Called only while holding the lesson's lock, so no live writer owns them."""
    for path in folder.glob(".*.tmp*"):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            log.info("lesson folder %s: removed leftover temporary file %s", folder.name, path.name)


def remove_stale_gifs(folder: Path, keep: str | None) -> None:
    """Delete GIFs of earlier runs that the lesson's result no longer names: a GIF that a new
    model or setting no longer stands behind must not stay public."""
    for path in folder.glob("*.gif"):
        if path.name != keep:
            path.unlink(missing_ok=True)
            log.info("lesson folder %s: removed stale GIF", folder.name)


def delete_published_files(folder: Path) -> None:
    """The lesson's GIFs and snippets: what a withdrawal takes down."""
    remove_stale_gifs(folder, keep=None)
    for name in (SNIPPET_HTML, SNIPPET_TEXT):
        (folder / name).unlink(missing_ok=True)


def has_published_files(folder: Path) -> bool:
    return any(folder.glob("*.gif")) or any((folder / name).exists() for name in (SNIPPET_HTML, SNIPPET_TEXT))


__all__ = [
    "ANALYTICS_CSV",
    "ANALYTICS_FILE",
    "LOCK_FILE",
    "REPORT_FILE",
    "RESULT_FILE",
    "SCORES_FILE",
    "SELECTION_FILE",
    "SNIPPET_HTML",
    "SNIPPET_TEXT",
    "TIMELINE_FILE",
    "delete_published_files",
    "has_published_files",
    "lesson_lock",
    "lesson_record",
    "missing_artifacts",
    "public_url",
    "read_analytics",
    "read_result",
    "read_scores",
    "read_selection",
    "remove_leftover_temp_files",
    "remove_stale_gifs",
    "write_analytics",
    "write_report",
    "write_result",
    "write_scores",
    "write_selection",
    "write_snippet",
    "write_timeline",
]
