"""The databases of the persistence tests: each test that takes ``database_url`` or ``store`` runs
on a fresh SQLite file and on a fresh PostgreSQL database (skipped unless
``HIGHLIGHTS_TEST_POSTGRES_URL`` names a server; ``support/databases.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from highlights.persist.store import ResultStore

from support.databases import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, once per backend (test ids ``[sqlite]``, ``[postgresql]``)."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture()
def store(database_url: str) -> Iterator[ResultStore]:
    """A :class:`ResultStore` on a fresh database, once per backend."""
    store = ResultStore(database_url)
    try:
        yield store
    finally:
        store.dispose()
