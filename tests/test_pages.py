"""The pages in a real headless Chromium on real Redis and PostgreSQL, mostly through the polling path.

Most tests run no gateway: each page asks the server whether it answers, hears no, and polls
``/api/summary?live=1`` without ever opening a socket that would fail (and log a console error). The tests of
the push path start a gateway of their own, on an updates channel of their own (``own_updates_channel``).
"""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains

from tests.helpers import make_event, sign_in, wait_for, wait_for_graphs
from tests.test_api import ingest_now

# Fast polling; the wall's spotlight stays put so a slow run cannot see it move mid-count.
FAST = {"PANORAMA_POLL_MS": 700, "PANORAMA_WALL_CYCLE_S": 3600}


def ev(n, minutes_ago=0.0, **kw):
    return make_event(n, ts=int(time.time() * 1000 - minutes_ago * 60_000), **kw)


def js(dash_duo, script, *args):
    return dash_duo.driver.execute_script(script, *args)


def ticker_titles(dash_duo) -> list[str]:
    return js(dash_duo, "return [...document.querySelectorAll('#event-ticker > li .ticker-title')]"
                        ".map(e => e.textContent)")


def text(dash_duo, selector: str) -> str:
    return js(dash_duo, "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''", selector)


def viewport(dash_duo, width: int, height: int) -> None:
    """Size the window, then make the page exactly width×height CSS px whatever the browser's chrome takes."""
    dash_duo.driver.set_window_size(width, height)
    dash_duo.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def node_count(dash_duo) -> int:
    return js(dash_duo, "return document.getElementsByTagName('*').length")


@pytest.fixture
def fast_app(make_app, redis_client):
    """Give an app whose pages poll quickly."""
    return make_app(**FAST)


def test_incident_appears_in_ticker_and_raises_kpi_without_reload(fast_app, dash_duo):
    ingest_now(fast_app, {"traffic": [ev(1), ev(2, minutes_ago=5)]})
    dash_duo.start_server(fast_app)
    sign_in(dash_duo, fast_app)  # every page needs a signed-in user
    dash_duo.wait_for_text_to_equal("#kpi-traffic", "2", timeout=10)
    dash_duo.wait_for_text_to_equal("#kpi-incident", "0")
    dash_duo.wait_for_element("#live-indicator.conn-polling", timeout=10)
    js(dash_duo, "window.__same_page = true")
    ingest_now(fast_app, {"incident": [ev(7, kind="gas_leak", severity=3, title="燃气泄漏 福华路")]})
    dash_duo.wait_for_text_to_equal("#kpi-incident", "1", timeout=10)
    wait_for(lambda: ticker_titles(dash_duo)[:1] == ["燃气泄漏 福华路"], message="the incident on top of the ticker")
    assert len(ticker_titles(dash_duo)) == 3  # one child per event
    assert js(dash_duo, "return window.__same_page === true")  # no reload happened
    # the change against the previous window sits beside the count, not inside it
    assert dash_duo.find_element("#kpi-incident-delta").text.startswith("▲ 1")
    assert dash_duo.get_logs() == []


def test_clicking_a_district_opens_its_drill_down(app, dash_duo):
    ingest_now(app, {"security": [ev(1, district="futian", kind="theft", title="福田 盗窃")]})
    dash_duo.driver.set_window_size(1600, 1000)
    dash_duo.start_server(app)
    sign_in(dash_duo, app)  # every page needs a signed-in user
    dash_duo.wait_for_element("#city-map .choroplethlayer path", timeout=10)
    # where Futian's centre is on screen, asked of the map itself (its geo subplot's projection) once it has
    # fitted its box
    point = wait_for(lambda: js(dash_duo, """
        const gd = document.querySelector('#city-map .js-plotly-plot');
        const sub = gd && gd.layout.meta && gd.layout.meta.size && gd._fullLayout.geo && gd._fullLayout.geo._subplot;
        if (!sub || !sub.projection || !gd.querySelector('.choroplethlayer path')) return null;
        gd.scrollIntoView({block: 'center'});
        const p = sub.projection([114.0466, 22.5434]), r = gd.getBoundingClientRect();
        return {x: r.x + p[0], y: r.y + p[1]};"""), message="the map fitted and drawn")
    ActionChains(dash_duo.driver).move_to_location(int(point["x"]), int(point["y"])).click().perform()
    dash_duo.wait_for_text_to_equal("#district-title", "福田区", timeout=10)
    assert dash_duo.driver.current_url.endswith("/district/440304")
    dash_duo.wait_for_contains_text("#event-ticker", "福田 盗窃")
    # the breadcrumb leads back to the city
    dash_duo.find_element(".breadcrumb a").click()
    dash_duo.wait_for_element("#city-map", timeout=10)
    assert dash_duo.get_logs() == []


