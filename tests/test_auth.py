"""Signing in and out, the role and CSRF checks, rate limits, kiosk tokens, the users CLI and /login."""

from __future__ import annotations

import time

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from flask import jsonify
from sqlalchemy import select

from dashboard.storage import tickets
from dashboard.web import auth
from dashboard.storage.models import users
from tests.helpers import TEST_PASSWORD, make_user, sign_in, wait_for


def signed_in(client, username: str, password: str = TEST_PASSWORD):
    return client.post("/api/session", json={"username": username, "password": password})


@pytest.fixture
def guarded_app(make_app, redis_client):
    """Give an app with a test-only route that only officers (and admins) may use."""
    app = make_app()
    server = app.server

    @server.route("/test/guarded", methods=["GET", "POST"], endpoint="test_guarded")
    @auth.require("officer")
    def guarded():
        return jsonify({"ok": True, "user": auth.current_user().username})

    return app


def test_sign_in_answers_the_user_and_a_csrf_token_and_sets_a_safe_cookie(app, client):
    make_user(app, "li.wei", "liaison", "fire")
    assert client.get("/api/session").status_code == 401
    res = signed_in(client, "li.wei")
    assert res.status_code == 200
    doc = res.get_json()
    assert doc["user"] == {"username": "li.wei", "role": "liaison", "department": "fire",
                           "district": None}
    assert len(doc["csrf_token"]) >= 32
    cookies = {c.split("=", 1)[0]: c for c in res.headers.getlist("Set-Cookie")}
    cookie = cookies["panorama_session"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    # the page's copy of the CSRF token, which Dash sends back with every callback: readable by the page only
    assert cookies[auth.CSRF_COOKIE].startswith(f"{auth.CSRF_COOKIE}={doc['csrf_token']};")
    assert "HttpOnly" not in cookies[auth.CSRF_COOKIE] and "SameSite=Lax" in cookies[auth.CSRF_COOKIE]
    assert client.get("/api/session").get_json()["user"]["username"] == "li.wei"
    assert client.get("/").status_code == 200
    assert client.delete("/api/session").status_code == 200
    assert client.get("/api/session").status_code == 401
    assert client.get("/").status_code == 302


def test_secure_cookies_when_configured(make_app, redis_client):
    app = make_app(PANORAMA_SECURE_COOKIES="1")
    make_user(app, "a")
    res = signed_in(app.server.test_client(), "a")
    assert all("Secure" in c for c in res.headers.getlist("Set-Cookie"))


def test_wrong_password_or_unknown_user_is_401_in_the_error_shape(app, client):
    make_user(app, "a")
    for name, password in (("a", "wrong-password"), ("nobody", TEST_PASSWORD)):
        res = signed_in(client, name, password)
        assert res.status_code == 401
        assert res.get_json()["error"]["code"] == "bad_credentials"
    assert client.post("/api/session", json={"username": "a"}).status_code == 400


def test_failed_sign_ins_are_rate_limited_and_logged_without_the_password(make_app, redis_client, caplog):
    app = make_app(PANORAMA_LOGIN_MAX_FAILURES=3, PANORAMA_LOGIN_WINDOW_S=60)
    client = app.server.test_client()
    make_user(app, "a")
    for _ in range(3):
        assert signed_in(client, "a", "guess-123").status_code == 401
    res = signed_in(client, "a")  # even the right password waits now
    assert res.status_code == 429
    assert res.get_json()["error"]["code"] == "too_many_attempts"
    assert 0 < int(res.headers["Retry-After"]) <= 60
    assert "guess-123" not in caplog.text and "sign-in failed" in caplog.text
    # another user from the same address is not locked out
    make_user(app, "b")
    assert signed_in(client, "b").status_code == 200


def test_require_checks_sign_in_role_and_csrf(guarded_app):
    client = guarded_app.server.test_client()
    res = client.get("/test/guarded")
    assert res.status_code == 401 and res.get_json()["error"]["code"] == "not_signed_in"
    for name, role in (("viewer", "viewer"), ("officer", "officer"), ("admin", "admin")):
        make_user(guarded_app, name, role)
    signed_in(client, "viewer")
    res = client.get("/test/guarded")
    assert res.status_code == 403 and res.get_json()["error"]["code"] == "forbidden"
    for name in ("officer", "admin"):
        token = signed_in(client, name).get_json()["csrf_token"]
        assert client.get("/test/guarded").get_json() == {"ok": True, "user": name}
        assert client.post("/test/guarded", headers={"X-CSRF-Token": token}).status_code == 200
        for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": ""}):
            res = client.post("/test/guarded", headers=headers)
            assert res.status_code == 403 and res.get_json()["error"]["code"] == "csrf"


def test_require_takes_permission_names_and_refuses_unknown_ones():
    assert auth.check_role(auth.User(1, "c", "commander", None, True), "dispatch")
    assert not auth.check_role(auth.User(1, "v", "viewer", None, True), "dispatch")
    assert auth.check_role(auth.User(1, "a", "admin", None, True), "liaison")
    assert not auth.check_role(None, "view")
    with pytest.raises(ValueError):
        auth.require("superuser")


def test_a_disabled_user_cannot_sign_in_and_its_session_stops(app, client):
    from dashboard.storage import users as accounts

    make_user(app, "a")
    assert signed_in(client, "a").status_code == 200
    assert client.get("/api/session").status_code == 200
    accounts.set_active(app.server.extensions["panorama"].engine, "a", False)
    assert client.get("/api/session").status_code == 401
    assert client.get("/").status_code == 302
    assert signed_in(app.server.test_client(), "a").status_code == 401


def test_pages_need_the_right_role(app, client):
    res = client.get("/district/futian")
    assert res.status_code == 302 and res.headers["Location"] == "/login?next=/district/futian"
    assert client.get("/login").status_code == 200
    make_user(app, "v", "viewer")
    signed_in(client, "v")
    assert client.get("/district/futian").status_code == 200
    from callbacks.router import guard

    with client:  # keeps the last request's context, signed in as the viewer
        client.get("/api/session")
        assert guard("/", "", "zh") is None
        assert guard("/dispatch", "", "zh") is not None  # the not-allowed page
        assert auth.page_access("/dispatch") == "forbidden" and auth.page_access("/m") == "forbidden"
        assert auth.page_access("/briefings/3") == "ok" and auth.page_access("/login") == "ok"


# What a browser rewrites into another site (WHATWG URL parsing: C0 controls and spaces trimmed, tab, CR and LF
# dropped anywhere, "\\" read as "/"), each as a sign-in link would carry it in its query string.
HOSTILE_NEXT = (
    "//evil.example", "%2F%2Fevil.example", "/%5Cevil.example", "%2F%5Cevil.example", "%5C%5Cevil.example",
    "%5C/evil.example", "/%09/evil.example", "%2F%09%2Fevil.example", "/%0D%0A/evil.example", "%09//evil.example",
    "%20//evil.example", "%00//evil.example", "//evil.example%20", "https:evil.example", "https:%2F%2Fevil.example",
    "https://evil.example/", "/.//evil.example", "/..//evil.example", "/%2E//evil.example", "javascript:alert(1)",
    "data:text/html,x", "http://user@evil.example",
)


def test_safe_next_refuses_other_sites():
    from urllib.parse import unquote

    assert auth.safe_next("/district/futian?x=1") == "/district/futian?x=1"
    assert auth.safe_next("/wall?lang=en#top") == "/wall?lang=en#top"
    assert auth.safe_next("/%09/evil.example") == "/%09/evil.example"  # still encoded: a path of this site
    assert auth.safe_next("http:evil.example") == "/evil.example"  # a browser reads it as a path too
    for bad in ("https://evil.example", "//evil.example", "/\\evil.example", None, "", "/" * 3000,
                *(unquote(raw) for raw in HOSTILE_NEXT)):
        assert auth.safe_next(bad) == "/", bad
    assert auth.login_url("/\t/evil.example") == "/login?next=/"
    assert auth.login_url("/district/福田?x=1") == "/login?next=/district/%25E7%25A6%258F%25E7%2594%25B0%3Fx%3D1"


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("/\\:.%@?#\t\n\r \x00\x1fahtps.evil0"), max_size=24) | st.text(max_size=24))
def test_safe_next_only_ever_answers_a_path_of_this_site(value):
    """Whatever comes in, what comes out is a path a browser resolves on this site, and it is stable."""
    import ada_url

    out = auth.safe_next(value)
    assert out.startswith("/") and not out.startswith("//") and out == out.strip()
    assert not any(c in out for c in "\t\r\n") and "\\" not in out.partition("?")[0].partition("#")[0]
    assert ada_url.URL(out, "https://panorama.example/").host == "panorama.example"
    assert auth.safe_next(out) == out


