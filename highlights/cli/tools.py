"""``highlights dashboard`` and ``label``: the tools' commands."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from highlights.cli.common import (
    MissingDatabase,
    UnusableOutput,
    database_option,
)

log = logging.getLogger(__name__)


@click.command("dashboard")
@click.option("--db", "db_url", metavar="URL", help="SQLAlchemy URL (default: the configured one, "
              "else sqlite:///OUT/highlights.sqlite).")  # fmt: skip
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="First lesson day (UTC), YYYY-MM-DD.")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), help="Last lesson day (UTC), included.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML page to write (e.g. overview.html).")  # fmt: skip
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML settings file: db_url, out_dir and the [analytics] switches.")  # fmt: skip
def dashboard_command(db_url, since, until, out_path, config_path) -> None:
    """Write a self-contained overview page of the lessons in the database: statuses and reasons,
    disconnects, parent presence, smile detection, the slowest lessons, a link to each report."""
    from highlights.config import ConfigError, load_settings
    from highlights.persist.store import NoDatabase, StoreError
    from highlights.tools.dashboard import write_dashboard

    try:
        settings = load_settings(config_path, db_url=db_url)
    except ConfigError as error:
        raise click.UsageError(str(error)) from error
    if since and until and since > until:
        raise click.UsageError(f"--since {since:%Y-%m-%d} is after --until {until:%Y-%m-%d}")
    database_option(settings.database_url)
    try:
        path = write_dashboard(settings.database_url, out_path, since=since.date() if since else None,
                               until=until.date() if until else None, analytics=settings.analytics)  # fmt: skip
    except NoDatabase as error:  # its message names the database, password masked
        raise MissingDatabase(f"{error}; the dashboard creates no database: check --db / db_url") from error
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise UnusableOutput(f"{out_path} cannot be written: {error.strerror or error}") from error
    click.echo(f"overview: {path}")
# --------------------------------------------------------------------------- highlights label


@click.command("label")
@click.argument("out_dir", metavar="OUT", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--labels", "labels_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Labels folder to write (labels.csv and the crops); never inside the repository.")
@click.option("--manifest", "manifests", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Manifest the lessons were run from (finds the recordings); repeatable.")
@click.option("--timezone", metavar="ZONE", help="IANA zone for manifest times without an offset.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs a token (made if not given).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", envvar="HIGHLIGHTS_LABEL_TOKEN", help="Access token (env HIGHLIGHTS_LABEL_TOKEN).")
@click.option("--by", metavar="NAME", help="Who labels, for labels.csv's 'by' column (default: login name).")
def label_command(out_dir, labels_dir, manifests, timezone, host, port, token, by) -> None:
    """Label faces and frames of the lessons in OUT in the browser (see README, Labelling).

    Writes LABELS/labels.csv (file,label,task,by,created_at,lesson_id,t) and the face crops, the
    folder `highlights train smile|age --data LABELS` reads.
    """
    from highlights.inputs.manifest import InputError
    from highlights.tools.label.app import serve
    from highlights.tools.label.session import Labeller
    from highlights.tools.label.store import LabelsFolderError

    try:
        labeller = Labeller(out_dir, labels_dir, list(manifests), by=by, timezone=timezone)
    except (LabelsFolderError, InputError) as error:
        raise click.UsageError(str(error)) from error
    lessons = labeller.lessons()
    click.echo(f"{len(lessons)} processed lesson(s) in {out_dir}; labels go to {labeller.store.root}")

    def ready(url: str) -> None:
        click.echo(f"open {url}  (Ctrl-C stops)")

    serve(labeller, host=host, port=port, token=token, on_ready=ready)
