"""Write synthetic recordings for tests, benchmarks and the demo lesson.

Real lesson recordings are personal data and never enter the repository, so every test builds
the videos it needs at run time. The files are written by the ffmpeg binary that ships inside the
``imageio-ffmpeg`` wheel (H.264, VP8 and VP9 are all in it), never by the decoder under test
(PyAV), so a shared misunderstanding of timestamps or rotation in one library cannot make a
broken decoder pass its tests.

The awkward cases of real recordings can each be asked for:

- ``vfr_timestamps``: variable frame rate, as WebRTC and phones produce;
- ``no_duration=True``: a WebM/Matroska file with no duration, no seek index (cues) and
  unknown-size segment, as browsers' MediaRecorder writes it;
- ``rotate``: phone-style rotation metadata (the picture is stored sideways and tagged);
- ``gop``: keyframe interval (webcams often use long GOPs, which makes seeking expensive);
- :func:`truncate_file` and :func:`corrupt_file`: a recording cut off by a crash or damaged in
  the middle.

:func:`index_frame` draws frames that carry their own number in large black and white blocks,
and :func:`read_index` reads it back after lossy compression, so a test can tell exactly which
source frame a decoder returned.

>>> frames = (index_frame(i) for i in range(50))
>>> write_video(tmp / "student.webm", frames, fps=25, codec="vp8", no_duration=True)  # doctest: +SKIP
>>> read_index(decoded_rgb_image)  # doctest: +SKIP
17
"""

from __future__ import annotations

import csv
import logging
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from highlights.files import atomic_path

log = logging.getLogger(__name__)

Codec = Literal["h264", "vp8", "vp9"]

_ENCODERS: dict[str, list[str]] = {
    # Fast settings: tests write many small files; quality only needs to keep the index blocks.
    "h264": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"],
    "vp8": ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", "10",
            "-pix_fmt", "yuv420p"],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", "30",
            "-row-mt", "1", "-pix_fmt", "yuv420p"],
}
_MATROSKA_SUFFIXES = {".webm", ".mkv"}
_MP4_SUFFIXES = {".mp4", ".mov", ".m4v"}

INDEX_BITS = 16
"""Bits drawn by :func:`index_frame`: frame numbers 0 .. 65535."""


