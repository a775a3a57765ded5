"""Create the linked-dispatch tables: tasks and their audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LIVE_TASK = sa.text("state IN ('dispatched', 'acknowledged', 'on_scene')")
UNESCALATED = sa.text("NOT escalated AND state IN ('dispatched', 'acknowledged', 'on_scene')")


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("lead", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("rule", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("ack_due_ms", sa.BigInteger, nullable=False),
        sa.Column("resolve_due_ms", sa.BigInteger, nullable=False),
        sa.Column("escalated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("escalated_ms", sa.BigInteger),
        sa.Column("rerouted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_tasks_incident", "tasks", ["incident_id"])
    op.create_index("ix_tasks_department_state", "tasks", ["department", "state"])
    op.create_index("uq_tasks_live_department", "tasks", ["incident_id", "department"], unique=True,
                    postgresql_where=LIVE_TASK, sqlite_where=LIVE_TASK)
    op.create_index("ix_tasks_overdue", "tasks", ["ack_due_ms"],
                    postgresql_where=UNESCALATED, sqlite_where=UNESCALATED)
    op.create_table(
        "task_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("task_id", BigId, sa.ForeignKey("tasks.id", ondelete="CASCADE")),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_task_events_incident", "task_events", ["incident_id", "id"])
    op.create_index("ix_task_events_task", "task_events", ["task_id", "id"])


def downgrade() -> None:
    op.drop_table("task_events")
    op.drop_table("tasks")
