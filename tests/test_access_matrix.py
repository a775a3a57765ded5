"""Every write route against every role: anonymous 401, a wrong role 403, the right role succeeds.

The table below is the policy the routes must keep. Enumerating ``app.server.url_map`` makes a new write
route without an entry here (or in ``auth.OPEN_WRITES``, for routes guarded otherwise) fail the suite.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from dashboard.web import auth
from dashboard.dispatch import desk
from dashboard.dispatch import board as d
from dashboard.storage import users as accounts
from dashboard.storage.models import task_events
from feeds.pipeline import now_ms
from tests.helpers import TEST_PASSWORD, make_event, make_user
from tests.test_api import ingest_now

ROLES = ("anonymous", "viewer", "officer", "commander", "liaison", "admin")
VIEW_ROLES = {"viewer", "officer", "commander", "liaison", "admin"}
EVIL = "https://evil.example"


def open_incident(app, n: int = 1, severity: int = 3) -> dict:
    ingest_now(app, {"incident": [make_event(n, kind="fire", severity=severity, ts=now_ms(), lat=22.54,
                                             lon=114.0 + n * 0.02, title=f"火情 {n}")]})
    with app.server.extensions["panorama"].engine.connect() as conn:
        return next(r for r in desk.queue(conn) if r["title"] == f"火情 {n}")


def dispatched(app, departments=("fire",), ago_ms: int = 0) -> tuple[dict, list[dict]]:
    svc = app.server.extensions["panorama"]
    inc = open_incident(app)
    tasks = desk.write(svc, d.dispatch, inc["id"], list(departments), "olga", None, now_ms() - ago_ms,
                       svc.city.rules, svc.city).tasks
    return inc, tasks


def resolved(app) -> dict:
    svc = app.server.extensions["panorama"]
    inc, [task] = dispatched(app)
    with svc.engine.begin() as conn:
        task = d.transition(conn, task["id"], "acknowledged", 1, "x", None, now_ms()).task
        d.transition(conn, task["id"], "resolved", task["version"], "x", None, now_ms())
    return inc


def firing_alert(app, scope: str = "district:440304") -> dict:
    """Return a firing alert written straight to the app's database (as the ingest workers would); one open alert
    per rule and ``scope``."""
    from sqlalchemy import insert

    from dashboard.storage.models import alerts

    now = now_ms()
    with app.server.extensions["panorama"].engine.begin() as conn:
        alert_id = conn.execute(insert(alerts).values(
            rule="aqi_moderate", scope=scope, level="orange", status="firing", district="440304",
            started_ms=now - 600_000, fired_ms=now, value=180, title="福田区空气质量指数 180",
            title_en="Futian: AQI 180", updated_ms=now).returning(alerts.c.id)).scalar_one()
    return {"id": alert_id, "version": 1}


def silence(app) -> dict:
    """Return a silence in force, written straight to the app's database."""
    from dashboard.storage import alerts as alert_store

    with app.server.extensions["panorama"].engine.begin() as conn:
        return alert_store.create_silence(conn, rule="aqi_moderate", district=None, zone=None,
                                          until_ms=now_ms() + 3_600_000, reason="校准", actor="olga", now_ms=now_ms())


def _until() -> str:
    from dashboard.core.clock import iso

    return iso(now_ms() + 3_600_000, "Asia/Shanghai")


def major_incident(app) -> dict:
    """Return an incident declared a major incident (level II), written through the domain."""
    from dashboard.dispatch import major

    inc = open_incident(app)
    with app.server.extensions["panorama"].engine.begin() as conn:
        major.declare(conn, inc["id"], 2, "olga", None, now_ms())
    return inc


def roster_override(app) -> dict:
    """Return a roster override in force, written straight to the app's database."""
    from dashboard.storage import rosters as roster_store

    with app.server.extensions["panorama"].engine.begin() as conn:
        return roster_store.create(conn, department="fire", person="fire_dep_a", role="officer", from_ms=now_ms(),
                                   until_ms=now_ms() + 3_600_000, reason="病假顶班", actor="olga", now_ms=now_ms())


def merge_request(app) -> tuple[str, dict]:
    """Return the path and body that merge one new incident into another."""
    a, b = open_incident(app, 1), open_incident(app, 2)
    return f"/api/incidents/{a['id']}/merge", {"into": b["id"], "version": a["version"]}


