"""lesson_minutes and lesson_totals: the per-lesson analytics, queryable across lessons (issue 13).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _lesson_id() -> sa.Column:
    return sa.Column(
        "lesson_id", sa.String(128),
        sa.ForeignKey("lesson_highlights.lesson_id", ondelete="CASCADE"), primary_key=True,
    )  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "lesson_minutes",
        _lesson_id(),
        sa.Column("bucket", sa.Integer(), primary_key=True),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("bucket_s", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("child_frames", sa.Integer(), nullable=True),
        sa.Column("adult_frames", sa.Integer(), nullable=True),
        sa.Column("adult_only_frames", sa.Integer(), nullable=True),
        sa.Column("smile_frames", sa.Integer(), nullable=True),
        sa.Column("smile_share", sa.Float(), nullable=True),
        sa.Column("mean_smile", sa.Float(), nullable=True),
        sa.Column("student_online_s", sa.Float(), nullable=True),
        sa.Column("teacher_online_s", sa.Float(), nullable=True),
    )
    op.create_table(
        "lesson_totals",
        _lesson_id(),
        sa.Column("reason_category", sa.String(32), nullable=True),
        sa.Column("bucket_s", sa.Float(), nullable=True),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("frames", sa.Integer(), nullable=True),
        sa.Column("student_disconnects", sa.Integer(), nullable=True),
        sa.Column("teacher_disconnects", sa.Integer(), nullable=True),
        sa.Column("student_offline_s", sa.Float(), nullable=True),
        sa.Column("teacher_offline_s", sa.Float(), nullable=True),
        sa.Column("minutes_with_parent", sa.Integer(), nullable=True),
        sa.Column("child_presence", sa.Float(), nullable=True),
        sa.Column("adult_presence", sa.Float(), nullable=True),
        sa.Column("smile_frames", sa.Integer(), nullable=True),
        sa.Column("smile_share", sa.Float(), nullable=True),
        sa.Column("smiliest_minute", sa.Integer(), nullable=True),
        sa.Column("processing_s", sa.Float(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_lesson_totals_reason_category", "lesson_totals", ["reason_category"])


def downgrade() -> None:
    op.drop_index("ix_lesson_totals_reason_category", table_name="lesson_totals")
    op.drop_table("lesson_totals")
    op.drop_table("lesson_minutes")
