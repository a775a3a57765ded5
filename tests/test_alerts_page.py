"""/alerts (issue 16): the alert trail and the silences, used in Chromium as an officer or commander would, with
alerts fired through the real ingest pipeline; who may open it; its words in both languages."""

from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from callbacks.alerts_page import rfc3339
from dashboard.core.city import load_city
from dashboard.core.i18n import t
from layouts.alerts_page import alerts_page_layout
from tests.helpers import sign_in, wait_for
from tests.test_access_matrix import session
from tests.test_alert_list import pollution
from tests.test_first_paint import drawing

CJK = re.compile(r"[\u4e00-\u9fff]")

TRAIL = """
return Array.from(document.querySelectorAll('#alerts-trail > li')).map(li => ({
    cls: li.className, level: li.querySelector('.alert-level').textContent,
    title: li.querySelector('.alert-title').textContent, status: li.querySelector('.alert-status').textContent,
    place: li.querySelector('.alert-place').textContent, ack: li.querySelector('.alert-ack') !== null,
    steps: Array.from(li.querySelectorAll('.trail-step .step-text')).map(s => s.textContent),
    actors: Array.from(li.querySelectorAll('.trail-step .step-actor')).map(s => s.textContent)}));
"""
SILENCES = """
return Array.from(document.querySelectorAll('#silence-list > li.silence-item')).map(li => ({
    what: li.querySelector('.silence-what').textContent, reason: li.querySelector('.silence-reason').textContent,
    by: li.querySelector('.silence-by').textContent}));
"""


def trail(dash_duo) -> list[dict]:
    return dash_duo.driver.execute_script(TRAIL)


def silences(dash_duo) -> list[dict]:
    return dash_duo.driver.execute_script(SILENCES)


def choose(dash_duo, selector: str, text: str) -> None:
    """Pick ``text`` in a dcc.Dropdown as a person does: open it, type, press Enter."""
    dash_duo.find_element(selector).click()
    field = wait_for(lambda: next((e for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, "input")
                                   if e.is_displayed() and e == dash_duo.driver.switch_to.active_element), None),
                     timeout=5, message=f"the search field of {selector}")
    field.send_keys(text)
    option = wait_for(lambda: next((e for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]")
                                    if e.is_displayed() and e.text.strip() == text), None),
                      timeout=5, message=f"the option {text}")
    option.click()
    wait_for(lambda: text in dash_duo.find_element(selector).text, timeout=5, message=f"{text} chosen")


