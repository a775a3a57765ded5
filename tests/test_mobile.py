"""/m, the commander on a phone: what needs a decision, the one-tap actions, installability, and Chromium at 390×844."""

from __future__ import annotations

import struct

import pytest
from sqlalchemy import select

from dashboard.dispatch import commander
from dashboard.dispatch import desk
from dashboard.dispatch import board as d
from dashboard.core.errors import Forbidden
from dashboard.dispatch.deadlines import DeadlineChecker
from dashboard.storage.models import task_events
from tests.helpers import TEST_PASSWORD, city_clock, make_event, make_user, phone_screen, wait_for
from tests.test_api import ingest_now

MIN = 60_000


@pytest.fixture
def app(make_app, redis_client):
    """Give an app whose clock reads 10:00 in the city: these tests expect the daytime rules' departments."""
    return make_app(PANORAMA_CLOCK=city_clock("10:00"))


def svc_of(app):
    return app.server.extensions["panorama"]


def now(app) -> int:
    """Return the app's time (the pinned clock), what every time in these tests is taken from."""
    return svc_of(app).clock()


def open_incident(app, n: int, kind: str = "fire", severity: int = 3) -> dict:
    """Store an incident event the way ingest does; return the incident row it opened."""
    ingest_now(app, {"incident": [make_event(n, kind=kind, severity=severity, ts=now(app), lat=22.54,
                                             lon=114.0 + n * 0.02, title=f"事件 {n}")]})
    with svc_of(app).engine.connect() as conn:
        return next(r for r in desk.queue(conn) if r["title"] == f"事件 {n}")


def dispatch_to(app, incident_id: int, departments: list[str]) -> list[dict]:
    svc = svc_of(app)
    return desk.write(svc, d.dispatch, incident_id, departments, "olga", None, now(app), svc.city.rules,
                              svc.city).tasks


def decisions(app, at: int | None = None) -> list[dict]:
    svc = svc_of(app)
    with svc.engine.connect() as conn:
        return commander.decisions(conn, svc.city, at or now(app))


def summary(items) -> list[tuple]:
    """Return each card as (kind, title, the departments it lists: late ones, then returning ones, actions)."""
    return [(i["kind"], i["incident"]["title"], ",".join(t["department"] for t in commander.listed(i)) or None,
             tuple(i["actions"])) for i in items]


def tap(app, user, action: str, item: dict) -> d.Change:
    listed = tuple((t["id"], t["version"]) for t in commander.listed(item))
    t = commander.Tap(action, item["kind"], item["incident"]["id"], None, item["version"],
                      listed)
    return commander.perform(svc_of(app), user, t, now(app))


@pytest.fixture
def cmdr(app):
    """Give the commander who taps."""
    return make_user(app, "cmdr", "commander")


def test_what_needs_a_decision_critical_first_then_overdue_then_rejections(app, cmdr):
    critical = open_incident(app, 1, severity=4)
    major = open_incident(app, 2, severity=3)
    open_incident(app, 3, severity=3)  # a major incident nobody has dispatched yet: not the commander's
    fire, police = dispatch_to(app, major["id"], ["fire", "police"])
    svc = svc_of(app)
    with svc.engine.begin() as conn:
        d.transition(conn, police["id"], "rejected", 1, "pol", "不属于本部门", now(app))
    assert summary(decisions(app)) == [
        ("critical", "事件 1", None, ("acknowledge", "escalate", "approve")),
        ("rejected", "事件 2", "police", ("acknowledge", "escalate", "approve"))]
    # the fire task misses its acknowledge deadline (3 min): the checker escalates it
    escalated = DeadlineChecker(svc).check_once(at_ms=now(app) + 10 * MIN)
    assert [t["id"] for t in escalated] == [fire["id"]]
    items = decisions(app)
    # one card for incident 2, late fire and returning police together: the return waits for a decision
    assert summary(items) == [
        ("critical", "事件 1", None, ("acknowledge", "escalate", "approve")),
        ("rejected", "事件 2", "fire,police", ("acknowledge", "escalate", "approve"))]
    assert items[0]["suggested"][0] == "fire"  # approving dispatches the rules' suggestion, the lead first
    assert "police" not in items[1]["suggested"]  # accepting a return re-routes to the others
    assert [o["task"]["department"] for o in items[1]["overdue"]] == ["fire"]
    assert [t["department"] for t in items[1]["returned"]] == ["police"]
    assert critical["severity"] == 4


