"""Face tracks (highlights/stages/tracks.py): linking faces across the sampled seconds, the gates that
refuse a link, the cut where someone else takes the place, and the judgement per track."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from highlights.stages.tracks import TrackOptions, assign_tracks, judge_faces, link_faces, main_track, tracks_of

CHILD_HASH = "00000000000000ff"
PARENT_HASH = "ff00000000000000"  # 16 bits from the child's: within the gate (24)
STRANGER_HASH = "ffffffff00000000"  # 40 bits from the child's: refused


def frame_columns(t, frame=None) -> dict:
    return {"frame": int(t) if frame is None else frame, "t": float(t), "at": f"2026-11-21T15:00:{int(t) % 60:02d}+00:00",
            "source": "student.webm", "offset_s": float(t)}


def face(t, box, face_no=0, det=0.99, child=0.97, smile=0.1, crop_hash=CHILD_HASH, frame=None) -> dict:
    x1, y1, x2, y2 = box
    return {**frame_columns(t, frame), "face": face_no,
            "x1": float(x1), "y1": float(y1), "x2": float(x2), "y2": float(y2), "det_prob": det,
            "child_prob": child, "smile_prob": smile, "is_child": child >= 0.87, "sharpness": 300.0,
            "brightness": 120.0, "crop_hash": crop_hash}  # fmt: skip


def no_face(t) -> dict:
    return {**frame_columns(t), "face": -1, "x1": np.nan, "y1": np.nan, "x2": np.nan, "y2": np.nan,
            "det_prob": np.nan, "child_prob": np.nan, "smile_prob": np.nan, "is_child": None, "sharpness": np.nan,
            "brightness": np.nan, "crop_hash": ""}  # fmt: skip


CHILD_BOX = (100, 80, 200, 200)
PARENT_BOX = (330, 60, 450, 200)


def ids(rows) -> list[int]:
    return link_faces(pd.DataFrame(rows)).tolist()


def test_a_face_drifting_over_seconds_is_one_track_and_a_frame_without_faces_is_minus_one():
    rows = [face(t, (100 + 8 * t, 80, 200 + 8 * t, 200)) for t in range(6)] + [no_face(6)]
    assert ids(rows) == [0, 0, 0, 0, 0, 0, -1]


def test_two_faces_side_by_side_keep_their_own_tracks_whatever_their_row_order():
    rows = []
    for t in range(5):
        pair = [face(t, CHILD_BOX, 0), face(t, PARENT_BOX, 1, child=0.02, crop_hash=PARENT_HASH)]
        rows += pair if t % 2 else pair[::-1]  # the detector's face numbers swap now and then
    table = pd.DataFrame(rows)
    tracks = link_faces(table)
    assert tracks[table["x1"] == 100].nunique() == 1 and tracks[table["x1"] == 330].nunique() == 1
    assert set(tracks) == {0, 1}


def test_a_missed_second_keeps_the_id_and_a_longer_gap_starts_a_new_track():
    short_gap = [face(0, CHILD_BOX), face(1, CHILD_BOX), face(3, CHILD_BOX)]  # missed at 2 s: 2 s gap
    assert ids(short_gap) == [0, 0, 0]
    long_gap = [face(0, CHILD_BOX), face(1, CHILD_BOX), face(4, CHILD_BOX)]  # 3 s > max_gap_s 2.5
    assert ids(long_gap) == [0, 0, 1]


@pytest.mark.parametrize(
    "second",
    [
        face(1, (260, 80, 360, 200)),  # moved 1.6 face sizes (gate 0.8)
        face(1, (120, 100, 320, 300)),  # twice the size (gate 1.6x)
        face(1, CHILD_BOX, crop_hash=STRANGER_HASH),  # same place, another face (hash gate 24 bits)
    ],
    ids=["jump", "size", "appearance"],
)
def test_each_gate_refuses_a_link(second):
    assert ids([face(0, CHILD_BOX), second]) == [0, 1]


def test_confident_faces_are_matched_before_weak_ones():
    # A weak detection sits closer to the track than the confident face; the confident one wins.
    rows = [face(0, CHILD_BOX), face(1, (104, 80, 204, 200), 0, det=0.95), face(1, (100, 80, 200, 200), 1, det=0.5)]
    assert ids(rows) == [0, 0, 1]


def test_a_track_is_cut_where_someone_else_takes_the_place():
    """The child leaves and a parent leans into the same spot: boxes and hashes allow the link,
    the age model's evidence steps by more than split_logit, so the track is cut there."""
    rows = [face(t, CHILD_BOX, child=0.98) for t in range(5)]
    rows += [face(t, CHILD_BOX, child=0.01, crop_hash=PARENT_HASH) for t in range(5, 10)]
    assert ids(rows) == [0] * 5 + [1] * 5
    # The part cut off is numbered by its first appearance too: before a face that came later.
    late = face(7, (10, 10, 60, 60), 1, crop_hash=STRANGER_HASH, frame=7)
    assert ids([*rows, late]) == [0] * 5 + [1] * 5 + [2]
    # One odd second does not cut: the windows' means do not step by 5 logits.
    wobble = [face(t, CHILD_BOX, child=0.3 if t == 4 else 0.98) for t in range(9)]
    assert ids(wobble) == [0] * 9


