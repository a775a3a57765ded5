"""District centres' briefings (SPEC section 13) on real PostgreSQL and Redis: a slot makes the city's and one per
district centre in use, each once however many replicas race; a district briefing's numbers are its district's
(equal to /api/summary's for the same window); a district centre's user lists, reads, downloads and makes only
their district's, over REST and through the /briefings page's callbacks."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.briefings import periods
from dashboard.briefings.generate import generate_now, generate_slot
from dashboard.briefings.schedule import BriefingScheduler
from dashboard.storage import briefings as store
from dashboard.storage import users as accounts
from dashboard.storage.models import briefings
from feeds.pipeline import now_ms
from tests import test_access_matrix as matrix
from tests import test_briefings as tb
from tests.helpers import make_event, make_user
from tests.test_api import ingest_now
from tests.test_district_scope import MINE, OWN, district_user, secret_in
from tests.test_district_scope import seed as seed_districts

TZ = "Asia/Shanghai"
FUTIAN, NANSHAN = "440304", "440305"
HOURLY = "0 * * * *"
MIN = 60_000


@pytest.fixture
def bapp(make_app, redis_client):
    """Give an app without a briefing browser (HTML and JSON only)."""
    return make_app(BROWSER_PATH="none")


def centre_user(app, name: str, district: str, role: str = "officer", active: bool = True) -> None:
    """Create a user of ``district``'s centre (``active`` False: disabled since)."""
    make_user(app, name, role, district=district)
    if not active:
        accounts.set_active(app.server.extensions["panorama"].engine, name, False)


def rows_by_scope(engine) -> dict:
    """Return {district or None: [slot, ...]} of every stored briefing."""
    out: dict = {}
    with engine.connect() as conn:
        for slot, district in conn.execute(select(briefings.c.slot, briefings.c.district)):
            out.setdefault(district, []).append(slot)
    return out


# --- the schedule -----------------------------------------------------------------------------------------

def test_a_slot_makes_the_city_and_each_district_centre_s_briefing_once_however_many_replicas_race(
        make_app, redis_client):
    apps = tb.replicas(make_app, 2)
    tb.seed(apps[0])
    centre_user(apps[0], "lh-1", OWN)
    centre_user(apps[0], "lh-2", OWN, role="viewer")  # two users of one centre: still one briefing
    centre_user(apps[0], "ft-1", FUTIAN)
    centre_user(apps[0], "ns-1", NANSHAN, active=False)  # a centre nobody can sign in to: none
    schedulers = tb.race(apps, tb.SLOT + timedelta(minutes=1), timeout=120)
    key = periods.slot_key(tb.SLOT)
    engine = apps[0].server.extensions["panorama"].engine
    assert rows_by_scope(engine) == {None: [key], OWN: [f"{key}@{OWN}"], FUTIAN: [f"{key}@{FUTIAN}"]}
    assert sum(r is not None for s in schedulers for r in s.runs) == 1
    made = sorted(r["district"] for s in schedulers for run_ in s.district_runs for r in run_)
    assert made == [OWN, FUTIAN]  # each made by exactly one of the four runs
    listed = store.list_briefings(engine)
    assert [r["district"] for r in listed] == [None, OWN, FUTIAN]  # the city's first
    assert all(r["status"] == "ready" and (r["period_start_ms"], r["period_end_ms"]) == (tb.START, tb.END)
               for r in listed)
    # run again (a replica started late, the catch-up): nothing more
    BriefingScheduler(apps[1].server.extensions["panorama"], clock=tb.at(tb.SLOT + timedelta(minutes=2))).run_due()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(briefings)).scalar() == 3


