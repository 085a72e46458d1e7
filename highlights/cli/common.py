"""What the commands share: their exit-status exceptions and option checks."""

from __future__ import annotations

from pathlib import Path

import click


class UnusableInput(click.ClickException):
    """The manifest or lessons file cannot be read at all: exit status 2, like a usage error."""

    exit_code = 2


class UnusableWeights(click.ClickException):
    """A model weights file that is set (``smile_weights``, ``age_weights``) is missing or is no
    weights file: a bad setting, exit status 2, before any lesson runs."""

    exit_code = 2


class UnusableOutput(click.ClickException):
    """The output folder cannot be created or written: exit status 2, like a usage error."""

    exit_code = 2


class MissingDatabase(click.ClickException):
    """A command that only reads or changes what is there (``highlights withdraw``,
    ``highlights dashboard``) was pointed at a SQLite file that does not exist: exit status 2,
    like a usage error (a typo in ``--db``)."""

    exit_code = 2


class OutFolder(click.Path):
    """``--out``: a folder, or a bucket prefix (``s3://bucket/prefix``, kept as a string: see
    :func:`out_settings`); never the empty string. ``--out "$OUT"`` with ``OUT`` unset would
    otherwise be the working directory (click turns ``''`` into ``Path('.')``): lesson folders and
    a new database scattered over the checkout, as ``HIGHLIGHTS_OUT_DIR=''`` is refused."""

    def __init__(self) -> None:
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        from highlights.storage.objects import SCHEMES

        if isinstance(value, str) and not value.strip():
            self.fail("is empty: name the output folder (e.g. --out out)", param, ctx)
        if _object_url(self, value, param, ctx, f"a folder, or {' or '.join(s + '://BUCKET/PREFIX' for s in SCHEMES)}"):
            return value  # checked as a bucket prefix with the settings (Settings.out_url)
        return super().convert(value, param, ctx)


def out_settings(out: Path | str | None, work_dir: Path | None) -> dict[str, object]:
    """The settings ``--out`` (a folder or a bucket prefix, :class:`OutFolder`) and
    ``--work-dir`` stand for, as overrides of :func:`highlights.config.load_settings`."""
    if isinstance(out, str):
        return {"out_url": out, "work_dir": work_dir}
    return {"out_dir": out, "work_dir": work_dir}


class InputLocation(click.Path):
    """A manifest or lessons file: an existing local file, or an object URL (``s3://bucket/key``,
    read when the command runs; a URL of another scheme is refused here)."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        from highlights.storage.objects import SCHEMES

        if _object_url(self, value, param, ctx, f"only {', '.join(SCHEMES)}://"):
            return value
        return super().convert(value, param, ctx)


def _object_url(kind: click.ParamType, value, param, ctx, supported: str) -> bool:
    """Whether ``value`` is a URL of an object store (kept as a string); a URL of another
    scheme fails the option (``supported`` says what is)."""
    from highlights.storage.objects import is_object_url, looks_like_url

    if not (isinstance(value, str) and looks_like_url(value)):
        return False
    if not is_object_url(value):
        kind.fail(f"{value.split('://', 1)[0]}:// URLs are not supported ({supported})", param, ctx)
    return True


def check_out_dir(out_dir: Path, *, private: bool = False) -> None:
    """Create the output folder and make sure it is writable, before any lesson runs.
    ``private``: made 0700 where new (the working folder of outputs in a bucket: the lesson ids
    and, while they run, the lessons' files are nobody else's business)."""
    import os

    from highlights.files import make_dirs

    if out_dir.exists() and not out_dir.is_dir():
        raise UnusableOutput(f"output folder {out_dir} is a file, not a folder")
    try:
        make_dirs(out_dir, **({"mode": 0o700} if private else {}))
    except OSError as error:
        raise UnusableOutput(f"output folder {out_dir} cannot be created: {error.strerror or error}") from error
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UnusableOutput(f"output folder {out_dir} is not writable")


def database_option(url: str) -> str:
    """``--db`` / ``db_url`` of ``highlights run``, ``withdraw`` and ``dashboard`` checked as an
    option, parsed once: a usage error (exit 2) when it does not parse or names an in-memory
    SQLite database, which keeps nothing once the command ends (a run would store nothing and
    exit 0). Returns the URL as it may be shown (password masked)."""
    from sqlalchemy.engine import make_url

    from highlights.persist.store import hide_url_secrets, in_memory, masked_url

    try:
        parsed = make_url(url)
    except Exception as error:
        raise click.UsageError(
            f"--db / db_url is not a database URL ({type(error).__name__}: {hide_url_secrets(str(error), url)}); "
            "expected e.g. postgresql+psycopg://user@host/db"
        ) from error
    if in_memory(parsed):
        raise click.UsageError(
            f"--db / db_url {masked_url(url)} is an in-memory database: it keeps nothing once the command ends; "
            "name a file (sqlite:///out/.highlights/highlights.sqlite) or a server"
        )
    return masked_url(url)


# --------------------------------------------------------------------------- highlights timeline


__all__ = ["MissingDatabase", "OutFolder", "out_settings", "UnusableInput", "UnusableOutput", "UnusableWeights", "check_out_dir",
           "database_option"]