def split_request(app) -> tuple[str, dict]:
    """Return the path and body that split one of a new incident's two reports off."""
    inc = open_incident(app, 1)
    ingest_now(app, {"incident": [make_event(2, kind="fire", severity=3, ts=now_ms(), lat=22.54, lon=114.02)]})
    with app.server.extensions["panorama"].engine.connect() as conn:
        inc = next(r for r in desk.queue(conn) if r["id"] == inc["id"])
    assert inc["reports"] == 2
    return f"/api/incidents/{inc['id']}/split", {"reports": ["ev-2"], "version": inc["version"]}


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
    ("/api/incidents/<id:incident_id>/escalate", "POST"): (
        {"officer", "commander", "admin"}, lambda app: (f"/api/incidents/{open_incident(app)['id']}/escalate", {})),
    # the major-incident mode (SPEC section 10): an officer's and a commander's
    ("/api/incidents/<id:incident_id>/major", "POST"): (
        {"officer", "commander", "admin"}, lambda app: (f"/api/incidents/{open_incident(app)['id']}/major",
                                                        {"level": 2})),
    ("/api/incidents/<id:incident_id>/major", "DELETE"): (
        {"officer", "commander", "admin"}, lambda app: (f"/api/incidents/{major_incident(app)['id']}/major", None)),
    # a standard procedure's step: an officer any, a liaison their department's (the matrix's liaison is fire's)
    ("/api/incidents/<id:incident_id>/steps/<string(maxlength=64):step>", "POST"): (
        {"officer", "liaison", "admin"},
        lambda app: (f"/api/incidents/{open_incident(app)['id']}/steps/fire_attack", {})),
    ("/api/tasks/<id:task_id>/resolve_for", "POST"): (
        {"officer", "admin"}, lambda app: (f"/api/tasks/{dispatched(app, ('police',))[1][0]['id']}/resolve_for",
                                           {"version": 1, "note": "派出所电话告知已处置"})),
    ("/api/tasks/<id:task_id>/redispatch", "POST"): (
        # sent ten minutes ago: past its acknowledge deadline
        {"officer", "commander", "admin"},
        lambda app: (f"/api/tasks/{dispatched(app, ago_ms=600_000)[1][0]['id']}/redispatch", {"version": 1})),
    ("/api/incidents/<id:incident_id>/merge", "POST"): ({"officer", "commander", "admin"}, merge_request),
    ("/api/incidents/<id:incident_id>/split", "POST"): ({"officer", "commander", "admin"}, split_request),
    # district centres (dispatch.handover): the matrix's users are the city centre's, who take a district's incident
    # up (severity 3: its district's) and hand a critical one (the city's by itself) down to its district
    ("/api/incidents/<id:incident_id>/hand-up", "POST"): (
        {"officer", "commander", "admin"}, lambda app: (f"/api/incidents/{open_incident(app)['id']}/hand-up", {})),
    ("/api/incidents/<id:incident_id>/hand-down", "POST"): (
        {"officer", "commander", "admin"},
        lambda app: (f"/api/incidents/{open_incident(app, severity=4)['id']}/hand-down", {"district": "440304"})),
    ("/api/briefings", "POST"): ({"officer", "commander", "admin"}, lambda app: ("/api/briefings", None)),
    ("/api/alerts/<id:alert_id>/ack", "POST"): (
        {"officer", "commander", "admin"}, lambda app: (f"/api/alerts/{firing_alert(app)['id']}/ack",
                                                        {"version": 1, "note": "已通知环保"})),
    ("/api/silences", "POST"): (
        {"officer", "commander", "admin"},
        lambda app: ("/api/silences", {"rule": "aqi_moderate", "until": _until(), "reason": "传感器校准"})),
    ("/api/silences/<id:silence_id>", "DELETE"): (
        {"officer", "commander", "admin"}, lambda app: (f"/api/silences/{silence(app)['id']}", None)),
    ("/api/rosters/overrides", "POST"): (
        {"officer", "commander", "admin"},
        lambda app: ("/api/rosters/overrides", {"department": "fire", "person": "fire_dep_a", "role": "officer",
                                                "until": _until(), "reason": "病假顶班"})),
    ("/api/tasks/<id:task_id>/units", "POST"): (
        # the liaison is the fire department's, and so are the task and the unit (SPEC section 11)
        {"officer", "commander", "liaison", "admin"},
        lambda app: (f"/api/tasks/{dispatched(app)[1][0]['id']}/units", {"units": ["fe-futian-01"]})),
    ("/api/units", "POST"): (
        {"admin"}, lambda app: ("/api/units", {"unit": "boat-1", "department": "water", "kind": "boat"})),
    ("/api/rosters/overrides/<id:override_id>", "DELETE"): (
        {"officer", "commander", "admin"}, lambda app: (f"/api/rosters/overrides/{roster_override(app)['id']}", None)),
}

# Reads of early warning (SPEC section 9): alerts are every viewer's, silences the officers' and commanders', and
# so is the notifications' delivery log (it names the people told).
ALERT_READS = {"/api/alerts": VIEW_ROLES, "/api/alerts?status=firing&level=orange": VIEW_ROLES,
               "/api/silences": {"officer", "commander", "admin"},
               "/api/notifications": {"officer", "commander", "admin"},
               "/api/notifications?status=pending&channel=email": {"officer", "commander", "admin"}}
# The units (SPEC section 11): every viewer's; a liaison's answer is their department's (test_units.py).
UNIT_READS = {"/api/units": VIEW_ROLES, "/api/units?department=fire&status=available": VIEW_ROLES}


def queued_notification(app) -> None:
    """Queue one notification straight into the app's outbox (as an alert's firing would)."""
    from dashboard.storage import outbox

    with app.server.extensions["panorama"].engine.begin() as conn:
        outbox.enqueue(conn, key="alert:1:firing:email:duty@example.org", channel="email",
                       address="duty@example.org", subject="福田区空气质量指数 180", body="...", payload={})


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


@pytest.mark.parametrize("role", ROLES)
def test_major_reads_by_role(mapp, role):
    """GET /api/major is every viewer's (the screens of the whole centre switch to the command view)."""
    major_incident(mapp)
    client, _ = session(mapp, role)
    res = client.get("/api/major")
    if role == "anonymous":
        assert res.status_code == 401
    else:
        assert res.status_code == 200 and len(res.get_json()) == 1


@pytest.mark.parametrize("role", ROLES)
def test_alert_reads_by_role(mapp, role):
    firing_alert(mapp)
    silence(mapp)
    queued_notification(mapp)
    client, _ = session(mapp, role)
    for path, allowed in ALERT_READS.items():
        res = client.get(path)
        if role == "anonymous":
            assert res.status_code == 401, path
        elif role not in allowed:
            assert res.status_code == 403 and res.get_json()["error"]["code"] == "forbidden", path
        else:
            assert res.status_code == 200, path
            listed = res.get_json()[path.split("?")[0].removeprefix("/api/")]
            assert len(listed) == 1, path


@pytest.mark.parametrize("role", ROLES)
def test_unit_reads_by_role(mapp, role):
    client, _ = session(mapp, role)
    for path, allowed in UNIT_READS.items():
        res = client.get(path)
        if role == "anonymous":
            assert res.status_code == 401, path
        elif role not in allowed:
            assert res.status_code == 403, path
        else:
            assert res.status_code == 200 and res.get_json(), path
            assert role != "liaison" or {u["department"] for u in res.get_json()} == {"fire"}


@pytest.mark.parametrize("role", ROLES)
def test_roster_reads_by_role_and_contacts_only_for_those_who_act(mapp, role):
    roster_override(mapp)
    client, _ = session(mapp, role)
    res = client.get("/api/rosters")
    overrides = client.get("/api/rosters/overrides")
    if role == "anonymous":
        assert res.status_code == 401 and overrides.status_code == 401
        return
    assert res.status_code == 200
    doc = res.get_json()
    fire = next(d for d in doc["departments"] if d["code"] == "fire")
    [officer] = fire["on_duty"][0]["people"]
    assert officer["id"] == "fire_dep_a" and fire["on_duty"][0]["override"] == doc["overrides"][0]["id"]
    people = [p for d in doc["departments"] for p in d["people"]]
    if role in ("officer", "commander", "admin"):
        assert all(p["phone"].startswith("+86") and "@" in p["email"] for p in people)
        assert overrides.status_code == 200 and len(overrides.get_json()["overrides"]) == 1
    else:  # a viewer or a liaison sees who is on duty, not how to reach them
        assert not any("phone" in p or "email" in p for p in people), role
        assert "+8675500001" not in res.get_data(as_text=True)
        assert overrides.status_code == 403


