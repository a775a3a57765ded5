"""The alert-list (SPEC section 9, issue 16) on /, /wall and /m: alerts fired through the real ingest pipeline reach
every screen over the gateway, an acknowledgement on /m changes them everywhere, a resolved alert leaves; who may
read and who may acknowledge."""

from __future__ import annotations

import asyncio
import time
from contextlib import contextmanager

import pytest
from websockets.asyncio.client import connect

from dashboard.storage import users as accounts
from layouts.alerts import SLOTS, ordered
from tests.helpers import make_event, phone_screen, sign_in, wait_for
from tests.test_access_matrix import firing_alert, session
from tests.test_api import ingest_now
from tests.test_gateway import ORIGIN, recv, recv_until, running
from tests.test_pages import own_updates_channel

MIN = 60_000


def now_ms() -> int:
    return int(time.time() * 1000)


def own_alert_channel(monkeypatch) -> str:
    """Send this test's deltas, the alerts' too (the evaluator's and the acknowledgement's), to a channel of its
    own (see tests.test_pages.own_updates_channel)."""
    import dashboard.web.api_alerts
    import feeds.alerting

    channel = own_updates_channel(monkeypatch)
    monkeypatch.setattr(feeds.alerting, "UPDATES_CHANNEL", channel)
    monkeypatch.setattr(dashboard.web.api_alerts, "UPDATES_CHANNEL", channel)
    return channel


@contextmanager
def alert_gateway(make_app, dash_duo, monkeypatch):
    """Yield an app served to ``dash_duo`` with a real gateway of its own, which carries this test's alert frames
    (own_alert_channel); stopped afterwards."""
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    channel = own_alert_channel(monkeypatch)
    port = free_port()
    app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/")
    dash_duo.start_server(app)
    gw = Gateway(app.server.extensions["panorama"], port=port, origins=[dash_duo.server_url.rstrip("/")],
                 channel=channel)
    gw.start()
    try:
        yield app
    finally:
        gw.stop()


def pollution(app, value: float, district: str = "futian", n0: int = 1) -> None:
    """Ingest AQI readings above ``value`` for 11 minutes (event time) through the app's real pipeline: the
    pack's aqi_moderate (orange, > 150) and aqi_heavy (red, > 200) hold for their 10 minutes and fire at once."""
    now = now_ms()
    ingest_now(app, {"environment": [
        make_event(n0 + i, kind="aqi", district=district, ts=now - ago * MIN, value=value + i, unit="AQI")
        for i, ago in enumerate((11, 5, 0))]})


def clean_air(app, district: str = "futian", n: int = 90) -> None:
    ingest_now(app, {"environment": [make_event(n, kind="aqi", district=district, ts=now_ms(), value=40, unit="AQI")]})


def alerts_of_every_level(app) -> None:
    """Write a firing alert of each level and an acknowledged one straight to the app's database (as the ingest
    workers would), so every colour and status of the alert-list is on screen."""
    from sqlalchemy import insert

    from dashboard.storage.models import alerts

    now = now_ms()
    with app.server.extensions["panorama"].engine.begin() as conn:
        for i, (level, status) in enumerate((("blue", "firing"), ("yellow", "firing"), ("orange", "acknowledged"),
                                             ("red", "firing"))):
            conn.execute(insert(alerts).values(
                rule="aqi_moderate", scope=f"district:440304:{i}", level=level, status=status, district="440304",
                started_ms=now - 600_000 - i, fired_ms=now, value=180, title=f"福田区空气质量指数 18{i}",
                title_en=f"Futian: AQI 18{i}", updated_ms=now, version=2 if status == "acknowledged" else 1))


# --- what the screens list -------------------------------------------------------------------------------------

def test_red_comes_first_then_firing_before_acknowledged_then_newest():
    rows = [{"id": 1, "level": "orange", "status": "firing", "started_ms": 5},
            {"id": 2, "level": "red", "status": "acknowledged", "started_ms": 9},
            {"id": 3, "level": "red", "status": "firing", "started_ms": 1},
            {"id": 4, "level": "blue", "status": "firing", "started_ms": 99},
            {"id": 5, "level": "orange", "status": "firing", "started_ms": 7}]
    assert [r["id"] for r in ordered(rows)] == [3, 2, 5, 1, 4]


