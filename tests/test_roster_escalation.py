"""Duty escalation end to end: an alert fires (or a task misses its deadline), the ladder goes into the outbox with
it, the real sender delivers each level at its due time to a real SMTP server, SMS gateway and webhook receiver,
and an acknowledgement stops what is left; exactly once across two workers."""

from __future__ import annotations

import json
import re
import shutil
import threading
from datetime import datetime

import pytest
from sqlalchemy import select

from dashboard.core.city import PACKS_DIR, load_city
from dashboard.dispatch import board as d
from dashboard.dispatch import desk
from dashboard.dispatch.deadlines import DeadlineChecker
from dashboard.storage import alerts as store
from dashboard.storage import outbox
from dashboard.storage import rosters as overrides
from dashboard.storage.events import EventStore
from dashboard.storage.models import alert_events, alerts, task_events
from feeds.alerting import Evaluator
from feeds.notify import Sender
from feeds.pipeline import Pipeline
from tests.helpers import make_event, wait_for
from tests.receivers import HttpReceiver, SmtpReceiver
from tests.test_alerts import MIN, TZ, aqi, flush, now_ms
from tests.test_notify import SECRET, notify_config

RULES = """\
rules:
  - id: aqi_high
    type: threshold
    level: red
    scope: district
    kind: aqi
    op: ">"
    value: 150
    for: PT10M
    say: {zh: "{place}空气质量指数 {value}", en: "{place}: AQI {value}"}
    notify: environment_duty
"""


def rosters_yaml(hook: str, steps: tuple[str, str, str] = ("PT0M", "PT10M", "PT20M"), rounds: int = 2,
                 every: str | None = "PT30M") -> str:
    """Return a roster for ecology (and the fallback) whose one person per role is on duty all week."""
    a, b, c = steps
    return f"""\
policies:
  - name: std
    levels:
      - {{role: officer, after: {a}, channels: [sms, email]}}
      - {{role: deputy, after: {b}, channels: [email]}}
      - {{role: commander, after: {c}, channels: [webhook, email]}}
    rounds: {rounds}
{"" if every is None else f"    round_every: {every}"}
notify: {{environment_duty: ecology}}
fallback: ecology
rosters:
  - department: ecology
    policy: std
    webhook: "{hook}"
    people:
      - {{id: ann, name: 安娜, name_en: An Na, role: officer, phone: "+8675500001901", email: ann@duty.example.org}}
      - {{id: cai, name: 蔡军, name_en: Cai Jun, role: deputy, phone: "+8675500001903", email: cai@duty.example.org,
          lang: en}}
      - {{id: dai, name: 戴明, name_en: Dai Ming, role: commander, phone: "+8675500001904", email: dai@duty.example.org}}
      - {{id: eve, name: 鄂薇, name_en: E Wei, role: deputy, phone: "+8675500001905", email: eve@duty.example.org}}
    shifts:
      - {{name: all_day, time: "00:00-24:00", who: [ann, cai, dai]}}
"""


class Clock:
    """A clock the test moves (the evaluator's, the sender's and the checker's)."""

    def __init__(self, at: int):
        self.at = at

    def __call__(self) -> int:
        return self.at


def pack(tmp_path, hook: str, **kw):
    path = tmp_path / "pack"
    shutil.copytree(PACKS_DIR / "shenzhen", path)
    (path / "alerts.yaml").write_text(RULES, encoding="utf-8")
    (path / "notifications.yaml").unlink()  # the duty alone here: the team policies are tests/test_notify.py's
    (path / "rosters.yaml").write_text(rosters_yaml(hook, **kw), encoding="utf-8")
    return path


@pytest.fixture
def hook():
    receiver = HttpReceiver(SECRET)
    yield receiver
    receiver.close()


@pytest.fixture
def gateway():
    receiver = HttpReceiver(SECRET)
    yield receiver
    receiver.close()


@pytest.fixture
def smtp():
    server = SmtpReceiver()
    yield server
    server.close()


