"""Redis Sentinel through redis-py's own clients (REDIS_URL=redis+sentinel://...): the app, an ingest worker and
a gateway find the master through a real sentinel, and after a failover to the replica carry on by themselves.
Publishers use the product's own paths (feeds.publish, POST /api/events under gunicorn), which do not wait for a
replica: what the old master acknowledged in its last moments may be lost, and only that."""

from __future__ import annotations

import threading
import time

import orjson
import pytest
import redis
import requests
from sqlalchemy import select

from dashboard.core import bus as buslib
from dashboard.storage.models import events
from dashboard.core.channels import feed_names
from feeds.publish import publish
from tests.faults.common import WsWatcher, listening, make_events, stored, totals, ws_url
from tests.faults.procs import gunicorn_argv, module_argv, service_env, wait_http
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


# What asynchronous replication can lose at a failover: what the old master acknowledged and had not yet
# streamed to its replica. On one host that is what it took in the last milliseconds before it died; an
# entry acknowledged this long before the kill and lost would be a loss of another kind.
REPLICATION_WINDOW_S = 1.0


class AckingPublisher(threading.Thread):
    """Send ``batches`` batches of ``size`` events through ``send(batch) -> bool`` (True: acknowledged) about
    every ``every_s`` seconds; resend a batch until it is acknowledged (the store keeps a repeated id once), and
    note when each was acknowledged."""

    def __init__(self, name: str, send, domain: str, first_id: int, batches: int, size: int = 20,
                 every_s: float = 0.02):
        super().__init__(daemon=True, name=name)
        self.send, self.domain, self.first_id = send, domain, first_id
        self.batches, self.size, self.every_s = batches, size, every_s
        self.acked: dict[str, float] = {}  # event id -> when it was acknowledged (monotonic)
        self.refused = 0  # attempts not acknowledged (an error, a 503, no answer): the batch is sent again
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for k in range(self.batches):
                batch = make_events(self.first_id + k * self.size, self.size, self.domain)
                while not self.stop_event.is_set() and not self.send(batch):
                    self.refused += 1
                    self.stop_event.wait(0.05)
                if self.stop_event.is_set():
                    return
                at = time.monotonic()
                self.acked.update((e["id"], at) for e in batch)
                self.stop_event.wait(self.every_s)
        except BaseException as err:  # noqa: BLE001 - the test reports it
            self.error = err

    def finish(self) -> None:
        self.stop_event.set()
        self.join(30)


def stream_sender(url: str):
    """``feeds.publish`` over the Sentinel URL, as the simulator and a Python publisher use it: acknowledged
    when XADD answered."""
    state = {"client": buslib.connect(url, socket_connect_timeout=0.5, socket_timeout=2)}

    def send(batch: list[dict]) -> bool:
        try:
            publish(state["client"], batch[0]["id"].split("-")[0], batch, transport="stream")
            return True
        except (redis.ConnectionError, redis.TimeoutError):
            state["client"] = buslib.connect(url, socket_connect_timeout=0.5, socket_timeout=2)
            return False
    return send


def http_sender(origin: str, token: str):
    """``POST /api/events`` through gunicorn: acknowledged when it answered 202."""
    def send(batch: list[dict]) -> bool:
        try:
            domain = batch[0]["id"].split("-")[0]
            r = requests.post(f"{origin}/api/events?domain={domain}", data=orjson.dumps(batch), timeout=5,
                              headers={"Authorization": f"Bearer {token}", "Connection": "close"})
        except requests.RequestException:
            return False
        if r.status_code == 202:
            assert r.json()["accepted"] == len(batch), r.text
            return True
        assert r.status_code == 503 and r.json()["error"]["code"] == "bus_unavailable", (r.status_code, r.text)
        return False
    return send


def stored_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(events.c.event_id)).scalars())


def settled(client: redis.Redis) -> bool:
    """Tell whether ingest has read and acknowledged every entry of every feed stream (Redis 7: XINFO lag)."""
    for stream in feed_names():
        try:
            groups = client.xinfo_groups(stream)
        except redis.ResponseError:
            continue  # no such stream
        if not groups or any(g["pending"] or g.get("lag") for g in groups):
            return False
    return True


