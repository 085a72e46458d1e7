"""Lessons per minute for 1 and 2 workers, local and Ray, on the same short lessons.

    python bench/throughput.py [--lessons 10] [--no-ray] [--cache DIR]

The lessons (built once, cached in ``~/.cache/highlights/bench-throughput-v1``, outside the
repository): a 40 s student camera (480x360 VP8, 5 fps, scikit-image's astronaut framed like a
webcam, as in the demo lesson, so MTCNN finds a face in every frame and both face models run)
and a 45 s teacher camera (320x240 H.264); every lesson of the manifest has hard links to the
same two files, so every lesson costs the same. Real decoding, real MTCNN, the shipped weights.

Each configuration runs every lesson from scratch (a fresh OUT and SQLite database) through
:func:`highlights.lesson.run.run_manifest`, in this order, one after the other:

- local, 1 worker x 2 torch threads (what ``--workers 1`` does on 2 cores)
- local, 1 worker x 1 thread
- local, 2 workers x 1 thread (the default on 2 cores)
- Ray, 1 actor x 2 threads, and 2 actors x 1 thread (one local Ray, started once, 2 CPUs)

For each it prints wall seconds (worker start-up included: each worker imports torch and loads
the models once), lessons per minute, and CPU use: the machine's (from ``/proc/stat``, so other
processes count too) and, for the local executor, the run's own (this process and its workers)
with its CPU-seconds per lesson, which the load of other processes changes far less than the
wall time. ``--rounds N`` repeats the local 1- and 2-worker runs interleaved and compares the
best of each.
``/proc/loadavg`` before and after says how busy the machine was. Ratios measured in one run
are what to compare; the figures themselves move with the machine's load.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from highlights.batch.options import BatchOptions
from highlights.batch.run import run_manifest
from highlights.config import Settings
from highlights.media.synthetic import write_video

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "highlights" / "bench-throughput-v1"
STUDENT_S, TEACHER_S, FPS = 40, 45, 5.0
T0 = datetime(2026, 11, 30, 16, 0, 0, tzinfo=timezone.utc)


def build_lessons(folder: Path, count: int) -> Path:
    """The two recordings (once) and a manifest of ``count`` lessons using them."""
    folder.mkdir(parents=True, exist_ok=True)
    student, teacher = folder / "student.webm", folder / "teacher.mp4"
    if not (student.is_file() and teacher.is_file()):
        spec = importlib.util.spec_from_file_location("make_demo_lesson", REPO / "scripts" / "make_demo_lesson.py")
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)
        from skimage.data import astronaut

        face, background, rng = astronaut(), demo.room_background(np.random.default_rng(7)), np.random.default_rng(1)
        frames = (demo.student_frame(face, background, i / FPS, rng) for i in range(int(STUDENT_S * FPS)))
        write_video(student, frames, fps=FPS, codec="vp8")
        write_video(teacher, (demo.teacher_frame(i / FPS) for i in range(int(TEACHER_S * FPS))), fps=FPS, codec="h264")
    manifest = folder / f"manifest-{count}.csv"
    lines = ["lesson_id,role,path,started_at,ended_at"]
    for i in range(count):
        lesson = folder / f"B-{i:03d}"  # a manifest lists a file once: each lesson gets hard links
        lesson.mkdir(exist_ok=True)
        for source in (student, teacher):
            if not (lesson / source.name).exists():
                os.link(source, lesson / source.name)
        lines.append(f"B-{i:03d},teacher,B-{i:03d}/teacher.mp4,{T0.isoformat()},")
        lines.append(f"B-{i:03d},student,B-{i:03d}/student.webm,{(T0 + timedelta(seconds=2)).isoformat()},")
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def own_cpu() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def measure(name: str, manifest: Path, options: BatchOptions, local: bool) -> dict:
    out = Path(tempfile.mkdtemp(prefix="highlights-bench-"))
    try:
        busy0, total0 = machine_cpu()
        cpu0, start = own_cpu(), time.perf_counter()
        results = run_manifest(manifest, Settings(out_dir=out), batch=options)
        wall = time.perf_counter() - start
        busy1, total1 = machine_cpu()
        cpu = own_cpu() - cpu0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    bad = [r for r in results if r.status not in ("ok", "no_highlight")]
    if bad:
        raise SystemExit(f"{name}: {bad[0].lesson_id} {bad[0].status}: {bad[0].reason}")
    cores = os.cpu_count() or 1
    row = {
        "name": name, "wall": wall, "per_min": len(results) / (wall / 60),
        "machine": 100 * (busy1 - busy0) / max(1.0, total1 - total0) * cores,  # % of one core, like top
        "own": 100 * cpu / wall if local else None,
    }
    own = f"{row['own']:4.0f}% ({cpu / len(results):5.1f} CPU-s/lesson)" if row["own"] is not None else "   -"
    print(f"{name:<28} {wall:7.1f} s  {row['per_min']:6.2f} lessons/min   machine CPU {row['machine']:4.0f}%   "
          f"run's own CPU {own}   load {Path('/proc/loadavg').read_text().split()[0]}", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lessons", type=int, default=10)
    parser.add_argument("--no-ray", action="store_true", help="local executor only")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the local 1- and 2-worker runs, interleaved (a busy machine's load drifts)")
    args = parser.parse_args(argv)

    manifest = build_lessons(args.cache, args.lessons)
    print(f"{args.lessons} lessons of {STUDENT_S} s ({int(STUDENT_S * 1)} sampled frames each), "
          f"{os.cpu_count()} cores; load average before: {Path('/proc/loadavg').read_text().split()[:3]}")
    rows = [measure("local 1 worker x 2 threads", manifest, BatchOptions(workers=1, threads=2), True)]
    for _ in range(args.rounds):
        rows.append(measure("local 1 worker x 1 thread", manifest, BatchOptions(workers=1, threads=1), True))
        rows.append(measure("local 2 workers x 1 thread", manifest, BatchOptions(workers=2, threads=1), True))
    if not args.no_ray:
        try:
            import ray
        except ImportError:
            print("ray: not installed (pip install '.[ray]'); skipped")
        else:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 1024**2)
            try:
                rows.append(measure("ray 1 actor x 2 threads", manifest, BatchOptions(executor="ray", workers=1, threads=2), False))
                rows.append(measure("ray 2 actors x 1 thread", manifest, BatchOptions(executor="ray", workers=2, threads=1), False))
            finally:
                ray.shutdown()
    print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")
    by: dict[str, float] = {}
    for r in rows:  # the best of the rounds: the one the other processes disturbed least
        by[r["name"]] = max(by.get(r["name"], 0.0), r["per_min"])
    two = by["local 2 workers x 1 thread"]
    print(f"local: 2 workers = {two / by['local 1 worker x 2 threads']:.2f}x 1 worker x 2 threads, "
          f"{two / by['local 1 worker x 1 thread']:.2f}x 1 worker x 1 thread (target >= 1.6x on 2 cores)")
    if "ray 2 actors x 1 thread" in by:
        print(f"ray: 2 actors = {by['ray 2 actors x 1 thread'] / by['ray 1 actor x 2 threads']:.2f}x 1 actor x 2 threads; "
              f"ray 2 actors / local 2 workers = {by['ray 2 actors x 1 thread'] / two:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
