"""DATABASE_READ_URL: the pages' and the API's reads come from a real streaming replica (pg_basebackup), writes go
to the primary; a replica that stops is skipped (the primary answers, /api/health says so) and is used again
once it is back."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard.storage import services as services_module
from dashboard.storage.models import events
from tests.helpers import wait_for
from tests.pg_proc import PostgresProcess, ReplicaProcess
from tests.test_api import ingest_now, now_event


@pytest.fixture(scope="module")
def pg_pair():
    """Start a private primary with a database at head and a streaming replica of it."""
    # Folders of their own under /tmp: the servers run as the postgres user, who cannot enter pytest's.
    primary = PostgresProcess(Path(tempfile.mkdtemp(prefix="panorama-primary-")))
    primary.init()
    primary.start()
    replica = ReplicaProcess(Path(tempfile.mkdtemp(prefix="panorama-replica-")), primary)
    try:
        url = primary.create_database("panorama")
        replica.init()
        replica.start()
        yield primary, replica, url
    finally:
        replica.destroy()
        primary.destroy()


def traffic(client) -> int:
    return client.get("/api/summary?window=1h").json["totals"]["traffic"]


def test_reads_come_from_the_replica_and_survive_it_stopping(pg_pair, make_app, redis_client, monkeypatch):
    primary, replica, url = pg_pair
    monkeypatch.setattr(services_module, "REPLICA_RETRY_S", 2)
    app = make_app(DATABASE_URL=url, DATABASE_READ_URL=replica.url("panorama"))
    svc = app.server.extensions["panorama"]
    client = app.server.test_client()

    def on_primary() -> int:
        with svc.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(events)).scalar_one()

    ingest_now(app, {"traffic": [now_event(i, district="futian") for i in range(5)]})
    wait_for(lambda: traffic(client) == 5, timeout=20, message="the replica has replayed the first events")
    # replay paused: the primary takes three more, the API still answers the replica's five
    replica.replay_paused(True)
    try:
        ingest_now(app, {"traffic": [now_event(10 + i, district="futian") for i in range(3)]})
        assert on_primary() == 8
        assert traffic(client) == 5
        assert client.get("/api/districts/futian/summary").json["totals"]["traffic"] == 5
        page = client.get("/api/districts/futian/events?window=1h")
        assert page.status_code == 401 or len(page.json["events"]) == 5  # the events API needs a viewer
        health = client.get("/api/health").json
        assert health["status"] == "ok" and health["read_replica"].startswith("ok: ")
        assert int(health["read_replica"].split()[1].replace(",", "")) > 0  # bytes of WAL behind
    finally:
        replica.replay_paused(False)
    wait_for(lambda: traffic(client) == 8, timeout=20, message="the replica caught up")

    # the replica stops: the primary answers (with what the replica had not yet replayed), health says so
    replica.stop()
    ingest_now(app, {"traffic": [now_event(20, district="futian")]})
    assert traffic(client) == 9
    health = client.get("/api/health").json
    assert health["status"] == "ok" and health["read_replica"].startswith("unreachable")

    # it comes back: health sees it, and the reads go to it again by themselves
    replica.start()
    wait_for(lambda: client.get("/api/health").json["read_replica"].startswith("ok"), timeout=30,
             message="health sees the replica again")
    wait_for(lambda: traffic(client) == 9, timeout=20, message="the replica replayed what it missed")
    replica.replay_paused(True)
    try:
        ingest_now(app, {"traffic": [now_event(30, district="futian")]})
        assert on_primary() == 10
        wait_for(lambda: traffic(client) == 9, timeout=20, message="reads back on the (paused) replica")
    finally:
        replica.replay_paused(False)
