"""Selection stage: from the per-face scores table, pick the child's best smiling moments.

Input: the scores table (one row per detected face, one row with ``face == -1`` for a sampled
frame without a face; columns documented in :mod:`highlights.faces` / the README). Output: a
:class:`Selection` whose ``picks`` are in GIF order: the best frame first (Outlook for Windows
shows only a GIF's first frame), then the others in lesson order.

Rules, in the order they apply:

1. Privacy: a frame in which any adult face is detected (``is_child`` False, or unknown) is
   excluded entirely unless ``allow_adult``. Every detected face counts here, whatever its
   detection probability or quality: a blurred adult is still an adult. Frames within
   ``adult_margin_s`` of such a frame are excluded too: the detector misses a face in about one
   frame in 300, and an adult seen one second before and after is almost surely there in between.
2. The frame's face is its best child face: among the child faces that pass the quality filters
   (smile, sharpness, brightness, size, detection probability) the most smiling one, ties going to
   the larger face. A frame with two children therefore still gives one pick, framed on one face.
3. Greedy by score (smile probability, then sharpness): a candidate is taken when it is at least
   ``min_gap_s`` from every pick already taken and its ``crop_hash`` is more than
   ``hash_distance`` bits from theirs (no near-duplicates), until ``max_frames`` are taken.
4. Fewer than ``min_frames`` picks: status ``no_highlight`` with a reason (a normal outcome).

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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels

SCORE_COLUMNS = (
    "frame", "t", "at", "source", "offset_s", "face", "x1", "y1", "x2", "y2",
    "det_prob", "child_prob", "smile_prob", "is_child", "sharpness", "brightness", "crop_hash",
)  # fmt: skip


@dataclass(frozen=True)
class SelectionOptions:
    """Thresholds of the selection; every default is a documented choice, all are configurable.

    max_frames: 9 — the GIF is a short slideshow; nine ~1.2 s frames make a ~12 s loop.
    min_frames: 3 — one or two frames are a still, not a slideshow of "best moments"; below three
        the lesson gets ``no_highlight``.
    min_gap_s: 20 s between any two picks — a laugh lasts a few seconds, so 20 s apart means
        different moments spread over the lesson (a 30-minute lesson has room for 90 such slots).
    min_smile: 0.6 on the smile model's probability — precision over recall: a GIF of neutral
        faces is worse than no GIF.
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
    """

    max_frames: int = 9
    min_frames: int = 3
    min_gap_s: float = 20.0
    min_smile: float = 0.6
    allow_adult: bool = False
    adult_margin_s: float = 2.0
    min_sharpness: float = 40.0
    min_brightness: float = 50.0
    max_brightness: float = 220.0
    min_face_px: float = 40.0
    min_det_prob: float = 0.9
    hash_distance: int = 10
    student_age_group: str = "child"
    """Whose face the GIF is made of when the lessons file does not say (its
    ``student_age_group`` column): ``child`` (the child's, never a frame with an adult) or
    ``adult`` (the student's own, never a frame with anyone else). See :data:`SUBJECT_RULES`."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError("need 1 <= min_frames <= max_frames")
        if self.student_age_group not in SUBJECT_RULES:
            raise ValueError(f"student_age_group must be one of {', '.join(SUBJECT_RULES)}, not {self.student_age_group!r}")
        if not all(0 <= p <= 1 for p in (self.min_smile, self.min_det_prob)):
            raise ValueError("min_smile and min_det_prob are probabilities: between 0 and 1")
        if self.min_gap_s < 0 or self.hash_distance < 0 or self.adult_margin_s < 0:
            raise ValueError("min_gap_s, adult_margin_s and hash_distance must be >= 0")


@dataclass(frozen=True)
class Pick:
    """One chosen frame and the face the GIF is framed on."""

    frame: int
    t: float  # seconds since lesson start
    at: str  # ISO-8601 wall-clock time
    source: str  # recording file name
    offset_s: float  # offset in that file, for highlights.frames.read_frame_at
    face: int
    box: Box
    smile: float
    child: float
    sharpness: float
    brightness: float
    crop_hash: str
    rank: int  # 0 = the best pick by score; GIF order is ``Selection.picks``

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"box": list(self.box)}


@dataclass(frozen=True)
class SelectionStats:
    """Counts over sampled frames, for the result, the report and the no-highlight reason."""

    frames: int = 0  # sampled frames in the table
    with_face: int = 0
    with_child: int = 0  # with the subject's face: the child, or an adult student's main face
    with_adult: int = 0  # with anyone else
    child_smiling: int = 0  # frames with a child face at or above min_smile (before other filters)
    candidates: int = 0  # frames that passed every filter (adult rule included)


@dataclass(frozen=True)
class Selection:
    status: Literal["ok", "no_highlight"]
    reason: str | None
    picks: list[Pick] = field(default_factory=list)  # GIF order: best first, then lesson order
    stats: SelectionStats = field(default_factory=SelectionStats)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "picks": [p.to_dict() for p in self.picks],
            "stats": asdict(self.stats),
        }


