"""The /briefings pages in a real headless Chromium: list, generate now, view one, download links, roles."""

from __future__ import annotations

import time

import pytest

from tests.helpers import make_event, sign_in, wait_for
from tests.test_api import ingest_now


def js(dash_duo, script, *args):
    return dash_duo.driver.execute_script(script, *args)


@pytest.fixture
def bapp(make_app, redis_client):
    """Give an app without a briefing browser (the report's drawing is tested in test_briefings_render)."""
    return make_app(BROWSER_PATH="none")


def test_an_officer_generates_a_briefing_and_reads_it_in_the_page(bapp, dash_duo):
    now = int(time.time() * 1000)
    ingest_now(bapp, {"traffic": [make_event(i, ts=now - 10 * 60_000, title=f"拥堵 {i}") for i in range(4)]})
    dash_duo.start_server(bapp)
    dash_duo.get_logs()  # the sign-in page before signing in is not under test
    sign_in(dash_duo, bapp, "/briefings", role="officer")
    dash_duo.wait_for_element(".briefing-empty", timeout=10)
    js(dash_duo, "window.__same_page = true")
    dash_duo.find_element("#briefing-generate").click()
    dash_duo.wait_for_element("#briefing-list .briefing-row", timeout=30)
    assert js(dash_duo, "return window.__same_page === true")  # generated in place, no reload
    dash_duo.wait_for_contains_text("#briefing-generate-status", "#1", timeout=10)
    row = dash_duo.find_element("#briefing-list .briefing-row")
    assert "事件 4" in row.text and "手动生成（browser-officer）" in row.text
    hrefs = js(dash_duo, "return [...document.querySelectorAll('#briefing-list .dl')].map(a => a.getAttribute('href'))")
    assert hrefs == ["/api/briefings/1.html?download=1", None, "/api/briefings/1?download=1"]  # no PDF: no browser
    assert "未生成图片与 PDF" in dash_duo.find_element("#briefing-list .briefing-note").text
    # the same page's link opens the briefing, the report inside the page
    dash_duo.find_element("#briefing-list .briefing-link").click()
    dash_duo.wait_for_element("#briefing-frame", timeout=10)
    assert dash_duo.find_element("#briefing-frame").get_attribute("src").endswith("/api/briefings/1.html")
    dash_duo.driver.switch_to.frame(dash_duo.find_element("#briefing-frame"))
    wait_for(lambda: "城市运行简报" in dash_duo.driver.find_element("css selector", "h1").text,
             message="the report in the frame")
    dash_duo.driver.switch_to.default_content()
    assert dash_duo.get_logs() == []


def test_a_viewer_reads_briefings_but_cannot_generate(bapp, dash_duo):
    dash_duo.start_server(bapp)
    dash_duo.get_logs()
    sign_in(dash_duo, bapp, "/briefings", role="viewer")
    dash_duo.wait_for_element(".briefing-schedule", timeout=10)
    assert "0 8,18 * * *" in dash_duo.find_element(".briefing-schedule").text
    assert js(dash_duo, "return document.querySelector('#briefing-generate') === null")
    dash_duo.driver.get(dash_duo.server_url + "/briefings/42")
    dash_duo.wait_for_text_to_equal("#not-found", "未找到页面", timeout=10)
    assert dash_duo.get_logs() == []