@pytest.mark.timeout(240)
def test_in_chromium_a_commander_follows_filters_acknowledges_and_silences(make_app, redis_client, dash_duo,
                                                                          monkeypatch):
    import layouts.alerts_page

    # no gateway here: the page falls back to its poll (quickened: this test is about what the page does)
    monkeypatch.setattr(layouts.alerts_page, "FALLBACK_MS", 1000)
    app = make_app()
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/alerts", role="commander", username="chen")
    dash_duo.wait_for_text_to_equal("#alerts-count", "没有符合条件的预警", timeout=15)
    dash_duo.wait_for_text_to_equal("#silence-list", "当前没有生效的静默")

    pollution(app, 230)  # the real pipeline: AQI readings stored, the rules evaluated, orange and red fired
    rows = wait_for(lambda: (r := trail(dash_duo)) and len(r) == 2 and r, timeout=20,
                    message="both alerts on the page (its fallback poll: no gateway)")
    assert {r["level"] for r in rows} == {"红色", "橙色"} and all(r["status"] == "预警中" for r in rows)
    red = next(r for r in rows if r["level"] == "红色")
    assert red["title"] == "福田区空气质量指数 232，持续超过 200（重度污染）" and red["place"] == "福田区" and red["ack"]
    assert "预警发布" in red["steps"] and "系统" in red["actors"][0]  # the history in words, never its codes
    dash_duo.wait_for_text_to_equal("#alerts-count", "共 2 条，最新在前")

    # filters: red only, then firing only in Nanshan (none)
    dash_duo.find_element("#alerts-level button[data-value='red']").click()
    wait_for(lambda: [r["level"] for r in trail(dash_duo)] == ["红色"], timeout=10, message="red only")
    assert dash_duo.find_element("#alerts-level button[data-value='red']").get_attribute("aria-pressed") == "true"
    # the export links follow the filters (assets/export_links.js)
    wait_for(lambda: "level=red" in dash_duo.find_element("#alerts-export-csv").get_attribute("href"), timeout=10,
             message="the CSV link with the filter")
    # acknowledge it from the trail
    dash_duo.find_element("#alerts-trail li.lvl-red .alert-ack").click()
    dash_duo.wait_for_text_to_equal("#alerts-page-message",
                                    "已确认：福田区空气质量指数 232，持续超过 200（重度污染）", timeout=10)
    wait_for(lambda: (r := trail(dash_duo)[0])["status"] == "已确认" and not r["ack"]
             and "预警已确认" in r["steps"] and "chen" in r["actors"], timeout=10, message="acknowledged, in its history")
    dash_duo.find_element("#alerts-level button[data-value='red']").click()  # off again: every level
    dash_duo.find_element("#alerts-status button[data-value='firing']").click()
    wait_for(lambda: [r["level"] for r in trail(dash_duo)] == ["橙色"], timeout=10, message="firing only: orange")
    choose(dash_duo, "#alerts-district", "南山区")
    dash_duo.wait_for_text_to_equal("#alerts-count", "没有符合条件的预警", timeout=10)

    # a silence: Nanshan, until the offered time, with a reason
    choose(dash_duo, "#silence-district", "南山区")
    dash_duo.find_element("#silence-reason").send_keys("<b>深南大道</b> 夜间施工")
    dash_duo.find_element("#silence-add").click()
    wait_for(lambda: re.fullmatch(r"已添加静默 #\d+", dash_duo.find_element("#silence-message").text),
             timeout=10, message="the silence added")
    wait_for(lambda: len(silences(dash_duo)) == 1, timeout=10, message="the silence listed")
    [s] = silences(dash_duo)
    assert s["what"] == "任一规则 · 南山区 · 任一区域" and s["reason"] == "<b>深南大道</b> 夜间施工"  # as text
    assert s["by"] == "chen 设置" and dash_duo.find_element("#silence-reason").get_attribute("value") == ""
    # a bad end time is refused in words, and nothing is added
    until = dash_duo.find_element("#silence-until")
    until.send_keys(Keys.CONTROL, "a")
    until.send_keys("明天")
    dash_duo.find_element("#silence-reason").send_keys("再来一次")
    dash_duo.find_element("#silence-add").click()
    dash_duo.wait_for_text_to_equal("#silence-message", "截止时间须在未来 30 天内，格式如 2026-12-06 22:00", timeout=10)
    assert len(silences(dash_duo)) == 1
    # ended early
    dash_duo.find_element("#silence-list .silence-end-button").click()
    wait_for(lambda: re.fullmatch(r"静默 #\d+ 已结束", dash_duo.find_element("#silence-message").text), timeout=10,
             message="the silence ended")
    dash_duo.wait_for_text_to_equal("#silence-list", "当前没有生效的静默", timeout=10)

    # in English: every word of the trail in English (titles as stored in English)
    dash_duo.find_element("#lang-toggle").click()
    dash_duo.wait_for_text_to_equal("#alerts-count", "2 alerts, newest first", timeout=15)
    rows = trail(dash_duo)
    assert {r["status"] for r in rows} == {"firing", "acknowledged"} and {r["level"] for r in rows} == {"Red", "Orange"}
    main = dash_duo.find_element(".alerts-main").text
    assert not CJK.search(main), main
    severe = [e["message"] for e in dash_duo.get_logs() or [] if e["level"] == "SEVERE"]
    assert severe == [], "\n".join(m[:300] + " ... " + m[-300:] for m in severe[:3])


