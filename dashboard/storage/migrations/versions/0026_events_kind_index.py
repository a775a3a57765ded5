"""Index a district's events by kind and time, so the drill-down's kind filter reads its matches alone.

The walk (``dashboard.panorama.pruning``) finds in the rollups the minutes that hold a kind's events, then read
every event of the district in those minutes and kept the kind's: at 20 million events a day a Futian minute holds
~1,400, so a rare kind read a minute's 1,400 rows for each of its ~500 matches in a day. On PostgreSQL the index
is made on the partitioned parent, so every day partition has it, those there now and those made later. Building it holds
writes to the events for as long as it takes (minutes a day of 20 million); a live database of many days builds
it beforehand without blocking, day by day with ``CREATE INDEX CONCURRENTLY``, and this statement then only
attaches those (docs/operations.md, "Upgrading a live database"). SQLite gets it too: the embedded default's kind
filter reads the same way.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08
"""
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

INDEX = "ix_events_district_kind_ts"


def upgrade() -> None:
    op.create_index(INDEX, "events", ["district", "kind", "ts_ms"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="events")
