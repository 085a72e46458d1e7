"""Alembic revision files, one per schema change, in order (see highlights.persist.migrations)."""