def test_markup_in_titles_is_shown_as_text(app, dash_duo):
    hostile = "<script>alert(1)</script><b>深南大道拥堵</b>"
    ingest_now(app, {"traffic": [ev(1, title=hostile)]})
    dash_duo.start_server(app)
    sign_in(dash_duo, app)  # every page needs a signed-in user
    dash_duo.wait_for_contains_text("#event-ticker", hostile, timeout=10)
    assert js(dash_duo, "return document.querySelectorAll('#event-ticker b, #event-ticker script').length") == 0
    dash_duo.driver.get(dash_duo.server_url + "/district/futian")
    dash_duo.wait_for_contains_text("#district-events", hostile, timeout=10)
    dash_duo.wait_for_contains_text("#event-ticker", hostile)
    assert js(dash_duo, "return document.querySelectorAll('.page-district b, .page-district script')"
                        ".length") == 0
    assert dash_duo.get_logs() == []


def test_a_feed_that_goes_silent_reads_stale(make_app, redis_client, dash_duo):
    app = make_app(PANORAMA_STALE_AFTER="traffic=3", **FAST)
    dash_duo.start_server(app)
    sign_in(dash_duo, app)  # every page needs a signed-in user
    traffic, security = "#feed-status li:nth-child(2)", "#feed-status li:nth-child(1)"
    dash_duo.wait_for_contains_text(traffic, "stale", timeout=10)  # nothing ever arrived
    ingest_now(app, {"traffic": [ev(1)], "security": [ev(2, kind="theft")]})
    wait_for(lambda: "秒前" in text(dash_duo, traffic) and "stale" not in text(dash_duo, traffic),
             message="traffic fresh")
    assert "stale" not in text(dash_duo, security)
    # nothing more arrives: after 3 s of silence the traffic feed reads stale, security does not
    dash_duo.wait_for_contains_text(traffic, "stale", timeout=10)
    assert "stale" not in text(dash_duo, security)
    dash_duo.wait_for_contains_text("#alert-banner", "交通")
    assert dash_duo.get_logs() == []


