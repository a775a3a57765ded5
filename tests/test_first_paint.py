"""The first paint: each page's HTML carries the page as the router would draw it for this visitor, inert, and
Dash's scripts are deferred; in Chromium the drawing goes once the app has drawn the page (issue 15: /m's
largest paint on a slow phone)."""

from __future__ import annotations

import re

from dash import dcc, html

from dashboard.web.first_paint import RENDERER, deferred, to_html
from tests.helpers import sign_in, wait_for
from tests.test_access_matrix import open_incident, session

EVIL = '<img src=x onerror="alert(1)">'


def drawing(page: str) -> str:
    """Return the first-paint element's HTML in ``page`` ('' when there is none)."""
    m = re.search(r'<div id="first-paint"[^>]*>(.*?)</div>\s*<div id="react-entry-point"', page, re.S)
    return m.group(1) if m else ""


def test_components_become_inert_html():
    tree = html.Div([
        html.Span(EVIL, id="t", className="title", style={"fontSize": 12, "opacity": 0.5}),
        dcc.Store(id="s", data={"secret": 1}), dcc.Interval(id="i"),
        dcc.Link("派单", href="/dispatch", className="nav"),
        dcc.Graph(id="map", className="city-map", style={"height": "40vh"}),
        html.Button("确认", id="b", **{"aria-describedby": "t", "aria-label": "确认派单"}),
        html.Img(src="/assets/x.png", alt=""), None, 3,
    ], id="page", hidden=False, **{"data-role": "x"})
    out = to_html(tree)
    assert out == (
        '<div data-role="x"><span class="title" style="font-size: 12px; opacity: 0.5">'
        '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</span><a href="/dispatch" class="nav">派单</a>'
        '<div class="dash-graph city-map" style="height: 40vh"></div>'
        '<button aria-label="确认派单">确认</button><img alt="" src="/assets/x.png">3</div>')
    assert "id=" not in out and "secret" not in out


def test_external_scripts_are_deferred_and_inline_ones_kept():
    tags = '<script src="/a.js"></script>\n<script>var x = "<script src=";</script><script defer src="/b.js"></script>'
    assert deferred(tags) == ('<script defer src="/a.js"></script>\n<script>var x = "<script src=";</script>'
                              '<script defer src="/b.js"></script>')


def test_a_commanders_m_is_in_its_html_escaped_and_a_viewers_is_not(make_app, redis_client):
    app = make_app()
    open_incident(app)
    svc = app.server.extensions["panorama"]
    with svc.engine.begin() as conn:  # an event title is text, in the drawing too
        conn.exec_driver_sql("UPDATE incidents SET title = %s" if svc.engine.dialect.name == "postgresql"
                             else "UPDATE incidents SET title = ?", (EVIL,))
    commander, _ = session(app, "commander")
    res = commander.get("/m")
    page = res.get_data(as_text=True)
    first = drawing(page)
    assert first and "&lt;img src=x onerror=" in first and EVIL not in page
    assert ' id="' not in first  # the live page's ids stay unique
    assert re.search(r'<script defer src="[^"]*dash_renderer', page)
    assert RENDERER in page
    csp = res.headers["Content-Security-Policy"]
    assert all(f"'{h}'" in csp or h in csp for h in app.csp_hashes())  # the renderer's new script is allowed
    # the drawing is the router's: a viewer's /m is the not-allowed page, with nothing of the incidents
    viewer, _ = session(app, "viewer")
    first = drawing(viewer.get("/m").get_data(as_text=True))
    assert first and "onerror" not in first and "火情" not in first


def test_the_language_cookie_draws_the_page_and_its_lang_in_english(make_app, redis_client):
    app = make_app()
    commander, _ = session(app, "commander")
    page = commander.get("/m").get_data(as_text=True)
    assert '<html class="is-mobile" lang="zh-CN">' in page  # the commander's phone page, marked for its styles
    commander.set_cookie("panorama_lang", "en")
    page = commander.get("/m").get_data(as_text=True)
    assert '<html class="is-mobile" lang="en">' in page
    first = drawing(page)
    assert '<span class="user-role" data-role="commander">commander</span>' in first
    main = re.search(r"<main.*</main>", first, re.S).group(0)
    assert not re.search(r"[\u4e00-\u9fff]", re.sub(r"<[^>]+>", "", main).replace("中文", "")), main[:400]


def test_in_chromium_the_drawing_gives_way_to_the_live_page(make_app, redis_client, dash_duo):
    app = make_app()
    open_incident(app)
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/m", role="commander")
    wait_for(lambda: dash_duo.driver.execute_script("return !document.getElementById('first-paint')"),
             timeout=20, message="the drawing removed")
    dash_duo.wait_for_element("#page > *")
    ids = dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('[id]')].map(e => e.id).filter((x, i, a) => a.indexOf(x) !== i)")
    assert ids == []
    # switching to English leaves the cookie the server draws the next page by
    dash_duo.find_element("#lang-toggle").click()
    wait_for(lambda: "panorama_lang=en" in dash_duo.driver.execute_script("return document.cookie"),
             message="the language cookie")
    dash_duo.driver.get(dash_duo.server_url + "/m")
    assert dash_duo.driver.execute_script("return document.documentElement.lang") == "en"
    assert dash_duo.get_logs() == []


