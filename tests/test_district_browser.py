"""A district officer signed in through the test OpenID Connect provider (tests/oidc_op.py) sees only their
district in Chromium: on / (their district by street), on /dispatch (their district's queue), over the socket
their page opens, on their wall (their district's map, streets and events, a Futian event published meanwhile never
shown) and on every other page they may open (SPEC section 13)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from dashboard.gateway.server import Gateway
from tests.helpers import wait_for
from tests.oidc_op import OidcProvider
from tests.redis_proc import free_port
from tests.test_api import ingest_now, now_event
from tests.test_district_scope import MINE, OWN, secret_in
from tests.test_district_wall import seed_streets
from tests.test_sso import SSO

ACCOUNTS = {"u-luohu": {"preferred_username": "luo.officer", "groups": ["szcc-officer"],
                        "panorama_district": "luohu"}}
# The socket as the page opens it: a ticket from the signed-in session, then the gateway's first frame.
SNAPSHOT_JS = """
const done = arguments[arguments.length - 1];
fetch('/api/ws-ticket', {credentials: 'same-origin'}).then((r) => r.json()).then((t) => {
    const ws = new WebSocket(arguments[0] + '?ticket=' + encodeURIComponent(t.ticket));
    ws.onmessage = (e) => { ws.close(); done(e.data); };
    ws.onerror = () => done('socket error');
}, (e) => done(String(e)));
"""
# The other districts' names as a page would show them (the departments' names aside: /rosters' are the city's)
OTHERS = ("福田区", "南山区", "宝安区", "龙岗区", "盐田区", "龙华区", "坪山区", "光明区", "大鹏")
SHOWN_TEXT = "return document.body.innerText"
# what the page holds as text, shown or not (the wall's panorama under Luohu's command view is hidden, not gone)
TEXT_OF = "const el = document.querySelector(arguments[0]); return el ? el.textContent : '';"
MAP_JS = """const gd = document.querySelector('#city-map .js-plotly-plot');
return gd && gd.data ? [gd.data[0].locations, gd.data[6].text.length, gd.data[7].text] : null;"""


def names_shown(dash_duo, departments: bool = False) -> list[str]:
    """Return the other districts' names the page shows as text (``departments``: leave out the departments'
    names, which hold a district's name: 福田区人民政府 is a city department)."""
    text = dash_duo.driver.execute_script(SHOWN_TEXT)
    for n in OTHERS if departments else ():
        text = text.replace(f"{n}人民政府", "")
    return [n for n in OTHERS if n in text]


