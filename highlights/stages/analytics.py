"""Per-lesson analytics: smiles, child and adult presence over the lesson, and disconnects.

Pure functions over the scores table (``scores.csv``, one row per face, ``face = -1`` for a
sampled frame without faces) and the lesson's timeline. The lesson is cut into buckets of
``bucket_s`` seconds (a minute by default); for each bucket:

==================  ===========================================================================
column              meaning
==================  ===========================================================================
bucket              0, 1, 2, ... (bucket ``i`` covers ``[i * bucket_s, (i + 1) * bucket_s)``)
start_s, end_s      the bucket's bounds in seconds since lesson start
frames              sampled frames in the bucket
child_frames        frames with the student in view (by face, or by body while leaning out); in a
                    table without persons: frames with a face judged a child (by its face track)
adult_frames        frames with an adult other than the student in view, by face (a person judged
                    adult or undecided) or by body alone; without persons: any face not a child
adult_only_frames   frames with an adult and no child
smile_frames        frames where a child face smiles (its smile, smoothed within its track,
                    passes the smile threshold)
child_share         child_frames / frames (empty when no frames)
adult_share         adult_frames / frames
smile_share         smile_frames / child_frames (empty when no child was seen)
mean_child_smile    mean smile probability over child faces
student_online_s    seconds of the bucket the student was connected (from the timeline)
teacher_online_s    seconds of the bucket the teacher was connected
==================  ===========================================================================

:func:`summarise` adds lesson-wide numbers (shares, the smiliest bucket, disconnects).

**Smile detection and presence can be switched off** (:class:`AnalyticsOptions`, ``[analytics]``
in the config): with ``smiles = false`` the smile columns (``smile_frames``, ``smile_share``,
``mean_child_smile``) and the summary's smile figures are not computed, not written, not stored
in the database and not shown in the report or the dashboard; with ``presence = false`` the same
holds for the child / adult presence columns. The GIF is unaffected: the selection stage still
uses the smile and child/adult scores of ``scores.csv``. Why: see the README, "Smile detection
and the law" (EU AI Act, Art. 5(1)(f)).

:func:`reason_category` turns a lesson's outcome into one word of a small fixed vocabulary
(:data:`REASON_CATEGORIES`) that a dashboard can group by.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from highlights.core.faces import FaceTable
from highlights.stages.persons import Judged, PersonOptions, judge_lesson
from highlights.stages.tracks import TrackOptions

SERIES_COLUMNS = [
    "bucket",
    "start_s",
    "end_s",
    "frames",
    "child_frames",
    "adult_frames",
    "adult_only_frames",
    "smile_frames",
    "child_share",
    "adult_share",
    "smile_share",
    "mean_child_smile",
    "student_online_s",
    "teacher_online_s",
]


SMILE_COLUMNS = ("smile_frames", "smile_share", "mean_child_smile")
"""Series columns of smile detection (dropped with ``AnalyticsOptions(smiles=False)``)."""
PRESENCE_COLUMNS = ("child_frames", "adult_frames", "adult_only_frames", "child_share", "adult_share")
"""Series columns of child / adult presence (dropped with ``AnalyticsOptions(presence=False)``)."""
SMILE_SUMMARY = ("smile_share", "smile_frames", "smiliest_bucket")
PRESENCE_SUMMARY = ("child_presence", "adult_presence", "adult_only_share", "buckets_with_adult")


@dataclass(frozen=True)
class AnalyticsOptions:
    """Which per-lesson analytics a deployment computes (``[analytics]`` in the config).

    smiles: True — smile detection over the lesson (smiling share, mean smile per minute).
    presence: True — child / adult (parent) presence over the lesson.

    Either off: those figures are not computed, not written to ``analytics.json`` / ``.csv``,
    not stored in the database, not shown in ``report.html`` nor in the dashboard. Frames,
    seconds online and disconnects are always kept. The GIF does not depend on these switches.
    """

    smiles: bool = True
    presence: bool = True

    def dropped_columns(self) -> tuple[str, ...]:
        return (() if self.smiles else SMILE_COLUMNS) + (() if self.presence else PRESENCE_COLUMNS)

    def dropped_summary(self) -> tuple[str, ...]:
        return (() if self.smiles else SMILE_SUMMARY) + (() if self.presence else PRESENCE_SUMMARY)


@dataclass(frozen=True)
class LessonAnalytics:
    lesson_id: str
    bucket_s: float
    smile_threshold: float
    summary: dict[str, Any]
    series: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        records = self.series.astype(object).where(self.series.notna(), None).to_dict("records")
        return {
            "lesson_id": self.lesson_id,
            "bucket_s": self.bucket_s,
            "smile_threshold": self.smile_threshold,
            "summary": self.summary,
            "series": records,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LessonAnalytics:
        """``analytics.json`` read back (:meth:`to_dict`; the series without the dropped columns)."""
        return cls(str(data["lesson_id"]), float(data["bucket_s"]), float(data["smile_threshold"]),
                   dict(data.get("summary") or {}), pd.DataFrame(data.get("series") or []))


def _posix(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _overlap_s(intervals: Iterable[Any], start: float, end: float) -> float:
    """Seconds of ``[start, end)`` covered by intervals with ``.start`` / ``.end`` (POSIX s)."""
    total = 0.0
    for interval in intervals:
        lo, hi = max(_posix(interval.start), start), min(_posix(interval.end), end)
        if hi > lo:
            total += hi - lo
    return total


def frame_table(scores: pd.DataFrame, smile_threshold: float, judged: Judged | None = None) -> pd.DataFrame:
    """One row per sampled frame: ``frame, t, child, adult, smile, child_smile``.

    With ``judged`` (:func:`highlights.stages.persons.judge_lesson`, the decisions the GIF is made
    with): ``child`` is the student in view (by face, or by their body alone when they lean out),
    ``adult`` an adult other than the student in view (by face, or someone else by their body),
    ``smile`` the subject's face smiling (its smile smoothed within its track).

    ``child`` / ``adult``: some face in the frame is judged a child / an adult; ``smile``: some
    child face smiles; ``child_smile``: the highest smile probability among child faces (NaN if none).

    A table judged by :func:`highlights.stages.tracks.judge_faces` is counted by its tracks, as the GIF's
    selection counts it: ``track_child`` (a face whose track is judged adult or undecided is an
    adult in every frame) and ``track_smile`` (the smile smoothed within the track). A table
    without those columns is counted by each face's own ``is_child`` and ``smile_prob``.
    """
    if scores.empty:
        return pd.DataFrame(columns=["frame", "t", "child", "adult", "smile", "child_smile"])
    if judged is not None and judged.by_person:
        frames = judged.frames().set_index("frame")
        faces = judged.faces
        subject = faces[faces["subject"]]
        smile = subject.groupby("frame")["track_smile"].max()
        out = pd.DataFrame({"t": frames["t"], "child": frames["student"], "adult": frames["adult"]})
        out["child_smile"] = smile.reindex(out.index)
        out["smile"] = (out["child_smile"].fillna(0.0) >= smile_threshold) & frames["subject"]
        return out.reset_index()[["frame", "t", "child", "adult", "smile", "child_smile"]]
    faces = scores[scores["face"] >= 0]
    child_column = "track_child" if "track_child" in faces.columns else "is_child"
    smile_column = "track_smile" if "track_smile" in faces.columns else "smile_prob"
    is_child = faces[child_column].astype(str).str.lower().isin(["true", "1", "1.0"])
    child_faces = faces[is_child.to_numpy()]
    adult_faces = faces[~is_child.to_numpy()]
    frames = scores.groupby("frame", sort=True)["t"].first().to_frame()
    frames["child"] = frames.index.isin(child_faces["frame"])
    frames["adult"] = frames.index.isin(adult_faces["frame"])
    child_smile = child_faces.groupby("frame")[smile_column].max()
    frames["child_smile"] = child_smile.reindex(frames.index)
    frames["smile"] = frames["child_smile"].fillna(0.0) >= smile_threshold
    frames["smile"] &= frames["child"]
    return frames.reset_index()[["frame", "t", "child", "adult", "smile", "child_smile"]]


def _share(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def lesson_series(
    scores: pd.DataFrame,
    duration_s: float,
    *,
    bucket_s: float = 60.0,
    smile_threshold: float = 0.5,
    lesson_start: float | None = None,
    student_online: Sequence[Any] = (),
    teacher_online: Sequence[Any] = (),
    judged: Judged | None = None,
) -> pd.DataFrame:
    """The per-bucket series (columns :data:`SERIES_COLUMNS`).

    ``lesson_start`` (POSIX s) and the online intervals are needed only for the
    ``*_online_s`` columns; without a start they are left empty.
    """
    if bucket_s <= 0:
        raise ValueError("bucket_s must be positive")
    frames = frame_table(scores, smile_threshold, judged)
    n_buckets = max(1, math.ceil(max(duration_s, 0.0) / bucket_s))
    frames = frames.assign(bucket=np.minimum((frames["t"].astype(float) // bucket_s), n_buckets - 1))
    rows = []
    for bucket in range(n_buckets):
        start_s, end_s = bucket * bucket_s, min((bucket + 1) * bucket_s, max(duration_s, bucket_s))
        in_bucket = frames[frames["bucket"] == bucket]
        n = len(in_bucket)
        child = int(in_bucket["child"].sum())
        adult = int(in_bucket["adult"].sum())
        adult_only = int((in_bucket["adult"] & ~in_bucket["child"]).sum())
        smile = int(in_bucket["smile"].sum())
        child_smiles = in_bucket["child_smile"].dropna()
        if lesson_start is not None:
            student_s = round(_overlap_s(student_online, lesson_start + start_s, lesson_start + end_s), 3)
            teacher_s = round(_overlap_s(teacher_online, lesson_start + start_s, lesson_start + end_s), 3)
        else:
            student_s = teacher_s = None
        rows.append(
            {
                "bucket": bucket,
                "start_s": float(start_s),
                "end_s": float(end_s),
                "frames": n,
                "child_frames": child,
                "adult_frames": adult,
                "adult_only_frames": adult_only,
                "smile_frames": smile,
                "child_share": _share(child, n),
                "adult_share": _share(adult, n),
                "smile_share": _share(smile, child),
                "mean_child_smile": round(float(child_smiles.mean()), 4) if len(child_smiles) else None,
                "student_online_s": student_s,
                "teacher_online_s": teacher_s,
            }
        )
    return pd.DataFrame(rows, columns=SERIES_COLUMNS)


def summarise(series: pd.DataFrame, timeline: Any | None = None) -> dict[str, Any]:
    """Lesson-wide numbers from a series (and disconnects from the timeline, when given)."""
    frames = int(series["frames"].sum())
    child = int(series["child_frames"].sum())
    adult = int(series["adult_frames"].sum())
    adult_only = int(series["adult_only_frames"].sum())
    smile = int(series["smile_frames"].sum())
    best = series[series["smile_frames"] > 0].sort_values(
        ["smile_frames", "bucket"], ascending=[False, True]
    )
    summary: dict[str, Any] = {
        "frames": frames,
        "child_presence": _share(child, frames),
        "adult_presence": _share(adult, frames),
        "adult_only_share": _share(adult_only, frames),
        "smile_share": _share(smile, child),
        "smile_frames": smile,
        "smiliest_bucket": int(best.iloc[0]["bucket"]) if len(best) else None,
        "buckets_with_adult": int((series["adult_frames"] > 0).sum()),
    }
    if timeline is not None:
        summary.update(
            {
                "duration_s": float(timeline.duration_s or 0.0),
                "student_disconnects": _count(timeline.student.disconnects),
                "teacher_disconnects": _count(timeline.teacher.disconnects),
                "student_offline_s": round(float(timeline.student.offline_s), 3),
                "teacher_offline_s": round(float(timeline.teacher.offline_s), 3),
            }
        )
    return summary


def _count(disconnects: Any) -> int:
    return int(disconnects) if isinstance(disconnects, (int, np.integer)) else len(disconnects)


def lesson_analytics(
    lesson_id: str,
    scores: FaceTable | pd.DataFrame,
    timeline: Any,
    *,
    bucket_s: float = 60.0,
    smile_threshold: float = 0.5,
    options: AnalyticsOptions | None = None,
    tracks: TrackOptions | None = None,
    persons: PersonOptions | None = None,
    student_age_group: str = "child",
) -> LessonAnalytics:
    """Analytics of one lesson from its scores and its timeline (``LessonTimeline``);
    ``options`` leaves out the smile and / or presence figures. With ``tracks`` (the selection's
    :class:`~highlights.stages.tracks.TrackOptions`) child, adult and smile are counted per face track,
    exactly as the GIF's selection judges them; without, per face and frame."""
    options = options or AnalyticsOptions()
    scores = scores.data if isinstance(scores, FaceTable) else scores
    judged = None
    if tracks is not None and not scores.empty:
        judged = judge_lesson(scores, persons or PersonOptions(), tracks, student_age_group)
        scores = judged.table
    series = lesson_series(
        scores,
        float(timeline.duration_s or 0.0),
        bucket_s=bucket_s,
        smile_threshold=smile_threshold,
        lesson_start=_posix(timeline.start) if timeline.start is not None else None,
        student_online=timeline.student.online,
        teacher_online=timeline.teacher.online,
        judged=judged,
    )
    summary = summarise(series, timeline)
    # Switched-off figures are dropped before anything is written: they never reach a file.
    series = series.drop(columns=list(options.dropped_columns()))
    summary = {k: v for k, v in summary.items() if k not in options.dropped_summary()}
    return LessonAnalytics(lesson_id, bucket_s, smile_threshold, summary, series)


