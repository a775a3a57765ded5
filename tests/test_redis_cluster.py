"""Redis Cluster (REDIS_URL=redis+cluster://...) against three real masters: the feed streams sit in different
slots, so ingest reads each on its own; publishing, POST /api/events, the real ingest worker, the gateway and
health all work there, and the gateway and health ride out a whole-cluster outage by themselves."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from websockets.asyncio.client import connect

from dashboard.core import bus as buslib
from dashboard.briefings import lock
from dashboard.core.channels import INGEST_GROUP, clients_key, deadletter_key, feed_names
from dashboard.gateway.admission import Admission
from dashboard.web.metrics import gateway_clients
from feeds.publish import publish
from tests.faults.common import make_events, stored, totals
from tests.helpers import TEST_PASSWORD, make_user
from tests.faults.procs import module_argv, service_env
from tests.helpers import wait_for
from tests.redis_proc import RedisCluster
from tests.test_gateway import has_event, recv, recv_until, running, ws_url

pytestmark = pytest.mark.timeout(240)
DOMAINS = ("traffic", "security", "environment", "incident")
STATUS_DOWN = {"v": 1, "type": "status", "bus": "down"}
STATUS_UP = {"v": 1, "type": "status", "bus": "up"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One private three-master cluster for the module (made once: it takes seconds)."""
    c = RedisCluster(tmp_path_factory.mktemp("cluster"))
    c.start()
    yield c
    c.stop()


@pytest.fixture
def fresh_cluster(cluster):
    """The module's cluster, up and emptied for this test."""
    cluster.start_stopped()
    cluster.flushall()
    return cluster


def start_ingest(procs, url: str, pg_url: str, transport: str = "stream"):
    env = service_env(REDIS_URL=url, DATABASE_URL=pg_url, PANORAMA_SECRET_KEY="cluster-test")
    return procs.start("ingest", module_argv("feeds.ingest", "--transport", transport), env)


def subscribers(cluster: RedisCluster, channel: str) -> int:
    """Subscribers of a plain pub/sub channel over every node (PUBSUB NUMSUB counts a node's own only)."""
    n = 0
    for node in cluster.nodes:
        with cluster.client(node.port) as c:
            n += int(c.execute_command("PUBSUB", "NUMSUB", channel)[1])
    return n


def acknowledged(client) -> bool:
    """Tell whether the ingest group has read and acknowledged every entry of every feed stream."""
    for stream in feed_names():
        groups = [g for g in client.xinfo_groups(stream) if g["name"] in (INGEST_GROUP, INGEST_GROUP.encode())]
        if not groups or groups[0]["pending"] or groups[0].get("lag"):
            return False
    return True


def stored_ids(engine) -> list[str]:
    from sqlalchemy import select

    from dashboard.storage.models import events

    with engine.connect() as conn:
        return list(conn.execute(select(events.c.event_id)).scalars())


