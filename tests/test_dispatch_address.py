"""The incident open on /dispatch lives in the address (?incident=), in a real headless Chromium: the language
switch, a reload and a shared link open the same incident; one the reader may not read opens nothing, exactly as
one that never was."""

from __future__ import annotations

import pytest

from dashboard.storage import users
from tests.helpers import make_event, wait_for
from tests.test_dispatch_page import PASSWORD, click, js, open_desk, page_app  # noqa: F401 (page_app: the fixture)
from tests.test_merge_page import pick

NONE_ZH = "选择左侧事件查看详情"


def address(dash_duo) -> str:
    return js(dash_duo, "return location.pathname + location.search")


def detail_title(dash_duo) -> str | None:
    return js(dash_duo, "const e = document.getElementById('dispatch-detail-title'); return e && e.textContent")


def open_address(dash_duo, path: str) -> None:
    """Open ``path`` as a link followed from elsewhere (a mail, a chat) would, and wait for the queue."""
    dash_duo.driver.get(dash_duo.server_url + path)
    dash_duo.wait_for_element("#incident-list .queue-item", timeout=20)


@pytest.mark.timeout(240)
def test_the_open_incident_stays_open_across_the_language_switch_a_reload_and_a_shared_link(page_app, dash_duo):  # noqa: F811
    svc = page_app.server.extensions["panorama"]
    now = svc.clock()
    ids = open_desk(dash_duo, page_app, "olga", [
        make_event(1, kind="fire", severity=3, ts=now, lat=22.54, lon=114.05, title="火情 福华路"),
        make_event(2, kind="gas_leak", severity=4, ts=now - 60_000, title="燃气泄漏 深南大道")])
    assert address(dash_duo) == "/dispatch"
    pick(dash_duo, "火情 福华路")
    wait_for(lambda: address(dash_duo) == f"/dispatch?incident={ids['火情 福华路']}", message="the address names it")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-status", "待派单", timeout=10)
    back = js(dash_duo, "return history.length")

    # the language switch draws the page anew: the same incident, in English, nothing picked again
    click(dash_duo, "#lang-toggle")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-status", "Awaiting dispatch", timeout=20)
    assert detail_title(dash_duo) == "火情 福华路"
    wait_for(lambda: js(dash_duo, "return document.querySelector("
                                  "'#incident-list .queue-item.selected .queue-title').textContent") == "火情 福华路",
             message="the queue marks it")
    wait_for(lambda: dash_duo.find_element("#dispatch-open").is_enabled(), message="dispatch usable on it")
    assert address(dash_duo) == f"/dispatch?incident={ids['火情 福华路']}"

    # picking another replaces the address (Back still leaves the page, not the incident)
    pick(dash_duo, "燃气泄漏 深南大道")
    wait_for(lambda: address(dash_duo) == f"/dispatch?incident={ids['燃气泄漏 深南大道']}", message="the new one")
    assert js(dash_duo, "return history.length") == back

    # a reload opens it again, drawn by the server's first paint and the page alike
    dash_duo.driver.refresh()
    dash_duo.wait_for_text_to_equal("#dispatch-detail-title", "燃气泄漏 深南大道", timeout=20)
    dash_duo.wait_for_text_to_equal("#dispatch-detail-status", "Awaiting dispatch", timeout=10)

    # a shared link, with the board's department filter kept beside it
    open_address(dash_duo, f"/dispatch?department=fire&incident={ids['火情 福华路']}")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-title", "火情 福华路", timeout=20)
    dash_duo.wait_for_text_to_equal("#board-filter", "Department: Shenzhen Fire and Rescue Detachment", timeout=10)
    pick(dash_duo, "燃气泄漏 深南大道")
    wait_for(lambda: address(dash_duo) == f"/dispatch?department=fire&incident={ids['燃气泄漏 深南大道']}",
             message="the filter kept")
    assert dash_duo.get_logs() == []


@pytest.mark.timeout(240)
def test_an_incident_the_reader_may_not_read_opens_nothing_as_one_that_never_was(page_app, dash_duo):  # noqa: F811
    svc = page_app.server.extensions["panorama"]
    users.create_user(svc.engine, "futian-o", PASSWORD, "officer", None, [], district="440304",
                      districts=[d.code for d in svc.city.districts])
    now = svc.clock()
    ids = open_desk(dash_duo, page_app, "futian-o", [
        make_event(1, kind="fire", severity=3, ts=now, lat=22.54, lon=114.05, title="火情 福华路"),
        make_event(2, kind="fire", severity=3, ts=now, district="nanshan", title="火情 南头")])
    drawn = {}
    for what, asked in (("Nanshan's", ids["火情 南头"]), ("none such", 987654), ("not an id", "abc"),
                        ("too big", 2**64)):
        open_address(dash_duo, f"/dispatch?incident={asked}")
        dash_duo.wait_for_text_to_equal("#dispatch-detail", NONE_ZH, timeout=20)
        # the address no longer names it; nothing on the page (nor in the HTML the server sent) does
        wait_for(lambda: address(dash_duo) == "/dispatch", message=f"{what}: the address cleaned")
        assert "火情 南头" not in dash_duo.driver.page_source
        assert not dash_duo.find_element("#dispatch-open").is_enabled()
        drawn[what] = js(dash_duo, "return [document.getElementById('dispatch-detail').innerHTML,"
                                   " document.getElementById('incident-list').innerText]")
    assert len({tuple(v) for v in drawn.values()}) == 1, drawn  # another district's is as absent as none at all
    # their own district's opens
    open_address(dash_duo, f"/dispatch?incident={ids['火情 福华路']}")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-title", "火情 福华路", timeout=20)
    assert dash_duo.get_logs() == []
