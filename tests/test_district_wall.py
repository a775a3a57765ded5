"""A district centre's wall (SPEC section 13, issue 18): its district alone on the map, fitted to its outline, with
its events and open incidents placed; its streets, busiest first, in place of the districts' ranking; the spotlight
going round its busiest streets. The city's wall stays the city's."""

from __future__ import annotations

import orjson
import pytest

from dashboard.figures.district_map import EVENTS_TRACE, INCIDENTS_TRACE, STREETS_TRACE
from dashboard.storage import users as accounts
from tests import test_access_matrix as matrix
from tests.test_api import ingest_now, now_event
from tests.test_district_scope import MINE, OWN, district_user, secret_in, seed

FUTIAN_STREETS = ("园岭街道", "华强北街道", "Yuanling", "Huaqiangbei")
HEADERS = {"Referer": "http://localhost/wall"}


def seed_streets(app) -> dict:
    """Seed the districts (tests/test_district_scope.py) and events on Luohu's and Futian's streets: Luohu's
    黄贝街道 busiest (3 events and an incident), 东门街道 next (1)."""
    data = seed(app)
    luohu = [now_event(700 + j, kind="congestion", district="luohu", street="黄贝街道", lat=22.55, lon=114.13,
                       title=f"{MINE} 黄贝 {j}") for j in range(3)]
    luohu.append(now_event(710, kind="congestion", district="luohu", street="东门街道", lat=22.548, lon=114.12,
                           title=f"{MINE} 东门"))
    futian = [now_event(720 + j, kind="congestion", district="futian", street="华强北街道", lat=22.54, lon=114.08,
                        title=f"外区机密 华强北 {j}") for j in range(5)]
    ingest_now(app, {"traffic": luohu + futian,
                     "incident": [now_event(730, kind="fire", severity=4, district="luohu", street="黄贝街道",
                                            lat=22.551, lon=114.131, title=f"{MINE} 黄贝火情")]})
    return data


def wall_client(app, district: str | None = OWN):
    """Return a test client holding a kiosk wall's cookie (of ``district``'s wall; None: the city's)."""
    svc = app.server.extensions["panorama"]
    _, token = accounts.create_kiosk_token(svc.engine, f"wall {district}", district,
                                           [d.code for d in svc.city.districts])
    client = app.server.test_client()
    assert client.get(f"/wall?token={token}", follow_redirects=True).request.path == "/wall"
    return client


def page(app, client, lang: str = "zh") -> tuple[str, dict]:
    """Return /wall as the router draws it: its text and the components by id."""
    res = client.post("/_dash-update-component", headers=HEADERS, json=matrix.payload(
        app, matrix.ROUTER, {"url.pathname": "/wall", "lang.data": lang, "url.search": ""}))
    assert res.status_code == 200, res.get_data(as_text=True)[:300]
    text = res.get_data(as_text=True)
    found: dict = {}

    def walk(node):
        if isinstance(node, dict):
            props = node.get("props") if isinstance(node.get("props"), dict) else None
            if props is not None and isinstance(props.get("id"), str):
                found[props["id"]] = props
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(orjson.loads(text))
    return text, found


def store_value(res, opt: str):
    """Return what a callback's answer writes to the one store of pattern id ``opt``."""
    for key, props in res.get_json()["response"].items():
        if f'"opt":"{opt}"' in key:
            return next(iter(props.values()))
    raise AssertionError(f"no {opt} in {list(res.get_json()['response'])}")


@pytest.fixture
def wapp(make_app, redis_client):
    return make_app(BROWSER_PATH="none")