def test_the_servers_status_line_is_the_one_the_browser_writes(make_app, redis_client):
    import json
    import subprocess

    from dashboard.core.config import ROOT
    from callbacks.live import live_settings
    from layouts.common import live_config
    from layouts.mobile import STATUS_KEYS, status_text, tx

    app = make_app()
    svc = app.server.extensions["panorama"]
    city = svc.city
    states = [None, {"windows": {}},
              {"windows": {"1h": {"totals": {"security": 3, "traffic": 41}, "districts": {
                  "440304": {"risk": 12.5}, "440305": {"risk": 35.49}, "440303": {"risk": 35.49}}}}},
              {"windows": {"1h": {"totals": {}, "districts": {"440304": {"risk": 0.4}}}}}]
    for lang in ("zh", "en"):
        config = live_config(city, lang, "mobile", live_settings(svc.config))
        config["mobile"] = {k: tx(k, lang) for k in STATUS_KEYS}
        script = ("const m = require(process.argv[1]); const [states, config] = JSON.parse(process.argv[2]);"
                  "console.log(JSON.stringify(states.map(s => m.status(s && {state: s}, config))));")
        out = subprocess.run(["node", "-e", script, str(ROOT / "assets" / "mobile.js"),
                              json.dumps([states, config])], capture_output=True, text=True, check=True).stdout
        assert [status_text(s, config) for s in states] == json.loads(out)


def test_choices_are_drawn_as_dash_draws_them_so_nothing_moves_at_the_swap():
    radios = to_html(dcc.RadioItems(id="w", options=[{"label": "15 分钟", "value": "15m"},
                                                     {"label": "1 小时", "value": "1h"}],
                                    value="1h", className="segmented", inline=True))
    assert radios.count("<label") == 2 and radios.count(" checked") == 1
    assert radios.startswith('<div class="dash-options-list dash-radioitems segmented">')
    assert "selected dash-radioitems-inline" in radios and "disabled" in radios
    menu = to_html(dcc.Dropdown(id="m", options={"all": "全部事件", "x": "<b>"}, value="all", className="pick"))
    assert 'class="dash-dropdown pick" disabled' in menu and "<span>全部事件</span>" in menu and "<b>" not in menu


def test_fields_are_drawn_empty_and_disabled():
    assert to_html(dcc.Input(id="u", type="password", value="secret", placeholder="密码", className="f")) \
        == '<input type="password" placeholder="密码" class="f" disabled>'
    assert to_html(dcc.Textarea(id="n", value="备注")) == "<textarea disabled></textarea>"


def test_a_frame_is_drawn_as_its_box_and_loads_nothing():
    assert to_html(html.Iframe(id="f", src="/api/briefings/1.html", className="frame", style={"height": "80vh"})) \
        == '<div class="frame" style="height: 80vh"></div>'


def test_the_panoramas_ticker_rows_are_in_its_first_paint(make_app, redis_client):
    """The live page fills its ticker only once Dash has drawn it; the drawing has the rows already (as text)."""
    from tests.test_api import ingest_now
    from tests.test_pages import ev

    app = make_app()
    ingest_now(app, {"traffic": [ev(1, title="深南大道拥堵"), ev(2, minutes_ago=1, title=EVIL)]})
    officer, _ = session(app, "officer")
    for path in ("/", "/wall"):
        first = drawing(officer.get(path).get_data(as_text=True))
        rows = re.findall(r'<li class="ticker-item[^"]*">(.*?)</li>', first, re.S)
        assert len(rows) == 2, path
        assert "深南大道拥堵" in rows[0] and "&lt;img src=x onerror=" in rows[1] and EVIL not in first


def test_the_live_tickers_rows_are_drawn_as_the_browser_rewrites_them(make_app, redis_client):
    """/ and /wall draw their ticker's rows in the layout (Dash's first render too, not only the drawing); the
    browser rewrites them in place (live_render.js fillRow keeps a row's spans when they are the ones it would
    draw), so the server's parts must be the browser's: else every row is rebuilt at the first frame, a new
    largest paint seconds after load."""
    import json
    import subprocess

    from dashboard.core.config import ROOT
    from callbacks.live import live_settings
    from layouts.common import live_config, live_ticker_rows

    app = make_app()
    svc = app.server.extensions["panorama"]
    city = svc.city
    district = city.districts[0]
    street = district.streets[0]
    events = [{"id": "1", "domain": "traffic", "kind": "congestion", "district": district.code,
               "street": street.name, "severity": 2, "title": None, "ts": 1_700_000_000_000},
              {"id": "2", "domain": "security", "kind": "theft", "district": district.code, "street": "无名街",
               "severity": 3, "title": EVIL, "ts": 1_700_000_060_000},
              {"id": "3", "domain": "incident", "kind": "fire", "district": "999999", "street": None, "severity": 4,
               "title": "火警", "ts": 1_700_000_060_000}]
    for lang in ("zh", "en"):
        for page in ("desk", "wall"):
            config = live_config(city, lang, page, live_settings(svc.config))
            served = [[[span.className, span.children] for span in li.children]
                      for li in live_ticker_rows(events, city, lang, config["tz"], wall=page == "wall")]
            script = ("require(process.argv[1]); const r = require(process.argv[2]);"
                      "const [events, config] = JSON.parse(process.argv[3]);"
                      "const rows = events.slice().sort((a, b) => b.ts - a.ts);"  # stable: ties keep their order
                      "console.log(JSON.stringify(rows.map(e => r.rowParts(e, config))));")
            out = subprocess.run(["node", "-e", script, str(ROOT / "assets" / "live_common.js"),
                                  str(ROOT / "assets" / "live_render.js"), json.dumps([events, config])],
                                 capture_output=True, text=True, check=True).stdout
            assert served == json.loads(out), (lang, page)
            assert len(served[0]) == (3 if page == "wall" else 4)
