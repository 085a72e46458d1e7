"""Face tracks: follow each face across the sampled seconds, and judge child, adult and smile per track.

A pure step over the scores table (``scores.csv``, one row per face per sampled frame; see
:mod:`highlights.stages.scores`), run after scoring:

1. :func:`link_faces` gives every face row a ``track`` id (-1 for a frame without a face): faces
   of consecutive sampled frames are matched by the Hungarian assignment
   (``scipy.optimize.linear_sum_assignment``) on a cost of box overlap, centre distance and
   appearance (the Hamming distance of the crops' perceptual hashes), with gates that refuse a
   match outright. As in ByteTrack (supervision, roboflow/trackers), confident detections are
   matched first, weak ones then get what is left, and a track missed for up to ``max_gap_s``
   keeps its id; unlike ByteTrack there is no Kalman motion model (at one frame per second a
   webcam face barely moves, and it moves unpredictably) and there is an appearance gate, which
   ByteTrack lacks: a parent leaning in where the child sat must start a new track, not continue
   the child's.
2. :func:`judge_faces` adds the per-track decisions each face row inherits:
   ``track_child`` (the whole track is judged a child: the mean child logit over its confident
   frames passes ``child_threshold``; a track with no confident frame, or judged adult, is an
   adult in every frame it is in) and ``track_smile`` (the smile probability smoothed within the
   track by a centred running median of ``smile_window`` frames: one odd frame neither makes
   nor breaks a smile).
3. :func:`tracks_of` turns the rows back into :class:`Track` values (id, frames, times, boxes,
   per-frame scores, decision) for the report and for callers such as :func:`main_track`.

>>> scores = assign_tracks(score_frames(frames, scorer))     # doctest: +SKIP
>>> judged = judge_faces(scores)                             # doctest: +SKIP
>>> [(t.id, t.kind, t.start_s, t.end_s) for t in tracks_of(judged)]  # doctest: +SKIP
[(0, 'child', 0.0, 35.0), (1, 'adult', 33.0, 43.0), ...]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from highlights.core.boxes import Box, box_in_frame, box_iou
from highlights.core.faces import TRACK_COLUMNS, FaceTable

__all__ = [
    "TRACK_COLUMNS",
    "Track",
    "TrackOptions",
    "assign_tracks",
    "confident_faces",
    "facing",
    "judge_faces",
    "link_faces",
    "main_track",
    "phash_distance",
    "tracks_of",
]

_NO_MATCH = 1e6


@dataclass(frozen=True)
class TrackOptions:
    """How faces are linked into tracks and how a track is judged.

    Linking (measured on the tuning lessons of ``bench/tracks.py``, seeds 10-11):

    max_gap_s: 2.5 s - a track missed by the detector for up to two sampled seconds keeps its id
        (MTCNN misses a face in about one frame in 300, more in a dim or blurred second).
    max_centre_shift: 0.7 face sizes - the largest move of a face's centre between matched frames
        (a webcam face drifts 0.05-0.3 face sizes a second; another person sits >= 1 face size away).
        Lowered from 0.8 after ``bench/persons.py``'s tuning lessons (seeds 20-26, webcam and plain
        10-11): of 4,771 links between faces of one person 0.3% moved more than 0.6 face sizes,
        while the three links that carried a track from one person onto another (a sibling leaving
        as the student moved to the middle) moved 0.71-0.77; such a track kept the student's two
        halves apart as two persons.
    max_size_ratio: 1.6 - the largest change of face size between matched frames.
    max_hash_bits: 24 - the crops' perceptual hashes may differ by at most this many of 64 bits:
        the same face a second later differs by 4-20 bits, two different people by 26 typically.
    weak_det_prob: 0.9 - detections below this are matched only after the confident ones.
    split_logit: 5.0 and split_window: 3 - a track is cut where the mean child logit of up to 3
        confident frames before and after a point differ by 5 or more (someone else took the
        place). Measured on the tuning lessons: one-second jumps of the same face are under 3.7
        logits in 99% of cases; a child replaced by a parent steps by 6.6-11.

    Judging:

    child_threshold: 0.85 on the track's mean child probability (the mean of the logits,
        transformed back). On the tuning lessons (seeds 10-11, both variants) the lowest value
        at which no adult track was called a child (0/17; at 0.7, 2/17). Check it against
        webcam-like tracks of adults from a source the model never trained on (the LFW
        expression set's people): ``bench/tracks.py --adult-tracks``. Measured 2026-12-02 on
        578 such people (one 5-second track each): report half 0/291 called child, tune half
        4/287 (1.39%; at 0.94, 2/287), pooled 4/578 = 0.69%.
    confident_det_prob: 0.9 and confident_min_px: 32 - the frames whose child probability counts
        as evidence: a sure detection of a face large enough to judge.
    min_confident_frames: 3 - a track with fewer confident frames is a child only if every one of
        them is judged a child on its own too (``is_child``, the age model's per-frame threshold,
        which is stricter): a face seen once or twice is judged as before tracks.
    min_face_aspect: 0.7 - a face whose box is narrower than this (width over height) is a head
        turned away, and the age model's call on it is not evidence (:func:`facing`): on the
        tuning lessons of ``bench/persons.py`` the student's turned faces (box aspect 0.66-0.69,
        facing ones 0.78-0.83) had a median child probability of 0.14 against 0.98 facing, so
        their tracks were judged, and vetoed as, adults.
    smile_window: 3 frames - the running median of the smile within a track (an expression lasts
        several seconds; a median of three drops one odd frame and fills a one-frame dip).
    """

    max_gap_s: float = 2.5
    max_centre_shift: float = 0.7
    max_size_ratio: float = 1.6
    max_hash_bits: int = 24
    weak_det_prob: float = 0.9
    split_logit: float = 5.0
    split_window: int = 3
    child_threshold: float = 0.85
    confident_det_prob: float = 0.9
    confident_min_px: float = 32.0
    min_confident_frames: int = 3
    smile_window: int = 3
    min_face_aspect: float = 0.7

    def __post_init__(self) -> None:
        if not 0.0 < self.child_threshold < 1.0:
            raise ValueError("child_threshold must be in (0, 1)")
        if self.smile_window < 1 or self.min_confident_frames < 1:
            raise ValueError("smile_window and min_confident_frames must be >= 1")
        if self.max_gap_s < 0 or self.max_centre_shift <= 0 or self.max_size_ratio < 1:
            raise ValueError("max_gap_s >= 0, max_centre_shift > 0 and max_size_ratio >= 1 needed")

    @classmethod
    def from_selection(cls, options: Any) -> TrackOptions:
        """The track options a :class:`~highlights.stages.selection.SelectionOptions` carries (its
        ``tracks`` field), or the defaults."""
        found = getattr(options, "tracks", None)
        return found if isinstance(found, TrackOptions) else cls()


Kind = Literal["child", "adult", "undecided"]


@dataclass(frozen=True)
class Track:
    """One face followed through the lesson."""

    id: int
    frames: tuple[int, ...]
    times: tuple[float, ...]
    boxes: tuple[Box, ...]
    det_probs: tuple[float, ...]
    child_probs: tuple[float, ...]
    smile_probs: tuple[float, ...]
    smoothed_smiles: tuple[float, ...]
    kind: Kind
    """``child``: judged a child; ``adult``: judged an adult; ``undecided``: no confident frame
    (counts as an adult)."""
    child_score: float
    """The track's evidence: the mean child logit over its confident frames, as a probability
    (NaN when undecided)."""
    confident_frames: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_child(self) -> bool:
        return self.kind == "child"

    @property
    def start_s(self) -> float:
        return self.times[0]

    @property
    def end_s(self) -> float:
        return self.times[-1]

    def __len__(self) -> int:
        return len(self.frames)


# --------------------------------------------------------------------------- linking


def phash_distance(a: str, b: str) -> int:
    """Hamming distance between two hex perceptual hashes (``str(imagehash.phash(...))``): the
    appearance gate here and the near-duplicate test of :mod:`highlights.stages.selection`."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _hash_bits(a: str, b: str) -> float:
    """:func:`phash_distance`, NaN where either hash is missing or not hex (no appearance cue)."""
    if not a or not b:
        return math.nan
    try:
        return float(phash_distance(a, b))
    except ValueError:
        return math.nan


