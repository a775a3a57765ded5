"""District centres (SPEC section 13): a user of Luohu's district centre (440303) reads nothing of another district,
over REST, through any Dash callback, or on the socket -- the way tests/test_access_matrix.py holds the roles.

The city holds data in three districts: Luohu's (the user's own, titles with 罗湖本区), Futian's and Nanshan's
(titles with 外区机密, and every incident the access matrix's payloads open: 火情 N, in Futian). Every answer
to the district user is searched for the other districts' titles and ids.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from datetime import datetime, timezone

import orjson
import pytest
from sqlalchemy import insert
from websockets.asyncio.client import connect

from dashboard.dispatch import board as d
from dashboard.core.city import PACKS_DIR
from dashboard.dispatch import desk, major
from dashboard.storage import rosters as roster_store
from dashboard.storage import users as accounts
from dashboard.storage.models import alerts
from feeds.pipeline import now_ms
from tests import test_access_matrix as matrix
from tests.helpers import TEST_PASSWORD
from tests.test_api import ingest_now, now_event
from tests.test_gateway import fresh_ticket, recv, recv_until, running

OWN, OWN_SLUG = "440303", "luohu"
SECRETS = ("外区机密", "OTHER-SECRET", "福田区空气质量", "Futian: AQI")  # in other districts' titles only
MATRIX_TITLE = re.compile(r"火情 \d")  # the matrix's incidents (tests/test_access_matrix.py), all in Futian
MINE = "罗湖本区"
# Duty rosters of two district governments (departments.yaml names their districts), added to the matrix's pack: a
# district centre reads the city departments' rosters and its own district's, never another district's.
DISTRICT_ROSTERS = """
  - department: district_{code}
    policy: standard
    people:
      - {{id: d{code}_off, name: {mark}值班员, name_en: {mark_en} duty officer, role: officer, phone: "+8675500009{n}01", email: d{code}_off@duty.example.org}}
      - {{id: d{code}_dep, name: {mark}副值班长, name_en: {mark_en} deputy, role: deputy, phone: "+8675500009{n}02", email: d{code}_dep@duty.example.org}}
      - {{id: d{code}_cmd, name: {mark}值班领导, name_en: {mark_en} leader, role: commander, phone: "+8675500009{n}03", email: d{code}_cmd@duty.example.org}}
    shifts:
      - {{name: leader, days: daily, time: "00:00-24:00", who: [d{code}_off, d{code}_dep, d{code}_cmd]}}
