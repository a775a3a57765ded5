"""Incident merge and split: reports, tasks and audit follow; ingest's join follows the merge; races; refusals."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from dashboard.core.city import load_city
from dashboard.dispatch import board as d
from dashboard.dispatch import merge as m
from dashboard.dispatch.duty import start_duty
from dashboard.storage import outbox
from dashboard.storage.db import make_engine
from dashboard.storage.events import EventStore
from dashboard.storage.models import incident_reports, incidents, task_events, tasks
from feeds.publish import encode
from feeds.schema import parse_message
from tests.helpers import make_event
from tests.test_dispatch import DAY, MIN

CITY = load_city("shenzhen")
RULES = CITY.rules
# Two places in Futian 10 km apart: reports of one never join the other's incident by themselves.
PLACE_A, PLACE_B = (22.54, 114.02), (22.54, 114.12)


def report(engine, n: int, place=PLACE_A, ts: int = DAY, severity: int = 3, kind: str = "fire") -> list[dict]:
    """Store one incident report the way ingest does; return the incidents it opened or joined."""
    parsed = parse_message(encode(make_event(n, domain="incident", kind=kind, severity=severity, ts=ts,
                                             lat=place[0], lon=place[1], title=f"火情 {n}")), "incident", CITY.aliases)
    return EventStore(engine).write(parsed.events, ts).incidents


def run(engine, fn, *args):
    with engine.begin() as conn:
        return fn(conn, *args)


def row(engine, incident_id: int) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().one())


def links(engine, incident_id: int) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(incident_reports.c.event_seq)
                                .where(incident_reports.c.incident_id == incident_id)).all())


def trail(engine, incident_id: int) -> list[tuple]:
    with engine.connect() as conn:
        return [(r.task_id, r.action, r.code, r.params) for r in conn.execute(
            select(task_events).where(task_events.c.incident_id == incident_id).order_by(task_events.c.id))]


def two_incidents(engine) -> tuple[int, int]:
    """Open incident A (two reports, severities 3 and 4) and, later, B (one report) 10 km away."""
    (a,) = report(engine, 1, PLACE_A, DAY)
    report(engine, 2, PLACE_A, DAY + 2 * MIN, severity=4)
    (b,) = report(engine, 3, PLACE_B, DAY + MIN)
    assert a["id"] != b["id"]
    return a["id"], b["id"]


def test_a_merge_moves_reports_tasks_and_their_audit_and_closes_the_merged_away_incident(any_engine):
    engine = any_engine
    a, b = two_incidents(engine)
    _, a_tasks = run(engine, d.dispatch, a, ["fire", "police"], "olga", None, DAY + 3 * MIN, RULES, CITY)
    _, (b_fire,) = run(engine, d.dispatch, b, ["fire"], "olga", None, DAY + 3 * MIN, RULES, CITY)
    a_fire, a_police = a_tasks
    run(engine, d.transition, a_police["id"], "acknowledged", 1, "pol", "on our way", DAY + 4 * MIN)
    version = row(engine, a)["version"]

    moved = run(engine, m.merge, a, b, version, "olga", "同一起火情", DAY + 5 * MIN)

    away, into = moved.incidents
    assert (away["id"], away["status"], away["merged_into"], away["reports"]) == (a, "closed", b, 0)
    assert (into["id"], into["reports"], into["severity"]) == (b, 3, 4)
    assert into["opened_ms"] == DAY and into["last_report_ms"] == DAY + 2 * MIN
    assert into["status"] == "in_progress"  # the police task, acknowledged, came along
    assert (links(engine, a), links(engine, b)) == (0, 3)
    with engine.connect() as conn:
        by_id = {t["id"]: dict(t) for t in conn.execute(select(tasks)).mappings()}
    # A's police task moved with its audit trail; A's fire task ended: B's fire task already works on it.
    assert by_id[a_police["id"]]["incident_id"] == b and by_id[a_police["id"]]["state"] == "acknowledged"
    assert by_id[a_fire["id"]]["incident_id"] == a and by_id[a_fire["id"]]["state"] == "closed"
    assert by_id[b_fire["id"]]["state"] == "dispatched"
    assert {t["id"] for t in moved.tasks} == {a_police["id"], a_fire["id"]}
    b_trail, a_trail = trail(engine, b), trail(engine, a)
    police_rows = [(action, code) for tid, action, code, _ in b_trail if tid == a_police["id"]]
    assert police_rows[:2] == [("dispatch", None), ("transition", None)]
    assert ("merge", "task_merged_in") in police_rows
    assert not [r for r in a_trail if r[0] == a_police["id"]]
    assert (a_fire["id"], "merge", "task_merge_ended", {"dep": "fire", "incident": b}) in a_trail
    assert (None, "merge", "merged_into", {"incident": b, "n": 2}) in a_trail
    assert (None, "merge", "merged_from", {"incident": a, "n": 2}) in b_trail
    with engine.connect() as conn:
        notes = conn.execute(select(task_events.c.note).where(task_events.c.action == "merge")).scalars().all()
    assert set(notes) == {"同一起火情"}


def test_a_merge_is_refused_into_itself_a_closed_incident_a_chain_or_at_a_stale_version(any_engine):
    engine = any_engine
    a, b = two_incidents(engine)
    c = report(engine, 4, (22.60, 114.05), DAY + MIN)[0]["id"]
    va = row(engine, a)["version"]
    for args, key in [((a, a, va), "merge_self")]:
        with pytest.raises(d.InvalidTransition) as err:
            run(engine, m.merge, *args, "olga", None, DAY + 5 * MIN)
        assert err.value.key == key
    with pytest.raises(d.NotFound):
        run(engine, m.merge, a, 999_999, va, "olga", None, DAY + 5 * MIN)
    with pytest.raises(d.NotFound):
        run(engine, m.merge, 999_999, a, 1, "olga", None, DAY + 5 * MIN)
    with pytest.raises(d.VersionConflict):
        run(engine, m.merge, a, b, va - 1, "olga", None, DAY + 5 * MIN)
    run(engine, m.merge, c, b, row(engine, c)["version"], "olga", None, DAY + 5 * MIN)
    with pytest.raises(d.InvalidTransition) as err:  # c is merged away: merge into where it went
        run(engine, m.merge, a, c, va, "olga", None, DAY + 6 * MIN)
    assert err.value.key == "merge_chain"
    with pytest.raises(d.InvalidTransition) as err:  # c is closed: it merges nowhere again
        run(engine, m.merge, c, a, row(engine, c)["version"], "olga", None, DAY + 6 * MIN)
    assert err.value.key == "merge_done"
    with engine.begin() as conn:
        conn.execute(incidents.update().where(incidents.c.id == b).values(status="resolved"))
    with pytest.raises(d.InvalidTransition) as err:
        run(engine, m.merge, a, b, va, "olga", None, DAY + 6 * MIN)
    assert err.value.key == "merge_into_done"
    assert row(engine, a)["status"] == "open" and links(engine, a) == 2  # nothing refused changed anything


def test_an_incident_merged_into_one_that_is_merged_on_follows_it_there(any_engine):
    engine = any_engine
    a, b = two_incidents(engine)
    c = report(engine, 4, (22.60, 114.05), DAY + MIN)[0]["id"]
    run(engine, m.merge, c, a, row(engine, c)["version"], "olga", None, DAY + 5 * MIN)
    run(engine, m.merge, a, b, row(engine, a)["version"], "olga", None, DAY + 6 * MIN)
    assert row(engine, c)["merged_into"] == b and links(engine, b) == 4
    # a report at C's place joins B: ingest follows one link
    (joined,) = report(engine, 5, (22.60, 114.05), DAY + 7 * MIN)
    assert joined["id"] == b


def test_reports_after_a_merge_join_the_incident_merged_into_while_it_is_open_and_within_the_window(any_engine):
    engine = any_engine
    a, b = two_incidents(engine)
    run(engine, m.merge, a, b, row(engine, a)["version"], "olga", None, DAY + 5 * MIN)
    # at A's place, 10 minutes after the last report: A would have taken it, so B does
    (joined,) = report(engine, 10, PLACE_A, DAY + 12 * MIN)
    assert joined["id"] == b and row(engine, b)["reports"] == 4 and row(engine, a)["reports"] == 0
    # and the next, 14 minutes on: the window runs from B's latest report, which the last one moved on
    (joined,) = report(engine, 11, PLACE_A, DAY + 26 * MIN)
    assert joined["id"] == b and links(engine, b) == 5
    # past the window: a new incident
    (fresh,) = report(engine, 12, PLACE_A, DAY + 60 * MIN)
    assert fresh["id"] not in (a, b) and fresh["reports"] == 1
    # once B is no longer open, A's place opens incidents of its own again
    (a2,) = report(engine, 13, (22.70, 114.30), DAY + 61 * MIN)
    (b2,) = report(engine, 14, (22.70, 114.40), DAY + 61 * MIN)
    run(engine, m.merge, a2["id"], b2["id"], row(engine, a2["id"])["version"], "olga", None, DAY + 62 * MIN)
    with engine.begin() as conn:
        conn.execute(incidents.update().where(incidents.c.id == b2["id"]).values(status="resolved"))
    (later,) = report(engine, 15, (22.70, 114.30), DAY + 63 * MIN)
    assert later["id"] not in (a2["id"], b2["id"])


def test_a_split_moves_the_reports_ticked_to_a_new_open_incident_and_the_tasks_stay(any_engine):
    engine = any_engine
    (inc,) = report(engine, 1, PLACE_A, DAY, severity=4)
    report(engine, 2, PLACE_A, DAY + MIN, severity=3)
    report(engine, 3, PLACE_A, DAY + 2 * MIN, severity=3, kind="fire")
    inc_id = inc["id"]
    _, created = run(engine, d.dispatch, inc_id, ["fire"], "olga", None, DAY + 3 * MIN, RULES, CITY)
    version = row(engine, inc_id)["version"]
    for ids, key in [([], "split_some"), (["ev-1", "ev-2", "ev-3"], "split_some"), (["ev-2", "nope"], "split_foreign")]:
        with pytest.raises(d.InvalidTransition) as err:
            run(engine, m.split, inc_id, ids, version, "olga", None, DAY + 4 * MIN)
        assert err.value.key == key
    with pytest.raises(d.VersionConflict):
        run(engine, m.split, inc_id, ["ev-1"], version - 1, "olga", None, DAY + 4 * MIN)

    moved = run(engine, m.split, inc_id, ["ev-3", "ev-1"], version, "olga", "两处火情", DAY + 4 * MIN)

    orig, new = moved.incidents
    assert (orig["id"], orig["reports"], orig["severity"], orig["status"]) == (inc_id, 1, 3, "dispatched")
    assert orig["last_report_ms"] == DAY + MIN and orig["version"] == version + 1
    # named and placed after the earliest report moved
    assert (new["status"], new["reports"], new["severity"], new["title"], new["kind"]) == ("open", 2, 4, "火情 1",
                                                                                           "fire")
    assert (new["lat"], new["lon"], new["opened_ms"], new["last_report_ms"]) == (*PLACE_A, DAY, DAY + 2 * MIN)
    assert (links(engine, inc_id), links(engine, new["id"])) == (1, 2)
    with engine.connect() as conn:
        assert conn.execute(select(tasks.c.incident_id).where(tasks.c.id == created[0]["id"])).scalar() == inc_id
    assert (None, "split", "split_to", {"incident": new["id"], "n": 2}) in trail(engine, inc_id)
    assert trail(engine, new["id"]) == [(None, "split", "split_from", {"incident": inc_id, "n": 2})]
    # ingest joins as before: the oldest matching incident takes the next report; the split-off ones stay put
    (joined,) = report(engine, 4, PLACE_A, DAY + 5 * MIN)
    assert joined["id"] == inc_id and (links(engine, inc_id), links(engine, new["id"])) == (2, 2)


def test_the_ended_tasks_escalation_is_cancelled_and_the_moved_tasks_goes_on(any_engine):
    engine = any_engine
    a, b = two_incidents(engine)
    _, (a_fire, a_police) = run(engine, d.dispatch, a, ["fire", "police"], "olga", None, DAY + 3 * MIN, RULES, CITY)
    run(engine, d.dispatch, b, ["fire"], "olga", None, DAY + 3 * MIN, RULES, CITY)
    late = DAY + 20 * MIN  # both of A's tasks missed the acknowledge deadline: their duty ladders are queued
    with engine.begin() as conn:
        overdue = [r for r in d.escalate_overdue(conn, late) if r["incident_id"] == a]
        for r in overdue:
            start_duty(conn, CITY, r, row(engine, a), late)
    assert {r["id"] for r in overdue} == {a_fire["id"], a_police["id"]}

    def pending(task_id):
        with engine.connect() as conn:
            return [r["status"] for r in outbox.list_messages(conn, key_prefix=f"esc:task:{task_id}.")]

    assert pending(a_fire["id"]) and set(pending(a_fire["id"])) == set(pending(a_police["id"]))
    run(engine, m.merge, a, b, row(engine, a)["version"], "olga", None, late + MIN)
    assert set(pending(a_fire["id"])) <= {"cancelled", "sent"} and "cancelled" in pending(a_fire["id"])
    assert "pending" in pending(a_police["id"])
    assert (a_fire["id"], "notify", "esc_stopped") in [r[:3] for r in trail(engine, a)]
    # an ended task is never escalated again; the moved one keeps its deadlines on B
    with engine.begin() as conn:
        again = d.escalate_overdue(conn, late + 200 * MIN)
    assert a_fire["id"] not in {r["id"] for r in again}


def test_two_officers_merging_at_once_one_wins_and_the_other_is_told_it_changed(pg_engine, pg_url):
    a, b = two_incidents(pg_engine)
    c = report(pg_engine, 4, (22.60, 114.05), DAY + MIN)[0]["id"]
    other = make_engine(pg_url)
    try:
        version = row(pg_engine, a)["version"]
        start = threading.Barrier(2)
        outcomes: list = []

        def attempt(engine, into):
            start.wait()
            try:
                outcomes.append(run(engine, m.merge, a, into, version, "olga", None, DAY + 5 * MIN).incidents[1]["id"])
            except d.DispatchError as err:
                outcomes.append(type(err))

        threads = [threading.Thread(target=attempt, args=(pg_engine, b)),
                   threading.Thread(target=attempt, args=(other, c))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        winner = row(pg_engine, a)["merged_into"]
        assert len(outcomes) == 2 and d.VersionConflict in outcomes and winner in outcomes
        assert links(pg_engine, winner) == 1 + 2 and links(pg_engine, ({b, c} - {winner}).pop()) == 1
    finally:
        other.dispose()


def test_two_incidents_merged_into_each_other_at_once_never_deadlock(pg_engine, pg_url):
    a, b = two_incidents(pg_engine)
    other = make_engine(pg_url)
    try:
        versions = {a: row(pg_engine, a)["version"], b: row(pg_engine, b)["version"]}
        start = threading.Barrier(2)
        outcomes: list = []

        def attempt(engine, away, into):
            start.wait()
            try:
                run(engine, m.merge, away, into, versions[away], "olga", None, DAY + 5 * MIN)
                outcomes.append("merged")
            except d.DispatchError as err:
                outcomes.append(err.code)

        threads = [threading.Thread(target=attempt, args=(pg_engine, a, b)),
                   threading.Thread(target=attempt, args=(other, b, a))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["merged", "version_conflict"]
        assert {row(pg_engine, a)["status"], row(pg_engine, b)["status"]} == {"closed", "open"}
    finally:
        other.dispose()


def test_a_briefings_top_incidents_count_a_merged_incident_once(any_engine):
    from dashboard.briefings.collect import top_incidents

    engine = any_engine
    a, b = two_incidents(engine)
    with engine.connect() as conn:
        assert {r["id"] for r in top_incidents(conn, CITY, DAY - MIN, DAY + 60 * MIN, CITY.timezone)} == {a, b}
    run(engine, m.merge, a, b, row(engine, a)["version"], "olga", None, DAY + 5 * MIN)
    with engine.connect() as conn:
        top = top_incidents(conn, CITY, DAY - MIN, DAY + 60 * MIN, CITY.timezone)
    assert [(r["id"], r["reports"]) for r in top] == [(b, 3)]
