"""One lesson end to end against its decode floor and the straightforward pipeline (issue 14).

    python bench/lesson.py [--minutes 45] [--lesson busy|steady|webcam] [--json] [--skip-straightforward]
                           [--skip-clips] [--skip-faces] [--regenerate] [--runs N]

Generates once (cached in ``~/.cache/highlights/bench/lesson-<minutes>m-v1``, outside the
repository, since its faces come from ``../shared/data``) a lesson like the nightly job sees:

* the student's camera, 640x480, in three recordings (two disconnects of 20 s): H.264 MP4 at
  15 fps with a 250-frame GOP, VP8 WebM at 25 fps as browsers write it (no duration, no cues), and
  H.264 MP4 at 25 fps, heavier compression (CRF 28) than the test fixtures;
* a face in most seconds: hand-labelled UTKFace children (smiling and neutral) composited at
  webcam scale on a room background, sometimes a parent beside the child or alone, sometimes
  an empty room; the child sometimes leans back (a smaller face), the light drifts and dims
  (``tests/support/real_face_lesson.py`` draws them). Without ``../shared/data``, scikit-image's
  astronaut photo is the face;
* the teacher's camera (a whiteboard, 320x240, 5 fps) over the whole lesson.

``--lesson busy`` (the default, issue 14's yardstick) swaps in another child or parent every
4-12 s: about 330 scene changes in 45 minutes, each costing MTCNN's whole pyramid.
``--lesson steady`` is a webcam lesson as it goes: one child and one parent throughout, in
segments of 20-120 s (cached apart, ``lesson-<minutes>m-steady-v1``).

Then, in one run, each in a fresh process so that CPU time and peak RSS are its own:

* ``floor``: decoding every frame of the student recordings once, nothing else (PyAV with
  FFmpeg's frame threads, the fastest of the ways tried: see ``bench/decoding.py``);
* ``straightforward``: OpenCV reads every frame, each sampled frame (the same sample points as
  the pipeline) converted to PIL, MTCNN at full resolution one frame at a time, then the same
  smile and age models on each face (one torch thread, like ours: with torch's default of two
  on the shared 2-core machine it ran 2-3x slower);
* ``ours``: :func:`highlights.lesson.run.run_manifest`, what ``highlights run`` calls, with a fresh
  output folder: wall (models loaded included), CPU and peak RSS per stage (the kernel's
  high-water mark, reset at each stage start through ``/proc/self/clear_refs``);
* ``faces``: faces found (MTCNN probability >= 0.90, the pipeline's threshold) by ours and by
  full-resolution MTCNN, on the lesson's sampled frames and on the real clips in
  ``../shared/data/video`` (sampled at 5 frames/s, 1 frame/s for the 2-minute office clip), with
  how many of the full-resolution faces ours also found (IoU >= 0.5).

``--lesson webcam`` is the lesson of ``bench/webcam_lesson.py`` instead (cached in
``lesson-<minutes>m-webcam-v1``): 640x480 at 15 fps, H.264 at CRF 33 for most of the student's
camera and a browser's VP9 WebM (~450 kb/s, no duration, no cues) after the first of two
disconnects; one FG-NET child and one LFW parent (``tests/support/person_lesson.py``'s cast),
a picture on the wall, the parent's shoulder, half face, visits; and the look changing every
few seconds (dim, backlit, colour cast, a hand across the face, leaning out of the frame, sitting
back, motion blur, a turned head).

Prints the ratios ours/floor and straightforward/ours, and the load average (the machine is
shared: compare figures of one run with each other, not across runs); CPU-seconds per
lesson-minute of ours and of the floor; where ours' CPU goes per model and step
(``bench/cpu_accounts.py``: the models' and steps' methods wrapped in the ``ours`` process with
per-thread CPU clocks, each second counted once; the threads nothing wrapped sees from
``/proc``; then loading the models and the rest), with the face follower's counts and why it ran
the whole pyramid (for the webcam lesson, how that lines up with the changes of look); the
student recordings' codecs and bitrates. Faces: with ``--skip-straightforward``, full-resolution
MTCNN runs on every sampled frame in a process of its own (``full_faces``, cached in the lesson
folder; ``--skip-faces`` leaves it out). ``--json`` prints one object with ``floor_s``,
``straightforward_s``, ``ours_s``, ``peak_rss_mb``, ``ours_cpu_s_per_lesson_min``,
``floor_cpu_s_per_lesson_min``, ``cpu_by_model``, ``faces_lesson`` and the rest. ``--runs N``
runs the floor and ours N times, alternately, and reports the median run of each (issue 25's
figures are medians of 3), with every run's wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

SHARED_DATA = Path(os.environ.get("HIGHLIGHTS_SHARED_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("HIGHLIGHTS_BENCH_CACHE", Path.home() / ".cache" / "highlights" / "bench"))
VERSION = "v1"
SIZE = (640, 480)
LESSON_ID = "bench-lesson"
LESSON_START = datetime(2026, 11, 21, 15, 0, 0, tzinfo=timezone.utc)
TEACHER_LEAD_S = 20
DISCONNECT_S = 20
MIN_PROB = 0.90


# --------------------------------------------------------------------------- the lesson


@dataclass(frozen=True)
class _Part:
    kind: str  # child, child_back (leans back: a smaller face), adult_beside, adult_only, nobody
    start_s: int
    end_s: int
    faces: tuple  # FaceImage or "astronaut"
    look: int | None = None  # seeds the sprites and the drift's phase; None: the segment's index


@functools.lru_cache(maxsize=1)  # read once: the plan, the cache folder's name and the report ask
def _face_lists() -> tuple[list, list]:
    """The children's and the parents' faces: the hand-labelled photos of ``../shared/data``
    (``tests/support/real_face_lesson.py``), or the astronaut for both where they are absent."""
    try:
        from support.real_face_lesson import read_face_lists

        smiling, neutral, adults = read_face_lists()
        if not (SHARED_DATA / "faces" / smiling[0].set_path / smiling[0].file).exists():
            raise FileNotFoundError
        return smiling + neutral, adults
    except (ImportError, FileNotFoundError, IndexError):
        return ["astronaut"], ["astronaut"]


def face_source() -> str:
    """``shared`` (real children and parents) or ``astronaut`` (no ../shared/data): part of the
    cache folder's name, so a lesson drawn without the real faces is never reused for one with
    them (an astronaut-only lesson has no child: the job rightly makes no GIF of it)."""
    return "astronaut" if _face_lists()[0] == ["astronaut"] else "shared"


LESSON_KINDS = ("busy", "steady", "webcam")
"""``busy`` (the default, issue 14's yardstick): another person every 4-12 s, so ~330 scene
changes in 45 minutes, each needing MTCNN's whole pyramid. ``steady``: what a webcam lesson is
like, one child and one parent throughout, segments of 20-120 s (the child leans back, the
parent sits in or takes over, the room is empty for a while), the drift continuous. ``webcam``: a
school's night as it is (``bench/webcam_lesson.py``): 15 fps H.264 at CRF 33 and a VP9 WebM from
the browser, one FG-NET child and one LFW parent, a picture on the wall, and the look changing
every few seconds (dim, backlit, colour cast, a hand across the face, leaning out of the frame)."""


def _plan(minutes: float, seed: int = 0, kind: str = "busy") -> list[_Part]:
    """Segments covering the lesson: mostly the child, now and then a parent or nobody
    (:data:`LESSON_KINDS`)."""
    rng = np.random.default_rng(seed)
    children, adults = _face_lists()
    kinds = ["child", "child_back", "adult_beside", "adult_only", "nobody"]
    steady = kind == "steady"
    weights = [0.70, 0.12, 0.08, 0.03, 0.07] if steady else [0.72, 0.12, 0.07, 0.04, 0.05]
    lengths = (20, 121) if steady else (4, 13)
    if steady:  # (drawn only here: the busy lesson's draws stay those of the cached one)
        # A child who smiles now and then (the photo labelled smiling), or the lesson has no GIF.
        smiling = [c for c in children if getattr(c, "label", "smiling") == "smiling"] or children
        the_child, the_adult = smiling[int(rng.integers(len(smiling)))], adults[int(rng.integers(len(adults)))]
    parts, t, total = [], 0, int(round(minutes * 60))
    while t < total:
        length = min(int(rng.integers(*lengths)), total - t)
        what = kinds[int(rng.choice(len(kinds), p=weights))]
        child = the_child if steady else children[int(rng.integers(len(children)))]
        adult = the_adult if steady else adults[int(rng.integers(len(adults)))]
        faces = {"child": (child,), "child_back": (child,), "adult_beside": (child, adult),
                 "adult_only": (adult,), "nobody": ()}[what]
        parts.append(_Part(what, t, t + length, faces, look=0 if steady else None))
        t += length
    return parts


def _sprite(face, rng):
    import cv2

    import support.real_face_lesson as rfl

    if face == "astronaut":
        from skimage import data

        photo = cv2.resize(data.astronaut()[20:250, 120:350], (128, 128)).astype(np.float32)
        return rfl._Sprite(photo, rfl._feathered_ellipse(128, (0.43, 0.48)), 0.9, (60.0, 80.0, 140.0),
                           tuple(float(c) for c in photo[100:118, 50:78].reshape(-1, 3).mean(axis=0)))
    return rfl._load_sprite(face, SHARED_DATA, rng)


def _render(parts: list[_Part], start_s: int, end_s: int, fps: float, seed: int):
    """RGB frames of the student's camera from lesson second ``start_s`` to ``end_s``."""
    import support.real_face_lesson as rfl

    width, height = SIZE
    rng = np.random.default_rng([seed, start_s])
    background = rfl.room_background(np.random.default_rng(seed), SIZE)
    grain = [rng.normal(0.0, 4.0, (height, width, 3)).astype(np.float32) for _ in range(6)]
    sprites: dict[int, list] = {}
    index = 0
    for k in range(int(round((end_s - start_s) * fps))):
        t = start_s + k / fps
        while parts[index].end_s <= t:
            index += 1
        part = parts[index]
        look = index if part.look is None else part.look
        if index not in sprites:
            sprites.clear()
            # ``steady``: the one child and the one parent drawn the same way in every segment
            # (a seed per person); ``busy``: a look of their own in each segment.
            if part.look is None:
                face_rng = np.random.default_rng([seed, index])
                sprites[index] = [_sprite(face, face_rng) for face in part.faces]
            else:
                sprites[index] = [_sprite(face, np.random.default_rng([seed, look, zlib.crc32(repr(face).encode())]))
                                  for face in part.faces]
        canvas = background.copy()
        drift_x = 22 * np.sin(t / 4.3 + look) + 6 * np.sin(t / 1.7)
        drift_y = 10 * np.cos(t / 3.1 + look)
        zoom = (0.55 if part.kind == "child_back" else 1.0) * (1.0 + 0.08 * np.sin(t / 6.0 + look))
        tilt = 6.0 * np.sin(t / 3.7 + look)
        people = sprites[index]
        if part.kind == "adult_beside":
            rfl._draw_person(canvas, people[0], width * 0.31 + drift_x, height * 0.45 + drift_y, height * 0.27 * zoom, tilt)
            rfl._draw_person(canvas, people[1], width * 0.70 - drift_x / 2, height * 0.40, height * 0.30 * zoom, -tilt)
        else:
            for sprite in people:
                rfl._draw_person(canvas, sprite, width * 0.5 + drift_x, height * 0.44 + drift_y, height * 0.29 * zoom, tilt)
        gain = 0.8 + 0.2 * np.sin(t / 37.0)  # the room dims and brightens
        canvas *= gain
        canvas += grain[k % len(grain)]
        yield np.clip(canvas, 0, 255).astype(np.uint8)


def _teacher(t: float) -> np.ndarray:
    import cv2

    image = np.full((240, 320, 3), 235, np.uint8)
    cv2.putText(image, f"7 x 8 = 56  {t:06.1f}", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (30, 30, 160), 2)
    cv2.circle(image, (int(160 + 100 * np.sin(t / 3.0)), 150), 12, (200, 60, 60), -1)
    return image


def build_lesson(minutes: float, regenerate: bool = False, kind: str = "busy") -> Path:
    """The cached lesson folder (``manifest.csv``, ``lessons.csv``, recordings)."""
    from highlights.media.synthetic import write_lesson_files, write_video

    if kind == "webcam":
        import webcam_lesson

        folder = CACHE / f"lesson-{minutes:g}m-{webcam_lesson.VERSION}"
        if (folder / "manifest.csv").exists() and not regenerate:
            return folder
        return webcam_lesson.build_webcam_lesson(folder, minutes, seed=0, lesson_id=LESSON_ID,
                                                 log=lambda line: print(line, file=sys.stderr, flush=True))
    source = face_source()
    named = "" if kind == "busy" else f"{kind}-"  # the busy lesson keeps the cache folder it had
    folder = CACHE / f"lesson-{minutes:g}m-{named}{VERSION}{'' if source == 'shared' else '-' + source}"
    if (folder / "manifest.csv").exists() and not regenerate:
        return folder
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=CACHE if CACHE.exists() else None))
    CACHE.mkdir(parents=True, exist_ok=True)
    parts = _plan(minutes, kind=kind)
    total = parts[-1].end_s
    # Two disconnects, at a third and two thirds of the lesson.
    a, b = int(total / 3), int(2 * total / 3)
    spans = [(0, a, 15.0, "student-1.mp4", "h264", ["-crf", "28"]),
             (a + DISCONNECT_S, b, 25.0, "student-2.webm", "vp8", ["-cpu-used", "16", "-crf", "30"]),
             (b + DISCONNECT_S, total, 25.0, "student-3.mp4", "h264", ["-crf", "28"])]
    recordings = []
    started = time.perf_counter()
    for start, end, fps, name, codec, extra in spans:
        write_video(tmp / name, _render(parts, start, end, fps, seed=1), fps=fps, codec=codec,
                    gop=250 if codec == "h264" else None, no_duration=codec == "vp8", extra_args=extra)
        recordings.append((name, "student", start, end - start))
    teacher_len = TEACHER_LEAD_S + total + 10
    write_video(tmp / "teacher-1.mp4", (_teacher(i / 5.0) for i in range(int(teacher_len * 5))), fps=5.0, codec="h264")
    recordings.append(("teacher-1.mp4", "teacher", -TEACHER_LEAD_S, teacher_len))
    write_lesson_files(tmp, LESSON_ID, LESSON_START, recordings, {
        "student_name": "Sam", "subject": "Maths", "locale": "en", "lesson_url": "https://school.example/l",
    })  # fmt: skip
    (tmp / "plan.json").write_text(json.dumps([p.kind for p in parts]))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    print(f"generated {folder} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return folder


def _student_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith("student-"))


