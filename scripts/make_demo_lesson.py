#!/usr/bin/env python
"""Build the demo lesson in ``fixtures/demo/`` (fixed seeds; about 10 s).

    python scripts/make_demo_lesson.py fixtures/demo
    python scripts/make_demo_lesson.py --real-faces out/demo-input    # needs ../shared/data

The student's camera shows scikit-image's astronaut photo (a real, public-domain photo of a
smiling adult that ships inside the scikit-image wheel) on a webcam-like room background, with
the framing drifting and zooming and the light changing, so no two seconds look the same. The
teacher's camera is a synthetic whiteboard scene without a face. The student joins 25 s late and
drops out once for 15 s, so the lesson has two student recordings.

The astronaut is an adult, and so is this lesson's student: ``lessons.csv`` says
``student_age_group = adult``, so the GIF is made of the student's own face (the one face in
view; a frame with anyone else in it stays out). The lesson ends ``ok`` with a GIF of four
smiling moments (20 s apart, over 110 sampled seconds), the snippet and the report: the whole
path on shipped material. Under the children's rule (the default, when the column is absent)
the same lesson ends ``no_highlight``: the shipped child/adult model judges her an adult in
nearly every frame. No freely licensed photo of a child ships in any package this project may
depend on, and the shared research data may not be committed.

``--real-faces FOLDER`` builds a second lesson from hand-labelled photos of children and adults
in ``../shared/data`` (``tests/support/real_face_lesson.py``: a 5-minute lesson with thirteen smiling
moments, a parent beside the child, a parent alone, an empty room and a disconnect); it ends
``ok`` with a GIF and snippet. Its media go to an ignored folder, never the repository.
``bash scripts/dev.sh demo`` runs both when the shared data is there.

The media files are not committed (``.gitignore``); the CSV files are, and this script rewrites
them identically.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from highlights.media.synthetic import write_lesson_files, write_video

LESSON_ID = "demo-0001"
LESSON_START = datetime(2026, 11, 20, 16, 0, 0, tzinfo=timezone.utc)
SIZE = (480, 360)  # width, height: a small webcam picture
FPS = 5.0
# (file, role, seconds after the scheduled start, length in seconds)
RECORDINGS = [
    ("teacher-1.mp4", "teacher", 0.0, 150.0),
    ("student-1.webm", "student", 25.0, 60.0),  # late join
    ("student-2.webm", "student", 100.0, 65.0),  # back after a 15 s disconnect
]
ASTRONAUT_FACE_CENTRE = (224.0, 117.0)  # MTCNN's face box centre in skimage.data.astronaut()


def room_background(rng: np.random.Generator) -> np.ndarray:
    """A webcam-like room: a warm wall gradient, a shelf and a window."""
    width, height = SIZE
    y = np.linspace(0, 1, height)[:, None, None]
    x = np.linspace(0, 1, width)[None, :, None]
    wall = (np.array([196, 182, 160]) * (0.85 + 0.15 * x) * (1.0 - 0.2 * y)).astype(np.float32)
    image = np.broadcast_to(wall, (height, width, 3)).copy()
    cv2.rectangle(image, (int(width * 0.72), 30), (width - 20, 150), (225, 235, 245), -1)  # window
    cv2.rectangle(image, (20, int(height * 0.35)), (int(width * 0.25), int(height * 0.38)), (110, 80, 50), -1)
    for i in range(5):  # books on the shelf
        x0 = 28 + i * 18
        colour = tuple(int(c) for c in rng.integers(40, 200, 3))
        cv2.rectangle(image, (x0, int(height * 0.35) - 40 + 4 * i), (x0 + 14, int(height * 0.35)), colour, -1)
    return image.clip(0, 255).astype(np.uint8)


def student_frame(astronaut: np.ndarray, background: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    """The astronaut framed like a webcam at lesson time ``t``: drifting, zooming, changing light."""
    width, height = SIZE
    window = 300 + 50 * np.sin(t / 7.0)  # zoom: the face 120-170 px tall
    cx = ASTRONAUT_FACE_CENTRE[0] + 30 * np.sin(t / 5.0)
    cy = ASTRONAUT_FACE_CENTRE[1] + 40 + 15 * np.cos(t / 4.0)
    w, h = window, window * height / width
    x0 = float(np.clip(cx - w / 2, 0, astronaut.shape[1] - w))
    y0 = float(np.clip(cy - h / 2, 0, astronaut.shape[0] - h))
    matrix = np.array([[w / width, 0, x0], [0, h / height, y0]], dtype=np.float32)
    person = cv2.warpAffine(astronaut, matrix, SIZE, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    # The photo fills the middle of the picture; the room shows at the sides.
    mask = np.zeros((height, width), np.float32)
    cv2.ellipse(mask, (width // 2, height), (int(width * 0.36), height), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (41, 41), 0)[:, :, None]
    image = mask * person + (1 - mask) * background
    if int(t // 9) % 4 == 3:  # now and then the student turns the other way
        image = image[:, ::-1]
    gain = 0.85 + 0.2 * np.sin(t / 11.0)  # the light changes
    noise = rng.normal(0, 4, image.shape)  # sensor grain
    return np.clip(image * gain + noise, 0, 255).astype(np.uint8)


def teacher_frame(t: float) -> np.ndarray:
    """A whiteboard with a moving pointer and the time written on it (no face)."""
    width, height = 320, 240
    image = np.full((height, width, 3), 235, np.uint8)
    cv2.putText(image, f"2 + 3 = 5   t={t:05.1f}s", (12, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (30, 30, 160), 2)
    x = int(width / 2 + width / 3 * np.sin(t / 3.0))
    cv2.circle(image, (x, 150), 12, (200, 60, 60), -1)
    return image


def write_demo(folder: Path) -> list[Path]:
    from skimage.data import astronaut as load_astronaut

    folder.mkdir(parents=True, exist_ok=True)
    astronaut = load_astronaut()
    background = room_background(np.random.default_rng(7))
    written = []
    for name, role, start, length in RECORDINGS:
        rng = np.random.default_rng(len(name) * 1000 + int(start))  # fixed seeds: same files every time
        count = int(round(length * FPS))
        if role == "student":
            frames = (student_frame(astronaut, background, start + i / FPS, rng) for i in range(count))
            codec = "vp8"
        else:
            frames = (teacher_frame(start + i / FPS) for i in range(count))
            codec = "h264"
        path = folder / name
        write_video(path, frames, fps=FPS, codec=codec)
        written.append(path)
    write_lesson_files(folder, LESSON_ID, LESSON_START, RECORDINGS, {
        "student_name": "Ada", "subject": "Maths", "locale": "en",
        "lesson_url": "https://school.example/lessons/demo-0001", "student_age_group": "adult",
    })  # fmt: skip
    return written


def write_real_face_lesson(folder: Path) -> int:
    import os

    root = Path(__file__).resolve().parent.parent
    shared = Path(os.environ.get("HIGHLIGHTS_SHARED_DATA", root.parent / "shared" / "data"))
    if not (shared / "faces").is_dir():
        print(f"no shared data at {shared}: the lesson of real faces is not built", file=sys.stderr)
        return 3
    sys.path.insert(0, str(root / "tests"))
    from support.real_face_lesson import build_real_face_lesson

    lesson = build_real_face_lesson(shared, folder)
    print(f"wrote lesson {lesson.lesson_id} ({lesson.duration_s} s) to {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="fixtures/demo", type=Path)
    parser.add_argument("--real-faces", action="store_true",
                        help="Build the lesson of real faces from ../shared/data (HIGHLIGHTS_SHARED_DATA) instead.")
    args = parser.parse_args(argv)
    if args.real_faces:
        return write_real_face_lesson(args.folder)
    for path in write_demo(args.folder):
        print(f"wrote {path}")
    print(f"wrote {args.folder / 'manifest.csv'} and {args.folder / 'lessons.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
