"""The units on the maps in a real Chromium: a unit published on feeds:units appears on /wall's map, coloured by
its status, and moves when it reports again."""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager

import orjson

from dashboard.core.channels import units_feed
from dashboard.storage import users as accounts
from feeds.consumers import PubSubConsumer
from feeds.pipeline import make_pipeline
from tests.helpers import wait_for
from tests.test_pages import own_updates_channel


def marker(dash_duo, unit: str) -> dict | None:
    return dash_duo.driver.execute_script(
        "const g = document.querySelector('#unit-layer [data-unit=\"' + arguments[0] + '\"]');"
        "return g && g.getAttribute('display') !== 'none' ? {status: g.dataset.status, pos: g.dataset.pos,"
        " fill: getComputedStyle(g.querySelector('circle')).fill} : null;", unit)


@contextmanager
def unit_feed_app(make_app, dash_duo, channel: str):
    """Yield (app, prefix): an app served to ``dash_duo`` with a real gateway on ``channel`` and an ingest consumer
    of a unit feed of its own (``prefix``: pub/sub channels are every Redis db's), subscribed; both stopped after."""
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    prefix = f"t{uuid.uuid4().hex[:8]}"
    port = free_port()
    app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/", PANORAMA_WALL_CYCLE_S=3600,
                   PANORAMA_FEED_PREFIX=prefix)
    svc = app.server.extensions["panorama"]
    dash_duo.start_server(app)
    gw = Gateway(svc, port=port, origins=[dash_duo.server_url.rstrip("/")], channel=channel)
    gw.start()
    consumer = PubSubConsumer(make_pipeline(svc), svc.connect_bus, prefix=prefix)
    consumer.start()
    try:
        wait_for(consumer.connected.is_set, timeout=10, message="the consumer subscribed")
        yield app, prefix
    finally:
        consumer.stop()
        gw.stop()


def open_kiosk_wall(dash_duo, app, timeout: float = 20) -> None:
    """Open /wall at 1920x1080 as a kiosk (a new token, nobody signed in) and wait until it is live."""
    _, token = accounts.create_kiosk_token(app.server.extensions["panorama"].engine, "hall")
    dash_duo.driver.set_window_size(1920, 1080)
    dash_duo.driver.get(f"{dash_duo.server_url.rstrip('/')}/wall?token={token}")
    dash_duo.wait_for_element("#live-indicator.conn-live", timeout=timeout)


def test_a_unit_published_on_the_feed_appears_on_the_walls_map(make_app, redis_client, dash_duo, monkeypatch):
    with unit_feed_app(make_app, dash_duo, own_updates_channel(monkeypatch)) as (app, prefix):
        svc = app.server.extensions["panorama"]
        open_kiosk_wall(dash_duo, app)
        # the pack's fleet came with the snapshot, drawn as clusters
        wait_for(lambda: dash_duo.driver.execute_script(
            "return document.getElementById('unit-layer').dataset.units") == str(len(svc.city.units)),
            timeout=15, message="the fleet drawn")
        assert marker(dash_duo, "probe-1") is None
        now = int(time.time() * 1000)
        # in Shenzhen Bay, off every district's land: a cell of its own
        redis_client.publish(units_feed(prefix), orjson.dumps({"unit": "probe-1", "ts": now, "lat": 22.49,
                                                               "lon": 113.97, "status": "on_scene",
                                                               "department": "emergency", "kind": "boat"}))
        got = wait_for(lambda: marker(dash_duo, "probe-1"), timeout=15, message="the unit on the map")
        assert got["status"] == "on_scene" and got["pos"] == "22.49000,113.97000"
        assert got["fill"] == "rgb(255, 77, 94)"  # on scene: red (assets/units.css)
        redis_client.publish(units_feed(prefix), orjson.dumps({"unit": "probe-1", "ts": now + 5000, "lat": 22.495,
                                                               "lon": 113.975, "status": "en_route"}))
        got = wait_for(lambda: (m := marker(dash_duo, "probe-1")) and m["status"] == "en_route" and m,
                       timeout=15, message="the unit moved")
        assert got["pos"] == "22.49500,113.97500" and got["fill"] == "rgb(245, 166, 35)"
        # the page's animation frames held back, as its long Dash/Plotly tasks hold them: the unit is drawn all the
        # same, in the socket's message task (assets/live_units.js), not at an animation frame
        dash_duo.driver.execute_script("window.__held = []; window.requestAnimationFrame = (f) => window.__held.push(f);")
        redis_client.publish(units_feed(prefix), orjson.dumps({"unit": "probe-1", "ts": now + 10000, "lat": 22.5,
                                                               "lon": 113.98}))
        got = wait_for(lambda: (m := marker(dash_duo, "probe-1")) and m["pos"] == "22.50000,113.98000" and m,
                       timeout=15, message="the unit moved with no animation frame")
        # the wall carries no dispatch: no task ids reach it (fanout.wall_view)
        legend = dash_duo.find_element(".unit-legend").text
        assert "在途" in legend and "到场" in legend
