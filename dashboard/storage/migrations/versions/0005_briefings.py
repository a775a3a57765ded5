"""Create the briefings table: scheduled and manual snapshots of the city, one row per slot.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "briefings",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("slot", sa.String(64), nullable=False, unique=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("period_start_ms", sa.BigInteger, nullable=False),
        sa.Column("period_end_ms", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("finished_ms", sa.BigInteger),
        sa.Column("lang", sa.String(8), nullable=False, server_default="zh"),
        sa.Column("headline", sa.Text),
        sa.Column("data", sa.Text),
        sa.Column("html", sa.Text),
        sa.Column("pdf", sa.LargeBinary),
        sa.Column("images", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_briefings_created", "briefings", ["created_ms"])


def downgrade() -> None:
    op.drop_index("ix_briefings_created", table_name="briefings")
    op.drop_table("briefings")