@pytest.mark.timeout(240)
def test_signing_in_with_a_hostile_next_stays_on_this_site(app, dash_duo):
    """Sign in through the real /login page with each hostile ``next``: the browser ends on this site."""
    from urllib.parse import urlsplit

    make_user(app, "duty")
    dash_duo.start_server(app)
    here = urlsplit(dash_duo.server_url).netloc
    for raw in HOSTILE_NEXT:
        dash_duo.driver.get(f"{dash_duo.server_url.rstrip('/')}/login?next={raw}")
        dash_duo.wait_for_element("#login-username", timeout=10)
        dash_duo.find_element("#login-username").send_keys("duty")
        dash_duo.find_element("#login-password").send_keys(TEST_PASSWORD)
        dash_duo.find_element("#login-submit").click()
        wait_for(lambda: "/login" not in dash_duo.driver.current_url, timeout=10, message=f"leaving /login ({raw})")
        assert urlsplit(dash_duo.driver.current_url).netloc == here, (raw, dash_duo.driver.current_url)
        dash_duo.wait_for_element("#user-name", timeout=10)  # signed in, on a page of this site
    assert dash_duo.get_logs() == []


def test_the_router_sends_to_sign_in_with_a_safe_next(app, client):
    """The page guard and the router build /login?next= from the address asked for: never another site's."""
    from callbacks.router import guard, render

    assert client.get("/%2F%2Fevil.example").headers["Location"] == "/login?next=/evil.example"  # werkzeug: one /
    assert client.get("/%5C%5Cevil.example").headers["Location"] == "/login?next=/"
    with app.server.test_request_context("/"):
        login = guard("/", "?next=/%09/evil.example", "zh")  # the shell loaded /?next=..., not /login
        page, _ = render("/login", "zh", "?next=/%09/evil.example")
    stores = [c for c in _walk(page) if getattr(c, "id", None) == "login-context"]
    assert stores[0].data["next"] == "/"
    assert [c for c in _walk(login) if getattr(c, "id", None) == "login-context"][0].data["next"] == \
        "/?next=/%09/evil.example"


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children] if children is not None else []:
        if hasattr(child, "to_plotly_json"):
            yield from _walk(child)