def sender_of(engine, smtp, gateway, clock=None) -> Sender:
    cfg = notify_config(PANORAMA_SMTP_URL=smtp.url, PANORAMA_SMS_URL=gateway.url("/sms"))
    return Sender(engine, cfg, threading.Event(), **({"clock": clock} if clock else {}))


def mailed(smtp) -> list[str]:
    return [m["To"] for m in smtp.messages]


def statuses(engine, prefix: str) -> dict[str, str]:
    with engine.connect() as conn:
        return {r["key"]: r["status"] for r in outbox.list_messages(conn, key_prefix=prefix)}


def settle(sender, engine, prefix: str) -> None:
    """Run the sender's rounds until nothing of ``prefix`` due now is pending or being sent."""
    def done():
        sender.run_once()
        with engine.connect() as conn:
            rows = outbox.list_messages(conn, key_prefix=prefix)
        return all(r["status"] in ("sent", "cancelled") or (r["status"] == "pending" and r["due_ms"] > sender.clock())
                   for r in rows)
    wait_for(done, timeout=30, interval=0.05, message="the due messages sent")


def fired(tmp_path, any_engine, redis_client, hook, clock) -> tuple[Pipeline, Evaluator, dict]:
    city = load_city(str(pack(tmp_path, hook.url("/duty"))))
    ev = Evaluator(any_engine, city, TZ, clock=clock)
    pipe = Pipeline(EventStore(any_engine, city), city.aliases, alerts=ev)
    flush(pipe, redis_client, "environment", [aqi(1, 180, clock.at - 11 * MIN), aqi(2, 190, clock.at - MIN)])
    with any_engine.connect() as conn:
        [alert] = [dict(r) for r in conn.execute(select(alerts)).mappings()]
    assert alert["status"] == "firing" and alert["fired_ms"] == clock.at
    return pipe, ev, alert


def test_each_level_is_told_at_its_time_in_order_until_acknowledged(tmp_path, any_engine, redis_client, hook,
                                                                     smtp, gateway):
    t0 = now_ms()
    clock = Clock(t0)
    pipe, ev, alert = fired(tmp_path, any_engine, redis_client, hook, clock)
    prefix = f"esc:alert:{alert['id']}:"
    queued = statuses(any_engine, prefix)
    # the whole ladder, in the transaction that fired the alert: 2 rounds of (sms+mail, mail, webhook+mail)
    assert sorted(queued) == sorted(f"{prefix}{lv}:{r}:{ch}:0" for r in (1, 2) for lv, ch in (
        (1, "sms"), (1, "email"), (2, "email"), (3, "webhook"), (3, "email")))
    sender = sender_of(any_engine, smtp, gateway, clock)
    settle(sender, any_engine, prefix)
    assert sorted(r.json["to"] for r in gateway.got) == ["+8675500001901"] and mailed(smtp) == ["ann@duty.example.org"]
    assert hook.got == []  # the commander's level is not due yet
    clock.at = t0 + 10 * MIN - 1
    settle(sender, any_engine, prefix)
    assert mailed(smtp) == ["ann@duty.example.org"]  # a millisecond early: the deputy is not told yet
    clock.at = t0 + 10 * MIN
    settle(sender, any_engine, prefix)
    assert mailed(smtp) == ["ann@duty.example.org", "cai@duty.example.org"]
    clock.at = t0 + 20 * MIN
    settle(sender, any_engine, prefix)
    assert [r.key for r in hook.got] == [f"{prefix}3:1:webhook:0"] and hook.got[0].verified
    assert hook.got[0].json["person"] is None and hook.got[0].json["role"] == "commander"
    assert mailed(smtp)[-1] == "dai@duty.example.org"
    clock.at = t0 + 30 * MIN  # round 2 starts again from the officer
    settle(sender, any_engine, prefix)
    assert mailed(smtp)[-1] == "ann@duty.example.org" and len(gateway.got) == 2
    # each person in their language: the officer in the city's (Chinese), the deputy in the English they asked for
    body = smtp.messages[0].get_content()
    assert "安娜" in body and "空气质量指数 190" in body and "An Na" not in body and "AQI" not in body
    assert smtp.messages[0]["Subject"] == "[预警未确认 L1] 福田区空气质量指数 190"
    deputy = smtp.messages[1]
    assert deputy["To"].addresses[0].addr_spec == "cai@duty.example.org"
    assert deputy["Subject"] == "[unacknowledged alert L2] Futian: AQI 190"
    assert deputy.get_content().startswith("deputy Cai Jun: unacknowledged alert (round 1, level 2, ")
    assert "Futian: AQI 190" in deputy.get_content() and not re.search(r"[\u4e00-\u9fff]", deputy.get_content())
    # the officer acknowledges: the rest of round 2 is cancelled in the same transaction
    with any_engine.begin() as conn:
        store.acknowledge(conn, alert["id"], alert["version"], "olga", None, t0 + 31 * MIN)
    clock.at = t0 + 200 * MIN
    settle(sender, any_engine, prefix)
    assert mailed(smtp) == ["ann@duty.example.org", "cai@duty.example.org", "dai@duty.example.org",
                            "ann@duty.example.org"]
    assert len(hook.got) == 1 and len(gateway.got) == 2
    after = statuses(any_engine, prefix)
    assert {k for k, s in after.items() if s == "cancelled"} == {f"{prefix}2:2:email:0", f"{prefix}3:2:webhook:0",
                                                                  f"{prefix}3:2:email:0"}
    with any_engine.connect() as conn:
        trail = [(r.code, r.params) for r in conn.execute(select(alert_events).where(
            alert_events.c.alert_id == alert["id"]).order_by(alert_events.c.id))]
    steps = [p for c, p in trail if c == "esc_step"]
    assert [(p["round"], p["level"], p["role"], p["who_en"]) for p in steps] == [
        (1, 1, "officer", "An Na"), (1, 2, "deputy", "Cai Jun"), (1, 3, "commander", "Dai Ming"),
        (2, 1, "officer", "An Na"), (2, 2, "deputy", "Cai Jun"), (2, 3, "commander", "Dai Ming")]
    assert trail[-1] == ("esc_stopped", {"n": 3})