@pytest.mark.timeout(180)
def test_in_chromium_an_alert_fired_while_alerts_is_open_comes_over_the_gateway(make_app, redis_client, dash_duo,
                                                                                monkeypatch):
    """With the gateway up the trail follows its alert frames: the fallback poll is set to ten minutes here, so
    an alert can only reach the page over the socket; and it stays off while the socket is live."""
    import layouts.alerts_page
    from tests.test_alert_list import alert_gateway

    monkeypatch.setattr(layouts.alerts_page, "FALLBACK_MS", 600_000)
    with alert_gateway(make_app, dash_duo, monkeypatch) as app:
        sign_in(dash_duo, app, "/alerts", role="officer", username="lin")
        dash_duo.wait_for_element("#live-indicator.conn-live", timeout=20)
        dash_duo.wait_for_text_to_equal("#alerts-count", "没有符合条件的预警", timeout=15)
        pollution(app, 230)  # the real pipeline: stored, evaluated, fired, published on the channel
        rows = wait_for(lambda: (r := trail(dash_duo)) and len(r) == 2 and r, timeout=20,
                        message="both alerts on the page, pushed")
        assert {r["level"] for r in rows} == {"红色", "橙色"} and all(r["ack"] for r in rows)
        # a filter still applies to what the socket brings
        dash_duo.find_element("#alerts-level button[data-value='orange']").click()
        wait_for(lambda: [r["level"] for r in trail(dash_duo)] == ["橙色"], timeout=10, message="orange only")
        severe = [e["message"] for e in dash_duo.get_logs() or [] if e["level"] == "SEVERE"]
        assert severe == []


def test_only_officers_and_commanders_open_alerts(make_app, redis_client):
    app = make_app()
    for role, allowed in (("viewer", False), ("liaison", False), ("officer", True), ("commander", True)):
        client, _ = session(app, role)
        page = client.get("/alerts").get_data(as_text=True)
        assert ('class="alerts-trail"' in drawing(page)) == allowed, role  # the first paint draws the page


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_word_of_the_page_is_in_the_readers_language(lang):
    city = load_city("shenzhen")
    rows = [{"id": i, "level": lv, "status": st, "district": "440304", "zone": None, "started_ms": 1_765_000_000_000,
             "resolved_ms": 1_765_000_600_000 if st == "resolved" else None, "value": 180.0, "baseline": None,
             "title": "福田区空气质量指数 180", "title_en": "Futian: AQI 180", "version": 1}
            for i, (lv, st) in enumerate(zip(("blue", "yellow", "orange", "red"),
                                             ("pending", "firing", "acknowledged", "resolved")))]
    codes = ("alert_pending", "alert_firing", "alert_acknowledged", "alert_resolved", "alert_silenced",
             "alert_muted", "alert_incident")
    trails = {0: [{"at_ms": 1_765_000_000_000, "actor": "system", "code": c, "note": None,
                   "params": {"silence": 3, "window": "00:00-05:00", "incident": 9}} for c in codes]}
    silences = [{"id": 1, "rule": "aqi_heavy", "district": None, "zone": "universiade", "until_ms": 1_765_100_000_000,
                 "reason": "reason", "created_by": "chen", "ended_ms": None}]
    settings = {"tz": "Asia/Shanghai", "ws_port": 8765, "stale_after": {}}
    page = alerts_page_layout(city, lang, "Asia/Shanghai", rows, trails, silences, True, "2026-12-06 22:00", settings,
                              1_765_000_000_000)
    # the language switch names the other language in it (中文 in English): by design, not a word left untranslated
    words = " ".join(_texts(page)).replace(t("language", lang), "")
    if lang == "en":
        assert not CJK.search(words), words
    else:
        for code in ("pending", "firing", "acknowledged", "resolved", "alert_", "system"):
            assert code not in words, code


def _texts(node) -> list[str]:
    """Return every string a component tree shows (children, labels of options, placeholders)."""
    out = []
    if isinstance(node, str):
        return [node]
    if isinstance(node, (list, tuple)):
        return [s for n in node for s in _texts(n)]
    for prop in ("children", "placeholder"):
        value = getattr(node, prop, None)
        if value is not None:
            out += _texts(value)
    for opt in getattr(node, "options", None) or []:
        if isinstance(opt, dict):
            out += _texts(opt.get("label"))
    return out


def test_a_typed_local_time_gets_the_citys_offset():
    assert rfc3339("2026-12-06 22:00", "Asia/Shanghai") == "2026-12-06T22:00:00+08:00"
    assert rfc3339("2026-12-06T22:00:00+00:00", "Asia/Shanghai") == "2026-12-06T22:00:00+00:00"
    assert rfc3339("明天", "Asia/Shanghai") == "明天"  # refused by the route's own check
