"""Run Alembic migrations against the configured database."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from dashboard.core.config import load_config
from dashboard.storage.models import metadata
from dashboard.storage.partitions import include_object

config = context.config
# A caller (dashboard.db.upgrade) may hand over its own connection.
connection = config.attributes.get("connection")


def run() -> None:
    """Migrate offline (SQL script) or online (a live connection)."""
    if context.is_offline_mode():
        context.configure(url=load_config()["DATABASE_URL"], target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config({"sqlalchemy.url": load_config()["DATABASE_URL"]}, prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()


run()
