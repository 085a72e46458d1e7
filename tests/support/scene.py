"""The scene of the synthetic lessons most tests run: a teacher's and a student's recording,
built at run time, and what the student's camera shows second by second.

The videos are real files (teacher: H.264 MP4, student: VP8 WebM, written by
:func:`highlights.media.synthetic.write_video`) and go through the real stages; only the face
models are replaced, by :class:`support.fakes.FakeScorer`, which "sees" what is drawn into the
student's frames:

- the top half of every frame carries its frame number (:func:`highlights.media.synthetic.index_frame`
  blocks); the fake turns it into the second of the recording and a random 64-bit crop hash per
  second, so no two seconds look like near-duplicates;
- a white 64 px square at ``CHILD_BOX`` is the child's face; a dark "mouth" bar inside it is a
  smile, and the bar's darkness is the smile probability (no bar: not smiling);
- a blue 64 px square at ``ADULT_BOX`` is an adult's face.

Which seconds hold a smiling child or an adult is therefore decided by the video alone. The
``videos`` fixture (``tests/conftest.py``) encodes the recordings once per test module;
:mod:`support.lessons` copies them into lesson folders and writes their manifests.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from highlights.media.synthetic import index_frame, write_video

FPS = 2  # frames per second of the synthetic recordings
STUDENT_SIZE = (320, 240)  # width, height
STUDENT_SECONDS = 90
TEACHER_SIZE = (160, 120)
TEACHER_SECONDS = 100
BACKGROUND = 100  # gray level of the lower half of the student's frames

CHILD_BOX = (40, 150, 104, 214)  # x1, y1, x2, y2: the child's face, 64 px
MOUTH = (52, 194, 92, 208)  # the smile bar, inside CHILD_BOX
ADULT_BOX = (200, 150, 264, 214)  # the adult's face, 64 px

SMILES = {
    # second of the student recording: smile probability drawn as the mouth's darkness
    4: 0.80, 5: 0.84, 6: 0.82,
    28: 0.90, 29: 0.88,
    39: 0.99, 40: 0.99, 41: 0.99, 42: 0.99, 43: 0.99, 44: 0.99,  # the best smiles: adult nearby
    46: 0.86,
    55: 0.85, 56: 0.87,
    80: 0.92, 81: 0.90,
}  # fmt: skip
ADULT_SECONDS = {41, 42, 70}
"""Seconds with an adult in view: no pick may lie within ``adult_margin_s`` (2 s) of them."""

T0 = datetime(2026, 11, 21, 15, 0, 0, tzinfo=timezone.utc)
STUDENT_DELAY_S = 2.0  # the student joins 2 s after the teacher: the lesson starts then
PUBLIC_BASE = "https://cdn.example.com/highlights"


def student_frame(index: int, *, smile: float | None, adult: bool) -> np.ndarray:
    """Frame ``index``: its number in the top half, the faces of that second in the bottom half."""
    image = index_frame(index, STUDENT_SIZE, color=False)
    image[STUDENT_SIZE[1] // 2 :] = BACKGROUND
    x1, y1, x2, y2 = CHILD_BOX
    image[y1:y2, x1:x2] = 255
    if smile is not None:
        mx1, my1, mx2, my2 = MOUTH
        image[my1:my2, mx1:mx2] = round(255 * (1 - smile))
    if adult:
        x1, y1, x2, y2 = ADULT_BOX
        image[y1:y2, x1:x2] = (30, 60, 230)
    return image


def write_student(path: Path, smiles: dict[int, float], adults: set[int]) -> Path:
    frames = (
        student_frame(i, smile=smiles.get(i // FPS), adult=i // FPS in adults)
        for i in range(STUDENT_SECONDS * FPS)
    )
    return write_video(path, frames, fps=FPS, codec="vp8")


def write_teacher(path: Path) -> Path:
    width, height = TEACHER_SIZE
    frames = (np.full((height, width, 3), 40 + i % 50, np.uint8) for i in range(TEACHER_SECONDS * FPS))
    return write_video(path, frames, fps=FPS, codec="h264")