# --- the gateway -----------------------------------------------------------------------------------------------

def fresh_ticket(client, query: str = "") -> str:
    res = client.get("/api/ws-ticket" + query)
    assert res.status_code == 200, res.get_data(as_text=True)
    return res.get_json()["ticket"]


@pytest.mark.timeout(90)
def test_every_socket_gets_the_open_alerts_in_its_snapshot_and_each_change(app, monkeypatch):
    """Alerts are every viewer's (GET /api/alerts): a kiosk wall, a liaison and a viewer get them like an officer;
    the snapshot carries the firing and acknowledged ones, so a page opened or reconnected shows the truth."""
    channel = own_alert_channel(monkeypatch)
    svc = app.server.extensions["panorama"]
    before = firing_alert(app)  # firing before the gateway starts: only a snapshot can tell of it
    _, token = accounts.create_kiosk_token(svc.engine, "hall")
    officer, csrf = session(app, "officer")
    tickets = {"wall": fresh_ticket(app.server.test_client(), f"?token={token}"),
               "liaison": fresh_ticket(session(app, "liaison")[0]), "viewer": fresh_ticket(session(app, "viewer")[0])}
    with running(app, channel=channel) as gw:
        async def scenario():
            url = f"ws://127.0.0.1:{gw.port}/?ticket="
            socks = {name: await connect(url + t, origin=ORIGIN) for name, t in tickets.items()}
            snapshots = {name: await recv(ws) for name, ws in socks.items()}
            # an officer acknowledges over the API; then the real pipeline fires two alerts in Nanshan
            res = await asyncio.to_thread(officer.post, f"/api/alerts/{before['id']}/ack", json={"version": 1},
                                          headers={"X-CSRF-Token": csrf})
            assert res.status_code == 200, res.get_data(as_text=True)
            await asyncio.to_thread(pollution, app, 230, "nanshan")
            seen = {name: await _alerts_until(ws) for name, ws in socks.items()}
            for ws in socks.values():
                await ws.close()
            return snapshots, seen

        snapshots, seen = asyncio.run(scenario())
    for name in tickets:
        opened = snapshots[name]["state"]["alerts"]
        assert [(a["id"], a["status"], a["title"], a["title_en"]) for a in opened] == [
            (before["id"], "firing", "福田区空气质量指数 180", "Futian: AQI 180")], name
        got = {(a["rule"], a["status"], a["district"]) for a in seen[name]}
        assert ("aqi_moderate", "acknowledged", "440304") in got, name
        assert {("aqi_moderate", "firing", "440305"), ("aqi_heavy", "firing", "440305")} <= got, name


async def _alerts_until(ws) -> list[dict]:
    """Collect the alerts of the frames until the acknowledgement and both of Nanshan's alerts have come."""
    alerts: list[dict] = []

    def done(frame) -> bool:
        alerts.extend(frame.get("alerts", ()))
        keys = {(a["rule"], a["status"], a["district"]) for a in alerts}
        return {("aqi_moderate", "acknowledged", "440304"), ("aqi_moderate", "firing", "440305"),
                ("aqi_heavy", "firing", "440305")} <= keys

    await recv_until(ws, done, timeout=15)
    return alerts


# --- in Chromium -----------------------------------------------------------------------------------------------

def js(dash_duo, script: str, *args):
    return dash_duo.driver.execute_script(script, *args)


LIST = """
return Array.from(document.querySelectorAll('#alert-list > li')).map(li => ({
    cls: li.className, level: li.querySelector('.alert-level').textContent,
    title: li.querySelector('.alert-title').textContent, status: li.querySelector('.alert-status').textContent,
    place: li.querySelector('.alert-place').textContent, since: li.querySelector('.alert-since').textContent,
    ack: li.querySelector('.alert-ack') !== null}));
"""


def listed(dash_duo) -> list[dict]:
    return js(dash_duo, LIST)


