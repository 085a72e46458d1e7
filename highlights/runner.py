"""The stages of one lesson, declared in the order they run, and the runner that does each one or
reuses what an earlier run of the lesson left::

    timeline -> scores -> analytics -> selection -> gif -> snippet -> report

Each stage is a :class:`Stage`: its name (also its fingerprint's field in
:class:`~highlights.stages.StageKeys` and its entry in ``stages.json``), the files it writes
(:mod:`highlights.artifacts`), how to run it and how to load its value back on a resume.
:func:`produce` does the same thing for every stage: when ``stages.json`` says its files are
current it loads them, else it runs the stage (which writes its files atomically) and records
it; progress, the log line and the stage an error is blamed on are handled there too.

:func:`run_stages` is the flow of one lesson: the stages above, plus the outcomes that end a
lesson early (no lesson took place, no highlight found) and the rule that bad input never
withdraws a published GIF (:func:`_keep_published`). The stages' computations are pure
functions in their own modules; the pipeline (:mod:`highlights.pipeline`) decides which lessons
run, holds the lesson's lock and saves its result.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from highlights.analytics import lesson_analytics, write_analytics
from highlights.artifacts import (
    ANALYTICS_CSV,
    ANALYTICS_FILE,
    REPORT_FILE,
    SCORES_FILE,
    SELECTION_FILE,
    SNIPPET_HTML,
    SNIPPET_TEXT,
    TIMELINE_FILE,
    public_url,
    read_scores,
    remove_stale_gifs,
    timeline_to_dict,
    write_scores,
)
from highlights.config import Settings
from highlights.email import render_snippet
from highlights.faces.scoring import empty_scores
from highlights.frames import frames_at_points, prefetch, read_frame_at
from highlights.gif import GifFrame, build_gif, public_gif_name
from highlights.io import jsonable, write_json_atomic, write_text_atomic
from highlights.recordings import ROLES, LessonInput, recording_of_frame
from highlights.report import render_report
from highlights.results import LessonResult
from highlights.selection import Pick, Selection, SelectionStats, select_highlights
from highlights.stages import StageKeys, StageState
from highlights.timeline import LessonPlan, LessonTimeline, plan_lesson
from highlights.tracks import assign_tracks

log = logging.getLogger(__name__)

KEPT_FRAMES = 64
"""Frames kept from scoring for the GIF stage (the best-smiling child frames; see
:class:`highlights.faces.scoring.KeptFrames`): 64 x 0.9 MB at 640x480, whatever the lesson's length."""


class Progress:
    """Callbacks the pipeline makes while it works; the default does nothing.

    The CLI passes one that draws a progress bar; a caller may pass its own.
    """

    def batch_started(self, total: int) -> None: ...

    def lesson_started(self, lesson_id: str, index: int, total: int) -> None: ...

    def stage(self, lesson_id: str, stage: str) -> None: ...

    def frames(self, lesson_id: str, done: int, total: int | None) -> None: ...

    def lesson_finished(self, result: LessonResult) -> None: ...


class LessonFailed(Exception):
    """A stage failed; ``str()`` names the lesson, the stage and, where known, the file and row."""


class StageError(Exception):
    """An error raised inside a stage, tagged with the stage's name (the error is its cause)."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


@dataclass
class LessonRun:
    """One lesson being run: what every stage may read."""

    lesson: LessonInput
    settings: Settings
    folder: Path
    keys: StageKeys
    state: StageState
    versions: dict[str, Any]
    progress: Progress
    scorer: Any
    published: bool = False
    """The lesson had an ``ok`` highlight before this run (see :func:`_keep_published`)."""
    sampled_frames: int | None = None
    """Sampled seconds that decoded in this run (set after the scores stage)."""


# --------------------------------------------------------------------------- the runner


@dataclass(frozen=True)
class Stage:
    """One stage as the runner sees it; see the table :data:`STAGES`."""

    name: str
    """The stage's entry in ``stages.json`` and its fingerprint's field in :class:`StageKeys`."""
    files: tuple[str, ...] | Callable[[Any], Sequence[str]]
    """The files it writes in the lesson's folder; for the GIF, whose name is drawn when it is
    first made, a function of the stage's value."""
    run: Callable[..., Any]
    """``run(lesson_run, *inputs)``: computes the stage, writes its files atomically and returns
    its value."""
    load: Callable[[LessonRun, dict[str, Any]], Any] | None = None
    """``load(lesson_run, record)``: the value back from the files (or the ``stages.json``
    record) of an earlier run. None for a stage whose value no later stage reads."""
    notes: Callable[[LessonRun, Any], dict[str, Any]] | None = None
    """``notes(lesson_run, value)``: fields of its ``stages.json`` record besides the fingerprint
    and files."""