def test_wall_fits_both_screen_sizes_and_its_dom_stays_bounded(fast_app, dash_duo):
    ingest_now(fast_app, {"traffic": [ev(i, minutes_ago=i / 10, title=f"路况 {i}") for i in range(40)]})
    dash_duo.start_server(fast_app)
    sign_in(dash_duo, fast_app)  # every page needs a signed-in user
    for width, height in ((3840, 2160), (1920, 1080)):
        viewport(dash_duo, width, height)
        dash_duo.driver.get(dash_duo.server_url + "/wall")
        dash_duo.wait_for_text_to_equal("#kpi-traffic", "40", timeout=10)
        for sel in ("#city-map .choroplethlayer path", "#kpi-security", "#kpi-incident", "#feed-status li"):
            dash_duo.wait_for_element(sel)
        dash_duo.wait_for_element(".spotlight-panel .spot-name")
        size = js(dash_duo, "return [innerWidth, innerHeight, document.documentElement.scrollWidth,"
                            " document.documentElement.scrollHeight,"
                            " parseFloat(getComputedStyle(document.documentElement).fontSize)]")
        assert size[:2] == [width, height]
        assert size[2] <= width and size[3] <= height, f"the wall scrolls at {width}x{height}: {size}"
        assert size[4] == pytest.approx(width / 1920 * 16, abs=0.5)  # type grows with the screen
        # the map refits to its box and its labels grow too
        font = round(12 * width / 1920)
        wait_for(lambda font=font: js(dash_duo, "const gd = document.querySelector('#city-map .js-plotly-plot');"
                                                "return gd.layout.meta.size && gd.layout.font.size") == font,
                 message="the map fitted to the screen")
    assert len(ticker_titles(dash_duo)) == 30  # capped
    # every asset stylesheet loads on every page: no other page's rule may paint the wall's rows
    assert dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('#event-ticker li')]"
        ".every(li => getComputedStyle(li).backgroundColor === 'rgba(0, 0, 0, 0)')")
    counts = []
    for batch in range(3):
        title = f"新事件 {batch}"
        ingest_now(fast_app, {"incident": [ev(100 + batch, kind="fire", severity=4, title=title)]})
        wait_for(lambda title=title: ticker_titles(dash_duo)[:1] == [title], message=f"{title} on top of the ticker")
        dash_duo.wait_for_text_to_equal("#kpi-incident", str(batch + 1))
        counts.append(node_count(dash_duo))
    assert len(ticker_titles(dash_duo)) == 30
    # an extra ticker row would be 7 nodes; axis ticks or the spotlight's lines may move a few
    assert max(counts) - min(counts) <= 4, f"the wall's DOM changes size between refreshes: {counts}"
    assert dash_duo.get_logs() == []


def test_unknown_district_or_route_gets_a_not_found_page(app, dash_duo):
    dash_duo.start_server(app)
    sign_in(dash_duo, app)  # every page needs a signed-in user
    dash_duo.wait_for_element("#city-map")
    dash_duo.driver.get(dash_duo.server_url + "/district/atlantis")
    dash_duo.wait_for_text_to_equal("#not-found", "未找到页面", timeout=10)
    dash_duo.wait_for_contains_text(".not-found-message", "atlantis")
    dash_duo.driver.get(dash_duo.server_url + "/no/such/page")
    dash_duo.wait_for_text_to_equal("#not-found", "未找到页面", timeout=10)
    dash_duo.driver.get(dash_duo.server_url + "/district/nanshan")  # slugs work as well as codes
    dash_duo.wait_for_text_to_equal("#district-title", "南山区", timeout=10)
    assert dash_duo.get_logs() == []


def cells(dash_duo, column: str) -> list[str]:
    return js(dash_duo, f"return [...document.querySelectorAll('#district-events td[data-dash-column=\"{column}\"]')]"
                        ".map(e => e.textContent)")


