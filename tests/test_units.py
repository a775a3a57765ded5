"""Response units (SPEC section 11): the feed through the shipped ingest worker into the API, dead letters with
reasons, assignment and the units following their task, scopes."""

from __future__ import annotations

import os
import sys
import uuid

import orjson
import pytest
from sqlalchemy import select, update

from dashboard.core.channels import deadletter_key, reject_counts_key, units_feed
from dashboard.dispatch import board as d
from dashboard.dispatch import desk
from dashboard.storage.models import task_events, unit_track, units
from feeds.pipeline import Batch, make_pipeline, now_ms
from tests.helpers import wait_for
from tests.test_access_matrix import dispatched, open_incident, session


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL", "PANORAMA_"))}
    env.update(extra, PYTHONUNBUFFERED="1")
    return env


def report(unit: str, **fields) -> dict:
    return {"unit": unit, "ts": now_ms(), "lat": 22.54, "lon": 114.05, **fields}


def feed_units(app, reports) -> Batch:
    """Put unit reports through the app's own pipeline (what an ingest worker does); return the batch."""
    svc = app.server.extensions["panorama"]
    pipeline = make_pipeline(svc)
    batch = Batch()
    pipeline.add(batch, units_feed(), "units", orjson.dumps(reports), 0)
    pipeline.flush(batch, svc.redis)
    return batch


@pytest.mark.timeout(180)
def test_reports_published_on_the_feed_reach_the_api_through_the_ingest_worker(make_app, pg_url, redis_url,
                                                                              redis_client, procs):
    app = make_app()  # migrated, the pack's fleet seeded
    prefix = f"t{uuid.uuid4().hex[:8]}"  # pub/sub channels are every Redis db's: this test's own
    procs.start("w", [sys.executable, "-m", "feeds.ingest"], _env(REDIS_URL=redis_url, DATABASE_URL=pg_url,
                                                                  PANORAMA_FEED_PREFIX=prefix))
    wait_for(lambda: redis_client.pubsub_numsub(units_feed(prefix))[0][1] >= 1, timeout=60,
             message="worker subscribed")
    t = now_ms()
    redis_client.publish(units_feed(prefix), orjson.dumps([report("fe-futian-01", ts=t, lat=22.531, lon=114.051,
                                                            status="available"),
                                                     report("new-drone-1", ts=t, department="emergency",
                                                            kind="drone")]))
    redis_client.xadd(units_feed(prefix), {"data": orjson.dumps(report("am-nanshan-01", ts=t, lat=22.52, lon=113.93,
                                                                 status="off_duty"))})
    client, _ = session(app, "viewer")

    def listed():
        got = {u["unit"]: u for u in client.get("/api/units").get_json()}
        return got if all(got[u]["updated_at"] for u in ("fe-futian-01", "new-drone-1", "am-nanshan-01")) else None
    got = wait_for(listed, timeout=30, message="the three reports stored")
    assert got["fe-futian-01"] == {"unit": "fe-futian-01", "department": "fire", "kind": "fire_engine",
                                   "status": "available", "lat": 22.531, "lon": 114.051,
                                   "updated_at": got["fe-futian-01"]["updated_at"], "task_id": None,
                                   "district": "440304"}  # its home district (units.yaml, SPEC section 13)
    assert got["new-drone-1"]["department"] == "emergency" and got["new-drone-1"]["kind"] == "drone"
    assert got["am-nanshan-01"]["status"] == "off_duty"
    assert [u["unit"] for u in client.get("/api/units?department=health&status=off_duty").get_json()] == \
        ["am-nanshan-01"]
    assert client.get("/api/units?status=parked").status_code == 400
    assert procs.dead() == []


