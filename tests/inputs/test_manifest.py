"""Reading the recordings manifest (CSV and JSON Lines; :mod:`highlights.inputs.manifest`): what is
accepted, what becomes a problem of one lesson (naming file and row), and what makes the whole file
unusable. The lessons file is tested in ``tests/inputs/test_lessons_file.py``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from highlights.inputs.manifest import InputError, read_manifest
from highlights.stages.timeline import lesson_timeline

from support.manifests import GOOD, HEADER, T0, T1, problems, write_csv, write_jsonl

# ----------------------------------------------------------------------------- good input


def test_good_csv(folder: Path):
    manifest = read_manifest(write_csv(folder, *GOOD))
    assert list(manifest.lessons) == ["L-1", "L-2"] and manifest.problems == []
    lesson = manifest.lessons["L-1"]
    assert lesson.ok and len(lesson.recordings) == 2
    teacher, = lesson.by_role("teacher")
    assert teacher.path == (folder / "L-1/teacher.mp4").resolve()
    assert teacher.started_at == datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)
    assert teacher.ended_at == datetime(2026, 11, 21, 15, 30, tzinfo=timezone.utc)
    assert (teacher.source.file, teacher.source.row) == (folder / "manifest.csv", 2)
    student, = lesson.by_role("student")
    assert student.ended_at is None and student.source.row == 3  # to be read from the media
    assert lesson.info.lesson_id == "L-1" and lesson.info.locale == "en"


def test_good_jsonl_reads_like_the_csv(folder: Path):
    keys = HEADER.split(",")
    records = [dict(zip(keys, row.split(","))) for row in GOOD]
    del records[1]["ended_at"]  # optional key absent
    records[2]["ended_at"] = None  # ... or null
    from_jsonl = read_manifest(write_jsonl(folder, *records))
    from_csv = read_manifest(write_csv(folder, *GOOD))
    assert list(from_jsonl.lessons) == list(from_csv.lessons)
    l1_jsonl, l1_csv = from_jsonl.lessons["L-1"], from_csv.lessons["L-1"]
    assert [(r.role, r.path, r.started_at, r.ended_at) for r in l1_jsonl.recordings] == [
        (r.role, r.path, r.started_at, r.ended_at) for r in l1_csv.recordings
    ]
    assert [r.source.row for r in l1_jsonl.recordings] == [1, 2]  # JSON Lines: the line number
    assert from_jsonl.lessons["L-2"].by_role("student")[0].ended_at is None


def test_relative_paths_are_relative_to_the_manifest_folder_not_the_working_directory(folder: Path, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    manifest = read_manifest(write_csv(folder, f"L-1,student,./L-1/../L-1/student.webm,{T0},{T1}"))
    assert manifest.lessons["L-1"].recordings[0].path == (folder / "L-1/student.webm").resolve()


def test_absolute_paths_are_taken_as_they_are(folder: Path, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("media") / "rec.webm"
    elsewhere.write_bytes(b"\0")
    manifest = read_manifest(write_csv(folder, f"L-1,student,{elsewhere},{T0},{T1}"))
    assert manifest.lessons["L-1"].recordings[0].path == elsewhere.resolve()


def test_header_names_are_case_and_space_insensitive_and_column_order_is_free(folder: Path):
    path = write_csv(folder, f" {T0} , Student ,L-1/student.webm,L-1", header="Started_At, ROLE ,path,lesson_id")
    lesson = read_manifest(path).lessons["L-1"]
    assert lesson.ok and lesson.recordings[0].role == "student"


def test_bom_and_blank_lines_and_crlf(folder: Path):
    path = folder / "manifest.csv"
    path.write_bytes(("\ufeff" + HEADER + "\r\n\r\n" + GOOD[0] + "\r\n  \r\n,,,,\r\n" + GOOD[1] + "\r\n\r\n").encode("utf-8"))
    manifest = read_manifest(path)
    assert manifest.problems == []
    lesson = manifest.lessons["L-1"]
    assert lesson.ok and [r.source.row for r in lesson.recordings] == [3, 6]


def test_jsonl_with_bom_and_blank_lines(folder: Path):
    keys = HEADER.split(",")
    path = folder / "manifest.jsonl"
    lines = [json.dumps(dict(zip(keys, GOOD[0].split(",")))), "", "   ", json.dumps(dict(zip(keys, GOOD[2].split(","))))]
    path.write_bytes(("\ufeff" + "\n".join(lines) + "\n").encode("utf-8"))
    manifest = read_manifest(path)
    assert list(manifest.lessons) == ["L-1", "L-2"] and manifest.problems == []
    assert manifest.lessons["L-2"].recordings[0].source.row == 4


@pytest.mark.parametrize("name", ["manifest.json", "manifest.txt", "manifest.csv"])
def test_json_lines_under_another_extension_are_read_as_json_lines(folder: Path, name: str):
    # A JSON Lines manifest named manifest.json used to be read as a CSV and rejected with
    # "the header must name the columns ... (missing: lesson_id, role, path, started_at)".
    keys = HEADER.split(",")
    lines = [json.dumps(dict(zip(keys, row.split(",")))) for row in GOOD]
    path = folder / name
    path.write_bytes(("\ufeff\r\n" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    manifest = read_manifest(path)
    assert list(manifest.lessons) == ["L-1", "L-2"] and manifest.problems == []
    assert len(manifest.lessons["L-1"].recordings) == 2


def test_quoted_field_with_a_newline_keeps_the_row_numbers_right(folder: Path):
    path = write_csv(folder, f'L-1,"teach\ner",L-1/teacher.mp4,{T0},{T1}', f"L-2,parent,L-2/teacher.mp4,{T0},{T1}")
    manifest = read_manifest(path)
    # The value spans lines but swallowed no row: read as it is, and its own check refuses it.
    assert problems(manifest.lessons["L-1"]) == ["manifest.csv row 2 (lesson L-1): role 'teach\\ner' is not 'student' or 'teacher'"]
    assert problems(manifest.lessons["L-2"])[0].startswith("manifest.csv row 4 (lesson L-2): role")


@pytest.mark.parametrize("closed_later", [False, True], ids=["quote runs to the end", "a later quote closes it"])
def test_a_stray_quote_spoils_every_lesson_whose_row_it_swallows(folder: Path, closed_later: bool):
    # The stray quote on row 2 used to swallow rows 3-4 silently: L-2 then ran without its
    # teacher's row (no_lesson, a published GIF deleted) and nothing named it.
    last = f'L-3,student,"L-3/student.webm",{T0},{T1}' if closed_later else f"L-3,student,L-3/student.webm,{T0},{T1}"
    path = write_csv(folder, f'L-1,teacher,"L-1/teacher.mp4,{T0},{T1}', GOOD[1], f"L-2,teacher,L-2/teacher.mp4,{T0},{T1}",
                     f"L-2,student,L-2/student.webm,{T0},{T1}", last)
    manifest = read_manifest(path)
    swallowed = "unreadable row: lines 2-6 read as one row (a quote opened on line 2 is not closed on it: a stray quote?)"
    assert problems(manifest.lessons["L-1"]) == [f"manifest.csv row 2 (lesson L-1): {swallowed}",
                                                 f"manifest.csv row 3 (lesson L-1): {swallowed}"]
    assert problems(manifest.lessons["L-2"]) == [f"manifest.csv row 4 (lesson L-2): {swallowed}",
                                                 f"manifest.csv row 5 (lesson L-2): {swallowed}"]
    assert problems(manifest.lessons["L-3"]) == [f"manifest.csv row 6 (lesson L-3): {swallowed}"]
    assert manifest.problems == [] and all(not lesson.recordings for lesson in manifest.lessons.values())


def test_rows_after_a_swallowed_stretch_are_read_again(folder: Path):
    path = write_csv(folder, f'L-1,teacher,"L-1/teacher.mp4,{T0},{T1}', 'L-1,student,L-1/student.webm",'
                     f"{T0},{T1}", *GOOD[2:])
    manifest = read_manifest(path)
    assert [p.row for p in manifest.lessons["L-1"].problems] == [2, 3]
    assert manifest.lessons["L-2"].ok and len(manifest.lessons["L-2"].recordings) == 2


def test_header_only_is_a_manifest_without_lessons(folder: Path):
    manifest = read_manifest(write_csv(folder))
    assert manifest.lessons == {} and manifest.problems == []


def test_naive_time_with_a_time_zone(folder: Path):
    path = write_csv(folder, "L-1,student,L-1/student.webm,2026-11-21T16:00:00,2026-11-21T16:30:00+01:00")
    recording = read_manifest(path, timezone="Europe/Berlin").lessons["L-1"].recordings[0]
    assert recording.started_at == datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)
    assert recording.ended_at - recording.started_at == timedelta(minutes=30)


def test_naive_times_across_a_daylight_saving_change_keep_real_durations(folder: Path):
    # Berlin falls back from 03:00 CEST to 02:00 CET on 2026-10-25: 01:30 to 03:30 local is 3 hours.
    path = write_csv(
        folder,
        "L-1,student,L-1/student.webm,2026-10-25T01:30:00,2026-10-25T03:30:00",
        "L-1,teacher,L-1/teacher.mp4,2026-10-25T01:30:00,2026-10-25T03:30:00",
    )
    lesson = read_manifest(path, timezone="Europe/Berlin").lessons["L-1"]
    assert lesson.ok
    recording = lesson.recordings[0]
    assert recording.started_at == datetime(2026, 10, 24, 23, 30, tzinfo=timezone.utc)
    assert (recording.ended_at - recording.started_at) == timedelta(hours=3)
    assert lesson_timeline(lesson).duration_s == 3 * 3600


# Berlin springs forward from 02:00 CET to 03:00 CEST on 2026-03-29 (02:30 never happens: it
# used to become 03:30 quietly, and the row failed with "ended_at ... is not after started_at"),
# and falls back from 03:00 CEST to 02:00 CET on 2026-10-25 (02:30 happens twice: it used to be
# taken as the first silently, a recording of the second an hour off). Either is its row's error.
@pytest.mark.parametrize("day, problem, teacher_s, student_s", [
    ("2026-03-29", "does not exist in time zone Europe/Berlin: the clocks jump forward over it (daylight "
                   "saving time); correct the time or give it with its UTC offset", 1, 10 * 60),
    ("2026-10-25", "happens twice in time zone Europe/Berlin: the clocks go back over it (daylight saving "
                   "time); give it with its UTC offset", 2 * 3600 + 1, 70 * 60),
])
def test_a_local_time_the_clocks_skip_or_repeat_is_a_plain_row_error(folder: Path, day, problem, teacher_s, student_s):
    path = write_csv(
        folder,
        f"L-1,student,L-1/student.webm,{day}T02:30:00,{day}T03:40:00",
        f"L-1,teacher,L-1/teacher.mp4,{day}T01:59:59,{day}T03:00:00",
    )
    lesson = read_manifest(path, timezone="Europe/Berlin").lessons["L-1"]
    assert [str(p) for p in lesson.problems] == [f"manifest.csv row 2 (lesson L-1): started_at '{day}T02:30:00' {problem}"]
    # The times either side are fine (one second across the gap; two hours and a second across
    # the repeated hour); so is 02:30 with its offset (+01:00: CET).
    teacher = lesson.recordings[0]
    assert teacher.ended_at - teacher.started_at == timedelta(seconds=teacher_s)
    path = write_csv(folder, f"L-1,student,L-1/student.webm,{day}T02:30:00+01:00,{day}T03:40:00")
    student = read_manifest(path, timezone="Europe/Berlin").lessons["L-1"].recordings[0]
    assert student.ended_at - student.started_at == timedelta(seconds=student_s)


def test_utc_z_suffix_and_other_offsets_are_accepted(folder: Path):
    path = write_csv(folder, "L-1,student,L-1/student.webm,2026-11-21T15:00:00Z,2026-11-21T10:30:00-05:00")
    recording = read_manifest(path).lessons["L-1"].recordings[0]
    assert recording.ended_at - recording.started_at == timedelta(minutes=30)


# ----------------------------------------------------------------------------- bad rows


def test_a_recording_of_exactly_the_longest_span_is_read(folder: Path):
    path = write_csv(folder, f"L-1,student,L-1/student.webm,{T0},2026-11-22T15:00:00+00:00")
    assert read_manifest(path).lessons["L-1"].ok


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (f"L-1,parent,L-1/student.webm,{T0},{T1}", "role 'parent' is not 'student' or 'teacher'"),
        (f"L-1,,L-1/student.webm,{T0},{T1}", "role '' is not"),
        (f"L-1,student,L-1/missing.webm,{T0},{T1}", "recording 'L-1/missing.webm' not found"),
        (f"L-1,student,L-1,{T0},{T1}", "'L-1' is not a file"),
        (f"L-1,student,,{T0},{T1}", "path is empty"),
        (f"L-1,student,L-1/student.webm,2026-11-21T15:00:00,{T1}", "started_at '2026-11-21T15:00:00' has no UTC offset"),
        (f"L-1,student,L-1/student.webm,{T0},2026-11-21T15:30:00", "ended_at '2026-11-21T15:30:00' has no UTC offset"),
        (f"L-1,student,L-1/student.webm,yesterday,{T1}", "started_at 'yesterday' is not an ISO-8601 time"),
        (f"L-1,student,L-1/student.webm,{T0},2026-13-01T00:00:00+00:00", "ended_at '2026-13-01T00:00:00+00:00' is not an ISO-8601"),
        (f"L-1,student,L-1/student.webm,,{T1}", "started_at is empty"),
        (f"L-1,student,L-1/student.webm,{T1},{T0}", f"ended_at '{T0}' is not after started_at"),
        (f"L-1,student,L-1/student.webm,{T0},{T0}", f"ended_at '{T0}' is not after started_at"),
        (f"L-1,student,L-1/student.webm,{T0},2126-11-21T15:30:00+00:00",
         "ended_at '2126-11-21T15:30:00+00:00' is 36,524 days after started_at: a recording lasts at most 24 hours"),
        (f"L-1,student,L-1/student.webm,{T0},2026-11-22T15:00:01+00:00", "is 24 hours after started_at"),
        (f"L-1,student,L-1/student.webm,{T0}", "4 fields where the header has 5"),
        (f"L-1,student,L-1/student.webm,{T0},{T1},extra", "6 fields where the header has 5"),
    ],
)
def test_a_bad_row_spoils_its_own_lesson_only(folder: Path, row: str, message: str):
    path = write_csv(folder, f"L-1,teacher,L-1/teacher.mp4,{T0},{T1}", row, *GOOD[2:])
    manifest = read_manifest(path)
    bad, other = manifest.lessons["L-1"], manifest.lessons["L-2"]
    assert not bad.ok
    assert problems(bad) == [problems(bad)[0]] and problems(bad)[0].startswith("manifest.csv row 3 (lesson L-1): ")
    assert message in problems(bad)[0]
    assert [r.role for r in bad.recordings] == ["teacher"]  # the good row is still read
    assert other.ok and len(other.recordings) == 2
    assert manifest.problems == []


@pytest.mark.parametrize(
    ("started_at", "timezone"),
    [
        ("9999-12-31T23:59:50+00:00", None),  # its end (start + the decoded length) overflowed
        ("9999-12-31T23:00:00-14:00", None),  # past datetime's range once in UTC
        ("9999-12-31T23:30:00", "America/New_York"),  # likewise, given a zone
        ("0001-01-01T00:00:00+00:00", None),
    ],
)
def test_a_time_at_the_edge_of_the_calendar_is_an_error_of_its_row(folder: Path, started_at: str, timezone):
    # Before: read_manifest raised OverflowError for the third (no batch ran); the others were
    # read, then the lesson failed in its timeline stage with a bare "OverflowError: date value
    # out of range" naming no row, and `highlights timeline` stopped with a traceback.
    path = write_csv(folder, f"L-1,student,L-1/student.webm,{started_at},", f"L-1,teacher,L-1/teacher.mp4,{T0},{T1}",
                     *GOOD[2:])
    manifest = read_manifest(path, timezone=timezone)
    assert problems(manifest.lessons["L-1"]) == [
        f"manifest.csv row 2 (lesson L-1): started_at '{started_at}' is out of range: no recording was made then"
    ]
    assert manifest.lessons["L-2"].ok


def test_a_json_line_nested_too_deeply_spoils_its_lesson_not_the_batch(folder: Path):
    # Before: json.loads raised RecursionError out of read_manifest: a traceback, no lesson ran.
    deep = '{"lesson_id": "L-1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = write_jsonl(folder, deep, *({"lesson_id": "L-2", "role": r, "path": f"L-2/{r}.{x}", "started_at": T0,
                                        "ended_at": T1} for r, x in (("student", "webm"), ("teacher", "mp4"))))
    manifest = read_manifest(path)
    assert problems(manifest.lessons["L-1"]) == ["manifest.jsonl row 1 (lesson L-1): not valid JSON: nested too deeply"]
    assert manifest.lessons["L-2"].ok


def test_several_problems_of_one_row_are_all_reported(folder: Path):
    path = write_csv(folder, "L-1,parent,L-1/missing.webm,noon,")
    messages = problems(read_manifest(path).lessons["L-1"])
    assert len(messages) == 3 and all(m.startswith("manifest.csv row 2 (lesson L-1): ") for m in messages)


def test_naive_time_without_a_zone_is_a_problem_but_an_unknown_zone_spoils_the_run(folder: Path):
    path = write_csv(folder, "L-1,student,L-1/student.webm,2026-11-21T15:00:00,")
    assert "pass --timezone" in problems(read_manifest(path).lessons["L-1"])[0]
    with pytest.raises(InputError, match="unknown time zone 'Mars/Olympus'"):
        read_manifest(path, timezone="Mars/Olympus")
    with pytest.raises(InputError, match="unknown time zone"):
        read_manifest(path, timezone="../../etc/passwd")


@pytest.mark.parametrize(
    ("lesson_id", "message"),
    [
        ("../x", "lesson_id '../x' is not a valid id"),
        ("x" * 65, "is not a valid id"),
        ("", "lesson_id is empty"),
        ("a/b", "is not a valid id"),
    ],
)
def test_rows_with_a_bad_lesson_id_belong_to_no_lesson(folder: Path, lesson_id: str, message: str):
    path = write_csv(folder, f"{lesson_id},student,L-1/student.webm,{T0},{T1}", *GOOD[2:])
    manifest = read_manifest(path)
    assert list(manifest.lessons) == ["L-2"] and manifest.lessons["L-2"].ok
    problem, = manifest.problems
    assert (problem.row, problem.lesson_id) == (2, None)
    assert str(problem).startswith("manifest.csv row 2: ") and message in str(problem)


def test_the_same_recording_listed_twice(folder: Path):
    path = write_csv(
        folder,
        f"L-1,student,L-1/student.webm,{T0},{T1}",
        f"L-1,teacher,L-1/teacher.mp4,{T0},{T1}",
        f"L-2,student,L-2/student.webm,{T0},{T1}",
        f"L-3,student,{folder}/L-1/student.webm,{T0},{T1}",  # the same file, written absolute
        f"L-2,teacher,L-1/teacher.mp4,{T0},{T1}",
    )
    manifest = read_manifest(path)
    # Which lesson the file is of is unknown: the first mention does not win, both lessons fail
    # (before, L-1 ran with it, and the rows' order decided whose child's face a GIF showed).
    assert problems(manifest.lessons["L-1"]) == [
        "manifest.csv row 2 (lesson L-1): student.webm is listed again for lesson L-3 (row 5)",
        "manifest.csv row 3 (lesson L-1): teacher.mp4 is listed again for lesson L-2 (row 6)",
    ]
    assert problems(manifest.lessons["L-3"]) == ["manifest.csv row 5 (lesson L-3): student.webm is listed twice (also row 2)"]
    assert problems(manifest.lessons["L-2"]) == ["manifest.csv row 6 (lesson L-2): teacher.mp4 is listed twice (also row 3)"]


def test_a_recording_listed_for_two_lessons_fails_both_whatever_the_order(folder: Path):
    rows = [f"L-1,teacher,L-1/teacher.mp4,{T0},{T1}", f"L-1,student,L-1/student.webm,{T0},{T1}",
            f"L-2,teacher,L-2/teacher.mp4,{T0},{T1}", f"L-2,student,L-1/student.webm,{T0},{T1}"]  # a typo: L-1's child
    for order in (rows, rows[2:] + rows[:2]):
        manifest = read_manifest(write_csv(folder, *order))
        assert not manifest.lessons["L-1"].ok and not manifest.lessons["L-2"].ok


def test_a_recording_listed_for_two_lessons_under_another_name_fails_both(folder: Path):
    # A second name for the same file (a hard link, as copy jobs and backups make) was taken for
    # another recording: both lessons ran, one with the other's child. (Symbolic links were
    # caught already: paths are resolved.)
    (folder / "L-2" / "camera.webm").hardlink_to(folder / "L-1" / "student.webm")
    manifest = read_manifest(write_csv(
        folder, f"L-1,student,L-1/student.webm,{T0},{T1}", f"L-1,teacher,L-1/teacher.mp4,{T0},{T1}",
        f"L-2,student,L-2/camera.webm,{T0},{T1}", f"L-2,teacher,L-2/teacher.mp4,{T0},{T1}",
    ))
    assert problems(manifest.lessons["L-1"]) == [
        "manifest.csv row 2 (lesson L-1): student.webm is listed again for lesson L-2 (row 4 as camera.webm)"]
    assert problems(manifest.lessons["L-2"]) == [
        "manifest.csv row 4 (lesson L-2): camera.webm is the same file as student.webm (row 2)"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("loop", "recording 'L-1/loop.webm' cannot be opened (a symlink loop)"),
        ("long", "cannot be opened (File name too long)"),
        ("nul", "cannot be opened (not a usable path)"),
    ],
)
def test_a_path_that_cannot_even_be_looked_at_spoils_its_row_not_the_batch(folder: Path, make: str, message: str):
    # Before: resolve() / is_file() raised (RuntimeError for the loop, OSError ENAMETOOLONG,
    # ValueError for a NUL byte) out of read_manifest: a traceback, and no lesson of the night ran.
    if make == "loop":
        (folder / "L-1/loop.webm").symlink_to("loop2.webm")
        (folder / "L-1/loop2.webm").symlink_to("loop.webm")
        raw = "L-1/loop.webm"
    else:
        raw = "L-1/" + "x" * 300 + ".webm" if make == "long" else "L-1/stu\\u0000dent.webm"
    path = write_jsonl(
        folder,
        {"lesson_id": "L-1", "role": "teacher", "path": "L-1/teacher.mp4", "started_at": T0, "ended_at": T1},
        f'{{"lesson_id": "L-1", "role": "student", "path": "{raw}", "started_at": "{T0}", "ended_at": "{T1}"}}',
        {"lesson_id": "L-2", "role": "student", "path": "L-2/student.webm", "started_at": T0, "ended_at": T1},
        {"lesson_id": "L-2", "role": "teacher", "path": "L-2/teacher.mp4", "started_at": T0, "ended_at": T1},
    )
    manifest = read_manifest(path)
    bad, = problems(manifest.lessons["L-1"])
    assert bad.startswith("manifest.jsonl row 2 (lesson L-1): ") and message in bad
    assert manifest.lessons["L-2"].ok


def test_one_file_cannot_be_both_people(folder: Path):
    path = write_csv(folder, f"L-1,student,L-1/student.webm,{T0},{T1}", f"L-1,teacher,L-1/student.webm,{T0},{T1}")
    assert problems(read_manifest(path).lessons["L-1"]) == [
        "manifest.csv row 3 (lesson L-1): student.webm is listed twice (also row 2)"
    ]


def test_undecodable_bytes_spoil_only_their_row(folder: Path):
    path = folder / "manifest.csv"
    path.write_bytes(
        (HEADER + "\n" + GOOD[0] + "\n").encode() + b"L-1,student,L-1/stud\xff\xfeent.webm," + f"{T0},{T1}\n".encode()
        + "\n".join(GOOD[2:]).encode() + b"\n"
    )
    manifest = read_manifest(path)
    assert manifest.lessons["L-2"].ok
    message, = problems(manifest.lessons["L-1"])
    assert message.startswith("manifest.csv row 3 (lesson L-1): ") and "UTF-8" in message


def test_undecodable_bytes_in_json_lines_spoil_only_their_line(folder: Path):
    keys = HEADER.split(",")
    good = json.dumps(dict(zip(keys, GOOD[2].split(",")))).encode()
    bad = json.dumps(dict(zip(keys, GOOD[0].split(",")))).encode().replace(b"teacher.mp4", b"teach\xffer.mp4")
    path = folder / "manifest.jsonl"
    path.write_bytes(bad + b"\n" + good + b"\n")
    manifest = read_manifest(path)
    assert manifest.lessons["L-2"].ok
    message, = problems(manifest.lessons["L-1"])
    assert message.startswith("manifest.jsonl row 1 (lesson L-1): ") and "UTF-8" in message


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "manifest.jsonl row 1: not valid JSON"),
        ("[1, 2]", "manifest.jsonl row 1: not a JSON object"),
        (json.dumps({"role": "student", "path": "L-1/student.webm", "started_at": T0}), "manifest.jsonl row 1: missing lesson_id"),
    ],
)
def test_json_lines_that_name_no_lesson(folder: Path, line: str, message: str):
    keys = HEADER.split(",")
    path = write_jsonl(folder, line, dict(zip(keys, GOOD[2].split(","))))
    manifest = read_manifest(path)
    problem, = manifest.problems
    assert str(problem).startswith(message)
    assert list(manifest.lessons) == ["L-2"] and manifest.lessons["L-2"].ok


def test_json_line_missing_a_required_key_spoils_its_lesson(folder: Path):
    path = write_jsonl(folder, {"lesson_id": "L-1", "role": "student", "started_at": T0})
    assert problems(read_manifest(path).lessons["L-1"]) == ["manifest.jsonl row 1 (lesson L-1): missing path"]


def test_json_values_that_are_not_strings(folder: Path):
    path = write_jsonl(folder, {"lesson_id": 1001, "role": "student", "path": "L-1/student.webm", "started_at": 1700000000})
    lesson = read_manifest(path).lessons["1001"]
    assert problems(lesson) == ["manifest.jsonl row 1 (lesson 1001): started_at '1700000000' is not an ISO-8601 time "
                                "(e.g. 2026-11-21T15:00:03+00:00)"]


# ----------------------------------------------------------------------------- unusable files


def test_missing_manifest(tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        read_manifest(tmp_path / "nope.csv")


def test_empty_manifest(tmp_path: Path):
    (tmp_path / "m.csv").write_bytes(b"")
    with pytest.raises(InputError, match="m.csv: the file is empty"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "m.jsonl").write_bytes(b"")
    with pytest.raises(InputError, match="the file is empty"):
        read_manifest(tmp_path / "m.jsonl")


def test_bom_only_manifest_has_no_header(tmp_path: Path):
    (tmp_path / "m.csv").write_bytes("\ufeff".encode())
    with pytest.raises(InputError, match=r"\(no header\)"):
        read_manifest(tmp_path / "m.csv")


@pytest.mark.parametrize(
    ("header", "missing"),
    [("lesson_id,role,path", "started_at"), ("lesson,role,file,start", "lesson_id, path, started_at")],
)
def test_missing_required_columns(folder: Path, header: str, missing: str):
    with pytest.raises(InputError, match=f"missing: {missing}"):
        read_manifest(write_csv(folder, "L-1,student,x", header=header))


def test_a_column_named_twice(folder: Path):
    with pytest.raises(InputError, match="named twice"):
        read_manifest(write_csv(folder, header="lesson_id,role,path,started_at,role"))


def test_undecodable_header(tmp_path: Path):
    (tmp_path / "m.csv").write_bytes(b"lesson_id,r\xffole,path,started_at\n")
    with pytest.raises(InputError, match="m.csv"):
        read_manifest(tmp_path / "m.csv")


def test_a_manifest_in_a_bucket_resolves_its_rows_against_its_own_location(s3, tmp_path: Path) -> None:
    """A manifest (and lessons file) given as s3:// URLs: relative rows are objects beside it,
    URLs stay as given, other schemes and paths out of the bucket are the row's problem, and an
    object listed twice spoils both lessons as a file would. Nothing but the two files is read."""
    import uuid

    from highlights.storage import objects

    base = f"s3://rec/{uuid.uuid4().hex[:8]}/2026-12-01"
    when = "2026-12-01T15:00:00+00:00"
    rows = ["lesson_id,role,path,started_at",
            f"L-1,teacher,L-1/teacher.mp4,{when}",
            f"L-1,student,s3://other-bucket/exports/L-1/student.webm,{when}",
            f"L-2,student,gs://bucket/L-2/student.webm,{when}",
            f"L-3,student,../../../x.webm,{when}",
            f"L-4,student,L-1/teacher.mp4,{when}"]
    objects.upload(f"{base}/manifest.csv", "\n".join(rows).encode(), content_type="text/csv")
    objects.upload(f"{base}/lessons.csv", b"lesson_id,subject\nL-1,Maths\n", content_type="text/csv")
    manifest = read_manifest(f"{base}/manifest.csv", lessons_path=f"{base}/lessons.csv")

    assert manifest.location == f"{base}/manifest.csv" and manifest.path.name == "manifest.csv"
    teacher, student = manifest.lessons["L-1"].recordings
    assert teacher.url == f"{base}/L-1/teacher.mp4" and teacher.path.name == "teacher.mp4"
    assert student.url == "s3://other-bucket/exports/L-1/student.webm" and student.location == student.url
    assert manifest.lessons["L-1"].info.subject == "Maths"
    [l2] = manifest.lessons["L-2"].problems
    assert "'gs://bucket/L-2/student.webm' is not a usable object URL" in str(l2) and "supported schemes: s3" in str(l2)
    assert "a path out of the bucket" in str(manifest.lessons["L-3"].problems[0])
    assert str(manifest.lessons["L-4"].problems[0]) == "manifest.csv row 6 (lesson L-4): teacher.mp4 is listed twice (also row 2)"
    assert "listed again for lesson L-4" in str(manifest.lessons["L-1"].problems[0])
