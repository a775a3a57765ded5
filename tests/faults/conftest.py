"""Fault-suite fixtures: real processes, a private PostgreSQL, and the figures each fault measures."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

FIGURES = pytest.StashKey[list]()  # one pytest session's measurements, printed in its terminal summary


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: starts and kills real processes (the fault suite, `make faults`)")
    config.stash[FIGURES] = []


def pytest_terminal_summary(terminalreporter, config):
    figures = config.stash.get(FIGURES, [])
    if not figures:
        return
    terminalreporter.section("fault figures")
    for fig in figures:
        terminalreporter.write_line("  ".join(f"{k}={v}" for k, v in fig.items()))


@pytest.fixture
def figures(request):
    """Record what a fault test measured (what was done, what was lost, how long recovery took)."""
    def record(**figure):
        request.config.stash.setdefault(FIGURES, []).append(figure)
        print("FAULT", figure)
    return record


@pytest.fixture
def private_pg():
    """A private PostgreSQL server with a migrated ``panorama`` database: the test may stop and start it."""
    from tests.pg_proc import PostgresProcess, find_bindir

    if find_bindir() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql")
    # Not under pytest's tmp_path: that is private to root, and the cluster may belong to `postgres`.
    pg = PostgresProcess(Path(tempfile.mkdtemp(prefix="panorama-pg-")))
    pg.init()
    pg.start()
    pg.database_url = pg.create_database("panorama")
    yield pg
    pg.destroy()
