"""The major-incident mode over HTTP (SPEC section 10): declare, change the level, stand down, list; every change
audited in the incident's trail and published on panorama:updates; bad input refused with the right status."""

from __future__ import annotations

import orjson
import pytest

from dashboard.core import messages
from dashboard.core.channels import UPDATES_CHANNEL
from dashboard.core.i18n import audit_text
from dashboard.dispatch import board as d
from dashboard.dispatch import desk
from feeds.pipeline import now_ms
from tests.helpers import make_event, wait_for
from tests.test_api import ingest_now
from tests.test_dispatch_api import Session, make_user


def open_incident(app, n: int = 1, title: str | None = None, kind: str = "fire") -> dict:
    """Return a new open incident (a fire), reported now at a point in Futian."""
    title = title or f"火情 {n}"
    ingest_now(app, {"incident": [make_event(n, kind=kind, severity=3, ts=now_ms(), lat=22.54, lon=114.05,
                                             title=title)]})
    with app.server.extensions["panorama"].engine.connect() as conn:
        return next(r for r in desk.queue(conn) if r["title"] == title)


@pytest.fixture
def officer(app):
    make_user(app, "olga", "officer")
    return Session(app, "olga")


def trail(app, incident_id: int) -> list[dict]:
    with app.server.extensions["panorama"].engine.connect() as conn:
        return [h for h in d.history(conn, incident_id) if h["action"] == "major"]


