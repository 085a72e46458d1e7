"""Probing recordings: what a media file holds (duration, size, rotation, codec) without
decoding it, and the shared low-level readers.

Below both :mod:`highlights.timeline` (which asks for end times the manifest does not give) and
:mod:`highlights.frames` (which decodes the sampled seconds), so neither imports the other for
it. Offsets, rotation and damaged-file conventions are those of :mod:`highlights.frames`.

Measured with ``bench/decoding.py``: probing costs about 0.02 s per minute of video (it demuxes
every packet and decodes only the first frame).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import av
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from highlights.recordings import LessonInput, with_end_times

log = logging.getLogger(__name__)


class RecordingError(Exception):
    """A recording that cannot be opened or decoded at all. ``path`` is the media file; the
    message names its base name (never the folders, which may hold personal data)."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{self.path.name}: {message}")

    def __reduce__(self):  # picklable across process pools despite the two-argument __init__
        return type(self), (self.path, self.message)


@dataclass(frozen=True)
class RecordingInfo:
    """What :func:`probe_recording` learns about a file without decoding it.

    ``duration_s``: from presentation timestamps (last frame's pts + its duration - first
    frame's pts), not from the container header, which browser WebM files lack.
    ``width``/``height``: upright, after ``rotation`` (degrees clockwise a player turns the
    stored picture). ``frame_count``: video packets demuxed. ``first_pts_s``: pts of the first
    decodable frame (offset 0). ``has_container_duration``: whether the header states a duration.
    """

    duration_s: float
    width: int
    height: int
    rotation: int
    codec: str
    frame_count: int
    first_pts_s: float
    has_container_duration: bool


@dataclass
class _DecodeStats:
    """What went wrong while decoding one file, for its single warning."""

    frames: int = 0
    bad_packets: int = 0
    corrupt_frames: int = 0  # decoded with concealed errors (FFmpeg's corrupt flag)
    stopped: str | None = None  # why demuxing ended before the end of the file


# --------------------------------------------------------------------------- public API


def probe_recording(path: Path | str) -> RecordingInfo:
    """Duration, size, rotation and codec of a recording, by demuxing all its packets and
    decoding only the first frame (fast: no picture is decoded past the first)."""
    path = Path(path)
    with _open_video(path) as (container, stream):
        time_base = stream.time_base
        first: VideoFrame | None = None
        last_pts: int | None = None
        last_duration = 0
        min_pts: int | None = None
        count = 0
        stats = _DecodeStats()
        for packet in _packets(container, stream, stats):
            if first is None:
                first = _first_frame(stream, packet, stats)
            if packet.pts is None or packet.size == 0 or packet.is_discard:
                continue
            count += 1
            min_pts = packet.pts if min_pts is None else min(min_pts, packet.pts)
            if last_pts is None or packet.pts > last_pts:
                last_pts, last_duration = packet.pts, packet.duration or 0
        if first is None:
            first = _first_frame(stream, None, stats)
        if first is None or first.pts is None or last_pts is None or min_pts is None:
            raise RecordingError(path, f"no video frame could be decoded{_stopped(stats)}")
        if last_duration <= 0:  # no per-frame duration stored
            last_duration = _mean_interval(min_pts, last_pts, count)
        rotation = clockwise_rotation(first)
        turned = rotation in (90, 270)
        duration_s = float((last_pts + last_duration - first.pts) * time_base)
        _warn_if_shortened(path, container, stream, duration_s)
        return RecordingInfo(
            duration_s=duration_s,
            width=first.height if turned else first.width,
            height=first.width if turned else first.height,
            rotation=rotation,
            codec=stream.codec_context.name,
            frame_count=count,
            first_pts_s=float(first.pts * time_base),
            has_container_duration=bool(container.duration and container.duration > 0),
        )


SHORTENED_TOLERANCE_S = 1.0
"""A file whose frames end more than this (or 5% of its stated length) before the duration its
header states is reported as truncated: a cut-off upload of a faststart MP4 or a WebM with a
duration still opens and states its full length, and would otherwise shorten the lesson silently."""


