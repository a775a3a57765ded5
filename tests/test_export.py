"""Exports of the drill-down's events table (CSV, Excel): what the table shows with its filters and sort, streamed
page by page, scoped like the JSON route, Chinese that Excel opens (a UTF-8 BOM)."""

from __future__ import annotations

import csv
import io
import time

import pytest
from openpyxl import load_workbook

from callbacks.district import table_rows
from dashboard.panorama import district as district_data
from dashboard.panorama import export
from dashboard.storage import queries
from tests.helpers import TEST_PASSWORD, make_event, make_user
from tests.test_api import ingest_now

ROLES_THAT_VIEW = ("viewer", "officer", "commander", "liaison", "admin")
STREETS = ("园岭街道", "沙头街道", "华富街道")


def _ago(minutes: float) -> int:
    return int(time.time() * 1000 - minutes * 60_000)


@pytest.fixture
def seeded(make_app, redis_client):
    """An app with 40 of Futian's events in the last hour, one of Luohu, and a signed-in viewer."""
    app = make_app()
    evs = [make_event(n, ts=_ago(55 - n), severity=1 + n % 4, kind=("congestion", "accident")[n % 2],
                      street=STREETS[n % 3], title=f"福田事件 {n:02d} 车流", value=float(n), unit="辆")
           for n in range(40)]
    evs.append(make_event(99, ts=_ago(5), district="luohu", title="罗湖的"))
    ingest_now(app, {"traffic": evs})
    client = app.server.test_client()
    make_user(app, "vera", "viewer")
    assert client.post("/api/session", json={"username": "vera", "password": TEST_PASSWORD}).status_code == 200
    return app, client


def table_shows(app, filter_query: str, sort_by: list[dict], lang: str, window: str = "1h",
                size: int = 7) -> list[dict]:
    """Return every row the drill-down's table shows, page after page, as its callback draws them."""
    svc = app.server.extensions["panorama"]
    district = svc.city.resolve("futian")
    start, end = queries.window_bounds(svc.clock(), queries.WINDOWS[window])
    filters = district_data.street_filters(district_data.parse_filter(filter_query), svc.city, district.code)
    sort, _ = district_data.table_sort(sort_by, start, end)
    rows, cursor = [], None
    with svc.read() as conn:
        while True:
            page, cursor = district_data.table_page(conn, district.code, start, end, sort, size, cursor, filters,
                                                    svc.city)
            rows += table_rows(page, lang, svc.config["PANORAMA_TZ"], svc.city)
            if cursor is None:
                return rows


def csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), "no UTF-8 BOM: Excel would read the Chinese as mojibake"
    return list(csv.reader(io.StringIO(body[3:].decode("utf-8"))))


def as_table(exported: list[list], columns=export.EVENT_COLUMNS) -> list[dict]:
    """Return exported rows keyed like the table's, the time as the table shows it (without the year)."""
    out = []
    for row in exported:
        cells = dict(zip(columns, row))
        cells["time"] = cells["time"][5:]  # the file keeps the year: "2026-12-06 08:30:00" -> "12-06 08:30:00"
        cells["severity"] = int(cells["severity"])
        out.append(cells)
    return out


def shown(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "id"} for r in rows]


CASES = [
    ("", [], "zh"),
    ("{severity} >= 3 && {street} contains 园岭", [{"column_id": "severity", "direction": "desc"}], "zh"),
    ("{kind} = 交通事故", [{"column_id": "time", "direction": "asc"}], "en"),
    ("{title} contains 车流", [{"column_id": "title", "direction": "asc"}], "zh"),
    ("{street} = Yuanling", [{"column_id": "street", "direction": "asc"}], "en"),  # unserved sort: newest first
]


@pytest.mark.parametrize("filter_query, sort_by, lang", CASES)
def test_csv_is_what_the_table_shows_with_its_filters_and_sort(seeded, filter_query, sort_by, lang):
    app, client = seeded
    expected = shown(table_shows(app, filter_query, sort_by, lang))
    assert expected, "the case shows no rows: it would prove nothing"
    query = {"window": "1h", "filter": filter_query, "lang": lang}
    if sort_by:
        query["sort_by"] = f"{sort_by[0]['column_id']}:{sort_by[0]['direction']}"
    res = client.get("/api/districts/futian/events.csv", query_string=query)
    assert res.status_code == 200, res.get_data(as_text=True)
    assert res.is_streamed and res.mimetype == "text/csv" and "attachment" in res.headers["Content-Disposition"]
    rows = csv_rows(res.get_data())
    assert rows[0] == export.headings(export.EVENT_COLUMNS, lang)
    assert as_table(rows[1:]) == expected
    assert int(res.headers["X-Export-Rows"]) == len(expected)


