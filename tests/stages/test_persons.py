"""Persons (highlights/stages/persons.py): tracks grouped by identity, pictures, bodies without a
face, the verdict per person, the student, and what they mean for the GIF and the analytics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from highlights.core.faces import FaceTable
from highlights.stages.persons import (
    PersonOptions,
    assign_persons,
    choose_students,
    group_persons,
    judge_lesson,
    judge_persons,
    picture_tracks,
    unexplained_body,
)
from highlights.stages.selection import SelectionOptions, select_highlights
from highlights.stages.tracks import TrackOptions, assign_tracks

CHILD, PARENT, SIBLING = np.eye(128)[0], np.eye(128)[1], np.eye(128)[2]


_WALKS: dict[int, list[int]] = {}


def live_hash(t: float, face: int) -> str:
    """A live face's crop hash: a few bits change every second, so a second apart the hashes are
    close (the track links) and minutes apart they are far (the face is no picture)."""
    walk = _WALKS.setdefault(face, [int(np.random.default_rng(face).integers(0, 2**63))])
    rng = np.random.default_rng([face, len(walk)])
    while len(walk) <= int(t):
        flips = 0
        for bit in rng.choice(63, size=3, replace=False):
            flips |= 1 << int(bit)
        walk.append(walk[-1] ^ flips)
    return f"{walk[int(t)]:016x}"


def row(t, box, *, face=0, child=0.97, smile=0.1, det=0.99, size=None, crop_hash=None, body=0.0, body_box=None) -> dict:
    x1, y1, x2, y2 = box
    bx = body_box or (math.nan,) * 4
    return {
        "frame": int(t), "t": float(t), "at": f"2026-11-21T15:{int(t) // 60:02d}:{int(t) % 60:02d}+00:00",
        "source": "student.webm", "offset_s": float(t), "face": face, "x1": float(x1), "y1": float(y1),
        "x2": float(x2), "y2": float(y2), "det_prob": det, "child_prob": child, "smile_prob": smile,
        "is_child": child >= 0.87, "sharpness": 300.0, "brightness": 120.0,
        "crop_hash": crop_hash or (live_hash(t, face) if face >= 0 else ""),
        "body_share": body, "body_x1": bx[0], "body_y1": bx[1], "body_x2": bx[2], "body_y2": bx[3],
    }  # fmt: skip


def empty(t, body=0.0, body_box=None) -> dict:
    out = row(t, (math.nan,) * 4, face=-1, child=math.nan, smile=math.nan, det=math.nan, body=body, body_box=body_box)
    return {**out, "is_child": False, "crop_hash": "", "sharpness": math.nan, "brightness": math.nan}


def wobble(t: float, box, amount: float = 6.0):
    """A live face: it moves a little every second."""
    dx, dy = amount * math.sin(t * 1.3), amount * math.cos(t * 0.7)
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def tracked(rows) -> pd.DataFrame:
    return assign_tracks(pd.DataFrame(rows)).data


def embed_by(mapping):
    """A fake embedding: each chip is the identity vector it was labelled with."""
    return lambda chips: np.stack(chips)


def test_tracks_of_one_person_across_a_gap_are_one_and_two_people_at_once_are_two():
    # The child's face, then a gap (the child was away), then again; the parent beside for a while.
    rows = [row(t, wobble(t, (100, 80, 200, 200))) for t in range(0, 10)]
    rows += [empty(t) for t in range(10, 20)]
    rows += [row(t, wobble(t, (110, 85, 210, 205))) for t in range(20, 30)]
    rows += [row(t, wobble(t, (330, 60, 450, 200)), face=1, child=0.05) for t in range(22, 28)]
    table = tracked(rows)
    assert table.loc[table["face"] >= 0, "track"].nunique() == 3
    vectors = {}
    for r in table[table["face"] >= 0].itertuples():
        vectors[(int(r.frame), int(r.face))] = PARENT if r.face == 1 else CHILD + 0.01 * (r.t > 15)
    persons = group_persons(table, vectors, PersonOptions())
    faces = table.assign(person=persons)[table["face"] >= 0]
    child_persons = faces.loc[faces["face"] == 0, "person"].unique()
    assert len(child_persons) == 1  # one child across the gap
    assert faces.loc[faces["face"] == 1, "person"].iat[0] not in child_persons
    assert (persons[table["face"] < 0] == -1).all()


def test_two_tracks_seen_together_are_never_one_person_however_alike():
    rows = [row(t, wobble(t, (100, 80, 200, 200))) for t in range(10)]
    rows += [row(t, wobble(t, (330, 80, 430, 200)), face=1) for t in range(10)]
    table = tracked(rows)
    vectors = {(int(r.frame), int(r.face)): CHILD for r in table.itertuples()}  # twins
    persons = group_persons(table, vectors, PersonOptions())
    assert persons.nunique() == 2


def test_the_student_kept_apart_from_themselves_by_a_sibling_beside_is_joined_and_the_sibling_is_not():
    # The student alone (60 s), then at the left with a look-alike sibling beside (10 s), then
    # alone again (45 s) looking a little different. Average linkage takes the sibling with the
    # student's later look first; the two groups then share the sibling's seconds and could never
    # merge: the student would be two persons.
    away = np.eye(128)[5]
    rows = [row(t, wobble(t, (260, 80, 360, 200))) for t in range(0, 60)]
    rows += [row(t, wobble(t, (40, 80, 140, 200))) for t in range(60, 70)]
    rows += [row(t, wobble(t, (480, 80, 580, 200)), face=1) for t in range(60, 70)]
    rows += [row(t, wobble(t, (260, 80, 360, 200))) for t in range(75, 120)]
    table = tracked(rows)
    faces = table[table["face"] >= 0]
    assert faces["track"].nunique() == 4
    student_early = (faces["t"] < 70) & (faces["face"] == 0)
    sibling = faces["face"] == 1
    vectors = {(int(r.frame), int(r.face)): CHILD + (0.0 if early else 0.45 if sib else 0.4) * away
               for r, early, sib in zip(faces.itertuples(), student_early, sibling)}
    apart = group_persons(table, vectors, PersonOptions(conflict_max_share=0.0))
    assert apart[faces.index][~sibling].nunique() == 2  # without the join: the student in two
    persons = group_persons(table, vectors, PersonOptions())[faces.index]
    assert persons[~sibling].nunique() == 1
    assert persons[sibling].iat[0] != persons[~sibling].iat[0]


def test_a_track_without_an_embedding_joins_the_person_at_its_place():
    rows = [row(t, wobble(t, (100, 80, 200, 200))) for t in range(10)]
    rows += [row(t, wobble(t, (104, 82, 204, 202)), det=0.7, crop_hash="ffffffff00000000") for t in range(13, 16)]
    table = tracked(rows)
    assert table["track"].nunique() == 2
    first = table[table["track"] == 0]
    vectors = {(int(r.frame), int(r.face)): CHILD for r in first.itertuples()}
    persons = group_persons(table, vectors, PersonOptions())
    assert persons.nunique() == 1


def test_a_face_that_never_moves_nor_changes_for_minutes_is_a_picture_and_a_live_face_is_not():
    # A photo: its crop's hash moves by a bit or two with the light.
    poster = [row(t, (400 + 0.5 * math.sin(t), 40, 450, 100), face=1, smile=0.95,
                  crop_hash="00ff00ff00ff00f" + "0123"[t % 4]) for t in range(120)]
    student = [row(t, wobble(t, (100, 80, 200, 200), 8.0), smile=0.1 + 0.8 * (t % 30 < 8)) for t in range(120)]
    table = tracked(student + poster)
    pictures = picture_tracks(table)
    poster_tracks = set(table.loc[table["face"] == 1, "track"])
    assert pictures == poster_tracks
    judged, persons = judge_persons(table)
    assert {p.kind for p in persons if set(p.tracks) & poster_tracks} == {"picture"}


def test_a_picture_stays_a_picture_through_a_few_seconds_of_odd_boxes_and_a_still_face_that_leans_is_not():
    """The size spread is robust: in dim or half-hidden seconds the detector draws a poster's box
    larger or smaller (a report lesson's poster: 7.4% by standard deviation, 3.9% robust)."""
    def poster_box(t):
        grow = 12 if t % 10 == 0 else 0  # every tenth second the box is drawn 24% larger
        return (400 - grow, 40 - grow, 450 + grow, 100 + grow)
    poster = [row(t, poster_box(t), face=1, smile=0.95, crop_hash="00ff00ff00ff00f" + "0123"[t % 4]) for t in range(120)]
    size = np.array([poster_box(t)[2] - poster_box(t)[0] for t in range(120)], dtype=float)
    assert size.std() / np.median(size) > 0.06  # a standard deviation would call it a live face
    # the same crops, but the face comes closer and goes back over the minutes (a person leaning)
    lean = [row(t, (100 - t // 4, 80 - t // 4, 200 + t // 4, 200 + t // 4), face=2, smile=0.95,
                crop_hash="0f0f0f0f0f0f0f0" + "0123"[t % 4]) for t in range(120)]
    table = tracked(poster + lean)
    assert picture_tracks(table) == set(table.loc[table["face"] == 1, "track"])


def test_a_person_is_judged_on_all_their_faces_the_clear_ones_deciding_the_dim():
    # A minute of clear faces judged child, then dim ones the age model doubts: one child.
    clear = [row(t, wobble(t, (100, 80, 200, 200)), child=0.96) for t in range(60)]
    dim = [dict(row(t, wobble(t, (100, 80, 200, 200)), child=0.3), brightness=30.0) for t in range(60, 120)]
    table = tracked(clear + dim)
    table["person"] = 0
    judged, [person] = judge_persons(table)
    assert person.kind == "child" and person.clear_faces == 60 and person.dim_faces == 60
    assert judged.loc[judged["face"] >= 0, "person_kind"].eq("child").all()


def test_a_child_whose_faces_are_mostly_doubted_is_still_a_child_and_an_adult_stays_adult():
    # A degraded child: only a fifth of the clear faces pass the per-face threshold.
    child = [row(t, wobble(t, (100, 80, 200, 200)), child=0.95 if t % 5 == 0 else 0.3) for t in range(100)]
    table = tracked(child)
    table["person"] = 0
    assert judge_persons(table)[1][0].kind == "child"
    adult = [row(t, wobble(t, (100, 80, 200, 200)), child=0.95 if t % 50 == 0 else 0.05) for t in range(100)]
    table = tracked(adult)
    table["person"] = 0
    assert judge_persons(table)[1][0].kind == "adult"


def test_the_student_is_the_child_seen_longest_unless_no_child_dominates():
    rows = [row(t, wobble(t, (100, 80, 200, 200))) for t in range(100)]
    rows += [row(t, wobble(t, (330, 80, 430, 200)), face=1, child=0.96) for t in range(40, 55)]
    table = tracked(rows)
    table["person"] = table["track"]
    judged, persons = judge_persons(table)
    students = [p for p in persons if p.student]
    assert len(students) == 1 and students[0].seconds == 100
    faces = judged[judged["face"] >= 0]
    assert choose_students(persons, faces, PersonOptions()) == {students[0].id}
    # Two children taking turns, neither seen for half the child seconds: both are the subject.
    turns = [row(t, wobble(t, (100, 80, 200, 200)), crop_hash=None) for t in range(40)]
    turns += [row(t, wobble(t, (300, 80, 400, 200))) for t in range(40, 80)]
    turns += [row(t, wobble(t, (180, 80, 280, 200))) for t in range(80, 120)]
    table = tracked(turns)
    table["person"] = table["track"]
    assert sum(p.student for p in judge_persons(table)[1]) == table["track"].nunique()


def test_judge_lesson_marks_the_subject_someone_else_and_bodies():
    rows = [row(t, wobble(t, (100, 80, 200, 200))) for t in range(60)]
    rows += [row(t, wobble(t, (330, 60, 450, 200)), face=1, child=0.05) for t in range(20, 25)]
    table = tracked(rows)
    table["person"] = (table["face"] == 1).astype("int64")
    table.loc[table["face"] < 0, "person"] = -1
    # Someone's shoulder at the right edge in seconds 40-44, away from the student.
    for t in range(40, 45):
        table.loc[table["t"] == t, ["body_share", "body_x1", "body_y1", "body_x2", "body_y2"]] = [0.05, 560, 200, 640, 480]
    judged = judge_lesson(table)
    faces = judged.faces
    assert faces.loc[faces["face"] == 0, "subject"].all() and not faces.loc[faces["face"] == 1, "subject"].any()
    assert faces.loc[faces["face"] == 1, "adult_else"].all()
    frames = judged.frames().set_index("t")
    assert frames.loc[42.0, "other_body"] and frames.loc[42.0, "adult"] and not frames.loc[10.0, "adult"]
    assert frames.loc[22.0, "adult"] and frames.loc[22.0, "student"]


def test_the_student_leaning_out_of_the_picture_is_the_student_not_someone_else():
    rows = [row(t, wobble(t, (270, 80, 370, 200))) for t in range(60)]
    table = tracked(rows)
    table["person"] = 0
    # Seconds 30-34: no face, a body region under the student's usual place.
    table = table[~table["t"].between(30, 34)]
    extra = pd.DataFrame([empty(t, body=0.2, body_box=(240, 150, 420, 480)) for t in range(30, 35)])
    extra["track"], extra["in_frame"], extra["person"] = -1, math.nan, -1
    table = pd.concat([table, extra], ignore_index=True)
    frames = judge_lesson(table).frames().set_index("t")
    assert frames.loc[32.0, "student"] and not frames.loc[32.0, "adult"]


def test_the_student_leaning_out_to_the_edge_keeps_their_shoulder_and_a_body_long_after_is_someone_else():
    # The student at the middle; seconds 30-33 their face out at the left edge, their shoulder at
    # the edge (far from their usual place); seconds 50-53 a body at the edge again, but the
    # student had left at 40 (nobody's face since): someone else.
    rows = [row(t, wobble(t, (270, 80, 370, 200))) for t in range(40)]
    table = tracked(rows)
    table["person"] = 0
    table = table[~table["t"].between(30, 33)]
    extra = [empty(t, body=0.15, body_box=(0, 80, 140, 360)) for t in range(30, 34)]
    extra += [empty(t) for t in range(40, 50)]
    extra += [empty(t, body=0.15, body_box=(0, 80, 140, 360)) for t in range(50, 54)]
    extra = pd.DataFrame(extra)
    extra["track"], extra["in_frame"], extra["person"] = -1, math.nan, -1
    table = pd.concat([table, extra], ignore_index=True)
    frames = judge_lesson(table).frames().set_index("t")
    assert frames.loc[30.0:33.0, "student"].all() and not frames.loc[30.0:33.0, "adult"].any()
    assert frames.loc[50.0:53.0, "adult"].all() and not frames.loc[50.0:53.0, "student"].any()
    # Without following the student in time, the shoulder far from their usual place was taken
    # for someone else's (an adult reported with none in view).
    options = PersonOptions(body_follow_s=0.0)
    frames = judge_lesson(table, options).frames().set_index("t")
    assert frames.loc[30.0:33.0, "adult"].all()


def test_a_picture_is_never_picked_and_never_keeps_a_frame_out():
    student = [row(t, wobble(t, (100, 80, 200, 200), 8.0), smile=0.9 if t % 30 < 6 else 0.1) for t in range(300)]
    poster = [row(t, (400, 40, 450, 100), face=1, smile=0.97, child=0.95, crop_hash="00ff00ff00ff00ff") for t in range(300)]
    table = tracked(student + poster)
    table["person"] = (table["face"] == 1).astype("int64")
    table.loc[table["face"] < 0, "person"] = -1
    selection = select_highlights(table, SelectionOptions())
    assert selection.status == "ok" and len(selection.picks) >= 3
    assert all(pick.box[0] < 300 for pick in selection.picks)  # the student's, never the poster's


def test_a_body_at_the_edge_keeps_its_seconds_and_the_margin_out_of_the_gif():
    student = [row(t, wobble(t, (100, 80, 200, 200), 8.0), smile=0.9) for t in range(40)]
    table = tracked(student)
    table["person"] = 0
    for t in range(10, 12):
        table.loc[table["t"] == t, ["body_share", "body_x1", "body_y1", "body_x2", "body_y2"]] = [0.05, 560, 200, 640, 480]
    options = SelectionOptions(min_gap_s=1.0, min_gap_floor_s=1.0, moment_gap_s=0.5, max_moment_s=1.0)
    picked = {pick.ref.t for pick in select_highlights(table, options).picks}
    assert not picked & set(np.arange(8.0, 14.0))


def test_unexplained_body_finds_a_shoulder_at_the_edge_not_the_faces_own_body():
    mask = np.zeros((240, 320), np.float32)
    mask[60:240, 110:210] = 1.0  # the student's head and body under the face
    face = np.array([[130, 60, 190, 130]]) * 2  # frame pixels: the frame is 480x640
    assert unexplained_body(mask, face, (480, 640)).share == 0.0
    mask[120:240, 290:320] = 1.0  # someone's shoulder at the right edge
    body = unexplained_body(mask, face, (480, 640))
    assert body.share == pytest.approx(30 * 120 / (240 * 320)) and body.box[0] == pytest.approx(580)
    # Without any face the largest region counts (whose it is is decided over the lesson).
    assert unexplained_body(mask, np.zeros((0, 4)), (480, 640)).share > 0.2


def scene(*rects, size=(480, 640)) -> np.ndarray:
    """A synthetic person mask: 1.0 inside each (x1, y1, x2, y2)."""
    prob = np.zeros(size, np.float32)
    for x1, y1, x2, y2 in rects:
        prob[y1:y2, x1:x2] = 1.0
    return prob


FACE = np.array([[280, 100, 360, 200]])  # the main face: 80 px wide, centred
MAIN_BODY = [(270, 90, 370, 210), (220, 210, 420, 480)]  # head and torso, joined


def test_unexplained_body_flags_someone_at_the_side_or_a_head_at_the_top():
    body = unexplained_body(scene(*MAIN_BODY, (0, 200, 90, 480)), FACE, (480, 640))
    assert body.share == pytest.approx(90 * 280 / (480 * 640)) and body.box == (0, 200, 90, 480)
    assert unexplained_body(scene(*MAIN_BODY, (450, 20, 540, 110)), FACE, (480, 640)).share > 0


def test_unexplained_body_ignores_the_faces_own_arms_blobs_mid_frame_and_specks():
    assert unexplained_body(scene(*MAIN_BODY), FACE, (480, 640)).box is None
    # a hand raised beside the face, inside its body column (face +- half a face width)
    assert unexplained_body(scene(*MAIN_BODY, (370, 60, 390, 160)), FACE, (480, 640)).box is None
    # a blob away from every edge (middle band, outside the column)
    assert unexplained_body(scene(*MAIN_BODY, (170, 150, 215, 260)), FACE, (480, 640)).box is None
    # 0.3 % of the frame
    assert unexplained_body(scene(*MAIN_BODY, (0, 300, 30, 330)), FACE, (480, 640)).box is None


def test_unexplained_body_works_at_the_models_resolution():
    """Boxes are in frame pixels, the mask at any size: a 256x256 mask gives the same answer."""
    import cv2

    small = cv2.resize(scene(*MAIN_BODY, (0, 200, 90, 480)), (256, 256), interpolation=cv2.INTER_LINEAR)
    body = unexplained_body(small, FACE, (480, 640))
    assert body.share == pytest.approx(90 * 280 / (480 * 640), rel=0.1)
    assert body.box[0] == 0 and body.box[2] == pytest.approx(90, abs=3)


def test_assign_persons_keeps_no_embedding_and_fills_unmeasured_bodies():
    rows = [row(t, wobble(t, (100, 80, 200, 200))) for t in range(10)]
    table = assign_tracks(pd.DataFrame(rows).drop(columns=["body_share", "body_x1", "body_y1", "body_x2", "body_y2"]))
    chips = {(int(r.frame), int(r.face)): CHILD for r in table.data.itertuples()}
    out = assign_persons(table, chips, embed_by(chips))
    assert isinstance(out, FaceTable) and out.has_persons
    assert out.data["person"].eq(0).all() and out.data["body_share"].isna().all()
    assert not [c for c in out.data.columns if "embed" in c or "vector" in c]  # biometric data stays out


def test_a_lesson_without_any_face_gets_no_person_and_no_error():
    table = assign_tracks(pd.DataFrame([empty(t) for t in range(5)]))
    out = assign_persons(table, {}, embed_by({}))
    assert out.data["person"].eq(-1).all()
    assert judge_lesson(out).persons == []


def child_then_one_person_with(box, child: float) -> pd.DataFrame:
    """The child's face for 40 s, then another track (seconds 50-59, its own look) at ``box``
    whose faces the age model scores ``child``; one person by identity."""
    rows = [row(t, wobble(t, (100, 80, 200, 200)), child=0.97) for t in range(40)]
    rows += [row(t, wobble(t, box), child=child, crop_hash="ffffffff00000000") for t in range(50, 60)]
    table = tracked(rows)
    assert table["track"].nunique() == 2
    table["person"] = 0
    return table


def test_a_surely_adult_track_is_never_the_subject_whoever_it_is_grouped_with():
    # The parent's face happens to look like the child's to the identity model: one person.
    table = child_then_one_person_with((104, 82, 204, 202), child=0.02)
    judged = judge_lesson(table)
    faces = judged.faces
    parent = faces["t"] >= 50
    assert not faces.loc[parent, "subject"].any() and faces.loc[parent, "someone_else"].all()
    assert faces.loc[~parent, "subject"].all()


def test_a_turned_face_is_no_evidence_of_age_so_the_students_turned_seconds_stay_theirs():
    # The student facing the camera, then turned away (a narrow box, 0.6 as wide as tall), which
    # the age model calls an adult; one person by identity. The turned track is not vetoed and
    # stays the subject; the same low calls on a face facing the camera are still vetoed.
    table = child_then_one_person_with((110, 80, 170, 180), child=0.05)
    faces = judge_lesson(table).faces
    turned = faces["t"] >= 50
    assert faces.loc[turned, "subject"].all() and not faces.loc[turned, "someone_else"].any()
    # As before stop 33 (the veto counted every face facing the camera) and before the turned faces were left out.
    faces = judge_lesson(table, PersonOptions(adult_veto_min_aspect=0.0), tracks=TrackOptions(min_face_aspect=0.5)).faces
    assert not faces.loc[turned, "subject"].any()


def test_the_veto_counts_frontal_faces_only_so_a_half_turned_student_stays_the_subject():
    # Half turned (0.72 as wide as tall): facing the camera enough for the person's verdict, but
    # the age model calls such children's faces adult (the squeezed seconds of bench/persons.py:
    # half of them under 0.15), so the veto does not count them. A frontal face with the same
    # calls is still vetoed.
    half_turned = (110, 80, 182, 180)
    faces = judge_lesson(child_then_one_person_with(half_turned, child=0.05)).faces
    later = faces["t"] >= 50
    assert faces.loc[later, "subject"].all()
    faces = judge_lesson(child_then_one_person_with(half_turned, child=0.05), PersonOptions(adult_veto_min_aspect=0.7)).faces
    assert not faces.loc[later, "subject"].any()  # counted as facing, the veto keeps it out
    frontal = (110, 80, 200, 180)
    faces = judge_lesson(child_then_one_person_with(frontal, child=0.05)).faces
    assert not faces.loc[later, "subject"].any() and faces.loc[later, "someone_else"].all()


def test_the_veto_aspect_is_checked():
    with pytest.raises(ValueError, match="adult_veto_min_aspect"):
        PersonOptions(adult_veto_min_aspect=-0.1)


def test_unexplained_body_finds_half_a_head_at_the_edge_joined_to_the_students_body():
    """The mask joins a head half out of the frame to the student's torso (their shoulders touch):
    the part beside the student's band and above the student's chin is someone else's."""
    joined = scene(*MAIN_BODY, (560, 60, 640, 480), (420, 300, 640, 480))  # a head at the edge, its torso meeting the student's
    body = unexplained_body(joined, FACE, (480, 640))
    assert body.share > 0 and body.box[2] == 640 and body.box[3] <= 200
    # the student's own broad shoulders below the chin are not someone else
    assert unexplained_body(scene(*MAIN_BODY, (120, 200, 520, 480)), FACE, (480, 640)).box is None
    # nor a small speck at the edge beside the face
    assert unexplained_body(scene(*MAIN_BODY, (625, 100, 640, 115)), FACE, (480, 640)).box is None


def _merge_pairwise(clusters: list[dict], merge_distance: float) -> None:
    """The plain average-linkage scan (every pair's linkage again after each merge): what
    ``_merge_by_identity`` must agree with."""
    def linkage(a, b):
        x, y = np.stack(a), np.stack(b)
        return float(np.sqrt(np.maximum((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T, 0)).mean())

    while True:
        best, pair = merge_distance, None
        live = [i for i, c in enumerate(clusters) if c["vectors"] and not c["picture"]]
        for n, i in enumerate(live):
            for j in live[n + 1:]:
                if clusters[i]["frames"] & clusters[j]["frames"]:
                    continue
                d = linkage(clusters[i]["vectors"], clusters[j]["vectors"])
                if d < best:
                    best, pair = d, (i, j)
        if pair is None:
            return
        i, j = pair
        clusters[i] = {"tracks": clusters[i]["tracks"] + clusters[j]["tracks"],
                       "vectors": clusters[i]["vectors"] + clusters[j]["vectors"],
                       "frames": clusters[i]["frames"] | clusters[j]["frames"], "picture": False}
        del clusters[j]


@pytest.mark.parametrize("seed", range(6))
def test_identity_merging_takes_the_same_pairs_as_the_pairwise_scan(seed):
    from highlights.stages.persons import _merge_by_identity

    rng = np.random.default_rng(seed)
    people = rng.normal(size=(5, 128))
    people /= np.linalg.norm(people, axis=1, keepdims=True) * 1.6
    clusters = []
    for track in range(40):
        who = people[int(rng.integers(len(people)))]
        count = int(rng.integers(0, 4))  # 0: a track without an embedding stays alone
        vectors = [who + rng.normal(scale=0.02, size=128) for _ in range(count)]
        start = int(rng.integers(0, 300))
        clusters.append({"tracks": [track], "vectors": vectors, "frames": set(range(start, start + int(rng.integers(1, 30)))),
                         "picture": bool(rng.random() < 0.05)})
    expected = [dict(c, vectors=list(c["vectors"]), frames=set(c["frames"])) for c in clusters]
    _merge_pairwise(expected, PersonOptions().merge_distance)
    _merge_by_identity(clusters, PersonOptions())
    assert [c["tracks"] for c in clusters] == [c["tracks"] for c in expected]
    assert [c["frames"] for c in clusters] == [c["frames"] for c in expected]
    assert len(clusters) < 40  # some merged: the comparison is not vacuous


def test_embeddings_are_asked_for_a_few_faces_per_track_spread_over_it():
    from highlights.stages.persons import faces_to_embed

    # Tracks of 2, 5, 30 and 100 faces, each at a place of its own and apart in time.
    rows, start = [], 0
    for place, length in enumerate((2, 5, 30, 100)):
        rows += [row(t, wobble(t, (20 + 120 * place, 80, 110 + 120 * place, 200)), face=0)
                 for t in range(start, start + length)]
        rows += [empty(t) for t in range(start + length, start + length + 5)]
        start += length + 5
    table = tracked(rows)
    faces = table[table["face"] >= 0]
    lengths = faces.groupby("track").size()
    assert sorted(lengths) == [2, 5, 30, 100]
    every = [(int(r.frame), int(r.face)) for r in faces.itertuples()]
    track_of = {(int(r.frame), int(r.face)): int(r.track) for r in faces.itertuples()}
    chosen = faces_to_embed(table, every, PersonOptions())
    per_track = pd.Series([track_of[key] for key in chosen]).value_counts()
    # Up to faces_per_track (4) for every track, whatever its length.
    assert {int(lengths[t]): int(per_track.get(t, 0)) for t in lengths.index} == {2: 2, 5: 4, 30: 4, 100: 4}
    # Spread over the track: its first and last kept faces, and two between.
    long_track = int(lengths.index[lengths == 100][0])
    times = sorted(float(faces.loc[(faces["frame"] == f) & (faces["face"] == n), "t"].iloc[0])
                   for f, n in chosen if track_of[(f, n)] == long_track)
    first = float(faces.loc[faces["track"] == long_track, "t"].min())
    assert [t - first for t in times] == [0.0, 33.0, 66.0, 99.0]
    # Never more than faces_per_track, and only faces whose chips were kept.
    few = faces_to_embed(table, every[::7], PersonOptions(faces_per_track=1))
    assert set(few) <= set(every[::7])
    assert pd.Series([track_of[key] for key in few]).value_counts().max() == 1


def test_the_students_face_cut_by_the_edge_between_their_whole_faces_is_theirs_and_a_parents_beside_is_not():
    # The student at the centre, then leaning out (half the face beyond the left edge: no usable
    # identity, the age model unsure), then back; later a parent's half face at the right edge
    # while the student is in view, and a cut face long after the student was last seen.
    rows = [row(t, wobble(t, (260, 80, 360, 200))) for t in range(0, 20)]
    rows += [row(t, wobble(t, (-60, 80, 40, 200), 3.0), child=0.4, crop_hash="0f0f0f0f0f0f0f0f") for t in range(20, 25)]
    rows += [row(t, wobble(t, (260, 80, 360, 200))) for t in range(25, 60)]
    rows += [row(t, wobble(t, (590, 60, 710, 200), 3.0), face=1, child=0.3) for t in range(50, 55)]
    rows += [empty(t) for t in range(60, 70)]
    rows += [row(t, wobble(t, (-60, 80, 40, 200), 3.0), child=0.4) for t in range(70, 75)]
    table = tracked(rows)
    cut = (table["x1"] < 0) | (table["x2"] > 640)
    table["in_frame"] = np.where(cut, 0.4, 1.0)
    faces = table[table["face"] >= 0]
    half_away = np.eye(128)[7]  # what the identity model makes of half a face: nobody in particular
    vectors = {(int(r.frame), int(r.face)): PARENT if r.face == 1 else half_away if c else CHILD
               for r, c in zip(faces.itertuples(), cut[faces.index])}
    persons = group_persons(table, vectors, PersonOptions())[faces.index]
    student = persons[(faces["t"] < 20)].iat[0]
    leaning = (faces["t"] >= 20) & (faces["t"] < 25)
    assert (persons[leaning] == student).all()
    assert (persons[faces["face"] == 1] != student).all()  # in view with the student: never theirs
    assert (persons[faces["t"] >= 70] != student).all()  # the student last seen 11 s before
    apart = group_persons(table, vectors, PersonOptions(cut_join_gap_s=0.0))[faces.index]
    assert (apart[leaning] != apart[faces["t"] < 20].iat[0]).all()  # without the rule: a person of their own


def test_a_cut_track_stays_apart_when_the_student_is_not_seen_on_both_sides_or_it_is_whole_or_someone_elses():
    half_away = np.eye(128)[7]
    rows = [row(t, wobble(t, (260, 80, 360, 200))) for t in range(0, 20)]
    # cut, right after the student, but the student back only 7 s after it ends
    rows += [row(t, wobble(t, (-60, 80, 40, 200), 3.0), child=0.4, crop_hash="0f0f0f0f0f0f0f0f") for t in range(20, 24)]
    rows += [row(t, wobble(t, (260, 80, 360, 200))) for t in range(30, 50)]
    # a whole face of somebody else in a two-second gap of the student's
    rows += [row(t, wobble(t, (60, 80, 160, 200)), child=0.5, crop_hash="f0f0f0f0f0f0f0f0") for t in range(50, 52)]
    rows += [row(t, wobble(t, (260, 80, 360, 200))) for t in range(52, 91)]
    # the parent beside, then their face cut by the right edge while the student is away 3 s
    rows += [row(t, wobble(t, (450, 60, 570, 200)), face=1, child=0.1) for t in range(75, 86)]
    rows += [row(t, wobble(t, (590, 60, 710, 200), 3.0), face=1, child=0.3, crop_hash="00ff00ff00ff00ff") for t in range(91, 94)]
    rows += [row(t, wobble(t, (260, 80, 360, 200))) for t in range(94, 110)]
    # cut, long after the student's last face but just before their return
    rows += [row(t, wobble(t, (-60, 80, 40, 200), 3.0), child=0.4, crop_hash="0ff00ff00ff00ff0") for t in range(116, 119)]
    rows += [row(t, wobble(t, (260, 80, 360, 200))) for t in range(120, 130)]
    table = tracked(rows)
    cut = (table["x1"] < 0) | (table["x2"] > 640)
    table["in_frame"] = np.where(cut, 0.4, 1.0)
    faces = table[table["face"] >= 0]
    parent = (faces["face"] == 1).to_numpy()
    gap_face = ((faces["t"] >= 50) & (faces["t"] < 52)).to_numpy()
    vectors = {(int(r.frame), int(r.face)): PARENT if p else np.eye(128)[9] if g else half_away if c else CHILD
               for r, p, g, c in zip(faces.itertuples(), parent, gap_face, cut[faces.index])}
    assert faces.loc[faces["t"].between(91, 93), "track"].nunique() == 1
    assert faces.loc[faces["t"].between(91, 93), "track"].iat[0] not in set(faces.loc[faces["t"].between(75, 85) & (faces["face"] == 1), "track"])
    persons = group_persons(table, vectors, PersonOptions())[faces.index]
    student = persons[faces["t"] < 20].iat[0]
    assert (persons[faces["t"].between(20, 23)] != student).all()  # the student not back within 3 s
    assert (persons[faces["t"].between(116, 118)] != student).all()  # nor seen within 3 s before
    assert (persons[gap_face] != student).all()  # whole: its identity says who it is
    parents = persons[parent]
    assert parents.nunique() == 1 and parents.iat[0] != student  # the parent's cut face stays theirs
