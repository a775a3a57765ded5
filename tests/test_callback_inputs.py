"""Bad values posted to the district and panorama callbacks answer 400, good ones still 200 (real payloads).

(The router's and the language switch's values are checked in the same way; their tests are the access
matrix's and the callback fuzzer's.)
"""

from __future__ import annotations

import pytest

from tests.helpers import make_event
from tests.test_access_matrix import session
from tests.test_api import ingest_now, now_event


def outputs_of(key: str) -> list[dict]:
    """Return the outputs a renderer names for the callback registered under ``key`` (``..id.prop...id.prop..``)."""
    out = []
    for part in key.strip(".").split("..."):
        ident, _, prop = part.partition(".")
        out.append({"id": ident, "property": prop})
    return out


def payload(app, output_prefix: str, inputs: dict, state: dict, changed: str) -> dict:
    """Return what Dash's renderer posts for the callback whose output key starts with ``output_prefix``."""
    key = next(k for k in app.callback_map if k.startswith(output_prefix))
    outputs = outputs_of(key)

    def props(values: dict) -> list[dict]:
        return [{"id": ident, "property": prop, "value": v} for (ident, prop), v in values.items()]

    return {"output": key, "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": props(inputs), "state": props(state), "changedPropIds": [changed]}


def events_page(app, changed: str = "district-window.value", **over) -> dict:
    values = {"page_current": 0, "sort_by": [], "filter_query": "", "window": "1h", "n_intervals": 1,
              "page_size": 20, "code": "440304", "lang": "zh", **over}
    return payload(app, "..district-events.data...", {
        ("district-events", "page_current"): values["page_current"],
        ("district-events", "sort_by"): values["sort_by"],
        ("district-events", "filter_query"): values["filter_query"],
        ("district-window", "value"): values["window"],
        ("district-refresh", "n_intervals"): values["n_intervals"]}, {
        ("district-events", "page_size"): values["page_size"],
        ("district-code", "data"): values["code"],
        ("lang", "data"): values["lang"],
        ("district-events-paging", "data"): values.get("paging")}, changed)


def refresh(app, **over) -> dict:
    values = {"n_intervals": 1, "window": "1h", "code": "futian", "lang": "en", "drawn": None, **over}
    return payload(app, "..district-kpi-security.children", {
        ("district-refresh", "n_intervals"): values["n_intervals"],
        ("district-window", "value"): values["window"]}, {
        ("district-code", "data"): values["code"],
        ("lang", "data"): values["lang"], ("district-drawn", "data"): values["drawn"]}, "district-refresh.n_intervals")


def probe(app, n) -> dict:
    return payload(app, "live-probe.data", {("live-probe-ask", "data"): n}, {}, "live-probe-ask.data")


