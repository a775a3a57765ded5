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


def test_generate_now_while_another_briefing_is_being_made_says_so_in_the_pages_language(bapp, dash_duo):
    from dashboard.briefings import lock

    dash_duo.start_server(bapp)
    dash_duo.get_logs()
    sign_in(dash_duo, bapp, "/briefings", role="officer")
    dash_duo.wait_for_element(".briefing-empty", timeout=10)
    svc = bapp.server.extensions["panorama"]
    held = lock.acquire(svc.redis)  # another officer's briefing, on another replica, being made now
    dash_duo.find_element("#briefing-generate").click()
    dash_duo.wait_for_text_to_equal("#briefing-generate-status", "另一份简报正在生成，请 15 秒后再试", timeout=10)
    dash_duo.find_element("#lang-toggle").click()
    dash_duo.wait_for_text_to_equal("#briefing-generate", "Generate now", timeout=10)  # the page redrawn in English
    js(dash_duo, "document.querySelector('#briefing-generate').click()")
    dash_duo.wait_for_text_to_equal("#briefing-generate-status", "Another briefing is being made — try again in 15 s",
                                    timeout=10)
    assert dash_duo.find_elements("#briefing-list .briefing-row") == []  # nothing was made
    lock.release(svc.redis, held)
    js(dash_duo, "document.querySelector('#briefing-generate').click()")
    dash_duo.wait_for_element("#briefing-list .briefing-row", timeout=30)
    assert dash_duo.get_logs() == []


def test_a_viewer_reads_briefings_but_cannot_generate(bapp, dash_duo):
    dash_duo.start_server(bapp)
    dash_duo.get_logs()
    sign_in(dash_duo, bapp, "/briefings", role="viewer")
    # waited for as text: the page may draw the schedule line again after it first appears (a stale element)
    dash_duo.wait_for_text_to_equal(".briefing-schedule", "生成计划：每天 08:00、18:00（Asia/Shanghai）", timeout=10)
    assert js(dash_duo, "return document.querySelector('#briefing-generate') === null")
    dash_duo.driver.get(dash_duo.server_url + "/briefings/42")
    dash_duo.wait_for_text_to_equal("#not-found", "未找到页面", timeout=10)
    assert dash_duo.get_logs() == []


def test_a_briefing_made_elsewhere_appears_in_the_open_list_without_a_reload(make_app, redis_client, dash_duo):
    """The scheduler (or another replica) stores briefings: the open list follows, redrawn only on a change."""
    from flask import request

    from dashboard.briefings import periods
    from dashboard.storage import briefings as store
    from dashboard.briefings.generate import generate_now, generate_slot
    from tests.test_briefings import CRON, SLOT, TZ

    app = make_app(BROWSER_PATH="none", PANORAMA_BRIEFING_REFRESH_MS=300)
    svc = app.server.extensions["panorama"]
    redrawn: list[bool] = []  # per answer to the list's timer: did it send anything?

    @app.server.after_request
    def _watch_refreshes(response):
        asked = request.get_json(silent=True) if request.path == "/_dash-update-component" else None
        if asked and asked["inputs"][0]["id"] == "briefing-refresh":
            # nothing to send: 204, or (Dash 4) an empty response object
            redrawn.append(response.status_code == 200 and bool(response.get_json()["response"]))
        return response

    dash_duo.start_server(app)
    dash_duo.get_logs()
    sign_in(dash_duo, app, "/briefings", role="viewer")
    dash_duo.wait_for_element(".briefing-empty", timeout=10)
    js(dash_duo, "window.__same_page = true")
    wait_for(lambda: len(redrawn) >= 2, message="the list's timer asking")
    assert not any(redrawn)  # nothing changed: nothing sent

    # the scheduled briefing of a slot, made outside the page (HTML and JSON only: no browser)
    generate_slot(svc, periods.make_trigger(CRON, TZ), SLOT, periods.to_ms(SLOT) + 1000)
    dash_duo.wait_for_element("#briefing-list .briefing-row", timeout=10)
    dash_duo.wait_for_contains_text("#briefing-list .briefing-row", "定时生成", timeout=10)
    assert "#1" in dash_duo.find_element("#briefing-list .briefing-row").text

    # one made on request on another replica: newest first, above the scheduled one
    generate_now(svc, "duty-officer", int(time.time() * 1000))
    dash_duo.wait_for_contains_text("#briefing-list .briefing-row", "手动生成（duty-officer）", timeout=10)
    rows = dash_duo.find_elements("#briefing-list .briefing-row")
    assert [r.text.split()[0] for r in rows] == ["#2", "#1"]

    # one being made shows so, then how it ended (no new row: the status alone changes)
    now = int(time.time() * 1000)
    claimed = store.claim(svc.engine, "manual:test", "manual", "duty-officer", now - 60_000, now, now, "zh")
    dash_duo.wait_for_contains_text("#briefing-list .briefing-row", "生成中", timeout=10)
    store.fail(svc.engine, claimed, "RuntimeError: test", now)
    dash_duo.wait_for_contains_text("#briefing-list .briefing-row", "生成失败：RuntimeError: test", timeout=10)
    assert len(dash_duo.find_elements("#briefing-list .briefing-row")) == 3

    # quiet again: the timer keeps asking, the answers carry nothing
    asked = len(redrawn)
    wait_for(lambda: len(redrawn) >= asked + 3, message="three more asks")
    assert not any(redrawn[asked:])
    assert 4 <= redrawn.count(True) <= 6  # once per change (a claim may also be seen before it finishes)
    assert js(dash_duo, "return window.__same_page === true")  # no reload
    assert dash_duo.get_logs() == []


def test_the_lists_refresh_answers_signed_in_readers_only(bapp):
    """Dash answers any caller: the timer's callback sends the list to a signed-in reader, nothing to others."""
    from dashboard.briefings.generate import generate_now
    from tests.helpers import TEST_PASSWORD, make_user

    generate_now(bapp.server.extensions["panorama"], "duty-officer", int(time.time() * 1000))
    output = next(k for k in bapp.callback_map if k.startswith("..briefing-list.children@"))
    list_out, version_out = output.strip(".").split("...")
    payload = {"output": output,
               "outputs": [{"id": "briefing-list", "property": list_out.split(".", 1)[1]},
                           {"id": "briefing-version", "property": version_out.split(".", 1)[1]}],
               "inputs": [{"id": "briefing-refresh", "property": "n_intervals", "value": 1}],
               "changedPropIds": ["briefing-refresh.n_intervals"],
               "state": [{"id": "briefing-version", "property": "data", "value": [0, 0, 0]},
                         {"id": "lang", "property": "data", "value": "en"}]}

    def sent(client, headers=None) -> dict:
        res = client.post("/_dash-update-component", json=payload, headers=headers or {})
        return {} if res.status_code == 204 else res.get_json()["response"]

    anonymous = bapp.server.test_client().post("/_dash-update-component", json=payload)
    assert anonymous.status_code == 401  # refused before the callback: only the page shell's are open
    make_user(bapp, "reader", "viewer")
    client = bapp.server.test_client()
    assert client.post("/api/session", json={"username": "reader", "password": TEST_PASSWORD}).status_code == 200
    csrf = {"X-CSRF-Token": client.get_cookie("panorama_csrf").value}
    answer = sent(client, csrf)
    assert answer["briefing-version"]["data"] == [1, 1, 0]
    assert "made on request (duty-officer)" in str(answer["briefing-list"]["children"])
    payload["state"][0]["value"] = [1, 1, 0]
    assert sent(client, csrf) == {}  # unchanged: nothing sent
