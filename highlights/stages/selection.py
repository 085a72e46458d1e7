"""Selection stage: from the per-face scores table, pick the child's best smiling moments.

Input: the scores table (one row per detected face, one row with ``face == -1`` for a sampled
frame without a face; columns documented in :mod:`highlights.models` / the README). Output: a
:class:`Selection` whose ``picks`` are in GIF order: the best frame first (Outlook for Windows
shows only a GIF's first frame), then the others in lesson order.

Faces are judged per track (:mod:`highlights.stages.tracks`): each face is followed across the
sampled seconds, a whole track is judged child or adult from its evidence, and the smile is
smoothed within the track. A table without a ``track`` column is linked here first.

Rules, in the order they apply:

1. Privacy: a frame in which any face belongs to a track not judged a child (judged adult, or
   undecided: no confident frame) is excluded entirely unless ``allow_adult``. Every detected
   face counts here, whatever its detection probability or quality: a blurred adult is still an
   adult. Frames within ``adult_margin_s`` of such a frame are excluded too: the detector misses
   a face in about one frame in 300, and an adult seen one second before and after is almost
   surely there in between.
2. The frame's face is its best child face: among the child faces that pass the quality filters
   (smoothed smile, sharpness, brightness, size, detection probability) the most smiling one,
   ties going to the larger face. A frame with two children therefore still gives one pick,
   framed on one face.
3. Moments: a run of seconds in which a child's smoothed smile passes ``min_smile`` (gaps up to
   ``moment_gap_s``) is one moment, and gives at most one candidate: its best frame (fully in
   the frame first, then the widest smile, then the sharpest).
4. Greedy by score (smile probability, then sharpness): a candidate is taken when it is at least
   ``min_gap_s`` from every pick already taken and its ``crop_hash`` is more than
   ``hash_distance`` bits from theirs (no near-duplicates), until ``max_frames`` are taken. When
   the gap leaves moments unused and the GIF short (a short lesson, moments close together),
   the gap is lowered step by step (to ``min_gap_floor_s`` at least) until the GIF is as full as
   the moments allow.
5. Fewer than ``min_frames`` picks: status ``no_highlight`` with a reason (a normal outcome).

Whose face: rules 1-2 are about "the child" in a child's lesson (``student_age_group = "child"``,
the default). In an adult student's lesson (``"adult"``, from the lessons file or the setting)
the subject is the student's own face instead, by :func:`main_face_subject`: the face in a frame
where exactly one face is in view, whatever the age model says; a frame with two or more faces
(anyone else in view, perhaps a child) is excluded with ``adult_margin_s`` around it, always.
The rule only re-labels which faces are "the subject", so everything after it is shared.

Example::

    selection = select_highlights(scores)               # SelectionOptions() defaults
    if selection.status == "ok":
        first = selection.picks[0]                      # the best smile
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from highlights.core.boxes import Box
from highlights.core.faces import FaceTable
from highlights.core.frameref import FRAME_COLUMNS, FrameRef
from highlights.core.result import HighlightFrame
from highlights.stages.persons import Judged, PersonOptions, judge_lesson
from highlights.stages.tracks import TrackOptions, phash_distance


@dataclass(frozen=True)
class SelectionOptions:
    """Thresholds of the selection; every default is a documented choice, all are configurable.

    max_frames: 9 — the GIF is a short slideshow; nine ~1.2 s frames make a ~12 s loop.
    min_frames: 3 — one or two frames are a still, not a slideshow of "best moments"; below three
        the lesson gets ``no_highlight``.
    min_gap_s: 20 s between any two picks — a laugh lasts a few seconds, so 20 s apart means
        different moments spread over the lesson (a 30-minute lesson has room for 90 such slots).
    min_smile: 0.7 on the smile model's probability — precision over recall: a GIF of neutral
        faces is worse than no GIF. The smile model's validation faces scored 0.6-0.7 smile 63% of
        the time, 0.7-0.8 78% (its model card). Measured on the tuning lessons of
        ``bench/persons.py`` (2026-12-08, stop 34), 0.6 -> 0.7: persons 20-26 GIF precision (picks
        within 1 s of the student smiling) 0.948 -> 0.965, fill 0.921 -> 0.905; webcam 10-14
        0.956 -> 0.978, fill 1.000; plain 10-14 1.000, 1.000 (0.65: 0.947; 0.75 as 0.7). The
        report lessons, run once after: persons 0.943 -> 1.000, fill 0.972 -> 0.917; webcam and
        plain 1.000, 1.000. The analytics count a smile at the same threshold (``smile_frames``).
    allow_adult: False — by default no frame in which an adult face is visible is used at all.
    adult_margin_s: 2 s — nor a frame within 2 s of one with an adult (a detector miss in one
        frame must not let a parent's face through; 2 s at one frame per second covers a miss in
        up to two frames in a row).
    min_sharpness: 40, variance of the Laplacian of the 64x64 gray crop. Measured: sharp face
        crops 150-2000, LFW-like soft crops 90-250, a Gaussian blur of sigma 2 px (at 64 px) ~25.
    min_brightness / max_brightness: 50 / 220, mean gray (0-255) of the crop: rejects faces in
        the dark and blown-out faces.
    min_face_px: 40 — the larger side of the face box in frame pixels; a smaller face would be
        upscaled several times into the GIF.
    min_det_prob: 0.9 — the detector's confidence for the chosen child face (MTCNN gives real
        faces > 0.99). Not used for the adult exclusion, which counts every detection.
    hash_distance: 10 — two crops whose 64-bit perceptual hashes differ in at most 10 bits are
        near-duplicates. Measured: the same face shifted by 2-10 px with noise 4-10 bits apart;
        pairs of different faces 16 bits or more (1st percentile), 26 typical.
    moment_gap_s: 1.5 s — smiling seconds at most this far apart are one moment (at one frame a
        second: consecutive seconds); a non-smiling second between them makes two moments.
    max_moment_s: 20 s — a longer run of smiling seconds is cut into moments of at most this
        length (a laugh lasts a few seconds; a minute of smiles is several of them, and the
        smoothing may bridge the short pauses between).
    min_gap_floor_s: 5 s — the lowest the gap between picks goes when the GIF would otherwise
        stay short (moments are distinct anyway; 5 s keeps picks apart in time).
    tracks: :class:`~highlights.stages.tracks.TrackOptions` — linking faces into tracks and judging
        them (``[selection.tracks]`` in the config).
    persons: :class:`~highlights.stages.persons.PersonOptions` — grouping tracks into persons,
        pictures, bodies without a face, and judging persons (``[selection.persons]``).
    """

    max_frames: int = 9
    min_frames: int = 3
    min_gap_s: float = 20.0
    min_smile: float = 0.7
    allow_adult: bool = False
    adult_margin_s: float = 2.0
    min_sharpness: float = 40.0
    min_brightness: float = 50.0
    max_brightness: float = 220.0
    min_face_px: float = 40.0
    min_det_prob: float = 0.9
    min_in_frame: float = 0.95
    """A pick's face has at least this share of its box inside the frame. Half a face is no
    picture of the child, and whose it is stays unsure: it has no usable identity, the age model
    calls it adult about as often as not, and a parent's half face at the frame's edge while the
    student was away joins the student (:func:`highlights.stages.persons._join_cut_tracks`); on
    the webcam lessons of ``bench/persons.py``, once the edge search found such faces
    (``[detection] edge_search``), a parent's half face was in the GIF's subject in 4 of 8
    lessons (no pick on it). A frame without ``in_frame`` counts as whole."""
    hash_distance: int = 10
    student_age_group: str = "child"
    """Whose face the GIF is made of when the lessons file does not say (its
    ``student_age_group`` column): ``child`` (the child's, never a frame with an adult) or
    ``adult`` (the student's own, never a frame with anyone else). See :data:`SUBJECT_RULES`."""
    moment_gap_s: float = 1.5
    max_moment_s: float = 20.0
    min_gap_floor_s: float = 5.0
    tracks: TrackOptions = field(default_factory=TrackOptions)
    persons: PersonOptions = field(default_factory=PersonOptions)

    def __post_init__(self) -> None:
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError("need 1 <= min_frames <= max_frames")
        if self.student_age_group not in SUBJECT_RULES:
            raise ValueError(f"student_age_group must be one of {', '.join(SUBJECT_RULES)}, not {self.student_age_group!r}")
        if not all(0 <= p <= 1 for p in (self.min_smile, self.min_det_prob, self.min_in_frame)):
            raise ValueError("min_smile, min_det_prob and min_in_frame lie between 0 and 1")
        if not 0 <= self.min_gap_s < math.inf or self.hash_distance < 0 or self.adult_margin_s < 0:
            # Finite: the gap is lowered by a fifth at a time towards min_gap_floor_s, which an
            # infinite (or nan) gap never reaches: the lesson looped for ever.
            raise ValueError("min_gap_s (finite), adult_margin_s and hash_distance must be >= 0")
        if self.moment_gap_s < 0 or self.min_gap_floor_s < 0 or self.max_moment_s <= 0:
            raise ValueError("moment_gap_s and min_gap_floor_s must be >= 0, max_moment_s > 0")


@dataclass(frozen=True)
class Pick:
    """One chosen frame (``ref``: its index, lesson time, recording file name and offset, for
    :func:`highlights.media.decode.read_frame_at`) and the face the GIF is framed on.

    In ``selection.json`` a pick is one flat object: the frame's :data:`FRAME_COLUMNS`
    (``frame``, ``t``, ``at``, ``source``, ``offset_s``) and then the fields below
    (:meth:`to_dict`, :meth:`from_dict`)."""

    ref: FrameRef
    face: int
    box: Box
    smile: float
    child: float
    sharpness: float
    brightness: float
    crop_hash: str
    rank: int  # 0 = the best pick by score; GIF order is ``Selection.picks``
    track: int = -1  # the face's track (highlights.stages.tracks); -1 in selections made before tracks

    def to_dict(self) -> dict[str, Any]:
        rest = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "ref"}
        return {**self.ref.to_record(), **rest, "box": list(self.box)}

    def highlight_frame(self) -> HighlightFrame:
        """This pick as ``result.json`` lists it (probabilities to 4 places)."""
        return HighlightFrame(self.ref, round(self.smile, 4), round(self.child, 4), tuple(self.box))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pick:
        """A pick of ``selection.json`` (also those written before ``track`` existed)."""
        rest = {k: v for k, v in data.items() if k not in FRAME_COLUMNS}
        return cls(FrameRef.from_record(data), **{**rest, "box": tuple(data["box"])})


@dataclass(frozen=True)
class SelectionStats:
    """Counts over sampled frames, for the result, the report and the no-highlight reason."""

    frames: int = 0  # sampled frames in the table
    with_face: int = 0
    with_child: int = 0  # with the subject's face: the child, or an adult student's main face
    with_adult: int = 0  # with anyone else
    child_smiling: int = 0  # frames with a child face at or above min_smile (before other filters)
    candidates: int = 0  # frames that passed every filter (adult rule included)
    moments: int = 0  # distinct smiling moments of the child with a usable frame
    tracks: int = 0  # face tracks in the lesson
    child_tracks: int = 0  # of them judged a child


@dataclass(frozen=True)
class Selection:
    status: Literal["ok", "no_highlight"]
    reason: str | None
    picks: list[Pick] = field(default_factory=list)  # GIF order: best first, then lesson order
    stats: SelectionStats = field(default_factory=SelectionStats)

    def to_dict(self) -> dict[str, Any]:
        """``selection.json``."""
        return {
            "status": self.status,
            "reason": self.reason,
            "picks": [p.to_dict() for p in self.picks],
            "stats": asdict(self.stats),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Selection:
        """The selection a ``selection.json`` holds (:meth:`to_dict` read back)."""
        picks = [Pick.from_dict(p) for p in data.get("picks", [])]
        return cls(data["status"], data.get("reason"), picks, SelectionStats(**data.get("stats", {})))


def _child_mask(faces: pd.DataFrame) -> pd.Series:
    # The track's decision (highlights.stages.tracks); unknown counts as "not a child": the adult
    # exclusion errs on the safe side.
    column = "track_child" if "track_child" in faces.columns else "is_child"
    return faces[column].eq(True).fillna(False).astype(bool)


def _smile(faces: pd.DataFrame) -> pd.Series:
    return faces["track_smile"] if "track_smile" in faces.columns else faces["smile_prob"]


def judge(scores: FaceTable | pd.DataFrame, options: SelectionOptions) -> Judged:
    """The lesson's faces judged by track and person (:func:`highlights.stages.persons.judge_lesson`)."""
    return judge_lesson(scores, options.persons, options.tracks, options.student_age_group)


def judged_faces(scores: FaceTable | pd.DataFrame, options: SelectionOptions, judged: Judged | None = None) -> pd.DataFrame:
    """The face rows (pictures left out) with their decisions; ``track_child`` and ``is_child``
    read "is the subject" (:attr:`Judged.table`'s ``subject``), which the rest of the selection
    reads. In an adult student's lesson without persons, the subject is the face alone in view
    (:func:`main_face_subject`)."""
    judged = judged if judged is not None else judge(scores, options)
    faces = judged.faces
    if options.student_age_group == "adult" and not judged.by_person:
        return main_face_subject(faces)
    return faces.assign(is_child=faces["subject"], track_child=faces["subject"])


def _exclusion_times(faces: pd.DataFrame, judged: Judged | None) -> np.ndarray:
    """The seconds in which someone other than the subject is in view: their faces' frames (every
    face that is not the subject's, as before persons) and the frames with someone else's body."""
    times = faces.loc[~_child_mask(faces), "t"].to_numpy(dtype=float)
    if judged is not None and judged.by_person:
        body = judged.table.loc[judged.table["other_body"], "t"].to_numpy(dtype=float)
        times = np.concatenate([times, body])
    return np.unique(times)


def candidate_faces(scores: FaceTable | pd.DataFrame, options: SelectionOptions, faces: pd.DataFrame | None = None,
                    judged: Judged | None = None) -> pd.DataFrame:
    """One row per usable frame: its best subject face, after the privacy rule and quality filters.

    ``faces``: the judged face rows (:func:`judged_faces`) when the caller has them already.
    """
    if faces is None:
        judged = judged if judged is not None else judge(scores, options)
        faces = judged_faces(scores, options, judged)
    child = _child_mask(faces)
    side = np.maximum(faces["x2"] - faces["x1"], faces["y2"] - faces["y1"])
    # NaN in any column fails its comparison, so a face with missing scores is never chosen.
    good = (
        child
        & (_smile(faces) >= options.min_smile)
        & (faces["sharpness"] >= options.min_sharpness)
        & (faces["brightness"] >= options.min_brightness)
        & (faces["brightness"] <= options.max_brightness)
        & (side >= options.min_face_px)
        & (faces["det_prob"] >= options.min_det_prob)
        & (faces["in_frame"].fillna(1.0) >= options.min_in_frame if "in_frame" in faces.columns else True)
    )
    adult_times = _exclusion_times(faces, judged)
    if not options.allow_adult and len(adult_times):
        # The adult's own frames (distance 0) and those within the margin.
        good &= ~_near_any(faces["t"].to_numpy(dtype=float), adult_times, options.adult_margin_s)
    usable = faces[good].assign(_side=side[good])
    usable = usable.sort_values(["frame", "smile_prob", "_side"], ascending=[True, False, False])
    return usable.drop_duplicates("frame", keep="first").drop(columns="_side")


def smiling_moments(faces: pd.DataFrame, options: SelectionOptions) -> list[tuple[float, float]]:
    """``(first, last)`` second of each run of seconds in which a child's smoothed smile passes
    ``min_smile`` (seconds at most ``moment_gap_s`` apart belong to one run, a run at most
    ``max_moment_s`` long), in time order."""
    child = _child_mask(faces)
    times = np.unique(faces.loc[child & (_smile(faces) >= options.min_smile), "t"].to_numpy(dtype=float))
    runs: list[tuple[float, float]] = []
    for t in times:
        if runs and t - runs[-1][1] <= options.moment_gap_s and t - runs[-1][0] < options.max_moment_s:
            runs[-1] = (runs[-1][0], float(t))
        else:
            runs.append((float(t), float(t)))
    return runs


def best_per_moment(candidates: pd.DataFrame, moments: Sequence[tuple[float, float]]) -> pd.DataFrame:
    """Every candidate with its moment (``moment``) and its place in it (``moment_place``, 0 = the
    moment's best frame: fully in the frame first (``in_frame``, unknown counts as in), then the
    widest smile, then the sharpest). The selection takes at most one frame per moment: the
    best, or the next one where the best is a near-duplicate of a frame already taken."""
    if candidates.empty or not moments:
        return candidates.iloc[0:0].assign(moment=pd.Series(dtype="int64"), moment_place=pd.Series(dtype="int64"))
    starts = np.array([m[0] for m in moments])
    index = np.searchsorted(starts, candidates["t"].to_numpy(dtype=float), side="right") - 1
    in_frame = candidates["in_frame"] if "in_frame" in candidates.columns else pd.Series(1.0, index=candidates.index)
    ranked = candidates.assign(
        moment=index, _whole=(in_frame.fillna(1.0) >= 0.99).astype(int)
    ).sort_values(["moment", "_whole", "smile_prob", "sharpness", "t"], ascending=[True, False, False, False, True])
    ranked["moment_place"] = ranked.groupby("moment").cumcount()
    return ranked.drop(columns=["_whole"])


def _near_any(times: np.ndarray, sorted_marks: np.ndarray, margin: float) -> np.ndarray:
    """For each time, whether some mark lies within ``margin`` seconds of it."""
    at = np.searchsorted(sorted_marks, times)
    before = np.abs(times - sorted_marks[np.clip(at - 1, 0, len(sorted_marks) - 1)])
    after = np.abs(sorted_marks[np.clip(at, 0, len(sorted_marks) - 1)] - times)
    return np.minimum(before, after) <= margin


def selection_stats(
    scores: pd.DataFrame, options: SelectionOptions, candidates: int, faces: pd.DataFrame | None = None,
    moments: int = 0,
) -> SelectionStats:
    faces = judged_faces(scores, options) if faces is None else faces
    child = _child_mask(faces)
    tracks = faces.loc[faces["track"] >= 0, ["track"]].assign(child=child).drop_duplicates("track")
    return SelectionStats(
        frames=int(scores["frame"].nunique()),
        with_face=int(faces["frame"].nunique()),
        with_child=int(faces.loc[child, "frame"].nunique()),
        with_adult=int(faces.loc[~child, "frame"].nunique()),
        child_smiling=int(faces.loc[child & (_smile(faces) >= options.min_smile), "frame"].nunique()),
        candidates=candidates,
        moments=moments,
        tracks=int(len(tracks)),
        child_tracks=int(tracks["child"].sum()),
    )


def _far_enough(row: Any, taken: Sequence[Any], options: SelectionOptions, gap_s: float | None = None) -> bool:
    gap_s = options.min_gap_s if gap_s is None else gap_s
    for other in taken:
        if abs(float(row.t) - float(other.t)) < gap_s:
            return False
        if _is_hash(row.crop_hash) and _is_hash(other.crop_hash):
            if phash_distance(row.crop_hash, other.crop_hash) <= options.hash_distance:
                return False
    return True


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) > 0


def _to_pick(row: Any, rank: int) -> Pick:
    def num(value: Any) -> float:
        return float(value) if value is not None and not pd.isna(value) else math.nan

    return Pick(
        ref=FrameRef.from_record(row._asdict()),
        face=int(row.face),
        box=(float(row.x1), float(row.y1), float(row.x2), float(row.y2)),
        smile=num(row.smile_prob),
        child=num(row.child_prob),
        sharpness=num(row.sharpness),
        brightness=num(row.brightness),
        crop_hash=str(row.crop_hash) if _is_hash(row.crop_hash) else "",
        rank=rank,
        track=int(getattr(row, "track", -1)),
    )


def main_face_subject(faces: pd.DataFrame) -> pd.DataFrame:
    """An adult student's lesson: the subject is the main face, the one face of a frame with
    exactly one face in view; in a frame with two or more faces none is the subject, so the whole
    frame (and ``adult_margin_s`` around it) stays out. Returned as the judged ``faces`` with
    ``is_child`` and ``track_child`` re-labelled "is the subject", which the rest of the
    selection reads (the age model's verdict plays no part here)."""
    per_frame = faces.loc[faces["face"] >= 0, "frame"].value_counts()
    alone = (faces["frame"].map(per_frame).eq(1) & (faces["face"] >= 0)).astype(bool)
    return faces.assign(is_child=alone, track_child=alone)


SUBJECT_RULES = ("child", "adult")
"""The values of ``student_age_group``: whose face the GIF is made of (:func:`judged_faces`)."""


def select_highlights(table: FaceTable | pd.DataFrame, options: SelectionOptions | None = None) -> Selection:
    """Pick up to ``max_frames`` smiling frames of the subject (the child, or an adult student's
    own face) from the lesson's face table; the best first, then in lesson order. A ValueError
    names the columns a table without the scores stage's columns lacks."""
    options = options or SelectionOptions()
    try:
        scores = FaceTable.of(table).data
    except ValueError as error:
        raise ValueError(f"scores table lacks columns: {str(error).split('column(s) ')[-1]}") from None
    if options.student_age_group != "child":
        options = replace(options, allow_adult=False)  # anyone else in view always keeps a frame out

    judged = judge(scores, options)
    faces = judged_faces(scores, options, judged)
    candidates = candidate_faces(scores, options, faces, judged)
    moments = smiling_moments(faces, options)
    best = best_per_moment(candidates, moments)
    stats = selection_stats(scores, options, candidates=int(len(candidates)), faces=faces,
                            moments=int(best["moment"].nunique()))  # fmt: skip
    ranked = best.sort_values(["moment_place", "smile_prob", "sharpness", "t"], ascending=[True, False, False, True])
    taken = _greedy(ranked, options, options.min_gap_s)
    # As many picks as the moments allow at any gap: the picks made at the full gap stay (they
    # spread over the lesson) and the gap comes down step by step for the rest.
    possible = min(options.max_frames, len(_greedy(ranked, options, options.min_gap_floor_s)))
    gap = options.min_gap_s
    while len(taken) < possible and gap > options.min_gap_floor_s:
        gap = max(options.min_gap_floor_s, gap * 0.8)
        taken = _greedy(ranked, options, gap, taken)

    if len(taken) < options.min_frames:
        return Selection("no_highlight", _no_highlight_reason(stats, len(taken), options), [], stats)
    picks = [_to_pick(row, rank) for rank, row in enumerate(taken)]
    return Selection("ok", None, [picks[0], *sorted(picks[1:], key=lambda p: p.ref.t)], stats)


def _greedy(ranked: pd.DataFrame, options: SelectionOptions, gap_s: float, taken: Sequence[Any] = ()) -> list[Any]:
    """``taken`` plus candidates in ``ranked`` order, each taken when ``gap_s`` from the ones
    taken and no near-duplicate of them, up to ``max_frames`` (in the order taken)."""
    out = list(taken)
    moments = {getattr(row, "moment", None) for row in out}
    for row in ranked.itertuples(index=False):
        if len(out) == options.max_frames:
            break
        if getattr(row, "moment", None) in moments:  # one pick per moment
            continue
        if _far_enough(row, out, options, gap_s):
            out.append(row)
            moments.add(getattr(row, "moment", None))
    return out


def _no_highlight_reason(stats: SelectionStats, found: int, options: SelectionOptions) -> str:
    # Counts only: the reason ends up in logs and in the result, and holds no personal data.
    if stats.frames == 0:
        return "no frames were sampled from the lesson"
    child = options.student_age_group == "child"
    noun = "child" if child else "student"
    who = f"the {noun}"
    if stats.with_child == 0:
        if child:
            return f"no child's face was found in {stats.frames} sampled frames"
        return f"the student was never seen alone (exactly one face in view) in {stats.frames} sampled frames"
    if stats.child_smiling == 0:
        return f"{who} was not seen smiling (smile >= {options.min_smile:g}) in {stats.with_child} frames"
    adult = "" if options.allow_adult else (" with no adult visible" if child else " with nobody else in view")
    gap = f"{options.min_gap_s:g} s apart"
    if options.min_gap_floor_s < options.min_gap_s:  # the gap comes down where the GIF would be short
        gap = f"{options.min_gap_floor_s:g} s apart at least"
    return (
        f"only {found} distinct smiling moment(s), {options.min_frames} needed: {noun} in "
        f"{stats.with_child} frames, smiling in {stats.child_smiling}, {stats.candidates} of them "
        f"sharp, well lit{adult}; picks must be {gap} and not near-duplicates"
    )
