"""The child/adult model's webcam augmentations (issue #10) and the test lessons' faces kept out
of its training."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from highlights.tools.training import augment
from highlights.tools.training.augment import AGE_AUGMENT, SMILE_AUGMENT, AugmentOptions, augment_batch, geometric_matrix

ROOT = Path(__file__).resolve().parent.parent
NO_FRAMING = dict(flip=0, max_rotation=0, max_zoom=1.0, crop=0, brightness=0, contrast=0, band=0, shift=0)


def _face_like(size: int = 64) -> np.ndarray:
    """A mid-gray crop with a lighter face ellipse and two dark eyes (float32 0-255)."""
    image = np.full((size, size), 90.0, np.float32)
    cv2.ellipse(image, (size // 2, size // 2), (size // 3, size * 2 // 5), 0, 0, 360, 170.0, -1)
    for x in (size // 2 - 9, size // 2 + 9):
        cv2.circle(image, (x, size // 2 - 6), 4, 40.0, -1)
    return image


def _only(monkeypatch, step: str) -> AugmentOptions:
    """Options under which the webcam group runs exactly ``step`` (every time)."""
    for name in augment.WEBCAM_RATES:
        monkeypatch.setitem(augment.WEBCAM_RATES, name, 1.0 if name == step else 0.0)
    return AugmentOptions(**NO_FRAMING, webcam=1.0)


def test_webcam_group_is_off_in_the_shipped_recipes():
    # Measured and not shipped (AGE_AUGMENT's docstring): the recipes stay the shipped weights'.
    assert AGE_AUGMENT.webcam == 0.0 and AGE_AUGMENT.shift == 1.0
    assert SMILE_AUGMENT.webcam == 0.0 and SMILE_AUGMENT.shift == 0.5
    assert AugmentOptions().webcam == 0.0


def test_webcam_off_draws_nothing_extra():
    """With the group off the random stream is the one the shipped weights were trained with."""
    faces = np.random.default_rng(0).integers(30, 220, (8, 64, 64)).astype(np.uint8)
    rng = np.random.default_rng(5)
    augment_batch(faces, rng, AGE_AUGMENT)
    after_off = rng.random()
    rng = np.random.default_rng(5)
    augment_batch(faces, rng, replace(AGE_AUGMENT, webcam=1.0))
    assert rng.random() != after_off


def test_webcam_augment_is_deterministic_and_keeps_shape():
    webcam = replace(AGE_AUGMENT, webcam=1.0)
    faces = np.random.default_rng(0).integers(30, 220, (32, 64, 64)).astype(np.uint8)
    first = augment_batch(faces, np.random.default_rng(3), webcam)
    assert first.shape == faces.shape and first.dtype == np.uint8
    assert np.array_equal(first, augment_batch(faces, np.random.default_rng(3), webcam))
    assert not np.array_equal(first, augment_batch(faces, np.random.default_rng(4), webcam))


def test_squeeze_narrows_about_the_centre_column():
    image = np.zeros((64, 64), np.float32)
    image[:, 10] = 255.0  # a bar 21.5 px left of the centre column (31.5)
    matrix = geometric_matrix(64, 0.0, 1.0, 1.0, 0.5, 0.5, False, squeeze=0.5)
    out = cv2.warpAffine(image, matrix, (64, 64))
    column = int(np.argmax(out.sum(axis=0)))
    assert abs(column - (31.5 - 21.5 * 0.5)) <= 1.0
    identity = geometric_matrix(64, 0.0, 1.0, 1.0, 0.5, 0.5, False)
    assert np.allclose(identity, [[1, 0, 0], [0, 1, 0]], atol=1e-6)


def _exposure_draw(seed: int, options: AugmentOptions) -> tuple[bool, float]:
    """(dim?, the face's light gain) that ``_webcam`` draws for ``seed`` in its exposure step."""
    probe = np.random.default_rng(seed)
    probe.random()  # whether the step happens (always, here)
    dim = bool(probe.random() < 0.5)
    return dim, float(probe.uniform(*(options.dim_gain if dim else options.backlit_face_gain)))


def test_exposure_is_equalised_again_with_amplified_noise(monkeypatch):
    options = _only(monkeypatch, "exposure")
    face = _face_like()
    flat = (slice(36, 44), slice(26, 38))  # a flat part of the face (170 in the clean crop)
    for seed in range(12):
        out = augment._webcam(face.copy(), np.random.default_rng(seed), options)
        _, gain = _exposure_draw(seed, options)
        # The job's CLAHE (clip limit 2) lifts the dark face above what the light left ...
        assert out[flat].mean() > 170 * gain + 10
        # ... and the sensor's gain shows as grain where the clean crop is flat.
        assert out[flat].std() > 5.0 and face[flat].std() == 0


def test_backlit_darkens_the_face_against_its_surroundings(monkeypatch):
    options = _only(monkeypatch, "exposure")
    face = _face_like()
    inside, outside = (slice(24, 40), slice(24, 40)), (slice(0, 6), slice(0, 64))
    ratio_before = face[inside].mean() / face[outside].mean()
    ratios = []
    for seed in range(40):
        if _exposure_draw(seed, options)[0]:
            continue  # this seed draws a dim room
        out = augment._webcam(face.copy(), np.random.default_rng(seed), options)
        ratios.append(out[inside].mean() / max(out[outside].mean(), 1.0))
    assert ratios and np.median(ratios) < ratio_before


def test_motion_blur_draws_a_dot_into_a_line(monkeypatch):
    options = _only(monkeypatch, "motion")
    image = np.zeros((64, 64), np.float32)
    image[32, 32] = 255.0 * 9
    out = augment._webcam(image, np.random.default_rng(0), options)
    lit = np.argwhere(out > 1.0)
    extent = np.ptp(lit, axis=0).max()
    assert options.motion_px[0] - 1 <= extent <= options.motion_px[1] + 1
    assert out.sum() == pytest.approx(image.sum(), rel=0.05)  # blur moves light, keeps it


def test_blocks_compress_a_small_face_heavily(monkeypatch):
    options = _only(monkeypatch, "blocks")
    noise = np.random.default_rng(1).uniform(0, 255, (64, 64)).astype(np.float32)
    out = augment._webcam(noise, np.random.default_rng(0), options)
    assert out.shape == (64, 64)
    # Down to 24-60 px and JPEG at quality <= 30: most of the fine detail is gone.
    assert cv2.Laplacian(out, cv2.CV_32F).var() < 0.5 * cv2.Laplacian(noise, cv2.CV_32F).var()


def test_cast_changes_the_face_not_its_surroundings(monkeypatch):
    options = _only(monkeypatch, "cast")
    face = _face_like()
    out = augment._webcam(face.copy(), np.random.default_rng(2), options)
    for corner in (out[:4, :4], out[:4, -4:], out[-4:, :4], out[-4:, -4:]):  # outside the face
        assert np.allclose(corner, 90.0)
    gain = out[30:34, 30:34].mean() / face[30:34, 30:34].mean()
    assert options.cast_gain[0] - 0.01 <= gain <= options.cast_gain[1] + 0.01 and abs(gain - 1) > 1e-3


# ------------------------------------------------------------------------------ test faces


def _train_models_script():
    spec = importlib.util.spec_from_file_location("train_models_script", ROOT / "scripts" / "train_models.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules.setdefault("train_models_script", module)
    spec.loader.exec_module(module)
    return module


def test_exclude_leaves_training_only(tmp_path):
    from test_training import _write_folder

    from highlights.models.face_cnn import load_face_model
    from highlights.tools.training.datasets import load_labelled_folder
    from highlights.tools.training.splits import validation_split
    from highlights.tools.training.train import TrainConfig, train_model

    folder = _write_folder(tmp_path / "faces", n=30)
    images = load_labelled_folder(folder, "age")
    train_rows, val_rows = validation_split(images, 0, 0.2)
    excluded = [images.paths[train_rows[0]], images.paths[val_rows[0]]]
    config = TrainConfig(task="age", epochs=1, batch_size=16, widths=(8, 8, 8, 8), threads=1)
    result = train_model("age", folder, tmp_path / "age.pt", config, exclude=excluded, progress=False)
    meta = load_face_model("age", tmp_path / "age.pt", expected_sha256=result.sha256).meta
    assert meta["data"]["excluded_from_training"] == 1  # the validation row stays in validation
    assert meta["data"]["train"]["faces"] == len(train_rows) - 1
    assert meta["data"]["validation"]["faces"] == len(val_rows)


def test_test_lesson_faces_are_never_trained_on(shared_data):
    """The real-face lessons' UTKFace photos (32 children, 4 parents): where they fall in the
    split, and what scripts/train_models.py leaves out of training."""
    from highlights.models.face_cnn import load_face_model
    from highlights.tools.training.datasets import load_labelled_folder
    from highlights.tools.training.splits import validation_split

    script = _train_models_script()
    faces = {p.resolve() for p in script.evaluation_lesson_faces("age")}
    children = pd.read_csv(ROOT / "tests" / "data" / "utkface_children_smile.csv")
    assert len(faces) == len(children) + 4 == 36
    images = load_labelled_folder(script.TRAIN_DATA["age"], "age", keep_teens=True)
    train_rows, val_rows = validation_split(images, 0, 0.2)
    in_train = sum(Path(images.paths[r]).resolve() in faces for r in train_rows)
    in_val = sum(Path(images.paths[r]).resolve() in faces for r in val_rows)
    assert in_train + in_val == 36
    assert in_train == 18  # 15 children, 3 parents: picked under an older split (no 16-19s)
    meta = load_face_model("age").meta
    assert meta["split"]["seed"] == 0 and meta["split"]["fraction"] == 0.2
    # The validation split is the one the shipped model was measured on.
    assert meta["data"]["validation"]["faces"] == int((images.labels[val_rows] >= 0).sum())
    # Weights trained by scripts/train_models.py record the faces they left out; the shipped
    # ones predate that and trained on the lessons' photos that fall on the training side.
    assert meta["data"].get("excluded_from_training", in_train) == in_train
