"""Escalation and the officer's day in Chromium: the commander taps 升级 on /m, the officer sees the truth on /dispatch."""

from __future__ import annotations

import pytest

from dashboard.dispatch import board as d
from dashboard.dispatch import desk
from dashboard.dispatch.deadlines import DeadlineChecker
from tests.helpers import city_clock, make_event, make_user, open_signed_in, phone_screen, wait_for
from tests.test_api import ingest_now

MIN = 60_000


@pytest.fixture
def eapp(make_app, redis_client):
    """Give an app at 10:00 in the city with no gateway (pages poll), a commander and an officer."""
    app = make_app(PANORAMA_POLL_MS=700, PANORAMA_CLOCK=city_clock("10:00"))
    make_user(app, "zhang.wei", "commander")
    make_user(app, "olga", "officer")
    return app


def svc_of(app):
    return app.server.extensions["panorama"]


def js(dash_duo, script, *args):
    return dash_duo.driver.execute_script(script, *args)


def click(dash_duo, selector: str) -> None:
    """Click the element that matches ``selector`` now (lists re-render: never a held element)."""
    assert js(dash_duo, "const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e", selector), \
        selector


def open_fire(app, n: int, severity: int, minutes_ago: int = 0) -> dict:
    now = svc_of(app).clock()
    ingest_now(app, {"incident": [make_event(n, kind="fire", severity=severity, ts=now - minutes_ago * MIN,
                                             lat=22.54, lon=114.0 + n * 0.02, title=f"火情 {n}")]})
    with svc_of(app).engine.connect() as conn:
        return next(r for r in desk.queue(conn) if r["title"] == f"火情 {n}")


def texts(dash_duo, selector: str) -> list[str]:
    return js(dash_duo, "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", selector)


@pytest.mark.timeout(180)
def test_an_escalated_undispatched_incident_stays_in_the_officers_queue_awaiting_dispatch(eapp, dash_duo):
    older = open_fire(eapp, 1, severity=4, minutes_ago=5)  # first in the queue by age
    inc = open_fire(eapp, 2, severity=4)
    dash_duo.start_server(eapp)
    dash_duo.get_logs()  # the sign-in page before the cookie is set is not under test
    driver = dash_duo.driver
    phone_screen(driver)
    open_signed_in(dash_duo, eapp, "zhang.wei", "/m")
    item = f"#decision-list #m-item-critical-{inc['id']}"
    dash_duo.wait_for_element(f"{item} .m-escalate", timeout=15)
    click(dash_duo, f"{item} .m-escalate")  # the commander's one tap
    dash_duo.wait_for_text_to_equal("#mobile-message", "已升级至深圳市应急管理局：火情 2", timeout=10)
    # still a decision: the dispatch the rules suggest waits for approval; escalated is its own mark
    dash_duo.wait_for_text_to_equal(f"{item} .badge-escalated", "已升级", timeout=10)
    assert texts(dash_duo, f"{item} .m-btn") == ["知悉", "批准派单"]
    assert "深圳市公安局" in dash_duo.find_element(f"{item} .m-item-meta").text  # police: still suggested
    first = "#incident-list > li:first-child"
    dash_duo.wait_for_text_to_equal(f"{first} .badge-escalated", "已升级", timeout=10)
    assert dash_duo.find_element(first).get_attribute("data-id") == str(inc["id"])
    assert "待派单" in dash_duo.find_element(f"{first} .m-inc-meta").text

    # the duty officer's desk: still in the queue, on top, awaiting dispatch, marked escalated
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    open_signed_in(dash_duo, eapp, "olga", "/dispatch")
    dash_duo.wait_for_element("#incident-list .queue-item .badge-escalated", timeout=15)
    ids = js(dash_duo, "return [...document.querySelectorAll('#incident-list > li')].map(e => e.dataset.id)")
    assert ids == [str(inc["id"]), str(older["id"])]
    assert texts(dash_duo, "#incident-list > li:first-child .status") == ["待派单"]
    assert texts(dash_duo, "#incident-list .badge-escalated") == ["已升级"]
    click(dash_duo, "#incident-list > li:first-child .queue-item")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-title", "火情 2", timeout=30)
    dash_duo.wait_for_text_to_equal("#dispatch-detail .badge-escalated", "已升级", timeout=10)
    assert "深圳市公安局" in dash_duo.find_element("#dispatch-detail .detail-suggestion").text
    wait_for(lambda: "升级：由深圳市应急管理局协调" in dash_duo.find_element("#dispatch-timeline").text,
             message="the escalation, said in Chinese, in the timeline")
    dash_duo.wait_for_text_to_equal("#board-emergency .task-coordination", "协调", timeout=10)
    wait_for(lambda: dash_duo.find_element("#dispatch-open").is_enabled(), message="dispatch still to do")
    # in English too
    click(dash_duo, "#lang-toggle")  # the switch re-renders the page in English
    dash_duo.wait_for_element("#incident-list .queue-item .badge-escalated", timeout=15)
    wait_for(lambda: texts(dash_duo, "#incident-list .badge-escalated") == ["Escalated"], message="English mark")
    assert dash_duo.get_logs() == []


