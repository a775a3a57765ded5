"""Redis Sentinel through redis-py's own clients (REDIS_URL=redis+sentinel://...): the app, an ingest worker and
a gateway find the master through a real sentinel, and after a failover to the replica carry on by themselves."""

from __future__ import annotations

import time

import pytest
import redis

from dashboard import bus as buslib
from tests.faults.common import Producer, WsWatcher, listening, pending, stored, totals, ws_url
from tests.faults.procs import module_argv, service_env
from tests.helpers import wait_for
from tests.redis_proc import RedisProcess, SentinelProcess, free_port

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


class ReplicatedProducer(Producer):
    """A publisher that needs its events to survive a failover: XADD, then WAIT for one replica; resend when
    the replica did not confirm (the store keeps a repeated id once)."""

    def run(self) -> None:
        orig = self.connect

        def connect():
            client = orig()
            xadd = client.xadd

            def durable_xadd(*args, **kwargs):
                entry = xadd(*args, **kwargs)
                if client.wait(1, 1000) < 1:
                    raise redis.ConnectionError("not confirmed by a replica")
                return entry
            client.xadd = durable_xadd
            return client
        self.connect = connect
        super().run()


def test_sentinel_url_everywhere_and_a_failover_to_the_replica(sentinel_setup, make_app, pg_url, pg_engine, procs,
                                                               figures):
    master, replica, sentinel = sentinel_setup
    url = f"redis+sentinel://127.0.0.1:{sentinel.port}/{MASTER}/0"
    client = buslib.connect(url)
    assert client.connection_pool.get_master_address()[1] == master.port
    app = make_app(REDIS_URL=url)
    http = app.server.test_client()
    assert http.get("/api/health").json["redis"] == "ok"
    gw_port = free_port()
    env = service_env(REDIS_URL=url, DATABASE_URL=pg_url, PANORAMA_SECRET_KEY="faults", PANORAMA_WS_PORT=gw_port,
                      PANORAMA_CLAIM_IDLE_MS=3000)
    worker = procs.start("ingest", module_argv("feeds.ingest", "--transport", "stream"), env)
    procs.start("gateway", module_argv("dashboard.gateway"), env)
    wait_for(lambda: listening(gw_port), timeout=60, message="the gateway listening")
    watcher = WsWatcher(ws_url(gw_port, "faults"))
    watcher.start()
    total = 6000
    producer = ReplicatedProducer(lambda: buslib.connect(url, socket_connect_timeout=0.5, socket_timeout=2), total,
                                  rate=1000, per_message=20)
    producer.start()
    try:
        wait_for(lambda: stored(pg_engine) >= 1000, timeout=60, message="events through the sentinel's master")
        wait_for(lambda: watcher.event_ids(), timeout=30, message="deltas through the gateway")
        down_at = time.monotonic()
        master.stop()  # SIGKILL the master: the sentinel promotes the replica
        wait_for(lambda: sentinel.master_port() == replica.port, timeout=60, message="failover to the replica")
        failover_s = time.monotonic() - down_at
        wait_for(lambda: http.get("/api/health").status_code == 200, timeout=30, message="health ok on the new master")
        health_s = time.monotonic() - down_at
        bus_up = wait_for(lambda: watcher.first(lambda f: f == {"type": "status", "bus": "up"}, down_at), timeout=30,
                          message="the gateway back on the bus (the new master)")
        gateway_up_s = bus_up - down_at
        # The old master comes back (same data) and the sentinel turns it into the new master's replica:
        # publishers that WAIT for a replica can go on.
        master.start()
        old = redis.Redis(port=master.port)
        wait_for(lambda: old.info("replication").get("master_link_status") == "up", timeout=60,
                 message="the old master re-joined as a replica")
        rejoined_s = time.monotonic() - down_at
        sent_at_failover = producer.sent
        wait_for(lambda: any(int(i.split("-")[1]) > sent_at_failover for i in watcher.event_ids(down_at)),
                 timeout=60, message="the gateway pushing events published after the failover")
        push_s = time.monotonic() - down_at
        producer.join(60)
        assert producer.error is None and producer.sent == total
        wait_for(lambda: stored(pg_engine) == total, timeout=60, message=f"all {total} events stored")
        stored_s = time.monotonic() - down_at
        wait_for(lambda: pending(redis.Redis(port=replica.port)) == 0, timeout=30, message="all acknowledged")
    finally:
        producer.finish()
        watcher.ws.close()
    assert worker.poll() is None
    assert buslib.connect(url).connection_pool.get_master_address()[1] == replica.port
    counts = totals(pg_engine)
    assert counts["events"] == counts["rollups"] == total
    figures(fault="Sentinel failover (master SIGKILL, replica promoted)", published=total, stored=counts["events"],
            lost=total - counts["events"], producer_retries=producer.retries, failover_s=round(failover_s, 2),
            old_master_rejoined_as_replica_after_s=round(rejoined_s, 2),
            health_ok_after_s=round(health_s, 2), gateway_bus_up_after_s=round(gateway_up_s, 2),
            gateway_pushing_new_events_after_s=round(push_s, 2),
            all_stored_after_s=round(stored_s, 2))


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