def _plan_points(folder: Path):
    from highlights.inputs.manifest import read_manifest
    from highlights.stages.timeline import plan_lesson

    manifest = read_manifest(folder / "manifest.csv", lessons_path=folder / "lessons.csv")
    return plan_lesson(manifest.lessons[LESSON_ID])


# --------------------------------------------------------------------------- measurements (child processes)


def _hwm_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure_floor(folder: Path) -> dict:
    """Every frame of every student recording decoded once (PyAV, frame threads), nothing else."""
    import av

    started, cpu, frames = time.perf_counter(), _cpu(), 0
    for path in _student_files(folder):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for _ in container.decode(stream):
                frames += 1
    return {"wall_s": time.perf_counter() - started, "cpu_s": _cpu() - cpu, "frames": frames, "peak_rss_mb": _hwm_mb()}


def _mtcnn_full():
    import torch

    from highlights.models import _torchvision_shim

    _torchvision_shim.install()
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, min_face_size=20, post_process=False, device=torch.device("cpu"))


def _full_res_faces(mtcnn, pil_image) -> np.ndarray:
    boxes, probs = mtcnn.detect(pil_image)
    if boxes is None:
        return np.zeros((0, 4), np.float32)
    keep = np.asarray(probs) >= MIN_PROB
    return np.asarray(boxes, np.float32)[keep]