@pytest.mark.parametrize("filter_query, sort_by, lang", CASES[:3])
def test_xlsx_is_what_the_table_shows_too(seeded, filter_query, sort_by, lang):
    app, client = seeded
    expected = shown(table_shows(app, filter_query, sort_by, lang))
    query = {"window": "1h", "filter": filter_query, "lang": lang}
    if sort_by:
        query["sort_by"] = f"{sort_by[0]['column_id']}:{sort_by[0]['direction']}"
    res = client.get("/api/districts/futian/events.xlsx", query_string=query)
    assert res.status_code == 200, res.get_data(as_text=True)
    assert res.mimetype == export_xlsx_type()
    sheet = load_workbook(io.BytesIO(res.get_data()), read_only=True).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == export.headings(export.EVENT_COLUMNS, lang)
    assert as_table([[("" if c is None else c) for c in r] for r in rows[1:]]) == expected


def export_xlsx_type() -> str:
    from dashboard.web.exports import XLSX

    return XLSX


def test_the_api_parameters_are_honoured_as_by_the_json_route(seeded):
    app, client = seeded
    args = "window=1h&domain=traffic&kind=accident&severity_min=2&sort=ts"
    json_rows, cursor = [], None
    while True:
        res = client.get(f"/api/districts/futian/events?{args}&limit=5" + (f"&cursor={cursor}" if cursor else ""))
        json_rows += res.json["events"]
        cursor = res.json["next_cursor"]
        if cursor is None:
            break
    rows = csv_rows(client.get(f"/api/districts/futian/events.csv?{args}&lang=zh").get_data())[1:]
    assert [r[5] for r in rows] == [e["title"] for e in json_rows] and len(rows) > 3


def test_exports_are_scoped_like_the_json_route(seeded, make_app):
    app, _ = seeded
    anonymous = app.server.test_client()
    for ext in ("csv", "xlsx"):
        res = anonymous.get(f"/api/districts/futian/events.{ext}")
        assert res.status_code == 401 and res.json["error"]["code"] == "not_signed_in"
    for role in ROLES_THAT_VIEW:
        client = app.server.test_client()
        make_user(app, f"x-{role}", role, "fire" if role == "liaison" else None)
        assert client.post("/api/session", json={"username": f"x-{role}", "password": TEST_PASSWORD}).status_code == 200
        for ext in ("csv", "xlsx"):
            assert client.get(f"/api/districts/futian/events.{ext}").status_code == 200, (role, ext)
    # never another district's events
    body = seeded[1].get("/api/districts/futian/events.csv?window=1h").get_data().decode("utf-8")
    assert "罗湖的" not in body and "福田事件 00" in body


@pytest.mark.parametrize("query, status, code", [
    ("filter={severity} >= lots", 400, "bad_filter"),
    ("sort_by=severity:sideways", 400, "bad_sort_by"),
    ("sort=title&window=24h", 400, "sort_unavailable"),
    ("window=1y", 400, "bad_window"),
    ("lang=fr", 400, "bad_lang"),
    ("domain=weather", 400, "unknown_domain"),
])
def test_bad_parameters_are_400s(seeded, query, status, code):
    _, client = seeded
    for ext in ("csv", "xlsx"):
        res = client.get(f"/api/districts/futian/events.{ext}?{query}")
        assert res.status_code == status and res.json["error"]["code"] == code, (ext, res.json)
    assert client.get("/api/districts/atlantis/events.csv").status_code == 404


def test_an_export_over_the_cap_is_refused_before_a_byte_is_sent(make_app, redis_client):
    app = make_app(PANORAMA_EXPORT_MAX_ROWS=10)
    ingest_now(app, {"traffic": [make_event(n, ts=_ago(30 - n), title=f"t{n}") for n in range(12)]})
    client = app.server.test_client()
    make_user(app, "vera", "viewer")
    client.post("/api/session", json={"username": "vera", "password": TEST_PASSWORD})
    for query in ("", "&q=t1"):  # counted from the rollups; a title search counted from the events
        for ext in ("csv", "xlsx"):
            res = client.get(f"/api/districts/futian/events.{ext}?window=1h{query}")
            if query:  # t1, t10, t11: three
                assert res.status_code == 200
            else:
                assert res.status_code == 400 and res.json["error"]["code"] == "too_many_rows"


def test_a_title_that_looks_like_a_formula_stays_text(make_app, redis_client):
    app = make_app()
    ingest_now(app, {"traffic": [make_event(1, ts=_ago(3), title="=HYPERLINK(\"http://evil\")")]})
    client = app.server.test_client()
    make_user(app, "vera", "viewer")
    client.post("/api/session", json={"username": "vera", "password": TEST_PASSWORD})
    rows = csv_rows(client.get("/api/districts/futian/events.csv?window=1h").get_data())
    assert rows[1][5] == "'=HYPERLINK(\"http://evil\")"
    book = load_workbook(io.BytesIO(client.get("/api/districts/futian/events.xlsx?window=1h").get_data()))
    cell = book.active.cell(row=2, column=6)
    assert cell.value == "=HYPERLINK(\"http://evil\")" and cell.data_type == "s"  # a string, not a formula


