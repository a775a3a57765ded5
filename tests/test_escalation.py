"""Escalation never hides work: escalating an undispatched, a dispatched and an overdue incident over the API."""

from __future__ import annotations

import pytest

from dashboard.dispatch import board as d
from dashboard.dispatch import commander, desk
from dashboard.dispatch.deadlines import DeadlineChecker
from tests.helpers import TEST_PASSWORD, city_clock, make_event, make_user
from tests.test_api import ingest_now

MIN = 60_000


@pytest.fixture
def eapp(make_app, redis_client):
    """Give an app at 10:00 in the city (the daytime fire rule: fire leads, emergency, police, health assist)."""
    app = make_app(PANORAMA_CLOCK=city_clock("10:00"))
    for name, role, dep in (("olga", "officer", None), ("cmdr", "commander", None)):
        make_user(app, name, role, dep)
    return app


def svc_of(app):
    return app.server.extensions["panorama"]


class Session:
    """A signed-in test client that sends the CSRF token on writes."""

    def __init__(self, app, name: str):
        self.client = app.server.test_client()
        r = self.client.post("/api/session", json={"username": name, "password": TEST_PASSWORD})
        assert r.status_code == 200, r.get_data(as_text=True)
        self.csrf = r.json["csrf_token"]

    def get(self, path):
        res = self.client.get(path)
        assert res.status_code == 200, res.get_data(as_text=True)
        return res.json

    def post(self, path, json=None):
        return self.client.post(path, json=json, headers={"X-CSRF-Token": self.csrf})


def open_incident(app, n: int, severity: int = 4, minutes_ago: int = 0) -> dict:
    """Open a fire incident the way ingest does; return it as GET /api/incidents lists it."""
    now = svc_of(app).clock()
    ingest_now(app, {"incident": [make_event(n, kind="fire", severity=severity, ts=now - minutes_ago * MIN,
                                             lat=22.54, lon=114.0 + n * 0.02, title=f"火情 {n}")]})
    incs = Session(app, "olga").get("/api/incidents")["incidents"]
    return next(i for i in incs if i["title"] == f"火情 {n}")


def escalations_of(doc: dict, task_id=None) -> list[dict]:
    return [h for h in doc["history"] if h["action"] == "escalate" and h["task_id"] == task_id]


def test_escalating_an_undispatched_incident_keeps_it_awaiting_the_suggested_dispatch(eapp):
    older = open_incident(eapp, 1, minutes_ago=5)  # the queue's first by age, until the other is escalated
    inc = open_incident(eapp, 2)
    cmdr, olga = Session(eapp, "cmdr"), Session(eapp, "olga")
    res = cmdr.post(f"/api/incidents/{inc['id']}/escalate")
    assert res.status_code == 200, res.get_data(as_text=True)
    # still awaiting dispatch: emergency management coordinates, nobody was dispatched instead of police
    assert res.json["incident"]["status"] == "open" and res.json["incident"]["escalated"] is True
    assert [(t["department"], t["coordination"]) for t in res.json["tasks"]] == [("emergency", True)]
    queue = olga.get("/api/incidents")["incidents"]
    assert [(i["id"], i["status"], i["escalated"]) for i in queue] == [(inc["id"], "open", True),
                                                                        (older["id"], "open", False)]
    doc = olga.get(f"/api/incidents/{inc['id']}")
    assert {"fire", "police", "health"} <= set(doc["suggestion"]["departments"])
    assert [(h["code"], h["params"]) for h in escalations_of(doc)] == [("incident_escalated", {"dep": "emergency"})]
    # the commander still has the dispatch to approve, and nothing left to escalate
    with svc_of(eapp).engine.connect() as conn:
        [item] = [i for i in commander.decisions(conn, svc_of(eapp).city, svc_of(eapp).clock())
                  if i["incident"]["id"] == inc["id"]]
    assert item["actions"] == ["acknowledge", "approve"]
    assert cmdr.post(f"/api/incidents/{inc['id']}/escalate").status_code == 422  # recorded once
    # the officer dispatches the rules' suggestion: emergency's coordination task becomes its dispatch
    res = olga.post(f"/api/incidents/{inc['id']}/dispatch", {})
    assert res.status_code == 200, res.get_data(as_text=True)
    assert res.json["incident"]["status"] == "dispatched"
    tasks = olga.get(f"/api/incidents/{inc['id']}")["tasks"]
    assert sorted((t["department"], t["coordination"]) for t in tasks) == [
        ("emergency", False), ("fire", False), ("health", False), ("police", False)]


