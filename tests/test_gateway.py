"""The websocket gateway: snapshot then deltas, coalescing, slow clients, origins, Redis restarts, embedded."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import orjson
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from dashboard.web.auth import issue_ticket, verify_ticket
from dashboard.gateway.server import Gateway, clients_key
from dashboard.gateway.fanout import MAX_EVENTS, Fanout
from feeds.pipeline import now_ms
from tests.faults.common import never_reading_client
from tests.helpers import TEST_PASSWORD, make_user, wait_for
from tests.redis_proc import free_port
from tests.test_api import ingest_now, now_event

pytestmark = pytest.mark.timeout(60)
ORIGIN = "http://127.0.0.1:8050"


@contextlib.contextmanager
def running(app, ticket_check_s: float | None = None, **options):
    """Run a gateway of the app's services on a free port (its own thread and loop) for the block."""
    gw = Gateway(app.server.extensions["panorama"], port=0, origins=[ORIGIN], **options)
    if ticket_check_s is not None:
        gw.ticket_check_s = ticket_check_s  # read by its loop from the start
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def ws_url(gw: Gateway) -> str:
    """Return the gateway's URL with a fresh ticket, as a program that holds the secret key makes one."""
    return f"ws://127.0.0.1:{gw.port}/?ticket={issue_ticket(gw.secret, {'svc': 'test'})}"