"""


def district_rosters_pack(tmp_path) -> str:
    """Return the path of Shenzhen's pack with rosters for Luohu's government (its people's names marked as Luohu's)
    and Futian's (marked as another district's secret)."""
    path = tmp_path / "pack"
    shutil.copytree(PACKS_DIR / "shenzhen", path)
    extra = DISTRICT_ROSTERS.format(code=OWN, mark=MINE, mark_en="Luohu", n=1) + \
        DISTRICT_ROSTERS.format(code="440304", mark="外区机密", mark_en="OTHER-SECRET", n=2)
    with open(path / "rosters.yaml", "a", encoding="utf-8") as f:
        f.write(extra)
    return str(path)


def seed(app) -> dict:
    """Put events, incidents (one dispatched, one a major incident), tasks and alerts in Luohu, Futian and Nanshan;
    return the ids of the other districts' incidents and tasks and of Luohu's."""
    svc = app.server.extensions["panorama"]
    evs = []
    for i, (district, mark) in enumerate((("luohu", MINE), ("futian", "外区机密"), ("nanshan", "外区机密"))):
        evs += [now_event(900 + 10 * i + j, kind="fire", severity=3, district=district, lat=22.55, lon=114.1 + i / 20,
                          title=f"{mark} {district} {j}") for j in range(2)]
    ingest_now(app, {"incident": evs, "traffic": [now_event(990 + i, district=dist, title=f"{mark} 拥堵 {i}")
                                                  for i, (dist, mark) in enumerate((("luohu", MINE),
                                                                                    ("futian", "外区机密")))]})
    with svc.engine.connect() as conn:
        rows = desk.queue(conn)
    mine = [r for r in rows if r["district"] == OWN]
    others = [r for r in rows if r["district"] != OWN]
    assert mine and len({r["district"] for r in others}) == 2
    tasks = {}
    for inc in (mine[0], others[0]):
        tasks[inc["district"]] = desk.write(svc, d.dispatch, inc["id"], ["fire"], "olga", None, now_ms(),
                                            svc.city.rules, svc.city).tasks[0]
    with svc.engine.begin() as conn:
        major.declare(conn, others[-1]["id"], 2, "olga", None, now_ms())
        major.declare(conn, mine[-1]["id"], 3, "olga", None, now_ms())
        for district, title, title_en in ((OWN, f"{MINE} 空气质量指数 150", "Luohu AQI 150"),
                                          ("440305", "外区机密 南山区空气质量指数 190", "OTHER-SECRET Nanshan AQI 190"),
                                          ("440304", "外区机密 福田区 190", "OTHER-SECRET Futian AQI 190")):
            conn.execute(insert(alerts).values(
                rule="aqi_moderate", scope=f"district:{district}", level="orange", status="firing", district=district,
                started_ms=now_ms() - 600_000, fired_ms=now_ms(), value=150, title=title, title_en=title_en,
                updated_ms=now_ms()))
        if f"district_{OWN}" in svc.city.rosters.rosters:  # the matrix's pack: an override on each district's roster
            for code, person, mark in ((OWN, f"d{OWN}_dep", MINE), ("440304", "d440304_dep", "外区机密")):
                roster_store.create(conn, department=f"district_{code}", person=person, role="officer",
                                    from_ms=now_ms(), until_ms=now_ms() + 3_600_000, reason=f"{mark} 调班",
                                    actor="olga", now_ms=now_ms())
    return {"mine": mine, "others": others, "tasks": tasks}


def district_user(app, username: str = "lh-officer", role: str = "officer", district: str = OWN):
    """Return a test client signed in as a user of ``district``'s centre, and its CSRF token."""
    svc = app.server.extensions["panorama"]
    accounts.create_user(svc.engine, username, TEST_PASSWORD, role, None, [], district=district,
                         districts=[x.code for x in svc.city.districts])
    client = app.server.test_client()
    res = client.post("/api/session", json={"username": username, "password": TEST_PASSWORD})
    assert res.status_code == 200
    return client, res.get_json()["csrf_token"]


def secret_in(text: str, others: list[dict]) -> list[str]:
    """Return what of another district ``text`` holds: a secret title, another district's incident id."""
    found = [s for s in SECRETS if s in text] + MATRIX_TITLE.findall(text)
    for inc in others:
        if re.search(rf'"incident_id": ?{inc["id"]}\b', text):  # a task of it
            found.append(f"incident {inc['id']}")
    return found


@pytest.fixture
def sapp(make_app, redis_client, tmp_path):
    """Give an app for the matrix (briefings as HTML and JSON only: no Chromium needed), on Shenzhen's pack with
    rosters of Luohu's and Futian's governments (DISTRICT_ROSTERS)."""
    return make_app(BROWSER_PATH="none", PANORAMA_CITY=district_rosters_pack(tmp_path))


