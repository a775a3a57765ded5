"""Every page a district centre's user opens holds their district, or what is not district data, or refuses
(SPEC section 13, issue 18): the delivery log and its summary are of their district's alerts and incidents; the
departments' duty rosters are the city's, read by everyone and overridden by the city centre only."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from dashboard.storage import outbox
from dashboard.storage.models import alerts, incidents
from dashboard.storage.models import outbox as outbox_table
from tests import test_access_matrix as matrix
from tests.test_district_scope import MINE, OWN, district_user, sapp, secret_in, seed  # noqa: F401 (sapp: fixture)

OVERRIDE = {"department": "fire", "person": "fire_dep_a", "role": "officer", "reason": "顶班"}


def queue_messages(app, data: dict) -> None:
    """Queue, as alerts and escalations would: a Futian alert's notification (pending) and one that failed, an
    escalation of Futian's task; Luohu's alert's notification (sent) and an escalation of Luohu's task (pending)."""
    svc = app.server.extensions["panorama"]
    with svc.engine.begin() as conn:
        ids = dict(conn.execute(select(alerts.c.district, alerts.c.id)).all())
        for key, district, subject in (("f1", "440304", "外区机密 福田区 180"), ("f2", "440304", "外区机密 福田区 190"),
                                       ("l1", OWN, f"{MINE} 空气质量")):
            outbox.enqueue(conn, key=f"alert:{key}:firing:email:x@example.org", channel="email",
                           address=f"{key}@example.org", subject=subject, body="...",
                           payload={"alert": {"id": ids[district], "district": district}})
        for district, subject in (("440304", "外区机密 福田 升级"), (OWN, f"{MINE} 升级")):
            task = data["tasks"][district]
            outbox.enqueue(conn, key=f"esc:task:{task['id']}.1:1:1:sms:0", channel="sms", address="13800000000",
                           subject=subject, body="...",
                           payload={"type": "escalation", "subject": "task", "id": f"{task['id']}.1"})
        o = outbox_table.c
        conn.execute(update(outbox_table).where(o.key.like("alert:f2:%")).values(status="failed"))
        conn.execute(update(outbox_table).where(o.key.like("alert:l1:%")).values(status="sent"))


def test_a_district_users_delivery_log_and_its_summary_are_their_districts(sapp):  # noqa: F811
    data = seed(sapp)
    queue_messages(sapp, data)
    client, csrf = district_user(sapp)
    body = client.get("/api/notifications").get_json()
    assert sorted(n["subject"] for n in body["notifications"]) == sorted([f"{MINE} 空气质量", f"{MINE} 升级"])
    # the summary counts their messages only: one waiting (the escalation), none failed, one sent
    assert {k: body["summary"][k] for k in ("pending", "failed", "sent")} == {"pending": 1, "failed": 0, "sent": 1}
    assert body["summary"]["oldest_pending_s"] is not None
    assert [n["subject"] for n in client.get("/api/notifications?status=sent").get_json()["notifications"]] == \
        [f"{MINE} 空气质量"]
    # the page: the same rows and summary (drawn on the server)
    res = client.post("/_dash-update-component", headers={"X-CSRF-Token": csrf}, json=matrix.payload(
        sapp, matrix.ROUTER, {"url.pathname": "/notifications", "lang.data": "en", "url.search": ""}))
    page = res.get_data(as_text=True)
    assert res.status_code == 200 and f"{MINE} 升级" in page and secret_in(page, data["others"]) == []
    assert "外区机密" not in page and "1 waiting · 0 failed" in page
    # the city centre's officer reads the whole log: three waiting, one failed
    officer, _ = matrix.session(sapp, "officer")
    city = officer.get("/api/notifications").get_json()
    assert len(city["notifications"]) == 5 and (city["summary"]["pending"], city["summary"]["failed"]) == (3, 1)


def test_a_district_centre_logs_the_escalations_of_an_incident_handed_down_to_it(sapp):  # noqa: F811
    """A Futian incident the city centre handed to Luohu's centre (it involves Luohu: ``incidents.centre`` Luohu,
    its district Futian's): the escalations of its task and of its procedure's step are in Luohu's log and summary,
    as the incident is in Luohu's queue, and still in Futian's; never in Nanshan's."""
    data = seed(sapp)
    svc = sapp.server.extensions["panorama"]
    task = data["tasks"]["440304"]
    with svc.engine.begin() as conn:
        conn.execute(update(incidents).where(incidents.c.id == task["incident_id"]).values(centre=OWN))
        outbox.enqueue(conn, key=f"esc:task:{task['id']}.1:1:1:sms:0", channel="sms", address="13800000000",
                       subject="交办 福田 任务升级", body="...",
                       payload={"type": "escalation", "subject": "task", "id": f"{task['id']}.1"})
        outbox.enqueue_many(conn, [{"key": f"esc:step:{task['incident_id']}.1:1:1:sms:0", "channel": "sms",
                                    "address": "13800000000", "subject": "交办 福田 步骤升级", "body": "...",
                                    "payload": {"type": "escalation", "subject": "step",
                                                "id": f"{task['incident_id']}.1"}}])
    handed = ["交办 福田 任务升级", "交办 福田 步骤升级"]
    luohu, _ = district_user(sapp)
    assert task["incident_id"] in [i["id"] for i in luohu.get("/api/incidents").get_json()["incidents"]]
    body = luohu.get("/api/notifications").get_json()
    assert sorted(n["subject"] for n in body["notifications"]) == sorted(handed)
    assert body["summary"]["pending"] == 2
    futian, _ = district_user(sapp, "ft-officer", district="440304")
    assert sorted(n["subject"] for n in futian.get("/api/notifications").get_json()["notifications"]) == sorted(handed)
    nanshan, _ = district_user(sapp, "ns-officer", district="440305")
    assert nanshan.get("/api/notifications").get_json()["notifications"] == []


