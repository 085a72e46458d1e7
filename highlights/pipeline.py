"""Orchestration: runs the stages for each lesson of a manifest and keeps what they produce.

The stages themselves are pure functions in their own modules; this module only decides what
to run, in which folder, and what to reuse. For lesson ``L`` everything goes to ``OUT/L/``::

    timeline.json   when each person was online, the lesson's bounds     (timeline stage)
    scores.csv      one row per face per sampled frame                    (scores stage)
    selection.json  the chosen frames, GIF order                          (selection stage)
    <token>.gif     the GIF, under a name nobody can guess                (gif stage)
    snippet.html / snippet.txt  the email snippet                         (snippet stage)
    analytics.json / analytics.csv  smiles and presence over the lesson   (analytics stage)
    report.html     the per-lesson report for people                      (report stage)
    stages.json     each finished stage's fingerprint and files
    result.json     written last: the lesson's outcome (highlights.results)

Every file is written atomically. A stage's fingerprint hashes its inputs (the manifest rows and
the recordings' sizes and mtimes, the lesson metadata, the code version, the model versions and
the settings that stage and the ones before it use); a stage whose fingerprint matches the one
in ``stages.json`` and whose files are all there is not run again. So a rerun after a crash
resumes at the first unfinished stage, and a lesson whose ``result.json`` carries the current
overall fingerprint is skipped altogether (unless ``force``).

From Python::

    from highlights.config import Settings
    from highlights.pipeline import run_manifest

    results = run_manifest("manifest.csv", Settings(out_dir=Path("out")))
    for result in results:
        print(result.lesson_id, result.status, result.gif_path)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

import highlights
from highlights.analytics import lesson_analytics, write_analytics
from highlights.config import Settings
from highlights.email import render_snippet
from highlights.frames import frames_at_points, prefetch, read_frame_at
from highlights.gif import GifFrame, build_gif, public_gif_name
from highlights.io import atomic_path, write_json_atomic, write_text_atomic
from highlights.recordings import ROLES, LessonInput, Manifest, is_valid_lesson_id, read_manifest
from highlights.report import render_report
from highlights.results import (
    LessonResult,
    read_result,
    utc_now_iso,
    write_result,
)
from highlights.faces.scoring import empty_scores
from highlights.selection import Pick, Selection, SelectionStats, select_highlights
from highlights.store import ResultStore
from highlights.timeline import LessonTimeline, plan_lesson
from highlights.tracks import TRACK_COLUMNS, assign_tracks

log = logging.getLogger(__name__)

STAGES_FILE = "stages.json"
TIMELINE_FILE = "timeline.json"
SCORES_FILE = "scores.csv"
SELECTION_FILE = "selection.json"
SNIPPET_HTML = "snippet.html"
SNIPPET_TEXT = "snippet.txt"
REPORT_FILE = "report.html"
ANALYTICS_FILE = "analytics.json"
LOCK_FILE = ".lock"
KEPT_FRAMES = 64
"""Frames kept from scoring for the GIF stage (the best-smiling child frames; see
:class:`highlights.faces.scoring.KeptFrames`): 64 x 0.9 MB at 640x480, whatever the lesson's length."""


# --------------------------------------------------------------------------- progress


class Progress:
    """Callbacks the pipeline makes while it works; the default does nothing.

    The CLI passes one that draws a progress bar; a caller may pass its own.
    """

    def batch_started(self, total: int) -> None: ...

    def lesson_started(self, lesson_id: str, index: int, total: int) -> None: ...

    def stage(self, lesson_id: str, stage: str) -> None: ...

    def frames(self, lesson_id: str, done: int, total: int | None) -> None: ...

    def lesson_finished(self, result: LessonResult) -> None: ...


