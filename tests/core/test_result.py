"""A lesson's result (:mod:`highlights.core.result`); its ``result.json`` is tested in ``tests/lesson/test_folder.py``."""

from __future__ import annotations

import pytest

from highlights.core.result import STATUSES, LessonResult


def test_unknown_status_is_rejected():
    with pytest.raises(ValueError):
        LessonResult("L", "great")
    assert set(STATUSES) == {"ok", "no_highlight", "no_lesson", "failed", "withdrawn", "busy"}
