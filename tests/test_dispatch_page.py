"""The /dispatch page in a real headless Chromium on real Redis and PostgreSQL: officer, liaison, live, polling."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard.dispatch import board as d
from dashboard.dispatch import desk
from dashboard.dispatch.deadlines import DeadlineChecker
from dashboard.storage import users
from dashboard.storage.models import incidents
from feeds.pipeline import now_ms
from tests.helpers import city_clock, make_event, open_signed_in, wait_for
from tests.test_api import ingest_now

PASSWORD = "correct horse battery staple"


def js(dash_duo, script, *args):
    return dash_duo.driver.execute_script(script, *args)


@pytest.fixture
def page_app(make_app, redis_client):
    """Give an app serving /dispatch with no gateway (the page falls back to polling) and an officer.

    Its clock reads 10:00 in the city: the dialog's suggestion is the daytime rules'.
    """
    app = make_app(PANORAMA_POLL_MS=700, PANORAMA_CLOCK=city_clock("10:00"))
    svc = app.server.extensions["panorama"]
    users.create_user(svc.engine, "olga", PASSWORD, "officer", None, [])
    return app


def click(dash_duo, selector: str) -> None:
    """Click the element that matches ``selector`` now."""
    assert js(dash_duo, "const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e", selector)


def sign_in(dash_duo, app, name: str) -> None:
    """Sign the browser in as ``name``, then open /dispatch."""
    open_signed_in(dash_duo, app, name, "/dispatch", PASSWORD)


def open_desk(dash_duo, app, name: str, events: list[dict]) -> dict[str, int]:
    """Store ``events`` (each opens an incident), open /dispatch signed in as ``name`` with its queue drawn;
    return the incidents' ids by title."""
    svc = app.server.extensions["panorama"]
    ingest_now(app, {"incident": events})
    with svc.engine.connect() as conn:
        ids = {r.title: r.id for r in conn.execute(select(incidents.c.title, incidents.c.id))}
    dash_duo.start_server(app)
    dash_duo.get_logs()
    sign_in(dash_duo, app, name)
    dash_duo.wait_for_element("#incident-list .queue-item", timeout=20)
    return ids


