"""The per-lesson report: structure of the SVG charts, the edge cases, escaping, and a real
browser rendering it (headless Chromium; skipped where none is installed)."""

from __future__ import annotations

import doctest
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import highlights.stages.report
from highlights.core.faces import SCORE_COLUMNS, SCORE_DTYPES, FaceTable
from highlights.core.lesson import LessonInfo
from highlights.core.result import Disconnects, HighlightFrame, LessonBounds, LessonResult
from highlights.stages.report import format_clock, render_report, runs
from highlights.stages.selection import Selection, select_highlights
from highlights.stages.timeline import LessonTimeline, lesson_bounds

from support.chromium import chromium_binary, run_chromium, screenshot_rgb

T0 = datetime(2026, 11, 20, 16, 0, 0, tzinfo=timezone.utc)
STUDENT_NAME = "Zoe Secretname"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sample_timeline(duration_s: float = 600.0) -> LessonTimeline:
    """Teacher on 2 min early, drops out once at 45-52%; the student drops out once at 30%."""
    d = duration_s
    return lesson_bounds(
        "L-1001",
        student=[(at(0), at(0.30 * d)), (at(0.30 * d + 40), at(d))],
        teacher=[(at(-120), at(0.45 * d)), (at(0.52 * d), at(d + 15))],
    )


def sample_scores(timeline: LessonTimeline, seed: int = 7) -> pd.DataFrame:
    """One sampled frame a second while the student is online: mostly one child face with a
    smile that comes and goes, sometimes an adult leaning in, sometimes nobody."""
    rng = np.random.default_rng(seed)
    rows = []
    frame = 0
    for k in range(int(timeline.duration_s)):
        t = float(k)
        if not any(i.start <= at(t) < i.end for i in timeline.student.online):
            continue
        base = dict(frame=frame, t=t, at=at(t).isoformat(), source="student-1.webm", offset_s=t)
        phase = k % 97
        if phase < 6:  # nobody in front of the camera
            rows.append({**base, "face": -1, "x1": np.nan, "y1": np.nan, "x2": np.nan, "y2": np.nan,
                         "det_prob": np.nan, "child_prob": np.nan, "smile_prob": np.nan, "is_child": False,
                         "sharpness": np.nan, "brightness": np.nan, "crop_hash": ""})  # fmt: skip
        else:
            smile = float(np.clip(0.35 + 0.3 * np.sin(k / 23.0) + 0.5 * (phase in range(40, 46)) + rng.normal(0, 0.05), 0, 1))
            dx = 6.0 * np.sin(t * 1.3)  # a live face moves a little (a still one is a picture)
            rows.append({**base, "face": 0, "x1": 200.0 + dx, "y1": 120.0, "x2": 310.0 + dx, "y2": 240.0, "det_prob": 0.999,
                         "child_prob": 0.93, "smile_prob": smile, "is_child": True, "sharpness": 300.0,
                         "brightness": 120.0, "crop_hash": f"{int(rng.integers(0, 2**63)):016x}"})  # fmt: skip
            if 60 <= phase < 66:  # a parent leans in
                rows.append({**base, "face": 1, "x1": 400.0, "y1": 80.0, "x2": 520.0, "y2": 220.0, "det_prob": 0.99,
                             "child_prob": 0.05, "smile_prob": 0.4, "is_child": False, "sharpness": 250.0,
                             "brightness": 110.0, "crop_hash": f"{int(rng.integers(0, 2**63)):016x}"})  # fmt: skip
        frame += 1
    return pd.DataFrame(rows, columns=SCORE_COLUMNS).astype(SCORE_DTYPES)


def sample_result(timeline: LessonTimeline, selection: Selection, **changes) -> LessonResult:
    """The result as the pipeline builds it before the report stage."""
    result = LessonResult(
        "L-1001",
        "ok" if selection.status == "ok" else "no_highlight",
        reason=selection.reason or "",
        lesson=LessonBounds(timeline.start.isoformat(), timeline.end.isoformat(), timeline.duration_s),
        disconnects=Disconnects(
            len(timeline.student.disconnects), len(timeline.teacher.disconnects),
            timeline.student.offline_s, timeline.teacher.offline_s,
        ),  # fmt: skip
        frames=[HighlightFrame(p.ref, p.smile, p.child, p.box) for p in selection.picks],
        gif="Zx3k9Qe2AbCdEfGh.gif" if selection.status == "ok" else None,
        gif_bytes=612_345 if selection.status == "ok" else None,
        scores="scores.csv",
        analytics="analytics.json",
        versions={"highlights": "0.1.0", "smile_model": "smile-2026-11"},
        fingerprint="f" * 64,
        started_at="2026-11-21T02:00:00+00:00",
    )
    return replace(result, **changes)


