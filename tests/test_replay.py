"""After-action replay (SPEC section 12): the panorama as it stood at a past minute, over the API and on the pages."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from dashboard.core.clock import DAY_MS, iso
from feeds.pipeline import now_ms
from tests.helpers import TEST_PASSWORD, make_event, make_user, sign_in, wait_for
from tests.test_access_matrix import session
from tests.test_api import ingest_now

TZ = "Asia/Shanghai"
MIN = 60_000
# (minutes before the replayed minute, district, domain): what was published before it
BEFORE = [(1, "futian", "traffic"), (2, "futian", "traffic"), (5, "luohu", "security"), (9, "nanshan", "traffic"),
          (20, "futian", "environment"), (44, "baoan", "incident"), (59, "luohu", "traffic"),
          (75, "futian", "security"), (200, "nanshan", "traffic"), (600, "longgang", "environment")]


def yesterday_minute() -> int:
    """Return a moment yesterday, 30 s into its minute."""
    then = now_ms() - DAY_MS
    return then - then % MIN + 30_000


def publish(app, at: int, rows, first: int = 1, prefix: str = "before") -> None:
    evs: dict[str, list] = {}
    for n, (ago, district, domain) in enumerate(rows, start=first):
        evs.setdefault(domain, []).append(make_event(n, district=district, ts=at - ago * MIN, severity=2,
                                                     title=f"{prefix} {n}"))
    ingest_now(app, evs)


def expected(rows, minutes: int) -> dict:
    out = {"security": 0, "traffic": 0, "environment": 0, "incident": 0}
    for ago, _, domain in rows:
        if 0 <= ago < minutes:
            out[domain] += 1
    return out


@pytest.fixture
def replayed(make_app, redis_client):
    """Publish a known hour yesterday through an app whose clock read yesterday, record what its API answered
    then, publish what came after (through an app on today's clock) and give today's app."""
    then = yesterday_minute()
    yesterday = make_app(PANORAMA_CLOCK=lambda: then)
    publish(yesterday, then, BEFORE)
    client = yesterday.server.test_client()
    answered = {path: client.get(path).get_json() for path in
                ("/api/summary?window=1h", "/api/summary?window=24h", "/api/summary?window=15m",
                 "/api/districts/futian/summary?window=1h")}
    today = make_app()
    # after the replayed minute: later that day, and now; none of it may show in the replay
    publish(today, then, [(-1, "futian", "traffic"), (-3, "luohu", "security"), (-180, "futian", "traffic")],
            first=100, prefix="after")
    publish(today, now_ms(), [(1, "futian", "traffic")], first=200, prefix="now")
    return today, then, answered


def test_summary_at_yesterday_is_what_the_api_gave_then(replayed):
    today, then, answered = replayed
    client = today.server.test_client()
    for path, then_doc in answered.items():
        doc = client.get(f"{path}&at={quote(iso(then, TZ))}")
        assert doc.status_code == 200, doc.get_json()
        assert doc.get_json() == then_doc, path  # the same shape, counts, risk, window and time
    one_hour = answered["/api/summary?window=1h"]
    assert one_hour["totals"] == expected(BEFORE, 60) == {"security": 1, "traffic": 4, "environment": 1,
                                                          "incident": 1}
    assert answered["/api/summary?window=24h"]["totals"] == expected(BEFORE, 1440)
    assert one_hour["generated_at"] == iso(then, TZ) and one_hour["window"]["minutes"] == 60
    futian = next(d for d in one_hour["districts"] if d["code"] == "440304")
    assert futian["counts"] == {"security": 0, "traffic": 2, "environment": 1, "incident": 0}
    # the same minute in UTC ("Z") is the same answer; now differs from it (what came after counts)
    utc = client.get("/api/summary?window=1h&at=" + quote(iso(then, "UTC").replace("+00:00", "Z"))).get_json()
    assert utc["totals"] == one_hour["totals"]
    assert client.get("/api/summary?window=24h").get_json()["totals"] != answered["/api/summary?window=24h"]["totals"]


def test_the_replayed_pages_state_is_that_minutes(replayed):
    today, then, _ = replayed
    make_user(today, "v", "viewer")
    client = today.server.test_client()
    assert client.post("/api/session", json={"username": "v", "password": TEST_PASSWORD}).status_code == 200
    doc = client.get(f"/api/summary?live=1&window=1h&at={quote(iso(then, TZ))}").get_json()
    live = doc["live"]
    assert live["replay"] is True and live["generated_at"] == then
    assert live["windows"]["1h"]["totals"] == doc["totals"]
    # the ticker: the newest events by their time up to the replayed minute, none from after it
    titles = [e["title"] for e in live["events"]]
    assert titles[:3] == ["before 1", "before 2", "before 3"] and not any(t.startswith(("after", "now")) for t in titles)
    assert sum(live["trend"]["series"]["traffic"]) == 4  # the last 60 whole minutes before the replayed one
    assert live["feeds"]["traffic"]["last_event_age_s"] == 90.0  # its last minute with events, 1.5 min before
    # the live state is not for anyone: a replay of it neither
    anon = today.server.test_client().get(f"/api/summary?live=1&at={quote(iso(then, TZ))}")
    assert anon.status_code == 401


@pytest.mark.parametrize("at, says", [
    ("yesterday", "RFC 3339"),
    ("2026-13-45T10:00:00+08:00", "RFC 3339"),
    ("2026-12-05T10:00:00", "offset"),
    ("FUTURE", "future"),
    ("OLD", "older than"),
])
def test_summary_at_refuses_bad_times_with_a_clear_400(app, at, says):
    client = app.server.test_client()
    if at == "FUTURE":
        at = iso(now_ms() + 3_600_000, TZ)
    elif at == "OLD":
        at = iso(now_ms() - 91 * DAY_MS, TZ)
    for path in ("/api/summary?window=1h&at=", "/api/districts/futian/summary?at="):
        res = client.get(path + quote(at))
        assert res.status_code == 400, res.get_json()
        err = res.get_json()["error"]
        assert err["code"] == "bad_at" and says in err["message"]


def test_a_long_window_replays_from_the_hour_rollups_further_back(app):
    from dashboard.panorama.replay import rollup_floor

    client = app.server.test_client()
    # half a day into the minute rollups' oldest day: a 24-hour window would start before it; 30 days reads hours
    at = quote(iso(rollup_floor(now_ms(), 90) + DAY_MS // 2, TZ))
    assert client.get(f"/api/summary?window=30d&at={at}").status_code == 200
    assert client.get(f"/api/summary?window=24h&at={at}").status_code == 400


KPIS = """return ['security', 'traffic', 'environment', 'incident'].map(d => {
    const el = document.getElementById('kpi-' + d); return el ? el.textContent : null; });"""
SHOWN = "const m = /[?&]at=([^&]+)/.exec(location.search); return m ? decodeURIComponent(m[1]) : null;"


def test_wall_replays_yesterday_at_60x_with_the_apis_counts(replayed, dash_duo):
    from datetime import datetime

    today, then, _ = replayed
    client = today.server.test_client()
    minute = then - then % MIN
    start = minute - 5 * MIN
    # what the API gives for each minute the wall may show: the 1-hour window's totals, as the wall's tiles read
    answers = {}
    for m in range(start, minute + 40 * MIN, MIN):
        totals = client.get(f"/api/summary?window=1h&at={quote(iso(m, TZ))}").get_json()["totals"]
        answers[m] = [str(totals[d]) for d in ("security", "traffic", "environment", "incident")]
    assert len({tuple(v) for v in answers.values()}) > 2  # the counts move as the replay plays
    dash_duo.start_server(today)
    sign_in(dash_duo, today, path="/wall", role="viewer")
    # live: the tiles count, and no replay banner anywhere
    wait_for(lambda: (dash_duo.driver.execute_script(KPIS)[1] or "").isdigit(), timeout=20, message="live tiles")
    assert dash_duo.driver.find_elements("id", "replay-banner") == []
    # replay at 60x from five minutes before the known minute: a replayed minute a second
    dash_duo.driver.get(dash_duo.server_url + f"/wall?at={quote(iso(start, TZ))}&speed=60")
    dash_duo.wait_for_element("#replay-banner", timeout=20)
    assert "60×" in dash_duo.find_element("#replay-speed").text
    assert dash_duo.find_element("#replay-live").get_attribute("href").endswith("/wall")

    def shown() -> int | None:
        at = dash_duo.driver.execute_script(SHOWN)
        return None if at is None else int(datetime.fromisoformat(at).timestamp() * 1000)

    seen = []

    def tiles_match_the_api() -> bool:
        m, kpis = shown(), dash_duo.driver.execute_script(KPIS)
        seen.append((m, kpis))
        # played on (at least three minutes), and the tiles are the API's for the minute on screen
        return (m is not None and m >= start + 3 * MIN and kpis == answers.get(m)
                and answers[m] != answers[start])

    wait_for(tiles_match_the_api, timeout=30, message=f"the tiles showing the API's counts at 60x: {seen[-5:]}")
    assert dash_duo.find_element("#replay-clock").text.strip() != ""
    # the replayed page is not live: it never polled nor opened the socket, and its clock reads the replayed day
    assert dash_duo.driver.execute_script(
        "return document.getElementById('live-indicator').textContent") == "回放 · replay"
    titles = dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('#event-ticker .ticker-title')].map(e => e.textContent)")
    assert titles and not any(t.startswith("now") for t in titles)
    # back to live: the plain link, and the banner is gone
    dash_duo.find_element("#replay-live").click()
    wait_for(lambda: dash_duo.driver.find_elements("id", "replay-banner") == []
             and "at=" not in dash_duo.driver.current_url, timeout=20, message="back to live")
    wait_for(lambda: dash_duo.driver.execute_script(
        "return document.getElementById('live-indicator').textContent") != "回放 · replay", timeout=20,
        message="the live indicator")


CLOCK = "return document.getElementById('replay-clock').textContent"


def test_the_desk_enters_replay_paused_plays_it_and_returns_to_live(replayed, dash_duo):
    today, then, _ = replayed
    dash_duo.start_server(today)
    sign_in(dash_duo, today, path="/", role="officer")
    dash_duo.wait_for_element("#replay-enter", timeout=20)
    assert dash_duo.driver.find_elements("id", "replay-banner") == []  # live: never the banner
    dash_duo.find_element("#replay-enter").click()
    dash_duo.wait_for_element("#replay-banner", timeout=20)
    assert "at=" in dash_duo.driver.current_url and "speed=0" in dash_duo.driver.current_url
    wait_for(lambda: dash_duo.find_element("#replay-speed").text == "已暂停", timeout=10, message="paused")
    first = dash_duo.driver.execute_script(CLOCK)
    # the live clock reads the replayed time too, in the replay colour (not the live clock's)
    wait_for(lambda: dash_duo.driver.execute_script("return document.getElementById('clock').textContent")
             .endswith(first[-8:]), timeout=10, message="the page clock on the replayed time")
    colour = dash_duo.driver.execute_script("return getComputedStyle(document.getElementById('clock')).color")
    assert colour == "rgb(251, 191, 36)"
    dash_duo.find_element("#replay-speed-60").click()
    wait_for(lambda: dash_duo.find_element("#replay-speed").text == "60× 速度", timeout=10, message="60x")
    assert "on" in dash_duo.find_element("#replay-speed-60").get_attribute("class")
    wait_for(lambda: dash_duo.driver.execute_script(CLOCK)[-8:-3] != first[-8:-3], timeout=15,
             message="the replayed minutes moving on at 60x")
    # scrubbed to yesterday's minute: the tiles are that minute's
    minute = then - then % MIN
    dash_duo.find_element("#replay-speed-0").click()
    dash_duo.driver.execute_script(
        "const el = document.getElementById('replay-scrub');"
        "const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;"
        "set.call(el, String(arguments[0])); el.dispatchEvent(new Event('input', {bubbles: true}));"
        "el.dispatchEvent(new Event('change', {bubbles: true})); el.dispatchEvent(new MouseEvent('mouseup'));"
        "el.blur();", minute // MIN)
    expected_tiles = [str(c) for c in expected(BEFORE, 60).values()]
    wait_for(lambda: dash_duo.driver.execute_script(KPIS) == expected_tiles, timeout=20,
             message="the scrubbed minute's counts")
    assert dash_duo.driver.execute_script(CLOCK).endswith(iso(minute, TZ)[11:19])
    dash_duo.find_element("#replay-live").click()
    wait_for(lambda: dash_duo.driver.find_elements("id", "replay-banner") == []
             and dash_duo.driver.find_elements("id", "replay-enter") != [], timeout=20, message="live again")


def test_the_spotlight_reads_incidents_and_trend_as_of_the_replayed_minute(app):
    from sqlalchemy import insert

    from dashboard.panorama import replay
    from dashboard.storage.models import incidents

    svc = app.server.extensions["panorama"]
    at = yesterday_minute()
    rows = [("still open", "open", at - 30 * MIN, at - 30 * MIN), ("closed after", "closed", at - 20 * MIN, at + 10 * MIN),
            ("closed before", "closed", at - 50 * MIN, at - 5 * MIN), ("opened after", "open", at + MIN, at + MIN)]
    with svc.engine.begin() as conn:
        for title, status, opened, updated in rows:
            conn.execute(insert(incidents).values(domain="incident", kind="fire", district="440304", severity=3,
                                                  status=status, reports=1, title=title, opened_ms=opened,
                                                  last_report_ms=opened, updated_ms=updated))
    with svc.engine.connect() as conn:
        shown, count = replay.incidents_as_of(conn, "440304", at, 5)
        assert sorted(r["title"] for r in shown) == ["closed after", "still open"] and count == 2
        later, _ = replay.incidents_as_of(conn, "440304", at + 15 * MIN, 5)
        assert sorted(r["title"] for r in later) == ["opened after", "still open"]
    # the replayed minute comes from the trend the page shows, and nothing else passes for it
    minute = at - at % MIN
    assert replay.trend_end({"state": {"trend": {"start": minute - 60 * MIN, "step_ms": MIN}}}) == minute
    for bad in (None, {}, {"state": {"trend": {"start": "x", "step_ms": MIN}}},
                {"state": {"trend": {"start": True, "step_ms": MIN}}}, {"state": {"trend": {"start": 1, "step_ms": 5}}}):
        assert replay.trend_end(bad) is None


@pytest.mark.timeout(420)
def test_replayed_pages_pass_axe_in_both_languages(replayed, dash_duo):
    """The banner, its speed buttons and scrubber meet WCAG 2.2 AA as the live pages do (tests/test_accessibility.py)."""
    from tests.test_accessibility import axe_violations, html_lang, open_page

    today, then, _ = replayed
    dash_duo.start_server(today)
    sign_in(dash_duo, today, "/", role="officer")
    at = quote(iso(then, TZ))
    found = {}
    for lang in ("zh", "en"):
        for path in (f"/?at={at}&speed=0", f"/wall?at={at}&speed=1"):
            open_page(dash_duo, path, "#replay-banner")
            want = "en" if lang == "en" else "zh-CN"
            if html_lang(dash_duo) != want:  # the desk's switch; the wall (no controls) follows the browser's choice
                dash_duo.find_element("#lang-toggle").click()
            wait_for(lambda: html_lang(dash_duo) == want, message=lang)
            dash_duo.wait_for_element("#city-map .js-plotly-plot", timeout=20)
            violations = axe_violations(dash_duo)
            if violations:
                found[f"{path} {lang}"] = violations
    assert found == {}, "\n".join(f"{page}: {v}" for page, vs in found.items() for v in vs)


def test_a_replay_address_is_drawn_as_replay_and_a_bad_one_says_why(app):
    make_user(app, "v", "viewer")
    client = app.server.test_client()
    assert client.post("/api/session", json={"username": "v", "password": TEST_PASSWORD}).status_code == 200
    at = quote(iso(now_ms() - 3_600_000, TZ))
    banner = "历史回放 · REPLAY · 非实时"
    for path in ("/", "/wall"):
        live = client.get(path).get_data(as_text=True)
        assert banner not in live  # a live page never carries the banner
        replayed = client.get(f"{path}?at={at}&speed=15").get_data(as_text=True)
        assert banner in replayed and "15× 速度" in replayed
        for bad, says in (("yesterday", "回放时刻格式有误"), (quote(iso(now_ms() + 3_600_000, TZ)), "不能晚于"),
                          (f"{at}&speed=7", "回放速度须为")):
            page = client.get(f"{path}?at={bad}").get_data(as_text=True)
            assert says in page and banner not in page, (path, bad)


def then_alerts(app, then: int) -> None:
    """Write alerts with their audit trails around ``then``: one firing then (acknowledged and resolved after),
    one acknowledged then, one resolved before, one fired after; Futian's but one of Luohu's."""
    from sqlalchemy import insert

    from dashboard.storage.models import alert_events, alerts

    # (title, district, fired, acknowledged, resolved): minutes from then, None for never
    cases = [("firing-then", "440304", -10, 5, 20), ("acked-then", "440303", -30, -20, None),
             ("resolved-before", "440304", -60, None, -5), ("fired-after", "440304", 3, None, None)]
    with app.server.extensions["panorama"].engine.begin() as conn:
        for i, (title, district, fired, acked, resolved) in enumerate(cases):
            at = {k: None if v is None else then + v * MIN for k, v in
                  (("fired", fired), ("acked", acked), ("resolved", resolved))}
            status = "resolved" if resolved is not None else "acknowledged" if acked is not None else "firing"
            aid = conn.execute(insert(alerts).values(
                rule="aqi_moderate", scope=f"district:{district}:{i}", level="orange", status=status,
                district=district, started_ms=at["fired"] - MIN, fired_ms=at["fired"], resolved_ms=at["resolved"],
                value=180, title=title, title_en=title, updated_ms=now_ms(), version=3)).inserted_primary_key[0]
            trail = [("pending", at["fired"] - MIN), ("firing", at["fired"]), ("acknowledged", at["acked"]),
                     ("resolved", at["resolved"])]
            conn.execute(insert(alert_events), [
                {"alert_id": aid, "actor": "system", "at_ms": when, "from_status": None, "to_status": to,
                 "code": to} for to, when in trail if when is not None])


def test_a_replayed_minute_carries_the_alerts_open_then_and_where_each_unit_stood(app):
    """SPEC section 12: the replayed page's state has the alerts open at that minute (with their status then)
    and each unit where its track put it then, scoped as the reader's socket snapshot would have been."""
    from tests.test_district_scope import district_user
    from tests.test_units import feed_units, report

    then = yesterday_minute()
    # pc-luohu-01 reported yesterday up to 2 minutes before, and today somewhere else; pc-luohu-02 only today;
    # fe-futian-01 (fire) yesterday, on a task
    feed_units(app, [report("pc-luohu-01", ts=then - 4 * MIN, lat=22.561, lon=114.121),
                     report("pc-luohu-01", ts=then - 2 * MIN, lat=22.562, lon=114.122, status="en_route")])
    feed_units(app, [report("pc-luohu-01", ts=now_ms(), lat=22.6, lon=114.2),
                     report("pc-luohu-02", ts=now_ms(), lat=22.6, lon=114.2)])
    then_alerts(app, then)
    at = quote(iso(then, TZ))

    client, _ = session(app, "viewer")
    live = client.get(f"/api/summary?live=1&window=1h&at={at}").get_json()["live"]
    assert {a["title"]: a["status"] for a in live["alerts"]} == {"firing-then": "firing",
                                                                "acked-then": "acknowledged"}
    assert all(a["resolved_at"] is None and a["title_en"] for a in live["alerts"])
    units = {u["unit"]: u for u in live["units"]}
    assert set(units) == {"pc-luohu-01"}  # pc-luohu-02 was not seen then
    assert (units["pc-luohu-01"]["lat"], units["pc-luohu-01"]["lon"], units["pc-luohu-01"]["status"]) == (
        22.562, 114.122, "en_route")
    assert units["pc-luohu-01"]["updated_at"] == iso(then - 2 * MIN, TZ)
    # a minute more than ten after its last point: not known to be anywhere
    later = quote(iso(then + 11 * MIN, TZ))
    assert client.get(f"/api/summary?live=1&window=1h&at={later}").get_json()["live"]["units"] == []

    # a liaison: their department's units only (fire has none then); a district centre: its district's
    liaison, _ = session(app, "liaison")
    assert liaison.get(f"/api/summary?live=1&window=1h&at={at}").get_json()["live"]["units"] == []
    luohu, _ = district_user(app, "lh-replay", "viewer", "440303")
    mine = luohu.get(f"/api/summary?live=1&window=1h&at={at}").get_json()["live"]
    assert [a["title"] for a in mine["alerts"]] == ["acked-then"]
    assert [u["unit"] for u in mine["units"]] == ["pc-luohu-01"]
    futian, _ = district_user(app, "ft-replay", "viewer", "440304")
    theirs = futian.get(f"/api/summary?live=1&window=1h&at={at}").get_json()["live"]
    assert [a["title"] for a in theirs["alerts"]] == ["firing-then"] and theirs["units"] == []


@pytest.mark.timeout(150)
def test_the_replayed_wall_shows_the_alerts_and_units_of_then_and_plays_them_on(app, dash_duo):
    from tests.test_alert_list import listed
    from tests.test_units import feed_units, report

    then = yesterday_minute()
    feed_units(app, [report("pc-luohu-01", ts=then - 3 * MIN, lat=22.571, lon=114.131)])
    feed_units(app, [report("pc-luohu-01", ts=now_ms(), lat=22.6, lon=114.2)])
    then_alerts(app, then)
    dash_duo.start_server(app)
    sign_in(dash_duo, app, path="/wall", role="officer")
    dash_duo.driver.get(dash_duo.server_url + f"/wall?at={quote(iso(then, TZ))}&speed=0")
    dash_duo.wait_for_element("#replay-banner", timeout=20)
    pos = wait_for(lambda: dash_duo.driver.execute_script(
        "const g = document.querySelector('#unit-layer [data-unit=\"pc-luohu-01\"]'); return g && g.dataset.pos"),
        timeout=20, message="the unit on the replayed wall")
    assert pos == "22.57100,114.13100"  # where it stood then, not where it is now
    # the alerts open then, as they stood then (the server's first paint), with nothing to acknowledge
    assert [(r["title"], r["status"]) for r in listed(dash_duo)] == [("firing-then", "预警中"), ("acked-then", "已确认")]
    assert not any(r["ack"] for r in listed(dash_duo))
    # played at 60x: a replayed minute a second; the list follows the minutes (drawn in the page from each one's state)
    dash_duo.driver.get(dash_duo.server_url + f"/wall?at={quote(iso(then, TZ))}&speed=60")
    dash_duo.wait_for_element("#replay-banner", timeout=20)
    # (firing-then is resolved 20 replayed minutes on, 20 s at 60x; fired-after fires 3 minutes on)
    wait_for(lambda: [(r["title"], r["status"]) for r in listed(dash_duo)] == [
        ("fired-after", "预警中"), ("acked-then", "已确认")], timeout=40, message="the alerts of 20 minutes later")