def test_a_pack_that_says_so_makes_the_city_s_briefing_alone_at_a_slot(make_app, redis_client, tmp_path):
    """city.yaml ``centres: {briefings: false}``: the slot makes the city's briefing only, whatever centres are in
    use; a district centre's user still makes their own on request."""
    import shutil

    from dashboard.core.city import PACKS_DIR, load_centres

    assert load_centres({"hand_up_severity": 4}).briefings is True  # the default: one per centre in use
    for bad in ({"briefings": "no"}, {"briefings": 0}, {"briefings": None}):
        with pytest.raises(ValueError, match="centres.briefings"):
            load_centres(bad)
    path = tmp_path / "pack"
    shutil.copytree(PACKS_DIR / "shenzhen", path)
    city_yaml = path / "city.yaml"
    text = city_yaml.read_text(encoding="utf-8")
    assert "  briefings: true\n" in text
    city_yaml.write_text(text.replace("  briefings: true\n", "  briefings: false\n"), encoding="utf-8")
    app = make_app(BROWSER_PATH="none", PANORAMA_CITY=str(path))
    svc = app.server.extensions["panorama"]
    assert svc.city.centres.briefings is False and svc.city.centres.hand_up_severity == 4
    tb.seed(app)
    centre_user(app, "lh-1", OWN)
    scheduler = BriefingScheduler(svc, clock=tb.at(tb.SLOT + timedelta(minutes=1)))
    scheduler.run_due()
    key = periods.slot_key(tb.SLOT)
    assert rows_by_scope(svc.engine) == {None: [key]} and list(scheduler.district_runs) == [[]]
    client, csrf = district_user(app)
    res = client.post("/api/briefings", headers={"X-CSRF-Token": csrf}, json={})
    assert res.status_code in (200, 201, 202), res.get_data(as_text=True)[:300]
    assert OWN in rows_by_scope(svc.engine)


def test_a_district_briefing_holds_its_district_s_numbers_and_the_city_s_is_unchanged(bapp):
    svc = bapp.server.extensions["panorama"]
    tb.seed(bapp)  # events in six districts, incidents in futian, nanshan, luohu, baoan, longgang
    trigger = periods.make_trigger(tb.CRON, TZ)
    city = generate_slot(svc, trigger, tb.SLOT, tb.END + 5 * MIN)
    luohu = generate_slot(svc, trigger, tb.SLOT, tb.END + 5 * MIN, OWN)
    assert city["district"] is None and luohu["district"] == OWN
    cd = store.get(svc.engine, city["id"], "data")["data"]
    ld = store.get(svc.engine, luohu["id"], "data")["data"]
    assert cd["district"] is None and "streets" not in cd and len(cd["districts"]) == 9
    assert ld["district"]["code"] == OWN and [d["code"] for d in ld["districts"]] == [OWN]
    # the district's row is the city briefing's row of it, and its KPIs are that row's
    city_row = next(d for d in cd["districts"] if d["code"] == OWN)
    assert ld["districts"][0] == city_row
    assert ld["kpis"]["events"] == city_row["total"] > 0
    assert {k: v["count"] for k, v in ld["kpis"]["by_domain"].items()} == city_row["counts"]
    assert ld["kpis"]["incidents_opened"] == city_row["incidents_opened"] == 1
    assert sum(sum(v) for v in ld["trend"]["series"].values()) == city_row["total"]
    assert {i["district"] for i in ld["top_incidents"]} == {OWN}
    # dispatch: luohu's incident ("重点事件 2") was never dispatched in the seed; the city's had tasks
    assert ld["dispatch"] == [] and ld["kpis"]["tasks_dispatched"] == 0 and cd["kpis"]["tasks_dispatched"] > 0
    assert sum(k["count"] for k in ld["kinds"]) == city_row["total"]
    assert ld["alerts"] == {"total": 0, "by_level": {"blue": 0, "yellow": 0, "orange": 0, "red": 0}, "list": []}
    html = store.get(svc.engine, luohu["id"], "html")["html"]
    assert "罗湖区运行简报" in html and 'id="streets"' in html and 'id="alerts"' in html
    assert 'id="districts"' not in html
    city_html = store.get(svc.engine, city["id"], "html")["html"]
    assert 'id="districts"' in city_html and 'id="streets"' not in city_html and "罗湖区运行简报" not in city_html