@dataclass
class _Live:
    id: int
    box: np.ndarray
    t: float
    crop_hash: str


def _cost(live: Sequence[_Live], boxes: np.ndarray, hashes: Sequence[str], t: float, o: TrackOptions) -> np.ndarray:
    """Matching cost of each live track against each detection; ``_NO_MATCH`` where a gate fails."""
    if not live or not len(boxes):
        return np.zeros((len(live), len(boxes)))
    old = np.stack([track.box for track in live])
    iou = box_iou(old, boxes)
    size_old = np.maximum(old[:, 2] - old[:, 0], old[:, 3] - old[:, 1])
    size_new = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    scale = np.maximum((size_old[:, None] + size_new[None, :]) / 2, 1e-6)
    centre_old = (old[:, :2] + old[:, 2:]) / 2
    centre_new = (boxes[:, :2] + boxes[:, 2:]) / 2
    shift = np.linalg.norm(centre_old[:, None, :] - centre_new[None, :, :], axis=2) / scale
    ratio = np.maximum(size_old[:, None], size_new[None, :]) / np.maximum(np.minimum(size_old[:, None], size_new[None, :]), 1e-6)
    bits = np.array([[_hash_bits(track.crop_hash, h) for h in hashes] for track in live])
    appearance = np.where(np.isnan(bits), 0.5, bits / 64.0)
    cost = (1.0 - iou) + shift + 2.0 * appearance
    gap = np.array([t - track.t for track in live])[:, None]
    refused = (
        (shift > o.max_centre_shift)
        | (ratio > o.max_size_ratio)
        | (np.nan_to_num(bits, nan=0.0) > o.max_hash_bits)
        | (gap > o.max_gap_s)
        | (gap <= 0)
    )
    return np.where(refused, _NO_MATCH, cost)