def ffmpeg_exe() -> str:
    """The ffmpeg binary inside the imageio-ffmpeg wheel (libx264, libvpx and libvpx-vp9)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def write_video(
    path: Path | str,
    frames: Iterable[np.ndarray],
    fps: float = 25.0,
    codec: Codec = "h264",
    *,
    vfr_timestamps: Sequence[float] | None = None,
    rotate: int = 0,
    gop: int | None = None,
    no_duration: bool = False,
    faststart: bool = False,
    extra_args: Sequence[str] = (),
) -> Path:
    """Encode RGB frames into a video file with the bundled ffmpeg; returns ``path``.

    ``frames``: ``H x W x 3`` uint8 RGB arrays of one size (even width and height), streamed to
    ffmpeg one by one, so a long recording never sits in memory. They are what a viewer should
    see: with ``rotate`` they are stored turned and the file tagged to turn them back.

    ``fps``: the constant frame rate; with ``vfr_timestamps``, only the shown duration of the
    last frame (``1 / fps``).

    ``codec``: ``"h264"`` (``.mp4``/``.mov``/``.mkv``) or ``"vp8"``/``"vp9"`` (``.webm``/``.mkv``),
    chosen container by ``path``'s suffix.

    ``vfr_timestamps``: presentation time in seconds of each frame (starting at 0, strictly
    increasing, one per frame): variable frame rate. Millisecond precision in WebM.

    ``rotate``: 0, 90, 180 or 270: degrees *clockwise* a player turns the stored picture, like the
    ``rotate`` tag of a video from a phone held upright. Written as a display matrix.

    ``gop``: frames between keyframes (encoder default when None: 250 for x264, larger for VPx).

    ``no_duration``: WebM/Matroska only: write as a live stream to a pipe, as browsers'
    MediaRecorder does: no Duration element, no Cues (seek index), unknown segment size.

    ``faststart``: MP4 only: put the index (moov) first, as streaming services and some phones do;
    a truncated faststart MP4 still opens, a truncated plain MP4 does not.

    ``extra_args``: more ffmpeg output options, placed before the output.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if codec not in _ENCODERS:
        raise ValueError(f"codec must be one of {sorted(_ENCODERS)}, not {codec!r}")
    if suffix == ".webm" and codec == "h264":
        raise ValueError("WebM holds only VP8/VP9: use .mp4 or .mkv for H.264")
    if suffix in _MP4_SUFFIXES and codec != "h264":
        raise ValueError(f"write {codec} to .webm or .mkv, not {suffix}")
    if suffix not in _MATROSKA_SUFFIXES | _MP4_SUFFIXES:
        raise ValueError(f"unsupported container suffix {suffix!r}")
    if no_duration and suffix not in _MATROSKA_SUFFIXES:
        raise ValueError("no_duration applies to WebM/Matroska only")
    if faststart and suffix not in _MP4_SUFFIXES:
        raise ValueError("faststart applies to MP4 only")
    if rotate % 90 or rotate % 360 not in (0, 90, 180, 270):
        raise ValueError(f"rotate must be a multiple of 90 degrees, not {rotate}")
    rotate %= 360
    if fps <= 0:
        raise ValueError("fps must be positive")

    frames_iter = iter(frames)
    try:
        first = next(frames_iter)
    except StopIteration:
        raise ValueError("no frames to write") from None
    stored_first = _stored(first, rotate)
    height, width = stored_first.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"frame size {first.shape[1]}x{first.shape[0]} must be even for yuv420p")

    out_args = [*_ENCODERS[codec]]
    if gop is not None:
        # A fixed keyframe interval: no extra keyframes at scene cuts either.
        out_args += ["-g", str(gop), "-keyint_min", str(gop)]
        if codec == "h264":
            out_args += ["-sc_threshold", "0"]
    if suffix in _MP4_SUFFIXES:
        out_args += ["-video_track_timescale", "90000"]
        if faststart:
            out_args += ["-movflags", "+faststart"]
    out_args += list(extra_args)

    def stored_frames() -> Iterator[np.ndarray]:
        yield stored_first
        for frame in frames_iter:
            stored = _stored(frame, rotate)
            if stored.shape != stored_first.shape:
                raise ValueError(f"all frames must be {first.shape}, got {frame.shape}")
            yield stored

    with tempfile.TemporaryDirectory(prefix="highlights-synth-") as tmp_name:
        tmp = Path(tmp_name)
        # Rotation and the live (no duration) layout are applied by a second, copying pass, so
        # the encoder never sees the display matrix (ffmpeg would otherwise turn the pixels).
        needs_remux = bool(rotate) or no_duration
        encoded = tmp / f"encoded{suffix}" if needs_remux else path
        with (nullcontext(encoded) if needs_remux else atomic_path(encoded)) as target:
            if vfr_timestamps is None:
                _encode_cfr(stored_frames(), width, height, fps, out_args, target)
            else:
                _encode_vfr(stored_frames(), vfr_timestamps, fps, out_args, target, tmp)
        if needs_remux:
            _remux(encoded, path, rotate=rotate, no_duration=no_duration)
    log.debug("wrote %s (%s, %dx%d)", path.name, codec, width, height)
    return path


def write_test_pattern(
    path: Path | str,
    duration_s: float,
    size: tuple[int, int] = (640, 480),
    fps: float = 25.0,
    codec: Codec = "h264",
    *,
    gop: int | None = 250,
    noise: int = 6,
    bitrate: str = "1500k",
) -> Path:
    """A long moving test pattern (ffmpeg's ``testsrc2`` with webcam-like grain), made entirely
    inside ffmpeg: a 10-minute 640x480 file takes seconds, not the minutes that piping frames
    from Python would. For benchmarks; frames do not carry an index."""
    path = Path(path)
    width, height = size
    video_filter = f"noise=alls={noise}:allf=t" if noise else "null"
    args = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}",
        "-t", f"{duration_s}", "-vf", video_filter, *_ENCODERS[codec],
        # A webcam-like bitrate; grain at constant quality would make a file 5x larger.
        "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate,
    ]
    if gop is not None:
        args += ["-g", str(gop), "-keyint_min", str(gop)]
        if codec == "h264":
            args += ["-sc_threshold", "0"]
    with atomic_path(path) as tmp:
        _run([*args, str(tmp)])
    return path


