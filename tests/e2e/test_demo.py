"""End to end on the shipped demo lesson: real decoding, real MTCNN, the shipped weights.

The demo (``scripts/make_demo_lesson.py``) needs nothing from ``../shared``: scikit-image's
astronaut photo, framed like a webcam, is the student's camera; the student joins 25 s late and
drops out for 15 s. The astronaut is an adult, and the lessons file says the student is one
(``student_age_group = adult``): the GIF is made of her own face, alone in view. Under the
children's rule the same scores give no GIF: the age model judges her an adult in nearly every
frame (the privacy rule on a real face). The lesson with real children is
``tests/e2e/test_real_faces.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from highlights.batch.run import run_manifest
from highlights.config import Settings
from highlights.lesson.folder import read_scores
from highlights.persist.store import ResultStore
from highlights.stages.selection import SelectionOptions, select_highlights

from support.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def _load_demo_script():
    spec = importlib.util.spec_from_file_location("make_demo_lesson", REPO_ROOT / "scripts" / "make_demo_lesson.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_demo_lesson"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("skimage", reason="the demo lesson is drawn from scikit-image's astronaut photo")
    folder = tmp_path_factory.mktemp("demo")
    _load_demo_script().write_demo(folder)
    return folder


def test_the_demo_csvs_in_fixtures_are_what_the_script_writes(demo: Path) -> None:
    for name in ("manifest.csv", "lessons.csv"):
        assert (demo / name).read_text() == (REPO_ROOT / "fixtures" / "demo" / name).read_text(), name


def test_demo_lesson_end_to_end(demo: Path, tmp_path: Path) -> None:
    settings = Settings(out_dir=tmp_path / "out")
    [result] = run_manifest(demo / "manifest.csv", settings, lessons_path=demo / "lessons.csv")

    # Timeline: the lesson starts when the late student joins and ends when the teacher leaves.
    assert result.lesson is not None
    assert datetime.fromisoformat(result.lesson.start) == datetime(2026, 11, 20, 16, 0, 25, tzinfo=timezone.utc)
    assert datetime.fromisoformat(result.lesson.end) == datetime(2026, 11, 20, 16, 2, 30, tzinfo=timezone.utc)
    assert result.disconnects.student == 1 and result.disconnects.teacher == 0
    assert result.disconnects.student_offline_s == pytest.approx(15.0, abs=0.01)

    # One frame per second while the student is online: 125 s of lesson less 15 s offline.
    scores = read_scores(result.path(result.scores)).data
    assert scores["frame"].nunique() == 110
    faces = scores[scores["face"] >= 0]
    found = faces["frame"].nunique() / scores["frame"].nunique()
    adult = (~faces["is_child"]).mean()
    print(f"face found in {found:.1%} of frames; judged adult in {adult:.1%} of faces")
    assert found >= 0.9
    assert adult >= 0.9

    # An adult student: a GIF of her own smiles, at least three distinct moments; in this short
    # lesson the gap between picks may come down from 20 s to fill the GIF, never below the floor.
    assert result.status == "ok", result.reason
    assert len(result.frames) >= 3 and len({round(f.ref.t) for f in result.frames}) == len(result.frames)
    times = sorted(f.ref.t for f in result.frames)
    floor = settings.selection.min_gap_floor_s
    assert all(b - a >= floor for a, b in zip(times, times[1:]))
    assert result.gif_path.is_file() and [p.name for p in result.folder.glob("*.gif")] == [result.gif]
    snippet = (result.folder / "snippet.html").read_text(encoding="utf-8")
    assert result.gif_url in snippet and "<img" in snippet
    assert (result.folder / "report.html").is_file() and (result.folder / "analytics.json").is_file()
    store = ResultStore(settings.database_url)
    try:
        assert store.row("demo-0001")["status"] == "ok"
        assert store.highlight_for_lesson("demo-0001").gif_url == result.gif_url
    finally:
        store.dispose()

    # The children's rule on the same frames: she is an adult, so no GIF (the privacy rule).
    child_rule = select_highlights(scores, SelectionOptions(student_age_group="child"))
    assert child_rule.status == "no_highlight", child_rule.reason

    # A second run with the same inputs is skipped.
    [again] = run_manifest(demo / "manifest.csv", settings, lessons_path=demo / "lessons.csv")
    assert again.skipped and again.status == "ok"


def test_the_demo_lesson_from_a_bucket_to_a_bucket_picks_what_it_picks_from_disk(demo: Path, s3, tmp_path: Path) -> None:
    """The demo's manifest, lessons file and recordings in a bucket of the real S3 server (the
    ``s3`` fixture), its lesson folder kept in another and its GIF published there: the same
    scores and picks as from disk."""
    import uuid

    from highlights.stages.snippet import EmailOptions
    from highlights.storage import objects

    from support.weed import object_headers, upload_tree

    prefix = upload_tree(demo, f"s3://rec/{uuid.uuid4().hex[:8]}/demo")
    publish = prefix.replace("s3://rec/", "s3://pub/")
    remote_settings = Settings(out_url=f"{publish}-out", work_dir=tmp_path / "work", publish=publish,
                               db_url=f"sqlite:///{tmp_path / 'bucket.sqlite'}",
                               email=EmailOptions(public_base_url="https://cdn.example.com/h"))
    [remote] = run_manifest(f"{prefix}/manifest.csv", remote_settings, lessons_path=f"{prefix}/lessons.csv")
    [local] = run_manifest(demo / "manifest.csv", Settings(out_dir=tmp_path / "disk"), lessons_path=demo / "lessons.csv")

    assert remote.status == local.status == "ok", (remote.reason, local.reason)
    assert [f.ref.t for f in remote.frames] == [f.ref.t for f in local.frames]
    objects.download(f"{remote.location}/{remote.scores}", tmp_path / "remote-scores.csv")
    assert read_scores(tmp_path / "remote-scores.csv").data.equals(read_scores(local.path(local.scores)).data)
    published = object_headers(f"{publish}/{remote.lesson_id}/{remote.gif}")
    assert published["Content-Type"] == "image/gif"
    assert published["body"] == object_headers(f"{remote.location}/{remote.gif}")["body"]
    assert remote.gif_url == f"https://cdn.example.com/h/{remote.lesson_id}/{remote.gif}"
