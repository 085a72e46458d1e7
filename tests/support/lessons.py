"""Lessons of the synthetic scene (:mod:`support.scene`) in folders with their manifest, run with
the :class:`~support.fakes.FakeScorer`, and what a test reads back from a run: the lesson's
database row, its GIFs, and whether a published highlight was kept."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from highlights.batch.run import run_manifest
from highlights.config import Settings
from highlights.core.result import LessonResult
from highlights.lesson.folder import read_result
from highlights.persist.store import ResultStore

from support.fakes import FakeScorer
from support.scene import STUDENT_DELAY_S, T0


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


def assert_kept(settings: Settings, folder: Path, first: LessonResult, result: LessonResult) -> None:
    """The rerun ``result`` of L-1001 failed and left the highlight ``first`` published: its GIF,
    snippet, ``result.json`` and ``ok`` row (which carries the rerun's reason as its last error)."""
    assert result.status == "failed"
    assert gifs_in(folder) == [first.gif] and (folder / "snippet.html").is_file()
    assert read_result(folder).status == "ok"
    row, highlight = db_row(settings, "L-1001")
    assert row["status"] == "ok" and row["last_error"] == result.reason
    assert highlight is not None and highlight.gif_url == first.gif_url