def test_a_revoked_kiosk_token_stops_opening_the_wall(app, client):
    from dashboard.storage import users as accounts

    engine = app.server.extensions["panorama"].engine
    token_id, token = accounts.create_kiosk_token(engine, "hall wall")
    res = client.get(f"/wall?token={token}", follow_redirects=True)  # the token becomes the wall's cookie
    assert res.status_code == 200 and res.request.path == "/wall"
    assert app.server.test_client().get("/wall?token=not-a-token", follow_redirects=True).request.path == "/login"
    assert client.get(f"/?token={token}", follow_redirects=True).request.path == "/login"  # the wall only
    assert accounts.revoke_kiosk_token(engine, token_id)
    res = client.get(f"/wall?token={token}", follow_redirects=True)
    assert res.request.path == "/login" and res.request.args["next"] == "/wall"


def test_cli_creates_lists_and_disables_users_with_the_password_on_stdin(app):
    runner = app.server.test_cli_runner()
    res = runner.invoke(args=["users", "create", "zhang", "--role", "liaison", "--department", "fire"],
                        input="s3cret-pass\n")
    assert res.exit_code == 0, res.output
    assert "s3cret-pass" not in res.output
    with app.server.extensions["panorama"].engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash).where(users.c.username == "zhang")).scalar_one()
    assert stored != "s3cret-pass" and "s3cret-pass" not in stored
    client = app.server.test_client()
    assert signed_in(client, "zhang", "s3cret-pass").status_code == 200
    listing = runner.invoke(args=["users", "list"]).output
    assert "zhang" in listing and "liaison" in listing and "fire" in listing
    res = runner.invoke(args=["users", "sign-out", "Zhang"])
    assert res.exit_code == 0 and "signed out zhang everywhere" in res.output
    assert client.get("/api/session").status_code == 401
    assert runner.invoke(args=["users", "sign-out", "nobody"]).exit_code != 0
    assert signed_in(client, "zhang", "s3cret-pass").status_code == 200
    assert runner.invoke(args=["users", "disable", "zhang"]).exit_code == 0
    assert client.get("/api/session").status_code == 401
    # refusals: a liaison without department, an unknown department, a duplicate, a short password
    for args, stdin in ((["users", "create", "x", "--role", "liaison"], "long-enough\n"),
                        (["users", "create", "x", "--role", "liaison", "--department", "nasa"], "long-enough\n"),
                        (["users", "create", "zhang", "--role", "viewer"], "long-enough\n"),
                        (["users", "create", "y", "--role", "viewer"], "short\n"),
                        (["users", "create", "y", "--role", "emperor"], "long-enough\n")):
        assert runner.invoke(args=args, input=stdin).exit_code != 0, args