def measure_straightforward(folder: Path) -> dict:
    """OpenCV reads every frame; sampled ones -> PIL -> full-resolution MTCNN, one at a time;
    the smile and age models on each face."""
    import cv2
    import torch
    from PIL import Image

    from highlights.models.face_cnn import load_face_model
    from highlights.models.preprocess import face_model_input, to_tensor_batch

    torch.set_num_threads(1)  # as ours: two threads on 2 shared cores cost far more (README)
    started, cpu = time.perf_counter(), _cpu()
    mtcnn = _mtcnn_full()
    # The copies the job runs (batch norms folded): the same models, at the same cost per face.
    smile, age = load_face_model("smile").folded(), load_face_model("age").folded()
    plan = _plan_points(folder)
    per_path: dict[Path, list] = {}
    for point in plan.points:
        per_path.setdefault(point.source, []).append(point)
    faces_per_frame: dict[int, list] = {}
    for path, points in per_path.items():
        capture = cv2.VideoCapture(str(path))
        k, shown = 0, None
        while k < len(points):
            ok, bgr = capture.read()
            pos_ms = capture.get(cv2.CAP_PROP_POS_MSEC) if ok else None
            # Answer every point before this frame's time with the frame before it.
            while k < len(points) and (not ok or pos_ms / 1000.0 > points[k].offset_s + 1e-4):
                if shown is not None:
                    rgb = cv2.cvtColor(shown, cv2.COLOR_BGR2RGB)
                    boxes = _full_res_faces(mtcnn, Image.fromarray(rgb))
                    for box in boxes:
                        batch = to_tensor_batch([face_model_input(rgb, tuple(box))])
                        with torch.inference_mode():
                            smile.probabilities(batch), age.probabilities(batch)
                    faces_per_frame[points[k].index] = boxes.tolist()
                k += 1
            if not ok:
                break
            shown = bgr
        capture.release()
    return {"wall_s": time.perf_counter() - started, "cpu_s": _cpu() - cpu, "peak_rss_mb": _hwm_mb(),
            "frames": len(faces_per_frame), "faces": sum(len(v) for v in faces_per_frame.values()),
            "boxes": {str(k): v for k, v in faces_per_frame.items()}}