BAD_EVENTS_PAGE = [
    {"window": "90d"}, {"window": None}, {"window": 60},
    {"paging": "x"}, {"paging": {"key": [], "cursors": []}}, {"paging": {"key": [], "cursors": ["x" * 2000]}},
    {"paging": {"key": [], "cursors": [None] * 5001}}, {"paging": {"key": [], "cursors": [None], "more": 1}},
    {"paging": {"key": ["1h", "", "", 20], "cursors": [None, "abc"]}, "page_current": 1},  # a forged cursor
    {"sort_by": "time"}, {"sort_by": {"column_id": "time"}}, {"sort_by": [1]},
    {"sort_by": [{"column_id": "secret", "direction": "asc"}]}, {"sort_by": [{"column_id": "time", "direction": "up"}]},
    {"page_size": 1e30}, {"page_size": 0}, {"page_size": 201}, {"page_size": "20"}, {"page_size": True},
    {"page_current": -1}, {"page_current": 1.5}, {"page_current": 1e30}, {"page_current": "2"},
    {"filter_query": "{severity} > 1e999"}, {"filter_query": "{severity} = NaN"}, {"filter_query": "{severity} = lots"},
    {"filter_query": 5}, {"filter_query": ["{severity} = 1"]}, {"filter_query": "{title} contains " + "x" * 3000},
    {"code": "atlantis"}, {"code": ["440304"]}, {"code": None},
    {"n_intervals": -1}, {"n_intervals": "1"},
]
GOOD_EVENTS_PAGE = [
    {}, {"window": "24h", "page_size": 200}, {"page_size": None, "page_current": None, "sort_by": None},
    {"window": "30d"}, {"paging": {"key": ["1h", "-ts", "", 20], "cursors": [None, "abc"]}, "page_current": 1},
    {"filter_query": "{severity} >= 3 && {street} = 华强北街道"}, {"filter_query": "{severity} < 2.5"},
    {"sort_by": [{"column_id": "value", "direction": "asc"}]}, {"code": "futian", "lang": None},
    {"lang": "fr"},  # the language only picks texts: anything but zh / en reads Chinese, as on every callback
    {"filter_query": "{nope} = 1"},  # a clause the server cannot serve is dropped, as before
]
BAD_REFRESH = [{"window": "90d"}, {"window": None}, {"code": "atlantis"}, {"code": 440304}, {"code": None},
               {"n_intervals": 1e30}, {"n_intervals": "1"}, {"drawn": {"streets": "x" * 33}},
               {"drawn": {"secret": "x"}}, {"drawn": ["streets"]}, {"drawn": {"trend": 5}}]


@pytest.fixture
def viewer(make_app, redis_client):
    """Give an app with a few events in Futian and a signed-in viewer's client and CSRF token."""
    app = make_app(BROWSER_PATH="none")
    ingest_now(app, {"traffic": [now_event(i, street="华强北街道", severity=1 + i % 4, value=float(i))
                                 for i in range(6)],
                     "incident": [make_event(9, kind="fire", severity=3, ts=now_event(0)["ts"])]})
    client, csrf = session(app, "viewer")
    return app, client, csrf


def post(client, csrf, body):
    return client.post("/_dash-update-component", json=body, headers={"X-CSRF-Token": csrf})


def refused(res) -> bool:
    """Tell whether a callback answer is a JSON 400 in the API's error shape."""
    return res.status_code == 400 and (res.get_json(silent=True) or {}).get("error", {}).get("code") == "bad_request"


def test_bad_events_table_inputs_are_400(viewer):
    app, client, csrf = viewer
    answers = {repr(bad): post(client, csrf, events_page(app, **bad)) for bad in BAD_EVENTS_PAGE}
    assert {bad: res.status_code for bad, res in answers.items() if not refused(res)} == {}


def test_good_events_table_inputs_still_answer(viewer):
    app, client, csrf = viewer
    for good in GOOD_EVENTS_PAGE:
        res = post(client, csrf, events_page(app, **good))
        assert res.status_code == 200, (good, res.get_data(as_text=True)[:300])
    # 200 rows a page is allowed and served: the table's page_size is bounded like the API's limit
    res = post(client, csrf, events_page(app, page_size=200))
    rows = res.get_json()["response"]["district-events"]["data"]
    assert len(rows) == 7  # six traffic events and the fire
    # a sort keyset paging cannot serve over the window (by value) says so and lists the newest first
    res = post(client, csrf, events_page(app, sort_by=[{"column_id": "value", "direction": "asc"}]))
    answer = res.get_json()["response"]
    assert "newest first" not in answer["district-events-note"]["children"]  # the page's language is zh
    assert "已按时间从新到旧排列" in answer["district-events-note"]["children"]
    newest = post(client, csrf, events_page(app)).get_json()["response"]
    assert answer["district-events"]["data"] == newest["district-events"]["data"]
    assert "已按时间" not in newest["district-events-note"]["children"]
    # a title sort over a day is not served: newest first instead, and the note names the hour's limit
    for lang, words in (("zh", "按标题排序仅限 60 分钟"), ("en", "limited to windows of at most 60 minutes")):
        res = post(client, csrf, events_page(app, window="24h", lang=lang,
                                             sort_by=[{"column_id": "title", "direction": "asc"}]))
        answer = res.get_json()["response"]
        assert words in answer["district-events-note"]["children"]
        assert answer["district-events"]["data"] == post(client, csrf, events_page(app, window="24h", lang=lang)) \
            .get_json()["response"]["district-events"]["data"]
    titled = post(client, csrf, events_page(app, sort_by=[{"column_id": "title", "direction": "asc"}])).get_json()
    assert "60" not in titled["response"]["district-events-note"]["children"]  # an hour: sorted by title
    titles = [r["title"] for r in titled["response"]["district-events"]["data"]]
    assert titles == sorted(titles)
    # a fractional severity compares as a number: < 2.5 is severities 1 and 2
    res = post(client, csrf, events_page(app, filter_query="{severity} < 2.5"))
    assert sorted(r["severity"] for r in res.get_json()["response"]["district-events"]["data"]) == [1, 1, 2, 2]