def test_cli_kiosk_tokens_are_shown_once_and_revocable(app, client):
    runner = app.server.test_cli_runner()
    out = runner.invoke(args=["kiosk", "create", "lobby"]).output
    token = out.split(": ", 1)[1].split()[0]
    assert client.get(f"/wall?token={token}", follow_redirects=True).request.path == "/wall"
    assert token not in runner.invoke(args=["kiosk", "list"]).output
    assert runner.invoke(args=["kiosk", "revoke", "1"]).exit_code == 0
    assert client.get(f"/wall?token={token}", follow_redirects=True).request.path == "/login"
    assert runner.invoke(args=["kiosk", "revoke", "1"]).exit_code != 0


def test_embedded_demo_users_are_made_once(app):
    from dashboard.run.embedded import DEMO_USERS, create_demo_users

    made = create_demo_users(app.server.extensions["panorama"])
    assert [m[1] for m in made] == [role for _, role, _ in DEMO_USERS]
    name, _, password = made[3]
    res = signed_in(app.server.test_client(), name, password)
    assert res.get_json()["user"]["department"] == "fire"
    assert create_demo_users(app.server.extensions["panorama"]) == []


def test_login_page_signs_in_and_lands_where_it_came_from(app, dash_duo):
    make_user(app, "duty", "officer")
    dash_duo.start_server(app)  # "/" sends the anonymous browser to /login?next=/
    dash_duo.wait_for_element("#login-username", timeout=10)
    assert "/login?next=/" in dash_duo.driver.current_url
    dash_duo.wait_for_text_to_equal("#login-panel .panel-title", "登录")
    dash_duo.find_element("#login-username").send_keys("duty")
    dash_duo.find_element("#login-password").send_keys(TEST_PASSWORD)
    dash_duo.find_element("#login-submit").click()
    dash_duo.wait_for_element("#city-map", timeout=10)
    # the map drawn before the language switch draws the page again: Dash's graph, unmounted while Plotly
    # still loads, logs "Cannot read properties of null (reading 'classList')" (dcc async-graph.js)
    dash_duo.wait_for_element("#city-map .main-svg", timeout=20)
    assert dash_duo.driver.current_url.rstrip("/") == dash_duo.server_url.rstrip("/")
    # the top bar: who, what role, and signing out (everywhere)
    dash_duo.wait_for_text_to_equal("#user-name", "duty")
    dash_duo.wait_for_text_to_equal("#user-role", "值班员")
    dash_duo.find_element("#lang-toggle").click()
    dash_duo.wait_for_text_to_equal("#user-role", "duty officer")
    dash_duo.wait_for_text_to_equal("#sign-out", "Sign out")
    copied = app.server.test_client()
    copied.set_cookie("panorama_session", dash_duo.driver.get_cookie("panorama_session")["value"])
    assert copied.get("/api/session").status_code == 200
    dash_duo.find_element("#sign-out").click()
    dash_duo.wait_for_element("#login-username", timeout=10)
    assert copied.get("/api/session").status_code == 401  # the browser's old cookie is worth nothing now
    assert dash_duo.driver.get_cookie(auth.CSRF_COOKIE) is None
    assert dash_duo.get_logs() == []


