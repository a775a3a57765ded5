"""Sessions end after PANORAMA_SESSION_HOURS, and a sign-in failure window after PANORAMA_LOGIN_WINDOW_S."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner

from dashboard.web import auth
from tests.helpers import TEST_PASSWORD, make_user, sign_in, wait_for

HOUR_S = 3600
MARGIN_S = 60  # either side of the lifetime: far from the edge, so no test depends on the second it runs in


def sign_in_client(client, username: str, password: str = TEST_PASSWORD):
    return client.post("/api/session", json={"username": username, "password": password})


def backdated(server, cookie: str, seconds_ago: int) -> str:
    """Return the session ``cookie`` signed again, unchanged, as if ``seconds_ago`` seconds ago.

    Flask checks a session's age with itsdangerous against the wall clock, so the cookie is made old
    through itsdangerous's own signer (its timestamp) rather than by waiting hours.
    """
    serializer = server.session_interface.get_signing_serializer(server)
    data = serializer.loads(cookie)  # proves it is a genuine session of this app first

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - seconds_ago

    serializer.signer = Then
    return serializer.dumps(data)


def session_cookie(client) -> str:
    return client.get_cookie("panorama_session").value


@pytest.mark.parametrize("hours", [1, 12])
def test_a_session_older_than_its_lifetime_is_refused_everywhere(make_app, redis_client, hours):
    app = make_app(PANORAMA_SESSION_HOURS=hours)
    server = app.server
    make_user(app, "olga", "officer")
    signed = server.test_client()
    res = sign_in_client(signed, "olga")
    assert res.status_code == 200
    csrf = res.get_json()["csrf_token"]
    fresh_cookie = session_cookie(signed)
    lifetime_s = hours * HOUR_S

    young, old = server.test_client(), server.test_client()
    young.set_cookie("panorama_session", backdated(server, fresh_cookie, lifetime_s - MARGIN_S))
    old.set_cookie("panorama_session", backdated(server, fresh_cookie, lifetime_s + MARGIN_S))

    # Just inside its lifetime the same session still works: the backdating itself is sound.
    assert young.get("/api/session").get_json()["user"]["username"] == "olga"
    assert young.get("/api/ws-ticket").status_code == 200
    assert young.get("/dispatch").status_code == 200

    # Just past it: the API says 401 in the error shape, pages send the browser to sign in, no socket ticket.
    for path in ("/api/session", "/api/tasks", "/api/incidents", "/api/summary?live=1", "/api/ws-ticket"):
        res = old.get(path)
        assert res.status_code == 401, (path, res.status_code)
        assert res.get_json()["error"]["code"] == "not_signed_in", path
    write = old.post("/api/incidents/1/dispatch", json={}, headers={"X-CSRF-Token": csrf})
    assert write.status_code == 401 and write.get_json()["error"]["code"] == "not_signed_in"
    for page in ("/", "/dispatch", "/m", "/wall", "/briefings"):
        res = old.get(page)
        assert res.status_code == 302 and res.headers["Location"] == auth.login_url(page), (page, res.headers)


def test_a_browser_holding_an_expired_session_is_sent_to_sign_in(make_app, redis_client, dash_duo):
    app = make_app(PANORAMA_SESSION_HOURS=2)
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/dispatch", role="officer")
    dash_duo.wait_for_element("#incident-list", timeout=10)
    cookie = dash_duo.driver.get_cookie("panorama_session")
    old = backdated(app.server, cookie["value"], 2 * HOUR_S + MARGIN_S)
    dash_duo.driver.delete_cookie("panorama_session")
    dash_duo.driver.add_cookie({"name": "panorama_session", "value": old, "path": "/", "httpOnly": True})
    dash_duo.driver.get(dash_duo.server_url.rstrip("/") + "/dispatch")
    dash_duo.wait_for_element("#login-username", timeout=10)
    assert dash_duo.driver.current_url.endswith("/login?next=/dispatch")
    dash_duo.wait_for_text_to_equal("#login-panel .panel-title", "登录")
    # The page being left may still poll with the expired cookie before the browser leaves it (on a busy
    # machine its socket falls back to /api/summary?live=1): those answers are 401s, the server doing its job.
    # Anything else logged is a fault.
    logs = dash_duo.get_logs()
    refused = [e for e in logs if e["source"] == "network" and "status of 401" in e["message"]]
    assert [e for e in logs if e not in refused] == []


def test_the_failed_sign_in_count_starts_again_after_its_window(make_app, redis_client):
    window_s, limit = 3, 2
    app = make_app(PANORAMA_LOGIN_MAX_FAILURES=limit, PANORAMA_LOGIN_WINDOW_S=window_s)
    make_user(app, "a")
    client = app.server.test_client()
    assert [sign_in_client(client, "a", "wrong-password").status_code for _ in range(limit)] == [401] * limit
    locked = sign_in_client(client, "a")  # even the right password waits now
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= window_s
    # The window passes in Redis (its TTL, on Redis's clock): a wrong password is counted afresh (401, not
    # 429), with no successful sign-in in between to clear the count ...
    wait_for(lambda: sign_in_client(client, "a", "wrong-password").status_code == 401, timeout=window_s + 10,
             interval=0.25, message="a failed sign-in counted afresh after the window")
    # ... from nothing: that was the new window's first failure, the limit holds again at the same count.
    assert [sign_in_client(client, "a", "wrong-password").status_code for _ in range(limit - 1)] == [401] * (limit - 1)
    assert sign_in_client(client, "a").status_code == 429


def test_a_session_in_use_still_ends_its_lifetime_after_sign_in(make_app, redis_client):
    # Flask re-signs the cookie on every request, so a session used every few minutes never grows old in
    # itsdangerous's eyes: the sign-in time it carries ends it after PANORAMA_SESSION_HOURS all the same.
    app = make_app(PANORAMA_SESSION_HOURS=12)
    server = app.server
    make_user(app, "olga", "officer")
    client = server.test_client()
    assert sign_in_client(client, "olga").status_code == 200
    serializer = server.session_interface.get_signing_serializer(server)
    data = serializer.loads(session_cookie(client))
    for hours_ago, status in ((11.9, 200), (12.1, 401)):
        kept = server.test_client()
        # freshly signed (as after a request a minute ago), signed in ``hours_ago``
        kept.set_cookie("panorama_session", serializer.dumps({**data, "signed_in_ms": data["signed_in_ms"]
                                                              - int(hours_ago * HOUR_S * 1000)}))
        assert kept.get("/api/session").status_code == status, hours_ago
