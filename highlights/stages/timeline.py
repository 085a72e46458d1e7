"""Stage 2: when the lesson really took place, who dropped out, and which seconds to sample.

Pure interval logic: recordings (with their ``ended_at`` known, see
:func:`highlights.media.probe.resolve_end_times`) in, a :class:`LessonTimeline` and a list of
:class:`~highlights.core.frameref.FrameRef` (the sample points) out. Only :func:`plan_lesson` may
touch media, see below.

* Each role's segments are merged into "camera on" intervals: overlapping or touching segments
  (a reconnect before the old connection timed out) become one, and so do segments separated by
  a gap of at most ``gap_tolerance_s`` (a blip, not a disconnect).
* The lesson starts at the first moment both cameras are on together and ends when at least one
  camera goes off for good: the earlier of the two roles' last "off".
* Per role, a disconnect is a gap between its merged intervals that begins inside the lesson;
  ``offline_s`` is the part of all gaps that lies inside the lesson.
* No recording of a role, or no moment with both cameras on, gives status ``no_lesson`` with a
  reason, never an exception.

:func:`plan_lesson` is the stage as one call (what ``highlights timeline`` prints): it asks
:func:`highlights.media.probe.resolve_end_times` for end times the manifest does not give (the only
media access here, and only then), and turns a bad manifest row or an unreadable recording into
status ``failed`` with a message naming file and row, so one lesson's problem never stops a batch::

    manifest = read_manifest("recordings.csv")
    for plan in plan_manifest(manifest, fps=1.0):
        print(plan.lesson_id, plan.status, plan.timeline and plan.timeline.duration_s, len(plan.points))

>>> from datetime import datetime, timezone
>>> at = lambda s: datetime(2026, 11, 21, 15, 0, s, tzinfo=timezone.utc)
>>> tl = lesson_bounds("L-1", [(at(10), at(50))], [(at(0), at(40))])
>>> tl.start.second, tl.end.second, tl.duration_s
(10, 40, 30.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from highlights.core.frameref import FrameRef, utc_iso
from highlights.core.lesson import MAX_LESSON_S, InputProblem, LessonInfo, LessonInput, Recording, Role
from highlights.core.result import Disconnects, LessonBounds
from highlights.inputs.manifest import Manifest

if TYPE_CHECKING:
    from highlights.media.decode import SampledFrame

DEFAULT_GAP_TOLERANCE_S = 2.0
"""Gaps in a person's camera up to this long are merged, not counted as disconnects."""

TimelineStatus = Literal["ok", "no_lesson"]


@dataclass(frozen=True)
class Interval:
    """A time span ``[start, end)`` with aware datetimes."""

    start: datetime
    end: datetime

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()

    def overlap_s(self, start: datetime, end: datetime) -> float:
        """Seconds of ``[start, end)`` this interval covers."""
        return max((min(self.end, end) - max(self.start, start)).total_seconds(), 0.0)


@dataclass(frozen=True)
class RoleTimeline:
    """One person's camera: merged online intervals (whole, not cut to the lesson), and the
    disconnects that began inside the lesson (each an :class:`Interval` of being offline,
    cut to the lesson's end)."""

    role: Role
    online: tuple[Interval, ...]
    disconnects: tuple[Interval, ...] = ()
    offline_s: float = 0.0

    @property
    def first_on(self) -> datetime | None:
        return self.online[0].start if self.online else None

    @property
    def last_off(self) -> datetime | None:
        return self.online[-1].end if self.online else None


