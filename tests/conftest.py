"""Shared test fixtures.

Tests that need the real public data in ``../shared/data`` (beside the checkout; override with
``HIGHLIGHTS_SHARED_DATA``) take the ``shared_data`` fixture and are skipped with a message
where it is absent. CI always has it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("HIGHLIGHTS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"needs the shared data set at {SHARED_DATA} (absent here)")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _offline_torch_home(tmp_path_factory) -> None:
    # Nothing may download weights at run time; a stray download attempt fails in an empty home.
    os.environ.setdefault("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
