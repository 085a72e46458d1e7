"""Stage values as plain JSON types: the one conversion the artifacts and the fingerprints share."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: dataclasses as dicts, sequences as lists, times in ISO
    format, paths as text, numpy scalars as Python numbers."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


__all__ = ["jsonable"]