def info() -> LessonInfo:
    return LessonInfo("L-1001", student_name=STUDENT_NAME, subject="Maths", locale="ru-RU")


@pytest.fixture(scope="module")
def lesson():
    timeline = sample_timeline()
    scores = sample_scores(timeline)
    selection = select_highlights(scores)
    assert selection.status == "ok" and len(selection.picks) >= 3
    return timeline, scores, selection


def count(pattern: str, html: str) -> int:
    return len(re.findall(pattern, html))


def test_report_structure(lesson):
    timeline, scores, selection = lesson
    html = render_report(sample_result(timeline, selection), timeline, scores, selection, info())
    assert html.startswith("<!DOCTYPE html>")
    assert count(r"<svg\b", html) == 3
    for chart in ("camera", "smile", "presence"):
        assert f'class="chart chart-{chart}"' in html
    # Each pick marked once on the smile chart, the first one as the GIF's cover.
    assert count(r'<g class="pick(?: cover)?"', html) == len(selection.picks)
    assert count(r'<g class="pick cover"', html) == 1
    assert count(r'<tr class="frame">', html) == len(selection.picks)
    # One marker per disconnect, on the right row.
    assert len(timeline.student.disconnects) == 1 and len(timeline.teacher.disconnects) == 1
    assert count(r'<g class="disconnect"', html) == 2
    assert count(r'data-role="student"', html) == 1 and count(r'data-role="teacher"', html) == 1
    # Lesson bounds, threshold, both cameras, presence strips.
    assert count(r'class="lesson-bound"', html) == 2
    assert 'class="threshold"' in html and "min_smile 0.7" in html
    assert 'class="online online-student"' in html and 'class="online online-teacher"' in html
    for row in ("sampled", "child", "adult"):
        assert f'class="presence presence-{row}"' in html
    assert 'class="smile-line"' in html
    # Times as mm:ss of lesson time, negative before the start (the teacher was early).
    assert ">00:00<" in html and ">08:00<" in html and ">-02:00<" in html
    assert "10:00" in html  # the duration
    # The GIF by its relative name, the status, the counts.
    assert 'src="Zx3k9Qe2AbCdEfGh.gif"' in html
    assert "status-ok" in html and "student 1 (offline 00:40), teacher 1 (offline 00:42)" in html


def test_report_leaves_out_the_student_name(lesson):
    timeline, scores, selection = lesson
    html = render_report(sample_result(timeline, selection), timeline, scores, selection, info())
    assert "Secretname" not in html
    assert "student name given" in html  # only whether the email will have one


def test_pick_markers_sit_at_their_time(lesson):
    timeline, scores, selection = lesson
    html = render_report(sample_result(timeline, selection), timeline, scores, selection, info())
    first = selection.picks[0]
    assert f"GIF frame 1 (rank 1) at {format_clock(first.ref.t)}" in html
    table_times = re.findall(r'<tr class="frame"><td>\d+</td><td>\d+</td><td>([-\d:]+)</td>', html)
    assert table_times == [format_clock(p.ref.t) for p in selection.picks]


def test_no_highlight_report(lesson):
    timeline, scores, _ = lesson
    frowning = scores.assign(smile_prob=scores["smile_prob"] * 0.3)
    selection = select_highlights(frowning)
    assert selection.status == "no_highlight"
    html = render_report(sample_result(timeline, selection), timeline, frowning, selection, info())
    assert "status-no_highlight" in html and "was not seen smiling" in html
    assert count(r"<svg\b", html) == 3 and count(r'<g class="pick', html) == 0
    assert "No frame was chosen." in html and "no GIF" in html
    assert count(r'<g class="disconnect"', html) == 2


