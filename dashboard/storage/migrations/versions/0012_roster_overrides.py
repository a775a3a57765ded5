"""Duty rosters: overrides set in the app, which put a person in a role of a department for a while.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "roster_overrides",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("from_ms", sa.BigInteger, nullable=False),
        sa.Column("until_ms", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("ended_ms", sa.BigInteger),
        sa.Column("ended_by", sa.String(128)),
    )
    op.create_index("ix_roster_overrides_until", "roster_overrides", ["until_ms"])


def downgrade() -> None:
    op.drop_index("ix_roster_overrides_until", table_name="roster_overrides")
    op.drop_table("roster_overrides")