def link_faces(scores: pd.DataFrame, options: TrackOptions | None = None) -> pd.Series:
    """A track id for every row of the scores table (-1 for rows with ``face == -1``).

    Frames are taken in time order; in each one, confident faces are matched to the live tracks
    first, then the weak ones to the tracks left; an unmatched face starts a new track. Ids are
    numbered 0, 1, ... in order of first appearance. Deterministic.
    """
    o = options or TrackOptions()
    out = pd.Series(-1, index=scores.index, dtype="int64")
    faces = scores[scores["face"] >= 0]
    if faces.empty:
        return out
    # Plain arrays in time order: a 45-minute lesson has ~2,700 frames, and pandas indexing per
    # frame cost seconds where the arithmetic costs tens of milliseconds.
    order = faces.sort_values(["t", "frame", "face"], kind="stable")
    times = order["t"].to_numpy(dtype=float)
    frames = order["frame"].to_numpy()
    boxes = order[["x1", "y1", "x2", "y2"]].to_numpy(dtype=float)
    hashes = [str(h) if isinstance(h, str) else "" for h in order["crop_hash"]]
    confident = order["det_prob"].fillna(0).to_numpy(dtype=float) >= o.weak_det_prob
    from scipy.optimize import linear_sum_assignment  # here: scipy costs 0.7 s to import, and the
    # settings (which import this module for TrackOptions) are loaded by every command

    assigned = np.full(len(order), -1, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, (frames[1:] != frames[:-1]) | (times[1:] != times[:-1])])
    live: list[_Live] = []
    next_id = 0
    for lo, hi in zip(starts, np.r_[starts[1:], len(order)]):
        t = float(times[lo])
        live = [track for track in live if t - track.t <= o.max_gap_s]
        rows = np.arange(lo, hi)
        free = list(range(len(live)))
        for group in (rows[confident[lo:hi]], rows[~confident[lo:hi]]):
            if not len(group) or not free:
                continue
            cost = _cost([live[i] for i in free], boxes[group], [hashes[j] for j in group], t, o)
            matched, columns = linear_sum_assignment(cost)
            taken = []
            for r, c in zip(matched, columns):
                if cost[r, c] < _NO_MATCH:
                    assigned[group[c]] = live[free[r]].id
                    taken.append(free[r])
            free = [i for i in free if i not in taken]
        by_id = {track.id: track for track in live}
        for j in rows:
            if assigned[j] < 0:
                assigned[j] = next_id
                live.append(_Live(next_id, boxes[j], t, hashes[j]))
                next_id += 1
            else:
                track = by_id[int(assigned[j])]
                track.box, track.t, track.crop_hash = boxes[j], t, hashes[j] or track.crop_hash
    sure = confident_faces(order, o).to_numpy()
    logits = _logit(order["child_prob"].fillna(0.5).to_numpy(dtype=float))
    assigned = _split_at_identity_changes(assigned, times, sure, logits, o)
    # Number the tracks 0, 1, ... in order of first appearance (by time, then face number).
    first_seen = np.lexsort((order["face"].to_numpy(), times))
    _, first = np.unique(assigned[first_seen], return_index=True)
    renumber = np.empty(int(assigned.max()) + 1, dtype=np.int64)
    renumber[assigned[first_seen][np.sort(first)]] = np.arange(len(first))
    out.loc[order.index] = renumber[assigned]
    return out


