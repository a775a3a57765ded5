"""District centres and single sign-on: a district on the user, the identity provider's subject, no password.

A user of a district centre carries its district code (checked against the city pack's registry when the user
is written, SPEC section 13). A user who signs in through OpenID Connect is found again by the provider's
subject (issuer and ``sub``) and has no password: ``password_hash`` becomes nullable.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# What a password-less user's hash becomes on a downgrade: not a Werkzeug hash, so no password matches it.
_NO_PASSWORD = "!sso"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:  # SQLite rebuilds the table to drop NOT NULL
        batch.add_column(sa.Column("district", sa.String(16)))
        batch.add_column(sa.Column("sso_subject", sa.String(512)))
        batch.alter_column("password_hash", existing_type=sa.String(256), nullable=True)
        batch.create_unique_constraint("uq_users_sso_subject", ["sso_subject"])


def downgrade() -> None:
    op.execute(sa.text("UPDATE users SET password_hash = :h WHERE password_hash IS NULL").bindparams(h=_NO_PASSWORD))
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_sso_subject", type_="unique")
        batch.alter_column("password_hash", existing_type=sa.String(256), nullable=False)
        batch.drop_column("sso_subject")
        batch.drop_column("district")
