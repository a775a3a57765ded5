"""Migrations: every revision downgrades and upgrades again, the models match them, and several workers may
migrate an empty database at once."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from dashboard.core.config import ROOT
from dashboard.storage.db import MIGRATIONS, make_engine, upgrade
from dashboard.storage.models import metadata
from dashboard.storage.partitions import include_object
from tests.helpers import scratch_database


def _alembic(conn) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _revisions() -> list[str]:
    """The revisions from the first to the head."""
    script = ScriptDirectory(str(MIGRATIONS))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


@pytest.fixture
def empty_db(request, pg_server_url, tmp_path):
    """Yield the URL of an empty database: a new PostgreSQL database, or a new SQLite file."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with scratch_database(pg_server_url, "panorama_migrate") as url:
        yield url


def _current(engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@pytest.mark.parametrize("empty_db", ["postgresql", "sqlite"], indirect=True)
def test_every_revision_downgrades_and_upgrades_again(empty_db):
    engine = make_engine(empty_db)
    try:
        previous = "base"
        for revision in _revisions():
            for step in (revision, previous, revision):  # up, back down, up again: a stairway
                with engine.begin() as conn:
                    cfg = _alembic(conn)
                    if step == revision:
                        command.upgrade(cfg, step)
                    else:
                        command.downgrade(cfg, step)
                assert _current(engine) == (None if step == "base" else step)
            previous = revision
        with engine.begin() as conn:
            command.downgrade(_alembic(conn), "base")
        assert _current(engine) is None
    finally:
        engine.dispose()


@pytest.mark.parametrize("empty_db", ["postgresql", "sqlite"], indirect=True)
def test_the_models_match_the_migrations(empty_db):
    engine = make_engine(empty_db)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}), metadata)
        assert diff == [], diff  # what `alembic revision --autogenerate` would write: nothing
    finally:
        engine.dispose()


@pytest.mark.parametrize("empty_db", ["postgresql"], indirect=True)
def test_several_workers_migrating_an_empty_database_at_once_all_start(empty_db):
    # gunicorn -w 4 on a new database: every worker migrates on start; one does it, the others wait for it.
    code = "import sys; from dashboard.storage.db import make_engine, upgrade; upgrade(make_engine(sys.argv[1]))"
    workers = [subprocess.Popen([sys.executable, "-c", code, empty_db], cwd=ROOT, stderr=subprocess.PIPE)
               for _ in range(4)]
    results = [(w.wait(timeout=120), w.stderr.read().decode()) for w in workers]
    assert all(rc == 0 for rc, _ in results), [err[-2000:] for rc, err in results if rc]
    engine = make_engine(empty_db)
    try:
        assert _current(engine) == _revisions()[-1]
    finally:
        engine.dispose()
