"""Deprecated: the old home of the Python API; use :mod:`highlights.api`. Kept for one release.

``from highlights.pipeline import run_manifest`` still works and warns once.
"""

import warnings

from highlights.api import Progress, run_lesson, run_manifest, withdraw_lesson
from highlights.lesson.withdraw import NothingToWithdraw

warnings.warn("highlights.pipeline is deprecated and will be removed in the next release: import from "
              "highlights.api instead", DeprecationWarning, stacklevel=2)

__all__ = ["NothingToWithdraw", "Progress", "run_lesson", "run_manifest", "withdraw_lesson"]
