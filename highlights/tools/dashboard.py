"""A night's overview for people: one self-contained HTML page over the database's lessons.

``highlights dashboard --db URL [--since DATE] [--until DATE] --out overview.html`` reads
``lesson_highlights``, ``lesson_totals`` and ``lesson_minutes`` (highlights/store.py) and writes
one page (atomically) with its charts drawn by matplotlib's SVG backend and inlined: no script,
no CDN, no font to fetch (text is drawn as SVG paths), so it opens offline and in a mail client's
preview alike. What it shows, for the lessons of the period:

1. lessons per status, and the reasons behind ``no_highlight`` and ``failed``
   (``lesson_totals.reason_category``, vocabulary :data:`highlights.stages.analytics.REASON_CATEGORIES`);
2. disconnects per side: how many lessons had 0, 1, 2, 3 or more disconnects of the student and
   of the teacher, and the offline minutes per side;
3. parent presence: the share of lessons with an adult's face on the student's camera, by minute
   of lesson (the README's example query);
4. smile detection: the mean smiling share of the child by minute of lesson;
5. the slowest lessons (``lesson_totals.processing_s``);
6. every lesson, linking to its ``report.html`` (a link relative to the page when the report is
   on this machine; the row's ``result_path`` says where the lesson's folder is).

Charts 3 and 4 are left out when the deployment switched smile detection or presence off
(``[analytics]`` in the config: the figures are not stored then anyway).

The period: a lesson belongs to it when its start (UTC) falls on a day from ``since`` to
``until``, both included; a lesson without a start (failed before its timeline, no lesson) by
the day its row was last written. Without bounds, every lesson in the database.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from markupsafe import Markup
from sqlalchemy import DateTime, and_, func, literal, select

from highlights.core.result import STATUSES
from highlights.files import write_text_atomic
from highlights.persist.store import LessonHighlight, LessonMinute, LessonTotals, ResultStore
from highlights.render import TEMPLATES_DIR, template_environment
from highlights.stages.analytics import REASON_CATEGORIES, AnalyticsOptions

DASHBOARD_TEMPLATE = "dashboard.html.j2"
SLOWEST = 10
"""How many of the slowest lessons the page lists."""
STATUS_COLOURS = {"ok": "#2da44e", "no_highlight": "#bf8700", "no_lesson": "#8c959f", "failed": "#cf222e",
                  "withdrawn": "#6e7781", "busy": "#8250df"}
SIDE_COLOURS = {"student": "#2da44e", "teacher": "#8250df"}
LINE_COLOUR = "#0969da"


@dataclass(frozen=True)
class Overview:
    """The figures of the page: one row per lesson, one per lesson and minute."""

    since: date | None
    until: date | None
    lessons: pd.DataFrame
    minutes: pd.DataFrame
    generated_at: datetime


# --------------------------------------------------------------------------- the data


def _day_start(day: date | None) -> datetime | None:
    return datetime.combine(day, time(0), tzinfo=timezone.utc) if day is not None else None


def load_overview(store: ResultStore, since: date | None = None, until: date | None = None) -> Overview:
    """The period's lessons and their minutes from the store's database."""
    h, t, m = LessonHighlight.__table__, LessonTotals.__table__, LessonMinute.__table__
    when = func.coalesce(h.c.lesson_start, h.c.updated_at)
    conditions = []
    lo, hi = _day_start(since), _day_start(until + timedelta(days=1) if until else None)
    # Typed bounds: compared as timestamps on PostgreSQL, in the stored text form on SQLite.
    if lo is not None:
        conditions.append(when >= literal(lo, DateTime(timezone=True)))
    if hi is not None:
        conditions.append(when < literal(hi, DateTime(timezone=True)))
    lesson_columns = [
        h.c.lesson_id, h.c.status, h.c.reason, h.c.lesson_start, h.c.duration_s, h.c.result_path, h.c.updated_at,
        h.c.student_disconnects, h.c.teacher_disconnects, h.c.student_offline_s, h.c.teacher_offline_s,
        t.c.reason_category, t.c.minutes_with_parent, t.c.smile_share, t.c.processing_s,
    ]  # fmt: skip
    lessons_query = select(*lesson_columns).select_from(h.outerjoin(t, t.c.lesson_id == h.c.lesson_id))
    minutes_query = select(m.c.lesson_id, m.c.minute, m.c.frames, m.c.adult_frames, m.c.smile_share).select_from(
        m.join(h, h.c.lesson_id == m.c.lesson_id)
    )
    if conditions:
        lessons_query = lessons_query.where(and_(*conditions))
        minutes_query = minutes_query.where(and_(*conditions))
    with store.engine.connect() as connection:
        lessons = pd.DataFrame(connection.execute(lessons_query.order_by(h.c.lesson_id)).mappings().all(),
                               columns=[c.name for c in lesson_columns])  # fmt: skip
        minutes = pd.DataFrame(connection.execute(minutes_query).mappings().all(),
                               columns=["lesson_id", "minute", "frames", "adult_frames", "smile_share"])  # fmt: skip
    return Overview(since, until, lessons, minutes, datetime.now(timezone.utc))


def parent_presence_by_minute(minutes: pd.DataFrame) -> pd.DataFrame:
    """``minute, lessons, share``: of the lessons with frames in that minute, the share with an
    adult's face seen (minutes whose presence figures were not stored are left out)."""
    known = minutes.dropna(subset=["adult_frames"])
    known = known[known["frames"] > 0]
    if known.empty:
        return pd.DataFrame(columns=["minute", "lessons", "share"])
    per_lesson = known.assign(parent=known["adult_frames"] > 0).groupby(["lesson_id", "minute"])["parent"].max()
    grouped = per_lesson.groupby("minute")
    return pd.DataFrame({"lessons": grouped.size(), "share": grouped.mean()}).reset_index()