async def recv(ws, timeout: float = 5.0) -> dict:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, predicate, timeout: float = 10.0) -> list[dict]:
    """Receive frames until one satisfies ``predicate``; return them all (that one last)."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frames.append(orjson.loads(await ws.recv()))
            if predicate(frames[-1]):
                return frames


def has_event(event_id: str):
    return lambda f: any(e["id"] == event_id for e in f.get("events", ()))


def totals_15m(frame: dict) -> dict | None:
    windows = frame.get("state", {}).get("windows")
    return windows["15m"]["totals"] if windows else None


def delta(i: int, n: int = 5, title: str = "", at_ms: int | None = None) -> bytes:
    """Encode an ingest-like delta with ``n`` events ``d<i>-<j>``, newest (highest j) first."""
    at = at_ms if at_ms is not None else int(time.time() * 1000)
    evs = [{"id": f"d{i}-{j}", "domain": "traffic", "kind": "congestion", "district": "440304", "street": None,
            "severity": 1, "title": title or f"拥堵 {i}-{j}", "ts": at, "value": 5.0, "unit": "index",
            "lat": 22.5, "lon": 114.0} for j in reversed(range(n))]
    return orjson.dumps({"type": "delta", "at": at, "stored": n, "events": evs, "counts": [], "feeds": {},
                         "incidents": []})


def test_snapshot_first_then_a_delta_with_the_new_events_and_state(app):
    with running(app) as gw:
        async def scenario():
            async with connect(ws_url(gw), origin=ORIGIN) as ws:
                snap = await recv(ws)
                assert snap["type"] == "snapshot" and isinstance(snap["seq"], int)
                assert set(snap["state"]) == {"generated_at", "windows", "trend", "feeds", "events", "alerts", "majors",
                                              "units"}
                assert snap["state"]["alerts"] == []  # the firing and acknowledged ones: none yet
                # (other test runs may publish on the shared channel: only this test's events are checked)
                assert totals_15m(snap)["traffic"] == 0 and "ev-1" not in {e["id"] for e in snap["state"]["events"]}
                await asyncio.to_thread(ingest_now, app, {"traffic": [now_event(1), now_event(2)]})
                frames = await recv_until(ws, lambda f: (totals_15m(f) or {}).get("traffic") == 2)
                deltas = [f for f in frames if f["type"] == "delta"]
                assert deltas and all(d["seq"] > snap["seq"] for d in deltas)
                events = [e for d in deltas for e in d.get("events", ())]
                assert {"ev-1", "ev-2"} <= {e["id"] for e in events}
                mine = next(e for e in events if e["id"] == "ev-1")
                assert set(mine) == {"id", "domain", "kind", "district", "street", "severity", "title", "ts",
                                     "value", "unit"}  # the compact view: no coordinates
                assert mine["district"] == "440304" and mine["title"] == "测试事件 1"
                assert set(frames[-1]["state"]) <= {"generated_at", "windows", "trend", "feeds"}
        asyncio.run(scenario())


def test_reconnect_gets_a_fresh_snapshot(app):
    with running(app) as gw:
        async def scenario():
            async with connect(ws_url(gw)) as ws:
                await recv(ws)
                await asyncio.to_thread(ingest_now, app, {"incident": [now_event(7, kind="fire", severity=4)]})
                seen = {"event": False, "total": False}

                def both(f):
                    seen["event"] |= has_event("ev-7")(f)
                    seen["total"] |= (totals_15m(f) or {}).get("incident") == 1
                    return all(seen.values())
                await recv_until(ws, both)
            async with connect(ws_url(gw)) as ws:
                snap = await recv(ws)
                assert snap["type"] == "snapshot"
                assert "ev-7" in {e["id"] for e in snap["state"]["events"]} and totals_15m(snap)["incident"] == 1
        asyncio.run(scenario())


def test_bursts_are_coalesced_to_max_fps_keeping_the_newest_events(app):
    channel = f"test:gateway:{uuid.uuid4().hex}"
    with running(app, channel=channel) as gw:
        async def scenario():
            bus = aioredis.Redis.from_url(app.server.config["REDIS_URL"])
            async with connect(ws_url(gw)) as ws:
                await recv(ws)

                async def publish():
                    for i in range(200):  # 1,000 events in about a second
                        await bus.publish(channel, delta(i))
                        await asyncio.sleep(0.005)

                publisher = asyncio.create_task(publish())
                frames = []
                async with asyncio.timeout(15):
                    while not frames or not has_event("d199-4")(frames[-1][1]):
                        frame = orjson.loads(await ws.recv())
                        frames.append((time.monotonic(), frame))
                await publisher
            await bus.aclose()
            deltas = [(t, f) for t, f in frames if f["type"] == "delta"]
            elapsed = deltas[-1][0] - deltas[0][0]
            assert elapsed > 0.5, "the burst should span several ticks"
            assert (len(frames) - 1) / elapsed <= 11, f"{len(frames)} frames in {elapsed:.2f} s"
            assert all(len(f.get("events", ())) <= MAX_EVENTS for _, f in deltas)
            assert max(len(f.get("events", ())) for _, f in deltas) == MAX_EVENTS  # coalesced, newest kept
            last = deltas[-1][1]["events"]
            assert last[0]["id"] == "d199-4" and last[1]["id"] == "d199-3"  # newest first
            seqs = [f["seq"] for _, f in deltas]
            assert seqs == sorted(set(seqs))
        asyncio.run(scenario())


def test_a_slow_client_is_closed_without_slowing_the_others(app):
    channel = f"test:gateway:{uuid.uuid4().hex}"
    with running(app, channel=channel, send_timeout=1.0) as gw:
        slow = never_reading_client(ws_url(gw))
        wait_for(lambda: gw.stats()["clients"] == 1, message="the slow client registered")

        async def scenario():
            bus = aioredis.Redis.from_url(app.server.config["REDIS_URL"])
            lags, peaks = [], {"events": 0, "write_buffer": 0, "incidents": 0}
            async with connect(ws_url(gw)) as ws:
                await recv(ws)

                async def read():
                    async for raw in ws:
                        frame = orjson.loads(raw)
                        if frame.get("events"):
                            lags.append(time.time() * 1000 - frame["events"][0]["ts"])

                reader = asyncio.create_task(read())
                started, closed_at = time.monotonic(), None
                i = 0
                while closed_at is None or time.monotonic() - closed_at < 1.0:  # and one second more
                    assert time.monotonic() - started < 20, "the slow client was never closed"
                    await bus.publish(channel, delta(i, n=100, title="长标题" * 60))
                    i += 1
                    stats = await asyncio.to_thread(gw.stats)
                    for q in stats["queues"]:
                        for key in peaks:
                            peaks[key] = max(peaks[key], q[key])
                    if closed_at is None and stats["slow_closed"]:
                        closed_at = time.monotonic()
                    await asyncio.sleep(0.02)
                stats = await asyncio.to_thread(gw.stats)
                assert stats["clients"] == 1 and stats["slow_closed"] == 1
                reader.cancel()
            await bus.aclose()
            return lags, peaks

        lags, peaks = asyncio.run(scenario())
        slow.close()
    assert len(lags) > 20
    lags.sort()
    assert lags[int(len(lags) * 0.99) - 1] < 1000, f"p99 lag {lags[int(len(lags) * 0.99) - 1]:.0f} ms"
    # What the gateway held for the slow client stayed bounded the whole time.
    assert peaks["events"] <= MAX_EVENTS and peaks["incidents"] == 0
    assert peaks["write_buffer"] <= 256 * 1024, peaks


def test_foreign_origins_are_refused(app):
    with running(app) as gw:
        async def scenario():
            with pytest.raises(InvalidStatus) as refused:
                async with connect(ws_url(gw), origin="http://evil.example"):
                    pass
            assert refused.value.response.status_code == 403
            for origin in (ORIGIN, None):  # the app's own pages, and tools that send no Origin
                async with connect(ws_url(gw), origin=origin) as ws:
                    assert (await recv(ws))["type"] == "snapshot"
        asyncio.run(scenario())


def test_heartbeats_and_the_client_count_for_metrics(app, redis_client):
    with running(app, heartbeat_s=0.2) as gw:
        async def scenario():
            async with connect(ws_url(gw)) as ws:
                await recv(ws)
                beat = (await recv_until(ws, lambda f: f["type"] == "heartbeat"))[-1]
                assert abs(beat["at"] - time.time() * 1000) < 5000

                def scraped():
                    return "panorama_websocket_clients 1.0" in app.server.test_client().get("/metrics").text
                await asyncio.to_thread(wait_for, scraped, 5, 0.05, "the client counted in /metrics")
        asyncio.run(scenario())
        wait_for(lambda: redis_client.get(clients_key(gw.id)) == b"0", message="the count back to 0")
        assert 0 < redis_client.ttl(clients_key(gw.id)) <= 15  # a gateway that dies drops out by itself
    assert redis_client.get(clients_key(gw.id)) is None  # a stopped gateway removes its count


def test_redis_restart_resubscribes_and_tells_the_clients(make_app, redis_proc):
    app = make_app(REDIS_URL=redis_proc.url)
    with running(app) as gw:
        async def scenario():
            async with connect(ws_url(gw)) as ws:
                await recv(ws)
                await asyncio.to_thread(redis_proc.stop)
                await recv_until(ws, lambda f: f == {"v": 1, "type": "status", "bus": "down"})
                await asyncio.to_thread(redis_proc.start)
                frames = await recv_until(ws, lambda f: f == {"v": 1, "type": "status", "bus": "up"})
                assert all(f["type"] != "snapshot" for f in frames)
                # Deltas of the outage are lost, so every client is re-synced from SQL ...
                await recv_until(ws, lambda f: f["type"] == "snapshot")
                # ... and deltas flow again through the new subscription.
                await asyncio.to_thread(ingest_now, app, {"security": [now_event(31, kind="theft")]})
                await recv_until(ws, has_event("ev-31"))
        asyncio.run(scenario())


def test_the_embedded_default_runs_a_gateway(tmp_path):
    from dashboard.core.config import load_config
    from dashboard.run.embedded import start_embedded
    from dashboard.storage.services import build_services

    cfg = load_config({"DATABASE_URL": f"sqlite:///{tmp_path / 'panorama.db'}", "PANORAMA_WS_PORT": free_port(),
                       "INSTANCE_PATH": str(tmp_path), "PANORAMA_SIMULATE": False}, environ={})
    assert cfg["EMBEDDED"]
    services = build_services(cfg)
    embedded = start_embedded(services)
    try:
        gw = embedded.gateway
        assert gw is not None and gw.port == cfg["PANORAMA_WS_PORT"]
        wait_for(lambda: all(c.connected.is_set() for c in embedded.consumers), message="ingest subscribed")

        async def scenario():
            async with connect(ws_url(gw), origin=f"http://127.0.0.1:{cfg['PANORAMA_PORT']}") as ws:
                snap = await recv(ws)
                assert snap["type"] == "snapshot" and "windows" in snap["state"]
                event = now_event(41, domain="traffic", title="嵌入式")
                await asyncio.to_thread(services.redis.publish, "feeds:traffic", orjson.dumps(event))
                frame = (await recv_until(ws, has_event("ev-41")))[-1]
                assert next(e for e in frame["events"] if e["id"] == "ev-41")["title"] == "嵌入式"
        asyncio.run(scenario())
    finally:
        embedded.stop()
        services.close()
    assert not gw._thread.is_alive()


def test_the_entry_point_refuses_to_run_without_redis(monkeypatch, capsys):
    from dashboard.gateway import server as gateway

    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(SystemExit) as exit_:
        gateway.main([])
    assert exit_.value.code == 2 and "REDIS_URL is not set" in capsys.readouterr().err


def test_dispatch_tasks_and_escalations_are_forwarded_latest_version_first(app):
    channel = f"test:gateway:{uuid.uuid4().hex}"
    with running(app, channel=channel) as gw:
        async def scenario():
            bus = aioredis.Redis.from_url(app.server.config["REDIS_URL"])
            async with connect(ws_url(gw)) as ws:
                await recv(ws)
                # two versions of one task in a burst: the screen ends with the latest
                for version, state in ((1, "dispatched"), (2, "acknowledged")):
                    task = {"id": 7, "incident_id": 3, "department": "fire", "state": state, "version": version}
                    await bus.publish(channel, orjson.dumps({"type": "delta", "tasks": [task]}))
                await bus.publish(channel, orjson.dumps({"type": "delta", "escalations": [
                    {"id": 8, "incident_id": 3, "department": "police", "overdue": "acknowledge"}]}))
                frames = await recv_until(ws, lambda f: f.get("escalations"))
            await bus.aclose()
            tasks = [t for f in frames for t in f.get("tasks", ())]
            assert tasks and tasks[-1]["version"] == 2 and tasks[-1]["state"] == "acknowledged"
            assert frames[-1]["escalations"][0]["overdue"] == "acknowledge"
        asyncio.run(scenario())


def ticket_of_user(app, username: str, role: str, department: str | None = None) -> str:
    """Return the ticket ``GET /api/ws-ticket`` gives a new user of ``role`` once signed in."""
    make_user(app, username, role, department)
    client = app.server.test_client()
    assert client.post("/api/session", json={"username": username, "password": TEST_PASSWORD}).status_code == 200
    return client.get("/api/ws-ticket").get_json()["ticket"]


def test_a_liaison_ticket_names_the_department_and_an_officer_ticket_none(app):
    secret = app.server.secret_key
    liaison = verify_ticket(secret, ticket_of_user(app, "li.wei", "liaison", "fire"))
    officer = verify_ticket(secret, ticket_of_user(app, "wang.fang", "officer"))
    assert liaison["d"] == "fire" and set(liaison) == {"u", "e", "d", "x"}
    assert set(officer) == {"u", "e", "x"}


def test_a_liaison_receives_only_the_tasks_and_escalations_of_their_department(app):
    channel = f"test:gateway:{uuid.uuid4().hex}"
    tickets = {"liaison": ticket_of_user(app, "li.wei", "liaison", "fire"),
               "officer": ticket_of_user(app, "wang.fang", "officer")}
    with running(app, channel=channel) as gw:
        async def scenario():
            bus = aioredis.Redis.from_url(app.server.config["REDIS_URL"])
            url = f"ws://127.0.0.1:{gw.port}/?ticket="
            async with connect(url + tickets["liaison"]) as liaison, connect(url + tickets["officer"]) as officer:
                await recv(liaison)
                await recv(officer)
                tasks = [{"id": 21, "incident_id": 5, "department": "fire", "state": "dispatched", "version": 1},
                         {"id": 22, "incident_id": 5, "department": "police", "state": "dispatched", "version": 1}]
                # events ride along: everything but tasks and escalations is the same for everyone
                await bus.publish(channel, orjson.dumps({**orjson.loads(delta(61, n=2)), "tasks": tasks}))
                await bus.publish(channel, orjson.dumps({"type": "delta", "escalations": [
                    {**t, "escalated": True, "overdue": "acknowledge"} for t in tasks]}))
                seen = {}
                for name, ws in (("officer", officer), ("liaison", liaison)):
                    # both escalations come in one tick, so the frame with any of them ends what there is to see
                    frames = await recv_until(ws, lambda f: f.get("escalations"))
                    seen[name] = {key: [(x["id"], x.get("department")) for f in frames for x in f.get(key, ())]
                                  for key in ("tasks", "escalations", "events")}
            await bus.aclose()
            return seen

        seen = asyncio.run(scenario())
    assert sorted(seen["officer"]["tasks"]) == [(21, "fire"), (22, "police")]
    assert sorted(seen["officer"]["escalations"]) == [(21, "fire"), (22, "police")]
    assert seen["liaison"]["tasks"] == [(21, "fire")] and seen["liaison"]["escalations"] == [(21, "fire")]
    assert seen["liaison"]["events"] == seen["officer"]["events"] == [("d61-1", None), ("d61-0", None)]


class Recorder:
    """A stand-in client that takes every frame at once and keeps it decoded."""

    def __init__(self, department: str | None = None):
        self.department, self.frames = department, []

    def try_send_now(self, frame: bytes, seq: int, now: float) -> bool:
        self.frames.append(orjson.loads(frame))
        return True


def test_a_tick_encodes_one_frame_per_department_not_per_client(monkeypatch):
    from dashboard.core import messages

    encoded = []
    delta_frame = messages.delta_frame
    monkeypatch.setattr(messages, "delta_frame", lambda seq, parts: encoded.append(seq) or delta_frame(seq, parts))
    fanout = Fanout()
    fanout.set_state({"generated_at": 0, "windows": {}, "trend": {}, "feeds": {}, "events": []})
    officers = [Recorder(), Recorder()]
    fire, police, health = [Recorder("fire"), Recorder("fire")], Recorder("police"), Recorder("health")
    fanout.clients.update([*officers, *fire, police, health])
    tasks = [{"id": 1, "department": "fire"}, {"id": 2, "department": "police"}]
    fanout.add_delta(orjson.dumps({"tasks": tasks}))
    fanout.tick(0.0)
    assert len(encoded) == 3  # the shared frame, fire's and police's (health has no task and gets no frame)
    assert all(o.frames[-1]["tasks"] == tasks for o in officers)
    assert all([t["id"] for t in c.frames[-1]["tasks"]] == [1] for c in fire) and fire[0].frames == fire[1].frames
    assert [t["id"] for t in police.frames[-1]["tasks"]] == [2] and health.frames == []
    # with events: health gets them too, without the others' tasks
    encoded.clear()
    fanout.add_delta(orjson.dumps({"tasks": tasks, "events": orjson.loads(delta(1, n=1))["events"]}))
    fanout.tick(1.0)
    assert len(encoded) == 4 and "tasks" not in health.frames[-1]
    assert health.frames[-1]["events"] == officers[0].frames[-1]["events"] == police.frames[-1]["events"]
    # a tick without tasks or escalations: one frame, the same bytes for everyone
    encoded.clear()
    fanout.add_delta(delta(2, n=1))
    fanout.tick(2.0)
    assert len(encoded) == 1 and health.frames[-1] == officers[0].frames[-1] and "tasks" not in health.frames[-1]


# --- who a socket is for: its ticket at the handshake, and what its frames carry ----------------------------

def signed_in(app, username: str, role: str, department: str | None = None):
    """Return a signed-in test client of a new user of ``role``."""
    make_user(app, username, role, department)
    client = app.server.test_client()
    assert client.post("/api/session", json={"username": username, "password": TEST_PASSWORD}).status_code == 200
    return client


def fresh_ticket(client, query: str = "") -> str:
    res = client.get("/api/ws-ticket" + query)
    assert res.status_code == 200, res.get_data(as_text=True)
    return res.get_json()["ticket"]


async def refused_with(url: str) -> int:
    """Try to open ``url``; return the HTTP status it was refused with (fail if it opened)."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url):
            pass
    return refused.value.response.status_code


