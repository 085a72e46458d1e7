"""The low-level readers that probing and decoding share: opening a recording, demuxing it
without raising at damaged data, and the error a recording that cannot be read becomes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream


class RecordingError(Exception):
    """A recording that cannot be opened or decoded at all. ``path`` is the media file; the
    message names its base name (never the folders, which may hold personal data)."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{self.path.name}: {message}")

    def __reduce__(self):  # picklable across process pools despite the two-argument __init__
        return type(self), (self.path, self.message)


@dataclass
class DecodeStats:
    """What went wrong while decoding one file, for its single warning."""

    frames: int = 0
    bad_packets: int = 0
    corrupt_frames: int = 0  # decoded with concealed errors (FFmpeg's corrupt flag)
    stopped: str | None = None  # why demuxing ended before the end of the file


def clockwise_rotation(frame: VideoFrame) -> int:
    """Degrees (0, 90, 180, 270) clockwise a player turns this frame: FFmpeg's display
    matrix angle is counter-clockwise, in [-180, 180]."""
    return round(-frame.rotation / 90) % 4 * 90


STILL_IMAGE_DEMUXERS = frozenset({"image2", "image2pipe"})
"""FFmpeg's demuxers of still pictures, besides its ``*_pipe`` ones (``png_pipe``,
``webp_pipe``, ...): ``image2`` reads a JPEG file, whatever its name."""


@contextmanager
def open_video(path: Path) -> Iterator[tuple[InputContainer, VideoStream]]:
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as exc:  # av's FileNotFoundError is both
        hint = " (not a video file, or an MP4 cut off before its index was written)"
        hint = hint if isinstance(exc, av.InvalidDataError) else ""
        raise RecordingError(path, f"cannot open: {ffmpeg_reason(exc)}{hint}") from exc
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


def demux_packets(container: InputContainer, stream: VideoStream, stats: DecodeStats) -> Iterator[av.Packet]:
    """The stream's packets, ending (with ``stats.stopped`` set) at damaged container data
    instead of raising; the last packet is PyAV's empty flush packet when the end is reached."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError as exc:
            stats.stopped = ffmpeg_reason(exc)
            return
        yield packet


def mean_interval(first_pts: int, last_pts: int, count: int) -> float:
    """The duration assumed for a frame whose file states none (browser WebM blocks carry none):
    the mean frame interval so far, which one odd gap cannot skew much."""
    return (last_pts - first_pts) / (count - 1) if count > 1 else 0.0


def stopped_note(stats: DecodeStats) -> str:
    return f" (reading stopped early: {stats.stopped})" if stats.stopped else ""


def ffmpeg_reason(exc: BaseException) -> str:
    """An FFmpeg error's reason without the file name it carries (full paths stay out of logs)."""
    return getattr(exc, "strerror", None) or type(exc).__name__


__all__ = [
    "STILL_IMAGE_DEMUXERS",
    "DecodeStats",
    "RecordingError",
    "clockwise_rotation",
    "demux_packets",
    "ffmpeg_reason",
    "mean_interval",
    "open_video",
    "stopped_note",
]
