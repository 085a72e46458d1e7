"""Selection: privacy (no adult frames), spacing, de-duplication, quality filters and GIF order."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from highlights.core.frameref import FRAME_COLUMNS, FrameRef
from highlights.stages.selection import Selection, SelectionOptions, phash_distance, select_highlights

from support.imports import imports_torch
from support.scene import T0

START = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)


def face_row(frame: int, t: float | None = None, face: int = 0, **over) -> dict:
    """A good, smiling child face unless overridden; ``crop_hash`` unique per frame by default.
    The face moves a little every second, as a live one does (a face that never moves nor
    changes for minutes is a picture on the wall)."""
    t = float(frame if t is None else t)
    rng = np.random.default_rng(frame * 31 + face)
    dx, dy = 8.0 * math.sin(t * 1.3), 5.0 * math.cos(t * 0.7)
    row = dict(
        frame=frame,
        t=t,
        at=(START + timedelta(seconds=t)).isoformat(),
        source="student.webm",
        offset_s=t,
        face=face,
        x1=100.0 + dx,
        y1=80.0 + dy,
        x2=220.0 + dx,
        y2=220.0 + dy,
        det_prob=0.999,
        child_prob=0.9,
        smile_prob=0.8,
        is_child=True,
        sharpness=300.0,
        brightness=120.0,
        crop_hash=f"{int(rng.integers(0, 2**63)):016x}",
    )
    row.update(over)
    return row


def empty_row(frame: int, t: float | None = None) -> dict:
    row = face_row(frame, t)
    for key in ("x1", "y1", "x2", "y2", "det_prob", "child_prob", "smile_prob", "sharpness", "brightness"):
        row[key] = math.nan
    row.update(face=-1, is_child=None, crop_hash=None)
    return row


def table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_picks_nine_best_first_then_lesson_order():
    # one smiling face every 30 s for 10 minutes, smile rising then falling
    rows = [face_row(i, t=30.0 * i, smile_prob=0.6 + 0.39 * math.sin(math.pi * i / 20)) for i in range(20)]
    sel = select_highlights(table(rows))
    assert sel.status == "ok" and sel.reason is None
    assert len(sel.picks) == 9
    best = max(sel.picks, key=lambda p: p.smile)
    assert sel.picks[0] == best and sel.picks[0].rank == 0
    rest = [p.ref.t for p in sel.picks[1:]]
    assert rest == sorted(rest)
    # the nine best smiles are the ones taken
    top9 = sorted((r["smile_prob"] for r in rows), reverse=True)[:9]
    assert sorted(p.smile for p in sel.picks) == sorted(top9)


def test_min_gap_between_picks():
    # Smiling moments of 5 s every 10 s for 30 minutes: room for nine picks 90 s apart.
    rows = [face_row(i, t=float(i), smile_prob=0.99 - i * 1e-5) for i in range(1800) if i % 10 < 5]
    opts = SelectionOptions(min_gap_s=90.0)
    sel = select_highlights(table(rows), opts)
    times = sorted(p.ref.t for p in sel.picks)
    assert len(times) == 9
    assert all(b - a >= 90.0 for a, b in zip(times, times[1:])), times


def test_a_short_lesson_lowers_the_gap_rather_than_dropping_frames():
    # Continuous smiles for 5 minutes: 45 s apart leaves room for 7 picks only; there are 15
    # moments (a run is cut every max_moment_s), so the gap comes down until nine fit.
    rows = [face_row(i, t=float(i), smile_prob=0.99 - i * 1e-4) for i in range(300)]  # 1 fps, 5 min
    opts = SelectionOptions(min_gap_s=45.0)
    sel = select_highlights(table(rows), opts)
    times = sorted(p.ref.t for p in sel.picks)
    assert len(times) == 9 and sel.stats.moments == 15
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= opts.min_gap_floor_s and min(gaps) >= 15.0, times  # still spread out
    assert times[-1] - times[0] >= 200.0, times


def test_one_pick_per_moment_the_best_frame():
    # Three moments of 6 smiling seconds each; in each, one frame smiles widest but is cut by
    # the frame edge, the next widest is fully in frame and is the one taken.
    rows = []
    for start in (0, 100, 200):
        for k in range(6):
            t = start + k
            smile = {2: 0.99, 3: 0.97}.get(k, 0.8)
            rows.append(face_row(t, t=float(t), smile_prob=smile, in_frame=0.7 if k == 2 else 1.0))
        rows += [face_row(start + 6 + k, t=float(start + 6 + k), smile_prob=0.1) for k in range(4)]
    tracked = table(rows).assign(track=0)
    sel = select_highlights(tracked, SelectionOptions(min_frames=1))
    assert sorted(p.ref.t for p in sel.picks) == [3.0, 103.0, 203.0]
    assert sel.stats.moments == 3


def test_a_track_judged_child_lifts_its_unsure_frames():
    # One face followed for 20 s: clearly a child in good seconds, unsure (below the age
    # model's per-frame threshold) in dim ones. The track is a child in all of them.
    rows = [face_row(i, t=float(i), child_prob=0.99 if i % 4 == 0 else 0.8, is_child=i % 4 == 0,
                     smile_prob=0.9 if i in (9, 10, 11) else 0.1) for i in range(20)]  # fmt: skip
    sel = select_highlights(table(rows).assign(track=0), SelectionOptions(min_frames=1))
    # Seconds 9-11 smile alike (the earliest wins the tie); is_child is False in all three.
    assert [p.ref.t for p in sel.picks] == [9.0]


def test_an_adult_track_excludes_every_frame_it_is_in():
    # A parent's track: judged adult overall though two of its frames look child-like.
    rows = [face_row(i, t=float(i), smile_prob=0.95) for i in range(40)]  # the child, track 0
    adult = [face_row(i, t=float(i), face=1, x1=300.0, x2=420.0, child_prob=0.95 if i in (20, 21) else 0.05,
                      is_child=i in (20, 21), smile_prob=0.95) for i in range(18, 26)]  # fmt: skip
    tracked = table(rows + adult)
    tracked["track"] = [0] * len(rows) + [1] * len(adult)
    sel = select_highlights(tracked, SelectionOptions(min_frames=1, min_gap_s=1.0, min_gap_floor_s=1.0))
    assert sel.picks
    assert all(not 18 - 2 <= p.ref.t <= 25 + 2 for p in sel.picks), [p.ref.t for p in sel.picks]


def test_near_duplicate_crops_are_skipped():
    base = 0x0F0F_0F0F_0F0F_0F0F
    rows = [face_row(i, t=60.0 * i, smile_prob=0.95 - 0.01 * i, crop_hash=f"{base ^ (1 << i):016x}") for i in range(6)]
    rows += [face_row(10 + i, t=600.0 + 60 * i, smile_prob=0.7) for i in range(3)]  # distinct crops
    sel = select_highlights(table(rows))
    hashes = [p.crop_hash for p in sel.picks]
    assert all(phash_distance(a, b) > 10 for i, a in enumerate(hashes) for b in hashes[i + 1 :])
    assert len(sel.picks) == 4  # one of the six look-alikes (the best) + the three distinct ones
    assert sel.picks[0].ref.index == 0


def test_frames_with_an_adult_are_excluded_by_default_and_allowed_on_request():
    rows = []
    for i in range(12):
        rows.append(face_row(i, t=30.0 * i, smile_prob=0.9 if i % 2 else 0.7))
        if i % 2:  # the best smiles share the frame with an adult
            rows.append(face_row(i, t=30.0 * i, face=1, is_child=False, child_prob=0.1, smile_prob=0.99))
    sel = select_highlights(table(rows))
    assert sel.status == "ok"
    assert {p.ref.index % 2 for p in sel.picks} == {0}
    allowed = select_highlights(table(rows), SelectionOptions(allow_adult=True))
    assert allowed.picks[0].ref.index % 2 == 1
    assert all(p.face == 0 for p in allowed.picks)  # the adult face itself is never the pick


def test_frames_next_to_an_adult_detection_are_excluded_too():
    # A parent seen at t=100 and t=103: the detector may have missed them at 101-102 (and near).
    rows = [face_row(i, t=float(t), smile_prob=0.99 if 98 <= t <= 106 else 0.7) for i, t in enumerate(range(60, 180, 1))]
    rows += [face_row(1000, t=100.0, face=1, is_child=False, child_prob=0.05)]
    rows += [face_row(1001, t=103.0, face=1, is_child=False, child_prob=0.05)]
    sel = select_highlights(table(rows), SelectionOptions(min_gap_s=10.0))
    assert sel.status == "ok"
    assert all(not 98.0 <= p.ref.t <= 105.0 for p in sel.picks)
    assert any(p.ref.t == 106.0 for p in sel.picks)  # 3 s after the last adult sighting is fine
    near = select_highlights(table(rows), SelectionOptions(min_gap_s=10.0, adult_margin_s=0.0))
    assert any(98.0 <= p.ref.t <= 105.0 for p in near.picks)  # without the margin, frames beside the adult are used


def test_adult_with_unknown_or_poor_scores_still_excludes_the_frame():
    rows = [face_row(i, t=30.0 * i) for i in range(6)]
    rows.append(face_row(0, t=0.0, face=1, is_child=None, child_prob=math.nan))  # unknown -> adult
    rows.append(face_row(1, t=30.0, face=1, is_child=False, det_prob=0.5, sharpness=1.0))
    sel = select_highlights(table(rows))
    assert {p.ref.index for p in sel.picks} == {2, 3, 4, 5}


def test_blurred_dark_small_and_not_smiling_faces_are_rejected():
    bad = [
        dict(sharpness=10.0),
        dict(brightness=20.0),
        dict(brightness=250.0),
        dict(smile_prob=0.3),
        dict(x2=120.0, y2=100.0),  # 20 px face
        dict(det_prob=0.5),
        dict(smile_prob=math.nan),
    ]
    rows = [face_row(i, t=60.0 * i, **({"smile_prob": 0.99} | over)) for i, over in enumerate(bad)]
    rows += [face_row(100 + i, t=1000.0 + 60 * i, smile_prob=0.75) for i in range(3)]
    sel = select_highlights(table(rows))
    assert sel.status == "ok"
    assert {p.ref.index for p in sel.picks} == {100, 101, 102}


def test_two_child_faces_pick_the_more_smiling_one():
    rows = []
    for i in range(4):
        rows.append(face_row(i, t=60.0 * i, face=0, smile_prob=0.65))
        rows.append(face_row(i, t=60.0 * i, face=1, smile_prob=0.9, x1=300.0, x2=380.0, y1=90.0, y2=180.0))
    sel = select_highlights(table(rows))
    assert [p.face for p in sel.picks] == [1, 1, 1, 1]
    assert sel.picks[1].box == (300.0, 90.0, 380.0, 180.0)


def test_too_few_frames_is_no_highlight_with_a_reason():
    rows = [face_row(0, t=0.0), face_row(1, t=100.0)] + [empty_row(i, t=200.0 + i) for i in range(2, 50)]
    sel = select_highlights(table(rows))
    assert sel.status == "no_highlight" and sel.picks == []
    assert "only 2" in sel.reason and "3 needed" in sel.reason
    assert sel.stats.frames == 50 and sel.stats.with_child == 2
    # the student's name is not in the table, and no other personal data is in the reason
    assert select_highlights(table(rows), SelectionOptions(min_frames=2)).status == "ok"


def test_no_faces_and_empty_table():
    sel = select_highlights(table([empty_row(i) for i in range(10)]))
    assert sel.status == "no_highlight" and "no child's face" in sel.reason
    empty = pd.DataFrame({c: [] for c in face_row(0)})
    assert select_highlights(empty).status == "no_highlight"


def test_missing_columns_are_an_error():
    with pytest.raises(ValueError, match="smile_prob"):
        select_highlights(table([face_row(0)]).drop(columns="smile_prob"))


def test_to_dict_is_json_ready():
    import json

    sel = select_highlights(table([face_row(i, t=30.0 * i) for i in range(5)]))
    data = json.loads(json.dumps(sel.to_dict()))
    assert data["status"] == "ok" and len(data["picks"]) == 5
    best = face_row(data["picks"][0]["frame"], t=data["picks"][0]["t"])
    assert data["picks"][0]["box"] == [best["x1"], best["y1"], best["x2"], best["y2"]]


# selection.json as the previous version wrote it (before FrameRef): the frame's fields first, flat.
OLD_PICK = {
    "frame": 12, "t": 12.0, "at": "2026-11-20T15:00:12+00:00", "source": "student.webm", "offset_s": 14.5,
    "face": 0, "box": [100.0, 80.0, 220.0, 220.0], "smile": 0.8, "child": 0.9, "sharpness": 300.0,
    "brightness": 120.0, "crop_hash": "00000000000000ff", "rank": 0, "track": 3,
}  # fmt: skip


def test_selection_json_of_the_previous_version_reads_and_writes_back_unchanged():
    import json

    data = {"status": "ok", "reason": None, "picks": [OLD_PICK], "stats": {"frames": 30, "with_face": 20}}
    sel = Selection.from_dict(json.loads(json.dumps(data)))
    [pick] = sel.picks
    assert pick.ref == FrameRef(12, 12.0, START + timedelta(seconds=12), Path("student.webm"), 14.5)
    assert pick.ref.at.tzinfo == timezone.utc and pick.box == (100.0, 80.0, 220.0, 220.0) and pick.track == 3
    again = sel.to_dict()
    assert json.dumps(again["picks"]) == json.dumps([OLD_PICK])  # same keys, same order, same text
    # Written before face tracks: no "track", which reads as -1.
    assert Selection.from_dict({**data, "picks": [{k: v for k, v in OLD_PICK.items() if k != "track"}]}).picks[0].track == -1


def test_a_pick_carries_the_frame_of_its_scores_row_and_writes_it_as_the_row_had_it():
    rows = [face_row(i, t=30.0 * i) for i in range(5)]
    sel = select_highlights(table(rows))
    for pick in sel.picks:
        row = rows[pick.ref.index]
        assert pick.ref == FrameRef.from_record(row)
        assert {k: pick.to_dict()[k] for k in FRAME_COLUMNS} == {k: row[k] for k in FRAME_COLUMNS}
        frame = pick.highlight_frame()
        assert frame.ref is pick.ref and frame.smile == round(pick.smile, 4) and frame.box == pick.box
    assert Selection.from_dict(sel.to_dict()) == sel


def test_a_scores_time_without_an_offset_is_an_error_not_a_guess():
    rows = [face_row(i, t=30.0 * i) for i in range(5)]
    rows[0]["at"] = "2026-11-20T15:00:00"  # naive: which instant?
    with pytest.raises(ValueError, match="no UTC offset"):
        select_highlights(table(rows))


face_strategy = st.fixed_dictionaries(
    dict(
        is_child=st.sampled_from([True, False, None]),
        smile_prob=st.floats(0, 1),
        sharpness=st.floats(0, 500),
        brightness=st.floats(0, 255),
        det_prob=st.floats(0.5, 1),
        hash=st.integers(0, 2**64 - 1),
    )
)
frame_strategy = st.tuples(st.floats(0, 5), st.lists(face_strategy, max_size=3))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(frame_strategy, min_size=0, max_size=30), allow_adult=st.booleans())
def test_random_tables_respect_privacy_gap_and_order(frames, allow_adult):
    rows, t = [], 0.0
    for index, (dt, faces) in enumerate(frames):
        t += dt
        if not faces:
            rows.append(empty_row(index, t))
        for face_index, f in enumerate(faces):
            rows.append(
                face_row(index, t, face=face_index, is_child=f["is_child"], smile_prob=f["smile_prob"],
                         sharpness=f["sharpness"], brightness=f["brightness"], det_prob=f["det_prob"],
                         crop_hash=f"{f['hash']:016x}")
            )  # fmt: skip
    scores = table(rows) if rows else pd.DataFrame({c: [] for c in face_row(0)})
    opts = SelectionOptions(min_gap_s=3.0, min_frames=1, allow_adult=allow_adult)
    sel = select_highlights(scores, opts)
    assert len(sel.picks) <= opts.max_frames
    # Judged per track (highlights.stages.tracks): a face counts as an adult when its track is not
    # judged a child, and its smile is the one smoothed within the track.
    from highlights.stages.tracks import judge_faces

    judged = judge_faces(scores, opts.tracks) if rows else None
    faces = judged[judged["face"] >= 0] if judged is not None else scores
    adult = faces["track_child"].ne(True) if judged is not None else faces["face"] >= 0
    adult_frames = set(faces.loc[adult, "frame"])
    adult_times = faces.loc[adult, "t"].tolist()
    for p in sel.picks:
        row = faces[(faces["frame"] == p.ref.index) & (faces["face"] == p.face)].iloc[0]
        assert row["track_child"] == True  # noqa: E712  (the GIF is framed on a child, always)
        assert row["track_smile"] >= opts.min_smile and row["sharpness"] >= opts.min_sharpness
        assert opts.min_brightness <= row["brightness"] <= opts.max_brightness
        if not allow_adult:
            assert p.ref.index not in adult_frames
            assert all(abs(p.ref.t - t) > opts.adult_margin_s for t in adult_times)
    times = sorted(p.ref.t for p in sel.picks)
    # The gap may come down to min_gap_floor_s to fill the GIF, never below it.
    assert all(b - a >= min(opts.min_gap_s, opts.min_gap_floor_s) for a, b in zip(times, times[1:]))
    hashes = [p.crop_hash for p in sel.picks]
    assert all(phash_distance(a, b) > opts.hash_distance for i, a in enumerate(hashes) for b in hashes[i + 1 :])
    if sel.picks:
        assert sel.picks[0].smile == max(p.smile for p in sel.picks)
        assert [p.ref.t for p in sel.picks[1:]] == sorted(p.ref.t for p in sel.picks[1:])
    assert (sel.status == "ok") == (len(sel.picks) >= opts.min_frames)


def test_the_face_table_is_defined_once_and_selection_reads_it_without_torch() -> None:
    # selection.py and faces/scoring.py each had their own SCORE_COLUMNS; then three modules did.
    import highlights.core.faces as faces

    assert list(faces.SCORE_DTYPES) == list(faces.SCORE_COLUMNS)
    assert faces.SCORE_COLUMNS[: len(FRAME_COLUMNS)] == FRAME_COLUMNS
    assert set(faces.STORED_COLUMNS) | set(faces.JUDGED_COLUMNS) == set(faces.COLUMNS)
    assert not imports_torch("import highlights.stages.selection\nimport highlights.lesson.folder")


# --------------------------------------------------------------------------- adult students (issue 9)


def _scores(rows: list[tuple[int, int, bool, float]]) -> pd.DataFrame:
    """(frame = second, face, is_child, smile) -> a scores table every face of which is usable."""
    from highlights.core.faces import FaceTable

    records = [
        {"frame": f, "t": float(f), "at": (T0 + timedelta(seconds=f)).isoformat(), "source": "s.webm",
         "offset_s": float(f), "face": k,
         "x1": 0.0 + 100 * k, "y1": 0.0, "x2": 80.0 + 100 * k, "y2": 80.0, "det_prob": 0.999,
         "child_prob": 0.9 if child else 0.1, "smile_prob": smile, "is_child": child, "sharpness": 300.0,
         "brightness": 120.0, "crop_hash": f"{(f * 2654435761) % (1 << 64):016x}"}
        for f, k, child, smile in rows
    ]
    return pd.concat([FaceTable.empty().data, pd.DataFrame(records)], ignore_index=True)


def test_an_adult_students_gif_is_her_own_face_alone_and_childrens_lessons_keep_their_rule() -> None:
    # An adult alone, smiling, at 0, 30, 60, 90 s; at 61 s someone else is in view too.
    rows = [(t, 0, False, 0.95) for t in (0, 30, 59, 60, 90)] + [(61, 0, False, 0.95), (61, 1, True, 0.95)]
    scores = _scores(rows)

    adult = select_highlights(scores, SelectionOptions(student_age_group="adult"))
    assert adult.status == "ok"
    assert sorted(p.ref.t for p in adult.picks) == [0.0, 30.0, 90.0]  # 59, 60 lie within 2 s of the second face

    child = select_highlights(scores, SelectionOptions())  # the default rule: an adult is never the subject
    assert child.status == "no_highlight" and "no child's face" not in child.reason


def test_a_face_cut_by_the_frames_edge_is_never_a_pick_even_alone_in_its_moment():
    # Each moment has one smiling frame only, its face a third outside the frame: no pick. At
    # 0.96 in the frame it is whole enough; a table without in_frame counts every face whole.
    rows = [face_row(60 * i, t=60.0 * i, smile_prob=0.99, in_frame=0.66) for i in range(4)]
    assert select_highlights(table(rows).assign(track=0), SelectionOptions(min_frames=1)).status == "no_highlight"
    rows = [face_row(60 * i, t=60.0 * i, smile_prob=0.99, in_frame=0.96) for i in range(4)]
    assert len(select_highlights(table(rows).assign(track=0), SelectionOptions(min_frames=1)).picks) == 4
    rows = [face_row(60 * i, t=60.0 * i, smile_prob=0.99) for i in range(4)]
    assert len(select_highlights(table(rows).drop(columns=["in_frame"], errors="ignore").assign(track=0),
                                 SelectionOptions(min_frames=1)).picks) == 4
    with pytest.raises(ValueError, match="min_in_frame"):
        SelectionOptions(min_in_frame=1.5)