MAP = """
const gd = document.querySelector('#city-map .js-plotly-plot');
if (!gd || !gd.data) { return null; }
const z = gd.data[0].z[gd.data[0].locations.indexOf(arguments[0])];
return {risk: z, outlined: gd.data.slice(1).filter(t => t.lon.some(x => x !== null)).map(t => t.meta.level).sort()};
"""


def on_map(dash_duo, code: str = "440304") -> dict | None:
    """Return a district's value on the map and the levels the map outlines (figures/alert_map.py's traces)."""
    return js(dash_duo, MAP, code)


def below(dash_duo, selector: str) -> float:
    """Return how far below the alerts panel's top ``selector`` starts: what an alert coming or going could move
    (the header above may change with the language)."""
    return js(dash_duo, "return document.querySelector(arguments[0]).getBoundingClientRect().top"
                        " - document.querySelector('.alert-panel').getBoundingClientRect().top", selector)


@pytest.mark.timeout(180)
def test_in_chromium_an_alert_fires_on_the_wall_is_acknowledged_on_m_in_english_and_leaves_when_resolved(
        make_app, redis_client, dash_duo, monkeypatch):
    with alert_gateway(make_app, dash_duo, monkeypatch) as app:
        sign_in(dash_duo, app, "/wall", role="commander")
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=20)
        dash_duo.wait_for_text_to_equal("#alert-more", "暂无预警")
        assert listed(dash_duo) == []
        grid_top = below(dash_duo, ".wall-grid")
        wall = dash_duo.driver.current_window_handle

        pollution(app, 230)  # the real pipeline: events stored, the rules evaluated, the alerts published
        rows = wait_for(lambda: (r := listed(dash_duo)) and len(r) == 2 and r, timeout=15,
                        message="both alerts on the wall, pushed")
        assert [r["level"] for r in rows] == ["红色", "橙色"]  # red first, its word beside its colour
        assert "lvl-red" in rows[0]["cls"] and "st-firing" in rows[0]["cls"]
        assert rows[0]["title"] == "福田区空气质量指数 232，持续超过 200（重度污染）"
        assert rows[0]["place"] == "福田区" and rows[0]["status"] == "预警中"
        assert rows[0]["since"].startswith("自 ")  # the first reading's time, in Asia/Shanghai
        assert not any(r["ack"] for r in rows)  # the wall is read-only, whoever looks at it
        assert below(dash_duo, ".wall-grid") == grid_top  # nothing below the strip moved
        assert dash_duo.find_element("#alert-more").text == ""
        # the map outlines Futian in both levels (halo under them), and its risk reads red: 90 or more
        wait_for(lambda: (m := on_map(dash_duo)) and m["outlined"] == ["halo", "orange", "red"] and m["risk"] >= 90,
                 timeout=20, message=f"Futian outlined and red on the map: {on_map(dash_duo)}")

        # the commander's phone, in English
        dash_duo.driver.switch_to.new_window("tab")
        phone_screen(dash_duo.driver)
        dash_duo.driver.get(dash_duo.server_url + "/m")
        dash_duo.wait_for_element("#alert-list > li")
        dash_duo.find_element("#lang-toggle").click()
        wait_for(lambda: [r["level"] for r in listed(dash_duo)] == ["Red", "Orange"], timeout=15,
                 message="/m in English")
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=20)  # its snapshot taken: nothing to redraw
        red = listed(dash_duo)[0]
        assert red["title"] == "Futian: AQI 232, above 200 (heavy pollution)" and red["place"] == "Futian"
        assert red["status"] == "firing" and red["ack"] and red["since"].startswith("since ")
        dash_duo.find_element("#alert-list > li.lvl-red .alert-ack").click()
        dash_duo.wait_for_text_to_equal("#alert-message", "Acknowledged: Futian: AQI 232, above 200 (heavy pollution)",
                                        timeout=10)
        wait_for(lambda: listed(dash_duo)[0]["status"] == "acknowledged" and not listed(dash_duo)[0]["ack"],
                 timeout=10, message="acknowledged on /m")

        # ... and on the wall, over the gateway
        dash_duo.driver.switch_to.window(wall)
        wait_for(lambda: "st-acknowledged" in listed(dash_duo)[0]["cls"], timeout=15, message="acknowledged on the wall")
        assert listed(dash_duo)[0]["status"] in ("已确认", "acknowledged")  # the wall may follow the switched language
        assert below(dash_duo, ".wall-grid") == grid_top

        clean_air(app)  # the readings fall: both alerts resolve and leave every screen
        wait_for(lambda: listed(dash_duo) == [], timeout=15, message="the resolved alerts gone from the wall")
        wait_for(lambda: on_map(dash_duo)["outlined"] == [], timeout=15, message="the outlines gone from the map")
        assert below(dash_duo, ".wall-grid") == grid_top
    severe = [e["message"] for e in dash_duo.get_logs() or [] if e["level"] == "SEVERE"]
    assert severe == []