def test_a_ticket_made_before_sign_out_or_disable_is_refused_at_the_handshake(app):
    from dashboard.storage import users as accounts

    leaving, disabled = signed_in(app, "leaving", "officer"), signed_in(app, "disabled", "viewer")
    tickets = {"leaving": fresh_ticket(leaving), "disabled": fresh_ticket(disabled)}
    leaving.delete("/api/session")  # sign out (everywhere)
    accounts.set_active(app.server.extensions["panorama"].engine, "disabled", False)
    with running(app) as gw:
        base = f"ws://127.0.0.1:{gw.port}/?ticket="

        async def scenario():
            for name in ("leaving", "disabled"):
                assert await refused_with(base + tickets[name]) == 401, name
            async with connect(base + fresh_ticket(signed_in(app, "staying", "officer"))) as ws:
                assert (await recv(ws))["type"] == "snapshot"
        asyncio.run(scenario())


def test_a_ticket_opens_one_socket_on_any_gateway(app):
    officer = signed_in(app, "once", "officer")
    ticket = fresh_ticket(officer)
    with running(app) as one, running(app) as two:
        async def scenario():
            async with connect(f"ws://127.0.0.1:{one.port}/?ticket={ticket}") as ws:
                assert (await recv(ws))["type"] == "snapshot"
                assert await refused_with(f"ws://127.0.0.1:{one.port}/?ticket={ticket}") == 401  # replayed here
                assert await refused_with(f"ws://127.0.0.1:{two.port}/?ticket={ticket}") == 401  # or elsewhere
            assert await refused_with(f"ws://127.0.0.1:{two.port}/?ticket={ticket}") == 401  # or later
            # two tabs asking in the same second get two tickets, each good once
            first, second = fresh_ticket(officer), fresh_ticket(officer)
            async with connect(f"ws://127.0.0.1:{one.port}/?ticket={first}"), \
                    connect(f"ws://127.0.0.1:{two.port}/?ticket={second}"):
                pass
        asyncio.run(scenario())


