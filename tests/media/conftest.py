"""The recordings the decoding and probing tests share, written once per module (``support/media.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.media import indexed


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """The recordings most tests share: 2 s (50 frames) at 25 fps in each format."""
    folder = tmp_path_factory.mktemp("media")
    return {
        "h264": indexed(folder / "h264.mp4", 50),
        "vp8": indexed(folder / "vp8.webm", 50, codec="vp8"),
        "vp9": indexed(folder / "vp9.webm", 50, codec="vp9"),
        "vp8-live": indexed(folder / "vp8-live.webm", 50, codec="vp8", no_duration=True),
        "vp9-live": indexed(folder / "vp9-live.webm", 50, codec="vp9", no_duration=True),
    }


@pytest.fixture(scope="module")
def long_gop(tmp_path_factory) -> dict[str, Path]:
    """12 s (300 frames): H.264 with one keyframe every 250 frames, a browser WebM (no cues) with
    one every 100, and a faststart H.264 with one every 50 (for truncation and damage)."""
    folder = tmp_path_factory.mktemp("long_gop")
    return {
        "h264": indexed(folder / "gop250.mp4", 300, gop=250),
        "vp8-live": indexed(folder / "gop100-live.webm", 300, codec="vp8", gop=100, no_duration=True),
        "faststart": indexed(folder / "gop50-faststart.mp4", 300, gop=50, faststart=True),
    }