# --------------------------------------------------------------------------- reason categories

REASON_CATEGORIES: dict[str, str] = {
    # no_highlight, from the selection's counts (SelectionStats), first match wins:
    "no_frames": "no_highlight: no frame was sampled from the lesson (frames = 0)",
    "no_child": "no_highlight: no child's face was seen (with_child = 0)",
    "no_smile": "no_highlight: the child was seen but never smiling at min_smile (child_smiling = 0)",
    "no_usable_smile": "no_highlight: smiling frames, none usable: blurred, dark, small, or an adult in "
    "view or within adult_margin_s (candidates = 0)",
    "too_few_moments": "no_highlight: usable smiling frames, but fewer than min_frames distinct moments "
    "min_gap_s apart (candidates > 0)",
    # no_lesson:
    "no_lesson": "no_lesson: the cameras were never on together, or a role has no recording",
    # withdrawn (``highlights withdraw``):
    "withdrawn": "withdrawn: the highlight was withdrawn by hand",
    # failed, from the reason the pipeline writes (it names the stage):
    "bad_input": "failed: a manifest or lessons-file row of the lesson is unusable",
    "unreadable_recording": "failed: a recording cannot be read or decoded",
    "busy": "failed: another highlights run was working on the lesson",
    "output_folder": "failed: the lesson's output folder cannot be written",
    "database": "failed: the lesson's row could not be written to the database",
    "error": "failed: any other error in a stage (the reason names the stage)",
}
"""The fixed vocabulary of ``lesson_totals.reason_category`` (None for ``ok``)."""


