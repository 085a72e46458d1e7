"""Command line: a thin layer over the Python API (:mod:`highlights.api`). Each command parses
options, calls the API and prints; the heavy modules are imported inside the commands, so
``highlights --help`` starts at once."""

from __future__ import annotations

import logging

import click

from highlights import __version__
from highlights.cli.lessons import run_command, timeline_command, withdraw_command
from highlights.cli.models import evaluate_command, train_command
from highlights.cli.tools import dashboard_command, label_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="highlights")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Turn lesson recordings into a GIF of the child's best smiles and an email snippet."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for command in (run_command, withdraw_command, timeline_command, train_command, evaluate_command, dashboard_command,
                label_command):
    main.add_command(command)

__all__ = ["main"]

if __name__ == "__main__":  # pragma: no cover
    main()
