"""A synthetic lesson built from real, labelled faces in ``../shared/data``, with known truth.

:func:`build_real_face_lesson` writes a student recording (two WebM segments: the student joins
late and drops out once), a teacher recording (a whiteboard, no face), ``manifest.csv`` and
``lessons.csv`` into a folder, and returns a :class:`RealFaceLesson`: which lesson seconds show
the child smiling, the child neutral, an adult beside the child, only an adult, nobody, and
when the student was offline.

The faces are real photos, chosen and labelled by hand (only file names and labels are in the
repository; the images stay in ``../shared/data``):

- ``tests/data/utkface_children_smile.csv`` (``file,age,smile,note``): UTKFace children aged
  3-12, 16 broadly smiling (``smile`` 1) and 16 clearly neutral (0), frontal and well lit. UTKFace
  has no smile labels: these were looked at one by one. They were taken from the UTKFace rows
  that :func:`highlights.tools.training.train.validation_split` (seed 0) held out when this was
  written, so the child/adult model should not have trained on them.
- ``tests/data/parent_faces.csv`` (``set,file,age,emotion,note``): smiling adults for the
  parent, four colour UTKFace photos (age 30-31) and four grayscale ``happiness`` photos of
  the expression set (validation identities). A smiling parent is the hardest case for the
  privacy rule: it is exactly the face the smile model likes.

Each photo is composited at webcam scale (MTCNN's face box 30-45% of the frame height) onto a room
background, with a body under it, a feathered elliptical mask, slow drift, zoom and head tilt,
changing light and sensor grain, so no two frames are alike and no segment is a still image.
Each segment holds one photo; segments change on whole lesson seconds, so the frame sampled at
lesson second ``k`` belongs to the segment covering ``[k, k + 1)`` (a decoder that returns the
frame just before may see the previous segment: allow a second at the edges).

The lesson (``LESSON_PLAN``, seconds since the lesson start, which is when the late student's
camera comes on; 307 s): thirteen smiling moments 6 s long, starting 22-32 s apart, with
neutral faces between them; a smiling adult beside a smiling child (20 s); a smiling adult
alone (16 s); an empty room (6 s); a 15 s disconnect. Smiles never touch an adult or empty
segment: a neutral child stands between them, so the one-second edge allowance never mixes a
smiling second with an adult one. With the pipeline's detector settings, MTCNN found exactly the
planned faces (1, 2 beside the adult, 0 in the empty room) in every sampled second for seeds 0-3;
one photo that it missed at some angles was replaced.

>>> lesson = build_real_face_lesson(shared_data, tmp_path / "lesson")  # doctest: +SKIP
>>> lesson.kind_at(9.0), lesson.seconds("adult_only")[:3]  # doctest: +SKIP
('child_smiling', [...])
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from highlights.media.synthetic import write_lesson_files, write_video

DATA = Path(__file__).resolve().parent.parent / "data"
CHILDREN_CSV = DATA / "utkface_children_smile.csv"
PARENTS_CSV = DATA / "parent_faces.csv"

LESSON_ID = "real-faces-0001"
WEBCAM_LESSON_ID = "webcam-faces-0001"
SIZE = (480, 360)  # width, height of the student's camera
FPS = 5.0
TEACHER_SIZE = (320, 240)
TEACHER_LEAD_S = 30  # the teacher's camera is on this long before the (late) student's
TEACHER_TAIL_S = 20  # and stays on after the student's last segment ends
_FAST_VP8 = ("-cpu-used", "16")  # VP8's fastest realtime setting (overrides synthetic's 8): 3x faster
LESSON_START = datetime(2026, 11, 21, 15, 0, 0, tzinfo=timezone.utc) + timedelta(seconds=TEACHER_LEAD_S)

Kind = Literal[
    "child_smiling", "child_neutral", "adult_beside", "adult_only", "adult_half", "nobody", "offline"
]  # fmt: skip
KINDS: tuple[Kind, ...] = (
    "child_smiling", "child_neutral", "adult_beside", "adult_only", "adult_half", "nobody", "offline"
)  # fmt: skip
ADULT_KINDS: tuple[Kind, ...] = ("adult_beside", "adult_only", "adult_half")
"""Seconds with an adult in the picture (beside the child, alone, or half in frame)."""
FACES_VISIBLE: dict[Kind, int] = {
    "child_smiling": 1, "child_neutral": 1, "adult_beside": 2, "adult_only": 1, "adult_half": 1, "nobody": 0,
}  # fmt: skip
"""Faces in the picture per kind of segment (offline seconds have no picture; a face half out of
the frame is often not found)."""

Variant = Literal["plain", "webcam"]
Condition = Literal["plain", "dim", "backlit", "cast", "edge", "small", "blur", "squeezed", "jpeg"]
CONDITIONS: tuple[Condition, ...] = ("plain", "dim", "backlit", "cast", "edge", "small", "blur", "squeezed", "jpeg")
"""What a webcam does to a segment (see :func:`_apply_condition`): a dim room, a window behind the
person, a colour cast, the face cut by the frame edge, a small face (the child far from the
camera), motion blur, a squeezed (turned) face, heavy compression. Plain lessons are all
``plain``."""

# The lesson, as (kind, seconds) in order. "adult_beside" is a smiling adult next to a smiling
# child (a frame that must never be chosen by default); "adult_only" a smiling adult alone.
_SMILE = ("child_smiling", 6)
_NEUTRAL_GAP = (("child_neutral", 8), ("child_neutral", 8))
LESSON_PLAN: tuple[tuple[Kind, int], ...] = (
    ("child_neutral", 6),
    _SMILE, *_NEUTRAL_GAP,
    _SMILE, ("child_neutral", 3), ("adult_beside", 10), ("adult_beside", 10), ("child_neutral", 3),
    _SMILE, *_NEUTRAL_GAP,
    _SMILE, ("child_neutral", 5), ("nobody", 6), ("child_neutral", 5),
    _SMILE, *_NEUTRAL_GAP,
    _SMILE, ("child_neutral", 5), ("offline", 15), ("child_neutral", 5),
    _SMILE, *_NEUTRAL_GAP,
    _SMILE, ("child_neutral", 3), ("adult_only", 8), ("adult_only", 8), ("child_neutral", 3),
    _SMILE, *_NEUTRAL_GAP,
    _SMILE, *_NEUTRAL_GAP,
    _SMILE, *_NEUTRAL_GAP,
    _SMILE, *_NEUTRAL_GAP,
    _SMILE, ("child_neutral", 6),
)  # fmt: skip


# The webcam-like lesson (``variant="webcam"``, 341 s): sixteen smiling moments (4-6 s), each
# under its own webcam condition, the neutral seconds around them under a condition too; a
# smiling parent beside a *neutral* child and beside a smiling child, a parent leaning in alone
# and one half in the frame (cut by its edge); an empty room and a disconnect. Smiles never
# touch an adult segment: at least 3 neutral seconds lie between them (the selection's 2 s adult
# margin plus the one-second edge allowance). Conditions are drawn per seed (``_webcam_conditions``).
_WSMILE = ("child_smiling", 5)
_WGAP = (("child_neutral", 7), ("child_neutral", 7))
WEBCAM_PLAN: tuple[tuple[Kind, int], ...] = (
    ("child_neutral", 5),
    _WSMILE, *_WGAP,
    ("child_smiling", 6), ("child_neutral", 3), ("adult_beside", 10), ("child_neutral", 3),
    ("child_smiling", 4), *_WGAP,
    _WSMILE, ("child_neutral", 4), ("adult_only", 8), ("child_neutral", 4),
    ("child_smiling", 6), *_WGAP,
    _WSMILE, ("child_neutral", 4), ("nobody", 5), ("child_neutral", 4),
    ("child_smiling", 4), ("child_neutral", 3), ("adult_half", 8), ("child_neutral", 3),
    _WSMILE, *_WGAP,
    ("child_smiling", 6), ("child_neutral", 4), ("offline", 10), ("child_neutral", 4),
    _WSMILE, ("child_neutral", 3), ("adult_beside", 8), ("child_neutral", 3),
    ("child_smiling", 4), *_WGAP,
    _WSMILE, *_WGAP,
    ("child_smiling", 6), ("child_neutral", 3), ("adult_only", 6), ("child_neutral", 3),
    _WSMILE, *_WGAP,
    ("child_smiling", 4), *_WGAP,
    _WSMILE, ("child_neutral", 5),
)  # fmt: skip
WEBCAM_SMILING_BESIDE = (False, True)
"""Whether the child beside the parent smiles, per ``adult_beside`` segment of the webcam plan."""


@dataclass(frozen=True)
class FaceImage:
    """One labelled photo in ``../shared/data/faces``: ``set_path`` is relative to ``faces/``."""

    set_path: str
    file: str
    label: str  # "smiling" / "neutral" child, or "adult"

    def path(self, shared_data: Path) -> Path:
        return shared_data / "faces" / self.set_path / self.file


@dataclass(frozen=True)
class Segment:
    """``[start_s, end_s)`` in seconds since the lesson start, showing ``faces`` (child first)."""

    kind: Kind
    start_s: int
    end_s: int
    faces: tuple[FaceImage, ...] = ()
    condition: Condition = "plain"

    def seconds(self) -> range:
        return range(self.start_s, self.end_s)


@dataclass(frozen=True)
class RealFaceLesson:
    """What was written and the truth about every lesson second."""

    folder: Path
    manifest: Path
    lessons: Path
    lesson_id: str
    start: datetime
    duration_s: int
    segments: tuple[Segment, ...]
    recordings: tuple[tuple[str, str, int, int], ...] = field(default=())
    """(file name, role, lesson second it starts, length in seconds) of each recording."""
    variant: Variant = "plain"
    fps: float = FPS

    def condition_at(self, t: float) -> Condition | None:
        """The webcam condition of the segment at lesson time ``t``."""
        for segment in self.segments:
            if segment.start_s <= t < segment.end_s:
                return segment.condition
        return None

    def moments(self) -> list[Segment]:
        """The child's smiling-alone moments: one per ``child_smiling`` segment."""
        return self.of_kind("child_smiling")

    def kind_at(self, t: float) -> Kind | None:
        """The kind of segment at lesson time ``t`` (None outside the lesson)."""
        for segment in self.segments:
            if segment.start_s <= t < segment.end_s:
                return segment.kind
        return None

    def seconds(self, kind: Kind) -> list[int]:
        """Every whole lesson second of this kind."""
        return [s for segment in self.segments if segment.kind == kind for s in segment.seconds()]

    def of_kind(self, kind: Kind) -> list[Segment]:
        return [segment for segment in self.segments if segment.kind == kind]

    def near(self, t: float, kind: Kind, slack_s: float = 1.0) -> bool:
        """Whether ``t`` lies in a segment of ``kind`` widened by ``slack_s`` at both ends."""
        return any(s.start_s - slack_s <= t < s.end_s + slack_s for s in self.of_kind(kind))