def phash_distance(a: str, b: str) -> int:
    """Hamming distance between two hex perceptual hashes (``str(imagehash.phash(...))``)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _child_mask(faces: pd.DataFrame) -> pd.Series:
    # Unknown (NaN / NA) counts as "not a child": the adult exclusion errs on the safe side.
    return faces["is_child"].eq(True).fillna(False).astype(bool)


def candidate_faces(scores: pd.DataFrame, options: SelectionOptions) -> pd.DataFrame:
    """One row per usable frame: its best child face, after the adult rule and quality filters."""
    faces = scores[scores["face"] >= 0]
    child = _child_mask(faces)
    side = np.maximum(faces["x2"] - faces["x1"], faces["y2"] - faces["y1"])
    # NaN in any column fails its comparison, so a face with missing scores is never chosen.
    good = (
        child
        & (faces["smile_prob"] >= options.min_smile)
        & (faces["sharpness"] >= options.min_sharpness)
        & (faces["brightness"] >= options.min_brightness)
        & (faces["brightness"] <= options.max_brightness)
        & (side >= options.min_face_px)
        & (faces["det_prob"] >= options.min_det_prob)
    )
    adult_times = np.sort(faces.loc[~child, "t"].to_numpy(dtype=float))
    if not options.allow_adult and len(adult_times):
        # The adult's own frames (distance 0) and those within the margin.
        good &= ~_near_any(faces["t"].to_numpy(dtype=float), adult_times, options.adult_margin_s)
    usable = faces[good].assign(_side=side[good])
    usable = usable.sort_values(["frame", "smile_prob", "_side"], ascending=[True, False, False])
    return usable.drop_duplicates("frame", keep="first").drop(columns="_side")


def _near_any(times: np.ndarray, sorted_marks: np.ndarray, margin: float) -> np.ndarray:
    """For each time, whether some mark lies within ``margin`` seconds of it."""
    at = np.searchsorted(sorted_marks, times)
    before = np.abs(times - sorted_marks[np.clip(at - 1, 0, len(sorted_marks) - 1)])
    after = np.abs(sorted_marks[np.clip(at, 0, len(sorted_marks) - 1)] - times)
    return np.minimum(before, after) <= margin


def selection_stats(scores: pd.DataFrame, options: SelectionOptions, candidates: int) -> SelectionStats:
    faces = scores[scores["face"] >= 0]
    child = _child_mask(faces)
    return SelectionStats(
        frames=int(scores["frame"].nunique()),
        with_face=int(faces["frame"].nunique()),
        with_child=int(faces.loc[child, "frame"].nunique()),
        with_adult=int(faces.loc[~child, "frame"].nunique()),
        child_smiling=int(faces.loc[child & (faces["smile_prob"] >= options.min_smile), "frame"].nunique()),
        candidates=candidates,
    )


def _far_enough(row: Any, taken: Sequence[Any], options: SelectionOptions) -> bool:
    for other in taken:
        if abs(float(row.t) - float(other.t)) < options.min_gap_s:
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
        frame=int(row.frame),
        t=float(row.t),
        at=str(row.at),
        source=str(row.source),
        offset_s=float(row.offset_s),
        face=int(row.face),
        box=(float(row.x1), float(row.y1), float(row.x2), float(row.y2)),
        smile=num(row.smile_prob),
        child=num(row.child_prob),
        sharpness=num(row.sharpness),
        brightness=num(row.brightness),
        crop_hash=str(row.crop_hash) if _is_hash(row.crop_hash) else "",
        rank=rank,
    )


def child_subject(scores: pd.DataFrame) -> pd.DataFrame:
    """A child's lesson: the subject is any face the age model calls a child (``is_child``);
    every other face counts as an adult."""
    return scores


def main_face_subject(scores: pd.DataFrame) -> pd.DataFrame:
    """An adult student's lesson: the subject is the main face, the one face of a frame with
    exactly one face in view; in a frame with two or more faces none is the subject, so the whole
    frame (and ``adult_margin_s`` around it) stays out. Returned as ``scores`` with ``is_child``
    re-labelled "is the subject", which the rest of the selection reads."""
    faces = scores["face"] >= 0
    per_frame = scores.loc[faces, "frame"].value_counts()
    alone = scores["frame"].map(per_frame).eq(1) & faces
    return scores.assign(is_child=alone.astype(bool))


SUBJECT_RULES = {"child": child_subject, "adult": main_face_subject}
"""``student_age_group`` -> the rule that marks the subject's faces (``is_child`` True)."""


def select_highlights(scores: pd.DataFrame, options: SelectionOptions | None = None) -> Selection:
    """Pick up to ``max_frames`` smiling frames of the subject (the child, or an adult student's
    own face); the best first, then in lesson order."""
    options = options or SelectionOptions()
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"scores table lacks columns: {', '.join(missing)}")
    scores = SUBJECT_RULES[options.student_age_group](scores)
    if options.student_age_group != "child":
        options = replace(options, allow_adult=False)  # anyone else in view always keeps a frame out

    candidates = candidate_faces(scores, options)
    stats = selection_stats(scores, options, candidates=int(len(candidates)))
    ranked = candidates.sort_values(["smile_prob", "sharpness", "t"], ascending=[False, False, True])
    taken: list[Any] = []
    for row in ranked.itertuples(index=False):
        if len(taken) == options.max_frames:
            break
        if _far_enough(row, taken, options):
            taken.append(row)

    if len(taken) < options.min_frames:
        return Selection("no_highlight", _no_highlight_reason(stats, len(taken), options), [], stats)
    picks = [_to_pick(row, rank) for rank, row in enumerate(taken)]
    return Selection("ok", None, [picks[0], *sorted(picks[1:], key=lambda p: p.t)], stats)


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
    return (
        f"only {found} distinct smiling moment(s), {options.min_frames} needed: {noun} in "
        f"{stats.with_child} frames, smiling in {stats.child_smiling}, {stats.candidates} of them "
        f"sharp, well lit{adult}; picks must be {options.min_gap_s:g} s apart and not near-duplicates"
    )