def test_login_page_speaks_english_and_a_viewer_is_kept_out_of_dispatch(app, dash_duo):
    dash_duo.start_server(app)
    dash_duo.wait_for_element("#login-username", timeout=10)
    dash_duo.find_element("#lang-toggle").click()
    dash_duo.wait_for_text_to_equal("#login-panel .panel-title", "Sign in")
    sign_in(dash_duo, app, "/dispatch", role="viewer")
    dash_duo.wait_for_text_to_equal("#forbidden", "Not allowed", timeout=10)
    assert dash_duo.get_logs() == []


def copy_session(source, target) -> None:
    """Put ``source``'s session cookie into ``target``, as someone who copied it would."""
    target.set_cookie("panorama_session", source.get_cookie("panorama_session").value)


def test_signing_out_ends_every_session_of_the_user_a_copied_cookie_included(app, client):
    make_user(app, "a")
    assert signed_in(client, "a").status_code == 200
    thief, phone = app.server.test_client(), app.server.test_client()
    copy_session(client, thief)
    assert signed_in(phone, "a").status_code == 200  # the same user on another device
    assert thief.get("/api/session").status_code == 200
    assert client.delete("/api/session").status_code == 200
    for other in (thief, phone):
        assert other.get("/api/session").status_code == 401
        assert other.get("/dispatch").status_code == 302
    assert signed_in(client, "a").status_code == 200  # signing in again starts a new epoch
    assert client.get("/api/session").status_code == 200 and thief.get("/api/session").status_code == 401


def test_disabling_a_user_ends_a_copied_session_for_good(app, client):
    from dashboard.storage import users as accounts

    make_user(app, "a")
    signed_in(client, "a")
    thief = app.server.test_client()
    copy_session(client, thief)
    engine = app.server.extensions["panorama"].engine
    accounts.set_active(engine, "a", False)
    assert thief.get("/api/session").status_code == 401
    accounts.set_active(engine, "a", True)  # enabled again: the old sessions stay over
    assert thief.get("/api/session").status_code == 401 and client.get("/api/session").status_code == 401
    assert signed_in(client, "a").status_code == 200


@pytest.mark.parametrize("hops", [0, 1])
def test_behind_a_proxy_the_rate_limit_counts_the_real_client(make_app, redis_client, hops):
    app = make_app(PANORAMA_LOGIN_MAX_FAILURES=2, PANORAMA_PROXY_HOPS=hops)
    make_user(app, "a")
    client = app.server.test_client()

    def attempt(client_ip: str, password: str = "wrong-password"):
        # the proxy appends the address it saw; a client may send its own X-Forwarded-For before it
        return client.post("/api/session", json={"username": "a", "password": password},
                           headers={"X-Forwarded-For": f"203.0.113.9, {client_ip}"})

    assert [attempt("198.51.100.1").status_code for _ in range(3)] == [401, 401, 429]
    other = attempt("198.51.100.2", TEST_PASSWORD).status_code
    # one hop: each client has its own count; none: the proxy's address is everyone's, the header ignored
    assert other == (200 if hops else 429)