def smile_share_by_minute(minutes: pd.DataFrame) -> pd.DataFrame:
    """``minute, lessons, share``: the mean smiling share of the child over the lessons."""
    known = minutes.dropna(subset=["smile_share"])
    if known.empty:
        return pd.DataFrame(columns=["minute", "lessons", "share"])
    grouped = known.groupby("minute")["smile_share"]
    return pd.DataFrame({"lessons": grouped.size(), "share": grouped.mean()}).reset_index()


def disconnect_counts(lessons: pd.DataFrame) -> pd.DataFrame:
    """Lessons per number of disconnects (0, 1, 2, 3+; index) and side (columns)."""
    labels = ["0", "1", "2", "3+"]
    table = {}
    for side in ("student", "teacher"):
        values = lessons[f"{side}_disconnects"].dropna().astype(int).clip(upper=3)
        table[side] = [int((values == k).sum()) for k in range(4)]
    return pd.DataFrame(table, index=labels)


# --------------------------------------------------------------------------- the charts


def _svg(figure: Any, name: str) -> Markup:
    """A matplotlib figure as inline SVG: text as paths (no font needed), ids unique per chart."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    FigureCanvasSVG(figure)
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": f"highlights-{name}"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    # Glyph ids are shared between charts (the same glyph, the same path); give each chart its own.
    text = re.sub(r'id="(DejaVu[^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r'xlink:href="#(DejaVu[^"]+)"', rf'xlink:href="#{name}-\1"', text)
    text = text.replace("<svg ", f'<svg class="chart" data-chart="{name}" role="img" ', 1)
    return Markup(text)


def _figure(width: float = 6.4, height: float = 3.2) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    figure.patch.set_facecolor("white")
    return figure


def _style(axes: Any, integer_x: bool = False, integer_y: bool = False) -> None:
    from matplotlib.ticker import MaxNLocator

    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=9)
    if integer_x:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if integer_y:
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))


def _empty(axes: Any, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, fontsize=10, color="#6e7781")
    axes.set_xticks([])
    axes.set_yticks([])


def status_chart(lessons: pd.DataFrame) -> Markup:
    figure = _figure(6.4, 2.4)
    axes = figure.add_subplot()
    counts = lessons["status"].value_counts()
    values = [int(counts.get(s, 0)) for s in STATUSES]
    bars = axes.barh(list(STATUSES), values, color=[STATUS_COLOURS[s] for s in STATUSES])
    axes.bar_label(bars, padding=3, fontsize=9)
    axes.invert_yaxis()
    axes.set_xlabel("lessons", fontsize=9)
    _style(axes, integer_x=True)
    return _svg(figure, "status")


def reasons_chart(lessons: pd.DataFrame) -> Markup:
    figure = _figure(6.4, 3.0)
    axes = figure.add_subplot()
    reasons = lessons[lessons["status"].isin(["no_highlight", "failed"])]
    counts = reasons.groupby(["status", reasons["reason_category"].fillna("unknown")]).size()
    if counts.empty:
        _empty(axes, "no lesson without a highlight")
    else:
        order = counts.sort_values(ascending=True)
        labels = [f"{category} ({status})" for status, category in order.index]
        colours = [STATUS_COLOURS[status] for status, _ in order.index]
        bars = axes.barh(labels, order.to_numpy(), color=colours)
        axes.bar_label(bars, padding=3, fontsize=9)
        axes.set_xlabel("lessons", fontsize=9)
        _style(axes, integer_x=True)
    return _svg(figure, "reasons")


def disconnects_chart(lessons: pd.DataFrame) -> Markup:
    figure = _figure(6.4, 2.8)
    axes = figure.add_subplot()
    table = disconnect_counts(lessons)
    if table.to_numpy().sum() == 0:
        _empty(axes, "no lesson took place")
    else:
        positions = range(len(table))
        for offset, side in ((-0.2, "student"), (0.2, "teacher")):
            bars = axes.bar([p + offset for p in positions], table[side], width=0.4, label=side,
                            color=SIDE_COLOURS[side])  # fmt: skip
            axes.bar_label(bars, padding=2, fontsize=8)
        axes.set_xticks(list(positions), table.index)
        axes.set_xlabel("disconnects in the lesson", fontsize=9)
        axes.set_ylabel("lessons", fontsize=9)
        axes.legend(fontsize=8, frameon=False)
        _style(axes, integer_y=True)
    return _svg(figure, "disconnects")


def by_minute_chart(table: pd.DataFrame, name: str, label: str, empty: str) -> Markup:
    figure = _figure(6.4, 2.8)
    axes = figure.add_subplot()
    if table.empty:
        _empty(axes, empty)
    else:
        axes.plot(table["minute"], table["share"] * 100, color=LINE_COLOUR, linewidth=1.6, marker="o", markersize=2.5)
        axes.fill_between(table["minute"], table["share"] * 100, color=LINE_COLOUR, alpha=0.12)
        axes.set_ylim(0, 100)
        axes.set_xlim(left=0)
        axes.set_xlabel("minute of lesson", fontsize=9)
        axes.set_ylabel(label, fontsize=9)
        _style(axes, integer_x=True)
    return _svg(figure, name)


def slowest_chart(slowest: pd.DataFrame) -> Markup:
    figure = _figure(6.4, 0.6 + 0.28 * max(len(slowest), 1))
    axes = figure.add_subplot()
    if slowest.empty:
        _empty(axes, "no processing time recorded")
    else:
        bars = axes.barh(slowest["lesson_id"], slowest["processing_s"] / 60,
                         color=[STATUS_COLOURS.get(s, "#8c959f") for s in slowest["status"]])  # fmt: skip
        axes.bar_label(bars, labels=[f"{v / 60:.1f}" for v in slowest["processing_s"]], padding=3, fontsize=8)
        axes.invert_yaxis()
        axes.set_xlabel("processing time (minutes)", fontsize=9)
        _style(axes)
    return _svg(figure, "slowest")


# --------------------------------------------------------------------------- the page


def report_link(result_path: Any, page: Path) -> str | None:
    """The lesson's ``report.html`` as a link relative to the page (None when it is not here)."""
    if not isinstance(result_path, str) or not result_path:
        return None
    report = Path(result_path).parent / "report.html"
    if not report.is_file():
        return None
    try:
        return Path(os.path.relpath(report.resolve(), page.resolve().parent)).as_posix()
    except ValueError:  # another drive (Windows): an absolute link
        return report.resolve().as_uri()


