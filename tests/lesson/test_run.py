"""Tests of :mod:`highlights.lesson.run` (``run_manifest`` / ``run_lesson``) on recordings built at run time.

The lessons are those of ``tests/support/scene.py``: real files (teacher: H.264 MP4, student: VP8
WebM) that go through the real stages: end times from the media, timeline, frame sampling,
selection, GIF, snippet, analytics, report, ``result.json`` and the database row. Only the face
models are replaced, by ``support.fakes.FakeScorer``, which "sees" what the scene draws into the
student's frames; ``FakeScorer.calls`` tells a rerun that scored the frames again from one that
reused them. The command line's ``highlights run`` is tested in ``tests/cli/test_lessons.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from PIL import Image

import highlights.lesson.flow
import highlights.lesson.folder
import highlights.lesson.graph
from highlights.batch.run import run_manifest
from highlights.config import Settings
from highlights.inputs.manifest import read_manifest
from highlights.lesson.folder import lesson_lock, read_result
from highlights.lesson.run import run_lesson
from highlights.lesson.withdraw import withdraw_lesson
from highlights.persist.store import ResultStore
from highlights.stages.analytics import AnalyticsOptions
from highlights.stages.selection import SelectionOptions
from highlights.stages.snippet import EmailOptions

from support.fakes import FakeScorer
from support.lessons import db_row, done_lesson, gifs_in, lesson_rows, one_lesson, run_one, write_manifest
from support.scene import ADULT_SECONDS, PUBLIC_BASE, SMILES, STUDENT_DELAY_S, STUDENT_SECONDS, T0

# --------------------------------------------------------------------------- tests


def test_good_lesson_ends_ok_with_gif_snippet_report_and_database_row(videos, tmp_path: Path) -> None:
    manifest = one_lesson(videos, tmp_path / "rec")
    settings = Settings(out_dir=tmp_path / "out", email=EmailOptions(public_base_url=PUBLIC_BASE))
    fake = FakeScorer()
    result = run_one(manifest, settings, fake)

    assert result.status == "ok", result.reason
    assert fake.images == STUDENT_SECONDS  # one frame per second of lesson, each scored once
    folder = settings.out_dir / "L-1001"
    stored = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    assert stored["status"] == "ok" and stored["gif"] == result.gif

    # The GIF: a real, looping GIF with one frame per pick, under a name unrelated to the lesson.
    assert result.gif is not None and "L-1001" not in result.gif
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}\.gif", result.gif)
    assert gifs_in(folder) == [result.gif]
    assert 3 <= len(result.frames) <= 9
    with Image.open(folder / result.gif) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == len(result.frames)
        assert gif.info.get("loop") == 0
    assert result.gif_url == f"{PUBLIC_BASE}/L-1001/{result.gif}"
    assert result.gif_url in (folder / "snippet.html").read_text(encoding="utf-8")
    assert (folder / "report.html").is_file() and (folder / "analytics.json").is_file()

    # stages.json: each stage in the order it ran, with its fingerprint and files (what a resume checks).
    stages = json.loads((folder / "stages.json").read_text(encoding="utf-8"))
    assert list(stages) == ["timeline", "scores", "analytics", "selection", "gif", "snippet", "report"]
    assert all(set(record) >= {"key", "files", "finished_at"} for record in stages.values())
    assert stages["scores"]["files"] == ["scores.csv"] and stages["scores"]["frames"] == STUDENT_SECONDS
    assert stages["analytics"]["files"] == ["analytics.json", "analytics.csv"]
    assert stages["gif"]["files"] == [stages["gif"]["gif"]] == [result.gif]
    assert stages["gif"]["info"]["n_frames"] == len(result.frames)
    assert stages["snippet"]["files"] == ["snippet.html", "snippet.txt"]

    row, highlight = db_row(settings, "L-1001")
    assert row["status"] == "ok"
    assert highlight is not None and highlight.gif_url == result.gif_url

    # The picks: smiling seconds, never near an adult, spread out, the best smile first.
    options = SelectionOptions()
    offsets = [frame.ref.offset_s for frame in result.frames]
    assert all(round(offset) in SMILES for offset in offsets), offsets
    for offset in offsets:
        nearest_adult = min(abs(offset - second) for second in ADULT_SECONDS)
        assert nearest_adult > options.adult_margin_s, f"pick at {offset} s is {nearest_adult} s from an adult"
    times = sorted(frame.ref.t for frame in result.frames)
    # A short lesson: the gap between picks may come down (to min_gap_floor_s) to fill the GIF.
    assert all(b - a >= options.min_gap_floor_s for a, b in zip(times, times[1:])), times
    assert result.frames[0].smile == max(frame.smile for frame in result.frames)


def test_output_folder_is_created_when_missing(videos, tmp_path: Path) -> None:
    manifest = one_lesson(videos, tmp_path / "rec")
    settings = Settings(out_dir=tmp_path / "new" / "out")
    assert not (tmp_path / "new").exists()

    result = run_one(manifest, settings, FakeScorer())

    assert result.status == "ok", result.reason
    assert (settings.out_dir / ".highlights" / "highlights.sqlite").is_file()
    assert (settings.out_dir / "L-1001" / "result.json").is_file()
    assert db_row(settings, "L-1001")[1].gif_url == result.gif_url


def test_rerun_skips_done_lesson_and_redoes_it_after_a_touch_or_with_force(videos, tmp_path: Path) -> None:
    manifest, settings, folder, first = done_lesson(videos, tmp_path)

    # Same inputs: skipped, the models are not even asked.
    fake = FakeScorer()
    again = run_one(manifest, settings, fake)
    assert again.skipped and again.status == "ok"
    assert fake.calls == 0
    assert again.gif == first.gif and gifs_in(folder) == [first.gif]

    # A recording changed (new mtime): redone, and the GIF keeps its name (links stay valid).
    student = tmp_path / "rec" / "L-1001" / "student.webm"
    stat = student.stat()
    os.utime(student, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    fake = FakeScorer()
    touched = run_one(manifest, settings, fake)
    assert not touched.skipped and touched.status == "ok", touched.reason
    assert fake.calls > 0
    assert touched.fingerprint != first.fingerprint
    assert touched.gif == first.gif and gifs_in(folder) == [first.gif]

    # force: redone although nothing changed, same GIF name.
    fake = FakeScorer()
    forced = run_one(manifest, replace(settings, force=True), fake)
    assert not forced.skipped and forced.status == "ok", forced.reason
    assert fake.calls > 0
    assert forced.gif == first.gif and gifs_in(folder) == [first.gif]


def test_interrupted_lesson_resumes_without_scoring_again(videos, tmp_path: Path) -> None:
    manifest, settings, folder, first = done_lesson(videos, tmp_path)
    (folder / "selection.json").unlink()
    (folder / "result.json").unlink()

    fake = FakeScorer()
    resumed = run_one(manifest, settings, fake)

    assert fake.calls == 0  # scores.csv reused (stages.json)
    assert not resumed.skipped and resumed.status == "ok", resumed.reason
    assert (folder / "selection.json").is_file()
    assert read_result(folder) is not None and read_result(folder).status == "ok"
    assert resumed.gif == first.gif and gifs_in(folder) == [first.gif]
    assert [f.ref.t for f in resumed.frames] == [f.ref.t for f in first.frames]


def test_bad_lessons_fail_alone_with_reasons_naming_lesson_file_and_row(videos, tmp_path: Path) -> None:
    root = tmp_path / "rec"
    good = lesson_rows(videos, root, "L-good")  # manifest rows 2, 3
    garbage = lesson_rows(videos, root, "L-garbage")  # rows 4, 5 (student)
    (root / "L-garbage" / "student.webm").write_bytes(b"this is not a video, just some bytes\n" * 200)
    bad_time = lesson_rows(videos, root, "L-badtime", student_started_at="yesterday afternoon")  # rows 6, 7
    manifest = write_manifest(root, good + garbage + bad_time)
    settings = Settings(out_dir=tmp_path / "out")

    results = {r.lesson_id: r for r in run_manifest(manifest, settings, scorer=FakeScorer())}

    assert results["L-good"].status == "ok", results["L-good"].reason
    broken = results["L-garbage"]
    assert broken.status == "failed"
    assert "L-garbage" in broken.reason and "student.webm" in broken.reason
    assert "manifest.csv row 5" in broken.reason, broken.reason
    late = results["L-badtime"]
    assert late.status == "failed"
    assert "L-badtime" in late.reason and "manifest.csv row 7" in late.reason, late.reason
    assert "started_at" in late.reason
    # Reasons reach logs and the database: file names and rows, never the folders they lie in.
    assert str(root) not in broken.reason and str(root) not in late.reason

    for lesson_id, status in (("L-good", "ok"), ("L-garbage", "failed"), ("L-badtime", "failed")):
        row, _ = db_row(settings, lesson_id)
        assert row is not None and row["status"] == status, (lesson_id, row)
        assert (settings.out_dir / lesson_id / "result.json").is_file()


def test_cameras_that_never_overlap_give_no_lesson_without_scoring(videos, tmp_path: Path) -> None:
    # The teacher leaves after 100 s; the student joins after 200 s.
    manifest = one_lesson(videos, tmp_path / "rec", student_start_s=200.0)
    settings = Settings(out_dir=tmp_path / "out")
    fake = FakeScorer()

    result = run_one(manifest, settings, fake)

    assert result.status == "no_lesson", result.reason
    assert fake.calls == 0
    folder = settings.out_dir / "L-1001"
    assert (folder / "report.html").is_file()
    assert gifs_in(folder) == [] and result.gif is None
    assert read_result(folder).status == "no_lesson"
    assert db_row(settings, "L-1001")[0]["status"] == "no_lesson"


def test_lesson_corrected_to_no_lesson_loses_its_old_gif(videos, tmp_path: Path) -> None:
    settings = Settings(out_dir=tmp_path / "out")
    first = run_one(one_lesson(videos, tmp_path / "rec"), settings, FakeScorer())
    assert first.status == "ok" and gifs_in(settings.out_dir / "L-1001")
    # The manifest is corrected: the cameras never overlapped after all.
    corrected = one_lesson(videos, tmp_path / "rec2", student_start_s=200.0)
    second = run_one(corrected, settings, FakeScorer())
    assert second.status == "no_lesson"
    assert gifs_in(settings.out_dir / "L-1001") == []


def test_child_who_never_smiles_gets_no_highlight_and_no_gif(videos, tmp_path: Path) -> None:
    manifest = one_lesson(videos, tmp_path / "rec", student="shy")
    settings = Settings(out_dir=tmp_path / "out")
    fake = FakeScorer()

    result = run_one(manifest, settings, fake)

    assert result.status == "no_highlight", result.reason
    assert fake.calls > 0
    assert result.gif is None and gifs_in(settings.out_dir / "L-1001") == []
    row, highlight = db_row(settings, "L-1001")
    assert row["status"] == "no_highlight"
    assert highlight is None


def test_rerun_that_finds_no_smile_removes_the_old_gif(videos, tmp_path: Path) -> None:
    manifest, settings, folder, first = done_lesson(videos, tmp_path)
    assert gifs_in(folder) == [first.gif]

    result = run_one(manifest, replace(settings, force=True), FakeScorer(smiles=False))

    assert result.status == "no_highlight", result.reason
    assert gifs_in(folder) == []  # the GIF nobody stands behind any more is gone
    row, highlight = db_row(settings, "L-1001")
    assert row["status"] == "no_highlight"
    assert highlight is None


def test_lesson_locked_by_another_run_is_reported_busy(videos, tmp_path: Path) -> None:
    manifest = read_manifest(one_lesson(videos, tmp_path / "rec"))
    lesson = manifest.lessons["L-1001"]
    settings = Settings(out_dir=tmp_path / "out")
    folder = settings.out_dir / "L-1001"
    fake = FakeScorer()

    with lesson_lock(folder) as locked:
        assert locked
        result = run_lesson(lesson, settings, scorer=fake)
        assert result.status == "busy"  # not a failure: the other run is doing it
        assert "another highlights run" in result.reason and "L-1001" in result.reason
        assert not (folder / "result.json").exists()
        assert fake.calls == 0

    # Once the lock is released the lesson runs.
    assert run_lesson(lesson, settings, scorer=fake).status == "ok"


# --------------------------------------------------------------------------- folders, reruns, database


def test_a_lesson_whose_output_folder_cannot_be_written_fails_alone(videos, tmp_path: Path) -> None:
    root = tmp_path / "rec"
    manifest = write_manifest(root, lesson_rows(videos, root, "L-blocked") + lesson_rows(videos, root, "L-good"))
    settings = Settings(out_dir=tmp_path / "out")
    settings.out_dir.mkdir()
    (settings.out_dir / "L-blocked").write_text("a stray file where the lesson's folder goes\n")

    results = {r.lesson_id: r for r in run_manifest(manifest, settings, scorer=FakeScorer())}

    # It used to raise NotADirectoryError out of run_manifest: the whole batch stopped.
    blocked = results["L-blocked"]
    assert blocked.status == "failed"
    assert blocked.reason == "lesson L-blocked: output folder L-blocked cannot be written (a file is in its place)"
    assert results["L-good"].status == "ok", results["L-good"].reason
    assert db_row(settings, "L-blocked")[0]["status"] == "failed"


def test_rerun_redoes_a_done_lesson_whose_files_were_deleted(videos, tmp_path: Path) -> None:
    manifest, settings, folder, first = done_lesson(videos, tmp_path)
    (folder / first.gif).unlink()
    (folder / "snippet.html").unlink()

    # A new database too: the skip used to copy the result into it and crash on the missing snippet.
    moved = replace(settings, db_url=f"sqlite:///{tmp_path / 'other.sqlite'}")
    fake = FakeScorer()
    again = run_one(manifest, moved, fake)

    assert not again.skipped and again.status == "ok", again.reason
    assert fake.calls == 0  # only the missing files are made again, from the stored scores
    assert again.gif == first.gif and gifs_in(folder) == [first.gif]  # the link already sent works again
    assert (folder / "snippet.html").is_file()
    assert db_row(moved, "L-1001")[1].gif_url == first.gif_url


def test_a_database_error_keeps_the_student_name_out_of_reason_and_logs(videos, tmp_path: Path, caplog) -> None:
    from sqlalchemy import text

    manifest = one_lesson(videos, tmp_path / "rec")
    lessons = tmp_path / "rec" / "lessons.csv"
    lessons.write_text("lesson_id,student_name,locale\nL-1001,Zoë Secretname,en\n", encoding="utf-8")
    settings = Settings(out_dir=tmp_path / "out")
    store = ResultStore(settings.database_url)
    with store.engine.begin() as connection:
        connection.execute(text(
            "CREATE TRIGGER refuse BEFORE INSERT ON lesson_highlights BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ))
    store.dispose()

    with caplog.at_level("DEBUG"):
        [result] = run_manifest(manifest, settings, lessons_path=lessons, scorer=FakeScorer())

    assert result.status == "failed" and "refused" in result.reason
    assert "Secretname" not in result.reason
    assert "Secretname" not in (settings.out_dir / "L-1001" / "result.json").read_text(encoding="utf-8")
    assert "Secretname" not in caplog.text
    assert "Secretname" in (settings.out_dir / "L-1001" / "snippet.html").read_text(encoding="utf-8")


def test_a_rerun_removes_the_temporary_files_a_crash_left(videos, tmp_path: Path) -> None:
    manifest, settings, folder, first = done_lesson(videos, tmp_path)
    # What a run killed half-way through atomic writes leaves (highlights.files.atomic_path).
    leftovers = [f".{first.gif[:-4]}.k3j2l1ab.tmp.gif", ".snippet.ab12cd34.tmp.html", ".scores.zz99xy00.tmp.csv",
                 ".result.q1w2e3r4.tmp.json"]
    for name in leftovers:
        (folder / name).write_text("half a file")

    forced = run_one(manifest, replace(settings, force=True), FakeScorer())

    assert forced.status == "ok", forced.reason
    assert sorted(p.name for p in folder.glob(".*.tmp*")) == []
    assert gifs_in(folder) == [first.gif] and (folder / ".lock").exists()


def test_two_segments_with_one_file_name_are_each_read_for_their_own_frames(videos, tmp_path: Path, monkeypatch) -> None:
    """The student camera as two segments named alike in two folders (conn-1/student.webm, the
    shy recording, for 10 s; conn-2/student.webm, the smiling one, after it). The artifacts keep
    only a frame's file name: a pick read again from disk (nothing kept from scoring here), and a
    frame the labeller shows, must come from the segment the frame was sampled from, not from the
    first file of that name (which silently gave a frame of the other segment, never checked)."""
    import highlights.lesson.graph
    from highlights.tools.label.lessons import load_lessons

    root = tmp_path / "rec"
    folder = root / "L-twice"
    for sub in ("conn-1", "conn-2"):
        (folder / sub).mkdir(parents=True)
    shutil.copyfile(videos["teacher"], folder / "teacher.mp4")
    shutil.copyfile(videos["shy"], folder / "conn-1" / "student.webm")
    shutil.copyfile(videos["student"], folder / "conn-2" / "student.webm")
    first = T0 + timedelta(seconds=STUDENT_DELAY_S)
    second = first + timedelta(seconds=10)
    manifest = write_manifest(root, [
        ["L-twice", "teacher", "L-twice/teacher.mp4", T0.isoformat(), ""],
        ["L-twice", "student", "L-twice/conn-1/student.webm", first.isoformat(), second.isoformat()],
        ["L-twice", "student", "L-twice/conn-2/student.webm", second.isoformat(), ""],
    ])  # fmt: skip
    reads: list[tuple[Path, float]] = []
    real_read = highlights.lesson.graph.read_frame_at

    def read(path, offset_s):
        reads.append((Path(path), offset_s))
        return real_read(path, offset_s)

    monkeypatch.setattr(highlights.lesson.flow, "KEPT_FRAMES", 0)  # every pick is read again from its file
    monkeypatch.setattr(highlights.lesson.graph, "read_frame_at", read)
    settings = Settings(out_dir=tmp_path / "out")
    result = run_one(manifest, settings, FakeScorer())
    assert result.status == "ok", result.reason
    assert len(reads) == len(result.frames) >= 3
    assert {path.parent.name for path, _ in reads} == {"conn-2"}  # the smiles are all in conn-2

    [lesson] = load_lessons(settings.out_dir, [manifest]).values()
    assert lesson.has_recordings
    by_segment = {f.index: lesson.path_of(f).parent.name for f in lesson.frames}
    assert {by_segment[f.index] for f in lesson.frames if f.t < 10} == {"conn-1"}
    assert {by_segment[f.index] for f in lesson.frames if f.t >= 10} == {"conn-2"}


class _BrokenScorer(FakeScorer):
    """A forced rerun that dies in the scores stage (a decoder crash, a kill -9 of the run)."""

    def score_images(self, images):
        raise RuntimeError("worker lost")


def test_a_forced_rerun_cut_short_keeps_the_published_gifs_name_on_the_next_rerun(videos, tmp_path: Path) -> None:
    manifest, settings, folder, first = done_lesson(videos, tmp_path)

    # --force rewrites stages.json from the first stage on; cut short before the GIF stage, it
    # no longer holds the GIF's name (the published highlight itself is kept).
    cut = run_one(manifest, replace(settings, force=True), _BrokenScorer())
    assert cut.status == "failed"
    assert read_result(folder).gif == first.gif and gifs_in(folder) == [first.gif]

    # The next rerun that rebuilds the GIF (here: a changed email setting) keeps its name: the
    # emails already sent link to it.
    wider = replace(settings, email=replace(settings.email, display_width=settings.email.display_width + 20))
    again = run_one(manifest, wider, FakeScorer())
    assert again.status == "ok" and not again.skipped, again.reason
    assert again.gif == first.gif and gifs_in(folder) == [first.gif]


def test_a_file_a_stage_cannot_write_is_named_without_its_folders(videos, tmp_path: Path, monkeypatch) -> None:
    """A permission error inside a stage (the lesson's folder made read-only) fails the lesson
    with the file's name: str() of the OSError held the whole private path, which reached the
    result, the database's last_error and the logs."""
    import highlights.lesson.graph

    manifest = one_lesson(videos, tmp_path / "rec")
    settings = Settings(out_dir=tmp_path / "out")

    def refuse(timeline, folder):
        raise PermissionError(13, "Permission denied", str(Path(folder) / ".timeline.x1.tmp.json"))

    monkeypatch.setattr(highlights.lesson.folder, "write_timeline", refuse)
    result = run_one(manifest, settings, FakeScorer())
    assert result.status == "failed"
    assert result.reason == "lesson L-1001: timeline stage failed: PermissionError: Permission denied: .timeline.x1.tmp.json"
    assert str(tmp_path) not in db_row(settings, "L-1001")[0]["last_error"]


# --------------------------------------------------------------------------- the analytics stage's figures in the database, and the smile / presence switch


def figures(settings: Settings, lesson_id: str):
    store = ResultStore(settings.database_url)
    try:
        return store.figures(lesson_id)
    finally:
        store.dispose()


def test_a_run_leaves_every_lessons_figures_in_the_database(videos, tmp_path: Path) -> None:
    root = tmp_path / "rec"
    rows = lesson_rows(videos, root, "L-OK") + lesson_rows(videos, root, "L-SHY", student="shy")
    rows.append(["L-BAD", "student", "L-BAD/student.webm", "not a time"])
    settings = Settings(out_dir=tmp_path / "out")
    results = {r.lesson_id: r for r in run_manifest(write_manifest(root, rows), settings, scorer=FakeScorer())}
    assert {k: r.status for k, r in results.items()} == {"L-OK": "ok", "L-SHY": "no_highlight", "L-BAD": "failed"}

    totals, minutes = figures(settings, "L-OK")
    assert totals["reason_category"] is None and totals["processing_s"] is not None and totals["processing_s"] >= 0
    assert len(minutes) == totals["minutes"] == 2  # a 90 s lesson: minutes 0 and 1
    assert sum(m["frames"] for m in minutes) == totals["frames"] == STUDENT_SECONDS  # one frame a second of the student
    assert totals["minutes_with_parent"] == 2  # adults at 41, 42 and 70 s of the recording
    assert totals["smile_share"] > 0 and all(m["mean_smile"] is not None for m in minutes)
    assert totals["student_disconnects"] == 0 and minutes[0]["teacher_online_s"] == 60.0
    assert figures(settings, "L-SHY")[0]["reason_category"] == "no_smile"
    assert figures(settings, "L-BAD")[0]["reason_category"] == "bad_input"


def test_smile_detection_and_presence_switched_off(videos, tmp_path: Path) -> None:
    root = tmp_path / "rec"
    settings = Settings(out_dir=tmp_path / "out", analytics=AnalyticsOptions(smiles=False, presence=False))
    [result] = run_manifest(write_manifest(root, lesson_rows(videos, root, "L-OK")), settings, scorer=FakeScorer())
    assert result.status == "ok" and result.gif  # the GIF stays

    folder = settings.out_dir / "L-OK"
    header = (folder / "analytics.csv").read_text().splitlines()[0].split(",")
    assert header == ["bucket", "start_s", "end_s", "frames", "student_online_s", "teacher_online_s"]
    report = (folder / "report.html").read_text()
    assert report.count("<svg") == 1  # the cameras only: no smile chart, no presence chart
    assert "Smile detection" not in report and "Who is on camera" not in report
    totals, minutes = figures(settings, "L-OK")
    assert totals["frames"] == STUDENT_SECONDS
    assert totals["smile_share"] is None and totals["minutes_with_parent"] is None
    assert all(m["smile_share"] is None and m["adult_frames"] is None for m in minutes)


# --------------------------------------------------------------------------- bad inputs and faults of issue 9


def test_a_lesson_named_like_the_databases_journal_breaks_nothing(videos, tmp_path: Path) -> None:
    root = tmp_path / "rec"
    rows = lesson_rows(videos, root, "highlights.sqlite-journal") + lesson_rows(videos, root, "L-1001")
    rows += lesson_rows(videos, root, "highlights.sqlite")
    settings = Settings(out_dir=tmp_path / "out")

    results = run_manifest(write_manifest(root, rows), settings, scorer=FakeScorer())

    assert [r.status for r in results] == ["ok", "ok", "ok"], [r.reason for r in results]
    assert settings.database_url == f"sqlite:///{tmp_path / 'out' / '.highlights' / 'highlights.sqlite'}"
    for lesson_id in ("highlights.sqlite-journal", "L-1001", "highlights.sqlite"):
        assert db_row(settings, lesson_id)[0]["status"] == "ok"  # the next night opens it fine


def test_an_existing_database_in_out_is_kept_and_lessons_that_would_clash_fail_alone(videos, tmp_path: Path) -> None:
    out = tmp_path / "out"
    legacy = out / "highlights.sqlite"
    ResultStore(f"sqlite:///{legacy}").dispose()  # an older deployment's database
    settings = Settings(out_dir=out)
    assert settings.database_url == f"sqlite:///{legacy}"
    root = tmp_path / "rec"
    rows = lesson_rows(videos, root, "highlights.sqlite-journal") + lesson_rows(videos, root, "L-1001")

    clash, good = run_manifest(write_manifest(root, rows), settings, scorer=FakeScorer())

    assert clash.status == "failed" and "highlights.sqlite" in clash.reason
    assert not (out / "highlights.sqlite-journal").exists()
    assert good.status == "ok", good.reason
    assert db_row(settings, "L-1001")[0]["status"] == "ok"
    assert not (out / ".highlights" / "highlights.sqlite").exists()


def test_a_withdrawal_between_the_runs_check_and_its_lock_sticks(videos, tmp_path: Path, monkeypatch) -> None:
    # The run read result.json (ok), then `highlights withdraw` took the lesson's lock first: the
    # forced night's run went on under the lock and published the withdrawn highlight again.
    manifest, settings, folder, first = done_lesson(videos, tmp_path)
    real_lock = highlights.lesson.folder.lesson_lock
    withdrawn = []

    def lock_after_a_withdrawal(path, **options):
        if not withdrawn:
            withdrawn.append("started")  # withdraw_lesson takes the lock through here too
            withdrawn.append(withdraw_lesson("L-1001", settings))
        return real_lock(path, **options)

    monkeypatch.setattr(highlights.lesson.folder, "lesson_lock", lock_after_a_withdrawal)
    result = run_one(manifest, replace(settings, force=True), FakeScorer())

    assert withdrawn and result.status == "withdrawn" and result.skipped
    assert read_result(folder).status == "withdrawn" and gifs_in(folder) == []
    assert db_row(settings, "L-1001")[0]["status"] == "withdrawn"