def test_district_events_table_pages_sorts_and_filters_on_the_server(app, dash_duo):
    # 45 events a minute apart, newest first "事件 0"; one critical among them; one in another district
    evs = [ev(i, minutes_ago=i, district="futian", severity=4 if i == 30 else 1 + i % 2, title=f"事件 {i}")
           for i in range(45)]
    ingest_now(app, {"traffic": evs, "security": [ev(99, district="nanshan", kind="theft")]})
    dash_duo.start_server(app)
    sign_in(dash_duo, app)  # every page needs a signed-in user
    dash_duo.driver.get(dash_duo.server_url + "/district/futian")
    dash_duo.wait_for_text_to_equal("#district-title", "福田区", timeout=10)
    wait_for(lambda: cells(dash_duo, "title")[:1] == ["事件 0"], message="the newest event first")
    assert len(cells(dash_duo, "title")) == 20  # one page of 20 reached the browser, not all 45
    dash_duo.wait_for_text_to_equal("#district-events-note", "共 45 条")  # counted from rollups
    # keyset paging: "next" goes on from the last row; the page count is known once the end is reached
    dash_duo.find_element(".next-page").click()
    wait_for(lambda: cells(dash_duo, "title")[:1] == ["事件 20"], message="page 2 from the server")
    dash_duo.find_element(".next-page").click()
    wait_for(lambda: cells(dash_duo, "title") == [f"事件 {i}" for i in range(40, 45)], message="the last page")
    dash_duo.wait_for_text_to_equal(".page-number .last-page", "3")
    dash_duo.find_element(".first-page").click()
    wait_for(lambda: cells(dash_duo, "title")[:1] == ["事件 0"], message="back on page 1")
    # a page number typed past the pages reached lands on the furthest reached, not an OFFSET scan
    def type_page() -> bool:  # (keys typed while the table redraws can be lost: type again until it moves)
        box = dash_duo.find_element(".current-page")
        box.click()
        box.send_keys("40\n")
        try:
            return wait_for(lambda: cells(dash_duo, "title")[:1] == ["事件 40"], timeout=3)
        except AssertionError:
            return False
    wait_for(type_page, timeout=20, message="the furthest page reached")
    # sort by severity: the first click (ascending) is not served over the window and the page says so,
    # the second (descending) is
    sort = 'th[data-dash-column="severity"] .column-header--sort'
    dash_duo.find_element(sort).click()
    wait_for(lambda: "已按时间从新到旧排列" in dash_duo.find_element("#district-events-note").text,
             message="the note on the sort it cannot serve")
    wait_for(lambda: cells(dash_duo, "title")[:1] == ["事件 0"], message="newest first instead, from page 1")
    dash_duo.find_element(sort).click()
    wait_for(lambda: cells(dash_duo, "severity")[:2] == ["4", "2"], message="most severe first")
    assert cells(dash_duo, "title")[:2] == ["事件 30", "事件 1"]  # ties stay newest first
    assert "已按时间" not in dash_duo.find_element("#district-events-note").text
    # filter on the server: only the critical one is left, one page
    filt = dash_duo.find_element('th.dash-filter[data-dash-column="severity"] input')
    filt.send_keys(">= 4\n")
    wait_for(lambda: cells(dash_duo, "title") == ["事件 30"], message="filtered to the critical event")
    wait_for(lambda: not dash_duo.find_elements(".last-page"), message="a single page: no pager")
    assert dash_duo.get_logs() == []


def test_title_sort_over_a_day_says_why_and_lists_newest_first(app, dash_duo):
    ingest_now(app, {"traffic": [ev(i, minutes_ago=1 + i, district="futian", title=t)
                                 for i, t in enumerate(("事件 C", "事件 A", "事件 B"))]})
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/district/futian")
    wait_for(lambda: cells(dash_duo, "title") == ["事件 C", "事件 A", "事件 B"], message="newest first")
    sort = 'th[data-dash-column="title"] .column-header--sort'

    def window(value: str) -> None:  # the segmented control's styled label takes the click, as a person's
        js(dash_duo, "return document.querySelector(`#district-window input[value='${arguments[0]}']`)"
                     ".closest('label')", value).click()

    def title_sort_over_a_day(words: str) -> None:
        window("24h")
        dash_duo.find_element(sort).click()  # ascending: what a person means by sorting titles
        wait_for(lambda: words in dash_duo.find_element("#district-events-note").text, message=words)
        assert cells(dash_duo, "title") == ["事件 C", "事件 A", "事件 B"]  # time order, at once

    title_sort_over_a_day("按标题排序仅限 60 分钟以内的时段")
    window("1h")  # an hour is sorted by title
    wait_for(lambda: cells(dash_duo, "title") == ["事件 A", "事件 B", "事件 C"], message="sorted by title")
    assert "60" not in dash_duo.find_element("#district-events-note").text
    dash_duo.find_element("#lang-toggle").click()
    dash_duo.wait_for_text_to_equal("#district-title", "Futian", timeout=10)
    title_sort_over_a_day("sorting by title is limited to windows of at most 60 minutes")
    assert dash_duo.get_logs() == []