def test_ws_tickets_are_for_signed_in_users_and_live_kiosk_tokens(app, client):
    from dashboard.storage import users as accounts

    assert client.get("/api/ws-ticket").status_code == 401
    assert client.get("/api/ws-ticket?token=made-up").status_code == 401
    user = make_user(app, "a", "viewer")
    signed_in(client, "a")
    res = client.get("/api/ws-ticket")
    assert res.status_code == 200 and res.headers["Cache-Control"] == "no-store"
    subject = auth.verify_ticket(app.server.secret_key, res.get_json()["ticket"])
    # who, which sign-in (the epoch), and when the session ends: a socket may not outlive it
    assert {k: subject[k] for k in ("u", "e")} == {"u": user.id, "e": 0} and subject["x"] > time.time() * 1000
    kiosk_id, token = accounts.create_kiosk_token(app.server.extensions["panorama"].engine, "wall")
    assert app.server.test_client().get(f"/api/ws-ticket?token={token}").status_code == 200
    assert auth.verify_ticket("another secret", res.get_json()["ticket"]) is None
    # what the gateway re-checks on open sockets: users and kiosk tokens; a program's own ticket always holds
    engine = app.server.extensions["panorama"].engine
    assert tickets.subjects_valid(engine, [{"u": user.id, "e": 0}, {"u": user.id, "e": 1}, {"u": 999, "e": 0},
                                        {"k": kiosk_id}, {"k": 999}, {"svc": "bench"}]) == [True, False, False, True,
                                                                                    False, True]


def test_the_gateway_refuses_a_socket_without_a_valid_ticket(app, monkeypatch):
    import asyncio

    from itsdangerous import TimestampSigner
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    from dashboard.gateway.server import Gateway

    gw = Gateway(app.server.extensions["panorama"], port=0, origins=["http://127.0.0.1:8050"])
    gw.start()
    try:
        base = f"ws://127.0.0.1:{gw.port}/"
        forged = auth.issue_ticket("not the app's secret", {"u": 1})
        real = gw.secret
        assert real == app.server.secret_key  # the app and the gateway share the secret
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(__import__("time").time()) - 120)
        expired = auth.issue_ticket(real, {"u": 1})
        monkeypatch.undo()
        valid = auth.issue_ticket(real, {"u": 1})

        async def scenario():
            for url in (base, f"{base}?ticket=", f"{base}?ticket={forged}", f"{base}?ticket={expired}",
                        f"{base}?ticket={valid}x"):
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(url):
                        pass
                assert refused.value.response.status_code == 401, url
            async with connect(f"{base}?ticket={valid}") as ws:
                assert b'"snapshot"' in await asyncio.wait_for(ws.recv(decode=False), 10)
        asyncio.run(scenario())
    finally:
        gw.stop()


def test_the_gateway_closes_the_sockets_of_a_signed_out_user_and_a_revoked_wall(app):
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from dashboard.storage import users as accounts
    from dashboard.gateway.server import TICKET_REVOKED, Gateway

    engine = app.server.extensions["panorama"].engine
    kiosk_id, token = accounts.create_kiosk_token(engine, "hall")
    clients = {}
    for name in ("leaving", "staying"):
        make_user(app, name)
        clients[name] = app.server.test_client()
        assert signed_in(clients[name], name).status_code == 200
    tickets = {name: c.get("/api/ws-ticket").get_json()["ticket"] for name, c in clients.items()}
    tickets["wall"] = app.server.test_client().get(f"/api/ws-ticket?token={token}").get_json()["ticket"]
    gw = Gateway(app.server.extensions["panorama"], port=0, origins=["http://127.0.0.1:8050"])
    gw.ticket_check_s = 0.2
    gw.start()
    try:
        async def closed_with(ws) -> int:
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    async for _ in ws:
                        pass
                    await ws.recv()
            return closed.value.rcvd.code

        async def scenario():
            url = f"ws://127.0.0.1:{gw.port}/?ticket="
            async with connect(url + tickets["leaving"]) as leaving, connect(url + tickets["wall"]) as wall, \
                    connect(url + tickets["staying"]) as staying:
                for ws in (leaving, wall, staying):
                    assert b'"snapshot"' in await asyncio.wait_for(ws.recv(decode=False), 10)
                await asyncio.to_thread(clients["leaving"].delete, "/api/session")
                await asyncio.to_thread(accounts.revoke_kiosk_token, engine, kiosk_id)
                assert await closed_with(leaving) == TICKET_REVOKED
                assert await closed_with(wall) == TICKET_REVOKED
                assert staying.state.name == "OPEN"  # checked in the same sweeps, and still there
        asyncio.run(scenario())
    finally:
        gw.stop()


