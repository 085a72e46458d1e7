"""The database schema, versioned with Alembic; run by :class:`highlights.persist.store.ResultStore`.

Every open of the store calls :func:`upgrade_to_head`: a new database gets every revision, an
older one the revisions it lacks, one that is up to date costs one ``SELECT`` of
``alembic_version``. On PostgreSQL the upgrade holds a transaction-scoped advisory lock, so two
jobs starting at once (cron and a rerun by hand) do not both migrate; SQLite migrations run in
Alembic's batch mode (copy-and-move), so columns can be added and changed there too.

A database made by release 0.1.0, before migrations (table ``lesson_highlights``, no
``alembic_version``), is recognised: it is stamped with :data:`BASELINE` (the revision that
creates exactly that table) and then upgraded, its rows untouched.

Layout::

    highlights/migrations/
        __init__.py          this runner
        env.py               Alembic's environment (uses the caller's connection; batch mode)
        script.py.mako       the template of a revision file
        versions/
            0001_lesson_highlights.py   the table of release 0.1.0 (the campaign's contract)
            0002_lesson_analytics.py    lesson_minutes, lesson_totals (issue 13)

How to add a column (or a table): one revision file per change, never edit a released one.

1. Add the column to the model in ``highlights/store.py`` (nullable, or with a
   ``server_default``, so existing rows and older readers keep working; never rename or drop a
   column the campaign's query or a dashboard reads: add a new one instead).
2. Write ``versions/NNNN_what.py`` (the next number; ``down_revision`` = the current head)::

       revision = "0003"
       down_revision = "0002"

       def upgrade() -> None:
           with op.batch_alter_table("lesson_totals") as batch:   # batch: SQLite can ALTER too
               batch.add_column(sa.Column("new_figure", sa.Float(), nullable=True))

       def downgrade() -> None:
           with op.batch_alter_table("lesson_totals") as batch:
               batch.drop_column("new_figure")

   :func:`schema_differences` (used by the test ``test_models_match_migrations``) lists what
   still differs between the models and the upgraded database: [] when the revision is right.
3. Run ``pytest tests/persist/test_migrations.py``: it upgrades a fresh database, a 0.1.0 database and
   each revision in turn on SQLite and PostgreSQL, and compares the result with the models.

The next job that opens the database upgrades it; nothing else to run.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent
BASELINE = "0001"
"""The revision whose schema is that of release 0.1.0 (``lesson_highlights`` only)."""
LEGACY_TABLE = "lesson_highlights"
ADVISORY_LOCK_ID = 0x686C6967  # "hlig": one fixed key for this job's schema upgrades


class SchemaError(RuntimeError):
    """The database's schema cannot be brought to this release's (e.g. it is newer)."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the migrations shipped in the package (no ``alembic.ini``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine, target: str = "head") -> str | None:
    """Bring the database to ``target`` (default: this release's head); returns its revision."""
    with engine.connect() as connection:
        current = current_revision(connection)
    if current is not None and current == head_revision() and target == "head":
        return current  # the everyday case: nothing to do, nothing locked
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_ID})
        current = current_revision(connection)  # again, under the lock: another job may have done it
        if current is not None and current not in known_revisions():
            raise SchemaError(
                f"the database's schema is at revision {current}, which this release does not know "
                f"(its newest is {head_revision()}): it was upgraded by a newer highlights; upgrade this one"
            )
        config = alembic_config(connection)
        if current is None and inspect(connection).has_table(LEGACY_TABLE):
            # Made by release 0.1.0 (create_all, no alembic_version): its table is revision 0001.
            command.stamp(config, BASELINE)
        command.upgrade(config, target)
        return current_revision(connection)


def schema_differences(connection: Connection, metadata: Any) -> list[Any]:
    """What differs between the database's schema and ``metadata`` (the models); [] when they
    agree. Alembic's autogenerate comparison: used by the tests after every upgrade."""
    from alembic.autogenerate import compare_metadata

    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, metadata) if not _is_alembic_table(d)]


def _is_alembic_table(diff: Any) -> bool:
    return isinstance(diff, tuple) and len(diff) > 1 and getattr(diff[1], "name", None) == "alembic_version"


__all__ = ["BASELINE", "SchemaError", "head_revision", "schema_differences", "upgrade_to_head"]