# path -> what the district user gets: 200 with nothing of another district, or the status and error code
REST_READS = {
    "/api/summary": 200, "/api/summary?live=1": 200, "/api/summary?window=24h": 200,
    f"/api/districts/{OWN}/summary": 200, "/api/districts/futian/summary": (403, "other_district"),
    f"/api/districts/{OWN_SLUG}/events": 200, "/api/districts/440305/events": (403, "other_district"),
    "/api/incidents": 200, "/api/incidents?status=all": 200, "/api/tasks": 200, "/api/tasks?department=fire": 200,
    "/api/alerts": 200, "/api/alerts?status=firing": 200, "/api/units": 200, "/api/units?department=fire": 200,
    "/api/major": 200, "/api/briefings": 200,
    f"/api/districts/{OWN_SLUG}/events.csv": 200, f"/api/districts/{OWN_SLUG}/events.xlsx": 200,
    "/api/districts/futian/events.csv": (403, "other_district"),
    "/api/districts/futian/events.xlsx": (403, "other_district"),
    "/api/incidents.csv": 200, "/api/incidents.xlsx": 200, "/api/tasks.csv": 200, "/api/tasks.xlsx": 200,
    "/api/alerts.csv": 200, "/api/alerts.xlsx": 200, "/api/alerts.csv?district=nanshan": (403, "other_district"),
    "/api/notifications": 200, "/api/rosters": 200, "/api/rosters/overrides": 200,
    "/api/rosters/overrides?all=1": 200,
}


def text_of(res) -> str:
    """Return a response's text; an Excel file's cells (its XML unzipped) for .xlsx."""
    if res.mimetype.endswith("spreadsheetml.sheet"):
        import io
        import zipfile

        with zipfile.ZipFile(io.BytesIO(res.get_data())) as z:
            return "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml"))
    return res.get_data(as_text=True)


def test_every_rest_read_of_a_district_user_holds_only_their_district(sapp):
    from dashboard.storage import outbox

    data = seed(sapp)
    matrix.queued_notification(sapp)  # of a Futian alert
    with sapp.server.extensions["panorama"].engine.begin() as conn:
        outbox.enqueue(conn, key="alert:9:firing:email:luohu@example.org", channel="email",
                       address="luohu@example.org", subject=f"{MINE} 空气质量", body="...",
                       payload={"alert": {"id": 9, "district": OWN}})
    client, _ = district_user(sapp)
    for path, expected in REST_READS.items():
        res = client.get(path)
        if expected == 200:
            assert res.status_code == 200, (path, res.get_data(as_text=True)[:300])
            assert secret_in(text_of(res), data["others"]) == [], path
        else:
            status, code = expected
            assert res.status_code == status and res.get_json()["error"]["code"] == code, path
    # what they do get is their own district's
    summary = client.get("/api/summary").get_json()
    assert [x["code"] for x in summary["districts"]] == [OWN] and summary["totals"] == summary["districts"][0]["counts"]
    assert summary["totals"]["incident"] == 2 and summary["totals"]["traffic"] == 1
    live = client.get("/api/summary?live=1").get_json()["live"]
    assert set(live["windows"]["1h"]["districts"]) == {OWN} and live["events"]
    assert {e["district"] for e in live["events"]} == {OWN}
    assert {i["district"] for i in client.get("/api/incidents").get_json()["incidents"]} == {OWN}
    assert [t["id"] for t in client.get("/api/tasks").get_json()["tasks"]] == [data["tasks"][OWN]["id"]]
    assert [a["district"] for a in client.get("/api/alerts").get_json()["alerts"]] == [OWN]
    units = client.get("/api/units").get_json()
    assert units and {u["district"] for u in units} == {OWN}
    assert [m["incident"]["district"] for m in client.get("/api/major").get_json()] == [OWN]
    assert client.get("/api/briefings").get_json()["briefings"] == []
    assert [n["subject"] for n in client.get("/api/notifications").get_json()["notifications"]] == [f"{MINE} 空气质量"]
    # single reads: another district's incident is as if there were none; their own is theirs
    for inc in data["others"]:
        for path in (f"/api/incidents/{inc['id']}", f"/api/incidents/{inc['id']}/report.html"):
            res = client.get(path)
            assert res.status_code == 404 and res.get_json()["error"]["code"] == "not_found", path
    assert client.get(f"/api/incidents/{data['mine'][0]['id']}").status_code == 200
    # the city centre's officer still reads the whole city
    officer, _ = matrix.session(sapp, "officer")
    assert len(officer.get("/api/summary").get_json()["districts"]) == 9
    assert {i["district"] for i in officer.get("/api/incidents").get_json()["incidents"]} == {OWN, "440304", "440305"}


