"""A handful of lessons with known figures, saved to a database the way the pipeline leaves them.

Each lesson folder gets a real ``analytics.json`` (``highlights.stages.analytics``), a real
``selection.json`` (``select_highlights``) and a ``report.html``, and the result is saved with
``ResultStore.save``. Five-minute lessons, one sampled frame a second, the child always in view:

=========  ==========  =====================  ==================  =====================  ==========
lesson     day         disconnects s / t      adult in minutes    child smiles           processing
=========  ==========  =====================  ==================  =====================  ==========
L-A        2026-11-23  2 / 0                  1, 3                minute 0               120 s
L-B        2026-11-24  0 / 3                  1                   minute 0               30 s
L-C        2026-11-25  1 / 1                  –                   minute 0               600 s
L-D        2026-11-10  5 / 0                  1                   never                  60 s
=========  ==========  =====================  ==================  =====================  ==========

plus ``L-E`` (failed: a bad manifest row, 2026-11-24) and ``L-F`` (no_lesson, 2026-11-25).
"Last week" is 2026-11-23 to 2026-11-29.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from highlights.core.faces import SCORE_COLUMNS, SCORE_DTYPES
from highlights.core.result import Disconnects, HighlightFrame, LessonBounds, LessonResult
from highlights.files import write_json_atomic
from highlights.lesson.folder import lesson_record, write_analytics
from highlights.persist.store import ResultStore
from highlights.stages.analytics import AnalyticsOptions, lesson_analytics
from highlights.stages.selection import select_highlights
from highlights.stages.timeline import lesson_bounds

DURATION_S = 300
LESSONS = {
    # id: (start, student disconnects, teacher disconnects, adult minutes, smiling minutes, processing s)
    "L-A": (datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc), 2, 0, {1, 3}, {0}, 120),
    "L-B": (datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc), 0, 3, {1}, {0}, 30),
    "L-C": (datetime(2026, 11, 25, 17, 0, tzinfo=timezone.utc), 1, 1, set(), {0}, 600),
    "L-D": (datetime(2026, 11, 10, 15, 0, tzinfo=timezone.utc), 5, 0, {1}, set(), 60),
}
LAST_WEEK = ("2026-11-23", "2026-11-30")  # :since included, :until excluded


def _spans(start: datetime, disconnects: int, first_gap_s: float) -> list[tuple[datetime, datetime]]:
    """One role online for the whole lesson but for ``disconnects`` gaps of 5 s, 40 s apart."""
    spans, t = [], 0.0
    for k in range(disconnects):
        gap = first_gap_s + 40.0 * k
        spans.append((start + timedelta(seconds=t), start + timedelta(seconds=gap)))
        t = gap + 5.0
    spans.append((start + timedelta(seconds=t), start + timedelta(seconds=DURATION_S)))
    return spans


def _scores(start: datetime, timeline, adult_minutes: set[int], smile_minutes: set[int], seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows, frame = [], 0
    for k in range(DURATION_S):
        at = start + timedelta(seconds=k)
        if not any(i.start <= at < i.end for i in timeline.student.online):
            continue
        base = dict(frame=frame, t=float(k), at=at.isoformat(), source="student.webm", offset_s=float(k),
                    det_prob=0.999, sharpness=300.0, brightness=120.0)  # fmt: skip
        smile = 0.9 if k // 60 in smile_minutes else 0.2
        dx = 4.0 * math.sin(k * 1.3)  # a live face moves a little (a still one is a picture)
        rows.append({**base, "face": 0, "x1": 100.0 + dx, "y1": 100.0, "x2": 164.0 + dx, "y2": 164.0, "child_prob": 0.95,
                     "smile_prob": smile, "is_child": True, "crop_hash": f"{rng.getrandbits(64):016x}"})  # fmt: skip
        if k // 60 in adult_minutes and k % 60 < 10:
            rows.append({**base, "face": 1, "x1": 300.0, "y1": 80.0, "x2": 380.0, "y2": 160.0, "child_prob": 0.05,
                         "smile_prob": 0.3, "is_child": False, "crop_hash": f"{rng.getrandbits(64):016x}"})  # fmt: skip
        frame += 1
    return pd.DataFrame(rows, columns=SCORE_COLUMNS).astype(SCORE_DTYPES)


def save_lessons(store: ResultStore, out: Path, options: AnalyticsOptions | None = None) -> dict[str, LessonResult]:
    """Write the lessons' folders under ``out`` and save them to ``store``; the results by id."""
    results = {}
    for seed, (lesson_id, (start, student_dc, teacher_dc, adults, smiles, processing_s)) in enumerate(LESSONS.items()):
        folder = out / lesson_id
        folder.mkdir(parents=True, exist_ok=True)
        timeline = lesson_bounds(lesson_id, student=_spans(start, student_dc, 30.0), teacher=_spans(start, teacher_dc, 50.0))
        scores = _scores(start, timeline, adults, smiles, seed)
        analytics = lesson_analytics(lesson_id, scores, timeline, smile_threshold=0.6, options=options)
        write_analytics(analytics, folder)
        selection = select_highlights(scores)
        write_json_atomic(folder / "selection.json", selection.to_dict())
        (folder / "report.html").write_text(f"<!DOCTYPE html><title>{lesson_id}</title><p>report</p>", encoding="utf-8")
        result = LessonResult(
            lesson_id, selection.status, reason=selection.reason or "",
            lesson=LessonBounds(timeline.start.isoformat(), timeline.end.isoformat(), timeline.duration_s),
            disconnects=Disconnects(len(timeline.student.disconnects), len(timeline.teacher.disconnects),
                                    timeline.student.offline_s, timeline.teacher.offline_s),
            frames=[HighlightFrame(p.ref, p.smile, p.child) for p in selection.picks],
            report="report.html", scores="scores.csv", analytics="analytics.json",
            versions={"highlights": "0.1.0"}, fingerprint=f"fp-{lesson_id}",
            started_at=(start + timedelta(hours=12)).isoformat(),
            finished_at=(start + timedelta(hours=12, seconds=processing_s)).isoformat(),
            folder=folder,
        )  # fmt: skip
        assert (len(timeline.student.disconnects), len(timeline.teacher.disconnects)) == (student_dc, teacher_dc)
        store.save(lesson_record(result), now=start + timedelta(hours=12, seconds=processing_s))
        results[lesson_id] = result
    failed = LessonResult("L-E", "failed", reason="lesson L-E: manifest.csv row 9: started_at is not a time",
                          started_at="2026-11-24T02:00:00+00:00", finished_at="2026-11-24T02:00:01+00:00")  # fmt: skip
    store.save(failed, now=datetime(2026, 11, 24, 2, 0, 1, tzinfo=timezone.utc))
    no_lesson = LessonResult("L-F", "no_lesson", reason="the cameras were never on together",
                             disconnects=Disconnects(0, 0, 0.0, 0.0), folder=out / "L-F",
                             started_at="2026-11-25T02:00:00+00:00", finished_at="2026-11-25T02:00:04+00:00")  # fmt: skip
    store.save(no_lesson, now=datetime(2026, 11, 25, 2, 0, 4, tzinfo=timezone.utc))
    results.update({"L-E": failed, "L-F": no_lesson})
    return results


__all__ = ["LAST_WEEK", "LESSONS", "save_lessons"]