def truncate_file(path: Path | str, keep: float, out: Path | str | None = None) -> Path:
    """Cut a file after ``keep`` of its bytes (a fraction in (0, 1)), like a recording whose
    writer crashed; written to ``out`` (default: in place)."""
    if not 0 < keep < 1:
        raise ValueError("keep is a fraction of the file in (0, 1)")
    path = Path(path)
    data = path.read_bytes()
    out = Path(out) if out is not None else path
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def corrupt_file(
    path: Path | str, at: float, length: int, *, seed: int = 0, out: Path | str | None = None
) -> Path:
    """Overwrite ``length`` bytes starting at fraction ``at`` of the file with random bytes
    (a damaged disk block or network chunk); written to ``out`` (default: in place)."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    noise = np.random.default_rng(seed).integers(0, 256, size=min(length, len(data) - start), dtype=np.uint8)
    data[start : start + len(noise)] = noise.tobytes()
    out = Path(out) if out is not None else path
    out.write_bytes(bytes(data))
    return out


def index_frame(index: int, size: tuple[int, int] = (160, 120), *, color: bool = True) -> np.ndarray:
    """An RGB frame that carries ``index`` (0 .. 2**16 - 1) as 16 black/white blocks in its top
    half, readable by :func:`read_index` after lossy compression; the lower half shows the
    number in digits for people and a background whose level changes with the index.

    ``size`` is (width, height). A frame turned sideways or upside down reads as another number
    (or fails a shape check), so the index also checks orientation.
    """
    if not 0 <= index < 2**INDEX_BITS:
        raise ValueError(f"index {index} does not fit in {INDEX_BITS} bits")
    width, height = size
    level = 40 + (index * 37) % 160
    image = np.full((height, width, 3), level, np.uint8)
    if color:
        image[height // 2 :, : width // 8] = (220, 40, 40)  # a red bar at the bottom left
    for bit, (y0, y1, x0, x1) in enumerate(_index_cells(width, height)):
        image[y0:y1, x0:x1] = 255 if index >> bit & 1 else 0
    scale = height / 160
    cv2.putText(image, str(index), (width // 6, int(height * 0.9)), cv2.FONT_HERSHEY_SIMPLEX,
                max(scale, 0.4), (255, 255, 0), max(1, int(2 * scale)), cv2.LINE_AA)
    return image


def read_index(image: np.ndarray) -> int:
    """The number drawn by :func:`index_frame` into an upright RGB frame of any size."""
    height, width = image.shape[:2]
    gray = image.mean(axis=2) if image.ndim == 3 else image
    value = 0
    for bit, (y0, y1, x0, x1) in enumerate(_index_cells(width, height)):
        # The middle of a block: compression smears only the edges.
        dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
        if gray[y0 + dy : y1 - dy, x0 + dx : x1 - dx].mean() > 128:
            value |= 1 << bit
    return value


def _index_cells(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Two rows of eight blocks filling the top half of the frame, least significant bit first."""
    cells = []
    for row in range(2):
        for col in range(8):
            cells.append((
                row * height // 4, (row + 1) * height // 4,
                col * width // 8, (col + 1) * width // 8,
            ))
    return cells