# Callbacks that change something (dispatch, acknowledge, merge, ...): their reads are the dialogs' and the lists'
# (checked here through the lists); what a district centre may write is the hand-over's (another branch).
WRITE_CALLBACKS = {
    matrix.ALERT_ACK, matrix.PAGE_ACK, matrix.PAGE_SILENCE_ADD, matrix.PAGE_SILENCE_END, "procedure-message.children",
    "major-controls.children", "..mobile-message.children...mobile-refresh.data..", matrix.DISPATCH_DIALOG,
    "..task-message.children...dispatch-refresh.data..", "..dispatch-detail-message.children...dispatch-refresh.data..",
    "..briefing-generate-status.children...briefing-list.children...briefing-version.data..",
    "..override-message.children...override-list.children...roster-list.children..",
    "..merge-confirm.children...merge-submit.disabled..", "..split-confirm.children...split-submit.disabled..",
}


@pytest.mark.parametrize("name", sorted(set(matrix.CALLBACKS) - WRITE_CALLBACKS),
                         ids=lambda n: re.sub(r"[^a-z-]+", " ", n)[:60].strip())
def test_every_dash_callback_answers_a_district_user_only_their_district(sapp, name):
    data = seed(sapp)
    client, csrf = district_user(sapp)
    _, build = matrix.CALLBACKS[name]
    res = client.post("/_dash-update-component", json=build(sapp), headers={"X-CSRF-Token": csrf})
    assert res.status_code in (200, 204, 403), (res.status_code, res.get_data(as_text=True)[:300])
    assert secret_in(res.get_data(as_text=True), data["others"]) == []


def test_the_matrix_names_every_callback_a_read_or_a_write():
    assert WRITE_CALLBACKS <= set(matrix.CALLBACKS)


def test_the_district_users_pages_and_lists_hold_their_district(sapp):
    """The positive side: / is their district's drill-down (by street), /dispatch's queue and /m's lists hold their
    incidents, another district's page refuses."""
    data = seed(sapp)
    client, csrf = district_user(sapp)

    def post(name, values, changed=None):
        res = client.post("/_dash-update-component", json=matrix.payload(sapp, name, values, changed),
                          headers={"X-CSRF-Token": csrf})
        assert res.status_code == 200, res.get_data(as_text=True)[:300]
        return res.get_data(as_text=True)

    home = post(matrix.ROUTER, {"url.pathname": "/", "lang.data": "zh", "url.search": ""})
    assert "district-streets" in home and "罗湖区" in home and secret_in(home, data["others"]) == []
    other = post(matrix.ROUTER, {"url.pathname": "/district/futian", "lang.data": "en", "url.search": ""})
    assert '"id":"other-district"' in other and "Luohu" in other
    queue = post("..incident-list.children...incident-rest.children...task-board.children...dispatch-shown.data..",
                 {"dispatch-pulse.data": 1, **matrix.LANG}, "dispatch-pulse.data")
    assert f"{MINE} luohu" in queue and secret_in(queue, data["others"]) == []
    lists = post(matrix.M_LISTS, {"mobile-bump.data": 1, **matrix.LANG})
    assert MINE in lists and secret_in(lists, data["others"]) == []
    refused = client.post("/_dash-update-component", headers={"X-CSRF-Token": csrf}, json=matrix.payload(
        sapp, matrix.DISTRICT_REFRESH, {"district-refresh.n_intervals": 1, "district-window.value": "1h",
                                        "district-code.data": "futian", **matrix.LANG}))
    assert refused.status_code == 403
    mine = post(matrix.DISTRICT_REFRESH, {"district-refresh.n_intervals": 1, "district-window.value": "1h",
                                          "district-code.data": OWN, **matrix.LANG})
    assert MINE in mine