def test_a_user_and_a_wall_hold_at_most_n_sockets_across_gateways(make_app, redis_client):
    from dashboard.storage import users as accounts

    app = make_app(PANORAMA_WS_SOCKETS_PER_USER=2)
    officer = signed_in(app, "many", "officer")
    _, token = accounts.create_kiosk_token(app.server.extensions["panorama"].engine, "hall")
    wall = app.server.test_client()
    with running(app) as one, running(app) as two:
        urls = [f"ws://127.0.0.1:{gw.port}/?ticket=" for gw in (one, two)]

        async def scenario():
            for make in (lambda: fresh_ticket(officer), lambda: fresh_ticket(wall, f"?token={token}")):
                async with connect(urls[0] + make()) as a, connect(urls[1] + make()):
                    assert await refused_with(urls[0] + make()) == 429
                    assert await refused_with(urls[1] + make()) == 429
                    await a.close()
                    # a closed socket gives its slot back at once
                    async with connect(urls[1] + make()) as again:
                        assert (await recv(again))["type"] == "snapshot"
            # a program holding the secret key (a monitor, the benchmark) is not limited
            async with connect(ws_url(one)), connect(ws_url(one)), connect(ws_url(two)):
                pass
        asyncio.run(scenario())
        # slots left by a gateway that died expire: two stale members do not hold the user's two slots
        from dashboard.gateway.admission import SOCKETS_KEY

        user_key = SOCKETS_KEY + f"u:{auth_user_id(app, 'many')}"
        redis_client.zadd(user_key, {"dead-gateway:1": time.time() - 1, "dead-gateway:2": time.time() - 1})

        async def after_a_crash():
            async with connect(urls[0] + fresh_ticket(officer)) as ws:
                assert (await recv(ws))["type"] == "snapshot"
        asyncio.run(after_a_crash())
    assert redis_client.zcard(user_key) == 0  # every slot was given back when the gateways stopped