def test_an_acknowledgement_between_level_1_and_2_sends_no_level_2(tmp_path, any_engine, redis_client, hook, smtp,
                                                                   gateway):
    t0 = now_ms()
    clock = Clock(t0)
    pipe, ev, alert = fired(tmp_path, any_engine, redis_client, hook, clock)
    prefix = f"esc:alert:{alert['id']}:"
    sender = sender_of(any_engine, smtp, gateway, clock)
    settle(sender, any_engine, prefix)
    assert mailed(smtp) == ["ann@duty.example.org"] and len(gateway.got) == 1
    with any_engine.begin() as conn:
        store.acknowledge(conn, alert["id"], alert["version"], "olga", "收到", t0 + 5 * MIN)
    for minutes in (10, 20, 30, 60, 120):
        clock.at = t0 + minutes * MIN
        settle(sender, any_engine, prefix)
    assert mailed(smtp) == ["ann@duty.example.org"] and len(gateway.got) == 1 and hook.got == []
    left = statuses(any_engine, prefix)
    assert sorted(s for s in left.values()) == ["cancelled"] * 8 + ["sent"] * 2


def test_a_resolution_stops_the_escalation_too(tmp_path, any_engine, redis_client, hook, smtp, gateway):
    t0 = now_ms()
    clock = Clock(t0)
    pipe, ev, alert = fired(tmp_path, any_engine, redis_client, hook, clock)
    clock.at = t0 + 2 * MIN
    flush(pipe, redis_client, "environment", [aqi(3, 60, t0 + MIN)])  # clean air: resolved, nobody acknowledged
    prefix = f"esc:alert:{alert['id']}:"
    # nothing was sent yet (no sender ran): the whole ladder is cancelled, level 1 too
    assert sorted(statuses(any_engine, prefix).values()) == ["cancelled"] * 10
    with any_engine.connect() as conn:
        assert conn.execute(select(alert_events.c.params).where(alert_events.c.code == "esc_stopped")).scalar_one() \
            == {"n": 10}


