"""The major-incident mode in Chromium: an open wall switches to the command view when an incident is declared
over the API and back to peacetime when it is stood down (through the gateway); /m shows the command card first,
and the commander stands it down from there behind a confirmation."""

from __future__ import annotations

import time

import pytest

from dashboard.storage import users as accounts
from tests.helpers import sign_in, wait_for
from tests.test_dispatch_api import Session, make_user
from tests.test_major import open_incident
from tests.test_pages import own_updates_channel

TITLE = "<b>福田 大火</b> & 爆燃"  # markup in a title stays text


def own_channel(monkeypatch) -> str:
    """Send this test's deltas (ingest's and the declarations') to a channel of its own."""
    import dashboard.dispatch.desk

    channel = own_updates_channel(monkeypatch)
    monkeypatch.setattr(dashboard.dispatch.desk, "UPDATES_CHANNEL", channel)
    return channel


def shown(dash_duo) -> dict | None:
    """Return what the page shows of the command view: its title's text, whether markup became elements, the
    peacetime grid's display; None when there is no command view."""
    return dash_duo.driver.execute_script(
        "const v = document.getElementById('major-view'); if (!v) { return null; }"
        "const title = document.getElementById('major-title');"
        "const grid = document.querySelector('.wall-grid, .desk-grid');"
        "return {title: title && title.textContent, bold: v.querySelectorAll('.major-title b').length,"
        " level: v.querySelector('.major-level').textContent, grid: grid && getComputedStyle(grid).display,"
        " ring: !!v.querySelector('#major-map .main-svg')};")


@pytest.mark.timeout(240)
def test_in_chromium_an_open_wall_switches_to_the_command_view_and_back(make_app, redis_client, dash_duo,
                                                                        monkeypatch):
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    channel = own_channel(monkeypatch)
    port = free_port()
    app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/")
    engine = app.server.extensions["panorama"].engine
    _, token = accounts.create_kiosk_token(engine, "hall")
    inc = open_incident(app, title=TITLE)
    make_user(app, "olga", "officer")
    officer = Session(app, "olga")
    dash_duo.start_server(app)
    gw = Gateway(app.server.extensions["panorama"], port=port, origins=[dash_duo.server_url.rstrip("/")],
                 channel=channel)
    gw.start()
    try:
        dash_duo.driver.get(f"{dash_duo.server_url}/wall?token={token}")  # a kiosk wall: nobody signed in
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=30)
        dash_duo.wait_for_element("#major-slot")
        assert shown(dash_duo) is None  # peacetime

        r = officer.post(f"/api/incidents/{inc['id']}/major", {"level": 1, "note": "启动一级响应"})
        assert r.status_code == 200, r.get_data(as_text=True)
        declared = time.monotonic()
        view = wait_for(lambda: shown(dash_duo), timeout=15, message="the wall's command view")
        switched_s = time.monotonic() - declared
        assert view["title"] == TITLE and view["bold"] == 0  # the title as text, never HTML
        assert view["level"] == "I级响应" and view["grid"] == "none"  # the peacetime panorama stepped aside
        wait_for(lambda: shown(dash_duo)["ring"], timeout=20, message="the command view's map drawn")
        timeline = dash_duo.find_element("#major-timeline").text
        assert "启动I级应急响应" in timeline and "启动一级响应" in timeline

        r = officer.client.delete(f"/api/incidents/{inc['id']}/major", headers={"X-CSRF-Token": officer.csrf})
        assert r.status_code == 200, r.get_data(as_text=True)
        stood_down = time.monotonic()
        wait_for(lambda: shown(dash_duo) is None, timeout=15, message="peacetime again on the wall")
        back_s = time.monotonic() - stood_down
        assert dash_duo.driver.execute_script(
            "return getComputedStyle(document.querySelector('.wall-grid')).display") != "none"
        print(f"wall switched in {switched_s:.2f} s, back in {back_s:.2f} s")  # docs: from the API's answer
    finally:
        gw.stop()
    severe = [e["message"] for e in dash_duo.get_logs() or [] if e["level"] == "SEVERE"]
    assert severe == []


