"""The deadline checker threads of two replicas, on PostgreSQL, escalate a task whose deadline really passes once."""

from __future__ import annotations

import threading

import orjson
from sqlalchemy import select

from dashboard.storage import users
from dashboard.core.clock import Clock, now_ms
from dashboard.dispatch.deadlines import DeadlineChecker
from dashboard.storage.models import task_events, tasks
from dashboard.core.channels import UPDATES_CHANNEL
from tests.helpers import make_event, wait_for
from tests.test_api import ingest_now

PASSWORD = "correct horse battery staple"
ACK_MS = 3 * 60_000  # the fire rules' acknowledge_within (PT3M)
LEAD_MS = 6_000  # how long after the dispatch, on the wall clock, the acknowledge deadline passes
DEPARTMENTS = ["fire", "police", "health"]


class CountingChecker(DeadlineChecker):
    """The product's checker, counting the rounds its own thread has finished (published included)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rounds = 0
        self.escalated: list[int] = []
        self.early: list[int] = []  # tasks escalated by a round that began well before the first deadline

    def check_once(self, at_ms=None):
        began = now_ms()
        rows = super().check_once(at_ms)
        self.escalated += [r["id"] for r in rows]
        if began < self.first_due - 2_000:  # (a round reads its own clock a moment after it begins)
            self.early += [r["id"] for r in rows]
        self.rounds += 1
        return rows


def test_two_checker_threads_escalate_a_really_overdue_task_exactly_once(make_app, redis_client, pg_engine):
    # The officer's app dispatches "three minutes less three seconds ago": the acknowledge deadline passes
    # three seconds from now on the wall clock, which the two replicas' checkers read.
    officer_app = make_app(PANORAMA_CLOCK=Clock(offset_ms=-(ACK_MS - LEAD_MS)))
    svc = officer_app.server.extensions["panorama"]
    users.create_user(svc.engine, "olga", PASSWORD, "officer", None, [d["code"] for d in svc.city.departments])
    ingest_now(officer_app, {"incident": [make_event(1, kind="fire", severity=3, lat=22.54, lon=114.05,
                                                     title="超时火情", ts=svc.clock())]})
    http = officer_app.server.test_client()
    csrf = http.post("/api/session", json={"username": "olga", "password": PASSWORD}).json["csrf_token"]
    [inc] = http.get("/api/incidents").json["incidents"]
    res = http.post(f"/api/incidents/{inc['id']}/dispatch", json={"departments": DEPARTMENTS},
                    headers={"X-CSRF-Token": csrf})
    assert res.status_code == 200, res.json
    task_ids = sorted(t["id"] for t in res.json["tasks"])
    with pg_engine.connect() as conn:
        due = dict(conn.execute(select(tasks.c.id, tasks.c.ack_due_ms)).all())
    assert set(due) == set(task_ids)
    assert all(now_ms() < at for at in due.values()), "the deadline must still be ahead when the checkers start"

    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(UPDATES_CHANNEL)
    wait_for(lambda: redis_client.pubsub_numsub(UPDATES_CHANNEL)[0][1] >= 1, message="the listener subscribed")
    # Two replicas: each its own services (engine, bus) on the wall clock, each the product's checker thread.
    replicas = [make_app().server.extensions["panorama"] for _ in range(2)]
    stop = threading.Event()
    checkers = [CountingChecker(r, stop, every_s=0.05) for r in replicas]
    for c in checkers:
        # On a loaded machine the replicas may take longer than LEAD_MS to start: what is checked is that no
        # round begun before the deadline escalates, whenever the rounds happen to run.
        c.first_due = min(due.values())
        c.start()
    try:
        wait_for(lambda: all(c.rounds >= 1 for c in checkers), message="both checkers running")
        assert not any(c.early for c in checkers), "nothing is overdue before its deadline"

        def all_escalated() -> bool:
            with pg_engine.connect() as conn:
                return all(conn.execute(select(tasks.c.escalated).where(tasks.c.id.in_(task_ids))).scalars())

        wait_for(all_escalated, timeout=LEAD_MS / 1000 + 30, message="the overdue tasks escalated")
        # Both go on checking well after the escalation: a second escalation would have had its chances.
        then = [c.rounds for c in checkers]
        wait_for(lambda: all(c.rounds >= n + 5 for c, n in zip(checkers, then)), timeout=30,
                 message="both checkers ran five more rounds")
    finally:
        stop.set()
        for c in checkers:
            c.stop()
    assert sorted(i for c in checkers for i in c.escalated) == task_ids, [c.escalated for c in checkers]
    with pg_engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(tasks).where(tasks.c.id.in_(task_ids)))}
        audit = conn.execute(select(task_events.c.task_id, task_events.c.actor, task_events.c.note, task_events.c.code)
                             .where(task_events.c.action == "escalate")).all()
    assert sorted(a.task_id for a in audit) == task_ids, "one escalate row per task"
    assert {a.actor for a in audit} == {"system"} and {(a.note, a.code) for a in audit} == {(None, "overdue_ack")}
    for tid in task_ids:
        assert rows[tid].escalated and rows[tid].state == "dispatched"
        assert rows[tid].escalated_ms >= rows[tid].ack_due_ms, "escalated only once its deadline had passed"

    # Everything the checkers published came before this marker (one Redis orders one channel's messages).
    redis_client.publish(UPDATES_CHANNEL, b'{"type": "marker"}')
    published = []
    while True:
        msg = wait_for(lambda: listener.get_message(timeout=0.1), message="the checkers' messages, then the marker")
        doc = orjson.loads(msg["data"])
        if doc["type"] == "marker":
            break
        published.append(doc)
    listener.close()
    escalations = [e for doc in published for e in doc.get("escalations", ())]
    assert sorted(e["id"] for e in escalations) == task_ids, "one escalation published per task"
    assert {e["overdue"] for e in escalations} == {"acknowledge"}
    # (an overdue procedure step publishes its incident alone: no tasks in that delta)
    assert all(t["escalated"] for doc in published for t in doc.get("tasks", ())), published
    listed = http.get("/api/tasks").json["tasks"]
    assert sorted(t["id"] for t in listed if t["escalated"]) == task_ids
