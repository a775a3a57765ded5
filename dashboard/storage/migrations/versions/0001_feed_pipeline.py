"""Create the feed pipeline tables: events, rollups, incidents, reports, feed state.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("domain", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("district", sa.String(12), nullable=False),
        sa.Column("street", sa.String(128)),
        sa.Column("severity", sa.SmallInteger, nullable=False),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("value", sa.Float),
        sa.Column("unit", sa.String(32)),
        sa.Column("title", sa.String(200)),
        sa.Column("detail", sa.Text),
        sa.Column("source", sa.String(128)),
        sa.UniqueConstraint("domain", "event_id", name="uq_events_domain_event_id"),
    )
    op.create_index("ix_events_district_ts", "events", ["district", "ts_ms"])
    op.create_table(
        "rollups",
        sa.Column("minute_ms", sa.BigInteger, primary_key=True),
        sa.Column("district", sa.String(12), primary_key=True),
        sa.Column("street", sa.String(128), primary_key=True, server_default=""),
        sa.Column("domain", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(64), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("sev1", sa.Integer, nullable=False),
        sa.Column("sev2", sa.Integer, nullable=False),
        sa.Column("sev3", sa.Integer, nullable=False),
        sa.Column("sev4", sa.Integer, nullable=False),
        sa.Column("value_sum", sa.Float, nullable=False),
        sa.Column("value_n", sa.Integer, nullable=False),
        sa.Column("value_max", sa.Float),
    )
    op.create_index("ix_rollups_district_minute", "rollups", ["district", "minute_ms"])
    op.create_table(
        "district_minutes",
        sa.Column("minute_ms", sa.BigInteger, primary_key=True),
        sa.Column("district", sa.String(12), primary_key=True),
        sa.Column("domain", sa.String(16), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("sev1", sa.Integer, nullable=False),
        sa.Column("sev2", sa.Integer, nullable=False),
        sa.Column("sev3", sa.Integer, nullable=False),
        sa.Column("sev4", sa.Integer, nullable=False),
    )
    op.create_table(
        "incidents",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("domain", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("district", sa.String(12), nullable=False),
        sa.Column("street", sa.String(128)),
        sa.Column("severity", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reports", sa.Integer, nullable=False),
        sa.Column("title", sa.String(200)),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("opened_ms", sa.BigInteger, nullable=False),
        sa.Column("last_report_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_index("ix_incidents_join", "incidents", ["district", "kind", "last_report_ms"])
    op.create_table(
        "incident_reports",
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("event_seq", BigId, primary_key=True),
    )
    op.create_table(
        "feed_state",
        sa.Column("domain", sa.String(16), primary_key=True),
        sa.Column("last_event_ms", sa.BigInteger, nullable=False),
        sa.Column("last_received_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("feed_state", "incident_reports", "incidents", "district_minutes", "rollups", "events"):
        op.drop_table(table)
