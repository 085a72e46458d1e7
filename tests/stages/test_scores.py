"""Scoring frames into the per-face table: columns, no-face rows, crop statistics, streaming, and
the frames kept for the GIF."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from highlights.core.faces import SCORE_COLUMNS, SCORE_DTYPES, FaceTable
from highlights.core.frameref import FrameRef
from highlights.media.decode import SampledFrame
from highlights.models import face_cnn as models
from highlights.models.detection import DetectionOptions, Detections, FaceDetector
from highlights.models.face_cnn import FaceCNN, WeightsError, load_face_model, save_face_model
from highlights.stages.scores import FaceScore, FaceScorer, KeptFrames, crop_quality, score_frames

SMALL = (8, 8, 16, 16)
START = datetime(2026, 11, 20, 17, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def face_models(tmp_path_factory):
    """Untrained smile and age models written and loaded the way shipped weights are."""
    folder = tmp_path_factory.mktemp("weights")
    loaded = {}
    for seed, task in enumerate(("smile", "age")):
        torch.manual_seed(seed)
        sha = save_face_model(folder / f"{task}.pt", FaceCNN(SMALL), task, 0.5)
        loaded[task] = load_face_model(task, folder / f"{task}.pt", expected_sha256=sha)
    return loaded


class ScriptedDetector:
    """Stands in for MTCNN: returns the boxes scripted per image size (height), records calls."""

    def __init__(self, boxes_by_height: dict[int, list[tuple[float, float, float, float]]]):
        self.boxes_by_height = boxes_by_height
        self.options = DetectionOptions()
        self.version = "scripted"
        self.calls: list[int] = []

    def detect(self, images):
        self.calls.append(len(images))
        out = []
        for image in images:
            boxes = self.boxes_by_height.get(image.shape[0], [])
            if not boxes:
                out.append(Detections.empty())
                continue
            probs = np.linspace(0.99, 0.95, len(boxes)).astype(np.float32)
            out.append(Detections(np.asarray(boxes, np.float32), probs))
        return out


def frame(index: int, image: np.ndarray, source: str = "lesson-part1.webm") -> SampledFrame:
    ref = FrameRef(index, index * 1.0, START + timedelta(seconds=index), Path("/recordings") / source, index * 1.0 + 0.5)
    return SampledFrame(ref, image)


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_table_has_one_row_per_face_and_one_per_empty_frame(face_models):
    detector = ScriptedDetector({120: [(10, 10, 70, 70), (80, 20, 110, 50)], 100: []})
    scorer = FaceScorer(detector, face_models["smile"], face_models["age"])
    frames = [frame(0, textured(120, 160)), frame(1, textured(100, 160)), frame(2, textured(120, 160))]
    table = score_frames(iter(frames), scorer, batch_size=2).data

    assert tuple(table.columns) == SCORE_COLUMNS
    assert {c: str(t) for c, t in table.dtypes.items()} == {
        c: str(pd.Series(dtype=d).dtype) for c, d in SCORE_DTYPES.items()
    }
    assert table["frame"].tolist() == [0, 0, 1, 2, 2]
    assert table["face"].tolist() == [0, 1, -1, 0, 1]
    first = table.iloc[0]
    assert (first.x1, first.y1, first.x2, first.y2) == (10.0, 10.0, 70.0, 70.0)
    assert first.t == 0.0 and first.offset_s == 0.5 and first.source == "lesson-part1.webm"
    assert datetime.fromisoformat(first["at"]) == START  # first.at is pandas' .at indexer

    faces = table[table.face >= 0]
    for column in ("det_prob", "child_prob", "smile_prob"):
        assert faces[column].between(0, 1).all()
    assert (faces.is_child == (faces.child_prob >= face_models["age"].threshold)).all()
    assert faces.crop_hash.map(lambda h: bool(re.fullmatch(r"[0-9a-f]{16}", h))).all()
    assert (faces.sharpness > 0).all() and faces.brightness.between(0, 255).all()

    empty = table[table.face == -1].iloc[0]
    for column in ("x1", "y1", "x2", "y2", "det_prob", "child_prob", "smile_prob", "sharpness", "brightness"):
        assert math.isnan(empty[column])
    assert not empty.is_child and empty.crop_hash == ""
    assert table[table.is_child].shape[0] == faces.is_child.sum()  # boolean indexing just works


def test_model_probabilities_are_the_models_own(face_models):
    from highlights.models.preprocess import face_model_input, to_tensor_batch

    image = textured(120, 160, seed=3)
    box = (20.0, 15.0, 90.0, 95.0)
    scorer = FaceScorer(ScriptedDetector({120: [box]}), face_models["smile"], face_models["age"])
    [[score]] = scorer.score_images([image])
    batch = to_tensor_batch([face_model_input(image, box)])
    assert score.smile_prob == pytest.approx(float(face_models["smile"].probabilities(batch)[0]), abs=1e-6)
    assert score.child_prob == pytest.approx(float(face_models["age"].probabilities(batch)[0]), abs=1e-6)
    assert score.box == box and score.face == 0


def test_streams_in_batches_and_reports_progress(face_models):
    detector = ScriptedDetector({})
    scorer = FaceScorer(detector, face_models["smile"], face_models["age"])
    pulled = []

    def frames():
        for i in range(7):
            pulled.append(i)
            assert len(pulled) - 3 * len(detector.calls) <= 3  # never more than a batch ahead
            yield frame(i, np.zeros((48, 64, 3), np.uint8))

    progress = []
    table = score_frames(frames(), scorer, batch_size=3, progress=progress.append).data
    assert detector.calls == [3, 3, 1]
    assert progress == [3, 3, 1]
    assert table["frame"].tolist() == list(range(7)) and (table.face == -1).all()


def test_no_frames_gives_an_empty_typed_table(face_models):
    scorer = FaceScorer(ScriptedDetector({}), face_models["smile"], face_models["age"])
    table = score_frames([], scorer).data
    assert tuple(table.columns) == SCORE_COLUMNS and len(table) == 0
    assert table.dtypes.equals(FaceTable.empty().data.dtypes)
    with pytest.raises(ValueError):
        score_frames([], scorer, batch_size=0)


def test_crop_statistics_ignore_the_black_padding():
    # A uniform gray frame: any crop, even one hanging off the edge, is flat and 150 bright.
    gray = np.full((64, 64), 150, np.uint8)
    inside = crop_quality((200, 200), (50, 50, 100, 100), gray)
    assert inside == (0.0, 150.0)
    half_out = gray.copy()
    half_out[:, :32] = 0  # what the crop of box (-20, 50, 20, 90) looks like: left half padding
    sharpness, brightness = crop_quality((200, 200), (-20, 50, 20, 90), half_out)
    assert sharpness == 0.0 and brightness == 150.0
    assert all(math.isnan(v) for v in crop_quality((200, 200), (300, 300, 340, 340), gray))


def test_sharpness_drops_with_blur_end_to_end(face_models):
    import cv2

    sharp = textured(120, 160, seed=5)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)
    box = (30.0, 20.0, 110.0, 100.0)
    scorer = FaceScorer(ScriptedDetector({120: [box]}), face_models["smile"], face_models["age"])
    [[a], [b]] = scorer.score_images([sharp, blurred])
    assert a.sharpness > 5 * b.sharpness
    assert a.brightness == pytest.approx(b.brightness, abs=3)
    # The near-duplicate check: a frame with a little noise keeps (nearly) the same hash.
    noisy = np.clip(sharp.astype(int) + np.random.default_rng(9).integers(-3, 4, sharp.shape), 0, 255)
    [[c]] = scorer.score_images([noisy.astype(np.uint8)])
    distance = bin(int(a.crop_hash, 16) ^ int(c.crop_hash, 16)).count("1")
    assert distance <= 6


def test_versions_and_model_task_checks(face_models):
    detector = FaceDetector(DetectionOptions(max_side=320, min_face_size=30))
    scorer = FaceScorer(detector, face_models["smile"], face_models["age"])
    assert scorer.versions == {
        "detector": detector.version,
        "smile": face_models["smile"].version,
        "age": face_models["age"].version,
    }
    assert re.fullmatch(r"mtcnn-facenet-pytorch-[\d.]+-sat-320-30-follow[\w.]+-edge[\d.]+:[\d./]+:[\d./]+:[\d.]+:[\d.]+:p[\d.]+", scorer.versions["detector"])
    with pytest.raises(ValueError, match="smile_model is a 'age' model"):
        FaceScorer(detector, face_models["age"], face_models["age"])


def test_default_models_missing_give_a_weights_error(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(models, "CHECKSUMS_FILE", tmp_path / "checksums.json")
    with pytest.raises(WeightsError, match=r"smile\.pt"):
        FaceScorer(ScriptedDetector({}))


def test_real_detector_on_a_real_photo(face_models):
    # scikit-image ships this public-domain photo of a smiling astronaut: no ../shared needed.
    skimage_data = pytest.importorskip("skimage.data")
    photo = skimage_data.astronaut()  # 512x512 RGB, one face
    canvas = np.zeros((480, 640, 3), np.uint8)
    canvas[:, 64:576] = photo[16:496]
    scorer = FaceScorer(FaceDetector(), face_models["smile"], face_models["age"])
    table = score_frames([frame(0, canvas), frame(1, np.zeros((480, 640, 3), np.uint8))], scorer).data
    assert table["face"].tolist() == [0, -1]
    face = table.iloc[0]
    assert face.det_prob > 0.95
    # The face is in the upper middle of the photo (x 170-280, y 50-200 in the original).
    assert 64 + 150 < (face.x1 + face.x2) / 2 < 64 + 300 and 40 < (face.y1 + face.y2) / 2 < 200
    assert face.brightness > 40 and face.sharpness > 10


# --------------------------------------------------------------------------- the frames kept for the GIF (issue 14)


def _score(smile: float, child: bool = True) -> FaceScore:
    return FaceScore(0, (0.0, 0.0, 10.0, 10.0), 0.99, 0.9 if child else 0.1, smile, child, 1.0, 1.0, "0" * 16)


def test_kept_frames_hold_the_best_smiling_child_frames_within_the_limit():
    kept = KeptFrames(limit=3)
    smiles = [0.1, 0.9, 0.5, 0.95, 0.2, 0.8]
    for i, smile in enumerate(smiles):
        kept.offer(SimpleNamespace(ref=SimpleNamespace(index=i), image=np.full((2, 2, 3), i, np.uint8)), [_score(smile)])
    kept.offer(SimpleNamespace(ref=SimpleNamespace(index=99), image=np.zeros((2, 2, 3), np.uint8)), [_score(1.0, child=False)])
    assert len(kept) == 3
    assert sorted(i for i in range(100) if kept.get(i) is not None) == [1, 3, 5]
    assert kept.get(3)[0, 0, 0] == 3 and kept.get(0) is None and kept.get(99) is None


class _CountingSegmenter:
    """The real person model, counting the frames it looks at."""

    def __init__(self):
        from highlights.models.segmentation import PersonSegmenter

        self.model, self.frames = PersonSegmenter(), 0

    def mask(self, image):
        self.frames += 1
        return self.model.mask(image)


def test_the_person_mask_is_reused_while_the_picture_stays_and_made_again_when_it_changes():
    from highlights.stages.scores import Lookout, PeopleModels

    segmenter = _CountingSegmenter()
    lookout = Lookout(PeopleModels(segmenter=segmenter), mask_reuse=2)
    room = textured(480, 640)
    face = FaceScore(0, (250.0, 100.0, 390.0, 280.0), 0.99, 0.9, 0.1, True, 100.0, 120.0, "0" * 16)
    moved = FaceScore(0, (254.0, 102.0, 394.0, 282.0), 0.99, 0.9, 0.1, True, 100.0, 120.0, "0" * 16)
    dimmer = (room * 0.6).astype(np.uint8)
    columns = [lookout.look(frame(i, image), [f]) for i, (image, f) in
               enumerate([(room, face), (room, moved), (dimmer, face), (room, face)])]
    # Frame 0 measured; 1 and 2 (the face moved a little, the light dimmed) reuse its mask with
    # their own boxes; 3 is the mask's third reuse, over mask_reuse: measured again.
    assert segmenter.frames == 2 and lookout.masks_reused == 2
    assert all(not math.isnan(c["body_share"]) for c in columns)
    # A second face came in: the picture changed, the model looks again.
    visitor = room.copy()
    visitor[160:, :160] = (230, 190, 170)  # a second person at the side
    second = FaceScore(1, (20.0, 200.0, 120.0, 320.0), 0.99, 0.1, 0.1, False, 100.0, 120.0, "0" * 16)
    lookout.look(frame(4, visitor), [face, second])
    assert segmenter.frames == 3
    # The same faces, but the picture changed (the second person left, their face was not found): again.
    lookout.look(frame(5, room), [face, second])
    assert segmenter.frames == 4


def test_the_second_detectors_box_inside_an_mtcnn_face_is_that_face_not_another():
    # BlazeFace's box of a face's middle lies inside MTCNN's box of the whole face (IoU about
    # 0.25, under the 0.3 test): a second face there would keep the person apart from themselves.
    from highlights.stages.scores import Lookout, PeopleModels

    class Second:
        def detect_mtcnn_like_batch(self, images, min_score=0.5):
            boxes = np.array([[420, 105, 486, 185],    # inside the face at 416-559
                              [100, 100, 160, 170]], np.float32)  # a face MTCNN missed
            return [(boxes, np.array([0.66, 0.8], np.float32)) for _ in images]

    lookout = Lookout(PeopleModels(second_detector=Second()))
    mtcnn = Detections(np.array([[416, 73, 559, 218]], np.float32), np.array([0.99], np.float32))
    (found,) = lookout.more_faces([np.zeros((480, 640, 3), np.uint8)], [mtcnn])
    assert found.boxes.tolist() == [[416, 73, 559, 218], [100, 100, 160, 170]]
    assert found.probs.tolist() == pytest.approx([0.99, 0.8])