@pytest.mark.timeout(240)
def test_the_officer_sees_the_servers_escalations_after_a_reload_and_closes_with_reasons(eapp, dash_duo):
    svc = svc_of(eapp)
    make_user(eapp, "fay", "liaison", "fire")  # the fire department is on the system; the police are not
    inc = open_fire(eapp, 1, severity=3)
    other = open_fire(eapp, 2, severity=3)
    fire, police = desk.write(svc, d.dispatch, inc["id"], ["fire", "police"], "olga", None, svc.clock() - 10 * MIN,
                              svc.city.rules, svc.city).tasks
    desk.write(svc, d.dispatch, other["id"], ["water"], "olga", None, svc.clock(), svc.city.rules, svc.city)
    DeadlineChecker(svc).check_once(at_ms=svc.clock())  # fire and police missed their acknowledge deadline
    dash_duo.start_server(eapp)
    dash_duo.get_logs()
    open_signed_in(dash_duo, eapp, "olga", "/dispatch")
    notices = "#dispatch-escalations > li"
    want = ["超时升级：深圳市公安局 未按时签收 · 火情 1", "超时升级：深圳市消防救援支队 未按时签收 · 火情 1"]
    wait_for(lambda: sorted(texts(dash_duo, notices)) == sorted(want), message="the server's escalations")
    dash_duo.driver.refresh()  # a reload shows the same: the notices are the server's state
    dash_duo.wait_for_element("#incident-list .queue-item", timeout=15)
    wait_for(lambda: sorted(texts(dash_duo, notices)) == sorted(want), message="the escalations after a reload")

    # the board: the selected incident's tasks, and all of them at a switch
    click(dash_duo, f"#incident-list > li[data-id='{inc['id']}'] .queue-item")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-title", "火情 1", timeout=30)
    wait_for(lambda: sorted(js(dash_duo, "return [...document.querySelectorAll('#task-board .task-card')]"
                                         ".map(e => e.dataset.department)")) == ["fire", "police"],
             message="the selected incident's tasks only")
    click(dash_duo, "#board-scope input[value='all']")
    dash_duo.wait_for_element("#board-water .task-card", timeout=10)
    click(dash_duo, "#board-scope input[value='incident']")
    wait_for(lambda: not js(dash_duo, "return !!document.querySelector('#board-water')"), message="back to one")

    # the greyed close button says why
    assert not dash_duo.find_element("#dispatch-close-incident").is_enabled()
    dash_duo.wait_for_text_to_equal("#dispatch-close-why", "待办结：深圳市公安局、深圳市消防救援支队", timeout=10)

    # the police have nobody on the system: the officer records their resolution, with a note; fire has a liaison
    assert not js(dash_duo, "return !!document.querySelector('#board-fire .action-resolve-for')")
    dash_duo.find_element("#task-note").send_keys("派出所王警官电话告知已处置")
    click(dash_duo, "#board-police .action-resolve-for")
    dash_duo.wait_for_text_to_equal("#task-message", "已代深圳市公安局登记办结：火情 1", timeout=10)
    dash_duo.wait_for_text_to_equal("#board-police .task-state", "已办结", timeout=10)
    dash_duo.wait_for_text_to_equal("#dispatch-close-why", "待办结：深圳市消防救援支队", timeout=10)
    wait_for(lambda: "代深圳市公安局登记办结 — 派出所王警官电话告知已处置" in
             dash_duo.find_element("#dispatch-timeline").text, message="the audited resolution in the timeline")
    wait_for(lambda: texts(dash_duo, notices) == [want[1]], message="the police notice gone once resolved")

    # fire acknowledges and resolves (the officer on the board): close is open, and after closing nothing stays
    dash_duo.find_element("#task-note").clear()
    click(dash_duo, "#board-fire .action-acknowledged")
    dash_duo.wait_for_text_to_equal("#board-fire .task-state", "已签收", timeout=10)
    click(dash_duo, "#board-fire .action-resolved")
    wait_for(lambda: dash_duo.find_element("#dispatch-close-incident").is_enabled(), message="close enabled")
    assert dash_duo.find_element("#dispatch-close-why").text == ""
    click(dash_duo, "#dispatch-close-incident")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-status", "已结案", timeout=10)
    dash_duo.driver.refresh()
    dash_duo.wait_for_element("#incident-list .queue-item", timeout=15)
    wait_for(lambda: texts(dash_duo, notices) == [] and
             js(dash_duo, "return !!document.querySelector(`#incident-list > li[data-id='" + str(inc["id"]) + "']`)")
             is False, message="no notice and no queue entry for the closed incident after a reload")
    assert dash_duo.get_logs() == []