def produce(c: LessonRun, stage: Stage, *inputs: Any) -> Any:
    """The stage's value: loaded when ``stages.json`` says its files are current, else computed,
    written and recorded. An error inside is raised as a :class:`StageError` naming the stage."""
    key = getattr(c.keys, stage.name)
    with _stage(c, stage.name):
        record = c.state.done(stage.name, key)
        if record is not None:
            return stage.load(c, record) if stage.load is not None else None
        value = stage.run(c, *inputs)
        files = stage.files(value) if callable(stage.files) else stage.files
        c.state.record(stage.name, key, files, **(stage.notes(c, value) if stage.notes is not None else {}))
        return value


class _stage:
    """``with _stage(lesson_run, "scores"):`` reports the stage (progress, log) and tags an error
    with the stage it happened in."""

    def __init__(self, context: LessonRun, name: str) -> None:
        self.context, self.name = context, name

    def __enter__(self) -> None:
        self.context.progress.stage(self.context.lesson.lesson_id, self.name)
        log.info("lesson %s: %s", self.context.lesson.lesson_id, self.name)

    def __exit__(self, kind, error, traceback) -> bool:
        if error is not None and isinstance(error, Exception) and not isinstance(error, StageError):
            raise StageError(self.name) from error
        return False


# --------------------------------------------------------------------------- the stages


def _plan(c: LessonRun, record: dict[str, Any] | None = None) -> LessonPlan:
    """The lesson's plan: timeline and sample points. Cheap, so made again on a resume (the same
    plan `highlights timeline` prints); ``timeline.json`` is written for people and the records."""
    plan = plan_lesson(c.lesson, gap_tolerance_s=c.settings.gap_tolerance_s, fps=c.settings.fps)
    if plan.timeline is None:  # failed: a recording cannot be read
        raise LessonFailed(plan.reason or f"lesson {c.lesson.lesson_id}: a recording cannot be read")
    return plan


def _write_timeline(c: LessonRun) -> LessonPlan:
    plan = _plan(c)
    write_json_atomic(c.folder / TIMELINE_FILE, timeline_to_dict(plan.timeline))
    return plan


def _score_lesson(c: LessonRun, plan: LessonPlan, kept_frames: Any) -> pd.DataFrame:
    # The plan's points (computed once), decoded on a thread of their own while scoring; closed
    # on the way out whatever happens (stops the decoder, restores the GIL switch interval).
    with contextlib.closing(prefetch(frames_at_points(plan.points))) as frames:
        return _score_stream(c, frames, kept_frames)


def _score_stream(c: LessonRun, frames: Iterator[Any], kept_frames: Any) -> pd.DataFrame:
    scored = 0

    def on_frames(count: int) -> None:
        nonlocal scored
        scored += count
        c.progress.frames(c.lesson.lesson_id, scored, None)

    sizes: dict[int, tuple[int, int]] = {}

    def remember_sizes(stream: Iterable[Any]) -> Iterator[Any]:
        for frame in stream:  # the frame's size, for "is the face fully in the picture"
            sizes[int(frame.ref.index)] = tuple(frame.image.shape[:2])
            yield frame

    scores = _score(remember_sizes(frames), c.scorer, c.settings, on_frames, kept_frames)
    # Face tracks: a pure step after scoring (highlights.tracks), so the scorer stays as it is.
    scores = assign_tracks(scores, sizes, c.settings.selection.tracks)
    write_scores(scores, c.folder / SCORES_FILE)
    return read_scores(c.folder / SCORES_FILE)  # later stages see exactly what a resume sees


def _read_scores(c: LessonRun, record: dict[str, Any]) -> pd.DataFrame:
    return read_scores(c.folder / SCORES_FILE)


def _sampled_count(scores: pd.DataFrame) -> int:
    """Sampled seconds the scores table covers (every decoded one has a row, faces or not)."""
    return int(scores["frame"].nunique()) if len(scores) else 0


def _frame_count(c: LessonRun, scores: pd.DataFrame) -> dict[str, Any]:
    return {"frames": _sampled_count(scores)}


def _earlier_selection(c: LessonRun) -> dict[str, Any]:
    """What the run that made the current selection recorded with it (empty if none)."""
    earlier = c.state.earlier.get("selection")
    return earlier if isinstance(earlier, dict) else {}