@dataclass(frozen=True)
class LessonTimeline:
    """The lesson's bounds and both cameras. ``start``/``end`` are None unless status is ok."""

    lesson_id: str
    status: TimelineStatus
    reason: str | None
    start: datetime | None
    end: datetime | None
    student: RoleTimeline
    teacher: RoleTimeline
    gap_tolerance_s: float = DEFAULT_GAP_TOLERANCE_S

    @property
    def duration_s(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()

    def role(self, role: Role) -> RoleTimeline:
        return self.student if role == "student" else self.teacher

    def bounds(self) -> LessonBounds | None:
        """The bounds as ``result.json`` and ``highlights timeline --json`` give them."""
        if self.start is None or self.end is None:
            return None
        # In UTC, one offset for both ends: the start and end come from different people's rows,
        # which may carry different offsets (a teacher on -05:00, a student on +05:30).
        return LessonBounds(utc_iso(self.start), utc_iso(self.end), round(self.duration_s or 0.0, 3))

    def disconnect_counts(self) -> Disconnects:
        """Disconnects and seconds offline per side, as ``result.json`` gives them."""
        return Disconnects(
            student=len(self.student.disconnects),
            teacher=len(self.teacher.disconnects),
            student_offline_s=round(float(self.student.offline_s), 3),
            teacher_offline_s=round(float(self.teacher.offline_s), 3),
        )


SpanLike = Interval | tuple[datetime, datetime]


def merge_intervals(spans: Iterable[SpanLike], gap_tolerance_s: float = DEFAULT_GAP_TOLERANCE_S) -> list[Interval]:
    """Sort and merge spans that overlap, touch, or are at most ``gap_tolerance_s`` apart.

    Empty or reversed spans (end <= start) are ignored.
    """
    if gap_tolerance_s < 0:
        raise ValueError("gap_tolerance_s must be >= 0")
    tolerance = timedelta(seconds=gap_tolerance_s)
    spans = sorted(
        (Interval(*span) if isinstance(span, tuple) else span for span in spans), key=lambda s: (s.start, s.end)
    )
    merged: list[Interval] = []
    for span in spans:
        if span.end <= span.start:
            continue
        if merged and span.start <= merged[-1].end + tolerance:
            if span.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, span.end)
        else:
            merged.append(span)
    return merged


def _first_common_moment(a: Sequence[Interval], b: Sequence[Interval]) -> datetime | None:
    """The earliest instant inside an interval of ``a`` and one of ``b`` (both sorted, disjoint)."""
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i].start, b[j].start), min(a[i].end, b[j].end)
        if start < end:
            return start
        if a[i].end <= b[j].end:
            i += 1
        else:
            j += 1
    return None


def _gaps_inside(online: Sequence[Interval], start: datetime, end: datetime) -> tuple[tuple[Interval, ...], float]:
    """Gaps between consecutive online intervals that begin inside ``[start, end)``, cut at
    ``end``, and the seconds they cover inside the lesson."""
    gaps = []
    for before, after in zip(online, online[1:]):
        if start <= before.end < end:
            gaps.append(Interval(before.end, min(after.start, end)))
    return tuple(gaps), float(sum(gap.duration_s for gap in gaps))


def lesson_bounds(
    lesson_id: str,
    student: Iterable[SpanLike],
    teacher: Iterable[SpanLike],
    gap_tolerance_s: float = DEFAULT_GAP_TOLERANCE_S,
) -> LessonTimeline:
    """The lesson's timeline from each role's recording spans (the pure core of this stage)."""
    merged = {
        "student": merge_intervals(student, gap_tolerance_s),
        "teacher": merge_intervals(teacher, gap_tolerance_s),
    }

    def no_lesson(reason: str) -> LessonTimeline:
        return LessonTimeline(
            lesson_id, "no_lesson", reason, None, None,
            RoleTimeline("student", tuple(merged["student"])), RoleTimeline("teacher", tuple(merged["teacher"])),
            gap_tolerance_s,
        )  # fmt: skip

    missing = [role for role in ("student", "teacher") if not merged[role]]
    if missing:
        return no_lesson(" and ".join(f"no {role} recording" for role in missing))
    start = _first_common_moment(merged["student"], merged["teacher"])
    if start is None:
        return no_lesson("the student's and the teacher's cameras were never on at the same time")
    end = min(merged["student"][-1].end, merged["teacher"][-1].end)
    roles = {}
    for role, online in merged.items():
        gaps, offline_s = _gaps_inside(online, start, end)
        roles[role] = RoleTimeline(role, tuple(online), gaps, round(offline_s, 6))  # type: ignore[arg-type]
    return LessonTimeline(lesson_id, "ok", None, start, end, roles["student"], roles["teacher"], gap_tolerance_s)


def lesson_timeline(lesson: LessonInput, gap_tolerance_s: float = DEFAULT_GAP_TOLERANCE_S) -> LessonTimeline:
    """The timeline of a lesson whose recordings all have ``ended_at``
    (:func:`highlights.media.probe.resolve_end_times` fills it in from the media)."""
    unresolved = [r.source for r in lesson.recordings if r.ended_at is None]
    if unresolved:
        raise ValueError(f"lesson {lesson.lesson_id}: end time unknown for {', '.join(map(str, unresolved))}")
    spans = {role: [(r.started_at, r.ended_at) for r in lesson.by_role(role)] for role in ("student", "teacher")}
    return lesson_bounds(lesson.lesson_id, spans["student"], spans["teacher"], gap_tolerance_s)  # type: ignore[arg-type]