def _clock(seconds: Any) -> str:
    if seconds is None or pd.isna(seconds):
        return "–"
    total = int(round(float(seconds)))
    return f"{total // 60}:{total % 60:02d}"


def _when(value: Any) -> str:
    if value is None or pd.isna(value):
        return "–"
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
    return str(value)[:16]


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _int(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else str(int(value))


def render_dashboard(overview: Overview, page: Path, *, analytics: AnalyticsOptions | None = None,
                     templates_dir: Path | None = None) -> str:  # fmt: skip
    """The page's HTML; ``page`` is where it will be written (the report links are relative to it)."""
    analytics = analytics or AnalyticsOptions()
    lessons = overview.lessons
    rows = [
        {
            "lesson_id": r.lesson_id, "status": r.status, "category": _text(r.reason_category),
            "start": _when(r.lesson_start), "duration": _clock(r.duration_s),
            "student_disconnects": _int(r.student_disconnects), "teacher_disconnects": _int(r.teacher_disconnects),
            "processing": _clock(r.processing_s), "report": report_link(r.result_path, page),
        }
        for r in lessons.itertuples(index=False)
    ]  # fmt: skip
    by_id = {row["lesson_id"]: row for row in rows}
    timed = lessons.dropna(subset=["processing_s"])
    slowest = timed.sort_values(["processing_s", "lesson_id"], ascending=[False, True]).head(SLOWEST)
    counts = lessons["status"].value_counts()
    charts = {
        "status": status_chart(lessons),
        "reasons": reasons_chart(lessons),
        "disconnects": disconnects_chart(lessons),
        "slowest": slowest_chart(slowest),
        "presence": by_minute_chart(parent_presence_by_minute(overview.minutes), "presence",
                                    "lessons with a parent in view (%)", "no presence figures stored")
        if analytics.presence else None,
        "smiles": by_minute_chart(smile_share_by_minute(overview.minutes), "smiles",
                                  "smiling share of the child (%)", "no smile-detection figures stored")
        if analytics.smiles else None,
    }  # fmt: skip
    context = {
        "since": overview.since.isoformat() if overview.since else None,
        "until": overview.until.isoformat() if overview.until else None,
        "generated_at": overview.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        "total": len(lessons),
        "counts": [(s, int(counts.get(s, 0))) for s in STATUSES],
        "offline_min": {
            side: f"{lessons[f'{side}_offline_s'].fillna(0).sum() / 60:.0f}" for side in ("student", "teacher")
        },
        "charts": charts,
        "slowest": [by_id[lesson_id] for lesson_id in slowest["lesson_id"]],
        "lessons": rows,
        "categories": sorted(REASON_CATEGORIES.items()),
        "analytics": analytics,
    }
    environment = template_environment(Path(templates_dir or TEMPLATES_DIR).resolve())
    return environment.get_template(DASHBOARD_TEMPLATE).render(context)


def write_dashboard(database: str | ResultStore, out: Path | str, *, since: date | None = None,
                    until: date | None = None, analytics: AnalyticsOptions | None = None,
                    templates_dir: Path | None = None) -> Path:  # fmt: skip
    """Read the database, write the page to ``out`` atomically; returns its path. A database
    URL naming a SQLite file that does not exist raises :class:`~highlights.persist.store.NoDatabase`
    (nothing is created)."""
    if since and until and since > until:
        raise ValueError(f"--since {since} is after --until {until}")
    out = Path(out)
    store = database if isinstance(database, ResultStore) else ResultStore(database, create=False)  # a reader
    try:
        overview = load_overview(store, since, until)
    finally:
        if store is not database:
            store.dispose()
    write_text_atomic(out, render_dashboard(overview, out, analytics=analytics, templates_dir=templates_dir))
    return out


__all__ = ["Overview", "load_overview", "render_dashboard", "write_dashboard"]
