"""Redis Sentinel through redis-py's own clients (REDIS_URL=redis+sentinel://...): the app, an ingest worker and
a gateway find the master through a real sentinel, and after a failover to the replica carry on by themselves.
Publishers use the product's own paths (feeds.publish, POST /api/events under gunicorn), which do not wait for a
replica: what the old master acknowledged in its last moments may be lost, and only that (tests/faults/failover.py)."""

from __future__ import annotations

import time

import pytest
import redis

from dashboard.core import bus as buslib
from tests.faults.failover import join_publishers, losses, pushing_again_s, settled, start_stack, stop_stack
from tests.helpers import wait_for
from tests.redis_proc import RedisProcess, SentinelProcess

pytestmark = pytest.mark.faults

MASTER = "panorama"


@pytest.fixture
def sentinel_setup(tmp_path):
    """A master, its replica and one sentinel watching them; all private, all ended at teardown."""
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    master = RedisProcess(tmp_path / "m")
    master.start()
    replica = RedisProcess(tmp_path / "r", "--replicaof", "127.0.0.1", str(master.port))
    replica.start()
    rc = redis.Redis(port=replica.port)
    wait_for(lambda: rc.info("replication").get("master_link_status") == "up", timeout=30, message="replica in sync")
    sentinel = SentinelProcess(tmp_path, MASTER, master.port)
    sentinel.start()
    sc = redis.Redis(port=sentinel.port)
    wait_for(lambda: sc.sentinel_slaves(MASTER), timeout=30, message="the sentinel found the replica")
    yield master, replica, sentinel
    for p in (sentinel, replica, master):
        p.stop()


def test_sentinel_url_everywhere_and_a_failover_to_the_replica(sentinel_setup, make_app, pg_url, pg_engine, procs,
                                                               figures):
    master, replica, sentinel = sentinel_setup
    url = f"redis+sentinel://127.0.0.1:{sentinel.port}/{MASTER}/0"
    client = buslib.connect(url)
    assert client.connection_pool.get_master_address()[1] == master.port
    app = make_app(REDIS_URL=url)
    http = app.server.test_client()
    assert http.get("/api/health").json["redis"] == "ok"
    stack = start_stack(procs, url, pg_url, pg_engine, app_workers=2)
    try:
        down_at = time.monotonic()
        master.stop()  # SIGKILL the master: the sentinel promotes the replica
        wait_for(lambda: sentinel.master_port() == replica.port, timeout=60, message="failover to the replica")
        failover_s = time.monotonic() - down_at
        wait_for(lambda: http.get("/api/health").status_code == 200, timeout=30, message="health ok on the new master")
        health_s = time.monotonic() - down_at
        bus_up = wait_for(lambda: stack.watcher.first(lambda f: f == {"v": 1, "type": "status", "bus": "up"},
                                                      down_at),
                          timeout=30, message="the gateway back on the bus (the new master)")
        gateway_up_s = bus_up - down_at
        # The old master comes back (with its AOF) and the sentinel turns it into the new master's replica:
        # what it had taken and not passed on is dropped by its resynchronisation.
        master.start()
        old = redis.Redis(port=master.port)
        wait_for(lambda: old.info("replication").get("master_link_status") == "up", timeout=60,
                 message="the old master re-joined as a replica")
        rejoined_s = time.monotonic() - down_at
        push_s = pushing_again_s(stack, down_at)
        join_publishers(stack, 120)
        new_master = redis.Redis(port=replica.port)
        wait_for(lambda: settled(new_master), timeout=60, message="every entry on the new master stored")
    finally:
        stop_stack(stack)
    assert buslib.connect(url).connection_pool.get_master_address()[1] == replica.port
    figures(fault="Sentinel failover (master SIGKILL, replica promoted)",
            **losses(pg_engine, stack, down_at, failover_s),
            failover_s=round(failover_s, 2), old_master_rejoined_as_replica_after_s=round(rejoined_s, 2),
            health_ok_after_s=round(health_s, 2), gateway_bus_up_after_s=round(gateway_up_s, 2),
            gateway_pushing_new_events_after_s=round(push_s, 2))


def test_sentinel_urls_are_parsed_strictly():
    t = buslib.parse_sentinel_url("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/2"
                                  "?sentinel_password=x")
    assert t.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380)]
    assert (t.master, t.db, t.password, t.sentinel_password) == ("mymaster", 2, "s3cret", "x")
    for bad in ("redis+sentinel://h:1/", "redis+sentinel:///m", "redis+sentinel://h:x/m", "redis+sentinel://h/m/x",
                "redis+sentinel://h/m?ssl=1"):
        with pytest.raises(ValueError):
            buslib.parse_sentinel_url(bad)
    assert not buslib.is_sentinel_url("redis://127.0.0.1:6379/0") and not buslib.is_sentinel_url(None)
    assert buslib.redacted("redis+sentinel://:s3cret@h:26379/m/0") == "redis+sentinel://:***@h:26379/m/0"
    assert buslib.redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
