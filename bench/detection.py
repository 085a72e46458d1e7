"""Face-detection speed and recall against full-resolution detection, on the shared real footage.

For each (max_side, min_face_size) in a grid, detects faces in frames sampled from the real clips
and photos in ``../shared/data`` and prints ms per frame and recall relative to full-resolution
detection with MTCNN's default minimum face (20 px): a reference face counts as found when a
detection overlaps it with IoU >= 0.5. ``min_face_size`` is in pixels of the *downscaled* frame,
as :class:`~highlights.models.detection.DetectionOptions` uses it.

    nice -n 10 python bench/detection.py            # full grid, a few minutes on 2 cores
    nice -n 10 python bench/detection.py --quick    # fewer frames and configurations

Groups (what they stand for in a lesson recording):
  webcam   head-pose GIFs 480x270: one or two adults framed like a video call, heads turning
  dim      short_hamilton_clip 640x360: dim stage light, faces in profile
  office   one-by-one-person-detection 768x432: people walking in a room (the parent in the back)
  street   facenet_street 1920x1080: several small faces
  photos   obama (240p..1080p), obama_small, biden, two_people
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageSequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from highlights.core.boxes import box_iou
from highlights.models.detection import DetectionOptions, Detections, FaceDetector

SHARED_DATA = Path(
    os.environ.get("HIGHLIGHTS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
REFERENCE = DetectionOptions(max_side=0, min_face_size=20)


def video_frames(path: Path, every_s: float, limit: int | None = None) -> list[np.ndarray]:
    """RGB frames every ``every_s`` seconds (grab every frame, retrieve only the sampled ones)."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames, index, next_t = [], 0, 0.0
    while capture.grab():
        if index / fps >= next_t - 1e-9:
            ok, bgr = capture.retrieve()
            if ok:
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            next_t += every_s
            if limit and len(frames) >= limit:
                break
        index += 1
    capture.release()
    return frames


def gif_frames(path: Path, every: int) -> list[np.ndarray]:
    with Image.open(path) as gif:
        return [
            np.asarray(frame.convert("RGB"))
            for i, frame in enumerate(ImageSequence.Iterator(gif))
            if i % every == 0
        ]


def load_groups(data: Path, quick: bool) -> dict[str, list[np.ndarray]]:
    video = data / "video"
    webcam = []
    for gif in sorted(video.glob("head-pose-face-detection-*.gif")):
        webcam += gif_frames(gif, every=8 if quick else 4)  # 12.5 fps: about 3 (1.5) frames/s
    images = data / "images"
    photos = [
        np.asarray(Image.open(p).convert("RGB"))
        for p in sorted(images.glob("*.jpg"))
    ]
    return {
        "webcam": webcam,
        "dim": video_frames(video / "short_hamilton_clip.mp4", 2.0 if quick else 1.0),
        "office": video_frames(
            video / "one-by-one-person-detection.mp4", 10.0 if quick else 5.0
        ),
        "street": video_frames(video / "facenet_street.mp4", 2.0 if quick else 1.0),
        "photos": photos,
    }


def matched(reference: Detections, found: Detections, min_iou: float = 0.5) -> int:
    """Reference faces matched one-to-one (greedy by IoU) by a found face with IoU >= min_iou."""
    iou = box_iou(reference.boxes, found.boxes)
    count = 0
    while iou.size and iou.max() >= min_iou:
        i, j = np.unravel_index(iou.argmax(), iou.shape)
        iou[i, :] = -1
        iou[:, j] = -1
        count += 1
    return count


def run(detector: FaceDetector, frames: list[np.ndarray]) -> tuple[list[Detections], float, float]:
    """Detections, CPU seconds and wall seconds for ``frames``."""
    cpu, wall = time.process_time(), time.perf_counter()
    found = detector.detect(frames)
    return found, time.process_time() - cpu, time.perf_counter() - wall


