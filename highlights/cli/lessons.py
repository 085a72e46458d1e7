"""``highlights run``, ``withdraw`` and ``timeline``: the lessons' commands."""

from __future__ import annotations

import logging
import signal
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from highlights.cli.common import (
    InputLocation,
    MissingDatabase,
    OutFolder,
    UnusableInput,
    UnusableWeights,
    check_out_dir,
    database_option,
    out_settings,
)

log = logging.getLogger(__name__)


class _BarProgress:
    """Progress on a terminal: one bar over lessons, the current lesson's stage and frames."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar = None

    def batch_started(self, total: int) -> None:
        self.bar = self._tqdm(total=total, unit="lesson", dynamic_ncols=True, leave=True)

    def lesson_started(self, lesson_id: str, index: int, total: int) -> None:
        self.bar.set_description(lesson_id)

    def stage(self, lesson_id: str, stage: str) -> None:
        self.bar.set_postfix_str(stage)

    def frames(self, lesson_id: str, done: int, total: int | None) -> None:
        self.bar.set_postfix_str(f"scores: {done} frames")

    def lesson_finished(self, result) -> None:
        self.bar.set_postfix_str(result.status)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _table(rows: list[tuple[str, ...]], statuses: list[str]) -> list[str]:
    """Rows as aligned columns (the last one, a free-text note, unpadded), then a line counting
    the statuses ("2 ok, 1 failed")."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows]
    counts = Counter(statuses)
    lines.append(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no lessons")
    return [line.rstrip() for line in lines]


def _summary_table(results, elapsed: dict[str, float]) -> str:
    rows = [("LESSON", "STATUS", "FRAMES", "GIF KB", "SECONDS", "NOTE")]
    for r in results:
        note = ("already done, skipped" if r.status != "withdrawn" else "withdrawn, skipped") if r.skipped else (r.reason or "")
        if r.status == "busy":
            note = "another run is working on it (not a failure; --wait waits for it)"
        parts = ([note] if note else []) + ([f"warning: {w}" for w in r.warnings] if not r.skipped else [])
        note = " ".join("; ".join(parts).split())  # one line per lesson, whatever a driver's message holds
        kb = f"{r.gif_bytes / 1000:.0f}" if r.gif_bytes else "-"
        seconds = f"{elapsed.get(r.lesson_id, 0.0):.1f}"
        rows.append((r.lesson_id, r.status, str(len(r.frames)), kb, seconds, note))
    return "\n".join(_table(rows, [r.status for r in results]))


def _check_weights(settings: Any) -> None:
    """Weights set by the config or the environment are loaded once here, so that a wrong path
    or a file that is no weights file is a bad setting (exit 2, before any lesson) rather than
    every worker failing to start. The shipped weights are checked by the workers as before."""
    from highlights.models.face_cnn import WeightsError, load_face_model

    for task, path in (("smile", settings.smile_weights), ("age", settings.age_weights)):
        if path is not None:
            try:
                load_face_model(task, path)
            except WeightsError as error:
                raise UnusableWeights(str(error)) from error


class _StopOnSigterm:
    """SIGTERM (``systemctl stop``, a unit's timeout, ``kill``) ends the run as Ctrl-C would:
    the workers are stopped and the run's record says ``interrupted`` with what was done, exit
    status 143. Without it the process died at once and its record stayed ``running``, like a
    SIGKILL's. ``install()`` returns the handler it replaced."""

    def __init__(self) -> None:
        self.received = False

    def install(self) -> Any:
        return signal.signal(signal.SIGTERM, self._stop)

    def _stop(self, signum: int, frame: Any) -> None:
        # Once: a second SIGTERM while the workers are being stopped and the record written
        # would cut that short and leave the record 'running' (systemd sends SIGKILL in the end).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.received = True
        log.warning("SIGTERM: stopping the run; the lessons not finished are done by the next one")
        raise SystemExit(EXIT_SIGTERM)


EXIT_SIGTERM = 128 + signal.SIGTERM
"""The exit status of a run stopped by SIGTERM, as a shell reports a process it killed (143)."""


@click.command("run")
@click.argument("manifest", type=InputLocation())
@click.option("--lesson", "lesson_ids", multiple=True, metavar="ID", help="Run only this lesson (repeatable).")
@click.option("--lessons", "lessons_path", type=InputLocation(),
              help="Lesson metadata CSV (student name, subject, locale, lesson URL); a file or an s3:// URL.")
@click.option("--out", "out_dir", type=OutFolder(),
              help="Output folder (default: out), or a bucket prefix s3://BUCKET/PREFIX (needs --db); "
                   "results go to OUT/<lesson_id>/.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --out s3://...: the local folder lessons run in (default: a private temporary one).")
@click.option("--db", "db_url", metavar="URL",
              help="SQLAlchemy URL (default: sqlite:///OUT/.highlights/highlights.sqlite; OUT/highlights.sqlite where that exists).")
@click.option("--force", is_flag=True, default=None, help="Redo lessons already done with the same inputs.")
@click.option("--timezone", metavar="ZONE", help="IANA zone for manifest times without an offset.")
@click.option("--public-base-url", metavar="URL",
              help="Where OUT/ (or the --publish prefix) is served; the GIF's public URL starts with it.")
@click.option("--publish", metavar="s3://BUCKET/PREFIX",
              help="Upload each GIF to BUCKET under PREFIX/<lesson_id>/ (needs --public-base-url).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML settings file (see README, Configuration).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@click.option("--workers", type=click.IntRange(min=0), default=None, metavar="N",
              help="Worker processes (Ray: actors); default one per core; 0 runs every lesson in this process.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local worker processes, or Ray actors (needs the ray extra).")
@click.option("--ray-address", metavar="ADDR", help="Ray cluster to join (default: a local Ray for this run).")
@click.option("--threads", type=click.IntRange(min=1), default=None, metavar="N",
              help="Torch threads per worker (default: cores / workers; Ray: 1).")
@click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True,
              help="Extra attempts after a lost worker (SIGKILL, lost node) or a database error.")
