"""A briefing's report in each language its mail's readers ask for: briefing_renditions.

The mail of a scheduled briefing was said in each reader's language (``lang`` per recipient, 0022's mail), but
the report attached to it was the one made in the city's: an English reader read an English mail with a Chinese
report. The report is now made once more for each other language in use among the briefing's readers, and kept
here beside the briefing (deleted with it); the mail attaches the one in its reader's language.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "briefing_renditions",
        sa.Column("briefing_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  sa.ForeignKey("briefings.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("lang", sa.String(8), primary_key=True),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("pdf", sa.LargeBinary()),
    )


def downgrade() -> None:
    op.drop_table("briefing_renditions")