def test_an_override_set_in_the_app_is_who_the_ladder_tells(tmp_path, any_engine, redis_client, hook, smtp,
                                                           gateway):
    t0 = now_ms()
    with any_engine.begin() as conn:  # eve stands in as the deputy for the next hour
        overrides.create(conn, department="ecology", person="eve", role="deputy", from_ms=t0 - MIN,
                         until_ms=t0 + 60 * MIN, reason="蔡军病假", actor="olga", now_ms=t0)
    clock = Clock(t0)
    pipe, ev, alert = fired(tmp_path, any_engine, redis_client, hook, clock)
    with any_engine.connect() as conn:
        rows = {r["key"]: r for r in outbox.list_messages(conn, key_prefix=f"esc:alert:{alert['id']}:2:")}
    # round 1's deputy (at +10 min) is eve; round 2's (at +40 min) too; the shifts' deputy is back after an hour
    assert {k: r["address"] for k, r in rows.items()} == {f"esc:alert:{alert['id']}:2:1:email:0": "eve@duty.example.org",
                                                          f"esc:alert:{alert['id']}:2:2:email:0": "eve@duty.example.org"}


def test_a_task_not_acknowledged_in_time_escalates_through_the_same_chain(tmp_path, make_app, redis_client, hook,
                                                                          smtp, gateway):
    path = pack(tmp_path, hook.url("/duty"))
    app = make_app(PANORAMA_CITY=str(path))
    svc = app.server.extensions["panorama"]
    t0 = now_ms()
    from tests.test_api import ingest_now
    ingest_now(app, {"incident": [make_event(1, kind="fire", severity=3, ts=t0, lat=22.54, lon=114.05,
                                             title="河道排污起火")]})
    with svc.engine.connect() as conn:
        [inc] = desk.queue(conn)
    [task] = desk.write(svc, d.dispatch, inc["id"], ["ecology"], "olga", None, t0 - 60 * MIN, svc.city.rules,
                        svc.city).tasks
    assert task["ack_due_ms"] < t0
    # two replicas' checkers at once: one ladder
    threads = [threading.Thread(target=DeadlineChecker(svc).check_once, args=(t0,)) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    prefix = f"esc:task:{task['id']}."
    queued = statuses(svc.engine, prefix)
    assert sorted(queued) == sorted(f"esc:task:{task['id']}.1:{lv}:{r}:{ch}:0" for r in (1, 2) for lv, ch in (
        (1, "sms"), (1, "email"), (2, "email"), (3, "webhook"), (3, "email")))
    clock = Clock(t0)
    sender = sender_of(svc.engine, smtp, gateway, clock)
    settle(sender, svc.engine, prefix)
    assert mailed(smtp) == ["ann@duty.example.org"] and "河道排污" in smtp.messages[0].get_content()
    assert gateway.got[0].json["to"] == "+8675500001901"
    clock.at = t0 + 10 * MIN
    settle(sender, svc.engine, prefix)
    assert mailed(smtp) == ["ann@duty.example.org", "cai@duty.example.org"]
    # the department acknowledges its task: no commander is woken
    with svc.engine.begin() as conn:
        d.transition(conn, task["id"], "acknowledged", task["version"], "eco-liaison", None, t0 + 11 * MIN)
    clock.at = t0 + 100 * MIN
    settle(sender, svc.engine, prefix)
    assert mailed(smtp) == ["ann@duty.example.org", "cai@duty.example.org"] and hook.got == []
    with svc.engine.connect() as conn:
        trail = [(r.action, r.code, r.params) for r in conn.execute(select(task_events).where(
            task_events.c.task_id == task["id"]).order_by(task_events.c.id))]
    assert [c for a, c, p in trail if a == "notify"] == ["esc_step"] * 6 + ["esc_stopped"]
    assert trail[-1][2] == {"n": 7}


@pytest.mark.timeout(120)
def test_two_workers_fire_one_ladder_and_two_senders_deliver_each_step_once(tmp_path, pg_engine, redis_client, hook,
                                                                             smtp, gateway):
    """Two evaluators (two ingest workers) tick the same due alert at once; two sender loops on the wall clock
    deliver a ladder of steps a second apart: each message once, level after level."""
    city = load_city(str(pack(tmp_path, hook.url("/duty"), steps=("PT0S", "PT1S", "PT2S"), rounds=1,
                              every=None)))
    t0 = now_ms()
    evs = [Evaluator(pg_engine, city, TZ) for _ in range(2)]
    pipe = Pipeline(EventStore(pg_engine, city), city.aliases, alerts=evs[0])
    # pending: above 150 since 10 minutes less a second ago, so it comes due while the ticks race
    flush(pipe, redis_client, "environment", [aqi(1, 180, t0 - 10 * MIN + 1000), aqi(2, 190, t0 - MIN)])

    def firing() -> bool:
        with pg_engine.connect() as conn:
            return conn.execute(select(alerts.c.status)).scalar_one() == "firing"

    def race(ev):  # a worker's ticker, without the lease: every tick evaluates
        wait_for(lambda: ev.tick(redis_client) is not None and firing(), timeout=30, interval=0.01,
                 message="the alert firing")

    ticks = [threading.Thread(target=race, args=(evs[i % 2],)) for i in range(6)]
    for th in ticks:
        th.start()
    for th in ticks:
        th.join(40)
    with pg_engine.connect() as conn:
        [alert] = [dict(r) for r in conn.execute(select(alerts)).mappings()]
        steps = conn.execute(select(alert_events.c.code).where(alert_events.c.code == "esc_step")).all()
    assert alert["status"] == "firing" and len(steps) == 3
    prefix = f"esc:alert:{alert['id']}:"
    senders = [sender_of(pg_engine, smtp, gateway).start() for _ in range(2)]
    try:
        wait_for(lambda: set(statuses(pg_engine, prefix).values()) == {"sent"}, timeout=60,
                 message="every step sent")
    finally:
        for s in senders:
            s.stop_event.set()
        for s in senders:
            s.thread.join(10)
    assert sorted(r.key for r in hook.got) == [f"{prefix}3:1:webhook:0"]
    assert sorted(mailed(smtp)) == ["ann@duty.example.org", "cai@duty.example.org", "dai@duty.example.org"]
    assert [r.json["to"] for r in gateway.got] == ["+8675500001901"]
    with pg_engine.connect() as conn:
        rows = outbox.list_messages(conn, key_prefix=prefix)
    level_sent = {}
    for r in rows:
        level = int(r["key"].split(":")[3])
        due = datetime.fromisoformat(json.loads(r["payload"])["due"]).timestamp() * 1000  # claiming moves due_ms
        assert r["sent_ms"] >= due - 1000 and r["attempts"] == 1, r  # the payload's due is to the second
        level_sent.setdefault(level, []).append(r["sent_ms"])
    assert max(level_sent[1]) <= min(level_sent[2]) and max(level_sent[2]) <= min(level_sent[3])


@pytest.mark.timeout(120)
def test_an_override_set_then_ended_in_the_app_replans_the_queued_ladders(tmp_path, make_app, redis_client, hook,
                                                                          smtp, gateway):
    """An alert's ladder and a task's are queued with cai as the deputy; a commander puts eve in his place over
    REST: the deputy steps not sent yet go to eve (the officer's, sent, and the webhook's stay); ending the
    override gives the later ones back to cai. Each move is in the alert's and the task's trail, in words."""
    from dashboard.core.clock import iso
    from dashboard.core.i18n import audit_text
    from tests.test_access_matrix import session
    from tests.test_api import ingest_now

    app = make_app(PANORAMA_CITY=str(pack(tmp_path, hook.url("/duty"))))
    svc = app.server.extensions["panorama"]
    t0 = now_ms()
    clock = Clock(t0)
    ev = Evaluator(svc.engine, svc.city, TZ, clock=clock)
    flush(Pipeline(EventStore(svc.engine, svc.city), svc.city.aliases, alerts=ev), redis_client, "environment",
          [aqi(1, 180, t0 - 11 * MIN), aqi(2, 190, t0 - MIN)])
    with svc.engine.connect() as conn:
        [alert] = [dict(r) for r in conn.execute(select(alerts)).mappings()]
    ingest_now(app, {"incident": [make_event(1, kind="fire", severity=3, ts=t0, lat=22.54, lon=114.05,
                                             title="河道排污起火")]})
    with svc.engine.connect() as conn:
        [inc] = desk.queue(conn)
    [task] = desk.write(svc, d.dispatch, inc["id"], ["ecology"], "olga", None, t0 - 60 * MIN, svc.city.rules,
                        svc.city).tasks
    DeadlineChecker(svc).check_once(t0)
    a_prefix, t_prefix = f"esc:alert:{alert['id']}:", f"esc:task:{task['id']}."
    sender = sender_of(svc.engine, smtp, gateway, clock)
    settle(sender, svc.engine, "esc:")
    assert mailed(smtp) == ["ann@duty.example.org"] * 2  # level 1 of both ladders, sent

    client, csrf = session(app, "commander")
    res = client.post("/api/rosters/overrides", headers={"X-CSRF-Token": csrf}, json={
        "department": "ecology", "person": "eve", "role": "deputy", "until": iso(now_ms() + 60 * MIN, TZ),
        "reason": "蔡军病假"})
    assert res.status_code == 201, res.get_json()
    oid = res.get_json()["override"]["id"]
    for prefix, chain in ((a_prefix, a_prefix), (t_prefix, f"esc:task:{task['id']}.1:")):
        rows = statuses(svc.engine, prefix)
        # round 1's deputy (+10 min) and round 2's (+40 min, inside the hour) move to eve
        for r in (1, 2):
            assert rows[f"{chain}2:{r}:email:0"] == "cancelled"
            assert rows[f"{chain}2:{r}:email:0:o{oid}s"] == "pending"
        assert rows[f"{chain}1:1:email:0"] == "sent" and rows[f"{chain}3:1:webhook:0"] == "pending"
        assert sorted(k for k in rows if k.endswith(f":o{oid}s")) == [f"{chain}2:{r}:email:0:o{oid}s" for r in (1, 2)]
    clock.at = t0 + 10 * MIN
    settle(sender, svc.engine, "esc:")
    assert mailed(smtp)[2:] == ["eve@duty.example.org"] * 2  # the deputy on duty now, not cai
    assert "鄂薇" in smtp.messages[2].get_content()

    res = client.delete(f"/api/rosters/overrides/{oid}", headers={"X-CSRF-Token": csrf})
    assert res.status_code == 200, res.get_json()
    rows = statuses(svc.engine, a_prefix)
    assert rows[f"{a_prefix}2:2:email:0:o{oid}s"] == "cancelled" and rows[f"{a_prefix}2:2:email:0:o{oid}e"] == "pending"
    assert rows[f"{a_prefix}2:1:email:0:o{oid}s"] == "sent"
    clock.at = t0 + 40 * MIN
    settle(sender, svc.engine, "esc:")
    assert sorted(mailed(smtp)[4:]) == sorted(["dai@duty.example.org"] * 2 + ["ann@duty.example.org"] * 2
                                              + ["cai@duty.example.org"] * 2)
    assert len(hook.got) == 2  # the commander's webhook of round 1, once per ladder: never re-planned
    with svc.engine.connect() as conn:
        a_trail = [(r.code, r.params) for r in conn.execute(select(alert_events).where(
            alert_events.c.alert_id == alert["id"]).order_by(alert_events.c.id))]
        t_trail = [(r.code, r.params) for r in conn.execute(select(task_events).where(
            task_events.c.task_id == task["id"]).order_by(task_events.c.id))]
    for trail in (a_trail, t_trail):
        moved = [p for c, p in trail if c == "esc_replanned"]
        assert [(p["round"], p["level"], p["who_en"]) for p in moved] == [(1, 2, "E Wei"), (2, 2, "E Wei"),
                                                                          (2, 2, "Cai Jun")]
    said = audit_text("esc_replanned", [p for c, p in a_trail if c == "esc_replanned"][0], "en")
    assert said.startswith("duty changed: round 1, level 2 now tells deputy E Wei at ") and "(e-mail)" in said