# --------------------------------------------------------------------------- fingerprints


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def digest(*parts: Any) -> str:
    """sha256 of the canonical JSON of ``parts``."""
    text = json.dumps(_jsonable(parts), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Version plus a hash of the package's source files and the templates: any change to the
    code or a template redoes lessons."""
    from highlights.email import TEMPLATES_DIR

    sha = hashlib.sha256(highlights.__version__.encode())
    for root in (Path(highlights.__file__).resolve().parent, TEMPLATES_DIR):
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".html", ".txt", ".j2", ".jinja", ".css") and "__pycache__" not in path.parts:
                sha.update(f"{root.name}/{path.relative_to(root)}".encode())
                sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def input_fingerprint(lesson: LessonInput) -> dict[str, Any]:
    """The lesson's manifest rows and the identity (size, mtime) of each recording file."""
    recordings = []
    for recording in sorted(lesson.recordings, key=lambda r: (r.role, str(r.path), str(r.started_at))):
        path = Path(recording.path)
        try:
            stat = path.stat()
            identity: Any = [stat.st_size, stat.st_mtime_ns]
        except OSError:
            identity = None
        recordings.append(
            [recording.role, str(path), _jsonable(recording.started_at), _jsonable(recording.ended_at), identity]
        )
    return {"lesson_id": lesson.lesson_id, "recordings": recordings}


@dataclass(frozen=True)
class StageKeys:
    """Each stage's fingerprint; a later stage's key includes the earlier ones."""

    timeline: str
    scores: str
    selection: str
    gif: str
    snippet: str
    analytics: str
    report: str
    overall: str


def stage_keys(lesson: LessonInput, settings: Settings, versions: dict[str, Any]) -> StageKeys:
    stage = settings.stage_settings()
    code = {"highlights": highlights.__version__, "code": code_fingerprint()}
    models = {k: v for k, v in versions.items() if k not in code}
    timeline = digest("timeline", input_fingerprint(lesson), code, stage["timeline"])
    # The scores stage also links the faces into tracks (settings.selection.tracks).
    scores = digest("scores", timeline, models, stage["scores"], stage["selection"].get("tracks"))
    selection = digest("selection", scores, stage["selection"])
    gif = digest("gif", selection, stage["gif"])
    # The lesson's metadata (names, subject) is hashed, never stored, in the fingerprint.
    snippet = digest("snippet", gif, stage["email"], _jsonable(lesson.info))
    analytics = digest("analytics", scores, stage["analytics"], stage["selection"])
    report = digest("report", snippet, analytics)
    return StageKeys(timeline, scores, selection, gif, snippet, analytics, report, digest(report))


def _gif_name(record: Any) -> str | None:
    """The GIF file name in a ``stages.json`` gif record, if it is a plain ``*.gif`` name."""
    name = record.get("gif") if isinstance(record, dict) else None
    return name if isinstance(name, str) and name.endswith(".gif") and "/" not in name else None


class StageState:
    """``stages.json``: the fingerprint and files of each finished stage of one lesson."""

    def __init__(self, folder: Path, force: bool = False) -> None:
        self.path = folder / STAGES_FILE
        self.folder = folder
        try:
            recorded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = {}
        recorded = recorded if isinstance(recorded, dict) else {}
        self.data: dict[str, Any] = {} if force else recorded
        self.previous_gif = _gif_name(recorded.get("gif"))
        """The GIF name an earlier run gave this lesson (even after a failure or with ``force``):
        a rebuilt GIF replaces the file a sent email already links to."""

    def done(self, stage: str, key: str) -> dict[str, Any] | None:
        """The stage's record if it finished with fingerprint ``key`` and its files exist."""
        record = self.data.get(stage)
        if not record or record.get("key") != key:
            return None
        if not all((self.folder / name).is_file() for name in record.get("files", [])):
            return None
        return record

    def record(self, stage: str, key: str, files: Sequence[str], **extra: Any) -> None:
        self.data[stage] = {"key": key, "files": list(files), "finished_at": utc_now_iso(), **extra}
        write_json_atomic(self.path, self.data)


# --------------------------------------------------------------------------- artifacts


def timeline_to_dict(timeline: LessonTimeline) -> dict[str, Any]:
    return _jsonable(timeline)


def write_scores(scores: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        scores.to_csv(tmp, index=False)


def read_scores(path: Path) -> pd.DataFrame:
    """``scores.csv`` back as the scores stage made it (same columns and dtypes).

    A file written before face tracks (no ``track`` column) gets its tracks linked now, so
    every later stage sees the same columns."""
    from highlights.faces.scoring import SCORE_COLUMNS, SCORE_DTYPES

    text_columns = [c for c, d in SCORE_DTYPES.items() if d == "str"]
    scores = pd.read_csv(path, dtype={c: "string" for c in text_columns}, keep_default_na=True)
    for column in text_columns:
        scores[column] = scores[column].fillna("").astype(str)
    scores["is_child"] = scores["is_child"].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))
    tracked = scores.astype(SCORE_DTYPES)
    if "track" not in tracked.columns:
        return assign_tracks(tracked[SCORE_COLUMNS])
    tracked["track"] = tracked["track"].fillna(-1).astype("int64")
    tracked["in_frame"] = tracked["in_frame"].astype(float) if "in_frame" in tracked.columns else float("nan")
    return tracked[[*SCORE_COLUMNS, *TRACK_COLUMNS]]


