"""Redis Cluster failover (REDIS_URL=redis+cluster://...): three masters with a replica each; the master serving
feeds:traffic, feeds:security and panorama:updates is SIGKILLed and the cluster promotes its replica. The app, an
ingest worker and a gateway carry on by themselves. Publishers use the product's own paths (feeds.publish, POST
/api/events under gunicorn), which do not wait for a replica: what the old master acknowledged in its last
moments may be lost, and only that."""

from __future__ import annotations

import time

import pytest
import redis

from dashboard.core import bus as buslib
from dashboard.core.channels import INGEST_GROUP, feed_names
from feeds.publish import publish
from tests.faults.common import WsWatcher, listening, stored, totals, ws_url
from tests.faults.procs import gunicorn_argv, module_argv, service_env, wait_http
from tests.faults.test_sentinel import REPLICATION_WINDOW_S, AckingPublisher, http_sender, stored_ids
from tests.helpers import wait_for
from tests.redis_proc import RedisCluster, free_port

pytestmark = pytest.mark.faults


@pytest.fixture
def cluster_ha(tmp_path):
    """Three masters and three replicas, private, ended at teardown."""
    (tmp_path / "cluster").mkdir()
    cluster = RedisCluster(tmp_path / "cluster", masters=3, replicas=1)
    cluster.start()
    yield cluster
    cluster.stop()


def stream_sender(url: str):
    """``feeds.publish`` over the cluster URL: acknowledged when XADD answered; any bus error is resent."""
    state = {"client": None}

    def send(batch: list[dict]) -> bool:
        try:
            state["client"] = state["client"] or buslib.connect(url, socket_connect_timeout=0.5, socket_timeout=2)
            publish(state["client"], batch[0]["id"].split("-")[0], batch, transport="stream")
            return True
        except buslib.BUS_DOWN:
            state["client"] = None
            return False
    return send


def master_of(cluster: RedisCluster, key: str, ask: int) -> int | None:
    """The port of the master serving ``key``'s slot, as the node on port ``ask`` sees it (None: no answer)."""
    try:
        with cluster.client(ask) as c:
            slot = int(c.execute_command("CLUSTER KEYSLOT", key))
            for start, end, master, *_ in c.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
    except (redis.ConnectionError, redis.TimeoutError):
        return None
    return None


def settled(client) -> bool:
    """Tell whether the ingest group has read and acknowledged every entry of every feed stream."""
    for stream in feed_names():
        try:
            groups = client.xinfo_groups(stream)
        except redis.ResponseError:
            continue  # no such stream (lost with a master that had not passed it on)
        mine = [g for g in groups if g["name"] in (INGEST_GROUP, INGEST_GROUP.encode())]
        if mine and (mine[0]["pending"] or mine[0].get("lag")):
            return False
    return True