def test_an_officer_dispatches_from_the_dialog_and_the_tasks_appear_on_the_board(page_app, dash_duo):
    now = page_app.server.extensions["panorama"].clock()
    ingest_now(page_app, {"incident": [make_event(1, kind="fire", severity=3, ts=now, lat=22.54, lon=114.05,
                                                  title="火情 福华路"),
                                       make_event(2, kind="gas_leak", severity=4, ts=now - 60_000,
                                                  title="燃气泄漏 深南大道")]})
    dash_duo.start_server(page_app)
    dash_duo.get_logs()  # the sign-in page before the cookie is set is not under test
    sign_in(dash_duo, page_app, "olga")
    dash_duo.wait_for_element("#incident-list .queue-item", timeout=10)
    titles = js(dash_duo, "return [...document.querySelectorAll('#incident-list > li .queue-title')]"
                          ".map(e => e.textContent)")
    assert titles == ["燃气泄漏 深南大道", "火情 福华路"]  # the most severe first; one child per incident
    js(dash_duo, "window.__same_page = true")

    # the list re-renders when its data changes: click through the DOM, never through a held element
    click(dash_duo, "#incident-list > li:nth-child(2) .queue-item")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-title", "火情 福华路", timeout=30)
    # its place: the report's point on the offline map, Futian highlighted
    marks = wait_for(lambda: js(dash_duo, "const g = document.querySelector('#dispatch-map .js-plotly-plot');"
                                          "return g && g.data && g.data[1].lat.length ? [g.data[1].lat, g.data[1].lon,"
                                          " g.layout.meta.district] : null"), message="the report on the map")
    assert marks == [[22.54], [114.05], "440304"]
    dash_duo.wait_for_element("#dispatch-map .choroplethlayer path", timeout=10)
    wait_for(lambda: dash_duo.find_element("#dispatch-open").is_enabled(), message="the dispatch button enabled")
    click(dash_duo, "#dispatch-open")
    dash_duo.wait_for_element("#dispatch-dialog:not([hidden])", timeout=10)
    ticked = wait_for(lambda: js(dash_duo, "return [...document.querySelectorAll('#dispatch-departments input')]"
                                           ".filter(e => e.checked).map(e => e.value)"), message="ticked suggestion")
    assert ticked == ["police", "fire", "emergency", "health"] or set(ticked) == {"fire", "emergency", "police",
                                                                                    "health"}
    # the dialog offers the city's departments and the offices of the incident's own district only
    offered = js(dash_duo, "return [...document.querySelectorAll('#dispatch-departments input')].map(e => e.value)")
    offices = {v for v in offered if v.startswith(("district_", "street_"))}
    assert "district_440304" in offices and "street_440304_lianhua" in offices
    assert all(v.startswith(("district_440304", "street_440304_")) for v in offices) and len(offices) == 11
    # the officer drops health from the suggestion
    js(dash_duo, "[...document.querySelectorAll('#dispatch-departments input')].find(e => e.value === 'health')"
                 ".click()")
    dash_duo.find_element("#dispatch-note").send_keys("two engines")
    dash_duo.find_element("#dispatch-submit").click()
    dash_duo.wait_for_element("#dispatch-dialog[hidden]", timeout=10)
    dash_duo.wait_for_element("#board-fire .task-card", timeout=10)
    cards = js(dash_duo, "return [...document.querySelectorAll('#task-board .task-card')]"
                         ".map(e => e.dataset.department).sort()")
    assert cards == ["emergency", "fire", "police"]
    dash_duo.wait_for_text_to_equal("#dispatch-detail-status", "已派单", timeout=10)
    # the countdown ticks in the browser: the fire rule gives 3 minutes to acknowledge
    assert wait_for(lambda: dash_duo.find_element("#board-fire .countdown").text.startswith(("2:", "3:0")))

    # the officer acknowledges for the fire department from the board
    click(dash_duo, "#board-fire .action-acknowledged")
    dash_duo.wait_for_text_to_equal("#board-fire .task-state", "已签收", timeout=30)  # a loaded machine: the ack is a callback round trip

    # no gateway here: a change made elsewhere (the API, another officer) reaches the board by the fallback poll
    svc = page_app.server.extensions["panorama"]
    with svc.engine.connect() as conn:
        inc_id = desk.queue(conn)[0]["id"]
    desk.write(svc, d.dispatch, inc_id, ["water"], "someone", None, svc.clock(), svc.city.rules, svc.city)
    click(dash_duo, "#board-scope input[value='all']")  # the board shows the selected incident's tasks until then
    dash_duo.wait_for_element("#board-water .task-card", timeout=10)
    assert js(dash_duo, "return window.__same_page === true")
    assert dash_duo.get_logs() == []