def covering_recording(recordings: Sequence[Recording], at: datetime) -> Recording | None:
    """The recording showing instant ``at``: of those with ``started_at <= at < ended_at``, the
    one that started last (after a reconnect the new connection is the live one)."""
    best = None
    for recording in recordings:
        if recording.ended_at is not None and recording.started_at <= at < recording.ended_at:
            if best is None or recording.started_at > best.started_at:
                best = recording
    return best


def sample_points(timeline: LessonTimeline, recordings: Sequence[Recording], fps: float = 1.0) -> list[FrameRef]:
    """The instants to sample, ``1 / fps`` apart from the lesson start, that some student
    recording covers (seconds while the student is offline are skipped): each a
    :class:`~highlights.core.frameref.FrameRef` whose ``source`` is the recording's path, numbered
    0, 1, ... in lesson order. Raises ValueError for a lesson longer than
    :data:`~highlights.core.lesson.MAX_LESSON_S` (its end time is wrong; see :func:`plan_lesson`)."""
    if fps <= 0:
        raise ValueError("fps must be positive")
    if timeline.status != "ok" or timeline.start is None or timeline.duration_s is None:
        return []
    if timeline.duration_s > MAX_LESSON_S:
        raise ValueError(_too_long(timeline))
    student = [r for r in recordings if r.role == "student"]
    points: list[FrameRef] = []
    count = math.ceil(timeline.duration_s * fps - 1e-9)
    for k in range(count):
        t = k / fps
        at = (timeline.start + timedelta(seconds=t)).astimezone(timezone.utc)  # result.json: UTC
        recording = covering_recording(student, at)
        if recording is None:
            continue
        offset = (at - recording.started_at).total_seconds()
        points.append(FrameRef(len(points), t, at, recording.path, offset))
    return points


PlanStatus = Literal["ok", "no_lesson", "failed"]


def sample_frames(lesson: LessonInput, timeline: LessonTimeline, fps: float = 1.0) -> Iterator[SampledFrame]:
    """The frames at :func:`sample_points` of ``timeline``, decoded, in lesson order
    (:func:`highlights.media.decode.frames_at_points` with the points computed here; a lesson's
    run passes its plan's)."""
    from highlights.media.decode import frames_at_points  # the media stack only when decoding

    return frames_at_points(sample_points(timeline, lesson.recordings, fps))



