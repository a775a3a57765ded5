"""Shared fixtures: a real Redis and a real PostgreSQL per test, app and client."""

from __future__ import annotations

import os

import pytest
import redis as redis_lib

pytest_plugins = ["pytester", "tests.strict_skips"]


def pytest_addoption(parser):
    parser.addoption("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
                     help="Redis the tests may flush (default db 15)")
    parser.addoption("--pg-url", default=os.environ.get("TEST_DATABASE_URL",
                     "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
                     help="PostgreSQL server whose database the tests create their own databases beside")


@pytest.fixture(scope="session", autouse=True)
def _own_dash_ports():
    """Start dash_duo's servers on ports free now, not at 58050, so two test runs can share the machine."""
    from dash.testing.application_runners import BaseDashRunner

    from tests.redis_proc import free_port

    BaseDashRunner._next_port = free_port()


@pytest.fixture(scope="session")
def redis_url(request) -> str:
    """Return the URL of the test Redis."""
    return request.config.getoption("--redis-url")


@pytest.fixture
def redis_client(redis_url):
    """Give a client of the test Redis, flushed before the test."""
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def pg_server_url(request) -> str:
    """Return the URL of the PostgreSQL server's maintenance database."""
    return request.config.getoption("--pg-url")


@pytest.fixture(scope="session")
def pg_database(pg_server_url):
    """Create a database of this test session's own, migrated to head; drop it at the end."""
    import psycopg
    from sqlalchemy.engine import make_url

    from dashboard.storage.db import make_engine, upgrade

    url = make_url(pg_server_url)
    name = f"panorama_test_{os.getpid()}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    test_url = url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(test_url)
    upgrade(engine)
    engine.dispose()
    yield test_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database):
    """Return the session database's URL with every table emptied for this test."""
    from sqlalchemy import text

    from dashboard.storage.db import make_engine
    from dashboard.storage.models import metadata

    engine = make_engine(pg_database)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return pg_database


@pytest.fixture
def pg_engine(pg_url):
    """Give an engine on the emptied test database."""
    from dashboard.storage.db import make_engine

    engine = make_engine(pg_url)
    yield engine
    engine.dispose()



@pytest.fixture
def redis_proc(tmp_path):
    """Start a private, durable redis-server that the test may crash and restart."""
    from tests.redis_proc import RedisProcess

    proc = RedisProcess(tmp_path)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def make_app(tmp_path, pg_url, redis_url):
    """Return a factory of apps on the test PostgreSQL and Redis, closed at teardown."""
    from dashboard import create_app

    made = []

    def factory(**overrides):
        config = {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "PANORAMA_INGEST_TOKEN": "test-token",
                  "SECRET_KEY": "test", "INSTANCE_PATH": str(tmp_path / "instance"), "PANORAMA_SIMULATE": False,
                  **overrides}
        app = create_app(config)
        made.append(app)
        return app

    yield factory
    for app in made:
        app.server.extensions["panorama"].close()


@pytest.fixture
def app(make_app, redis_client):
    """Give an app on the test PostgreSQL and the flushed test Redis."""
    return make_app()


@pytest.fixture
def client(app):
    """Give a Flask test client of the app."""
    return app.server.test_client()


@pytest.fixture(params=["postgresql", "sqlite"])
def any_engine(request, tmp_path):
    """Give an engine on each supported database: the test PostgreSQL and a fresh SQLite file."""
    from dashboard.storage.db import make_engine, upgrade

    if request.param == "postgresql":
        engine = make_engine(request.getfixturevalue("pg_url"))
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'panorama.db'}")
        upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def procs(tmp_path):
    """Start real processes for the test; every one left is ended at teardown."""
    from bench.procs import Processes

    group = Processes(tmp_path)
    yield group
    group.stop_all()
    # Shown by pytest only when the test failed: what each process said last.
    for log in sorted(tmp_path.glob("*.log")):
        print(f"----- {log.name} (last 3,000 characters)\n{log.read_text(errors='replace')[-3000:]}")
