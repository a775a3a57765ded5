"""The browser-hardening headers: a Content-Security-Policy every page works under, no framing, no sniffing."""

from __future__ import annotations

import time

import pytest

from dashboard.web import headers
from dashboard.web.api_briefings import REPORT_CSP
from dashboard.briefings.generate import generate_now
from feeds.pipeline import now_ms
from tests.helpers import make_event, sign_in, wait_for
from tests.test_api import ingest_now
from tests.test_pages import own_updates_channel

# Collects every CSP violation of the page; injected through DevTools, which no page policy can block.
VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__csp.push(e.effectiveDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sourceFile || '')));
"""
# A map of the page has drawn the districts (SVG paths of its geo subplot's choropleth).
MAP_DRAWN = """
return document.querySelectorAll(arguments[0] + ' .js-plotly-plot .choroplethlayer path').length > 0;
"""
POLICY_OF = """
const done = arguments[arguments.length - 1];
fetch(window.location.href, {credentials: 'same-origin'})
    .then((r) => done([r.headers.get('content-security-policy'), r.headers.get('x-frame-options'),
                       r.headers.get('x-content-type-options'), r.headers.get('referrer-policy')]),
          (e) => done(String(e)));
"""


def test_gateway_sources_name_the_configured_gateway_or_this_hosts_port():
    assert headers.gateway_sources("wss://live.example.org/ws", 8051, "ops.example.org") == ["wss://live.example.org"]
    assert headers.gateway_sources("ws://127.0.0.1:9001/", 8051, "localhost:8050") == ["ws://127.0.0.1:9001"]
    assert headers.gateway_sources(None, 8051, "ops.example.org:8050") == ["ws://ops.example.org:8051",
                                                                          "wss://ops.example.org:8051"]
    assert headers.gateway_sources(None, 8051, "[::1]:8050") == ["ws://[::1]:8051", "wss://[::1]:8051"]
    assert headers.gateway_sources(None, 8051, "[::1]") == ["ws://[::1]:8051", "wss://[::1]:8051"]
    for hostile in ("a.example; script-src *", "a.example 'unsafe-inline'", "", "a,b"):
        assert headers.gateway_sources(None, 8051, hostile) == []


def test_every_page_and_answer_carries_the_headers(make_app, redis_client):
    app = make_app(BROWSER_PATH="none", PANORAMA_WS_PORT=8999)
    client = app.server.test_client()
    page = client.get("/login", headers={"Host": "ops.example.org:8050"})
    policy = page.headers["Content-Security-Policy"]
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["default-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'self'"
    assert directives["connect-src"] == "'self' ws://ops.example.org:8999 wss://ops.example.org:8999"
    # scripts: this site's files and the page's own inline scripts by hash; no eval, nothing inline besides
    assert directives["script-src"].split() == ["'self'", *app.csp_hashes()]
    assert "unsafe" not in directives["script-src"] and "*" not in policy
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    for path in ("/", "/wall", "/no/such/page"):  # the redirect to sign in, like every answer, is hardened too
        res = client.get(path)
        assert res.headers["X-Frame-Options"] == "DENY" and res.headers["X-Content-Type-Options"] == "nosniff"
    api = client.get("/api/health")
    assert api.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" not in api.headers
    # the briefing report keeps its own, stricter policy (and may be framed by this site's briefing page)
    from tests.helpers import make_user

    make_user(app, "o", "officer")
    assert client.post("/api/session", json={"username": "o", "password": "test-password-1"}).status_code == 200
    row = generate_now(app.server.extensions["panorama"], "o", now_ms())
    report = client.get(f"/api/briefings/{row['id']}.html")
    assert report.headers["Content-Security-Policy"] == REPORT_CSP and "X-Frame-Options" not in report.headers


@pytest.mark.timeout(240)
def test_every_page_works_under_its_policy_in_chromium(make_app, redis_client, dash_duo, monkeypatch):
    """Each page, signed in as admin (who may open all of them), draws with no CSP violation; the maps draw and
    the gateway's socket (another port) opens."""
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    channel = own_updates_channel(monkeypatch)
    port = free_port()
    # no PANORAMA_WS_URL: the page reaches the gateway on its own host at PANORAMA_WS_PORT, as by default
    app = make_app(PANORAMA_WS_PORT=port, BROWSER_PATH="none", PANORAMA_WALL_CYCLE_S=3600)
    now = int(time.time() * 1000)
    ingest_now(app, {"incident": [make_event(1, kind="fire", severity=4, ts=now, lat=22.54, lon=114.05,
                                             title="火情 福华路")]})
    briefing = generate_now(app.server.extensions["panorama"], "test", now_ms())
    dash_duo.start_server(app)
    base = dash_duo.server_url.rstrip("/")
    gw = Gateway(app.server.extensions["panorama"], port=port, origins=[base], channel=channel)
    gw.start()
    try:
        dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": VIOLATIONS})
        sign_in(dash_duo, app, "/", role="admin")
        checks = {
            "/": lambda: (dash_duo.wait_for_element("#live-indicator.conn-live", timeout=15), map_drawn("#city-map")),
            "/wall": lambda: (dash_duo.wait_for_element("#live-indicator.conn-live", timeout=15),
                              map_drawn("#city-map")),
            "/district/futian": lambda: dash_duo.wait_for_text_to_equal("#district-title", "福田区", timeout=10),
            "/dispatch": lambda: (dash_duo.wait_for_element("#incident-list .queue-item", timeout=10),
                                  dash_duo.driver.execute_script(
                                      "document.querySelector('#incident-list .queue-item').click()"),
                                  dash_duo.wait_for_text_to_equal("#dispatch-detail-title", "火情 福华路", timeout=30),
                                  map_drawn("#dispatch-map")),
            "/m": lambda: dash_duo.wait_for_contains_text("#incident-list", "火情 福华路", timeout=10),
            "/briefings": lambda: dash_duo.wait_for_element(f"#briefing-list a[href='/briefings/{briefing['id']}']",
                                                            timeout=10),
            f"/briefings/{briefing['id']}": lambda: wait_for(lambda: dash_duo.driver.execute_script(
                "const f = document.querySelector('#briefing-frame');"
                "return f && f.contentDocument && f.contentDocument.readyState === 'complete'"
                " && f.contentDocument.body.textContent.length > 0"), message="the report in its frame"),
            "/login": lambda: dash_duo.wait_for_element("#login-username", timeout=10),
        }

        def map_drawn(selector):
            wait_for(lambda: dash_duo.driver.execute_script(MAP_DRAWN, selector), timeout=15,
                     message=f"{selector} drawn")

        for path, ready in checks.items():
            dash_duo.driver.get(base + path)
            dash_duo.wait_for_element("#react-entry-point", timeout=10)
            ready()
            policy, frame, sniff, referrer = dash_duo.driver.execute_async_script(POLICY_OF)
            assert "frame-ancestors 'none'" in policy and frame == "DENY" and sniff == "nosniff", path
            assert referrer == "same-origin", path
            assert dash_duo.driver.execute_script("return window.__csp") == [], path
            assert dash_duo.get_logs() == [], path
    finally:
        gw.stop()