def test_acknowledge_records_who_and_hides_the_item_until_it_changes(app, cmdr):
    inc = open_incident(app, 1, severity=4)
    [item] = decisions(app)
    tap(app, cmdr, "acknowledge", item)
    assert decisions(app) == []
    with svc_of(app).engine.connect() as conn:
        row = conn.execute(select(task_events).where(task_events.c.action == commander.ACK_ACTION)).mappings().one()
    assert row["actor"] == "cmdr" and row["incident_id"] == inc["id"] and row["task_id"] is None
    # the incident changes (an officer dispatches it): it needs a look again
    dispatch_to(app, inc["id"], ["fire"])
    assert summary(decisions(app)) == [("critical", "事件 1", None, ("acknowledge", "escalate"))]


def test_approve_dispatches_the_suggestion_then_closes_once_resolved(app, cmdr):
    inc = open_incident(app, 1, severity=4)
    change = tap(app, cmdr, "approve", decisions(app)[0])
    assert change.incident["status"] == "dispatched"
    assert [t["department"] for t in change.tasks] == ["fire", "emergency", "police", "health"]
    svc = svc_of(app)
    for task in change.tasks:
        with svc.engine.begin() as conn:
            moved = d.transition(conn, task["id"], "acknowledged", 1, "x", None, now(app)).task
            d.transition(conn, task["id"], "resolved", moved["version"], "x", None, now(app))
    [item] = decisions(app)
    assert item["incident"]["status"] == "resolved" and item["actions"] == ["acknowledge", "approve"]
    assert tap(app, cmdr, "approve", item).incident["status"] == "closed"
    assert decisions(app) == []
    with svc.engine.connect() as conn:
        assert [h["actor"] for h in d.history(conn, inc["id"]) if h["action"] in ("dispatch", "close")] == \
            ["cmdr"] * 8


def test_at_night_approving_a_fire_also_sends_the_district_office(make_app, redis_client):
    app = make_app(PANORAMA_CLOCK=city_clock("23:50"))
    cmdr = make_user(app, "cmdr", "commander")
    open_incident(app, 1, severity=4)
    change = tap(app, cmdr, "approve", decisions(app)[0])
    assert [t["department"] for t in change.tasks] == ["fire", "emergency", "police", "health", "district_440304"]


def test_accepting_a_return_reroutes_and_escalating_adds_emergency_management(app, cmdr):
    inc = open_incident(app, 1)
    [fire, police] = dispatch_to(app, inc["id"], ["fire", "police"])
    with svc_of(app).engine.begin() as conn:
        d.transition(conn, police["id"], "rejected", 1, "pol", "不属于本部门", now(app))
    [item] = decisions(app)
    change = tap(app, cmdr, "approve", item)
    assert sorted(t["department"] for t in change.tasks) == ["emergency", "health"]  # fire holds one already
    assert change.incident["status"] == "dispatched" and decisions(app) == []
    # an overdue task escalated by the commander: the emergency bureau is in already, the incident is marked
    DeadlineChecker(svc_of(app)).check_once(at_ms=now(app) + 10 * MIN)
    overdue = decisions(app, now(app) + 10 * MIN)
    # one card for the incident, however many of its departments are late
    assert [i["kind"] for i in overdue] == ["overdue"] and "escalate" in overdue[0]["actions"]
    assert len(overdue[0]["overdue"]) == 3
    change = tap(app, cmdr, "escalate", overdue[0])
    assert change.tasks == [] and change.incident["escalated_ms"] is not None  # nothing new to send
    assert all("escalate" not in i["actions"] for i in decisions(app, now(app) + 10 * MIN))
    with pytest.raises(d.DispatchError):
        tap(app, cmdr, "escalate", overdue[0])  # escalated once
    other = open_incident(app, 2)
    dispatch_to(app, other["id"], ["fire"])
    DeadlineChecker(svc_of(app)).check_once(at_ms=now(app) + 10 * MIN)
    item = next(i for i in decisions(app) if i["incident"]["id"] == other["id"])
    change = tap(app, cmdr, "escalate", item)
    assert [(t["department"], t["coordination"]) for t in change.tasks] == [("emergency", True)]


