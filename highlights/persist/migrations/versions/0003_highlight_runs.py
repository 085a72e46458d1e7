"""highlight_runs: one row per run of the job, its options, versions and counts (issue 11).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "highlight_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("code_version", sa.String(64), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("lessons", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False)
          for name in ("ok", "no_highlight", "no_lesson", "failed", "busy", "withdrawn", "skipped")),
        sa.Column("lessons_per_minute", sa.Float(), nullable=True),
    )
    op.create_index("ix_highlight_runs_started_at", "highlight_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_highlight_runs_started_at", table_name="highlight_runs")
    op.drop_table("highlight_runs")
