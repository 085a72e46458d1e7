"""A webcam lesson as a school's night sees it, for ``bench/lesson.py --lesson webcam`` and
``bench/throughput.py --webcam``: ONE child and ONE parent, a picture on the wall, and the look
of the room changing every few seconds.

:func:`build_webcam_lesson` writes into a folder:

* the student's camera, 640x480 at 15 fps, in three recordings with two disconnects between
  them: H.264 MP4 at CRF 33 (x264 ``veryfast``, GOP 250) for most of the lesson, and, after the
  first reconnect, a VP9 WebM of about 450 kb/s (libvpx-vp9 realtime, constant bitrate) written
  as a browser's MediaRecorder writes it (no duration, no cues), then H.264 again after the
  second reconnect. The files are written by the ffmpeg binary of imageio-ffmpeg
  (:func:`highlights.media.synthetic.write_video`).
* the teacher's camera (a whiteboard, 320x240, 5 fps, H.264) over the whole lesson;
* ``manifest.csv``, ``lessons.csv`` and ``plan.json`` (the blocks and looks below).

Who is in it (every photo real, from ``../shared/data``, drawn by
``tests/support/person_lesson.py``'s cast for the seed): one FG-NET child (photos of one age
span, smiling and neutral ones: :func:`support.person_lesson.one_age`), one LFW parent (the smile
model's held-out identities), and a framed photo on the wall (an LFW adult or another FG-NET
child, as ``person_lesson`` draws it). The child's and the parent's clothes stay the same all
lesson.

Two layers of time:

* **blocks** of 5-90 s say who is in view: the child alone (most of the lesson; a smiling or a
  neutral photo for the whole block), the parent beside the child, the parent alone, the
  parent's real shoulder and arm (or torso from the top edge) beside the child
  (``person_lesson.real_bodies``), the parent's face half out of the frame beside the child, and
  an empty room (the poster still there);
* **looks** of 2-9 s, independent of the blocks, say what the webcam does: ``plain``, ``dim``
  (a dark room, more sensor noise), ``backlit`` (a bright window behind, the person dark), ``cast``
  (a colour cast), ``hand`` (a hand and forearm pass across the face), ``lean`` (the person
  leans towards a side edge, partly or wholly out of the frame, and back), ``small`` (sits
  back), ``blur`` (motion blur), ``turned`` (a head turned away: a narrower face). About one
  change of look every 5.5 s, so frequent small changes of light and framing (what trips the
  face follower's scene-change test) are in every minute.

On top of both: a slow camera drift of a few pixels, the person's own drift, zoom and tilt,
daylight and warmth drifting over tens of seconds, and sensor grain.

Drawing reuses ``tests/support/real_face_lesson.py`` (room, ``_draw_person``, feathered masks)
and ``tests/support/person_lesson.py`` (cast, FG-NET sprites, the poster, real bodies, camera
drift) at 640x480 (those modules draw at 480x360: the layouts here are this module's own).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

VERSION = "webcam-v1"
SIZE = (640, 480)
FPS = 15.0
MARGIN = (200, 70)
"""The wall is this much wider and taller than the picture on each side (the camera drifts)."""
LESSON_ID = "bench-lesson"
LESSON_START = datetime(2026, 11, 21, 15, 0, 0, tzinfo=timezone.utc)
TEACHER_LEAD_S = 20
DISCONNECTS_S = (20, 35)
"""The two disconnects' lengths (at 45% and 62% of the lesson)."""
H264_ARGS = ("-crf", "33")
VP9_ARGS = ("-b:v", "450k", "-minrate", "450k", "-maxrate", "450k", "-bufsize", "900k")
"""libvpx-vp9 in constant-bitrate mode (min = max = target): a browser's realtime encoder at
~450 kb/s for 640x480."""
H264_GOP, VP9_GOP = 250, 300