@pytest.mark.timeout(480)
def test_a_district_officer_signed_in_through_the_provider_sees_only_their_district(
        make_app, redis_client, tmp_path, dash_duo):
    import orjson

    port = free_port()
    ws_url = f"ws://127.0.0.1:{port}/"
    provider = OidcProvider(tmp_path, ACCOUNTS)
    app = make_app(PANORAMA_OIDC_ISSUER=provider.issuer, **SSO, PANORAMA_WS_PORT=port, PANORAMA_WS_URL=ws_url,
                   BROWSER_PATH="none")
    data = seed_streets(app)
    dash_duo.start_server(app)
    base = dash_duo.server_url.rstrip("/")
    provider.start(base)
    gw = Gateway(app.server.extensions["panorama"], port=port, origins=[base])
    gw.start()
    try:
        dash_duo.driver.get(f"{base}/dispatch")  # anonymous: to /login?next=/dispatch
        dash_duo.wait_for_element("#login-sso", timeout=20).click()
        dash_duo.wait_for_element("#login", timeout=20).send_keys("u-luohu")  # the provider's sign-in page
        dash_duo.find_element("#sign-in").click()
        dash_duo.wait_for_text_to_equal("#user-name", "luo.officer", timeout=20)
        assert urlsplit(dash_duo.driver.current_url).path == "/dispatch"
        # /dispatch: the queue holds Luohu's incident and nothing of another district's
        dash_duo.wait_for_contains_text("#incident-list", MINE, timeout=20)
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=20)  # the page's own socket is up
        assert secret_in(dash_duo.driver.page_source, data["others"]) == []
        # the socket, as the page opens it: a snapshot of Luohu only
        raw = dash_duo.driver.execute_async_script(SNAPSHOT_JS, ws_url)
        assert raw.startswith("{"), raw
        snapshot = orjson.loads(raw)
        assert snapshot["type"] == "snapshot" and secret_in(raw, data["others"]) == []
        assert set(snapshot["state"]["windows"]["1h"]["districts"]) == {OWN}
        assert {e["district"] for e in snapshot["state"]["events"]} == {OWN}
        # /: their district by street, its ticker their district's events
        dash_duo.driver.get(f"{base}/")
        dash_duo.wait_for_text_to_equal("#district-title", "罗湖区", timeout=20)
        dash_duo.wait_for_element("#district-streets", timeout=20)
        dash_duo.wait_for_contains_text("#event-ticker", MINE, timeout=20)
        assert secret_in(dash_duo.driver.page_source, data["others"]) == []
        assert names_shown(dash_duo) == []
        # another district's page: a clear refusal, whose link leads back to their own
        dash_duo.driver.get(f"{base}/district/futian")
        dash_duo.wait_for_element("#other-district", timeout=20)
        assert secret_in(dash_duo.driver.page_source, data["others"]) == []
        # their wall: Luohu alone on the map with its events and incidents, its streets, its busiest in the spotlight
        dash_duo.driver.get(f"{base}/wall")
        # (Luohu's major incident puts the command view over the wall: its panorama is read from the page's text)
        wait_for(lambda: dash_duo.driver.execute_script(TEXT_OF, ".spotlight-panel .spot-name") == "黄贝街道",
                 timeout=20, message="the spotlight on Luohu's busiest street")
        dash_duo.wait_for_element("#wall-streets .js-plotly-plot", timeout=20)
        shown = wait_for(lambda: dash_duo.driver.execute_script(MAP_JS), timeout=20, message="the district's map")
        assert shown[0] == [OWN] and shown[1] >= 4 and any("黄贝火情" in x for x in shown[2])
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=20)
        # published on the feed while the wall is up: Futian's event first, then Luohu's; Luohu's shows, Futian's never
        ingest_now(app, {"traffic": [now_event(801, district="futian", street="华强北街道", title="外区机密 直播")]})
        ingest_now(app, {"traffic": [now_event(802, district="luohu", street="东门街道", title=f"{MINE} 直播")]})
        wait_for(lambda: f"{MINE} 直播" in dash_duo.driver.execute_script(TEXT_OF, "#event-ticker"), timeout=20,
                 message="Luohu's event on the wall's ticker")
        held = dash_duo.driver.execute_script(TEXT_OF, "body")
        assert secret_in(held, data["others"]) == [] and secret_in(dash_duo.driver.page_source, data["others"]) == []
        assert "华强北" not in held and [n for n in OTHERS if n in held] == [] and names_shown(dash_duo) == []
        # every other page they may open: their district's, or not a district's, never another's
        for path, ready in (("/district/luohu", "#district-streets"), ("/m", "#incident-list"),
                            ("/alerts", "#alerts-trail"), ("/notifications", "#notify-summary"),
                            ("/rosters", "#roster-list"), ("/open", "#open-title"), ("/?at=-30m", "#district-title")):
            dash_duo.driver.get(base + path)
            dash_duo.wait_for_element(ready, timeout=20)
            assert secret_in(dash_duo.driver.page_source, data["others"]) == [], path
            if path != "/open":  # the open data's guide for outside developers names Futian in its examples
                assert names_shown(dash_duo, departments=path == "/rosters") == [], path
        # /rosters: the city's departments, read; the override form is the city centre's
        dash_duo.driver.get(f"{base}/rosters")
        dash_duo.wait_for_element("#rosters-city-only", timeout=20)
        assert not dash_duo.driver.find_elements("css selector", "#override-form")
    finally:
        gw.stop()
        provider.stop()
    severe = [e["message"] for e in dash_duo.get_logs() or [] if e["level"] == "SEVERE"]
    assert severe == [], severe