def test_language_switch_shows_english(app, dash_duo):
    dash_duo.start_server(app)
    sign_in(dash_duo, app)  # every page needs a signed-in user
    dash_duo.wait_for_text_to_equal(".topbar-title", "城市运行全景", timeout=10)
    wait_for_graphs(dash_duo)  # dcc's async graph logs an error when a switch unmounts it while it loads
    dash_duo.find_element("#lang-toggle").click()
    dash_duo.wait_for_text_to_equal(".topbar-title", "City Operations Panorama", timeout=10)
    dash_duo.wait_for_text_to_equal(".kpi-traffic-tile .kpi-label", "Traffic")
    dash_duo.wait_for_contains_text("#live-indicator", "polling", timeout=10)
    dash_duo.wait_for_contains_text("#feed-status", "Environment")
    wait_for_graphs(dash_duo)
    # the choice survives a reload (kept in the browser)
    dash_duo.driver.refresh()
    dash_duo.wait_for_text_to_equal(".topbar-title", "City Operations Panorama", timeout=10)
    assert dash_duo.get_logs() == []


def own_updates_channel(monkeypatch) -> str:
    """Send this test's ingest deltas to a channel of its own, and return it for the test's gateway.

    Pub/sub channels are shared by every Redis db: on panorama:updates a gateway would also forward the
    events of any other test run on the machine (the same ids, newer ones on top of the ticker).
    """
    import uuid

    import feeds.pipeline

    channel = f"test:updates:{uuid.uuid4().hex}"
    monkeypatch.setattr(feeds.pipeline, "UPDATES_CHANNEL", channel)
    return channel


def test_live_over_the_gateway_then_reconnecting_then_live_again(make_app, redis_client, dash_duo, monkeypatch):
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    channel = own_updates_channel(monkeypatch)
    port = free_port()
    app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/")
    dash_duo.start_server(app)
    sign_in(dash_duo, app)  # every page needs a signed-in user
    origins = [dash_duo.server_url.rstrip("/")]

    def gateway():
        gw = Gateway(app.server.extensions["panorama"], port=port, origins=origins, channel=channel)
        gw.start()
        return gw

    gw = gateway()
    try:
        dash_duo.driver.get(dash_duo.server_url + "/")
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=15)
        dash_duo.wait_for_text_to_equal("#kpi-incident", "0")
        ingest_now(app, {"incident": [ev(1, kind="fire", severity=4, title="莲花路火情")]})
        dash_duo.wait_for_text_to_equal("#kpi-incident", "1", timeout=10)  # pushed, not polled
        wait_for(lambda: ticker_titles(dash_duo)[:1] == ["莲花路火情"], message="pushed event on top")
        assert js(dash_duo, "return document.querySelector('#live-indicator').className") == "conn conn-live"
        gw.stop()
        dash_duo.wait_for_element("#live-indicator.conn-reconnecting", timeout=10)
        dash_duo.wait_for_contains_text("#alert-banner", "实时连接中断")
        gw = gateway()
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=20)  # the next retry finds it
        ingest_now(app, {"incident": [ev(2, kind="medical", severity=3, title="福华路医疗急救")]})
        dash_duo.wait_for_text_to_equal("#kpi-incident", "2", timeout=10)
    finally:
        gw.stop()
    assert dash_duo.get_logs() == []


# Counts every websocket frame the page takes in; injected before the page's own scripts.
FRAME_COUNTER = """
const WS = window.WebSocket;
window.__frames = 0;
window.WebSocket = class extends WS {
  constructor(...a) { super(...a); this.addEventListener('message', () => { window.__frames += 1; }); }
};
"""

# What a page keeps that could grow: its elements, and the undo history Dash's renderer records for every
# input prop changed outside a callback (our set_props, each timer tick), which holds the replaced values.
PAGE_SIZE = """
const h = window.store && window.store.getState().history;
return {nodes: document.getElementsByTagName('*').length, rows: document.querySelectorAll('#event-ticker > li').length,
        history: h ? h.past.length : null, frames: window.__frames};
"""


