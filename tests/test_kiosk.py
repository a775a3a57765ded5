"""The wall's kiosk token: taken from its entry link into an HttpOnly cookie, then never in an address again."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from dashboard.web import auth
from dashboard.storage import users as accounts
from tests.helpers import make_event, wait_for
from tests.test_api import ingest_now
from tests.test_pages import own_updates_channel, ticker_titles


def ev(n, **kw):
    return make_event(n, ts=int(time.time() * 1000), **kw)


def test_the_entry_link_trades_the_token_for_a_cookie_and_a_clean_address(app, client):
    engine = app.server.extensions["panorama"].engine
    token_id, token = accounts.create_kiosk_token(engine, "hall")
    res = client.get(f"/wall?token={token}&lang=en")
    assert res.status_code == 302 and res.headers["Location"] == "/wall?lang=en"
    assert res.headers["Cache-Control"] == "no-store"
    cookie = res.headers["Set-Cookie"]
    assert cookie.startswith(f"{auth.KIOSK_COOKIE}={token};") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie
    # from here on the cookie alone opens the wall, its socket ticket and its polling fallback
    assert client.get("/wall?lang=en").status_code == 200
    ticket = client.get("/api/ws-ticket")
    assert ticket.status_code == 200
    assert auth.verify_ticket(app.server.secret_key, ticket.get_json()["ticket"]) == {"k": token_id}
    assert client.get("/api/summary?live=1").status_code == 200
    assert client.get("/").status_code == 302  # the wall only
    # revoked: the cookie opens nothing
    accounts.revoke_kiosk_token(engine, token_id)
    res = client.get("/wall")
    assert res.status_code == 302 and res.headers["Location"] == "/login?next=/wall"
    for path in ("/api/ws-ticket", "/api/summary?live=1"):
        res = client.get(path)
        assert res.status_code == 401 and res.get_json()["error"]["code"] == "not_signed_in", path


def test_a_bad_token_in_a_link_is_dropped_from_the_address_and_sets_nothing(app, client):
    res = client.get("/wall?token=not-a-token")
    assert res.status_code == 302 and res.headers["Location"] == "/wall" and "Set-Cookie" not in res.headers
    assert client.get("/wall").headers["Location"] == "/login?next=/wall"  # not a token in the next either
    _, token = accounts.create_kiosk_token(app.server.extensions["panorama"].engine, "hall")
    res = client.get(f"/district/futian?token={token}")  # a kiosk token opens the wall only
    assert res.headers["Location"] == "/district/futian" and "Set-Cookie" not in res.headers


def test_the_kiosk_cookie_is_secure_when_configured(make_app, redis_client):
    app = make_app(PANORAMA_SECURE_COOKIES="1")
    _, token = accounts.create_kiosk_token(app.server.extensions["panorama"].engine, "hall")
    assert "Secure" in app.server.test_client().get(f"/wall?token={token}").headers["Set-Cookie"]


def test_a_wall_polls_with_its_cookie_and_the_token_is_logged_once(make_app, redis_client, dash_duo, caplog):
    """No gateway: the wall polls /api/summary?live=1 with its cookie; no request after the entry names the token."""
    app = make_app(PANORAMA_POLL_MS=700, PANORAMA_WALL_CYCLE_S=3600)
    token_id, token = accounts.create_kiosk_token(app.server.extensions["panorama"].engine, "hall")
    caplog.set_level(logging.INFO, logger="werkzeug")
    dash_duo.start_server(app)
    base = dash_duo.server_url.rstrip("/")
    dash_duo.driver.get(f"{base}/wall?token={token}")
    dash_duo.wait_for_element("#live-indicator.conn-polling", timeout=15)
    assert dash_duo.driver.current_url == f"{base}/wall"
    assert dash_duo.find_elements("#user-bar") == []  # nobody is signed in on a wall
    cookie = dash_duo.driver.get_cookie(auth.KIOSK_COOKIE)
    assert cookie["value"] == token and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert dash_duo.driver.execute_script("return document.cookie").find(token) == -1
    ingest_now(app, {"incident": [ev(1, kind="fire", severity=3, title="仓库起火")]})
    wait_for(lambda: ticker_titles(dash_duo)[:1] == ["仓库起火"], timeout=15, message="the polled event on the wall")
    wait_for(lambda: sum("/api/summary" in r.getMessage() for r in caplog.records) >= 2, message="two polls")
    naming = [r.getMessage() for r in caplog.records if token in r.getMessage()]
    assert len(naming) == 1 and "/wall?token=" in naming[0], naming  # the entry link, and nothing after it
    assert dash_duo.get_logs() == []


@pytest.mark.timeout(120)
def test_a_wall_goes_live_from_its_cookie_and_a_revoked_token_is_refused(make_app, redis_client, dash_duo,
                                                                          monkeypatch):
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    channel = own_updates_channel(monkeypatch)
    port = free_port()
    app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/", PANORAMA_WALL_CYCLE_S=3600)
    engine = app.server.extensions["panorama"].engine
    token_id, token = accounts.create_kiosk_token(engine, "hall")
    dash_duo.start_server(app)
    base = dash_duo.server_url.rstrip("/")
    gw = Gateway(app.server.extensions["panorama"], port=port, origins=[base], channel=channel)
    gw.ticket_check_s = 0.2
    gw.start()
    try:
        dash_duo.driver.get(f"{base}/wall?token={token}")
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=15)  # its ticket came from the cookie
        assert dash_duo.driver.current_url == f"{base}/wall"
        ingest_now(app, {"incident": [ev(2, kind="flood", severity=3, title="积水 深南大道")]})
        wait_for(lambda: ticker_titles(dash_duo)[:1] == ["积水 深南大道"], timeout=15, message="the pushed event")
        accounts.revoke_kiosk_token(engine, token_id)
        dash_duo.wait_for_element("#live-indicator:not(.conn-live)", timeout=15)  # the gateway closed it
    finally:
        gw.stop()
    cookie = {auth.KIOSK_COOKIE: dash_duo.driver.get_cookie(auth.KIOSK_COOKIE)["value"]}
    for path in ("/api/ws-ticket", "/api/summary?live=1"):
        assert requests.get(base + path, cookies=cookie, timeout=10).status_code == 401, path
    dash_duo.driver.get(f"{base}/wall")
    dash_duo.wait_for_element("#login-username", timeout=10)
    assert dash_duo.driver.current_url == f"{base}/login?next=/wall"
    # what the browser logged: only the refused ticket and polls of the revoked token
    severe = [e["message"] for e in dash_duo.get_logs() or [] if e["level"] == "SEVERE"]
    unexpected = [m for m in severe if not (("/api/ws-ticket" in m or "/api/summary" in m) and "401" in m)]
    assert unexpected == []