@click.option("--time-limit", "time_limit_s", type=click.FloatRange(min=0), default=1800, show_default=True,
              metavar="S", help="A lesson running longer is stopped and recorded failed (0: no limit).")
@click.option("--wait", is_flag=True, help="Wait for lessons another run is doing instead of reporting them busy.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON object per log line (time, level, run_id, lesson_id, stage, event, duration_s).")
def run_command(manifest, lesson_ids, lessons_path, out_dir, work_dir, db_url, force, timezone, public_base_url, publish,
                config_path, progress, workers, executor, ray_address, threads, retries, time_limit_s, wait,
                log_format) -> None:
    """Run every lesson of MANIFEST (or those named by --lesson): GIF, snippet, report, database row.

    Exit status 0 when every lesson ended ok, no_highlight, no_lesson or busy (another run is
    doing it); 1 when one failed or a manifest row was unusable; 2 for bad options or an
    unreadable manifest.
    """
    import sys
    import time

    from highlights.batch.dispatch import run_summary
    from highlights.batch.options import BatchOptions
    from highlights.batch.run import manifest_problems, run_manifest
    from highlights.config import ConfigError, load_settings
    from highlights.inputs.manifest import InputError, read_manifest
    from highlights.lesson.graph import Progress
    from highlights.logs import configure as configure_logging
    from highlights.persist.store import StoreError

    if log_format == "json":  # a machine reads it: the run's events (info) unless -v asked for more
        level = logging.getLogger().level
        configure_logging("json", min(level, logging.INFO) if level else logging.INFO)
    batch = BatchOptions(executor=executor, workers=workers, threads=threads, retries=retries,
                         time_limit_s=time_limit_s or None, wait=wait, ray_address=ray_address)

    try:
        settings = load_settings(
            config_path, db_url=db_url, force=force, timezone=timezone,
            email__public_base_url=public_base_url, publish=publish, **out_settings(out_dir, work_dir),
        )
        settings.check()
    except (ConfigError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    database = database_option(settings.database_url)
    check_out_dir(settings.lessons_root, private=settings.out_url is not None)
    _check_weights(settings)
    try:
        parsed = read_manifest(manifest, lessons_path=lessons_path, timezone=settings.timezone)
    except InputError as error:
        raise UnusableInput(str(error)) from error

    show_bar = sys.stderr.isatty() if progress is None else progress
    bar = _BarProgress() if show_bar else None
    elapsed: dict[str, float] = {}

    class _Timed(Progress):  # times each lesson for the summary; draws the bar if there is one
        def batch_started(self, total):
            bar and bar.batch_started(total)

        def lesson_started(self, lesson_id, index, total):
            elapsed[lesson_id] = time.perf_counter()
            bar and bar.lesson_started(lesson_id, index, total)

        def stage(self, lesson_id, stage):
            bar and bar.stage(lesson_id, stage)

        def frames(self, lesson_id, done, total):
            bar and bar.frames(lesson_id, done, total)

        def lesson_finished(self, result):
            elapsed[result.lesson_id] = time.perf_counter() - elapsed.get(result.lesson_id, time.perf_counter())
            bar and bar.lesson_finished(result)

    from contextlib import nullcontext

    from tqdm.contrib.logging import logging_redirect_tqdm

    started = time.perf_counter()
    sigterm = _StopOnSigterm()
    previous_term = sigterm.install()
    try:
        with logging_redirect_tqdm() if bar else nullcontext():
            results = run_manifest(parsed, settings, list(lesson_ids) or None, progress=_Timed(), batch=batch)
    except StoreError as error:  # the database cannot be opened: nothing can be recorded
        raise click.ClickException(str(error)) from error
    except Exception as error:  # nothing can run (the shipped weights cannot be loaded)
        raise click.ClickException(f"{type(error).__name__}: {error}") from error
    except SystemExit:
        if sigterm.received:  # Ray's wait turns the signal into an exit of its own, status 1
            raise SystemExit(EXIT_SIGTERM) from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if bar:
            bar.close()

    click.echo(_summary_table(results, elapsed))
    summary = run_summary(results, time.perf_counter() - started)
    click.echo(f"run {batch.run_id}: {summary['elapsed_s']:.1f} s, {summary['lessons_per_minute']:.2f} lessons/minute"
               f" ({executor} executor)")
    problems = manifest_problems(parsed)
    for problem in problems:
        click.echo(problem, err=True)  # "manifest problem: ..." or "lessons file problem: ..."
    click.echo(f"results: {settings.out_url or settings.out_dir}/<lesson_id>/result.json; database: {database}")
    for r in [r for r in results if r.gif][:10]:
        click.echo(f"{r.lesson_id}: gif {r.gif_path}  snippet {r.path(r.snippet)}  report {r.path(r.report)}")
    if any(r.status == "failed" for r in results) or problems:
        sys.exit(1)


@click.command("withdraw")
@click.argument("lesson_ids", nargs=-1, required=True, metavar="LESSON_ID...")
@click.option("--out", "out_dir", type=OutFolder(),
              help="Output folder (or s3://BUCKET/PREFIX) of the runs (default: out).")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --out s3://...: the local folder to work in (default: a private temporary one).")
@click.option("--db", "db_url", metavar="URL", help="SQLAlchemy URL (default: as for `highlights run`).")
@click.option("--publish", metavar="s3://BUCKET/PREFIX",
              help="Where the runs published the GIFs (as for `highlights run`): the object is deleted.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML settings file (see README, Configuration).")
def withdraw_command(lesson_ids, out_dir, work_dir, db_url, publish, config_path) -> None:
    """Withdraw the highlight of each LESSON_ID on purpose: delete its GIF and snippets, mark its
    result.json and database row `withdrawn` (the campaign's query then finds nothing). Later runs
    skip the lesson; `highlights run MANIFEST --lesson ID --force` makes a new GIF (a new name).

    Exit status 0 when every lesson was withdrawn, 1 when one had nothing to withdraw or failed
    or the database cannot be opened; 2 for bad options, a database URL that does not parse or
    a SQLite file that does not exist (nothing is created).
    """
    import sys

    from highlights.config import ConfigError, load_settings
    from highlights.lesson.withdraw import withdraw_lesson
    from highlights.persist.store import NoDatabase, ResultStore, StoreError

    try:
        settings = load_settings(config_path, db_url=db_url, publish=publish, **out_settings(out_dir, work_dir))
        settings.check_outputs(linked=False)
    except (ConfigError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    database_option(settings.database_url)
    try:
        # create=False: a typo in --db must not create an empty database and withdraw into it.
        store = ResultStore(settings.database_url, create=False)
    except NoDatabase as error:  # its message names the database, password masked
        raise MissingDatabase(f"{error}; withdraw creates no database: check --db / db_url") from error
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    status = 0
    try:
        for lesson_id in lesson_ids:
            try:
                result = withdraw_lesson(lesson_id, settings, store=store)
            except Exception as error:  # noqa: BLE001 - one lesson's problem; the others go on
                click.echo(f"{lesson_id}: not withdrawn: {' '.join(str(error).split())}", err=True)
                status = 1
                continue
            click.echo(f"{lesson_id}: withdrawn ({result.reason})")
    finally:
        store.dispose()
    sys.exit(status)


def _timeline_table(plans) -> str:
    """One line per lesson for people; times as the manifest gave them (UTC for zone-less ones)."""

    def when(value) -> str:
        return value.isoformat(sep=" ", timespec="seconds") if value is not None else "-"

    def clock(seconds: float) -> str:
        whole = round(seconds)
        return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"

    rows = [("LESSON", "STATUS", "START", "END", "DURATION", "STUDENT", "TEACHER", "FRAMES", "NOTE")]
    for plan in plans:
        tl = plan.timeline
        if plan.status == "ok":
            people = [f"{len(r.disconnects)} / {r.offline_s:.1f}s" for r in (tl.student, tl.teacher)]
            cells = [when(tl.start), when(tl.end), clock(tl.duration_s), *people]
        else:
            cells = ["-"] * 5
        rows.append((plan.lesson_id, plan.status, *cells, str(len(plan.points)), plan.reason or ""))
    lines = _table(rows, [plan.status for plan in plans])
    lines.append("STUDENT, TEACHER: disconnects / seconds offline inside the lesson; FRAMES: seconds to sample")
    return "\n".join(lines)


@contextmanager
def _local_recordings(manifest, lesson_ids):
    """The manifest's lessons (those named) with their recordings in a bucket downloaded to a
    private temporary folder where the timeline must read them (a recording without
    ``ended_at``); a download that fails is a problem of the lesson's row. Deleted on the way out."""
    import tempfile
    from contextlib import ExitStack
    from dataclasses import replace

    from highlights.core.lesson import InputProblem
    from highlights.lesson.staging import local_recordings

    with ExitStack() as stack:
        folder = None
        for lesson_id in lesson_ids or list(manifest.lessons):
            lesson = manifest.lessons.get(lesson_id)
            if lesson is None or not any(r.url and r.ended_at is None for r in lesson.recordings):
                continue
            folder = folder or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="highlights-")))
            try:
                manifest.lessons[lesson_id] = stack.enter_context(local_recordings(lesson, folder / lesson_id))
            except Exception as error:  # noqa: BLE001 - the download's error, as the lesson's problem
                cause = error.__cause__ or error
                recording = lesson.recording_of(cause)
                where = recording.source if recording is not None else None
                problem = InputProblem(where.file if where else manifest.path, where.row if where else None,
                                       lesson_id, str(cause))
                manifest.lessons[lesson_id] = replace(lesson, problems=[*lesson.problems, problem])
        yield


