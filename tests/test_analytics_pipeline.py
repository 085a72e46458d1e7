"""The real pipeline (recordings built at run time, the face models replaced by the fake of
test_pipeline.py) fills the analytics tables, and the smile / presence switch keeps those
figures out of every file, the database and the report while the GIF is still made."""

from __future__ import annotations

from pathlib import Path

from highlights.stages.analytics import AnalyticsOptions
from highlights.config import Settings
from highlights.persist.store import ResultStore
from test_pipeline import STUDENT_SECONDS, FakeScorer, lesson_rows, run_manifest, videos, write_manifest  # noqa: F401


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