def test_pages_are_read_a_chunk_at_a_time_and_never_all_at_once():
    asked = []
    data = list(range(23))

    def read(cursor, n):
        at = cursor or 0
        asked.append(n)
        nxt = at + n if at + n < len(data) else None
        return [{"x": v} for v in data[at:at + n]], nxt

    chunks = list(export.pages(read, max_rows=100, chunk=5))
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 3] and max(asked) == 5
    with pytest.raises(export.TooManyRows):
        list(export.pages(read, max_rows=12, chunk=5))


# ---- the dispatch queue's incidents (/dispatch): its order, its scope, its words

def _incident(app, n: int, kind: str = "fire", severity: int = 3, district: str = "futian") -> dict:
    from dashboard.dispatch import desk

    ingest_now(app, {"incident": [make_event(n, kind=kind, severity=severity, ts=_ago(30 - n), lat=22.54,
                                             lon=114.0 + n * 0.02, district=district, title=f"火情 {n}")]})
    with app.server.extensions["panorama"].engine.connect() as conn:
        return next(r for r in desk.queue(conn) if r["title"] == f"火情 {n}")


@pytest.mark.parametrize("lang", ("zh", "en"))
def test_incidents_export_is_the_dispatch_queue_in_its_order_and_words(make_app, redis_client, lang):
    from dashboard.dispatch import desk
    from dashboard.dispatch.export_rows import INCIDENT_COLUMNS
    from dashboard.core.i18n import state_label

    app = make_app()
    svc = app.server.extensions["panorama"]
    for n, sev in ((1, 2), (2, 4), (3, 3)):
        _incident(app, n, severity=sev, district=("futian", "luohu", "nanshan")[n - 1])
    make_user(app, "olga", "officer")
    client = app.server.test_client()
    client.post("/api/session", json={"username": "olga", "password": TEST_PASSWORD})
    with svc.engine.connect() as conn:
        queue = desk.queue(conn)
    for ext in ("csv", "xlsx"):
        res = client.get(f"/api/incidents.{ext}?lang={lang}")
        assert res.status_code == 200, res.get_data(as_text=True)
        if ext == "csv":
            rows = csv_rows(res.get_data())
        else:
            rows = [list(r) for r in load_workbook(io.BytesIO(res.get_data()), read_only=True).active
                    .iter_rows(values_only=True)]
        assert rows[0] == export.headings(INCIDENT_COLUMNS, lang)
        assert [r[1] for r in rows[1:]] == [q["title"] for q in queue] == ["火情 2", "火情 3", "火情 1"]
        assert [str(r[6]) for r in rows[1:]] == [state_label("open", lang)] * 3
        assert rows[1][2] == ("罗湖区" if lang == "zh" else "Luohu")


def test_a_liaison_exports_only_their_departments_incidents(make_app, redis_client):
    from dashboard.dispatch import board as d
    from dashboard.dispatch import desk

    app = make_app()
    svc = app.server.extensions["panorama"]
    held = _incident(app, 1)
    _incident(app, 2)
    desk.write(svc, d.dispatch, held["id"], ["fire"], "olga", None, _ago(0), svc.city.rules, svc.city)
    make_user(app, "fay", "liaison", "fire")
    client = app.server.test_client()
    client.post("/api/session", json={"username": "fay", "password": TEST_PASSWORD})
    rows = csv_rows(client.get("/api/incidents.csv").get_data())
    assert [r[1] for r in rows[1:]] == ["火情 1"]
    assert app.server.test_client().get("/api/incidents.csv").status_code == 401
    assert client.get("/api/incidents.csv?status=nonsense").status_code == 400


def _read(res) -> list[list]:
    """Return an export's rows, the headings first, from a CSV or an Excel answer."""
    if res.mimetype == "text/csv":
        return csv_rows(res.get_data())
    return [["" if c is None else c for c in r]
            for r in load_workbook(io.BytesIO(res.get_data()), read_only=True).active.iter_rows(values_only=True)]


def _signed_in(app, username: str, role: str, department: str | None = None):
    make_user(app, username, role, department)
    client = app.server.test_client()
    assert client.post("/api/session", json={"username": username, "password": TEST_PASSWORD}).status_code == 200
    return client


# ---- the task board (/dispatch): its filters, its order, its scope, its words

