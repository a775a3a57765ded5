"""Briefings on real PostgreSQL and Redis: numbers equal to direct SQL, exactly once per slot, catch-up, API."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, text

from dashboard.dispatch import board as d
from dashboard.storage import users
from dashboard.briefings import periods
from dashboard.storage import briefings as store
from dashboard.briefings.generate import generate_slot
from dashboard.briefings.schedule import BriefingScheduler
from dashboard.storage.models import briefings, incidents
from tests.helpers import make_event, wait_for
from tests.test_api import ingest_now

PASSWORD = "correct horse battery staple"
TZ = "Asia/Shanghai"
CRON = "0 8,18 * * *"
SLOT = datetime(2026, 11, 20, 8, 0, tzinfo=ZoneInfo(TZ))
START = periods.to_ms(datetime(2026, 11, 19, 18, 0, tzinfo=ZoneInfo(TZ)))  # the slot before
END = periods.to_ms(SLOT)
PREV_START = START - (END - START)
MIN = 60_000
DISTRICTS = ("futian", "nanshan", "luohu", "baoan", "longgang", "yantian")
KINDS = {"security": "theft", "traffic": "congestion", "environment": "aqi"}
# No browser: these tests are about numbers, slots and access; tests/test_briefings_render.py draws.
NO_BROWSER = {"BROWSER_PATH": "none"}


def seed(app) -> list[int]:
    """Store events around the period (its edges included) and dispatch incidents; return the incident ids."""
    evs: dict[str, list[dict]] = {"security": [], "traffic": [], "environment": [], "incident": []}
    n = 0
    # Inside the period, spread over it, two severities; the first at its very start, the last in its last ms.
    for i in range(84):
        dom = ("security", "traffic", "environment")[i % 3]
        ts = END - 1 if i == 83 else START + i * 10 * MIN
        evs[dom].append(make_event(n, kind=KINDS[dom], district=DISTRICTS[i % len(DISTRICTS)], ts=ts,
                                   severity=1 + (i % 2), title=f"事件 {n}"))
        n += 1
    # The period before, fewer: one in its last ms; and one at this period's end (in neither).
    for i, ts in enumerate([PREV_START, PREV_START + 90 * MIN, START - 1, END]):
        dom = ("security", "traffic", "environment", "traffic")[i]
        evs[dom].append(make_event(n, kind=KINDS[dom], district=DISTRICTS[i], ts=ts, severity=2))
        n += 1
    # Incidents far apart, so none joins another; the last opened in the period before.
    times = [START + 30 * MIN, START + 200 * MIN, START + 400 * MIN, START + 600 * MIN, PREV_START + 60 * MIN]
    for i, ts in enumerate(times):
        evs["incident"].append(make_event(n, kind=("fire", "flood", "gas_leak", "medical", "fire")[i],
                                          district=DISTRICTS[i], ts=ts, severity=3 + i % 2,
                                          lat=22.5 + i * 0.05, lon=113.9 + i * 0.05, title=f"重点事件 {i}"))
        n += 1
    ingest_now(app, evs)
    svc = app.server.extensions["panorama"]
    with svc.engine.connect() as conn:
        by_title = {title: iid for iid, title in conn.execute(select(incidents.c.id, incidents.c.title))}
    inc = [by_title[f"重点事件 {i}"] for i in range(5)]

    def dispatch(incident, deps, at):
        with svc.engine.begin() as conn:
            return d.dispatch(conn, incident, deps, "olga", None, at, svc.city.rules, svc.city).tasks

    def move(task, to, at, version):
        with svc.engine.begin() as conn:
            d.transition(conn, task["id"], to, version, "liaison", "ok", at)

    t0 = START + 40 * MIN
    fire, police = dispatch(inc[0], ["fire", "police"], t0)
    move(fire, "acknowledged", t0 + 90_000, 1)
    move(fire, "resolved", t0 + 50 * MIN, 2)
    move(police, "acknowledged", t0 + 150_000, 1)
    t1 = START + 210 * MIN
    water, fire2 = dispatch(inc[1], ["water", "fire"], t1)
    move(fire2, "acknowledged", t1 + 200_000, 1)
    move(fire2, "on_scene", t1 + 20 * MIN, 2)
    move(fire2, "resolved", t1 + 100 * MIN, 3)
    # water never acknowledges: the deadline checker escalates it inside the period
    with svc.engine.begin() as conn:
        assert water["id"] in {t["id"] for t in d.escalate_overdue(conn, t1 + 6 * 60 * MIN)}
    # dispatched in the period before, acknowledged in this one
    (old,) = dispatch(inc[4], ["fire"], START - 20 * MIN)
    move(old, "acknowledged", START + 5 * MIN, 1)
    # after the period: none of it counts
    (late,) = dispatch(inc[3], ["health"], END + MIN)
    move(late, "acknowledged", END + 2 * MIN, 1)
    return inc


def at(dt: datetime):
    """Return a clock stuck at ``dt``."""
    return lambda: dt


@pytest.fixture
def bapp(make_app, redis_client):
    """Give an app without a browser for briefings, and a user of each role."""
    app = make_app(**NO_BROWSER)
    svc = app.server.extensions["panorama"]
    deps = [x["code"] for x in svc.city.departments]
    for name, role in [("olga", "officer"), ("cmdr", "commander"), ("vic", "viewer"), ("fay", "liaison"),
                       ("root", "admin")]:
        users.create_user(svc.engine, name, PASSWORD, role, "fire" if role == "liaison" else None, deps)
    return app


def session(app, name: str | None):
    """Return a test client signed in as ``name`` (None: anonymous) and its CSRF token."""
    client = app.server.test_client()
    if name is None:
        return client, ""
    r = client.post("/api/session", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.get_data(as_text=True)
    return client, r.json["csrf_token"]


# --- the numbers ------------------------------------------------------------------------------------------

def test_a_briefing_has_the_numbers_direct_queries_give(bapp):
    svc = bapp.server.extensions["panorama"]
    seed(bapp)
    trigger = periods.make_trigger(CRON, TZ)
    row = generate_slot(svc, trigger, SLOT, END + 5 * MIN)
    assert row["status"] == "ready" and row["slot"] == "schedule:2026-11-20T08:00+08:00"
    data = store.get(svc.engine, row["id"], "data")["data"]
    assert data["period"] == {"start": "2026-11-19T18:00:00+08:00", "end": "2026-11-20T08:00:00+08:00",
                              "minutes": 840}
    assert data["previous_period"] == {"start": "2026-11-19T04:00:00+08:00", "end": "2026-11-19T18:00:00+08:00"}
    between = "ts_ms >= :s AND ts_ms < :e"
    with svc.engine.connect() as conn:
        def q(sql, s=START, e=END):
            return conn.execute(text(sql), {"s": s, "e": e}).all()

        by_domain = dict(q(f"SELECT domain, count(*) FROM events WHERE {between} GROUP BY domain"))
        prev_domain = dict(q(f"SELECT domain, count(*) FROM events WHERE {between} GROUP BY domain",
                             PREV_START, START))
        by_district = dict(q(f"SELECT district, count(*) FROM events WHERE {between} GROUP BY district"))
        by_sev = dict(q(f"SELECT severity, count(*) FROM events WHERE {between} GROUP BY severity"))
        opened = q("SELECT count(*) FROM incidents WHERE opened_ms >= :s AND opened_ms < :e")[0][0]
        opened_by_district = dict(q("SELECT district, count(*) FROM incidents WHERE opened_ms >= :s AND "
                                    "opened_ms < :e GROUP BY district"))
        tasks_by_dep = {dep: (n, i) for dep, n, i in q(
            "SELECT department, count(*), count(DISTINCT incident_id) FROM tasks "
            "WHERE created_ms >= :s AND created_ms < :e GROUP BY department")}
        medians = {(dep, to): (n, float(m)) for dep, to, n, m in q(
            "SELECT t.department, e.to_state, count(*), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY (e.at_ms - t.created_ms) / 1000.0) "
            "FROM task_events e JOIN tasks t ON t.id = e.task_id WHERE e.action = 'transition' "
            "AND e.to_state IN ('acknowledged', 'resolved') AND e.at_ms >= :s AND e.at_ms < :e "
            "GROUP BY t.department, e.to_state")}
        missed = dict(q("SELECT t.department, count(*) FROM task_events e JOIN tasks t ON t.id = e.task_id "
                        "WHERE e.action = 'escalate' AND e.at_ms >= :s AND e.at_ms < :e GROUP BY t.department"))
        # the incidents reported in the period (fewer than ten), in the order of collect.importance
        top = {r[0] for r in q("SELECT id FROM incidents WHERE opened_ms < :e AND last_report_ms >= :s")}
        statuses = dict(q("SELECT id, status FROM incidents WHERE opened_ms < :e"))
    k = data["kpis"]
    assert {dom: v["count"] for dom, v in k["by_domain"].items()} == \
        {dom: by_domain.get(dom, 0) for dom in ("security", "traffic", "environment", "incident")}
    assert {dom: v["previous"] for dom, v in k["by_domain"].items()} == \
        {dom: prev_domain.get(dom, 0) for dom in ("security", "traffic", "environment", "incident")}
    assert k["events"] == sum(by_domain.values()) == 88  # 84 + 4 incident reports; the edges counted right
    assert k["events_previous"] == sum(prev_domain.values()) == 4
    assert k["events_change_pct"] == round(100 * (88 - 4) / 4, 1)
    assert k["by_severity"] == {str(s): by_sev.get(s, 0) for s in (1, 2, 3, 4)}
    assert k["incidents_opened"] == opened == 4 and k["incidents_opened_previous"] == 1
    codes = {x.slug: x.code for x in svc.city.districts}
    assert {x["code"]: x["total"] for x in data["districts"]} == \
        {x.code: by_district.get(x.code, 0) for x in svc.city.districts}
    assert {x["code"]: x["incidents_opened"] for x in data["districts"]} == \
        {x.code: opened_by_district.get(x.code, 0) for x in svc.city.districts}
    assert data["districts"][[x["code"] for x in data["districts"]].index(codes["futian"])]["total"] > 0
    dispatch = {r["department"]: r for r in data["dispatch"]}
    assert {dep: (r["tasks"], r["incidents"]) for dep, r in dispatch.items() if r["tasks"]} == tasks_by_dep
    for dep, r in dispatch.items():
        n_ack, med_ack = medians.get((dep, "acknowledged"), (0, None))
        n_res, med_res = medians.get((dep, "resolved"), (0, None))
        assert (r["acknowledged"], r["median_ack_s"]) == (n_ack, med_ack), dep
        assert (r["resolved"], r["median_resolve_s"]) == (n_res, med_res), dep
        assert r["deadlines_missed"] == missed.get(dep, 0), dep
    # the numbers themselves, so a query that agrees with a wrong SQL above still fails
    assert dispatch["fire"]["acknowledged"] == 3 and dispatch["fire"]["median_ack_s"] == 200.0
    assert dispatch["fire"]["resolved"] == 2 and dispatch["fire"]["median_resolve_s"] == (3000 + 6000) / 2
    # water never acknowledged; police acknowledged but had not resolved by its deadline
    assert dispatch["water"]["deadlines_missed"] == 1 == dispatch["police"]["deadlines_missed"]
    assert k["deadlines_missed"] == sum(missed.values()) == 2
    assert "health" not in dispatch and k["tasks_dispatched"] == 4
    assert {i["id"] for i in data["top_incidents"]} == top
    scores = [i["importance"] for i in data["top_incidents"]]
    assert scores == sorted(scores, reverse=True)
    assert all(i["status"] == statuses[i["id"]] for i in data["top_incidents"])
    assert {t["department"] for i in data["top_incidents"] for t in i["tasks"]} >= {"fire", "police", "water"}
    assert sum(sum(v) for v in data["trend"]["series"].values()) == 88
    assert row["headline"]["events"] == 88 and row["headline"]["deadlines_missed"] == 2
    assert data["images"] is False and data["note"]  # no browser here, and it says so


# --- the schedule -----------------------------------------------------------------------------------------

def replicas(make_app, n: int = 2):
    """Return ``n`` apps on the same database, each with its own engine: replicas of one deployment."""
    return [make_app(**NO_BROWSER) for _ in range(n)]


def test_a_slot_fires_once_with_two_schedulers_running(make_app, redis_client):
    apps = replicas(make_app)
    clock = at(SLOT + timedelta(seconds=2))  # the job runs just after 08:00
    schedulers = [BriefingScheduler(a.server.extensions["panorama"], clock=clock) for a in apps]
    try:
        for s in schedulers:
            s.start()
        # both catch-ups ran: a fresh database has no slot to make up
        wait_for(lambda: all(len(s.runs) >= 1 for s in schedulers), message="the catch-ups")
        assert [list(s.runs) for s in schedulers] == [[None], [None]]
        # APScheduler fires the cron job of both replicas now; the controlled clock says which slot is due
        now = datetime.now(ZoneInfo(TZ))
        for s in schedulers:
            s.scheduler.modify_job("briefing", next_run_time=now)
        wait_for(lambda: all(len(s.runs) >= 2 for s in schedulers), message="both replicas' slot jobs")
        # the cron job itself is the configured schedule in the city's time zone
        job = schedulers[0].scheduler.get_job("briefing")
        assert str(job.trigger) == "cron[month='*', day='*', day_of_week='*', hour='8,18', minute='0']"
        assert str(job.trigger.timezone) == TZ
    finally:
        for s in schedulers:
            s.stop()
    made = [s.runs[1] for s in schedulers if s.runs[1] is not None]
    assert len(made) == 1 and made[0]["slot"] == periods.slot_key(SLOT)
    rows = store.list_briefings(apps[0].server.extensions["panorama"].engine)
    assert [r["slot"] for r in rows] == [periods.slot_key(SLOT)] and rows[0]["status"] == "ready"
    assert (rows[0]["period_start_ms"], rows[0]["period_end_ms"]) == (START, END)


def race(apps, when: datetime, timeout: float) -> list:
    """Return two schedulers per app, each clocked at ``when``, after running their due slots at once (a barrier
    lets them go together) and all have ended within ``timeout`` seconds."""
    schedulers = [BriefingScheduler(a.server.extensions["panorama"], clock=at(when)) for a in apps for _ in range(2)]
    go = threading.Barrier(len(schedulers))

    def run(s):
        go.wait()
        s.run_due()

    threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
    assert not any(th.is_alive() for th in threads)
    return schedulers


def test_many_racing_runs_of_one_slot_make_one_briefing(make_app, redis_client):
    apps = replicas(make_app, 3)
    schedulers = race(apps, SLOT + timedelta(minutes=1), timeout=60)
    assert sum(r is not None for s in schedulers for r in s.runs) == 1
    with apps[0].server.extensions["panorama"].engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(briefings)).scalar() == 1


def test_a_slot_missed_while_down_is_made_up_on_start(make_app, redis_client):
    (app,) = replicas(make_app, 1)
    svc = app.server.extensions["panorama"]
    yesterday = SLOT - timedelta(hours=14)  # 2026-11-19 18:00: made while the service ran
    BriefingScheduler(svc, clock=at(yesterday + timedelta(seconds=1))).run_due()
    # down from 2026-11-19 19:00 to 2026-11-20 09:30: the 08:00 slot was missed
    s = BriefingScheduler(svc, clock=at(SLOT + timedelta(hours=1, minutes=30)))
    with s:
        wait_for(lambda: s.runs, message="the catch-up at start")
    assert s.runs[0] is not None and s.runs[0]["slot"] == periods.slot_key(SLOT)
    rows = store.list_briefings(svc.engine)
    assert [r["slot"] for r in rows] == [periods.slot_key(SLOT), periods.slot_key(yesterday)]
    assert (rows[0]["period_start_ms"], rows[0]["period_end_ms"]) == (START, END)
    # started again later the same morning: nothing more to make up
    again = BriefingScheduler(svc, clock=at(SLOT + timedelta(hours=2)))
    assert again.run_due(catch_up=True) is None
    assert len(store.list_briefings(svc.engine)) == 2


def test_a_fresh_install_makes_no_briefing_at_start_and_old_ones_are_pruned(make_app, redis_client):
    (app,) = replicas(make_app, 1)
    svc = app.server.extensions["panorama"]
    assert BriefingScheduler(svc, clock=at(SLOT + timedelta(hours=1))).run_due(catch_up=True) is None
    assert store.list_briefings(svc.engine) == []
    with svc.engine.begin() as conn:
        conn.execute(insert(briefings), [
            {"slot": f"manual:{i}", "trigger": "manual", "status": "ready", "period_start_ms": 0,
             "period_end_ms": 1, "created_ms": periods.to_ms(SLOT) - days * 86_400_000, "lang": "zh"}
            for i, days in enumerate((91, 89))])
    s = BriefingScheduler(svc, clock=at(SLOT + timedelta(seconds=1)))
    assert s.run_due() is not None  # the 08:00 briefing, and the one older than 90 days gone
    assert sorted(r["slot"] for r in store.list_briefings(svc.engine)) == ["manual:1", periods.slot_key(SLOT)]


def test_a_claim_left_by_a_dead_process_is_taken_over(make_app, redis_client):
    (app,) = replicas(make_app, 1)
    svc = app.server.extensions["panorama"]
    now = periods.to_ms(SLOT)
    key = periods.slot_key(SLOT)
    assert store.claim(svc.engine, key, "schedule", None, START, END, now, "zh") is not None
    assert store.claim(svc.engine, key, "schedule", None, START, END, now + 60_000, "zh") is None
    later = now + store.STALE_CLAIM_MS + 1
    assert store.claim(svc.engine, key, "schedule", None, START, END, later, "zh") is not None
    assert store.claim(svc.engine, key, "schedule", None, START, END, later, "zh") is None


def test_the_schedule_s_slots_and_periods():
    trigger = periods.make_trigger(CRON, TZ)
    assert periods.latest_slot(trigger, SLOT) == SLOT
    assert periods.latest_slot(trigger, SLOT - timedelta(seconds=1)) == SLOT - timedelta(hours=14)
    assert periods.scheduled_period(trigger, SLOT) == (START, END)
    # on request at 08:20: since the slot an hour old, 18:00 the day before, to the current whole minute
    now = periods.to_ms(SLOT + timedelta(minutes=20, seconds=30))
    assert periods.manual_period(trigger, now, TZ) == (START, END + 20 * MIN)
    assert periods.make_trigger("off", TZ) is None
    with pytest.raises(ValueError):
        periods.make_trigger("0 25 * * *", TZ)


# --- the API ----------------------------------------------------------------------------------------------

def test_the_api_needs_sign_in_and_the_right_role(bapp):
    anon, _ = session(bapp, None)
    assert anon.get("/api/briefings").status_code == 401
    r = anon.post("/api/briefings")
    assert r.status_code == 401 and r.json["error"]["code"] == "not_signed_in"
    viewer, csrf = session(bapp, "vic")
    assert viewer.get("/api/briefings").status_code == 200
    r = viewer.post("/api/briefings", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    liaison, csrf = session(bapp, "fay")
    assert liaison.post("/api/briefings", headers={"X-CSRF-Token": csrf}).status_code == 403
    officer, csrf = session(bapp, "olga")
    r = officer.post("/api/briefings")
    assert r.status_code == 403 and r.json["error"]["code"] == "csrf"
    assert store.list_briefings(bapp.server.extensions["panorama"].engine) == []


def test_generate_now_list_fetch_and_download(bapp):
    # an incident whose title is markup: the report shows it as text
    ingest_now(bapp, {"traffic": [make_event(i, ts=int(datetime.now().timestamp() * 1000) - 5 * MIN,
                                             severity=3 if i == 0 else 1, kind="accident",
                                             title="<script>alert(1)</script>") for i in range(3)]})
    officer, csrf = session(bapp, "olga")
    r = officer.post("/api/briefings", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.get_data(as_text=True)
    first = r.json
    assert first["trigger"] == "manual" and first["requested_by"] == "olga" and first["status"] == "ready"
    assert r.headers["Location"] == f"/api/briefings/{first['id']}"
    assert first["headline"]["events"] == 3
    commander, csrf2 = session(bapp, "cmdr")
    second = commander.post("/api/briefings", headers={"X-CSRF-Token": csrf2}).json
    viewer, _ = session(bapp, "vic")
    listed = viewer.get("/api/briefings").json
    assert [b["id"] for b in listed["briefings"]] == [second["id"], first["id"]]  # newest first
    assert listed["schedule"] == CRON and listed["tz"] == TZ
    doc = listed["briefings"][1]
    assert set(doc["period"]) == {"start", "end"} and doc["headline"]["events"] == 3
    # without a browser: HTML and JSON, no images and no PDF, and the list says why
    assert doc["images"] is False and doc["pdf"] is False and doc["note"] and doc["links"]["pdf"] is None
    one = viewer.get(f"/api/briefings/{first['id']}")
    assert one.status_code == 200 and one.json["data"]["kpis"]["by_domain"]["traffic"]["count"] == 3
    dl = viewer.get(f"/api/briefings/{first['id']}?download=1")
    assert dl.headers["Content-Disposition"].startswith("attachment; filename=\"panorama-briefing-")
    assert dl.headers["Content-Disposition"].endswith('.json"')
    page = viewer.get(f"/api/briefings/{first['id']}.html")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert page.headers["Content-Disposition"].startswith("inline; filename=\"panorama-briefing-")
    body = page.get_data(as_text=True)
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img" not in body and "id=\"briefing-note\"" in body
    r = viewer.get(f"/api/briefings/{first['id']}.pdf")
    assert r.status_code == 404 and r.json["error"]["code"] == "no_pdf"


def test_unknown_briefings_are_404_json(bapp):
    viewer, _ = session(bapp, "vic")
    for path in ("/api/briefings/999", "/api/briefings/999.html", "/api/briefings/999.pdf", "/api/briefings/x"):
        r = viewer.get(path)
        assert r.status_code == 404 and r.is_json and r.json["error"]["code"] == "not_found", path


def test_a_briefing_being_made_is_listed_but_has_no_report_yet(bapp):
    svc = bapp.server.extensions["panorama"]
    bid = store.claim(svc.engine, "schedule:x", "schedule", None, START, END, END, "zh")
    viewer, _ = session(bapp, "vic")
    assert viewer.get("/api/briefings").json["briefings"][0]["status"] == "generating"
    r = viewer.get(f"/api/briefings/{bid}.html")
    assert r.status_code == 404 and r.json["error"]["code"] == "not_ready"


def test_briefings_are_off_with_no_schedule(make_app, redis_client):
    app = make_app(PANORAMA_BRIEFING_CRON="off", **NO_BROWSER)
    s = BriefingScheduler(app.server.extensions["panorama"]).start()
    assert not s.scheduler.running
    s.stop()


def test_the_report_s_language_comes_from_the_configuration(make_app, redis_client):
    app = make_app(PANORAMA_BRIEFING_LANG="en", **NO_BROWSER)
    svc = app.server.extensions["panorama"]
    row = BriefingScheduler(svc, clock=at(SLOT + timedelta(seconds=1))).run_due()
    full = store.get(svc.engine, row["id"], "html", "data")
    assert full["lang"] == "en" and full["data"]["lang"] == "en"
    assert "Shenzhen City Operations Briefing" in full["html"] and '<html lang="en">' in full["html"]


# --- one at a time ----------------------------------------------------------------------------------------

def test_parallel_requests_make_one_briefing_at_a_time_the_others_get_429(bapp, monkeypatch):
    """Eight officers' POSTs at once over HTTP: one briefing is made, the other seven are told to come back."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from dashboard.briefings import generate, lock
    from tests.serve import serving

    release, making = threading.Event(), []
    real_collect = generate.collect

    def slow_collect(*args, **kwargs):  # hold the first briefing open until the others have been answered
        making.append(threading.get_ident())
        assert release.wait(60)
        return real_collect(*args, **kwargs)

    monkeypatch.setattr(generate, "collect", slow_collect)
    svc = bapp.server.extensions["panorama"]
    with serving(bapp) as url:
        signed = requests.post(f"{url}/api/session", json={"username": "olga", "password": PASSWORD})
        cookies, headers = signed.cookies, {"X-CSRF-Token": signed.json()["csrf_token"]}
        barrier = threading.Barrier(8)

        def post(_i):
            barrier.wait(timeout=30)
            return requests.post(f"{url}/api/briefings", cookies=cookies, headers=headers, timeout=90)

        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(post, i) for i in range(8)]
            try:
                wait_for(lambda: sum(f.done() for f in futures) >= 7, timeout=30,
                         message="seven answers while one briefing is being made")
            finally:
                release.set()
            answers = [f.result() for f in futures]
        assert sorted(a.status_code for a in answers) == [201] + [429] * 7
        assert len(making) == 1  # only one request ever got as far as making one
        for busy in (a for a in answers if a.status_code == 429):
            assert busy.json()["error"]["code"] == "briefing_in_progress" and busy.json()["error"]["message"]
            assert 1 <= int(busy.headers["Retry-After"]) <= lock.RETRY_AFTER_S
        assert len(store.list_briefings(svc.engine)) == 1  # a refused request leaves no row behind
        assert svc.redis.get(lock.KEY) is None  # given back
        again = requests.post(f"{url}/api/briefings", cookies=cookies, headers=headers, timeout=90)
        assert again.status_code == 201 and len(making) == 2


