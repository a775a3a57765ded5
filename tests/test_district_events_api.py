"""GET /api/districts/<code>/events: filters, title search, every sort, cursor paging (never OFFSET), errors."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event

from tests.helpers import TEST_PASSWORD, make_event, make_user
from tests.test_api import ingest_now

SORTS = ("-ts", "ts", "-severity", "title")
SEVERITIES = (1, 3, 2, 4, 1, 2, 3, 1, 4, 2, 1)


def _ago(minutes: float) -> int:
    return int(time.time() * 1000 - minutes * 60_000)


@pytest.fixture(params=["postgresql", "sqlite"])
def seeded(request, make_app, redis_client, tmp_path):
    """An app with 11 of Futian's events in the last hour (two share a second), one older, one of Luohu."""
    overrides = {} if request.param == "postgresql" else {"DATABASE_URL": f"sqlite:///{tmp_path / 'e.db'}"}
    app = make_app(**overrides)
    same = _ago(5)
    evs = [make_event(n, ts=same if n in (3, 4) else _ago(50 - 4 * n), severity=SEVERITIES[n],
                      kind="congestion" if n % 2 else "accident", street="园岭街道" if n % 3 == 0 else "沙头街道",
                      title=["拥堵 100%", "事故_东", None, "拥堵 a", "车祸"][n % 5], detail=f"详情 {n}",
                      source="camera", lat=22.54, lon=114.05, value=float(n), unit="index")
           for n in range(11)]
    evs.append(make_event(90, ts=_ago(120), title="两小时前"))
    evs.append(make_event(91, ts=_ago(10), district="luohu", title="罗湖"))
    ingest_now(app, {"traffic": evs})
    client = app.server.test_client()
    make_user(app, "vera", "viewer")
    assert client.post("/api/session", json={"username": "vera", "password": TEST_PASSWORD}).status_code == 200
    return app, client


