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
from tests.faults.failover import join_publishers, losses, pushing_again_s, settled, start_stack, stop_stack
from tests.helpers import wait_for
from tests.redis_proc import RedisCluster

pytestmark = pytest.mark.faults


@pytest.fixture
def cluster_ha(tmp_path):
    """Three masters and three replicas, private, ended at teardown."""
    (tmp_path / "cluster").mkdir()
    cluster = RedisCluster(tmp_path / "cluster", masters=3, replicas=1)
    cluster.start()
    yield cluster
    cluster.stop()


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


def test_cluster_failover_of_the_master_of_two_feeds_and_the_updates_channel(cluster_ha, make_app, pg_url, pg_engine,
                                                                             procs, figures):
    url = cluster_ha.url
    victim = cluster_ha.owner("feeds:traffic")
    assert cluster_ha.owner("feeds:security") == victim == cluster_ha.owner("panorama:updates")
    witness = next(n.port for n in cluster_ha.nodes if n.port != victim)
    app = make_app(REDIS_URL=url)
    http = app.server.test_client()
    assert http.get("/api/health").json["redis"] == "ok"
    stack = start_stack(procs, url, pg_url, pg_engine, app_workers=1)
    try:
        down_at = time.monotonic()
        cluster_ha.node(victim).stop()  # SIGKILL: the cluster promotes its replica
        wait_for(lambda: master_of(cluster_ha, "feeds:traffic", witness) not in (None, victim), timeout=60,
                 interval=0.05, message="a replica promoted")
        failover_s = time.monotonic() - down_at
        wait_for(lambda: http.get("/api/health").status_code == 200, timeout=60, interval=0.1,
                 message="health ok after the failover")
        health_s = time.monotonic() - down_at
        up = {"v": 1, "type": "status", "bus": "up"}
        bus_up = wait_for(lambda: stack.watcher.first(lambda f: f == up, down_at), timeout=60,
                          message="the gateway back on the bus")
        push_s = pushing_again_s(stack, down_at)
        # The old master comes back and the cluster makes it its successor's replica (dropping what it had).
        cluster_ha.node(victim).start()
        old = cluster_ha.client(victim)
        wait_for(lambda: old.info("replication").get("master_link_status") == "up", timeout=60,
                 message="the old master re-joined as a replica")
        old.close()
        rejoined_s = time.monotonic() - down_at
        join_publishers(stack, 180)
        wait_for(lambda: settled(buslib.connect(url)), timeout=60, message="every entry stored and acknowledged")
    finally:
        stop_stack(stack)
    figures(fault="Cluster failover (master of traffic, security, panorama:updates SIGKILLed; replica promoted)",
            **losses(pg_engine, stack, down_at, failover_s),
            failover_s=round(failover_s, 2), health_ok_after_s=round(health_s, 2),
            gateway_bus_up_after_s=round(bus_up - down_at, 2), gateway_pushing_new_events_after_s=round(push_s, 2),
            old_master_rejoined_as_replica_after_s=round(rejoined_s, 2))