def test_a_page_asked_for_is_served_even_when_the_clock_supersedes_the_click(viewer):
    """An officer's page click whose answer Dash dropped (the refresh fired before it returned) is served by the tick."""
    app, client, csrf = viewer
    first = post(client, csrf, events_page(app, page_size=3)).get_json()["response"]
    shown0 = first["district-events-paging"]["data"]
    assert shown0["page"] == 0 and len(first["district-events"]["data"]) == 3
    clicked = post(client, csrf, events_page(app, "district-events.page_current", page_size=3, page_current=1,
                                             paging=shown0)).get_json()["response"]
    page1 = clicked["district-events"]["data"]
    assert len(page1) == 3 and not {r["id"] for r in page1} & {r["id"] for r in first["district-events"]["data"]}
    # the click's answer was dropped: the table still holds page 0's paging when the refresh asks for page 1
    tick = post(client, csrf, events_page(app, "district-refresh.n_intervals", n_intervals=2, page_size=3,
                                          page_current=1, paging=shown0))
    assert tick.status_code == 200
    assert tick.get_json()["response"]["district-events"]["data"] == page1
    # once page 1 is what the table shows, the tick leaves it alone: only the newest page follows the clock
    shown1 = clicked["district-events-paging"]["data"]
    assert shown1["page"] == 1
    still = post(client, csrf, events_page(app, "district-refresh.n_intervals", n_intervals=3, page_size=3,
                                           page_current=1, paging=shown1))
    assert still.status_code == 200 and still.get_json()["response"] == {}  # every output no_update


def test_bad_drill_down_refresh_inputs_are_400(viewer):
    app, client, csrf = viewer
    answers = {repr(bad): post(client, csrf, refresh(app, **bad)) for bad in BAD_REFRESH}
    assert {bad: res.status_code for bad, res in answers.items() if not refused(res)} == {}


def test_good_drill_down_refresh_answers(viewer):
    app, client, csrf = viewer
    for good in ({}, {"window": "15m", "lang": None, "n_intervals": None}, {"code": "440304", "window": "24h"},
                 {"lang": {}}):
        res = post(client, csrf, refresh(app, **good))
        assert res.status_code == 200, (good, res.get_data(as_text=True)[:300])
    assert res.get_json()["response"]["district-kpi-traffic"]["children"] == "6"