def test_a_district_wall_shows_its_district_by_street(wapp):
    data = seed_streets(wapp)
    text, parts = page(wapp, wall_client(wapp))
    assert secret_in(text, data["others"]) == [] and not any(s in text for s in FUTIAN_STREETS)
    assert "罗湖区" in text and "risk-top" not in text  # the districts' ranking gives way to its streets
    fig = parts["city-map"]["figure"]
    assert list(fig["data"][0]["locations"]) == [OWN] and not fig["layout"].get("annotations")
    # its one label is HTML over the map (layouts/common.py map_label_layer), as on the city's wall
    assert [lab["props"]["data-code"] for lab in parts["map-labels"]["children"]] == [OWN]
    west, south, east, north = fig["layout"]["meta"]["bounds"]
    assert east - west < 0.5 and north - south < 0.3, "fitted to Luohu's outline, not the city's"
    events, incidents = fig["data"][EVENTS_TRACE], fig["data"][INCIDENTS_TRACE]
    assert len(events["lon"]) >= 4 and all(MINE in x for x in events["text"] if "黄贝" in x)
    assert any("黄贝火情" in x for x in incidents["text"])
    # its streets as areas, one each, coloured by their events in the hour, noted as approximate
    streets = fig["data"][STREETS_TRACE]
    assert len(fig["data"]) == STREETS_TRACE + 1 and len(streets["locations"]) == 10
    assert dict(zip(streets["locations"], streets["z"]))["黄贝街道"] == 4 and "街道边界为近似示意" in text
    bars = parts["wall-streets"]["figure"]
    names = list(bars["data"][0]["y"])
    assert names[-1] == "黄贝街道" and names[-2] == "东门街道", "busiest on top (Plotly draws the last on top)"
    places = [li["props"]["children"][1]["props"]["children"] for li in parts["event-ticker"]["children"]]
    assert "黄贝街道" in places, "a district wall's rows name the street (the district: those with none)"
    config = parts["live-config"]["data"]
    assert config["district"] == OWN and config["codes"] == [OWN] and list(config["districts"]) == [OWN]
    assert config["cycle"][:2] == ["黄贝街道", "东门街道"]
    assert parts["view"]["data"]["highlight"] == "黄贝街道"
    en, _ = page(wapp, wall_client(wapp), "en")
    assert "Huangbei" in en and "Luohu" in en and not any(s in en for s in FUTIAN_STREETS)


def test_a_district_wall_replays_its_own_district_by_street(wapp):
    from datetime import datetime, timedelta, timezone
    from urllib.parse import quote

    data = seed_streets(wapp)
    at = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat(timespec="seconds")
    res = wall_client(wapp).post("/_dash-update-component", headers=HEADERS, json=matrix.payload(
        wapp, matrix.ROUTER, {"url.pathname": "/wall", "lang.data": "zh", "url.search": f"?at={quote(at)}"}))
    text = res.get_data(as_text=True)
    assert res.status_code == 200 and "replay-banner" in text and "wall-streets" in text, text[:300]
    assert "wall-streets-tick" not in text, "a replay keeps the replayed minute's streets"
    assert secret_in(text, data["others"]) == [] and not any(s in text for s in FUTIAN_STREETS)


def test_the_city_wall_stays_the_citys(wapp):
    seed_streets(wapp)
    text, parts = page(wapp, wall_client(wapp, None))
    assert "risk-top" in text and "wall-streets" not in text and "wall-streets-tick" not in text
    assert len(parts["city-map"]["figure"]["data"][0]["locations"]) == 9
    assert len(parts["city-map"]["figure"]["data"]) == EVENTS_TRACE  # the districts and the alert outlines only
    assert "district" not in parts["live-config"]["data"]


def test_a_district_walls_spotlight_reads_its_own_streets_only(wapp):
    seed_streets(wapp)
    wall = wall_client(wapp)

    def spot(highlight):
        return wall.post("/_dash-update-component", headers=HEADERS, json=matrix.payload(wapp, matrix.SPOT_DATA, {
            "view.data": {"page": "wall", "highlight": highlight}, "live-trend.data": None}))

    res = spot("黄贝街道")
    assert res.status_code == 200
    street = store_value(res, "spot-data")
    assert street["code"] == "黄贝街道" and street["open"] == 1 and street["incidents"][0]["title"] == f"{MINE} 黄贝火情"
    assert sum(street["trend"]["series"]["traffic"]) + sum(street["trend"]["series"]["incident"]) >= 0
    for other in ("华强北街道", "futian", "440304"):  # another district's street, or the district itself
        assert spot(other).status_code == 204, other