@click.command("timeline")
@click.argument("manifest", type=InputLocation())
@click.option("--lesson", "lesson_ids", multiple=True, metavar="ID", help="Only this lesson (repeatable).")
@click.option("--lessons", "lessons_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Lesson metadata CSV or JSON Lines (validated and joined as in `highlights run`).")
@click.option("--timezone", metavar="ZONE", help="IANA zone for manifest times without an offset.")
@click.option("--gap-tolerance", "gap_tolerance_s", type=click.FloatRange(min=0), metavar="S",
              help="Gaps in a person's camera up to S seconds are not disconnects (default 2).")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), metavar="N",
              help="Frames sampled per second of lesson (default 1).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML settings file; its timezone, gap_tolerance_s and fps apply.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines on stdout: one object per lesson.")
def timeline_command(manifest, lesson_ids, lessons_path, timezone, gap_tolerance_s, fps, config_path,
                     as_json) -> None:
    """Print when each lesson of MANIFEST really took place: bounds, disconnects, frames to sample.

    Reads no media for recordings whose end time the manifest gives. With --json, each line is
    {"lesson_id", "status", "reason", "lesson": {"start", "end", "duration_s"} | null,
    "disconnects": {"student", "teacher", "student_offline_s", "teacher_offline_s"} | null,
    "frames", "fps", "gap_tolerance_s"}. Problems of rows that name no lesson go to stderr.

    Exit status 0 when every lesson is ok or no_lesson; 1 when one failed (bad rows, unreadable
    recording, unknown --lesson) or a manifest row was unusable; 2 for bad options or an
    unreadable manifest.
    """
    import json
    import sys

    from highlights.config import ConfigError, load_settings
    from highlights.inputs.manifest import InputError, read_manifest
    from highlights.stages.timeline import plan_manifest

    try:
        settings = load_settings(config_path, timezone=timezone, gap_tolerance_s=gap_tolerance_s, fps=fps)
    except ConfigError as error:
        raise click.UsageError(str(error)) from error
    if settings.fps <= 0 or settings.gap_tolerance_s < 0:
        raise click.UsageError(f"fps must be > 0 and gap_tolerance_s >= 0 (got {settings.fps}, {settings.gap_tolerance_s})")
    try:
        parsed = read_manifest(manifest, lessons_path=lessons_path, timezone=settings.timezone)
    except InputError as error:
        raise UnusableInput(str(error)) from error

    with _local_recordings(parsed, list(lesson_ids) or None):
        plans = plan_manifest(parsed, list(lesson_ids) or None, gap_tolerance_s=settings.gap_tolerance_s,
                              fps=settings.fps)
    if as_json:
        for plan in plans:
            click.echo(json.dumps(plan.to_dict(), ensure_ascii=False))
    else:
        click.echo(_timeline_table(plans))
    problems = [problem for problem in parsed.problems if problem.lesson_id is None]
    for problem in problems:
        click.echo(f"manifest problem: {problem}", err=True)
    if any(plan.status == "failed" for plan in plans) or problems:
        sys.exit(1)


# ------------------------------------------------------------------ highlights train / evaluate