def test_a_district_briefing_s_numbers_equal_its_counts_in_api_summary_for_the_same_window(bapp):
    svc = bapp.server.extensions["panorama"]
    tz = ZoneInfo(TZ)
    slot = datetime.now(tz).replace(minute=0, second=0, microsecond=0)  # the latest whole hour, a past one
    end = periods.to_ms(slot)
    start = end - 60 * MIN
    evs: dict[str, list] = {"security": [], "traffic": [], "environment": []}
    n = 0
    # inside the hour (its first and last ms), just before it and at its end (neither counts), in Luohu and Futian
    for ts, district, dom, street in ((start, "luohu", "security", "东门街道"), (start + 20 * MIN, "luohu", "traffic",
                                      "东门街道"), (end - 1, "luohu", "traffic", "桂园街道"),
                                      (start + 30 * MIN, "luohu", "environment", None), (start - 1, "luohu", "traffic",
                                      "东门街道"), (end, "luohu", "security", None), (start + 5 * MIN, "futian",
                                      "traffic", None)):
        kind = tb.KINDS[dom]
        evs[dom].append(make_event(n, kind=kind, district=district, ts=ts, severity=2,
                                   **({"street": street} if street else {})))
        n += 1
    ingest_now(bapp, evs)
    row = generate_slot(svc, periods.make_trigger(HOURLY, TZ), slot, end + MIN, OWN)
    data = store.get(svc.engine, row["id"], "data")["data"]
    assert data["period"]["minutes"] == 60
    client, _ = district_user(bapp)
    at = (slot - timedelta(seconds=1)).isoformat()
    summary = client.get("/api/summary", query_string={"window": "1h", "at": at}).get_json()
    assert summary["window"]["end"] == data["period"]["end"] and summary["window"]["start"] == data["period"]["start"]
    by_domain = {k: v["count"] for k, v in data["kpis"]["by_domain"].items()}
    assert by_domain == summary["totals"] == {"security": 1, "traffic": 2, "environment": 1, "incident": 0}
    assert data["kpis"]["events"] == sum(summary["totals"].values()) == 4
    assert data["kpis"]["events_previous"] == 1
    streets = {s["name"]: s["total"] for s in data["streets"] if s["total"]}
    assert streets == {"东门街道": 2, "桂园街道": 1}
    assert {(k["domain"], k["kind"]): k["count"] for k in data["kinds"]} == {
        ("security", "theft"): 1, ("traffic", "congestion"): 2, ("environment", "aqi"): 1}
    # and the city centre's summary of the same window says the same of Luohu
    officer, _ = matrix.session(bapp, "officer")
    city = officer.get("/api/summary", query_string={"window": "1h", "at": at}).get_json()
    assert next(d for d in city["districts"] if d["code"] == OWN)["counts"] == by_domain


# --- reading them -----------------------------------------------------------------------------------------

def scoped(app) -> dict:
    """Seed three districts (tests/test_district_scope.py: other districts' titles are secrets) and make the
    city's briefing, Luohu's and Futian's; return their rows by scope."""
    svc = app.server.extensions["panorama"]
    seed_districts(app)
    now = now_ms() + 2 * MIN  # a period that ends after the seed's minute (a manual period ends at a whole minute)
    return {None: generate_now(svc, "olga", now), OWN: generate_now(svc, "olga", now, OWN),
            FUTIAN: generate_now(svc, "olga", now, FUTIAN)}


def test_a_district_user_reads_only_their_district_s_briefings_over_rest(bapp):
    made = scoped(bapp)
    client, csrf = district_user(bapp)
    listed = client.get("/api/briefings").get_json()
    assert listed["scope"] == OWN
    assert [(b["id"], b["district"]) for b in listed["briefings"]] == [(made[OWN]["id"], OWN)]
    # asking for another district's list, or the city's, still answers their own
    for asked in ("city", FUTIAN):
        assert [b["id"] for b in client.get(f"/api/briefings?district={asked}").get_json()["briefings"]] == \
            [made[OWN]["id"]]
    own = made[OWN]["id"]
    doc = client.get(f"/api/briefings/{own}").get_json()
    assert doc["district"] == OWN and doc["data"]["district"]["code"] == OWN
    html = client.get(f"/api/briefings/{own}.html")
    assert html.status_code == 200 and MINE in html.get_data(as_text=True)
    assert secret_in(html.get_data(as_text=True) + str(doc), []) == []
    assert client.get(f"/api/briefings/{own}?download=1").status_code == 200
    assert client.get(f"/api/briefings/{own}.pdf").get_json()["error"]["code"] == "no_pdf"  # no browser here
    # the city's and another district's: as if there were none, in every form
    for other in (made[None]["id"], made[FUTIAN]["id"]):
        for suffix in ("", ".html", ".pdf", "?download=1", ".html?download=1"):
            res = client.get(f"/api/briefings/{other}{suffix}")
            assert res.status_code == 404 and res.get_json()["error"]["code"] == "not_found", (other, suffix)
    # making one now makes their district's
    res = client.post("/api/briefings", headers={"X-CSRF-Token": csrf})
    assert res.status_code == 201 and res.get_json()["district"] == OWN
    assert [b["district"] for b in client.get("/api/briefings").get_json()["briefings"]] == [OWN, OWN]
    # a district viewer reads them too, and may not make one (the role, as before)
    viewer, vcsrf = district_user(bapp, "lh-viewer", "viewer")
    assert len(viewer.get("/api/briefings").get_json()["briefings"]) == 2
    assert viewer.post("/api/briefings", headers={"X-CSRF-Token": vcsrf}).status_code == 403


