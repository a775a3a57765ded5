"""Index event titles by trigram (PostgreSQL) so the title search (ILIKE '%...%') reads the index, not the day.

``pg_trgm``'s GIN index answers ``title ILIKE '%拥堵事故%'`` from the trigrams of the pattern (three characters or
more; a shorter pattern has no trigram to look up and reads the district's rows as before). It is made on the
partitioned parent, so every day partition has it, those there now and those made later. SQLite (the embedded
default, one city-day at most) searches as before: nothing to do there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEX = "ix_events_title_trgm"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Trusted since PostgreSQL 13: the database's owner may create it without being a superuser.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(INDEX, "events", ["title"], postgresql_using="gin", postgresql_ops={"title": "gin_trgm_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The extension stays: other schemas of the database may use it, and it costs nothing unused.
    op.drop_index(INDEX, table_name="events")
