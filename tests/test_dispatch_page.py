"""The /dispatch page in a real headless Chromium, signed in as an officer, on real Redis and PostgreSQL."""

from __future__ import annotations

import time

import pytest

import callbacks.router
from callbacks import dispatch as dispatch_callbacks
from dashboard import dispatch as d
from dashboard import dispatch_api, users
from dashboard.auth import current_user
from feeds.pipeline import now_ms
from layouts.dispatch import dispatch_layout
from tests.helpers import make_event, wait_for
from tests.test_api import ingest_now

PASSWORD = "correct horse battery staple"


def js(dash_duo, script, *args):
    return dash_duo.driver.execute_script(script, *args)


@pytest.fixture
def page_app(make_app, redis_client, monkeypatch):
    """Give an app serving /dispatch (wired here until the factory and router do it) with an officer."""
    app = make_app(PANORAMA_POLL_MS=700)
    if "dispatch_api" not in app.server.blueprints:
        dispatch_api.init_app(app.server)
    if not any(k.startswith("..incident-list.children") for k in app.callback_map):
        dispatch_callbacks.register_callbacks(app)
    original = callbacks.router.render

    def render(pathname, lang, *args, **kwargs):
        if (pathname or "").rstrip("/") == "/dispatch" and current_user() is not None:
            return dispatch_layout(lang, current_user(), poll_ms=700)
        return original(pathname, lang, *args, **kwargs)

    monkeypatch.setattr(callbacks.router, "render", render)
    svc = app.server.extensions["panorama"]
    users.create_user(svc.engine, "olga", PASSWORD, "officer", None, [])
    return app


def click(dash_duo, selector: str) -> None:
    """Click the element that matches ``selector`` now."""
    assert js(dash_duo, "const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e", selector)


def sign_in(dash_duo, app, name: str) -> None:
    """Put a signed-in session cookie into the browser, then open /dispatch."""
    client = app.server.test_client()
    assert client.post("/api/session", json={"username": name, "password": PASSWORD}).status_code == 200
    cookie = client.get_cookie("panorama_session")
    dash_duo.driver.get(dash_duo.server_url + "/_dash-layout")  # a page of this origin to set the cookie on
    dash_duo.driver.add_cookie({"name": "panorama_session", "value": cookie.value, "path": "/"})
    dash_duo.driver.get(dash_duo.server_url + "/dispatch")


def test_an_officer_dispatches_from_the_dialog_and_the_tasks_appear_on_the_board(page_app, dash_duo):
    now = int(time.time() * 1000)
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

    # the list re-renders on every poll: click through the DOM, never through a held element
    click(dash_duo, "#incident-list > li:nth-child(2) .queue-item")
    dash_duo.wait_for_text_to_equal("#dispatch-detail-title", "火情 福华路", timeout=10)
    wait_for(lambda: dash_duo.find_element("#dispatch-open").is_enabled(), message="the dispatch button enabled")
    dash_duo.find_element("#dispatch-open").click()
    dash_duo.wait_for_element("#dispatch-dialog:not([hidden])", timeout=10)
    ticked = wait_for(lambda: js(dash_duo, "return [...document.querySelectorAll('#dispatch-departments input')]"
                                           ".filter(e => e.checked).map(e => e.value)"), message="ticked suggestion")
    assert ticked == ["police", "fire", "emergency", "health"] or set(ticked) == {"fire", "emergency", "police",
                                                                                    "health"}
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
    dash_duo.wait_for_text_to_equal("#board-fire .task-state", "已签收", timeout=10)

    # a change made elsewhere (the API, another officer) reaches the board by polling, without a reload
    svc = page_app.server.extensions["panorama"]
    with svc.engine.connect() as conn:
        inc_id = dispatch_api.queue(conn)[0]["id"]
    dispatch_api.write(svc, d.dispatch, inc_id, ["water"], "someone", None, now_ms(), svc.city.rules, svc.city)
    dash_duo.wait_for_element("#board-water .task-card", timeout=10)
    assert js(dash_duo, "return window.__same_page === true")
    assert dash_duo.get_logs() == []
