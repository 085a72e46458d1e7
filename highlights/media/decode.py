"""Stage 3: decode the student's recordings into one upright RGB frame per sampled second.

Conventions (the same in every function here):

* **Offsets** are seconds into a recording, measured from the presentation timestamp (pts) of
  its *first decodable frame*: offset 0 is the first frame, whatever pts the file starts at.
  A recording's ``started_at`` in the manifest is the wall-clock time of that first frame.
* **The frame at an offset** is the one on screen at that moment: the last frame whose
  ``pts <= offset`` (within :data:`PTS_EPSILON_S`). It stays on screen until its own pts plus
  its duration; an offset at or past the end of what decodes has no frame.
* **Time comes from pts, never from frame counts**, so variable frame rate (WebRTC, phones)
  is handled like constant frame rate.
* **Images are upright**: the rotation a player would apply (the display matrix phones write,
  :attr:`av.VideoFrame.rotation`) is applied to the pixels. Flips in a display matrix (rare;
  mirroring is usually baked into the pixels) are not applied.
* **Damaged files**: a file that cannot be opened, has no video stream, or yields no frame at all
  raises :class:`RecordingError` (its ``path`` maps the error back to the manifest row). A
  truncated or partly corrupt file gives the frames that decode, with one warning per
  recording. Logs name files (base names) and counts only.

How: :func:`frames_at_points` decodes each recording in one pass, front to back, and converts to RGB
only the frames it returns (converting all of them would add about 40%). In H.264 and HEVC the
decoder drops the frames no other frame refers to where no offset can need them
(:class:`_Skipper`); every other frame is decoded, since each depends on the ones before it, and
where a dropped frame might have been the one on screen the recording is decoded again from
the start, dropping nothing, for the offsets left. Only the frame on screen is held, so memory stays flat for
a recording of any length. Where a recording's first sampled offset lies more than
:data:`SEEK_THRESHOLD_S` into it (a student who joined before the teacher), it seeks once to the
keyframe at or before that offset and decodes forward from there, falling back to decoding from
the start wherever the seek could change a frame (see :func:`_frames_after_seek`). Seeking per
sample pays only with short keyframe intervals, and webcams often write long or irregular ones;
:func:`read_frame_at`, which needs a single frame, does seek to the keyframe before it and
decodes forward (falling back to decoding from the start where the file has no usable seek
index).

Measured with ``bench/decoding.py`` (10-minute 640x480 25 fps files, 1.5 Mbit/s, on 2 cores
shared with a training job, so CPU seconds are the figure to compare; wall clock ran about
2x higher), CPU seconds per minute of video, H.264 GOP 250 / GOP 25 / VP8 WebM without duration
or cues: :func:`sample_frames` at 1 fps 1.7-1.8 / 1.6-1.8 / 1.2; converting every frame with
PyAV 2.4-2.7 / 2.5-2.6 / 1.7-1.9; OpenCV's ``read()`` loop 2.3-2.5 / 2.1 / 1.5-1.7 (it decodes
on several threads, so its wall clock is lower on an idle machine). Peak RSS of a whole
sample_frames process: 96 MiB, the same for 2- and 10-minute files. Probing: 0.02 s per minute.

>>> lesson = resolve_end_times(lesson)                         # doctest: +SKIP
>>> timeline = lesson_timeline(lesson)                         # doctest: +SKIP
>>> for frame in frames_at_points(plan.points):                # doctest: +SKIP
...     print(frame.ref.index, frame.ref.t, frame.ref.source.name, frame.ref.offset_s, frame.image.shape)
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import math
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple, TypeVar

import av
import numpy as np
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream

from highlights.core.frameref import FrameRef

# Probing lives below timeline and frames: the decoding helpers both use (opening a file, its
# packets, why a decode failed), and its public names, which stay importable from here.
from highlights.media.container import (
    DecodeStats,
    RecordingError,
    clockwise_rotation,
    demux_packets,
    ffmpeg_reason,
    mean_interval,
    open_video,
    stopped_note,
)

log = logging.getLogger(__name__)

PTS_EPSILON_S = 1e-4
"""Tolerance when comparing an offset with a pts: absorbs float and microsecond rounding, far
below any frame interval (4 ms at 240 fps)."""

SEEK_THRESHOLD_S = 5.0
""":func:`iter_frames_at` seeks (once, to the keyframe before it) when its first offset lies
further than this into the file, instead of decoding the seconds before it for nothing."""

_Item = TypeVar("_Item")


class FrameNotFoundError(RecordingError):
    """:func:`read_frame_at` was asked for an offset outside what the recording decodes to."""


@dataclass(frozen=True)
class SampledFrame:
    """One sampled second of the lesson: the plan's point ``ref`` (which frame: index, lesson
    time, recording and offset, see :class:`~highlights.core.frameref.FrameRef`) and ``image``, the
    frame on screen there, H x W x 3 uint8 RGB, upright."""

    ref: FrameRef
    image: np.ndarray = field(compare=False, repr=False)


class _Timed(NamedTuple):
    """A decoded frame with its pts and duration in seconds relative to the first frame."""

    pts: float
    duration: float
    frame: VideoFrame


# --------------------------------------------------------------------------- public API


def frames_at_points(points: Sequence[FrameRef]) -> Iterator[SampledFrame]:
    """The frames at ``points`` (:attr:`highlights.stages.timeline.LessonPlan.points`), in their order.

    Each recording is decoded once, streaming, and only while its points are still to come
    (recordings whose points interleave, after a reconnect, are decoded side by side). Points past
    the end of what a recording decodes are skipped, with one warning per recording. Raises
    :class:`RecordingError` for a recording that decodes to nothing.
    """
    points = list(points)
    per_path: dict[Path, list[FrameRef]] = {}
    for point in points:
        per_path.setdefault(point.source, []).append(point)
    readers = {path: iter_frames_at(path, [p.offset_s for p in pts]) for path, pts in per_path.items()}
    remaining = {path: len(pts) for path, pts in per_path.items()}
    try:
        for point in points:
            image = next(readers[point.source])
            remaining[point.source] -= 1
            if remaining[point.source] == 0:
                _finish(readers[point.source])  # logs its warning and closes the file now
            if image is not None:
                yield SampledFrame(point, image)
    finally:
        for reader in readers.values():
            reader.close()


PREFETCH_FRAMES = 32
""":func:`prefetch`'s queue: decoded frames waiting for scoring (32 x 0.9 MB at 640x480). The
decoder keeps ahead by this much while scoring works on the other core; more only costs memory."""


PREFETCH_GIL_SWITCH_S = 0.0001
"""Python's thread switch interval (``sys.setswitchinterval``) while :func:`prefetch` decodes.
The decoder needs the GIL back after every packet FFmpeg decodes without it (every frame of the
recording, ~21 per sampled second), and by default waits up to 5 ms for the scoring thread to
hand it over. Measured 2026-12-02, 15-minute bench lesson, ``run_manifest`` back to back:
12.3-14.3 s at the default 5 ms, 11.1-11.9 s at 0.1-1 ms."""

_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


@contextlib.contextmanager
def _short_gil_switch() -> Iterator[None]:
    """:data:`PREFETCH_GIL_SWITCH_S` while any prefetch runs in the process; then as it was."""
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, PREFETCH_GIL_SWITCH_S))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


def prefetch(frames: Iterable[_Item], size: int = PREFETCH_FRAMES) -> Iterator[_Item]:
    """``frames``, produced by a thread of its own into a bounded queue, so that decoding (FFmpeg
    and numpy release the GIL) overlaps with the consumer's work. Errors of the producer are
    raised in the consumer, at the point of the stream where they happened; stopping early
    (``close()``, an error downstream) stops the producer and closes ``frames``. While it runs,
    threads hand the GIL over sooner (:data:`PREFETCH_GIL_SWITCH_S`).
    """
    with _short_gil_switch():
        yield from _prefetched(frames, size)


def _prefetched(frames: Iterable[_Item], size: int) -> Iterator[_Item]:
    import queue

    items: queue.Queue = queue.Queue(maxsize=max(1, size))
    stop = threading.Event()
    done = object()

    def produce() -> None:
        source = iter(frames)
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        items.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put((done, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            items.put((done, error))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="highlights-decoder", daemon=True)
    worker.start()
    try:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                items.get_nowait()
            except queue.Empty:
                worker.join(0.05)


def iter_frames_at(
    path: Path | str, offsets: Sequence[float], *, seek_threshold_s: float | None = None
) -> Iterator[np.ndarray | None]:
    """For each offset (in non-decreasing order), the upright RGB frame on screen then, or None
    where the offset lies outside what decodes. Decodes ``path`` once and stops after the last
    offset. Raises :class:`RecordingError` if no frame decodes at all.

    Where the first offset lies more than ``seek_threshold_s`` (default
    :data:`SEEK_THRESHOLD_S`; ``math.inf`` never seeks) into the file, it first seeks to the
    keyframe at or before that offset and decodes forward from there; wherever that could give
    a different frame than decoding from the start (the seek fails or lands after the offset;
    an offset on the last frame: see :func:`_frames_after_seek`), it decodes from the start.

    >>> [read_index(img) for img in iter_frames_at("clip.webm", [0.0, 0.5, 1.0])]  # doctest: +SKIP
    [0, 12, 25]
    """
    path = Path(path)
    offsets = [float(o) for o in offsets]
    if any(b < a for a, b in zip(offsets, offsets[1:])):
        raise ValueError("offsets must be in non-decreasing order")
    if not offsets:
        return
    threshold = SEEK_THRESHOLD_S if seek_threshold_s is None else float(seek_threshold_s)
    stats = DecodeStats()
    done = outside = 0
    if offsets[0] > threshold:
        with open_video(path) as (container, stream):
            skipper = _Skipper.for_stream(stream, offsets)
            for image in _upright(_frames_after_seek(path, container, stream, offsets, stats, skipper)):
                done, outside = done + 1, outside + (image is None)
                yield image
    # From the start: dropping unneeded frames where the codec allows it, then, should that have
    # changed an answer (see _Skipper), once more decoding every frame for the offsets left.
    allow_skipping = True
    while done < len(offsets):
        stats = DecodeStats()  # this pass reads everything the passes before did, and more
        with open_video(path) as (container, stream):
            skipper = _Skipper.for_stream(stream, offsets[done:]) if allow_skipping else None
            # FFmpeg's default (slice) threading, not frame threads: these were no faster on 2
            # busy cores, and with them decode errors surface frames late or not at all (a
            # damaged VP8 keyframe decoded to garbage without an error; an error at the final
            # flush lost the frames still in flight), so damaged files would decode differently
            # from probing.
            frames = _timed(_decoded(container, stream, stats, skipper), stream.time_base, origin=None)
            for image in _upright(_checked(on_screen(frames, offsets[done:]), offsets[done:], skipper)):
                if image is None and stats.frames == 0:
                    raise RecordingError(path, f"no video frame could be decoded{stopped_note(stats)}")
                done, outside = done + 1, outside + (image is None)
                yield image
        if skipper is not None:
            log.debug("%s: %d packet(s) droppable (no offset needs them)", path.name, skipper.allowed_count)
        log.debug("%s: decoded %d frame(s) from the start", path.name, stats.frames)
        if skipper is None:
            break  # every frame was decoded: every offset is answered
        allow_skipping = False
    _warn_damage(path, stats, outside, len(offsets))


def read_frame_at(path: Path | str, offset_s: float) -> np.ndarray:
    """The upright RGB frame on screen ``offset_s`` seconds into ``path``: the same frame
    :func:`sample_frames` returns for that offset: the same reader, which seeks to the keyframe
    before it and decodes forward, and falls back to decoding from the start wherever a seek
    could give a different answer (a missed seek, an offset on the last frame). Raises
    :class:`FrameNotFoundError` for an offset outside the decodable media."""
    path = Path(path)
    [image] = iter_frames_at(path, [float(offset_s)], seek_threshold_s=0.0)  # runs to the end: closes, logs
    if image is None:
        raise FrameNotFoundError(path, f"no frame at {offset_s:.3f} s (outside the decodable video)")
    return image


# --------------------------------------------------------------------------- building blocks


def on_screen(
    frames: Iterable[tuple[float, float, _Item]], offsets: Sequence[float], epsilon: float = PTS_EPSILON_S
) -> Iterator[_Item | None]:
    """For each offset (sorted), the item on screen then, from ``(pts, duration, item)`` triples
    in increasing pts: the last with ``pts <= offset`` (within ``epsilon``), provided the offset
    is before its end (pts + duration); None otherwise. Pure; consumes ``frames`` only as far
    as the last offset needs.

    >>> list(on_screen([(0.0, 0.5, "a"), (0.5, 0.5, "b")], [0.0, 0.49, 0.5, 0.99, 1.0]))
    ['a', 'a', 'b', 'b', None]
    """
    index, count = 0, len(offsets)
    shown: tuple[float, float, _Item] | None = None
    for timed in frames:
        while index < count and offsets[index] + epsilon < timed[0]:
            yield shown[2] if shown is not None else None
            index += 1
        if index == count:
            return
        shown = timed
    end = shown[0] + shown[1] if shown is not None else -math.inf
    for offset in offsets[index:]:
        yield shown[2] if shown is not None and offset < end else None


def to_upright_rgb(frame: VideoFrame, reformatter: VideoReformatter | None = None) -> np.ndarray:
    """The frame as an H x W x 3 uint8 RGB array, turned as its display matrix says.
    ``reformatter``: one kept for a pass over a recording, so that FFmpeg's colour converter is
    set up once rather than per frame (the same pixels; 0.2-0.4 ms less per frame)."""
    image = (reformatter or VideoReformatter()).reformat(frame, format="rgb24").to_ndarray()
    turns = clockwise_rotation(frame) // 90
    return np.ascontiguousarray(np.rot90(image, k=-turns)) if turns else image


def _decoded(
    container: InputContainer, stream: VideoStream, stats: DecodeStats, skipper: _Skipper | None = None
) -> Iterator[VideoFrame]:
    """Every frame that decodes, in presentation order; packets that fail are counted, skipped.
    With ``skipper``, the decoder may drop the frames it says no offset needs (see :class:`_Skipper`)."""
    codec = stream.codec_context
    flushed = False
    droppable = False
    for packet in demux_packets(container, stream, stats):
        flushed = packet.size == 0
        if skipper is not None:
            allow = skipper.allows(packet)
            if allow != droppable:  # FFmpeg reads skip_frame per packet, also with threads
                codec.skip_frame = "NONREF" if allow else "DEFAULT"
                droppable = allow
        try:
            frames = codec.decode(packet)
        except av.FFmpegError:
            stats.bad_packets += 1
            continue
        stats.frames += len(frames)
        stats.corrupt_frames += sum(frame.is_corrupt for frame in frames)
        if skipper is not None:
            skipper.decoded(frames)
        yield from frames
    if not flushed:  # demuxing stopped early: the decoder still holds frames
        try:
            frames = codec.decode(None)
        except (av.FFmpegError, EOFError):
            return
        stats.frames += len(frames)
        stats.corrupt_frames += sum(frame.is_corrupt for frame in frames)
        if skipper is not None:
            skipper.decoded(frames)
        yield from frames


SKIP_WINDOW_S = 0.5
""":class:`_Skipper` lets the decoder drop a frame only when it lies more than a window before
the next offset still to come: :data:`SKIP_WINDOW_FRAMES` frame intervals of the stream's
average rate, at most this (the window where the rate is unknown). The frame on screen at an
offset is then decoded unless the frame after it comes later than the window (a stalled camera,
a jittery rate): that case is caught and decoded again."""

SKIP_WINDOW_FRAMES = 2.0
"""The window in frame intervals: the frame on screen at an offset lies within one interval
before it at a steady rate; the second absorbs a webcam's jitter. On the 45-minute bench
lesson (x264 at 15 and 25 fps: windows of 0.13 and 0.08 s; VP8 decodes whole) 42,407 of its
57,500 frames are decoded instead of 49,038 with a fixed 0.5 s (39,892 if every non-reference
frame were dropped), and the decoder's CPU for its 2,660 samples falls 15% (17.9 / 19.5 ->
15.0 / 17.3 s, interleaved; 2026-12-02), the same frames pixel for pixel."""


SKIPPABLE_CODECS = frozenset({"h264", "hevc"})
"""Codecs whose streams carry frames no other frame refers to (B-frames), which FFmpeg's
``skip_frame = NONREF`` drops without decoding: about half the frames of an x264 stream, half
its decode CPU at 1 sample/s (10-minute bench lesson: 1.22 -> 0.65 CPU-s for a 15 fps MP4).
VP8/VP9 webcam streams reference every frame: nothing to drop, so they are decoded as before."""


class _Skipper:
    """Which packets the decoder may drop (FFmpeg's ``skip_frame = NONREF``: only frames no other
    frame refers to are dropped; keyframes and reference frames always decode), for a pass over
    ``offsets`` (seconds from the first frame, sorted).

    A packet may be dropped when its pts lies more than ``window_s`` (see :data:`SKIP_WINDOW_S`) before the next
    offset, or after the last one. The frame on screen at an offset (the last with pts <= it) is
    therefore always decoded, except where a frame interval is longer than the window; then a
    frame dropped between the answer and the offset shows it, and :func:`_checked` stops the
    pass so that the offsets left are answered by decoding every frame: the same frames as
    without skipping, always.
    """

    def __init__(self, time_base: Fraction, offsets: Sequence[float], window_s: float = SKIP_WINDOW_S) -> None:
        self.seconds = float(time_base)
        self.window_s = window_s
        self.offsets = list(offsets)
        self.origin: int | None = None  # the first frame's pts (set by the caller after a seek)
        self.allowed_count = 0
        # (pts, end) in s of the packets the decoder could drop, sorted, and only those after the
        # last answer: offsets only increase, so nothing before it can matter again.
        self._allowed: list[tuple[float, float]] = []
        self._last_decoded: float | None = None

    @classmethod
    def for_stream(cls, stream: VideoStream, offsets: Sequence[float]) -> _Skipper | None:
        name = getattr(stream.codec_context, "name", "")
        if name not in SKIPPABLE_CODECS:
            return None
        rate = stream.average_rate or stream.guessed_rate
        window = min(SKIP_WINDOW_S, SKIP_WINDOW_FRAMES / float(rate)) if rate and rate > 0 else SKIP_WINDOW_S
        return cls(stream.time_base, offsets, window)

    def allows(self, packet: av.Packet) -> bool:
        if self.origin is None or packet.pts is None or packet.is_keyframe:
            return False  # until the first frame sets the clock, everything decodes
        t = (packet.pts - self.origin) * self.seconds
        if t <= 0:
            return False
        ahead = bisect.bisect_left(self.offsets, t - PTS_EPSILON_S)
        allow = ahead == len(self.offsets) or self.offsets[ahead] - t > self.window_s
        if allow:
            end = t + packet.duration * self.seconds if packet.duration else math.inf
            bisect.insort(self._allowed, (t, end))  # decode order: nearly always at the end
            self.allowed_count += 1
        return allow

    def decoded(self, frames: Sequence[VideoFrame]) -> None:
        for frame in frames:
            if frame.pts is None:
                continue
            if self.origin is None:
                self.origin = frame.pts
            self._last_decoded = (frame.pts - self.origin) * self.seconds

    def dropped_before(self, frame: VideoFrame | None, offset: float) -> bool:
        """Whether a frame the decoder may have dropped could be the one on screen at ``offset``
        instead of ``frame``, the answer from the frames that decoded. For a frame: some droppable
        frame lies between it and the offset (one that did decode would have been the answer).
        For None past the last decoded frame: the last droppable frame after it (its end from the
        packet's duration; none stated: assume it could last) still shows at the offset."""
        if frame is not None:
            after = (frame.pts - self.origin) * self.seconds if frame.pts is not None and self.origin is not None else -math.inf
            first = bisect.bisect_right(self._allowed, (after + PTS_EPSILON_S, math.inf))
            del self._allowed[:first]  # before this answer: no later offset can be shown them
            return bool(self._allowed) and self._allowed[0][0] <= offset + PTS_EPSILON_S
        if self._last_decoded is None:
            return False
        upto = bisect.bisect_right(self._allowed, (offset + PTS_EPSILON_S, math.inf))
        if upto == 0 or self._allowed[upto - 1][0] <= self._last_decoded + PTS_EPSILON_S:
            return False
        return offset < self._allowed[upto - 1][1]


def _checked(
    frames: Iterable[VideoFrame | None], offsets: Sequence[float], skipper: _Skipper | None
) -> Iterator[VideoFrame | None]:
    """``frames`` (one per offset) until one may differ from what decoding every frame gives
    (:meth:`_Skipper.dropped_before`); the offsets left are for a pass without skipping."""
    for offset, frame in zip(offsets, frames):
        if skipper is not None and skipper.dropped_before(frame, offset):
            log.debug("a dropped frame may be the one on screen at %.3f s; decoding every frame from here", offset)
            return
        yield frame


def _timed(frames: Iterable[VideoFrame], time_base: Fraction, origin: int | None) -> Iterator[_Timed]:
    """Frames with pts/duration in seconds from ``origin`` (a pts; None: the first frame's).
    Frames without pts, or whose pts does not increase (damaged data), are dropped."""
    seconds = float(time_base)  # float, not Fraction, arithmetic per frame: far below epsilon
    first_pts: int | None = None
    last_pts: int | None = None
    count = 0
    for frame in frames:
        if frame.pts is None or (last_pts is not None and frame.pts <= last_pts):
            continue
        if first_pts is None:
            first_pts = frame.pts
        if origin is None:
            origin = frame.pts
        last_pts, count = frame.pts, count + 1
        stated = frame.duration or 0
        duration = stated if stated > 0 else mean_interval(first_pts, last_pts, count)
        yield _Timed((frame.pts - origin) * seconds, duration * seconds, frame)


def _upright(frames: Iterable[VideoFrame | None]) -> Iterator[np.ndarray | None]:
    """Each frame as an upright RGB image (None stays None), converting each frame once: a frame
    shown for several offsets (low or variable rate) comes back as copies."""
    shown: VideoFrame | None = None
    image: np.ndarray | None = None
    reformatter = VideoReformatter()
    for frame in frames:
        if frame is None:
            yield None
        elif frame is shown and image is not None:
            yield image.copy()
        else:
            shown, image = frame, to_upright_rgb(frame, reformatter)
            yield image


def _frames_after_seek(
    path: Path, container: InputContainer, stream: VideoStream, offsets: Sequence[float], stats: DecodeStats,
    skipper: _Skipper | None = None,
) -> Iterator[VideoFrame | None]:
    """The frames on screen at a leading run of ``offsets`` (what :func:`on_screen` gives when
    decoding from the start), decoded forward from the keyframe at or before ``offsets[0]``.

    Stops early, leaving the rest of the offsets to a decode from the start, wherever the frames
    after the seek alone might not give the same answer:

    * the seek fails, or its first frame is not a keyframe, lies after ``offsets[0]`` (a file
      without a usable seek index, or any oddity of the demuxer) or is the first frame anyway;
    * an offset may lie on the last frame, after which nothing decodes. Whether it does depends
      on that frame's duration, which a seek can change: FFmpeg's demuxer estimates durations
      the file does not state for packets read after a seek, not for those it read while probing
      the stream (the first few seconds of a WebM), and without one :func:`_timed` assumes the
      mean frame interval since the first frame it saw. So an offset before the last frame's pts
      + the larger of its duration here and (pts / frames seen here), which bounds the mean
      interval over the whole file, is answered from the start; one beyond is past the end
      either way.
    """
    time_base = stream.time_base
    first = next((f for f in _decoded(container, stream, stats) if f.pts is not None), None)
    if first is None:
        return  # the decode from the start raises the RecordingError
    try:
        container.seek(max(first.pts + math.floor(offsets[0] / time_base), first.pts),
                       stream=stream, backward=True, any_frame=False)
    except av.FFmpegError as exc:
        log.debug("%s: seek to %.3f s failed (%s); decoding from the start", path.name, offsets[0], ffmpeg_reason(exc))
        return
    if skipper is not None:
        skipper.origin = first.pts
    frames = _timed(_decoded(container, stream, stats, skipper), time_base, origin=first.pts)
    landed = next(frames, None)
    if landed is None or not 0 < landed.pts <= offsets[0] + PTS_EPSILON_S or not landed.frame.key_frame:
        kind = "nothing" if landed is None else "a keyframe" if landed.frame.key_frame else "a non-key frame"
        where = kind if landed is None else f"{kind} at {landed.pts:.3f} s"
        log.debug("%s: seek to %.3f s reached %s; decoding from the start", path.name, offsets[0], where)
        return

    last, count = landed, 1

    def resumed() -> Iterator[_Timed]:
        nonlocal last, count
        yield landed
        for timed in frames:
            last, count = timed, count + 1
            yield timed

    for offset, frame in zip(offsets, on_screen(resumed(), offsets)):
        # on_screen answers an offset at or past the last frame's pts once the frames run out.
        end_at_most = last.pts + max(last.duration, last.pts / count) + PTS_EPSILON_S
        if last.pts <= offset + PTS_EPSILON_S < end_at_most + PTS_EPSILON_S:
            log.debug("%s: %.3f s may lie on the last frame, whose duration a seek can change; "
                      "decoding from the start", path.name, offset)
            return
        if skipper is not None and skipper.dropped_before(frame, offset):
            log.debug("%s: a dropped frame may be the one on screen at %.3f s; decoding from the start", path.name, offset)
            return
        yield frame
    log.debug("%s: seeked to the keyframe at %.3f s for %.3f s; decoded %d frame(s)",
              path.name, landed.pts, offsets[0], stats.frames)


def _finish(reader: Iterator[object]) -> None:
    for _ in reader:  # nothing is left to yield; runs the reader's closing code
        pass


def _warn_damage(path: Path, stats: DecodeStats, outside: int, requested: int) -> None:
    if outside:
        log.warning("%s: %d of %d sampled offset(s) lie past the end of the decodable video; skipped",
                    path.name, outside, requested)
    if stats.bad_packets or stats.corrupt_frames or stats.stopped:
        log.warning("%s: damaged: %d packet(s) did not decode, %d frame(s) decoded with errors%s; "
                    "used the frames that did", path.name, stats.bad_packets, stats.corrupt_frames, stopped_note(stats))


__all__ = [
    "PTS_EPSILON_S",
    "SEEK_THRESHOLD_S",
    "FrameNotFoundError",
    "RecordingError",
    "SampledFrame",
    "PREFETCH_FRAMES",
    "clockwise_rotation",
    "frames_at_points",
    "prefetch",
    "iter_frames_at",
    "on_screen",
    "read_frame_at",
    "to_upright_rgb",
]
