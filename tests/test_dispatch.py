"""Linked dispatch: the task state machine, the closed loop, conflicts, rejection and exactly-once escalation."""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.dispatch import board as d
from dashboard.core.city import load_city
from dashboard.storage.db import make_engine
from dashboard.storage.models import incidents, task_events, tasks
from dashboard.storage.events import EventStore
from dashboard.web.api import domain_status
from feeds.publish import encode
from feeds.schema import parse_message
from tests.helpers import make_event

CITY = load_city("shenzhen")
RULES = CITY.rules
SZ = ZoneInfo("Asia/Shanghai")
DAY = int(datetime(2026, 11, 26, 14, 0, tzinfo=SZ).timestamp() * 1000)
NIGHT = int(datetime(2026, 11, 26, 23, 30, tzinfo=SZ).timestamp() * 1000)
MIN = 60_000


def open_incident(engine, n: int = 1, kind: str = "fire", district: str = "futian", ts: int = DAY) -> int:
    """Store an incident event the way ingest does and return the incident it opened."""
    parsed = parse_message(encode(make_event(n, domain="incident", kind=kind, district=district, severity=3, ts=ts,
                                             lat=22.54, lon=114.05 + n * 0.1)), "incident", CITY.aliases)
    result = EventStore(engine).write(parsed.events, ts)
    (inc,) = result.incidents
    return inc["id"]


def run(engine, fn, *args):
    with engine.begin() as conn:
        return fn(conn, *args)


def step(engine, task: dict, to: str, actor: str = "liaison", note: str | None = None, at: int = DAY + MIN):
    return run(engine, d.transition, task["id"], to, task["version"], actor, note, at)


def audit(engine, **where) -> list[dict]:
    stmt = select(task_events).order_by(task_events.c.id)
    for k, v in where.items():
        stmt = stmt.where(task_events.c[k] == v)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


# --- the pure state machine --------------------------------------------------------------------------

def test_transitions_follow_the_task_life_cycle():
    chain = ["dispatched", "acknowledged", "on_scene", "resolved", "closed"]
    assert all(d.can_transition(a, b) for a, b in zip(chain, chain[1:]))
    assert d.can_transition("dispatched", "rejected") and d.can_transition("acknowledged", "rejected")
    assert d.can_transition("acknowledged", "resolved")  # a department that never goes on scene
    for a, b in [("dispatched", "resolved"), ("dispatched", "on_scene"), ("on_scene", "rejected"),
                 ("resolved", "on_scene"), ("closed", "resolved"), ("rejected", "acknowledged"),
                 ("dispatched", "dispatched"), ("dispatched", "escalated"), ("nowhere", "closed")]:
        assert not d.can_transition(a, b), (a, b)


@pytest.mark.parametrize("states, status", [
    ([], "open"),
    ([("dispatched", False)] * 3, "dispatched"),
    ([("dispatched", False), ("acknowledged", False)], "in_progress"),
    ([("resolved", False), ("dispatched", False)], "in_progress"),
    ([("resolved", False), ("closed", False), ("rejected", True)], "resolved"),
    ([("on_scene", False), ("rejected", False)], "open"),
    ([("on_scene", False), ("rejected", True)], "in_progress"),
    ([("rejected", True)], "open"),
])
def test_incident_status_derives_from_its_tasks(states, status):
    assert d.incident_status(states) == status


# --- the closed loop -----------------------------------------------------------------------------------