def auth_user_id(app, username: str) -> int:
    from dashboard.storage import users as accounts

    return next(u["id"] for u in accounts.list_users(app.server.extensions["panorama"].engine)
                if u["username"] == username)


def test_each_socket_gets_the_incidents_its_holder_may_read(app):
    """A liaison: only incidents their department holds a task of (as GET /api/incidents); a viewer, like an
    officer: every one; a kiosk wall: no dispatch at all."""
    from dashboard.dispatch import board as dsp
    from dashboard.dispatch import desk
    from dashboard.storage import users as accounts

    svc = app.server.extensions["panorama"]
    ingest_now(app, {"incident": [now_event(71, kind="fire", severity=3, title="甲", district="futian"),
                                  now_event(72, kind="fire", severity=3, title="乙", district="nanshan")]})
    with svc.engine.connect() as conn:
        ids = {r["title"]: r["id"] for r in desk.queue(conn)}
    # dispatched before the gateway starts: who holds what it learns from SQL
    desk.write(svc, dsp.dispatch, ids["甲"], ["fire"], "olga", None, now_ms(), svc.city.rules, svc.city)
    desk.write(svc, dsp.dispatch, ids["乙"], ["police"], "olga", None, now_ms(), svc.city.rules, svc.city)
    _, token = accounts.create_kiosk_token(svc.engine, "hall")
    tickets = {"liaison": fresh_ticket(signed_in(app, "li", "liaison", "fire")),
               "viewer": fresh_ticket(signed_in(app, "vi", "viewer")),
               "officer": fresh_ticket(signed_in(app, "of", "officer")),
               "wall": fresh_ticket(app.server.test_client(), f"?token={token}")}
    with running(app) as gw:
        async def scenario():
            url = f"ws://127.0.0.1:{gw.port}/?ticket="
            socks = {name: await connect(url + t) for name, t in tickets.items()}
            for ws in socks.values():
                await recv(ws)
            # new reports join both incidents (ingest's deltas carry the incidents, no tasks) ...
            await asyncio.to_thread(ingest_now, app, {"incident": [
                now_event(73, kind="fire", severity=3, title="甲", district="futian"),
                now_event(74, kind="fire", severity=3, title="乙", district="nanshan")]})
            # ... then the police move their task (that delta carries incident 乙 and the police task)
            with svc.engine.connect() as conn:
                police = dsp.list_tasks(conn, department="police")[0]
            await asyncio.to_thread(desk.write, svc, dsp.transition, police["id"], "acknowledged", 1,
                                    "pol", None, now_ms())
            await asyncio.to_thread(ingest_now, app, {"traffic": [now_event(75, title="收尾")]})
            seen = {}
            for name, ws in socks.items():
                frames = await recv_until(ws, has_event("ev-75"))
                seen[name] = {"incidents": {i["title"] for f in frames for i in f.get("incidents", ())},
                              "tasks": {t["department"] for f in frames for t in f.get("tasks", ())}}
                await ws.close()
            return seen

        seen = asyncio.run(scenario())
    assert seen["officer"] == seen["viewer"] == {"incidents": {"甲", "乙"}, "tasks": {"police"}}
    assert seen["liaison"] == {"incidents": {"甲"}, "tasks": set()}
    assert seen["wall"] == {"incidents": set(), "tasks": set()}