def _split_at_identity_changes(
    ids: np.ndarray, times: np.ndarray, sure: np.ndarray, logits: np.ndarray, o: TrackOptions
) -> np.ndarray:
    """Cut a track where the age model's view of it steps: the mean child logit of up to
    ``split_window`` confident frames before a point and after it differ by ``split_logit`` or
    more. Someone else took the place (a parent leaning in where the child sat a second
    before): the boxes and the coarse appearance cue allow the link, the evidence does not.

    The arrays are per face row in time order: track id, time, whether the row is confident
    evidence (:func:`_confident`), and its child logit. Returns the ids with the cut-off parts
    under new ids."""
    ids = ids.copy()
    next_id = int(ids.max()) + 1
    pending = [int(v) for v in pd.unique(ids) if v >= 0]
    while pending:
        track = pending.pop()
        rows = np.flatnonzero(ids == track)
        sure_rows = rows[sure[rows]]
        evidence = logits[sure_rows]
        w, best, cut = o.split_window, 0.0, None
        for i in range(2, len(evidence) - 1):
            before, after = evidence[max(0, i - w) : i], evidence[i : i + w]
            if len(after) < 2:
                break
            step = abs(float(before.mean()) - float(after.mean()))
            if step >= o.split_logit and step > best:
                best, cut = step, float(times[sure_rows[i]])
        if cut is None:
            continue
        ids[rows[times[rows] >= cut]] = next_id
        pending += [track, next_id]
        next_id += 1
    return ids


def assign_tracks(
    scores: FaceTable | pd.DataFrame,
    frame_sizes: Mapping[int, tuple[int, int]] | None = None,
    options: TrackOptions | None = None,
) -> FaceTable:
    """The face table with :data:`~highlights.core.faces.TRACK_COLUMNS` added (a new table; the
    input is not changed).

    ``frame_sizes`` maps a frame index to its ``(height, width)``; frames not in it get NaN
    ``in_frame``.
    """
    return FaceTable(_with_tracks(FaceTable.of(scores).data, frame_sizes, options))


def _with_tracks(
    scores: pd.DataFrame, frame_sizes: Mapping[int, tuple[int, int]] | None, options: TrackOptions | None
) -> pd.DataFrame:
    out = scores.copy()
    out["track"] = link_faces(out, options).astype("int64")
    in_frame = np.full(len(out), np.nan)
    if frame_sizes and len(out):
        sizes = np.array([frame_sizes.get(int(frame), (np.nan, np.nan)) for frame in out["frame"]], dtype=float)
        boxes = out[["x1", "y1", "x2", "y2"]].to_numpy(dtype=float)
        known = (out["face"].to_numpy() >= 0) & ~np.isnan(sizes[:, 0])
        for (height, width), rows in _rows_by_size(sizes, known):
            in_frame[rows] = box_in_frame(boxes[rows], width, height)
    out["in_frame"] = in_frame
    return out


def _rows_by_size(sizes: np.ndarray, known: np.ndarray) -> list[tuple[tuple[float, float], np.ndarray]]:
    """The rows of each distinct frame size (a lesson's recordings have one or a few)."""
    if not known.any():
        return []
    distinct = np.unique(sizes[known], axis=0)
    return [((float(h), float(w)), np.flatnonzero(known & (sizes[:, 0] == h) & (sizes[:, 1] == w))) for h, w in distinct]


def ensure_tracks(scores: FaceTable | pd.DataFrame, options: TrackOptions | None = None) -> pd.DataFrame:
    """The table's frame with :data:`~highlights.core.faces.TRACK_COLUMNS`: as it is when it has
    them, linked now when not (a table written before tracks, or one a caller built by hand)."""
    frame = scores.data if isinstance(scores, FaceTable) else scores
    if "track" in frame.columns:
        if "in_frame" not in frame.columns:
            return frame.assign(in_frame=np.nan)
        return frame
    return _with_tracks(frame, None, options)