def _whose_face(c: LessonRun, selection: Selection) -> dict[str, Any]:
    """Whose face the selection looked for, and whether the lessons file said so: a later rerun
    without the lesson's row (no ``--lessons``) must not quietly replace a highlight made with it
    (see :func:`_input_doubt`)."""
    return {"student_age_group": c.settings.selection.student_age_group,
            "lessons_row": c.lesson.info.source is not None,
            "sampled_frames": c.sampled_frames}  # fmt: skip


def _analyse(c: LessonRun, scores: pd.DataFrame, timeline: LessonTimeline) -> None:
    analytics = lesson_analytics(
        c.lesson.lesson_id, scores, timeline,
        bucket_s=c.settings.analytics_bucket_s, smile_threshold=c.settings.selection.min_smile,
        options=c.settings.analytics, tracks=c.settings.selection.tracks,
    )
    write_analytics(analytics, c.folder)


def _select(c: LessonRun, scores: pd.DataFrame) -> Selection:
    selection = select_highlights(scores, c.settings.selection)
    write_json_atomic(c.folder / SELECTION_FILE, selection.to_dict())
    return selection


def _read_selection(c: LessonRun, record: dict[str, Any]) -> Selection:
    return Selection.from_dict(json.loads((c.folder / SELECTION_FILE).read_text(encoding="utf-8")))


@dataclass(frozen=True)
class MadeGif:
    """The GIF stage's value, as ``stages.json`` records it: the file's name and what
    :func:`highlights.gif.build_gif` reported (as JSON)."""

    name: str
    info: dict[str, Any] | None


def _make_gif(c: LessonRun, selection: Selection, resolved: LessonInput, kept_frames: Any) -> MadeGif:
    # The name an earlier run drew, so a rebuilt GIF replaces the file sent emails link to.
    gif_name = c.state.previous_gif or public_gif_name(c.lesson.lesson_id)
    images = [GifFrame(_pick_image(resolved, pick, kept_frames), tuple(pick.box)) for pick in selection.picks]
    gif_info = build_gif(images, c.folder / gif_name, c.settings.gif)
    return MadeGif(gif_name, jsonable(gif_info))


def _recorded_gif(c: LessonRun, record: dict[str, Any]) -> MadeGif:
    return MadeGif(record["gif"], record.get("info"))


def _write_snippet(c: LessonRun, gif_url: str, gif_info: Any) -> None:
    snippet = render_snippet(c.lesson.info, gif_url, _gif_info_value(gif_info), c.settings.email,
                             student_age_group=c.settings.selection.student_age_group)
    write_text_atomic(c.folder / SNIPPET_HTML, snippet.html)
    write_text_atomic(c.folder / SNIPPET_TEXT, snippet.text)


def _write_report(c: LessonRun, result: LessonResult, timeline: LessonTimeline, scores: pd.DataFrame,
                  selection: Selection) -> None:
    html = render_report(
        result, timeline, scores, selection, c.lesson.info,
        smile_threshold=c.settings.selection.min_smile, templates_dir=c.settings.email.templates_dir,
        analytics=c.settings.analytics, track_options=c.settings.selection.tracks,
    )
    write_text_atomic(c.folder / REPORT_FILE, html)


TIMELINE = Stage("timeline", (TIMELINE_FILE,), run=_write_timeline, load=_plan)
SCORES = Stage("scores", (SCORES_FILE,), run=_score_lesson, load=_read_scores, notes=_frame_count)
ANALYTICS = Stage("analytics", (ANALYTICS_FILE, ANALYTICS_CSV), run=_analyse)
SELECTION = Stage("selection", (SELECTION_FILE,), run=_select, load=_read_selection, notes=_whose_face)
GIF = Stage("gif", lambda gif: (gif.name,), run=_make_gif, load=_recorded_gif,
            notes=lambda c, gif: {"gif": gif.name, "info": gif.info})
SNIPPET = Stage("snippet", (SNIPPET_HTML, SNIPPET_TEXT), run=_write_snippet)
REPORT = Stage("report", (REPORT_FILE,), run=_write_report)

STAGES = (TIMELINE, SCORES, ANALYTICS, SELECTION, GIF, SNIPPET, REPORT)
"""Every stage, in the order :func:`run_stages` runs them (GIF and snippet only for a lesson with
a highlight; after no lesson, only the report)."""


