"""One MTCNN pass, facenet-pytorch's ``MTCNN.detect`` against the detector's own (issue 14).

    nice -n 5 python bench/mtcnn_pass.py [--frames 22] [--rounds 2] [--profile]

Frames: every 9th second of the cached 10-minute bench lesson (``bench/lesson.py --minutes 10``
builds it), else 640x480 frames of scikit-image's astronaut on a textured background. For the
whole pyramid (faces from 20 px) and the coarse refresh (faces from 72 px, 0.15 of a 480-line
frame), the two are run frame by frame, interleaved, one torch thread, so that a shared
machine's load weighs on both alike; prints CPU ms per frame, their ratio, and whether they
found the same faces (boxes within 0.01 px). ``--profile``: where each spends its time
(cProfile, the costliest functions).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from highlights.models.detection import FaceDetector, _mtcnn_detect

LESSON = Path.home() / ".cache" / "highlights" / "bench" / "lesson-10m-v1" / "student-1.mp4"


def frames(count: int) -> tuple[list[np.ndarray], str]:
    if LESSON.exists():
        from highlights.media.decode import iter_frames_at

        found = [f for f in iter_frames_at(LESSON, [9.0 * k for k in range(count)]) if f is not None]
        return found, str(LESSON)
    from support.faces import faces_on_a_background

    made = faces_on_a_background()
    return [made[k % len(made)] for k in range(count)], "the astronaut on a background"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=22)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    detector = FaceDetector()
    from facenet_pytorch import MTCNN

    facenet = MTCNN(keep_all=True, select_largest=True, post_process=False)
    images, source = frames(args.frames)
    print(f"{len(images)} frames {images[0].shape[1]}x{images[0].shape[0]} from {source}; load {open('/proc/loadavg').read().split()[0]}")

    def theirs(image, min_face):
        facenet.min_face_size = min_face
        boxes, _ = facenet.detect(image)
        return np.zeros((0, 4), np.float32) if boxes is None else np.asarray(boxes, np.float32)

    def ours(image, min_face):
        [(boxes, _)] = _mtcnn_detect(detector._mtcnn, [image], min_face)
        return boxes

    for min_face, name in [(20, "whole pyramid"), (72, "coarse refresh")]:
        cpu = {"facenet": 0.0, "ours": 0.0}
        same = faces = 0
        for _ in range(args.rounds):
            for image in images:
                found = {}
                for label, run in (("facenet", theirs), ("ours", ours)):
                    started = time.process_time()
                    found[label] = run(image, min_face)
                    cpu[label] += time.process_time() - started
                a, b = found["facenet"], found["ours"]
                faces += len(a)
                same += a.shape == b.shape and bool(np.allclose(a, b, atol=1e-2))
        n = args.rounds * len(images)
        print(f"{name} (faces from {min_face} px): facenet {1000 * cpu['facenet'] / n:.1f} ms, ours {1000 * cpu['ours'] / n:.1f} ms "
              f"CPU per frame, ratio {cpu['facenet'] / cpu['ours']:.2f}; same faces in {same} of {n} frames ({faces} faces)")
        if args.profile:
            for label, run in (("facenet", theirs), ("ours", ours)):
                profile = cProfile.Profile()
                profile.enable()
                for image in images:
                    run(image, min_face)
                profile.disable()
                text = io.StringIO()
                pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(8)
                print(f"--- {label}, {name}, {len(images)} frames (tottime, s)")
                print("\n".join(line for line in text.getvalue().splitlines()[6:] if line.strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
