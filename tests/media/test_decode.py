"""The decoding stage (highlights.media.decode) on recordings written at run time by highlights.media.synthetic.

Every synthetic frame carries its own number (``index_frame``/``read_index``, ``support/media.py``),
so each check says exactly which source frame came back; a frame turned the wrong way reads as
another number. Probing is tested in ``tests/media/test_probe.py``.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import threading
from datetime import timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from highlights.core.lesson import LessonInfo, LessonInput
from highlights.inputs.manifest import read_manifest
from highlights.media import decode as frames_module
from highlights.media.container import RecordingError
from highlights.media.decode import FrameNotFoundError, iter_frames_at, on_screen, prefetch, read_frame_at
from highlights.media.probe import probe_recording, resolve_end_times
from highlights.media.synthetic import corrupt_file, index_frame, read_index, truncate_file
from highlights.stages.timeline import lesson_timeline, sample_frames, sample_points

from support.media import FORMATS, FPS, SIZE, T0, expected_cfr, indexed, numbers, recording

# --------------------------------------------------------------------------- choosing frames


def test_on_screen_picks_the_last_frame_not_after_each_offset():
    shown = [(0.0, 0.1, "a"), (0.1, 0.3, "b"), (0.4, 0.1, "c")]
    offsets = [-0.01, 0.0, 0.05, 0.1 - 1e-6, 0.1, 0.39, 0.4, 0.45, 0.5, 0.7]
    assert list(on_screen(shown, offsets)) == [None, "a", "a", "b", "b", "b", "c", "c", None, None]
    assert list(on_screen([], [0.0, 1.0])) == [None, None]


def test_on_screen_reads_no_further_than_the_last_offset():
    consumed = []

    def frames():
        for i in range(1000):
            consumed.append(i)
            yield (i * 0.04, 0.04, i)

    assert list(on_screen(frames(), [0.0, 0.08, 0.08, 0.1])) == [0, 2, 2, 2]
    assert consumed == [0, 1, 2, 3]


@pytest.mark.parametrize("kind", FORMATS)
def test_iter_frames_at_returns_exact_frames(media, kind):
    offsets = [0.0, 0.02, 0.039, 0.04, 0.5, 0.999, 1.0, 1.5, 1.96, 1.99]
    assert numbers(iter_frames_at(media[kind], offsets)) == expected_cfr(offsets)
    # Past the end of the media (2.0 s): no frame.
    assert numbers(iter_frames_at(media[kind], [1.0, 2.0, 5.0])) == [25, None, None]


@pytest.mark.parametrize("kind", FORMATS)
def test_read_frame_at_matches_sequential_decoding(media, kind):
    offsets = [0.0, 0.52, 1.0, 1.99]
    sampled = list(iter_frames_at(media[kind], offsets))
    for offset, image in zip(offsets, sampled):
        single = read_frame_at(media[kind], offset)
        assert single.dtype == np.uint8 and single.shape == (120, 160, 3)
        assert np.array_equal(single, image), offset


def test_read_frame_at_outside_the_media(media):
    with pytest.raises(FrameNotFoundError, match="h264.mp4"):
        read_frame_at(media["h264"], 2.5)
    assert issubclass(FrameNotFoundError, RecordingError)


def test_offsets_must_be_sorted(media):
    with pytest.raises(ValueError):
        list(iter_frames_at(media["h264"], [1.0, 0.5]))


@pytest.mark.parametrize("kind", ["h264", "vp8-live"])
def test_long_gop_seek_decodes_forward_from_the_keyframe(long_gop, kind):
    offsets = [3.99, 4.0, 9.0, 9.99, 10.0, 11.5, 11.96]
    expected = expected_cfr(offsets)
    sampled = list(iter_frames_at(long_gop[kind], offsets))
    assert numbers(sampled) == expected
    for offset, image in zip(offsets, sampled):
        assert np.array_equal(read_frame_at(long_gop[kind], offset), image), offset


@pytest.mark.parametrize("suffix,codec", [(".mp4", "h264"), (".webm", "vp8")])
def test_variable_frame_rate_uses_timestamps(tmp_path, suffix, codec):
    stamps = [0.0, 0.04, 0.1, 0.5, 0.52, 0.9, 1.3, 1.31, 1.32, 2.0]
    path = indexed(tmp_path / f"vfr{suffix}", len(stamps), codec=codec, vfr_timestamps=stamps,
                   no_duration=suffix == ".webm")
    offsets = [0.0, 0.05, 0.099, 0.1, 0.3, 0.51, 0.52, 1.0, 1.305, 1.315, 1.9, 2.0]
    expected = [max(i for i, stamp in enumerate(stamps) if stamp <= offset + 1e-6) for offset in offsets]
    sampled = list(iter_frames_at(path, offsets))
    assert numbers(sampled) == expected
    for offset, image in zip(offsets, sampled):
        assert np.array_equal(read_frame_at(path, offset), image), offset
    info = probe_recording(path)
    assert info.frame_count == len(stamps)
    # The last frame's duration is what the file says: none in WebM (the mean interval is
    # assumed), one tick in these MP4s; a frame count at any nominal rate would be far off.
    assert stamps[-1] <= info.duration_s <= stamps[-1] + (stamps[-1] / (len(stamps) - 1)) + 1e-3


@pytest.mark.parametrize("rotate", [90, 180, 270])
@pytest.mark.parametrize("suffix,codec", [(".mp4", "h264"), (".webm", "vp8")])
def test_rotation_metadata_gives_upright_frames(tmp_path, rotate, suffix, codec):
    # A phone held upright: portrait frames, stored sideways (or upside down) and tagged.
    upright = (120, 160)
    path = indexed(tmp_path / f"phone-{rotate}{suffix}", 20, codec=codec, size=upright, rotate=rotate)
    info = probe_recording(path)
    assert (info.rotation, info.width, info.height) == (rotate, 120, 160)
    offsets = [0.2, 0.4, 0.76]
    sampled = list(iter_frames_at(path, offsets))
    assert numbers(sampled) == expected_cfr(offsets)
    for offset, image in zip(offsets, sampled):
        assert image.shape == (160, 120, 3)
        red_bar = image[130:150, 2:10].mean(axis=(0, 1))  # index_frame's red bar, bottom left
        assert red_bar[0] > 150 and red_bar[1] < 100, red_bar
        assert np.array_equal(read_frame_at(path, offset), image)


# --------------------------------------------------------------------------- seeking to a late start


@pytest.fixture(scope="module")
def late_start(tmp_path_factory) -> dict[str, Path]:
    """90 s at 10 fps (900 frames): H.264 with a keyframe every 25 s, a VP8 WebM with cues and
    one written as browsers do (no duration, no cues). A student who joined a minute early."""
    folder = tmp_path_factory.mktemp("late_start")
    return {
        "h264": indexed(folder / "gop250.mp4", 900, fps=10, gop=250),
        "vp8": indexed(folder / "vp8.webm", 900, fps=10, codec="vp8"),
        "vp8-live": indexed(folder / "vp8-live.webm", 900, fps=10, codec="vp8", no_duration=True),
    }


def decoded_counts(caplog) -> dict[str, list[int]]:
    """Frames :func:`iter_frames_at` says it decoded, per pass: after its seek, from the start."""
    counts: dict[str, list[int]] = {"seek": [], "start": []}
    for record in caplog.records:
        found = re.search(r"decoded (\d+) frame\(s\)( from the start)?$", record.getMessage())
        if found:
            counts["start" if found[2] else "seek"].append(int(found[1]))
    return counts


def same_frames(path: Path, offsets, **seeking) -> list[int | None]:
    """The frames at ``offsets``, checked pixel for pixel against decoding from the start."""
    sought = list(iter_frames_at(path, offsets, **seeking))
    from_start = list(iter_frames_at(path, offsets, seek_threshold_s=math.inf))
    assert numbers(sought) == numbers(from_start)
    for offset, a, b in zip(offsets, sought, from_start):
        assert (a is None and b is None) or np.array_equal(a, b), offset
    return numbers(sought)


@pytest.mark.parametrize("kind,keyframe", [("h264", 50.0), ("vp8", 51.2), ("vp8-live", 51.2)])
def test_a_late_first_offset_seeks_to_the_keyframe_before_it(late_start, caplog, kind, keyframe):
    offsets = [60.0 + 0.5 * i for i in range(60)]  # 60 .. 89.5 s
    with caplog.at_level(logging.DEBUG, logger="highlights.media.decode"):
        got = numbers(iter_frames_at(late_start[kind], offsets))
    assert got == expected_cfr(offsets, fps=10)
    assert f"seeked to the keyframe at {keyframe:.3f} s for 60.000 s" in caplog.text
    assert "from the start" not in caplog.text
    counts = decoded_counts(caplog)
    assert counts["start"] == [] and len(counts["seek"]) == 1
    assert counts["seek"][0] < 900 / 2  # about (90 - keyframe) * 10 of the 900
    # The default threshold seeks; the same frames as decoding every frame from the start. The
    # cue-less WebM seeks too: FFmpeg's demuxer reads its clusters forward, without decoding.
    assert same_frames(late_start[kind], offsets) == got


@pytest.mark.parametrize("kind", ["h264", "vp8-live"])
def test_offsets_past_the_end_after_a_seek(late_start, caplog, kind):
    offsets = [70.0, 89.5, 91.0, 95.0, 95.0]  # 91 s and on: well past the last frame (89.9 s)
    with caplog.at_level(logging.DEBUG, logger="highlights.media.decode"):
        assert numbers(iter_frames_at(late_start[kind], offsets)) == [700, 895, None, None, None]
    assert "seeked to the keyframe" in caplog.text and "from the start" not in caplog.text
    assert "3 of 5 sampled offset(s) lie past the end" in caplog.text
    assert same_frames(late_start[kind], offsets) == [700, 895, None, None, None]


def test_the_threshold_decides_whether_to_seek(late_start, caplog, monkeypatch):
    path = late_start["h264"]
    monkeypatch.setattr(frames_module, "SKIPPABLE_CODECS", frozenset())  # frame counts say how far it decoded
    with caplog.at_level(logging.DEBUG, logger="highlights.media.decode"):
        assert numbers(iter_frames_at(path, [4.9, 60.0])) == [49, 600]  # first offset under 5 s
        assert numbers(iter_frames_at(path, [60.0], seek_threshold_s=60.0)) == [600]
        monkeypatch.setattr(frames_module, "SEEK_THRESHOLD_S", math.inf)
        assert numbers(iter_frames_at(path, [80.0])) == [800]
    counts = decoded_counts(caplog)
    assert counts["seek"] == [] and len(counts["start"]) == 3
    assert counts["start"][-1] >= 800  # decoded up to 80 s


class _OddSeek:
    """An opened container whose seek lands ``late_s`` seconds after the keyframe asked for, or
    fails (``late_s`` None): what a file without a usable seek index, or a demuxer quirk, does."""

    def __init__(self, container, late_s: float | None) -> None:
        self._container, self._late_s = container, late_s

    def __getattr__(self, name):
        return getattr(self._container, name)

    def __enter__(self):
        self._container.__enter__()
        return self

    def __exit__(self, *exc):
        return self._container.__exit__(*exc)

    def seek(self, offset, *, stream, **options):
        if self._late_s is None:
            raise frames_module.av.FFmpegError(22, "Invalid argument")
        self._container.seek(offset + int(self._late_s / stream.time_base), stream=stream, **options)


@pytest.mark.parametrize("late_s,why", [(30.0, "reached a keyframe at 75.000 s"), (None, "failed (Invalid argument)")])
def test_a_seek_that_misses_decodes_from_the_start(late_start, caplog, monkeypatch, late_s, why):
    path = late_start["h264"]
    monkeypatch.setattr(frames_module, "SKIPPABLE_CODECS", frozenset())  # frame counts say how far it decoded
    offsets = [60.0, 61.0, 80.0]
    real_open = frames_module.av.open
    opened: list[str] = []

    def odd_open(file, *args, **kwargs):
        opened.append(Path(file).name)
        return _OddSeek(real_open(file, *args, **kwargs), late_s)

    monkeypatch.setattr(frames_module.av, "open", odd_open)
    with caplog.at_level(logging.DEBUG, logger="highlights.media.decode"):
        assert numbers(iter_frames_at(path, offsets)) == [600, 610, 800]
    assert f"gop250.mp4: seek to 60.000 s {why}; decoding from the start" in caplog.text
    counts = decoded_counts(caplog)
    assert counts["seek"] == [] and len(counts["start"]) == 1 and counts["start"][0] >= 800
    assert opened == ["gop250.mp4", "gop250.mp4"]  # reopened: decoding starts afresh


def test_a_last_frame_without_stated_duration_is_decided_from_the_start(tmp_path, caplog):
    # A short browser WebM (no durations stored): whether 19.96 s still shows the last frame
    # (19.5 s) depends on its duration, which decoding from the start takes as the mean interval
    # over the whole file (0.51 s), while after a seek FFmpeg's demuxer estimates one (50 ms).
    stamps = [0.0, 0.3, 1.0, 1.1, 2.0, *(2.5 + 0.5 * i for i in range(30)), 17.6, 18.0, 18.05, 19.5]
    path = indexed(tmp_path / "vfr-live.webm", len(stamps), codec="vp8", vfr_timestamps=stamps, gop=5,
                   no_duration=True)
    mean = stamps[-1] / (len(stamps) - 1)  # 0.51 s
    with caplog.at_level(logging.DEBUG, logger="highlights.media.decode"):
        assert same_frames(path, [12.0, 19.0, 19.5 + 0.9 * mean, 19.5 + 1.1 * mean]) == [24, 37, 38, None]
    assert "19.962 s may lie on the last frame" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="highlights.media.decode"):
        assert same_frames(path, [12.0, 18.02, 25.0]) == [24, 36, None]  # certainly past the end
    assert "seeked to the keyframe at 10.000 s for 12.000 s" in caplog.text
    assert "may lie on the last frame" not in caplog.text
    # read_frame_at (the GIF stage re-reads its picks with it) agrees with sample_frames there.
    assert read_index(read_frame_at(path, 19.5 + 0.9 * mean)) == 38


def test_seeking_keeps_awkward_files_exact(long_gop, tmp_path, caplog):
    # Seeking for every offset past 0 (threshold 0) on rotated, VFR, truncated and damaged files.
    stamps = [0.0, 0.04, 0.1, 0.5, 0.52, 0.9, 1.3, 1.31, 1.32, 2.0]
    cases = {
        "phone.mp4": (indexed(tmp_path / "phone.mp4", 20, size=(120, 160), rotate=90, gop=5), [0.3, 0.5, 0.7]),
        "phone.webm": (indexed(tmp_path / "phone.webm", 20, codec="vp8", size=(120, 160), rotate=270, gop=5),
                       [0.3, 0.5, 0.7]),
        "vfr.mp4": (indexed(tmp_path / "vfr.mp4", 10, vfr_timestamps=stamps, gop=3), [0.6, 1.0, 1.315, 1.9]),
        "vfr.webm": (indexed(tmp_path / "vfr.webm", 10, codec="vp8", vfr_timestamps=stamps, gop=3,
                             no_duration=True), [0.6, 1.0, 1.315, 1.9]),
        "cut.mp4": (truncate_file(long_gop["faststart"], 0.5, out=tmp_path / "cut.mp4"), [4.5, 5.0, 6.0, 11.0]),
        "cut.webm": (truncate_file(long_gop["vp8-live"], 0.5, out=tmp_path / "cut.webm"), [4.5, 5.0, 6.0, 11.0]),
        "damaged.mp4": (corrupt_file(long_gop["faststart"], 0.4, 2000, out=tmp_path / "damaged.mp4"),
                        [6.0, 9.0, 11.0]),
        "damaged.webm": (corrupt_file(long_gop["vp8-live"], 0.6, 2000, out=tmp_path / "damaged.webm"),
                         [6.0, 9.0, 11.0]),
    }
    for name, (path, offsets) in cases.items():
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="highlights.media.decode"):
            got = same_frames(path, offsets, seek_threshold_s=0.0)
        assert f"{name}: seeked to the keyframe" in caplog.text, name
        if not name.startswith("damaged"):
            expected = expected_cfr(offsets) if "vfr" not in name else [
                max(i for i, stamp in enumerate(stamps) if stamp <= offset + 1e-6) for offset in offsets]
            decoded = [n for n in got if n is not None]  # the cut files end before 11 s
            assert decoded == expected[: len(decoded)] and len(decoded) >= len(offsets) - 1, name


# --------------------------------------------------------------------------- dropping unneeded frames


def _frames_without_skipping(monkeypatch, path, offsets, **seeking):
    with monkeypatch.context() as patch:
        patch.setattr(frames_module, "SKIPPABLE_CODECS", frozenset())
        return list(iter_frames_at(path, offsets, **seeking))


@pytest.mark.parametrize("seek", [False, True])
def test_dropping_frames_no_offset_needs_gives_the_same_frames_and_decodes_fewer(long_gop, tmp_path, caplog, monkeypatch, seek):
    # x264's B-frames that nothing refers to are dropped undecoded (FFmpeg's skip_frame NONREF)
    # except within SKIP_WINDOW_S before an offset; VFR with a stall longer than the window and
    # a file cut short are the cases where a dropped frame could have been on screen.
    stamps = [0.0, 0.1, 0.2, 0.3, 0.4, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8]
    cases = {
        "h264": (long_gop["h264"], [0.3 + k * 2.0 for k in range(6)]),
        "stall": (indexed(tmp_path / "stall.mp4", len(stamps), vfr_timestamps=stamps, gop=250), [0.45, 1.5, 1.65, 3.0, 3.25, 3.75]),
        "cut": (truncate_file(long_gop["faststart"], 0.5, out=tmp_path / "cut.mp4"), [1.0, 3.0, 5.0, 6.5, 11.0]),
    }
    for name, (path, offsets) in cases.items():
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="highlights.media.decode"):
            got = list(iter_frames_at(path, offsets, seek_threshold_s=0.0 if seek else math.inf))
        expected = _frames_without_skipping(monkeypatch, path, offsets, seek_threshold_s=math.inf)
        assert numbers(got) == numbers(expected), name
        assert all((a is None and b is None) or np.array_equal(a, b) for a, b in zip(got, expected)), name
        assert "packet(s) droppable" in caplog.text or "seeked to the keyframe" in caplog.text, name
    # On the long-GOP file (12 s, 300 frames, sampled every 2 s) far fewer frames are decoded.
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="highlights.media.decode"):
        list(iter_frames_at(long_gop["h264"], cases["h264"][1], seek_threshold_s=math.inf))
    [decoded] = decoded_counts(caplog)["start"]
    assert decoded < 0.8 * 10.3 * FPS


def test_the_skip_window_follows_the_frame_rate(long_gop, tmp_path, caplog, monkeypatch):
    # Two frame intervals of the stream's rate (25 fps: 0.08 s), at most SKIP_WINDOW_S (a 2 fps
    # stream: 0.5 s, not 1 s): at 1 sample/s far fewer B-frames are decoded than with a fixed
    # 0.5 s window, and the frames are the same as decoding every one.
    import av

    slow = indexed(tmp_path / "slow.mp4", 30, fps=2.0, gop=250)
    for path, window in ((long_gop["h264"], 2.0 / FPS), (slow, frames_module.SKIP_WINDOW_S)):
        with av.open(str(path)) as container:
            skipper = frames_module._Skipper.for_stream(container.streams.video[0], [1.0])
        assert skipper is not None and skipper.window_s == pytest.approx(window), path.name
    offsets = [0.5 + k for k in range(11)]

    def decoded(**patched) -> tuple[list, int]:
        caplog.clear()
        with monkeypatch.context() as patch, caplog.at_level(logging.DEBUG, logger="highlights.media.decode"):
            for name, value in patched.items():
                patch.setattr(frames_module, name, value)
            got = list(iter_frames_at(long_gop["h264"], offsets, seek_threshold_s=math.inf))
        [count] = decoded_counts(caplog)["start"]
        return got, count

    got, count = decoded()
    fixed, fixed_count = decoded(SKIP_WINDOW_FRAMES=math.inf)  # the former fixed 0.5 s window
    expected = _frames_without_skipping(monkeypatch, long_gop["h264"], offsets, seek_threshold_s=math.inf)
    assert numbers(got) == numbers(fixed) == numbers(expected) == expected_cfr(offsets)
    assert count < 0.9 * fixed_count  # 195 vs 228 here


def test_vp8_streams_are_decoded_whole(media, caplog):
    with caplog.at_level(logging.DEBUG, logger="highlights.media.decode"):
        assert numbers(iter_frames_at(media["vp8"], [0.5, 1.5])) == expected_cfr([0.5, 1.5])
    assert "droppable" not in caplog.text


# --------------------------------------------------------------------------- damaged files


def test_truncated_file_gives_what_decodes_and_warns_once(long_gop, tmp_path, caplog):
    for name in ("faststart", "vp8-live"):
        cut = truncate_file(long_gop[name], 0.5, out=tmp_path / f"cut-{long_gop[name].name}")
        info = probe_recording(cut)
        assert 3.0 < info.duration_s < 10.0
        offsets = [float(s) for s in range(12)]
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="highlights.media.decode"):
            got = numbers(iter_frames_at(cut, offsets))
        decoded = [n for n in got if n is not None]
        assert decoded == expected_cfr(offsets)[: len(decoded)] and len(decoded) >= 3
        assert got[len(decoded):] == [None] * (len(offsets) - len(decoded))
        past_end = [r for r in caplog.records if "past the end" in r.getMessage()]
        assert len(past_end) == 1
        assert cut.name in past_end[0].getMessage()
        assert f"{len(offsets) - len(decoded)} of {len(offsets)}" in past_end[0].getMessage()
        assert str(tmp_path) not in caplog.text


@pytest.mark.parametrize("name", ["faststart", "vp8-live"])
def test_partly_corrupt_file_decodes_around_the_damage(long_gop, tmp_path, caplog, name):
    damaged = corrupt_file(long_gop[name], 0.4, 2000, out=tmp_path / f"damaged-{long_gop[name].name}")
    offsets = [0.0, 1.0, 2.0, 2.5, 5.0, 8.0, 9.0, 11.0]
    with caplog.at_level(logging.WARNING, logger="highlights.media.decode"):
        got = numbers(iter_frames_at(damaged, offsets))
    assert len(got) == len(offsets)
    expected = expected_cfr(offsets)
    # Before the damage (~40% of the bytes) and after the next keyframe: exact frames.
    assert got[:4] == expected[:4]
    assert got[-3:] == expected[-3:]
    if name == "faststart":  # H.264 reports the damage (a VP8 decoder can miss lost packets)
        assert any("damaged" in r.getMessage() and damaged.name in r.getMessage() for r in caplog.records)


def test_no_decodable_frame_is_an_error(tmp_path):
    clip = indexed(tmp_path / "clip.webm", 20, codec="vp8", no_duration=True)
    broken = corrupt_file(clip, 0.05, 10**6, out=tmp_path / "broken.webm")
    for call in (probe_recording, lambda p: list(iter_frames_at(p, [0.0, 0.5]))):
        with pytest.raises(RecordingError, match="broken.webm") as caught:
            call(broken)
        assert caught.value.path == broken


def test_a_still_image_is_not_a_recording(tmp_path):
    # FFmpeg opens a photo as a one-frame video: it made a one-second lesson instead of an error.
    from PIL import Image

    picture = Image.fromarray(index_frame(7, SIZE))
    stills = [tmp_path / "snapshot.png", tmp_path / "photo.jpg", tmp_path / "thumb.webp", tmp_path / "renamed.mp4"]
    for path, kind in zip(stills, ("PNG", "JPEG", "WEBP", "PNG")):
        picture.save(path, format=kind)
    for path in stills:
        for call in (probe_recording, lambda p: list(iter_frames_at(p, [0.0]))):
            with pytest.raises(RecordingError, match=r"is a still image \(\w+\), not a video recording") as caught:
                call(path)
            assert caught.value.path == path and str(tmp_path) not in str(caught.value)


# --------------------------------------------------------------------------- lessons


def test_lesson_with_a_reconnect_skips_the_offline_gap(tmp_path):
    folder = tmp_path / "L-1"
    folder.mkdir()
    indexed(folder / "student-1.webm", 50, fps=5, codec="vp8", no_duration=True)  # 10 s, numbers 0..
    indexed(folder / "student-2.mp4", 50, fps=5, first=1000)  # 10 s, numbers 1000..
    (folder / "teacher-1.mp4").write_text("ended_at is given: never opened")
    manifest = tmp_path / "recordings.csv"
    manifest.write_text(
        "lesson_id,role,path,started_at,ended_at\n"
        "L-1,teacher,L-1/teacher-1.mp4,2026-11-21T15:00:00+00:00,2026-11-21T15:00:40+00:00\n"
        "L-1,student,L-1/student-1.webm,2026-11-21T15:00:02+00:00,\n"
        "L-1,student,L-1/student-2.mp4,2026-11-21T15:00:17+00:00,\n"
    )
    lesson = read_manifest(manifest).lessons["L-1"]
    assert lesson.ok, lesson.problems
    lesson = resolve_end_times(lesson)
    timeline = lesson_timeline(lesson)
    assert timeline.status == "ok" and timeline.duration_s == pytest.approx(25.0)

    sampled = list(sample_frames(lesson, timeline, fps=1.0))
    ts = [frame.ref.t for frame in sampled]
    assert ts == [float(t) for t in [*range(0, 10), *range(15, 25)]]  # 15:00:12-15:00:17 offline
    assert [frame.ref.index for frame in sampled] == list(range(20))
    # Each frame carries the plan's own point, unchanged.
    assert [frame.ref for frame in sampled] == [p for p in sample_points(timeline, lesson.recordings) if p.t in ts]
    for frame in sampled:
        ref = frame.ref
        assert ref.at == T0 + timedelta(seconds=2 + ref.t) and ref.at.tzinfo == timezone.utc
        first_part = ref.t < 10
        assert ref.source == (folder / ("student-1.webm" if first_part else "student-2.mp4")).resolve()
        assert ref.offset_s == pytest.approx(ref.t if first_part else ref.t - 15)
        assert frame.image.shape == (120, 160, 3) and frame.image.dtype == np.uint8
        assert read_index(frame.image) == expected_cfr([ref.offset_s], fps=5, first=0 if first_part else 1000)[0]
        assert np.array_equal(read_frame_at(ref.source, ref.offset_s), frame.image)


def test_interleaved_recordings_are_each_decoded_once(tmp_path, monkeypatch, caplog):
    long_part = indexed(tmp_path / "a.webm", 100, fps=5, codec="vp8")  # 0-20 s
    reconnect = indexed(tmp_path / "b.mp4", 25, fps=5, first=1000)  # 5-10 s, the newer connection
    teacher = tmp_path / "t.mp4"
    lesson = LessonInput("L-1", [
        recording(long_part, "student", 0.0, 22.0, 2),  # the manifest claims 2 s more than the media
        recording(reconnect, "student", 5.0, None, 3),
        recording(teacher, "teacher", 0.0, 30.0, 4),
    ], LessonInfo("L-1"))
    lesson = resolve_end_times(lesson)
    timeline = lesson_timeline(lesson)
    opened: list[str] = []
    real_open = frames_module.av.open

    def counting_open(file, *args, **kwargs):
        opened.append(Path(file).name)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(frames_module.av, "open", counting_open)
    with caplog.at_level(logging.WARNING, logger="highlights.media.decode"):
        sampled = list(sample_frames(lesson, timeline, fps=1.0))
    assert sorted(opened) == ["a.webm", "b.mp4"]
    assert [f.ref.t for f in sampled] == [float(t) for t in range(20)]  # t 20, 21: past a.webm's end
    assert [read_index(f.image) for f in sampled] == [
        *(5 * t for t in range(5)), *(1000 + 5 * (t - 5) for t in range(5, 10)), *(5 * t for t in range(10, 20))
    ]
    warnings = [r.getMessage() for r in caplog.records if "past the end" in r.getMessage()]
    assert warnings == ["a.webm: 2 of 17 sampled offset(s) lie past the end of the decodable video; skipped"]


def test_no_lesson_samples_nothing(media):
    lesson = LessonInput("L-1", [recording(media["h264"], "student", 0.0, 2.0, 2)], LessonInfo("L-1"))
    assert list(sample_frames(lesson, lesson_timeline(lesson))) == []


def test_a_recording_without_frames_fails_the_lesson(tmp_path):
    broken = tmp_path / "student.webm"
    broken.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(200))  # an EBML magic number and nothing else
    lesson = LessonInput("L-1", [recording(broken, "student", 0.0, 10.0, 2),
                                 recording(tmp_path / "t.mp4", "teacher", 0.0, 10.0, 3)], LessonInfo("L-1"))
    with pytest.raises(RecordingError) as caught:
        next(sample_frames(lesson, lesson_timeline(lesson)))
    assert caught.value.path == broken


# --------------------------------------------------------------------------- real footage


def test_real_clips_decode(shared_data):
    clips = sorted((shared_data / "video").glob("*.mp4"))
    assert clips, "no .mp4 clips in the shared data"
    for clip in clips:
        info = probe_recording(clip)
        assert info.duration_s > 1 and info.width > 0 and info.height > 0 and info.frame_count > 0
        offsets = [t * 0.5 for t in range(int(min(info.duration_s, 4.0) * 2))]
        sampled = list(iter_frames_at(clip, offsets))
        assert all(image is not None and image.shape == (info.height, info.width, 3) for image in sampled)
        assert np.array_equal(read_frame_at(clip, offsets[-1]), sampled[-1]), clip.name


# --------------------------------------------------------------------------- the decoder thread (issue 14)


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
