"""BlazeFace short range in torch (highlights/models/blazeface.py): MediaPipe's result on a real
face, no face where there is none, the letterbox mapping, batching, the weighted NMS.

Needs nothing from ../shared: the face is scikit-image's astronaut photo. The reference figures
were measured with mediapipe 1.2.2's FaceDetector on the same frame (see the verification in
the pull request: every detection on 372 real frames equal to MediaPipe's after its rounding).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from highlights.core.boxes import box_iou
from highlights.models.blazeface import BlazeFaceDetector, letterbox_matrix, ssd_anchors, weighted_nms
from highlights.models.tflite import WeightsError, read_model

# mediapipe 1.2.2 FaceDetector on astronaut_frame(): box (x, y, w, h) in whole pixels, score.
MEDIAPIPE_BOX = (245, 65, 93, 93)
MEDIAPIPE_SCORE = 0.8899098634719849
# facenet-pytorch MTCNN on the same frame (taller: it includes the forehead).
MTCNN_BOX = (243.1, 44.8, 332.8, 158.0)


def astronaut_frame() -> np.ndarray:
    """640x480 webcam-like frame: the astronaut photo on a gray background."""
    photo = pytest.importorskip("skimage.data").astronaut()
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[0:448, 64:576] = photo[16:464]
    return frame


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    import torch

    torch.set_num_threads(1)
    return BlazeFaceDetector()


def test_finds_the_astronaut_as_mediapipe_does(detector):
    boxes, scores, points = detector.detect(astronaut_frame(), keypoints=True)
    assert boxes.shape == (1, 4) and scores.shape == (1,) and points.shape == (1, 6, 2)
    assert boxes.dtype == scores.dtype == np.float32
    assert scores[0] == pytest.approx(MEDIAPIPE_SCORE, abs=1e-5)
    x1, y1, x2, y2 = boxes[0]
    # MediaPipe truncates the corner and the size to whole pixels.
    assert (int(x1), int(y1), int(x2 - x1), int(y2 - y1)) == MEDIAPIPE_BOX
    assert box_iou(boxes, np.array([MTCNN_BOX]))[0, 0] > 0.7  # close to MTCNN's, but tighter (no forehead)
    right_eye, left_eye = points[0, 0], points[0, 1]
    assert x1 < right_eye[0] < left_eye[0] < x2 and y1 < right_eye[1] < (y1 + y2) / 2


@pytest.mark.parametrize("value", [0, 90, 255])
def test_no_face_on_a_blank_frame(detector, value):
    boxes, scores = detector.detect(np.full((480, 640, 3), value, np.uint8))
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_boxes_map_back_through_the_letterbox(detector):
    """A 640x480 frame is padded with 80 black rows above and below to a 640x640 square: the same
    network input as that square itself, so the boxes differ by exactly the 80 rows."""
    frame = astronaut_frame()
    square = np.zeros((640, 640, 3), np.uint8)
    square[80:560] = frame
    boxes, scores = detector.detect(frame)
    boxes_square, scores_square = detector.detect(square)
    np.testing.assert_allclose(scores_square, scores, rtol=1e-6)
    np.testing.assert_allclose(boxes_square - [0, 80, 0, 80], boxes, atol=1e-3)


def test_letterbox_matrix_of_a_portrait_frame():
    matrix, x0, y0, side = letterbox_matrix(480, 360)
    assert (x0, y0, side) == (-60.0, 0.0, 480.0)
    corner = matrix @ [x0 + side, y0 + side, 1]
    np.testing.assert_allclose(corner[:2] / corner[2], [128, 128], atol=1e-4)


def test_a_batch_gives_each_frame_its_own_faces(detector):
    frame = astronaut_frame()
    frames = [frame, np.zeros((300, 500, 3), np.uint8), np.ascontiguousarray(frame[:, ::-1]), frame[40:400, 100:600]]
    batched = detector.detect_batch(frames)
    assert len(batched) == len(frames)
    for (boxes, scores), single in zip(batched, frames):
        alone_boxes, alone_scores = detector.detect(single)
        np.testing.assert_allclose(boxes, alone_boxes, atol=1e-3)
        np.testing.assert_allclose(scores, alone_scores, atol=1e-6)
    assert [len(s) for _, s in batched] == [1, 0, 1, 1]


def test_mtcnn_like_faces_of_a_batch_are_each_frames_own(detector):
    from highlights.models.blazeface import mtcnn_framing

    frame = astronaut_frame()
    frames = [frame, np.zeros((480, 640, 3), np.uint8), np.ascontiguousarray(frame[:, ::-1])]
    batched = detector.detect_mtcnn_like_batch(frames, min_score=0.5)
    assert [len(scores) for _, scores in batched] == [1, 0, 1]
    for (boxes, _), single in zip(batched, frames):
        alone_boxes, alone_scores = detector.detect(single)
        np.testing.assert_allclose(boxes, mtcnn_framing(alone_boxes[alone_scores >= 0.5]), atol=1e-3)
    # Above the astronaut's score (0.89), none.
    assert all(len(scores) == 0 for _, scores in detector.detect_mtcnn_like_batch(frames, min_score=0.95))


def test_score_threshold(detector):
    strict = BlazeFaceDetector(model=detector._bytes, min_score=0.95)
    assert len(strict.detect(astronaut_frame())[0]) == 0  # the astronaut scores 0.89


def test_pickles_as_bytes_and_rebuilds(detector):
    copy = pickle.loads(pickle.dumps(detector))
    assert "model" not in detector.__getstate__()
    np.testing.assert_array_equal(copy.detect(astronaut_frame())[0], detector.detect(astronaut_frame())[0])


def test_rejects_a_frame_that_is_not_rgb_uint8(detector):
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect(np.zeros((480, 640), np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect(np.zeros((480, 640, 3), np.float32))


def test_a_replaced_weights_file_fails_its_checksum(tmp_path):
    path = tmp_path / "face.tflite"
    path.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="checksum"):
        read_model(path, sha256="0" * 64)


def test_anchors_follow_the_ssd_layout():
    anchors = ssd_anchors()
    assert anchors.shape == (896, 2)
    # 16x16 cells with 2 anchors each, then 8x8 cells with 6 (three stride-16 layers).
    np.testing.assert_allclose(anchors[0], anchors[1])
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_weighted_nms_blends_overlapping_boxes_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.9, 0.6, 0.8, 0.3], np.float32)
    kept, merged = weighted_nms(boxes, scores, 0.3)
    assert kept.tolist() == [0, 2]  # the best of each cluster, best first; it keeps its own score
    expected = (0.9 * boxes[0] + 0.6 * boxes[1] + 0.3 * boxes[3]) / 1.8
    np.testing.assert_allclose(merged[0], expected, rtol=1e-6)
    np.testing.assert_allclose(merged[1], boxes[2])
    kept, merged = weighted_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.3)
    assert kept.shape == (0,) and merged.shape == (0, 4)


def test_a_lower_min_score_than_the_detectors_own_finds_the_weaker_faces_too(detector):
    # Asked for, candidates under the detector's own 0.5 come back (they were cut before, silently).
    frame = astronaut_frame()
    (_, sure), = detector.detect_mtcnn_like_batch([frame], min_score=0.5)
    (_, every), = detector.detect_mtcnn_like_batch([frame], min_score=0.01)
    assert detector.min_score == 0.5
    assert len(every) > len(sure) and every.min() < 0.5