class _StageClock:
    """A pipeline Progress that times stages: wall, CPU and peak RSS from each stage's start."""

    def __init__(self) -> None:
        self.stages: list[dict] = []
        self._open: dict | None = None

    def _close(self) -> None:
        if self._open is not None:
            s = self._open
            s["wall_s"] = time.perf_counter() - s.pop("_t")
            s["cpu_s"] = _cpu() - s.pop("_c")
            s["peak_rss_mb"] = _hwm_mb()
            self.stages.append(s)
            self._open = None

    def batch_started(self, total):
        self.stage(None, "load models")

    def lesson_started(self, lesson_id, index, total): ...

    def stage(self, lesson_id, stage):
        self._close()
        _hwm_reset()
        self._open = {"stage": stage, "_t": time.perf_counter(), "_c": _cpu()}

    def frames(self, lesson_id, done, total): ...

    def lesson_finished(self, result):
        self._close()
        self.status = result.status


def measure_ours(folder: Path) -> dict:
    import threading

    import cpu_accounts

    from highlights.batch.run import run_manifest
    from highlights.config import load_settings

    out = Path(tempfile.mkdtemp(prefix="highlights-bench-out-"))
    accounts, follower_log = cpu_accounts.install()  # per model and step, this process only
    try:
        # As the job is configured here (HIGHLIGHTS_* variables, $HIGHLIGHTS_CONFIG): a lever
        # that is off by default is measured without editing code.
        settings = load_settings(out_dir=out, force=True)
        persons = settings.selection.persons
        models_on = {"identity": persons.identity, "bodies": persons.bodies, "second_detector": persons.second_detector}
        clock = _StageClock()
        sampler = cpu_accounts.ThreadSampler().start()
        started, cpu = time.perf_counter(), _cpu()
        [result] = run_manifest(folder / "manifest.csv", settings, lessons_path=folder / "lessons.csv", progress=clock)
        wall, cpu = time.perf_counter() - started, _cpu() - cpu
        threads = sampler.stop()
        accounts.restore()
        import pandas as pd

        scores = pd.read_csv(out / LESSON_ID / "scores.csv")
        faces = scores[scores["face"] >= 0]
        boxes: dict[str, list] = {}
        for row in faces.itertuples():
            boxes.setdefault(str(row.frame), []).append([row.x1, row.y1, row.x2, row.y2])
        # Threads: the main one (detection, the people models, the stages), the decoder's and the
        # face models' (known by the wrapped calls they ran), the sampler's, and the rest (FFmpeg,
        # OpenCV and BLAS workers: nothing wrapped sees them).
        roles = {threading.main_thread().native_id: "main"}
        for tid in accounts.threads.get("decoder", ()):
            roles[tid] = "decoder"
        for tid in accounts.threads.get("face_cnns", ()):
            roles.setdefault(tid, "face models")
        roles[sampler.own_id] = "bench sampler"
        by_role: dict[str, float] = {}
        others: dict[str, float] = {}
        for tid, (comm, seconds) in threads.items():
            role = roles.get(tid, "other")
            by_role[role] = by_role.get(role, 0.0) + seconds
            if role == "other" and seconds > 0:
                others[comm] = others.get(comm, 0.0) + seconds
        index_t = {p.index: round(float(p.t), 1) for p in _plan_points(folder).points}
        return {"wall_s": wall, "cpu_s": cpu, "status": result.status, "reason": result.reason,
                "stages": clock.stages, "peak_rss_mb": max(s["peak_rss_mb"] for s in clock.stages),
                "frames": int(scores["frame"].nunique()), "faces": int(len(faces)), "boxes": boxes,
                "faces_confident": int((faces["det_prob"] >= MIN_PROB).sum()),
                "models_on": models_on, "models": accounts.summary(),
                "threads": {k: round(v, 2) for k, v in by_role.items()},
                "other_threads": {k: round(v, 2) for k, v in sorted(others.items(), key=lambda kv: -kv[1])[:8]},
                "follower": follower_log.counters(),
                "full_detections": [(index_t.get(i, -1.0), why, change) for i, why, change in follower_log.full],
                "coarse_at": [index_t.get(i, -1.0) for i in follower_log.coarse]}
    finally:
        accounts.restore()
        shutil.rmtree(out, ignore_errors=True)