def test_a_district_centre_reads_the_rosters_and_leaves_their_overrides_to_the_city(make_app, redis_client):
    """On the shipped pack (no district department has a roster): every roster is a city department's, so a
    district centre reads them all and sets none (tests/test_district_scope.py: a pack with district rosters)."""
    app = make_app(BROWSER_PATH="none")
    seed(app)
    client, csrf = district_user(app)
    until = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    # reading: the departments are the city's, not a district's data
    assert client.get("/api/rosters").status_code == 200
    assert client.get("/api/rosters/overrides").status_code == 200
    res = client.post("/api/rosters/overrides", json={**OVERRIDE, "until": until}, headers={"X-CSRF-Token": csrf})
    assert res.status_code == 403 and res.get_json()["error"]["code"] == "city_only"
    officer, officer_csrf = matrix.session(app, "officer")
    made = officer.post("/api/rosters/overrides", json={**OVERRIDE, "until": until},
                        headers={"X-CSRF-Token": officer_csrf})
    assert made.status_code == 201
    res = client.delete(f"/api/rosters/overrides/{made.get_json()['override']['id']}", headers={"X-CSRF-Token": csrf})
    assert res.status_code == 403 and res.get_json()["error"]["code"] == "city_only"
    # the page: no override form, a line saying why; the form's callback refuses as the API does
    page = client.post("/_dash-update-component", headers={"X-CSRF-Token": csrf}, json=matrix.payload(
        app, matrix.ROUTER, {"url.pathname": "/rosters", "lang.data": "en", "url.search": ""})).get_data(as_text=True)
    assert "override-form" not in page and "rosters-city-only" in page
    name = "..override-message.children...override-list.children...roster-list.children.."
    res = client.post("/_dash-update-component", headers={"X-CSRF-Token": csrf}, json=matrix.CALLBACKS[name][1](app))
    assert res.status_code == 200 and "the city centre changes" in res.get_data(as_text=True)
    assert len(officer.get("/api/rosters/overrides").get_json()["overrides"]) == 1  # the officer's only


def test_a_district_users_alerts_page_offers_their_district_only(sapp):  # noqa: F811
    data = seed(sapp)
    client, csrf = district_user(sapp)
    page = client.post("/_dash-update-component", headers={"X-CSRF-Token": csrf}, json=matrix.payload(
        sapp, matrix.ROUTER, {"url.pathname": "/alerts", "lang.data": "zh", "url.search": ""})).get_data(as_text=True)
    assert secret_in(page, data["others"]) == [] and "罗湖区" in page
    # the trail's filter and the silence form name no other district (nor a zone of one): none is theirs to pick
    assert [n for n in ("福田区", "南山区", "宝安区", "龙岗区") if n in page] == []
    zones = sapp.server.extensions["panorama"].city.alert_rules.zones.values()
    assert [z.name for z in zones if z.district != OWN and z.name in page] == []


def test_a_district_users_log_counts_their_messages_however_many_the_city_has_since(sapp):  # noqa: F811
    """A Luohu message that failed before 600 newer Futian ones: still listed and counted for Luohu's centre
    (outbox.district; the log was worked out from the city's newest 500), and none of Futian's is."""
    svc = sapp.server.extensions["panorama"]
    with svc.engine.begin() as conn:
        outbox.enqueue(conn, key="alert:l0:firing:email:x@example.org", channel="email", address="l@example.org",
                       subject=f"{MINE} 旧告警", body="...", payload={"alert": {"id": 1, "district": OWN}})
        conn.execute(update(outbox_table).where(outbox_table.c.key.like("alert:l0:%")).values(status="failed"))
        outbox.enqueue_many(conn, [{"key": f"alert:f{n}:firing:email:x@example.org", "channel": "email",
                                    "address": "f@example.org", "subject": f"外区机密 {n}", "body": "...",
                                    "payload": {"alert": {"id": 2, "district": "440304"}}} for n in range(600)])
    client, _ = district_user(sapp)
    body = client.get("/api/notifications").get_json()
    assert [n["subject"] for n in body["notifications"]] == [f"{MINE} 旧告警"]
    assert {k: body["summary"][k] for k in ("pending", "failed", "sent")} == {"pending": 0, "failed": 1, "sent": 0}
    officer, _ = matrix.session(sapp, "officer")
    city = officer.get("/api/notifications").get_json()["summary"]
    assert (city["pending"], city["failed"]) == (600, 1)


