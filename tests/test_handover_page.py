"""Hand-down on /dispatch in a real headless Chromium on real Redis and PostgreSQL: the city centre's officer hands
an incident down, the district centre's officer sees it run by their centre, first in their queue, in the timeline."""

from __future__ import annotations

from sqlalchemy import select

from dashboard.storage import users
from dashboard.storage.models import incidents
from tests.helpers import make_event, wait_for
from tests.test_accessibility import axe_violations
from tests.test_dispatch_page import PASSWORD, click, js, open_desk, page_app, sign_in  # noqa: F401 (page_app: the fixture)
from tests.test_merge_page import choose, pick

FUTIAN = "440304"


def marks(dash_duo) -> list[list[str]]:
    """Return the queue as [title, centre mark] rows, in its order."""
    return js(dash_duo, "return [...document.querySelectorAll('#incident-list > li')].map(li => ["
                        "li.querySelector('.queue-title').textContent,"
                        " (li.querySelector('.centre-mark') || {}).textContent])")


def test_the_city_hands_an_incident_down_and_the_district_officer_sees_it_run_by_their_centre(page_app, dash_duo):  # noqa: F811
    svc = page_app.server.extensions["panorama"]
    users.create_user(svc.engine, "futian-o", PASSWORD, "officer", None, [], district=FUTIAN,
                      districts=[d.code for d in svc.city.districts])
    now = svc.clock()
    # two critical incidents in Futian: both go up to the city centre by themselves; the older first in its queue
    ids = open_desk(dash_duo, page_app, "olga", [
        make_event(1, kind="gas_leak", severity=4, ts=now - 300_000, lat=22.54, lon=114.05, title="燃气泄漏 深南大道"),
        make_event(2, kind="fire", severity=4, ts=now - 60_000, lat=22.55, lon=114.06, title="火情 福华路"),
    ])
    wait_for(lambda: marks(dash_duo) == [["燃气泄漏 深南大道", "市级"], ["火情 福华路", "市级"]],
             message="both in the queue, marked as the city centre's")
    pick(dash_duo, "火情 福华路")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-centre", "处置中心：市指挥中心", timeout=10)
    wait_for(lambda: dash_duo.find_element("#dispatch-handdown-open").is_enabled(), message="hand-down enabled")
    assert not dash_duo.find_element("#dispatch-handup-open").is_enabled()  # the city centre runs it already
    click(dash_duo, "#dispatch-handdown-open")
    dash_duo.wait_for_element("#handdown-dialog:not([hidden])", timeout=10)
    offered = wait_for(lambda: js(dash_duo, "return [...document.querySelectorAll('#handdown-districts [role=radio]')]"
                                            ".map(e => e.textContent)"), message="the districts offered")
    assert offered == ["福田区指挥中心"]  # the districts the incident involves: its reports are all Futian's
    assert dash_duo.find_element("#handdown-submit").get_attribute("disabled")
    assert axe_violations(dash_duo) == []  # the open dialog and its choices: WCAG 2.2 AA
    choose(dash_duo, "#handdown-districts", FUTIAN)
    dash_duo.wait_for_text_to_equal("#handdown-confirm", "确认后，「火情 福华路」下派福田区指挥中心处置", timeout=10)
    dash_duo.find_element("#handdown-note").send_keys("区内可处置")
    wait_for(lambda: dash_duo.find_element("#handdown-submit").is_enabled(), message="confirm enabled")
    click(dash_duo, "#handdown-submit")
    dash_duo.wait_for_element("#handdown-dialog[hidden]", timeout=10)
    dash_duo.wait_for_text_to_equal("#dispatch-detail-message", "已下派福田区指挥中心：火情 福华路", timeout=10)
    dash_duo.wait_for_text_to_equal("#dispatch-detail-centre", "处置中心：福田区指挥中心", timeout=10)
    wait_for(lambda: "市指挥中心 下派福田区指挥中心 — 区内可处置" in dash_duo.find_element("#dispatch-timeline").text,
             message="the hand-down in the timeline, with the note")
    wait_for(lambda: marks(dash_duo) == [["燃气泄漏 深南大道", "市级"], ["火情 福华路", "区级"]],
             message="the queue marks it as the district's")
    with svc.engine.connect() as conn:
        assert conn.execute(select(incidents.c.centre).where(incidents.c.id == ids["火情 福华路"])).scalar() == FUTIAN
    assert dash_duo.get_logs() == []

    # Futian's officer: the incident their centre runs first in their queue, the hand-down in its timeline
    sign_in(dash_duo, page_app, "futian-o")  # instead of the city officer
    dash_duo.wait_for_element("#incident-list .queue-item", timeout=10)
    wait_for(lambda: marks(dash_duo) == [["火情 福华路", "区级"], ["燃气泄漏 深南大道", "市级"]],
             message="the district centre's own incident first")
    pick(dash_duo, "火情 福华路")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-centre", "处置中心：福田区指挥中心", timeout=10)
    wait_for(lambda: "olga · 移交: 待派单 · 市指挥中心 下派福田区指挥中心 — 区内可处置"
             in dash_duo.find_element("#dispatch-timeline").text, message="the hand-down in the district's timeline")
    wait_for(lambda: dash_duo.find_element("#dispatch-handup-open").is_enabled(), message="hand-up enabled")
    assert js(dash_duo, "return document.getElementById('dispatch-handdown-open').hidden")  # a district never hands down
    click(dash_duo, "#lang-toggle")
    # the switch draws the page anew (the router), on the incident the address names: nothing to pick again
    dash_duo.wait_for_text_to_equal("#dispatch-detail-centre", "Run by: the Futian centre", timeout=20)
    wait_for(lambda: "handed down by the city centre to the Futian centre — 区内可处置"
             in dash_duo.find_element("#dispatch-timeline").text, message="the timeline in English")
    assert dash_duo.find_element("#dispatch-handup-open").text == "Hand up to the city"
    assert dash_duo.get_logs() == []