FULL_FACES_FILE = "full-mtcnn-faces-v1.json"


def measure_full_faces(folder: Path) -> dict:
    """Full-resolution MTCNN (probability >= 0.90) on every sampled frame of the lesson, the frames
    ours sees (the job's own decoder at the plan's points); cached in the lesson's folder: it
    depends on the lesson and facenet's MTCNN only."""
    import torch
    from PIL import Image

    from highlights.media.decode import frames_at_points

    cached = folder / FULL_FACES_FILE
    if cached.exists():
        return {**json.loads(cached.read_text()), "cached": True}
    torch.set_num_threads(1)
    started, cpu = time.perf_counter(), _cpu()
    mtcnn = _mtcnn_full()
    boxes = {str(frame.ref.index): _full_res_faces(mtcnn, Image.fromarray(frame.image)).tolist()
             for frame in frames_at_points(_plan_points(folder).points)}
    data = {"wall_s": time.perf_counter() - started, "cpu_s": _cpu() - cpu, "frames": len(boxes),
            "faces": sum(map(len, boxes.values())), "boxes": boxes}
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, cached)
    return {**data, "cached": False}


def _clip_frames(path: Path) -> list[np.ndarray]:
    """RGB frames of a real clip: 5 per second (1 per second for clips over a minute)."""
    from PIL import Image, ImageSequence

    if path.suffix == ".gif":
        with Image.open(path) as handle:
            frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(handle)]
            step = max(1, round(len(frames) / max(1, len(frames) * (handle.info.get("duration", 40) / 1000) * 5)))
        return frames[::step]
    from highlights.media.decode import iter_frames_at
    from highlights.media.probe import probe_recording

    duration = probe_recording(path).duration_s
    step = 1.0 if duration > 60 else 0.2
    offsets = list(np.arange(0.0, duration - 1e-3, step))
    return [image for image in iter_frames_at(path, offsets) if image is not None]


def _matched(full: dict, ours: dict) -> int:
    """Full-resolution faces that ours also found (IoU >= 0.5), summed over frames."""
    from highlights.core.boxes import box_iou

    found = 0
    for key, boxes in full.items():
        mine = ours.get(key, [])
        found += int((box_iou(boxes, mine).max(axis=1) >= 0.5).sum()) if len(boxes) and len(mine) else 0
    return found