@pytest.mark.timeout(150)
def test_in_chromium_a_new_alert_is_on_the_wall_from_its_frame_without_waiting_for_the_server(
        make_app, redis_client, dash_duo, monkeypatch):
    """The wall draws a firing alert from the gateway's frame (assets/live_alerts.js): with every Dash callback
    request blocked after the page is live, the alert still appears, in the server's order and words."""
    with alert_gateway(make_app, dash_duo, monkeypatch) as app:
        sign_in(dash_duo, app, "/wall", role="viewer")
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=20)
        dash_duo.wait_for_text_to_equal("#alert-more", "暂无预警")
        driver = dash_duo.driver
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*_dash-update-component*"]})

        pollution(app, 230)
        rows = wait_for(lambda: (r := listed(dash_duo)) and len(r) == 2 and r, timeout=15,
                        message="both alerts on the wall from their frames, the server unasked")
        assert [r["level"] for r in rows] == ["红色", "橙色"]
        assert rows[0]["title"] == "福田区空气质量指数 232，持续超过 200（重度污染）"
        assert rows[0]["place"] == "福田区" and rows[0]["status"] == "预警中"
        assert rows[0]["since"].startswith("自 ") and not any(r["ack"] for r in rows)
        assert "lvl-red" in rows[0]["cls"] and "st-firing" in rows[0]["cls"]
        assert dash_duo.find_element("#alert-more").text == ""

        # the server draws the same list: the page opened afresh paints it from the database
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        driver.refresh()
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=20)
        assert listed(dash_duo) == rows
        clean_air(app)
        wait_for(lambda: listed(dash_duo) == [], timeout=15, message="the resolved alerts gone from the wall")


@pytest.mark.timeout(120)
def test_in_chromium_a_viewer_reads_alerts_as_text_without_an_acknowledge_button(make_app, redis_client, dash_duo):
    app = make_app()
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/", role="viewer")
    dash_duo.wait_for_text_to_equal("#alert-more", "暂无预警")
    grid_top = below(dash_duo, ".desk-grid")
    markup = '<img src=x onerror="window.__owned=1"><b>福田</b>'
    from dashboard.storage.models import alerts
    from sqlalchemy import update

    for n in range(SLOTS["desk"] + 1):  # with the one below, two more than fit
        firing_alert(app, f"district:440305:{n}")
    newest = firing_alert(app)  # its title is markup: shown as text
    with app.server.extensions["panorama"].engine.begin() as conn:
        conn.execute(update(alerts).where(alerts.c.id == newest["id"]).values(title=markup))
    dash_duo.driver.refresh()
    dash_duo.wait_for_element("#alert-list > li")
    rows = listed(dash_duo)
    assert len(rows) == SLOTS["desk"] and not any(r["ack"] for r in rows)
    dash_duo.wait_for_text_to_equal("#alert-more", "另有 2 条预警")
    assert below(dash_duo, ".desk-grid") == grid_top  # the box is as tall with none as with more than fit
    assert rows[0]["title"] == markup  # the newest of one level first, its title as text
    assert js(dash_duo, "return document.querySelector('#alert-list img, #alert-list b')") is None
    assert js(dash_duo, "return window.__owned || null") is None


# --- first paint, and the acknowledgement's callback -------------------------------------------------------------

