"""Per-lesson analytics from a scores table and a timeline, and the reason categories."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from highlights.lesson.folder import write_analytics
from highlights.stages.analytics import SERIES_COLUMNS, frame_table, lesson_analytics, lesson_series, reason_category
from highlights.stages.selection import SelectionStats

START = 1_763_654_400.0  # POSIX seconds of the lesson start


def _row(frame, t, face=0, is_child=True, smile=0.0):
    return {"frame": frame, "t": float(t), "face": face, "is_child": is_child, "smile_prob": smile}


def _scores() -> pd.DataFrame:
    rows = []
    # Minute 0: 60 frames, child alone, smiling in 10 of them.
    for i in range(60):
        rows.append(_row(i, i, smile=0.9 if i < 10 else 0.1))
    # Minute 1: frames 60..119: child + adult in 30, adult alone in 20, nobody in 10.
    for i in range(60, 90):
        rows.append(_row(i, i, face=0, is_child=False, smile=0.95))
        rows.append(_row(i, i, face=1, is_child=True, smile=0.2))
    for i in range(90, 110):
        rows.append(_row(i, i, face=0, is_child=False, smile=0.99))
    for i in range(110, 120):
        rows.append(_row(i, i, face=-1, is_child=None, smile=None))
    return pd.DataFrame(rows)


def _timeline(duration=120.0):
    interval = lambda a, b: SimpleNamespace(start=START + a, end=START + b)
    return SimpleNamespace(
        start=START,
        duration_s=duration,
        student=SimpleNamespace(online=(interval(0, 50), interval(70, 120)), disconnects=(object(),), offline_s=20.0),
        teacher=SimpleNamespace(online=(interval(0, 120),), disconnects=(), offline_s=0.0),
    )


def test_frame_table_counts_faces_per_frame():
    frames = frame_table(_scores(), smile_threshold=0.5)
    assert len(frames) == 120
    assert frames["smile"].sum() == 10  # adult smiles never count
    assert frames["adult"].sum() == 50 and frames["child"].sum() == 90


def test_series_per_minute():
    series = lesson_series(
        _scores(), 120.0, bucket_s=60, smile_threshold=0.5, lesson_start=START,
        student_online=_timeline().student.online, teacher_online=_timeline().teacher.online,
    )
    assert list(series.columns) == SERIES_COLUMNS
    first, second = series.to_dict("records")
    assert first["frames"] == 60 and first["child_share"] == 1.0 and first["adult_share"] == 0.0
    assert first["smile_share"] == pytest.approx(10 / 60, abs=1e-3)
    assert second["adult_frames"] == 50 and second["adult_only_frames"] == 20
    assert second["smile_frames"] == 0 and second["smile_share"] == 0.0
    assert first["student_online_s"] == 50.0 and second["student_online_s"] == 50.0
    assert second["teacher_online_s"] == 60.0


def test_summary_and_files(tmp_path):
    analytics = lesson_analytics("L-1", _scores(), _timeline(), bucket_s=60, smile_threshold=0.5)
    summary = analytics.summary
    assert summary["frames"] == 120
    assert summary["smiliest_bucket"] == 0
    assert summary["adult_presence"] == pytest.approx(50 / 120, abs=1e-3)
    assert summary["student_disconnects"] == 1 and summary["student_offline_s"] == 20.0
    json_path, csv_path = write_analytics(analytics, tmp_path)
    data = json.loads(json_path.read_text())
    assert data["summary"]["smile_frames"] == 10 and len(data["series"]) == 2
    assert pd.read_csv(csv_path).shape == (2, len(SERIES_COLUMNS))


def test_empty_scores_and_short_lesson():
    empty = pd.DataFrame(columns=["frame", "t", "face", "is_child", "smile_prob"])
    series = lesson_series(empty, 30.0)
    assert len(series) == 1 and series.loc[0, "frames"] == 0 and series.loc[0, "child_share"] is None


def test_bool_columns_read_back_from_csv(tmp_path):
    path = tmp_path / "scores.csv"
    _scores().to_csv(path, index=False)
    frames = frame_table(pd.read_csv(path), 0.5)
    assert frames["smile"].sum() == 10 and frames["adult"].sum() == 50


def _tracked_scores() -> pd.DataFrame:
    """Two faces followed through 8 seconds: a child (one dim second the age model doubts on its
    own) and, from second 4, a parent beside it (one second the age model calls a child)."""
    rows = []
    for i in range(8):
        child_prob = 0.3 if i == 2 else 0.97
        rows.append({"frame": i, "t": float(i), "face": 0, "x1": 40.0, "y1": 60.0, "x2": 140.0, "y2": 180.0,
                     "det_prob": 0.99, "child_prob": child_prob, "smile_prob": 0.9 if i < 3 else 0.1,
                     "is_child": child_prob >= 0.87, "crop_hash": "00000000000000ff"})  # fmt: skip
        if i >= 4:
            child_prob = 0.95 if i == 6 else 0.02
            rows.append({"frame": i, "t": float(i), "face": 1, "x1": 300.0, "y1": 50.0, "x2": 420.0, "y2": 190.0,
                         "det_prob": 0.99, "child_prob": child_prob, "smile_prob": 0.95,
                         "is_child": child_prob >= 0.87, "crop_hash": "ff00000000000000"})  # fmt: skip
    return pd.DataFrame(rows)


def test_presence_and_smiles_are_counted_by_face_track_as_the_selection_judges():
    from highlights.stages.tracks import TrackOptions

    scores = _tracked_scores()
    by_frame = lesson_analytics("L-1", scores, _timeline(8.0), bucket_s=60, smile_threshold=0.5)
    by_track = lesson_analytics("L-1", scores, _timeline(8.0), bucket_s=60, smile_threshold=0.5, tracks=TrackOptions())
    frame_row, track_row = by_frame.series.iloc[0], by_track.series.iloc[0]
    # Alone, the doubtful second has no child and second 6 has no adult; the tracks fill both in.
    assert frame_row["child_frames"] == 7 and frame_row["adult_frames"] == 4
    assert track_row["child_frames"] == 8 and track_row["adult_frames"] == 4
    assert track_row["adult_only_frames"] == 0
    # The child smiles in seconds 0-2; frame by frame the doubtful second's smile is lost and the
    # parent's smile in second 6 counts as a child's. By track: the child's three, never the parent's.
    from highlights.stages.tracks import judge_faces

    def smiling(table):
        frames = frame_table(table, 0.5)
        return frames.loc[frames["smile"], "t"].tolist()

    assert smiling(scores) == [0.0, 1.0, 6.0]
    assert smiling(judge_faces(scores, TrackOptions())) == [0.0, 1.0, 2.0]
    assert track_row["smile_frames"] == 3


@pytest.mark.parametrize(
    "status, reason, stats, expected",
    [
        ("ok", "", None, None),
        ("no_lesson", "the cameras were never on together", None, "no_lesson"),
        ("no_highlight", "", SelectionStats(), "no_frames"),
        ("no_highlight", "", SelectionStats(frames=90, with_face=80, with_adult=80), "no_child"),
        ("no_highlight", "", SelectionStats(frames=90, with_face=80, with_child=70), "no_smile"),
        ("no_highlight", "", SelectionStats(frames=90, with_child=70, child_smiling=12, candidates=0), "no_usable_smile"),
        ("no_highlight", "", {"frames": 90, "with_child": 70, "child_smiling": 12, "candidates": 4}, "too_few_moments"),
        ("failed", "lesson L: manifest.csv row 3: started_at has no UTC offset", None, "bad_input"),
        ("failed", "lesson L: another highlights run is working on it (lock out/L/.lock)", None, "busy"),
        ("failed", "lesson L: output folder L cannot be written (a file is in its place)", None, "output_folder"),
        ("failed", "lesson L: database sqlite:///x: OperationalError: locked", None, "database"),
        ("failed", "lesson L: scores stage failed (student recording, s.webm row 2): InvalidDataError", None,
         "unreadable_recording"),
        ("failed", "lesson L: gif stage failed: MemoryError", None, "error"),
    ],
)  # fmt: skip
def test_reason_categories(status, reason, stats, expected):
    assert reason_category(status, reason, stats) == expected