def test_a_district_wall_is_scoped_like_a_district_user(sapp):
    data = seed(sapp)
    engine = sapp.server.extensions["panorama"].engine
    with pytest.raises(accounts.UserError):
        accounts.create_kiosk_token(engine, "nowhere", "999999", [x.code for x in sapp.server.extensions["panorama"]
                                                                  .city.districts])
    _, token = accounts.create_kiosk_token(engine, "罗湖大屏", OWN, [OWN])
    wall = sapp.server.test_client()
    assert wall.get(f"/wall?token={token}", follow_redirects=True).request.path == "/wall"
    headers = {"Referer": "http://localhost/wall"}
    for name in (matrix.ALERT_LIST, matrix.ALERT_OUTLINES, matrix.MAJOR_SLOT, matrix.SPOT_DATA, matrix.WALL_STREETS):
        res = wall.post("/_dash-update-component", json=matrix.CALLBACKS[name][1](sapp), headers=headers)
        assert res.status_code in (200, 204) and secret_in(res.get_data(as_text=True), data["others"]) == [], name
    page = wall.post("/_dash-update-component", headers=headers, json=matrix.payload(
        sapp, matrix.ROUTER, {"url.pathname": "/wall", "lang.data": "zh", "url.search": ""})).get_data(as_text=True)
    assert '"district":"440303"' in page and secret_in(page, data["others"]) == []
    live = wall.get("/api/summary?live=1").get_json()
    assert [x["code"] for x in live["districts"]] == [OWN] and set(live["live"]["windows"]["1h"]["districts"]) == {OWN}
    ticket = wall.get("/api/ws-ticket").get_json()["ticket"]
    assert matrix.auth.verify_ticket(sapp.server.secret_key, ticket)["r"] == OWN


def test_a_district_users_socket_carries_only_their_district(sapp):
    """The snapshot and every delta: events, incidents, tasks, alerts, units, major incidents and counts of their
    district only; the city centre's officer on the same gateway gets the whole city."""
    data = seed(sapp)
    svc = sapp.server.extensions["panorama"]
    client, _ = district_user(sapp)
    _, token = accounts.create_kiosk_token(svc.engine, "罗湖大屏", OWN, [OWN])
    officer, _ = matrix.session(sapp, "officer")
    tickets = {"district": fresh_ticket(client), "officer": fresh_ticket(officer),
               "wall": fresh_ticket(sapp.server.test_client(), f"?token={token}")}
    with running(sapp) as gw:
        async def scenario():
            url = f"ws://127.0.0.1:{gw.port}/?ticket="
            socks = {name: await connect(url + t) for name, t in tickets.items()}
            snaps = {name: await recv(ws) for name, ws in socks.items()}
            # new reports in every district, a task moving in Futian and in Luohu, then a last event in Luohu
            await asyncio.to_thread(ingest_now, sapp, {"incident": [
                now_event(960, kind="fire", severity=3, district="futian", title="外区机密 新报"),
                now_event(961, kind="fire", severity=3, district="luohu", title=f"{MINE} 新报")]})
            for task in data["tasks"].values():
                await asyncio.to_thread(desk.write, svc, d.transition, task["id"], "acknowledged", 1, "x", None,
                                        now_ms())
            await asyncio.to_thread(ingest_now, sapp, {"traffic": [now_event(962, district="luohu", title="收尾")]})
            frames = {name: await recv_until(ws, lambda f: any(e["id"] == "ev-962" for e in f.get("events", ())))
                      for name, ws in socks.items()}
            for ws in socks.values():
                await ws.close()
            return snaps, frames

        snaps, frames = asyncio.run(scenario())
    for name in ("district", "wall"):
        raw = orjson.dumps([snaps[name], *frames[name]]).decode()
        assert secret_in(raw, data["others"]) == [], name
        state = snaps[name]["state"]
        assert set(state["windows"]["1h"]["districts"]) == {OWN}
        assert state["windows"]["1h"]["totals"] == state["windows"]["1h"]["districts"][OWN]["counts"]
        assert {e["district"] for e in state["events"]} == {OWN} and state["events"]
        assert {a["district"] for a in state["alerts"]} == {OWN}
        assert [m["incident"]["district"] for m in state["majors"]] == [OWN]
        assert state["units"] and {u["district"] for u in state["units"]} == {OWN}
        events = {e["district"] for f in frames[name] for e in f.get("events", ())}
        assert events == {OWN}
    seen = {i["title"] for f in frames["district"] for i in f.get("incidents", ())}
    assert any(MINE in t for t in seen)
    assert {t["id"] for f in frames["district"] for t in f.get("tasks", ())} == {data["tasks"][OWN]["id"]}
    assert not any("tasks" in f or "incidents" in f for f in frames["wall"])  # a wall reads no dispatch
    # the officer's socket carries the city: Futian's news and task too
    officer_raw = orjson.dumps([snaps["officer"], *frames["officer"]]).decode()
    assert "外区机密" in officer_raw and len(snaps["officer"]["state"]["windows"]["1h"]["districts"]) == 9
    assert data["tasks"]["440304"]["id"] in {t["id"] for f in frames["officer"] for t in f.get("tasks", ())}