def test_a_lock_left_by_a_dead_process_times_out(bapp, monkeypatch):
    from dashboard.briefings import lock

    svc = bapp.server.extensions["panorama"]
    officer, csrf = session(bapp, "olga")
    svc.redis.set(lock.KEY, "a process that died", ex=2)
    r = officer.post("/api/briefings", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 2
    wait_for(lambda: officer.post("/api/briefings", headers={"X-CSRF-Token": csrf}).status_code == 201, timeout=10,
             interval=0.5, message="the dead holder's lock timed out")


def test_the_lock_is_given_back_only_by_its_holder(redis_client):
    from dashboard.briefings import lock

    token = lock.acquire(redis_client)
    with pytest.raises(lock.BriefingBusy):
        lock.acquire(redis_client)
    redis_client.set(lock.KEY, "taken over after a timeout")
    lock.release(redis_client, token)  # no longer ours: left alone
    assert redis_client.get(lock.KEY) == b"taken over after a timeout"
    redis_client.delete(lock.KEY)
    with lock.one_at_a_time(redis_client):
        assert redis_client.ttl(lock.KEY) > 0
    assert redis_client.get(lock.KEY) is None


def test_a_scheduled_briefing_waits_its_turn_and_is_never_lost_to_the_lock(bapp, monkeypatch, caplog):
    from dashboard.briefings import generate, lock

    svc = bapp.server.extensions["panorama"]
    trigger = periods.make_trigger(CRON, TZ)
    held = lock.acquire(svc.redis)  # a briefing on request being made
    waiting = threading.Event()
    monkeypatch.setattr(lock, "sleep", lambda s: (waiting.set(), time.sleep(s)))
    made = {}
    worker = threading.Thread(target=lambda: made.update(row=generate_slot(svc, trigger, SLOT, END + 5 * MIN)))
    worker.start()
    assert waiting.wait(10)  # refused the lock, it waits
    assert store.list_briefings(svc.engine)[0]["status"] == "generating"  # claimed, not made while it waits
    lock.release(svc.redis, held)
    worker.join(timeout=30)
    assert made["row"]["status"] == "ready"
    # the bus holding the lock beyond the wait (or down): made all the same, and said so
    monkeypatch.setattr(generate, "SCHEDULED_WAIT_S", 0)
    held = lock.acquire(svc.redis)
    row = generate_slot(svc, trigger, SLOT + timedelta(hours=10), END + 10 * 60 * MIN)
    assert row["status"] == "ready" and "made without the lock" in caplog.text
    assert svc.redis.get(lock.KEY) == held.encode()  # the other holder's lock is left alone