# --------------------------------------------------------------------------- errors


class LessonFailed(Exception):
    """A stage failed; ``str()`` names the lesson, the stage and, where known, the file and row."""


def describe_error(lesson: LessonInput, stage: str, error: BaseException) -> str:
    """One line for the result and the log: lesson, stage, file and manifest row, the error.

    Holds file names and row numbers, never the lesson's metadata (student names)."""
    recording = lesson.recording_of(error)
    where = f" ({recording.role} recording, {recording.source})" if recording else ""  # file and row, no folders
    message = str(error) or type(error).__name__
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
    versions.update(_jsonable(getattr(scorer, "versions", {}) or {}))
    versions.setdefault("detector", {"name": "mtcnn", **_jsonable(settings.detection)})
    return versions


# --------------------------------------------------------------------------- one lesson


@dataclass
class _Context:
    lesson: LessonInput
    settings: Settings
    folder: Path
    keys: StageKeys
    state: StageState
    versions: dict[str, Any]
    progress: Progress
    started_at: str = field(default_factory=utc_now_iso)
    published: bool = False
    """The lesson had an ``ok`` highlight before this run (see :func:`_keep_published`)."""


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

    if not settings.force:
        previous = read_result(folder)
        if previous is not None and previous.status == "withdrawn":
            # A deliberate withdrawal sticks: only a run with force makes the highlight again.
            previous.skipped = True
            log.info("lesson %s: withdrawn by hand, skipped (rerun with --force to make it again)", lesson.lesson_id)
            if store is not None:
                try:
                    _sync_store(store, previous)
                except Exception as error:  # noqa: BLE001
                    return failed_result(lesson.lesson_id, _database_problem(lesson.lesson_id, store, error),
                                   versions, started, fingerprint=keys.overall, folder=folder)
            return previous
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
    # One line: drivers' messages span several (SQL, background links); the summary table and
    # logs show one line per lesson.
    message = " ".join(str(error).split())
    return f"lesson {lesson_id}: database {store.url}: {type(error).__name__}: {message}"


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
    from sqlalchemy.engine import make_url

    try:
        url = make_url(settings.database_url)
    except Exception:  # noqa: BLE001 - a bad URL is reported when the store opens
        return None
    if url.get_backend_name() != "sqlite" or not url.database or url.database.startswith("file:"):
        return None
    database = Path(url.database).expanduser()
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


def _input_doubt(lesson: LessonInput) -> str | None:
    """Why this lesson's input may be incomplete rather than a real change: a role without any
    recording (its rows missing, or unreadable), or rows of the input files that belong to no
    valid lesson (a broken JSON line, an invalid id) and may be this one's. None when it looks whole."""
    missing = [role for role in ROLES if not lesson.by_role(role)]
    if missing:
        return f"the manifest has no {' or '.join(missing)} recording for it"
    if lesson.unattributed_rows:
        return f"{lesson.unattributed_rows} row(s) of the input files belong to no valid lesson and may be this one's"
    return None


