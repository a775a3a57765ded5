"""Every write route against every role: anonymous 401, a wrong role 403, the right role succeeds.

The table below is the policy the routes must keep. Enumerating ``app.server.url_map`` makes a new write
route without an entry here (or in ``auth.OPEN_WRITES``, for routes guarded otherwise) fail the suite.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from dashboard import auth, dispatch_api
from dashboard import dispatch as d
from dashboard import users as accounts
from dashboard.models import task_events
from feeds.pipeline import now_ms
from tests.helpers import TEST_PASSWORD, make_event, make_user
from tests.test_api import ingest_now

ROLES = ("anonymous", "viewer", "officer", "commander", "liaison", "admin")
EVIL = "https://evil.example"


def open_incident(app, n: int = 1, severity: int = 3) -> dict:
    ingest_now(app, {"incident": [make_event(n, kind="fire", severity=severity, ts=now_ms(), lat=22.54,
                                             lon=114.0 + n * 0.02, title=f"火情 {n}")]})
    with app.server.extensions["panorama"].engine.connect() as conn:
        return next(r for r in dispatch_api.queue(conn) if r["title"] == f"火情 {n}")


def dispatched(app, departments=("fire",)) -> tuple[dict, list[dict]]:
    svc = app.server.extensions["panorama"]
    inc = open_incident(app)
    tasks = dispatch_api.write(svc, d.dispatch, inc["id"], list(departments), "olga", None, now_ms(),
                               svc.city.rules, svc.city).tasks
    return inc, tasks


def resolved(app) -> dict:
    svc = app.server.extensions["panorama"]
    inc, [task] = dispatched(app)
    with svc.engine.begin() as conn:
        task = d.transition(conn, task["id"], "acknowledged", 1, "x", None, now_ms()).task
        d.transition(conn, task["id"], "resolved", task["version"], "x", None, now_ms())
    return inc


# (rule, method) -> (the roles that may, a function of the app that returns the request's path and body)
WRITES = {
    ("/api/incidents/<id:incident_id>/dispatch", "POST"): (
        {"officer", "admin"}, lambda app: (f"/api/incidents/{open_incident(app)['id']}/dispatch", {})),
    ("/api/incidents/<id:incident_id>/close", "POST"): (
        {"officer", "admin"}, lambda app: (f"/api/incidents/{resolved(app)['id']}/close", {"note": "ok"})),
    ("/api/tasks/<id:task_id>/transition", "POST"): (
        # the liaison is the fire department's: the task is the fire department's
        {"officer", "commander", "liaison", "admin"},
        lambda app: (f"/api/tasks/{dispatched(app)[1][0]['id']}/transition", {"to": "acknowledged", "version": 1})),
    ("/api/briefings", "POST"): ({"officer", "commander", "admin"}, lambda app: ("/api/briefings", None)),
}


def session(app, role: str):
    """Return a test client signed in as a new user of ``role`` (or anonymous) and its CSRF token."""
    client = app.server.test_client()
    if role == "anonymous":
        return client, ""
    make_user(app, f"m-{role}", role, "fire" if role == "liaison" else None)
    res = client.post("/api/session", json={"username": f"m-{role}", "password": TEST_PASSWORD})
    assert res.status_code == 200
    return client, res.get_json()["csrf_token"]


@pytest.fixture
def mapp(make_app, redis_client):
    """Give an app for the matrix (briefings as HTML and JSON only: no Chromium needed)."""
    return make_app(BROWSER_PATH="none")


def write_routes(app) -> set[tuple[str, str]]:
    return {(r.rule, m) for r in app.server.url_map.iter_rules() for m in r.methods & auth.STATE_CHANGING}


def test_every_write_route_has_a_policy_and_keeps_it(mapp):
    server = mapp.server
    for rule, method in sorted(write_routes(mapp)):
        if (rule, method) in auth.OPEN_WRITES:
            continue
        assert (rule, method) in WRITES, f"{method} {rule} has no entry in the access matrix"
        endpoint = next(r.endpoint for r in server.url_map.iter_rules() if r.rule == rule and method in r.methods)
        roles = getattr(server.view_functions[endpoint], "panorama_roles", None)
        assert roles is not None, f"{method} {rule} is not guarded by auth.require()"
        assert set(roles) | {"admin"} == WRITES[(rule, method)][0], f"{method} {rule} changed its roles"
    assert set(WRITES) <= write_routes(mapp), "the matrix lists a route that is gone"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(WRITES), ids=lambda r: f"{r[1]} {r[0]}")
def test_write_route_by_role(mapp, route, role):
    allowed, build = WRITES[route]
    path, body = build(mapp)
    client, csrf = session(mapp, role)
    res = client.open(path, method=route[1], json=body, headers={"X-CSRF-Token": csrf})
    if role == "anonymous":
        assert res.status_code == 401 and res.get_json()["error"]["code"] == "not_signed_in"
    elif role not in allowed:
        assert res.status_code == 403 and res.get_json()["error"]["code"] == "forbidden"
    else:
        assert 200 <= res.status_code < 300, res.get_data(as_text=True)


def test_a_liaison_cannot_touch_another_departments_task(mapp):
    _, [fire, police] = dispatched(mapp, ("fire", "police"))
    client, csrf = session(mapp, "liaison")  # of the fire department
    res = client.post(f"/api/tasks/{police['id']}/transition", json={"to": "acknowledged", "version": 1},
                      headers={"X-CSRF-Token": csrf})
    assert res.status_code == 403 and res.get_json()["error"]["code"] == "forbidden"
    res = client.post(f"/api/tasks/{fire['id']}/transition", json={"to": "acknowledged", "version": 1},
                      headers={"X-CSRF-Token": csrf})
    assert res.status_code == 200 and res.get_json()["task"]["state"] == "acknowledged"


def test_a_revoked_kiosk_token_opens_neither_the_wall_nor_the_socket(mapp):
    engine = mapp.server.extensions["panorama"].engine
    token_id, token = accounts.create_kiosk_token(engine, "hall")
    client = mapp.server.test_client()
    assert client.get(f"/wall?token={token}", follow_redirects=True).request.path == "/wall"
    ticket = client.get(f"/api/ws-ticket?token={token}")
    assert ticket.status_code == 200 and auth.verify_ticket(mapp.server.secret_key, ticket.get_json()["ticket"]) == \
        {"k": token_id}
    accounts.revoke_kiosk_token(engine, token_id)
    assert client.get(f"/wall?token={token}", follow_redirects=True).request.path == "/login"
    res = client.get(f"/api/ws-ticket?token={token}")
    assert res.status_code == 401 and res.get_json()["error"]["code"] == "not_signed_in"


def dash_post(client, csrf: str | None, payload: dict, origin: str | None = None):
    headers = {} if csrf is None else {"X-CSRF-Token": csrf}
    if origin:
        headers["Origin"] = origin
    return client.post("/_dash-update-component", json=payload, headers=headers)


def tap_payload(action: str, kind: str, incident_id: int, version: int) -> dict:
    """Return what Dash's renderer sends when /m's button for ``action`` is tapped."""
    button = {"type": "m-act", "act": action, "kind": kind, "incident": incident_id, "task": 0, "version": version}
    return {"output": "..mobile-message.children...mobile-refresh.data..",
            "outputs": [{"id": "mobile-message", "property": "children"},
                        {"id": "mobile-refresh", "property": "data"}],
            "inputs": [[{"id": button, "property": "n_clicks", "value": 1}]],
            "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"],
            "state": [{"id": "mobile-refresh", "property": "data", "value": 0},
                      {"id": "lang", "property": "data", "value": "en"}]}


@pytest.mark.parametrize("role", ROLES)
def test_m_one_tap_by_role(mapp, role):
    inc = open_incident(mapp, severity=4)
    client, csrf = session(mapp, role)
    res = dash_post(client, csrf, tap_payload("acknowledge", "critical", inc["id"], inc["version"]))
    with mapp.server.extensions["panorama"].engine.connect() as conn:
        acks = conn.execute(select(task_events.c.actor).where(task_events.c.action == "cmd_ack")).scalars().all()
    if role == "anonymous":  # refused before the callback runs: only the page shell's callbacks are open
        assert res.status_code == 401 and res.get_json()["error"]["code"] == "not_signed_in" and acks == []
        return
    assert res.status_code == 200, res.get_data(as_text=True)
    message = res.get_json()["response"]["mobile-message"]["children"]
    if role in ("officer", "commander", "admin"):
        assert message == "Acknowledged" and acks == [f"m-{role}"]
    else:
        assert message == "You may not do this" and acks == []


def test_forged_cross_site_requests_are_refused(mapp):
    inc = open_incident(mapp, severity=4)
    client, csrf = session(mapp, "commander")
    officer, officer_csrf = session(mapp, "officer")
    # the API: another site's page posting with the victim's cookie (it cannot read the token, nor forge Origin)
    path = f"/api/incidents/{inc['id']}/dispatch"
    for headers, code in (({}, "csrf"), ({"X-CSRF-Token": "guess"}, "csrf"),
                          ({"X-CSRF-Token": officer_csrf, "Origin": EVIL}, "cross_site"),
                          ({"X-CSRF-Token": officer_csrf, "Referer": EVIL + "/page"}, "cross_site")):
        res = officer.post(path, json={}, headers=headers)
        assert res.status_code == 403 and res.get_json()["error"]["code"] == code, headers
    res = mapp.server.test_client().post("/api/session", json={"username": "m-officer", "password": TEST_PASSWORD},
                                         headers={"Origin": EVIL})  # no signing in from another site either
    assert res.status_code == 403
    # a Dash callback that changes something: no token, a wrong one, or another site's Origin
    payload = tap_payload("acknowledge", "critical", inc["id"], inc["version"])
    for token, origin, code in ((None, None, "csrf"), ("guess", None, "csrf"), (csrf, EVIL, "cross_site")):
        res = dash_post(client, token, payload, origin)
        assert res.status_code == 403 and res.get_json()["error"]["code"] == code, (token, origin)
    with mapp.server.extensions["panorama"].engine.connect() as conn:
        assert conn.execute(select(task_events.c.id).where(task_events.c.action == "cmd_ack")).first() is None
    # the page's own request: the token from its cookie, its own Origin
    assert client.get_cookie(auth.CSRF_COOKIE).value == csrf
    res = dash_post(client, csrf, payload, "http://localhost")
    assert res.status_code == 200 and res.get_json()["response"]["mobile-message"]["children"] == "Acknowledged"


@pytest.mark.timeout(120)
def test_a_wall_goes_live_with_its_kiosk_token_and_drops_off_when_it_is_revoked(make_app, redis_client, dash_duo):
    from dashboard.gateway import Gateway
    from tests.redis_proc import free_port

    port = free_port()
    app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/")
    engine = app.server.extensions["panorama"].engine
    token_id, token = accounts.create_kiosk_token(engine, "hall")
    dash_duo.start_server(app)
    gw = Gateway(app.server.extensions["panorama"], port=port, origins=[dash_duo.server_url.rstrip("/")])
    gw.ticket_check_s = 0.2
    gw.start()
    try:
        dash_duo.driver.get(f"{dash_duo.server_url}/wall?token={token}")
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=15)  # the socket's ticket came from the token
        assert dash_duo.find_elements("#user-bar") == []  # nobody is signed in on a wall
        accounts.revoke_kiosk_token(engine, token_id)
        dash_duo.wait_for_element("#live-indicator:not(.conn-live)", timeout=15)
    finally:
        gw.stop()
    # what the browser logged: only the refused ticket of the revoked token
    severe = [e["message"] for e in dash_duo.get_logs() or [] if e["level"] == "SEVERE"]
    unexpected = [m for m in severe if not ("/api/ws-ticket" in m and "401" in m)]
    if unexpected:
        pytest.fail("the browser logged:\n" + "\n".join(unexpected))


def test_anonymous_browsers_reach_only_the_router_language_and_probe_callbacks(mapp):
    """Dash answers whoever posts a callback: anonymous callers get the page shell's callbacks, nothing else."""
    ingest_now(mapp, {"incident": [make_event(1, domain="incident", kind="fire", severity=3, title="仓库起火",
                                              ts=now_ms())]})
    district_events = next(k for k in mapp.callback_map if k.startswith("..district-events.data..."))
    read = {"output": district_events,
            "outputs": [{"id": "district-events", "property": "data"},
                        {"id": "district-events", "property": "page_count"}],
            "inputs": [{"id": "district-events", "property": "page_current", "value": 0},
                       {"id": "district-events", "property": "sort_by", "value": []},
                       {"id": "district-events", "property": "filter_query", "value": ""},
                       {"id": "district-window", "property": "value", "value": "1h"},
                       {"id": "district-refresh", "property": "n_intervals", "value": 1}],
            "changedPropIds": ["district-window.value"],
            "state": [{"id": "district-events", "property": "page_size", "value": 20},
                      {"id": "district-code", "property": "data", "value": "440304"},
                      {"id": "lang", "property": "data", "value": "zh"}]}
    anonymous = mapp.server.test_client()
    refused = anonymous.post("/_dash-update-component", json=read)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "not_signed_in"
    router = {"output": "page.children", "outputs": {"id": "page", "property": "children"},
              "inputs": [{"id": "url", "property": "pathname", "value": "/district/futian"},
                         {"id": "lang", "property": "data", "value": "zh"}],
              "changedPropIds": ["url.pathname"], "state": [{"id": "url", "property": "search", "value": ""}]}
    shell = anonymous.post("/_dash-update-component", json=router)
    assert shell.status_code == 200 and "仓库起火" not in shell.get_data(as_text=True)  # the sign-in page
    viewer, csrf = session(mapp, "viewer")
    answer = viewer.post("/_dash-update-component", json=read, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200 and "仓库起火" in answer.get_data(as_text=True)