def test_the_cli_makes_a_districts_wall_token(sapp):
    runner = sapp.server.test_cli_runner()
    out = runner.invoke(args=["kiosk", "create", "罗湖大屏", "--district", "luohu"]).output
    assert "district 440303" in out
    token = out.split(": ", 1)[1].split()[0]
    wall = sapp.server.test_client()
    assert wall.get(f"/wall?token={token}", follow_redirects=True).request.path == "/wall"
    ticket = wall.get("/api/ws-ticket").get_json()["ticket"]
    assert matrix.auth.verify_ticket(sapp.server.secret_key, ticket) == {"k": 1, "r": OWN}
    assert "440303" in runner.invoke(args=["kiosk", "list"]).output
    refused = runner.invoke(args=["kiosk", "create", "nowhere", "--district", "atlantis"])
    assert refused.exit_code != 0 and "unknown district" in refused.output


def test_a_district_user_cannot_write_to_another_districts_incident(sapp):
    """Knowing an id is not leave to act: every dispatch write on another district's incident or task answers as
    a read of it does (404), and nothing of it changes; the same writes on their own district's go through."""
    ids = seed(sapp)
    svc = sapp.server.extensions["panorama"]
    client, csrf = district_user(sapp)
    other_task = next(t for district, t in ids["tasks"].items() if district != OWN)  # dispatched to fire
    other = next(r for r in ids["others"] if r["id"] == other_task["incident_id"])
    mine = ids["mine"][0]
    with svc.engine.connect() as conn:
        before = desk.detail(conn, svc, other["id"], now_ms())
    writes = [(f"/api/incidents/{other['id']}/dispatch", {"departments": ["police"]}),
              (f"/api/incidents/{other['id']}/close", {}),
              (f"/api/incidents/{other['id']}/escalate", {}),
              (f"/api/incidents/{other['id']}/major", {"level": 1}),
              (f"/api/incidents/{mine['id']}/merge", {"into": other["id"], "version": mine["version"]}),
              (f"/api/tasks/{other_task['id']}/transition", {"to": "acknowledged", "version": other_task["version"]}),
              (f"/api/tasks/{other_task['id']}/redispatch", {"version": other_task["version"]}),
              (f"/api/tasks/{other_task['id']}/units", {"units": ["any-unit"]})]
    for path, body in writes:
        res = client.post(path, json=body, headers={"X-CSRF-Token": csrf})
        assert res.status_code == 404, (path, res.status_code, res.get_data(as_text=True)[:300])
        assert res.get_json()["error"]["code"] == "not_found", path
        assert not secret_in(res.get_data(as_text=True), ids["others"]), path
    with svc.engine.connect() as conn:
        after = desk.detail(conn, svc, other["id"], now_ms())
    assert after["incident"] == before["incident"] and after["tasks"] == before["tasks"]
    # their own district's task: the same user moves it
    own_task = ids["tasks"][OWN]
    res = client.post(f"/api/tasks/{own_task['id']}/transition", json={"to": "acknowledged",
                                                                       "version": own_task["version"]},
                      headers={"X-CSRF-Token": csrf})
    assert res.status_code == 200, res.get_data(as_text=True)