BLOCKS = {  # kind: (shortest s, longest s)
    "child": (15, 75),
    "beside": (8, 40),
    "parent_alone": (5, 20),
    "shoulder": (6, 25),
    "half": (5, 15),
    "away": (4, 15),
}
"""Who is in view. ``away``: the child left, the room (and the poster) only."""
VISITS = ("beside", "beside", "shoulder", "shoulder", "half", "parent_alone", "away", "away")
"""Between two child blocks, with :data:`VISIT_SHARE`, one of these (drawn in turn from a
shuffled bag, so every kind comes up every few visits)."""
VISIT_SHARE = 0.35
SMILING_SHARE = 0.4
"""Child blocks that show a smiling photo (the others a neutral one)."""
LOOKS = {  # look: weight
    "plain": 0.26, "dim": 0.12, "backlit": 0.10, "cast": 0.12, "hand": 0.12, "lean": 0.10,
    "small": 0.05, "blur": 0.07, "turned": 0.06,
}  # fmt: skip
LOOK_S = (2, 10)
"""Each look lasts 2-9 s."""


@dataclass(frozen=True)
class Block:
    kind: str
    start_s: int
    end_s: int
    child: object | None  # person_lesson.Photo
    parent: object | None
    side: int  # -1 left, 1 right: where a half face, a shoulder or a lean goes


@dataclass(frozen=True)
class Look:
    name: str
    start_s: int
    end_s: int
    strength: float  # look-specific: dim factor, lean depth, cast index, blur length ...
    side: int


@dataclass
class WebcamPlan:
    seed: int
    minutes: float
    cast: object  # person_lesson.Cast
    blocks: list[Block]
    looks: list[Look]
    spans: list[tuple[int, int, str]]  # (start s, end s, file name) of the student's recordings

    @property
    def duration_s(self) -> int:
        return self.blocks[-1].end_s

    def to_json(self) -> dict:
        return {
            "seed": self.seed, "minutes": self.minutes, "duration_s": self.duration_s, "fps": FPS, "size": SIZE,
            "child": self.cast.student, "parent": self.cast.parent, "poster": self.cast.poster.file,
            "spans": self.spans,
            "blocks": [{"kind": b.kind, "start_s": b.start_s, "end_s": b.end_s,
                        "photo": getattr(b.child, "file", None), "smile": getattr(b.child, "smile", None)}
                       for b in self.blocks],
            "looks": [[k.name, k.start_s, k.end_s] for k in self.looks],
        }  # fmt: skip


