"""Rollup-guided pruning of filtered event pages: the same rows and cursors as the unpruned statement, on
PostgreSQL and SQLite, for rare, empty and edge-spanning filters, every pruned sort and cursors across pages."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from dashboard.panorama import district as dd
from dashboard.panorama import pruning
from dashboard.storage.queries import window_bounds
from tests.helpers import make_event
from tests.test_api import ingest_now
from tests.test_event_plans import rows_read, statements

TZ = "Asia/Shanghai"
FUTIAN = "440304"
BUSY = 1_400  # congestion events, one about every minute of the day


@pytest.fixture(params=["postgresql", "sqlite"])
def day(request, make_app, redis_client, tmp_path):
    """A busy day in Futian stored through the pipeline (rollups and all), with rare events at the window's
    edges; yields the app's engine, its city and the 24-hour window's bounds."""
    overrides = {} if request.param == "postgresql" else {"DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    app = make_app(**overrides)
    now = int(time.time() * 1000)
    start, end = window_bounds(now, 1440)
    evs = [make_event(i, ts=now - 1 - i * 61_000, street="园岭街道", severity=4 if i % 97 == 5 else 1 + i % 3 // 2,
                      title=f"拥堵 {i}") for i in range(BUSY)]
    rare = [(start + 1_000, "沙头街道"), (start + 30_000, "某某路"), (now - 700 * 60_000, "沙头街道"),
            (now - 3 * 60_000, "某某路"), (end - 60_000 + (now % 60_000) // 2, "沙头街道")]
    evs += [make_event(5000 + i, ts=ts, kind="accident", street=street, severity=3, title=f"事故 {i}")
            for i, (ts, street) in enumerate(rare)]
    evs += [make_event(5100, ts=start - 1, kind="accident", street="沙头街道", title="窗口之前"),  # just outside
            make_event(5101, ts=now - 400 * 60_000, kind="drone_sighting", title="无人机"),  # a kind the pack lacks
            make_event(5102, ts=start + 2_000, kind="drone_sighting", title="无人机 早")]
    for i in range(0, len(evs), 200):  # a feed message holds at most 64 KiB
        ingest_now(app, {"traffic": evs[i:i + 200]})
    svc = app.server.extensions["panorama"]
    return svc.engine, svc.city, start, end


def walk(conn, query: dd.EventQuery, city, prune: bool) -> list[tuple[list[str], str | None]]:
    """Return every page of ``query`` (its ids and next cursor), following the cursors to the end."""
    out, cursor = [], None
    for _ in range(3000):
        rows, cursor = dd.event_rows(conn, replace(query, cursor=cursor), TZ, city, prune)
        out.append(([r["id"] for r in rows], cursor))
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


RARE = [{"kind": "accident"}, {"street": "沙头街道"}, {"street": "某某路"}, {"kind": "drone_sighting"},
        {"kind": "accident", "street": "某某路"}, {"kind": "road_closure"}, {"domain": "security"},
        {"severity_min": 3, "kind": "accident"}, {"q": "事", "kind": "accident"}]
COMMON = [{"domain": "traffic"}, {"severity_min": 4}, {"severity_min": 2, "street": "园岭街道"}, {}]


@pytest.mark.parametrize("join_rows", [0, pruning.JOIN_ROWS])  # every span alone, or most read together
@pytest.mark.parametrize("sort", ["-ts", "ts", "-severity"])
def test_pruned_pages_and_cursors_are_the_unpruned_ones(day, sort, join_rows, monkeypatch):
    monkeypatch.setattr(pruning, "JOIN_ROWS", join_rows)
    engine, city, start, end = day
    with engine.connect() as conn:
        for filters, limits in [(f, (1, 2, 50)) for f in RARE] + [(f, (50, 200)) for f in COMMON]:
            for limit in limits:
                query = dd.EventQuery(FUTIAN, start, end, sort=sort, limit=limit, **filters)
                pruned = walk(conn, query, city, True)
                assert pruned == walk(conn, query, city, False), (filters, limit)
                assert len({i for ids, _ in pruned for i in ids}) == sum(len(ids) for ids, _ in pruned)


def test_rare_filters_find_their_events_at_the_windows_edges(day):
    engine, city, start, end = day
    with engine.connect() as conn:
        newest = [i for ids, _ in walk(conn, dd.EventQuery(FUTIAN, start, end, kind="accident", limit=1), city, True)
                  for i in ids]
        oldest = [i for ids, _ in walk(conn, dd.EventQuery(FUTIAN, start, end, kind="accident", sort="ts", limit=2),
                                       city, True) for i in ids]
        unknown = walk(conn, dd.EventQuery(FUTIAN, start, end, street="某某路"), city, True)
    # the current minute's first, the window's first minute's last; the event before the window is not there
    assert newest == ["ev-5004", "ev-5003", "ev-5002", "ev-5001", "ev-5000"] and oldest == newest[::-1]
    assert unknown == [(["ev-5003", "ev-5001"], None)]  # a street the pack lacks: counted under OTHER


def events_statements(engine, read) -> list[str]:
    """Run ``read(conn)``; return the statements it sent that read the events table."""
    return [sql for sql, _ in statements(engine, read)]


# (An exact kind alone is its index's to read, matches or none: test_an_exact_kind_is_read_from_its_own_index...)
@pytest.mark.parametrize("filters", [{"kind": "road_closure", "severity_min": 1}, {"domain": "security"},
                                     {"street": "香蜜湖街道"}, {"kind": "accident", "street": "园岭街道"}])
def test_a_filter_that_matches_nothing_reads_the_rollups_only(day, filters):
    engine, city, start, end = day
    for sort in ("-ts", "ts", "-severity"):
        query = dd.EventQuery(FUTIAN, start, end, sort=sort, **filters)
        sent = events_statements(engine, lambda conn: dd.event_rows(conn, query, TZ, city))
        assert sent == [], (sort, sent)  # no minute holds a match: no events are read at all


def work(engine, read) -> int:
    """Return how much work ``read(conn)`` made the database do reading events: rows that PostgreSQL's scans of
    ``events`` produced or filtered out (EXPLAIN ANALYZE of each statement), SQLite's virtual-machine steps."""
    if engine.dialect.name == "sqlite":
        return vm_steps(engine, read)
    return rows_read(engine, read)