@pytest.mark.parametrize("lang", ("zh", "en"))
def test_tasks_export_is_the_task_board_with_its_filters_in_its_order_and_words(make_app, redis_client, lang):
    from callbacks.dispatch import board_rows
    from dashboard.core.i18n import state_label
    from dashboard.dispatch import board as d
    from dashboard.dispatch import desk
    from dashboard.dispatch.export_rows import TASK_COLUMNS

    app = make_app()
    svc = app.server.extensions["panorama"]
    one, two = _incident(app, 1), _incident(app, 2, kind="flood")
    desk.write(svc, d.dispatch, one["id"], ["fire", "traffic_police"], "olga", None, _ago(0), svc.city.rules,
               svc.city)
    desk.write(svc, d.dispatch, two["id"], ["fire"], "olga", None, _ago(0), svc.city.rules, svc.city)
    client = _signed_in(app, "olga", "officer")
    names = {x["code"]: x["name_en" if lang == "en" else "name"] for x in svc.city.departments}
    order = [x["code"] for x in svc.city.departments]
    for query, department, incident in (("", None, None), ("&department=fire", "fire", None),
                                        (f"&incident={one['id']}", None, one["id"])):
        with svc.engine.connect() as conn:
            rows, incs = board_rows(conn, department, incident)
        board = sorted(rows, key=lambda r: (order.index(r["department"]), r["id"]))  # as board_columns draws it
        for ext in ("csv", "xlsx"):
            res = client.get(f"/api/tasks.{ext}?lang={lang}{query}")
            assert res.status_code == 200, res.get_data(as_text=True)
            got = _read(res)
            assert got[0] == export.headings(TASK_COLUMNS, lang)
            assert [(r[0], r[1], r[2]) for r in got[1:]] == [
                (names[t_["department"]], incs[t_["incident_id"]]["title"], state_label("dispatched", lang, task=True))
                for t_ in board], query
            assert all(r[3] for r in got[1:])  # the acknowledge deadline, as a local time
    assert len(_read(client.get("/api/tasks.csv"))) == 4  # three tasks


def test_a_liaison_exports_only_their_departments_tasks_and_a_viewer_what_it_reads(make_app, redis_client):
    from dashboard.dispatch import board as d
    from dashboard.dispatch import desk

    app = make_app()
    svc = app.server.extensions["panorama"]
    one = _incident(app, 1)
    desk.write(svc, d.dispatch, one["id"], ["fire", "traffic_police"], "olga", None, _ago(0), svc.city.rules,
               svc.city)
    fay = _signed_in(app, "fay", "liaison", "fire")
    rows = _read(fay.get("/api/tasks.csv"))
    assert [r[0] for r in rows[1:]] == [next(x["name"] for x in svc.city.departments if x["code"] == "fire")]
    assert fay.get("/api/tasks.csv?department=traffic_police").status_code == 403  # as GET /api/tasks
    assert fay.get("/api/tasks.xlsx?department=traffic_police").status_code == 403
    assert app.server.test_client().get("/api/tasks.csv").status_code == 401
    assert app.server.test_client().get("/api/alerts.xlsx").status_code == 401
    vera = _signed_in(app, "vera", "viewer")
    assert vera.get("/api/tasks.csv").status_code == vera.get("/api/tasks").status_code == 200
    assert vera.get("/api/tasks.csv?incident=x").status_code == 400
    assert vera.get("/api/tasks.csv?lang=fr").status_code == 400


# ---- /alerts' trail: its filters, its order, its words

@pytest.mark.parametrize("lang", ("zh", "en"))
def test_alerts_export_is_the_trail_with_its_filters(make_app, redis_client, lang):
    from callbacks.alerts_page import Filters, read
    from dashboard.core.i18n import t as say
    from tests.test_alert_list import alerts_of_every_level

    app = make_app()
    svc = app.server.extensions["panorama"]
    alerts_of_every_level(app)
    client = _signed_in(app, "chen", "commander")
    for query, f in (("", Filters()), ("&status=firing", Filters(statuses=["firing"])),
                     ("&level=red,orange&district=futian", Filters(levels=["red", "orange"], district="futian"))):
        shown, _, _ = read(svc, f)  # what the trail shows with these filters
        for ext in ("csv", "xlsx"):
            res = client.get(f"/api/alerts.{ext}?lang={lang}{query}")
            assert res.status_code == 200, res.get_data(as_text=True)
            got = _read(res)
            assert got[0] == export.headings(export.ALERT_COLUMNS, lang)
            assert [(r[0], r[1], r[3]) for r in got[1:]] == [
                (say(f"level_{a['level']}", lang), a["title_en" if lang == "en" else "title"],
                 say(f"alert_{a['status']}", lang)) for a in shown], query
            assert got[1:], query
    assert client.get("/api/alerts.csv?status=nonsense").status_code == 400
    assert client.get("/api/alerts.csv?district=atlantis").status_code == 404
