"""The face descriptor: dlib's ``compute_face_descriptor`` against the same network in torch
(issue 25, ``highlights/models/dlib_resnet.py``).

    nice -n 10 python bench/embedding.py [--faces 32] [--rounds 2]

Chips: the faces MTCNN finds in the photos of ``../shared/data`` (``images/``, then colour
FG-NET photos), aligned by ``FaceEmbedder.chips`` as the job aligns them; without the shared
data, the astronaut photo (scikit-image) on a background, one face many times. One torch thread
(dlib-bin runs on one core too). Each round runs the four ways in turn (dlib and torch, one chip
a call and 16 a call), so a shared machine's load weighs on all alike; prints the CPU ms per
face, dlib's / torch's ratio at each batch size, the network's load time (what a worker pays on
its first lesson with faces) and the largest difference between the two descriptors.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from highlights.models.dlib_resnet import DlibFaceResNet
from highlights.models.embedding import RECOGNITION_MODEL, FaceEmbedder, model_path

SHARED_DATA = ROOT.parent / "shared" / "data"


def photos(count: int) -> list[Path]:
    found = sorted((SHARED_DATA / "images").glob("*.jpg"))
    labels = SHARED_DATA / "faces" / "age" / "fgnet" / "labels.csv"
    if labels.is_file():
        with open(labels, newline="", encoding="utf-8") as handle:
            colour = [row["file"] for row in csv.DictReader(handle) if row["gray"].strip() == "0"]
        found += [labels.parent / name for name in colour[:: max(1, len(colour) // count)]]
    return found


def chips(count: int) -> tuple[list[np.ndarray], str]:
    import cv2

    from highlights.models.detection import FaceDetector

    detector, embedder = FaceDetector(), FaceEmbedder()
    if (SHARED_DATA / "README.md").is_file():
        out: list[np.ndarray] = []
        for path in photos(count):
            image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            out += embedder.chips(image, detector.detect([image])[0].boxes)
            if len(out) >= count:
                return out[:count], f"real photos of {SHARED_DATA}"
        if out:
            return [out[k % len(out)] for k in range(count)], f"{len(out)} real faces of {SHARED_DATA}, repeated"
    from support.faces import faces_on_a_background

    image = faces_on_a_background()[0]
    face = embedder.chips(image, detector.detect([image])[0].boxes)
    return face * count, "the astronaut (no ../shared/data), one face repeated"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import dlib

    faces, source = chips(args.faces)
    print(f"{len(faces)} chips from {source}; load {open('/proc/loadavg').read().split()[0]}")
    started = time.perf_counter()
    network = DlibFaceResNet.from_file(model_path(RECOGNITION_MODEL))
    load_s = time.perf_counter() - started
    recognizer = dlib.face_recognition_model_v1(str(model_path(RECOGNITION_MODEL)))

    def dlib_way(batch: int) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            out = []
            for start in range(0, len(faces), batch):
                out += [np.asarray(v) for v in recognizer.compute_face_descriptor(faces[start:start + batch])]
            return np.asarray(out, np.float32)
        return run

    def torch_way(batch: int) -> Callable[[], np.ndarray]:
        return lambda: network.descriptors(faces, batch_size=batch)

    ways = {("dlib", 1): dlib_way(1), ("dlib", 16): dlib_way(16), ("torch", 1): torch_way(1), ("torch", 16): torch_way(16)}
    torch_way(16)()  # oneDNN picks its kernels on the first pass: not what a lesson's faces pay
    cpu = dict.fromkeys(ways, 0.0)
    results: dict[tuple[str, int], np.ndarray] = {}
    for _ in range(args.rounds):
        for key, run in ways.items():
            started = time.process_time()
            results[key] = run()
            cpu[key] += time.process_time() - started
    per_face = {key: 1000 * seconds / (args.rounds * len(faces)) for key, seconds in cpu.items()}
    for batch in (1, 16):
        print(f"batch {batch:2d}: dlib {per_face['dlib', batch]:6.1f} ms/face, torch {per_face['torch', batch]:5.2f} ms/face "
              f"(CPU), dlib/torch {per_face['dlib', batch] / per_face['torch', batch]:.1f}x")
    difference = max(float(np.abs(results["torch", batch] - results["dlib", batch]).max()) for batch in (1, 16))
    print(f"torch network load {1000 * load_s:.0f} ms; largest descriptor difference torch vs dlib {difference:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