def test_the_refresh_redraws_only_what_changed(viewer):
    """Each 5 s the drill-down asks again; a graph or list whose data did not change is not sent (a Plotly redraw
    of an unchanged chart was the page's longest task), while the counts and the time always are."""
    app, client, csrf = viewer
    first = post(client, csrf, refresh(app)).get_json()["response"]
    parts = ("district-streets", "district-map", "district-trend", "district-incidents", "event-ticker")
    assert all(p in first for p in parts)
    again = post(client, csrf, refresh(app, n_intervals=2, drawn=first["district-drawn"]["data"])).get_json()["response"]
    assert not any(p in again for p in parts), sorted(again)
    assert again["district-kpi-traffic"]["children"] == "6" and "district-updated" in again
    ingest_now(app, {"traffic": [now_event(99, street="华强北街道", severity=2, value=1.0)]})
    moved = post(client, csrf, refresh(app, n_intervals=3, drawn=first["district-drawn"]["data"])).get_json()["response"]
    assert "district-streets" in moved and "district-map" in moved and "event-ticker" in moved, sorted(moved)
    assert moved["district-kpi-traffic"]["children"] == "7"
    other = post(client, csrf, refresh(app, window="24h", drawn=moved["district-drawn"]["data"])).get_json()["response"]
    assert all(p in other for p in parts), "another window redraws everything"


def test_probe_inputs_are_checked(viewer):
    app, client, csrf = viewer
    answers = {repr(bad): post(client, csrf, probe(app, bad)) for bad in ("1", -1, 1e30, [1])}
    assert {bad: res.status_code for bad, res in answers.items() if not refused(res)} == {}
    for good in (None, 0, 7):
        assert post(client, csrf, probe(app, good)).status_code == 200, good


def test_a_redrawn_queue_of_500_incidents_is_a_callback_request_not_a_400(make_app, redis_client):
    """The dispatch queue draws up to 500 incidents (desk.QUEUE_ROWS); when it is drawn anew (a language switch,
    a new incident) the renderer posts the selection callback with every button's n_clicks changed: 500 changed
    properties, which a cap of 200 refused with a 400 (a console error on every redraw of a busy queue)."""
    import json

    from dashboard.dispatch.desk import QUEUE_ROWS

    app = make_app()
    client, csrf = session(app, "officer")
    key = next(k for k in app.callback_map if k.startswith("dispatch-selected.data"))
    buttons = [{"index": i, "type": "dispatch-incident"} for i in range(1, QUEUE_ROWS + 1)]
    res = client.post("/_dash-update-component", headers={"X-CSRF-Token": csrf}, json={
        "output": key, "outputs": {"id": "dispatch-selected", "property": "data"},
        "inputs": [[{"id": b, "property": "n_clicks", "value": 0} for b in buttons]],
        "state": [{"id": "dispatch-selected", "property": "data", "value": None}],
        "changedPropIds": [json.dumps(b, sort_keys=True, separators=(",", ":")) + ".n_clicks" for b in buttons]})
    assert res.status_code in (200, 204), res.get_data(as_text=True)[:300]


def test_a_click_on_the_incident_already_selected_selects_nothing_anew(make_app, redis_client):
    """Set again, the selection would fire the detail's callback anew and Dash would drop the answer on its way
    (issue 15): clicked again and again while a loaded server drew it, the detail never came."""
    import json

    app = make_app()
    client, csrf = session(app, "officer")
    key = next(k for k in app.callback_map if k.startswith("dispatch-selected.data"))
    buttons = [{"index": i, "type": "dispatch-incident"} for i in (7, 9)]

    def click(index: int, current: int | None):
        return client.post("/_dash-update-component", headers={"X-CSRF-Token": csrf}, json={
            "output": key, "outputs": {"id": "dispatch-selected", "property": "data"},
            "inputs": [[{"id": b, "property": "n_clicks", "value": int(b["index"] == index)} for b in buttons]],
            "state": [{"id": "dispatch-selected", "property": "data", "value": current}],
            "changedPropIds": [json.dumps({"index": index, "type": "dispatch-incident"}, sort_keys=True,
                                          separators=(",", ":")) + ".n_clicks"]})

    res = click(9, 7)
    assert res.status_code == 200 and res.get_json()["response"]["dispatch-selected"]["data"] == 9
    again = click(9, 9)  # no update: nothing fires again
    assert again.status_code == 204 or "dispatch-selected" not in (again.get_json() or {}).get("response", {}), \
        again.get_data(as_text=True)
