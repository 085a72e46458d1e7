"""GIF stage: nine opaque looping frames under the byte budget, best first, one framing."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from highlights.stages.gif import (
    GifError,
    GifFrame,
    GifOptions,
    build_gif,
    check_gif,
    crop_face,
    encode_gif,
    face_crops,
    gif_square,
    public_gif_name,
)


def webcam_frames(n: int = 9, seed: int = 0, noise: float = 8.0) -> list[GifFrame]:
    """640x480 noisy webcam-like frames: a textured background, a face-like blob that moves,
    and a coloured badge beside the face that differs per frame (to tell frames apart)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:480, 0:640]
    frames = []
    for i in range(n):
        background = np.stack([80 + 60 * np.sin(xx / 40 + i), 100 + 50 * np.cos(yy / 30), 120 + 0 * xx], axis=-1)
        image = background + rng.normal(0, noise, (480, 640, 3))
        cx, cy, r = 320 + rng.integers(-120, 120), 240 + rng.integers(-80, 80), 70 + rng.integers(-10, 10)
        face = (xx - cx) ** 2 / r**2 + (yy - cy) ** 2 / (1.3 * r) ** 2 < 1
        image[face] = (225, 180, 150) + rng.normal(0, noise, (int(face.sum()), 3))
        mouth = (abs(yy - cy - r * 0.5) < 6) & (abs(xx - cx) < r * 0.5)
        image[mouth] = (150, 40, 50)
        image[cy - r : cy - r + 30, cx + r : cx + r + 30] = np.array([(i * 97) % 256, (i * 53) % 256, (255 - i * 29) % 256])
        box = (float(cx - r), float(cy - 1.3 * r), float(cx + r), float(cy + 1.3 * r))
        frames.append(GifFrame(np.clip(image, 0, 255).astype(np.uint8), box))
    return frames


@pytest.fixture(scope="module")
def nine() -> list[GifFrame]:
    return webcam_frames()


def test_nine_looping_opaque_frames_under_budget(nine, tmp_path):
    path = tmp_path / "h.gif"
    info = build_gif(nine, path)
    assert path.stat().st_size == info.bytes <= 1_000_000
    assert (info.n_frames, info.width, info.height) == (9, 360, 360)
    assert info.frame_ms == (2000,) + (1200,) * 8 and info.duration_ms == 11600
    with Image.open(path) as gif:
        assert gif.n_frames == 9 and gif.info["loop"] == 0
        durations, sizes = [], set()
        for index in range(9):
            gif.seek(index)
            durations.append(gif.info["duration"])
            sizes.add(gif.size)
            assert "transparency" not in gif.info
        assert sizes == {(360, 360)}
        assert durations == [2000] + [1200] * 8
    assert not [p for p in tmp_path.iterdir() if p.name != "h.gif"]  # no temporary files left


def test_first_frame_is_the_first_given_and_order_is_kept(nine, tmp_path):
    info = build_gif(nine, tmp_path / "h.gif")
    expected = [c.astype(float) for c in face_crops(nine, info.width)]
    with Image.open(info.path) as gif:
        for index in range(9):
            gif.seek(index)
            frame = np.asarray(gif.convert("RGB"), dtype=float)
            errors = [np.abs(frame - e).mean() for e in expected]
            assert int(np.argmin(errors)) == index


def test_tight_budget_reduces_palette_and_size_never_frames(nine, tmp_path):
    options = GifOptions(max_bytes=150_000, sizes=(360, 240, 160), palettes=(128, 64))
    info = build_gif(nine, tmp_path / "h.gif", options)
    assert info.bytes <= 150_000 and info.n_frames == 9
    # these frames take ~275 kB at 360 px / 64 colours and ~147 kB at 240 px / 64 colours
    assert (info.width, info.palette_colors) == (240, 64)
    check_gif(info.path, 9, info.width, 150_000)


def test_impossible_budget_raises_and_writes_nothing(nine, tmp_path):
    with pytest.raises(GifError, match="no size/palette fits"):
        build_gif(nine, tmp_path / "h.gif", GifOptions(max_bytes=5_000, sizes=(120,), palettes=(64,)))
    assert list(tmp_path.iterdir()) == []


def test_check_gif_rejects_a_gif_that_plays_once():
    frames = [np.full((16, 16, 3), v, np.uint8) for v in (0, 128, 255)]
    buffer = io.BytesIO()
    Image.fromarray(frames[0]).save(buffer, format="GIF", save_all=True,
                                    append_images=[Image.fromarray(f) for f in frames[1:]])  # fmt: skip
    with pytest.raises(GifError, match="loop"):
        check_gif(buffer.getvalue(), 3, 16)
    check_gif(encode_gif(frames, [100] * 3), 3, 16)
    with pytest.raises(GifError, match="frames"):
        check_gif(encode_gif(frames, [100] * 3), 9, 16)


def test_crop_has_one_side_and_stays_inside_the_frame():
    image = np.arange(480 * 640 * 3, dtype=np.uint32).reshape(480, 640, 3).astype(np.uint8)
    corner = crop_face(image, (0.0, 0.0, 40.0, 40.0), 200)
    assert corner.shape == (200, 200, 3)
    assert np.array_equal(corner, image[:200, :200])
    assert crop_face(image, (600.0, 440.0, 640.0, 480.0), 200).shape == (200, 200, 3)
    assert crop_face(image, (300.0, 200.0, 340.0, 240.0), 1000).shape == (480, 480, 3)  # clamped
    frames = [GifFrame(image, (100.0, 100.0, 100.0 + s, 100.0 + s)) for s in (50, 100, 150)]
    crops = face_crops(frames, 64, margin=2.0)
    assert {c.shape for c in crops} == {(64, 64, 3)}


def test_gif_square_is_where_the_crop_is_cut():
    """The square's coordinates (what bench/persons.py checks against where a parent is) are the
    pixels crop_face cuts: centred on the face, shifted inside the frame, clamped to its height."""
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    for box, side in (((300.0, 200.0, 340.0, 240.0), 100), ((0.0, 0.0, 40.0, 40.0), 200),
                      ((600.0, 440.0, 640.0, 480.0), 200), ((300.0, 200.0, 340.0, 240.0), 1000)):
        left, top, right, bottom = gif_square(box, side, 640, 480)
        assert 0 <= left < right <= 640 and 0 <= top < bottom <= 480 and right - left == bottom - top
        assert np.array_equal(crop_face(image, box, side), image[top:bottom, left:right])
    assert gif_square((300.0, 200.0, 340.0, 240.0), 100, 640, 480) == (270, 170, 370, 270)
    assert gif_square((600.0, 440.0, 640.0, 480.0), 200, 640, 480) == (440, 280, 640, 480)


def test_public_gif_names_are_not_guessable():
    random_names = {public_gif_name("lesson-42") for _ in range(20)}
    assert len(random_names) == 20
    keyed = public_gif_name("lesson-42", "s3cret")
    assert keyed == public_gif_name("lesson-42", b"s3cret")  # reruns keep the name
    assert keyed != public_gif_name("lesson-42", "rotated") != public_gif_name("lesson-43", "s3cret")
    for name in random_names | {keyed}:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}\.gif", name)
        assert "lesson" not in name
