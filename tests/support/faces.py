"""Frames with real faces in them that need nothing from ``../shared``: scikit-image's astronaut."""

from __future__ import annotations

import numpy as np


def faces_on_a_background() -> list[np.ndarray]:
    """640x480 frames: the astronaut's face (a real photo shipped with scikit-image) at three
    sizes on a textured background, and a frame with no face."""
    import cv2
    from skimage import data

    rng = np.random.default_rng(3)
    background = cv2.GaussianBlur(rng.integers(40, 200, (480, 640, 3)).astype(np.uint8), (0, 0), 3)
    face = data.astronaut()[:300, 100:400]
    frames = []
    for side, (x, y) in [(240, (300, 120)), (90, (40, 300)), (40, (500, 60))]:
        frame = background.copy()
        frame[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
        frames.append(frame)
    return frames + [background]
