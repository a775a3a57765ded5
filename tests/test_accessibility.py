"""Readable by everyone, in headless Chromium: the page's language, accessible names, tap targets, contrast."""

from __future__ import annotations

from pathlib import Path

import time

import pytest

from tests.helpers import make_event, sign_in, wait_for
from tests.test_alert_list import alerts_of_every_level
from tests.test_api import ingest_now

HTML_LANG = "return document.documentElement.getAttribute('lang')"


def html_lang(dash_duo) -> str | None:
    return dash_duo.driver.execute_script(HTML_LANG)


def open_page(dash_duo, path: str, ready: str = "#lang-toggle") -> None:
    dash_duo.driver.get(dash_duo.server_url.rstrip("/") + path)
    dash_duo.wait_for_element(ready, timeout=20)


def test_the_html_elements_lang_follows_the_language_switch_on_every_page(app, dash_duo):
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/", role="admin")
    dash_duo.wait_for_element("#lang-toggle")
    assert html_lang(dash_duo) == "zh-CN"  # the default, in the page as served
    dash_duo.find_element("#lang-toggle").click()
    wait_for(lambda: html_lang(dash_duo) == "en", message="lang=en on /")
    dash_duo.wait_for_text_to_equal(".topbar-title", "City Operations Panorama", timeout=10)
    # the choice is the browser's: other pages open in English
    open_page(dash_duo, "/m")
    wait_for(lambda: html_lang(dash_duo) == "en", message="lang=en on /m")
    open_page(dash_duo, "/district/440304")
    dash_duo.wait_for_text_to_equal("#district-title", "Futian", timeout=10)
    wait_for(lambda: html_lang(dash_duo) == "en", message="lang=en on /district")
    # the switch's own label is in the other language, and says which
    assert dash_duo.find_element("#lang-toggle").get_attribute("lang") == "zh-CN"
    dash_duo.find_element("#lang-toggle").click()
    wait_for(lambda: html_lang(dash_duo) == "zh-CN", message="lang=zh-CN on /district")
    dash_duo.wait_for_text_to_equal("#district-title", "福田区", timeout=10)
    assert dash_duo.find_element("#lang-toggle").get_attribute("lang") == "en"
    assert dash_duo.get_logs() == []


AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.2 A and AA (contrast, names, roles, 24 px targets) and axe's best practices, as Lighthouse checks them.
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa',
                                                   'best-practice']}, resultTypes: ['violations']})
   .then((r) => done(r.violations.map((v) => [v.id, v.nodes.slice(0, 4).map((n) => n.target.join(' ') + ' :: '
                                              + (n.failureSummary || '').split('\\n').slice(1, 2).join(''))])),
         (e) => done([['axe-error', [String(e)]]]));
"""
PAGES = (("/", "#city-map .js-plotly-plot"), ("/wall", "#city-map .js-plotly-plot"),
         ("/district/440304", "#district-events .next-page"), ("/dispatch", "#incident-list"), ("/briefings", "#lang-toggle"),
         ("/m", "#incident-list"), ("/notifications", "#notify-summary"),
         ("/rosters", "#override-reason"), ("/alerts", "#alerts-trail li"), ("/open", "#open-fields"), ("/login", "#login-username"))


def axe_violations(dash_duo) -> list:
    """Run axe-core (the engine of Lighthouse's accessibility audits) on the page; return its violations."""
    dash_duo.driver.execute_script(AXE.read_text())  # through DevTools: no page policy applies
    dash_duo.driver.set_script_timeout(60)
    return dash_duo.driver.execute_async_script(RUN_AXE)


@pytest.mark.timeout(420)
def test_every_page_passes_axe_in_both_languages(app, dash_duo):
    """Every page, Chinese then English (the sign-in page last, signed out): no violation of WCAG 2.2 AA."""
    # events of every severity, incidents among them, and more than a page of the district's table: every
    # badge colour and the table's page buttons are on screen
    now = int(time.time() * 1000)
    ingest_now(app, {"traffic": [make_event(i, ts=now - i * 1000, severity=1 + i % 4) for i in range(60)],
                     "incident": [make_event(100 + i, ts=now - i * 1000, kind="fire", severity=1 + i % 4)
                                  for i in range(8)]})
    alerts_of_every_level(app)  # every level's colour and word, an acknowledge button, an acknowledged alert
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/", role="admin")
    found = {}
    for lang in ("zh", "en"):
        for path, ready in PAGES:
            if path == "/login":
                dash_duo.driver.delete_all_cookies()  # the language stays: it is the browser's
            open_page(dash_duo, path, ready)
            if html_lang(dash_duo) != ("en" if lang == "en" else "zh-CN"):
                dash_duo.find_element("#lang-toggle").click()
            wait_for(lambda: html_lang(dash_duo) == ("en" if lang == "en" else "zh-CN"), message=lang)
            dash_duo.wait_for_element(ready, timeout=20)
            violations = axe_violations(dash_duo)
            if violations:
                found[f"{path} {lang}"] = violations
        if lang == "zh":
            sign_in(dash_duo, app, "/", role="admin", username="browser-admin-2")
    assert found == {}, "\n".join(f"{page}: {v}" for page, vs in found.items() for v in vs)


def test_the_sign_in_page_with_single_sign_on_passes_axe_in_both_languages(make_app, redis_client, dash_duo):
    """/login as it is with single sign-on configured, just signed out of it: the provider's link, its sign-out's,
    the password form (the provider is never asked: drawing the page needs nothing of it)."""
    app = make_app(PANORAMA_OIDC_ISSUER="http://127.0.0.1:9", PANORAMA_OIDC_CLIENT_ID="panorama",
                   PANORAMA_OIDC_CLIENT_SECRET="secret")
    dash_duo.start_server(app)
    found = {}
    for lang in ("zh", "en"):
        open_page(dash_duo, "/login?signed_out=1", "#login-sso-sign-out")
        if html_lang(dash_duo) != ("en" if lang == "en" else "zh-CN"):
            dash_duo.find_element("#lang-toggle").click()
        wait_for(lambda: html_lang(dash_duo) == ("en" if lang == "en" else "zh-CN"), message=lang)
        dash_duo.wait_for_element("#login-sso", timeout=20)
        violations = axe_violations(dash_duo)
        if violations:
            found[lang] = violations
    assert found == {}, found