def _outbox_after_upgrade(pg_server_url, before: str, after: str, seed: list[tuple[str, dict]],
                          payloads: dict[str, str], column: str) -> dict:
    """On a scratch database migrated to ``before``: run ``seed`` (SQL, parameters), queue a message per payload,
    migrate to ``after``, and return each message's ``column`` by its key."""
    from alembic import command
    from sqlalchemy import text

    from dashboard.storage.db import make_engine
    from tests.helpers import scratch_database
    from tests.test_migrations import _alembic

    with scratch_database(pg_server_url, f"panorama_{after}") as url:
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                command.upgrade(_alembic(conn), before)
            with engine.begin() as conn:
                for sql, params in seed:
                    conn.execute(text(sql), params)
                for key, payload in payloads.items():
                    conn.execute(text("INSERT INTO outbox (key, channel, address, subject, body, payload, status, "
                                      "attempts, due_ms, created_ms) VALUES (:k, 'email', 'a@example.org', 's', 'b', :p, "
                                      "'pending', 0, 0, 0)"), {"k": key, "p": payload})
            with engine.begin() as conn:
                command.upgrade(_alembic(conn), after)
            with engine.connect() as conn:
                return dict(conn.execute(text(f"SELECT key, {column} FROM outbox")).all())
        finally:
            engine.dispose()


_INCIDENT = ("INSERT INTO incidents (id, domain, kind, district, severity, status, reports, opened_ms, last_report_ms, "
             "updated_ms, title, centre) VALUES (:i, 'incident', 'fire', :d, 3, 'dispatched', 1, 0, 0, 0, 't', :c)")
_TASK = ("INSERT INTO tasks (id, incident_id, department, state, version, created_ms, updated_ms, ack_due_ms, "
         "resolve_due_ms) VALUES (:t, :i, 'fire', 'dispatched', 1, 0, 0, 0, 0)")


def test_the_messages_queued_before_0023_are_given_their_district(pg_server_url):
    """Migration 0023 gives each message already queued the district it tells of: an alert's notification its
    own, an escalation of an alert or of a task its alert's or incident's; the city's stay NULL."""
    seed = [("INSERT INTO alerts (id, rule, scope, level, status, district, started_ms, updated_ms, title, title_en, "
             "version) VALUES (7, 'r', 'district:440304', 'red', 'firing', '440304', 0, 0, 't', 't', 1)", {}),
            (_INCIDENT, {"i": 5, "d": "440303", "c": None}), (_TASK, {"t": 9, "i": 5})]
    got = _outbox_after_upgrade(pg_server_url, "0022", "0023", seed, {
        "a": '{"alert": {"id": 7, "district": "440305"}}',
        "e1": '{"type": "escalation", "subject": "alert", "id": "7"}',
        "e2": '{"type": "escalation", "subject": "task", "id": "9.1"}',
        "c": '{"hook": "city"}', "x": "not json"}, "district")
    assert got == {"a": "440305", "e1": "440304", "e2": "440303", "c": None, "x": None}


def test_the_escalations_queued_before_0024_are_given_the_centre_running_their_incident(pg_server_url):
    """Migration 0024 gives each escalation of a task or a procedure step already queued the district centre running
    its incident, where that is another district's (handed down or across); every other message keeps none."""
    seed = []
    for inc, centre in ((5, OWN), (6, "440304"), (8, None)):  # 5 handed to Luohu, 6 Futian's own
        seed += [(_INCIDENT, {"i": inc, "d": "440304", "c": centre}), (_TASK, {"t": inc + 10, "i": inc})]
    got = _outbox_after_upgrade(pg_server_url, "0023", "0024", seed, {
        "t5": '{"type": "escalation", "subject": "task", "id": "15.1"}',
        "s5": '{"type": "escalation", "subject": "step", "id": "5.2"}',
        "t6": '{"type": "escalation", "subject": "task", "id": "16.1"}',
        "t8": '{"type": "escalation", "subject": "task", "id": "18.1"}',
        "a": '{"alert": {"id": 7, "district": "440305"}}', "x": "not json"}, "centre")
    assert got == {"t5": OWN, "s5": OWN, "t6": None, "t8": None, "a": None, "x": None}
