"""Report stage: one self-contained HTML page per lesson for the data team (``report.html``).

What the page shows, from the stages' own values (no file is read, nothing is fetched):

* a header: status and reason, lesson bounds and duration, disconnects, the frame counts of the
  selection, the GIF (by its file name, relative to the report: both lie in ``OUT/<lesson>/``);
* four charts drawn as inline SVG on one shared time axis (mm:ss of lesson time, so a pick, a
  dip in smiles and a dropped camera line up vertically):

  1. cameras: each side's merged online intervals, the lesson's bounds, the disconnects;
  2. smiles: per sampled frame the highest smile probability among child faces, the
     ``min_smile`` threshold, and (4) the chosen frames marked on it;
  3. presence: per sampled frame, whether a child / an adult face was seen;

* a table of the chosen frames in GIF order.

The SVG geometry is computed here by small functions over a :class:`TimeAxis`; the page layout
is ``templates/report.html.j2``. Every value is escaped. The student's name is not shown: the
report is for analysis and needs no personal data (the lesson id identifies the lesson).

>>> html = render_report(result, timeline, scores, selection, info)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from highlights.core.faces import FaceTable
from highlights.core.frameref import utc_iso
from highlights.core.lesson import LessonInfo
from highlights.core.result import LessonResult
from highlights.render import TEMPLATES_DIR, template_environment
from highlights.stages.analytics import AnalyticsOptions, frame_table
from highlights.stages.persons import Judged, PersonOptions, judge_lesson
from highlights.stages.selection import Pick, Selection, SelectionOptions
from highlights.stages.timeline import Interval, LessonTimeline
from highlights.stages.tracks import TrackOptions, tracks_of

REPORT_TEMPLATE = "report.html.j2"

CHART_WIDTH = 960
"""The charts' viewBox width; they scale to the page width."""
PLOT_LEFT = 96
"""Room for the row labels left of the plots."""
PLOT_RIGHT = 24
AXIS_HEIGHT = 26
NICE_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 14400)
"""Tick spacings the time axis chooses from (seconds): round minutes for lessons."""


# --------------------------------------------------------------------------- small helpers


def format_clock(seconds: float | None) -> str:
    """``mm:ss`` of lesson time (minutes go past 59; negative before the lesson start).

    >>> format_clock(0), format_clock(75.4), format_clock(3725), format_clock(-90), format_clock(None)
    ('00:00', '01:15', '62:05', '-01:30', '–')
    """
    if seconds is None or not math.isfinite(seconds):
        return "–"
    sign = "-" if seconds < -0.5 else ""
    total = int(round(abs(seconds)))
    return f"{sign}{total // 60:02d}:{total % 60:02d}"


def tick_step(span_s: float, max_ticks: int = 10) -> float:
    """The smallest of :data:`NICE_STEPS_S` that gives at most ``max_ticks`` ticks over ``span_s``.

    >>> tick_step(1800), tick_step(45), tick_step(10 * 3600)
    (300, 5, 3600)
    """
    for step in NICE_STEPS_S:
        if span_s / step <= max_ticks:
            return step
    return NICE_STEPS_S[-1] * math.ceil(span_s / (NICE_STEPS_S[-1] * max_ticks))


