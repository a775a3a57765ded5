"""Incident merge: a merged-away incident records the incident it was merged into.

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0016"
branch_labels = None
depends_on = None

_MERGED = sa.text("merged_into IS NOT NULL")


def upgrade() -> None:
    op.add_column("incidents", sa.Column("merged_into", sa.BigInteger))
    # Ingest's join follows merged-away incidents of a report's district and kind: few rows, however old.
    op.create_index("ix_incidents_merged", "incidents", ["district", "kind"], postgresql_where=_MERGED,
                    sqlite_where=_MERGED)


def downgrade() -> None:
    op.drop_index("ix_incidents_merged", table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("merged_into")
