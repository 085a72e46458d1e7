"""MTCNN detection and the torchvision stand-ins it runs on; faces followed between full
detections, and the device setting (issue 14)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from highlights.models import _torchvision_shim as shim
from highlights.models.detection import DetectionOptions, Detections, FaceDetector, FaceFollower, resolve_device

from support.faces import faces_on_a_background


def _facenet_detect_face_module():
    """facenet-pytorch's detect_face module (imports torchvision: the shim provides it here)."""
    shim.install()
    from facenet_pytorch.models.utils import detect_face

    return detect_face


def random_boxes(rng: np.random.Generator, n: int, extent: float = 100.0) -> np.ndarray:
    xy = rng.uniform(0, extent, (n, 2))
    wh = rng.uniform(1, extent / 3, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def brute_force_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """The definition: walk boxes by falling score, keep one unless a kept box overlaps it more."""
    kept: list[int] = []
    for i in sorted(range(len(scores)), key=lambda k: -scores[k]):
        ok = True
        for j in kept:
            w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            inter = w * h
            area_i = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            area_j = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            if inter / (area_i + area_j - inter) > threshold:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_shim_nms_matches_brute_force(seed, threshold):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 60)
    scores = rng.permutation(60).astype(np.float32)  # distinct: the order is unambiguous
    kept = shim.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold)
    assert kept.dtype == torch.int64
    assert kept.tolist() == brute_force_nms(boxes, scores, threshold)


@pytest.mark.parametrize("seed", range(5))
def test_shim_batched_nms_matches_facenet_numpy_reference(seed):
    detect_face = _facenet_detect_face_module()
    rng = np.random.default_rng(seed)
    n = 200
    boxes = random_boxes(rng, n, extent=300.0)
    scores = rng.permutation(n).astype(np.float32) / n
    idxs = rng.integers(0, 4, n)
    # facenet's NumPy NMS measures areas as (x2 - x1 + 1) * (y2 - y1 + 1), torchvision's as
    # (x2 - x1) * (y2 - y1): handing it x2 - 1, y2 - 1 makes the two IoUs identical.
    inclusive = boxes - np.array([0, 0, 1, 1], np.float32)
    expected = detect_face.batched_nms_numpy(
        torch.from_numpy(inclusive), torch.from_numpy(scores), torch.from_numpy(idxs), 0.5, "Union"
    )
    got = shim.batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), 0.5
    )
    # facenet's NumPy reference keeps the same set; its order is per category, ours by score.
    assert len(got) < n
    assert sorted(got.tolist()) == sorted(expected.tolist())
    assert (np.diff(scores[got.numpy()]) <= 0).all()


def test_shim_batched_nms_never_suppresses_across_categories():
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    kept = shim.batched_nms(box, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 1, 0]), 0.5)
    assert kept.tolist() == [0, 1]


def test_shim_nms_empty():
    empty = torch.zeros((0, 4))
    assert shim.nms(empty, torch.zeros(0), 0.5).shape == (0,)
    assert shim.batched_nms(empty, torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5).shape == (0,)


def test_shim_to_tensor_like_torchvision():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = shim.to_tensor(rgb)
    assert out.shape == (3, 2, 3) and out.dtype == torch.float32
    assert torch.allclose(out[:, 1, 2], torch.from_numpy(rgb[1, 2]).float() / 255)
    assert shim.to_tensor(np.zeros((4, 5), np.uint8)).shape == (1, 4, 5)
    assert shim.to_tensor(Image.new("RGB", (5, 4))).shape == (3, 4, 5)
    floats = np.full((2, 2, 3), 7.0, np.float32)
    assert shim.to_tensor(floats).max() == 7.0  # not rescaled, as torchvision


