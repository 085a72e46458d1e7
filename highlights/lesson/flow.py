"""The flow of one lesson: its stages in order (:data:`highlights.lesson.graph.STAGES`), each
loaded where an earlier run left it current, and the outcomes that end a lesson early::

    input problems ──> failed
    input in doubt, highlight published ──> failed, the published highlight kept
    timeline: no lesson took place ──> no_lesson (report only)
    scores: recordings cut short, highlight published ──> failed, the published highlight kept
    selection: no highlight ──> no_highlight (no GIF, no snippet)
    otherwise ──> ok

A published highlight (an ``ok`` result or row) is never replaced or withdrawn on input that
looks incomplete: a bad row or a cut file spoils its own lesson's rerun only (withdrawing takes
``highlights withdraw``).
"""

from __future__ import annotations

import logging
from typing import Any

from highlights.core.faces import FaceTable
from highlights.core.lesson import ROLES
from highlights.core.result import LessonResult
from highlights.lesson import folder as files
from highlights.lesson.graph import (
    ANALYTICS,
    GIF,
    KEPT_FRAMES,
    REPORT,
    SCORES,
    SELECTION,
    SNIPPET,
    TIMELINE,
    LessonRun,
    gif_url,
    produce,
)
from highlights.stages.selection import Selection, SelectionStats
from highlights.storage import objects

log = logging.getLogger(__name__)

SHORT_DECODE_TOLERANCE = 0.1
"""A rerun of a published lesson whose recordings decode to fewer sampled seconds than this
share (and 10 seconds) below what its highlight was made from is kept (:func:`_short_decode`)."""


def run_stages(c: LessonRun) -> LessonResult:
    """Every stage of the lesson, each one loaded where an earlier run left it current; the
    lesson's result (``ok``, ``no_highlight``, ``no_lesson``, or ``failed`` for bad input or a
    kept highlight). Raises :class:`~highlights.lesson.graph.StageError` when a stage fails."""
    lesson, folder = c.lesson, c.folder
    warnings = [str(w) for w in lesson.warnings]
    for warning in warnings:
        log.warning("lesson %s: %s", lesson.lesson_id, warning)
    base: dict[str, Any] = dict(lesson_id=lesson.lesson_id, versions=c.versions, fingerprint=c.keys.overall,
                                folder=folder, warnings=warnings)

    if lesson.problems:
        reason = "; ".join(str(problem) for problem in lesson.problems)
        return LessonResult(status="failed", reason=f"lesson {lesson.lesson_id}: {reason}", **base)
    kept = _keep_published(c, _input_doubt(c), warnings)
    if kept is not None:
        return kept

    values: dict[str, Any] = {"recordings": lesson, "info": lesson.info, "models": c.scorer}
    plan = values["timeline"] = produce(c, TIMELINE, values)
    timeline = plan.timeline
    for warning in map(str, plan.lesson.warnings[len(lesson.warnings):]):  # the plan's own: nested recordings
        log.warning("lesson %s: %s", lesson.lesson_id, warning)
        warnings.append(warning)  # base's list: every result from here on carries it
    base.update(lesson=timeline.bounds(), disconnects=timeline.disconnect_counts())
    if timeline.status != "ok":
        # No lesson, but the report still shows both cameras: the data team sees why.
        c.result = LessonResult(status="no_lesson", reason=timeline.reason or "no lesson took place", **base)
        _unpublish_stale(c)
        files.remove_stale_gifs(folder, keep=None)  # an earlier run's GIF no longer stands
        values.update(scores=FaceTable.empty(), selection=Selection("no_highlight", c.result.reason, [], SelectionStats()),
                      gif=None)
        return _report(c, values)

    from highlights.stages.scores import KeptFrames  # torch: only where a lesson is scored

    c.kept_frames = KeptFrames(limit=KEPT_FRAMES)
    table = values["scores"] = produce(c, SCORES, values)
    c.sampled_frames = table.frame_count
    kept = _keep_published(c, _short_decode(c, len(plan.points)), warnings)
    if kept is not None:
        return kept
    base["scores"] = files.SCORES_FILE
    produce(c, ANALYTICS, values)
    base["analytics"] = files.ANALYTICS_FILE
    selection = values["selection"] = produce(c, SELECTION, values)
    base["frames"] = [pick.highlight_frame() for pick in selection.picks]

    values["gif"] = None
    if selection.status == "ok":
        gif = values["gif"] = produce(c, GIF, values)
        base.update(gif=gif.name, gif_url=gif_url(c, gif), gif_bytes=(folder / gif.name).stat().st_size)
        produce(c, SNIPPET, values)
        base.update(snippet=files.SNIPPET_HTML, snippet_text=files.SNIPPET_TEXT)
        status, reason = "ok", ""
    else:
        status, reason = "no_highlight", selection.reason or "no highlight"
    if not base.get("gif"):
        _unpublish_stale(c)
    files.remove_stale_gifs(folder, keep=base.get("gif"))
    c.result = LessonResult(status=status, reason=reason, **base)
    return _report(c, values)


def _unpublish_stale(c: LessonRun) -> None:
    """Delete the object an earlier run published when this clean run's outcome has no GIF (no
    lesson, no highlight), as its local file goes: a GIF nothing stands behind any more must not
    stay public. Before the local file: a delete that fails fails the lesson, and the earlier
    highlight (result.json, row, GIF, object) stays whole. A missing object is no error."""
    record = c.state.earlier.get(GIF.name)
    url = record.get("published") if isinstance(record, dict) else None
    if isinstance(url, str) and objects.is_object_url(url):
        objects.delete(url)
        log.warning("lesson %s: its earlier published GIF no longer stands: deleted", c.lesson.lesson_id)


def _report(c: LessonRun, values: dict[str, Any]) -> LessonResult:
    """The per-lesson report for people (``report.html``), on every path that reaches a timeline."""
    assert c.result is not None
    produce(c, REPORT, values)
    c.result.report = files.REPORT_FILE
    return c.result


def _earlier_selection(c: LessonRun) -> dict[str, Any]:
    """What the run that made the current selection recorded with it (empty if none)."""
    earlier = c.state.earlier.get(SELECTION.name)
    return earlier if isinstance(earlier, dict) else {}


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
    after the scores stage, which leaves its own files). ``warnings``: the run's so far."""
    if doubt is None or not c.published:
        return None
    lesson_id = c.lesson.lesson_id
    reason = (f"lesson {lesson_id}: {doubt}: its published highlight is kept "
              f"(fix the input and rerun, or withdraw it with `highlights withdraw {lesson_id}`)")
    log.warning("%s", reason)
    return LessonResult(lesson_id, "failed", reason=reason, versions=c.versions, fingerprint=c.keys.overall,
                        folder=c.folder, warnings=list(warnings))


__all__ = ["SHORT_DECODE_TOLERANCE", "run_stages"]