def test_ids_are_numbered_by_first_appearance_and_linking_is_deterministic():
    rows = [face(0, PARENT_BOX, 0, crop_hash=PARENT_HASH), face(0, CHILD_BOX, 1), face(1, CHILD_BOX, 0),
            face(1, PARENT_BOX, 1, crop_hash=PARENT_HASH), face(2, (10, 10, 60, 60), 0, crop_hash=STRANGER_HASH)]  # fmt: skip
    table = pd.DataFrame(rows)
    first = link_faces(table)
    assert first.tolist() == [0, 1, 1, 0, 2]
    shuffled = table.sample(frac=1.0, random_state=3)
    assert link_faces(shuffled).loc[table.index].tolist() == first.tolist()


def test_in_frame_is_the_share_of_the_box_inside_its_frame():
    rows = [face(0, (0, 0, 100, 100)), face(1, (-50, 0, 50, 100)), face(2, (10, 10, 20, 20))]
    out = assign_tracks(pd.DataFrame(rows), {0: (360, 480), 1: (360, 480)}).data
    assert out["in_frame"].tolist()[:2] == [1.0, 0.5] and np.isnan(out["in_frame"].iat[2])  # frame 2: size unknown


def test_a_track_is_judged_on_its_confident_frames_and_one_clear_second_carries_dim_ones():
    # Dim seconds (detected weakly) doubt the child; the sure ones decide the whole track.
    rows = [face(t, CHILD_BOX, det=0.99 if t < 3 else 0.8, child=0.97 if t < 3 else 0.4) for t in range(8)]
    judged = judge_faces(pd.DataFrame(rows))
    assert judged["track_child"].all() and set(judged["track_kind"]) == {"child"}


def test_a_track_without_confident_frames_is_undecided_and_counts_as_an_adult():
    rows = [face(t, CHILD_BOX, det=0.7, child=0.99) for t in range(4)]
    judged = judge_faces(pd.DataFrame(rows))
    assert not judged["track_child"].any() and set(judged["track_kind"]) == {"undecided"}


def test_a_turned_face_is_no_evidence_so_a_track_of_turned_faces_is_undecided():
    # A box 0.6 as wide as tall: a head turned away, whose age call the model gets wrong.
    judged = judge_faces(pd.DataFrame([face(t, (100, 80, 160, 180), child=0.02) for t in range(6)]))
    assert (judged["track_kind"] == "undecided").all() and not judged["track_child"].any()
    facing_too = [face(t, (100, 80, 200, 200), child=0.97) for t in range(6, 12)]
    judged = judge_faces(pd.DataFrame([face(t, (100, 80, 160, 180), child=0.02) for t in range(6)] + facing_too))
    assert judged["track"].nunique() == 1 and judged["track_child"].all()  # judged on the facing seconds


def test_an_adult_track_stays_adult_through_an_odd_second():
    rows = [face(t, PARENT_BOX, child=0.95 if t == 2 else 0.05, crop_hash=PARENT_HASH) for t in range(6)]
    judged = judge_faces(pd.DataFrame(rows))
    assert judged["is_child"].iat[2] and not judged["track_child"].any()


def test_a_short_track_needs_each_confident_frame_judged_child_on_its_own():
    # Two confident frames (fewer than min_confident_frames): the mean passes 0.85 but one frame
    # is below the age model's own threshold, so the track is not a child.
    rows = [face(0, CHILD_BOX, child=0.99), face(1, CHILD_BOX, child=0.8)]
    assert not judge_faces(pd.DataFrame(rows))["track_child"].any()
    rows = [face(0, CHILD_BOX, child=0.99), face(1, CHILD_BOX, child=0.9)]
    assert judge_faces(pd.DataFrame(rows))["track_child"].all()


def test_the_smile_is_smoothed_within_the_track_by_a_running_median():
    smiles = [0.1, 0.1, 0.9, 0.1, 0.9, 0.9, 0.2, 0.9]
    rows = [face(t, CHILD_BOX, smile=s) for t, s in enumerate(smiles)]
    judged = judge_faces(pd.DataFrame(rows))
    assert judged["track_smile"].round(2).tolist() == [0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9, 0.55]


def test_tracks_of_and_main_track():
    rows = [face(t, CHILD_BOX) for t in range(6)] + [face(t, PARENT_BOX, 1, child=0.02, crop_hash=PARENT_HASH) for t in (2, 3)]
    tracks = tracks_of(judge_faces(pd.DataFrame(rows)))
    assert [(t.id, t.kind, len(t), t.start_s, t.end_s) for t in tracks] == [(0, "child", 6, 0.0, 5.0), (1, "adult", 2, 2.0, 3.0)]
    assert main_track(tracks).id == 0 and main_track([]) is None


def test_options_are_checked():
    with pytest.raises(ValueError):
        TrackOptions(child_threshold=1.0)
    with pytest.raises(ValueError):
        TrackOptions(smile_window=0)
    with pytest.raises(ValueError):
        TrackOptions(max_size_ratio=0.5)