# --------------------------------------------------------------------------- one lesson


def run_stages(c: LessonRun) -> LessonResult:
    """Every stage of the lesson, each one loaded where an earlier run left it current; the
    lesson's result (``ok``, ``no_highlight``, ``no_lesson``, or ``failed`` for bad input or a
    kept highlight). Raises :class:`StageError` when a stage fails."""
    lesson, settings, folder, keys = c.lesson, c.settings, c.folder, c.keys
    warnings = [str(w) for w in lesson.warnings]
    for warning in warnings:
        log.warning("lesson %s: %s", lesson.lesson_id, warning)
    base = dict(lesson_id=lesson.lesson_id, versions=c.versions, fingerprint=keys.overall, folder=folder,
                warnings=warnings)

    if lesson.problems:
        reason = "; ".join(str(problem) for problem in lesson.problems)
        return LessonResult(status="failed", reason=f"lesson {lesson.lesson_id}: {reason}", **base)
    kept = _keep_published(c, _input_doubt(c), warnings)
    if kept is not None:
        return kept

    plan = produce(c, TIMELINE)
    resolved, timeline = plan.lesson, plan.timeline
    for warning in map(str, resolved.warnings[len(lesson.warnings):]):  # the plan's own: nested recordings
        log.warning("lesson %s: %s", lesson.lesson_id, warning)
        warnings.append(warning)  # base's list: every result from here on carries it
    base.update(lesson=timeline.bounds(), disconnects=timeline.disconnect_counts())
    if timeline.status != "ok":
        # No lesson, but the report still shows both cameras: the data team sees why.
        result = LessonResult(status="no_lesson", reason=timeline.reason or "no lesson took place", **base)
        no_selection = Selection("no_highlight", result.reason, [], SelectionStats())
        remove_stale_gifs(folder, keep=None)  # an earlier run's GIF no longer stands
        _report(c, result, timeline, empty_scores(), no_selection)
        return result

    kept_frames = _kept_frames()  # the likely GIF frames, so the GIF stage need not decode them again
    scores = produce(c, SCORES, plan, kept_frames)
    c.sampled_frames = _sampled_count(scores)
    kept = _keep_published(c, _short_decode(c, len(plan.points)), warnings)
    if kept is not None:
        return kept
    base["scores"] = SCORES_FILE
    produce(c, ANALYTICS, scores, timeline)
    base["analytics"] = ANALYTICS_FILE
    selection = produce(c, SELECTION, scores)
    base["frames"] = [pick.highlight_frame() for pick in selection.picks]

    if selection.status == "ok":
        gif = produce(c, GIF, selection, resolved, kept_frames)
        gif_url = public_url(settings, lesson.lesson_id, gif.name, folder)
        base.update(gif=gif.name, gif_url=gif_url, gif_bytes=(folder / gif.name).stat().st_size)
        produce(c, SNIPPET, gif_url, gif.info)
        base.update(snippet=SNIPPET_HTML, snippet_text=SNIPPET_TEXT)
        status, reason = "ok", ""
    else:
        status, reason = "no_highlight", selection.reason or "no highlight"
    remove_stale_gifs(folder, keep=base.get("gif"))

    result = LessonResult(status=status, reason=reason, **base)
    _report(c, result, timeline, scores, selection)
    return result


def _report(c: LessonRun, result: LessonResult, timeline: LessonTimeline, scores: pd.DataFrame,
            selection: Selection) -> None:
    """The per-lesson report for people (``report.html``), on every path; sets ``result.report``."""
    produce(c, REPORT, result, timeline, scores, selection)
    result.report = REPORT_FILE


def _input_doubt(c: LessonRun) -> str | None:
    """Why this lesson's input may be incomplete rather than a real change: a role without any
    recording (its rows missing, or unreadable), rows of the input files that belong to no valid
    lesson (a broken JSON line, an invalid id) and may be this one's, or a lessons-file row that
    the published highlight was made with and this run lacks. None when it looks whole."""
    lesson = c.lesson
    missing = [role for role in ROLES if not lesson.by_role(role)]
    if missing:
        return f"the manifest has no {' or '.join(missing)} recording for it"
    if lesson.unattributed_rows:
        return f"{lesson.unattributed_rows} row(s) of the input files belong to no valid lesson and may be this one's"
    if _earlier_selection(c).get("lessons_row") and lesson.info.source is None:
        return "it has no row in the lessons file (no --lessons?), and its highlight was made with one"
    return None