def test_declare_change_level_and_stand_down_are_listed_audited_and_published(app, officer, redis_client):
    inc = open_incident(app)
    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(UPDATES_CHANNEL)

    r = officer.post(f"/api/incidents/{inc['id']}/major", {"level": 2, "note": "启动二级响应"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.json["level"] == 2 and r.json["declared_by"] == "olga" and r.json["incident"]["id"] == inc["id"]

    def published(levels):
        def check():
            msg = listener.get_message(timeout=0.05)
            majors = msg and messages.read_delta(msg["data"]).get("majors")
            return majors is not None and [(m["incident"]["id"], m["level"]) for m in majors] == levels
        return check
    wait_for(published([(inc["id"], 2)]), message="a delta with the declaration")

    listed = officer.get("/api/major").json
    assert [(m["incident"]["id"], m["level"], m["declared_by"]) for m in listed] == [(inc["id"], 2, "olga")]
    assert set(listed[0]) == {"incident", "level", "declared_at", "declared_by"}
    declared_at = listed[0]["declared_at"]

    assert officer.post(f"/api/incidents/{inc['id']}/major", {"level": 1}).status_code == 200
    listed = officer.get("/api/major").json
    assert listed[0]["level"] == 1 and listed[0]["declared_at"] == declared_at  # a level change keeps the time

    r = officer.client.delete(f"/api/incidents/{inc['id']}/major", json={"note": "险情解除"},
                              headers={"X-CSRF-Token": officer.csrf})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert officer.get("/api/major").json == []
    wait_for(published([]), message="the stand-down's delta: no major incident left")

    rows = trail(app, inc["id"])
    assert [(h["code"], h["actor"], h["from_state"], h["to_state"]) for h in rows] == [
        ("major_declared", "olga", None, "level_2"), ("major_level", "olga", "level_2", "level_1"),
        ("major_stood_down", "olga", "level_1", "stood_down")]
    assert [h["note"] for h in rows] == ["启动二级响应", None, "险情解除"]
    # the words are translated when shown, never stored as text
    assert audit_text(rows[0]["code"], rows[0]["params"], "zh") == "启动II级应急响应"
    assert audit_text(rows[1]["code"], rows[1]["params"], "en") == "major incident level changed from II to I"
    assert audit_text(rows[2]["code"], rows[2]["params"], "en") == "major incident (level I) stood down"
    # the incident's detail (GET /api/incidents/<id>) carries the same trail
    history = officer.get(f"/api/incidents/{inc['id']}").json["history"]
    assert [h["code"] for h in history if h["action"] == "major"] == ["major_declared", "major_level",
                                                                        "major_stood_down"]


def test_the_same_level_again_changes_nothing_and_a_declaration_after_a_stand_down_is_a_new_one(app, officer):
    inc = open_incident(app)
    path = f"/api/incidents/{inc['id']}/major"
    assert officer.post(path, {"level": 3}).status_code == 200
    assert officer.post(path, {"level": 3}).status_code == 200
    assert [h["code"] for h in trail(app, inc["id"])] == ["major_declared"]
    assert officer.client.delete(path, headers={"X-CSRF-Token": officer.csrf}).status_code == 200
    assert officer.post(path, {"level": 4}).status_code == 200
    assert [(m["incident"]["id"], m["level"]) for m in officer.get("/api/major").json] == [(inc["id"], 4)]
    assert [h["code"] for h in trail(app, inc["id"])] == ["major_declared", "major_stood_down", "major_declared"]


def test_several_at_once_gravest_first(app, officer):
    a, b = open_incident(app, 1, "火情 甲"), open_incident(app, 2, "燃气泄漏 乙", "gas_leak")
    assert officer.post(f"/api/incidents/{a['id']}/major", {"level": 3}).status_code == 200
    assert officer.post(f"/api/incidents/{b['id']}/major", {"level": 1}).status_code == 200
    assert [m["incident"]["title"] for m in officer.get("/api/major").json] == ["燃气泄漏 乙", "火情 甲"]


@pytest.mark.parametrize("body", [{"level": 0}, {"level": 5}, {"level": "1"}, {"level": 1.0}, {}, {"level": None},
                                  {"level": 2, "extra": 1}, {"level": 2, "note": "x" * 2001}])
def test_a_bad_level_is_400(app, officer, body):
    inc = open_incident(app)
    r = officer.post(f"/api/incidents/{inc['id']}/major", body)
    assert r.status_code == 400 and r.json["error"]["code"] == "bad_request"
    assert trail(app, inc["id"]) == []


def test_unknown_incident_is_404_and_a_done_or_undeclared_one_422(app, officer):
    assert officer.post("/api/incidents/999999/major", {"level": 2}).status_code == 404
    assert officer.client.delete("/api/incidents/999999/major",
                                 headers={"X-CSRF-Token": officer.csrf}).status_code == 404
    inc = open_incident(app)
    r = officer.client.delete(f"/api/incidents/{inc['id']}/major", headers={"X-CSRF-Token": officer.csrf})
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_transition"
    svc = app.server.extensions["panorama"]
    task = desk.write(svc, d.dispatch, inc["id"], ["fire"], "olga", None, now_ms(), svc.city.rules, svc.city).task
    with svc.engine.begin() as conn:
        task = d.transition(conn, task["id"], "acknowledged", 1, "x", None, now_ms()).task
        d.transition(conn, task["id"], "resolved", task["version"], "x", None, now_ms())
    r = officer.post(f"/api/incidents/{inc['id']}/major", {"level": 2})
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_transition"
    assert officer.get("/api/major").json == [] and trail(app, inc["id"]) == []


def test_writes_need_the_csrf_header_and_reads_a_viewer(app, officer):
    inc = open_incident(app)
    r = officer.client.post(f"/api/incidents/{inc['id']}/major", json={"level": 2})
    assert r.status_code == 403
    assert app.server.test_client().get("/api/major").status_code == 401
    make_user(app, "vera", "viewer")
    viewer = Session(app, "vera")
    assert viewer.get("/api/major").status_code == 200
    assert viewer.post(f"/api/incidents/{inc['id']}/major", {"level": 2}).status_code == 403
    assert orjson.loads(viewer.get("/api/major").data) == []


def test_the_wall_cycles_the_desk_shows_the_gravest_or_the_pinned_one():
    from callbacks.major import pick_shown
    from layouts.major import WALL_CYCLE_TICKS

    declared = [{"incident_id": 1, "level": 1}, {"incident_id": 2, "level": 3}]
    assert [pick_shown(declared, "wall", None, n)["incident_id"] for n in range(0, 4 * WALL_CYCLE_TICKS,
                                                                               WALL_CYCLE_TICKS)] == [1, 2, 1, 2]
    assert pick_shown(declared, "desk", None, 99)["incident_id"] == 1
    assert pick_shown(declared, "desk", 2, 0)["incident_id"] == 2
    assert pick_shown(declared, "desk", 7, 0)["incident_id"] == 1  # pinned, then stood down: the gravest
    assert pick_shown(declared, "wall", 2, 0)["incident_id"] == 1  # nobody pins the wall


def test_the_command_view_gathers_the_ring_tasks_alerts_and_trail(app, officer):
    from dash import html

    from dashboard.dispatch import command, major
    from layouts.major import command_view

    svc = app.server.extensions["panorama"]
    inc = open_incident(app)
    far = open_incident(app, 9, "远处火情", "gas_leak")  # reported at the same point: inside the ring
    desk.write(svc, d.dispatch, inc["id"], ["fire", "police"], "olga", None, now_ms(), svc.city.rules, svc.city)
    assert officer.post(f"/api/incidents/{inc['id']}/major", {"level": 4}).status_code == 200
    assert officer.post(f"/api/incidents/{far['id']}/major", {"level": 2}).status_code == 200
    with svc.engine.connect() as conn:
        declared = major.active(conn)
        assert [r["incident_id"] for r in declared] == [far["id"], inc["id"]]
        doc = command.command_doc(conn, svc.city, declared[1], now_ms(), "Asia/Shanghai")
    assert doc["radius_m"] == major.RADIUS_M[4] and not doc["place"]["approximate"]
    assert {e["title"] for e in doc["events"]} == {"火情 1", "远处火情"}
    assert [g["department"] for g in doc["departments"]] == ["fire", "police"]
    assert [h["code"] for h in doc["history"] if h["action"] == "major"] == ["major_declared"]
    briefs = [{"level": r["level"], "incident": {"id": r["incident_id"], "title": r["incident"]["title"],
                                                 "kind": r["incident"]["kind"]}} for r in declared]
    view = command_view(doc, briefs, svc.city, "en", "Asia/Shanghai", "desk", now_ms())
    assert view.id == "major-view"

    def texts(node):
        if isinstance(node, str):
            yield node
        for child in (node.children if isinstance(getattr(node, "children", None), list)
                      else [getattr(node, "children", None)] if getattr(node, "children", None) is not None else []):
            yield from texts(child)
    said = " ".join(texts(view))
    assert "Level IV response" in said and "Tasks by department" in said and "major incident declared: level IV" in said
    # several at once: the desk's tabs pin one
    tabs = [c for c in view.children[0].children if isinstance(c, html.Nav)]
    assert len(tabs) == 1 and [b.id for b in tabs[0].children] == [{"major-pin": far["id"]}, {"major-pin": inc["id"]}]


def test_a_liaison_reads_in_the_command_view_only_what_the_api_gives_them(app, officer):
    from types import SimpleNamespace

    from callbacks.major import draw

    svc = app.server.extensions["panorama"]
    inc = open_incident(app)
    desk.write(svc, d.dispatch, inc["id"], ["fire", "police"], "olga", None, now_ms(), svc.city.rules, svc.city)
    assert officer.post(f"/api/incidents/{inc['id']}/major", {"level": 2}).status_code == 200

    def shown(user) -> str:
        view, _ = draw(svc, "desk", None, 0, "en", user)
        return str(view)

    fire = SimpleNamespace(role="liaison", department="fire", active=True, username="fred")
    health = SimpleNamespace(role="liaison", department="health", active=True, username="hana")
    everyone = shown(SimpleNamespace(role="viewer", department=None, active=True, username="vera"))
    assert "Shenzhen Municipal Public Security Bureau" in everyone and "major incident declared" in everyone
    mine = shown(fire)
    assert "Shenzhen Fire and Rescue Detachment" in mine and "Shenzhen Municipal Public Security Bureau" not in mine
    assert "major incident declared" in mine  # fire holds a task: the trail is theirs to read
    other = shown(health)
    assert "Shenzhen Fire and Rescue Detachment" not in other and "major incident declared" not in other
    assert "火情 1" in other  # the title: GET /api/major is every viewer's