def _keep_published(c: _Context, outcome: str) -> LessonResult | None:
    """A ``failed`` result that keeps the lesson's published highlight (GIF, ``ok`` row and
    ``result.json``), when this run would withdraw it (``outcome``) on input that looks incomplete.
    A bad row spoils its own lesson's rerun only; withdrawing takes ``highlights withdraw``."""
    doubt = _input_doubt(c.lesson) if c.published else None
    if doubt is None:
        return None
    lesson_id = c.lesson.lesson_id
    reason = (f"lesson {lesson_id}: this run found {outcome}, but {doubt}: its published highlight is kept "
              f"(fix the input and rerun, or withdraw it with `highlights withdraw {lesson_id}`)")
    log.warning("%s", reason)
    return LessonResult(lesson_id, "failed", reason=reason, versions=c.versions, fingerprint=c.keys.overall,
                        folder=c.folder, warnings=[str(w) for w in c.lesson.warnings])


def _missing_artifacts(result: LessonResult) -> list[str]:
    """The files a finished result names that are no longer in its folder (deleted by hand, a
    sync, a cleanup): such a lesson is not "done" and must be redone, not skipped."""
    if result.folder is None:
        return []
    names = [result.gif, result.snippet, result.snippet_text, result.report, result.scores, result.analytics]
    return [name for name in names if name and not (result.folder / name).is_file()]


def _run_locked(lesson, settings, scorer, store, progress, folder, versions, keys, started) -> LessonResult:
    remove_leftover_temp_files(folder)
    context = _Context(lesson, settings, folder, keys, StageState(folder, settings.force), versions, progress,
                       published=_published(lesson.lesson_id, folder, store))
    try:
        result = _run_stages(context, scorer)
    except Exception as error:  # noqa: BLE001 - one lesson's failure must not stop the batch
        stage = getattr(error, "stage", "pipeline")
        cause = error.__cause__ if isinstance(error, _StageError) and error.__cause__ else error
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
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+") as handle:
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
    :func:`highlights.io.atomic_path`) that a crashed or killed run left in the lesson's folder:
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


class _StageError(Exception):
    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


class _stage:
    """``with _stage(context, "scores"):`` tags an error with the stage it happened in."""

    def __init__(self, context: _Context, name: str) -> None:
        self.context, self.name = context, name

    def __enter__(self) -> None:
        self.context.progress.stage(self.context.lesson.lesson_id, self.name)
        log.info("lesson %s: %s", self.context.lesson.lesson_id, self.name)

    def __exit__(self, kind, error, traceback) -> bool:
        if error is not None and isinstance(error, Exception) and not isinstance(error, _StageError):
            raise _StageError(self.name) from error
        return False