def test_the_city_centre_reads_every_briefing_the_city_s_first_and_filters_by_district(bapp):
    made = scoped(bapp)
    officer, csrf = matrix.session(bapp, "officer")
    listed = officer.get("/api/briefings").get_json()
    assert listed["scope"] == "city"
    assert [b["district"] for b in listed["briefings"]] == [None, OWN, FUTIAN]
    assert [b["id"] for b in officer.get("/api/briefings?district=city").get_json()["briefings"]] == \
        [made[None]["id"]]
    assert [b["id"] for b in officer.get(f"/api/briefings?district={FUTIAN}").get_json()["briefings"]] == \
        [made[FUTIAN]["id"]]
    bad = officer.get("/api/briefings?district=nowhere")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_district"
    for row in made.values():
        assert officer.get(f"/api/briefings/{row['id']}.html").status_code == 200
    # the city's briefing is the whole city's, as before: every district's row, no streets
    doc = officer.get(f"/api/briefings/{made[None]['id']}").get_json()
    assert doc["district"] is None and len(doc["data"]["districts"]) == 9 and "streets" not in doc["data"]
    res = officer.post("/api/briefings", headers={"X-CSRF-Token": csrf})
    assert res.status_code == 201 and res.get_json()["district"] is None


def test_a_district_briefing_holds_nothing_of_another_district(bapp):
    made = scoped(bapp)
    svc = bapp.server.extensions["panorama"]
    full = store.get(svc.engine, made[OWN]["id"], "data", "html")
    assert MINE in full["html"]
    text = full["html"] + str(full["data"])
    assert [s for s in ("外区机密", "OTHER-SECRET") if s in text] == []
    assert full["data"]["alerts"]["total"] == 1 and full["data"]["alerts"]["list"][0]["title"].startswith(MINE)
    assert {i["district"] for i in full["data"]["top_incidents"]} == {OWN}
    assert [r["department"] for r in full["data"]["dispatch"]] == ["fire"]  # Luohu's one dispatched incident


# --- the /briefings page's callbacks ----------------------------------------------------------------------

GENERATE = "..briefing-generate-status.children...briefing-list.children...briefing-version.data.."
REFRESH = "..briefing-list.children...briefing-version.data.."


def links(text: str) -> set[int]:
    """Return the briefing ids a page's answer links to."""
    return {int(x) for x in re.findall(r"briefings(?:/|\\u002f)(\d+)", text)}  # "/" as JSON may escape it


def test_the_briefings_page_s_callbacks_answer_a_district_user_their_district_s(bapp):
    made = scoped(bapp)
    client, csrf = district_user(bapp)

    def post(name, values):
        res = client.post("/_dash-update-component", json=matrix.payload(bapp, name, values),
                          headers={"X-CSRF-Token": csrf})
        assert res.status_code == 200, res.get_data(as_text=True)[:300]
        return res.get_data(as_text=True)

    page = post(matrix.ROUTER, {"url.pathname": "/briefings", "lang.data": "zh", "url.search": ""})
    assert links(page) == {made[OWN]["id"]} and "罗湖区" in page
    own = post(matrix.ROUTER, {"url.pathname": f"/briefings/{made[OWN]['id']}", "lang.data": "en", "url.search": ""})
    assert "Luohu Operations Briefing" in own and "briefing-frame" in own
    for other in (made[None]["id"], made[FUTIAN]["id"]):
        gone = post(matrix.ROUTER, {"url.pathname": f"/briefings/{other}", "lang.data": "en", "url.search": ""})
        assert f"There is no briefing {other}" in gone and "briefing-frame" not in gone
    refreshed = post(REFRESH, {"briefing-refresh.n_intervals": 1, "briefing-version.data": [0, 0, 0], **matrix.LANG})
    assert links(refreshed) == {made[OWN]["id"]}
    made_now = post(GENERATE, {"briefing-generate.n_clicks": 1, **matrix.LANG})
    new = max(links(made_now))
    assert links(made_now) == {made[OWN]["id"], new}
    assert store.get(bapp.server.extensions["panorama"].engine, new)["district"] == OWN
    # the city centre's page lists every one, the city's first, and says whose each is
    officer, ocsrf = matrix.session(bapp, "officer")
    res = officer.post("/_dash-update-component", headers={"X-CSRF-Token": ocsrf}, json=matrix.payload(
        bapp, matrix.ROUTER, {"url.pathname": "/briefings", "lang.data": "en", "url.search": ""}))
    text = res.get_data(as_text=True)
    assert links(text) == {made[None]["id"], made[OWN]["id"], made[FUTIAN]["id"], new}
    assert text.index("The city") < text.index("Luohu") < text.index("Futian")


