"""Redis crashes and comes back: ingest workers, a gateway process, the app and a browser page recover by
themselves, say so while it is down, and the stream transport loses nothing."""

from __future__ import annotations

import time

import orjson
import pytest
import redis

from tests.faults.common import (BufferingProducer, Producer, WsWatcher, listening, make_events, pending, stored, totals,
                                ws_url)
from tests.faults.procs import gunicorn_argv, http_get, module_argv, service_env, wait_http
from tests.helpers import sign_in, wait_for
from tests.redis_proc import free_port

pytestmark = pytest.mark.faults


def test_redis_restart_ingest_gateway_and_app_processes_recover(redis_proc, pg_url, pg_engine, procs, figures):
    total = 12_000
    gw_port, app_port = free_port(), free_port()
    env = service_env(REDIS_URL=redis_proc.url, DATABASE_URL=pg_url, PANORAMA_SECRET_KEY="faults",
                      PANORAMA_WS_PORT=gw_port)
    for name in ("w1", "w2"):
        procs.start(name, module_argv("feeds.ingest", "--consumer", name), env)
    gateway = procs.start("gateway", module_argv("dashboard.gateway"), env)
    app = procs.start("app", gunicorn_argv(app_port, 2), env)
    health_url = f"http://127.0.0.1:{app_port}/api/health"
    assert wait_http(health_url, app).json()["redis"] == "ok"
    wait_for(lambda: gateway.poll() is None and listening(gw_port), timeout=60, message="the gateway listening")
    watcher = WsWatcher(ws_url(gw_port, "faults"))
    watcher.start()
    wait_for(lambda: watcher.first(lambda f: f["type"] == "snapshot"), message="the first snapshot")

    producer = Producer(lambda: redis.Redis.from_url(redis_proc.url, socket_connect_timeout=0.5, socket_timeout=2),
                        total, rate=1500, per_message=20)
    producer.start()
    try:
        wait_for(lambda: stored(pg_engine) >= 2000, timeout=60, message="events flowing before the crash")
        # Times are taken just before each action: the gateway may tell its clients before stop() returns.
        down_at = time.monotonic()
        redis_proc.stop()  # SIGKILL
        sent_before = producer.sent
        degraded = wait_for(lambda: (r := http_get(health_url)) is not None and r.status_code == 503 and r.json(),
                            timeout=30, message="/api/health degraded")
        assert degraded["status"] == "degraded" and degraded["redis"].startswith("unreachable")
        assert degraded["database"] == "ok"
        health_down_s = time.monotonic() - down_at
        wait_for(lambda: watcher.first(lambda f: f == {"v": 1, "type": "status", "bus": "down"}, down_at), timeout=30,
                 message="the gateway tells its clients the bus is down")
        bus_down_s = watcher.first(lambda f: f == {"v": 1, "type": "status", "bus": "down"}, down_at) - down_at
        up_at = time.monotonic()
        redis_proc.start()  # same port, same AOF: the streams and the consumer group come back
        wait_for(lambda: (r := http_get(health_url)) is not None and r.status_code == 200, timeout=30,
                 message="/api/health ok again")
        health_up_s = time.monotonic() - up_at
        wait_for(lambda: watcher.first(lambda f: f == {"v": 1, "type": "status", "bus": "up"}, up_at), timeout=30,
                 message="the gateway tells its clients the bus is back")
        bus_up_s = watcher.first(lambda f: f == {"v": 1, "type": "status", "bus": "up"}, up_at) - up_at
        wait_for(lambda: producer.sent > sent_before + 200, timeout=30, message="the producer going on")
        # Deltas flow again to the same websocket: events published after the restart reach it.
        wait_for(lambda: any(int(i.split("-")[1]) >= sent_before for i in watcher.event_ids(up_at)), timeout=30,
                 message="new events pushed after the restart")
        push_back_s = watcher.first(lambda f: any(int(e["id"].split("-")[1]) >= sent_before
                                                  for e in f.get("events", ())), up_at) - up_at
        producer.join(60)
        assert producer.error is None and producer.sent == total
        wait_for(lambda: stored(pg_engine) == total, timeout=60, message=f"all {total} events stored")
        all_stored_s = time.monotonic() - up_at
        wait_for(lambda: pending(redis.Redis.from_url(redis_proc.url)) == 0, timeout=30, message="all acknowledged")
    finally:
        producer.finish()
    closed_early = watcher.closed.is_set()
    watcher.ws.close()
    counts = totals(pg_engine)
    assert counts["events"] == counts["rollups"] == counts["district_minutes"] == total
    assert not closed_early, "the gateway kept the browser's socket open through the outage"
    assert watcher.first(lambda f: f["type"] == "snapshot", up_at), "a re-sync snapshot after the outage"
    for name in ("w1", "w2", "gateway", "app"):
        assert procs.alive(name), procs.log(name)[-2000:]
    figures(fault="Redis SIGKILL + restart (AOF)", published=total, stored=counts["events"],
            lost=total - counts["events"], producer_retries=producer.retries,
            health_degraded_after_s=round(health_down_s, 2), gateway_said_down_after_s=round(bus_down_s, 2),
            health_ok_after_restart_s=round(health_up_s, 2), gateway_said_up_after_s=round(bus_up_s, 2),
            first_push_after_restart_s=round(push_back_s, 2), all_stored_after_restart_s=round(all_stored_s, 2))


KPI_DOMAINS = ("traffic", "security", "environment")


