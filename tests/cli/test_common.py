"""The options the commands share (:mod:`highlights.cli.common`). The ``--db`` option of the
commands that open the database (run, withdraw, dashboard): a URL that does not parse or is in
memory is a usage error (exit 2) without its password, whichever command is given it; an empty
``--out`` is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from highlights.cli import main

from support.lessons import one_lesson

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


# --------------------------------------------------------------------------- an empty --out (issue 9)


@pytest.mark.parametrize("command", ["run", "withdraw"])
def test_an_empty_out_option_is_refused_not_the_working_directory(videos, tmp_path: Path, clean_env, monkeypatch,
                                                                   command) -> None:
    # Before: `--out "$OUT"` with OUT unset reached the job as Path('.'): lesson folders and a new
    # database in the working directory (the checkout, under cron), though HIGHLIGHTS_OUT_DIR=''
    # is refused.
    manifest = one_lesson(videos, tmp_path / "rec")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    args = ["run", str(manifest), "--no-progress", "--workers", "0"] if command == "run" else ["withdraw", "L-1001"]

    outcome = clean_env.invoke(main, [*args, "--out", ""])

    assert outcome.exit_code == 2, outcome.output
    assert "'--out': is empty" in outcome.output
    assert list(cwd.iterdir()) == []