def test_a_socket_ends_when_its_session_does(make_app, redis_client):
    from websockets.exceptions import ConnectionClosed

    app = make_app(PANORAMA_SESSION_HOURS=1)
    server = app.server
    ending, staying = signed_in(app, "ending", "officer"), signed_in(app, "staying2", "officer")
    serializer = server.session_interface.get_signing_serializer(server)
    data = serializer.loads(ending.get_cookie("panorama_session").value)
    # signed in 59 minutes 57 seconds ago: its hour is up in three seconds
    ending.set_cookie("panorama_session", serializer.dumps({**data, "signed_in_ms": data["signed_in_ms"]
                                                            - (3_600_000 - 3_000)}))
    tickets = {"ending": fresh_ticket(ending), "staying": fresh_ticket(staying)}
    with running(app, ticket_check_s=0.2) as gw:
        base = f"ws://127.0.0.1:{gw.port}/?ticket="

        async def scenario():
            async with connect(base + tickets["ending"]) as short, connect(base + tickets["staying"]) as long:
                assert (await recv(short))["type"] == (await recv(long))["type"] == "snapshot"
                with pytest.raises(ConnectionClosed) as closed:
                    async with asyncio.timeout(20):
                        while True:
                            await short.recv()
                assert closed.value.rcvd.code == 4401
                await long.ping()  # the other session's socket stays open
        asyncio.run(scenario())


