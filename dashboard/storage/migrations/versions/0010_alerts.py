"""Early warning: alerts with their audit trail, silences, and the rules' shared condition state.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = sa.text("status <> 'resolved'")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("district", sa.String(12)),
        sa.Column("zone", sa.String(64)),
        sa.Column("domain", sa.String(16)),
        sa.Column("started_ms", sa.BigInteger, nullable=False),
        sa.Column("fired_ms", sa.BigInteger),
        sa.Column("resolved_ms", sa.BigInteger),
        sa.Column("value", sa.Float),
        sa.Column("baseline", sa.Float),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("title_en", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("suppressed", sa.String(64)),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id", ondelete="SET NULL")),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("uq_alerts_open", "alerts", ["rule", "scope"], unique=True, postgresql_where=OPEN,
                    sqlite_where=OPEN)
    op.create_index("ix_alerts_status", "alerts", ["status", "id"])
    op.create_table(
        "alert_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("alert_id", BigId, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_alert_events_alert", "alert_events", ["alert_id", "id"])
    op.create_table(
        "alert_silences",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(64)),
        sa.Column("district", sa.String(12)),
        sa.Column("zone", sa.String(64)),
        sa.Column("until_ms", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("ended_ms", sa.BigInteger),
        sa.Column("ended_by", sa.String(128)),
    )
    op.create_index("ix_alert_silences_until", "alert_silences", ["until_ms"])
    op.create_table(
        "alert_states",
        sa.Column("rule", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("last_ts_ms", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("since_ms", sa.BigInteger),
    )
    op.create_table(
        "alert_counts",
        sa.Column("rule", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("minute_ms", sa.BigInteger, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("value_max", sa.Float),
    )


def downgrade() -> None:
    op.drop_table("alert_counts")
    op.drop_table("alert_states")
    op.drop_index("ix_alert_silences_until", table_name="alert_silences")
    op.drop_table("alert_silences")
    op.drop_index("ix_alert_events_alert", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_index("ix_alerts_status", table_name="alerts")
    op.drop_index("uq_alerts_open", table_name="alerts")
    op.drop_table("alerts")
