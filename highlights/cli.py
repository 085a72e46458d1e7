"""Command line: a thin layer over the Python API. Each command parses options and calls it."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from highlights import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="highlights")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Turn lesson recordings into a GIF of the child's best smiles and an email snippet."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# --------------------------------------------------------------------------- highlights run


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


def _summary_table(results, elapsed: dict[str, float]) -> str:
    rows = [("LESSON", "STATUS", "FRAMES", "GIF KB", "SECONDS", "NOTE")]
    for r in results:
        note = "already done, skipped" if r.skipped else (r.reason or "")
        kb = f"{r.gif_bytes / 1000:.0f}" if r.gif_bytes else "-"
        seconds = f"{elapsed.get(r.lesson_id, 0.0):.1f}"
        rows.append((r.lesson_id, r.status, str(len(r.frames)), kb, seconds, note))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5] for row in rows]
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    lines.append(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no lessons")
    return "\n".join(line.rstrip() for line in lines)


@main.command("run")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lesson", "lesson_ids", multiple=True, metavar="ID", help="Run only this lesson (repeatable).")
@click.option("--lessons", "lessons_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Lesson metadata CSV (student name, subject, locale, lesson URL).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: out); results go to OUT/<lesson_id>/.")
@click.option("--db", "db_url", metavar="URL", help="SQLAlchemy URL (default: sqlite:///OUT/highlights.sqlite).")
@click.option("--force", is_flag=True, default=None, help="Redo lessons already done with the same inputs.")
@click.option("--timezone", metavar="ZONE", help="IANA zone for manifest times without an offset.")
@click.option("--public-base-url", metavar="URL", help="Where OUT/ is served; the GIF's public URL starts with it.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML settings file (see README, Configuration).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
def run_command(manifest, lesson_ids, lessons_path, out_dir, db_url, force, timezone, public_base_url,
                config_path, progress) -> None:
    """Run every lesson of MANIFEST (or those named by --lesson): GIF, snippet, report, database row.

    Exit status 0 when every lesson ended ok, no_highlight or no_lesson; 1 when one failed or a
    manifest row was unusable; 2 for bad options or an unreadable manifest.
    """
    import sys
    import time

    from highlights.config import ConfigError, load_settings
    from highlights.pipeline import Progress, manifest_problems, run_manifest
    from highlights.recordings import InputError, read_manifest

    try:
        settings = load_settings(
            config_path, out_dir=out_dir, db_url=db_url, force=force, timezone=timezone,
            email__public_base_url=public_base_url,
        )
    except ConfigError as error:
        raise click.UsageError(str(error)) from error
    try:
        parsed = read_manifest(manifest, lessons_path=lessons_path, timezone=settings.timezone)
    except InputError as error:
        raise click.ClickException(str(error)) from error

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

    try:
        with logging_redirect_tqdm() if bar else nullcontext():
            results = run_manifest(parsed, settings, list(lesson_ids) or None, progress=_Timed())
    except Exception as error:  # models or database unusable: nothing can run
        raise click.ClickException(f"{type(error).__name__}: {error}") from error
    finally:
        if bar:
            bar.close()

    click.echo(_summary_table(results, elapsed))
    problems = manifest_problems(parsed)
    for problem in problems:
        click.echo(f"manifest problem: {problem}", err=True)
    click.echo(f"results: {settings.out_dir}/<lesson_id>/result.json; database: {_safe_url(settings.database_url)}")
    for r in [r for r in results if r.gif][:10]:
        click.echo(f"{r.lesson_id}: gif {r.gif_path}  snippet {r.path(r.snippet)}  report {r.path(r.report)}")
    if any(r.status == "failed" for r in results) or problems:
        sys.exit(1)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":  # pragma: no cover
    main()