def test_each_socket_gets_the_units_its_holder_may_read(app):
    """Units in the snapshot and in deltas: everyone's to an officer, a liaison's department's only (as GET
    /api/units), a kiosk wall's without the tasks they are on."""
    from dashboard.storage import users as accounts
    from tests.test_access_matrix import dispatched
    from tests.test_units import feed_units, report

    svc = app.server.extensions["panorama"]
    _, [task] = dispatched(app, ("fire",))
    _, token = accounts.create_kiosk_token(svc.engine, "hall")
    tickets = {"liaison": fresh_ticket(signed_in(app, "li", "liaison", "fire")),
               "officer": fresh_ticket(signed_in(app, "of", "officer")),
               "wall": fresh_ticket(app.server.test_client(), f"?token={token}")}
    officer = signed_in(app, "of2", "officer")
    with running(app) as gw:
        async def scenario():
            url = f"ws://127.0.0.1:{gw.port}/?ticket="
            socks = {name: await connect(url + t) for name, t in tickets.items()}
            snaps = {name: await recv(ws) for name, ws in socks.items()}
            await asyncio.to_thread(officer.post, f"/api/tasks/{task['id']}/units", json={"units": ["fe-futian-01"]},
                                    headers={"X-CSRF-Token": officer.get_cookie("panorama_csrf").value})
            for i in range(5):
                await asyncio.to_thread(feed_units, app, [report("pc-futian-01", lat=22.5 + i / 100),
                                                          report("fe-futian-01", lat=22.6 + i / 100)])
            seen = {}
            for name, ws in socks.items():
                frames = await recv_until(ws, lambda f: any(u["unit"] == "fe-futian-01" and u["lat"] == 22.64
                                                            for u in f.get("units", ())))
                seen[name] = [u for f in frames for u in f.get("units", ())]
                await ws.close()
            return snaps, seen

        snaps, seen = asyncio.run(scenario())
    deps = {name: {u["department"] for u in s["state"]["units"]} for name, s in snaps.items()}
    assert deps["liaison"] == {"fire"} and {"fire", "police", "health"} <= deps["officer"] == deps["wall"]
    assert {u["department"] for u in seen["liaison"]} == {"fire"}
    assert {"fire", "police"} <= {u["department"] for u in seen["officer"]}
    assert any(u["task_id"] == task["id"] for u in seen["officer"])
    assert all(u["task_id"] is None for u in seen["wall"]) and seen["wall"]
    assert set(seen["officer"][0]) == {"unit", "department", "kind", "status", "lat", "lon", "updated_at", "task_id",
                                         "district"}