def _run_stages(c: _Context, scorer: Any) -> LessonResult:
    lesson, settings, folder, keys = c.lesson, c.settings, c.folder, c.keys
    warnings = [str(w) for w in lesson.warnings]
    for warning in warnings:
        log.warning("lesson %s: %s", lesson.lesson_id, warning)
    base = dict(lesson_id=lesson.lesson_id, versions=c.versions, fingerprint=keys.overall, folder=folder,
                warnings=warnings)

    if lesson.problems:
        reason = "; ".join(str(problem) for problem in lesson.problems)
        return LessonResult(status="failed", reason=f"lesson {lesson.lesson_id}: {reason}", **base)

    # Timeline: cheap, recomputed every time (the same plan `highlights timeline` prints);
    # written for people and later stages' records.
    with _stage(c, "timeline"):
        plan = plan_lesson(lesson, gap_tolerance_s=settings.gap_tolerance_s, fps=settings.fps)
        if plan.timeline is None:  # failed: a recording cannot be read
            raise LessonFailed(plan.reason or f"lesson {lesson.lesson_id}: a recording cannot be read")
        resolved, timeline = plan.lesson, plan.timeline
        if not c.state.done("timeline", keys.timeline):
            write_json_atomic(folder / TIMELINE_FILE, timeline_to_dict(timeline))
            c.state.record("timeline", keys.timeline, [TIMELINE_FILE])
    base.update(lesson=timeline.bounds(), disconnects=timeline.disconnect_counts())
    if timeline.status != "ok":
        kept = _keep_published(c, f"no lesson ({timeline.reason or 'the cameras were never on together'})")
        if kept is not None:
            return kept
        # No lesson, but the report still shows both cameras: the data team sees why.
        result = LessonResult(status="no_lesson", reason=timeline.reason or "no lesson took place", **base)
        no_selection = Selection("no_highlight", result.reason, [], SelectionStats())
        remove_stale_gifs(folder, keep=None)  # an earlier run's GIF no longer stands
        _write_report(c, result, timeline, empty_scores(), no_selection)
        return result

    kept_frames = _kept_frames(settings)  # the likely GIF frames, so the GIF stage need not decode them again
    with _stage(c, "scores"):
        if c.state.done("scores", keys.scores):
            scores = read_scores(folder / SCORES_FILE)
        else:
            # The plan's points (computed once), decoded on a thread of their own while scoring.
            frames = prefetch(frames_at_points(plan.points))

            scored = 0

            def on_frames(count: int) -> None:
                nonlocal scored
                scored += count
                c.progress.frames(lesson.lesson_id, scored, None)

            sizes: dict[int, tuple[int, int]] = {}

            def remember_sizes(stream: Iterable[Any]) -> Iterator[Any]:
                for frame in stream:  # the frame's size, for "is the face fully in the picture"
                    sizes[int(frame.ref.index)] = tuple(frame.image.shape[:2])
                    yield frame

            scores = _score(remember_sizes(frames), scorer, settings, on_frames, kept_frames)
            # Face tracks: a pure step after scoring (highlights.tracks), so the scorer stays as it is.
            scores = assign_tracks(scores, sizes, settings.selection.tracks)
            write_scores(scores, folder / SCORES_FILE)
            c.state.record("scores", keys.scores, [SCORES_FILE], frames=int(scores["frame"].nunique()) if len(scores) else 0)
            scores = read_scores(folder / SCORES_FILE)  # later stages see exactly what a resume sees
    base["scores"] = SCORES_FILE

    with _stage(c, "analytics"):
        if not c.state.done("analytics", keys.analytics):
            analytics = lesson_analytics(
                lesson.lesson_id, scores, timeline,
                bucket_s=settings.analytics_bucket_s, smile_threshold=settings.selection.min_smile,
                options=settings.analytics, tracks=settings.selection.tracks,
            )
            write_analytics(analytics, folder)
            c.state.record("analytics", keys.analytics, [ANALYTICS_FILE, "analytics.csv"])
    base["analytics"] = ANALYTICS_FILE

    with _stage(c, "selection"):
        if c.state.done("selection", keys.selection):
            selection = Selection.from_dict(json.loads((folder / SELECTION_FILE).read_text(encoding="utf-8")))
        else:
            selection = select_highlights(scores, settings.selection)
            write_json_atomic(folder / SELECTION_FILE, selection.to_dict())
            c.state.record("selection", keys.selection, [SELECTION_FILE])
    base["frames"] = [pick.highlight_frame() for pick in selection.picks]

    gif_info = None
    if selection.status == "ok":
        with _stage(c, "gif"):
            record = c.state.done("gif", keys.gif)
            if record is None:
                gif_name = c.state.previous_gif or public_gif_name(lesson.lesson_id)
                images = [GifFrame(_pick_image(lesson, resolved, pick, kept_frames), tuple(pick.box)) for pick in selection.picks]
                gif_info = build_gif(images, folder / gif_name, settings.gif)
                record_info = _jsonable(gif_info)
                c.state.record("gif", keys.gif, [gif_name], gif=gif_name, info=record_info)
                record = c.state.done("gif", keys.gif)
            gif_name = record["gif"]
            gif_info = record.get("info")
        gif_url = public_url(settings, lesson.lesson_id, gif_name, folder)
        base.update(gif=gif_name, gif_url=gif_url, gif_bytes=(folder / gif_name).stat().st_size)

        with _stage(c, "snippet"):
            if not c.state.done("snippet", keys.snippet):
                snippet = render_snippet(lesson.info, gif_url, _gif_info_value(gif_info), settings.email)
                write_text_atomic(folder / SNIPPET_HTML, snippet.html)
                write_text_atomic(folder / SNIPPET_TEXT, snippet.text)
                c.state.record("snippet", keys.snippet, [SNIPPET_HTML, SNIPPET_TEXT])
        base.update(snippet=SNIPPET_HTML, snippet_text=SNIPPET_TEXT)
        status, reason = "ok", ""
    else:
        status, reason = "no_highlight", selection.reason or "no highlight"
        kept = _keep_published(c, f"no highlight ({reason})")
        if kept is not None:
            return kept
    remove_stale_gifs(folder, keep=base.get("gif"))

    result = LessonResult(status=status, reason=reason, **base)
    _write_report(c, result, timeline, scores, selection)
    return result