def test_bad_unit_messages_are_dead_lettered_with_their_reasons(app, redis_client):
    t = now_ms()
    batch = feed_units(app, [report("pc-futian-01", department="fire"),  # a police car
                             report("ghost-1"),  # not in the fleet, no department to add it with
                             report("ghost-2", department="navy"),
                             report("pc-futian-02", lat=91),
                             report("pc-futian-03", status="parked"),
                             report("bad id!"),
                             report("pc-futian-04", ts=t + 3_600_000),
                             report("pc-futian-05", department="police", status="en_route")])
    letters = [orjson.loads(x) for x in redis_client.lrange(deadletter_key(), 0, -1)]
    reasons = sorted(x["reason"] for x in letters)
    assert reasons == sorted(["department_mismatch", "unknown_unit", "unknown_department", "invalid_field",
                              "invalid_field", "invalid_field", "future_ts"]), letters
    assert all(x["channel"] == "feeds:units" for x in letters)
    mismatch = next(x for x in letters if x["reason"] == "department_mismatch")
    assert "pc-futian-01" in mismatch["payload"] and "police" in mismatch["message"]
    counts = {k.decode(): int(v) for k, v in redis_client.hgetall(reject_counts_key()).items()}
    assert counts["units|department_mismatch"] == 1 and counts["units|invalid_field"] == 3
    assert len(batch.units) == 4  # the schema passed these; the fleet refused three of them
    metrics = app.server.test_client().get("/metrics").get_data(as_text=True)
    assert 'panorama_events_rejected_total{domain="units",reason="department_mismatch"} 1.0' in metrics
    with app.server.extensions["panorama"].engine.connect() as conn:
        stored = conn.execute(select(units.c.status).where(units.c.unit == "pc-futian-05")).scalar_one()
        refused = conn.execute(select(units.c.updated_ms).where(units.c.unit == "pc-futian-01")).scalar_one()
    assert stored == "en_route" and refused is None


def test_latest_state_is_upserted_and_the_track_is_decimated(app):
    t = now_ms() - 120_000
    for i in range(12):  # every 5 s for a minute: one row, and a track point every 30 s
        feed_units(app, [report("pc-luohu-01", ts=t + i * 5000, lat=22.55 + i * 0.001)])
    feed_units(app, [report("pc-luohu-01", ts=t + 6000, lat=1.0)])  # late: changes nothing
    feed_units(app, [report("pc-luohu-01", ts=t + 56_000, status="off_duty")])  # a status change: a point
    with app.server.extensions["panorama"].engine.connect() as conn:
        row = conn.execute(select(units).where(units.c.unit == "pc-luohu-01")).mappings().one()
        track = conn.execute(select(unit_track.c.ts_ms, unit_track.c.status)
                             .where(unit_track.c.unit == "pc-luohu-01").order_by(unit_track.c.ts_ms)).all()
        n = conn.execute(select(units.c.unit).where(units.c.unit == "pc-luohu-01")).all()
    assert len(n) == 1 and row["status"] == "off_duty" and row["lat"] == 22.54  # the newest report's
    assert track == [(t, "available"), (t + 30_000, "available"), (t + 56_000, "off_duty")]


def _units(app, *ids):
    with app.server.extensions["panorama"].engine.connect() as conn:
        return {r["unit"]: dict(r) for r in conn.execute(select(units).where(units.c.unit.in_(ids))).mappings()}


def test_assigned_units_go_en_route_on_scene_and_back_with_their_task(app, redis_client):
    svc = app.server.extensions["panorama"]
    inc, [task] = dispatched(app, ("fire",))
    with svc.engine.begin() as conn:
        conn.execute(update(units).where(units.c.unit == "fe-futian-03").values(status="off_duty"))
    officer, csrf = session(app, "officer")
    h = {"X-CSRF-Token": csrf}
    path = f"/api/tasks/{task['id']}/units"
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("panorama:updates")
    wait_for(lambda: redis_client.pubsub_numsub("panorama:updates")[0][1] >= 1)
    res = officer.post(path, json={"units": ["fe-futian-01", "lt-futian-01"]}, headers=h)
    assert res.status_code == 200, res.get_json()
    assert {u["unit"]: (u["status"], u["task_id"]) for u in res.get_json()["units"]} == \
        {"fe-futian-01": ("en_route", task["id"]), "lt-futian-01": ("en_route", task["id"])}
    delta = wait_for(lambda: (m := sub.get_message(timeout=0.1)) and "units" in (got := orjson.loads(m["data"]))
                     and got, timeout=5, message="the assignment published")
    assert sorted(u["unit"] for u in delta["units"]) == ["fe-futian-01", "lt-futian-01"]
    assert delta["units"][0]["target"] is not None  # where the simulator drives it
    for units_, code, key in ((["pc-futian-01"], 422, "unit_other_department"), (["fe-futian-03"], 422, None),
                              (["nope"], 422, None), ([], 400, None)):
        res = officer.post(path, json={"units": units_}, headers=h)
        assert res.status_code == code, (units_, res.get_json())
    police_liaison, pcsrf = session(app, "viewer")
    assert police_liaison.post(path, json={"units": ["fe-futian-02"]}, headers={"X-CSRF-Token": pcsrf}).status_code \
        == 403
    with svc.engine.begin() as conn:
        task = d.transition(conn, task["id"], "acknowledged", 1, "x", None, now_ms()).task
        task = d.transition(conn, task["id"], "on_scene", task["version"], "x", None, now_ms()).task
    assert {u["status"] for u in _units(app, "fe-futian-01", "lt-futian-01").values()} == {"on_scene"}
    with svc.engine.begin() as conn:
        change = d.transition(conn, task["id"], "resolved", task["version"], "x", None, now_ms())
    assert sorted(u["unit"] for u in change.units) == ["fe-futian-01", "lt-futian-01"]
    assert {(u["status"], u["task_id"]) for u in _units(app, "fe-futian-01", "lt-futian-01").values()} == \
        {("available", None)}
    with svc.engine.connect() as conn:
        trail = conn.execute(select(task_events.c.code, task_events.c.from_state, task_events.c.to_state,
                                    task_events.c.params).where(task_events.c.action == "unit")
                             .order_by(task_events.c.id)).all()
    assert [(c, f, t, p["unit"]) for c, f, t, p in trail] == [
        ("unit_assigned", "available", "en_route", "fe-futian-01"),
        ("unit_assigned", "available", "en_route", "lt-futian-01"),
        ("unit_on_scene", "en_route", "on_scene", "fe-futian-01"),
        ("unit_on_scene", "en_route", "on_scene", "lt-futian-01"),
        ("unit_released", "on_scene", "available", "fe-futian-01"),
        ("unit_released", "on_scene", "available", "lt-futian-01")]
    # a resolved task takes no more units
    assert officer.post(path, json={"units": ["fe-futian-02"]}, headers=h).status_code == 422


