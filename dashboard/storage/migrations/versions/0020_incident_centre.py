"""District centres: which centre runs an incident -- NULL the city centre, else a district code (SPEC section 13).

Incidents opened before this run at the city centre, as they did when it was the only one: NULL, nothing to fill.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("incidents", sa.Column("centre", sa.String(12)))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("centre")