def test_shim_installs_the_two_module_paths_facenet_imports():
    installed = shim.install()
    from torchvision.ops.boxes import batched_nms
    from torchvision.transforms import functional

    if installed:  # no working torchvision here (the usual case on this project's machines)
        assert batched_nms is shim.batched_nms and functional.to_tensor is shim.to_tensor
        assert sys.modules["torchvision"].__highlights_shim__
    assert shim.install() is installed  # idempotent


def test_shim_steps_aside_for_a_working_torchvision(monkeypatch, tmp_path):
    # A fake, importable torchvision package on sys.path stands in for a real working install.
    package = tmp_path / "torchvision"
    (package / "ops").mkdir(parents=True)
    (package / "transforms").mkdir()
    (package / "__init__.py").write_text("REAL = True\n")
    (package / "ops" / "__init__.py").write_text("")
    (package / "ops" / "boxes.py").write_text("def batched_nms(*a): return 'real'\n")
    (package / "transforms" / "__init__.py").write_text("")
    (package / "transforms" / "functional.py").write_text("def to_tensor(p): return 'real'\n")
    saved = {k: v for k, v in sys.modules.items() if k == "torchvision" or k.startswith("torchvision.")}
    for name in saved:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert shim.install() is False
        import torchvision.ops.boxes

        assert torchvision.ops.boxes.batched_nms() == "real"
    finally:
        for name in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_shim_installs_when_torchvision_is_broken(monkeypatch, tmp_path):
    # The registry's CUDA torchvision raises at import next to the CPU torch: the shim takes over.
    package = tmp_path / "torchvision"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    saved = {k: v for k, v in sys.modules.items() if k == "torchvision" or k.startswith("torchvision.")}
    for name in saved:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert shim.install() is True
        from torchvision.ops.boxes import batched_nms

        assert batched_nms is shim.batched_nms
    finally:
        for name in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_blank_and_gray_images_give_no_faces(detector):
    found = detector.detect(
        [np.zeros((240, 320, 3), np.uint8), np.full((100, 100), 128, np.uint8), np.zeros((50, 50, 1), np.uint8)]
    )
    assert len(found) == 3
    for faces in found:
        assert isinstance(faces, Detections) and len(faces) == 0
        assert faces.boxes.shape == (0, 4) and faces.probs.shape == (0,)
    assert detector.detect([]) == []


def test_rejects_non_uint8(detector):
    with pytest.raises(ValueError, match="uint8"):
        detector.detect([np.zeros((32, 32, 3), np.float32)])


def test_version_names_library_size_and_min_face():
    options = DetectionOptions(max_side=320, min_face_size=30)
    assert "-320-30-follow" in FaceDetector(options).version
    assert FaceDetector(options).version.startswith("mtcnn-facenet-pytorch-2.")


@pytest.mark.shared_data
def test_two_people_has_two_faces_largest_first(shared_data, detector):
    image = load_rgb(shared_data / "images" / "two_people.jpg")
    [faces] = detector.detect([image])
    assert len(faces) == 2
    assert (faces.probs >= detector.options.min_probability).all()
    areas = (faces.boxes[:, 2] - faces.boxes[:, 0]) * (faces.boxes[:, 3] - faces.boxes[:, 1])
    assert areas[0] >= areas[1]
    # Boxes are in the original image's pixels (the image is larger than max_side).
    assert max(image.shape[:2]) > detector.options.max_side
    assert faces.boxes[:, 2].max() > detector.options.max_side * 0.5


@pytest.mark.shared_data
def test_obama_one_face_at_every_resolution_same_place(shared_data, detector):
    names = ["obama-240p.jpg", "obama-480p.jpg", "obama-720p.jpg", "obama-1080p.jpg", "obama_small.jpg"]
    images = [load_rgb(shared_data / "images" / name) for name in names]
    found = detector.detect(images)
    assert [len(f) for f in found] == [1] * len(names)
    # The same face, relative to image size, across the four resolutions of one photo.
    relative = [f.boxes[0] / np.tile(im.shape[1::-1], 2) for f, im in zip(found[:4], images[:4])]
    for box in relative[1:]:
        np.testing.assert_allclose(box, relative[0], atol=0.03)