def test_a_unit_on_another_live_task_is_a_conflict_and_a_rejection_frees_it(app):
    svc = app.server.extensions["panorama"]
    one, two = (desk.write(svc, d.dispatch, open_incident(app, n)["id"], ["fire"], "olga", None, now_ms(),
                           svc.city.rules, svc.city).tasks[0] for n in (1, 2))
    officer, csrf = session(app, "commander")
    h = {"X-CSRF-Token": csrf}
    assert officer.post(f"/api/tasks/{one['id']}/units", json={"units": ["fe-luohu-01"]}, headers=h).status_code == 200
    res = officer.post(f"/api/tasks/{two['id']}/units", json={"units": ["fe-luohu-01"]}, headers=h)
    assert res.status_code == 409
    with svc.engine.begin() as conn:
        d.transition(conn, one["id"], "rejected", 1, "x", "not ours", now_ms())
    assert _units(app, "fe-luohu-01")["fe-luohu-01"]["status"] == "available"
    assert officer.post(f"/api/tasks/{two['id']}/units", json={"units": ["fe-luohu-01"]}, headers=h).status_code == 200


def test_a_liaison_reads_and_sends_only_their_departments_units(app):
    _, [fire, police] = dispatched(app, ("fire", "police"))
    liaison, csrf = session(app, "liaison")  # of the fire department
    listed = liaison.get("/api/units").get_json()
    assert listed and {u["department"] for u in listed} == {"fire"}
    assert liaison.get("/api/units?department=police").status_code == 403
    h = {"X-CSRF-Token": csrf}
    assert liaison.post(f"/api/tasks/{police['id']}/units", json={"units": ["pc-futian-01"]}, headers=h).status_code \
        == 403
    assert liaison.post(f"/api/tasks/{fire['id']}/units", json={"units": ["fe-futian-01"]}, headers=h).status_code \
        == 200


def test_an_admin_adds_and_edits_a_unit(app):
    admin, csrf = session(app, "admin")
    h = {"X-CSRF-Token": csrf}
    res = admin.post("/api/units", json={"unit": "boat-1", "department": "water", "kind": "boat", "name": "冲锋舟1号"},
                     headers=h)
    assert res.status_code == 200 and res.get_json()["status"] == "available"
    res = admin.post("/api/units", json={"unit": "boat-1", "department": "emergency", "kind": "boat"}, headers=h)
    assert res.get_json()["department"] == "emergency"
    assert admin.post("/api/units", json={"unit": "boat-2", "department": "navy", "kind": "boat"},
                      headers=h).status_code == 400
    assert admin.post("/api/units", json={"unit": "x y", "department": "water", "kind": "boat"},
                      headers=h).status_code == 400