def test_sentinel_url_everywhere_and_a_failover_to_the_replica(sentinel_setup, make_app, pg_url, pg_engine, procs,
                                                               figures):
    master, replica, sentinel = sentinel_setup
    url = f"redis+sentinel://127.0.0.1:{sentinel.port}/{MASTER}/0"
    client = buslib.connect(url)
    assert client.connection_pool.get_master_address()[1] == master.port
    app = make_app(REDIS_URL=url)
    http = app.server.test_client()
    assert http.get("/api/health").json["redis"] == "ok"
    gw_port, app_port = free_port(), free_port()
    env = service_env(REDIS_URL=url, DATABASE_URL=pg_url, PANORAMA_SECRET_KEY="faults", PANORAMA_WS_PORT=gw_port,
                      PANORAMA_CLAIM_IDLE_MS=3000, PANORAMA_INGEST_TOKEN="faults-token")
    worker = procs.start("ingest", module_argv("feeds.ingest", "--transport", "stream"), env)
    procs.start("gateway", module_argv("dashboard.gateway"), env)
    gunicorn = procs.start("app", gunicorn_argv(app_port, 2), env)
    origin = f"http://127.0.0.1:{app_port}"
    wait_http(origin + "/api/health", gunicorn)
    wait_for(lambda: listening(gw_port), timeout=60, message="the gateway listening")
    watcher = WsWatcher(ws_url(gw_port, "faults"))
    watcher.start()
    # The product's own publishing paths, neither of which waits for a replica.
    publishers = [AckingPublisher("xadd", stream_sender(url), "traffic", 0, batches=300),
                  AckingPublisher("http", http_sender(origin, "faults-token"), "security", 1_000_000, batches=150,
                                  every_s=0.04)]
    for p in publishers:
        p.start()
    try:
        wait_for(lambda: stored(pg_engine) >= 1000, timeout=60, message="events through the sentinel's master")
        wait_for(lambda: watcher.event_ids(), timeout=30, message="deltas through the gateway")
        down_at = time.monotonic()
        master.stop()  # SIGKILL the master: the sentinel promotes the replica
        wait_for(lambda: sentinel.master_port() == replica.port, timeout=60, message="failover to the replica")
        failover_s = time.monotonic() - down_at
        wait_for(lambda: http.get("/api/health").status_code == 200, timeout=30, message="health ok on the new master")
        health_s = time.monotonic() - down_at
        bus_up = wait_for(lambda: watcher.first(lambda f: f == {"v": 1, "type": "status", "bus": "up"}, down_at), timeout=30,
                          message="the gateway back on the bus (the new master)")
        gateway_up_s = bus_up - down_at
        # The old master comes back (with its AOF) and the sentinel turns it into the new master's replica:
        # what it had taken and not passed on is dropped by its resynchronisation.
        master.start()
        old = redis.Redis(port=master.port)
        wait_for(lambda: old.info("replication").get("master_link_status") == "up", timeout=60,
                 message="the old master re-joined as a replica")
        rejoined_s = time.monotonic() - down_at
        wait_for(lambda: any(at > down_at for p in publishers for at in list(p.acked.values())), timeout=60,
                 message="publishing acknowledged again after the failover")
        acked_at_failover = {i for p in publishers for i, at in list(p.acked.items()) if at > down_at}
        wait_for(lambda: acked_at_failover & watcher.event_ids(down_at), timeout=60,
                 message="the gateway pushing events published after the failover")
        # when the frame came, not when this wait (after the re-join) saw it
        push_s = watcher.first(lambda f: any(e["id"] in acked_at_failover for e in f.get("events", ())),
                               down_at) - down_at
        for p in publishers:
            p.join(120)
            assert not p.is_alive() and p.error is None, (p.name, p.error)
        new_master = redis.Redis(port=replica.port)
        wait_for(lambda: settled(new_master), timeout=60, message="every entry on the new master stored")
    finally:
        for p in publishers:
            p.finish()
        watcher.ws.close()
    assert worker.poll() is None and gunicorn.poll() is None
    assert buslib.connect(url).connection_pool.get_master_address()[1] == replica.port
    in_db = stored_ids(pg_engine)
    counts = totals(pg_engine)
    assert counts["events"] == counts["distinct"] == counts["rollups"] == counts["district_minutes"] == len(in_db)
    acked = {i: at for p in publishers for i, at in p.acked.items()}
    lost = {i: at for i, at in acked.items() if i not in in_db}
    assert in_db <= set(acked), "stored only what was published"
    # Only what the old master acknowledged in its last moments may be gone; everything acknowledged after
    # the failover, and everything acknowledged earlier, is stored.
    late = {i: round(down_at - at, 3) for i, at in lost.items() if not down_at - REPLICATION_WINDOW_S <= at}
    assert not late, f"lost entries acknowledged long before the kill: {late}"
    assert not [i for i, at in lost.items() if at > down_at + failover_s], "lost an entry the new master took"
    lost_by = {p.name: sum(1 for i in p.acked if i in lost) for p in publishers}
    figures(fault="Sentinel failover (master SIGKILL, replica promoted)",
            acknowledged_xadd=len(publishers[0].acked), acknowledged_http_202=len(publishers[1].acked),
            stored=len(in_db), lost_xadd=lost_by["xadd"], lost_http=lost_by["http"],
            lost_acknowledged_within_ms_of_kill=round(max((down_at - at for at in lost.values()), default=0) * 1000),
            refused_and_resent_xadd=publishers[0].refused, refused_and_resent_http=publishers[1].refused,
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