def test_cluster_failover_of_the_master_of_two_feeds_and_the_updates_channel(cluster_ha, make_app, pg_url, pg_engine,
                                                                             procs, figures):
    url = cluster_ha.url
    victim = cluster_ha.owner("feeds:traffic")
    assert cluster_ha.owner("feeds:security") == victim == cluster_ha.owner("panorama:updates")
    witness = next(n.port for n in cluster_ha.nodes if n.port != victim)
    app = make_app(REDIS_URL=url)
    http = app.server.test_client()
    assert http.get("/api/health").json["redis"] == "ok"
    gw_port, app_port = free_port(), free_port()
    env = service_env(REDIS_URL=url, DATABASE_URL=pg_url, PANORAMA_SECRET_KEY="faults", PANORAMA_WS_PORT=gw_port,
                      PANORAMA_CLAIM_IDLE_MS=3000, PANORAMA_INGEST_TOKEN="faults-token")
    worker = procs.start("ingest", module_argv("feeds.ingest", "--transport", "stream"), env)
    procs.start("gateway", module_argv("dashboard.gateway"), env)
    gunicorn = procs.start("app", gunicorn_argv(app_port, 1), env)
    origin = f"http://127.0.0.1:{app_port}"
    wait_http(origin + "/api/health", gunicorn)
    wait_for(lambda: listening(gw_port), timeout=60, message="the gateway listening")
    watcher = WsWatcher(ws_url(gw_port, "faults"))
    watcher.start()
    publishers = [AckingPublisher("xadd", stream_sender(url), "traffic", 0, batches=300),
                  AckingPublisher("http", http_sender(origin, "faults-token"), "security", 1_000_000, batches=150,
                                  every_s=0.04)]
    for p in publishers:
        p.start()
    try:
        wait_for(lambda: stored(pg_engine) >= 1000, timeout=60, message="events through the cluster")
        wait_for(lambda: watcher.event_ids(), timeout=30, message="deltas through the gateway")
        down_at = time.monotonic()
        cluster_ha.node(victim).stop()  # SIGKILL: the cluster promotes its replica
        wait_for(lambda: master_of(cluster_ha, "feeds:traffic", witness) not in (None, victim), timeout=60,
                 interval=0.05, message="a replica promoted")
        failover_s = time.monotonic() - down_at
        wait_for(lambda: http.get("/api/health").status_code == 200, timeout=60, interval=0.1,
                 message="health ok after the failover")
        health_s = time.monotonic() - down_at
        up = {"v": 1, "type": "status", "bus": "up"}
        bus_up = wait_for(lambda: watcher.first(lambda f: f == up, down_at), timeout=60,
                          message="the gateway back on the bus")
        wait_for(lambda: any(at > down_at for p in publishers for at in list(p.acked.values())), timeout=60,
                 message="publishing acknowledged again after the failover")
        # Re-read each time: a frame carries a batch's newest events only, and the first ones acknowledged
        # after the failover may be among a catch-up batch's older ones.
        def acked_after() -> set[str]:
            return {i for p in publishers for i, at in list(p.acked.items()) if at > down_at}
        wait_for(lambda: acked_after() & watcher.event_ids(down_at), timeout=60,
                 message="the gateway pushing events published after the failover")
        after = acked_after()
        push_s = watcher.first(lambda f: any(e["id"] in after for e in f.get("events", ())), down_at) - down_at
        # The old master comes back and the cluster makes it its successor's replica (dropping what it had).
        cluster_ha.node(victim).start()
        old = cluster_ha.client(victim)
        wait_for(lambda: old.info("replication").get("master_link_status") == "up", timeout=60,
                 message="the old master re-joined as a replica")
        old.close()
        rejoined_s = time.monotonic() - down_at
        for p in publishers:
            p.join(180)
            assert not p.is_alive() and p.error is None, (p.name, p.error)
        wait_for(lambda: settled(buslib.connect(url)), timeout=60, message="every entry stored and acknowledged")
    finally:
        for p in publishers:
            p.finish()
        watcher.ws.close()
    assert worker.poll() is None and gunicorn.poll() is None
    in_db = stored_ids(pg_engine)
    counts = totals(pg_engine)
    assert counts["events"] == counts["distinct"] == counts["rollups"] == counts["district_minutes"] == len(in_db)
    acked = {i: at for p in publishers for i, at in p.acked.items()}
    lost = {i: at for i, at in acked.items() if i not in in_db}
    assert in_db <= set(acked), "stored only what was published"
    late = {i: round(down_at - at, 3) for i, at in lost.items() if not down_at - REPLICATION_WINDOW_S <= at}
    assert not late, f"lost entries acknowledged long before the kill: {late}"
    assert not [i for i, at in lost.items() if at > down_at + failover_s], "lost an entry the new master took"
    lost_by = {p.name: sum(1 for i in p.acked if i in lost) for p in publishers}
    figures(fault="Cluster failover (master of traffic, security, panorama:updates SIGKILLed; replica promoted)",
            acknowledged_xadd=len(publishers[0].acked), acknowledged_http_202=len(publishers[1].acked),
            stored=len(in_db), lost_xadd=lost_by["xadd"], lost_http=lost_by["http"],
            lost_acknowledged_within_ms_of_kill=round(max((down_at - at for at in lost.values()), default=0) * 1000),
            refused_and_resent_xadd=publishers[0].refused, refused_and_resent_http=publishers[1].refused,
            failover_s=round(failover_s, 2), health_ok_after_s=round(health_s, 2),
            gateway_bus_up_after_s=round(bus_up - down_at, 2), gateway_pushing_new_events_after_s=round(push_s, 2),
            old_master_rejoined_as_replica_after_s=round(rejoined_s, 2))
