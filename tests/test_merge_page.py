"""Merge and split from /dispatch in a real headless Chromium on real Redis and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from dashboard.storage import users
from dashboard.storage.models import incidents
from tests.helpers import make_event, wait_for
from tests.test_api import ingest_now
from tests.test_dispatch_page import PASSWORD, click, js, page_app, sign_in  # noqa: F401 (page_app: the fixture)


def test_an_officer_merges_an_incident_into_another_from_the_dispatch_page(page_app, dash_duo):  # noqa: F811
    svc = page_app.server.extensions["panorama"]
    now = svc.clock()
    users.create_user(svc.engine, "vic", PASSWORD, "viewer", None, [])
    ingest_now(page_app, {"incident": [
        make_event(1, kind="fire", severity=3, ts=now - 120_000, lat=22.54, lon=114.05, title="火情 福华路"),
        make_event(2, kind="fire", severity=3, ts=now - 60_000, lat=22.54, lon=114.07, title="福华路 浓烟"),
        make_event(3, kind="flood", severity=3, ts=now, district="nanshan", lat=22.52, lon=113.93,
                   title="内涝 南山"),
    ]})
    with svc.engine.connect() as conn:
        ids = {r.title: r.id for r in conn.execute(select(incidents.c.title, incidents.c.id))}
    assert len(ids) == 3
    dash_duo.start_server(page_app)
    dash_duo.get_logs()
    sign_in(dash_duo, page_app, "olga")
    dash_duo.wait_for_element("#incident-list .queue-item", timeout=10)
    js(dash_duo, "[...document.querySelectorAll('#incident-list .queue-title')]"
                 ".find(e => e.textContent === arguments[0]).closest('button').click()", "福华路 浓烟")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-title", "福华路 浓烟", timeout=30)
    wait_for(lambda: dash_duo.find_element("#dispatch-merge-open").is_enabled(), message="merge enabled")
    # one report: nothing to split
    assert not dash_duo.find_element("#dispatch-split-open").is_enabled()
    click(dash_duo, "#dispatch-merge-open")
    dash_duo.wait_for_element("#merge-dialog:not([hidden])", timeout=10)
    labels = wait_for(lambda: js(dash_duo, "return [...document.querySelectorAll('#merge-into label')]"
                                           ".map(e => e.textContent)"), message="the incidents offered")
    # the same district's, nearest first; numbered, named, placed
    assert labels[0].startswith(f"#{ids['火情 福华路']} · S3 · 火情 福华路 · 福田区 · 约 2.") and "内涝 南山" in labels[1]
    assert dash_duo.find_element("#merge-submit").get_attribute("disabled")
    assert js(dash_duo, "const d = document.querySelector('#merge-dialog [role=dialog]');"
                        "return [d.getAttribute('aria-modal'), document.getElementById("
                        "d.getAttribute('aria-labelledby')).textContent]") == ["true", "合并事件"]
    js(dash_duo, "document.querySelector('#merge-into input[value=\"' + arguments[0] + '\"]').click()",
       str(ids["火情 福华路"]))
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
    # and in English, the same controls in words
    click(dash_duo, "#lang-toggle")
    dash_duo.wait_for_text_to_equal("#dispatch-merge-open", "Merge into…", timeout=10)
    assert dash_duo.find_element("#dispatch-split-open").text == "Split…"
    assert dash_duo.get_logs() == []