def test_the_board_takes_changes_made_elsewhere_from_the_gateway_without_polling(make_app, redis_client, dash_duo):
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    port = free_port()
    # The fallback poll would come only after ten minutes: whatever shows up below came over the socket.
    app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/", PANORAMA_POLL_MS=600_000)
    svc = app.server.extensions["panorama"]
    users.create_user(svc.engine, "olga", PASSWORD, "officer", None, [])
    dash_duo.start_server(app)
    gw = Gateway(svc, port=port, origins=[dash_duo.server_url.rstrip("/")])
    gw.start()
    try:
        dash_duo.get_logs()
        sign_in(dash_duo, app, "olga")
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=15)
        dash_duo.wait_for_text_to_equal("#incident-list", "暂无未结事件", timeout=10)
        js(dash_duo, "window.__same_page = true")

        # ingest opens an incident: its delta reaches the queue
        ingest_now(app, {"incident": [make_event(1, kind="fire", severity=3, ts=now_ms(), lat=22.54, lon=114.05,
                                                 title="火情 莲花路")]})
        dash_duo.wait_for_text_to_equal("#incident-list > li .queue-title", "火情 莲花路", timeout=10)
        click(dash_duo, "#incident-list > li:nth-child(1) .queue-item")
        dash_duo.wait_for_text_to_equal("#dispatch-detail-status", "待派单", timeout=10)

        # another officer dispatches through the API: the tasks appear on the board and the detail follows
        with svc.engine.connect() as conn:
            inc_id = desk.queue(conn)[0]["id"]
        change = desk.write(svc, d.dispatch, inc_id, ["fire", "police"], "someone", None, now_ms(),
                                    svc.city.rules, svc.city)
        dash_duo.wait_for_element("#board-fire .task-card", timeout=10)
        dash_duo.wait_for_text_to_equal("#board-police .task-state", "待签收", timeout=10)
        dash_duo.wait_for_text_to_equal("#dispatch-detail-status", "已派单", timeout=10)

        # a liaison acknowledges on their own screen: the state moves here
        fire = next(t for t in change.tasks if t["department"] == "fire")
        liaison = users.create_user(svc.engine, "fay", PASSWORD, "liaison", "fire", ["fire"])
        desk.do_transition(svc, liaison, fire["id"], "acknowledged", fire["version"], None)
        dash_duo.wait_for_text_to_equal("#board-fire .task-state", "已签收", timeout=10)
        dash_duo.wait_for_text_to_equal("#dispatch-detail-status", "处置中", timeout=10)
        assert "已签收" in dash_duo.find_element("#dispatch-timeline").text

        # a missed deadline (a controlled clock): the card turns escalated and the notice names the department
        DeadlineChecker(svc).check_once(now_ms() + 10 * 60_000)
        dash_duo.wait_for_element("#board-police .task-card.is-escalated", timeout=10)
        dash_duo.wait_for_contains_text("#dispatch-escalations", "深圳市公安局 未按时签收", timeout=10)
        assert dash_duo.find_element("#live-indicator").get_attribute("class") == "conn conn-live"
        assert js(dash_duo, "return window.__same_page === true")  # never reloaded
    finally:
        gw.stop()
    assert dash_duo.get_logs() == []


def test_a_liaison_sees_only_their_departments_board_and_an_overdue_countdown_is_red(make_app, redis_client,
                                                                                     dash_duo):
    from dashboard.core.clock import Clock

    # The browser's clock is three hours ahead of the server's (a phone or desktop without NTP): the
    # countdowns still read the server's time left.
    page_app = make_app(PANORAMA_POLL_MS=700, PANORAMA_CLOCK=Clock(offset_ms=-3 * 3_600_000))
    svc = page_app.server.extensions["panorama"]
    now = svc.clock()
    ingest_now(page_app, {"incident": [make_event(1, kind="fire", severity=3, ts=now, title="火情 福华路"),
                                       make_event(2, kind="medical", severity=3, ts=now, title="急救 深南大道")]})
    with svc.engine.connect() as conn:
        fire_inc, medical_inc = sorted(i["id"] for i in desk.queue(conn))
    # dispatched ten minutes ago: the fire rule gave three minutes to acknowledge
    desk.write(svc, d.dispatch, fire_inc, ["fire", "police"], "olga", None, now - 10 * 60_000,
                       svc.city.rules, svc.city)
    desk.write(svc, d.dispatch, medical_inc, ["health"], "olga", None, now, svc.city.rules, svc.city)
    users.create_user(svc.engine, "fay", PASSWORD, "liaison", "fire", ["fire"])
    dash_duo.start_server(page_app)
    dash_duo.get_logs()
    client = page_app.server.test_client()
    assert client.post("/api/session", json={"username": "fay", "password": PASSWORD}).status_code == 200
    dash_duo.driver.get(dash_duo.server_url + "/_dash-layout")
    dash_duo.driver.add_cookie({"name": "panorama_session", "value": client.get_cookie("panorama_session").value,
                                "path": "/"})
    # asking for another department's board in the address changes nothing for a liaison
    dash_duo.driver.get(dash_duo.server_url + "/dispatch?department=police")
    dash_duo.wait_for_element("#board-fire .task-card", timeout=10)
    assert js(dash_duo, "return [...document.querySelectorAll('#task-board .task-card')]"
                        ".map(e => e.dataset.department)") == ["fire"]
    assert js(dash_duo, "return [...document.querySelectorAll('#incident-list .queue-title')]"
                        ".map(e => e.textContent)") == ["火情 福华路"]
    assert dash_duo.find_element("#board-filter").text == "部门：深圳市消防救援支队"
    assert not dash_duo.find_element("#dispatch-open").is_displayed()  # officers dispatch, liaisons do not
    # the deadline has passed: the countdown reads negative, in red
    countdown = dash_duo.find_element("#board-fire .countdown")
    wait_for(lambda: "overdue" in countdown.get_attribute("class"), message="the overdue class")
    assert countdown.value_of_css_property("color") == "rgba(220, 38, 38, 1)"
    assert countdown.text.startswith(("-7:", "-6:5")), countdown.text  # seven minutes late, not three hours
    # the liaison acknowledges their own task from the board
    click(dash_duo, "#board-fire .action-acknowledged")
    dash_duo.wait_for_text_to_equal("#board-fire .task-state", "已签收", timeout=10)
    assert dash_duo.get_logs() == []