def _stored(frame: np.ndarray, rotate: int) -> np.ndarray:
    """What the file stores so that a player turning it ``rotate`` degrees clockwise shows
    ``frame``: the frame turned the other way."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frames must be H x W x 3 uint8 RGB, got {frame.dtype} {frame.shape}")
    return np.ascontiguousarray(np.rot90(frame, k=rotate // 90)) if rotate else frame


def _encode_cfr(
    frames: Iterator[np.ndarray], width: int, height: int, fps: float, out_args: list[str], target: Path
) -> None:
    args = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps}", "-i", "pipe:0",
        *out_args, str(target),
    ]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=errors)
        assert process.stdin is not None
        try:
            for frame in frames:
                process.stdin.write(frame.tobytes())
        except BrokenPipeError:
            pass  # ffmpeg died; its message comes below
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
        if process.wait():
            errors.seek(0)
            raise RuntimeError(f"ffmpeg failed writing {target.name}: {errors.read().decode(errors='replace')}")


def _encode_vfr(
    frames: Iterator[np.ndarray],
    timestamps: Sequence[float],
    fps: float,
    out_args: list[str],
    target: Path,
    tmp: Path,
) -> None:
    # ffmpeg's concat demuxer is the one way to hand it an explicit timestamp per frame: each
    # frame becomes an image file shown for its own duration.
    stamps = [float(t) for t in timestamps]
    if not stamps or stamps[0] != 0:
        raise ValueError("vfr_timestamps must start at 0")
    if any(b <= a for a, b in zip(stamps, stamps[1:])):
        raise ValueError("vfr_timestamps must be strictly increasing")
    lines = ["ffconcat version 1.0"]
    count = 0
    for count, frame in enumerate(frames, start=1):
        if count > len(stamps):
            raise ValueError(f"more frames than vfr_timestamps ({len(stamps)})")
        name = f"f{count:06d}.png"
        cv2.imwrite(str(tmp / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        end = stamps[count] if count < len(stamps) else stamps[-1] + 1 / fps
        # The image demuxer's default 25 fps time base would round every timestamp to 40 ms.
        lines += [f"file '{name}'", "option framerate 90000", f"duration {end - stamps[count - 1]:.6f}"]
    if count != len(stamps):
        raise ValueError(f"{len(stamps)} vfr_timestamps for {count} frames")
    # The concat demuxer drops the last entry's duration unless the entry is repeated.
    lines += [f"file 'f{count:06d}.png'", "option framerate 90000"]
    listing = tmp / "frames.ffconcat"
    listing.write_text("\n".join(lines) + "\n")
    _run([
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "concat", "-safe", "0", "-i", str(listing),
        "-fps_mode", "passthrough", "-frames:v", str(count), *out_args, str(target),
    ])


def _remux(source: Path, path: Path, *, rotate: int, no_duration: bool) -> None:
    args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    if rotate:
        # -display_rotation is counter-clockwise; ``rotate`` is clockwise like a phone's tag.
        args += ["-display_rotation", str((360 - rotate) % 360)]
    args += ["-i", str(source), "-c", "copy"]
    if no_duration:
        # A live stream to a pipe cannot seek back to write Duration, Cues or sizes: exactly the
        # layout of a browser's MediaRecorder file.
        args += ["-live", "1", "-f", "webm" if path.suffix.lower() == ".webm" else "matroska", "pipe:1"]
        with atomic_path(path) as tmp, open(tmp, "wb") as out:
            _run(args, stdout=out)
    else:
        with atomic_path(path) as tmp:
            _run([*args, str(tmp)])


def _run(args: list[str], stdout=None) -> None:
    result = subprocess.run(args, stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if result.returncode:
        raise RuntimeError(f"ffmpeg failed ({' '.join(args[-3:])}): {result.stderr.decode(errors='replace')}")


def write_lesson_files(
    folder: Path | str,
    lesson_id: str,
    lesson_start: datetime,
    recordings: Iterable[tuple[str, str, float, float]],
    info: dict[str, str],
) -> tuple[Path, Path]:
    """``manifest.csv`` for one lesson's ``recordings`` (file, role, seconds after
    ``lesson_start``, length in seconds), with both ends stated, and ``lessons.csv`` with its
    ``info`` (``student_name``, ``subject``, ``locale``, ``lesson_url``). Returns both paths."""
    folder = Path(folder)
    manifest, lessons = folder / "manifest.csv", folder / "lessons.csv"
    with atomic_path(manifest) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["lesson_id", "role", "path", "started_at", "ended_at"])
        for name, role, start, length in recordings:
            begin = lesson_start + timedelta(seconds=start)
            writer.writerow([lesson_id, role, name, begin.isoformat(), (begin + timedelta(seconds=length)).isoformat()])
    with atomic_path(lessons) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["lesson_id", *info])
        writer.writerow([lesson_id, *info.values()])
    return manifest, lessons


__all__ = [
    "Codec", "INDEX_BITS", "corrupt_file", "ffmpeg_exe", "index_frame", "read_index",
    "truncate_file", "write_lesson_files", "write_test_pattern", "write_video",
]
