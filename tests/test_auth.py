"""Signing in and out, the role and CSRF checks, rate limits, kiosk tokens, the users CLI and /login."""

from __future__ import annotations

import pytest
from flask import jsonify
from sqlalchemy import select

from dashboard import auth
from dashboard.models import users
from tests.helpers import TEST_PASSWORD, make_user, sign_in


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
    assert doc["user"] == {"username": "li.wei", "role": "liaison", "department": "fire"}
    assert len(doc["csrf_token"]) >= 32
    cookie = res.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/api/session").get_json()["user"]["username"] == "li.wei"
    assert client.get("/").status_code == 200
    assert client.delete("/api/session").status_code == 200
    assert client.get("/api/session").status_code == 401
    assert client.get("/").status_code == 302


def test_secure_cookies_when_configured(make_app, redis_client):
    app = make_app(PANORAMA_SECURE_COOKIES="1")
    make_user(app, "a")
    res = signed_in(app.server.test_client(), "a")
    assert "Secure" in res.headers["Set-Cookie"]


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
    from dashboard import users as accounts

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


def test_safe_next_refuses_other_sites():
    assert auth.safe_next("/district/futian?x=1") == "/district/futian?x=1"
    for bad in ("https://evil.example", "//evil.example", "/\\evil.example", None, ""):
        assert auth.safe_next(bad) == "/"


def test_a_revoked_kiosk_token_stops_opening_the_wall(app, client):
    from dashboard import users as accounts

    engine = app.server.extensions["panorama"].engine
    token_id, token = accounts.create_kiosk_token(engine, "hall wall")
    assert client.get(f"/wall?token={token}").status_code == 200
    assert client.get("/wall?token=not-a-token").status_code == 302
    assert client.get(f"/?token={token}").status_code == 302  # the wall only, read-only
    assert accounts.revoke_kiosk_token(engine, token_id)
    res = client.get(f"/wall?token={token}")
    assert res.status_code == 302 and res.headers["Location"].startswith("/login?next=/wall")


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
    assert client.get(f"/wall?token={token}").status_code == 200
    assert token not in runner.invoke(args=["kiosk", "list"]).output
    assert runner.invoke(args=["kiosk", "revoke", "1"]).exit_code == 0
    assert client.get(f"/wall?token={token}").status_code == 302
    assert runner.invoke(args=["kiosk", "revoke", "1"]).exit_code != 0


def test_embedded_demo_users_are_made_once(app):
    from dashboard.embedded import DEMO_USERS, create_demo_users

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
    assert dash_duo.driver.current_url.rstrip("/") == dash_duo.server_url.rstrip("/")
    assert dash_duo.get_logs() == []


def test_login_page_speaks_english_and_a_viewer_is_kept_out_of_dispatch(app, dash_duo):
    dash_duo.start_server(app)
    dash_duo.wait_for_element("#login-username", timeout=10)
    dash_duo.find_element("#lang-toggle").click()
    dash_duo.wait_for_text_to_equal("#login-panel .panel-title", "Sign in")
    sign_in(dash_duo, app, "/dispatch", role="viewer")
    dash_duo.wait_for_text_to_equal("#forbidden", "Not allowed", timeout=10)
    assert dash_duo.get_logs() == []