@dataclass(frozen=True)
class LessonPlan:
    """One lesson through the timeline stage: its bounds and the seconds to sample.

    ``status``: ``ok``; ``no_lesson`` (``timeline.reason`` says why); ``failed``: the lesson's
    manifest or lessons-file rows are bad, or a recording could not be read (``reason`` names
    file and row; ``timeline`` is None). ``lesson`` has every ``ended_at`` filled in unless failed.
    """

    lesson: LessonInput
    status: PlanStatus
    reason: str | None
    timeline: LessonTimeline | None
    points: tuple[FrameRef, ...] = ()
    fps: float = 1.0
    gap_tolerance_s: float = DEFAULT_GAP_TOLERANCE_S

    @property
    def lesson_id(self) -> str:
        return self.lesson.lesson_id

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary; ``lesson`` and ``disconnects`` as in ``result.json``, ``frames``
        the number of sample points. ``lesson`` is null unless ok, ``disconnects`` null if failed."""
        tl = self.timeline
        bounds = tl.bounds() if tl is not None else None
        return {
            "lesson_id": self.lesson_id,
            "status": self.status,
            "reason": self.reason,
            "lesson": asdict(bounds) if bounds is not None else None,
            "disconnects": asdict(tl.disconnect_counts()) if tl is not None else None,
            "frames": len(self.points),
            "fps": self.fps,
            "gap_tolerance_s": self.gap_tolerance_s,
        }


def plan_lesson(
    lesson: LessonInput, gap_tolerance_s: float = DEFAULT_GAP_TOLERANCE_S, fps: float = 1.0
) -> LessonPlan:
    """The lesson's timeline and sample points; never raises for a problem of the lesson itself.

    Recordings without ``ended_at`` are measured by :func:`highlights.media.probe.resolve_end_times`
    (which decodes media); a lesson whose recordings all have it needs no media access at all.

    >>> plan = plan_lesson(manifest.lessons["L-1001"], fps=1.0)  # doctest: +SKIP
    >>> plan.status, plan.timeline.duration_s, len(plan.points)  # doctest: +SKIP
    ('ok', 1795.0, 1790)
    """
    if gap_tolerance_s < 0:
        raise ValueError("gap_tolerance_s must be >= 0")
    if fps <= 0:
        raise ValueError("fps must be positive")
    if lesson.problems:
        return LessonPlan(lesson, "failed", "; ".join(map(str, lesson.problems)), None, (), fps, gap_tolerance_s)
    if any(r.ended_at is None for r in lesson.recordings):
        from highlights.media.container import RecordingError
        from highlights.media.probe import resolve_end_times

        try:
            lesson = resolve_end_times(lesson)
        except (RecordingError, OSError) as error:
            return LessonPlan(lesson, "failed", _unreadable(lesson, error), None, (), fps, gap_tolerance_s)
    lesson = _with_nested_recording_warnings(lesson)
    timeline = lesson_timeline(lesson, gap_tolerance_s)
    if timeline.duration_s is not None and timeline.duration_s > MAX_LESSON_S:
        # Each row is checked, but many long segments still add up: no sample list that long.
        return LessonPlan(lesson, "failed", _too_long(timeline), None, (), fps, gap_tolerance_s)
    status: PlanStatus = "ok" if timeline.status == "ok" else "no_lesson"
    points = tuple(sample_points(timeline, lesson.recordings, fps))
    return LessonPlan(lesson, status, timeline.reason, timeline, points, fps, gap_tolerance_s)


def _with_nested_recording_warnings(lesson: LessonInput) -> LessonInput:
    """``lesson`` with a warning for each recording that lies wholly within another of the same
    role. A reconnect overlaps the old connection briefly; one camera's recording inside another's
    is two cameras at once (a phone joined beside the laptop) or a copy exported twice: while both
    run the later-started one is sampled (:func:`covering_recording`), which may not be the
    camera the child sits at. It is not an error (the lesson is still sampled), but it used to
    pass without a word."""
    notes = []
    recordings = sorted(lesson.recordings, key=lambda r: (r.started_at, -(r.ended_at or r.started_at).timestamp()))
    for index, inner in enumerate(recordings):
        for outer in recordings[:index]:
            if (outer.role == inner.role and outer.ended_at is not None and inner.ended_at is not None
                    and outer.started_at <= inner.started_at and inner.ended_at <= outer.ended_at):
                message = f"{inner.role} recording {inner.path.name} lies wholly within {outer.path.name} ({outer.source})"
                if inner.role == "student":
                    message += (": two cameras at once, or one exported twice? While both run, the one that "
                                "started later is sampled (the one listed first where they start together)")
                notes.append(InputProblem(inner.source.file, inner.source.row, lesson.lesson_id, message))
                break
    return replace(lesson, warnings=[*lesson.warnings, *notes]) if notes else lesson


def plan_manifest(
    manifest: Manifest,
    lesson_ids: Sequence[str] | None = None,
    *,
    gap_tolerance_s: float = DEFAULT_GAP_TOLERANCE_S,
    fps: float = 1.0,
) -> list[LessonPlan]:
    """:func:`plan_lesson` for every lesson of ``manifest`` (or those named, in that order); a
    named lesson the manifest lacks comes back ``failed``."""
    plans = []
    for lesson_id in dict.fromkeys(lesson_ids) if lesson_ids else manifest.lessons:
        lesson = manifest.lessons.get(lesson_id)
        if lesson is None:
            problem = InputProblem(manifest.path, None, lesson_id, "no such lesson in the manifest")
            lesson = LessonInput(lesson_id, [], LessonInfo(lesson_id), [problem])
        plans.append(plan_lesson(lesson, gap_tolerance_s, fps))
    return plans


def _too_long(timeline: LessonTimeline) -> str:
    return (f"lesson {timeline.lesson_id}: the cameras are on together for {timeline.duration_s / 3600:,.0f} hours, "
            f"more than {MAX_LESSON_S // 3600}: an end time in the manifest is wrong")


def _unreadable(lesson: LessonInput, error: Exception) -> str:
    """The read error as a problem of the manifest row that lists the file."""
    recording = lesson.recording_of(error)
    if recording is None:
        return f"lesson {lesson.lesson_id}: a recording cannot be read: {error}"
    detail = getattr(error, "message", None) or str(error)  # RecordingError's message lacks the name
    message = f"{recording.role} recording {recording.path.name} cannot be read: {detail}"
    return str(InputProblem(recording.source.file, recording.source.row, lesson.lesson_id, message))


__all__ = [
    "DEFAULT_GAP_TOLERANCE_S",
    "Interval",
    "LessonPlan",
    "LessonTimeline",
    "RoleTimeline",
    "covering_recording",
    "lesson_bounds",
    "lesson_timeline",
    "merge_intervals",
    "plan_lesson",
    "plan_manifest",
    "sample_points",
]