def test_redis_restart_the_wall_says_so_recovers_by_itself_and_shows_every_event(redis_proc, make_app, pg_url,
                                                                                 pg_engine, procs, dash_duo, figures):
    gw_port = free_port()
    app = make_app(REDIS_URL=redis_proc.url, PANORAMA_WS_PORT=gw_port, PANORAMA_WS_URL=f"ws://127.0.0.1:{gw_port}/")
    dash_duo.start_server(app)
    env = service_env(REDIS_URL=redis_proc.url, DATABASE_URL=pg_url, PANORAMA_WS_PORT=gw_port,
                      PANORAMA_SECRET_KEY=app.server.config["SECRET_KEY"],
                      PANORAMA_WS_ORIGINS=dash_duo.server_url.rstrip("/"))
    procs.start("ingest", module_argv("feeds.ingest", "--transport", "stream"), env)
    gateway = procs.start("gateway", module_argv("dashboard.gateway"), env)
    wait_for(lambda: gateway.poll() is None and listening(gw_port), timeout=60, message="the gateway listening")
    sign_in(dash_duo, app, "/wall", role="viewer")
    dash_duo.wait_for_element("#live-indicator.conn-live", timeout=30)
    client = app.server.test_client()
    bus = redis.Redis.from_url(redis_proc.url)
    direct = 0  # events XADDed by hand below (Redis answered each)

    def publish_titled(i: int, title: str) -> None:
        nonlocal direct
        ev = make_events(i, 1, "traffic")[0] | {"id": f"titled-{i}", "title": title}
        bus.xadd("feeds:traffic", {"data": orjson.dumps(ev)})
        direct += 1

    def on_ticker(title: str) -> bool:
        return title in dash_duo.driver.execute_script(
            "return [...document.querySelectorAll('#event-ticker .ticker-title')].map(e => e.textContent)")

    def shown() -> int:
        """The events the wall counts in its tiles (the last hour), as a person reads them off the screen."""
        texts = [dash_duo.find_element(f"#kpi-{d}").text for d in KPI_DOMAINS]
        return sum(int(t) for t in texts) if all(t.isdigit() for t in texts) else -1

    def post_http(first: int, n: int):
        evs = make_events(first, n, "environment")
        return client.post("/api/events?domain=environment", data=orjson.dumps(evs),
                           headers={"Authorization": "Bearer test-token"})

    # (Titled events are looked for on the ticker when nothing newer follows them: the ticker shows the newest.)
    publish_titled(1, "重启前事件")
    wait_for(lambda: on_ticker("重启前事件"), timeout=30, message="an event on the wall before the crash")
    # Readings come all the time, whatever Redis does: the publisher holds them while it is down.
    producer = BufferingProducer(lambda: redis.Redis.from_url(redis_proc.url, socket_connect_timeout=0.5,
                                                              socket_timeout=2), rate=50, first_id=100_000)
    producer.start()
    try:
        wait_for(lambda: producer.published >= 100, timeout=30, message="readings flowing before the crash")
        down_at = time.monotonic()
        redis_proc.stop()
        dash_duo.wait_for_contains_text("#alert-banner", "消息总线中断", timeout=30)
        banner_s = time.monotonic() - down_at
        health = client.get("/api/health")
        assert health.status_code == 503 and health.json["redis"].startswith("unreachable")
        # An HTTP publisher is told to come back (nothing acknowledged that could not be kept) ...
        refused = post_http(200_000, 50)
        assert refused.status_code == 503 and refused.json["error"]["code"] == "bus_unavailable", refused.json
        wait_for(lambda: len(producer.backlog) >= 250, timeout=30,
                 message="readings generated during the outage waiting in the publisher")
        held_at_restart = len(producer.backlog)
        up_at = time.monotonic()
        redis_proc.start()
        wait_for(lambda: "消息总线中断" not in dash_duo.find_element("#alert-banner").text, timeout=30,
                 message="the banner cleared")
        cleared_s = time.monotonic() - up_at
        # ... and comes back with the same batch, accepted now.
        accepted = post_http(200_000, 50)
        assert accepted.status_code == 202 and accepted.json["accepted"] == 50, accepted.json
        producer.generating.clear()
        wait_for(producer.drained, timeout=60, message="the publisher's backlog taken by Redis")
        bus = redis.Redis.from_url(redis_proc.url)
        publish_titled(2, "重启后事件")
        wait_for(lambda: on_ticker("重启后事件"), timeout=30, message="a new event on the wall after the restart")
        shown_s = time.monotonic() - up_at
    finally:
        producer.finish()
    assert producer.error is None, producer.error
    published = producer.published + direct + accepted.json["accepted"]
    assert producer.held >= held_at_restart > 0, "readings were generated during the outage and held"
    try:
        wait_for(lambda: shown() == published, timeout=60, message=f"the wall counting all {published} events")
    except AssertionError:
        pass  # the counts below say what is missing
    on_wall, in_db = shown(), stored(pg_engine)
    figures(fault="Redis SIGKILL + restart, /wall in Chromium", published=published,
            held_by_publisher_during_outage=producer.held, http_refused_503=50, http_accepted_after=50,
            stored=in_db, shown_on_wall=on_wall, lost_stored=published - in_db, lost_shown=published - on_wall,
            banner_after_s=round(banner_s, 2), banner_cleared_after_restart_s=round(cleared_s, 2),
            new_event_on_wall_after_restart_and_backlog_s=round(shown_s, 2))
    assert in_db == published, f"{published - in_db} of {published} published events not stored"
    assert on_wall == published, f"the wall counts {on_wall} of {published} published events"
    assert client.get("/api/health").status_code == 200
    assert "conn-live" in dash_duo.find_element("#live-indicator").get_attribute("class")
    assert dash_duo.get_logs() == []
