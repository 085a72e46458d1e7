"""End-to-end scoring throughput: 640x480 frames with faces -> detect + crops + smile and age models.

    nice -n 10 python bench/scoring.py [--frames 48] [--threads 1]

Frames: the head-pose GIFs in ``../shared/data/video`` (adults framed like a video call) resized to
640x480; without the shared data, scikit-image's astronaut photo on a 640x480 canvas. Models: the
shipped weights when present, otherwise untrained FaceCNNs of the default width (same cost).
Prints frames/s of :func:`~highlights.stages.scores.score_frames` (wall and CPU time) and the share
spent in detection.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageSequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from highlights.core.frameref import FrameRef
from highlights.media.decode import SampledFrame
from highlights.models.detection import DetectionOptions, FaceDetector
from highlights.models.face_cnn import FaceCNN, WeightsError, load_face_model, save_face_model
from highlights.stages.scores import FaceScorer, score_frames

SHARED_DATA = Path(
    os.environ.get("HIGHLIGHTS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def test_frames(count: int) -> tuple[list[np.ndarray], str]:
    gifs = sorted((SHARED_DATA / "video").glob("head-pose-face-detection-*.gif"))
    images = []
    for gif in gifs:
        with Image.open(gif) as handle:
            images += [
                cv2.resize(np.asarray(f.convert("RGB")), (640, 480), interpolation=cv2.INTER_LINEAR)
                for f in ImageSequence.Iterator(handle)
            ]
    if images:
        step = max(1, len(images) // count)
        return images[::step][:count], "head-pose GIF frames resized to 640x480"
    from skimage import data

    canvas = np.zeros((480, 640, 3), np.uint8)
    canvas[:, 64:576] = data.astronaut()[16:496]
    return [canvas.copy() for _ in range(count)], "astronaut photo on a 640x480 canvas"


def models(folder: Path):
    try:
        return load_face_model("smile"), load_face_model("age"), "shipped"
    except WeightsError:
        loaded = []
        for task in ("smile", "age"):
            sha = save_face_model(folder / f"{task}.pt", FaceCNN(), task, 0.5)
            loaded.append(load_face_model(task, folder / f"{task}.pt", expected_sha256=sha))
        return loaded[0], loaded[1], "untrained FaceCNN (shipped weights absent)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-side", type=int, default=DetectionOptions.max_side)
    parser.add_argument("--min-face", type=int, default=DetectionOptions.min_face_size)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    images, what = test_frames(args.frames)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    frames = [
        SampledFrame(FrameRef(i, float(i), start + timedelta(seconds=i), Path("bench.mp4"), float(i)), image)
        for i, image in enumerate(images)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        smile, age, which = models(Path(tmp))
    detector = FaceDetector(DetectionOptions(max_side=args.max_side, min_face_size=args.min_face))
    scorer = FaceScorer(detector, smile, age)
    score_frames(frames[:2], scorer)  # warm-up

    cpu, wall = time.process_time(), time.perf_counter()
    table = score_frames(frames, scorer, batch_size=args.batch_size)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall

    detected, detect_cpu = [], time.process_time()
    for begin in range(0, len(images), args.batch_size):
        detected.append(detector.detect(images[begin : begin + args.batch_size]))
    detect_cpu = time.process_time() - detect_cpu

    class Replay:  # the same detections again, to time crops + models + hashes on their own
        options, version = detector.options, detector.version

        def detect(self, batch):
            return detected.pop(0)

    per_face = FaceScorer(Replay(), smile, age)
    faces_cpu = time.process_time()
    for begin in range(0, len(images), args.batch_size):
        per_face.score_images(images[begin : begin + args.batch_size])
    faces_cpu = time.process_time() - faces_cpu

    faces = int((table.face >= 0).sum())
    print(f"{len(frames)} frames ({what}), {faces} faces; models: {which}; "
          f"torch threads {args.threads}; detector {scorer.versions['detector']}")
    print(f"end to end: {len(frames) / wall:.1f} frames/s wall ({wall / len(frames) * 1000:.0f} ms/frame), "
          f"{cpu / len(frames) * 1000:.0f} CPU ms/frame")
    print(f"  detection alone {detect_cpu / len(frames) * 1000:.0f} CPU ms/frame; "
          f"crops + 2 models + hashes {faces_cpu / max(faces, 1) * 1000:.1f} CPU ms/face")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