def test_full_loop_from_published_incident_to_closure(any_engine):
    engine = any_engine
    inc_id = open_incident(engine)
    incident, created = run(engine, d.dispatch, inc_id, ["police", "fire", "emergency"], "officer", "go", DAY,
                            RULES, CITY)
    assert incident["status"] == "dispatched" and len(created) == 3
    # The officer dropped health from the suggestion; the suggested lead still leads; the rule sets the deadlines.
    assert [(t["department"], t["lead"], t["state"], t["version"]) for t in created] == [
        ("police", False, "dispatched", 1), ("fire", True, "dispatched", 1), ("emergency", False, "dispatched", 1)]
    view = d.task_view(created[1], CITY.timezone)
    assert view == {"id": created[1]["id"], "incident_id": inc_id, "department": "fire", "state": "dispatched",
                    "version": 1, "ack_due": "2026-11-26T14:03:00+08:00", "resolve_due": "2026-11-26T16:00:00+08:00",
                    "escalated": False}
    assert d.incident_view(incident, CITY.timezone) == {
        "id": inc_id, "kind": "fire", "district": "440304", "severity": 3, "status": "dispatched", "reports": 1,
        "opened_at": "2026-11-26T14:00:00+08:00", "title": "测试事件 1"}

    statuses = []
    for i, to in enumerate(["acknowledged", "on_scene", "resolved"]):
        for j, task in enumerate(created):
            change = step(engine, task, to, actor=task["department"], at=DAY + (3 * i + j + 1) * MIN)
            created[j] = change.task
            assert change.task["state"] == to and change.task["version"] == i + 2
            statuses.append(change.incident["status"])
    assert statuses == ["in_progress"] * 8 + ["resolved"]

    incident, closed = run(engine, d.close_incident, inc_id, "officer", "confirmed out", DAY + 20 * MIN)
    assert incident["status"] == "closed" and [t["state"] for t in closed] == ["closed"] * 3
    with engine.connect() as conn:
        assert conn.execute(select(incidents.c.status).where(incidents.c.id == inc_id)).scalar_one() == "closed"

    # Every change is audited: who, when, from, to, note.
    for task in created:
        trail = [(e["from_state"], e["to_state"], e["actor"]) for e in audit(engine, task_id=task["id"])]
        dept = task["department"]
        assert trail == [(None, "dispatched", "officer"), ("dispatched", "acknowledged", dept),
                         ("acknowledged", "on_scene", dept), ("on_scene", "resolved", dept),
                         ("resolved", "closed", "officer")]
    incident_trail = [(e["from_state"], e["to_state"]) for e in audit(engine, incident_id=inc_id)
                      if e["task_id"] is None]
    assert incident_trail == [("open", "dispatched"), ("dispatched", "in_progress"), ("in_progress", "resolved"),
                              ("resolved", "closed")]
    assert count(engine, task_events) == 3 + 9 + 3 + 4
    assert audit(engine, action="close")[0]["note"] == "confirmed out"


def test_dispatch_without_departments_takes_the_rules_suggestion(pg_engine):
    inc_id = open_incident(pg_engine, ts=NIGHT)
    incident, created = run(pg_engine, d.dispatch, inc_id, None, "officer", None, NIGHT, RULES, CITY)
    assert [t["department"] for t in created] == ["fire", "emergency", "police", "health", "district_440304"]
    assert {t["rule"] for t in created} == {"fire_night"} and [t["lead"] for t in created] == [True] + [False] * 4
    assert {t["ack_due_ms"] for t in created} == {NIGHT + 3 * MIN}
    with pytest.raises(d.DispatchError, match="already holds a live task"):
        run(pg_engine, d.dispatch, inc_id, None, "officer", None, NIGHT, RULES, CITY)
    with pytest.raises(d.DispatchError, match="unknown department 'fyre'"):
        run(pg_engine, d.dispatch, inc_id, ["fyre"], "officer", None, NIGHT, RULES, CITY)
    with pytest.raises(d.DispatchError, match="name at least one department"):
        run(pg_engine, d.dispatch, open_incident(pg_engine, n=2), [], "officer", None, NIGHT, RULES, CITY)
    with pytest.raises(d.NotFound):
        run(pg_engine, d.dispatch, 999_999, None, "officer", None, NIGHT, RULES, CITY)


# --- optimistic versioning and forbidden moves -------------------------------------------------------

