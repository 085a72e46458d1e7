"""``python -m highlights``: the command line."""

from highlights.cli import main

main()