@pytest.mark.timeout(240)
def test_in_chromium_m_shows_the_command_card_first_and_the_commander_stands_it_down(make_app, redis_client,
                                                                                     dash_duo, monkeypatch):
    own_channel(monkeypatch)
    app = make_app()
    inc = open_incident(app, title=TITLE)
    make_user(app, "olga", "officer")
    assert Session(app, "olga").post(f"/api/incidents/{inc['id']}/major", {"level": 2}).status_code == 200
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/m", role="commander")
    dash_duo.wait_for_text_to_equal("#major-card-title", TITLE, timeout=20)
    # first: above the decisions and the alerts
    order = dash_duo.driver.execute_script(
        "const top = (s) => { const e = document.querySelector(s); return e ? e.getBoundingClientRect().top : null; };"
        "return [top('#major-card'), top('#decision-list'), top('#alert-list')];")
    assert all(order[0] < other for other in order[1:] if other is not None), order

    dash_duo.find_element("#major-stand-down").click()
    wait_for(lambda: _alert(dash_duo), timeout=10, message="the confirmation")
    dash_duo.driver.switch_to.alert.accept()
    dash_duo.wait_for_text_to_equal("#major-message", "已终止应急响应", timeout=15)
    with app.server.extensions["panorama"].engine.connect() as conn:
        from dashboard.dispatch import major

        assert major.active(conn) == []
    wait_for(lambda: not dash_duo.find_elements("#major-card"), timeout=20, message="the card gone from /m")


def _alert(dash_duo) -> bool:
    try:
        dash_duo.driver.switch_to.alert.text  # noqa: B018 - raises while no confirmation is open
        return True
    except Exception:  # noqa: BLE001 - selenium's NoAlertPresentException
        return False


@pytest.mark.timeout(300)
def test_in_chromium_the_officer_declares_from_the_dispatch_detail_and_ticks_a_step(make_app, redis_client,
                                                                                    dash_duo, monkeypatch):
    from dashboard.dispatch import board as d
    from dashboard.dispatch import desk, major
    from feeds.pipeline import now_ms
    from tests.helpers import open_incident_detail

    own_channel(monkeypatch)
    app = make_app()
    svc = app.server.extensions["panorama"]
    inc = open_incident(app, title=TITLE)
    desk.write(svc, d.dispatch, inc["id"], ["fire", "police"], "olga", None, now_ms(), svc.city.rules, svc.city)
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/dispatch", role="officer")
    open_incident_detail(dash_duo, inc["id"], TITLE)
    # the checklist of a fire, ticked: the step shows done, by whom
    dash_duo.wait_for_element("#procedure-steps")
    dash_duo.driver.execute_script(
        "document.querySelector('[id*=\"fire_attack\"][id*=\"step-tick\"]').click()")
    dash_duo.wait_for_contains_text("#procedure-message", "已完成：灭火救援力量到场展开", timeout=15)
    with svc.engine.connect() as conn:
        from dashboard.dispatch import procedure

        done = {s["step"]: s["done_by"] for s in procedure.checklist(conn, svc.city, {**inc, "kind": "fire"})}
    assert done["fire_attack"] == "browser-officer" and done["cordon"] is None

    # declare, behind a confirmation
    dash_duo.wait_for_element("#major-declare").click()
    wait_for(lambda: _alert(dash_duo), timeout=10, message="the confirmation")
    dash_duo.driver.switch_to.alert.accept()
    # the outcome, then the detail redrawn with the level (its poll while no gateway runs may replace the outcome)
    wait_for(lambda: dash_duo.driver.execute_script(
        "const m = document.querySelector('#major-message'), b = document.querySelector('#major-controls .major-level');"
        "return (m && m.textContent === '已启动II级应急响应') || (b && b.textContent === 'II级响应');"), timeout=15,
        message="the declaration's outcome")
    dash_duo.wait_for_text_to_equal("#major-controls .major-level", "II级响应", timeout=30)
    assert dash_duo.find_element("#major-declare").text == "调整响应级别" and dash_duo.find_elements("#major-stand-down")
    with svc.engine.connect() as conn:
        assert [(r["incident_id"], r["level"]) for r in major.active(conn)] == [(inc["id"], 2)]
    # the timeline says it in words once the detail redraws (its poll while no gateway runs)
    # read in one script: the detail redraws meanwhile, and an element found and then read may be gone in between
    wait_for(lambda: "启动II级应急响应" in dash_duo.driver.execute_script(
        "const e = document.getElementById('dispatch-timeline'); return e ? e.textContent : '';"), timeout=30,
        message="the declaration in the timeline")
