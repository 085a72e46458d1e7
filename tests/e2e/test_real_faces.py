"""End to end on a lesson built from real, labelled faces (``tests/support/real_face_lesson.py``).

The lesson's truth is known second by second: a child smiling or neutral, a smiling adult
beside a smiling child, a smiling adult alone, an empty room, a disconnect. The pipeline must
choose only smiling-child seconds and never one with an adult in the picture (privacy rule #1,
with the default ``allow_adult=False``).

Both tests are slow (building the lesson takes 10-40 s on the project's 2-core machine, the
pipeline about a minute) and need ``../shared/data``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from support.real_face_lesson import (
    FACES_VISIBLE,
    LESSON_START,
    RealFaceLesson,
    build_real_face_lesson,
    read_student_frames,
)

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

EDGE_S = 1.0
"""A pick may sit this far outside its smiling segment: the frame sampled at a segment's first
second may be the previous frame, 0.2 s earlier, if a decoder rounds down."""
PRIVATE_KINDS = ("adult_beside", "adult_only", "nobody", "offline")
LESSON_ID_IN_NAME = "real-faces"


@pytest.fixture(scope="module")
def lesson(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> RealFaceLesson:
    return build_real_face_lesson(shared_data, tmp_path_factory.mktemp("real_face_lesson"), seed=0)


def test_the_lesson_is_what_its_truth_says(lesson: RealFaceLesson) -> None:
    """The generator's own check: the manifest gives the planned timeline, and MTCNN (as the
    pipeline runs it) finds the planned number of faces in the recorded frames."""
    from highlights.config import Settings
    from highlights.inputs.manifest import read_manifest
    from highlights.models.detection import FaceDetector
    from highlights.stages.timeline import lesson_timeline

    manifest = read_manifest(lesson.manifest, lessons_path=lesson.lessons)
    entry = manifest.lessons[lesson.lesson_id]
    assert entry.ok, entry.problems
    timeline = lesson_timeline(entry)
    assert timeline.status == "ok"
    assert timeline.start == LESSON_START  # the late student's camera opens the lesson
    assert timeline.duration_s == lesson.duration_s
    [gap] = timeline.student.disconnects
    [offline] = lesson.of_kind("offline")
    assert gap.duration_s == offline.end_s - offline.start_s

    frames = read_student_frames(lesson)
    assert sorted(frames) == [s for s in range(lesson.duration_s) if lesson.kind_at(s) != "offline"]
    seconds = sorted(frames)
    found = FaceDetector(Settings().detection).detect([frames[s] for s in seconds])
    counts: dict[str, Counter] = {}
    for second, faces in zip(seconds, found):
        counts.setdefault(lesson.kind_at(second), Counter())[len(faces)] += 1
    print("faces found per kind of second:", {kind: dict(c) for kind, c in counts.items()})
    for kind, expected in FACES_VISIBLE.items():
        if kind not in counts:  # a kind the plain lesson does not have
            continue
        right = counts[kind][expected] / sum(counts[kind].values())
        # Measured for seeds 0-3: every second right. MTCNN's proposal stage misses a face now
        # and then (about 1 in 300 frames while tuning), so leave a little room.
        assert right >= 0.95, f"{kind}: {expected} face(s) found in only {right:.0%} of seconds: {dict(counts[kind])}"


def test_the_pipeline_picks_the_child_smiling_and_never_an_adult(lesson: RealFaceLesson, tmp_path: Path) -> None:
    from highlights.batch.run import run_manifest
    from highlights.config import Settings
    from highlights.lesson.folder import read_result, read_scores

    settings = Settings(out_dir=tmp_path / "out")
    [result] = run_manifest(lesson.manifest, settings, lessons_path=lesson.lessons)
    assert result.status == "ok", result.reason

    # The timeline as the pipeline saw it.
    assert result.lesson is not None and result.lesson.duration_s == pytest.approx(lesson.duration_s, abs=0.5)
    assert result.disconnects is not None and result.disconnects.student == 1
    assert result.disconnects.student_offline_s == pytest.approx(15.0, abs=0.5)

    # The picks: smiling-child seconds only, never an adult or an empty or missing picture.
    times = [frame.ref.t for frame in result.frames]
    kinds = [lesson.kind_at(t) for t in times]
    print(f"picked {len(times)} frames at {times} ({kinds})")
    assert 6 <= len(times) <= settings.selection.max_frames
    for t, kind in zip(times, kinds):
        assert kind not in PRIVATE_KINDS, f"picked t={t}: a {kind} second"
        assert lesson.near(t, "child_smiling", EDGE_S), f"picked t={t}: a {kind} second, not the child smiling"
    ordered = sorted(times)
    assert all(b - a >= settings.selection.min_gap_s for a, b in zip(ordered, ordered[1:])), ordered
    assert result.gif_path is not None and result.gif_path.is_file() and result.gif_path.stat().st_size > 0
    from PIL import Image

    with Image.open(result.gif_path) as gif:
        assert gif.n_frames == len(times)
        assert gif.info.get("loop") == 0  # loops forever
        assert gif.size[0] == gif.size[1] >= 160
    assert result.gif_path.stat().st_size <= settings.gif.max_bytes
    assert LESSON_ID_IN_NAME not in result.gif_path.name.lower()

    # The snippet and the database row the email campaign reads.
    snippet = result.path(result.snippet).read_text(encoding="utf-8")
    assert result.gif_url in snippet and 'width="' in snippet and 'alt="' in snippet
    from highlights.persist.store import ResultStore

    store = ResultStore(settings.database_url)
    try:
        highlight = store.highlight_for_lesson(lesson.lesson_id)
        row = store.row(lesson.lesson_id)
    finally:
        store.dispose()
    assert highlight is not None and highlight.gif_url == result.gif_url and highlight.snippet_html == snippet
    assert row["status"] == "ok" and row["frame_count"] == len(times) and row["student_disconnects"] == 1
    saved = read_result(result.folder)
    assert saved is not None and [f.ref.t for f in saved.frames] == times

    # The scores behind them: is the child judged a child, the adult an adult, smiles smiles?
    scores = read_scores(result.path(result.scores)).data
    assert sorted(scores["t"].unique()) == [s for s in range(lesson.duration_s) if lesson.kind_at(s) != "offline"]
    faces = scores[scores["face"] >= 0].copy()
    faces["kind"] = [lesson.kind_at(t) for t in faces["t"]]
    is_child = faces["is_child"]
    inner = faces["t"].map(lambda t: _inside(lesson, t))  # away from segment edges
    child_faces = faces["kind"].isin(["child_smiling", "child_neutral"]) & inner
    adult_alone = faces["kind"].eq("adult_only") & inner
    rates = {
        "child judged child": is_child[child_faces].mean(),
        "adult alone judged adult": (~is_child[adult_alone]).mean(),
        "smiling child smile>=min": _smiling(faces, "child_smiling", inner, settings),
        "neutral child smile>=min": _smiling(faces, "child_neutral", inner, settings),
    }
    beside = faces[faces["kind"].eq("adult_beside") & inner]
    rates["beside frames with an adult judged adult"] = (
        beside.groupby("t")["is_child"].apply(lambda v: not v.all()).mean()
    )
    print("rates:", {k: round(float(v), 3) for k, v in rates.items()})
    assert rates["child judged child"] >= 0.6, rates
    assert rates["adult alone judged adult"] >= 0.5, rates
    assert rates["smiling child smile>=min"] > rates["neutral child smile>=min"], rates


def _inside(lesson: RealFaceLesson, t: float) -> bool:
    """Whether second ``t`` is at least a second away from its segment's edges."""
    return lesson.kind_at(t - 1) == lesson.kind_at(t) == lesson.kind_at(t + 1)