def test_the_first_paint_of_every_page_with_the_list_carries_the_open_alerts_as_text(app):
    import re

    from dashboard.storage.models import alerts
    from sqlalchemy import update
    from tests.test_first_paint import EVIL, drawing

    alert = firing_alert(app)
    with app.server.extensions["panorama"].engine.begin() as conn:
        conn.execute(update(alerts).where(alerts.c.id == alert["id"]).values(title=EVIL + "福田"))
    commander, _ = session(app, "commander")
    _, token = accounts.create_kiosk_token(app.server.extensions["panorama"].engine, "hall")
    kiosk = app.server.test_client()
    assert kiosk.get(f"/wall?token={token}", follow_redirects=True).status_code == 200
    for client, path, button in ((commander, "/", True), (commander, "/m", True), (commander, "/wall", False),
                                 (kiosk, "/wall", False)):
        first = drawing(client.get(path).get_data(as_text=True))
        rows = re.findall(r'<li class="alert-item[^"]*"[^>]*>(.*?)</li>', first, re.S)
        assert len(rows) == 1, path
        assert "&lt;img src=x onerror=" in rows[0] and "福田" in rows[0] and EVIL not in first, path
        assert ("<button" in rows[0]) is button, path
    anonymous = drawing(app.server.test_client().get("/wall").get_data(as_text=True))
    assert "alert-item" not in anonymous and "福田" not in anonymous  # the sign-in page


def test_the_acknowledge_callback_says_stale_and_not_firing_in_words_and_acks_once(app):
    from tests.test_access_matrix import ALERT_ACK, caller, compact, payload, post

    alert = firing_alert(app)
    client, headers = caller(app, "officer")

    def tap(version: int):
        button = {"alert-ack": alert["id"], "v": version}
        body = payload(app, ALERT_ACK, {'{"alert-ack":["ALL"],"v":["ALL"]}.n_clicks': [(button, 1)],
                                        "alert-refresh.data": 0, "lang.data": "en"}, compact(button) + ".n_clicks")
        res = post(client, headers, body)
        assert res.status_code == 200, res.get_data(as_text=True)
        return res.get_json()["response"]["alert-message"]["children"]["props"]["children"]

    assert tap(2) == "The alert changed meanwhile: check it again before acknowledging"  # stale: 409 over REST
    assert tap(1) == "Acknowledged: Futian: AQI 180"
    assert tap(2) == "That alert is no longer firing"  # 422 over REST
    res = client.get("/api/alerts?status=acknowledged")
    [acked] = res.get_json()["alerts"]
    assert acked["id"] == alert["id"] and acked["version"] == 2
    viewer, viewer_headers = caller(app, "viewer")
    button = {"alert-ack": alert["id"], "v": 2}
    body = payload(app, ALERT_ACK, {'{"alert-ack":["ALL"],"v":["ALL"]}.n_clicks': [(button, 1)],
                                    "alert-refresh.data": 0, "lang.data": "en"}, compact(button) + ".n_clicks")
    refused = post(viewer, viewer_headers, body)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"


def test_an_unchanged_list_is_not_sent_again(app):
    """A frame that changes nothing the list shows (a snapshot after a reconnect, another page's acknowledgement
    of a row not shown) redraws nothing: the buttons are not replaced under a finger."""
    from tests.test_access_matrix import ALERT_LIST, caller, payload, post

    firing_alert(app)
    client, headers = caller(app, "officer")

    def refresh(seen):
        return post(client, headers, payload(app, ALERT_LIST, {
            "alert-bump.data": {"n": 1, "seq": 1}, "alert-view.data": {"page": "desk"}, "alert-digest.data": seen,
            "lang.data": "zh"}))

    def sent(res) -> set:
        assert res.status_code in (200, 204), res.get_data(as_text=True)
        return set(res.get_json().get("response", {})) if res.status_code == 200 else set()

    first = refresh(None)
    assert sent(first) == {"alert-list", "alert-more", "alert-digest"}
    digest = first.get_json()["response"]["alert-digest"]["data"]
    assert sent(refresh(digest)) == set()
    firing_alert(app, "district:440305")
    assert sent(refresh(digest)) == {"alert-list", "alert-more", "alert-digest"}