def _warn_if_shortened(path: Path, container: InputContainer, stream: VideoStream,
                       decodable_s: float) -> None:
    if stream.duration and stream.time_base:
        stated = float(stream.duration * stream.time_base)
    elif container.duration and container.duration > 0:
        stated = container.duration / av.time_base
    else:
        return  # browser WebM: no stated duration to compare with
    if decodable_s < stated - max(SHORTENED_TOLERANCE_S, 0.05 * stated):
        log.warning("%s: truncated? its header states %.1f s but its frames end at %.1f s; "
                    "used what is there", path.name, stated, decodable_s)


def resolve_end_times(lesson: LessonInput) -> LessonInput:
    """``lesson`` with each recording lacking ``ended_at`` given ``started_at`` + its probed
    duration. Recordings that have one are not opened. Raises :class:`RecordingError`."""
    ends = {
        r.path: r.started_at + timedelta(seconds=probe_recording(r.path).duration_s)
        for r in lesson.recordings
        if r.ended_at is None
    }
    return with_end_times(lesson, ends)


def clockwise_rotation(frame: VideoFrame) -> int:
    """Degrees (0, 90, 180, 270) clockwise a player turns this frame: FFmpeg's display
    matrix angle is counter-clockwise, in [-180, 180]."""
    return round(-frame.rotation / 90) % 4 * 90


# --------------------------------------------------------------------------- building blocks (also used by frames)


STILL_IMAGE_DEMUXERS = frozenset({"image2", "image2pipe"})
"""FFmpeg's demuxers of still pictures, besides its ``*_pipe`` ones (``png_pipe``,
``webp_pipe``, ...): ``image2`` reads a JPEG file, whatever its name."""


@contextmanager
def _open_video(path: Path) -> Iterator[tuple[InputContainer, VideoStream]]:
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as exc:  # av's FileNotFoundError is both
        hint = " (not a video file, or an MP4 cut off before its index was written)"
        hint = hint if isinstance(exc, av.InvalidDataError) else ""
        raise RecordingError(path, f"cannot open: {_why(exc)}{hint}") from exc
    with container:
        demuxer = container.format.name
        if demuxer in STILL_IMAGE_DEMUXERS or demuxer.endswith("_pipe"):
            # FFmpeg reads a photo as a one-frame video: listed by mistake (a snapshot, a
            # thumbnail), it would make a lesson of one second instead of failing its row.
            raise RecordingError(path, f"is a still image ({demuxer}), not a video recording")
        if not container.streams.video:
            raise RecordingError(path, "the file has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise RecordingError(path, "the video codec is not supported")
        yield container, stream


def _packets(container: InputContainer, stream: VideoStream, stats: _DecodeStats) -> Iterator[av.Packet]:
    """The stream's packets, ending (with ``stats.stopped`` set) at damaged container data
    instead of raising; the last packet is PyAV's empty flush packet when the end is reached."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError as exc:
            stats.stopped = _why(exc)
            return
        yield packet


def _mean_interval(first_pts: int, last_pts: int, count: int) -> float:
    """The duration assumed for a frame whose file states none (browser WebM blocks carry none):
    the mean frame interval so far, which one odd gap cannot skew much."""
    return (last_pts - first_pts) / (count - 1) if count > 1 else 0.0


def _first_frame(stream: VideoStream, packet: av.Packet | None, stats: _DecodeStats) -> VideoFrame | None:
    """Feed one packet (None: flush) to the decoder; its first output frame, if any."""
    try:
        frames = stream.codec_context.decode(packet)
    except (av.FFmpegError, EOFError):
        stats.bad_packets += 1
        return None
    return next((f for f in frames if f.pts is not None), None)


def _stopped(stats: _DecodeStats) -> str:
    return f" (reading stopped early: {stats.stopped})" if stats.stopped else ""


def _why(exc: BaseException) -> str:
    """An FFmpeg error's reason without the file name it carries (full paths stay out of logs)."""
    return getattr(exc, "strerror", None) or type(exc).__name__


__all__ = [
    "RecordingError",
    "RecordingInfo",
    "clockwise_rotation",
    "probe_recording",
    "resolve_end_times",
]
