"""Escalation as its own mark: the incident's escalation time, coordination tasks, audit notes as codes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("incidents", sa.Column("escalated_ms", sa.BigInteger))
    op.add_column("tasks", sa.Column("coordination", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("task_events", sa.Column("code", sa.String(32)))
    op.add_column("task_events", sa.Column("params", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("task_events") as batch:
        batch.drop_column("params")
        batch.drop_column("code")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("coordination")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("escalated_ms")
