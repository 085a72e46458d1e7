"""lesson_highlights: one row per lesson, the email campaign's table (release 0.1.0).

The schema ``Base.metadata.create_all`` made before migrations existed; a database made then
is stamped with this revision instead of running it (highlights.persist.migrations.upgrade_to_head).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lesson_highlights",
        sa.Column("lesson_id", sa.String(128), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("gif_path", sa.Text(), nullable=True),
        sa.Column("gif_url", sa.Text(), nullable=True),
        sa.Column("gif_bytes", sa.Integer(), nullable=True),
        sa.Column("snippet_html", sa.Text(), nullable=True),
        sa.Column("snippet_text", sa.Text(), nullable=True),
        sa.Column("lesson_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lesson_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("student_disconnects", sa.Integer(), nullable=True),
        sa.Column("teacher_disconnects", sa.Integer(), nullable=True),
        sa.Column("student_offline_s", sa.Float(), nullable=True),
        sa.Column("teacher_offline_s", sa.Float(), nullable=True),
        sa.Column("frame_count", sa.Integer(), nullable=False),
        sa.Column("code_version", sa.String(64), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("result_path", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_lesson_highlights_status", "lesson_highlights", ["status"])


def downgrade() -> None:
    op.drop_index("ix_lesson_highlights_status", table_name="lesson_highlights")
    op.drop_table("lesson_highlights")