@pytest.mark.shared_data
def test_batched_equals_one_by_one(shared_data, detector):
    image = load_rgb(shared_data / "images" / "obama-480p.jpg")
    flipped = np.ascontiguousarray(image[:, ::-1])
    batched = detector.detect([image, flipped, image])
    single = [detector.detect([im])[0] for im in (image, flipped)]
    np.testing.assert_allclose(batched[0].boxes, single[0].boxes, atol=0.5)
    np.testing.assert_allclose(batched[1].boxes, single[1].boxes, atol=0.5)
    np.testing.assert_allclose(batched[2].boxes, batched[0].boxes)


@pytest.mark.parametrize("size", [(289, 385), (205, 273), (81, 108), (13, 17), (480, 640)])
def test_summed_area_resampling_is_torchs_area_interpolation_exactly(size):
    from highlights.models.detection import _SummedArea

    rgb = np.random.default_rng(sum(size)).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    table = _SummedArea(rgb)
    reference = _facenet_detect_face_module().imresample(torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), size)
    np.testing.assert_array_equal(table.resized(*size), reference[0].permute(1, 2, 0).numpy())
    # Crops (MTCNN's R- and O-net inputs): rows y0:y1, columns x0:x1, to a square.
    windows = [(10, 57, 300, 341), (0, 480, 0, 640), (470, 480, 633, 640), (100, 101, 5, 6)]
    y0, y1, x0, x1 = (np.array(v) for v in zip(*windows))
    got = table.windows(y0, y1, x0, x1, 24)
    for k, (a, b, c, d) in enumerate(windows):
        crop = torch.from_numpy(rgb[a:b, c:d]).permute(2, 0, 1)[None].float()
        expected = _facenet_detect_face_module().imresample(crop, (24, 24))[0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(got[k], expected)


@pytest.mark.parametrize("kernel", [2, 3])
def test_strided_max_pool_is_torchs_ceil_mode_max_pool_exactly(kernel):
    """P-net's pool, swapped for strided maxima, gives torch's numbers at every size (odd sizes
    are where ceil mode's last window runs past the edge), in either memory layout."""
    import torch.nn.functional as F

    from highlights.models.pooling import strided_max_pool

    generator = torch.Generator().manual_seed(kernel)
    for height in range(kernel, 30):
        for width in (kernel, kernel + 1, 17, 22, 23):
            x = torch.randn(2, 3, height, width, generator=generator)
            expected = F.max_pool2d(x, kernel, 2, ceil_mode=True)
            assert torch.equal(strided_max_pool(x, kernel, 2), expected), (height, width)
            channels_last = x.contiguous(memory_format=torch.channels_last)
            assert torch.equal(strided_max_pool(channels_last, kernel, 2), expected), (height, width)


def test_detector_swaps_only_pnets_pool(detector):
    pools = {name: [type(m).__name__ for m in getattr(detector._mtcnn, name).children() if "Pool" in type(m).__name__]
             for name in ("pnet", "rnet", "onet")}
    assert pools == {"pnet": ["StridedMaxPool"], "rnet": ["MaxPool2d", "MaxPool2d"],
                     "onet": ["MaxPool2d", "MaxPool2d", "MaxPool2d"]}
    # The executors send a scorer to their workers pickled: the swapped layer must pickle.
    import pickle

    clone = pickle.loads(pickle.dumps(detector))
    assert [type(m).__name__ for m in clone._mtcnn.pnet.children()].count("StridedMaxPool") == 1
    with pytest.raises(RuntimeError, match="too small"):
        from highlights.models.pooling import strided_max_pool

        strided_max_pool(torch.zeros(1, 1, 1, 5), 2, 2)


@pytest.mark.parametrize("min_face", [20, 72])
def test_own_mtcnn_pass_finds_what_facenets_detect_finds(detector, min_face):
    """The detector's MTCNN pass (summed-area resampling, crops cut at once) against facenet's
    own MTCNN.detect: the same faces, boxes and probabilities, largest first."""
    from facenet_pytorch import MTCNN

    from highlights.models.detection import _mtcnn_detect

    reference = MTCNN(keep_all=True, select_largest=True, min_face_size=min_face, post_process=False)
    frames = faces_on_a_background()
    found_any = 0
    for frame in frames:
        boxes, probs = reference.detect(frame)
        [(mine, my_probs)] = _mtcnn_detect(detector._mtcnn, [frame], min_face)
        if boxes is None:
            assert len(mine) == 0
            continue
        found_any += 1
        np.testing.assert_allclose(mine, np.asarray(boxes, np.float32), atol=1e-2)
        np.testing.assert_allclose(my_probs, np.asarray(probs, np.float32), atol=1e-5)
    assert found_any >= (3 if min_face == 20 else 1)  # 72: only the largest face is that large
    # A batch of same-size frames gives each frame's own faces.
    batched = _mtcnn_detect(detector._mtcnn, frames, min_face)
    for frame, (mine, _) in zip(frames, batched):
        [(alone, _)] = _mtcnn_detect(detector._mtcnn, [frame], min_face)
        np.testing.assert_allclose(mine, alone, atol=1e-2)


# --------------------------------------------------------------------------- faces followed between full detections, the device setting (issue 14)


def astronaut_canvas(dx: int = 0, dy: int = 0) -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    photo = skimage_data.astronaut()
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[dy : dy + 480 - 32, 64 + dx : 576 + dx] = photo[16 : 16 + 480 - 32]
    return canvas


def test_refine_re_finds_a_face_that_moved_and_drops_one_that_left(detector):
    first = astronaut_canvas()
    [found] = detector.detect([first])
    assert len(found) == 1
    moved = astronaut_canvas(dx=14, dy=8)
    again = detector.refine(moved, found.boxes)
    [truth] = detector.detect([moved])
    assert len(again) == 1 and again.probs[0] >= detector.options.min_probability
    assert np.abs(again.boxes[0] - truth.boxes[0]).max() < 0.15 * (truth.boxes[0, 2] - truth.boxes[0, 0])
    # Nobody there any more: O-net does not see a face in the empty wall.
    assert len(detector.refine(np.full((480, 640, 3), 90, np.uint8), found.boxes)) == 0


def test_follower_runs_the_full_detector_on_change_gap_loss_and_every_few_frames(detector):
    calls: list[int] = []
    real_detect = detector.detect

    class Counting:
        options = DetectionOptions(full_every=3, coarse_face_fraction=0)  # every refresh the whole pyramid
        device = detector.device

        def detect(self, images):
            calls.append(len(images))
            return real_detect(images)

        def refine(self, image, boxes):
            return detector.refine(image, boxes)

        def with_edge_faces(self, image, found):
            return detector.with_edge_faces(image, found)

    follower = FaceFollower(Counting())
    face = [astronaut_canvas(dx=d) for d in (0, 1, 2, 3, 4, 5)]  # small moves: no scene change
    empty = np.full((480, 640, 3), 90, np.uint8)
    frames = face + [empty, empty.copy(), face[0]]
    keys = [("a.webm", i if i < 5 else 50 + i) for i in range(len(frames))]  # a disconnect before frame 5
    found = follower.detect(frames, keys)
    assert [len(f) for f in found] == [1, 1, 1, 1, 1, 1, 0, 0, 1]
    # Full: 0 (first), 3 (every 3rd), 5 (gap), 6 (scene change: the face left), 8 (it came back);
    # frame 7 is identical to 6 (same faces, nothing run).
    assert follower.full_detections == 5 and len(calls) == 5
    assert follower.identical == 1


def test_follower_is_not_used_when_full_every_is_one(detector):
    from highlights.stages.scores import FaceScorer

    scorer = FaceScorer(FaceDetector(DetectionOptions(full_every=1)))
    assert scorer.follower() is None
    assert FaceScorer(detector).follower() is not None


def test_device_setting():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="one of auto, cpu, cuda"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, not 'tpu'"):
        DetectionOptions(device="tpu")  # with the other settings, before any lesson runs
    assert DetectionOptions(device=" CPU").device == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


class _CountingDetector:
    """The real detector, counting which kind of detection the follower asked for."""

    def __init__(self, detector, **options):
        from dataclasses import replace

        self._detector = detector
        self.options = replace(detector.options, **options)
        self.device = detector.device
        self.calls: list[int | None] = []

    def detect(self, images, min_face_size=None):
        self.calls.append(min_face_size)
        return self._detector.detect(images, min_face_size=min_face_size)

    def refine(self, image, boxes):
        return self._detector.refine(image, boxes)

    def with_edge_faces(self, image, found):
        return self._detector.with_edge_faces(image, found)


def test_routine_refreshes_run_the_coarse_pyramid_and_the_whole_one_every_few_frames(detector):
    counting = _CountingDetector(detector, full_every=2, pyramid_every=6, coarse_face_fraction=40 / 480)
    follower = FaceFollower(counting)
    frames = [astronaut_canvas(dx=d % 3) for d in range(12)]  # small moves: no scene change
    found = follower.detect(frames, [("a.webm", i) for i in range(12)])
    assert all(len(f) == 1 for f in found)
    # Whole pyramid at 0, then a routine refresh every 2nd frame: coarse at 2 and 4, the whole
    # pyramid again at 6 (6 frames since), coarse at 8 and 10.
    assert counting.calls == [None, 40, 40, None, 40, 40]
    assert follower.full_detections == 2 and follower.coarse_detections == 4


def test_with_the_scene_mask_a_face_coming_in_away_from_the_followed_one_gets_the_full_detector_its_own_moves_do_not(detector):
    counting = _CountingDetector(detector, full_every=50, pyramid_every=50, scene_mask=True, scene_grid=8, scene_change=16.0)
    follower = FaceFollower(counting)
    photo = pytest.importorskip("skimage.data").astronaut()
    head = photo[0:250, 110:330]  # the face, hair and shoulders

    def room(x: int, y: int) -> np.ndarray:
        canvas = np.full((480, 640, 3), 90, np.uint8)
        canvas[y : y + 250, x : x + 220] = head
        return canvas

    child, moved = room(210, 110), room(222, 116)  # the child moves within its surroundings
    with_visitor = moved.copy()
    with_visitor[330:480, 0:132] = head[:150, :132]  # a second face comes in, in the corner
    follower.detect([child, moved], [("a", 0), ("a", 1)])
    assert follower.full_detections == 1 and follower.followed == 1
    found = follower.detect([with_visitor], [("a", 2)])
    assert follower.full_detections == 2
    assert len(found[0]) >= 2


def small_astronaut(shade_left: bool = False, face: bool = True) -> np.ndarray:
    """The astronaut at a third of her size (a face of about 50 px) on the right of a 640x480
    room; ``shade_left``: the left third of the room in shadow (a scene change away from her)."""
    photo = pytest.importorskip("skimage.data").astronaut()
    canvas = np.full((480, 640, 3), 90, np.uint8)
    if face:
        canvas[150:320, 400:570] = cv2.resize(photo, (170, 170), interpolation=cv2.INTER_AREA)
    if shade_left:
        canvas[:, :210] = 20
    return canvas


def test_scene_coarse_runs_the_coarse_levels_and_o_net_on_a_scene_change_and_the_whole_pyramid_where_a_face_is_lost(detector):
    counting = _CountingDetector(detector, full_every=50, pyramid_every=4, scene_coarse=True)
    follower = FaceFollower(counting)
    coarse = int(0.15 * 480)
    plain, shaded = small_astronaut(), small_astronaut(shade_left=True)
    [whole] = detector.detect([plain])
    assert len(whole) == 1 and whole.boxes[0, 3] - whole.boxes[0, 1] < coarse  # below the coarse levels
    frames = [plain, shaded, plain, shaded, plain, small_astronaut(face=False)]
    found = follower.detect(frames, [("a.webm", i) for i in range(len(frames))])
    assert [len(f) for f in found] == [1, 1, 1, 1, 1, 0]
    # 0: the first frame, the whole pyramid. 1-3: the shadow comes and goes (scene changes): the
    # coarse levels, and O-net re-finds the small face. 4: another change, but 4 frames since the
    # whole pyramid: the whole pyramid. 5: the face left: neither finds it, the whole pyramid.
    assert counting.calls == [None, coarse, coarse, coarse, None, coarse, None]
    assert follower.scene_coarse_detections == 3 and follower.full_detections == 3
    assert follower.coarse_detections == 0
    # Off (the default): every scene change runs the whole pyramid.
    counting = _CountingDetector(detector, full_every=50, pyramid_every=4)
    FaceFollower(counting).detect(frames[:3], [("a.webm", i) for i in range(3)])
    assert counting.calls == [None, None, None]


def test_version_changes_with_scene_coarse():
    assert FaceDetector(DetectionOptions()).version != FaceDetector(DetectionOptions(scene_coarse=True)).version


def test_face_territory_covers_the_face_its_sides_and_what_is_under_it():
    from highlights.models.detection import _face_territory

    mask = _face_territory(np.array([[280, 120, 360, 200]], np.float32), (480, 640, 3), 8)
    # 80 px wide box widened by 40 px each side: x 240-400 -> columns 3-4; y 80-320 -> rows 1-5.
    assert mask.sum() == 2 * 5 and mask[1:6, 3:5].all()
    assert not _face_territory(np.zeros((0, 4), np.float32), (480, 640, 3), 8).any()


# --------------------------------------------------------------------------- a tiny video (issue 9)


def test_tiny_frames_have_no_face_instead_of_an_internal_error() -> None:
    from highlights.models.detection import FaceDetector

    detector = FaceDetector()
    tiny = [np.zeros((1, 1, 3), np.uint8), np.zeros((12, 16, 3), np.uint8), np.zeros((19, 40, 3), np.uint8)]
    assert [len(d) for d in detector.detect(tiny)] == [0, 0, 0]


def test_a_tiny_recording_gives_frames_without_a_face(tmp_path: Path) -> None:
    from highlights.media.decode import iter_frames_at
    from highlights.media.synthetic import write_video
    from highlights.models.detection import FaceDetector

    path = write_video(tmp_path / "tiny.webm", (np.full((12, 16, 3), 90 + i, np.uint8) for i in range(10)),
                       fps=5, codec="vp8")
    images = [image for image in iter_frames_at(path, [0.0, 1.0]) if image is not None]
    assert images and images[0].shape[:2] == (12, 16)
    assert [len(d) for d in FaceDetector().detect(images)] == [0] * len(images)


# --------------------------------------------------------------------------- faces cut by the frame's edge (issue 24)


def _cut_at_the_face(image: np.ndarray, box: np.ndarray, keep: float, side: str) -> tuple[np.ndarray, np.ndarray]:
    """``image`` cut through the face so that ``keep`` of its box's width stays in the picture, on
    the ``side`` ("left": the face at the left edge); and the face's box in the cut picture."""
    x1, _, x2, _ = box
    if side == "left":
        cut = int(round(x2 - keep * (x2 - x1)))
        return np.ascontiguousarray(image[:, cut:]), box - np.array([cut, 0, cut, 0], np.float32)
    cut = int(round(x1 + keep * (x2 - x1)))
    return np.ascontiguousarray(image[:, :cut]), box.copy()


@pytest.mark.shared_data
@pytest.mark.parametrize("side", ["left", "right"])
def test_edge_search_finds_a_face_half_out_of_the_frame_that_mtcnn_misses(shared_data, detector, side):
    from highlights.core.boxes import box_iou

    image = load_rgb(shared_data / "images" / "obama-480p.jpg")
    [whole] = detector.detect([image])
    cut, truth = _cut_at_the_face(image, whole.boxes[0], 0.5, side)
    [found] = detector.detect([cut])
    assert len(found) == 0  # MTCNN's first stages reject half a face
    edge = detector.edge_faces(cut, found)
    assert len(edge) == 1 and edge.probs[0] >= detector.options.edge_search
    # O-net places the half it cannot see by guess: 0.49-0.89 IoU with the whole face's box (left
    # and right, with and without the P-net gate), where a box on the wall would have none.
    assert box_iou(edge.boxes, truth[None])[0, 0] >= 0.45
    # The box runs past the edge the face was cut by.
    assert (edge.boxes[0, 0] < 0) if side == "left" else (edge.boxes[0, 2] > cut.shape[1])


@pytest.mark.shared_data
def test_edge_search_adds_nothing_where_the_face_is_found_or_nobody_is(shared_data, detector):
    image = load_rgb(shared_data / "images" / "obama-480p.jpg")
    [whole] = detector.detect([image])
    assert len(detector.edge_faces(image, whole)) == 0  # the face is whole and found already
    assert len(detector.edge_faces(np.full((360, 480, 3), 120, np.uint8))) == 0
    # Off: no search at all.
    from dataclasses import replace

    off = FaceDetector(replace(detector.options, edge_search=0.0))
    cut, _ = _cut_at_the_face(image, whole.boxes[0], 0.5, "left")
    follower = FaceFollower(off)
    assert [len(f) for f in follower.detect([cut], [("a", 0)])] == [0]
    follower = FaceFollower(detector)
    assert [len(f) for f in follower.detect([cut], [("a", 0)])] == [1] and follower.edge_found == 1


def test_edge_crops_are_the_squares_beyond_the_edges_shrunk():
    from highlights.models.detection import edge_crops
    from highlights.models.preprocess import cut_padded

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    rgb = cv2.GaussianBlur(rgb, (0, 0), 3)  # smooth, so a rounded corner changes little
    crops, squares = edge_crops(rgb, sizes=(0.3, 0.4), shares=(0.5,), step=0.25)
    assert crops.shape[1:] == (24, 24, 3) and len(crops) == len(squares) > 0
    sides = squares[:, 2] - squares[:, 0]
    np.testing.assert_allclose(squares[:, 3] - squares[:, 1], sides, rtol=1e-5)  # squares
    # Half of each square beyond the left or the right edge.
    assert set(np.round(squares[:, 0] + sides / 2, 3)) <= {0.0, 160.0}
    for crop, (x1, y1, x2, y2) in zip(crops, squares):
        exact = cv2.resize(cut_padded(rgb, int(x1), int(y1), int(x2), int(y2)), (24, 24), interpolation=cv2.INTER_AREA)
        assert np.abs(crop.astype(float) - exact.astype(float)).mean() < 12
        outside = slice(0, 10) if x1 < 0 else slice(14, 24)  # the black margin
        assert crop[:, outside].max() == 0


@pytest.mark.shared_data
@pytest.mark.parametrize("gate", [0.0, 0.05])
def test_p_net_passes_the_square_of_a_face_cut_by_the_edge_to_r_net(shared_data, detector, gate):
    from dataclasses import replace

    import torch

    from highlights.core.boxes import box_iou
    from highlights.models.detection import edge_crops

    image = load_rgb(shared_data / "images" / "obama-480p.jpg")
    [whole] = detector.detect([image])
    cut, truth = _cut_at_the_face(image, whole.boxes[0], 0.5, "right")
    gated = FaceDetector(replace(detector.options, edge_gate=gate))
    edge = gated.edge_faces(cut)
    assert len(edge) == 1 and box_iou(edge.boxes, truth[None])[0, 0] >= 0.45
    # The gate is a first stage: it passes few of the squares, among them one on the face.
    options = detector.options
    crops, squares = edge_crops(cut, options.edge_sizes, options.edge_shares, options.edge_step, size=12)
    assert crops.shape[1:] == (12, 12, 3) and len(crops) > 200
    with torch.inference_mode():
        prob = detector._mtcnn.pnet((torch.from_numpy(crops).permute(0, 3, 1, 2).float() - 127.5) * 0.0078125)[1]
    passed = squares[prob[:, 1].reshape(-1).numpy() >= 0.05]
    assert 0 < len(passed) < 0.1 * len(squares)
    assert box_iou(passed, truth[None]).max() >= 0.3


def test_edge_crops_keep_every_square_of_a_narrow_frame():
    from highlights.models.detection import edge_crops

    sizes, shares = (0.28, 0.36, 0.45), (0.4, 0.55, 0.7)
    wide = edge_crops(np.zeros((640, 480, 3), np.uint8), sizes, shares, 0.15, size=12)[1]
    for width in (100, 30):  # narrower than a square's part inside the frame
        narrow = edge_crops(np.zeros((640, width, 3), np.uint8), sizes, shares, 0.15, size=12)[1]
        assert len(narrow) == len(wide)


@pytest.mark.parametrize("shape", [(2, 7), (4, 9), (1, 1), (12, 20)])
def test_edge_search_on_a_frame_of_a_few_pixels_finds_nothing_and_does_not_fail(detector, shape):
    from dataclasses import replace

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    for gate in (0.0, 0.05, 1e-9):  # the smallest gate passes nearly every square
        assert len(FaceDetector(replace(detector.options, edge_gate=gate)).edge_faces(image)) == 0


def test_edge_search_options_are_checked():
    with pytest.raises(ValueError, match="edge_search"):
        DetectionOptions(edge_search=1.5)
    with pytest.raises(ValueError, match="edge_sizes"):
        DetectionOptions(edge_sizes=(0.3, 0.0))
    with pytest.raises(ValueError, match="not empty"):
        DetectionOptions(edge_shares=())
    with pytest.raises(ValueError, match="edge_gate"):
        DetectionOptions(edge_gate=1.0)


def test_version_changes_with_the_edge_search():
    versions = {FaceDetector(DetectionOptions(**options)).version
                for options in ({}, {"edge_search": 0.0}, {"edge_search": 0.95}, {"edge_step": 0.2},
                                # the same numbers in other groups are other squares
                                {"edge_sizes": (0.28, 0.36, 0.45, 0.4), "edge_shares": (0.55, 0.7)},
                                {"edge_gate": 0.0}, {"edge_gate": 0.2})}
    assert len(versions) == 7


@pytest.mark.shared_data
def test_a_face_the_edge_search_found_is_followed_by_o_net_in_the_next_frames(shared_data, detector):
    image = load_rgb(shared_data / "images" / "obama-480p.jpg")
    [whole] = detector.detect([image])
    cut, _ = _cut_at_the_face(image, whole.boxes[0], 0.5, "left")
    rng = np.random.default_rng(0)
    frames = [np.clip(cut.astype(int) + rng.integers(-2, 3, cut.shape), 0, 255).astype(np.uint8) for _ in range(4)]
    follower = FaceFollower(detector)
    found = follower.detect(frames, [("a", i) for i in range(4)])
    assert [len(f) for f in found] == [1, 1, 1, 1]
    # Found once by the search, then followed by O-net on the black-padded square: no whole
    # detector again (before, O-net was given the square clipped at the edge and lost the face).
    assert follower.edge_found == 1 and follower.full_detections == 1 and follower.followed == 3
