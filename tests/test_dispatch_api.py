"""The dispatch API over HTTP: the closed loop, roles, conflicts, bad input, live publishing, escalation."""

from __future__ import annotations

import re
import threading
import time

import orjson
import pytest
import redis as redis_lib

from tests.helpers import city_clock, make_event, wait_for
from tests.test_api import ingest_now

from dashboard.dispatch.deadlines import DeadlineChecker, start_deadline_checker
from dashboard.web import api_dispatch as dispatch_api
from dashboard.storage import users
from dashboard.core.channels import UPDATES_CHANNEL
from feeds.consumers import StreamConsumer
from feeds.publish import publish
from feeds.pipeline import make_pipeline

PASSWORD = "correct horse battery staple"
MIN = 60_000


def wired(app):
    """Register the dispatch blueprint unless the app factory already did."""
    if "dispatch_api" not in app.server.blueprints:
        dispatch_api.init_app(app.server)
    return app


def make_user(app, name: str, role: str, department: str | None = None) -> None:
    """Create an active user with the shared password."""
    svc = app.server.extensions["panorama"]
    users.create_user(svc.engine, name, PASSWORD, role, department, [d["code"] for d in svc.city.departments])


class Session:
    """A signed-in test client that sends the CSRF token on writes."""

    def __init__(self, app, name: str | None):
        self.client = app.server.test_client()
        self.csrf = ""
        if name:
            r = self.client.post("/api/session", json={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.get_data(as_text=True)
            self.csrf = r.json["csrf_token"]

    def get(self, path, **kw):
        return self.client.get(path, **kw)

    def post(self, path, json=None, **kw):
        return self.client.post(path, json=json, headers={"X-CSRF-Token": self.csrf}, **kw)

    def move(self, task: dict, to: str, note: str | None = None):
        return self.post(f"/api/tasks/{task['id']}/transition", {"to": to, "version": task["version"], "note": note})


@pytest.fixture
def dapp(app):
    """Give the app with the dispatch API and one user of each role."""
    wired(app)
    for name, role, dep in [("olga", "officer", None), ("cmdr", "commander", None), ("vic", "viewer", None),
                            ("fay", "liaison", "fire"), ("pol", "liaison", "police"), ("root", "admin", None)]:
        make_user(app, name, role, dep)
    return app


def open_incident(app, n: int = 1, kind: str = "fire", severity: int = 3, minutes_ago: float = 0.0) -> dict:
    """Store an incident event the way ingest does and return the incident it opened, as the API lists it."""
    ingest_now(app, {"incident": [make_event(n, kind=kind, severity=severity, lat=22.54, lon=114.05 + n * 0.01,
                                             title=f"火情 {n}", ts=int(time.time() * 1000 - minutes_ago * MIN))]})
    incs = Session(app, "vic").get("/api/incidents").json["incidents"]
    return next(i for i in incs if i["title"] == f"火情 {n}")


def test_the_closed_loop_from_event_to_closed_incident_is_published_live(dapp, redis_client, redis_url):
    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(UPDATES_CHANNEL)
    # a publisher sends the event to the feed, an ingest worker stores it and opens the incident
    svc = dapp.server.extensions["panorama"]
    publish(redis_client, "incident", make_event(1, kind="fire", severity=3, lat=22.54, lon=114.06, title="火情 1",
                                                 ts=int(time.time() * 1000)), transport="stream")
    with StreamConsumer(make_pipeline(svc), lambda: redis_lib.Redis.from_url(redis_url), consumer="t-dispatch"):
        incs = wait_for(lambda: Session(dapp, "vic").get("/api/incidents").json["incidents"], timeout=20,
                        message="the published event's incident")
    (inc,) = incs
    assert inc["status"] == "open" and set(inc) >= {"id", "kind", "district", "severity", "status", "reports",
                                                    "opened_at", "title"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", inc["opened_at"])
    officer = Session(dapp, "olga")
    doc = officer.get(f"/api/incidents/{inc['id']}").json
    assert doc["suggestion"]["lead"] == "fire" and doc["reports"][0]["title"] == "火情 1"
    r = officer.post(f"/api/incidents/{inc['id']}/dispatch",
                     {"departments": ["fire", "police", "health"], "note": "three units"})
    assert r.status_code == 200, r.json
    assert r.json["incident"]["status"] == "dispatched"
    created = r.json["tasks"]
    assert [t["department"] for t in created] == ["fire", "police", "health"]
    assert set(created[0]) == {"id", "incident_id", "department", "state", "version", "ack_due", "resolve_due",
                               "escalated"}
    liaisons = {"fire": Session(dapp, "fay"), "police": Session(dapp, "pol"), "health": Session(dapp, "cmdr")}
    for task in created:
        for to in ("acknowledged", "on_scene", "resolved"):
            r = liaisons[task["department"]].move(task, to, note=f"{to} by {task['department']}")
            assert r.status_code == 200, r.json
            task = r.json["task"]
            assert task["state"] == to
    assert r.json["incident"]["status"] == "resolved"
    r = officer.post(f"/api/incidents/{inc['id']}/close", {"note": "all clear"})
    assert r.status_code == 200 and r.json["incident"]["status"] == "closed"
    assert {t["state"] for t in r.json["tasks"]} == {"closed"}
    assert officer.get("/api/incidents").json["incidents"] == []
    assert [i["id"] for i in officer.get("/api/incidents?status=closed").json["incidents"]] == [inc["id"]]
    history = officer.get(f"/api/incidents/{inc['id']}").json["history"]
    assert [h["to"] for h in history if h["task_id"] is None] == ["dispatched", "in_progress", "resolved", "closed"]
    assert {h["actor"] for h in history} >= {"olga", "fay", "pol", "cmdr"}
    assert len(officer.get("/api/tasks?department=police&status=closed").json["tasks"]) == 1

    published = []

    def closed_seen():
        while (m := listener.get_message(timeout=0.05)) is not None:
            published.append(orjson.loads(m["data"]))
        return any(i["status"] == "closed" for msg in published for i in msg.get("incidents", ()))

    wait_for(closed_seen, message="the closing published on panorama:updates")
    mine = [m for m in published if "tasks" in m]
    assert all(m["type"] == "delta" and m["events"] == [] for m in mine)
    # 1 dispatch + 9 moves + 1 close
    assert len(mine) == 11 and len(mine[0]["tasks"]) == 3 and mine[0]["incidents"][0]["status"] == "dispatched"
    # one opened_at format everywhere: the ingest delta that opened the incident and every dispatch delta
    assert {i["opened_at"] for m in published for i in m.get("incidents", ())} == {inc["opened_at"]}
    listener.close()


def test_incidents_are_listed_most_severe_first_then_oldest(dapp):
    a = open_incident(dapp, 1, severity=3, minutes_ago=5)
    b = open_incident(dapp, 2, kind="building_collapse", severity=4, minutes_ago=1)
    c = open_incident(dapp, 3, kind="gas_leak", severity=3, minutes_ago=9)
    ids = [i["id"] for i in Session(dapp, "vic").get("/api/incidents").json["incidents"]]
    assert ids == [b["id"], c["id"], a["id"]]
    r = Session(dapp, "vic").get("/api/incidents?status=nonsense")
    assert r.status_code == 400 and r.json["error"]["code"] == "bad_status"


def test_two_concurrent_transitions_give_one_success_and_one_conflict(dapp):
    inc = open_incident(dapp)
    (task,) = Session(dapp, "olga").post(f"/api/incidents/{inc['id']}/dispatch", {"departments": ["fire"]}).json["tasks"]
    sessions = [Session(dapp, "fay"), Session(dapp, "cmdr")]
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def race(s):
        barrier.wait()
        codes.append(s.move(task, "acknowledged").status_code)

    threads = [threading.Thread(target=race, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(codes) == [200, 409]
    stale = sessions[0].move(task, "acknowledged")
    assert stale.status_code == 409 and stale.json["error"]["code"] == "version_conflict"


def test_forbidden_transition_is_422_and_bad_bodies_are_400(dapp):
    inc = open_incident(dapp)
    (task,) = Session(dapp, "olga").post(f"/api/incidents/{inc['id']}/dispatch", {"departments": ["fire"]}).json["tasks"]
    fay = Session(dapp, "fay")
    r = fay.move(task, "resolved")
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_transition"
    for body in [{"to": "acknowledged", "version": "1"}, {"to": "acknowledged"}, {"version": 1},
                 {"to": 3, "version": 1}, {"to": "acknowledged", "version": 1, "extra": True}, [1, 2]]:
        r = fay.post(f"/api/tasks/{task['id']}/transition", body)
        assert r.status_code == 400 and r.json["error"]["code"] == "bad_request", body
    r = fay.post(f"/api/tasks/{task['id']}/transition", data=b"{not json", content_type="application/json")
    assert r.status_code == 400
    r = fay.move(task, "teleported")
    assert r.status_code == 400 and "unknown task state" in r.json["error"]["message"]
    assert fay.move({**task, "id": 999_999}, "acknowledged").status_code == 404
    officer = Session(dapp, "olga")
    r = officer.post(f"/api/incidents/{inc['id']}/dispatch", {"departments": "fire"})
    assert r.status_code == 400
    r = officer.post(f"/api/incidents/{inc['id']}/dispatch", {"departments": ["fyre"]})
    assert r.status_code == 400 and "fyre" in r.json["error"]["message"]
    r = officer.post(f"/api/incidents/{inc['id']}/close")
    assert r.status_code == 422  # not resolved yet
    assert officer.post("/api/incidents/999999/dispatch", {}).status_code == 404


def test_a_rejection_reopens_routing_and_a_dispatch_without_departments_follows_the_rules(dapp):
    inc = open_incident(dapp)
    officer, fay = Session(dapp, "olga"), Session(dapp, "fay")
    (task,) = officer.post(f"/api/incidents/{inc['id']}/dispatch", {"departments": ["fire"]}).json["tasks"]
    assert fay.move(task, "rejected").status_code == 400  # a rejection needs its reason
    r = fay.move(task, "rejected", note="not a fire: steam from a vent")
    assert r.status_code == 200 and r.json["incident"]["status"] == "open"
    doc = officer.get(f"/api/incidents/{inc['id']}").json
    assert doc["incident"]["status"] == "open" and doc["suggestion"]["departments"][0] == "fire"
    assert any(h["to"] == "rejected" and h["note"] == "not a fire: steam from a vent" for h in doc["history"])
    r = officer.post(f"/api/incidents/{inc['id']}/dispatch")  # no body: the rules' suggestion
    assert r.status_code == 200, r.json
    assert r.json["incident"]["status"] == "dispatched"
    assert [t["department"] for t in r.json["tasks"]] == doc["suggestion"]["departments"]


def test_roles_anonymous_401_viewer_403_other_department_403(dapp):
    inc = open_incident(dapp)
    (task,) = Session(dapp, "olga").post(f"/api/incidents/{inc['id']}/dispatch", {"departments": ["fire"]}).json["tasks"]
    anon = Session(dapp, None)
    for r in (anon.get("/api/incidents"), anon.get(f"/api/incidents/{inc['id']}"), anon.get("/api/tasks"),
              anon.post(f"/api/incidents/{inc['id']}/dispatch", {}), anon.move(task, "acknowledged")):
        assert r.status_code == 401 and "error" in r.json
    viewer = Session(dapp, "vic")
    assert viewer.get("/api/tasks").status_code == 200
    assert viewer.post(f"/api/incidents/{inc['id']}/dispatch", {"departments": ["police"]}).status_code == 403
    assert viewer.move(task, "acknowledged").status_code == 403
    pol = Session(dapp, "pol")  # the police liaison, on a fire task
    r = pol.move(task, "acknowledged")
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert pol.post(f"/api/incidents/{inc['id']}/dispatch", {"departments": ["police"]}).status_code == 403
    no_csrf = Session(dapp, "fay")
    no_csrf.csrf = "forged"
    assert no_csrf.move(task, "acknowledged").status_code == 403
    assert Session(dapp, "root").move(task, "acknowledged").status_code == 200  # admin passes every role


def test_a_liaison_lists_only_their_own_departments_tasks_and_incidents(dapp):
    a = open_incident(dapp, 1)
    b = open_incident(dapp, 2, kind="gas_leak")
    c = open_incident(dapp, 3, kind="medical")  # not dispatched: no department holds it yet
    officer = Session(dapp, "olga")
    assert officer.post(f"/api/incidents/{a['id']}/dispatch", {"departments": ["fire", "police"]}).status_code == 200
    assert officer.post(f"/api/incidents/{b['id']}/dispatch", {"departments": ["police"]}).status_code == 200
    fay, pol = Session(dapp, "fay"), Session(dapp, "pol")
    mine = fay.get("/api/tasks").json["tasks"]
    assert [(t["department"], t["incident_id"]) for t in mine] == [("fire", a["id"])]
    assert fay.get("/api/tasks?department=fire").json["tasks"] == mine
    r = fay.get("/api/tasks?department=police")  # another department's: refused, not quietly narrowed
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert [i["id"] for i in fay.get("/api/incidents").json["incidents"]] == [a["id"]]
    assert fay.get(f"/api/incidents/{a['id']}").status_code == 200
    assert fay.get(f"/api/incidents/{b['id']}").status_code == 403
    assert fay.get(f"/api/incidents/{c['id']}").status_code == 403
    assert {i["id"] for i in pol.get("/api/incidents").json["incidents"]} == {a["id"], b["id"]}
    assert {t["department"] for t in pol.get("/api/tasks").json["tasks"]} == {"police"}
    # everyone else still sees every department
    assert {i["id"] for i in officer.get("/api/incidents").json["incidents"]} == {a["id"], b["id"], c["id"]}
    assert len(Session(dapp, "vic").get("/api/tasks").json["tasks"]) == 3
    assert len(officer.get("/api/tasks?department=police").json["tasks"]) == 2


def test_the_deadline_checker_escalates_once_and_publishes_for_the_commanders(dapp, redis_client, caplog):
    inc = open_incident(dapp)
    (task,) = Session(dapp, "olga").post(f"/api/incidents/{inc['id']}/dispatch", {"departments": ["fire"]}).json["tasks"]
    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(UPDATES_CHANNEL)
    svc = dapp.server.extensions["panorama"]
    checkers = [DeadlineChecker(svc), DeadlineChecker(svc)]
    later = int(time.time() * 1000) + 4 * MIN  # the fire rule's acknowledge deadline is 3 minutes
    assert checkers[0].check_once(later + 1) and checkers[1].check_once(later + 2) == []
    assert "SLA breach" in caplog.text
    msg = wait_for(lambda: listener.get_message(timeout=0.05), message="the escalation published")
    doc = orjson.loads(msg["data"])
    assert doc["escalations"][0]["id"] == task["id"] and doc["escalations"][0]["overdue"] == "acknowledge"
    assert doc["tasks"][0]["escalated"] is True
    assert Session(dapp, "vic").get("/api/tasks?department=fire").json["tasks"][0]["escalated"] is True
    listener.close()


def test_the_deadline_checker_thread_runs_until_stopped(dapp):
    stop = threading.Event()
    checker = start_deadline_checker(dapp.server.extensions["panorama"], stop, every_s=0.05)
    wait_for(lambda: checker._thread.is_alive(), message="the checker running")
    stop.set()
    checker._thread.join(5)
    assert not checker._thread.is_alive()


@pytest.mark.parametrize("hhmm, rule, departments", [
    ("10:00", "fire", ["fire", "emergency", "police", "health"]),
    ("21:59", "fire", ["fire", "emergency", "police", "health"]),
    ("22:00", "fire_night", ["fire", "emergency", "police", "health", "district_440304"]),
    ("03:00", "fire_night", ["fire", "emergency", "police", "health", "district_440304"]),
    ("05:59", "fire_night", ["fire", "emergency", "police", "health", "district_440304"]),
])
def test_the_rules_suggest_by_the_citys_time_of_day_when_the_api_dispatches(make_app, redis_client, hhmm, rule,
                                                                            departments):
    app = make_app(PANORAMA_CLOCK=city_clock(hhmm))
    for name, role in [("olga", "officer"), ("vic", "viewer")]:
        make_user(app, name, role)
    svc = app.server.extensions["panorama"]
    ingest_now(app, {"incident": [make_event(1, kind="fire", severity=3, lat=22.54, lon=114.05, title="火情 1",
                                             ts=svc.clock())]})
    [inc] = Session(app, "vic").get("/api/incidents").json["incidents"]
    officer = Session(app, "olga")
    doc = officer.get(f"/api/incidents/{inc['id']}").json
    assert doc["suggestion"]["rule"] == rule and doc["suggestion"]["departments"] == departments, doc["suggestion"]
    r = officer.post(f"/api/incidents/{inc['id']}/dispatch")  # no body: the rules' suggestion, at the app's time
    assert [t["department"] for t in r.json["tasks"]] == departments


def test_redispatch_over_rest_restarts_a_late_task_and_refuses_stale_early_and_bad_requests(dapp):
    from dashboard.dispatch import board as d
    from dashboard.dispatch import desk

    svc = dapp.server.extensions["panorama"]
    inc = open_incident(dapp)
    sent = int(time.time() * 1000) - 10 * MIN  # ten minutes ago: past the 3-minute acknowledge deadline
    fire, police = desk.write(svc, d.dispatch, inc["id"], ["fire", "police"], "olga", None, sent, svc.city.rules,
                              svc.city).tasks
    cmdr = Session(dapp, "cmdr")
    for body in [{}, {"version": "1"}, {"version": 1, "extra": 1}, {"version": 1, "note": 3}, [1]]:
        r = cmdr.post(f"/api/tasks/{fire['id']}/redispatch", body)
        assert r.status_code == 400 and r.json["error"]["code"] == "bad_request", body
    assert cmdr.post("/api/tasks/999999/redispatch", {"version": 1}).status_code == 404
    r = cmdr.post(f"/api/tasks/{fire['id']}/redispatch", {"version": 1, "note": "值班室未接电话"})
    assert r.status_code == 200, r.get_data(as_text=True)
    [task] = r.json["tasks"]
    assert task["state"] == "dispatched" and task["version"] == 2
    with svc.engine.connect() as conn:
        row = next(t for t in d.list_tasks(conn, incident_id=inc["id"]) if t["id"] == fire["id"])
        audit = [(h["actor"], h["action"]) for h in d.history(conn, inc["id"]) if h["task_id"] == fire["id"]]
    assert row["ack_due_ms"] > time.time() * 1000 and ("cmdr", "redispatch") in audit
    # the same version again is stale; the task just sent again is not late: nothing to send
    assert cmdr.post(f"/api/tasks/{fire['id']}/redispatch", {"version": 1}).status_code == 409
    r = cmdr.post(f"/api/tasks/{fire['id']}/redispatch", {"version": 2})
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_transition"
    # on scene: the department is there, re-dispatching it would be wrong
    pol = Session(dapp, "pol")
    moved = pol.move(police, "acknowledged").json["task"]
    on_scene = pol.move(moved, "on_scene").json["task"]
    r = cmdr.post(f"/api/tasks/{police['id']}/redispatch", {"version": on_scene["version"]})
    assert r.status_code == 422
    assert Session(dapp, "fay").post(f"/api/tasks/{police['id']}/redispatch", {"version": 3}).status_code == 403
