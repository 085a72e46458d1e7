"""Where the checkout and its test folder are, for the tests that run scripts or subprocesses."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
"""``tests/``: on ``sys.path`` under pytest (``pythonpath`` in pyproject.toml), so ``support`` imports."""
REPO_ROOT = TESTS.parent
