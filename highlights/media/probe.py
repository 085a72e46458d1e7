"""Probing recordings: what a media file holds (duration, size, rotation, codec) without
decoding it.

Below both :mod:`highlights.stages.timeline` (which asks for end times the manifest does not give) and
:mod:`highlights.media.decode` (which decodes the sampled seconds), so neither imports the other for
it. Offsets, rotation and damaged-file conventions are those of :mod:`highlights.media.decode`.

Measured with ``bench/decoding.py``: probing costs about 0.02 s per minute of video (it demuxes
every packet and decodes only the first frame).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import av
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from highlights.core.lesson import LessonInput, with_end_times
from highlights.media.container import (
    DecodeStats,
    RecordingError,
    clockwise_rotation,
    demux_packets,
    mean_interval,
    open_video,
    stopped_note,
)

log = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------- public API


def probe_recording(path: Path | str) -> RecordingInfo:
    """Duration, size, rotation and codec of a recording, by demuxing all its packets and
    decoding only the first frame (fast: no picture is decoded past the first)."""
    path = Path(path)
    with open_video(path) as (container, stream):
        time_base = stream.time_base
        first: VideoFrame | None = None
        last_pts: int | None = None
        last_duration = 0
        min_pts: int | None = None
        count = 0
        stats = DecodeStats()
        for packet in demux_packets(container, stream, stats):
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
            raise RecordingError(path, f"no video frame could be decoded{stopped_note(stats)}")
        if last_duration <= 0:  # no per-frame duration stored
            last_duration = mean_interval(min_pts, last_pts, count)
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


def _first_frame(stream: VideoStream, packet: av.Packet | None, stats: DecodeStats) -> VideoFrame | None:
    """Feed one packet (None: flush) to the decoder; its first output frame, if any."""
    try:
        frames = stream.codec_context.decode(packet)
    except (av.FFmpegError, EOFError):
        stats.bad_packets += 1
        return None
    return next((f for f in frames if f.pts is not None), None)


__all__ = ["RecordingError", "RecordingInfo", "probe_recording", "resolve_end_times"]