@pytest.fixture
def dense_hour(make_app, redis_client, tmp_path):
    """SQLite with an hour of Futian at 200 events a minute (a minute's rollups hold a few rows for its 200
    events, as at a city's volume) and a few rare ones; yields the engine, the city and the hour's bounds."""
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'dense.db'}")
    now = int(time.time() * 1000)
    start, end = window_bounds(now, 60)
    evs = [make_event(i, ts=now - 1 - i * 287, street="园岭街道", severity=4 if i % 1_999 == 5 else 3 if i % 599 == 7 else 1 + i % 2,
                      title=f"拥堵 {i}") for i in range(12_000)]
    evs += [make_event(50_000 + i, ts=now - m * 60_000, kind=kind, street="沙头街道", severity=3, title="少见")
            for i, (m, kind) in enumerate([(2, "accident"), (30, "accident"), (55, "drone_sighting")])]
    for i in range(0, len(evs), 200):
        ingest_now(app, {"traffic": evs[i:i + 200]})
    svc = app.server.extensions["panorama"]
    return svc.engine, svc.city, start, end


def vm_steps(engine, read) -> int:
    """Return the hundreds of virtual-machine steps SQLite took for ``read(conn)``: its work, rollups and all."""
    steps = [0]
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1) or 0, 100)
        try:
            read(conn)
        finally:
            raw.set_progress_handler(None, 0)
    return steps[0]


@pytest.mark.parametrize("filters, sort", [({"street": "沙头街道"}, "ts"), ({"kind": "congestion"}, "-severity"),
                                           ({"severity_min": 4}, "-ts"), ({}, "-severity")])