def shared_data_dir() -> Path:
    return Path(os.environ.get("HIGHLIGHTS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def available(shared_data: Path | None = None) -> bool:
    shared_data = shared_data or shared_data_dir()
    return (shared_data / "faces" / "age" / "fgnet").is_dir() and (shared_data / "faces" / "smile" / "lfw_expressions").is_dir()


class _LazyDetector:
    """What ``person_lesson.face_box`` calls for a photo not in its box cache: the job's MTCNN
    (loaded on first use only; its own import names a module this package no longer has)."""

    def __init__(self) -> None:
        self._detector = None

    def detect(self, images):
        if self._detector is None:
            from highlights.models.detection import FaceDetector

            self._detector = FaceDetector()
        return self._detector.detect(images)


def _person_lesson():
    import support.person_lesson as pl

    if pl._DETECTOR is None:
        pl._DETECTOR = _LazyDetector()
    return pl


def plan_lesson(minutes: float, seed: int = 0, shared_data: Path | None = None) -> WebcamPlan:
    """Blocks, looks and recordings of the seed's lesson (deterministic)."""
    pl = _person_lesson()
    shared_data = shared_data or shared_data_dir()
    cast = pl.cast_for(seed, shared_data)
    rng = np.random.default_rng([seed, 101])
    mine = pl.one_age(pl.read_children()[cast.student])
    smiling = [mine[i] for i in rng.permutation(len(mine)) if mine[i].smile]
    neutral = [mine[i] for i in rng.permutation(len(mine)) if not mine[i].smile]
    parent = pl.read_lfw(shared_data)[cast.parent]
    parent_photos = [p for p in parent if p.smile][:3] + [p for p in parent if not p.smile][:3]
    total = int(round(minutes * 60))
    blocks: list[Block] = []
    t, counters = 0, {"s": 0, "n": 0, "p": 0}
    bag: list[str] = []

    def take(pool, key):
        photo = pool[counters[key] % len(pool)]
        counters[key] += 1
        return photo

    previous = None
    while t < total:
        kind = "child"
        if previous == "child" and rng.random() < VISIT_SHARE:
            if not bag:
                bag = [VISITS[i] for i in rng.permutation(len(VISITS))]
            kind = bag.pop()
        shortest, longest = BLOCKS[kind]
        length = min(int(rng.integers(shortest, longest + 1)), total - t)
        child = None
        if kind not in ("parent_alone", "away"):
            child = take(smiling, "s") if rng.random() < SMILING_SHARE else take(neutral, "n")
        parent_photo = take(parent_photos, "p") if kind in ("beside", "parent_alone", "shoulder", "half") else None
        blocks.append(Block(kind, t, t + length, child, parent_photo, 1 if rng.random() < 0.5 else -1))
        previous, t = kind, t + length
    names = list(LOOKS)
    look_weights = np.array([LOOKS[k] for k in names])
    looks: list[Look] = []
    t, previous = 0, None
    while t < total:
        name = names[int(rng.choice(len(names), p=look_weights / look_weights.sum()))]
        if name == previous and name != "plain":
            name = "plain"
        length = min(int(rng.integers(*LOOK_S)), total - t)
        looks.append(Look(name, t, t + length, float(rng.random()), 1 if rng.random() < 0.5 else -1))
        previous, t = name, t + length
    # Two disconnects: the student's camera drops at 45% and at 62% of the lesson; the middle
    # recording comes from the browser (VP9 WebM).
    a, b = int(total * 0.45), int(total * 0.62)
    gaps = [min(gap, max(3, int(total * 0.03))) for gap in DISCONNECTS_S]  # shorter in a short lesson
    spans = [(0, a, "student-1.mp4"), (a + gaps[0], b, "student-2.webm"), (b + gaps[1], total, "student-3.mp4")]
    return WebcamPlan(seed, minutes, cast, blocks, looks, spans)


# --------------------------------------------------------------------------- drawing


@dataclass
class _Scene:
    wall: np.ndarray


def _scene(plan: WebcamPlan, shared_data: Path) -> _Scene:
    import support.real_face_lesson as rfl

    pl = _person_lesson()
    rng = np.random.default_rng([plan.seed, 11])
    width, height = SIZE
    wall = rfl.room_background(np.random.default_rng(plan.seed), (width + 2 * MARGIN[0], height + 2 * MARGIN[1]))
    import cv2

    texture = np.zeros(wall.shape[:2], np.float32)  # plaster, wallpaper, shadows: a room is not flat
    for sigma, weight in ((0.8, 0.5), (2.5, 0.8), (8.0, 1.0)):
        layer = cv2.GaussianBlur(rng.normal(0, 1, wall.shape[:2]).astype(np.float32), (0, 0), sigma)
        texture += weight * layer / layer.std()
    wall = np.clip(wall + 6.0 * texture[..., None], 0, 255)
    patch, _face = pl._poster_patch(plan.cast, shared_data, rng)
    patch = np.ascontiguousarray(patch)
    scale = 1.3  # the picture at 640x480 as big as person_lesson's at 480x360 relative to the frame
    patch = cv2.resize(patch, (int(patch.shape[1] * scale), int(patch.shape[0] * scale)), interpolation=cv2.INTER_LINEAR)
    ph, pw = patch.shape[:2]
    spots = ((int(width * 0.05), int(height * 0.04)), (int(width * 0.68) - pw // 2, int(height * 0.05)))
    x, y = spots[int(rng.integers(0, len(spots)))]
    x, y = x + MARGIN[0], y + MARGIN[1]
    wall[y + 4 : y + ph + 4, x + 4 : x + pw + 4] *= 0.8
    wall[y : y + ph, x : x + pw] = patch
    return _Scene(wall)


def _smooth_bump(u: float) -> float:
    """0 at the look's start and end, 1 for its middle (0.6 s-ish ramps at 15 fps)."""
    return float(np.clip(np.sin(np.pi * np.clip(u, 0.0, 1.0)) * 1.6, 0.0, 1.0))


def _draw_body(canvas: np.ndarray, crops: list[np.ndarray], frame: int, kind: str, cx: float, cy: float,
               shade: float) -> None:
    """A real body without its face (``person_lesson.real_bodies``) at 640x480: at the side,
    bottom-aligned with its inner edge at ``cx``; from the top, centred on ``cx``."""
    import cv2

    pl = _person_lesson()
    crop = crops[frame % len(crops)]
    height = SIZE[1] * (0.5 if kind == "side" else 0.36)
    scale = height / crop.shape[0]
    crop = cv2.resize(crop, (int(crop.shape[1] * scale), int(height)), interpolation=cv2.INTER_LINEAR)
    if kind == "side":
        right = cx > SIZE[0] / 2
        if right:
            crop = crop[:, ::-1]
        pl._paste(canvas, crop, cx if right else cx - crop.shape[1], SIZE[1] - crop.shape[0], shade)
    else:
        pl._paste(canvas, crop, cx - crop.shape[1] / 2, cy - crop.shape[0] * 0.35, shade)


def _draw_hand(canvas: np.ndarray, cx: float, cy: float, face_px: float, u: float, side: int, skin, sleeve) -> None:
    """A hand (palm and fingers) with its forearm from the bottom edge, passing across the face
    over the look (``u`` 0 -> 1)."""
    import cv2

    hx = cx + side * face_px * (0.95 - 1.9 * u)
    hy = cy + face_px * (0.12 + 0.08 * np.sin(u * 9.0))
    palm = (int(face_px * 0.30), int(face_px * 0.36))
    elbow = (int(hx + side * face_px * 0.7), SIZE[1] + int(face_px * 0.2))
    cv2.line(canvas, elbow, (int(hx), int(hy + palm[1] * 0.8)), sleeve, max(int(face_px * 0.42), 6))
    cv2.line(canvas, (int(hx), int(hy + palm[1] * 1.6)), (int(hx), int(hy)), skin, max(int(face_px * 0.30), 5))
    cv2.ellipse(canvas, (int(hx), int(hy)), palm, 10.0 * side, 0, 360, skin, -1)
    finger = max(int(face_px * 0.075), 2)
    for k in range(4):
        x0 = hx + (k - 1.5) * palm[0] * 0.55
        cv2.line(canvas, (int(x0), int(hy - palm[1] * 0.6)), (int(x0 + (k - 1.5) * 2), int(hy - palm[1] * 1.45)),
                 skin, finger)  # fmt: skip


def render(plan: WebcamPlan, shared_data: Path, start_s: int, end_s: int):
    """RGB uint8 frames of the student's camera from lesson second ``start_s`` to ``end_s``."""
    import cv2

    import support.real_face_lesson as rfl

    pl = _person_lesson()
    width, height = SIZE
    seed = plan.seed
    rng = np.random.default_rng([seed, start_s, 7])
    scene = _scene(plan, shared_data)
    bodies = {"side": pl.real_bodies(shared_data, "side"), "top": pl.real_bodies(shared_data, "top")}
    grain = [rng.normal(0.0, 3.5, (height, width, 3)).astype(np.float32) for _ in range(8)]
    clothes = np.random.default_rng([seed, 13]).integers(30, 220, (2, 3))
    shirts = {"child": tuple(float(c) for c in clothes[0]), "parent": tuple(float(c) for c in clothes[1])}
    sprites: dict[tuple, object] = {}
    tint_phase = float(np.random.default_rng([seed, 17]).uniform(0, 6.28))
    casts = ((1.25, 1.0, 0.68), (0.74, 0.93, 1.28), (1.05, 1.22, 0.78), (1.18, 0.9, 1.1))

    def sprite(role: str, photo):
        key = (role, photo.set_path, photo.file)
        if key not in sprites:
            loaded = pl.load_sprite(photo, shared_data, np.random.default_rng([seed, len(sprites)]))
            # The neck and hands take the colour of the cheeks (the photos' chin area is
            # sometimes a collar); the clothes are the person's own all lesson.
            cheeks = loaded.photo[52:80, 40:88].reshape(-1, 3)
            skin = tuple(float(c) for c in np.median(cheeks, axis=0))
            sprites[key] = dataclasses.replace(loaded, shirt=shirts[role], skin=skin)
        return sprites[key]

    b = k = 0
    for n in range(int(round((end_s - start_s) * FPS))):
        t = start_s + n / FPS
        while plan.blocks[b].end_s <= t:
            b += 1
        while plan.looks[k].end_s <= t:
            k += 1
        block, look = plan.blocks[b], plan.looks[k]
        u = (t - look.start_s) / max(look.end_s - look.start_s, 1)
        dx, dy = pl.camera_offset(t, seed, None)
        shift = np.array([[1, 0, -(MARGIN[0] + dx)], [0, 1, -(MARGIN[1] + dy)]], np.float32)
        canvas = cv2.warpAffine(scene.wall, shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        shade = 1.0
        if look.name == "backlit":
            canvas = np.minimum(canvas * 1.35 + 45, 255)
            shade = 0.38 + 0.12 * look.strength
        phase = b * 1.3
        drift_x = 24 * np.sin(t / 4.3 + phase) + 8 * np.sin(t / 1.7 + 2 * phase)
        drift_y = 12 * np.cos(t / 3.1 + phase)
        zoom = 1.0 + 0.08 * np.sin(t / 6.0 + phase)
        tilt = 5.0 * np.sin(t / 3.7 + phase)
        squeeze = 0.62 + 0.08 * np.sin(t / 2.3) if look.name == "turned" else 1.0
        solo_px = height * 0.29 * zoom
        people: list[tuple] = []  # (role, photo, cx, cy, face_px, tilt)
        solo = {"child": "child", "parent_alone": "parent"}.get(block.kind)
        if solo is not None:
            photo = block.child if solo == "child" else block.parent
            cx, cy, face_px = width * 0.5 + drift_x, height * 0.43 + drift_y, solo_px
            if look.name == "small":
                face_px *= 0.5
                cy = height * 0.52 + drift_y * 0.5
            elif look.name == "lean":  # towards a side edge, a fifth of the face to all of it out, and back
                cut = 0.2 + 1.1 * look.strength
                edge = width if look.side > 0 else 0.0
                out_x = edge - look.side * face_px * (0.5 - cut)
                cx += (out_x - cx) * _smooth_bump(u)
            people.append((solo, photo, cx, cy, face_px, tilt))
        elif block.kind == "beside":
            people.append(("child", block.child, width * 0.31 + drift_x, height * 0.44 + drift_y, height * 0.28 * zoom, tilt))
            people.append(("parent", block.parent, width * 0.70 - 0.5 * drift_x, height * 0.40 - drift_y,
                           height * 0.31 * zoom, -0.6 * tilt))  # fmt: skip
        elif block.kind == "half":
            people.append(("child", block.child, width * (0.5 - 0.08 * block.side) + 0.6 * drift_x, height * 0.44 + drift_y,
                           height * 0.27 * zoom, tilt))  # fmt: skip
            face_px = height * 0.33 * zoom
            cx = width / 2 + block.side * (width / 2 - face_px * (0.05 + 0.1 * (1 + np.sin(t / 2.1))))
            people.append(("parent", block.parent, cx, height * 0.40 - 0.5 * drift_y, face_px, -tilt))
        elif block.kind == "shoulder":
            child = ("child", block.child, width * (0.5 - 0.06 * block.side) + 0.6 * drift_x, height * 0.44 + drift_y,
                     height * 0.28 * zoom, tilt)  # fmt: skip
            if block.start_s % 2 == 0:
                inner = width / 2 + block.side * width * (0.24 + 0.03 * np.sin(t / 2.3))
                people += [child, ("body:side", None, inner, height * 0.35, 0.0, 0.0)]
            else:
                people += [("body:top", None, width / 2 + block.side * width * 0.30 + 0.5 * drift_x, -20.0, 0.0, 0.0), child]
        hand = None
        for role, photo, cx, cy, face_px, angle in people:
            if role.startswith("body:"):
                _draw_body(canvas, bodies[role[5:]], int(t * 2), role[5:], cx, cy, shade)
                continue
            who = sprite(role, photo)
            main = role == "child" or solo is not None  # the child, or whoever is alone in view
            rfl._draw_person(canvas, who, cx, cy, face_px, angle, squeeze=squeeze if main else 1.0, shade=shade)
            if main and hand is None:
                hand = (cx, cy, face_px, who)
        if look.name == "hand" and hand is not None:  # in front of the child's face (or the one alone)
            cx, cy, face_px, who = hand
            _draw_hand(canvas, cx, cy, face_px, u, look.side, tuple(c * shade * 0.95 for c in who.skin),
                       tuple(c * shade for c in who.shirt))  # fmt: skip
        gain = 0.9 + 0.12 * np.sin(t / 13.0)
        warmth = 0.04 * np.sin(t / 17.0 + tint_phase)
        colour = np.array([1.0 + warmth, 1.0, 1.0 - warmth], np.float32) * gain
        noise = 1.0
        if look.name == "dim":
            colour *= 0.25 + 0.2 * look.strength + 0.03 * np.sin(t * 1.3)
            noise = 2.5
        elif look.name == "cast":
            colour *= np.array(casts[int(look.strength * len(casts)) % len(casts)], np.float32)
        canvas *= colour
        if look.name == "blur":
            length = 5 + int(look.strength * 8)
            kernel = np.zeros((length, length), np.float32)
            kernel[length // 2, :] = 1.0 / length
            rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), 180.0 * look.strength, 1.0)
            kernel = cv2.warpAffine(kernel, rotation, (length, length))
            canvas = cv2.filter2D(canvas, -1, kernel / max(float(kernel.sum()), 1e-6))
        canvas += grain[int(rng.integers(0, len(grain)))] * noise
        yield np.clip(canvas, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- the files


def build_webcam_lesson(folder: Path, minutes: float, seed: int = 0, lesson_id: str = LESSON_ID,
                        shared_data: Path | None = None, log=print) -> Path:  # fmt: skip
    """Write the lesson into ``folder`` (built in a temporary folder beside it, then renamed, so
    an interrupted build leaves no half lesson); returns ``folder``."""
    shared_data = shared_data or shared_data_dir()
    if not available(shared_data):
        raise SystemExit(f"the webcam lesson needs FG-NET and LFW photos in {shared_data}/faces")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        return _build(folder, tmp, minutes, seed, lesson_id, shared_data, log)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _build(folder: Path, tmp: Path, minutes: float, seed: int, lesson_id: str, shared_data: Path, log) -> Path:
    from highlights.media.synthetic import write_lesson_files, write_video

    import support.real_face_lesson as rfl

    plan = plan_lesson(minutes, seed, shared_data)
    started = time.perf_counter()
    recordings = []
    for start, end, name in plan.spans:
        t0 = time.perf_counter()
        frames = render(plan, shared_data, start, end)
        if name.endswith(".webm"):
            write_video(tmp / name, frames, fps=FPS, codec="vp9", gop=VP9_GOP, no_duration=True, extra_args=VP9_ARGS)
        else:
            write_video(tmp / name, frames, fps=FPS, codec="h264", gop=H264_GOP, extra_args=H264_ARGS)
        recordings.append((name, "student", start, end - start))
        size = (tmp / name).stat().st_size
        log(f"  {name}: {end - start} s in {time.perf_counter() - t0:.0f} s, {size * 8 / max(end - start, 1) / 1000:.0f} kb/s")
    teacher_len = TEACHER_LEAD_S + plan.duration_s + 10
    write_video(tmp / "teacher-1.mp4", (rfl.teacher_frame(-TEACHER_LEAD_S + i / 5.0) for i in range(int(teacher_len * 5))),
                fps=5.0, codec="h264")  # fmt: skip
    recordings.append(("teacher-1.mp4", "teacher", -TEACHER_LEAD_S, teacher_len))
    write_lesson_files(tmp, lesson_id, LESSON_START, recordings, {
        "student_name": "Sam", "subject": "Maths", "locale": "en", "lesson_url": "https://school.example/l",
    })  # fmt: skip
    info = plan.to_json()
    info["generated_s"] = round(time.perf_counter() - started, 1)
    (tmp / "plan.json").write_text(json.dumps(info))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    log(f"generated {folder} in {time.perf_counter() - started:.0f} s")
    return folder


def look_changes(folder: Path) -> list[int]:
    """Lesson seconds where the look or the block changes (from ``plan.json``)."""
    info = json.loads((folder / "plan.json").read_text())
    starts = {b["start_s"] for b in info["blocks"]} | {look[1] for look in info["looks"]}
    return sorted(s for s in starts if s > 0)


__all__ = ["FPS", "SIZE", "VERSION", "WebcamPlan", "available", "build_webcam_lesson", "look_changes", "plan_lesson"]
