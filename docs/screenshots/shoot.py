"""Take the screenshots in this folder from a simulated Shenzhen hour, in headless Chromium.

``test_command_view_screenshots`` the command view of a major incident; ``test_screenshots`` takes the panorama, the wall (1920×1080 and 3840×2160) and a district;
``test_operations_screenshots`` seeds the same city, dispatches a fire to three departments (one of them
overdue), and takes /dispatch, a briefing generated with the system Chromium, /briefings, and /m at 390×844;
``test_district_centre_screenshots`` Luohu's district centre officer's /, wall and /dispatch;
``test_desk_screenshots`` /login, /open, /rosters, /notifications and a liaison's task board; ``test_alert_screenshots``
/alerts and the wall with a warning; ``test_replay_screenshots`` the replays. Each in Simplified Chinese
(``<page>.png``) and in English (``<page>-en.png``), switched with the page's own button, as the person who uses
the page (an officer, a liaison, the commander on a phone, a kiosk's wall, nobody signed in).

Run from the repository root with the test services up (``make services``):
``.venv/bin/python -m pytest docs/screenshots/shoot.py -p tests.conftest -p no:cacheprovider``
Only some pages: ``SHOOT=district,dispatch`` (the pages' file names without ``-en``); a test none of whose pages is
asked for is skipped before it seeds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dashboard.dispatch import commander, desk
from dashboard.dispatch import board as d
from dashboard.briefings import periods
from dashboard.briefings.generate import generate_now, generate_slot
from dashboard.briefings.render import find_browser
from dashboard.core.city import load_city
from feeds.pipeline import now_ms
from tests.helpers import (TEST_PASSWORD, make_user, open_incident_detail, seed_simulated, sign_in, wait_for,
                           wait_for_graphs)
from tests.test_pages import viewport

HERE = Path(__file__).parent
MIN = 60_000



def settle(dash_duo) -> None:
    """Wait until the map has drawn and refitted to its box."""
    wait_for(lambda: dash_duo.driver.execute_script(
        "const gd = document.querySelector('#city-map .js-plotly-plot');"
        "return gd && gd.layout.meta && gd.layout.meta.size && gd.querySelector('.choroplethlayer path')"),
        timeout=20, message="the map fitted and loaded")


def streets_drawn(dash_duo, graph: str) -> None:
    """Wait until the district map ``graph`` (``#district-map`` on a drill-down, ``#city-map`` on a district wall)
    has drawn its streets as areas (its last choropleth trace) and every graph on the page has drawn."""
    wait_for(lambda: dash_duo.driver.execute_script(
        "const gd = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "const t = gd ? [...gd.querySelectorAll('.choroplethlayer .trace')] : [];"
        "return t.length >= 2 && t[t.length - 1].querySelectorAll('path.choroplethlocation').length > 1", graph),
        timeout=30, message=f"the street areas on {graph}")
    wait_for_graphs(dash_duo)


def switch_language(dash_duo, lang: str) -> None:
    """Choose ``lang`` with the page's own switch (the choice is the browser's, kept for every later page)."""
    from dashboard.core.i18n import t

    want, app_title = ("en" if lang == "en" else "zh-CN"), t("app_title", lang)
    if dash_duo.driver.execute_script("return document.documentElement.lang") != want:
        dash_duo.find_element("#lang-toggle").click()
    # the html's lang follows at once (in the browser); the page follows when the router has drawn it anew, with
    # the tab's title (the same callback): before that the page still shows the other language
    wait_for(lambda: dash_duo.driver.execute_script(
        "return document.documentElement.lang === arguments[0] && document.title.endsWith(arguments[1])",
        want, app_title), timeout=20, message=f"the page in {lang}")


def air(app, value: float, district: str = "futian", n0: int = 1) -> None:
    """Ingest AQI readings above ``value`` for 11 minutes through the app's real pipeline, as
    ``tests.test_alert_list.pollution`` does (the pack's orange and red rules fire), titled as the simulator titles
    its readings, so the ticker reads like the city's."""
    from tests.helpers import make_event
    from tests.test_api import ingest_now

    name = load_city("shenzhen").resolve(district).name
    now = now_ms()
    ingest_now(app, {"environment": [
        make_event(n0 + i, kind="aqi", district=district, ts=now - ago * MIN, value=value + i, unit="AQI",
                   title=f"{name}空气质量指数 {value + i:.0f}（{'重度污染' if value + i > 200 else '中度污染'}）")
        for i, ago in enumerate((11, 5, 0))]})


def scroll_into_list(dash_duo, selector: str) -> None:
    """Scroll the list holding ``selector`` so that it shows in the list's middle, the page itself at its top (an
    element's scrollIntoView scrolls the window too, taking the top bar off the picture)."""
    dash_duo.driver.execute_script("""
        const e = document.querySelector(arguments[0]), list = e.closest('ul, ol');
        list.scrollTop += e.getBoundingClientRect().top - list.getBoundingClientRect().top
            - (list.clientHeight - e.offsetHeight) / 2;
        window.scrollTo(0, 0);""", selector)


def wanted(*pages: str) -> bool:
    """Whether any of ``pages`` is to be taken: all of them unless ``SHOOT`` lists some (comma-separated)."""
    import os

    asked = {p.strip() for p in os.environ.get("SHOOT", "").split(",") if p.strip()}
    return not asked or bool(asked.intersection(pages))


def only(*pages: str) -> None:
    """Skip the calling test, before it seeds, when ``SHOOT`` asks for none of ``pages``."""
    if not wanted(*pages):
        pytest.skip(f"SHOOT asks for none of {', '.join(pages)}")


def save(dash_duo, page: str, lang: str) -> None:
    """Save the screenshot of ``page`` in ``lang`` once a live page's connection has settled (no gateway runs
    here: it reads "polling" after its attempts, not "connecting" as if just opened)."""
    wait_for(lambda: dash_duo.driver.execute_script("return !document.querySelector('.conn-connecting')"),
             timeout=30, message="the connection settled")
    dash_duo.driver.save_screenshot(name(page, lang))


def signed_out(dash_duo) -> None:
    """Sign the browser out from a page that does not poll (a live page left open polls on, answered 401 or 403 once
    its cookie is gone, and the tests' log checks count those)."""
    dash_duo.driver.get(dash_duo.server_url + "/login")
    dash_duo.driver.delete_all_cookies()


def name(page: str, lang: str) -> str:
    """Return the file of ``page``'s screenshot in ``lang`` (Chinese, the default, without a suffix)."""
    return str(HERE / (f"{page}.png" if lang == "zh" else f"{page}-{lang}.png"))


def test_screenshots(make_app, redis_client, dash_duo):
    only("panorama", "wall", "wall-4k", "district")
    app = make_app(PANORAMA_POLL_MS=2000)
    assert seed_simulated(app, hours=2.0, rate=20.0) > 10_000  # the default simulator rate; two hours fill both windows
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/", "officer")
    for lang in ("zh", "en"):
        viewport(dash_duo, 1600, 1270)
        dash_duo.driver.get(dash_duo.server_url + "/")
        switch_language(dash_duo, lang)
        if wanted("panorama"):
            dash_duo.wait_for_element("#event-ticker li", timeout=20)
            settle(dash_duo)
            save(dash_duo, "panorama", lang)

        for (width, height), page in (((1920, 1080), "wall"), ((3840, 2160), "wall-4k")):
            if not wanted(page):
                continue
            viewport(dash_duo, width, height)
            dash_duo.driver.get(dash_duo.server_url + "/wall")
            dash_duo.wait_for_element(".spotlight-panel .spot-name", timeout=20)
            settle(dash_duo)
            save(dash_duo, page, lang)

        if wanted("district"):
            viewport(dash_duo, 1600, 1500)
            dash_duo.driver.get(dash_duo.server_url + "/district/futian")
            dash_duo.wait_for_element("#district-events td", timeout=20)
            streets_drawn(dash_duo, "#district-map")
            save(dash_duo, "district", lang)
    assert dash_duo.get_logs() == []


def _send(svc, incident_id: int, departments, at: int) -> list[dict]:
    return desk.write(svc, d.dispatch, incident_id, departments, "olga", None, at, svc.city.rules,
                              svc.city).tasks


def dispatch_scene(app) -> dict:
    """Dispatch the simulated fire with the most calls to three departments; fire ten minutes ago: overdue."""
    svc = app.server.extensions["panorama"]
    now = now_ms()
    with svc.engine.connect() as conn:
        queue = desk.queue(conn)
    fire = max((r for r in queue if r["kind"] == "fire"), key=lambda r: (r["reports"], r["opened_ms"]))
    _send(svc, fire["id"], ["fire"], now - 10 * MIN)  # the fire rule gives three minutes to acknowledge
    police, _health = _send(svc, fire["id"], ["police", "health"], now - 2 * MIN)
    with svc.engine.begin() as conn:
        d.transition(conn, police["id"], "acknowledged", police["version"], "liaison-police", None, now - MIN)
    return fire


def send_units(app, fire: dict) -> None:
    """Send units to the fire's tasks and put them on their way: fire engines on scene, en route and still beyond
    the map's edge, a ladder truck, a patrol car close by (what the command view lists and draws)."""
    from sqlalchemy import update

    from dashboard.dispatch import units as dispatch_units
    from dashboard.storage.models import units

    svc = app.server.extensions["panorama"]
    now = now_ms()
    with svc.engine.connect() as conn:
        tasks = {t["department"]: t for t in d.list_tasks(conn, incident_id=fire["id"])}
    lat, lon = fire["lat"], fire["lon"]
    near = {"fire": [("on_scene", 0.0012, 0.0015), ("en_route", 0.012, -0.009), ("en_route", -0.004, 0.016),
                     ("en_route", 0.09, 0.05)],
            "police": [("on_scene", -0.0015, -0.001), ("en_route", 0.006, 0.008)]}
    with svc.engine.begin() as conn:
        for department, moves in near.items():
            # the department's units nearest the fire (its district's station first), as a dispatcher sends them
            fleet = [u["unit"] for u in sorted((u for u in svc.city.units if u["department"] == department),
                                               key=lambda u: (u["lat"] - lat) ** 2 + (u["lon"] - lon) ** 2)][:len(moves)]
            dispatch_units.assign(conn, tasks[department]["id"], fleet, "olga", now - MIN)
            for unit, (status, dlat, dlon) in zip(fleet, moves):
                conn.execute(update(units).where(units.c.unit == unit)
                             .values(status=status, lat=lat + dlat, lon=lon + dlon, updated_ms=now))


def command_scene(app, commander_user, keep: int = 3) -> None:
    """Leave the commander a few decisions: a rejection, the overdue fire, the newest critical incidents."""
    svc = app.server.extensions["panorama"]
    now = now_ms()
    with svc.engine.connect() as conn:
        queue = desk.queue(conn)
    medical = next((r for r in reversed(queue) if r["kind"] == "medical" and r["status"] == "open"), None)
    if medical:
        tasks = _send(svc, medical["id"], None, now - 4 * MIN)
        with svc.engine.begin() as conn:
            d.transition(conn, tasks[-1]["id"], "rejected", tasks[-1]["version"], "liaison", "不属于本部门", now - MIN)
    with svc.engine.connect() as conn:
        items = commander.decisions(conn, svc.city, now)
    critical = [i for i in items if i["kind"] == "critical"]
    for item in critical[:-keep] if len(critical) > keep else []:  # the older ones, seen already
        commander.perform(svc, commander_user, commander.Tap("acknowledge", item["kind"], item["incident"]["id"],
                                                             None, item["version"]), now)


def test_operations_screenshots(make_app, redis_client, dash_duo):
    only("dispatch", "briefing", "briefings", "mobile")
    app = make_app(PANORAMA_POLL_MS=2000)
    assert seed_simulated(app, hours=18.5, rate=2.0) > 10_000  # since last night: the briefing's period and the one before
    svc = app.server.extensions["panorama"]
    air(app, 230)  # Futian's air above 200: a red and an orange warning on the commander's phone
    fire = dispatch_scene(app)
    command_scene(app, make_user(app, "zhang.wei", "commander"))
    if wanted("briefing", "briefings"):
        assert find_browser(svc.config["BROWSER_PATH"]), "needs Chromium"
        # a briefing generated now, with the system Chromium drawing its map and trends
        # and the two scheduled before it (this evening's and this morning's), for the list
        trigger = periods.make_trigger(svc.config["PANORAMA_BRIEFING_CRON"], svc.config["PANORAMA_TZ"])
        slot = periods.latest_slot(trigger, datetime.now(ZoneInfo(svc.config["PANORAMA_TZ"])))
        for at in (periods.previous_slot(trigger, slot), slot):
            generate_slot(svc, trigger, at, now_ms())
        row = generate_now(svc, "zhang.wei", now_ms())
        assert row["status"] == "ready" and row["images"], row.get("note")

    dash_duo.start_server(app)
    for lang in ("zh", "en"):
        signed_out(dash_duo)
        sign_in(dash_duo, app, "/dispatch", "officer", username=f"officer-{lang}")
        viewport(dash_duo, 1600, 1200)
        dash_duo.driver.get(dash_duo.server_url + "/dispatch")
        switch_language(dash_duo, lang)
        if wanted("dispatch"):
            item = f"#incident-list > li[data-id='{fire['id']}'] .queue-item"
            # opened by its address (a shared link, a reload): clicked in a queue of 500 on this loaded machine, the
            # detail now and then stayed on its placeholder while the board and the address showed the incident
            dash_duo.driver.get(dash_duo.server_url + f"/dispatch?incident={fire['id']}")
            dash_duo.wait_for_text_to_equal("#dispatch-detail-title", fire["title"], timeout=60)
            dash_duo.wait_for_element(item, timeout=20)
            dash_duo.wait_for_element("#board-fire .task-card .countdown.overdue", timeout=10)
            dash_duo.wait_for_element("#board-health .task-card", timeout=10)
            wait_for(lambda: dash_duo.driver.execute_script(
                "const g = document.querySelector('#dispatch-map .js-plotly-plot');"
                "return g && g.data && g.data[1] && g.data[1].lat.length"
                " && g.querySelector('.frontplot path.point')"),
                timeout=20, message="the incident and its report on the map")
            scroll_into_list(dash_duo, item)
            save(dash_duo, "dispatch", lang)

        if wanted("briefing"):
            viewport(dash_duo, 1600, 1400)
            dash_duo.driver.get(dash_duo.server_url + f"/briefings/{row['id']}")
            dash_duo.wait_for_element("#briefing-frame", timeout=10)
            dash_duo.driver.switch_to.frame(dash_duo.find_element("#briefing-frame"))
            wait_for(lambda: dash_duo.driver.execute_script(
                "return document.readyState === 'complete' && [...document.images].every(i => i.complete)"),
                message="the report and its images loaded")
            dash_duo.driver.switch_to.default_content()
            save(dash_duo, "briefing", lang)

        if wanted("briefings"):
            viewport(dash_duo, 1500, 560)
            dash_duo.driver.get(dash_duo.server_url + "/briefings")
            wait_for(lambda: len(dash_duo.find_elements("#briefing-list tbody tr")) >= 3, timeout=20,
                     message="the three briefings listed")
            save(dash_duo, "briefings", lang)

        if not wanted("mobile"):
            continue
        # the commander on a phone, signing in there
        signed_out(dash_duo)
        dash_duo.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                        {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        dash_duo.driver.get(dash_duo.server_url + "/m")
        dash_duo.wait_for_element("#login-username", timeout=10)
        dash_duo.find_element("#login-username").send_keys("zhang.wei")
        dash_duo.find_element("#login-password").send_keys(TEST_PASSWORD)
        dash_duo.find_element("#login-submit").click()
        dash_duo.wait_for_element("#mobile-page", timeout=10)
        switch_language(dash_duo, lang)
        dash_duo.wait_for_element("#decision-list > li", timeout=20)
        dash_duo.wait_for_element("#incident-list > li", timeout=20)
        save(dash_duo, "mobile", lang)
        dash_duo.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert dash_duo.get_logs() == []


def test_alert_screenshots(make_app, redis_client, dash_duo):
    """The wall with a red warning fired through the real pipeline (the AQI rules of the Shenzhen pack), and
    /alerts with its trail and a silence: ``wall-alert.png``, ``alerts.png`` (and ``-en``)."""
    only("alerts", "wall-alert")
    from dashboard.web.api_alerts import SilenceBody, add_silence
    app = make_app(PANORAMA_POLL_MS=2000)
    assert seed_simulated(app, hours=2.0, rate=5.0) > 5_000  # two hours: the last hour and the one it is compared with
    svc = app.server.extensions["panorama"]
    air(app, 230)  # Futian's AQI readings above 200 for 11 minutes: the orange and the red rule fire
    air(app, 160, "luohu", n0=50)  # Luohu above 150: orange
    tz = ZoneInfo("Asia/Shanghai")
    until = (datetime.now(tz) + timedelta(hours=6)).replace(second=0, microsecond=0).isoformat()
    add_silence(svc, SilenceBody(rule="crowd_universiade", until=until, reason="体育中心演唱会散场，现场已有警力"),
                "zhang.wei")
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/alerts", "commander", username="zhang.wei")
    for lang in ("zh", "en"):
        viewport(dash_duo, 1500, 1100)
        dash_duo.driver.get(dash_duo.server_url + "/alerts")
        switch_language(dash_duo, lang)
        dash_duo.wait_for_element("#alerts-trail > li.lvl-red", timeout=20)
        dash_duo.driver.execute_script("document.querySelector('#alerts-trail > li.lvl-red details').open = true")
        save(dash_duo, "alerts", lang)
        viewport(dash_duo, 1920, 1080)
        dash_duo.driver.get(dash_duo.server_url + "/wall")
        dash_duo.wait_for_element(".spotlight-panel .spot-name", timeout=20)
        dash_duo.wait_for_element("#alert-list > li.lvl-red", timeout=20)
        settle(dash_duo)
        wait_for(lambda: dash_duo.driver.execute_script(
            "const gd = document.querySelector('#city-map .js-plotly-plot');"
            "return gd.data[5].lon.some(x => x !== null)"), timeout=20, message="the red outline on the map")
        save(dash_duo, "wall-alert", lang)

    assert dash_duo.get_logs() == []


def test_replay_screenshots(make_app, redis_client, dash_duo):
    """The wall and the desk replaying the simulated city's last hour (docs/replay.md): ``wall-replay.png`` at
    60x, ``panorama-replay.png`` paused with its controls (and ``-en``)."""
    only("panorama-replay", "wall-replay")
    from urllib.parse import quote

    from dashboard.core.clock import iso
    from dashboard.core.i18n import t

    app = make_app(PANORAMA_POLL_MS=2000)
    assert seed_simulated(app, hours=2.0, rate=5.0) > 1_000
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/", "officer")
    at = quote(iso(now_ms() - 50 * MIN, "Asia/Shanghai"))
    for lang in ("zh", "en"):
        viewport(dash_duo, 1600, 1270)
        dash_duo.driver.get(dash_duo.server_url + f"/?at={at}&speed=0")
        switch_language(dash_duo, lang)
        # the page redrawn in the language chosen (the router draws it again after the switch)
        dash_duo.wait_for_text_to_equal(".replay-label", t("replay_banner", lang), timeout=20)
        dash_duo.wait_for_element("#event-ticker li", timeout=20)
        settle(dash_duo)
        save(dash_duo, "panorama-replay", lang)
        viewport(dash_duo, 1920, 1080)
        dash_duo.driver.get(dash_duo.server_url + f"/wall?at={at}&speed=60")
        dash_duo.wait_for_element("#replay-banner", timeout=20)
        dash_duo.wait_for_element(".spotlight-panel .spot-name", timeout=20)
        settle(dash_duo)
        save(dash_duo, "wall-replay", lang)
    assert dash_duo.get_logs() == []


def test_command_view_screenshots(make_app, redis_client, dash_duo):
    """A major incident declared on the simulated fire sent to three departments: the wall's command view
    (``wall-major.png``) and the desk's (``panorama-major.png``), and ``-en``; docs/major-incidents.md."""
    only("panorama-major", "wall-major")
    from dashboard.dispatch import major
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    port = free_port()
    app = make_app(PANORAMA_POLL_MS=2000, PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/")
    assert seed_simulated(app, hours=2.0, rate=5.0) > 1_000
    svc = app.server.extensions["panorama"]
    fire = dispatch_scene(app)
    send_units(app, fire)
    with svc.engine.begin() as conn:
        major.declare(conn, fire["id"], 2, "zhang.wei", "启动二级应急响应，市应急局牵头", now_ms() - 5 * MIN)
    dash_duo.start_server(app)
    gw = Gateway(svc, port=port, origins=[dash_duo.server_url.rstrip("/")])
    gw.start()
    try:
        sign_in(dash_duo, app, "/", "officer")
        for lang in ("zh", "en"):
            for page, (w, h) in (("panorama", (1600, 1100)), ("wall", (1920, 1080))):
                viewport(dash_duo, w, h)
                dash_duo.driver.get(dash_duo.server_url + ("/wall" if page == "wall" else "/"))
                if page == "panorama":  # the wall has no controls: it follows the language chosen here
                    dash_duo.wait_for_element("#lang-toggle", timeout=30)
                    switch_language(dash_duo, lang)
                dash_duo.wait_for_element("#major-view #major-title", timeout=30)
                wait_for(lambda: dash_duo.driver.execute_script(
                    "return !!document.querySelector('#major-view #major-map .main-svg')"), timeout=30,
                    message="the command view's map drawn")
                wait_for(lambda: dash_duo.driver.execute_script(
                    "return document.fonts.status === 'loaded' && document.querySelectorAll("
                    "'#major-view li').length > 0"), timeout=30, message="the command view's lists and fonts")
                wait_for(lambda: dash_duo.driver.execute_script(
                    "return document.querySelectorAll('#major-unit-layer [data-status]:not([display])').length"
                    " >= 4"), timeout=30, message="the units sent, on the command view's map")
                save(dash_duo, f"{page}-major", lang)
    finally:
        gw.stop()
    assert [e for e in dash_duo.get_logs() or [] if e["level"] == "SEVERE"] == []


def test_district_centre_screenshots(make_app, redis_client, dash_duo):
    """A district centre's officer (Luohu's, SPEC section 13): / (their district by street), their wall (Luohu
    alone, its events and incidents placed, its streets, its busiest street in the spotlight) and /dispatch (their
    district's queue), each in both languages."""
    only("district-centre", "district-centre-wall", "district-centre-dispatch")
    from dashboard.storage import users as accounts

    app = make_app(PANORAMA_POLL_MS=2000, PANORAMA_WALL_CYCLE_S=3600)
    assert seed_simulated(app, hours=2.0, rate=20.0) > 10_000
    svc = app.server.extensions["panorama"]
    with svc.engine.connect() as conn:
        luohu = [r for r in desk.queue(conn) if r["district"] == "440303"]
    fire = max(luohu, key=lambda r: (r["severity"], r["reports"]))
    _send(svc, fire["id"], ["fire"], now_ms() - 2 * MIN)
    accounts.create_user(svc.engine, "luo.officer", TEST_PASSWORD, "officer", None,
                         [x["code"] for x in svc.city.departments], district="440303",
                         districts=[x.code for x in svc.city.districts])
    dash_duo.start_server(app)
    dash_duo.driver.get(dash_duo.server_url + "/login")
    dash_duo.wait_for_element("#login-username", timeout=20)
    dash_duo.find_element("#login-username").send_keys("luo.officer")
    dash_duo.find_element("#login-password").send_keys(TEST_PASSWORD)
    dash_duo.find_element("#login-submit").click()
    dash_duo.wait_for_element("#user-name", timeout=20)
    for lang in ("zh", "en"):
        viewport(dash_duo, 1600, 1500)
        dash_duo.driver.get(dash_duo.server_url + "/")
        switch_language(dash_duo, lang)
        dash_duo.wait_for_element("#district-events td", timeout=20)
        streets_drawn(dash_duo, "#district-map")
        save(dash_duo, "district-centre", lang)

        viewport(dash_duo, 1920, 1080)
        dash_duo.driver.get(dash_duo.server_url + "/wall")
        dash_duo.wait_for_element(".spotlight-panel .spot-name", timeout=20)
        dash_duo.wait_for_element("#wall-streets .js-plotly-plot", timeout=20)
        dash_duo.wait_for_element(".spotlight-panel .spot-incident, .spotlight-panel .spot-incident-empty", timeout=20)
        settle(dash_duo)
        streets_drawn(dash_duo, "#city-map")
        save(dash_duo, "district-centre-wall", lang)

        viewport(dash_duo, 1600, 1200)
        dash_duo.driver.get(dash_duo.server_url + "/dispatch")
        open_incident_detail(dash_duo, fire["id"], fire["title"], timeout=90)
        dash_duo.wait_for_element("#board-fire .task-card", timeout=10)
        save(dash_duo, "district-centre-dispatch", lang)
    assert dash_duo.get_logs() == []


def deliver(app, now: int) -> None:
    """Play the senders' part on what is due in the outbox: text messages and mails accepted, a webhook refused
    (given up after its tries), so the delivery log shows each outcome."""
    from dashboard.storage import outbox

    svc = app.server.extensions["panorama"]
    with svc.engine.begin() as conn:
        taken = outbox.claim_due(conn, now_ms=now, lease_ms=60_000, limit=200)
        assert taken, "nothing due in the outbox"
        for i, row in enumerate(taken):
            at = now - MIN + i * 500
            if row["channel"] == "webhook":
                outbox.mark_failed(conn, row["id"], attempts=row["attempts"], now_ms=at, max_attempts=1,
                                   error="HTTP 503: Service Unavailable", base_ms=MIN, cap_ms=10 * MIN)
            elif row["channel"] == "sms" and i == 0:  # the operator's gateway busy: tried again in a minute
                outbox.mark_failed(conn, row["id"], attempts=row["attempts"], now_ms=at, max_attempts=8,
                                   error="HTTP 503: SMS gateway busy", base_ms=MIN, cap_ms=10 * MIN)
            else:
                outbox.mark_sent(conn, row["id"], attempts=row["attempts"], now_ms=at,
                                 detail=f"SMS gateway accepted: msg-{40213 + i}" if row["channel"] == "sms"
                                 else "250 2.0.0 OK: queued as 4Q7ZL1mN")


def test_desk_screenshots(make_app, redis_client, dash_duo):
    """The pages around the desk, each as the person who uses it: /login and /open (nobody signed in), /rosters
    with a duty override in force and /notifications after an overdue fire and a red air warning told the duty
    (an officer), and a fire-service liaison's landing page, their department's task board (``liaison.png``)."""
    only("login", "open", "rosters", "notifications", "liaison")
    from dashboard.dispatch.deadlines import DeadlineChecker
    from dashboard.storage.alerts import open_alerts
    from dashboard.web.api_alerts import acknowledge
    from dashboard.web.api_rosters import create_override
    app = make_app(PANORAMA_POLL_MS=2000)
    assert seed_simulated(app, hours=2.0, rate=5.0) > 1_000
    svc = app.server.extensions["panorama"]
    fire = dispatch_scene(app)
    now = now_ms()
    # the deadline checker ran six minutes ago: the fire service's duty ladder started then (two levels due)
    assert DeadlineChecker(svc).check_once(now - 6 * MIN)
    air(app, 230)  # Futian's air: the red warning tells the environment duty and the team's mailbox
    tz = ZoneInfo("Asia/Shanghai")
    until = (datetime.now(tz) + timedelta(hours=4)).replace(second=0, microsecond=0).isoformat()
    create_override(svc, "fire", "fire_dep_b", "deputy", None, until, "孙洋参加全市消防演练，马秀英临时顶班", "zhang.wei")
    make_user(app, "liaison-fire", "liaison", "fire")
    dash_duo.start_server(app)

    def fired():
        with svc.engine.connect() as conn:
            return [a for a in open_alerts(conn) if a["status"] == "firing"]

    alerts = wait_for(lambda: len(fired()) == 2 and fired(), timeout=60, message="the red and the orange warning")
    deliver(app, now_ms())  # the first texts and mails of each ladder go out
    for alert in alerts:  # the environment duty answered the first text: the rest of its ladder is called off
        acknowledge(svc, alert["id"], alert["version"], "lin.yu", "已安排现场复核")
    for lang in ("zh", "en"):
        signed_out(dash_duo)
        viewport(dash_duo, 1280, 800)
        dash_duo.driver.get(dash_duo.server_url + "/login")
        dash_duo.wait_for_element("#login-username", timeout=20)
        switch_language(dash_duo, lang)
        save(dash_duo, "login", lang)

        viewport(dash_duo, 1400, 1600)
        dash_duo.driver.get(dash_duo.server_url + "/open")
        dash_duo.wait_for_element("#lang-toggle", timeout=20)
        save(dash_duo, "open", lang)

        sign_in(dash_duo, app, "/rosters", "officer", username=f"officer-{lang}")
        viewport(dash_duo, 1500, 1400)
        dash_duo.driver.get(dash_duo.server_url + "/rosters")
        dash_duo.wait_for_element("#roster-list", timeout=20)
        save(dash_duo, "rosters", lang)

        viewport(dash_duo, 1500, 1100)
        dash_duo.driver.get(dash_duo.server_url + "/notifications")
        dash_duo.wait_for_element(".notify-filter", timeout=20)
        save(dash_duo, "notifications", lang)

        # the liaison signs in with nothing asked for and lands on their department's task board
        signed_out(dash_duo)
        viewport(dash_duo, 1600, 1200)
        dash_duo.driver.get(dash_duo.server_url + "/login")
        dash_duo.wait_for_element("#login-username", timeout=20)
        dash_duo.find_element("#login-username").send_keys("liaison-fire")
        dash_duo.find_element("#login-password").send_keys(TEST_PASSWORD)
        dash_duo.find_element("#login-submit").click()
        wait_for(lambda: dash_duo.driver.current_url.rstrip("/").endswith("/dispatch"), timeout=20,
                 message="the liaison landed on /dispatch")
        open_incident_detail(dash_duo, fire["id"], fire["title"], timeout=90)
        dash_duo.wait_for_element("#board-fire .task-card", timeout=20)
        save(dash_duo, "liaison", lang)
    assert [e for e in dash_duo.get_logs() or [] if e["level"] == "SEVERE"] == []
