"""The timeline stage: merging each person's recordings, the lesson's bounds, disconnects and the
seconds to sample. Example tests for the cases people ask about, then property tests that check
the same rules against a brute-force scan over random segment layouts."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from highlights.core.lesson import LessonInfo, LessonInput, Recording, SourceRow
from highlights.stages.timeline import (
    Interval,
    covering_recording,
    lesson_bounds,
    lesson_timeline,
    merge_intervals,
    plan_lesson,
    sample_points,
)

BASE = datetime(2026, 11, 21, 15, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)


def spans(*pairs: tuple[float, float]) -> list[tuple[datetime, datetime]]:
    return [(at(a), at(b)) for a, b in pairs]


def recording(role: str, start: float, end: float | None, name: str | None = None) -> Recording:
    name = name or f"{role}-{start:g}.webm"
    return Recording(
        "L-1", role, Path("/rec") / name, at(start), None if end is None else at(end),  # type: ignore[arg-type]
        SourceRow(Path("/m/manifest.csv"), 2),
    )


def lesson(*recordings: Recording) -> LessonInput:
    return LessonInput("L-1", list(recordings), LessonInfo("L-1"))


def seconds(value: datetime | None) -> float | None:
    return None if value is None else (value - BASE).total_seconds()


# ----------------------------------------------------------------------------- merge_intervals


def test_merge_sorts_and_merges_overlapping_and_touching_spans():
    merged = merge_intervals(spans((50, 60), (0, 10), (10, 20), (15, 30)), gap_tolerance_s=0)
    assert [(seconds(i.start), seconds(i.end)) for i in merged] == [(0, 30), (50, 60)]


def test_merge_accepts_intervals_and_ignores_empty_or_reversed_spans():
    merged = merge_intervals([Interval(at(0), at(5)), (at(9), at(9)), (at(20), at(10))], gap_tolerance_s=0)
    assert merged == [Interval(at(0), at(5))]


def test_merge_rejects_negative_tolerance():
    with pytest.raises(ValueError):
        merge_intervals(spans((0, 1)), gap_tolerance_s=-1)


@pytest.mark.parametrize(
    ("gap", "merged"),
    [(1.5, True), (2.0, True), (2.000001, False), (2.5, False)],
    ids=["below", "at", "just-above", "above"],
)
def test_gap_against_the_tolerance(gap: float, merged: bool):
    tl = lesson_bounds("L-1", spans((0, 100), (100 + gap, 300)), spans((0, 300)), gap_tolerance_s=2.0)
    assert tl.status == "ok"
    assert len(tl.student.online) == (1 if merged else 2)
    assert len(tl.student.disconnects) == (0 if merged else 1)
    assert tl.student.offline_s == pytest.approx(0.0 if merged else gap)


def test_zero_tolerance_still_merges_touching_segments():
    tl = lesson_bounds("L-1", spans((0, 100), (100, 200)), spans((0, 200)), gap_tolerance_s=0)
    assert len(tl.student.online) == 1 and tl.student.disconnects == ()


# ----------------------------------------------------------------------------- lesson_bounds


def test_late_join_starts_the_lesson_when_both_are_on():
    tl = lesson_bounds("L-1", spans((90, 600)), spans((0, 600)))
    assert tl.status == "ok" and tl.reason is None
    assert (seconds(tl.start), seconds(tl.end), tl.duration_s) == (90, 600, 510)
    assert tl.student.disconnects == () and tl.teacher.disconnects == ()


def test_disconnect_and_reconnect():
    tl = lesson_bounds("L-1", spans((0, 100), (130, 300)), spans((0, 300)))
    assert (seconds(tl.start), seconds(tl.end)) == (0, 300)
    assert tl.student.disconnects == (Interval(at(100), at(130)),)
    assert tl.student.offline_s == 30
    assert tl.teacher.disconnects == () and tl.teacher.offline_s == 0


def test_overlapping_reconnect_before_the_old_connection_timed_out_is_no_disconnect():
    tl = lesson_bounds("L-1", spans((0, 100), (95, 300)), spans((0, 300)))
    assert tl.student.online == (Interval(at(0), at(300)),)
    assert tl.student.disconnects == () and tl.student.offline_s == 0


def test_teacher_leaving_early_ends_the_lesson():
    tl = lesson_bounds("L-1", spans((0, 300)), spans((0, 200)))
    assert (seconds(tl.start), seconds(tl.end)) == (0, 200)
    # the student's remaining 100 s are not a teacher disconnect
    assert tl.teacher.disconnects == () and tl.teacher.offline_s == 0


def test_disconnect_straddling_the_lesson_end_is_counted_and_cut_at_the_end():
    tl = lesson_bounds("L-1", spans((0, 100), (200, 400)), spans((0, 150)))
    assert seconds(tl.end) == 150
    assert tl.student.disconnects == (Interval(at(100), at(150)),)
    assert tl.student.offline_s == 50


def test_teacher_disconnect_straddling_the_end():
    tl = lesson_bounds("L-1", spans((0, 150)), spans((0, 100), (200, 300)))
    assert seconds(tl.end) == 150
    assert tl.teacher.disconnects == (Interval(at(100), at(150)),) and tl.teacher.offline_s == 50


def test_gap_before_the_lesson_start_is_not_a_disconnect():
    tl = lesson_bounds("L-1", spans((0, 10), (50, 300)), spans((30, 300)))
    assert seconds(tl.start) == 50
    assert tl.student.disconnects == () and tl.student.offline_s == 0


def test_never_on_together_is_no_lesson_not_an_error():
    tl = lesson_bounds("L-1", spans((0, 100)), spans((100, 200)))  # touching is not overlapping
    assert tl.status == "no_lesson"
    assert "never on at the same time" in (tl.reason or "")
    assert tl.start is None and tl.end is None and tl.duration_s is None
    assert len(tl.student.online) == 1 and len(tl.teacher.online) == 1


@pytest.mark.parametrize(
    ("student", "teacher", "reason"),
    [
        ([(0, 100)], [], "no teacher recording"),
        ([], [(0, 100)], "no student recording"),
        ([], [], "no student recording and no teacher recording"),
        ([(5, 5)], [(0, 100)], "no student recording"),  # only an empty segment
    ],
)
def test_missing_role_is_no_lesson(student, teacher, reason):
    tl = lesson_bounds("L-1", spans(*student), spans(*teacher))
    assert (tl.status, tl.reason) == ("no_lesson", reason)


def test_lesson_timeline_reads_recordings_by_role():
    tl = lesson_timeline(lesson(recording("teacher", 0, 600), recording("student", 90, 300), recording("student", 310, 600)))
    assert (seconds(tl.start), seconds(tl.end)) == (90, 600)
    assert len(tl.student.disconnects) == 1 and tl.student.offline_s == 10
    assert tl.role("teacher") is tl.teacher


def test_lesson_timeline_with_a_missing_role():
    tl = lesson_timeline(lesson(recording("teacher", 0, 600)))
    assert (tl.status, tl.reason) == ("no_lesson", "no student recording")


def test_lesson_timeline_needs_every_end_time():
    with pytest.raises(ValueError, match="end time unknown"):
        lesson_timeline(lesson(recording("teacher", 0, 600), recording("student", 0, None)))


def test_lesson_timeline_passes_the_gap_tolerance_on():
    both = lesson(recording("teacher", 0, 100), recording("student", 0, 40), recording("student", 45, 100))
    assert len(lesson_timeline(both, gap_tolerance_s=5).student.disconnects) == 0
    assert len(lesson_timeline(both, gap_tolerance_s=2).student.disconnects) == 1


# ----------------------------------------------------------------------------- sample_points


def test_sample_points_skip_seconds_while_the_student_is_offline():
    recordings = [recording("student", 0, 10, "a.webm"), recording("student", 15, 30, "b.webm"), recording("teacher", 0, 30)]
    tl = lesson_timeline(lesson(*recordings))
    points = sample_points(tl, recordings)
    assert [p.t for p in points] == [*range(0, 10), *range(15, 30)]
    assert [p.index for p in points] == list(range(25))
    assert {p.source.name for p in points if p.t < 10} == {"a.webm"}
    assert [(p.source.name, p.offset_s) for p in points if p.t >= 15][:2] == [("b.webm", 0.0), ("b.webm", 1.0)]


def test_sample_points_take_the_later_started_recording_where_two_overlap():
    recordings = [recording("student", 0, 20, "old.webm"), recording("student", 10, 30, "new.webm"), recording("teacher", 0, 30)]
    points = sample_points(lesson_timeline(lesson(*recordings)), recordings)
    assert len(points) == 30
    assert all(p.source.name == "old.webm" for p in points if p.t < 10)
    assert all(p.source.name == "new.webm" and p.offset_s == p.t - 10 for p in points if p.t >= 10)


def test_a_student_recording_wholly_within_another_is_sampled_and_warned_about():
    # Two cameras at once (a phone beside the laptop) or a copy exported twice: it used to pass
    # without a word, the inner one's frames standing in for the other's while both ran.
    recordings = [recording("student", 0, 60, "laptop.webm"), recording("student", 20, 40, "phone.webm"),
                  recording("teacher", 0, 60), recording("student", 60, 80, "reconnect.webm")]
    plan = plan_lesson(lesson(*recordings))
    assert plan.status == "ok" and len(plan.points) == 60
    [warning] = [str(w) for w in plan.lesson.warnings]
    assert "phone.webm lies wholly within laptop.webm" in warning and "the one that started later is sampled" in warning
    assert plan_lesson(lesson(*recordings[2:], recording("student", 0, 61, "laptop.webm"))).lesson.warnings == []


def test_sample_points_count_from_the_lesson_start_not_the_recording_start():
    recordings = [recording("student", 0, 100), recording("teacher", 30, 100)]
    points = sample_points(lesson_timeline(lesson(*recordings)), recordings)
    assert points[0].t == 0 and points[0].at == at(30) and points[0].offset_s == 30
    assert len(points) == 70


def test_sample_points_ignore_teacher_recordings():
    recordings = [recording("student", 0, 5), recording("teacher", 0, 10)]
    points = sample_points(lesson_timeline(lesson(*recordings)), recordings)
    assert {p.source.name for p in points} == {"student-0.webm"}


@pytest.mark.parametrize(
    ("fps", "duration", "ts"),
    [
        (2.0, 3.0, [0, 0.5, 1, 1.5, 2, 2.5]),
        (0.5, 5.0, [0, 2, 4]),
        (1.0, 2.5, [0, 1, 2]),
        (3.0, 1.0, [0, 1 / 3, 2 / 3]),
    ],
)
def test_sample_points_at_other_rates(fps: float, duration: float, ts: list[float]):
    recordings = [recording("student", 0, duration), recording("teacher", 0, duration)]
    points = sample_points(lesson_timeline(lesson(*recordings)), recordings, fps=fps)
    assert [p.t for p in points] == pytest.approx(ts)
    assert all(p.offset_s == pytest.approx(p.t, abs=1e-6) for p in points)


def test_sample_points_of_no_lesson_are_empty_and_fps_must_be_positive():
    recordings = [recording("student", 0, 10)]
    tl = lesson_timeline(lesson(*recordings))
    assert tl.status == "no_lesson" and sample_points(tl, recordings) == []
    with pytest.raises(ValueError):
        sample_points(tl, recordings, fps=0)


def test_covering_recording_is_half_open():
    first, second = recording("student", 0, 10, "a"), recording("student", 10, 20, "b")
    assert covering_recording([first, second], at(10)) is second
    assert covering_recording([first, second], at(20)) is None
    assert covering_recording([recording("student", 0, None)], at(1)) is None


# ----------------------------------------------------------------------------- properties
#
# Layouts are drawn on a half-second grid, so every boundary is a multiple of 0.5 s and the
# brute force below is exact: whether a role is on is constant on each half-second cell
# [k/2, k/2 + 0.5), and a scan over the cells is a scan over every instant.

CELL = 0.5
HORIZON = 240  # cells (two minutes)

segment = st.tuples(st.integers(0, HORIZON - 1), st.integers(1, 60)).map(lambda p: (p[0], min(p[0] + p[1], HORIZON)))
layout = st.lists(segment, max_size=5)
tolerance = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5])
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


def cell_spans(cells: list[tuple[int, int]]) -> list[tuple[datetime, datetime]]:
    return [(at(a * CELL), at(b * CELL)) for a, b in cells]


def raw_on(cells: list[tuple[int, int]]) -> list[bool]:
    on = [False] * HORIZON
    for a, b in cells:
        for k in range(a, b):
            on[k] = True
    return on


def merged_on(cells: list[tuple[int, int]], gap_tolerance_s: float) -> list[bool]:
    """Brute force of "camera on": recorded cells, plus runs of unrecorded cells between two
    recorded ones that last at most the tolerance."""
    on = raw_on(cells)
    result = list(on)
    recorded = [k for k, v in enumerate(on) if v]
    if recorded:
        k = recorded[0]
        while k <= recorded[-1]:
            if on[k]:
                k += 1
                continue
            run_end = k
            while not on[run_end]:
                run_end += 1
            if (run_end - k) * CELL <= gap_tolerance_s:
                result[k:run_end] = [True] * (run_end - k)
            k = run_end
    return result


def cell_of(value: datetime) -> int:
    k = (value - BASE).total_seconds() / CELL
    assert k == int(k)
    return int(k)


@PROPERTY_SETTINGS
@given(layout, tolerance)
def test_merged_intervals_are_sorted_disjoint_and_separated_by_more_than_the_tolerance(cells, tol):
    merged = merge_intervals(cell_spans(cells), tol)
    for interval in merged:
        assert interval.start < interval.end
    for before, after in zip(merged, merged[1:]):
        assert (after.start - before.end).total_seconds() > tol
    # the same instants as the brute force
    expected = merged_on(cells, tol)
    got = [False] * HORIZON
    for interval in merged:
        for k in range(cell_of(interval.start), cell_of(interval.end)):
            got[k] = True
    assert got == expected


@PROPERTY_SETTINGS
@given(layout, layout, tolerance)
def test_bounds_disconnects_and_offline_time_match_a_brute_force_scan(student, teacher, tol):
    tl = lesson_bounds("L-1", cell_spans(student), cell_spans(teacher), tol)
    on = {"student": merged_on(student, tol), "teacher": merged_on(teacher, tol)}
    both = [s and t for s, t in zip(on["student"], on["teacher"])]

    if not any(both):
        assert tl.status == "no_lesson" and tl.reason
        assert tl.start is None and tl.end is None
        return

    assert tl.status == "ok" and tl.reason is None
    start, end = cell_of(tl.start), cell_of(tl.end)
    # the lesson starts at the first instant both cameras are on ...
    assert both[start] and not any(both[:start])
    # ... and ends at the earlier of the two last "off"s
    assert end == min(max(b for _, b in student), max(b for _, b in teacher))
    assert start < end

    for role, cells in (("student", student), ("teacher", teacher)):
        timeline = tl.role(role)
        off_cells = [k for k in range(start, end) if not on[role][k]]
        assert timeline.offline_s == pytest.approx(len(off_cells) * CELL)
        # a disconnect: on just before an instant inside the lesson, off just after it
        transitions = [k for k in range(max(start, 1), end) if on[role][k - 1] and not on[role][k]]
        assert [cell_of(d.start) for d in timeline.disconnects] == transitions
        assert sum(d.duration_s for d in timeline.disconnects) == pytest.approx(timeline.offline_s)
        for d in timeline.disconnects:
            assert tl.start < d.start < d.end <= tl.end
        # merging blips can only hide offline time, never add it
        raw_off = sum(1 for k in range(start, end) if not raw_on(cells)[k]) * CELL
        assert timeline.offline_s <= raw_off


@PROPERTY_SETTINGS
@given(layout, layout, tolerance, st.randoms(use_true_random=False))
def test_bounds_do_not_depend_on_row_order_or_on_which_role_is_which(student, teacher, tol, rnd):
    tl = lesson_bounds("L-1", cell_spans(student), cell_spans(teacher), tol)
    shuffled_student, shuffled_teacher = list(student), list(teacher)
    rnd.shuffle(shuffled_student)
    rnd.shuffle(shuffled_teacher)
    assert lesson_bounds("L-1", cell_spans(shuffled_student), cell_spans(shuffled_teacher), tol) == tl
    swapped = lesson_bounds("L-1", cell_spans(teacher), cell_spans(student), tol)
    assert (swapped.status, swapped.start, swapped.end) == (tl.status, tl.start, tl.end)
    assert swapped.student.disconnects == tl.teacher.disconnects
    assert swapped.teacher.offline_s == tl.student.offline_s


@PROPERTY_SETTINGS
@given(layout, layout, tolerance, st.data())
def test_splitting_a_recording_in_two_touching_pieces_changes_nothing(student, teacher, tol, data):
    tl = lesson_bounds("L-1", cell_spans(student), cell_spans(teacher), tol)
    long_ones = [i for i, (a, b) in enumerate(student) if b - a >= 2]
    if not long_ones:
        return
    i = data.draw(st.sampled_from(long_ones))
    a, b = student[i]
    cut = data.draw(st.integers(a + 1, b - 1))
    split = [*student[:i], (a, cut), (cut, b), *student[i + 1 :]]
    assert lesson_bounds("L-1", cell_spans(split), cell_spans(teacher), tol) == tl


# Microsecond-resolution layouts: no grid, so the checks are interval arithmetic, not a scan.
micro_segment = st.tuples(st.integers(0, 120_000_000), st.integers(1, 40_000_000)).map(lambda p: (p[0], p[0] + p[1]))
micro_layout = st.lists(micro_segment, max_size=5)


def micro_spans(segments: list[tuple[int, int]]) -> list[tuple[datetime, datetime]]:
    return [(BASE + timedelta(microseconds=a), BASE + timedelta(microseconds=b)) for a, b in segments]


@PROPERTY_SETTINGS
@given(micro_layout, micro_layout, st.floats(0, 5, allow_nan=False))
def test_bounds_with_arbitrary_instants(student, teacher, tol):
    tl = lesson_bounds("L-1", micro_spans(student), micro_spans(teacher), tol)
    merged = {role: merge_intervals(micro_spans(s), tol) for role, s in (("student", student), ("teacher", teacher))}
    for intervals in merged.values():
        for before, after in zip(intervals, intervals[1:]):
            assert (after.start - before.end) > timedelta(seconds=tol)
    overlaps = [
        max(s.start, t.start) for s in merged["student"] for t in merged["teacher"] if max(s.start, t.start) < min(s.end, t.end)
    ]
    if not overlaps:
        assert tl.status == "no_lesson"
        return
    assert tl.start == min(overlaps)
    assert any(i.start <= tl.start < i.end for i in merged["student"])
    assert any(i.start <= tl.start < i.end for i in merged["teacher"])
    assert tl.end == min(BASE + timedelta(microseconds=max(b for _, b in s)) for s in (student, teacher))
    for role in ("student", "teacher"):
        online_inside = sum(i.overlap_s(tl.start, tl.end) for i in merged[role])
        assert tl.role(role).offline_s == pytest.approx(tl.duration_s - online_inside, abs=1e-5)


@PROPERTY_SETTINGS
@given(layout, layout, tolerance, st.sampled_from([1.0, 2.0, 0.5, 3.0, 0.3]))
def test_sample_points_are_on_the_grid_inside_the_lesson_and_covered_by_their_recording(student, teacher, tol, fps):
    recordings = [recording("student", a * CELL, b * CELL, f"s{i}.webm") for i, (a, b) in enumerate(student)]
    recordings += [recording("teacher", a * CELL, b * CELL, f"t{i}.webm") for i, (a, b) in enumerate(teacher)]
    tl = lesson_timeline(lesson(*recordings), gap_tolerance_s=tol)
    points = sample_points(tl, recordings, fps=fps)
    if tl.status != "ok":
        assert points == []
        return
    assert [p.index for p in points] == list(range(len(points)))
    ks = []
    for p in points:
        k = round(p.t * fps)
        assert p.t == pytest.approx(k / fps)
        assert 0 <= p.t < tl.duration_s
        assert p.at == tl.start + timedelta(seconds=p.t)
        covering = [r for r in recordings if r.role == "student" and r.started_at <= p.at < r.ended_at]
        chosen = next(r for r in covering if r.path == p.source)
        assert chosen.started_at == max(r.started_at for r in covering)
        assert p.offset_s == pytest.approx((p.at - chosen.started_at).total_seconds())
        ks.append(k)
    assert ks == sorted(set(ks))  # 1/fps apart (or a multiple of it, over offline seconds)
    # every grid instant some student recording shows is sampled, and no other
    expected = [
        k for k in range(math.ceil(tl.duration_s * fps - 1e-9))
        if any(r.role == "student" and r.started_at <= tl.start + timedelta(seconds=k / fps) < r.ended_at for r in recordings)
    ]
    assert ks == expected
    # so no point falls inside a student disconnect
    for d in tl.student.disconnects:
        assert not any(d.start <= p.at < d.end for p in points)


# ----------------------------------------------------------------------------- absurd lengths


def test_a_lesson_longer_than_a_day_is_refused_not_sampled():
    # Every row is at most a day (checked when the manifest is read), but 26 segments of an hour
    # each still make a lesson of a day and more: one sample point a second of it was built
    # before, and an end time a century off grew without bound.
    hour = 3600
    long = lesson(*(recording(role, k * hour, (k + 1) * hour) for k in range(26) for role in ("student", "teacher")))
    plan = plan_lesson(long)
    assert plan.status == "failed" and plan.timeline is None and plan.points == ()
    assert plan.reason == ("lesson L-1: the cameras are on together for 26 hours, more than 24: "
                           "an end time in the manifest is wrong")
    with pytest.raises(ValueError, match="more than 24"):
        sample_points(lesson_timeline(long), long.recordings)
    day = lesson(recording("student", 0, 24 * hour), recording("teacher", 0, 24 * hour))
    assert plan_lesson(day, fps=0.01).status == "ok"
