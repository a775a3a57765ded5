"""A district officer signed in through the test OpenID Connect provider (tests/oidc_op.py) sees only their
district in Chromium: on / (their district by street), on /dispatch (their district's queue) and over the socket
their page opens (SPEC section 13)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from dashboard.gateway.server import Gateway
from tests.oidc_op import OidcProvider
from tests.redis_proc import free_port
from tests.test_district_scope import MINE, OWN, secret_in, seed
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


@pytest.mark.timeout(240)
def test_a_district_officer_signed_in_through_the_provider_sees_only_their_district(
        make_app, redis_client, tmp_path, dash_duo):
    import orjson

    port = free_port()
    ws_url = f"ws://127.0.0.1:{port}/"
    provider = OidcProvider(tmp_path, ACCOUNTS)
    app = make_app(PANORAMA_OIDC_ISSUER=provider.issuer, **SSO, PANORAMA_WS_PORT=port, PANORAMA_WS_URL=ws_url,
                   BROWSER_PATH="none")
    data = seed(app)
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
        # another district's page: a clear refusal, whose link leads back to their own
        dash_duo.driver.get(f"{base}/district/futian")
        dash_duo.wait_for_element("#other-district", timeout=20)
        assert secret_in(dash_duo.driver.page_source, data["others"]) == []
    finally:
        gw.stop()
        provider.stop()
    severe = [e["message"] for e in dash_duo.get_logs() or [] if e["level"] == "SEVERE"]
    assert severe == [], severe