def test_a_units_reports_coalesce_into_its_latest_while_a_client_waits():
    from dashboard.gateway.fanout import Pending

    p = Pending()
    for i in range(50):
        p.merge({"units": [{"unit": "pc-1", "lat": i}, {"unit": f"x-{i % 3}", "lat": i}]})
    got = p.take()["units"]
    assert sorted((u["unit"], u["lat"]) for u in got) == [("pc-1", 49), ("x-0", 48), ("x-1", 49), ("x-2", 47)]
    assert not p


def test_unit_reports_alone_do_not_call_for_a_state_build_but_anything_else_does():
    from dashboard.core import messages

    fanout = Fanout()
    unit = {"unit": "pc-1", "department": "police", "kind": "patrol_car", "status": "available", "lat": 22.5,
            "lon": 114.0, "updated_at": None, "task_id": None}
    # what an ingest worker sends for a batch of unit reports only: nothing stored, no counts, the units
    assert fanout.add_delta(messages.encode_delta(1, stored=0, units=[unit])) is True
    assert fanout.state_news is False and fanout.has_news()  # still sent at the next tick
    for news in ({"events": [now_event(1)], "stored": 1}, {"incidents": [{"id": 3}]}, {"tasks": []},
                 {"alerts": []}, {"majors": []}, {"feeds": {"traffic": 1}}):
        assert fanout.add_delta(messages.encode_delta(2, units=[unit], **news)) is True
        assert fanout.state_news is True, news