def test_a_district_walls_refresh_sends_its_streets_and_points_only(wapp):
    data = seed_streets(wapp)
    wall = wall_client(wapp)
    build = matrix.CALLBACKS[matrix.WALL_STREETS][1]
    res = wall.post("/_dash-update-component", headers=HEADERS, json=build(wapp))
    assert res.status_code == 200
    text = res.get_data(as_text=True)
    assert secret_in(text, data["others"]) == [] and not any(s in text for s in FUTIAN_STREETS)
    store = store_value(res, "street-data")
    assert store["cycle"][0] == "黄贝街道" and store["code"] == OWN
    # the city's wall, and an anonymous caller, have no district wall to refresh
    for other in (wall_client(wapp, None), wapp.server.test_client()):
        assert other.post("/_dash-update-component", headers=HEADERS, json=build(wapp)).status_code == 204
    # a district user sees the same wall (their own district's)
    client, csrf = district_user(wapp)
    res = client.post("/_dash-update-component", headers={"X-CSRF-Token": csrf, **HEADERS}, json=build(wapp))
    assert res.status_code == 200 and secret_in(res.get_data(as_text=True), data["others"]) == []


@pytest.mark.timeout(300)
def test_a_district_wall_passes_axe_in_both_languages(make_app, redis_client, dash_duo):
    """In Chromium, a kiosk token made for Luohu: its wall (map, street bars, a street in the spotlight) has no
    violation of WCAG 2.2 AA, in Chinese and in English."""
    from tests.helpers import wait_for
    from tests.test_accessibility import axe_violations, html_lang

    app = make_app(BROWSER_PATH="none", PANORAMA_WALL_CYCLE_S=3600)
    ingest_now(app, {"traffic": [now_event(700 + j, kind="congestion", district="luohu", street="黄贝街道",
                                           lat=22.55, lon=114.13, severity=1 + j % 4, title=f"{MINE} {j}")
                                 for j in range(8)]})
    svc = app.server.extensions["panorama"]
    _, token = accounts.create_kiosk_token(svc.engine, "罗湖大屏", OWN, [d.code for d in svc.city.districts])
    dash_duo.start_server(app)
    found = {}
    for lang in ("zh", "en"):
        dash_duo.driver.get(f"{dash_duo.server_url.rstrip('/')}/wall?token={token}" if lang == "zh" else
                            f"{dash_duo.server_url.rstrip('/')}/wall")
        if lang == "en":  # the wall has no language button: the browser's choice (tests/test_wall.py)
            dash_duo.driver.execute_script("localStorage.setItem('lang', JSON.stringify('en'));"
                                           "localStorage.setItem('lang-timestamp', String(Date.now()));")
            dash_duo.driver.get(f"{dash_duo.server_url.rstrip('/')}/wall")
        wait_for(lambda: dash_duo.driver.execute_script(
            "const el = document.querySelector('.spotlight-panel .spot-name'); return el && el.textContent")
            in ("黄贝街道", "Huangbei"), timeout=20, message="a street in the spotlight")
        dash_duo.wait_for_element("#wall-streets .js-plotly-plot", timeout=20)
        found[lang] = (html_lang(dash_duo), axe_violations(dash_duo))
    assert found == {"zh": ("zh-CN", []), "en": ("en", [])}, found


# The wall's street bars and map as Plotly holds them: each bar's street and traffic count (trace 1: DOMAINS'
# order), the district map's locations and its events' hover texts.
WALL_JS = """const bars = document.querySelector('#wall-streets .js-plotly-plot');
const map = document.querySelector('#city-map .js-plotly-plot');
if (!bars || !bars.data || !map || !map.data) { return null; }
const traffic = {};
bars.data[1].y.forEach((y, k) => { traffic[y] = bars.data[1].x[k]; });
const streets = {};
map.data[%d].locations.forEach((name, k) => { streets[name] = map.data[%d].z[k]; });
return {traffic: traffic, locations: map.data[0].locations, z: map.data[0].z,
        events: map.data[%d].text, streets: streets};""" % (STREETS_TRACE, STREETS_TRACE, EVENTS_TRACE)
