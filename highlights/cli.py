"""Command line: a thin layer over the Python API. Each command parses options and calls it."""

from __future__ import annotations

import logging

import click

from highlights import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="highlights")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Turn lesson recordings into a GIF of the child's best smiles and an email snippet."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":  # pragma: no cover
    main()