def read_face_lists() -> tuple[list[FaceImage], list[FaceImage], list[FaceImage]]:
    """The hand-labelled smiling children, neutral children and smiling adults."""
    smiling, neutral, adults = [], [], []
    with open(CHILDREN_CSV, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            label = "smiling" if row["smile"].strip() == "1" else "neutral"
            (smiling if label == "smiling" else neutral).append(FaceImage("age/utkface", row["file"], label))
    with open(PARENTS_CSV, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            folder = "age/utkface" if row["set"] == "utkface" else "smile/lfw_expressions"
            adults.append(FaceImage(folder, row["file"], "adult"))
    return smiling, neutral, adults


def plan_segments(seed: int = 0, variant: Variant = "plain") -> tuple[Segment, ...]:
    """The lesson's segments with a photo assigned to each (deterministic given ``seed``).

    Every smiling segment, including the child beside the adult, gets its own photo (the webcam
    plan has one more smiling segment than there are photos: the first one is shown again);
    neutral photos repeat (there are more neutral segments than photos). Of the adult segments
    of each kind, colour UTKFace adults and grayscale expression-set adults alternate. The
    webcam variant also draws each segment's :data:`Condition`.
    """
    rng = np.random.default_rng(seed)
    smiling, neutral, adults = read_face_lists()
    smiling = [smiling[i] for i in rng.permutation(len(smiling))]
    neutral = [neutral[i] for i in rng.permutation(len(neutral))]
    colour = [a for a in adults if a.set_path == "age/utkface"]
    gray = [a for a in adults if a.set_path != "age/utkface"]
    colour = [colour[i] for i in rng.permutation(len(colour))]
    gray = [gray[i] for i in rng.permutation(len(gray))]
    plan = LESSON_PLAN if variant == "plain" else WEBCAM_PLAN
    if variant == "plain":
        adult_queue = {"adult_beside": [colour[0], gray[0]], "adult_only": [gray[1], colour[1]]}
        needed = sum(1 for kind, _ in plan if kind in ("child_smiling", "adult_beside"))
        if needed > len(smiling):
            raise ValueError(f"the plan needs {needed} smiling children, {CHILDREN_CSV.name} has {len(smiling)}")
        smiling_beside = [True] * 2
        conditions: list[Condition] = ["plain"] * len(plan)
    else:
        adult_queue = {"adult_beside": [colour[0], gray[0]], "adult_only": [gray[1], colour[1]],
                       "adult_half": [colour[2]]}  # fmt: skip
        smiling_beside = list(WEBCAM_SMILING_BESIDE)
        conditions = _webcam_conditions(plan, rng)

    segments, t, n_smile, n_neutral = [], 0, 0, 0
    for (kind, length), condition in zip(plan, conditions):
        faces: tuple[FaceImage, ...] = ()
        if kind == "child_smiling" or (kind == "adult_beside" and smiling_beside.pop(0)):
            faces = (smiling[n_smile % len(smiling)],)
            n_smile += 1
        elif kind in ("child_neutral", "adult_beside"):
            faces = (neutral[n_neutral % len(neutral)],)
            n_neutral += 1
        if kind in ADULT_KINDS:
            faces += (adult_queue[kind].pop(0),)
        segments.append(Segment(kind, t, t + length, faces, condition))
        t += length
    return tuple(segments)


def _webcam_conditions(plan: Sequence[tuple[Kind, int]], rng: np.random.Generator) -> list[Condition]:
    """One condition per segment: the smiling moments go through every webcam condition (each
    twice, in a seeded order); other segments draw one (a plain one now and then); a parent
    half in the frame is cut by the edge whatever else happens."""
    hard = [c for c in CONDITIONS if c != "plain"]
    smiles = sum(1 for kind, _ in plan if kind == "child_smiling")
    smile_conditions = [hard[i % len(hard)] for i in rng.permutation(smiles)]
    out: list[Condition] = []
    for kind, _ in plan:
        if kind == "child_smiling":
            out.append(smile_conditions.pop())
        elif kind == "adult_half":
            out.append("edge")
        elif kind in ("nobody", "offline"):
            out.append("plain")
        else:
            out.append(CONDITIONS[int(rng.integers(0, len(CONDITIONS)))])
    return out


# --------------------------------------------------------------------------- drawing


def room_background(rng: np.random.Generator, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A webcam-like room, float32 RGB: a lit wall, a window, a shelf with books, a chair."""
    width, height = size
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    wall_colour = np.array([190, 178, 158], np.float32) + rng.uniform(-15, 15, 3).astype(np.float32)
    image = np.broadcast_to(wall_colour * (0.8 + 0.2 * x) * (1.0 - 0.25 * y), (height, width, 3)).copy()
    window = (int(width * 0.74), int(height * 0.06)), (width - 16, int(height * 0.42))
    cv2.rectangle(image, *window, (228, 236, 246), -1)
    cv2.rectangle(image, *window, (120, 110, 100), 3)
    shelf_y = int(height * 0.33)
    cv2.rectangle(image, (12, shelf_y), (int(width * 0.24), shelf_y + 8), (110, 80, 50), -1)
    for i in range(6):  # books
        x0 = 18 + i * 15
        colour = tuple(float(c) for c in rng.integers(40, 210, 3))
        cv2.rectangle(image, (x0, shelf_y - 30 - int(rng.integers(0, 12))), (x0 + 12, shelf_y), colour, -1)
    # The back of a chair behind the person.
    cv2.rectangle(image, (int(width * 0.3), int(height * 0.55)), (int(width * 0.7), height), (70, 60, 75), -1)
    return image


def _feathered_ellipse(size: int, axes: tuple[float, float]) -> np.ndarray:
    """A mask for a ``size`` square photo: 1 inside an ellipse with these half-axes (as
    fractions of ``size``), fading out over about a tenth of the photo."""
    mask = np.zeros((size, size), np.float32)
    centre, half_axes = (size // 2, int(size * 0.51)), (int(size * axes[0]), int(size * axes[1]))
    cv2.ellipse(mask, centre, half_axes, 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=size * 0.05)


# How the photos of each set are framed: the face's share of the photo's width, and the mask
# that keeps the face with its hair and chin. UTKFace crops are tight (the face fills ~90% of the
# width); the expression set's photos show the head with some hair and background (~80%).
_FRAMING = {"age/utkface": (0.9, (0.43, 0.48)), "smile/lfw_expressions": (0.8, (0.45, 0.5))}
# Grayscale photos are given a warm skin tone, so the parent does not stand out as a gray cut-out.
_SKIN_TINT = np.array([1.08, 0.96, 0.84], np.float32)


@dataclass
class _Sprite:
    """A face photo ready to composite (RGB float32, 128x128), its mask, the face's share of
    the photo's width, and the colours of the shirt and neck drawn under it."""

    photo: np.ndarray
    mask: np.ndarray
    face_fraction: float
    shirt: tuple[float, float, float]
    skin: tuple[float, float, float]


def _load_sprite(face: FaceImage, shared_data: Path, rng: np.random.Generator) -> _Sprite:
    image = cv2.imread(str(face.path(shared_data)), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read {face.path(shared_data)}")
    photo = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    side = min(photo.shape[:2])
    photo = cv2.resize(photo[:side, :side], (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32)
    if np.ptp(photo, axis=2).max() < 8:  # a grayscale photo
        photo = np.clip(photo * _SKIN_TINT, 0, 255)
    face_fraction, axes = _FRAMING[face.set_path]
    if rng.integers(0, 2):  # people face either way
        photo = photo[:, ::-1].copy()
    # The neck takes the colour of the chin area, so the body joins the face without a seam.
    skin = tuple(float(c) for c in photo[100:118, 50:78].reshape(-1, 3).mean(axis=0))
    shirt = tuple(float(c) for c in rng.integers(30, 220, 3))
    return _Sprite(photo, _feathered_ellipse(128, axes), face_fraction, shirt, skin)  # type: ignore[arg-type]


def _draw_person(
    canvas: np.ndarray, sprite: _Sprite, cx: float, cy: float, face_px: float, angle: float,
    squeeze: float = 1.0, shade: float = 1.0,
) -> None:
    """Body, neck and face, the face ``face_px`` wide and centred on (cx, cy), in place.

    ``squeeze`` < 1 narrows the face (a head turned away), ``shade`` < 1 darkens the person (a
    window behind them)."""
    height, width = canvas.shape[:2]
    face_px = face_px / sprite.face_fraction  # from now on: the photo's width
    shirt = tuple(c * shade for c in sprite.shirt)
    skin = tuple(c * shade for c in sprite.skin)
    body_centre = (int(cx), int(cy + face_px * 1.05))
    shoulders = int(face_px * 0.95)
    cv2.ellipse(canvas, body_centre, (shoulders, int(face_px * 0.55)), 0, 180, 360, shirt, -1)
    cv2.rectangle(canvas, (int(cx) - shoulders, body_centre[1]), (int(cx) + shoulders, height), shirt, -1)
    cv2.rectangle(canvas, (int(cx - face_px * 0.17), int(cy + face_px * 0.3)),
                  (int(cx + face_px * 0.17), int(cy + face_px * 0.62)), skin, -1)  # fmt: skip

    src = sprite.photo.shape[0]
    scale = face_px / src
    matrix = cv2.getRotationMatrix2D((src / 2, src / 2), angle, scale)
    if squeeze != 1.0:  # narrow the face about its centre column
        matrix[0] = matrix[0] * squeeze
    half = face_px * 0.75  # covers the turned square
    x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
    x1, y1 = min(int(cx + half) + 1, width), min(int(cy + half) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return
    # Place the photo's centre at (cx, cy) in the region's coordinates.
    centre = matrix[:, :2] @ np.array([src / 2, src / 2]) + matrix[:, 2]
    matrix[0, 2] += cx - x0 - centre[0]
    matrix[1, 2] += cy - y0 - centre[1]
    size = (x1 - x0, y1 - y0)
    photo = sprite.photo * shade if shade != 1.0 else sprite.photo
    face = cv2.warpAffine(photo, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(sprite.mask, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0.0)[:, :, None]
    region = canvas[y0:y1, x0:x1]
    region += alpha * (face - region)


def _people(
    segment: Segment, sprites: Sequence[_Sprite], t: float, phase: float
) -> Iterator[tuple[_Sprite, float, float, float, float]]:
    """(sprite, centre x, centre y, face width, tilt) of each person at lesson time ``t``."""
    width, height = SIZE
    drift_x = 18 * np.sin(t / 4.3 + phase) + 6 * np.sin(t / 1.7 + 2 * phase)
    drift_y = 9 * np.cos(t / 3.1 + phase)
    zoom = 1.0 + 0.08 * np.sin(t / 6.0 + phase)
    tilt = 5.0 * np.sin(t / 3.7 + phase)
    if segment.kind == "adult_beside":
        child, adult = sprites
        yield child, width * 0.31 + drift_x, height * 0.44 + drift_y, height * 0.28 * zoom, tilt
        yield adult, width * 0.70 - 0.5 * drift_x, height * 0.40 - drift_y, height * 0.31 * zoom, -0.6 * tilt
    elif segment.kind == "adult_half":
        # A parent leaning in at the side: the face's centre a few pixels inside the frame edge,
        # so about half of it is cut off.
        side = 1 if int(phase * 10) % 2 else -1
        face_px = height * 0.33 * zoom
        cx = width / 2 + side * (width / 2 - face_px * (0.05 + 0.1 * (1 + np.sin(t / 2.1))))
        for sprite in sprites:
            yield sprite, cx, height * 0.42 + drift_y, face_px, tilt
    else:
        face_px = height * 0.29 * zoom
        cx, cy = width * 0.5 + drift_x, height * 0.43 + drift_y
        if segment.condition == "small":  # the child sits back from the camera
            face_px *= 0.45
            cy = height * 0.5 + drift_y * 0.5
        elif segment.condition == "edge":  # leaning out of the picture: a fifth to a half cut off
            side = 1 if int(phase * 10) % 2 else -1
            cut = 0.2 + 0.15 * (1 + np.sin(t / 1.9 + phase))
            cx = width / 2 + side * (width / 2 - face_px * (0.5 - cut))
        for sprite in sprites:
            yield sprite, cx, cy, face_px, tilt


def _apply_condition(canvas: np.ndarray, condition: Condition, rng: np.random.Generator) -> np.ndarray:
    """What the webcam does to the whole frame (float32 RGB 0-255, before the sensor grain).

    Strengths vary from second to second (a hand moves, the screen's glow changes), so a track
    of one face has clearer and worse seconds."""
    if condition == "dim":
        canvas = canvas * rng.uniform(0.22, 0.4)
    elif condition == "cast":
        casts = ((1.3, 1.0, 0.62), (0.7, 0.92, 1.3), (1.05, 1.25, 0.75))
        canvas = canvas * np.array(casts[int(rng.integers(0, len(casts)))], np.float32)
    elif condition == "blur" and rng.random() < 0.75:  # motion blur along a random direction
        length = int(rng.integers(7, 16))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        canvas = cv2.filter2D(canvas, -1, kernel / max(float(kernel.sum()), 1e-6))
    return canvas


def _compress(frame: np.ndarray, quality: int) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED) if ok else frame


def render_student(
    segments: Sequence[Segment], shared_data: Path, start_s: int, end_s: int, seed: int, fps: float = FPS
) -> Iterator[np.ndarray]:
    """RGB frames of the student's camera from lesson second ``start_s`` to ``end_s``."""
    rng = np.random.default_rng([seed, start_s])
    background = room_background(np.random.default_rng(seed))
    grain = [rng.normal(0.0, 3.5, (SIZE[1], SIZE[0], 3)).astype(np.float32) for _ in range(8)]
    tint_phase = float(rng.uniform(0, 6.28))
    sprites: dict[int, list[_Sprite]] = {}
    for k in range(int(round((end_s - start_s) * fps))):
        t = start_s + k / fps
        index = next(i for i, s in enumerate(segments) if s.start_s <= t < s.end_s)
        segment = segments[index]
        if segment.kind == "offline":
            raise ValueError(f"the student's camera is off at {t} s")
        if index not in sprites:
            face_rng = np.random.default_rng([seed, index])
            sprites[index] = [_load_sprite(face, shared_data, face_rng) for face in segment.faces]
        condition = segment.condition
        canvas = background.copy()
        if condition == "backlit":  # a bright window behind: the room glares, the person is dark
            canvas = np.minimum(canvas * 1.35 + 45, 255)
        squeeze = 0.62 + 0.08 * np.sin(t / 2.3) if condition == "squeezed" else 1.0
        shade = 0.42 if condition == "backlit" else 1.0
        for sprite, cx, cy, face_px, angle in _people(segment, sprites[index], t, phase=index * 1.3):
            _draw_person(canvas, sprite, cx, cy, face_px, angle, squeeze=squeeze, shade=shade)
        gain = 0.9 + 0.12 * np.sin(t / 13.0)  # daylight and the screen's glow change
        warmth = 0.04 * np.sin(t / 17.0 + tint_phase)  # and its colour
        canvas *= gain * np.array([1.0 + warmth, 1.0, 1.0 - warmth], np.float32)
        canvas = _apply_condition(canvas, condition, rng)
        noise = grain[int(rng.integers(0, len(grain)))]
        canvas += noise * (2.5 if condition == "dim" else 1.0)
        frame = np.clip(canvas, 0, 255).astype(np.uint8)
        if condition == "jpeg":  # a starved connection: blocky, smeared
            frame = _compress(frame, int(rng.integers(5, 11)))
        yield frame


def teacher_frame(t: float) -> np.ndarray:
    """A whiteboard with a moving pointer and the time on it (no face)."""
    width, height = TEACHER_SIZE
    image = np.full((height, width, 3), 235, np.uint8)
    cv2.putText(image, f"7 x 8 = 56   t={t:05.1f}s", (12, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (30, 30, 160), 2)
    x = int(width / 2 + width / 3 * np.sin(t / 3.0))
    cv2.circle(image, (x, 150), 12, (200, 60, 60), -1)
    return image


# --------------------------------------------------------------------------- the lesson


def build_real_face_lesson(
    shared_data: Path, folder: Path, seed: int = 0, variant: Variant = "plain", fps: float = FPS
) -> RealFaceLesson:
    """Write the lesson's recordings, ``manifest.csv`` and ``lessons.csv`` into ``folder``.

    ``variant="webcam"`` builds the webcam-like lesson (:data:`WEBCAM_PLAN`, a condition per
    segment); ``fps`` is the recordings' frame rate (a whole number: the sampled second ``k`` is
    then an encoded frame; benchmarks use 2 to build faster)."""
    folder.mkdir(parents=True, exist_ok=True)
    segments = plan_segments(seed, variant)
    lesson_id = LESSON_ID if variant == "plain" else WEBCAM_LESSON_ID
    duration = segments[-1].end_s
    # Student camera segments: the lesson's seconds minus the offline stretch.
    offline = [s for s in segments if s.kind == "offline"]
    cuts = [0] + [x for s in offline for x in (s.start_s, s.end_s)] + [duration]
    student_spans = [(a, b) for a, b in zip(cuts[::2], cuts[1::2]) if b > a]

    recordings: list[tuple[str, str, int, int]] = []
    teacher_start, teacher_length = -TEACHER_LEAD_S, TEACHER_LEAD_S + duration + TEACHER_TAIL_S
    write_video(
        folder / "teacher-1.mp4",
        (teacher_frame(teacher_start + i / fps) for i in range(int(teacher_length * fps))),
        fps=fps, codec="h264",
    )  # fmt: skip
    recordings.append(("teacher-1.mp4", "teacher", teacher_start, teacher_length))
    for number, (a, b) in enumerate(student_spans, start=1):
        name = f"student-{number}.webm"
        # As a browser's MediaRecorder writes it: VP8, no duration, no seek index.
        write_video(
            folder / name, render_student(segments, shared_data, a, b, seed, fps), fps=fps, codec="vp8",
            no_duration=True, extra_args=_FAST_VP8,
        )
        recordings.append((name, "student", a, b - a))

    manifest, lessons = write_lesson_files(folder, lesson_id, LESSON_START, recordings, {
        "student_name": "Sam", "subject": "Maths", "locale": "en",
        "lesson_url": f"https://school.example/lessons/{lesson_id}",
    })  # fmt: skip
    return RealFaceLesson(
        folder, manifest, lessons, lesson_id, LESSON_START, duration, segments, tuple(recordings), variant, fps
    )


def read_student_frames(lesson: RealFaceLesson) -> dict[int, np.ndarray]:
    """Every whole lesson second's student frame, decoded in one pass per file."""
    frames: dict[int, np.ndarray] = {}
    for name, role, start, _length in lesson.recordings:
        if role != "student":
            continue
        capture = cv2.VideoCapture(str(lesson.folder / name))
        try:
            index = 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if index % int(lesson.fps) == 0:
                    frames[start + index // int(lesson.fps)] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                index += 1
        finally:
            capture.release()
    return frames


__all__ = [
    "ADULT_KINDS", "CONDITIONS", "FACES_VISIBLE", "KINDS", "LESSON_PLAN", "WEBCAM_PLAN", "FaceImage",
    "RealFaceLesson", "Segment",
    "build_real_face_lesson", "plan_segments", "read_face_lists", "read_student_frames",
]  # fmt: skip