def reason_category(status: str, reason: str | None = None, stats: Any | None = None) -> str | None:
    """One word of :data:`REASON_CATEGORIES` for a lesson's outcome (None when ``ok``).

    ``stats``: the selection's :class:`~highlights.stages.selection.SelectionStats` (or its dict), for a
    ``no_highlight``; ``reason``: the result's reason, for a ``failed`` lesson (the pipeline's own
    wording: it names the stage and the recording).

    >>> reason_category("no_highlight", stats={"frames": 120, "with_child": 0})
    'no_child'
    >>> reason_category("failed", "lesson L-1: scores stage failed (student recording, a.webm row 3): ...")
    'unreadable_recording'
    """
    if status == "ok":
        return None
    if status in ("no_lesson", "withdrawn"):
        return status
    if status == "busy":
        return "busy"
    if status == "no_highlight":
        counts = stats if isinstance(stats, dict) else (vars(stats) if stats is not None else {})
        if not counts.get("frames"):
            return "no_frames"
        if not counts.get("with_child"):
            return "no_child"
        if not counts.get("child_smiling"):
            return "no_smile"
        return "too_few_moments" if counts.get("candidates") else "no_usable_smile"
    text = reason or ""
    if "another highlights run is working on it" in text:
        return "busy"
    if "output folder" in text and "cannot be written" in text:
        return "output_folder"
    if ": database " in text:
        return "database"
    if " stage failed" not in text:
        return "bad_input"  # a lesson's own row problems: the pipeline never ran a stage
    if " recording, " in text or "cannot be read" in text or "decod" in text:
        return "unreadable_recording"
    return "error"