def test_two_concurrent_transitions_with_one_version_give_one_success_and_one_conflict(pg_engine, pg_url):
    inc_id = open_incident(pg_engine)
    _, created = run(pg_engine, d.dispatch, inc_id, ["fire", "police", "health", "emergency", "water"], "officer",
                     None, DAY, RULES, CITY)
    other = make_engine(pg_url)
    try:
        for task in created:  # one race per task: five rounds
            barrier = threading.Barrier(2)
            outcomes: list = []

            def race(engine, actor, task=task, barrier=barrier, outcomes=outcomes):
                barrier.wait()
                try:
                    outcomes.append(step(engine, task, "acknowledged", actor=actor).task)
                except d.VersionConflict as err:
                    outcomes.append(err)

            threads = [threading.Thread(target=race, args=(e, a)) for e, a in ((pg_engine, "a"), (other, "b"))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            wins = [o for o in outcomes if isinstance(o, dict)]
            assert len(outcomes) == 2 and len(wins) == 1, outcomes
            assert wins[0]["version"] == 2 and isinstance(next(o for o in outcomes if o is not wins[0]),
                                                          d.VersionConflict)
            assert len(audit(pg_engine, task_id=task["id"], action="transition")) == 1
    finally:
        other.dispose()


def test_forbidden_transition_and_stale_version_are_refused_without_change(pg_engine):
    inc_id = open_incident(pg_engine)
    _, (task,) = run(pg_engine, d.dispatch, inc_id, ["fire"], "officer", None, DAY, RULES, CITY)
    with pytest.raises(d.InvalidTransition, match="cannot go from dispatched to resolved") as caught:
        step(pg_engine, task, "resolved")
    assert (domain_status(caught.value), caught.value.code) == (422, "invalid_transition")
    with pytest.raises(d.DispatchError, match="unknown task state"):
        step(pg_engine, task, "escalated")
    acked = step(pg_engine, task, "acknowledged").task
    with pytest.raises(d.VersionConflict) as caught:  # stale version: 409 even though the move is also invalid
        step(pg_engine, task, "acknowledged")
    assert domain_status(caught.value) == 409
    with pytest.raises(d.NotFound):
        run(pg_engine, d.transition, 999_999, "acknowledged", 1, "x", None, DAY)
    with pytest.raises(d.InvalidTransition, match="only a resolved incident can be closed"):
        run(pg_engine, d.close_incident, inc_id, "officer", None, DAY)
    with pg_engine.connect() as conn:
        row = conn.execute(select(tasks).where(tasks.c.id == task["id"])).mappings().one()
    assert (row["state"], row["version"]) == ("acknowledged", acked["version"]) == ("acknowledged", 2)
    assert len(audit(pg_engine, task_id=task["id"])) == 2


# --- rejection and re-routing -----------------------------------------------------------------------

def test_rejection_reopens_routing_and_the_department_can_be_dispatched_again(any_engine):
    engine = any_engine
    inc_id = open_incident(engine)
    _, (fire, police) = run(engine, d.dispatch, inc_id, ["fire", "police"], "officer", None, DAY, RULES, CITY)
    with pytest.raises(d.DispatchError, match="reason"):
        step(engine, police, "rejected", note="  ")
    change = step(engine, police, "rejected", actor="police", note="不属本部门职责：无治安情况")
    assert change.task["state"] == "rejected" and change.task["note"] == "不属本部门职责：无治安情况"
    assert change.incident["status"] == "open"
    # The other department keeps working; the incident stays with the officer until it is re-routed.
    fire = step(engine, fire, "acknowledged", actor="fire").task
    assert run(engine, d.dispatch, inc_id, ["police"], "officer", "请再核实", DAY + 5 * MIN, RULES, CITY) \
        .incident["status"] == "in_progress"
    with engine.connect() as conn:
        rows = conn.execute(select(tasks.c.department, tasks.c.state, tasks.c.rerouted)
                            .where(tasks.c.incident_id == inc_id).order_by(tasks.c.id)).all()
    assert [tuple(r) for r in rows] == [("fire", "acknowledged", False), ("police", "rejected", True),
                                        ("police", "dispatched", False)]
    assert [e["action"] for e in audit(engine, task_id=police["id"])] == ["dispatch", "transition", "reroute"]
    incident_trail = [(e["from_state"], e["to_state"]) for e in audit(engine, incident_id=inc_id)
                      if e["task_id"] is None]
    assert incident_trail == [("open", "dispatched"), ("dispatched", "open"), ("open", "in_progress")]


def test_rejection_answered_without_a_new_department_lets_the_incident_resolve(pg_engine):
    inc_id = open_incident(pg_engine)
    _, (fire, health) = run(pg_engine, d.dispatch, inc_id, ["fire", "health"], "officer", None, DAY, RULES, CITY)
    step(pg_engine, health, "rejected", note="no casualties")
    for to in ("acknowledged", "on_scene", "resolved"):
        change = step(pg_engine, fire, to)
        fire = change.task
    assert change.incident["status"] == "open"  # the rejection is still unanswered
    incident, new = run(pg_engine, d.dispatch, inc_id, [], "officer", "health not needed", DAY, RULES, CITY)
    assert new == [] and incident["status"] == "resolved"
    assert run(pg_engine, d.close_incident, inc_id, "officer", None, DAY).incident["status"] == "closed"
    with pytest.raises(d.InvalidTransition, match="closed: it can no longer be dispatched"):
        run(pg_engine, d.dispatch, inc_id, None, "officer", None, DAY, RULES, CITY)


# --- deadlines ------------------------------------------------------------------------------------------

def test_passed_deadline_escalates_once_even_with_two_replicas_racing(pg_engine, pg_url):
    all_tasks = []
    for n in range(6):
        inc_id = open_incident(pg_engine, n=n, district=("futian", "nanshan", "luohu")[n % 3])
        all_tasks += run(pg_engine, d.dispatch, inc_id, None, "officer", None, DAY, RULES, CITY).tasks
    assert len(all_tasks) == 24
    # One fire crew acknowledged in time: its acknowledge deadline no longer matters, its resolve one does.
    acked = step(pg_engine, all_tasks[0], "acknowledged", at=DAY + MIN).task
    assert run(pg_engine, d.escalate_overdue, DAY + 3 * MIN - 1) == []

    replicas = [pg_engine, make_engine(pg_url)]
    try:
        for now in (DAY + 3 * MIN, DAY + 3 * MIN + 500, DAY + 2 * 3_600_000):
            barrier = threading.Barrier(2)
            results: list[list[dict]] = [[], []]

            def check(i, now=now, barrier=barrier, results=results):
                barrier.wait()
                results[i] = run(replicas[i], d.escalate_overdue, now)

            threads = [threading.Thread(target=check, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            ids = [r["id"] for r in results[0] + results[1]]
            assert len(ids) == len(set(ids)), "a task was escalated twice"
            if now == DAY + 3 * MIN:
                assert sorted(ids) == sorted(t["id"] for t in all_tasks[1:])
                assert {r["overdue"] for r in results[0] + results[1]} == {"acknowledge"}
            elif now == DAY + 3 * MIN + 500:
                assert ids == []
            else:  # two hours later the acknowledged task missed its resolve deadline
                assert ids == [acked["id"]] and (results[0] + results[1])[0]["overdue"] == "resolve"
    finally:
        replicas[1].dispose()

    escalations = audit(pg_engine, action="escalate")
    assert sorted(e["task_id"] for e in escalations) == sorted(t["id"] for t in all_tasks)
    assert {e["actor"] for e in escalations} == {d.SYSTEM_ACTOR}
    with pg_engine.connect() as conn:
        rows = conn.execute(select(tasks.c.escalated, tasks.c.escalated_ms, tasks.c.version)).all()
    assert all(r.escalated for r in rows) and {r.escalated_ms for r in rows} == {DAY + 3 * MIN, DAY + 2 * 3_600_000}
    # The mark is not a state change: a late acknowledgement with the version in hand still goes through.
    late = step(pg_engine, all_tasks[1], "acknowledged", at=DAY + 10 * MIN).task
    assert late["escalated"] and late["state"] == "acknowledged" and d.task_view(late, "Asia/Shanghai")["escalated"] is True


def test_resolved_and_rejected_tasks_are_never_escalated(pg_engine):
    inc_id = open_incident(pg_engine)
    _, (fire, police) = run(pg_engine, d.dispatch, inc_id, ["fire", "police"], "officer", None, DAY, RULES, CITY)
    step(pg_engine, police, "rejected", note="wrong district")
    fire = step(pg_engine, fire, "acknowledged").task
    step(pg_engine, fire, "resolved")
    assert run(pg_engine, d.escalate_overdue, DAY + 86_400_000) == []
    assert audit(pg_engine, action="escalate") == []


def test_the_offices_of_the_incidents_place_are_named_by_placeholders_and_by_the_rules(pg_engine):
    def complaint(n: int, street: str | None) -> int:
        extra = {"street": street} if street else {}
        parsed = parse_message(encode(make_event(n, domain="incident", kind="public_complaint", district="futian",
                                                 severity=2, ts=DAY, lat=22.54, lon=114.0 + n * 0.1, **extra)),
                               "incident", CITY.aliases)
        (inc,) = EventStore(pg_engine).write(parsed.events, DAY).incidents
        return inc["id"]

    on_street, nowhere = complaint(1, "莲花街道"), complaint(2, None)
    # the officer names them: the street office of 莲花街道 and Futian's government
    _, created = run(pg_engine, d.dispatch, on_street, ["street_office", "district_office", "urban_mgmt"], "officer",
                     None, DAY, RULES, CITY)
    assert [t["department"] for t in created] == ["street_440304_lianhua", "district_440304", "urban_mgmt"]
    # the rules name them (public_complaint: the street office leads), here without a street: the district's
    _, created = run(pg_engine, d.dispatch, nowhere, None, "officer", None, DAY, RULES, CITY)
    assert [(t["department"], t["lead"], t["rule"]) for t in created] == [
        ("district_440304", True, "public_complaint"), ("urban_mgmt", False, "public_complaint")]