def measure_clips() -> dict:
    """Faces found on the real clips: ours (the pipeline's scoring path) vs full-resolution MTCNN."""
    from PIL import Image

    from highlights.core.frameref import FrameRef
    from highlights.media.decode import SampledFrame
    from highlights.stages.scores import FaceScorer, score_frames

    clips = sorted(p for p in (SHARED_DATA / "video").glob("*") if p.suffix in (".mp4", ".gif"))
    if not clips:
        return {}
    mtcnn, scorer = _mtcnn_full(), FaceScorer()
    result = {}
    for clip in clips:
        images = _clip_frames(clip)
        full = {str(i): _full_res_faces(mtcnn, Image.fromarray(img)).tolist() for i, img in enumerate(images)}
        start = datetime(2026, 1, 1, tzinfo=timezone.utc)
        frames = (SampledFrame(FrameRef(i, float(i), start + timedelta(seconds=i), clip, float(i)), img)
                  for i, img in enumerate(images))
        started = time.perf_counter()
        scores = score_frames(frames, scorer)
        ours_s = time.perf_counter() - started
        scores = getattr(scores, "data", scores)  # a FaceTable (its DataFrame), or a DataFrame
        faces = scores[scores["face"] >= 0]
        ours: dict[str, list] = {}
        for row in faces.itertuples():
            ours.setdefault(str(row.frame), []).append([row.x1, row.y1, row.x2, row.y2])
        result[clip.name] = {"frames": len(images), "full": sum(map(len, full.values())), "ours": int(len(faces)),
                             "ours_matched": _matched(full, ours), "ours_s": round(ours_s, 2)}
    return result


def _child(kind: str, folder: str) -> None:
    fn = {"floor": measure_floor, "straightforward": measure_straightforward, "ours": measure_ours,
          "full_faces": measure_full_faces, "clips": lambda _: measure_clips()}[kind]
    print(json.dumps(fn(Path(folder))))


def _run_child(kind: str, folder: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--_child", kind, str(folder)], env=env,
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"{kind} failed (exit {proc.returncode})")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["process_wall_s"] = time.perf_counter() - started
    summary = {k: round(v, 2) if isinstance(v, float) else v for k, v in data.items() if not isinstance(v, (dict, list))}
    print(f"{kind}: {summary}", file=sys.stderr)
    return data


# --------------------------------------------------------------------------- the report


def _median_run(runs: list[dict]) -> dict:
    """The run of median wall time (the lower middle one of an even count), with every run's
    wall and CPU seconds."""
    chosen = sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2]
    return {**chosen, "runs_wall_s": [round(r["wall_s"], 2) for r in runs],
            "runs_cpu_s": [round(r["cpu_s"], 2) for r in runs]}


LOAD_MODELS = "load models"


def _where_cpu_goes(ours: dict, minutes: float) -> list[dict]:
    """Rows of ours' CPU per model and step (``cpu_accounts``), then loading the models, the
    threads nothing wrapped sees, and the rest; shares of ours' whole CPU."""
    from cpu_accounts import CATEGORIES

    total = ours["cpu_s"]
    measured = ours.get("models") or {}
    rows = []
    for key, label in CATEGORIES:
        m = measured.get(key)
        if m is None:
            continue
        rows.append({"key": key, "label": label, "cpu_s": round(m["cpu_s"], 2), "items": m["items"],
                     "ms_per_item": round(1000 * m["cpu_s"] / m["items"], 2) if m["items"] else None})
    for key, m in measured.items():  # a category this table does not name yet
        if key not in dict(CATEGORIES):
            rows.append({"key": key, "label": key, "cpu_s": round(m["cpu_s"], 2), "items": m["items"], "ms_per_item": None})
    load = sum(s["cpu_s"] for s in ours["stages"] if s["stage"] == LOAD_MODELS)
    threads = ours.get("threads") or {}
    other = threads.get("other", 0.0) + threads.get("bench sampler", 0.0)
    rows.append({"key": "load_models", "label": "loading the models (the 'load models' stage)", "cpu_s": round(load, 2)})
    rows.append({"key": "other_threads", "label": "threads nothing wrapped sees (FFmpeg/OpenCV/BLAS)",
                 "cpu_s": round(other, 2)})
    rest = total - sum(r["cpu_s"] for r in rows)
    rows.append({"key": "rest", "label": "rest (main-thread glue, frame queue, other stages)", "cpu_s": round(rest, 2)})
    for row in rows:
        row["share"] = round(row["cpu_s"] / total, 4) if total else 0.0
        row["cpu_s_per_lesson_min"] = round(row["cpu_s"] / minutes, 3)
    return rows


def _full_reasons(ours: dict, folder: Path) -> dict:
    """Why the whole pyramid ran, and (for a lesson with ``plan.json`` looks) how the scene-change
    ones line up with the lesson's changes of look and of who is in view."""
    full = ours.get("full_detections") or []
    reasons: dict[str, int] = {}
    for _, why, _ in full:
        reasons[why] = reasons.get(why, 0) + 1
    out: dict = {"full_by_reason": reasons}
    scene = [(t, c) for t, why, c in full if why == "scene change"]
    if scene:
        values = np.array([c for _, c in scene if c is not None], float)
        out["change_quantiles"] = [round(float(np.quantile(values, q)), 1) for q in (0.1, 0.5, 0.9)] if len(values) else None
    plan_file = folder / "plan.json"
    try:
        info = json.loads(plan_file.read_text())
    except (OSError, ValueError):
        return out
    if not isinstance(info, dict) or "looks" not in info:
        return out
    spans = info["spans"]
    on = lambda t: any(a <= t < b for a, b, _ in spans)
    changes = sorted({b["start_s"] for b in info["blocks"]} | {look[1] for look in info["looks"]})
    changes = [c for c in changes if c > 0 and on(c) and on(c - 1)]
    scene_t = [t for t, _ in scene]
    hit = sum(1 for c in changes if any(c <= t < c + 1.5 for t in scene_t))
    elsewhere = sum(1 for t in scene_t if not any(c <= t < c + 1.5 for c in changes))
    out.update(look_changes=len(changes), changes_with_pyramid=hit, scene_changes_elsewhere=elsewhere)
    return out


