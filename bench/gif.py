"""GIF size and encoding time for nine webcam-like frames, per output size and palette.

    nice -n 10 python bench/gif.py [--noise 6]

Frames: scikit-image's astronaut photo (ships in the wheel) framed like a webcam picture at nine
different zooms and positions, with per-frame sensor noise (webcam grain is what makes GIFs
large: it defeats LZW). Prints, for each output size and shared-palette size, the file size with
and without the light denoise that :class:`highlights.stages.gif.GifOptions` applies, and what
:func:`highlights.stages.gif.build_gif` picks under the default 1 MB budget.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from highlights.stages.gif import GifFrame, GifOptions, build_gif, encode_gif, face_crops, quantise_shared

FACE_BOX = (170.0, 50.0, 280.0, 200.0)  # the astronaut's face in the 512x512 photo


def webcam_frames(noise: float, count: int = 9, seed: int = 0) -> list[GifFrame]:
    from skimage.data import astronaut

    photo = astronaut()
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        zoom = 1.0 + 0.25 * np.sin(i)
        dx, dy = 20 * np.cos(i * 1.7), 15 * np.sin(i * 0.9)
        matrix = np.array([[zoom, 0, dx - 60], [0, zoom, dy - 10]], np.float32)
        frame = cv2.warpAffine(photo, matrix, (640, 480), borderMode=cv2.BORDER_REFLECT)
        frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
        x1, y1, x2, y2 = FACE_BOX
        box = (x1 * zoom + dx - 60, y1 * zoom + dy - 10, x2 * zoom + dx - 60, y2 * zoom + dy - 10)
        frames.append(GifFrame(frame, box))
    return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=6.0, help="sensor noise, grey levels (sigma)")
    args = parser.parse_args(argv)
    frames = webcam_frames(args.noise)
    options = GifOptions()
    durations = options.durations(len(frames))
    print(f"nine 640x480 frames, noise sigma {args.noise:g}; KB per GIF (encode seconds)")
    print(f"{'size':>6} {'colours':>8} {'denoised':>16} {'raw':>16}")
    for size in (360, 320, 240):
        base = face_crops(frames, size, options.margin)
        denoised = [cv2.bilateralFilter(f, 5, 25, 5) for f in base]
        for colours in options.palettes:
            cells = []
            for images in (denoised, base):
                started = time.perf_counter()
                data = encode_gif(quantise_shared(images, colours), durations)
                cells.append(f"{len(data) / 1000:8.0f} ({time.perf_counter() - started:4.2f})")
            print(f"{size:>6} {colours:>8} {cells[0]:>16} {cells[1]:>16}")
    with tempfile.TemporaryDirectory() as tmp:
        info = build_gif(frames, Path(tmp) / "bench.gif", options)
    print(
        f"build_gif with the defaults: {info.width}px, {info.palette_colors} colours, "
        f"{info.bytes / 1000:.0f} KB, {info.encode_s:.2f} s (budget {options.max_bytes / 1000:.0f} KB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