def test_a_stale_tap_and_the_wrong_role_are_refused(app, cmdr):
    open_incident(app, 1, severity=4)
    [item] = decisions(app)
    tap(app, cmdr, "approve", item)  # dispatched: the incident's version moved on
    with pytest.raises(d.VersionConflict):
        tap(app, cmdr, "approve", item)
    [item] = decisions(app)
    for role, dep in (("viewer", None), ("liaison", "fire")):
        with pytest.raises(Forbidden):
            tap(app, make_user(app, f"u-{role}", role, dep), "acknowledge", item)
    tap(app, make_user(app, "duty", "officer"), "acknowledge", item)  # an officer may decide for the commander


def test_the_manifest_and_icons_make_m_installable(app, client):
    res = client.get("/m/manifest.webmanifest")
    assert res.status_code == 200 and res.mimetype == "application/manifest+json"
    doc = res.get_json(force=True)
    assert doc["start_url"] == "/m" and doc["display"] == "standalone" and doc["name"] == "城市运行全景"
    for icon in doc["icons"]:
        png = client.get(icon["src"])
        assert png.status_code == 200 and png.mimetype == "image/png" and png.data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png.data[16:24])
        assert f"{width}x{height}" == icon["sizes"]
    assert sorted(i["sizes"] for i in doc["icons"]) == ["192x192", "512x512"]
    assert client.get("/m/icon-64.png").status_code == 404
    make_user(app, "cmdr", "commander")
    client.post("/api/session", json={"username": "cmdr", "password": TEST_PASSWORD})
    page = client.get("/m").get_data(as_text=True)
    assert '<link rel="manifest" href="/m/manifest.webmanifest">' in page and 'name="viewport"' in page
    assert "manifest" not in client.get("/").get_data(as_text=True)  # the desk is not installed as /m


def test_m_needs_the_command_permission(app, client):
    assert client.get("/m").status_code == 302
    make_user(app, "vic", "viewer")
    client.post("/api/session", json={"username": "vic", "password": TEST_PASSWORD})
    from dashboard.web import auth

    with client:
        client.get("/api/session")
        assert auth.page_access("/m") == "forbidden"


