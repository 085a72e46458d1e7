"""The ``--db`` option of the commands that open the database (run, withdraw, dashboard): a URL
that does not parse or is in memory is a usage error (exit 2) without its password, whichever
command is given it. Nothing here runs a lesson."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from highlights.cli import main

BAD_URL = "postgresql+psycopg://u:secretpw@db:notaport/x"


@pytest.fixture()
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in [n for n in os.environ if n.startswith("HIGHLIGHTS_")]:
        monkeypatch.delenv(name)
    return CliRunner()


def _commands(tmp_path: Path, db: str) -> dict[str, list[str]]:
    return {
        "withdraw": ["withdraw", "L-1001", "--out", str(tmp_path / "out"), "--db", db],
        "dashboard": ["dashboard", "--db", db, "--out", str(tmp_path / "overview.html")],
    }


@pytest.mark.parametrize("command", ["withdraw", "dashboard"])
def test_an_unparsable_database_url_is_a_usage_error(runner: CliRunner, tmp_path: Path, command: str) -> None:
    # Both used to leave the URL to the store: exit 1, like a server that cannot be reached.
    outcome = runner.invoke(main, _commands(tmp_path, BAD_URL)[command])
    assert outcome.exit_code == 2, outcome.output
    assert "--db / db_url is not a database URL" in outcome.output
    assert "secretpw" not in outcome.output and "Traceback" not in outcome.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "overview.html").exists()


@pytest.mark.parametrize("command", ["withdraw", "dashboard"])
def test_an_in_memory_database_is_a_usage_error(runner: CliRunner, tmp_path: Path, command: str) -> None:
    outcome = runner.invoke(main, _commands(tmp_path, "sqlite://")[command])
    assert outcome.exit_code == 2, outcome.output
    assert "is an in-memory database: it keeps nothing" in outcome.output


def test_the_database_option_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # It used to be parsed twice: once for "does it parse", again for "is it in memory".
    import sqlalchemy.engine

    import highlights.persist.store
    from highlights.cli.common import database_option as _database_option

    real = sqlalchemy.engine.make_url
    parsed: list[str] = []

    def counting(value, *args, **kwargs):
        if isinstance(value, str):  # a URL object is returned as it is, not parsed
            parsed.append(value)
        return real(value, *args, **kwargs)

    monkeypatch.setattr(sqlalchemy.engine, "make_url", counting)
    monkeypatch.setattr(highlights.persist.store, "make_url", counting)
    url = "postgresql+psycopg://u:secretpw@db/x"
    assert _database_option(url) == "postgresql+psycopg://u:***@db/x"
    assert parsed == [url]


def test_withdraw_creates_no_database(runner: CliRunner, tmp_path: Path) -> None:
    # A typo in --db used to create the folder and an empty database, then withdraw into it.
    missing = tmp_path / "missing" / "typo.sqlite"
    out = tmp_path / "out"
    (out / "L-1001").mkdir(parents=True)
    for db in (f"sqlite:///{missing}", f"sqlite:///{missing}?password=secretpw"):
        outcome = runner.invoke(main, ["withdraw", "L-1001", "--out", str(out), "--db", db])
        assert outcome.exit_code == 2, outcome.output
        assert f"there is no database at {missing}" in outcome.output
        assert "withdraw creates no database" in outcome.output
        assert "secretpw" not in outcome.output and "Traceback" not in outcome.output
    assert "password=*** cannot be opened" in outcome.output
    assert not (tmp_path / "missing").exists()
    # Without --db: the output folder's default database, which no run has made.
    outcome = runner.invoke(main, ["withdraw", "L-1001", "--out", str(out)])
    assert outcome.exit_code == 2, outcome.output
    assert "there is no database at" in outcome.output and not (out / ".highlights").exists()
