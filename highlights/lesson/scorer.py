"""The face models a run loads once and hands to every lesson, and their versions (part of the
scores stage's fingerprint)."""

from __future__ import annotations

from typing import Any

import highlights
from highlights.config import Settings
from highlights.core.plain import jsonable
from highlights.lesson.resume import code_fingerprint


def load_scorer(settings: Settings) -> Any:
    """The face detector and models (a :class:`~highlights.stages.scores.FaceScorer`), loaded once
    per batch (each worker loads its own)."""
    from highlights.models.detection import FaceDetector  # torch: only where lessons are scored
    from highlights.models.face_cnn import load_face_model
    from highlights.stages.scores import FaceScorer

    smile = load_face_model("smile", settings.smile_weights) if settings.smile_weights else None
    age = load_face_model("age", settings.age_weights) if settings.age_weights else None
    return FaceScorer(detector=FaceDetector(settings.detection), smile_model=smile, age_model=age,
                      people=load_people_models(settings))


def load_people_models(settings: Settings) -> Any:
    """The models that tell who is in the lesson (``[selection.persons]`` switches each), or None
    when all three are off."""
    from highlights.stages.scores import PeopleModels

    options = settings.selection.persons
    if not (options.identity or options.bodies or options.second_detector):
        return None
    embedder = segmenter = second = None
    if options.identity:
        from highlights.models.embedding import FaceEmbedder

        embedder = FaceEmbedder()
    if options.bodies:
        from highlights.models.segmentation import PersonSegmenter

        segmenter = PersonSegmenter()
    if options.second_detector:
        from highlights.models.blazeface import BlazeFaceDetector

        second = BlazeFaceDetector()
    return PeopleModels(embedder=embedder, segmenter=segmenter, second_detector=second)


def scorer_versions(scorer: Any, settings: Settings) -> dict[str, Any]:
    """The code's and the models' versions, as ``result.json`` and the run record keep them."""
    versions = {"highlights": highlights.__version__, "code": code_fingerprint()}
    versions.update(jsonable(getattr(scorer, "versions", {}) or {}))
    versions.setdefault("detector", {"name": "mtcnn", **jsonable(settings.detection)})
    return versions


__all__ = ["load_people_models", "load_scorer", "scorer_versions"]
