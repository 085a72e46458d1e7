"""Fresh databases for the schema tests: a SQLite file, or a throwaway PostgreSQL database
created on the server of ``HIGHLIGHTS_TEST_POSTGRES_URL`` and dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BACKENDS = ("sqlite", "postgresql")


@contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of ``backend``; skips PostgreSQL where no server is given."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / f'fresh-{uuid.uuid4().hex[:6]}.sqlite'}"
        return
    server = os.environ.get("HIGHLIGHTS_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("set HIGHLIGHTS_TEST_POSTGRES_URL to a PostgreSQL URL to run the PostgreSQL schema tests")
    pytest.importorskip("psycopg", reason="needs psycopg (pip install 'highlights[postgres]')")
    name = f"highlights_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