# --------------------------------------------------------------------------- judging


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def judge_faces(scores: FaceTable | pd.DataFrame, options: TrackOptions | None = None) -> pd.DataFrame:
    """The face table's frame (tracks linked if missing) with per-track decisions on every face
    row (:data:`~highlights.core.faces.JUDGED_COLUMNS`).

    Adds ``track_child`` (bool: the face's track is judged a child; False on rows without a
    face), ``track_child_prob`` (the track's evidence as a probability, NaN when undecided),
    ``track_kind`` (``child``/``adult``/``undecided``; empty without a face) and ``track_smile``
    (the smile smoothed within the track).
    """
    o = options or TrackOptions()
    table = ensure_tracks(scores, o).copy()
    table["track_child"] = False
    table["track_child_prob"] = np.nan
    table["track_kind"] = ""
    table["track_smile"] = table["smile_prob"].astype(float)
    faces = table[(table["face"] >= 0) & (table["track"] >= 0)]
    if faces.empty:
        return table
    confident = confident_faces(faces, o)
    logits = pd.Series(_logit(faces["child_prob"].fillna(0.5).to_numpy()), index=faces.index)
    own_child = faces["is_child"].eq(True).fillna(False).astype(bool)
    threshold = float(_logit(np.array([o.child_threshold]))[0])
    by_track = faces["track"]
    n_sure = confident.groupby(by_track).sum()
    mean = logits.where(confident).groupby(by_track).mean()
    all_own = (own_child | ~confident).groupby(by_track).all()
    child = (n_sure > 0) & (mean >= threshold) & ((n_sure >= o.min_confident_frames) | all_own)
    kind = pd.Series(np.where(n_sure == 0, "undecided", np.where(child, "child", "adult")), index=n_sure.index)
    prob = 1.0 / (1.0 + np.exp(-mean))
    table.loc[faces.index, "track_kind"] = by_track.map(kind).to_numpy()
    table.loc[faces.index, "track_child"] = by_track.map(kind.eq("child")).to_numpy()
    table.loc[faces.index, "track_child_prob"] = by_track.map(prob).to_numpy()
    ordered = faces.sort_values(["track", "t"], kind="stable")
    smoothed = (
        ordered.groupby("track", sort=False)["smile_prob"]
        .rolling(o.smile_window, center=True, min_periods=1)
        .median()
    )
    table.loc[smoothed.index.get_level_values(-1), "track_smile"] = smoothed.to_numpy()
    table["track_child"] = table["track_child"].astype(bool)
    return table


def confident_faces(faces: pd.DataFrame, options: TrackOptions | None = None) -> pd.Series:
    """The face rows whose child probability counts as the track's evidence: surely detected,
    large enough, facing the camera (:func:`facing`), and scored. A person's evidence too
    (:func:`highlights.stages.persons.judge_persons`)."""
    o = options or TrackOptions()
    side = np.maximum(faces["x2"] - faces["x1"], faces["y2"] - faces["y1"])
    return ((faces["det_prob"] >= o.confident_det_prob) & (side >= o.confident_min_px) & facing(faces, o)
            & faces["child_prob"].notna())


def facing(faces: pd.DataFrame, options: TrackOptions | None = None) -> pd.Series:
    """The face rows whose age call is worth counting at all: the detector's box at least
    ``min_face_aspect`` as wide as it is tall (a head turned away draws a narrow box)."""
    o = options or TrackOptions()
    width, height = faces["x2"] - faces["x1"], faces["y2"] - faces["y1"]
    return (width >= o.min_face_aspect * height).fillna(False).astype(bool)


def tracks_of(judged: FaceTable | pd.DataFrame, options: TrackOptions | None = None) -> list[Track]:
    """The :class:`Track` values of a table from :func:`judge_faces` (judged here with
    ``options`` when it is not yet), by id."""
    o = options or TrackOptions()
    judged = judged.data if isinstance(judged, FaceTable) else judged
    if "track_kind" not in judged.columns:
        judged = judge_faces(judged, o)
    faces = judged[(judged["face"] >= 0) & (judged["track"] >= 0)]
    out: list[Track] = []
    for track_id, rows in faces.sort_values("t").groupby("track", sort=True):
        boxes = rows[["x1", "y1", "x2", "y2"]].to_numpy(dtype=float)
        sure = int(confident_faces(rows, o).sum())
        out.append(
            Track(
                id=int(track_id),
                frames=tuple(int(f) for f in rows["frame"]),
                times=tuple(float(t) for t in rows["t"]),
                boxes=tuple(tuple(float(v) for v in b) for b in boxes),  # type: ignore[misc]
                det_probs=tuple(float(v) for v in rows["det_prob"]),
                child_probs=tuple(float(v) for v in rows["child_prob"]),
                smile_probs=tuple(float(v) for v in rows["smile_prob"]),
                smoothed_smiles=tuple(float(v) for v in rows["track_smile"]),
                kind=str(rows["track_kind"].iat[0]) or "undecided",  # type: ignore[arg-type]
                child_score=float(rows["track_child_prob"].iat[0]),
                confident_frames=sure,
            )
        )
    return out


def main_track(tracks: Sequence[Track]) -> Track | None:
    """The track seen in the most sampled frames (ties: the earlier one), or None.

    In a one-to-one lesson that is the student; every other track is someone else. (The
    selection's child rule does not use it: there every track judged adult is excluded.)
    """
    if not tracks:
        return None
    return max(tracks, key=lambda track: (len(track), -track.start_s))