def test_escalating_a_dispatched_incident_adds_emergency_management_and_keeps_its_status(eapp):
    inc = open_incident(eapp, 1, severity=3)
    olga, cmdr = Session(eapp, "olga"), Session(eapp, "cmdr")
    res = olga.post(f"/api/incidents/{inc['id']}/dispatch", {"departments": ["fire", "police"]})
    [fire, police] = res.json["tasks"]
    assert olga.post(f"/api/tasks/{fire['id']}/transition", {"to": "acknowledged", "version": 1}).status_code == 200
    res = cmdr.post(f"/api/incidents/{inc['id']}/escalate")
    assert res.status_code == 200, res.get_data(as_text=True)
    assert res.json["incident"]["status"] == "in_progress" and res.json["incident"]["escalated"] is True
    assert [(t["department"], t["coordination"]) for t in res.json["tasks"]] == [("emergency", True)]
    doc = olga.get(f"/api/incidents/{inc['id']}")
    assert sorted(t["department"] for t in doc["tasks"]) == ["emergency", "fire", "police"]
    assert [t["state"] for t in doc["tasks"] if t["department"] == "police"] == ["dispatched"]
    assert cmdr.post(f"/api/incidents/{inc['id']}/escalate").status_code == 422
    # a viewer may not escalate
    make_user(eapp, "vic", "viewer")
    assert Session(eapp, "vic").post(f"/api/incidents/{inc['id']}/escalate").status_code == 403


def test_escalating_an_overdue_task_records_its_escalation_once(eapp):
    svc = svc_of(eapp)
    olga, cmdr = Session(eapp, "olga"), Session(eapp, "cmdr")
    # one task the checker escalated already, one past its deadline the checker has not seen yet
    first, second = open_incident(eapp, 1, severity=3), open_incident(eapp, 2, severity=3)
    [late] = desk.write(svc, d.dispatch, first["id"], ["fire"], "olga", None, svc.clock() - 10 * MIN,
                        svc.city.rules, svc.city).tasks
    [later] = desk.write(svc, d.dispatch, second["id"], ["police"], "olga", None, svc.clock() - 5 * MIN,
                         svc.city.rules, svc.city).tasks
    assert late["ack_due_ms"] < later["ack_due_ms"] < svc.clock()
    assert [r["id"] for r in DeadlineChecker(svc).check_once(at_ms=late["ack_due_ms"] + 1)] == [late["id"]]
    for inc, task in ((first, late), (second, later)):
        res = cmdr.post(f"/api/incidents/{inc['id']}/escalate", {"task_id": task["id"]})
        assert res.status_code == 200, res.get_data(as_text=True)
        assert res.json["incident"]["status"] == "dispatched" and res.json["incident"]["escalated"] is True
        doc = olga.get(f"/api/incidents/{inc['id']}")
        assert [t["escalated"] for t in doc["tasks"] if t["id"] == task["id"]] == [True]
        assert len(escalations_of(doc, task["id"])) == 1, doc["history"]  # by the checker or the commander
        assert [t["department"] for t in doc["tasks"] if t["coordination"]] == ["emergency"]
    # the checker does not escalate again what the commander escalated
    assert DeadlineChecker(svc).check_once(at_ms=svc.clock()) == []
    assert cmdr.post(f"/api/incidents/{first['id']}/escalate", {"task_id": late["id"]}).status_code == 422
