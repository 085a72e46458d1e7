"""Decoding speed: seconds of decoding per minute of video, and peak memory.

Makes a long 640x480 25 fps H.264 test pattern (``synthetic.write_test_pattern``, webcam-like
grain and bitrate) with a long (250) and a short (25) keyframe interval, and a VP8 WebM written
as a browser does (no duration, no cues), then times, each in a fresh process:

  sample_frames   highlights.media.decode.sample_frames at 1 fps over a lesson covering the whole file
  pyav_all_rgb    the plain loop: PyAV decode + to_ndarray("rgb24") of every frame
  cv2_read        cv2.VideoCapture.read() of every frame (BGR, as OpenCV returns it)
  probe           highlights.media.decode.probe_recording (demux only, decode the first frame)

and prints, per method, seconds per video-minute of wall-clock time and of CPU time (all the
process's threads; the fairer figure on a shared machine) and the process's peak RSS.

Then a late start: a lesson that begins 80% into the student's recording (8 minutes into a
10-minute file: the student joined before the teacher), sampled by sample_frames at 1 fps to the
end, decoding from the start (late_from_start, as before seeking existed) and with the seek to
the keyframe before the first sample (late_seek, the default); total wall and CPU seconds.

    nice -n 10 python bench/decoding.py                 # 10-minute files, a few minutes
    nice -n 10 python bench/decoding.py --quick         # 2-minute files, H.264 GOP 250 only
    nice -n 10 python bench/decoding.py --minutes 30 --keep /tmp/bench-videos

Figures depend on what else runs on the machine: compare methods within one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from highlights.media import synthetic

METHODS = ("sample_frames", "pyav_all_rgb", "cv2_read", "probe")
LATE_METHODS = ("late_from_start", "late_seek")
LATE_START = 0.8  # of the file: 8 minutes into a 10-minute recording


# --------------------------------------------------------------------------- measurements
# Each runs in its own process (``--run METHOD FILE``) so peak RSS belongs to it alone.


def run_sample_frames(path: Path, teacher_joins_s: float = 0.0) -> int:
    from highlights.core.lesson import LessonInfo, LessonInput, Recording, SourceRow
    from highlights.media.probe import resolve_end_times
    from highlights.stages.timeline import lesson_timeline, sample_frames

    start = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)
    joins = start + timedelta(seconds=teacher_joins_s)
    row = SourceRow(Path("bench.csv"), 2)
    student = Recording("BENCH", "student", path, start, None, row)
    teacher = Recording("BENCH", "teacher", path, joins, joins + timedelta(hours=24), row)
    lesson = resolve_end_times(LessonInput("BENCH", [student, teacher], LessonInfo("BENCH")))
    timeline = lesson_timeline(lesson)
    return sum(1 for _ in sample_frames(lesson, timeline, fps=1.0))


def run_late_seek(path: Path) -> int:
    from highlights.media.probe import probe_recording

    return run_sample_frames(path, teacher_joins_s=LATE_START * probe_recording(path).duration_s)


def run_late_from_start(path: Path) -> int:
    import math

    from highlights.media import decode as frames

    frames.SEEK_THRESHOLD_S = math.inf  # never seek: decode from the start, as before
    return run_late_seek(path)


def run_pyav_all_rgb(path: Path) -> int:
    import av

    count = 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frame.to_ndarray(format="rgb24")
            count += 1
    return count


def run_cv2_read(path: Path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(path))
    count = 0
    while True:
        ok, _ = capture.read()
        if not ok:
            break
        count += 1
    capture.release()
    return count


def run_probe(path: Path) -> int:
    from highlights.media.probe import probe_recording

    return probe_recording(path).frame_count


def measure(method: str, path: Path) -> dict:
    """Run one method in this process; seconds, frames and peak RSS (MiB)."""
    started = time.perf_counter()
    cpu = time.process_time()
    frames = globals()[f"run_{method}"](path)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "frames": frames,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure_in_child(method: str, path: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--run", method, str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise RuntimeError(f"{method} on {path.name} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- test videos


def make_videos(folder: Path, minutes: float, quick: bool) -> list[tuple[str, Path]]:
    seconds = minutes * 60
    wanted = [("H.264 MP4, GOP 250", "h264_gop250.mp4", "h264", 250)]
    if not quick:
        wanted += [("H.264 MP4, GOP 25", "h264_gop25.mp4", "h264", 25),
                   ("VP8 WebM, no duration/cues", "vp8_live.webm", "vp8", None)]
    videos = []
    for label, name, codec, gop in wanted:
        path = folder / name
        if not path.is_file():
            started = time.perf_counter()
            if codec == "vp8":
                plain = folder / "vp8_plain.webm"
                synthetic.write_test_pattern(plain, seconds, codec="vp8", gop=None)
                live_webm(plain, path)
                plain.unlink()
            else:
                synthetic.write_test_pattern(path, seconds, codec=codec, gop=gop)
            print(f"  wrote {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        videos.append((label, path))
    return videos


def live_webm(source: Path, target: Path) -> None:
    """Copy a WebM as a browser's MediaRecorder writes it: a live stream, no Duration, no Cues."""
    args = [synthetic.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-i", str(source), "-c", "copy", "-live", "1", "-f", "webm", "pipe:1"]
    with open(target, "wb") as out:
        subprocess.run(args, stdout=out, check=True)


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=None, help="video length (default 10; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="short files, H.264 GOP 250 only")
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep (and reuse) the test videos in")
    parser.add_argument("--run", nargs=2, metavar=("METHOD", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(measure(args.run[0], Path(args.run[1]))))
        return

    minutes = args.minutes if args.minutes is not None else (2.0 if args.quick else 10.0)
    with tempfile.TemporaryDirectory(prefix="highlights-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"making {minutes:g}-minute 640x480 25 fps test videos ...", file=sys.stderr)
        videos = make_videos(folder, minutes, args.quick)
        print(f"\nseconds per video-minute, wall / CPU (peak RSS), {minutes:g}-minute files")
        print(f"{'file':<30}" + "".join(f"{m:>26}" for m in METHODS))
        for label, path in videos:
            cells = []
            for method in METHODS:
                result = measure_in_child(method, path)
                wall, cpu = result["seconds"] / minutes, result["cpu_seconds"] / minutes
                cells.append(f"{wall:5.2f} / {cpu:4.2f} ({result['peak_rss_mib']:3.0f} MiB)")
            print(f"{label:<30}" + "".join(f"{c:>26}" for c in cells), flush=True)
        print(f"\nlate start: sample_frames at 1 fps from {LATE_START * minutes:g} min into the "
              f"{minutes:g}-minute files to their end; seconds in all, wall / CPU (peak RSS)")
        print(f"{'file':<30}" + "".join(f"{m:>26}" for m in LATE_METHODS) + f"{'CPU saved':>12}{'frames':>8}")
        for label, path in videos:
            results = [measure_in_child(method, path) for method in LATE_METHODS]
            cells = [f"{r['seconds']:5.2f} / {r['cpu_seconds']:5.2f} ({r['peak_rss_mib']:3.0f} MiB)" for r in results]
            if results[0]["frames"] != results[1]["frames"]:
                raise RuntimeError(f"{path.name}: {results[0]['frames']} frames decoding from the start, "
                                   f"{results[1]['frames']} with the seek")
            saved = 1 - results[1]["cpu_seconds"] / results[0]["cpu_seconds"]
            print(f"{label:<30}" + "".join(f"{c:>26}" for c in cells) + f"{saved:>12.0%}{results[1]['frames']:>8}",
                  flush=True)
        size = ", ".join(f"{p.name} {p.stat().st_size / 2**20:.0f} MiB" for _, p in videos)
        print(f"\nfiles: {size}")


if __name__ == "__main__":
    main()