TEXT_OF = "const el = document.querySelector(arguments[0]); return el ? el.textContent : '';"


@pytest.mark.timeout(300)
def test_a_district_kiosk_wall_shows_its_streets_live(make_app, redis_client, dash_duo):
    """In Chromium, a kiosk token made for Luohu (``flask kiosk create --district``): its wall draws Luohu alone by
    street (no other district on the map, the bars or the page); an event then published on one of its quiet
    streets reaches the wall through the gateway (its ticker and the traffic tile at once, from the deltas of the
    wall's scope) and its street's bar and its map's dots at the next street refresh; Futian's never shows."""
    from dashboard.gateway.server import Gateway
    from tests.helpers import wait_for
    from tests.redis_proc import free_port

    port = free_port()
    app = make_app(BROWSER_PATH="none", PANORAMA_WALL_CYCLE_S=3600, PANORAMA_WS_PORT=port,
                   PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/")
    data = seed_streets(app)
    svc = app.server.extensions["panorama"]
    _, token = accounts.create_kiosk_token(svc.engine, "罗湖大屏", OWN, [d.code for d in svc.city.districts])
    dash_duo.start_server(app)
    base = dash_duo.server_url.rstrip("/")
    gw = Gateway(svc, port=port, origins=[base])
    gw.start()
    try:
        dash_duo.driver.get(f"{base}/wall?token={token}")
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=30)
        first = wait_for(lambda: dash_duo.driver.execute_script(WALL_JS), timeout=20, message="the wall's graphs")
        assert first["locations"] == [OWN], "Luohu alone on the map"
        assert first["traffic"]["黄贝街道"] == 3 and first["traffic"].get("翠竹街道", 0) == 0
        assert first["streets"]["黄贝街道"] == 4 and first["streets"]["翠竹街道"] == 0 and len(first["streets"]) == 10
        assert not any(s in first["traffic"] for s in FUTIAN_STREETS)
        tile = int(wait_for(lambda: (lambda x: x if x.isdigit() else None)(
            dash_duo.driver.execute_script(TEXT_OF, "#kpi-traffic")), timeout=20, message="the traffic tile"))
        # published while the wall is up: Futian's first, then Luohu's on 翠竹街道 (quiet until now)
        ingest_now(app, {"traffic": [now_event(801, kind="congestion", district="futian", street="华强北街道",
                                               lat=22.54, lon=114.08, title="外区机密 直播")]})
        ingest_now(app, {"traffic": [now_event(802, kind="congestion", district="luohu", street="翠竹街道",
                                               lat=22.565, lon=114.13, title=f"{MINE} 翠竹 直播")]})
        wait_for(lambda: f"{MINE} 翠竹 直播" in dash_duo.driver.execute_script(TEXT_OF, "#event-ticker"), timeout=20,
                 message="Luohu's event on the wall's ticker (the gateway's delta)")
        wait_for(lambda: dash_duo.driver.execute_script(TEXT_OF, "#kpi-traffic") == str(tile + 1), timeout=20,
                 message="the traffic tile counts Luohu's event, not Futian's")
        now = wait_for(lambda: (lambda s: s if s and s["traffic"].get("翠竹街道") == 1 else None)(
            dash_duo.driver.execute_script(WALL_JS)), timeout=30, message="翠竹街道's bar at the street refresh")
        assert any("翠竹 直播" in x for x in now["events"]), "its dot on the district's map"
        assert now["streets"]["翠竹街道"] == 1, "its street's area coloured anew"
        assert now["locations"] == [OWN] and not any(s in now["traffic"] for s in FUTIAN_STREETS)
        held = dash_duo.driver.execute_script(TEXT_OF, "body")
        assert secret_in(held, data["others"]) == [] and "华强北" not in held and "福田" not in held
        assert secret_in(dash_duo.driver.page_source, data["others"]) == []
    finally:
        gw.stop()
    severe = [e["message"] for e in dash_duo.get_logs() or [] if e["level"] == "SEVERE"]
    assert severe == [], severe
