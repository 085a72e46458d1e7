"""``python -m highlights.cli``: the command line."""

from highlights.cli import main

main()