@pytest.mark.parametrize(
    "student, teacher",
    [
        ([(at(0), at(300))], [(at(400), at(700))]),  # never on together
        ([(at(0), at(300))], []),  # no teacher recording
        ([], []),  # nothing at all
    ],
)
def test_no_lesson_report(student, teacher):
    timeline = lesson_bounds("L-1002", student, teacher)
    assert timeline.status == "no_lesson"
    scores = FaceTable.empty()
    selection = select_highlights(scores)
    result = LessonResult("L-1002", "no_lesson", reason=timeline.reason, disconnects=Disconnects())
    html = render_report(result, timeline, scores, selection, LessonInfo("L-1002"))
    assert "status-no_lesson" in html and "none: no lesson took place" in html
    assert count(r"<svg\b", html) == 3
    assert count(r'<g class="pick', html) == 0 and count(r'<g class="disconnect"', html) == 0
    assert 'class="lesson-bound"' not in html
    assert "no sampled frames" in html
    if student or teacher:
        assert "since the first camera on" in html and 'class="online' in html
    else:
        assert "no recordings" in html


def test_everything_is_escaped(lesson):
    timeline, scores, selection = lesson
    evil = '"><script>alert(1)</script>'
    result = sample_result(
        timeline, selection, lesson_id=f"L{evil}", reason=f"reason {evil}", gif=f"x{evil}.gif",
        versions={f"model{evil}": evil}, fingerprint=evil,
    )  # fmt: skip
    html = render_report(result, timeline, scores, selection, LessonInfo("L-1001", locale=f"en{evil}"))
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;") >= 5


def test_helpers():
    assert [format_clock(s) for s in (0, 59.6, 61, 3600, -5)] == ["00:00", "01:00", "01:01", "60:00", "-00:05"]
    assert runs([], [], 1.0) == []
    assert runs([0, 1, 2], [False, False, False], 1.0) == []
    assert runs([0, 2, 4], [True, True, True], 2.0) == [(0.0, 6.0)]
    failures, _ = doctest.testmod(highlights.stages.report)
    assert failures == 0


# --------------------------------------------------------------------------- a real browser


def write_sample_report(folder: Path, duration_s: float = 600.0) -> tuple[Path, Selection]:
    """A sample lesson's report.html with a small GIF beside it (what the pipeline leaves)."""
    timeline = sample_timeline(duration_s)
    scores = sample_scores(timeline)
    selection = select_highlights(scores)
    result = sample_result(timeline, selection)
    if result.gif:
        colours = [(230, 120, 90), (90, 160, 230), (120, 200, 110)]
        frames = [Image.new("RGB", (160, 160), colour) for colour in colours]
        frames[0].save(folder / result.gif, save_all=True, append_images=frames[1:], duration=300, loop=0)
    path = folder / "report.html"
    path.write_text(render_report(result, timeline, scores, selection, info()), encoding="utf-8")
    return path, selection


@pytest.mark.timeout(240)
def test_report_renders_in_headless_chromium(tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary on PATH (apt-get install chromium; .ci/run installs it)")
    report, selection = write_sample_report(tmp_path)

    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert count(r"<svg\b", dom.stdout) == 3, dom.stderr[-2000:]
    assert count(r'<g class="pick(?: cover)?"', dom.stdout) == len(selection.picks)
    assert count(r'<g class="disconnect"', dom.stdout) == 2

    rgb = screenshot_rgb(binary, report, tmp_path, 1100, 1900)
    colours = np.unique(rgb.reshape(-1, 3), axis=0)
    assert len(colours) > 50, f"only {len(colours)} colours: the page looks blank"
    # The charts' own colours are there: student bars (green), pick markers (red), smile line (blue).
    for colour in ((0x2D, 0xA4, 0x4E), (0xCF, 0x22, 0x2E), (0x09, 0x69, 0xDA)):
        assert np.any(np.all(rgb == colour, axis=-1)), f"no pixel of colour {colour}"


def test_report_lists_the_face_tracks():
    from highlights.stages.report import track_rows

    rows = [_track_face(i, t=float(i), x=100.0, child_prob=0.98) for i in range(10)]
    rows += [_track_face(i, t=float(i), x=400.0, child_prob=0.02, face=1) for i in range(4, 8)]
    tracks = track_rows(pd.DataFrame(rows, columns=SCORE_COLUMNS).astype(SCORE_DTYPES))
    assert [(t["kind"], t["from"], t["to"], t["frames"]) for t in tracks] == [
        ("child", "00:00", "00:09", "10"), ("adult", "00:04", "00:07", "4"),
    ]


def _track_face(frame: int, t: float, x: float, child_prob: float, face: int = 0) -> list:
    return [frame, t, "2026-11-20T15:00:00+00:00", "s.webm", t, face, x, 80.0, x + 120.0, 220.0,
            0.999, child_prob, 0.5, child_prob >= 0.87, 300.0, 120.0, f"{0x0F0F0F0F0F0F0F0F + face:016x}"]  # fmt: skip