# --- in Chromium ------------------------------------------------------------------------------------------

def test_a_district_user_s_briefings_page_in_chromium_shows_theirs_only(bapp, dash_duo):
    from tests.helpers import sign_in, wait_for
    from tests.test_accessibility import axe_violations

    made = scoped(bapp)
    dash_duo.start_server(bapp)
    dash_duo.get_logs()
    sign_in(dash_duo, bapp, "/briefings", role="officer", username="lh-browser", district=OWN)
    dash_duo.wait_for_element("#briefing-list .briefing-row", timeout=20)
    rows = dash_duo.find_elements("#briefing-list .briefing-row")
    assert len(rows) == 1 and "罗湖区" in rows[0].text
    hrefs = dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('#briefing-list a')].map(a => a.getAttribute('href'))")
    own = made[OWN]["id"]
    assert set(hrefs) == {f"/briefings/{own}", f"/api/briefings/{own}.html?download=1",
                          f"/api/briefings/{own}?download=1"}
    assert secret_in(dash_duo.driver.page_source, []) == []
    assert axe_violations(dash_duo) == []  # the list with its new column (whose each is), as tests/test_accessibility
    dash_duo.find_element("#briefing-list .briefing-link").click()
    dash_duo.wait_for_element("#briefing-frame", timeout=10)
    dash_duo.driver.switch_to.frame(dash_duo.find_element("#briefing-frame"))
    wait_for(lambda: "罗湖区运行简报" in dash_duo.driver.find_element("css selector", "h1").text,
             message="the district's report in the frame")
    dash_duo.driver.switch_to.default_content()
    # another district's briefing by its address: the page says there is none
    dash_duo.driver.get(dash_duo.server_url.rstrip("/") + f"/briefings/{made[FUTIAN]['id']}")
    dash_duo.wait_for_contains_text("#page", f"没有编号为 {made[FUTIAN]['id']} 的简报", timeout=20)
    assert dash_duo.driver.find_elements("css selector", "#briefing-frame") == []
    assert dash_duo.get_logs() == []


def test_an_incident_handed_down_to_a_district_centre_is_in_its_briefing(bapp):
    """An incident of another district handed down to Luohu's centre (incidents.centre, the hand-over's) is one
    Luohu reads (storage.incidents.of_district): in its top incidents, opened count and dispatch."""
    from sqlalchemy import update

    from dashboard.storage.models import incidents

    svc = bapp.server.extensions["panorama"]
    seed_districts(bapp)
    with svc.engine.begin() as conn:
        handed = conn.execute(select(incidents.c.id).where(incidents.c.district == FUTIAN)
                              .order_by(incidents.c.id).limit(1)).scalar()
        conn.execute(update(incidents).where(incidents.c.id == handed).values(centre=OWN))
    row = generate_now(svc, "olga", now_ms() + 2 * MIN, OWN)
    data = store.get(svc.engine, row["id"], "data")["data"]
    assert handed in {i["id"] for i in data["top_incidents"]}
    assert {i["district"] for i in data["top_incidents"]} == {OWN, FUTIAN}
    with svc.engine.connect() as conn:
        theirs = conn.execute(select(func.count()).select_from(incidents)
                              .where((incidents.c.district == OWN) | (incidents.c.id == handed))).scalar()
    assert data["kpis"]["incidents_opened"] == theirs
    # the events stay the district's own: a hand-over moves who runs an incident, not where events happened
    assert [d["code"] for d in data["districts"]] == [OWN]