def test_a_district_user_acts_only_on_their_districts_alerts_and_silences(sapp):
    """A Luohu officer cannot acknowledge Futian's alert or end Nanshan's silence (404, as their reads answer),
    cannot silence another district (403) and, naming no district, silences only Luohu; the city's silences
    and their own are listed, another district's are not."""
    seed(sapp)
    svc = sapp.server.extensions["panorama"]
    client, csrf = district_user(sapp)
    h = {"X-CSRF-Token": csrf}
    with svc.engine.connect() as conn:
        rows = {r["district"]: dict(r) for r in conn.execute(alerts.select()).mappings()}
    other, mine = rows["440304"], rows[OWN]
    res = client.post(f"/api/alerts/{other['id']}/ack", json={"version": other["version"]}, headers=h)
    assert res.status_code == 404 and res.get_json()["error"]["code"] == "not_found", res.get_data(as_text=True)
    with svc.engine.connect() as conn:
        assert conn.execute(alerts.select().where(alerts.c.id == other["id"])).mappings().one()["status"] == "firing"
    res = client.post(f"/api/alerts/{mine['id']}/ack", json={"version": mine["version"]}, headers=h)
    assert res.status_code == 200, res.get_data(as_text=True)
    until = datetime.fromtimestamp(now_ms() / 1000 + 86_400, timezone.utc).isoformat()
    res = client.post("/api/silences", json={"district": "nanshan", "until": until, "reason": "x"}, headers=h)
    assert res.status_code == 403 and res.get_json()["error"]["code"] == "other_district"
    res = client.post("/api/silences", json={"rule": "aqi_moderate", "until": until, "reason": "drill"}, headers=h)
    assert res.status_code == 201 and res.get_json()["silence"]["district"] == OWN, res.get_data(as_text=True)
    city, city_csrf = district_user(sapp, "city-officer", district=None)
    made = {}
    for district in ("nanshan", None):
        res = city.post("/api/silences", json={"district": district, "rule": "aqi_moderate", "until": until,
                                               "reason": f"city {district}"},
                        headers={"X-CSRF-Token": city_csrf})
        assert res.status_code == 201, res.get_data(as_text=True)
        made[district] = res.get_json()["silence"]["id"]
    res = client.delete(f"/api/silences/{made['nanshan']}", headers=h)
    assert res.status_code == 404 and res.get_json()["error"]["code"] == "not_found"
    res = client.delete(f"/api/silences/{made[None]}", headers=h)  # the city's: theirs to read, not to end
    assert res.status_code == 404
    listed = {s["reason"] for s in client.get("/api/silences").get_json()["silences"]}
    assert listed == {"drill", "city None"}