def _num(value: float) -> str:
    """A coordinate, short: 2 decimals at most."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def svg(tag: str, content: Any = None, **attrs: Any) -> Markup:
    """One SVG/HTML element with escaped attributes and content (already-safe Markup is kept).

    ``class_`` gives ``class``; other underscores become hyphens (``stroke_width``); None
    values are left out.

    >>> str(svg("text", "a<b", x=1.5, class_="label"))
    '<text x="1.5" class="label">a&lt;b</text>'
    """
    parts = []
    for name, value in attrs.items():
        if value is None:
            continue
        name = "class" if name == "class_" else name.replace("_", "-")
        if isinstance(value, float):
            value = _num(value)
        parts.append(Markup(' {}="{}"').format(name, value))
    opening = Markup("<{}{}").format(Markup(tag), Markup("").join(parts))
    if content is None:
        return opening + Markup("/>")
    if not isinstance(content, str) and isinstance(content, Iterable):
        content = Markup("").join(escape(c) for c in content)
    return opening + Markup(">") + escape(content) + Markup("</{}>").format(Markup(tag))


def _title(text: str) -> Markup:
    """A tooltip for the enclosing SVG element."""
    return svg("title", text)


@dataclass(frozen=True)
class TimeAxis:
    """Seconds of lesson time ``[start_s, end_s]`` mapped onto ``[left, right]`` of the chart."""

    start_s: float
    end_s: float
    left: float = PLOT_LEFT
    right: float = CHART_WIDTH - PLOT_RIGHT

    def x(self, t: float) -> float:
        span = self.end_s - self.start_s
        return self.left + (float(t) - self.start_s) / span * (self.right - self.left)

    def ticks(self) -> list[float]:
        step = tick_step(self.end_s - self.start_s)
        first = math.ceil(self.start_s / step - 1e-9) * step
        return [float(t) for t in np.arange(first, self.end_s + 1e-9, step)]


def time_axis(axis: TimeAxis, top: float, bottom: float, label: str) -> Markup:
    """Vertical grid lines at the ticks from ``top`` to ``bottom`` and mm:ss labels below."""
    items = []
    for t in axis.ticks():
        x = axis.x(t)
        items.append(svg("line", x1=x, x2=x, y1=top, y2=bottom, class_="grid"))
        items.append(svg("text", format_clock(t), x=x, y=bottom + 14, class_="tick", text_anchor="middle"))
    items.append(svg("line", x1=axis.left, x2=axis.right, y1=bottom, y2=bottom, class_="axis"))
    items.append(svg("text", label, x=axis.right, y=bottom + AXIS_HEIGHT, class_="axis-label", text_anchor="end"))
    return Markup("").join(items)


def _chart(name: str, height: float, body: Sequence[Markup], description: str) -> Markup:
    return svg(
        "svg",
        [_title(description), *body],
        class_=f"chart chart-{name}",
        viewBox=f"0 0 {CHART_WIDTH} {_num(height)}",
        width="100%",
        role="img",
        aria_label=description,
        xmlns="http://www.w3.org/2000/svg",
    )


def _seconds(at: datetime, origin: datetime) -> float:
    return (at - origin).total_seconds()


def frame_step(times: Sequence[float]) -> float:
    """The sampling interval: the median gap between sampled frames (1 s when unknown)."""
    unique = np.unique(np.asarray(times, dtype=float))
    gaps = np.diff(unique)
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if len(gaps) else 1.0


def runs(times: Sequence[float], present: Sequence[bool], step: float) -> list[tuple[float, float]]:
    """Spans ``[t, t_last + step)`` of consecutive sampled frames where ``present`` holds; a gap
    of more than 1.5 steps between frames (nothing sampled) ends a span.

    >>> runs([0, 1, 2, 3, 7, 8], [True, True, False, True, True, True], 1.0)
    [(0.0, 2.0), (3.0, 4.0), (7.0, 9.0)]
    """
    spans: list[tuple[float, float]] = []
    start = last = None
    for t, on in zip(map(float, times), present):
        contiguous = last is not None and t - last <= 1.5 * step
        if on and start is not None and contiguous:
            last = t
            continue
        if start is not None:
            spans.append((start, last + step))
            start = None
        if on:
            start = t
        last = t
    if start is not None:
        spans.append((start, last + step))
    return spans


def line_segments(times: Sequence[float], values: Sequence[float], step: float) -> list[list[tuple[float, float]]]:
    """Points ``(t, value)`` cut into runs without NaN values and without sampling gaps.

    >>> line_segments([0, 1, 2, 3, 9], [0.1, float("nan"), 0.3, 0.4, 0.5], 1.0)
    [[(0.0, 0.1)], [(2.0, 0.3), (3.0, 0.4)], [(9.0, 0.5)]]
    """
    segments: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for t, value in zip(map(float, times), map(float, values)):
        if math.isnan(value):
            if current:
                segments.append(current)
            current = []
            continue
        if current and t - current[-1][0] > 1.5 * step:
            segments.append(current)
            current = []
        current.append((t, value))
    if current:
        segments.append(current)
    return segments


# --------------------------------------------------------------------------- the charts


ROW_HEIGHT = 22
ROW_GAP = 12
TOP = 14


def camera_chart(timeline: LessonTimeline, axis: TimeAxis, origin: datetime | None, axis_label: str) -> Markup:
    """Chart 1: each side's camera-on intervals as bars, the lesson span and bounds, and every
    disconnect (a ``<g class="disconnect">`` over the gap)."""
    roles = (timeline.student, timeline.teacher)
    bottom = TOP + len(roles) * (ROW_HEIGHT + ROW_GAP) + 8
    items: list[Markup] = [time_axis(axis, TOP - 6, bottom, axis_label)]
    if timeline.start is not None and timeline.end is not None and origin is not None:
        x0, x1 = axis.x(_seconds(timeline.start, origin)), axis.x(_seconds(timeline.end, origin))
        items.append(svg("rect", _title("the lesson: both cameras on"), x=x0, y=TOP - 6, width=max(x1 - x0, 1.0),
                         height=bottom - TOP + 6, class_="lesson-span"))  # fmt: skip
        for x, name, anchor in ((x0, "start", "start"), (x1, "end", "end")):
            items.append(svg("line", x1=x, x2=x, y1=TOP - 10, y2=bottom, class_="lesson-bound"))
            items.append(svg("text", name, x=x + (3 if anchor == "start" else -3), y=TOP - 1, class_="bound-label",
                             text_anchor=anchor))  # fmt: skip
    for row, role in enumerate(roles):
        y = TOP + 6 + row * (ROW_HEIGHT + ROW_GAP)
        items.append(svg("text", role.role, x=PLOT_LEFT - 8, y=y + ROW_HEIGHT * 0.7, class_="row-label",
                         text_anchor="end"))  # fmt: skip
        if origin is None:
            continue
        for interval in role.online:
            start, end = _seconds(interval.start, origin), _seconds(interval.end, origin)
            tip = f"{role.role} camera on {format_clock(start)}–{format_clock(end)}"
            items.append(svg("rect", _title(tip), x=axis.x(start), y=y, width=max(axis.x(end) - axis.x(start), 1.0),
                              height=ROW_HEIGHT, class_=f"online online-{role.role}"))  # fmt: skip
        for gap in role.disconnects:
            items.append(disconnect_marker(role.role, gap, axis, origin, y))
    if origin is None:
        items.append(svg("text", "no recordings", x=(axis.left + axis.right) / 2, y=bottom / 2, class_="empty",
                         text_anchor="middle"))  # fmt: skip
    return _chart("camera", bottom + AXIS_HEIGHT + 6, items, "Cameras on over time, lesson bounds and disconnects")


def disconnect_marker(role: str, gap: Interval, axis: TimeAxis, origin: datetime, y: float) -> Markup:
    """One disconnect: a hatched box over the offline gap and a triangle above where it began."""
    start, end = _seconds(gap.start, origin), _seconds(gap.end, origin)
    x0, x1 = axis.x(start), axis.x(end)
    tip = f"{role} disconnected at {format_clock(start)}, offline {gap.duration_s:.0f} s"
    triangle = f"M{_num(x0 - 5)},{_num(y - 7)} L{_num(x0 + 5)},{_num(y - 7)} L{_num(x0)},{_num(y - 1)} Z"
    return svg(
        "g",
        [
            _title(tip),
            svg("rect", x=x0, y=y, width=max(x1 - x0, 2.0), height=ROW_HEIGHT, class_="offline"),
            svg("path", d=triangle, class_="disconnect-mark"),
        ],
        class_="disconnect",
        data_role=role,
    )


SMILE_HEIGHT = 200
SMILE_TOP = 28
"""Room above the 1.0 line for the numbers of picks at the very top."""


def smile_chart(frames: pd.DataFrame, picks: Sequence[Pick], threshold: float, axis: TimeAxis,
                axis_label: str) -> Markup:  # fmt: skip
    """Charts 2 and 4: per sampled frame the highest child smile probability (a line, broken
    where no child was seen or nothing was sampled), the threshold, and each pick (a
    ``<g class="pick">`` numbered in GIF order, the first one, the GIF's cover, stressed)."""
    top, bottom = SMILE_TOP, SMILE_TOP + SMILE_HEIGHT

    def y(p: float) -> float:
        return bottom - min(max(float(p), 0.0), 1.0) * SMILE_HEIGHT

    items: list[Markup] = [time_axis(axis, top, bottom, axis_label)]
    for p in (0.0, 0.25, 0.5, 0.75, 1.0):
        items.append(svg("line", x1=axis.left, x2=axis.right, y1=y(p), y2=y(p), class_="grid"))
        items.append(svg("text", f"{p:.2f}", x=axis.left - 6, y=y(p) + 4, class_="tick", text_anchor="end"))
    items.append(svg("text", "smile", x=12, y=(top + bottom) / 2, class_="row-label",
                     transform=f"rotate(-90 12 {_num((top + bottom) / 2)})", text_anchor="middle"))  # fmt: skip
    items.append(svg("line", _title(f"selection threshold min_smile = {threshold:g}"), x1=axis.left, x2=axis.right,
                     y1=y(threshold), y2=y(threshold), class_="threshold"))  # fmt: skip
    if len(frames):
        step = frame_step(frames["t"])
        for segment in line_segments(frames["t"], frames["child_smile"].astype(float), step):
            if len(segment) == 1:
                t, p = segment[0]
                items.append(svg("circle", cx=axis.x(t), cy=y(p), r=1.8, class_="smile-dot"))
            else:
                points = " ".join(f"{_num(axis.x(t))},{_num(y(p))}" for t, p in segment)
                items.append(svg("polyline", points=points, class_="smile-line"))
    else:
        items.append(svg("text", "no sampled frames", x=(axis.left + axis.right) / 2, y=(top + bottom) / 2,
                         class_="empty", text_anchor="middle"))  # fmt: skip
    # Drawn over the data, with a white halo, so it stays legible.
    items.append(svg("text", f"min_smile {threshold:g}", x=axis.right - 4, y=y(threshold) - 4, class_="threshold-label",
                     text_anchor="end"))  # fmt: skip
    for number, pick in enumerate(picks, start=1):
        x, py = axis.x(pick.ref.t), y(pick.smile if math.isfinite(pick.smile) else 0.0)
        tip = f"GIF frame {number} (rank {pick.rank + 1}) at {format_clock(pick.ref.t)}: smile {pick.smile:.2f}, child {pick.child:.2f}"
        items.append(svg(
            "g",
            [
                _title(tip),
                svg("line", x1=x, x2=x, y1=py, y2=bottom, class_="pick-stem"),
                svg("circle", cx=x, cy=py, r=6 if number == 1 else 4.5, class_="pick-dot"),
                svg("text", str(number), x=x, y=py - 9, class_="pick-label", text_anchor="middle"),
            ],
            class_="pick cover" if number == 1 else "pick",
        ))  # fmt: skip
    return _chart("smile", bottom + AXIS_HEIGHT + 6, items,
                  "Highest child smile probability per sampled frame, threshold and chosen frames")  # fmt: skip


def presence_chart(frames: pd.DataFrame, axis: TimeAxis, axis_label: str) -> Markup:
    """Chart 3: which sampled frames exist, show a child, show an adult (one strip each)."""
    rows = (("sampled", None), ("child", "child"), ("adult", "adult"))
    bottom = TOP + len(rows) * (ROW_HEIGHT + ROW_GAP)
    items: list[Markup] = [time_axis(axis, TOP - 6, bottom, axis_label)]
    step = frame_step(frames["t"]) if len(frames) else 1.0
    times = frames["t"].astype(float).tolist() if len(frames) else []
    for row, (name, column) in enumerate(rows):
        y = TOP + row * (ROW_HEIGHT + ROW_GAP)
        items.append(svg("text", name, x=PLOT_LEFT - 8, y=y + ROW_HEIGHT * 0.7, class_="row-label", text_anchor="end"))
        present = [True] * len(times) if column is None else frames[column].astype(bool).tolist()
        for start, end in runs(times, present, step):
            tip = f"{name}: {format_clock(start)}–{format_clock(end)}"
            items.append(svg("rect", _title(tip), x=axis.x(start), y=y, width=max(axis.x(end) - axis.x(start), 1.0),
                              height=ROW_HEIGHT, class_=f"presence presence-{name}"))  # fmt: skip
    if not times:
        items.append(svg("text", "no sampled frames", x=(axis.left + axis.right) / 2, y=bottom / 2, class_="empty",
                         text_anchor="middle"))  # fmt: skip
    return _chart("presence", bottom + AXIS_HEIGHT + 6, items, "Sampled frames with a child or an adult face")


# --------------------------------------------------------------------------- the page


def lesson_origin(timeline: LessonTimeline) -> datetime | None:
    """Time zero of the charts: the lesson's start, else (no lesson) the first camera on."""
    if timeline.start is not None:
        return timeline.start
    starts = [i.start for i in (*timeline.student.online, *timeline.teacher.online)]
    return min(starts) if starts else None


def chart_axis(timeline: LessonTimeline, origin: datetime | None, frames: pd.DataFrame) -> TimeAxis:
    """One time axis for every chart: the lesson and every camera interval, and every frame."""
    points = [0.0, float(timeline.duration_s or 0.0)]
    if origin is not None:
        for interval in (*timeline.student.online, *timeline.teacher.online):
            points += [_seconds(interval.start, origin), _seconds(interval.end, origin)]
    if len(frames):
        points += [float(frames["t"].min()), float(frames["t"].max()) + frame_step(frames["t"])]
    start, end = min(points), max(points)
    if end - start < 1.0:
        end = start + 60.0
    return TimeAxis(start, end)


@dataclass(frozen=True)
class FrameRow:
    """A row of the chosen-frames table."""

    number: int
    rank: int
    t: str
    at: str
    smile: str
    child: str
    sharpness: str
    brightness: str


def _fixed(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if value is not None and math.isfinite(value) else "–"


def frame_rows(picks: Sequence[Pick]) -> list[FrameRow]:
    return [
        FrameRow(n, p.rank + 1, format_clock(p.ref.t), utc_iso(p.ref.at), _fixed(p.smile, 3), _fixed(p.child, 3),
                 _fixed(p.sharpness, 0), _fixed(p.brightness, 0))  # fmt: skip
        for n, p in enumerate(picks, start=1)
    ]


def person_rows(judged: Judged) -> list[dict[str, str]]:
    """One row per person (:mod:`highlights.stages.persons`): who (the student, another child, an
    adult, a picture), when on camera, for how many sampled seconds, the evidence of the verdict
    (clear and dim faces, the child probability), and their face tracks."""
    rows = []
    for person in judged.persons:
        who = "student" if person.student else ("picture" if person.kind == "picture" else "other")
        rows.append({
            "id": str(person.id), "who": who, "kind": person.kind, "from": format_clock(person.first_s),
            "to": format_clock(person.last_s), "seconds": str(person.seconds),
            "child": "–" if math.isnan(person.child_prob) else f"{person.child_prob:.2f}",
            "evidence": f"{person.clear_faces} clear, {person.dim_faces} dim",
            "tracks": ", ".join(str(t) for t in person.tracks),
        })  # fmt: skip
    return rows


def track_rows(scores: pd.DataFrame, options: TrackOptions | None = None) -> list[dict[str, str]]:
    """One row per face track (:mod:`highlights.stages.tracks`): when it was on camera, for how many
    sampled frames, and how it was judged (child, adult, or undecided, which counts as adult),
    with the selection's ``options`` so the report shows the decisions the selection made."""
    if scores.empty or not (scores["face"] >= 0).any():
        return []
    rows = []
    for track in tracks_of(scores, options):  # judged here unless the table already is
        rows.append({
            "id": str(track.id), "from": format_clock(track.start_s), "to": format_clock(track.end_s),
            "frames": str(len(track)), "kind": track.kind,
            "child": "–" if math.isnan(track.child_score) else f"{track.child_score:.2f}",
            "smile": f"{max(track.smoothed_smiles):.2f}",
        })  # fmt: skip
    return rows


def render_report(
    result: LessonResult,
    timeline: LessonTimeline,
    table: FaceTable | pd.DataFrame,
    selection: Selection,
    info: LessonInfo,
    *,
    smile_threshold: float | None = None,
    templates_dir: Path | None = None,
    analytics: AnalyticsOptions | None = None,
    track_options: TrackOptions | None = None,
    person_options: PersonOptions | None = None,
    student_age_group: str = "child",
) -> str:
    """The lesson's report page (HTML, self-contained: inline CSS and SVG, no scripts).

    ``table``: the lesson's face table (:class:`~highlights.core.faces.FaceTable`; may be empty).
    ``smile_threshold``: the selection's ``min_smile`` (default ``SelectionOptions().min_smile``;
    pass the configured one). ``info`` is used for the email-relevant facts only (locale, and
    whether name, subject and lesson URL are given), never the name itself. ``analytics``: a
    switched-off smile detection or presence (``AnalyticsOptions``) leaves its chart and counts out.
    """
    analytics = analytics or AnalyticsOptions()
    threshold = SelectionOptions().min_smile if smile_threshold is None else float(smile_threshold)
    # Judged once by track and person, as the selection and the analytics judge: the presence and
    # smile charts and the persons table show the decisions behind the GIF.
    scores = FaceTable.of(table).data
    judged = None
    if not scores.empty:
        judged = judge_lesson(scores, person_options, track_options, student_age_group)
        scores = judged.table
    frames = frame_table(scores, threshold, judged)
    frames = frames.sort_values("t", kind="stable").reset_index(drop=True)
    origin = lesson_origin(timeline)
    axis = chart_axis(timeline, origin, frames)
    axis_label = (
        "lesson time (mm:ss since the lesson start)"
        if timeline.start is not None
        else "time (mm:ss since the first camera on; no lesson took place)"
    )
    disconnects = result.disconnects
    context = {
        "result": result,
        "lesson_id": result.lesson_id or timeline.lesson_id,
        "timeline": timeline,
        "start": result.lesson.start if result.lesson else (timeline.start.isoformat() if timeline.start else None),
        "end": result.lesson.end if result.lesson else (timeline.end.isoformat() if timeline.end else None),
        "duration": format_clock(timeline.duration_s) if timeline.duration_s is not None else None,
        "disconnects": {
            "student": disconnects.student if disconnects else len(timeline.student.disconnects),
            "teacher": disconnects.teacher if disconnects else len(timeline.teacher.disconnects),
            "student_offline": format_clock(timeline.student.offline_s),
            "teacher_offline": format_clock(timeline.teacher.offline_s),
        },
        "stats": selection.stats,
        "selection": selection,
        "threshold": threshold,
        "frames": frame_rows(selection.picks),
        "tracks": track_rows(scores, track_options),
        "persons": person_rows(judged) if judged is not None else [],
        "gif_kb": f"{result.gif_bytes / 1024:.0f}" if result.gif_bytes else None,
        "email": {
            "locale": info.locale,
            "name": bool(info.student_name and info.student_name.strip()),
            "subject": bool(info.subject and info.subject.strip()),
            "lesson_url": bool(info.lesson_url),
        },
        "charts": {
            "camera": camera_chart(timeline, axis, origin, axis_label),
            "smile": smile_chart(frames, selection.picks, threshold, axis, axis_label) if analytics.smiles else None,
            "presence": presence_chart(frames, axis, axis_label) if analytics.presence else None,
        },
        "versions": sorted((str(k), str(v)) for k, v in (result.versions or {}).items()),
    }
    environment = template_environment(Path(templates_dir or TEMPLATES_DIR).resolve())
    return environment.get_template(REPORT_TEMPLATE).render(context)


# --------------------------------------------------------------------------- a withdrawn highlight


WITHDRAWN_COLOUR = "#6e7781"
"""The badge colour of ``withdrawn`` (the dashboard's)."""
_WITHDRAWN_NOTE = re.compile(r'<p class="withdrawn-note"[^>]*>.*?</p>\n?', re.DOTALL)
_TITLE_STATUS = re.compile(r"(<title>[^<]*: )[a-z_]+(</title>)")
_STATUS_BADGE = re.compile(r'<span class="status status-[a-z_]+"[^>]*>[a-z_]+</span>')
_GIF_FIGURE = re.compile(r'<figure class="gif">.*?</figure>', re.DOTALL)
_GIF_FACT = re.compile(r"(<tr><th>GIF</th><td>).*?(</td></tr>)", re.DOTALL)
_BODY = re.compile(r"<body[^>]*>\n?")


def mark_withdrawn(html: str, reason: str) -> str:
    """A lesson's ``report.html`` (as :func:`render_report` wrote it) marked withdrawn: a note at
    the top of the page with ``reason``, the status badge and page title ``withdrawn``, and the
    deleted GIF neither shown nor named. The figures and the run's reason stay: they are those
    of the run that made the highlight. Marking a marked page again replaces its note. A page of
    another template (``[email] templates_dir``) gets at least the note, after ``<body>``."""
    note = Markup(
        '<p class="withdrawn-note" role="alert" style="margin:0;padding:10px 20px;background:#fff8c5;'
        'border-bottom:1px solid #d4a72c;font-weight:600">Withdrawn: {}. The GIF and the email snippet are '
        "deleted and the campaign no longer finds this highlight; the figures below are those of the run "
        "that made it.</p>\n"
    ).format(reason)
    html = _WITHDRAWN_NOTE.sub("", html)
    html = _TITLE_STATUS.sub(r"\1withdrawn\2", html, count=1)
    badge = f'<span class="status status-withdrawn" style="background:{WITHDRAWN_COLOUR}">withdrawn</span>'
    html = _STATUS_BADGE.sub(lambda _: badge, html, count=1)
    html = _GIF_FIGURE.sub(lambda _: '<figure class="gif"><div class="no-gif">GIF withdrawn</div></figure>', html,
                           count=1)  # fmt: skip
    html = _GIF_FACT.sub(lambda m: f'{m.group(1)}<span class="muted">withdrawn (deleted)</span>{m.group(2)}', html,
                         count=1)  # fmt: skip
    body = _BODY.search(html)
    at = body.end() if body else 0
    return html[:at] + str(note) + html[at:]


__all__ = [
    "TimeAxis",
    "camera_chart",
    "format_clock",
    "mark_withdrawn",
    "presence_chart",
    "render_report",
    "smile_chart",
]
