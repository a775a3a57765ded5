"""Index the rollups by the filters people use, so a filtered page of events finds its minutes in them.

A page of a district's events filtered by kind, street, domain or severity first reads which minutes (hours, for
the 7- and 30-day windows) hold matching events from the rollups, newest first (dashboard.panorama.pruning).
The rollups' keys lead with the time, and their one other index is (district, time): a kind's minutes over a
busy day meant reading every street and kind of the district. These put the filter's column after the district:
(district, kind, time) and (district, street, time) on the street-and-kind rollups, (district, time) on the
per-district ones (domain and severity). Made on the partitioned parents, so every day partition has them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_rollups_district_kind_minute", "rollups", ["district", "kind", "minute_ms"]),
    ("ix_rollups_district_street_minute", "rollups", ["district", "street", "minute_ms"]),
    ("ix_district_minutes_district_minute", "district_minutes", ["district", "minute_ms"]),
    ("ix_rollup_hours_district_kind_hour", "rollup_hours", ["district", "kind", "hour_ms"]),
    ("ix_rollup_hours_district_street_hour", "rollup_hours", ["district", "street", "hour_ms"]),
    ("ix_district_hours_district_hour", "district_hours", ["district", "hour_ms"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
