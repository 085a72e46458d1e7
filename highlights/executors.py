"""Deprecated: the old home of :class:`BatchOptions`; use :mod:`highlights.api`. Kept for one release."""

import warnings

from highlights.api import BatchOptions

warnings.warn("highlights.executors is deprecated and will be removed in the next release: import BatchOptions "
              "from highlights.api instead", DeprecationWarning, stacklevel=2)

__all__ = ["BatchOptions"]