def test_a_district_centre_reads_and_sets_the_rosters_of_the_city_and_of_its_own_district(sapp):
    """Duty rosters (Scope.reads_roster, Scope.sets_roster): a Luohu officer reads the city departments' rosters and
    Luohu's government's, never Futian's (nor its overrides); sets and ends overrides on Luohu's only (a city
    department's: 403 city_only; Futian's: 403 other_district, ending one 404, as if there were none). The city
    centre's officer reads and sets every roster."""
    from datetime import timedelta

    data = seed(sapp)
    client, csrf = district_user(sapp)
    headers = {"X-CSRF-Token": csrf}
    until = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    body = client.get("/api/rosters").get_json()
    codes = [d["code"] for d in body["departments"]]
    assert f"district_{OWN}" in codes and "fire" in codes and "police" in codes and "district_440304" not in codes
    assert {d["district"] for d in body["departments"]} == {None, OWN}
    assert [o["reason"] for o in body["overrides"]] == [f"{MINE} 调班"]
    for query in ("", "?all=1"):
        listed = client.get(f"/api/rosters/overrides{query}").get_json()["overrides"]
        assert [o["department"] for o in listed] == [f"district_{OWN}"], query

    def override(who, department, person):
        return who.post("/api/rosters/overrides", headers=who_headers[id(who)], json={
            "department": department, "person": person, "role": "officer", "until": until, "reason": "顶班"})

    officer, officer_csrf = matrix.session(sapp, "officer")
    who_headers = {id(client): headers, id(officer): {"X-CSRF-Token": officer_csrf}}
    mine = override(client, f"district_{OWN}", f"d{OWN}_cmd")
    assert mine.status_code == 201, mine.get_json()
    for department, person, code in (("fire", "fire_dep_a", "city_only"),
                                     ("district_440304", "d440304_cmd", "other_district")):
        res = override(client, department, person)
        assert res.status_code == 403 and res.get_json()["error"]["code"] == code, department
    # the city centre's officer reads and sets every roster, Futian's too
    city = officer.get("/api/rosters").get_json()
    assert "district_440304" in [d["code"] for d in city["departments"]] and len(city["overrides"]) == 3
    futian = override(officer, "district_440304", "d440304_cmd").get_json()["override"]["id"]
    fire = override(officer, "fire", "fire_dep_a").get_json()["override"]["id"]
    res = client.delete(f"/api/rosters/overrides/{futian}", headers=headers)
    assert res.status_code == 404 and res.get_json()["error"]["code"] == "not_found"
    res = client.delete(f"/api/rosters/overrides/{fire}", headers=headers)
    assert res.status_code == 403 and res.get_json()["error"]["code"] == "city_only"
    assert client.delete(f"/api/rosters/overrides/{mine.get_json()['override']['id']}", headers=headers).status_code \
        == 200
    assert secret_in(client.get("/api/rosters/overrides?all=1").get_data(as_text=True), data["others"]) == []
    # the page: the form offers Luohu's roster alone, the line says who sets which; the form's callback refuses
    # another district's department as the API does
    page = client.post("/_dash-update-component", headers=headers, json=matrix.payload(
        sapp, matrix.ROUTER, {"url.pathname": "/rosters", "lang.data": "en", "url.search": ""})).get_data(as_text=True)
    assert "override-form" in page and "your district's departments' are set here" in page
    assert f"district_{OWN}\\u002fd{OWN}_off" in page and "fire\\u002ffire_dep_a" not in page  # Dash escapes "/"
    assert secret_in(page, data["others"]) == [] and "福田区人民政府" not in page
    name = "..override-message.children...override-list.children...roster-list.children.."
    for person, said in (("district_440304/d440304_cmd", "another district's"), ("fire/fire_dep_a", "city centre"),
                         (f"district_{OWN}/d{OWN}_cmd", "Override set")):
        res = client.post("/_dash-update-component", headers=headers, json=matrix.payload(sapp, name, {
            "override-submit.n_clicks": 1, "override-person.value": person, "override-role.value": "officer",
            "override-hours.value": 2, "override-reason.value": "顶班", **matrix.LANG}))
        text = res.get_data(as_text=True)
        assert res.status_code == 200 and said in text and secret_in(text, data["others"]) == [], person