def test_wall_stays_the_same_size_however_many_frames_it_takes_in(make_app, redis_client, dash_duo, monkeypatch):
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    channel = own_updates_channel(monkeypatch)
    port = free_port()
    app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/", PANORAMA_WALL_CYCLE_S=3600)
    dash_duo.start_server(app)
    sign_in(dash_duo, app)
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FRAME_COUNTER})
    gw = Gateway(app.server.extensions["panorama"], port=port, origins=[dash_duo.server_url.rstrip("/")],
                 channel=channel)
    gw.start()
    sent = 0

    def publish(batches: int) -> dict:
        """Ingest ``batches`` batches of 5 events, each once the page shows the one before (a frame each)."""
        nonlocal sent
        for _ in range(batches):
            ingest_now(app, {"traffic": [ev(sent + i, title=f"路况 {sent + i}") for i in range(5)]})
            sent += 5
            wait_for(lambda: ticker_titles(dash_duo)[:1] == [f"路况 {sent - 1}"], message=f"event {sent - 1} on top")
        dash_duo.wait_for_text_to_equal("#kpi-traffic", str(sent), timeout=10)
        return js(dash_duo, PAGE_SIZE)

    try:
        viewport(dash_duo, 1920, 1080)
        dash_duo.driver.get(dash_duo.server_url + "/wall")
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=15)
        dash_duo.wait_for_element(".spotlight-panel .spot-name")
        first = publish(20)  # N = 100 events: the ticker is full
        third = publish(40)  # 3N
    finally:
        gw.stop()
    assert third["frames"] - first["frames"] >= 40, (first, third)  # one frame or more per batch
    assert first["rows"] == third["rows"] == 30
    # the same elements after N and 3N events (one more ticker row would be 4-5 elements)
    assert third["nodes"] - first["nodes"] <= 2, (first, third)
    # nor does the page keep a record of every value its stores ever held
    assert third["history"] is not None and third["history"] <= 10, (first, third)
    assert dash_duo.get_logs() == []


# The live map is SVG (a geo subplot): no maplibre map to leave one-shot error listeners on at every redraw (what
# the MapLibre map did: assets/live_figures.js), and a redraw replaces the districts' paths, adding none. Also
# counts the map's redraws.
MAP_LISTENERS = """
const gd = document.querySelector('#city-map .js-plotly-plot');
if (gd && !gd.__counted && gd.on) { gd.__counted = true; window.__redraws = 0; gd.on('plotly_afterplot', () => { window.__redraws += 1; }); }
const full = gd && gd._fullLayout;
return {paths: gd ? gd.querySelectorAll('.choroplethlayer path').length : 0,
        maps: full && full._subplots ? (full._subplots.map || []).length : null,
        nodes: gd && gd.querySelector('.geolayer') ? gd.querySelector('.geolayer').getElementsByTagName('*').length : 0,
        redraws: window.__redraws || 0};
"""


def test_live_map_keeps_nothing_per_redraw(make_app, redis_client, dash_duo, monkeypatch):
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    channel = own_updates_channel(monkeypatch)
    port = free_port()
    app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/")
    dash_duo.start_server(app)
    sign_in(dash_duo, app)
    gw = Gateway(app.server.extensions["panorama"], port=port, origins=[dash_duo.server_url.rstrip("/")],
                 channel=channel)
    gw.start()
    sent = 0

    def redrawn(n: int) -> bool:
        """Ingest a batch (new counts: a map redraw within a second) until the map has redrawn ``n`` times."""
        nonlocal sent
        if js(dash_duo, MAP_LISTENERS)["redraws"] >= n:
            return True
        ingest_now(app, {"traffic": [ev(sent + i, district=("futian", "nanshan", "luohu")[sent % 3])
                                     for i in range(5)]})
        sent += 5
        wait_for(lambda: ticker_titles(dash_duo) and len(ticker_titles(dash_duo)) >= min(sent, 30),
                 message=f"{sent} events in the ticker")
        return False

    try:
        dash_duo.driver.get(dash_duo.server_url + "/")
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=15)
        dash_duo.wait_for_element("#city-map .js-plotly-plot")
        wait_for(lambda: js(dash_duo, MAP_LISTENERS)["paths"] > 0, message="the map drawn")
        first = js(dash_duo, MAP_LISTENERS)
        wait_for(lambda: redrawn(12), timeout=120, interval=0.3, message="12 map redraws")
        after = js(dash_duo, MAP_LISTENERS)
    finally:
        gw.stop()
    assert after["redraws"] >= 12, after
    # one path per district, before and after; no maplibre map at all
    assert first["paths"] == after["paths"] == len(app.server.extensions["panorama"].city.districts), (first, after)
    assert first["maps"] == after["maps"] == 0, (first, after)
    assert after["nodes"] == first["nodes"], (first, after)  # the map's own elements (not the colour bar's ticks)
    assert dash_duo.get_logs() == []


