"""Major-incident mode (SPEC section 10): the declarations, one active per incident, kept after the stand-down;
standard procedures: what happened to each step of an incident's checklist.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = sa.text("stood_down_ms IS NULL")


def upgrade() -> None:
    op.create_table(
        "major_incidents",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("declared_ms", sa.BigInteger, nullable=False),
        sa.Column("declared_by", sa.String(128), nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("stood_down_ms", sa.BigInteger),
        sa.Column("stood_down_by", sa.String(128)),
    )
    op.create_index("uq_major_active", "major_incidents", ["incident_id"], unique=True, postgresql_where=ACTIVE,
                    sqlite_where=ACTIVE)
    op.create_table(
        "procedure_steps",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("done_ms", sa.BigInteger),
        sa.Column("done_by", sa.String(128)),
        sa.Column("escalated_ms", sa.BigInteger),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("incident_id", "step", name="uq_procedure_steps"),
    )


def downgrade() -> None:
    op.drop_table("procedure_steps")
    op.drop_index("uq_major_active", table_name="major_incidents")
    op.drop_table("major_incidents")
