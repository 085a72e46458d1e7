"""Tests of :mod:`highlights.lesson.run` (``run_manifest`` / ``run_lesson``) on recordings built at run time.

The videos are real files (teacher: H.264 MP4, student: VP8 WebM, written by
:func:`highlights.media.synthetic.write_video`) and go through the real stages: end times from the
media, timeline, frame sampling, selection, GIF, snippet, analytics, report, ``result.json`` and
the database row. Only the face models are replaced, by :class:`FakeScorer`, a test double with
the part of :class:`~highlights.stages.scores.FaceScorer`'s interface the pipeline uses
(``versions``, ``options``, ``score_images``). It "sees" what is drawn into the student's frames:

- the top half of every frame carries its frame number (:func:`highlights.media.synthetic.index_frame`
  blocks); the fake turns it into the second of the recording and a random 64-bit crop hash per
  second, so no two seconds look like near-duplicates;
- a white 64 px square at ``CHILD_BOX`` is the child's face; a dark "mouth" bar inside it is a
  smile, and the bar's darkness is the smile probability (no bar: not smiling);
- a blue 64 px square at ``ADULT_BOX`` is an adult's face.

Which seconds hold a smiling child or an adult is therefore decided by the video alone, and
``FakeScorer.calls`` tells a rerun that scored the frames again from one that reused them.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import highlights.batch.pools
import highlights.lesson.flow
import highlights.lesson.folder
import highlights.lesson.graph
import highlights.lesson.run
from highlights.cli import main
from highlights.config import Settings
from highlights.stages.snippet import EmailOptions
from highlights.models.detection import DetectionOptions
from highlights.stages.scores import FaceScore
from highlights.lesson.run import run_lesson
from highlights.batch.run import run_manifest
from highlights.lesson.folder import lesson_lock
from highlights.inputs.manifest import read_manifest
from highlights.core.result import LessonResult
from highlights.lesson.folder import read_result
from highlights.stages.selection import SelectionOptions
from highlights.persist.store import ResultStore
from highlights.media.synthetic import index_frame, read_index, write_video

# --------------------------------------------------------------------------- the scene

FPS = 2  # frames per second of the synthetic recordings
STUDENT_SIZE = (320, 240)  # width, height
STUDENT_SECONDS = 90
TEACHER_SIZE = (160, 120)
TEACHER_SECONDS = 100
BACKGROUND = 100  # gray level of the lower half of the student's frames

CHILD_BOX = (40, 150, 104, 214)  # x1, y1, x2, y2: the child's face, 64 px
MOUTH = (52, 194, 92, 208)  # the smile bar, inside CHILD_BOX
ADULT_BOX = (200, 150, 264, 214)  # the adult's face, 64 px

SMILES = {
    # second of the student recording: smile probability drawn as the mouth's darkness
    4: 0.80, 5: 0.84, 6: 0.82,
    28: 0.90, 29: 0.88,
    39: 0.99, 40: 0.99, 41: 0.99, 42: 0.99, 43: 0.99, 44: 0.99,  # the best smiles: adult nearby
    46: 0.86,
    55: 0.85, 56: 0.87,
    80: 0.92, 81: 0.90,
}  # fmt: skip
ADULT_SECONDS = {41, 42, 70}
"""Seconds with an adult in view: no pick may lie within ``adult_margin_s`` (2 s) of them."""

T0 = datetime(2026, 11, 21, 15, 0, 0, tzinfo=timezone.utc)
STUDENT_DELAY_S = 2.0  # the student joins 2 s after the teacher: the lesson starts then
PUBLIC_BASE = "https://cdn.example.com/highlights"


def student_frame(index: int, *, smile: float | None, adult: bool) -> np.ndarray:
    """Frame ``index``: its number in the top half, the faces of that second in the bottom half."""
    image = index_frame(index, STUDENT_SIZE, color=False)
    image[STUDENT_SIZE[1] // 2 :] = BACKGROUND
    x1, y1, x2, y2 = CHILD_BOX
    image[y1:y2, x1:x2] = 255
    if smile is not None:
        mx1, my1, mx2, my2 = MOUTH
        image[my1:my2, mx1:mx2] = round(255 * (1 - smile))
    if adult:
        x1, y1, x2, y2 = ADULT_BOX
        image[y1:y2, x1:x2] = (30, 60, 230)
    return image


def write_student(path: Path, smiles: dict[int, float], adults: set[int]) -> Path:
    frames = (
        student_frame(i, smile=smiles.get(i // FPS), adult=i // FPS in adults)
        for i in range(STUDENT_SECONDS * FPS)
    )
    return write_video(path, frames, fps=FPS, codec="vp8")


def write_teacher(path: Path) -> Path:
    width, height = TEACHER_SIZE
    frames = (np.full((height, width, 3), 40 + i % 50, np.uint8) for i in range(TEACHER_SECONDS * FPS))
    return write_video(path, frames, fps=FPS, codec="h264")


# --------------------------------------------------------------------------- the fake scorer


def _hash_for(second: int, salt: int = 0) -> str:
    return f"{random.Random(second * 7919 + salt).getrandbits(64):016x}"


class FakeScorer:
    """Stands in for ``FaceScorer``: finds the drawn squares, scores the drawn smile.

    ``smiles=False`` makes it judge every child face neutral (a "new model" that sees no smile).
    ``calls`` / ``images`` count the ``score_images`` calls and the images scored.
    """

    versions = {"detector": "fake-detector-1", "smile": "fake-smile-1", "age": "fake-age-1"}
    options = DetectionOptions()

    def __init__(self, smiles: bool = True) -> None:
        self.smiles = smiles
        self.calls = 0
        self.images = 0

    def score_images(self, images) -> list[list[FaceScore]]:
        self.calls += 1
        self.images += len(images)
        return [self._faces(np.asarray(image)) for image in images]

    def _faces(self, image: np.ndarray) -> list[FaceScore]:
        assert image.shape == (STUDENT_SIZE[1], STUDENT_SIZE[0], 3), "only student frames are scored"
        second = read_index(image) // FPS
        faces: list[FaceScore] = []
        x1, y1, x2, y2 = CHILD_BOX
        _, my1, _, _ = MOUTH
        if image[y1 + 4 : my1 - 4, x1 + 4 : x2 - 4].mean() > 200:
            mx1, my1, mx2, my2 = MOUTH
            mouth = float(image[my1 + 2 : my2 - 2, mx1 + 2 : mx2 - 2].mean())
            smile = round(1 - mouth / 255, 2) if self.smiles else 0.05
            faces.append(self._face(CHILD_BOX, child=True, smile=smile, crop_hash=_hash_for(second)))
        x1, y1, x2, y2 = ADULT_BOX
        region = image[y1 + 4 : y2 - 4, x1 + 4 : x2 - 4].astype(float)
        if region[..., 2].mean() > 150 and region[..., 0].mean() < 110:
            faces.append(self._face(ADULT_BOX, child=False, smile=0.3, crop_hash=_hash_for(second, salt=1)))
        return [replace(face, face=k) for k, face in enumerate(faces)]

    @staticmethod
    def _face(box, *, child: bool, smile: float, crop_hash: str) -> FaceScore:
        return FaceScore(
            face=0, box=tuple(float(v) for v in box), det_prob=0.999,
            child_prob=0.95 if child else 0.04, smile_prob=smile, is_child=child,
            sharpness=300.0, brightness=130.0, crop_hash=crop_hash,
        )  # fmt: skip


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The recordings, encoded once per module; tests copy them into their own folders."""
    folder = tmp_path_factory.mktemp("videos")
    return {
        "teacher": write_teacher(folder / "teacher.mp4"),
        "student": write_student(folder / "student.webm", SMILES, ADULT_SECONDS),
        "shy": write_student(folder / "shy.webm", {}, set()),
    }