def lesson_format_timing(webcam: list[np.ndarray], sides: list[int], min_faces: list[int],
                         repeats: int = 3) -> dict[tuple[int, int], float]:
    """CPU ms per frame on 16 webcam frames resized to 640x480 (the usual lesson recording size),
    best of ``repeats``: the grid's per-group times are noisy on a shared machine."""
    frames = [cv2.resize(f, (640, 480), interpolation=cv2.INTER_LINEAR) for f in webcam[:: max(1, len(webcam) // 16)][:16]]
    timings = {}
    for max_side in sides:
        for min_face in min_faces:
            detector = FaceDetector(DetectionOptions(max_side=max_side, min_face_size=min_face))
            detector.detect(frames[:1])
            best = min(run(detector, frames)[1] for _ in range(repeats))
            timings[(max_side, min_face)] = best / len(frames) * 1000
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--quick", action="store_true", help="fewer frames and configurations")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (default 1: on a shared machine CPU time per thread is the stable "
        "measure; wall time with 2 threads is about 0.75x the 1-thread CPU time when idle)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (args.data / "README.md").is_file():
        print(f"needs the shared data set at {args.data}", file=sys.stderr)
        return 2

    groups = load_groups(args.data, args.quick)
    print(f"torch threads: {torch.get_num_threads()}; frames: "
          + ", ".join(f"{name} {len(frames)} ({frames[0].shape[1]}x{frames[0].shape[0]})"
                      for name, frames in groups.items()))

    reference_detector = FaceDetector(REFERENCE)
    reference_detector.detect([groups["webcam"][0]])  # warm-up
    reference: dict[str, list[Detections]] = {}
    for name, frames in groups.items():
        reference[name], _, _ = run(reference_detector, frames)
    print("\nreference faces (full resolution, min_face 20): count, face height px min/median, "
          "as % of frame height min/median")
    for name, frames in groups.items():
        heights = [float(b[3] - b[1]) for d in reference[name] for b in d.boxes]
        relative = [
            float(b[3] - b[1]) / f.shape[0] * 100 for d, f in zip(reference[name], frames) for b in d.boxes
        ]
        if heights:
            print(f"  {name:7s} {len(heights):4d}  {min(heights):6.0f} / {np.median(heights):6.0f} px"
                  f"  {min(relative):5.1f} / {np.median(relative):5.1f} %")
        else:
            print(f"  {name:7s}    0")

    sides = [0, 960, 640, 480, 320] if not args.quick else [0, 640, 480, 320]
    min_faces = [20, 30, 40, 60] if not args.quick else [20, 40]
    results = []
    header = "max_side min_face | " + " | ".join(f"{name:>17s}" for name in groups) + " | recall  cpu ms wall ms"
    print("\nper group: CPU ms/frame  found/reference  +extra (found, not in reference); "
          "all: recall, CPU and wall ms per frame over every frame")
    print(header)
    print("-" * len(header))
    for max_side in sides:
        for min_face in min_faces:
            detector = FaceDetector(DetectionOptions(max_side=max_side, min_face_size=min_face))
            row = {"max_side": max_side, "min_face_size": min_face, "groups": {}}
            cells, total_ref, total_hit = [], 0, 0
            total_cpu = total_wall = 0.0
            total_frames = 0
            for name, frames in groups.items():
                found, seconds, wall = run(detector, frames)
                n_ref = sum(len(d) for d in reference[name])
                hits = sum(matched(r, f) for r, f in zip(reference[name], found))
                extra = sum(len(f) for f in found) - hits
                ms = seconds / len(frames) * 1000
                row["groups"][name] = {"cpu_ms_per_frame": ms, "wall_ms_per_frame":
                                       wall / len(frames) * 1000, "reference": n_ref,
                                       "matched": hits, "extra": extra}
                total_cpu += seconds
                total_wall += wall
                total_frames += len(frames)
                total_ref += n_ref
                total_hit += hits
                cells.append(f"{ms:6.0f} {hits:3d}/{n_ref:<3d}+{extra:<2d}")
            row["recall"] = total_hit / max(total_ref, 1)
            row["cpu_ms_per_frame"] = total_cpu / total_frames * 1000
            row["wall_ms_per_frame"] = total_wall / total_frames * 1000
            results.append(row)
            label = "full" if max_side == 0 else str(max_side)
            print(f"{label:>8s} {min_face:8d} | " + " | ".join(cells) + f" | {row['recall']:6.1%} "
                  f"{row['cpu_ms_per_frame']:7.0f} {row['wall_ms_per_frame']:7.0f}",
                  flush=True)
    timings = lesson_format_timing(groups["webcam"], sides, min_faces, repeats=2 if args.quick else 3)
    print("\n640x480 frames (webcam GIF frames resized), CPU ms/frame, best of repeats:")
    print("max_side " + "".join(f"  min_face {m:<3d}" for m in min_faces))
    for max_side in sides:
        label = "full" if max_side == 0 else str(max_side)
        print(f"{label:>8s} " + "".join(f"  {timings[(max_side, m)]:12.0f}" for m in min_faces))
    for row in results:
        row["lesson_640x480_cpu_ms_per_frame"] = timings[(row["max_side"], row["min_face_size"])]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
