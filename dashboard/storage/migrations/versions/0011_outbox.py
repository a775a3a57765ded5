"""Notifications: a transactional outbox of messages to send, and the log of every attempt to send them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("due_ms", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("sent_ms", sa.BigInteger),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("uq_outbox_key", "outbox", ["key"], unique=True)
    op.create_index("ix_outbox_due", "outbox", ["status", "due_ms"])
    op.create_table(
        "outbox_attempts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("outbox_id", BigId, sa.ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_outbox_attempts_outbox", "outbox_attempts", ["outbox_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_attempts_outbox", table_name="outbox_attempts")
    op.drop_table("outbox_attempts")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_index("uq_outbox_key", table_name="outbox")
    op.drop_table("outbox")