def _smiling(faces: pd.DataFrame, kind: str, inner: pd.Series, settings) -> float:
    """Share of the child's faces in ``kind`` seconds at or above the selection's smile threshold
    (in adult-beside seconds the child is the smaller face; here only one face is expected)."""
    chosen = faces[faces["kind"].eq(kind) & inner]
    return float(np.mean(chosen["smile_prob"] >= settings.selection.min_smile)) if len(chosen) else float("nan")


def test_the_lesson_from_a_bucket_to_a_bucket_picks_what_it_picks_from_disk(lesson: RealFaceLesson, s3,
                                                                          tmp_path: Path) -> None:
    """The lesson's files in a bucket of the real S3 server (the ``s3`` fixture), its lesson
    folder kept in another and its GIF published there: the same picks as from disk."""
    import uuid

    from highlights.batch.run import run_manifest
    from highlights.config import Settings
    from highlights.stages.snippet import EmailOptions

    from support.weed import object_headers, upload_tree

    prefix = upload_tree(lesson.folder, f"s3://rec/{uuid.uuid4().hex[:8]}/real-faces")
    publish = prefix.replace("s3://rec/", "s3://pub/")
    remote_settings = Settings(out_url=f"{publish}-out", work_dir=tmp_path / "work", publish=publish,
                               db_url=f"sqlite:///{tmp_path / 'bucket.sqlite'}",
                               email=EmailOptions(public_base_url="https://cdn.example.com/h"))
    manifest, lessons = (f"{prefix}/{path.relative_to(lesson.folder).as_posix()}" for path in (lesson.manifest, lesson.lessons))
    [remote] = run_manifest(manifest, remote_settings, lessons_path=lessons)
    [local] = run_manifest(lesson.manifest, Settings(out_dir=tmp_path / "disk"), lessons_path=lesson.lessons)
    assert remote.status == local.status == "ok", (remote.reason, local.reason)
    assert [f.ref.t for f in remote.frames] == [f.ref.t for f in local.frames]
    assert object_headers(f"{publish}/{remote.lesson_id}/{remote.gif}")["body"] == \
        object_headers(f"{remote.location}/{remote.gif}")["body"]