def test_a_rare_filter_reads_its_minutes_not_the_window(dense_hour, filters, sort, monkeypatch):
    # (PostgreSQL's plans at volume: tests/test_event_plans.py.) The hour is a city's scaled down twenty times,
    # and so is the gap between minutes with matches that is read rather than sent as another statement.
    monkeypatch.setattr(pruning, "JOIN_ROWS", pruning.JOIN_ROWS // 20)
    engine, city, start, end = dense_hour
    query = dd.EventQuery(FUTIAN, start, end, sort=sort, **filters)
    with engine.connect() as conn:
        assert dd.event_rows(conn, query, TZ, city) == dd.event_rows(conn, query, TZ, city, prune=False)
    pruned = vm_steps(engine, lambda conn: dd.event_rows(conn, query, TZ, city))
    unpruned = vm_steps(engine, lambda conn: dd.event_rows(conn, query, TZ, city, prune=False))
    assert pruned * 3 < unpruned, (pruned, unpruned)  # statements cost steps of their own


@pytest.mark.parametrize("kind, sort, sent", [("accident", "-ts", 1), ("drone_sighting", "ts", 1),
                                              ("drone_sighting", "-severity", 2), ("congestion", "-ts", 1),
                                              ("road_closure", "-severity", 2)])
def test_an_exact_kind_is_read_from_its_own_index_in_one_statement(dense_hour, kind, sort, sent):
    """The events' district-kind-time index serves a kind's page: one statement in time order, and by severity
    one count in the rollups first (a rare kind's matches are read and sorted; a common kind's are walked)."""
    engine, city, start, end = dense_hour
    query = dd.EventQuery(FUTIAN, start, end, sort=sort, kind=kind)
    with engine.connect() as conn:
        assert dd.event_rows(conn, query, TZ, city) == dd.event_rows(conn, query, TZ, city, prune=False)
    read = statements(engine, lambda conn: dd.event_rows(conn, query, TZ, city))
    counted = statements(engine, lambda conn: dd.event_rows(conn, query, TZ, city), table="rollups")
    assert (len(read), len(read) + len(counted)) == (1, sent), (read, counted)


@pytest.mark.parametrize("filters", ["{kind} = 交通事故", "{kind} contains 事故", "{street} contains 沙头", "{street} = 某某路",
                                     "{kind} contains drone", "{severity} >= 3 && {domain} = 交通", "{title} contains 事"])
def test_the_tables_pruned_pages_are_the_unpruned_ones(day, filters):
    engine, city, start, end = day
    parsed = dd.parse_filter(filters)
    for sort in ("-ts", "ts", "-severity"):
        with engine.connect() as conn:
            pages = []
            for use_city in (city, None):  # with the pack, and without it (OTHER read for every value)
                cursor, ids = None, []
                while True:
                    rows, cursor = dd.table_page(conn, FUTIAN, start, end, sort, 2, cursor, parsed, use_city)
                    ids.append([r["id"] for r in rows])
                    if cursor is None:
                        break
                pages.append(ids)
            bare = dd.keyset_page(conn, FUTIAN, start, end, sort, 10_000, None,
                                  [dd._clause(dd.events, f) for f in parsed])[0]
        flat = [r["event_id"] for r in bare]
        assert pages[0] == pages[1] and [i for p in pages[0] for i in p] == flat, (filters, sort)


def test_spans_are_joined_across_gaps_of_few_events_only():
    spans = pruning.ranges([0, 60, 120, 600, 660, 6000, 7000, 9000], 60)
    assert spans == [(0, 180), (600, 720), (6000, 6060), (7000, 7060), (9000, 9060)]
    assert pruning.join(spans, [100, 600, 1000, pruning.JOIN_ROWS]) == [(0, 720), (6000, 6060), (7000, 9060)]
    # however many spans there are, a gap of many events is never read
    assert pruning.join(spans, [1000, 600, 1000, 2000]) == spans


@pytest.mark.parametrize("sort", ["-ts", "ts", "-severity"])
def test_a_walk_over_many_scattered_minutes_reads_only_them_in_batches(dense_hour, sort, monkeypatch):
    # 20 minutes of the hour hold a match each, far apart in events: more spans than a batch sends. The walk
    # must read them a batch at a time, never the gaps between them (which it once joined to stay in a batch).
    monkeypatch.setattr(pruning, "MAX_RANGES", 4)
    monkeypatch.setattr(pruning, "JOIN_ROWS", pruning.JOIN_ROWS // 20)  # the hour is a city's scaled down
    engine, city, start, end = dense_hour
    query = dd.EventQuery(FUTIAN, start, end, sort=sort, street="园岭街道", severity_min=3, limit=12)
    with engine.connect() as conn:
        assert dd.event_rows(conn, query, TZ, city) == dd.event_rows(conn, query, TZ, city, prune=False)
    sent = statements(engine, lambda conn: dd.event_rows(conn, query, TZ, city))
    assert len(sent) > 4, sent  # several batches
    # each statement reads only minutes that hold a match (its bounds: the two times among its parameters)
    with engine.connect() as conn:
        held = {ts - ts % 60_000 for ts in conn.exec_driver_sql(
            "SELECT ts_ms FROM events WHERE street = '园岭街道' AND severity >= 3").scalars()}
    spans = [[v for v in params if isinstance(v, int) and v > 10**12] for _, params in sent]
    read = [(a, b, [m for m in range(a - a % 60_000, b, 60_000) if m not in held]) for a, b in spans]
    assert not [r for r in read if r[2]], read  # minutes read that hold no match