@pytest.mark.timeout(120)
def test_a_commander_sees_an_escalation_arrive_live_and_acknowledges_it_with_one_tap(make_app, redis_client, dash_duo):
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    port = free_port()
    app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/")
    make_user(app, "zhang.wei", "commander")
    inc = open_incident(app, 1, severity=3)
    [task] = dispatch_to(app, inc["id"], ["fire"])
    dash_duo.start_server(app)
    gw = Gateway(svc_of(app), port=port, origins=[dash_duo.server_url.rstrip("/")])
    gw.start()
    try:
        driver = dash_duo.driver
        phone_screen(driver)
        driver.get(dash_duo.server_url + "/m")
        dash_duo.wait_for_element("#login-username", timeout=10)  # signed out: the sign-in page, then back
        dash_duo.find_element("#login-username").send_keys("zhang.wei")
        dash_duo.find_element("#login-password").send_keys(TEST_PASSWORD)
        dash_duo.find_element("#login-submit").click()
        dash_duo.wait_for_element("#mobile-page", timeout=10)
        assert driver.execute_script("return window.innerWidth") == 390
        dash_duo.wait_for_text_to_equal("#user-name", "zhang.wei")
        dash_duo.wait_for_text_to_equal("#user-role", "指挥长")
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=15)
        dash_duo.wait_for_text_to_equal("#decision-list .m-empty", "暂无待决策事项")
        assert driver.find_elements("css selector", "#incident-list > li")[0].get_attribute("data-id") == \
            str(inc["id"])
        dash_duo.wait_for_contains_text("#city-status", "突发 1", timeout=10)
        driver.execute_script("window.__same_page = true")

        # the fire department misses its deadline: the checker (a controlled clock) escalates, the gateway pushes
        DeadlineChecker(svc_of(app)).check_once(at_ms=now(app) + 10 * MIN)
        dash_duo.wait_for_element(f"#decision-list #m-item-overdue-{inc['id']}", timeout=10)
        dash_duo.wait_for_contains_text("#decision-list .m-late", "未按时签收")
        assert driver.execute_script("return window.__same_page === true")  # live, not reloaded
        # nothing overflows a phone's width, and the buttons are big enough to tap
        sizes = driver.execute_script(
            "return [document.documentElement.scrollWidth,"
            " ...[...document.querySelectorAll('#decision-list .m-btn')].map(b => b.getBoundingClientRect().height)]")
        assert sizes[0] <= 390 and min(sizes[1:]) >= 44, sizes

        driver.find_element("css selector", "#decision-list .m-acknowledge").click()  # one tap
        dash_duo.wait_for_text_to_equal("#mobile-message", "已知悉：事件 1", timeout=10)
        dash_duo.wait_for_text_to_equal("#decision-list .m-empty", "暂无待决策事项", timeout=10)
        with svc_of(app).engine.connect() as conn:
            acks = [h for h in d.history(conn, inc["id"]) if h["action"] == commander.ACK_ACTION]
        assert [(h["actor"], h["task_id"]) for h in acks] == [("zhang.wei", task["id"])]

        # usable down to 360 px
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 360, "height": 740, "deviceScaleFactor": 3, "mobile": True})
        wait_for(lambda: driver.execute_script("return window.innerWidth") == 360, message="360 px")
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 360
    finally:
        gw.stop()
    assert dash_duo.get_logs() == []


# Every part of the status line within the phone's width, none broken across lines (its words are held by no-break
# spaces, so a part on two lines would show as a box wider than the line: a rect per line fragment of its text).
STATUS_FITS = """
const el = document.getElementById('city-status');
if (!el) return null;
return {text: el.textContent, over: el.scrollWidth - el.clientWidth, lines: el.getClientRects().length,
        height: el.getBoundingClientRect().height};
"""


def test_the_commanders_status_line_wraps_between_its_parts_and_loses_none_on_a_phone(make_app, redis_client,
                                                                                        dash_duo):
    """On a 390 px phone the line ran past the screen and was cut with an ellipsis: the incidents' count and the
    riskiest district, what a commander opens /m for, were the part cut off ("… · Env 3884 · I…"). English now spells
    the domains out ("Sec", "Traf", "Env", "Inc" were there to fit one line)."""
    from tests.helpers import seed_simulated, sign_in
    from tests.test_wall import set_lang

    app = make_app()
    assert seed_simulated(app, hours=1.0, rate=5.0) > 5_000  # four-digit counts: the line is longer than a phone
    dash_duo.start_server(app)
    phone_screen(dash_duo.driver)
    sign_in(dash_duo, app, "/m", "commander")
    for lang, incidents in (("zh", "突发\u00a0"), ("en", "Incidents\u00a0")):
        if lang == "en":
            set_lang(dash_duo, "en")
            dash_duo.driver.refresh()
        got = wait_for(lambda: (s := dash_duo.driver.execute_script(STATUS_FITS)) and incidents in s["text"] and s,
                       timeout=20, message=f"the status line in {lang}")
        assert got["over"] <= 0, got  # nothing runs past the screen (or hides behind an ellipsis)
        parts = got["text"].split(" · ")
        assert len(parts) >= 6 and all(" " not in p.strip() for p in parts[1:]), parts  # parts held whole
        assert got["height"] > 1.5 * 0.86 * 16, got  # and the line does wrap here, between parts
    assert dash_duo.get_logs() == []