def test_cluster_urls_are_parsed_strictly():
    t = buslib.parse_cluster_url("redis+cluster://app:s%3Acret@10.0.0.1:7000,10.0.0.2,[::1]:7002/")
    assert t.nodes == [("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002)]
    assert (t.username, t.password) == ("app", "s:cret")
    assert buslib.parse_cluster_url("redis+cluster://h:7000/0").nodes == [("h", 7000)]
    for bad in ("redis+cluster:///", "redis+cluster://h:x/", "redis+cluster://h:7000/1", "redis+cluster://h/?ssl=1"):
        with pytest.raises(ValueError):
            buslib.parse_cluster_url(bad)
    assert buslib.is_cluster_url("REDIS+CLUSTER://h:1/") and not buslib.is_cluster_url("redis://h:1/0")
    assert buslib.redacted("redis+cluster://:pw@h:1,h:2/") == "redis+cluster://:***@h:1,h:2/"


def test_every_event_on_streams_in_different_slots_is_stored_once_and_acknowledged(fresh_cluster, make_app, pg_url,
                                                                                   pg_engine, procs):
    url = fresh_cluster.url
    streams = list(feed_names())
    slots = {s: fresh_cluster.keyslot(s) for s in streams}
    assert len(set(slots.values())) == len(streams), slots  # no two feed streams share a slot ...
    assert len({fresh_cluster.owner(s) for s in streams}) >= 2  # ... and they live on different masters
    client = buslib.connect(url)
    app = make_app(REDIS_URL=url)
    http = app.server.test_client()
    assert http.get("/api/health").json["redis"] == "ok"

    # Streams through feeds.publish, some before the worker starts (a backlog) ...
    sent = []
    for k, domain in enumerate(DOMAINS):
        batch = make_events(k * 1000, 60, domain, incident_every=20)
        publish(client, domain, batch, transport="stream")
        sent += batch
    worker = start_ingest(procs, url, pg_url, transport="both")
    # ... POST /api/events: each valid event onto its domain's stream, the rejected one on the dead-letter list.
    posted = make_events(5000, 30, "security") + [{"id": "bad", "ts": "yesterday", "kind": "x", "district": "futian"}]
    r = http.post("/api/events?domain=security", data=orjson.dumps(posted),
                  headers={"Authorization": "Bearer test-token"})
    assert r.status_code == 202 and r.json["accepted"] == 30 and len(r.json["rejected"]) == 1, r.json
    sent += posted[:-1]
    assert client.llen(deadletter_key()) == 1
    # ... and plain pub/sub through feeds.publish, once the worker listens (pub/sub keeps nothing for later).
    wait_for(lambda: subscribers(fresh_cluster, "feeds:environment") >= 1, timeout=60,
             message="the ingest worker subscribed to the feeds")
    for k, domain in enumerate(("environment", "traffic")):
        batch = make_events(7000 + k * 1000, 25, domain)
        publish(client, domain, batch, transport="pubsub")
        sent += batch
    wait_for(lambda: stored(pg_engine) >= len(sent), timeout=90, message="every event stored")
    wait_for(lambda: acknowledged(client), timeout=30, message="every stream entry acknowledged")

    # Idle now: one event at a time on each stream in turn, while the worker waits on one slot at a time.
    waits = {}
    for k, domain in enumerate(DOMAINS):
        time.sleep(0.5)
        [event] = make_events(9000 + k, 1, domain)
        at = time.monotonic()
        publish(client, domain, [event], transport="stream")
        wait_for(lambda: event["id"] in set(stored_ids(pg_engine)), timeout=30, interval=0.005,
                 message=f"the idle {domain} event stored")
        waits[domain] = round((time.monotonic() - at) * 1000)
        sent.append(event)
    wait_for(lambda: acknowledged(client), timeout=30, message="the idle events acknowledged")

    assert worker.poll() is None
    ids = stored_ids(pg_engine)
    assert sorted(ids) == sorted(e["id"] for e in sent)  # each once: nothing lost, nothing twice
    counts = totals(pg_engine)
    assert counts["events"] == counts["distinct"] == counts["rollups"] == counts["district_minutes"] == len(sent)
    log = procs.log("ingest")
    assert "Traceback" not in log and "unexpected error" not in log and "Redis unavailable" not in log, log[-3000:]
    metrics = http.get("/metrics").get_data(as_text=True)
    assert "panorama_redis_up 1.0" in metrics
    print("CLUSTER idle stream event published -> stored, ms:", waits)


def test_the_gateway_pushes_deltas_and_rides_out_a_cluster_outage(fresh_cluster, make_app, pg_url, pg_engine, procs):
    url = fresh_cluster.url
    client = buslib.connect(url)
    app = make_app(REDIS_URL=url)
    start_ingest(procs, url, pg_url)
    with running(app) as gw:
        async def scenario():
            async with connect(ws_url(gw)) as ws:
                assert (await recv(ws))["type"] == "snapshot"
                # a delta of the real ingest worker, through the gateway's subscription on the cluster
                await asyncio.to_thread(publish, client, "incident", make_events(0, 3, "incident"), "stream")
                await recv_until(ws, has_event("incident-2"), timeout=60)

                # every master killed: the clients are told, and health says so, even for an app made now
                down_at = time.monotonic()
                await asyncio.to_thread(fresh_cluster.stop)
                await recv_until(ws, lambda f: f == STATUS_DOWN, timeout=30)
                told_down_s = time.monotonic() - down_at
                during = make_app(REDIS_URL=url).server.test_client()
                health = during.get("/api/health")
                assert health.status_code == 503 and health.json["redis"].startswith("unreachable"), health.json
                refused = during.post("/api/events?domain=traffic", data=orjson.dumps(make_events(50, 1, "traffic")),
                                      headers={"Authorization": "Bearer test-token"})
                assert refused.status_code == 503 and refused.json["error"]["code"] == "bus_unavailable"

                # back (empty: no persistence here): re-subscribed, every client re-synced, deltas flowing again
                up_at = time.monotonic()
                await asyncio.to_thread(fresh_cluster.start_stopped)
                ok_s = time.monotonic() - up_at
                await recv_until(ws, lambda f: f == STATUS_UP, timeout=60)
                told_up_s = time.monotonic() - up_at
                await recv_until(ws, lambda f: f["type"] == "snapshot", timeout=30)
                await asyncio.to_thread(publish, buslib.connect(url), "traffic", make_events(100, 3, "traffic"),
                                        "stream")
                await recv_until(ws, has_event("traffic-102"), timeout=60)
                print(f"CLUSTER gateway: clients told 'down' {told_down_s:.2f} s after the kill; nodes restarted and "
                      f"cluster_state:ok after {ok_s:.2f} s, clients told 'up' after {told_up_s:.2f} s")
        asyncio.run(scenario())
    assert app.server.test_client().get("/api/health").json["redis"] == "ok"
    assert stored(pg_engine) == 6


def test_locks_limits_and_counters_keep_each_command_to_one_slot(fresh_cluster, make_app):
    url = fresh_cluster.url
    client = buslib.connect(url)
    # the briefing lock: SET NX to take it, a WATCH / MULTI on its one key to give it back
    token = lock.acquire(client)
    with pytest.raises(lock.BriefingBusy):
        lock.acquire(client)
    lock.release(client, token)
    assert client.get(lock.KEY) is None
    # /metrics sums the gateways' client counts, whose keys are in different slots
    keys = [clients_key(f"gw-{i}") for i in range(4)]
    assert len({fresh_cluster.keyslot(k) for k in keys}) > 1
    for n, key in enumerate(keys, 1):
        client.set(key, n, ex=60)
    assert gateway_clients(client) == 1 + 2 + 3 + 4
    # the sign-in rate limit: INCR, EXPIRE and TTL of one key in one MULTI
    app = make_app(REDIS_URL=url, PANORAMA_LOGIN_MAX_FAILURES=2, PANORAMA_LOGIN_WINDOW_S=60)
    make_user(app, "a")
    http = app.server.test_client()
    codes = [http.post("/api/session", json={"username": "a", "password": p}).status_code
             for p in ("guess-1", "guess-2", TEST_PASSWORD)]
    assert codes == [401, 401, 429]

    # the gateways' ticket reuse and socket limits: SET NX, and one holder's sorted set in one MULTI
    async def admission():
        bus = buslib.connect_async(url)
        try:
            one, two = Admission(bus, "gw-1", limit=1), Admission(bus, "gw-2", limit=1)
            assert await one.use_ticket("ticket", 60) and not await two.use_ticket("ticket", 60)
            slot = await one.take_slot("u:1")
            assert slot is not None and await two.take_slot("u:1") is None
            await one.release(slot)
            assert await two.take_slot("u:1") is not None
        finally:
            await bus.aclose()
    asyncio.run(admission())