# The officers' exports (dashboard/web/exports.py): the JSON route's role, "view". The open data (SPEC section 14)
# takes an API key and nothing else: a session of any role opens none of it; its description is public.
EXPORT_READS = {"/api/districts/futian/events.csv": VIEW_ROLES, "/api/districts/futian/events.xlsx": VIEW_ROLES,
                "/api/incidents.csv": VIEW_ROLES, "/api/incidents.xlsx": VIEW_ROLES,
                # the task board's and /alerts' trail's, as GET /api/tasks and GET /api/alerts (a liaison: their
                # department's tasks, tests/test_export.py)
                "/api/tasks.csv": VIEW_ROLES, "/api/tasks.xlsx": VIEW_ROLES,
                "/api/alerts.csv": VIEW_ROLES, "/api/alerts.xlsx": VIEW_ROLES}
OPEN_READS = ("/api/open/counts", "/api/open/counts?format=csv", "/api/open/districts.geojson")


# Who is signed in (SPEC section 13): /api/me answers each signed-in user their own identity, anonymous nobody. The
# single sign-on routes are the way in: open to anyone, GET only (no write route), the provider's and the callback's
# checks are their guard (tests/test_sso.py); with no provider configured they answer 404 to everyone.
SSO_ROUTES = ("/auth/oidc/login", "/auth/oidc/callback?code=c&state=s", "/auth/oidc/logout")


@pytest.mark.parametrize("role", ROLES)
def test_who_am_i_and_the_single_sign_on_routes_by_role(mapp, role):
    client, _ = session(mapp, role)
    res = client.get("/api/me")
    if role == "anonymous":
        assert res.status_code == 401 and res.get_json()["error"]["code"] == "not_signed_in"
    else:
        assert res.status_code == 200 and res.get_json() == {
            "username": f"m-{role}", "role": role, "department": "fire" if role == "liaison" else None,
            "district": None}
    for path in SSO_ROUTES:
        res = client.get(path)
        assert res.status_code == 404 and 'data-reason="not_configured"' in res.get_data(as_text=True), path
    methods = {m for r in mapp.server.url_map.iter_rules() if r.rule.startswith("/auth/") for m in r.methods}
    assert methods == {"GET", "HEAD", "OPTIONS"}


def test_a_district_centres_user_is_told_their_district(mapp):
    from dashboard.storage import users as store

    svc = mapp.server.extensions["panorama"]
    store.create_user(svc.engine, "d-officer", TEST_PASSWORD, "officer", None, [], district="440304",
                      districts=[d.code for d in svc.city.districts])
    client = mapp.server.test_client()
    assert client.post("/api/session", json={"username": "d-officer", "password": TEST_PASSWORD}).status_code == 200
    assert client.get("/api/me").get_json()["district"] == "440304"


@pytest.mark.parametrize("role", ROLES)
def test_export_and_open_data_reads_by_role(mapp, role):
    client, _ = session(mapp, role)
    for path, allowed in EXPORT_READS.items():
        res = client.get(path)
        if role == "anonymous":
            assert res.status_code == 401, path
        elif role not in allowed:
            assert res.status_code == 403, path
        else:
            assert res.status_code == 200 and res.headers["Content-Disposition"].startswith("attachment"), path
    for path in OPEN_READS:
        res = client.get(path)
        assert res.status_code == 401 and res.get_json()["error"]["code"] == "api_key_required", (role, path)
    assert client.get("/api/open/openapi.json").status_code == 200


# An incident's after-action report (dashboard/briefings/after_action.py): the officers and commanders, and the
# liaisons of a department that had a task of it (the matrix's liaison is the fire department's); with no browser
# (BROWSER_PATH=none) its PDF is a 503 saying so, after the same access check.
REPORT_ROLES = {"officer", "commander", "liaison", "admin"}


@pytest.mark.parametrize("role", ROLES)
def test_after_action_report_reads_by_role(mapp, role):
    svc = mapp.server.extensions["panorama"]
    fire_inc = resolved(mapp)  # the fire department's task
    police_inc = open_incident(mapp, 2)
    [task] = desk.write(svc, d.dispatch, police_inc["id"], ["police"], "olga", None, now_ms(), svc.city.rules,
                        svc.city).tasks
    with svc.engine.begin() as conn:
        d.resolve_for(conn, task["id"], 1, "olga", "派出所电话告知", now_ms())
    client, _ = session(mapp, role)
    for inc, allowed in ((fire_inc, REPORT_ROLES), (police_inc, REPORT_ROLES - {"liaison"})):
        for ext, ok in (("html", 200), ("pdf", 503)):
            res = client.get(f"/api/incidents/{inc['id']}/report.{ext}")
            if role == "anonymous":
                assert res.status_code == 401, (inc["id"], ext)
            elif role not in allowed:
                assert res.status_code == 403 and res.get_json()["error"]["code"] == "forbidden", (inc["id"], ext)
            else:
                assert res.status_code == ok, (role, inc["id"], ext, res.get_data(as_text=True)[:300])
                if ext == "pdf":
                    assert res.get_json()["error"]["code"] == "no_browser"


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
    button = {"type": "m-act", "act": action, "kind": kind, "incident": incident_id, "task": 0, "version": version,
              "tasks": ""}
    return {"output": "..mobile-message.children...mobile-refresh.data..",
            "outputs": [{"id": "mobile-message", "property": "children"},
                        {"id": "mobile-refresh", "property": "data"}],
            "inputs": [[{"id": button, "property": "n_clicks", "value": 1}]],
            "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"],
            "state": [{"id": "mobile-refresh", "property": "data", "value": 0},
                      {"id": "lang", "property": "data", "value": "en"}]}


def said(res) -> str:
    """Return the confirmation /m's tap answered with (a span that fades), as text."""
    return res.get_json()["response"]["mobile-message"]["children"]["props"]["children"]


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
    if role in ("officer", "commander", "admin"):
        assert res.status_code == 200, res.get_data(as_text=True)
        assert said(res) == "Acknowledged: 火情 1" and acks == [f"m-{role}"]
    else:  # refused before the callback runs, as /m itself refuses them
        assert res.status_code == 403 and res.get_json()["error"]["code"] == "forbidden" and acks == []


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
    assert res.status_code == 200 and said(res) == "Acknowledged: 火情 1"


