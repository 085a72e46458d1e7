"""Recordings whose every frame shows its own number, for the decoding and probing tests.

``indexed`` writes one (``highlights.media.synthetic.index_frame``), ``numbers`` reads the numbers
back from decoded images, so each check says exactly which source frame came back;
``tests/media/conftest.py`` builds the shared ones (fixtures ``media`` and ``long_gop``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from highlights.core.lesson import Recording, SourceRow
from highlights.media.synthetic import index_frame, read_index, write_video

FPS = 25
SIZE = (160, 120)  # width, height
T0 = datetime(2026, 11, 21, 15, 0, 0, tzinfo=timezone.utc)
FORMATS = ["h264", "vp8", "vp9", "vp8-live", "vp9-live"]
"""The formats of the ``media`` fixture: 2 s (50 frames) at 25 fps each."""


def indexed(path: Path, count: int, fps: float = FPS, codec: str = "h264", first: int = 0,
            size: tuple[int, int] = SIZE, **options) -> Path:
    """A recording whose frame ``i`` shows the number ``first + i``."""
    return write_video(path, (index_frame(first + i, size) for i in range(count)), fps, codec, **options)


def numbers(images) -> list[int | None]:
    return [None if image is None else read_index(image) for image in images]


def expected_cfr(offsets, fps: float = FPS, first: int = 0) -> list[int]:
    return [first + int(offset * fps + 1e-6) for offset in offsets]


def recording(path: Path, role: str, start_s: float, end_s: float | None, row: int) -> Recording:
    ended_at = None if end_s is None else T0 + timedelta(seconds=end_s)
    return Recording("L-1", role, path, T0 + timedelta(seconds=start_s), ended_at, SourceRow(Path("m.csv"), row))
