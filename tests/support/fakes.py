"""Test doubles for the face models.

:class:`FakeScorer` has the part of :class:`~highlights.stages.scores.FaceScorer`'s interface the
pipeline uses (``versions``, ``options``, ``score_images``) and "sees" what
:mod:`support.scene` draws into the student's frames; ``FakeScorer.calls`` tells a rerun that
scored the frames again from one that reused them. It is pickled to worker processes and Ray
actors, which import it from here (``tests`` on their path)."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np

from highlights.media.synthetic import read_index
from highlights.models.detection import DetectionOptions
from highlights.stages.scores import FaceScore

from support.scene import ADULT_BOX, CHILD_BOX, FPS, MOUTH, STUDENT_SIZE


def _hash_for(second: int, salt: int = 0) -> str:
    return f"{random.Random(second * 7919 + salt).getrandbits(64):016x}"


class FakeScorer:
    """Stands in for ``FaceScorer``: finds the drawn squares, scores the drawn smile.

    ``smiles=False`` makes it judge every child face neutral (a "new model" that sees no smile).
    ``calls`` / ``images`` count the ``score_images`` calls and the images scored.
    """

    versions = {"detector": "fake-detector-1", "smile": "fake-smile-1", "age": "fake-age-1"}
    options = DetectionOptions()

    def __init__(self, smiles: bool = True) -> None:
        self.smiles = smiles
        self.calls = 0
        self.images = 0

    def score_images(self, images) -> list[list[FaceScore]]:
        self.calls += 1
        self.images += len(images)
        return [self._faces(np.asarray(image)) for image in images]

    def _faces(self, image: np.ndarray) -> list[FaceScore]:
        assert image.shape == (STUDENT_SIZE[1], STUDENT_SIZE[0], 3), "only student frames are scored"
        second = read_index(image) // FPS
        faces: list[FaceScore] = []
        x1, y1, x2, y2 = CHILD_BOX
        _, my1, _, _ = MOUTH
        if image[y1 + 4 : my1 - 4, x1 + 4 : x2 - 4].mean() > 200:
            mx1, my1, mx2, my2 = MOUTH
            mouth = float(image[my1 + 2 : my2 - 2, mx1 + 2 : mx2 - 2].mean())
            smile = round(1 - mouth / 255, 2) if self.smiles else 0.05
            faces.append(self._face(CHILD_BOX, child=True, smile=smile, crop_hash=_hash_for(second)))
        x1, y1, x2, y2 = ADULT_BOX
        region = image[y1 + 4 : y2 - 4, x1 + 4 : x2 - 4].astype(float)
        if region[..., 2].mean() > 150 and region[..., 0].mean() < 110:
            faces.append(self._face(ADULT_BOX, child=False, smile=0.3, crop_hash=_hash_for(second, salt=1)))
        return [replace(face, face=k) for k, face in enumerate(faces)]

    @staticmethod
    def _face(box, *, child: bool, smile: float, crop_hash: str) -> FaceScore:
        return FaceScore(
            face=0, box=tuple(float(v) for v in box), det_prob=0.999,
            child_prob=0.95 if child else 0.04, smile_prob=smile, is_child=child,
            sharpness=300.0, brightness=130.0, crop_hash=crop_hash,
        )  # fmt: skip