def pages(client, query: str, limit: int) -> list[list[dict]]:
    out, cursor = [], None
    for _ in range(50):
        res = client.get(f"/api/districts/futian/events?window=1h&limit={limit}{query}"
                         + (f"&cursor={cursor}" if cursor else ""))
        assert res.status_code == 200, res.json
        out.append(res.json["events"])
        cursor = res.json["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


def in_order(rows: list[dict], sort: str) -> bool:
    """Tell whether rows are in the order ``sort`` promises (ties are broken by arrival, which the API keeps)."""
    key = {"-ts": lambda r: -_ms(r), "ts": _ms, "-severity": lambda r: (-r["severity"], -_ms(r)),
           "title": lambda r: r["title"] or ""}[sort]
    keys = [key(r) for r in rows]
    return keys == sorted(keys)


def _ms(row: dict) -> int:
    from datetime import datetime
    return int(datetime.fromisoformat(row["ts"]).timestamp() * 1000)


@pytest.mark.parametrize("sort", SORTS)
def test_cursor_pages_walk_the_whole_window_once_in_the_sorts_order(seeded, sort):
    _, client = seeded
    [everything] = pages(client, f"&sort={sort}", 200)
    assert len(everything) == 11 and {e["district"] for e in everything} == {"440304"}
    assert "ev-90" not in {e["id"] for e in everything}  # older than the window
    assert in_order(everything, sort)
    for limit in (1, 2, 3, 5):
        walked = pages(client, f"&sort={sort}", limit)
        assert all(len(p) == limit for p in walked[:-1]) and 0 < len(walked[-1]) <= limit
        ids = [e["id"] for p in walked for e in p]
        assert ids == [e["id"] for e in everything], (sort, limit)  # each row once, ties too


def test_an_event_has_the_schemas_fields_with_the_citys_offset(seeded):
    _, client = seeded
    [first] = client.get("/api/districts/440304/events?window=1h&limit=1&sort=ts").json["events"]
    assert set(first) == {"id", "ts", "kind", "district", "severity", "domain", "street", "lat", "lon", "value",
                          "unit", "title", "detail", "source"}
    assert first["ts"].endswith("+08:00") and first["district"] == "440304" and first["detail"] == "详情 0"


@pytest.mark.parametrize("query, ids", [
    ("&kind=accident", {"ev-0", "ev-2", "ev-4", "ev-6", "ev-8", "ev-10"}),
    ("&street=园岭街道", {"ev-0", "ev-3", "ev-6", "ev-9"}),
    ("&severity_min=3", {"ev-1", "ev-3", "ev-6", "ev-8"}),
    ("&severity_min=4&kind=congestion", {"ev-3"}),
    ("&domain=traffic&street=沙头街道&kind=congestion", {"ev-1", "ev-5", "ev-7"}),
    ("&domain=security", set()),
    ("&q=拥堵", {"ev-0", "ev-3", "ev-5", "ev-8", "ev-10"}),
    ("&q=100%25", {"ev-0", "ev-5", "ev-10"}),  # % is a character, not a wildcard
    ("&q=_", {"ev-1", "ev-6"}),  # and so is _
    ("&q=事故_&kind=accident", {"ev-6"}),
])
def test_filters_and_title_search(seeded, query, ids):
    _, client = seeded
    got = [e for p in pages(client, query, 2) for e in p]
    assert {e["id"] for e in got} == ids and len(got) == len(ids)


def test_pages_are_read_by_key_never_by_offset(seeded):
    app, client = seeded
    statements = []
    engine = app.server.extensions["panorama"].engine

    def record(conn, cursor, statement, parameters, *args):
        if "events" in statement and "ORDER BY" in statement:
            # SQLite's dialect always writes LIMIT ? OFFSET ?, with an offset of 0: no rows skipped
            skipped = parameters[-1] if "OFFSET ?" in statement else None
            statements.append((statement.upper(), skipped))

    event.listen(engine, "before_cursor_execute", record)
    try:
        walked = pages(client, "&sort=-severity", 2)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # six pages; each reads the minutes of one severity after another (pruning), never skipping rows
    assert len(walked) == 6 and len(statements) >= 6
    assert all("OFFSET" not in sql or skipped == 0 for sql, skipped in statements), statements


@pytest.mark.parametrize("query, status, code", [
    ("&sort=severity", 400, "bad_sort"), ("&limit=0", 400, "bad_limit"), ("&limit=201", 400, "bad_limit"),
    ("&limit=1e3", 400, "bad_limit"), ("&severity_min=5", 400, "bad_severity_min"),
    ("&domain=weather", 400, "unknown_domain"), ("&kind=Fire!", 400, "bad_kind"), ("&window=2d", 400, "bad_window"),
    ("&sort=title&window=24h", 400, "sort_unavailable"), ("&sort=title&window=7d", 400, "sort_unavailable"),
    ("&cursor=not-a-cursor", 400, "bad_cursor"), ("&cursor=WzFd", 400, "bad_cursor"), ("&q=" + "x" * 201, 400, "bad_q"),
])
def test_bad_parameters_are_400s_that_name_them(seeded, query, status, code):
    _, client = seeded
    res = client.get(f"/api/districts/futian/events?{query.lstrip('&')}")
    assert (res.status_code, res.json["error"]["code"]) == (status, code)


def test_a_cursor_of_another_sort_is_refused_and_unknown_districts_are_404(seeded):
    app, client = seeded
    cursor = client.get("/api/districts/futian/events?window=1h&limit=1&sort=ts").json["next_cursor"]
    res = client.get(f"/api/districts/futian/events?window=1h&sort=title&cursor={cursor}")
    assert (res.status_code, res.json["error"]["code"]) == (400, "bad_cursor")
    res = client.get("/api/districts/atlantis/events")
    assert (res.status_code, res.json["error"]["code"]) == (404, "unknown_district")
    anonymous = app.server.test_client().get("/api/districts/futian/events")
    assert anonymous.status_code == 401


def test_title_sort_is_served_up_to_an_hour_and_names_its_limit_beyond(seeded):
    _, client = seeded
    for window in ("15m", "1h"):
        assert client.get(f"/api/districts/futian/events?window={window}&sort=title").status_code == 200
    res = client.get("/api/districts/futian/events?window=24h&sort=title&kind=accident")
    assert (res.status_code, res.json["error"]["code"]) == (400, "sort_unavailable")
    assert "at most 60 minutes" in res.json["error"]["message"]
