"""Merge and split from /dispatch in a real headless Chromium on real Redis and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from dashboard.storage import users
from dashboard.storage.models import incidents
from tests.helpers import make_event, wait_for
from tests.test_accessibility import axe_violations
from tests.test_dispatch_page import PASSWORD, click, js, open_desk, page_app  # noqa: F401 (page_app: the fixture)


def choose(dash_duo, group: str, index) -> None:
    """Click the choice of ``group`` whose pattern id has ``index``."""
    assert js(dash_duo, "const b = [...document.querySelectorAll(arguments[0] + ' button')]"
                        ".find(e => JSON.parse(e.id).index === arguments[1]); if (b) b.click(); return !!b",
              group, index)


def pick(dash_duo, title: str) -> None:
    """Select the queued incident ``title`` (clicked again if a redraw of the queue swallowed the click)."""
    def shown():
        if js(dash_duo, "const e = document.getElementById('dispatch-detail-title'); return e && e.textContent")\
                == title:
            return True
        js(dash_duo, "const t = [...document.querySelectorAll('#incident-list .queue-title')]"
                     ".find(e => e.textContent === arguments[0]); if (t) t.closest('button').click()", title)
        return False

    try:
        wait_for(shown, timeout=90, interval=15, message=f"{title} selected")
    except AssertionError:
        print("DIAG", js(dash_duo, "return [document.getElementById('incident-list').innerText,"
                                   " document.getElementById('dispatch-detail').innerText]"), dash_duo.get_logs())
        raise


def test_an_officer_merges_an_incident_into_another_from_the_dispatch_page(page_app, dash_duo):  # noqa: F811
    svc = page_app.server.extensions["panorama"]
    now = svc.clock()
    users.create_user(svc.engine, "vic", PASSWORD, "viewer", None, [])
    ids = open_desk(dash_duo, page_app, "olga", [
        make_event(1, kind="fire", severity=3, ts=now - 120_000, lat=22.54, lon=114.05, title="火情 福华路"),
        make_event(2, kind="fire", severity=3, ts=now - 60_000, lat=22.54, lon=114.07, title="福华路 浓烟"),
        make_event(3, kind="flood", severity=3, ts=now, district="nanshan", lat=22.52, lon=113.93,
                   title="内涝 南山"),
    ])
    assert len(ids) == 3
    pick(dash_duo, "福华路 浓烟")
    wait_for(lambda: dash_duo.find_element("#dispatch-merge-open").is_enabled(), message="merge enabled")
    # one report: nothing to split
    assert not dash_duo.find_element("#dispatch-split-open").is_enabled()
    click(dash_duo, "#dispatch-merge-open")
    dash_duo.wait_for_element("#merge-dialog:not([hidden])", timeout=10)
    labels = wait_for(lambda: js(dash_duo, "return [...document.querySelectorAll('#merge-into [role=radio]')]"
                                           ".map(e => e.textContent.trim())"), message="the incidents offered")
    # the same district's, nearest first; numbered, named, placed
    assert labels[0].startswith(f"#{ids['火情 福华路']} · S3 · 火情 福华路 · 福田区 · 约 2.") and "内涝 南山" in labels[1]
    assert dash_duo.find_element("#merge-submit").get_attribute("disabled")
    assert axe_violations(dash_duo) == []  # the open dialog and its choices: WCAG 2.2 AA
    assert js(dash_duo, "const d = document.querySelector('#merge-dialog [role=dialog]');"
                        "return [d.getAttribute('aria-modal'), document.getElementById("
                        "d.getAttribute('aria-labelledby')).textContent]") == ["true", "合并事件"]
    choose(dash_duo, "#merge-into", ids["火情 福华路"])
    assert js(dash_duo, "return [...document.querySelectorAll('#merge-into [role=radio]')]"
                        ".map(e => e.getAttribute('aria-checked'))") == ["true", "false"]
    dash_duo.wait_for_text_to_equal(
        "#merge-confirm", "确认后，「福华路 浓烟」结案并入「火情 福华路」：其上报和进行中的任务随之转移", timeout=10)
    dash_duo.find_element("#merge-note").send_keys("同一起火情")
    wait_for(lambda: dash_duo.find_element("#merge-submit").is_enabled(), message="confirm enabled")
    click(dash_duo, "#merge-submit")
    dash_duo.wait_for_element("#merge-dialog[hidden]", timeout=10)
    dash_duo.wait_for_text_to_equal("#dispatch-detail-message", "已合并：「福华路 浓烟」并入「火情 福华路」", timeout=10)
    # the detail follows to the incident merged into: two reports, its timeline says where they came from
    dash_duo.wait_for_text_to_equal("#dispatch-detail-title", "火情 福华路", timeout=10)
    wait_for(lambda: "事件 #%d 已并入（1 条上报）" % ids["福华路 浓烟"] in
             dash_duo.find_element("#dispatch-timeline").text, message="the merge in the timeline")
    wait_for(lambda: js(dash_duo, "return document.querySelectorAll('#incident-list > li').length") == 2,
             message="the merged-away incident gone from the queue")
    with svc.engine.connect() as conn:
        away = conn.execute(select(incidents).where(incidents.c.id == ids["福华路 浓烟"])).mappings().one()
    assert (away["status"], away["merged_into"]) == ("closed", ids["火情 福华路"])
    # the merged incident splits again: the officer ticks the report that came with the merge
    wait_for(lambda: dash_duo.find_element("#dispatch-split-open").is_enabled(), message="split enabled")
    click(dash_duo, "#dispatch-split-open")
    dash_duo.wait_for_element("#split-dialog:not([hidden])", timeout=10)
    dash_duo.wait_for_text_to_equal("#split-dialog legend", "勾选移入新事件的上报", timeout=10)
    wait_for(lambda: js(dash_duo, "return document.querySelectorAll('#split-reports [role=checkbox]').length")
             == 2, message="the two reports offered")
    choose(dash_duo, "#split-reports", "ev-1")
    choose(dash_duo, "#split-reports", "ev-2")  # all: refused
    dash_duo.wait_for_text_to_equal("#split-confirm", "请勾选部分上报（不能全选）", timeout=10)
    assert dash_duo.find_element("#split-submit").get_attribute("disabled")
    assert axe_violations(dash_duo) == []
    choose(dash_duo, "#split-reports", "ev-1")  # ticked again: off, only ev-2 now
    dash_duo.wait_for_text_to_equal("#split-confirm", "确认后，1 条上报拆分为新的待派单事件，任务留在本事件",
                                    timeout=10)
    click(dash_duo, "#split-submit")
    dash_duo.wait_for_element("#split-dialog[hidden]", timeout=10)
    dash_duo.wait_for_text_to_equal("#dispatch-detail-message", "已拆分：新事件「福华路 浓烟」（1 条上报）", timeout=10)
    wait_for(lambda: js(dash_duo, "return document.querySelectorAll('#incident-list > li').length") == 3,
             message="the split-off incident in the queue")
    # and in English, the same controls in words
    click(dash_duo, "#lang-toggle")
    dash_duo.wait_for_text_to_equal("#dispatch-merge-open", "Merge into…", timeout=10)
    assert dash_duo.find_element("#dispatch-split-open").text == "Split…"
    assert dash_duo.get_logs() == []