def test_the_dialog_suggests_the_nearest_available_units_and_sends_the_ticked_ones(page_app, dash_duo):
    from sqlalchemy import select, update

    from dashboard.dispatch.units import km_between
    from dashboard.storage.models import units

    svc = page_app.server.extensions["panorama"]
    now = svc.clock()
    with svc.engine.begin() as conn:  # the nearest fire engine is off duty: not offered
        nearest = sorted(((km_between(22.54, 114.05, r.lat, r.lon), r.unit) for r in conn.execute(
            select(units.c.unit, units.c.lat, units.c.lon).where(units.c.department == "fire"))))
        conn.execute(update(units).where(units.c.unit == nearest[0][1]).values(status="off_duty"))
    ingest_now(page_app, {"incident": [make_event(1, kind="fire", severity=3, ts=now, lat=22.54, lon=114.05,
                                                  title="火情 福华路")]})
    dash_duo.start_server(page_app)
    dash_duo.get_logs()
    sign_in(dash_duo, page_app, "olga")
    dash_duo.wait_for_element("#incident-list .queue-item", timeout=10)
    click(dash_duo, "#incident-list > li:nth-child(1) .queue-item")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-title", "火情 福华路", timeout=30)
    wait_for(lambda: dash_duo.find_element("#dispatch-open").is_enabled(), message="the dispatch button enabled")
    click(dash_duo, "#dispatch-open")
    dash_duo.wait_for_element("#dispatch-dialog:not([hidden])", timeout=10)
    offered = wait_for(lambda: js(dash_duo, "return [...document.querySelectorAll('#dispatch-units input')]"
                                            ".map(e => e.value)"), timeout=15, message="the units suggested")
    fire = [v for v in offered if v in {u for _, u in nearest}]
    assert fire == [u for _, u in nearest[1:4]]  # the three nearest available, nearest first
    labels = js(dash_duo, "return [...document.querySelectorAll('#dispatch-units label')].map(e => e.textContent)")
    assert any(" 公里" in x and "消防" in x for x in labels)
    assert "直线距离" in dash_duo.find_element(".units-note").text  # says how it measured
    js(dash_duo, "document.querySelector('#dispatch-units input[value=\"' + arguments[0] + '\"]').click()", fire[0])
    dash_duo.find_element("#dispatch-submit").click()
    dash_duo.wait_for_element("#dispatch-dialog[hidden]", timeout=10)
    with svc.engine.connect() as conn:
        row = conn.execute(select(units.c.status, units.c.task_id).where(units.c.unit == fire[0])).one()
    assert row.status == "en_route" and row.task_id is not None
    assert dash_duo.get_logs() == []