@pytest.mark.timeout(120)
def test_a_wall_goes_live_with_its_kiosk_token_and_drops_off_when_it_is_revoked(make_app, redis_client, dash_duo):
    from dashboard.gateway.server import Gateway
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
                        {"id": "district-events", "property": "page_count"},
                        {"id": "district-events", "property": "page_current"},
                        {"id": "district-events-paging", "property": "data"},
                        {"id": "district-events-note", "property": "children"}],
            "inputs": [{"id": "district-events", "property": "page_current", "value": 0},
                       {"id": "district-events", "property": "sort_by", "value": []},
                       {"id": "district-events", "property": "filter_query", "value": ""},
                       {"id": "district-window", "property": "value", "value": "1h"},
                       {"id": "district-refresh", "property": "n_intervals", "value": 1}],
            "changedPropIds": ["district-window.value"],
            "state": [{"id": "district-events", "property": "page_size", "value": 20},
                      {"id": "district-code", "property": "data", "value": "440304"},
                      {"id": "lang", "property": "data", "value": "zh"},
                      {"id": "district-events-paging", "property": "data", "value": None}]}
    anonymous = mapp.server.test_client()
    refused = anonymous.post("/_dash-update-component", json=read)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "not_signed_in"
    router = {"output": ROUTER, "outputs": [{"id": "page", "property": "children"},
                                            {"id": "page-title", "property": "children"},
                                            {"id": "shell-nav", "property": "children"}],
              "inputs": [{"id": "url", "property": "pathname", "value": "/district/futian"},
                         {"id": "lang", "property": "data", "value": "zh"}],
              "changedPropIds": ["url.pathname"], "state": [{"id": "url", "property": "search", "value": ""}]}
    shell = anonymous.post("/_dash-update-component", json=router)
    assert shell.status_code == 200 and "仓库起火" not in shell.get_data(as_text=True)  # the sign-in page
    viewer, csrf = session(mapp, "viewer")
    answer = viewer.post("/_dash-update-component", json=read, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200 and "仓库起火" in answer.get_data(as_text=True)


# --- Dash callbacks ----------------------------------------------------------------------------------------
# Every server callback in app.callback_map against every caller, with the payload Dash's renderer sends. The
# table is the policy each callback must keep (the same roles as its page or its REST twin); a callback missing
# from it, or declaring no policy (callback_guard.allow), fails here, and is refused at runtime.

CALLERS = (*ROLES, "kiosk")
EVERYONE = set(CALLERS)
VIEW = {"viewer", "officer", "commander", "liaison", "admin"}
DISPATCH = {"officer", "commander", "liaison", "admin"}
COMMAND = {"officer", "commander", "admin"}
OFFICER = {"officer", "admin"}


def caller(app, role: str):
    """Return a test client acting as ``role`` (one per app and role) and the headers its page sends."""
    made = app.server.config.setdefault("_matrix_callers", {})
    if role not in made:
        made[role] = _caller(app, role)
    return made[role]


def _caller(app, role: str):
    if role != "kiosk":
        client, csrf = session(app, role)
        return client, ({"X-CSRF-Token": csrf} if csrf else {})
    # a wall: opened with a kiosk token (traded for a cookie and a clean address), nobody signed in
    _, token = accounts.create_kiosk_token(app.server.extensions["panorama"].engine, f"wall-{now_ms()}")
    client = app.server.test_client()
    assert client.get(f"/wall?token={token}", follow_redirects=True).status_code == 200
    return client, {"Referer": "http://localhost/wall"}


def callback_key(app, name: str) -> str:
    """Return the callback_map key of ``name`` (the key without the hashes Dash adds for duplicate outputs)."""
    return next(k for k in app.callback_map if re.sub(r"@[0-9a-f]{64}", "", k) == name)


def payload(app, name: str, values: dict, changed: str | None = None) -> dict:
    """Return the request Dash's renderer sends for callback ``name`` with these input and state values
    (``{"id.property": value}``; a pattern input takes ``[(id dict, value), ...]``)."""
    cb = app.callback_map[callback_key(app, name)]

    def slot(dep):
        value = values.get(f"{dep['id']}.{dep['property']}")
        if dep["id"].startswith("{"):
            return [{"id": i, "property": dep["property"], "value": v} for i, v in value or []]
        return {"id": dep["id"], "property": dep["property"], "value": value}

    def out(o):  # a pattern output (ALL) is sent as the list of the components it matched: here one, i 0
        if isinstance(o.component_id, dict):
            one = {k: (v if isinstance(v, (str, int)) else 0) for k, v in o.component_id.items()}
            return [{"id": one, "property": o.component_property}]
        return {"id": o.component_id, "property": o.component_property}

    outputs = [out(o) for o in (cb["output"] if isinstance(cb["output"], list) else [cb["output"]])]
    inputs = [slot(dep) for dep in cb["inputs"]]
    if changed is None:
        first = inputs[0] if not isinstance(inputs[0], list) else inputs[0][0]
        changed = f"{first['id'] if isinstance(first['id'], str) else json.dumps(first['id'], sort_keys=True, separators=(',', ':'))}.{first['property']}"
    return {"output": callback_key(app, name), "outputs": outputs if isinstance(cb["output"], list) else outputs[0],
            "inputs": inputs, "changedPropIds": [changed], "state": [slot(dep) for dep in cb["state"]]}


def compact(d: dict) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def _n(app) -> int:
    app.server.config["_matrix_n"] = app.server.config.get("_matrix_n", 0) + 1
    return app.server.config["_matrix_n"] * 10


def incident(app, severity: int = 3) -> dict:
    return open_incident(app, _n(app), severity=severity)


def fire_task(app) -> dict:
    svc = app.server.extensions["panorama"]
    inc = incident(app)
    return desk.write(svc, d.dispatch, inc["id"], ["fire"], "olga", None, now_ms(), svc.city.rules,
                              svc.city).tasks[0]


def resolved_incident(app) -> dict:
    svc = app.server.extensions["panorama"]
    task = fire_task(app)
    with svc.engine.begin() as conn:
        task = d.transition(conn, task["id"], "acknowledged", 1, "x", None, now_ms()).task
        d.transition(conn, task["id"], "resolved", task["version"], "x", None, now_ms())
    return {"id": task["incident_id"]}


LANG = {"lang.data": "en"}
ALERT_LIST = "..alert-list.children...alert-more.children...alert-digest.data.."  # /, /wall, /m: every viewer's, a kiosk wall's
ALERT_ACK = "..alert-message.children...alert-refresh.data.."  # as POST /api/alerts/<id>/ack
ALERT_OUTLINES = "..city-map.figure...alert-outline-digest.data.."  # / and /wall: as the list


PAGE_TRAIL = "..alerts-trail.children...alerts-count.children...silence-list.children...alerts-digest.data.."
FILTER_BOXES = '{"alerts-filter":["ALL"],"value":["ALL"]}.n_clicks'  # /alerts' status and level boxes
PAGE_ACK = "..alerts-page-message.children...alerts-refresh.data.."  # /alerts: as POST /api/alerts/<id>/ack
PAGE_SILENCE_ADD = "..silence-message.children...alerts-refresh.data...silence-reason.value.."  # POST /api/silences
PAGE_SILENCE_END = "..silence-message.children...alerts-refresh.data.."  # as DELETE /api/silences/<id>


def page_ack_payload(app) -> dict:
    """Return what /alerts sends when a trail's acknowledge button is tapped (a new alert each time)."""
    alert = firing_alert(app, f"district:440304:{_n(app)}")
    button = {"trail-ack": alert["id"], "v": alert["version"]}
    return payload(app, PAGE_ACK, {'{"trail-ack":["ALL"],"v":["ALL"]}.n_clicks': [(button, 1)],
                                   "alerts-refresh.data": 0, **LANG}, compact(button) + ".n_clicks")


def page_silence_end_payload(app) -> dict:
    button = {"silence-end": silence(app)["id"]}
    return payload(app, PAGE_SILENCE_END, {'{"silence-end":["ALL"]}.n_clicks': [(button, 1)],
                                           "alerts-refresh.data": 0, **LANG}, compact(button) + ".n_clicks")


def ack_payload(app) -> dict:
    """Return what the renderer sends when an alert's acknowledge button is tapped (a new alert each time)."""
    alert = firing_alert(app, f"district:440304:{_n(app)}")
    button = {"alert-ack": alert["id"], "v": alert["version"]}
    return payload(app, ALERT_ACK, {'{"alert-ack":["ALL"],"v":["ALL"]}.n_clicks': [(button, 1)],
                                    "alert-refresh.data": 0, **LANG}, compact(button) + ".n_clicks")


SPOT_DATA = '{"i":["ALL"],"opt":"spot-data"}.data'
# a district wall's streets, its spotlight's round, its map's points (public as the spotlight: a kiosk wall reads it)
WALL_STREETS = '..wall-streets.figure...{"i":["ALL"],"opt":"street-data"}.data...city-map.figure..'
MAJOR_SLOT = "..major-slot.children...major-refresh.disabled...major-digest.data.."
MERGE_DIALOG = ("..merge-dialog.hidden...merge-into.children...merge-choice.data...merge-note.value...merge-version.data"
                "...merge-message.children...dispatch-detail-message.children...dispatch-refresh.data"
                "...dispatch-selected.data..")
SPLIT_DIALOG = ("..split-dialog.hidden...split-reports.children...split-ticked.data...split-note.value...split-version.data"
                "...split-message.children...dispatch-detail-message.children...dispatch-refresh.data..")
HANDUP_DIALOG = ("..handup-dialog.hidden...handup-confirm.children...handup-note.value...handup-message.children"
                 "...dispatch-detail-message.children...dispatch-refresh.data..")
HANDDOWN_DIALOG = ("..handdown-dialog.hidden...handdown-districts.children...handdown-choice.data...handdown-note.value"
                   "...handdown-message.children...dispatch-detail-message.children...dispatch-refresh.data..")
HANDOVER_BUTTONS = "..dispatch-handup-open.disabled...dispatch-handdown-open.disabled.."
ROUTER = "..page.children...page-title.children...shell-nav.children.."  # the router: page, tab title, navigation
# callback (its callback_map key without hashes) -> (the callers that may call it, the request for the app)
CALLBACKS = {
    ALERT_LIST: (EVERYONE, lambda app: payload(app, ALERT_LIST, {
        "alert-bump.data": {"n": 1, "seq": 1}, "alert-view.data": {"page": "wall"}, **LANG})),
    ALERT_ACK: (COMMAND, ack_payload),
    PAGE_TRAIL: (COMMAND, lambda app: payload(app, PAGE_TRAIL, {
        FILTER_BOXES: [({"alerts-filter": "status", "value": "firing"}, 1), ({"alerts-filter": "level", "value": "red"}, 0)],
        "alerts-district.value": "futian", **LANG}, compact({"alerts-filter": "status", "value": "firing"}) + ".n_clicks")),
    PAGE_ACK: (COMMAND, page_ack_payload),
    PAGE_SILENCE_ADD: (COMMAND, lambda app: payload(app, PAGE_SILENCE_ADD, {
        "silence-add.n_clicks": 1, "silence-district.value": "440305", "silence-until.value": _until(),
        "silence-reason.value": f"道路施工 {_n(app)}", "alerts-refresh.data": 0, **LANG})),
    PAGE_SILENCE_END: (COMMAND, page_silence_end_payload),
    ALERT_OUTLINES: (EVERYONE, lambda app: payload(app, ALERT_OUTLINES, {
        "alert-bump.data": {"n": 1, "seq": 1}, "alert-view.data": {"page": "wall"}, **LANG})),
    ROUTER: (EVERYONE, lambda app: payload(app, ROUTER, {
        "url.pathname": "/", "lang.data": "zh", "url.search": ""})),
    "lang.data": (EVERYONE, lambda app: payload(app, "lang.data", {"lang-toggle.n_clicks": 1, **LANG})),
    "live-probe.data": (EVERYONE, lambda app: payload(app, "live-probe.data", {"live-probe-ask.data": 1})),
    # the command view of / and /wall and /m's card: public (a kiosk wall holds no session), read as GET /api/major
    MAJOR_SLOT: (EVERYONE, lambda app: payload(app, MAJOR_SLOT, {
        "major-bump.data": {"n": 1, "why": "majors"}, "major-page.data": {"page": "wall"}, **LANG})),
    # a procedure step's tick on /dispatch, as POST /api/incidents/<id>/steps/<step>
    "procedure-message.children": ({"officer", "liaison", "admin"}, lambda app: tick_payload(app)),
    # its buttons, as POST /api/incidents/<id>/major
    "major-controls.children": (COMMAND, lambda app: payload(app, "major-controls.children", {
        "major-confirm-declare.submit_n_clicks": 1, "major-pick.value": 2,
        "major-target.data": {"incident": incident(app)["id"]}, **LANG})),
    # the wall's spotlight: public (a kiosk wall holds no session); what it reads needs a viewer or a kiosk token
    SPOT_DATA: (EVERYONE, lambda app: payload(app, SPOT_DATA, {
        "view.data": {"page": "wall", "highlight": "440304"}, "live-trend.data": None})),
    WALL_STREETS: (EVERYONE, lambda app: payload(app, WALL_STREETS, {
        "wall-streets-tick.n_intervals": 1, '{"i":["ALL"],"opt":"street-data"}.data': [({"opt": "street-data", "i": 0},
                                                                                       None)], **LANG})),
    "..district-kpi-security.children...district-kpi-traffic.children...district-kpi-environment.children"
    "...district-kpi-incident.children...district-kpi-security-delta.children...district-kpi-traffic-delta.children"
    "...district-kpi-environment-delta.children...district-kpi-incident-delta.children"
    "...district-kpi-security-delta.className...district-kpi-traffic-delta.className"
    "...district-kpi-environment-delta.className...district-kpi-incident-delta.className...district-streets.figure"
    "...district-map.figure...district-trend.figure...district-incidents.children...event-ticker.children...district-updated.children"
    "...district-drawn.data..": (
        VIEW, lambda app: payload(app, DISTRICT_REFRESH, {
            "district-refresh.n_intervals": 1, "district-window.value": "1h", "district-code.data": "440304",
            **LANG})),
    "..district-events.data...district-events.page_count...district-events.page_current...district-events-paging.data...district-events-note.children..": (VIEW, lambda app: payload(
        app, "..district-events.data...district-events.page_count...district-events.page_current...district-events-paging.data...district-events-note.children..", {
            "district-events.page_current": 0, "district-events.sort_by": [], "district-events.filter_query": "",
            "district-window.value": "1h", "district-refresh.n_intervals": 1, "district-events.page_size": 20,
            "district-code.data": "440304", **LANG}, "district-window.value")),
    "..dispatch-department.data...board-filter.children..": (DISPATCH, lambda app: payload(
        app, "..dispatch-department.data...board-filter.children..", {"url.search": "?department=fire", **LANG})),
    "..incident-list.children...incident-rest.children...task-board.children...dispatch-shown.data..": (DISPATCH, lambda app: payload(
        app, "..incident-list.children...incident-rest.children...task-board.children...dispatch-shown.data..",
        {"dispatch-pulse.data": 1, **LANG}, "dispatch-pulse.data")),
    "dispatch-selected.data": (DISPATCH, lambda app: payload(app, "dispatch-selected.data", {
        '{"index":["ALL"],"type":"dispatch-incident"}.n_clicks': [({"type": "dispatch-incident", "index": 7}, 1)]})),
    "..dispatch-detail.children...dispatch-open.disabled...dispatch-close-incident.disabled"
    "...dispatch-close-why.children...dispatch-map.figure...dispatch-map-note.children...dispatch-shown-detail.data"
    "...dispatch-merge-open.disabled...dispatch-split-open.disabled..": (DISPATCH, lambda app: payload(
        app, DISPATCH_DETAIL, {"dispatch-selected.data": incident(app)["id"], "dispatch-pulse.data": 1,
                               **LANG})),
    # the dispatch dialog's nearest units of the departments ticked (as GET /api/units, for the officer dispatching)
    "..dispatch-units.options...dispatch-units.value..": (OFFICER, lambda app: payload(
        app, "..dispatch-units.options...dispatch-units.value..", {
            "dispatch-departments.value": ["fire"], "dispatch-selected.data": incident(app)["id"], **LANG})),
    # merge and split: the dialogs list and move incidents' reports, as POST /api/incidents/<id>/merge and /split
    MERGE_DIALOG: (COMMAND, lambda app: payload(app, MERGE_DIALOG, {
        "dispatch-merge-open.n_clicks": 1, "dispatch-selected.data": incident(app)["id"], "dispatch-refresh.data": 0,
        **LANG}, "dispatch-merge-open.n_clicks")),
    "..merge-confirm.children...merge-submit.disabled..": (COMMAND, lambda app: payload(
        app, "..merge-confirm.children...merge-submit.disabled..", {
            "merge-choice.data": incident(app)["id"], "dispatch-selected.data": incident(app)["id"], **LANG})),
    SPLIT_DIALOG: (COMMAND, lambda app: payload(app, SPLIT_DIALOG, {
        "dispatch-split-open.n_clicks": 1, "dispatch-selected.data": incident(app)["id"], "dispatch-refresh.data": 0,
        **LANG}, "dispatch-split-open.n_clicks")),
    "..split-confirm.children...split-submit.disabled..": (COMMAND, lambda app: payload(
        app, "..split-confirm.children...split-submit.disabled..", {"split-ticked.data": None, **LANG})),
    # district centres: which of the two buttons apply (the page's: two booleans, read only for those who may),
    # the dialogs' writes as POST /api/incidents/<id>/hand-up and /hand-down (a new incident each call)
    HANDOVER_BUTTONS: (DISPATCH, lambda app: payload(app, HANDOVER_BUTTONS, {
        "dispatch-selected.data": incident(app)["id"], "dispatch-pulse.data": 1})),
    HANDUP_DIALOG: (COMMAND, lambda app: payload(app, HANDUP_DIALOG, {
        "handup-submit.n_clicks": 1, "dispatch-selected.data": incident(app)["id"], "dispatch-refresh.data": 0,
        **LANG}, "handup-submit.n_clicks")),
    HANDDOWN_DIALOG: (COMMAND, lambda app: payload(app, HANDDOWN_DIALOG, {
        "handdown-submit.n_clicks": 1, "dispatch-selected.data": incident(app, severity=4)["id"],
        "handdown-choice.data": "440304", "dispatch-refresh.data": 0, **LANG}, "handdown-submit.n_clicks")),
    "..handdown-confirm.children...handdown-submit.disabled..": (COMMAND, lambda app: payload(
        app, "..handdown-confirm.children...handdown-submit.disabled..", {
            "handdown-choice.data": "440304", "dispatch-selected.data": incident(app)["id"], **LANG})),
    "dispatch-escalations.children": (DISPATCH, lambda app: payload(app, "dispatch-escalations.children", {
        "dispatch-live.data": {"escalations": [{"id": 1, "incident_id": 1, "department": "fire",
                                                "overdue": "acknowledge"}]}, **LANG})),
    "..dispatch-dialog.hidden...dispatch-departments.value...dispatch-departments.options...dispatch-note.value"
    "...dispatch-message.children...dispatch-refresh.data..": (OFFICER, lambda app: payload(app, DISPATCH_DIALOG, {
        "dispatch-submit.n_clicks": 1, "dispatch-selected.data": incident(app)["id"],
        "dispatch-departments.value": ["fire"], "dispatch-refresh.data": 0, **LANG}, "dispatch-submit.n_clicks")),
    "..task-message.children...dispatch-refresh.data..": (DISPATCH, lambda app: move_payload(app, fire_task(app))),
    "..dispatch-detail-message.children...dispatch-refresh.data..": (OFFICER, lambda app: payload(
        app, "..dispatch-detail-message.children...dispatch-refresh.data..", {
            "dispatch-close-incident.n_clicks": 1, "dispatch-selected.data": resolved_incident(app)["id"],
            "dispatch-refresh.data": 0, **LANG})),
    "..decision-list.children...decision-count.children...incident-list.children...incident-count.children"
    "...mobile-digest.data..": (COMMAND, lambda app: payload(app, M_LISTS, {"mobile-bump.data": 1, **LANG})),
    "..mobile-message.children...mobile-refresh.data..": (COMMAND, lambda app: tap_payload(
        "acknowledge", "critical", (inc := incident(app, severity=4))["id"], inc["version"])),
    "..briefing-generate-status.children...briefing-list.children...briefing-version.data..": (
        {"officer", "commander", "admin"}, lambda app: payload(
            app, "..briefing-generate-status.children...briefing-list.children...briefing-version.data..",
            {"briefing-generate.n_clicks": 1, **LANG})),
    # the override form on /rosters, as POST /api/rosters/overrides
    "..override-message.children...override-list.children...roster-list.children..": (COMMAND, lambda app: payload(
        app, "..override-message.children...override-list.children...roster-list.children..", {
            "override-submit.n_clicks": 1, "override-person.value": "fire/fire_dep_a", "override-role.value": "officer",
            "override-hours.value": 2, "override-reason.value": "顶班", **LANG})),
    "..briefing-list.children...briefing-version.data..": (VIEW, lambda app: payload(
        app, "..briefing-list.children...briefing-version.data..", {"briefing-refresh.n_intervals": 1, **LANG})),
}
DISTRICT_REFRESH = next(k for k in CALLBACKS if k.startswith("..district-kpi-"))
DISPATCH_DETAIL = next(k for k in CALLBACKS if k.startswith("..dispatch-detail.children"))
DISPATCH_DIALOG = next(k for k in CALLBACKS if k.startswith("..dispatch-dialog.hidden"))
M_LISTS = next(k for k in CALLBACKS if k.startswith("..decision-list."))


def tick_payload(app) -> dict:
    button = {"incident": incident(app)["id"], "step-tick": "fire_attack"}  # a fire step: the liaison is fire's
    return payload(app, "procedure-message.children", {
        '{"incident":["ALL"],"step-tick":["ALL"]}.n_clicks': [(button, 1)], **LANG}, compact(button) + ".n_clicks")


def move_payload(app, task: dict) -> dict:
    button = {"type": "task-action", "task": task["id"], "to": "acknowledged", "version": task["version"]}
    return payload(app, "..task-message.children...dispatch-refresh.data..", {
        '{"task":["ALL"],"to":["ALL"],"type":"task-action","version":["ALL"]}.n_clicks': [(button, 1)],
        "dispatch-refresh.data": 0, **LANG}, compact(button) + ".n_clicks")


def post(client, headers: dict, body: dict):
    return client.post("/_dash-update-component", json=body, headers=headers)


def test_every_server_callback_declares_the_policy_of_the_matrix(mapp):
    from dashboard.web import callback_guard

    declared = callback_guard.policies(mapp)
    names = {re.sub(r"@[0-9a-f]{64}", "", k): k for k in callback_guard.server_callbacks(mapp)}
    assert set(names) == set(CALLBACKS), "the matrix and the app's server callbacks differ"
    assert callback_guard.missing_policies(mapp) == []
    for name, key in names.items():
        policy = declared[key]
        may = EVERYONE if policy.public else {r for r in ROLES if r != "anonymous" and (
            r == "admin" or r in auth._expand(policy.names))}
        assert may == CALLBACKS[name][0], f"{name} changed who may call it"


@pytest.mark.parametrize("name", sorted(CALLBACKS), ids=lambda n: re.sub(r"[^a-z-]+", " ", n)[:60].strip())
def test_callback_by_caller(mapp, name):
    allowed, build = CALLBACKS[name]
    for role in CALLERS:
        client, headers = caller(mapp, role)
        res = post(client, headers, build(mapp))
        if role in allowed:
            assert res.status_code in (200, 204), (role, res.status_code, res.get_data(as_text=True)[:300])
        elif role in ("anonymous", "kiosk"):
            assert res.status_code == 401 and res.get_json()["error"]["code"] == "not_signed_in", role
        else:
            assert res.status_code == 403 and res.get_json()["error"]["code"] == "forbidden", role


def test_the_callbacks_writes_happen_for_the_roles_that_may_and_no_other(mapp):
    """What the allowed callers' requests above did: a dispatch, a task move, a close, a briefing, an ack."""
    from dashboard.storage.models import briefings, incidents, tasks

    done = {}
    for name in (DISPATCH_DIALOG, "..task-message.children...dispatch-refresh.data..",
                 "..dispatch-detail-message.children...dispatch-refresh.data..",
                 "..mobile-message.children...mobile-refresh.data..",
                 "..briefing-generate-status.children...briefing-list.children...briefing-version.data.."):
        allowed, build = CALLBACKS[name]
        for role in CALLERS:
            client, headers = caller(mapp, role)
            res = post(client, headers, build(mapp))
            done[(name, role)] = res.status_code
    engine = mapp.server.extensions["panorama"].engine
    with engine.connect() as conn:
        actors = conn.execute(select(task_events.c.actor, task_events.c.action)).all()
        n_briefings = conn.execute(select(briefings.c.id)).all()
        closed = conn.execute(select(incidents.c.id).where(incidents.c.status == "closed")).all()
        acked = conn.execute(select(tasks.c.id).where(tasks.c.state == "acknowledged", tasks.c.department == "fire",
                                                      tasks.c.version == 2)).all()
    writers = {a for a, action in actors if a.startswith("m-")}
    assert writers == {"m-officer", "m-commander", "m-liaison", "m-admin"}, actors
    assert {a for a, action in actors if action == "cmd_ack"} == {"m-officer", "m-commander", "m-admin"}
    assert len(n_briefings) == 3 and len(closed) == 2  # officer and admin closed one each
    assert len(acked) == 4  # the task moves of officer, commander, liaison (fire), admin


def test_the_hand_over_dialogs_write_for_the_roles_that_may_and_no_other(mapp):
    """/dispatch's hand-up and hand-down go through dispatch.handover as the REST routes do: each allowed caller takes
    one incident up and hands one down (its name on the audit row); a viewer, a liaison, a kiosk or nobody, none."""
    for name in (HANDUP_DIALOG, HANDDOWN_DIALOG):
        _, build = CALLBACKS[name]
        for role in CALLERS:
            client, headers = caller(mapp, role)
            post(client, headers, build(mapp))
    with mapp.server.extensions["panorama"].engine.connect() as conn:
        rows = conn.execute(select(task_events.c.actor, task_events.c.code)
                            .where(task_events.c.action == "handover", task_events.c.actor != "system")).all()
    assert sorted(rows) == sorted((f"m-{r}", code) for r in ("officer", "commander", "admin")
                                  for code in ("taken_up", "handed_down"))


def test_the_alerts_pages_silences_are_written_by_the_roles_that_may_and_no_other(mapp):
    """/alerts' form and "end now" go through POST/DELETE /api/silences' functions: each allowed caller adds one
    (its name as the author) and ends one; a viewer, a liaison, a kiosk or nobody changes nothing."""
    from dashboard.storage.models import alert_silences

    for name in (PAGE_SILENCE_ADD, PAGE_SILENCE_END):
        _, build = CALLBACKS[name]
        for role in CALLERS:
            client, headers = caller(mapp, role)
            post(client, headers, build(mapp))
    with mapp.server.extensions["panorama"].engine.connect() as conn:
        rows = conn.execute(select(alert_silences.c.created_by, alert_silences.c.ended_by)).all()
    assert sorted(c for c, _ in rows if c.startswith("m-")) == ["m-admin", "m-commander", "m-officer"]
    assert sorted(e for _, e in rows if e) == ["m-admin", "m-commander", "m-officer"]


def test_a_liaisons_escalation_notice_names_only_incidents_of_their_department(mapp):
    from dashboard.dispatch.deadlines import DeadlineChecker

    _, [police] = dispatched(mapp, ("police",))
    secret_title = "火情 1"  # dispatched() opens incident 1, held by the police only
    DeadlineChecker(mapp.server.extensions["panorama"]).check_once(at_ms=police_deadline(mapp, police) + 1)
    client, headers = caller(mapp, "liaison")  # of the fire department
    crafted = payload(mapp, "dispatch-escalations.children", {"dispatch-live.data": {"escalations": [
        {"id": police["id"], "incident_id": police["incident_id"], "department": "fire", "overdue": "acknowledge"}]},
        **LANG})
    res = post(client, headers, crafted)
    assert res.status_code in (200, 204) and secret_title not in res.get_data(as_text=True)
    officer, officer_headers = caller(mapp, "officer")  # who may see every incident is told its title
    assert secret_title in post(officer, officer_headers, crafted).get_data(as_text=True)


def police_deadline(app, task: dict) -> int:
    from dashboard.storage.models import tasks

    with app.server.extensions["panorama"].engine.connect() as conn:
        return conn.execute(select(tasks.c.ack_due_ms).where(tasks.c.id == task["id"])).scalar_one()


def test_only_an_officer_records_a_resolution_on_a_departments_behalf_from_the_board(mapp):
    from dashboard.storage.models import tasks

    _, [police] = dispatched(mapp, ("police",))  # the police have nobody on the system
    button = {"type": "task-resolve-for", "task": police["id"], "version": 1}
    body = payload(mapp, "..task-message.children...dispatch-refresh.data..", {
        '{"task":["ALL"],"type":"task-resolve-for","version":["ALL"]}.n_clicks': [(button, 1)],
        "task-note.value": "电话告知", "dispatch-refresh.data": 0, **LANG}, compact(button) + ".n_clicks")
    engine = mapp.server.extensions["panorama"].engine

    def state() -> str:
        with engine.connect() as conn:
            return conn.execute(select(tasks.c.state).where(tasks.c.id == police["id"])).scalar_one()
    for role in ("commander", "liaison"):
        client, headers = caller(mapp, role)
        assert post(client, headers, body).status_code == 200 and state() == "dispatched", role
    client, headers = caller(mapp, "officer")
    assert post(client, headers, body).status_code == 200 and state() == "resolved"


def test_a_liaison_gets_no_incident_of_another_department_from_any_callback(mapp):
    _, [police] = dispatched(mapp, ("police",))
    secret_title = "火情 1"
    client, headers = caller(mapp, "liaison")
    bodies = [payload(mapp, DISPATCH_DETAIL, {"dispatch-selected.data": police["incident_id"],
                                              "dispatch-pulse.data": 1, **LANG}),
              payload(mapp, "..incident-list.children...incident-rest.children...task-board.children...dispatch-shown.data..",
                      {"dispatch-pulse.data": 1, "dispatch-department.data": "police", **LANG},
                      "dispatch-pulse.data"),
              payload(mapp, M_LISTS, {"mobile-bump.data": 1, **LANG})]
    for body in bodies:
        res = post(client, headers, body)
        assert res.status_code in (200, 204, 403) and secret_title not in res.get_data(as_text=True), body["output"]


def test_a_callback_without_a_declared_policy_is_refused(mapp):
    from dash import Input, Output

    from dashboard.web import callback_guard

    @mapp.callback(Output("nobody-declared", "children"), Input("nobody-declared-in", "n_clicks"))
    def undeclared(n):
        return "ran"

    assert callback_guard.missing_policies(mapp) == ["nobody-declared.children"]
    for role in ("admin", "anonymous"):
        client, headers = caller(mapp, role)
        res = post(client, headers, {"output": "nobody-declared.children",
                                     "outputs": {"id": "nobody-declared", "property": "children"},
                                     "inputs": [{"id": "nobody-declared-in", "property": "n_clicks", "value": 1}],
                                     "changedPropIds": ["nobody-declared-in.n_clicks"], "state": []})
        assert res.status_code == 404 and res.get_json()["error"]["code"] == "unknown_callback"


def test_a_district_drill_down_lists_a_liaison_only_their_departments_incidents(mapp):
    dispatched(mapp, ("police",))  # incident 1, in Futian, held by the police only
    # Its title is also its report's, and events are every viewer's (the ticker): look for the incident's row.
    item = '"className":"incident-item"'
    bodies = [payload(mapp, DISTRICT_REFRESH, {"district-refresh.n_intervals": 1, "district-window.value": "1h",
                                               "district-code.data": "440304", **LANG}),
              payload(mapp, ROUTER, {"url.pathname": "/district/futian", "lang.data": "zh",
                                              "url.search": ""})]
    liaison, liaison_headers = caller(mapp, "liaison")  # of the fire department
    officer, officer_headers = caller(mapp, "officer")
    for body in bodies:
        res = post(liaison, liaison_headers, body)
        assert res.status_code == 200 and item not in res.get_data(as_text=True), body["output"]
        assert item in post(officer, officer_headers, body).get_data(as_text=True), body["output"]
