"""Every word in the reader's language, in a real headless Chromium: the dispatch timeline and the live ticker."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import insert

from dashboard.dispatch import board as d
from dashboard.dispatch import desk, escalation
from dashboard.dispatch.deadlines import DeadlineChecker
from dashboard.storage.models import task_events
from tests.helpers import city_clock, make_event, open_incident_detail, sign_in, wait_for, wait_for_graphs
from tests.test_api import ingest_now
from tests.test_pages import own_updates_channel

MIN = 60_000
# What a stored code looks like on screen: a department code, a status with an underscore, a rule's id.
CODE = re.compile(r"\b[a-z]+_[a-z0-9_]+\b|\b(?:open|dispatched|acknowledged|on_scene|in_progress|resolved|closed|"
                  r"rejected|escalated|system)\b")


def js(dash_duo, script, *args):
    return dash_duo.driver.execute_script(script, *args)


def timeline(dash_duo) -> list[str]:
    return js(dash_duo, "return [...document.querySelectorAll('#dispatch-timeline > li')].map(e => e.textContent)")


def to_english(dash_duo) -> None:
    """Switch the page to English with its own button, and wait until it is drawn in English."""
    js(dash_duo, "document.querySelector('#lang-toggle').click()")
    wait_for(lambda: js(dash_duo, "return document.documentElement.lang") == "en", message="the page in English")


@pytest.mark.timeout(180)
def test_the_dispatch_timeline_is_all_words_of_the_readers_language(make_app, redis_client, dash_duo):
    app = make_app(PANORAMA_POLL_MS=700, PANORAMA_CLOCK=city_clock("10:00"))
    svc = app.server.extensions["panorama"]
    now = svc.clock()
    ingest_now(app, {"incident": [make_event(1, kind="fire", severity=3, ts=now - 20 * MIN, district="nanshan",
                                             street="南头街道", title="火情 南头")]})
    with svc.engine.connect() as conn:
        inc = desk.queue(conn)[0]
    # dispatch (the fire brigade and Nanshan's government), acknowledge, overdue, escalate, resolve on behalf
    fire, gov = desk.write(svc, d.dispatch, inc["id"], ["fire", "district_440305"], "olga", "两台消防车",
                           now - 20 * MIN, svc.city.rules, svc.city).tasks
    desk.write(svc, d.transition, fire["id"], "acknowledged", 1, "fay", None, now - 19 * MIN)
    DeadlineChecker(svc).check_once(at_ms=now - 5 * MIN)  # Nanshan's government never acknowledged
    desk.write(svc, escalation.escalate, inc["id"], gov["id"], "olga", now - 4 * MIN, svc.city)
    desk.write(svc, d.resolve_for, gov["id"], 1, "olga", "街道王主任电话告知", now - 2 * MIN)
    # rows an old build wrote as free text, still in the database
    with svc.engine.begin() as conn:
        conn.execute(insert(task_events), [
            {"incident_id": inc["id"], "task_id": gov["id"], "action": "escalate", "actor": "system",
             "at_ms": now - MIN, "from_state": "dispatched", "to_state": "dispatched",
             "note": "not acknowledged by the deadline", "code": None, "params": None},
            {"incident_id": inc["id"], "task_id": None, "action": "status", "actor": "olga", "at_ms": now - MIN,
             "from_state": "in_progress", "to_state": "in_progress", "note": "district_440305 resolved",
             "code": None, "params": None},
            {"incident_id": inc["id"], "task_id": None, "action": "escalate", "actor": "cmdr", "at_ms": now - MIN,
             "from_state": "in_progress", "to_state": "in_progress",
             "note": "指挥长升级 / escalated by the commander", "code": None, "params": None}])
    dash_duo.start_server(app)
    dash_duo.get_logs()
    sign_in(dash_duo, app, "/dispatch", username="olga-zh")
    open_incident_detail(dash_duo, inc["id"], "火情 南头")
    wait_for(lambda: len(timeline(dash_duo)) >= 12, message="the whole timeline")
    zh = timeline(dash_duo)
    text = "\n".join(zh)
    for said in ("签收", "未按时签收", "升级：由深圳市应急管理局协调", "代南山区人民政府登记办结 — 街道王主任电话告知",
                 "南山区人民政府：已办结", "指挥长升级", "系统", "两台消防车", "深圳市消防救援支队"):
        assert said in text, (said, zh)
    assert not CODE.search(text), text
    # no English in Chinese but the people's user names
    assert not re.search(r"[A-Za-z]{2,}", re.sub(r"\b(olga|fay|cmdr)\b", "", text)), text
    place = js(dash_duo, "return document.querySelector('.detail-place').textContent")
    assert "南山区 南头街道" in place

    to_english(dash_duo)  # the page drawn anew on the same incident (the address names it): nothing to pick again
    wait_for(lambda: len(timeline(dash_duo)) == len(zh), message="the whole timeline in English")
    wait_for(lambda: "Acknowledged" in "\n".join(timeline(dash_duo)), message="the English timeline")
    en = "\n".join(timeline(dash_duo))
    for said in ("not acknowledged by the deadline", "escalated: Shenzhen Emergency Management Bureau coordinates",
                 "resolution recorded on behalf of Nanshan District Government — 街道王主任电话告知",
                 "Nanshan District Government: Resolved", "escalated by the commander", "system",
                 "Shenzhen Fire and Rescue Detachment", "Awaiting acknowledgement → Acknowledged"):
        assert said in en, (said, en)
    # no codes, and no Chinese but what people wrote (the notes) and the incident's own title
    assert not re.search(r"\b[a-z]+_[a-z0-9_]+\b", en), en
    assert not re.search(r"[\u4e00-\u9fff]", en.replace("两台消防车", "").replace("街道王主任电话告知", "")), en
    place = js(dash_duo, "return document.querySelector('.detail-place').textContent")
    assert "Nanshan Nantou" in place and "街道" not in place
    assert dash_duo.get_logs() == []


@pytest.mark.timeout(120)
def test_the_english_ticker_names_streets_in_pinyin_live_over_the_gateway(make_app, redis_client, dash_duo,
                                                                         monkeypatch):
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    channel = own_updates_channel(monkeypatch)
    port = free_port()
    # the fallback poll would come only after ten minutes: the rows below came over the socket
    app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/", PANORAMA_POLL_MS=600_000)
    dash_duo.start_server(app)
    sign_in(dash_duo, app)
    gw = Gateway(app.server.extensions["panorama"], port=port, origins=[dash_duo.server_url.rstrip("/")],
                 channel=channel)
    gw.start()
    try:
        dash_duo.driver.get(dash_duo.server_url + "/")
        # the language switch redraws the page: switch once its graphs are drawn, not while they mount
        wait_for_graphs(dash_duo)
        to_english(dash_duo)
        wait_for_graphs(dash_duo)
        # the English page's own socket is live ("live" alone: the Chinese page reads "实时 · live")
        dash_duo.wait_for_text_to_equal("#live-indicator", "live", timeout=15)
        js(dash_duo, "window.__same_page = true")
        ts = int(time.time() * 1000)
        ingest_now(app, {"traffic": [make_event(1, district="nanshan", street="南头街道", ts=ts, title="Jam 1"),
                                     make_event(2, district="futian", street="华强北", ts=ts - 1000, title="Jam 2"),
                                     make_event(3, district="futian", street="某某路", ts=ts - 2000, title="Jam 3")]})
        places = lambda: js(dash_duo, "return [...document.querySelectorAll('#event-ticker > li .ticker-place')]"  # noqa: E731
                                      ".map(e => e.textContent)")
        wait_for(lambda: places()[:3] == ["Nanshan · Nantou", "Futian · Huaqiangbei", "Futian · 某某路"],
                 message="pinyin street names on the English ticker")
        assert js(dash_duo, "return document.querySelector('#live-indicator').className") == "conn conn-live"
        assert js(dash_duo, "return window.__same_page === true")  # pushed to this page, not drawn anew
    finally:
        gw.stop()
    assert dash_duo.get_logs() == []
