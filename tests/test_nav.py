"""Getting around: the shell's navigation (the registry's pages the role may open) and the landing page after
signing in (dashboard/core/roles.py LANDING), as functions, in the first paint and in headless Chromium."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from callbacks import pages
from dashboard.core.roles import LANDING, ROLES, check_role, landing
from layouts.shell import nav_bar
from tests.helpers import TEST_PASSWORD, make_user, sign_in, wait_for, wait_for_graphs
from tests.test_access_matrix import session
from tests.test_first_paint import drawing

NAV = {
    "viewer": ["/", "/briefings", "/rosters"],
    "officer": ["/", "/dispatch", "/m", "/alerts", "/briefings", "/notifications", "/rosters"],
    "commander": ["/", "/dispatch", "/m", "/alerts", "/briefings", "/notifications", "/rosters"],
    "liaison": ["/", "/dispatch", "/briefings", "/rosters"],
    "admin": ["/", "/dispatch", "/m", "/alerts", "/briefings", "/notifications", "/rosters"],
}


def user(role: str, active: bool = True):
    return SimpleNamespace(role=role, active=active, username=f"u-{role}")


def hrefs(role: str | None, path: str = "/") -> list[str]:
    return [p.path for p, _ in pages.nav_pages(user(role) if role else None, path)]


# ---- the landing rule

def test_every_role_lands_on_a_page_its_role_may_open():
    assert set(LANDING) == set(ROLES)
    for role, (desk, phone) in LANDING.items():
        for path in (desk, phone):
            page = pages.find(path)
            assert page is not None and page.permission and check_role(user(role), page.permission), (role, path)


def test_the_landing_pages():
    assert [landing(r) for r in ROLES] == ["/", "/", "/", "/dispatch", "/"]
    assert [landing(r, phone=True) for r in ROLES] == ["/", "/", "/m", "/dispatch", "/"]
    assert landing("nobody") == landing("nobody", phone=True) == "/"


# ---- the navigation's links

@pytest.mark.parametrize("role", ROLES)
def test_the_navigation_links_to_the_pages_the_role_may_open(role):
    assert hrefs(role) == NAV[role]
    for p, _ in pages.nav_pages(user(role), "/"):
        assert check_role(user(role), p.permission)  # the registry's rule, the access check's too


def test_no_navigation_for_nobody_a_disabled_user_the_wall_or_signing_in():
    assert hrefs(None) == []
    assert pages.nav_pages(user("officer", active=False), "/") == []
    for path in ("/wall", "/wall/", "/login", "/login/"):
        assert hrefs("admin", path) == [], path


def test_the_current_page_is_marked_and_only_it():
    def current(path):
        return [p.path for p, here in pages.nav_pages(user("officer"), path) if here]
    assert current("/") == ["/"]
    assert current("/dispatch/") == ["/dispatch"]
    assert current("/briefings/12") == ["/briefings"]
    assert current("/district/futian") == [] and current("/nowhere") == []


def test_the_bar_is_translated_and_marks_the_current_page():
    links = [(p.path, p.title, p.nav_id, here) for p, here in pages.nav_pages(user("officer"), "/dispatch")]
    for lang, names, label in (("zh", ["全景", "联动派单", "指挥", "预警管理", "运行简报", "通知记录", "值班"], "页面导航"),
                               ("en", ["Panorama", "Dispatch", "Command", "Alerts", "Briefings", "Notifications",
                                       "Duty"], "Pages")):
        bar = nav_bar(links, lang).to_plotly_json()
        assert bar["props"]["aria-label"] == label
        anchors = [li.children for li in bar["props"]["children"].children]
        assert [a.children for a in anchors] == names
        assert [a.id for a in anchors] == ["nav-panorama", "nav-dispatch", "nav-mobile", "nav-alerts", "nav-briefings",
                                           "nav-notifications", "nav-rosters"]
        assert [a.to_plotly_json()["props"].get("aria-current") for a in anchors] == [None, "page"] + [None] * 5
    assert nav_bar([], "zh") is None


# ---- the first paint carries the navigation

def nav_html(page: str) -> str:
    m = re.search(r"<nav [^>]*>.*?</nav>", drawing(page), re.S)
    return m.group(0) if m else ""


def test_the_first_paint_draws_the_users_navigation(make_app, redis_client):
    app = make_app()
    officer, _ = session(app, "officer")
    nav = nav_html(officer.get("/dispatch").get_data(as_text=True))
    assert 'aria-label="页面导航"' in nav
    assert re.findall(r'href="([^"]+)"', nav) == NAV["officer"]
    assert re.findall(r'<a [^>]*aria-current="page"[^>]*>([^<]+)</a>', nav) == ["联动派单"]
    assert "Briefings" not in nav  # one language at a time
    officer.set_cookie("panorama_lang", "en")
    nav = nav_html(officer.get("/briefings").get_data(as_text=True))
    assert re.findall(r'<a [^>]*aria-current="page"[^>]*>([^<]+)</a>', nav) == ["Briefings"]
    assert nav_html(officer.get("/wall").get_data(as_text=True)) == ""
    viewer, _ = session(app, "viewer")
    assert re.findall(r'href="([^"]+)"', nav_html(viewer.get("/").get_data(as_text=True))) == NAV["viewer"]


# ---- in Chromium

def nav_state(dash_duo) -> list[list]:
    """Return [href, text, aria-current] of each link of the navigation on screen."""
    return dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('#shell-nav a')]"
        ".map(a => [a.getAttribute('href'), a.textContent, a.getAttribute('aria-current')])")


def sign_in_on_the_form(dash_duo, username: str, path: str = "/login") -> None:
    dash_duo.driver.get(dash_duo.server_url.rstrip("/") + path)
    dash_duo.wait_for_element("#login-username", timeout=10)
    dash_duo.find_element("#login-username").send_keys(username)
    dash_duo.find_element("#login-password").send_keys(TEST_PASSWORD)
    dash_duo.find_element("#login-submit").click()


def path_of(dash_duo) -> str:
    return dash_duo.driver.execute_script("return location.pathname")


def test_a_liaison_signs_in_and_lands_on_their_task_board(app, dash_duo):
    make_user(app, "fire-desk", "liaison", "fire")
    dash_duo.start_server(app)  # "/" sends the anonymous browser to /login?next=/: no page asked for
    sign_in_on_the_form(dash_duo, "fire-desk", "/")
    wait_for(lambda: path_of(dash_duo) == "/dispatch", timeout=15, message="the liaison on /dispatch")
    dash_duo.wait_for_element("#task-board", timeout=10)
    dash_duo.wait_for_element("#board-filter", timeout=10)
    wait_for(lambda: "消防" in dash_duo.find_element("#board-filter").text, message="their department's board")
    wait_for(lambda: nav_state(dash_duo) == [["/", "全景", None], ["/dispatch", "联动派单", "page"],
                                             ["/briefings", "运行简报", None], ["/rosters", "值班", None]],
             message="the liaison's navigation")
    assert dash_duo.get_logs() == []


def test_a_page_asked_for_wins_over_the_landing_page(app, dash_duo):
    make_user(app, "fire-desk", "liaison", "fire")
    dash_duo.start_server(app)
    sign_in_on_the_form(dash_duo, "fire-desk", "/login?next=/briefings")
    wait_for(lambda: path_of(dash_duo) == "/briefings", timeout=15, message="the page asked for")
    wait_for(lambda: ["/briefings", "运行简报", "page"] in nav_state(dash_duo), message="briefings marked")
    assert dash_duo.get_logs() == []


def test_a_commander_on_a_phone_lands_on_m_and_the_bar_fits_360_px(app, dash_duo):
    make_user(app, "chief", "commander")
    dash_duo.start_server(app)
    dash_duo.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True})
    sign_in_on_the_form(dash_duo, "chief")
    wait_for(lambda: path_of(dash_duo) == "/m", timeout=15, message="the commander's phone on /m")
    dash_duo.wait_for_element("#incident-list", timeout=10)
    wait_for(lambda: len(nav_state(dash_duo)) == 7, message="the commander's navigation")
    assert ["/m", "指挥", "page"] in nav_state(dash_duo)
    for lang in ("zh", "en"):
        fits = dash_duo.driver.execute_script(
            "const r = [...document.querySelectorAll('#shell-nav a, #sign-out')].map(e => e.getBoundingClientRect());"
            "return document.documentElement.scrollWidth <= 360 && r.every(b => b.left >= 0 && b.right <= 360"
            " && b.height >= 24 && b.width >= 24 && b.top < 200);")
        assert fits, lang
        if lang == "zh":
            dash_duo.find_element("#lang-toggle").click()
            dash_duo.wait_for_text_to_equal("#nav-briefings", "Briefings", timeout=10)
    assert dash_duo.get_logs() == []


def test_an_officer_follows_the_navigation_to_dispatch_in_the_app(app, dash_duo):
    dash_duo.driver.set_window_size(1280, 720)
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/", role="officer")
    # each page's graphs drawn before leaving it: Dash's graph unmounted while Plotly still loads logs
    # "Cannot read properties of null (reading 'classList')" (dcc async-graph.js)
    dash_duo.wait_for_element("#city-map .main-svg", timeout=20)
    wait_for(lambda: nav_state(dash_duo) == [["/", "全景", "page"], ["/dispatch", "联动派单", None],
                                             ["/m", "指挥", None], ["/alerts", "预警管理", None],
                                             ["/briefings", "运行简报", None], ["/notifications", "通知记录", None],
                                             ["/rosters", "值班", None]],
             message="the officer's navigation")
    # at the top of the page, in view: not below the fold
    top = dash_duo.driver.execute_script("return document.getElementById('nav-dispatch').getBoundingClientRect().top")
    assert 0 <= top < 60
    dash_duo.driver.execute_script("window.__same_page = true")
    link = dash_duo.find_element("#nav-dispatch")
    link.send_keys("\n")  # the keyboard: Enter on the focused link
    dash_duo.wait_for_element("#incident-list", timeout=10)
    assert path_of(dash_duo) == "/dispatch"
    wait_for(lambda: ["/dispatch", "联动派单", "page"] in nav_state(dash_duo), message="dispatch marked")
    assert [s[2] for s in nav_state(dash_duo)] == [None, "page", None, None, None, None, None]
    assert dash_duo.driver.execute_script("return window.__same_page === true")  # no reload
    box = dash_duo.driver.execute_script(
        "return document.getElementById('nav-briefings').getBoundingClientRect().bottom")
    assert box <= 60  # the briefings link sits in the bar at the top, whole
    wait_for_graphs(dash_duo, what="the dispatch page's graphs drawn")
    dash_duo.find_element("#nav-briefings").click()
    wait_for(lambda: path_of(dash_duo) == "/briefings", message="briefings by a click")
    wait_for(lambda: ["/briefings", "运行简报", "page"] in nav_state(dash_duo), message="briefings marked")
    dash_duo.driver.back()
    wait_for(lambda: ["/dispatch", "联动派单", "page"] in nav_state(dash_duo), message="back: dispatch marked")
    assert dash_duo.driver.execute_script("return window.__same_page === true")
    assert dash_duo.get_logs() == []


def test_a_viewer_sees_neither_dispatch_nor_m_and_the_switch_translates_the_navigation(app, dash_duo):
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/briefings", role="viewer")
    wait_for(lambda: nav_state(dash_duo) == [["/", "全景", None], ["/briefings", "运行简报", "page"],
                                             ["/rosters", "值班", None]],
             timeout=15, message="the viewer's navigation")
    assert dash_duo.driver.find_elements("css selector", "#nav-dispatch, #nav-mobile, a[href='/dispatch'],"
                                                         " a[href='/m']") == []
    assert dash_duo.find_element("#shell-nav nav").get_attribute("aria-label") == "页面导航"
    dash_duo.find_element("#lang-toggle").click()
    wait_for(lambda: nav_state(dash_duo) == [["/", "Panorama", None], ["/briefings", "Briefings", "page"],
                                             ["/rosters", "Duty", None]],
             message="the navigation in English")
    assert dash_duo.find_element("#shell-nav nav").get_attribute("aria-label") == "Pages"
    assert dash_duo.get_logs() == []


def test_the_wall_has_no_navigation(app, dash_duo):
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/wall", role="admin")
    dash_duo.wait_for_element("#city-map", timeout=10)
    dash_duo.wait_for_element(".page-wall", timeout=10)
    assert dash_duo.driver.find_elements("css selector", "#shell-nav a") == []
    assert not dash_duo.find_element(".shell-top").is_displayed()
    assert dash_duo.get_logs() == []
