"""Persons: who is in the lesson, followed across the whole of it.

Face tracks (:mod:`highlights.stages.tracks`) follow a face for as long as the detector keeps it;
a person is all the tracks of one human being, across gaps, lighting and head turns. Three facts
about online lessons drive this stage:

* the student is on camera nearly the whole lesson, while a parent is there for minutes;
* a parent is often present only "by a shoulder or an elbow": no face at all;
* face detectors take pictures on the wall (a poster, a family photo, a drawing) for faces.

So, after the tracks are linked:

1. **Pictures.** A track that neither moves nor changes for a long time (its box stays put, its
   perceptual hash and smile stay the same) is a picture (:func:`picture_tracks`); tracks of one
   picture are one "person" of kind ``picture``, never counted, never picked.
2. **Identities.** A few faces spread over every other track carry a face-identity embedding
   (dlib's 128-D descriptor, :mod:`highlights.models.embedding`), computed during scoring from
   aligned face chips and dropped when the lesson's run ends: biometric data never leaves memory.
   Tracks are merged into persons by average-linkage clustering of those embeddings
   (:func:`group_persons`), never two tracks seen in the same frame; a person who looks like the
   one seen longest and was kept apart from them only by a few tracks seen together with theirs
   joins them without those tracks; a track without an embedding joins the person whose face was
   where it is just before or after, or stays alone.
3. **Verdicts.** Each person is judged child or adult from all their faces, the clearest counting
   most (:func:`judge_persons`): a clear minute decides the dim seconds. A person judged adult is
   an adult in every frame they are in.
4. **The student.** In a child's lesson the student is the child person seen longest, when they
   account for at least ``student_share`` of the seconds in which a child is seen (a sibling is
   there for minutes); the GIF then shows the student only, and anyone else in view keeps a frame
   out. Where no child dominates (identity could not follow one child, or several children take
   turns) every person judged a child is the subject, as before persons. In an adult student's
   lesson the student is the person seen longest.
5. **Bodies without a face.** A whole-frame person model marks, per sampled frame, the person
   region that no face in the frame explains (a shoulder or an arm at the edge, someone turned
   away): ``body_share`` and its box in the face table. :func:`other_person_frames` decides,
   with the student's usual place, which of those are someone else.

The stage's values are the face table's ``person`` column (stored in ``scores.csv``) and, judged
in memory, the columns ``person_kind``, ``person_child_prob``, ``student``, ``picture`` and
``other_body`` (:data:`highlights.core.faces.JUDGED_COLUMNS`), plus :class:`Person` values for the
report and the analytics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from highlights.core.boxes import box_iou
from highlights.core.faces import FaceTable
from highlights.stages.tracks import TrackOptions, confident_faces, facing, judge_faces, phash_distance

PersonKind = Literal["child", "adult", "undecided", "picture"]
FaceKey = tuple[int, int]
"""A face of the table: (frame index, face number)."""


@dataclass(frozen=True)
class PersonOptions:
    """How tracks are grouped into persons and how a person is judged (``[selection.persons]``).

    Measured on the tuning lessons of ``bench/persons.py`` (never on its report seeds):

    identity, bodies, second_detector: True - the three models (each can be switched off).

    merge_distance: 0.62 - two groups of tracks whose embeddings lie closer (Euclidean, average
        linkage) are one person. On the tuning lessons (one child photographed across years and
        webcam conditions) the child's groups lay 0.53-0.63 apart, a sibling 0.64-0.69 from them,
        the parent and a poster 0.69-0.80. Pairs of faces are noisier than groups: on FG-NET
        another child matched a child's single photo in 38% of pairs at 0.6, an adult in 0.55%.
    reassign_margin: 0.03 - a track moves to another person when it is this much closer to them
        than to the rest of its own.
    faces_per_track: 4 - embeddings per track at most, spread evenly over the faces whose chips
        were kept (a descriptor costs about 7 ms). On the tuning lessons one embedding for a track
        under 10 seconds (two under a minute, the rule when a descriptor cost 0.1 CPU-s) let one
        noisy face decide where a short track went: child recall 0.81 -> 0.85 with four.
    conflict_max_share: 0.25 - a person who looks like the person seen longest (within
        ``merge_distance``) but was kept apart by tracks seen in the same frames as theirs joins
        them without those tracks, when those are at most this share of their seconds
        (:func:`_join_the_longest`). On the tuning lessons the student had been split in two
        halves of 100-190 seconds each in three of seven lessons.
    attach_gap_s: 20 s and attach_shift: 1.0 face size - a track without an embedding joins the
        person whose face was within this time and this distance of its own (the same place).
    picture_min_faces: 60 - a face seen at one place for less than a minute of sampled seconds is
        never called a picture.
    picture_place_iou: 0.6 - tracks whose typical boxes overlap this much are one place.
    picture_max_size_cv: 0.06, picture_max_shift: 0.08 face sizes, picture_max_step: 0.025 face
        sizes, picture_max_hash_bits: 12 - a picture's size varies by at most 6% (robust: 1.4826
        times the median absolute deviation over the median, so that a few dim or half-hidden
        seconds, whose boxes the detector draws larger or smaller, do not count), its centre by
        0.08 face sizes (median absolute deviation), it moves 0.025 face sizes a second at most
        (the camera's drift), and its look hardly changes: the median perceptual-hash distance
        between its crops across the whole time it is seen is at most 12 bits. On the tuning
        lessons (persons seeds 20-26) posters measured 0.017-0.034 in size, 0.035-0.053 in
        centre, 0.014-0.020 per second and 6-12 bits; the places of the student, the parents and
        a sibling seen for 20 seconds or more 14-32 bits (a live face turns, leans and changes
        its expression). The size was a standard deviation until a report lesson's poster
        measured 0.074 by it (0.039 robust) and was taken for a face: its smile then kept every
        frame out of the GIF.
    picture_match_distance: 0.4 - another person whose faces are this close to a picture's (a
        photo's embedding hardly varies) is the same picture, seen at another place or size (the
        camera turned).
    clear_min_px: 48 px, clear_brightness: (60, 200), clear_min_sharpness: 60, clear_weight 1.0,
        dim_weight: 0.15 - a face is "clear" when it is large, lit and sharp, and counts fully;
        other confident faces count with ``dim_weight``: one clear minute decides the dim seconds.
    child_threshold: 0.85 - on the person's weighted mean child probability (as a logit mean), as
        for tracks.
    adult_veto: 0.15 - a track whose faces' mean child probability is under this is surely an
        adult's: it is never the GIF's subject whatever its person's verdict, and keeps its frames
        out of the GIF (privacy first: the identity model can join a parent's track to the child,
        and a track the age model is that sure of is not worth the risk). Over the 17 bench
        lessons it covers two thirds of the parents' faces and costs the student 39 of 4,095
        faces (10 of 1,374 smiling ones); it was raised from 0.1 on three clear faces after a
        parent's smiling face (mean 0.10) reached a report lesson's GIF. Used as a cannot-link in
        the grouping, a sure age cost the child a third of its seconds on the tuning lessons (a
        misjudged track of the child seeded a second person), so it is only a veto.
    adult_veto_min_aspect: 0.76 - the veto counts a track's frontal faces only, at least this wide
        for their height (the student's faces facing the camera: 0.76-0.80 at the 10th percentile
        in every condition of the tuning lessons). Half-turned faces (0.70-0.76) are still facing
        enough for the person's verdict, but the age model calls a child's adult: half of the
        student's squeezed faces of ``bench/persons.py`` scored under 0.15, and the veto took 42
        of the student's faces out of the tuning lessons' GIF subject. Stop 33, 0.70 -> 0.76:
        the student's faces vetoed 42 -> 21 (report 33 -> 12), parents' faces covered by the
        veto 144 -> 122 of 265 (report 64 -> 54 of 135; no parent's face was in the student's
        person in any of these lessons), tuning persons child recall 0.930 -> 0.940 (squeezed
        0.89 -> 0.95), webcam 0.878 -> 0.890, report persons 0.888 -> 0.905, no pick with an
        adult added.
    child_share: 0.15 and child_min_faces: 5 - a person is also a child when at least this share of
        their confident faces (and this many) are each judged a child by the age model (its
        per-face threshold): the model calls a child's face an adult far more often in a dim,
        turned or blurred second than an adult's a child (on the tuning lessons the student's
        faces were judged child 21-76% of the time, the parents' 0%; adults' faces called child
        about 1% on UTKFace validation).
    student_share: 0.5 - the child seen longest is the student when they are at least this share
        of the seconds with a child in view.
    body_min_share: 0.01 - a person region no face explains counts from 1% of the frame.
    whole_min_in_frame: 0.95 - a face with at least this share of its box inside the frame is whole:
        it can be clear (below), and a track of which half the faces are not is a cut face's.
    cut_join_gap_s: 3 s - a track of a face cut by the frame's edge joins the person seen longest
        when that person's face was seen this close before it starts and after it ends and never
        with it (:func:`_join_cut_tracks`; 0 turns the rule off). On the tuning lessons (persons 20-26) the student's
        seconds at the edge made persons of their own, judged adult; with the rule (offline, the
        job's own tables) child recall 0.905 -> 0.910, child presence error 0.033 -> 0.029, no
        face of an adult, a sibling or the poster more in the GIF's subject, webcam and plain
        lessons unchanged; at 5 s two of the poster's faces joined the student. In the job, with
        the guard that leaves a cut track with the whole faces its identity put it with (a
        parent's, in principle; on the tuning lessons it kept a few of the student's cut faces
        with a dim one of theirs): tuning persons recall 0.905 -> 0.907, child presence error
        0.033 -> 0.031 (0.910 / 0.029 without the guard); webcam and plain seeds 10-14 and the
        report lessons unchanged (their edge seconds are lost to the detectors: 44% of the cut
        faces found).
    body_follow_s: 5 s - a person region in a frame without the student's face and without anyone
        else's is the student's own (leaning out of the picture) when the student's face was seen
        this close in time. On the tuning lessons (persons 20-26) the seconds with the student's
        face cut by the edge had their shoulder flagged as someone else's in 41 of 183 (an adult
        reported with none in view); the lesson-wide place of the student missed them (the
        student leans out to the edge).
    """

    identity: bool = True
    """Group tracks into persons by face identity (dlib's embedding); off: one person per track."""
    bodies: bool = True
    """Look for people without a face with the whole-frame person model."""
    second_detector: bool = True
    """Add BlazeFace's faces where MTCNN finds none (dim, backlit, cut by the frame's edge)."""
    merge_distance: float = 0.62
    reassign_margin: float = 0.03
    faces_per_track: int = 4
    attach_gap_s: float = 20.0
    attach_shift: float = 1.0
    picture_min_faces: int = 60
    picture_place_iou: float = 0.6
    picture_max_size_cv: float = 0.06
    picture_max_shift: float = 0.08
    picture_max_step: float = 0.025
    picture_max_hash_bits: float = 12.0
    picture_match_distance: float = 0.4
    clear_min_px: float = 48.0
    clear_brightness: tuple[float, float] = (60.0, 200.0)
    clear_min_sharpness: float = 60.0
    dim_weight: float = 0.15
    child_threshold: float = 0.85
    adult_veto: float = 0.15
    adult_veto_min_aspect: float = 0.76
    child_share: float = 0.15
    child_min_faces: int = 5
    student_share: float = 0.5
    body_min_share: float = 0.01
    body_follow_s: float = 5.0
    conflict_max_share: float = 0.25
    cut_join_gap_s: float = 3.0
    whole_min_in_frame: float = 0.95

    def __post_init__(self) -> None:
        if not 0.0 < self.child_threshold < 1.0:
            raise ValueError("child_threshold must be in (0, 1)")
        if not 0.0 <= self.adult_veto < 1.0:
            raise ValueError("adult_veto must be in [0, 1)")
        if not 0.0 <= self.adult_veto_min_aspect <= 2.0:
            raise ValueError("adult_veto_min_aspect must be in [0, 2] (a box's width over its height)")
        if self.merge_distance <= 0 or self.faces_per_track < 1:
            raise ValueError("merge_distance > 0 and faces_per_track >= 1 needed")
        if not 0.0 <= self.dim_weight <= 1.0:
            raise ValueError("dim_weight must be in [0, 1]")
        if not self.cut_join_gap_s >= 0 or not 0.0 < self.whole_min_in_frame <= 1.0:
            raise ValueError("cut_join_gap_s >= 0 and whole_min_in_frame in (0, 1] needed")


@dataclass(frozen=True)
class Person:
    """One person of the lesson (never linked to any other lesson: ids are 0, 1, ... per lesson)."""

    id: int
    tracks: tuple[int, ...]
    seconds: int
    """Sampled seconds with this person's face in view."""
    first_s: float
    last_s: float
    kind: PersonKind
    child_prob: float
    """The evidence: the weighted mean child logit of their confident faces, as a probability
    (NaN for a picture or when no face was confident)."""
    clear_faces: int
    """Faces counted at full weight (large, lit, sharp, surely detected)."""
    dim_faces: int
    """Confident faces counted at ``dim_weight``."""
    student: bool = False

    @property
    def is_child(self) -> bool:
        return self.kind == "child"


# --------------------------------------------------------------------------- pictures


def picture_tracks(table: FaceTable | pd.DataFrame, options: PersonOptions | None = None) -> set[int]:
    """The tracks of pictures: a face that stays at one place, at one size, without moving or
    changing expression, for at least ``picture_min_faces`` sampled seconds.

    Tracks are grouped by place first (their median boxes overlap by ``picture_place_iou``, and
    they are never in view together: a poster's track is cut each time someone passes in front of
    it or the camera turns away), then each place is judged on all its faces: the spread of the
    box's size (a robust coefficient of variation) and centre (median absolute deviation, in face sizes),
    the median move between consecutive seconds, and the spread of the smile (90th - 10th
    percentile). A live face, even one sitting still, moves and changes over a minute."""
    o = options or PersonOptions()
    frame = table.data if isinstance(table, FaceTable) else table
    faces = frame[(frame["face"] >= 0) & (frame["track"] >= 0)]
    found: set[int] = set()
    for group in _place_groups(faces, o.picture_place_iou):
        rows = faces[faces["track"].isin(group)].sort_values("t")
        if len(rows) < o.picture_min_faces:
            continue
        size = np.maximum(rows["x2"] - rows["x1"], rows["y2"] - rows["y1"]).to_numpy(dtype=float)
        typical = float(np.median(size))
        if not typical > 0:
            continue
        cx = ((rows["x1"] + rows["x2"]) / 2).to_numpy(dtype=float)
        cy = ((rows["y1"] + rows["y2"]) / 2).to_numpy(dtype=float)
        times = rows["t"].to_numpy(dtype=float)
        consecutive = np.diff(times) <= 1.01
        steps = (np.hypot(np.diff(cx), np.diff(cy))[consecutive] / typical) if len(times) > 1 else np.array([])
        if (1.4826 * _mad(size) / typical <= o.picture_max_size_cv
                and max(_mad(cx), _mad(cy)) / typical <= o.picture_max_shift
                and len(steps) and float(np.median(steps)) <= o.picture_max_step
                and _appearance_change(rows) <= o.picture_max_hash_bits):
            found |= set(group)
    return found


def _place_groups(faces: pd.DataFrame, min_iou: float) -> list[list[int]]:
    """Tracks grouped by place: the longest first, each joining the first group whose typical box
    it overlaps by ``min_iou`` and which it never shares a frame with."""
    tracks = []
    for track, rows in faces.groupby("track"):
        tracks.append((int(track), len(rows), rows[["x1", "y1", "x2", "y2"]].median().to_numpy(dtype=float),
                       set(rows["frame"].astype(int))))
    groups: list[dict] = []
    for track, _, box, frames in sorted(tracks, key=lambda item: (-item[1], item[0])):
        for group in groups:
            if box_iou(box, group["box"])[0, 0] >= min_iou and not frames & group["frames"]:
                group["tracks"].append(track)
                group["frames"] |= frames
                break
        else:
            groups.append({"box": box, "tracks": [track], "frames": set(frames)})
    return [group["tracks"] for group in groups]


def _appearance_change(rows: pd.DataFrame, samples: int = 40) -> float:
    """How much a face's look changes over its whole time in view: the median perceptual-hash
    distance (bits of 64) between ``samples`` of its crops spread over that time. Light and noise
    move a photo's hash by a few bits; expressions, head turns and leaning move a live face's
    by 15 or more."""
    hashes = [h for h in rows["crop_hash"] if isinstance(h, str) and h]
    if len(hashes) < 2:
        return math.inf
    chosen = [hashes[i] for i in np.linspace(0, len(hashes) - 1, min(samples, len(hashes))).astype(int)]
    return float(np.median([phash_distance(a, b) for i, a in enumerate(chosen) for b in chosen[i + 1:]]))


def _mad(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(np.median(np.abs(values - np.median(values)))) if len(values) else math.inf


# --------------------------------------------------------------------------- which faces to embed


def faces_to_embed(table: FaceTable | pd.DataFrame, available: Sequence[FaceKey],
                   options: PersonOptions | None = None, skip_tracks: set[int] | None = None) -> list[FaceKey]:
    """Up to ``faces_per_track`` faces of each track to embed, among those whose chips were kept
    while scoring (``available``), spread evenly over the track: a track's looks (a turn, a change
    of light) matter more to its identity than its sharpest faces, which are alike."""
    o = options or PersonOptions()
    frame = table.data if isinstance(table, FaceTable) else table
    keys = set(available)
    faces = frame[(frame["face"] >= 0) & (frame["track"] >= 0)]
    if skip_tracks:
        faces = faces[~faces["track"].isin(skip_tracks)]
    chosen: list[FaceKey] = []
    for _, rows in faces.sort_values(["t", "face"], kind="stable").groupby("track", sort=True):
        kept = [(int(f), int(n)) for f, n in zip(rows["frame"], rows["face"]) if (int(f), int(n)) in keys]
        if len(kept) > o.faces_per_track:
            kept = [kept[i] for i in np.linspace(0, len(kept) - 1, o.faces_per_track).round().astype(int)]
        chosen += kept
    return chosen


# --------------------------------------------------------------------------- grouping


def surely_adult_tracks(faces: pd.DataFrame, options: PersonOptions | None = None,
                        tracks: TrackOptions | None = None) -> set[int]:
    """The tracks whose faces' mean child probability is under :attr:`PersonOptions.adult_veto`,
    over their frontal faces: facing the camera (:func:`~highlights.stages.tracks.facing`) and
    at least :attr:`PersonOptions.adult_veto_min_aspect` as wide as tall (a track of turned faces
    only is vetoed by none)."""
    o = options or PersonOptions()
    tracks = tracks or TrackOptions()
    faces = faces[(faces["face"] >= 0) & (faces["track"] >= 0)]
    frontal = replace(tracks, min_face_aspect=max(tracks.min_face_aspect, o.adult_veto_min_aspect))
    faces = faces[facing(faces, frontal)]
    means = faces.groupby("track")["child_prob"].mean()
    return {int(track) for track, mean in means.items() if mean < o.adult_veto}


def group_persons(table: FaceTable | pd.DataFrame, embeddings: Mapping[FaceKey, np.ndarray],
                  options: PersonOptions | None = None, pictures: set[int] | None = None) -> pd.Series:
    """A person id for every row (-1 without a face): tracks clustered by their faces'
    embeddings (average linkage, ``merge_distance``), never two tracks that share a frame;
    pictures grouped by place; tracks without an embedding attached by place and time.

    Ids are numbered 0, 1, ... by first appearance. Deterministic."""
    o = options or PersonOptions()
    frame = table.data if isinstance(table, FaceTable) else table
    pictures = pictures if pictures is not None else picture_tracks(frame, o)
    out = pd.Series(-1, index=frame.index, dtype="int64")
    faces = frame[(frame["face"] >= 0) & (frame["track"] >= 0)]
    if faces.empty:
        return out
    tracks = sorted(int(t) for t in faces["track"].unique())
    # One pass over the rows (not a scan of the table per track and per embedding).
    frames_of = {int(t): set(rows.astype(int)) for t, rows in faces.groupby("track")["frame"]}
    track_of: dict[FaceKey, int] = {}
    for f, n, t in zip(faces["frame"].to_numpy(), faces["face"].to_numpy(), faces["track"].to_numpy()):
        track_of.setdefault((int(f), int(n)), int(t))
    vectors: dict[int, list[np.ndarray]] = {t: [] for t in tracks}
    for (f, n), vector in embeddings.items():
        if (int(f), int(n)) in track_of:
            vectors[track_of[(int(f), int(n))]].append(np.asarray(vector, dtype=np.float64))

    # Each cluster: its tracks, its vectors, the frames it is seen in. Pictures and tracks
    # without vectors start alone. Sure ages do not keep tracks apart here: the identity model
    # is more reliable than the age model on a dim face, and the GIF veto on a surely adult
    # track (judge_lesson) keeps the privacy promise whichever person it ends up in.
    clusters: list[dict] = [{"tracks": [t], "vectors": vectors[t], "frames": set(frames_of[t]),
                             "picture": t in pictures} for t in tracks]
    _merge_by_identity(clusters, o)
    _reassign_tracks(clusters, vectors, frames_of, o)
    _join_the_longest(clusters, vectors, frames_of, o)
    _merge_pictures(clusters, faces)
    _absorb_into_pictures(clusters, o)
    _attach_without_identity(clusters, faces, o)
    _join_cut_tracks(clusters, faces, vectors, frames_of, o)

    person_of: dict[int, int] = {}
    first_seen = faces.groupby("track")["t"].min()
    order = sorted(range(len(clusters)), key=lambda i: min(float(first_seen[t]) for t in clusters[i]["tracks"]))
    for number, index in enumerate(order):
        for track in clusters[index]["tracks"]:
            person_of[track] = number
    out.loc[faces.index] = faces["track"].map(person_of).astype("int64").to_numpy()
    return out


def _linkage(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Average distance between two groups of embeddings."""
    if not a or not b:
        return math.inf
    x, y = np.stack(a), np.stack(b)
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
    return float(np.sqrt(np.maximum(d2, 0)).mean())


def _merge_by_identity(clusters: list[dict], o: PersonOptions) -> None:
    """Average-linkage clustering: merge the closest pair under ``merge_distance`` that never
    shares a frame, until none is left.

    The distances between every two embeddings are computed once and each pair of clusters keeps
    the sum of its distances (a merged cluster's sums are its parts' added), so a merge costs a
    row of sums instead of every pair's linkage again: on a 45-minute webcam lesson (430
    embeddings over 320 tracks) this was 83 of the run's 250 CPU-seconds. The pair taken is the
    one the pairwise scan would take (the closest, the first in list order on a tie)."""
    live = [i for i, c in enumerate(clusters) if c["vectors"] and not c["picture"]]
    if len(live) < 2:
        return
    groups = [np.stack(clusters[i]["vectors"]) for i in live]
    counts = np.array([len(g) for g in groups], np.float64)
    every = np.concatenate(groups)
    d2 = (every * every).sum(1)[:, None] + (every * every).sum(1)[None, :] - 2 * every @ every.T
    starts = np.concatenate([[0], np.cumsum(counts[:-1])]).astype(np.intp)
    sums = np.add.reduceat(np.add.reduceat(np.sqrt(np.maximum(d2, 0)), starts, axis=0), starts, axis=1)
    frames = [clusters[i]["frames"] for i in live]
    m = len(live)
    apart = np.array([[a != b and frames[a].isdisjoint(frames[b]) for b in range(m)] for a in range(m)], bool)
    alive = np.ones(m, bool)
    upper = np.triu(np.ones((m, m), bool), 1)
    merged = {a: clusters[i] for a, i in enumerate(live)}
    while True:
        usable = upper & apart & alive[:, None] & alive[None, :]
        linkage = np.where(usable, sums / np.outer(counts, counts), np.inf)
        flat = int(np.argmin(linkage))  # row-major: the first closest pair, as the scan finds it
        a, b = divmod(flat, m)
        if not linkage[a, b] < o.merge_distance:
            break
        sums[a, :] += sums[b, :]
        sums[:, a] += sums[:, b]
        counts[a] += counts[b]
        apart[a, :] &= apart[b, :]
        apart[:, a] &= apart[:, b]
        alive[b] = False
        first, second = merged[a], merged.pop(b)
        merged[a] = {"tracks": first["tracks"] + second["tracks"], "vectors": first["vectors"] + second["vectors"],
                     "frames": first["frames"] | second["frames"], "picture": False}
    gone = {live[a] for a in range(m) if not alive[a]}
    replaced = {live[a]: cluster for a, cluster in merged.items()}
    clusters[:] = [replaced.get(i, c) for i, c in enumerate(clusters) if i not in gone]


def _rebuild(cluster: dict, vectors: Mapping[int, list[np.ndarray]], frames_of: Mapping[int, set[int]]) -> None:
    """A cluster's embeddings and frames again from its tracks, after tracks moved in or out (new
    lists: a cluster of one track must not extend that track's own list of embeddings)."""
    cluster["vectors"] = [v for track in cluster["tracks"] for v in vectors[track]]
    cluster["frames"] = set().union(*(frames_of[track] for track in cluster["tracks"]))


def _live(clusters: list[dict]) -> list[dict]:
    """The persons the identities can compare: with embeddings, not pictures."""
    return [c for c in clusters if c["vectors"] and not c["picture"]]


def _longest(clusters: list[dict]) -> tuple[list[dict], dict | None]:
    """The live persons (:func:`_live`) and the one seen longest, the student as far as the
    grouping can tell (None with fewer than two live persons)."""
    live = _live(clusters)
    return live, (max(live, key=lambda c: len(c["frames"])) if len(live) >= 2 else None)


def _join_the_longest(clusters: list[dict], vectors: Mapping[int, list[np.ndarray]],
                      frames_of: Mapping[int, set[int]], o: PersonOptions) -> None:
    """Join to the person seen longest (the student, on camera nearly all lesson) each other
    person who looks the same but was kept apart only by a few tracks seen in the same frames as
    the longest's: those tracks (a sibling beside the student, a track the tracker carried from
    one person onto the other) stay apart, the rest joins.

    Average linkage with "never in the same frame" grows two groups around the two sides of such
    a conflict, and every later track of the student joins whichever is nearer: the student
    ends up split in two about evenly. The longest keeps its own tracks (which of two faces seen
    together is the student, the identity model cannot tell a sibling's from the student's
    reliably: letting it choose put the sibling in the student 2.6 times as often on the tuning
    lessons), and a person gives up at most ``conflict_max_share`` of their seconds this way."""
    live, longest = _longest(clusters)
    if longest is None:
        return
    for other in sorted(live, key=lambda c: -len(c["frames"])):
        if other is longest or _linkage(longest["vectors"], other["vectors"]) >= o.merge_distance:
            continue
        apart = [t for t in other["tracks"] if not frames_of[t].isdisjoint(longest["frames"])]
        rest = [t for t in other["tracks"] if t not in apart]
        rest_vectors = [v for t in rest for v in vectors[t]]
        apart_frames = set().union(*(frames_of[t] for t in apart)) if apart else set()
        if not rest_vectors or len(apart_frames) > o.conflict_max_share * len(other["frames"]) or \
                _linkage(longest["vectors"], rest_vectors) >= o.merge_distance:
            continue
        longest["tracks"] += rest
        other["tracks"] = apart
        _rebuild(longest, vectors, frames_of)
        _rebuild(other, vectors, frames_of)
    clusters[:] = [c for c in clusters if c["tracks"]]


def _join_cut_tracks(clusters: list[dict], faces: pd.DataFrame, vectors: Mapping[int, list[np.ndarray]],
                     frames_of: Mapping[int, set[int]], o: PersonOptions) -> None:
    """A track half or more of whose faces are cut by the frame's edge joins the person seen
    longest (the student) when it fills a gap in their presence: never in view with them, their
    face seen within ``cut_join_gap_s`` before it starts and after it ends, and not more like
    the whole faces of its own person than like them (when there are embeddings to tell; the
    student's cut tracks of several moments resemble each other, half faces all, and go together).

    Half a face has no usable identity (its embedding is of the half the aligner guessed) and the
    age model calls a cut child's face an adult's about as often as not, so the student leaning
    out of the picture became a person of their own, judged adult: a parent reported where there
    was none, and the student missed. A parent's half face beside the student is in view with
    them and stays apart, as does a cut track the identities put with a parent it resembles more;
    pictures are settled first and keep theirs; a surely adult track is still kept out of the GIF
    by the veto. It runs after every other grouping step and moves single tracks only: the rest of
    a person it takes a cut track from stays as the identities grouped it."""
    if not o.cut_join_gap_s > 0 or "in_frame" not in faces.columns:
        return
    _, longest = _longest(clusters)
    if longest is None:
        return
    cut_share = (faces["in_frame"].fillna(1.0) < o.whole_min_in_frame).groupby(faces["track"]).mean()
    cut = {int(track) for track, share in cut_share.items() if share >= 0.5}
    times = faces.groupby("frame")["t"].first()
    seen = np.sort(times.loc[sorted(longest["frames"])].to_numpy(dtype=float))
    span = faces.groupby("track")["t"].agg(["min", "max"])
    for cluster in clusters:
        if cluster is longest or cluster["picture"]:
            continue
        for track in list(cluster["tracks"]):
            if track not in cut or not frames_of[track].isdisjoint(longest["frames"]):
                continue
            start, end = float(span.loc[track, "min"]), float(span.loc[track, "max"])
            before, after = seen[seen < start], seen[seen > end]
            if not (len(before) and start - before[-1] <= o.cut_join_gap_s
                    and len(after) and after[0] - end <= o.cut_join_gap_s):
                continue
            whole = [v for t in cluster["tracks"] if t not in cut for v in vectors[t]]
            if vectors[track] and whole and _linkage(vectors[track], longest["vectors"]) >= _linkage(vectors[track], whole):
                continue  # the identities put it with someone seen whole, whom it resembles more
            cluster["tracks"].remove(track)
            longest["tracks"].append(track)
            _rebuild(cluster, vectors, frames_of)
            _rebuild(longest, vectors, frames_of)
    clusters[:] = [c for c in clusters if c["tracks"]]


def _reassign_tracks(clusters: list[dict], vectors: Mapping[int, list[np.ndarray]],
                     frames_of: Mapping[int, set[int]], o: PersonOptions, rounds: int = 3) -> None:
    """Move a track to the person it is closer to than to its own (by ``reassign_margin``), when
    that person is never in view with it: merging closest pairs first can leave a track with a
    look-alike (a sibling) whose tracks happened to join it first."""
    for _ in range(rounds):
        moved = False
        live = _live(clusters)
        for cluster in live:
            for track in list(cluster["tracks"]):
                mine = vectors[track]
                rest = [v for other in cluster["tracks"] if other != track for v in vectors[other]]
                if not mine or not rest:
                    continue
                own = _linkage(mine, rest)
                best, target = min(own - o.reassign_margin, o.merge_distance), None
                for other in live:
                    if other is cluster or frames_of[track] & other["frames"]:
                        continue
                    d = _linkage(mine, other["vectors"])
                    if d < best:
                        best, target = d, other
                if target is not None:
                    cluster["tracks"].remove(track)
                    target["tracks"].append(track)
                    _rebuild(cluster, vectors, frames_of)
                    _rebuild(target, vectors, frames_of)
                    moved = True
        clusters[:] = [c for c in clusters if c["tracks"]]
        if not moved:
            return


def _absorb_into_pictures(clusters: list[dict], o: PersonOptions) -> None:
    """A person whose faces are within ``picture_match_distance`` of a picture's is that picture,
    seen elsewhere or at another size (the camera turned): a photo's embedding hardly varies."""
    pictures = [c for c in clusters if c["picture"] and c["vectors"]]
    for cluster in list(clusters):
        if cluster["picture"] or not cluster["vectors"]:
            continue
        for picture in pictures:
            if not cluster["frames"] & picture["frames"] and \
                    _linkage(cluster["vectors"], picture["vectors"]) < o.picture_match_distance:
                picture["tracks"] += cluster["tracks"]
                picture["frames"] |= cluster["frames"]
                picture["vectors"] += cluster["vectors"]
                clusters.remove(cluster)
                break


def _merge_pictures(clusters: list[dict], faces: pd.DataFrame) -> None:
    """Tracks of one picture (cut by someone passing in front of it) are one: the same place."""
    pictures = [i for i, c in enumerate(clusters) if c["picture"]]
    boxes = {i: _median_box(faces, clusters[i]["tracks"]) for i in pictures}
    merged = True
    while merged:
        merged = False
        for n, i in enumerate(pictures):
            for j in pictures[n + 1:]:
                if box_iou(boxes[i], boxes[j])[0, 0] >= 0.5 and not clusters[i]["frames"] & clusters[j]["frames"]:
                    clusters[i]["tracks"] += clusters[j]["tracks"]
                    clusters[i]["frames"] |= clusters[j]["frames"]
                    clusters[i]["vectors"] += clusters[j]["vectors"]
                    del clusters[j]
                    pictures = [p if p < j else p - 1 for p in pictures if p != j]
                    boxes = {p: _median_box(faces, clusters[p]["tracks"]) for p in pictures}
                    merged = True
                    break
            if merged:
                break


def _median_box(faces: pd.DataFrame, tracks: list[int]) -> np.ndarray:
    rows = faces[faces["track"].isin(tracks)]
    return rows[["x1", "y1", "x2", "y2"]].median().to_numpy(dtype=float)


def _attach_without_identity(clusters: list[dict], faces: pd.DataFrame, o: PersonOptions) -> None:
    """A track without an embedding joins the person whose face was where its own is, just
    before it starts or just after it ends (and who is not in view at the same time)."""
    by_track = {int(t): rows.sort_values("t") for t, rows in faces.groupby("track")}
    changed = True
    while changed:
        changed = False
        for i, cluster in enumerate(clusters):
            if cluster["vectors"] or cluster["picture"] or len(cluster["tracks"]) != 1:
                continue
            rows = by_track[cluster["tracks"][0]]
            best, target = math.inf, None
            for j, other in enumerate(clusters):
                if j == i or cluster["frames"] & other["frames"]:
                    continue
                if other["picture"]:  # a picture's fragment: at its place, whenever seen
                    box = rows[["x1", "y1", "x2", "y2"]].median().to_numpy(dtype=float)
                    if box_iou(box, _median_box(faces, other["tracks"]))[0, 0] >= o.picture_place_iou:
                        best, target = 0.0, j
                    continue
                gap = _place_gap(rows, [by_track[t] for t in other["tracks"]], o)
                if gap < best:
                    best, target = gap, j
            if target is not None:
                clusters[target]["tracks"] += cluster["tracks"]
                clusters[target]["frames"] |= cluster["frames"]
                del clusters[i]
                changed = True
                break


def _place_gap(rows: pd.DataFrame, others: list[pd.DataFrame], o: PersonOptions) -> float:
    """How far (seconds) the nearest face of ``others`` in time lies from ``rows``' ends, when it
    is within ``attach_gap_s`` and ``attach_shift`` face sizes of them; inf otherwise."""
    best = math.inf
    ends = ((float(rows["t"].iat[0]), rows.iloc[0]), (float(rows["t"].iat[-1]), rows.iloc[-1]))
    for other in others:
        times = other["t"].to_numpy(dtype=float)
        for t, face in ends:
            k = int(np.argmin(np.abs(times - t)))
            gap = abs(times[k] - t)
            if gap > o.attach_gap_s:
                continue
            near = other.iloc[k]
            size = max(face["x2"] - face["x1"], face["y2"] - face["y1"], 1.0)
            shift = math.hypot((face["x1"] + face["x2"] - near["x1"] - near["x2"]) / 2,
                               (face["y1"] + face["y2"] - near["y1"] - near["y2"]) / 2) / size
            if shift <= o.attach_shift:
                best = min(best, gap)
    return best


# --------------------------------------------------------------------------- verdicts


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def clear_faces(faces: pd.DataFrame, o: PersonOptions, tracks: TrackOptions) -> pd.Series:
    """The faces whose child probability counts fully: confident evidence
    (:func:`~highlights.stages.tracks.confident_faces`) that is also large, lit, sharp and whole."""
    side = np.maximum(faces["x2"] - faces["x1"], faces["y2"] - faces["y1"])
    lo, hi = o.clear_brightness
    inside = faces["in_frame"].fillna(1.0) >= o.whole_min_in_frame if "in_frame" in faces.columns else True
    # A hand-made table without the crop figures: its faces count as lit and sharp.
    lit = faces["brightness"].between(lo, hi) if "brightness" in faces.columns else True
    sharp = faces["sharpness"] >= o.clear_min_sharpness if "sharpness" in faces.columns else True
    return confident_faces(faces, tracks) & (side >= o.clear_min_px) & lit & sharp & inside


def judge_persons(table: FaceTable | pd.DataFrame, options: PersonOptions | None = None,
                  tracks: TrackOptions | None = None, student_age_group: str = "child") -> tuple[pd.DataFrame, list[Person]]:
    """The face table's frame judged by track (:func:`~highlights.stages.tracks.judge_faces`) and
    by person, and the :class:`Person` values.

    Adds ``person_kind``, ``person_child_prob``, ``student`` and ``picture`` to every row (empty /
    NaN / False without a face). A table without a ``person`` column (written before persons) has
    one person per track. A person's verdict weighs each confident face's child logit by its
    clarity (:func:`clear_faces`: 1, else ``dim_weight``); no confident face: ``undecided``.
    The students are chosen by :func:`choose_students`."""
    o, t = options or PersonOptions(), tracks or TrackOptions()
    judged = judge_faces(table, t).copy()
    if "person" not in judged.columns:
        judged["person"] = judged["track"].astype("int64")
    judged["person_kind"] = ""
    judged["person_child_prob"] = np.nan
    judged["student"] = False
    judged["picture"] = False
    faces = judged[(judged["face"] >= 0) & (judged["person"] >= 0)]
    if faces.empty:
        return judged, []
    pictures = picture_tracks(faces, o)
    confident = confident_faces(faces, t)
    clear = clear_faces(faces, o, t)
    weight = np.where(clear, 1.0, np.where(confident, o.dim_weight, 0.0))
    logits = _logit(faces["child_prob"].fillna(0.5).to_numpy())
    own_child = faces["is_child"].eq(True).fillna(False).to_numpy(dtype=bool)
    threshold = float(_logit(np.array([o.child_threshold]))[0])

    persons: list[Person] = []
    for person, rows in faces.groupby("person", sort=True):
        index = faces.index.get_indexer(rows.index)
        track_ids = tuple(sorted(int(x) for x in rows["track"].unique()))
        # A person holding a picture's track is that picture (group_persons joins to a picture only
        # its fragments and faces that match it by identity).
        is_picture = any(tr in pictures for tr in track_ids)
        w = weight[index]
        if is_picture:
            kind, prob = "picture", math.nan
        elif w.sum() <= 0:
            kind, prob = "undecided", math.nan
        else:
            mean = float((w * logits[index]).sum() / w.sum())
            prob = 1.0 / (1.0 + math.exp(-mean))
            sure = np.asarray(confident)[index]
            judged_child = int((sure & own_child[index]).sum())
            share = judged_child / max(1, int(sure.sum()))
            kind = "child" if mean >= threshold or (judged_child >= o.child_min_faces and share >= o.child_share) else "adult"
        persons.append(Person(
            id=int(person), tracks=track_ids, seconds=int(rows["frame"].nunique()),
            first_s=float(rows["t"].min()), last_s=float(rows["t"].max()), kind=kind, child_prob=prob,
            clear_faces=int(np.asarray(clear)[index].sum()), dim_faces=int(((w > 0) & (w < 1)).sum()),
        ))  # fmt: skip
    students = choose_students(persons, faces, o, student_age_group)
    persons = [Person(**{**p.__dict__, "student": p.id in students}) for p in persons]
    by_id = {p.id: p for p in persons}
    judged.loc[faces.index, "person_kind"] = faces["person"].map(lambda p: by_id[int(p)].kind).to_numpy()
    judged.loc[faces.index, "person_child_prob"] = faces["person"].map(lambda p: by_id[int(p)].child_prob).to_numpy()
    judged.loc[faces.index, "student"] = faces["person"].isin(students).to_numpy()
    judged.loc[faces.index, "picture"] = faces["person"].map(lambda p: by_id[int(p)].kind == "picture").to_numpy()
    judged["student"] = judged["student"].astype(bool)
    judged["picture"] = judged["picture"].astype(bool)
    return judged, persons


def choose_students(persons: Sequence[Person], faces: pd.DataFrame, o: PersonOptions,
                    student_age_group: str = "child") -> set[int]:
    """The ids of the student's persons. An adult student's lesson: the person (not a picture)
    seen longest. A child's lesson: the child seen longest, if they are at least
    ``student_share`` of the seconds with a child in view; otherwise every child (no child
    dominates: the identities did not hold one child together, or children take turns)."""
    live = [p for p in persons if p.kind != "picture"]
    if not live:
        return set()
    longest = max(live, key=lambda p: (p.seconds, -p.first_s))
    if student_age_group == "adult":
        return {longest.id}
    children = [p for p in live if p.kind == "child"]
    if not children:
        return set()
    top = max(children, key=lambda p: (p.seconds, -p.first_s))
    child_ids = {p.id for p in children}
    child_seconds = faces.loc[faces["person"].isin(child_ids), "frame"].nunique()
    if child_seconds and top.seconds / child_seconds >= o.student_share:
        return {top.id}
    return child_ids


# --------------------------------------------------------------------------- bodies without a face


def other_person_frames(judged: pd.DataFrame, options: PersonOptions | None = None) -> pd.Series:
    """Per row: the frame shows a person region no face explains (``body_share``) that is someone
    else, not the student: always when the student's face is in the frame; otherwise not when
    the student's face was seen within ``body_follow_s`` and nobody else's face is in the frame
    (the student leaning out of the picture: their face goes first, their shoulder stays), nor
    when the region lies at the student's usual place. False where no body was measured."""
    o = options or PersonOptions()
    out = pd.Series(False, index=judged.index)
    if "body_share" not in judged.columns:
        return out
    body = judged["body_share"].fillna(0.0) >= o.body_min_share
    if not body.any():
        return out
    student_rows = judged[judged.get("student", pd.Series(False, index=judged.index)).astype(bool)]
    student_frames = set(student_rows["frame"].astype(int))
    student_times = np.sort(student_rows["t"].to_numpy(dtype=float))
    else_column = judged.get("someone_else", pd.Series(False, index=judged.index)).astype(bool)
    someone_else = set(judged.loc[else_column & (judged["face"] >= 0), "frame"].astype(int))
    home = None
    if len(student_rows):
        x1, y1, x2, y2 = student_rows[["x1", "y1", "x2", "y2"]].median().to_numpy(dtype=float)
        w = x2 - x1
        home = np.array([x1 - 1.2 * w, y1, x2 + 1.2 * w, math.inf])  # the student's head and shoulders
    frames = judged.loc[body, ["frame", "t", "body_x1", "body_y1", "body_x2", "body_y2"]].drop_duplicates("frame")
    others: set[int] = set()
    for row in frames.itertuples(index=False):
        if int(row.frame) in student_frames or home is None:
            others.add(int(row.frame))
            continue
        k = int(np.searchsorted(student_times, row.t))
        near = min((abs(student_times[i] - row.t) for i in (k - 1, k) if 0 <= i < len(student_times)), default=math.inf)
        if near <= o.body_follow_s and int(row.frame) not in someone_else:
            continue
        cx = (row.body_x1 + row.body_x2) / 2
        if not home[0] <= cx <= home[2]:
            others.add(int(row.frame))
    return judged["frame"].astype(int).isin(others)


@dataclass(frozen=True)
class Body:
    """The person region of a frame that no face in it explains: its share of the frame and its
    box (x1, y1, x2, y2 in frame pixels); share 0 and no box when there is none."""

    share: float = 0.0
    box: tuple[float, float, float, float] | None = None

    def columns(self) -> dict[str, float]:
        """The face table's body columns for this frame."""
        x1, y1, x2, y2 = self.box if self.box is not None else (math.nan,) * 4
        return {"body_share": float(self.share), "body_x1": x1, "body_y1": y1, "body_x2": x2, "body_y2": y2}


NOT_MEASURED: dict[str, float] = {name: math.nan for name in ("body_share", "body_x1", "body_y1", "body_x2", "body_y2")}
"""The body columns of a frame the person model did not look at."""


def unexplained_body(prob: np.ndarray, boxes: np.ndarray, frame_size: tuple[int, int], *, threshold: float = 0.5,
                     column_margin: float = 0.5, min_area: float = 0.01, border_margin: float = 0.25,
                     head_band_margin: float = 0.8, head_min_area: float = 0.005, head_edge: float = 0.03) -> Body:
    """The person region of a frame no face explains, from a person-probability mask.

    ``prob``: the mask (any resolution: boxes are scaled to it); ``boxes``: the frame's faces
    (x1, y1, x2, y2, frame pixels); ``frame_size``: (height, width). The mask is cut at
    ``threshold`` into 8-connected regions. A region is a face's own when it covers the inner
    half of that face's box or enters its body column (the box widened by ``column_margin`` face
    widths each side, from a quarter face above it to the bottom: its own arms and hands). Any
    other region of at least ``min_area`` of the frame that comes within ``border_margin`` of the
    left, right or top edge is someone else's shoulder, arm or back (the bottom edge is
    everybody's torso). Without any face, the largest region at least ``min_area`` in size counts
    (whose it is, the student's leaning out or another person's, is decided over the lesson:
    :func:`other_person_frames`).

    A head half out of the frame beside the faces: the mask often joins it to the student's torso
    (two people's shoulders touch in the mask), so the region enters a face's column and counts as
    the face's own. So also: the mask outside every face's band (the box widened by
    ``head_band_margin`` face widths each side, all rows; only faces the mask covers, so a picture
    on the wall explains nothing) and above the lowest face's chin, in
    regions of at least ``head_min_area`` of the frame within ``head_edge`` of the left, right or
    top edge, is someone else's head or shoulder. The student's own shoulders are below their chin.

    Measured (MediaPipe's selfie segmentation, the head-pose clips of ``../shared/data``): a
    second person showing only an arm, a shoulder or hair at the edge, 167 of 168 frames flagged;
    one person alone, 0 of 170 (0 of 85 whole frames and 0 of 85 centre crops with the head rule);
    a framed photo on the wall behind, 5 of 20 (pictures are told by their stillness instead). On
    the tuning persons lessons (seeds 20-22) the job flags 75%, 50% and 19% of the seconds with
    half a parent's face at the edge (about 6% before the head rule), and 2-4% of the student's
    seconds alone (2-9% of the smiling ones); no pick beside a half face on the report lessons."""
    import cv2

    h, w = prob.shape[:2]
    frame_h, frame_w = frame_size
    sx, sy = w / max(1, frame_w), h / max(1, frame_h)
    labels_count, labels, stats, _ = cv2.connectedComponentsWithStats((prob >= threshold).astype(np.uint8), connectivity=8)
    if labels_count <= 1:
        return Body()
    own = np.zeros(labels_count, dtype=bool)
    column = np.zeros((h, w), dtype=bool)
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4) * np.array([sx, sy, sx, sy])
    for x1, y1, x2, y2 in boxes:
        fw, fh = x2 - x1, y2 - y1
        own[np.unique(_inner_half(labels, (x1, y1, x2, y2)))] = True
        column[int(max(0, y1 - 0.25 * fh)):, int(max(0, x1 - column_margin * fw)):int(min(w, x2 + column_margin * fw))] = True
    own[0] = True
    best: tuple[int, tuple[int, int, int, int]] | None = None
    total = 0
    for label in range(1, labels_count):
        left, top, width, height, area = (int(v) for v in stats[label])
        if own[label] or area < min_area * h * w:
            continue
        if len(boxes):
            near_edge = left <= border_margin * w or left + width >= w - border_margin * w or top <= border_margin * h
            if not near_edge or (labels[top:top + height, left:left + width] == label)[column[top:top + height, left:left + width]].any():
                continue
        total += area
        if best is None or area > best[0]:
            best = (area, (left, top, left + width, top + height))
    if best is None and len(boxes):
        best, total = _head_at_the_edge(prob >= threshold, boxes, head_band_margin, head_min_area, head_edge)
    if best is None:
        return Body()
    x1, y1, x2, y2 = best[1]
    return Body(total / (h * w), (x1 / sx, y1 / sy, x2 / sx, y2 / sy))


def _inner_half(grid: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The middle half of a face box (a quarter in from each side) on ``grid``, clipped to it."""
    h, w = grid.shape[:2]
    x1, y1, x2, y2 = box
    fw, fh = x2 - x1, y2 - y1
    return grid[int(np.clip(y1 + fh / 4, 0, h - 1)):int(np.clip(y2 - fh / 4, 1, h)),
                int(np.clip(x1 + fw / 4, 0, w - 1)):int(np.clip(x2 - fw / 4, 1, w))]


def _head_at_the_edge(mask: np.ndarray, boxes: np.ndarray, band_margin: float, min_area: float,
                      edge: float) -> tuple[tuple[int, tuple[int, int, int, int]] | None, int]:
    """The largest region of ``mask`` beside every face's band and above the lowest chin that
    touches the side or top edge (see :func:`unexplained_body`), and the area of all such regions.
    ``boxes`` at the mask's scale."""
    import cv2

    h, w = mask.shape
    beside = mask.copy()
    for x1, y1, x2, y2 in boxes:
        fw = x2 - x1
        inner = _inner_half(mask, (x1, y1, x2, y2))
        if inner.size == 0 or inner.mean() < 0.5:
            continue  # a face the person model does not see as a person (a picture on the wall) explains no body
        beside[:, int(max(0, x1 - band_margin * fw)):int(min(w, x2 + band_margin * fw))] = False
    beside[int(min(h, max(0.0, float(boxes[:, 3].max())))):, :] = False
    count, _, stats, _ = cv2.connectedComponentsWithStats(beside.astype(np.uint8), connectivity=8)
    best: tuple[int, tuple[int, int, int, int]] | None = None
    total = 0
    for label in range(1, count):
        left, top, width, height, area = (int(v) for v in stats[label])
        at_edge = left <= edge * w or left + width >= w - edge * w or top <= edge * h
        if area < min_area * h * w or not at_edge:
            continue
        total += area
        if best is None or area > best[0]:
            best = (area, (left, top, left + width, top + height))
    return best, total


def assign_persons(table: FaceTable, chips: Mapping[FaceKey, np.ndarray], embed: Embed | None,
                   options: PersonOptions | None = None) -> FaceTable:
    """The face table (tracks linked) with its ``person`` column: pictures found, a few faces of
    every other track embedded (their ``chips``, kept while scoring, through ``embed``), tracks
    grouped (:func:`group_persons`). The embeddings are dropped on return. Body columns the
    scoring did not measure are NaN. Without ``embed`` every track is a person of its own,
    pictures grouped by place."""
    o = options or PersonOptions()
    frame = table.data.copy()
    pictures = picture_tracks(frame, o)
    embeddings: dict[FaceKey, np.ndarray] = {}
    if embed is not None and o.identity:
        keys = [key for key in faces_to_embed(frame, list(chips), o) if key in chips]
        vectors = embed([chips[key] for key in keys]) if keys else np.zeros((0, 128))
        embeddings = dict(zip(keys, vectors))
    frame["person"] = group_persons(frame, embeddings, o, pictures=pictures)
    del embeddings  # biometric data: never beyond this call
    for name in ("body_share", "body_x1", "body_y1", "body_x2", "body_y2"):
        if name not in frame.columns:
            frame[name] = np.nan
    return FaceTable(frame)


@dataclass(frozen=True)
class Judged:
    """A lesson's faces judged: every row of the face table with its track's and its person's
    decisions and what they mean for the GIF and the analytics (one place, so the selection, the
    analytics, the report and the labeller agree), and the persons.

    Row columns added to the judged table (:func:`judge_persons`):

    ``subject``: the face is the GIF's subject: the student's (:func:`choose_students`), judged a
        child, in a child's lesson; the student's in an adult student's lesson. Without persons (a
        table from before them, or ``identity`` off) a child's lesson takes every face whose track
        is judged a child.
    ``someone_else``: the face is a person's other than the subject (not a picture): it keeps its
        frame, and ``adult_margin_s`` around it, out of the GIF.
    ``adult_else``: the face is an adult's (or undecided) other than the student: adult presence.
    ``other_body`` (every row of its frame): someone else is in view by their body alone.
    ``student_body`` (every row of its frame): the student is in view by their body alone (leaning
        out of the picture): child presence without a face.
    """

    table: pd.DataFrame
    persons: list[Person]
    by_person: bool

    @property
    def faces(self) -> pd.DataFrame:
        """The face rows, pictures left out (never picked, never counted)."""
        return self.table[(self.table["face"] >= 0) & ~self.table["picture"]]

    @property
    def student(self) -> Person | None:
        return next((p for p in self.persons if p.student), None)

    def frames(self) -> pd.DataFrame:
        """One row per sampled frame: ``frame, t, student, subject, someone_else, adult, other_body``."""
        table = self.table
        faces = self.faces
        frames = table.groupby("frame", sort=True)["t"].first().to_frame()
        frames["subject"] = frames.index.isin(faces.loc[faces["subject"], "frame"])
        frames["student"] = frames.index.isin(faces.loc[faces["student"], "frame"]) | \
            frames.index.isin(table.loc[table["student_body"], "frame"])
        if not self.by_person:
            frames["student"] = frames["subject"]
        frames["someone_else"] = frames.index.isin(faces.loc[faces["someone_else"], "frame"])
        frames["other_body"] = frames.index.isin(table.loc[table["other_body"], "frame"])
        frames["adult"] = frames.index.isin(faces.loc[faces["adult_else"], "frame"]) | frames["other_body"]
        return frames.reset_index()


def judge_lesson(table: FaceTable | pd.DataFrame, options: PersonOptions | None = None,
                 tracks: TrackOptions | None = None, student_age_group: str = "child") -> Judged:
    """The lesson's faces judged by track and by person, and what that means for the GIF and
    the analytics (:class:`Judged`). ``student_age_group``: ``child`` (the subject is the student
    judged a child) or ``adult`` (the subject is the student, whatever the age model says)."""
    o = options or PersonOptions()
    frame = table.data if isinstance(table, FaceTable) else table
    by_person = o.identity and "person" in frame.columns
    judged, persons = judge_persons(frame, o, tracks, student_age_group)
    face = judged["face"] >= 0
    live = face & ~judged["picture"]
    if by_person:
        subject = live & judged["student"]
        someone_else = live & ~judged["student"]
        adult_else = someone_else & judged["person_kind"].isin(["adult", "undecided"])
        if student_age_group != "adult":
            # A surely adult track is never a child's lesson's subject, whoever the identities
            # grouped it with, and it keeps its frames out of the GIF (the analytics still count
            # it as its person: the identity decides who is in view, the veto is the GIF's).
            sure_adult = live & judged["track"].isin(surely_adult_tracks(judged, o, tracks))
            subject &= judged["person_kind"].eq("child") & ~sure_adult
            someone_else |= sure_adult
    else:
        child = judged["track_child"].eq(True) if "track_child" in judged.columns else judged["is_child"].eq(True)
        subject = live & child
        someone_else = live & ~child
        adult_else = someone_else
    judged["subject"] = subject.astype(bool)
    judged["someone_else"] = someone_else.astype(bool)
    judged["adult_else"] = adult_else.astype(bool)
    others = other_person_frames(judged, o) if by_person else pd.Series(False, index=judged.index)
    judged["other_body"] = others.astype(bool)
    body = judged["body_share"].fillna(0.0) >= o.body_min_share if "body_share" in judged.columns else False
    faceless = ~judged["frame"].isin(judged.loc[live, "frame"])
    judged["student_body"] = (body & ~judged["other_body"] & faceless & by_person)
    judged["student_body"] = judged["student_body"].astype(bool)
    return Judged(judged, persons, by_person)


def person_table(persons: Sequence[Person]) -> pd.DataFrame:
    """The persons as rows (the report's table)."""
    return pd.DataFrame([p.__dict__ for p in persons])


Embed = Callable[[Sequence[np.ndarray]], np.ndarray]
"""Embeddings of aligned face chips: (N, 128)."""


__all__ = [
    "NOT_MEASURED",
    "Body",
    "Embed",
    "FaceKey",
    "Person",
    "PersonKind",
    "Judged",
    "assign_persons",
    "judge_lesson",
    "PersonOptions",
    "choose_students",
    "surely_adult_tracks",
    "clear_faces",
    "faces_to_embed",
    "group_persons",
    "judge_persons",
    "other_person_frames",
    "person_table",
    "picture_tracks",
    "unexplained_body",
]