def test_blocked_websockets_fall_back_to_polling(make_app, redis_client, dash_duo):
    import socketserver
    import threading

    from tests.redis_proc import free_port

    class Refuse(socketserver.BaseRequestHandler):
        """Answer every websocket handshake as a proxy that blocks websockets does."""

        def handle(self):
            self.request.recv(65536)
            self.request.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    port = free_port()
    blocker = socketserver.ThreadingTCPServer(("127.0.0.1", port), Refuse)
    threading.Thread(target=blocker.serve_forever, daemon=True).start()
    try:
        app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/", **FAST)
        dash_duo.start_server(app)
        sign_in(dash_duo, app)
        # the port answers, so the page tries its socket, says so, then gives up on it and polls
        dash_duo.wait_for_element("#live-indicator.conn-reconnecting", timeout=10)
        dash_duo.wait_for_element("#live-indicator.conn-polling", timeout=20)
        ingest_now(app, {"incident": [ev(1, kind="fire", severity=4, title="梅林路火情")]})
        dash_duo.wait_for_text_to_equal("#kpi-incident", "1", timeout=10)
        wait_for(lambda: ticker_titles(dash_duo)[:1] == ["梅林路火情"], message="polled event on top")
    finally:
        blocker.shutdown()
        blocker.server_close()
    # the browser reports each refused handshake; nothing else may fail
    assert all("WebSocket" in e["message"] for e in dash_duo.get_logs()), dash_duo.get_logs()


def test_window_selector_top_risk_and_clock(fast_app, dash_duo):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    # traffic: 2 in the last 15 min, 3 more in the hour, 4 more in the day; Nanshan has the critical ones
    evs = ([ev(i, minutes_ago=5) for i in range(2)] + [ev(10 + i, minutes_ago=40) for i in range(3)]
           + [ev(20 + i, minutes_ago=180) for i in range(4)])
    crit = [ev(30 + i, minutes_ago=5, district="nanshan", kind="theft", severity=4) for i in range(3)]
    ingest_now(fast_app, {"traffic": evs, "security": crit})
    dash_duo.start_server(fast_app)
    sign_in(dash_duo, fast_app)
    dash_duo.wait_for_text_to_equal("#kpi-traffic", "5", timeout=10)  # 1 h by default
    for label, count in (("15 分钟", "2"), ("24 小时", "9"), ("1 小时", "5")):
        [option] = [e for e in dash_duo.find_elements("#window-select label") if e.text == label]
        option.click()
        dash_duo.wait_for_text_to_equal("#kpi-traffic", count, timeout=10)
    # the five districts at highest risk, highest first
    wait_for(lambda: len(dash_duo.find_elements("#risk-top > li")) == 5, message="five districts at risk")
    dash_duo.wait_for_text_to_equal("#risk-top > li:first-child .risk-name", "南山区")
    # the clock keeps the city's time (Asia/Shanghai), whatever the browser's zone
    wait_for(lambda: datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%H:%M") in text(dash_duo, "#clock"),
             message="the clock on Shanghai time")
    assert dash_duo.get_logs() == []