def _write_report(c: _Context, result: LessonResult, timeline: LessonTimeline, scores: pd.DataFrame,
                  selection: Selection) -> None:
    """The per-lesson report for people (``report.html``); sets ``result.report``."""
    with _stage(c, "report"):
        if not c.state.done("report", c.keys.report):
            html = render_report(
                result, timeline, scores, selection, c.lesson.info,
                smile_threshold=c.settings.selection.min_smile, templates_dir=c.settings.email.templates_dir,
                analytics=c.settings.analytics, track_options=c.settings.selection.tracks,
            )
            write_text_atomic(c.folder / REPORT_FILE, html)
            c.state.record("report", c.keys.report, [REPORT_FILE])
    result.report = REPORT_FILE


def _score(frames: Iterable[Any], scorer: Any, settings: Settings, on_frames: Callable[..., None],
           kept: Any = None) -> pd.DataFrame:
    from highlights.faces.scoring import score_frames

    return score_frames(frames, scorer, batch_size=settings.score_batch_size, progress=on_frames, keep=kept)


def _kept_frames(settings: Settings) -> Any:
    from highlights.faces.scoring import KeptFrames

    return KeptFrames(limit=KEPT_FRAMES)


def _pick_image(lesson: LessonInput, resolved: LessonInput, pick: Pick, kept: Any) -> Any:
    """The full frame of a pick: kept from scoring where it was, else read from its recording."""
    image = kept.get(pick.ref.index) if kept is not None else None
    return image if image is not None else _read_pick(lesson, resolved, pick)


def _read_pick(lesson: LessonInput, resolved: LessonInput, pick: Pick) -> Any:
    """The full frame a pick was taken from, read again from its recording."""
    ref = pick.ref
    for recording in resolved.recordings:
        if str(ref.source) in (str(recording.path), Path(recording.path).name):
            return read_frame_at(recording.path, ref.offset_s)
    return read_frame_at(ref.source, ref.offset_s)


def _gif_info_value(info: Any) -> Any:
    from highlights.gif import GifInfo

    if isinstance(info, dict):
        known = {k: v for k, v in info.items() if k in GifInfo.__dataclass_fields__}
        if "path" in known:
            known["path"] = Path(known["path"])
        return GifInfo(**known)
    return info


def public_url(settings: Settings, lesson_id: str, gif_name: str, folder: Path) -> str:
    """Where the email's readers fetch the GIF: ``<public_base_url>/<lesson_id>/<gif>``.

    Without a public base URL (a local run) it is the file's own ``file://`` URL.
    """
    base = getattr(settings.email, "public_base_url", None)
    if base:
        return f"{str(base).rstrip('/')}/{lesson_id}/{gif_name}"
    return (folder / gif_name).resolve().as_uri()


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
    wanted = list(dict.fromkeys(lesson_ids)) if lesson_ids else list(manifest.lessons)
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
    finds nothing). Later runs skip the lesson until one runs it with ``force``, which makes a
    new GIF under a new name. The scores, analytics and report stay (they are private).

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
                remove_stale_gifs(folder, keep=None)
                for name in (SNIPPET_HTML, SNIPPET_TEXT):
                    (folder / name).unlink(missing_ok=True)
                state = StageState(folder)
                for stage in ("gif", "snippet"):  # a forced rerun draws a new GIF name
                    state.data.pop(stage, None)
                write_json_atomic(state.path, state.data)
                store.save(result)
                result.folder = folder
                write_result(result, folder)
        else:
            store.save(result)
        log.warning("lesson %s: highlight withdrawn by hand", lesson_id)
        return result
    finally:
        if own_store:
            store.dispose()


__all__ = [
    "Progress",
    "code_fingerprint",
    "describe_error",
    "load_scorer",
    "public_url",
    "run_lesson",
    "run_manifest",
    "stage_keys",
    "withdraw_lesson",
]