def lesson_rows(
    videos: dict[str, Path], root: Path, lesson_id: str, *, student: str = "student",
    student_start_s: float = STUDENT_DELAY_S, student_started_at: str | None = None,
) -> list[list[str]]:
    """Copy a teacher and a student recording into ``root/lesson_id/``; their manifest rows."""
    folder = root / lesson_id
    folder.mkdir(parents=True)
    shutil.copyfile(videos["teacher"], folder / "teacher.mp4")
    shutil.copyfile(videos[student], folder / "student.webm")
    started = student_started_at or (T0 + timedelta(seconds=student_start_s)).isoformat()
    return [
        [lesson_id, "teacher", f"{lesson_id}/teacher.mp4", T0.isoformat()],
        [lesson_id, "student", f"{lesson_id}/student.webm", started],
    ]


def write_manifest(root: Path, rows: list[list[str]], header: str = "lesson_id,role,path,started_at,ended_at") -> Path:
    path = root / "manifest.csv"
    lines = [header] + [",".join(row + [""] * (header.count(",") + 1 - len(row))) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def one_lesson(videos, root: Path, lesson_id: str = "L-1001", **kwargs) -> Path:
    """A manifest with one lesson; its path."""
    return write_manifest(root, lesson_rows(videos, root, lesson_id, **kwargs))


def run_one(manifest: Path, settings: Settings, scorer: FakeScorer) -> LessonResult:
    [result] = run_manifest(manifest, settings, scorer=scorer)
    return result


def done_lesson(videos, tmp_path: Path) -> tuple[Path, Settings, Path, LessonResult]:
    """Lesson L-1001 run once, ``ok``: its manifest, the settings, its output folder, the result."""
    manifest = one_lesson(videos, tmp_path / "rec")
    settings = Settings(out_dir=tmp_path / "out")
    first = run_one(manifest, settings, FakeScorer())
    assert first.status == "ok", first.reason
    return manifest, settings, settings.out_dir / "L-1001", first


def db_row(settings: Settings, lesson_id: str):
    """(the lesson's row, the campaign's answer) from the run's database."""
    store = ResultStore(settings.database_url)
    try:
        return store.row(lesson_id), store.highlight_for_lesson(lesson_id)
    finally:
        store.dispose()


def gifs_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.gif"))


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


def test_cli_run_exit_status_and_summary(videos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("HIGHLIGHTS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(highlights.batch.pools, "load_scorer", lambda settings: FakeScorer())
    runner = CliRunner()

    def run(manifest: Path, out: Path):
        return runner.invoke(main, ["run", str(manifest), "--out", str(out), "--no-progress", "--workers", "0"])

    # All lessons ok: exit 0.
    good = one_lesson(videos, tmp_path / "good")
    outcome = run(good, tmp_path / "out-good")
    assert outcome.exit_code == 0, outcome.output
    assert "L-1001" in outcome.stdout and "ok" in outcome.stdout

    # One lesson failed: exit 1, both lessons in the summary.
    root = tmp_path / "mixed"
    rows = lesson_rows(videos, root, "L-2001") + lesson_rows(videos, root, "L-2002")
    (root / "L-2002" / "student.webm").write_bytes(b"\x00garbage" * 500)
    outcome = run(write_manifest(root, rows), tmp_path / "out-mixed")
    assert outcome.exit_code == 1, outcome.output
    assert "L-2001" in outcome.stdout and "L-2002" in outcome.stdout
    assert "failed" in outcome.stdout

    # A manifest without a required column: unusable, exit 2.
    root = tmp_path / "nocolumn"
    rows = [row[:3] for row in lesson_rows(videos, root, "L-3001")]
    outcome = run(write_manifest(root, rows, header="lesson_id,role,path"), tmp_path / "out-nocolumn")
    assert outcome.exit_code == 2, outcome.output
    assert "started_at" in outcome.output


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


def test_cli_run_unusable_database_or_output_folder(videos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("HIGHLIGHTS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(highlights.batch.pools, "load_scorer", lambda settings: FakeScorer())
    runner = CliRunner()
    manifest = one_lesson(videos, tmp_path / "rec")
    out = tmp_path / "out"

    def run(*options: str):
        return runner.invoke(main, ["run", str(manifest), "--no-progress", "--workers", "0", *options])

    # An unreachable PostgreSQL server: a clear error naming the database, exit 1, no password.
    pytest.importorskip("psycopg")
    outcome = run("--out", str(out), "--db", "postgresql+psycopg://u:secretpw@127.0.0.1:1/db?connect_timeout=3")
    assert outcome.exit_code == 1, outcome.output
    assert "database postgresql+psycopg://u:***@127.0.0.1:1/db?connect_timeout=3 cannot be opened" in outcome.stderr
    assert "secretpw" not in outcome.output and "Traceback" not in outcome.output
    # A password with an unescaped '@' (SQLAlchemy puts its tail in front of the host) or in the query.
    outcome = run("--out", str(out), "--db", "postgresql+psycopg://u:S3cret@PW@127.0.0.1:1/db?connect_timeout=3&password=Q1w2e3")
    assert outcome.exit_code == 1, outcome.output
    assert "database postgresql+psycopg://u:***@127.0.0.1:1/db?connect_timeout=3&password=*** cannot be opened" in outcome.stderr
    assert "S3cret" not in outcome.output and "PW@" not in outcome.output and "Q1w2e3" not in outcome.output

    # A URL that does not parse is a bad option: exit 2, and the URL is not echoed.
    outcome = run("--out", str(out), "--db", "postgresql+psycopg://u:secretpw@db:notaport/x")
    assert outcome.exit_code == 2, outcome.output
    assert "--db / db_url is not a database URL" in outcome.stderr and "secretpw" not in outcome.output
    # An in-memory database keeps nothing: it used to be accepted, the run exiting 0 with nothing stored.
    for memory in ("sqlite:///", "sqlite://", "sqlite:///:memory:"):
        outcome = run("--out", str(tmp_path / "out-memory"), "--db", memory)
        assert outcome.exit_code == 2, outcome.output
        assert "is an in-memory database: it keeps nothing" in outcome.stderr
    assert not (tmp_path / "out-memory").exists()

    # An output folder that cannot be made (a file in the way), from --out or the config: exit 2.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    outcome = run("--out", str(blocker / "out"))
    assert outcome.exit_code == 2, outcome.output
    assert f"output folder {blocker / 'out'} cannot be created" in outcome.stderr
    config = tmp_path / "highlights.toml"
    config.write_text(f'out_dir = "{blocker}"\n', encoding="utf-8")
    outcome = run("--config", str(config))
    assert outcome.exit_code == 2, outcome.output
    assert f"output folder {blocker} is a file, not a folder" in outcome.stderr

    # An unknown --lesson next to a known one: it fails (exit 1) naming the manifest's file, not its folder.
    outcome = run("--out", str(out), "--lesson", "L-nope", "--lesson", "L-1001", "--lesson", "L-1001")
    assert outcome.exit_code == 1, outcome.output
    assert "lesson L-nope: not in manifest manifest.csv" in outcome.stdout
    assert str(tmp_path) not in outcome.stdout.split("results:")[0]
    assert [line.split()[0] for line in outcome.stdout.splitlines()[1:3]] == ["L-nope", "L-1001"]


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
