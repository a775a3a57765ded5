"""Add the ``flask --app app:server`` commands: database upgrade."""

import click
from flask import current_app

from dashboard.db import upgrade


def init_app(server) -> None:
    """Register the command groups on the Flask server."""

    @server.cli.group("db")
    def db():
        """Manage the database schema."""

    @db.command("upgrade")
    @click.argument("revision", default="head")
    def db_upgrade(revision):
        """Apply the Alembic migrations up to REVISION (default: head)."""
        upgrade(current_app.extensions["panorama"].engine, revision)
        click.echo(f"database at {revision}")
