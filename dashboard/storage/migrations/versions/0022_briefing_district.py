"""A briefing may be a district centre's: briefings.district (NULL: the city's, as every briefing before).

A scheduled slot makes the city's briefing and one per district centre with an active user, each its own row
(its slot key carries the district, so "exactly once" stays the unique slot); a district centre's user lists
and reads only its district's (SPEC section 13).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("briefings", sa.Column("district", sa.String(16)))
    op.create_index("ix_briefings_district_end", "briefings", ["district", "period_end_ms"])


def downgrade() -> None:
    op.drop_index("ix_briefings_district_end", table_name="briefings")
    with op.batch_alter_table("briefings") as batch:
        batch.drop_column("district")
