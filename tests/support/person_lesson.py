"""Webcam-like lessons for "who is in the lesson": one child, a parent seen in several ways, a
poster on the wall, a sibling, with per-second truth.

:func:`build_person_lesson` writes a student recording (VP8 WebM segments, as a browser writes
them; the student drops out once), a teacher recording (a whiteboard, no face), ``manifest.csv``,
``lessons.csv`` and ``truth.csv`` (one row per lesson second) into a folder, and returns a
:class:`PersonLesson`. It reuses the compositing of ``tests/real_face_lesson.py`` (room, body
under the face, feathered mask, drift, zoom, tilt, light, grain, the webcam conditions).

Who is in it (every photo real, from ``../shared/data``; only file names and labels are here):

- **The student**: ONE child of FG-NET (``faces/age/fgnet``, several photos of one person from
  birth to 12) for the whole lesson, in different photos (ages, lighting, scans) under changing
  webcam conditions. Smiling / neutral are hand labels (``data/fgnet_children_smile.csv``: 30
  people, each with >= 2 smiling and >= 2 neutral photos under 13). A different person per seed.
- **The parent**: one identity of the LFW expression set (``faces/smile/lfw_expressions``) per
  lesson, from the smile model's held-out identities (:data:`PARENTS`), in several photos,
  smiling ones first. Seen as: a face beside the child; alone; **half a face** at the frame edge
  (the face centre 0.05-0.25 face widths inside the edge, shoulder below); **shoulder only**
  (a shoulder, sleeve and hand reaching in from the side edge, or a torso standing behind the
  child with the head above the top edge: not one face pixel in the frame).
- **The poster**: a framed photo of a smiling face on the wall (an LFW adult on even seeds, a
  smiling FG-NET child of another person on odd seeds), 48-70 px face, for the whole lesson. The
  room is a camera view over a larger wall: the picture moves only with the camera's own slow
  drift (a few pixels); on seeds where :func:`camera_reaim` says so, the laptop is turned for
  about 40 s and the poster leaves the frame. People occlude it when they pass in front (the
  truth measures the visible share of its face).
- **A sibling**: another FG-NET child (another person), smiling, beside the (neutral) student
  and once instead of the student.

The lesson (:data:`PLAN`, 332 s, seconds since the student's camera came on): fifteen smiling
moments of the student alone (4-6 s), neutral seconds between; the parent only in minutes 1, 3 and
4 (of 0-5), so the per-minute parent chart has minutes with and without a parent; at least 3 neutral seconds between a smile and any parent or sibling
segment, except that the student smiles *during* some parent segments on purpose (a smiling
child beside a parent / under a parent's shoulder / beside a half face: frames that must not be
chosen). The student's body without a face (leaning out of the picture) for 5 s; an empty room
(the poster still there); a 12 s disconnect.

Each segment gets a webcam condition (``real_face_lesson.CONDITIONS``): the smiling moments go
through every hard condition (dim, backlit, colour cast, edge-cut, small, blur, squeezed, jpeg),
others draw one; two-person layouts never draw ``edge`` / ``small`` (those move the student).

Truth (``truth.csv``, :data:`TRUTH_COLUMNS`), for the frame at each whole lesson second ``k``
(the frame the job samples; segments change on whole seconds, so a decoder that returns the frame
before may see the previous segment: allow a second at segment edges): the student in view (face
or body), the student's face in view, smiling; the parent in view by ``face`` / ``half`` /
``shoulder``; the poster visible (its face at least half in the frame and at least half
unoccluded), its box; the sibling; nobody in view (the poster is nobody); offline. Face boxes are
approximate (the drawn face's centre and width), for telling which face a pick is on.

>>> lesson = build_person_lesson(shared_data, tmp_path / "lesson", seed=0, fps=2)  # doctest: +SKIP
>>> lesson.truth[40]["adult"], lesson.truth[40]["poster"]  # doctest: +SKIP
('face', True)
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from highlights.media.synthetic import write_lesson_files, write_video

from support.real_face_lesson import (
    _FAST_VP8,
    _SKIN_TINT,
    CONDITIONS,
    LESSON_START,
    SIZE,
    TEACHER_LEAD_S,
    TEACHER_TAIL_S,
    FaceImage,
    _apply_condition,
    _compress,
    _draw_person,
    _feathered_ellipse,
    _load_sprite,
    _Sprite,
    room_background,
    teacher_frame,
)

DATA = Path(__file__).resolve().parent.parent / "data"
FGNET_CSV = DATA / "fgnet_children_smile.csv"
LESSON_ID = "person-faces-0001"
FPS = 2.0
MARGIN = (170, 60)
"""The wall is wider and taller than the picture by this much on each side: the camera turns."""
CACHE = Path(os.environ.get("HIGHLIGHTS_CACHE") or Path.home() / ".cache" / "highlights") / "bench-persons"

PARENTS = (
    "Bill_Gates", "Edmund_Stoiber", "George_HW_Bush", "Lance_Armstrong", "Pervez_Musharraf",
    "Recep_Tayyip_Erdogan", "Atal_Bihari_Vajpayee", "Hu_Jintao", "Jackie_Chan", "Jennifer_Aniston",
    "Ann_Veneman", "Gordon_Brown", "Jose_Maria_Aznar", "Wen_Jiabao", "Ben_Affleck", "Bob_Hope",
)  # fmt: skip
"""LFW expression-set identities with >= 3 smiling and >= 2 neutral photos, all among the smile
model's held-out (validation) people (``highlights.training.train.validation_split``, seed 0);
the child/adult model never saw LFW. One per lesson (seed order); the poster's adult is another
of the held-out people (:data:`POSTER_ADULTS`)."""
POSTER_ADULTS = (
    "Jason_Kidd", "Nicanor_Duarte_Frutos", "Thaksin_Shinawatra", "Tung_Chee-hwa", "William_Ford_Jr",
    "Yashwant_Sinha", "James_Kelly", "Mohammad_Khatami",
)  # fmt: skip

# Segment kinds. "solo" layouts show one person at the centre; the others are described in _people.
KINDS = (
    "smile",           # the student smiling, alone
    "neutral",         # the student not smiling, alone
    "body",            # the student's body at the frame edge, the face out of the frame
    "beside",          # the parent's face beside the student
    "parent_alone",    # the parent alone
    "half",            # the student, and half the parent's face at the frame edge
    "shoulder",        # the student, and the parent's shoulder/arm/torso, no face pixel
    "sibling_beside",  # the student (neutral) and a smiling sibling beside
    "sibling_alone",   # a smiling sibling instead of the student
    "nobody",          # an empty room (the poster still on the wall)
    "offline",         # the student's camera is off
)  # fmt: skip
ADULT_VIEW = {"beside": "face", "parent_alone": "face", "half": "half", "shoulder": "shoulder"}

# (kind, seconds, the student smiles during it). 332 s; the parent is in view in minutes 1, 3
# and 4 only (lesson seconds 60-120, 180-240, 240-300), never in minutes 0, 2 and 5.
PLAN: tuple[tuple[str, int, bool], ...] = (
    # minute 0: the student alone, once leaning out of the picture (a body, no face)
    ("neutral", 5, False), ("smile", 5, True), ("neutral", 6, False), ("body", 5, False), ("neutral", 5, False),
    ("smile", 6, True), ("neutral", 7, False), ("smile", 5, True), ("neutral", 6, False), ("smile", 5, True),
    ("neutral", 5, False),
    # minute 1: the parent beside, a shoulder, half a face
    ("beside", 12, False), ("neutral", 4, False), ("smile", 5, True), ("neutral", 4, False),
    ("shoulder", 10, False), ("neutral", 3, False), ("half", 8, False), ("neutral", 4, False), ("smile", 5, True),
    ("neutral", 5, False),
    # minute 2: a sibling beside, an empty room
    ("smile", 5, True), ("neutral", 6, False), ("sibling_beside", 10, False), ("neutral", 4, False),
    ("smile", 5, True), ("neutral", 5, False), ("nobody", 6, False), ("neutral", 4, False),
    ("smile", 6, True), ("neutral", 9, False),
    # minute 3: the parent alone, a shoulder over a smiling child, beside a smiling child
    ("neutral", 2, False), ("parent_alone", 10, False), ("neutral", 3, False), ("smile", 4, True),
    ("neutral", 3, False), ("shoulder", 12, True), ("neutral", 4, False), ("smile", 5, True),
    ("neutral", 3, False), ("beside", 10, True), ("neutral", 4, False),
    # minute 4: a disconnect, the sibling instead of the student, half a face beside a smiling child
    ("smile", 5, True), ("neutral", 4, False), ("offline", 12, False), ("neutral", 4, False),
    ("smile", 5, True), ("neutral", 4, False), ("sibling_alone", 8, False), ("neutral", 3, False),
    ("half", 8, True), ("neutral", 7, False),
    # minute 5: the student alone
    ("smile", 5, True), ("neutral", 7, False), ("smile", 4, True), ("neutral", 6, False),
    ("smile", 5, True), ("neutral", 5, False),
)  # fmt: skip

SEEDS = {"tune": (20, 21, 22), "report": (0, 1, 2, 3)}
"""Disjoint seed sets: tune on ``tune``, quote ``report``. Each seed has its own student,
sibling, parent and poster (students of seeds 0-29 are 30 different people)."""

TRUTH_COLUMNS = (
    "t", "segment", "kind", "condition", "offline", "student", "student_face", "student_smiling",
    "student_box", "adult", "adult_box", "sibling", "sibling_box", "poster", "poster_box",
    "poster_frame_box", "poster_visible", "nobody", "adult_drawn_box",
)  # fmt: skip


@dataclass(frozen=True)
class Photo:
    """A photo in ``../shared/data/faces``: ``set_path`` relative to ``faces/``; ``person`` its
    FG-NET person or LFW identity; ``smile`` True / False (None: not labelled)."""

    set_path: str
    file: str
    person: str
    smile: bool | None = None
    age: int | None = None

    def path(self, shared_data: Path) -> Path:
        return shared_data / "faces" / self.set_path / self.file


@dataclass(frozen=True)
class Segment:
    """``[start_s, end_s)``: ``kind``, whether the student smiles, the photos of the student,
    the other person (parent or sibling), and the webcam condition."""

    kind: str
    start_s: int
    end_s: int
    smiling: bool
    student: Photo | None
    other: Photo | None
    condition: str
    side: int  # -1 left, 1 right: where the half face / shoulder / body comes in

    def seconds(self) -> range:
        return range(self.start_s, self.end_s)


@dataclass(frozen=True)
class Cast:
    """Who is in the lesson of one seed."""

    student: str
    sibling: str
    parent: str
    poster: Photo
    reaim: tuple[int, int] | None  # lesson seconds the camera is turned away from the poster


@dataclass
class PersonLesson:
    folder: Path
    manifest: Path
    lessons: Path
    lesson_id: str
    start: datetime
    duration_s: int
    seed: int
    cast: Cast
    segments: tuple[Segment, ...]
    truth: dict[int, dict] = field(default_factory=dict)
    recordings: tuple[tuple[str, str, int, int], ...] = ()
    fps: float = FPS
    variant: str = "persons"

    def segment_at(self, t: float) -> Segment | None:
        for segment in self.segments:
            if segment.start_s <= t < segment.end_s:
                return segment
        return None

    def near(self, t: float, test, slack_s: float = 1.0) -> bool:
        """Whether some second within ``slack_s`` of ``t`` has ``test(truth row)`` true."""
        lo, hi = int(np.floor(t - slack_s)), int(np.ceil(t + slack_s))
        return any(test(self.truth[k]) for k in range(lo, hi + 1) if k in self.truth and abs(k - t) <= slack_s)

    def smiling_alone_moments(self) -> list[Segment]:
        return [s for s in self.segments if s.kind == "smile"]


# --------------------------------------------------------------------------- photos


def read_children() -> dict[str, list[Photo]]:
    """FG-NET person -> the hand-labelled photos (under 13) of ``data/fgnet_children_smile.csv``."""
    out: dict[str, list[Photo]] = {}
    with open(FGNET_CSV, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            out.setdefault(row["person"], []).append(
                Photo("age/fgnet", row["file"], row["person"], row["smile"].strip() == "1", int(row["age"]))
            )
    return dict(sorted(out.items()))


def read_lfw(shared_data: Path) -> dict[str, list[Photo]]:
    """LFW identity -> its photos (smiling = ``happiness``), first row of a file kept."""
    out: dict[str, list[Photo]] = {}
    seen: set[str] = set()
    with open(shared_data / "faces" / "smile" / "lfw_expressions" / "labels.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            name = (row.get("identity") or "").strip()
            if name and row["file"] not in seen:
                seen.add(row["file"])
                out.setdefault(name, []).append(Photo("smile/lfw_expressions", row["file"], name, row["emotion"] == "happiness"))
    return out


_BOXES: dict[str, list[float] | None] | None = None
_DETECTOR = None


def face_box(photo: Photo, shared_data: Path) -> tuple[float, float, float, float] | None:
    """The largest face MTCNN (the job's detector, default settings) finds in the photo, cached
    in ``CACHE/photo-boxes.json`` (the photo's file name and four numbers, no pixels)."""
    global _BOXES, _DETECTOR
    path = CACHE / "photo-boxes.json"
    if _BOXES is None:
        _BOXES = json.loads(path.read_text()) if path.is_file() else {}
    key = f"{photo.set_path}/{photo.file}"
    if key not in _BOXES:
        if _DETECTOR is None:
            from highlights.models.detection import FaceDetector

            _DETECTOR = FaceDetector()
        image = cv2.cvtColor(cv2.imread(str(photo.path(shared_data)), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        found = _DETECTOR.detect([image])[0]
        _BOXES[key] = [round(float(v), 1) for v in found.boxes[0]] if len(found) else None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(_BOXES, indent=0, sort_keys=True))
        os.replace(tmp, path)
    box = _BOXES[key]
    return tuple(box) if box else None  # type: ignore[return-value]


_FGNET_FACE = 0.72  # the MTCNN box's share of the square crop's width
_FGNET_AXES = (0.44, 0.5)


def _square_around_face(image: np.ndarray, box: Sequence[float], fraction: float, out: int = 128) -> np.ndarray:
    """A square crop of ``image`` (RGB float32 ``out`` px) in which the face box is ``fraction``
    of the width, the face a little above the centre; outside the photo the edge is repeated."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, (y2 - y1) * 0.85) / fraction
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + 0.04 * side
    scale = out / side
    matrix = np.array([[scale, 0, out / 2 - cx * scale], [0, scale, out / 2 - cy * scale]], np.float32)
    return cv2.warpAffine(image, matrix, (out, out), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def _rgb(photo: Photo, shared_data: Path) -> np.ndarray:
    image = cv2.imread(str(photo.path(shared_data)), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read {photo.path(shared_data)}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)


def load_sprite(photo: Photo, shared_data: Path, rng: np.random.Generator) -> _Sprite:
    """A sprite like ``real_face_lesson._load_sprite``; FG-NET photos (whole photos) are cut to
    a square around the face MTCNN finds in them first."""
    if photo.set_path != "age/fgnet":
        return _load_sprite(FaceImage(photo.set_path, photo.file, "adult"), shared_data, rng)
    box = face_box(photo, shared_data)
    if box is None:
        raise ValueError(f"no face found in {photo.file}")
    crop = _square_around_face(_rgb(photo, shared_data), box, _FGNET_FACE)
    if np.ptp(crop, axis=2).max() < 8:  # a grayscale scan
        crop = np.clip(crop * _SKIN_TINT, 0, 255)
    if rng.integers(0, 2):
        crop = crop[:, ::-1].copy()
    skin = tuple(float(c) for c in crop[104:120, 52:76].reshape(-1, 3).mean(axis=0))
    shirt = tuple(float(c) for c in rng.integers(30, 220, 3))
    return _Sprite(crop, _feathered_ellipse(128, _FGNET_AXES), _FGNET_FACE, shirt, skin)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the plan


def _rotation(items: Sequence, seed: int, salt: int) -> list:
    order = np.random.default_rng([salt, 7]).permutation(len(items))
    k = seed % len(items)
    return [items[i] for i in np.roll(order, -k)]


def cast_for(seed: int, shared_data: Path) -> Cast:
    """The student, sibling, parent and poster of a seed: students rotate through the 30
    labelled people (seeds 0-29 all differ), the sibling is 15 places on."""
    people = list(read_children())
    order = _rotation(people, seed, salt=1)
    student, sibling = order[0], order[len(order) // 2]
    parent = _rotation(PARENTS, seed, salt=2)[0]
    rng = np.random.default_rng([seed, 3])
    if seed % 2 == 0:
        name = _rotation(POSTER_ADULTS, seed // 2, salt=4)[0]
        smiling = [p for p in read_lfw(shared_data)[name] if p.smile]
        poster = smiling[int(rng.integers(0, len(smiling)))]
    else:
        others = [p for p in order[1:] if p not in (student, sibling)]
        person = others[int(rng.integers(0, len(others)))]
        smiling = [p for p in read_children()[person] if p.smile]
        poster = smiling[int(rng.integers(0, len(smiling)))]
    reaim = (150, 190) if seed % 4 in (1, 2) else None
    return Cast(student, sibling, parent, poster, reaim)


def _conditions(rng: np.random.Generator) -> list[str]:
    hard = [c for c in CONDITIONS if c != "plain"]
    smiles = sum(1 for kind, _, _ in PLAN if kind == "smile")
    smile_conditions = [hard[i % len(hard)] for i in rng.permutation(smiles)]
    two = [c for c in CONDITIONS if c not in ("edge", "small")]
    out = []
    for kind, _, _ in PLAN:
        if kind == "smile":
            out.append(smile_conditions.pop())
        elif kind in ("nobody", "offline", "body"):
            out.append("plain" if rng.random() < 0.5 else "dim")
        elif kind in ("neutral", "sibling_alone", "parent_alone"):
            out.append(CONDITIONS[int(rng.integers(0, len(CONDITIONS)))])
        else:
            out.append(two[int(rng.integers(0, len(two)))])
    return out


STUDENT_AGE_SPAN = 5
"""A student's photos in one lesson lie within this many years of age: one lesson shows one child
at one age (FG-NET photographs each child from babyhood on), in different photos and looks."""


def one_age(photos: Sequence[Photo], span: int = STUDENT_AGE_SPAN) -> list[Photo]:
    """The photos of the ``span``-year window of ages that holds the most of them, with at least
    one smiling and one neutral photo (all of them where no window does)."""
    best: list[Photo] = []
    for start in sorted({p.age for p in photos if p.age is not None}):
        window = [p for p in photos if p.age is not None and start <= p.age <= start + span]
        if any(p.smile for p in window) and any(not p.smile for p in window) and len(window) > len(best):
            best = window
    return best or list(photos)


def plan_segments(seed: int, shared_data: Path) -> tuple[Cast, tuple[Segment, ...]]:
    """The segments of the seed's lesson, each with its photos and condition (deterministic)."""
    cast = cast_for(seed, shared_data)
    rng = np.random.default_rng([seed, 5])
    children = read_children()
    mine = one_age(children[cast.student])
    smiling = [mine[i] for i in rng.permutation(len(mine)) if mine[i].smile]
    neutral = [mine[i] for i in rng.permutation(len(mine)) if not mine[i].smile]
    sibling = [p for p in children[cast.sibling] if p.smile]
    parent = read_lfw(shared_data)[cast.parent]
    parent_photos = [p for p in parent if p.smile] + [p for p in parent if not p.smile]
    parent_photos = [parent_photos[i] for i in rng.permutation(min(len(parent_photos), 6))]
    conditions = _conditions(rng)
    segments, t, counters = [], 0, {"s": 0, "n": 0, "p": 0, "sib": 0}

    def take(pool: list[Photo], key: str) -> Photo:
        photo = pool[counters[key] % len(pool)]
        counters[key] += 1
        return photo

    for (kind, length, smiles), condition in zip(PLAN, conditions):
        student = None
        if kind not in ("sibling_alone", "nobody", "offline", "parent_alone"):
            student = take(smiling, "s") if smiles else take(neutral, "n")
        other = None
        if kind in ADULT_VIEW:
            other = take(parent_photos, "p")
        elif kind.startswith("sibling"):
            other = take(sibling, "sib")
        side = 1 if rng.random() < 0.5 else -1
        segments.append(Segment(kind, t, t + length, smiles, student, other, condition, side))
        t += length
    return cast, tuple(segments)


# --------------------------------------------------------------------------- drawing


@dataclass
class _Figure:
    """One person to draw at one instant: ``role`` student / parent / sibling; ``face_px`` the
    face's width (the photo is wider: ``face_px / face_fraction``)."""

    role: str
    sprite: _Sprite
    cx: float
    cy: float
    face_px: float
    tilt: float
    arm: tuple[float, float] | None = None  # the hand's position, for a reaching arm
    torso_dx: float = 0.0  # a torso this far from under the head (leaning out of the picture)
    body: str | None = None
    """A real body without its face (``side``: a shoulder and arm at the side edge; ``top``: a
    torso from the top edge), from the head-pose clip of ``../shared/data``: drawn shapes are no
    person to a person model, and a shoulder at the edge is what it must find."""
    body_frame: int = 0


def _people(segment: Segment, sprites: dict[str, _Sprite], t: float, phase: float) -> list[_Figure]:
    """Who is where at lesson time ``t``, drawn in list order (back to front)."""
    width, height = SIZE
    drift_x = 18 * np.sin(t / 4.3 + phase) + 6 * np.sin(t / 1.7 + 2 * phase)
    drift_y = 9 * np.cos(t / 3.1 + phase)
    zoom = 1.0 + 0.08 * np.sin(t / 6.0 + phase)
    tilt = 5.0 * np.sin(t / 3.7 + phase)
    kind, side = segment.kind, segment.side
    solo_px = height * 0.29 * zoom
    out: list[_Figure] = []

    def solo(role: str) -> _Figure:
        cx, cy, face_px = width * 0.5 + drift_x, height * 0.43 + drift_y, solo_px
        if segment.condition == "small":
            face_px *= 0.45
            cy = height * 0.5 + drift_y * 0.5
        elif segment.condition == "edge":
            cut = 0.2 + 0.15 * (1 + np.sin(t / 1.9 + phase))
            cx = width / 2 + side * (width / 2 - face_px * (0.5 - cut))
        return _Figure(role, sprites[role], cx, cy, face_px, tilt)

    if kind in ("smile", "neutral"):
        out.append(solo("student"))
    elif kind == "sibling_alone":
        out.append(solo("sibling"))
    elif kind == "parent_alone":
        out.append(solo("parent"))
    elif kind == "body":  # leaning out: the face beyond the side edge, a real shoulder and arm inside
        inner = width / 2 + side * width * (0.12 + 0.04 * np.sin(t / 2.0))
        out.append(_Figure("student", sprites["student"], inner, height * 0.30 + drift_y, solo_px, 0.0,
                           body="side", body_frame=int(t * 2)))  # fmt: skip
    elif kind in ("beside", "sibling_beside"):
        other = "parent" if kind == "beside" else "sibling"
        other_px = height * (0.31 if other == "parent" else 0.26) * zoom
        out.append(_Figure("student", sprites["student"], width * 0.31 + drift_x, height * 0.44 + drift_y, height * 0.28 * zoom, tilt))
        out.append(_Figure(other, sprites[other], width * 0.70 - 0.5 * drift_x, height * 0.40 - drift_y, other_px, -0.6 * tilt))
    elif kind == "half":  # the child a little off centre, the parent's face half out of the frame
        out.append(_Figure("student", sprites["student"], width * (0.5 - 0.08 * side) + 0.6 * drift_x,
                           height * 0.44 + drift_y, height * 0.27 * zoom, tilt))  # fmt: skip
        face_px = height * 0.33 * zoom
        cx = width / 2 + side * (width / 2 - face_px * (0.05 + 0.1 * (1 + np.sin(t / 2.1))))
        out.append(_Figure("parent", sprites["parent"], cx, height * 0.40 - 0.5 * drift_y, face_px, -tilt))
    elif kind == "shoulder":
        face_px = height * 0.33 * zoom
        photo_w = face_px / sprites["parent"].face_fraction
        child = _Figure("student", sprites["student"], width * (0.5 - 0.06 * side) + 0.6 * drift_x,
                        height * 0.44 + drift_y, height * 0.28 * zoom, tilt)  # fmt: skip
        if segment.start_s % 2 == 0:  # at the side: a real shoulder and arm reaching in
            inner = width / 2 + side * width * (0.24 + 0.03 * np.sin(t / 2.3))
            out += [child, _Figure("parent", sprites["parent"], inner, height * 0.35, face_px, 0.0, body="side",
                                   body_frame=int(t * 2))]  # fmt: skip
        else:  # standing behind the child: a real torso from the top edge, the head above it
            cx = width / 2 + side * width * 0.30 + 0.5 * drift_x
            out += [_Figure("parent", sprites["parent"], cx, -photo_w * 0.1, face_px, 0.0, body="top",
                            body_frame=int(t * 2)), child]  # fmt: skip
    return out


BODY_CLIP = "video/head-pose-face-detection-female-and-male.gif"
"""Two adults framed like a video call (CC-BY-4.0): their shoulders, arms and torsos, never their faces."""
_BODY_CROPS = {"side": (slice(165, 270), slice(30, 215)), "top": (slice(162, 270), slice(245, 450))}
"""(rows, columns) of the clip's frames: the woman's shoulders, hair and arms below her face, and
the man's t-shirt and arms below his chin."""
_body_cache: dict[str, list[np.ndarray]] = {}


def real_bodies(shared_data: Path, kind: str) -> list[np.ndarray]:
    """RGBA crops (one per frame of the clip) of a real body without its face; alpha where the
    pixel is not the clip's plain wall."""
    if kind not in _body_cache:
        import imageio.v3 as iio

        rows, cols = _BODY_CROPS[kind]
        crops = []
        for frame in iio.imiter(shared_data / BODY_CLIP):
            full = np.ascontiguousarray(frame[..., :3]).astype(np.float32)
            # The wall, row by row: its colour at the left edge, between the two people and at
            # the right edge, linearly between them (the light falls off across it).
            anchors = np.array([9.0, 230.0, full.shape[1] - 9.0])
            colours = np.stack([np.median(full[:, :18], axis=1), np.median(full[:, 222:238], axis=1),
                                np.median(full[:, -18:], axis=1)], axis=1)  # (rows, 3 anchors, rgb)
            columns = np.arange(full.shape[1], dtype=np.float32)
            wall = np.stack([np.stack([np.interp(columns, anchors, colours[r, :, c]) for c in range(3)], axis=1)
                             for r in range(full.shape[0])])
            rgb = full[rows, cols]
            alpha = (np.abs(rgb - wall[rows, cols]).max(axis=2) > 22).astype(np.uint8)
            alpha = cv2.morphologyEx(alpha, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
            alpha = cv2.morphologyEx(alpha, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
            alpha = cv2.GaussianBlur(alpha.astype(np.float32), (5, 5), 0)
            crops.append(np.dstack([rgb, alpha]))
        _body_cache[kind] = crops
    return _body_cache[kind]


def _paste(canvas: np.ndarray, rgba: np.ndarray, x: float, y: float, shade: float) -> None:
    """``rgba`` onto ``canvas`` with its top-left corner at (x, y), clipped to the canvas."""
    h, w = rgba.shape[:2]
    x0, y0 = int(round(x)), int(round(y))
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(canvas.shape[1], x0 + w), min(canvas.shape[0], y0 + h)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    part = rgba[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    alpha = part[..., 3:4]
    canvas[cy0:cy1, cx0:cx1] = canvas[cy0:cy1, cx0:cx1] * (1 - alpha) + part[..., :3] * shade * alpha


def _draw_body(canvas: np.ndarray, figure: _Figure, shade: float) -> None:
    """A real body (:func:`real_bodies`), as big as a person beside the camera. At the side it is
    bottom-aligned, its inner edge at ``figure.cx`` and the rest beyond the frame's edge; from the
    top it is centred on ``figure.cx`` with its upper part above the frame."""
    crops = _body_cache[figure.body]
    crop = crops[figure.body_frame % len(crops)]
    height = SIZE[1] * (0.5 if figure.body == "side" else 0.36)
    scale = height / crop.shape[0]
    crop = cv2.resize(crop, (int(crop.shape[1] * scale), int(height)), interpolation=cv2.INTER_LINEAR)
    if figure.body == "side":
        right = figure.cx > SIZE[0] / 2
        if right:
            crop = crop[:, ::-1]  # the arm reaches in towards the centre
        x = figure.cx if right else figure.cx - crop.shape[1]
        _paste(canvas, crop, x, SIZE[1] - crop.shape[0], shade)
        return
    _paste(canvas, crop, figure.cx - crop.shape[1] / 2, figure.cy - crop.shape[0] * 0.35, shade)


def _draw(canvas: np.ndarray, figure: _Figure, squeeze: float, shade: float) -> None:
    if figure.body is not None:
        _draw_body(canvas, figure, shade)
        return
    sprite = figure.sprite
    if figure.torso_dx:  # a leaning torso (shoulders and chest, as _draw_person draws them)
        photo_w = figure.face_px / sprite.face_fraction
        centre = (int(figure.cx + figure.torso_dx), int(figure.cy + photo_w * 1.05))
        shoulders = int(photo_w * 0.95)
        shirt = tuple(c * shade for c in sprite.shirt)
        cv2.ellipse(canvas, centre, (shoulders, int(photo_w * 0.55)), 0, 180, 360, shirt, -1)
        cv2.rectangle(canvas, (centre[0] - shoulders, centre[1]), (centre[0] + shoulders, SIZE[1]), shirt, -1)
    if figure.arm is not None:  # a sleeve from the shoulder to the hand, then the hand
        photo_w = figure.face_px / sprite.face_fraction
        toward = np.sign(SIZE[0] / 2 - figure.cx)
        shoulder = (figure.cx + toward * photo_w * 0.8, figure.cy + photo_w * 0.95)
        thick = max(int(figure.face_px * 0.38), 6)
        colour = tuple(c * shade for c in sprite.shirt)
        cv2.line(canvas, tuple(int(v) for v in shoulder), tuple(int(v) for v in figure.arm), colour, thick)
        skin = tuple(c * shade for c in sprite.skin)
        cv2.ellipse(canvas, tuple(int(v) for v in figure.arm), (int(thick * 0.55), int(thick * 0.45)), 30.0, 0, 360, skin, -1)
    _draw_person(canvas, sprite, figure.cx, figure.cy, figure.face_px, figure.tilt, squeeze=squeeze, shade=shade)


def face_box_of(figure: _Figure) -> tuple[float, float, float, float]:
    """The drawn face's approximate box (MTCNN-like: the face's width, 1.2 of it tall)."""
    half_w = figure.face_px / 2
    return (figure.cx - half_w, figure.cy - 1.15 * half_w, figure.cx + half_w, figure.cy + 1.25 * half_w)


def in_frame_share(box: Sequence[float]) -> float:
    x1, y1, x2, y2 = box
    area = max(x2 - x1, 1e-6) * max(y2 - y1, 1e-6)
    w = max(0.0, min(x2, SIZE[0]) - max(x1, 0.0))
    h = max(0.0, min(y2, SIZE[1]) - max(y1, 0.0))
    return w * h / area


def camera_offset(t: float, seed: int, reaim: tuple[int, int] | None) -> tuple[float, float]:
    """Where the camera looks on the wall (pixels from the resting view): a slow drift of a few
    pixels, and while ``reaim`` (with 3 s turns) the laptop turned by 150 px away from the poster."""
    phase = seed * 0.7
    dx = 5 * np.sin(t / 7.1 + phase) + 2 * np.sin(t / 2.9 + phase)
    dy = 3 * np.sin(t / 5.3 + 2 * phase)
    if reaim is not None:
        a, b = reaim
        ramp = np.clip((t - a) / 3.0, 0, 1) * np.clip((b - t) / 3.0, 0, 1)
        dx += 150 * ramp * (1 if seed % 2 == 0 else -1)
    return float(dx), float(dy)


def _poster_patch(cast: Cast, shared_data: Path, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The framed picture (RGB float32) and its face box in the picture's pixels."""
    photo = cast.poster
    face_px = float(rng.uniform(48, 70))
    fraction = 0.66
    side = int(round(face_px / fraction))
    box = face_box(photo, shared_data)
    image = _rgb(photo, shared_data)
    if box is None:
        raise ValueError(f"no face found in the poster {photo.file}")
    square = _square_around_face(image, box, fraction, out=side)
    if np.ptp(square, axis=2).max() < 8:
        square = np.clip(square * np.array([1.05, 0.98, 0.88], np.float32), 0, 255)  # an old print
    height = int(side * 1.1)  # a portrait print: more of the photo below the face
    print_ = cv2.copyMakeBorder(square, 0, height - side, 0, 0, cv2.BORDER_REPLICATE)
    mat, wood = 5, 7
    framed = cv2.copyMakeBorder(print_, mat, mat, mat, mat, cv2.BORDER_CONSTANT, value=(236, 232, 222))
    colour = [float(c) for c in rng.choice([(90, 60, 35), (40, 38, 36), (170, 140, 90)])]
    framed = cv2.copyMakeBorder(framed, wood, wood, wood, wood, cv2.BORDER_CONSTANT, value=colour)
    centre = side / 2 + mat + wood
    half = face_px / 2
    face = (centre - half, centre - 0.04 * side - 1.15 * half, centre + half, centre - 0.04 * side + 1.25 * half)
    return framed.astype(np.float32), face


@dataclass
class _Scene:
    wall: np.ndarray
    poster_at: tuple[int, int]  # top-left of the framed picture on the wall
    poster_size: tuple[int, int]  # width, height
    poster_face: tuple[float, float, float, float]  # in the picture's pixels


def make_scene(seed: int, cast: Cast, shared_data: Path) -> _Scene:
    rng = np.random.default_rng([seed, 11])
    width, height = SIZE
    wall = room_background(np.random.default_rng(seed), (width + 2 * MARGIN[0], height + 2 * MARGIN[1]))
    patch, face = _poster_patch(cast, shared_data, rng)
    ph, pw = patch.shape[:2]
    spots = ((int(width * 0.05), int(height * 0.04)), (int(width * 0.70) - pw // 2, int(height * 0.05)),
             (int(width * 0.60), int(height * 0.06)))  # fmt: skip
    x, y = spots[int(rng.integers(0, len(spots)))]
    x, y = x + MARGIN[0], y + MARGIN[1]
    # A soft shadow under the frame, then the frame.
    wall[y + 4 : y + ph + 4, x + 4 : x + pw + 4] *= 0.8
    wall[y : y + ph, x : x + pw] = patch
    return _Scene(wall, (x, y), (pw, ph), face)


def render_student(
    lesson_segments: Sequence[Segment], cast: Cast, scene: _Scene, shared_data: Path, start_s: int, end_s: int,
    seed: int, fps: float, truth: dict[int, dict],
) -> Iterator[np.ndarray]:
    """RGB frames of the student's camera from lesson second ``start_s`` to ``end_s``; fills
    ``truth`` for each whole second's frame as it goes."""
    width, height = SIZE
    real_bodies(shared_data, "side"), real_bodies(shared_data, "top")
    rng = np.random.default_rng([seed, start_s])
    grain = [rng.normal(0.0, 3.5, (height, width, 3)).astype(np.float32) for _ in range(8)]
    tint_phase = float(rng.uniform(0, 6.28))
    sprites: dict[int, dict[str, _Sprite]] = {}
    step = int(round(fps))
    for k in range(int(round((end_s - start_s) * fps))):
        t = start_s + k / fps
        index = next(i for i, s in enumerate(lesson_segments) if s.start_s <= t < s.end_s)
        segment = lesson_segments[index]
        if index not in sprites:
            face_rng = np.random.default_rng([seed, index])
            roles = {}
            if segment.student is not None:
                roles["student"] = load_sprite(segment.student, shared_data, face_rng)
            if segment.other is not None:
                roles["parent" if segment.kind in ADULT_VIEW else "sibling"] = load_sprite(segment.other, shared_data, face_rng)
            sprites[index] = roles
        dx, dy = camera_offset(t, seed, cast.reaim)
        x0, y0 = MARGIN[0] + dx, MARGIN[1] + dy
        shift = np.array([[1, 0, -x0], [0, 1, -y0]], np.float32)
        canvas = cv2.warpAffine(scene.wall, shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        empty = canvas.copy()
        condition = segment.condition
        squeeze = 0.62 + 0.08 * np.sin(t / 2.3) if condition == "squeezed" else 1.0
        shade = 0.42 if condition == "backlit" else 1.0
        if condition == "backlit":
            canvas = np.minimum(canvas * 1.35 + 45, 255)
            empty = canvas.copy()
        figures = _people(segment, sprites[index], t, phase=index * 1.3)
        for figure in figures:
            _draw(canvas, figure, squeeze, shade)
        if k % step == 0:
            parent = next((f for f in figures if f.role == "parent"), None)
            truth[int(round(t))] = _truth_row(segment, index, figures, scene, canvas, empty, x0, y0,
                                              _drawn_box(parent, empty, squeeze, shade))  # fmt: skip
        gain = 0.9 + 0.12 * np.sin(t / 13.0)
        warmth = 0.04 * np.sin(t / 17.0 + tint_phase)
        canvas *= gain * np.array([1.0 + warmth, 1.0, 1.0 - warmth], np.float32)
        canvas = _apply_condition(canvas, condition, rng)
        canvas += grain[int(rng.integers(0, len(grain)))] * (2.5 if condition == "dim" else 1.0)
        frame = np.clip(canvas, 0, 255).astype(np.uint8)
        if condition == "jpeg":
            frame = _compress(frame, int(rng.integers(5, 11)))
        yield frame


def _drawn_box(figure: _Figure | None, empty: np.ndarray, squeeze: float, shade: float) -> tuple[float, ...] | None:
    """The box (x1, y1, x2, y2, frame pixels) of every pixel ``figure`` changes when drawn alone
    on the frame without people (its photo, hair, neck, shoulder or arm, not only its face box; a
    part the child hides counts too): what a GIF frame must not show of a parent. None without
    the figure or where nothing of it is in the frame."""
    if figure is None:
        return None
    alone = empty.copy()
    _draw(alone, figure, squeeze, shade)
    ys, xs = np.nonzero(np.abs(alone - empty).max(axis=2) > 10.0)  # not the faint edge of a pasted body
    if not len(xs):
        return None
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def _box_text(box: Sequence[float] | None) -> str:
    return "" if box is None else " ".join(f"{v:.1f}" for v in box)


def _truth_row(segment: Segment, index: int, figures: list[_Figure], scene: _Scene, canvas: np.ndarray,
               empty: np.ndarray, x0: float, y0: float, adult_drawn: Sequence[float] | None) -> dict:  # fmt: skip
    by_role = {f.role: f for f in figures}
    student = by_role.get("student")
    student_face = student is not None and student.arm is None and student.body is None \
        and in_frame_share(face_box_of(student)) > 0.2
    parent = by_role.get("parent")
    sibling = by_role.get("sibling")
    px, py = scene.poster_at[0] - x0, scene.poster_at[1] - y0
    fx1, fy1, fx2, fy2 = scene.poster_face
    poster_face = (px + fx1, py + fy1, px + fx2, py + fy2)
    poster_frame = (px, py, px + scene.poster_size[0], py + scene.poster_size[1])
    share = in_frame_share(poster_face)
    visible = 0.0
    if share > 0:
        a, b = max(int(poster_face[0]), 0), max(int(poster_face[1]), 0)
        c, d = min(int(poster_face[2]), SIZE[0]), min(int(poster_face[3]), SIZE[1])
        if c > a and d > b:
            unchanged = np.abs(canvas[b:d, a:c] - empty[b:d, a:c]).max(axis=2) < 2.0
            visible = share * float(unchanged.mean())
    seen = bool(segment.kind != "offline" and figures)
    return {
        "segment": index,
        "kind": segment.kind,
        "condition": segment.condition,
        "offline": False,
        "student": student is not None,
        "student_face": bool(student_face),
        "student_smiling": bool(student_face and segment.smiling),
        "student_box": _box_text(face_box_of(student)) if student_face else "",
        "adult": ADULT_VIEW[segment.kind] if parent is not None else "",
        "adult_box": _box_text(face_box_of(parent)) if parent is not None and segment.kind != "shoulder" else "",
        "sibling": sibling is not None,
        "sibling_box": _box_text(face_box_of(sibling)) if sibling is not None else "",
        "poster": visible >= 0.5,
        "poster_box": _box_text(poster_face),
        "poster_frame_box": _box_text(poster_frame),
        "poster_visible": round(visible, 3),
        "nobody": not seen,
        "adult_drawn_box": _box_text(adult_drawn),
    }


# --------------------------------------------------------------------------- the lesson


def build_person_lesson(shared_data: Path, folder: Path, seed: int = 0, fps: float = FPS) -> PersonLesson:
    """Write the lesson's recordings, ``manifest.csv``, ``lessons.csv`` and ``truth.csv`` into
    ``folder`` (``fps``: a whole number; the frame at lesson second ``k`` is then an encoded
    frame)."""
    folder.mkdir(parents=True, exist_ok=True)
    cast, segments = plan_segments(seed, shared_data)
    scene = make_scene(seed, cast, shared_data)
    duration = segments[-1].end_s
    offline = [s for s in segments if s.kind == "offline"]
    cuts = [0] + [x for s in offline for x in (s.start_s, s.end_s)] + [duration]
    spans = [(a, b) for a, b in zip(cuts[::2], cuts[1::2]) if b > a]
    recordings: list[tuple[str, str, int, int]] = []
    teacher_start, teacher_length = -TEACHER_LEAD_S, TEACHER_LEAD_S + duration + TEACHER_TAIL_S
    write_video(folder / "teacher-1.mp4", (teacher_frame(teacher_start + i / fps) for i in range(int(teacher_length * fps))),
                fps=fps, codec="h264")  # fmt: skip
    recordings.append(("teacher-1.mp4", "teacher", teacher_start, teacher_length))
    truth: dict[int, dict] = {}
    for number, (a, b) in enumerate(spans, start=1):
        name = f"student-{number}.webm"
        write_video(folder / name, render_student(segments, cast, scene, shared_data, a, b, seed, fps, truth),
                    fps=fps, codec="vp8", no_duration=True, extra_args=_FAST_VP8)  # fmt: skip
        recordings.append((name, "student", a, b - a))
    for segment in offline:
        for s in segment.seconds():
            truth[s] = {"segment": segments.index(segment), "kind": "offline", "condition": "", "offline": True,
                        "student": False, "student_face": False, "student_smiling": False, "student_box": "",
                        "adult": "", "adult_box": "", "sibling": False, "sibling_box": "", "poster": False,
                        "poster_box": "", "poster_frame_box": "", "poster_visible": 0.0, "nobody": True,
                        "adult_drawn_box": ""}  # fmt: skip
    manifest, lessons = write_lesson_files(folder, LESSON_ID, LESSON_START, recordings, {
        "student_name": "Sam", "subject": "Maths", "locale": "en",
        "lesson_url": f"https://school.example/lessons/{LESSON_ID}",
    })  # fmt: skip
    lesson = PersonLesson(folder, manifest, lessons, LESSON_ID, LESSON_START, duration, seed, cast, segments,
                          dict(sorted(truth.items())), tuple(recordings), fps)  # fmt: skip
    write_truth(lesson)
    return lesson


def write_truth(lesson: PersonLesson) -> None:
    with open(lesson.folder / "truth.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TRUTH_COLUMNS)
        for t, row in lesson.truth.items():
            writer.writerow([t, *(row[c] for c in TRUTH_COLUMNS[1:])])
    info = {
        "lesson_id": lesson.lesson_id, "start": lesson.start.isoformat(), "seed": lesson.seed, "fps": lesson.fps,
        "duration_s": lesson.duration_s, "recordings": [list(r) for r in lesson.recordings], "cast": asdict(lesson.cast),
        "segments": [asdict(s) for s in lesson.segments],
    }  # fmt: skip
    (lesson.folder / "lesson.json").write_text(json.dumps(info, indent=1))


def _parse(value: str, column: str):
    if column in ("t", "segment"):
        return int(value)
    if column == "poster_visible":
        return float(value)
    if column in ("offline", "student", "student_face", "student_smiling", "sibling", "poster", "nobody"):
        return value == "True"
    if column.endswith("_box"):
        return tuple(float(v) for v in value.split()) if value else None
    return value


def read_person_lesson(folder: Path) -> PersonLesson:
    """A built lesson back from its folder (``lesson.json`` and ``truth.csv``)."""
    info = json.loads((folder / "lesson.json").read_text())
    photo = lambda d: Photo(**d) if d else None
    segments = tuple(
        Segment(**{**s, "student": photo(s["student"]), "other": photo(s["other"])}) for s in info["segments"]
    )
    cast = info["cast"]
    cast = Cast(cast["student"], cast["sibling"], cast["parent"], Photo(**cast["poster"]),
                tuple(cast["reaim"]) if cast["reaim"] else None)  # fmt: skip
    truth: dict[int, dict] = {}
    with open(folder / "truth.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            parsed = {c: _parse(row[c], c) for c in TRUTH_COLUMNS}
            truth[parsed.pop("t")] = parsed
    return PersonLesson(
        folder, folder / "manifest.csv", folder / "lessons.csv", info["lesson_id"], datetime.fromisoformat(info["start"]),
        info["duration_s"], info["seed"], cast, segments, truth, tuple(tuple(r) for r in info["recordings"]), info["fps"],
    )  # fmt: skip


__all__ = [
    "KINDS", "PLAN", "SEEDS", "TRUTH_COLUMNS", "Cast", "PersonLesson", "Photo", "Segment",
    "build_person_lesson", "cast_for", "plan_segments", "read_children", "read_person_lesson",
]  # fmt: skip
