"""District centres' scope: a kiosk token may be a district's wall, a unit has a home district.

A district's wall (``flask kiosk create LABEL --district CODE``) shows only that district, like a user of its
district centre (SPEC section 13). A unit's home district is where the city pack bases it (units.yaml); a
district centre reads the units of its own district. Both NULL: the city's.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("kiosk_tokens", sa.Column("district", sa.String(16)))
    op.add_column("units", sa.Column("district", sa.String(12)))
    op.create_index("ix_units_district", "units", ["district"])


def downgrade() -> None:
    op.drop_index("ix_units_district", table_name="units")
    with op.batch_alter_table("units") as batch:
        batch.drop_column("district")
    with op.batch_alter_table("kiosk_tokens") as batch:
        batch.drop_column("district")