SHORT_DECODE_TOLERANCE = 0.1
"""A rerun of a published lesson whose recordings decode to fewer sampled seconds than this
share (and 10 seconds) below what its highlight was made from is kept (:func:`_short_decode`)."""


def _short_decode(c: LessonRun, planned: int) -> str | None:
    """Why this lesson's recordings look cut short rather than changed: they decoded to notably
    fewer sampled seconds than the run that made its highlight sampled (recorded with the
    selection), or, without that record, than the plan's points (a file truncated by a failed
    copy, or still being written when the nightly run started). None when they look whole.

    Where the manifest gives every recording's end, the plan follows the manifest, so a plan
    shorter than before is the manifest's change, not a doubt; where an end comes from the file
    (no ``ended_at``; a browser's WebM states no duration either), a cut file shortens the plan
    too, and only the earlier count tells."""
    before = _earlier_selection(c).get("sampled_frames")
    if not isinstance(before, int) or before <= 0:
        reference = planned
    elif any(recording.ended_at is None for recording in c.lesson.recordings):
        reference = before
    else:
        reference = min(before, planned)
    sampled = c.sampled_frames or 0
    if reference - sampled > max(10, SHORT_DECODE_TOLERANCE * reference):
        return (f"its recordings decode to {sampled} of the {reference} sampled seconds its highlight "
                f"was made from (a file truncated, or still being written?)")
    return None


def _keep_published(c: LessonRun, doubt: str | None, warnings: list[str]) -> LessonResult | None:
    """A ``failed`` result that keeps the lesson's published highlight (GIF, ``ok`` row and
    ``result.json``) when its input looks incomplete (``doubt``: :func:`_input_doubt`, checked
    before any stage, so nothing in the lesson's folder changes; :func:`_short_decode`, checked
    after the scores stage, which leaves its own files): whatever this run would find, a bad row
    or a cut file spoils its own lesson's rerun only, and a published highlight is never replaced
    or withdrawn on such input (withdrawing takes ``highlights withdraw``). ``warnings``: the
    run's so far (the lesson's rows', then the plan's)."""
    if doubt is None or not c.published:
        return None
    lesson_id = c.lesson.lesson_id
    reason = (f"lesson {lesson_id}: {doubt}: its published highlight is kept "
              f"(fix the input and rerun, or withdraw it with `highlights withdraw {lesson_id}`)")
    log.warning("%s", reason)
    return LessonResult(lesson_id, "failed", reason=reason, versions=c.versions, fingerprint=c.keys.overall,
                        folder=c.folder, warnings=list(warnings))


# --------------------------------------------------------------------------- helpers of the stages


def _score(frames: Iterable[Any], scorer: Any, settings: Settings, on_frames: Callable[..., None],
           kept: Any = None) -> pd.DataFrame:
    from highlights.faces.scoring import score_frames

    return score_frames(frames, scorer, batch_size=settings.score_batch_size, progress=on_frames, keep=kept)


def _kept_frames() -> Any:
    from highlights.faces.scoring import KeptFrames

    return KeptFrames(limit=KEPT_FRAMES)


def _pick_image(resolved: LessonInput, pick: Pick, kept: Any) -> Any:
    """The full frame of a pick: kept from scoring where it was, else read from its recording."""
    image = kept.get(pick.ref.index) if kept is not None else None
    return image if image is not None else _read_pick(resolved, pick)


def _read_pick(resolved: LessonInput, pick: Pick) -> Any:
    """The full frame a pick was taken from, read again from its recording: the one of that file
    name that started ``offset_s`` before the frame's instant (two segments of a lesson may share
    a name in different folders; the artifacts keep only the name)."""
    ref = pick.ref
    recording = recording_of_frame(ref.source, ref.at, ref.offset_s, resolved.recordings)
    if recording is None:
        raise LessonFailed(f"the frame at {ref.t:g} s of a chosen moment cannot be placed in a student "
                           f"recording named {ref.source.name} (was the manifest changed?)")
    return read_frame_at(recording.path, ref.offset_s)


def _gif_info_value(info: Any) -> Any:
    from highlights.gif import GifInfo

    if isinstance(info, dict):
        known = {k: v for k, v in info.items() if k in GifInfo.__dataclass_fields__}
        if "path" in known:
            known["path"] = Path(known["path"])
        return GifInfo(**known)
    return info


__all__ = ["STAGES", "LessonFailed", "LessonRun", "Progress", "Stage", "StageError", "produce", "run_stages"]
