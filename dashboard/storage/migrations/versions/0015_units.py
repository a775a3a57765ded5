"""Response units (SPEC section 11): the latest state of each unit, and its track by day (PostgreSQL partitions).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""
import time

import sqlalchemy as sa
from alembic import op

from dashboard.storage import partitions

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DAY_MS = 86_400_000


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128)),
        sa.Column("name_en", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False, server_default="available"),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("updated_ms", sa.BigInteger),
        sa.Column("track_ms", sa.BigInteger),
        sa.Column("task_id", BigId, sa.ForeignKey("tasks.id", ondelete="SET NULL")),
        sa.Column("source", sa.String(8), nullable=False, server_default="pack"),
    )
    op.create_index("ix_units_department_status", "units", ["department", "status"])
    op.create_index("ix_units_task", "units", ["task_id"])
    op.create_table(
        "unit_track",
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("ts_ms", sa.BigInteger, primary_key=True),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("task_id", sa.BigInteger),
        postgresql_partition_by="RANGE (ts_ms)",
    )
    op.create_index("ix_unit_track_ts", "unit_track", ["ts_ms"])
    if op.get_bind().dialect.name == "postgresql":
        # the days events have (a late report of a day within retention) and today's and the next days'
        today = int(time.time() * 1000) // DAY_MS
        days = partitions.existing_days(op.get_bind(), "events") | set(range(today, today + partitions.DAYS_AHEAD + 1))
        partitions.create_days(op.get_bind(), ["unit_track"], days)


def downgrade() -> None:
    op.drop_index("ix_unit_track_ts", table_name="unit_track")
    op.drop_table("unit_track")  # with its partitions
    op.drop_index("ix_units_task", table_name="units")
    op.drop_index("ix_units_department_status", table_name="units")
    op.drop_table("units")