def test_wall_spotlight_cycles_through_the_districts(make_app, redis_client, dash_duo):
    app = make_app(PANORAMA_WALL_CYCLE_S=1, PANORAMA_POLL_MS=700)
    dash_duo.start_server(app)
    sign_in(dash_duo, app, path="/wall")
    dash_duo.wait_for_element(".spotlight-panel .spot-name", timeout=10)
    seen = set()
    wait_for(lambda: seen.add(text(dash_duo, ".spotlight-panel .spot-name")) or len(seen - {""}) >= 3,
             timeout=15, message="the spotlight on three districts in turn")
    assert dash_duo.get_logs() == []


def test_a_new_event_moves_no_row_of_the_ticker(fast_app, dash_duo):
    """Rows are slots whose text is rewritten: nothing in the ticker shifts when an event arrives (a row inserted
    on top moved every row below it, a layout shift each time: CLS 0.27-0.42 on /)."""
    ingest_now(fast_app, {"traffic": [ev(i, minutes_ago=i, title=f"路况 {i}") for i in range(1, 6)]})
    dash_duo.start_server(fast_app)
    sign_in(dash_duo, fast_app)
    wait_for(lambda: len(ticker_titles(dash_duo)) == 5, message="five rows")
    js(dash_duo, """
        window.__rows = [...document.querySelectorAll('#event-ticker > li')];
        window.__shifts = [];
        new PerformanceObserver((list) => {
            for (const e of list.getEntries()) {
                for (const s of e.sources || []) {
                    if (s.node && s.node.closest && s.node.closest('#event-ticker')) window.__shifts.push(e.value);
                }
            }
        }).observe({type: 'layout-shift'});""")
    ingest_now(fast_app, {"incident": [ev(7, kind="gas_leak", severity=3, title="燃气泄漏 福华路")]})
    wait_for(lambda: ticker_titles(dash_duo)[:1] == ["燃气泄漏 福华路"], message="the new event on top")
    assert ticker_titles(dash_duo)[1:] == [f"路况 {i}" for i in range(1, 6)]
    assert js(dash_duo, "return [...document.querySelectorAll('#event-ticker > li')].slice(0, 5)"
                        ".every((li, i) => li === window.__rows[i])"), "the first five rows are the same elements"
    # a frame's shifts are reported after it is painted: wait for two frames before reading them
    js(dash_duo, "window.__painted = false; requestAnimationFrame(() => requestAnimationFrame(() => "
                 "{ window.__painted = true; }))")
    wait_for(lambda: js(dash_duo, "return window.__painted"), message="two frames painted")
    assert js(dash_duo, "return window.__shifts") == []
    assert dash_duo.get_logs() == []


def test_the_district_page_does_not_jump_when_its_graphs_load(app, dash_duo):
    """Every box keeps its size from the first paint to the drawn graphs: until Plotly had loaded, the graphs had
    no height and the panels below them jumped 370 px when they came (0.14 of layout shift)."""
    ingest_now(app, {"traffic": [ev(i, minutes_ago=i, district="futian", title=f"路况 {i}") for i in range(1, 40)]})
    dash_duo.start_server(app)
    sign_in(dash_duo, app)
    viewport(dash_duo, 1350, 940)
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
        window.__shift = 0;
        new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__shift += e.value; })
            .observe({type: 'layout-shift', buffered: true});"""})
    dash_duo.driver.get(dash_duo.server_url + "/district/440304")
    dash_duo.wait_for_element("#district-events td", timeout=20)
    wait_for(lambda: js(dash_duo, "return document.querySelectorAll("
                                  "'#district-map .main-svg, #district-streets .main-svg, #district-trend .main-svg')"
                                  ".length >= 3"
                                  " && !document.getElementById('first-paint')"), timeout=20, message="graphs drawn")
    js(dash_duo, "window.__painted = false; requestAnimationFrame(() => requestAnimationFrame(() => "
                 "{ window.__painted = true; }))")
    wait_for(lambda: js(dash_duo, "return window.__painted"), message="two frames painted")
    assert js(dash_duo, "return window.__shift") < 0.02
    assert dash_duo.get_logs() == []