def test_parallel_wrong_passwords_are_counted_atomically_over_http(make_app, redis_client):
    """40 wrong passwords at once from one address: only the limit's worth is checked, the rest are 429."""
    from tests.serve import all_at_once, serving

    app = make_app(PANORAMA_LOGIN_MAX_FAILURES=5, PANORAMA_LOGIN_WINDOW_S=60)
    make_user(app, "a")
    with serving(app) as url:
        answers = all_at_once(40, lambda s, i: s.post(f"{url}/api/session",
                                                      json={"username": "a", "password": f"guess-{i}"}),
                              warm=f"{url}/api/session")
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [401] * 5 + [429] * 35, statuses
        assert all(0 < int(r.headers["Retry-After"]) <= 60 for r in answers if r.status_code == 429)
        # within the window even the right password is refused, and it does not reset the count
        for _ in range(2):
            res = requests.post(f"{url}/api/session", json={"username": "a", "password": TEST_PASSWORD})
            assert res.status_code == 429 and res.json()["error"]["code"] == "too_many_attempts"
        # the window over (its key expired), the right password works again
        redis_client.delete(*redis_client.keys("panorama:auth:failures:*"))
        assert requests.post(f"{url}/api/session", json={"username": "a", "password": TEST_PASSWORD}).status_code \
            == 200


def test_api_me_answers_who_is_signed_in(app):
    client = app.server.test_client()
    res = client.get("/api/me")
    assert res.status_code == 401 and res.get_json()["error"]["code"] == "not_signed_in"
    make_user(app, "li.na", "liaison", "fire")
    assert signed_in(client, "li.na").status_code == 200
    res = client.get("/api/me")
    assert res.status_code == 200 and res.headers["Cache-Control"] == "no-store"
    assert res.get_json() == {"username": "li.na", "role": "liaison", "department": "fire", "district": None}


def test_hostile_sizes_of_username_and_password_are_refused_before_redis_and_the_log(app, redis_client, caplog):
    client = app.server.test_client()
    for body in ({"username": "a" * 100_000, "password": "x"}, {"username": "a", "password": "x" * 100_000}):
        res = client.post("/api/session", json=body)
        assert res.status_code == 400 and res.get_json()["error"]["code"] == "bad_request"
    # nothing counted under a 100,000-character key, nothing of that size logged
    assert all(len(k) < 200 for k in redis_client.keys("panorama:auth:*"))
    assert all(len(r.getMessage()) < 1000 for r in caplog.records)


def test_the_page_registry_is_what_both_the_access_rules_and_the_router_read(app):
    """One registry: each page's permission guards it (and every path under it), its render draws it, its title
    names the tab; an unknown path needs "view" and is not-found."""
    from callbacks import pages
    from callbacks.router import render
    from dashboard.core.i18n import t
    from dashboard.core.roles import ROLES, expand

    assert {p.path for p in pages.PAGES} >= {"/", "/wall", "/district", "/dispatch", "/m", "/briefings", "/login"}
    with app.server.test_request_context("/"):
        for page in pages.PAGES:
            assert auth.page_permission(page.path) == page.permission
            assert auth.page_permission(page.path + "/x") == (page.permission if page.path != "/" else "view")
        assert auth.page_permission("/no-such-page") == "view"
    for page in pages.PAGES:
        if page.permission is None:
            continue
        for role in ROLES:
            user = make_user(app, f"{role}-{page.path.strip('/') or 'root'}", role, "fire" if role == "liaison" else None)
            client = app.server.test_client()
            signed_in(client, user.username)
            with client:
                client.get("/api/session")
                layout, title = render(page.path, "en", "")
                allowed = role == "admin" or role in expand([page.permission])
                assert (auth.page_access(page.path) == "ok") == allowed, (page.path, role)
                if allowed:
                    assert title == f"{t(page.title, 'en')} · {t('app_title', 'en')}", (page.path, role)
                else:
                    assert title.startswith(t("page_login", "en")), (page.path, role)
