"""The speed work of issue 14: faces followed between full detections, the decoder thread, the
frames kept for the GIF, probing below timeline and frames, the device setting."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from highlights.models.detection import DetectionOptions, Detections, FaceDetector, FaceFollower, resolve_device
from highlights.stages.scores import FaceScore, KeptFrames
from highlights.media.decode import prefetch

START = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)


def astronaut_canvas(dx: int = 0, dy: int = 0) -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    photo = skimage_data.astronaut()
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[dy : dy + 480 - 32, 64 + dx : 576 + dx] = photo[16 : 16 + 480 - 32]
    return canvas


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


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


def test_prefetch_keeps_order_raises_where_the_producer_failed_and_stops_early():
    assert list(prefetch(iter(range(50)), size=3)) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise ValueError("bad packet")

    got = []
    with pytest.raises(ValueError, match="bad packet"):
        for item in prefetch(failing(), size=1):
            got.append(item)
    assert got == [1, 2]

    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    stream = prefetch(endless(), size=2)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()
    assert closed.wait(5), "the source was not closed when the consumer stopped"


def test_prefetch_shortens_the_gil_switch_while_it_runs_and_restores_it():
    import sys

    from highlights.media.decode import PREFETCH_GIL_SWITCH_S

    before = sys.getswitchinterval()
    first, second = prefetch(iter(range(3))), prefetch(iter(range(3)))
    next(first)
    assert sys.getswitchinterval() == pytest.approx(PREFETCH_GIL_SWITCH_S)
    next(second)
    first.close()  # the other one still runs: still short
    assert sys.getswitchinterval() == pytest.approx(PREFETCH_GIL_SWITCH_S)
    assert list(second) == [1, 2]
    assert sys.getswitchinterval() == before

    def failing():
        yield 1
        raise ValueError("bad packet")

    with pytest.raises(ValueError):
        list(prefetch(failing()))
    assert sys.getswitchinterval() == before


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


def test_probing_sits_below_timeline_and_frames():
    # Importing timeline must not import frames (nor frames' decoder); probing needs neither.
    code = (
        "import sys, highlights.stages.timeline, highlights.media.probe; "
        "assert 'highlights.media.decode' not in sys.modules, sorted(m for m in sys.modules if m.startswith('highlights'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)
    from highlights.media import container, decode, probe

    assert decode.RecordingError is probe.RecordingError is container.RecordingError  # one definition


def test_the_pipeline_decodes_the_plans_points(monkeypatch, tmp_path):
    """The scores stage gets its frames from the plan's points, not from a second computation."""
    from highlights.lesson import run as pipeline, graph as runner
    from highlights.stages import timeline

    def no_second_computation(*args, **kwargs):
        raise AssertionError("sample points computed outside the plan")

    seen = {}
    real = runner.frames_at_points

    def spy(points):
        seen["points"] = list(points)
        return real(points)

    monkeypatch.setattr(runner, "frames_at_points", spy)
    assert timeline.sample_points is not no_second_computation  # the plan's own computation stays
    from highlights.media.synthetic import index_frame, write_lesson_files, write_video

    write_video(tmp_path / "s.mp4", (index_frame(i, (64, 48)) for i in range(50)), fps=5)
    write_video(tmp_path / "t.mp4", (index_frame(i, (64, 48)) for i in range(60)), fps=5)
    manifest, lessons = write_lesson_files(tmp_path, "L-1", START, [("s.mp4", "student", 0, 10), ("t.mp4", "teacher", -1, 12)],
                                           {"student_name": "A", "subject": "M", "locale": "en", "lesson_url": "https://x.example/l"})
    from highlights.api import run_manifest
    from highlights.config import Settings

    class NoFaces:
        versions = {"detector": "none", "smile": "none", "age": "none"}
        options = DetectionOptions()

        def score_images(self, images):
            return [[] for _ in images]

    [result] = run_manifest(manifest, Settings(out_dir=tmp_path / "out"), lessons_path=lessons, scorer=NoFaces())
    assert result.status == "no_highlight"
    assert [p.offset_s for p in seen["points"]] == [float(k) for k in range(10)]


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


def test_face_territory_covers_the_face_its_sides_and_what_is_under_it():
    from highlights.models.detection import _face_territory

    mask = _face_territory(np.array([[280, 120, 360, 200]], np.float32), (480, 640, 3), 8)
    # 80 px wide box widened by 40 px each side: x 240-400 -> columns 3-4; y 80-320 -> rows 1-5.
    assert mask.sum() == 2 * 5 and mask[1:6, 3:5].all()
    assert not _face_territory(np.zeros((0, 4), np.float32), (480, 640, 3), 8).any()