def _recordings(folder: Path) -> list[dict]:
    """The student recordings: codec, size, frame rate, length and bitrate (PyAV)."""
    import av

    out = []
    for path in _student_files(folder):
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                frames = seconds = 0.0
                last = None
                for packet in container.demux(stream):
                    if packet.pts is None:
                        continue
                    frames += 1
                    last = max(last or 0, packet.pts)
                seconds = float(last * stream.time_base) if last is not None else 0.0
                fps = frames / seconds if seconds else 0.0
                out.append({"name": path.name, "codec": stream.codec_context.name, "width": stream.codec_context.width,
                            "height": stream.codec_context.height, "fps": round(fps, 1), "seconds": round(seconds, 1),
                            "kbps": round(path.stat().st_size * 8 / max(seconds, 1e-6) / 1000, 1)})
        except Exception as error:  # noqa: BLE001 - a report line, not a failure
            out.append({"name": path.name, "codec": f"? ({error})", "width": 0, "height": 0, "fps": 0, "seconds": 0,
                        "kbps": 0})
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=45.0)
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument("--regenerate", action="store_true", help="Rebuild the cached lesson.")
    parser.add_argument("--lesson", choices=LESSON_KINDS, default="busy",
                        help="busy: another person every 4-12 s (the yardstick); steady: one child and parent throughout.")
    parser.add_argument("--skip-straightforward", action="store_true", help="Not the (slow) straightforward pipeline.")
    parser.add_argument("--skip-clips", action="store_true", help="Not the real clips.")
    parser.add_argument("--skip-faces", action="store_true",
                        help="Not full-resolution MTCNN on the lesson's sampled frames (cached per lesson once run).")
    parser.add_argument("--runs", type=int, default=1,
                        help="Run the floor and ours this many times, alternately; report the median of each.")
    parser.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        _child(*args._child)
        return 0

    folder = build_lesson(args.minutes, args.regenerate, args.lesson)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    # --runs N: the floor and ours alternately N times; the median run of each is reported (ours'
    # stages and models from its median run), with every run's wall and CPU.
    floors, ourses = [], []
    for _ in range(max(1, args.runs)):
        floors.append(_run_child("floor", folder))
        ourses.append(_run_child("ours", folder))
    floor, ours = _median_run(floors), _median_run(ourses)
    straight = None if args.skip_straightforward else _run_child("straightforward", folder)
    load_after = Path("/proc/loadavg").read_text().split()[:3]  # after the timed runs
    full = straight if straight or args.skip_faces else _run_child("full_faces", folder)
    try:
        clips = {} if args.skip_clips else _run_child("clips", folder)
    except SystemExit as error:  # the lesson's figures still come out
        print(f"clips: {error}", file=sys.stderr)
        clips = {}
    clips.pop("process_wall_s", None)

    lesson_faces = {"ours": ours["faces"], "ours_confident": ours.get("faces_confident")}
    if full:
        found_by_ours = _matched(full["boxes"], ours["boxes"])
        lesson_faces.update(full=full["faces"], ours_matched=found_by_ours,
                            ours_not_in_full=ours["faces"] - _matched(ours["boxes"], full["boxes"]),
                            full_frames=full["frames"], full_from="straightforward" if straight else "full_faces")
    minutes = args.minutes
    models = _where_cpu_goes(ours, minutes)
    report = {
        "minutes": args.minutes, "lesson": str(folder), "lesson_kind": args.lesson, "faces": face_source(),
        "floor_s": round(floor["wall_s"], 2), "floor_cpu_s": round(floor["cpu_s"], 2), "decoded_frames": floor["frames"],
        "ours_s": round(ours["wall_s"], 2), "ours_cpu_s": round(ours["cpu_s"], 2), "ours_status": ours["status"],
        "ours_reason": ours.get("reason"),
        "straightforward_s": round(straight["wall_s"], 2) if straight else None,
        "straightforward_cpu_s": round(straight["cpu_s"], 2) if straight else None,
        "peak_rss_mb": round(ours["peak_rss_mb"], 1),
        "ours_over_floor": round(ours["wall_s"] / floor["wall_s"], 2),
        "straightforward_over_ours": round(straight["wall_s"] / ours["wall_s"], 2) if straight else None,
        "sampled_frames": ours["frames"],
        "stages": [{k: round(v, 2) if isinstance(v, float) else v for k, v in s.items()} for s in ours["stages"]],
        "faces_lesson": lesson_faces, "faces_clips": clips,
        "loadavg_before": load_before, "loadavg_after": load_after, "cpus": os.cpu_count(),
        "lesson_minutes": minutes,
        "ours_cpu_s_per_lesson_min": round(ours["cpu_s"] / minutes, 3),
        "floor_cpu_s_per_lesson_min": round(floor["cpu_s"] / minutes, 3),
        "ours_cpu_over_floor_cpu": round(ours["cpu_s"] / floor["cpu_s"], 2),
        "models_on": ours.get("models_on"), "cpu_by_model": models, "threads_cpu_s": ours.get("threads"),
        "other_threads_cpu_s": ours.get("other_threads"),
        "follower": {**ours.get("follower", {}), **_full_reasons(ours, folder)},
        "runs": len(ourses), "ours_runs_wall_s": ours["runs_wall_s"], "ours_runs_cpu_s": ours["runs_cpu_s"],
        "floor_runs_wall_s": floor["runs_wall_s"], "floor_runs_cpu_s": floor["runs_cpu_s"],
    }
    recordings = _recordings(folder)
    if recordings:
        report["recordings"] = recordings
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"lesson: {args.minutes:g} min {args.lesson}, faces from {report['faces']}, {report['sampled_frames']} sampled frames, {floor['frames']} decoded "
          f"({folder}); load {' '.join(load_before)} -> {' '.join(load_after)} on {os.cpu_count()} CPUs")
    print(f"decode floor        {floor['wall_s']:8.1f} s wall {floor['cpu_s']:8.1f} s CPU  {floor['peak_rss_mb']:7.0f} MB")
    if straight:
        print(f"straightforward     {straight['wall_s']:8.1f} s wall {straight['cpu_s']:8.1f} s CPU  "
              f"{straight['peak_rss_mb']:7.0f} MB")
    print(f"ours (run_manifest) {ours['wall_s']:8.1f} s wall {ours['cpu_s']:8.1f} s CPU  "
          f"{ours['peak_rss_mb']:7.0f} MB peak  ({ours['status']})")
    for s in ours["stages"]:
        print(f"  {s['stage']:<17} {s['wall_s']:8.2f} s wall {s['cpu_s']:8.2f} s CPU  {s['peak_rss_mb']:7.0f} MB")
    if len(ourses) > 1:
        print(f"median of {len(ourses)} runs; wall (CPU) s of each: ours {ours['runs_wall_s']} ({ours['runs_cpu_s']}), "
              f"floor {floor['runs_wall_s']} ({floor['runs_cpu_s']})")
    print(f"ours / floor = {report['ours_over_floor']:.2f}  (target <= 2)   CPU: ours / floor = "
          f"{report['ours_cpu_over_floor_cpu']:.2f}")
    print(f"CPU-s per lesson-minute: ours {report['ours_cpu_s_per_lesson_min']:.2f}, "
          f"floor {report['floor_cpu_s_per_lesson_min']:.2f}")
    if straight:
        print(f"straightforward / ours = {report['straightforward_over_ours']:.2f}  (target >= 6)")
    if full:
        print(f"faces on the lesson ({lesson_faces['full_frames']} sampled frames): ours {lesson_faces['ours']} "
              f"({lesson_faces['ours_confident']} at >= {MIN_PROB}), full-resolution MTCNN {lesson_faces['full']}, "
              f"of those ours found {lesson_faces['ours_matched']}; ours not among MTCNN's "
              f"{lesson_faces['ours_not_in_full']}")
    on = ", ".join(f"{k} {'on' if v else 'OFF'}" for k, v in (ours.get("models_on") or {}).items())
    print(f"where ours' CPU goes ({on}; CPU-s, share of ours, per item):")
    for row in models:
        per = f"{row['ms_per_item']:7.2f} ms x {row['items']:>6}" if row.get("items") else ""
        print(f"  {row['label']:<62} {row['cpu_s']:8.2f} s {100 * row['share']:5.1f}%  {per}")
    threads = ", ".join(f"{k} {v:.1f} s" for k, v in (ours.get("threads") or {}).items())
    print(f"threads (CPU-s from /proc): {threads}; other: {ours.get('other_threads')}")
    f = report["follower"]
    print(f"face follower: full pyramid {f.get('full')}, coarse {f.get('coarse')}, coarse on a scene change "
          f"{f.get('scene_coarse')}, O-net followed {f.get('followed')}, "
          f"identical {f.get('identical')}, faces found by the edge search {f.get('edge_found')}; "
          f"full pyramid by reason {f.get('full_by_reason')}")
    if f.get("look_changes") is not None:
        print(f"  look/block changes while the camera is on: {f['look_changes']}, followed by a scene-change "
              f"pyramid within 1 s: {f['changes_with_pyramid']}; scene-change pyramids not at a change: "
              f"{f['scene_changes_elsewhere']}; cell change of scene-change pyramids (p10/p50/p90): {f['change_quantiles']}")
    for r in recordings or []:
        print(f"  recording {r['name']}: {r['codec']} {r['width']}x{r['height']} {r['fps']:g} fps, {r['seconds']:.0f} s, "
              f"{r['kbps']:.0f} kb/s")
    for name, c in clips.items():
        print(f"faces in {name} ({c['frames']} frames): ours {c['ours']}, full-resolution MTCNN {c['full']}, "
              f"of those ours found {c['ours_matched']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
