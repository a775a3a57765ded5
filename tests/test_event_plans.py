"""How PostgreSQL reads the drill-down's events at volume: the plans of the real statements (issue 14)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, text

from dashboard.panorama import district as dd
from dashboard.panorama import pruning
from dashboard.storage import partitions
from dashboard.storage.queries import window_bounds

TZ = "Asia/Shanghai"
DAY_MS = 86_400_000
KINDS = ("congestion", "accident", "speed", "signal_fault", "aqi", "noise")


def seed(engine, n: int, now_ms: int, futian_share: int = 1) -> None:
    """Store ``n`` events over the last 24 hours in SQL (Futian's, and every ``futian_share``-th one only when
    above 1, the rest Luohu's; 1 in 4,001 a road closure, 1 in 100 critical), their minute rollups summed from
    them, then ANALYZE: a busy day in small."""
    with engine.begin() as conn:
        partitions.create_days(conn, partitions.PARTITIONED, range(now_ms // DAY_MS - 1, now_ms // DAY_MS + 1))
        conn.execute(text(f"""
            INSERT INTO events (domain, event_id, ts_ms, received_ms, kind, district, street, severity, title)
            SELECT 'traffic', 'seed-' || g, {now_ms} - 1 - (g::bigint * {DAY_MS - 1} / {n}), {now_ms},
                   CASE WHEN g % 4001 = 11 THEN 'road_closure' ELSE (ARRAY{list(KINDS)})[g % {len(KINDS)} + 1] END,
                   CASE WHEN g % {futian_share} = 0 THEN '440304' ELSE '440303' END, '园岭街道',
                   CASE WHEN g % 100 = 7 THEN 4 WHEN g % 20 = 3 THEN 3 WHEN g % 4 = 1 THEN 2 ELSE 1 END,
                   CASE WHEN g % 997 = 5 THEN '燃气泄漏 福华路 #' ELSE '拥堵 深南大道 #' END || (g % 5000)
            FROM generate_series(0, {n - 1}) g"""))
        conn.execute(text("""
            INSERT INTO rollups (minute_ms, district, street, domain, kind, n, sev1, sev2, sev3, sev4, value_sum,
                                 value_n, value_max)
            SELECT ts_ms - ts_ms % 60000, district, street, domain, kind, count(*),
                   count(*) FILTER (WHERE severity = 1), count(*) FILTER (WHERE severity = 2),
                   count(*) FILTER (WHERE severity = 3), count(*) FILTER (WHERE severity = 4), 0, 0, NULL
            FROM events GROUP BY 1, 2, 3, 4, 5"""))
        conn.execute(text("""
            INSERT INTO district_minutes (minute_ms, district, domain, n, sev1, sev2, sev3, sev4)
            SELECT minute_ms, district, domain, sum(n), sum(sev1), sum(sev2), sum(sev3), sum(sev4)
            FROM rollups GROUP BY 1, 2, 3"""))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE events, rollups, district_minutes"))


def statements(engine, read, table: str = "events") -> list[tuple]:
    """Run ``read(conn)``; return the statements it sent that read ``table``, with their parameters."""
    sent = []

    def record(conn, cursor, statement, parameters, *args):
        if f"FROM {table}" in statement and not statement.startswith("EXPLAIN"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as conn:
            read(conn)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


def plans(engine, read, analyze: bool = False, table: str = "events") -> list[dict]:
    """Run ``read(conn)`` and return the JSON plan of each statement it sent that reads ``table`` (with
    ``analyze``, as run again under EXPLAIN ANALYZE)."""
    sent = statements(engine, read, table)
    explain = "EXPLAIN (ANALYZE, FORMAT JSON) " if analyze else "EXPLAIN (FORMAT JSON) "
    with engine.connect() as conn:
        return [conn.exec_driver_sql(explain + sql, params).scalar_one()[0]["Plan"] for sql, params in sent]


def rows_read(engine, read) -> int:
    """Return the rows of ``events`` that the statements of ``read(conn)`` scanned: produced by a scan of one of
    its partitions, or read and filtered out there (EXPLAIN ANALYZE)."""
    return sum(int((n.get("Actual Rows", 0) + n.get("Rows Removed by Filter", 0)
                    + n.get("Rows Removed by Index Recheck", 0)) * n.get("Actual Loops", 1))
               for plan in plans(engine, read, analyze=True) for n in nodes(plan)
               if str(n.get("Relation Name", "")).startswith("events"))


def nodes(plan: dict):
    """Yield every node of a plan."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def partition_indexes(engine, parent: str) -> set[str]:
    """Return the names of the partitions' indexes made from the parent's index ``parent``."""
    with engine.connect() as conn:
        return set(conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :p"), {"p": parent}).scalars())


@pytest.fixture
def busy_day(pg_engine):
    """An engine on 40,000 of Futian's events over the last 24 hours, and the 24-hour window's bounds."""
    now_ms = int(time.time() * 1000)
    seed(pg_engine, 40_000, now_ms)
    return pg_engine, window_bounds(now_ms, 1440)


@pytest.fixture
def busier_day(pg_engine):
    """``busy_day`` with 150,000 events. Below about 50,000 rows a partition is cheaper to read whole, and
    PostgreSQL rightly does; a 24-hour window spans two days' partitions split by the time of day, so at
    150,000 the larger holds at least 75,000 whatever the hour the test runs (at 40,000 the test failed after
    about 17:00 UTC, when the larger partition held under 32,000)."""
    now_ms = int(time.time() * 1000)
    seed(pg_engine, 150_000, now_ms)
    return pg_engine, window_bounds(now_ms, 1440)


@pytest.mark.parametrize("q, matches", [("#4242", 30), ("燃气泄漏 福", 151)])
def test_title_search_reads_the_trigram_index(busier_day, q, matches):
    engine, (start, end) = busier_day
    query = dd.EventQuery("440304", start, end, q=q, limit=200)
    with engine.connect() as conn:
        rows, _ = dd.event_rows(conn, query, TZ)
    assert len(rows) == matches and all(q in r["title"] for r in rows)
    [plan] = plans(engine, lambda conn: dd.event_rows(conn, query, TZ))
    used = {n.get("Index Name") for n in nodes(plan)}
    assert used & partition_indexes(engine, "ix_events_title_trgm"), used  # the day's partition of the index


@pytest.mark.parametrize("filters, sort", [({"severity_min": 4, "kind": "speed"}, "ts"), ({"kind": "speed"}, "-severity"),
                                           ({}, "-severity"), ({"severity_min": 4, "kind": "speed"}, "-ts")])
def test_filtered_pages_read_only_the_minutes_that_hold_matches(busy_day, filters, sort, monkeypatch):
    # The day is a district's at 20 million events a day scaled down forty times, and so is the gap between
    # minutes with matches that is read rather than sent as another statement (and the rows of a kind that its
    # own index serves sorted by severity without a walk).
    monkeypatch.setattr(pruning, "JOIN_ROWS", pruning.JOIN_ROWS // 40)
    monkeypatch.setattr(dd, "INDEXED_SORT_ROWS", dd.INDEXED_SORT_ROWS // 40)
    engine, (start, end) = busy_day
    query = dd.EventQuery("440304", start, end, sort=sort, **filters)
    with engine.connect() as conn:
        assert dd.event_rows(conn, query, TZ) == dd.event_rows(conn, query, TZ, prune=False)
    pruned = rows_read(engine, lambda conn: dd.event_rows(conn, query, TZ))
    unpruned = rows_read(engine, lambda conn: dd.event_rows(conn, query, TZ, prune=False))
    assert pruned * 10 < unpruned, (pruned, unpruned)


@pytest.mark.parametrize("kind, sort", [("road_closure", "-ts"), ("road_closure", "ts"), ("road_closure", "-severity"),
                                        ("speed", "-ts"), ("speed", "ts")])
def test_a_kind_reads_its_own_rows_from_its_index(busy_day, kind, sort):
    """An exact kind's page comes from the events' district-kind-time index in one statement: its time sorts read
    the page's rows and no other, a rare kind by severity reads its matches and sorts them."""
    engine, (start, end) = busy_day
    query = dd.EventQuery("440304", start, end, sort=sort, kind=kind)
    with engine.connect() as conn:
        assert dd.event_rows(conn, query, TZ) == dd.event_rows(conn, query, TZ, prune=False)
        matching = conn.execute(text("SELECT count(*) FROM events WHERE district = '440304' AND kind = :k "
                                     "AND ts_ms >= :a AND ts_ms < :b"), {"k": kind, "a": start, "b": end}).scalar_one()
    [plan] = plans(engine, lambda conn: dd.event_rows(conn, query, TZ))
    assert {n.get("Index Name") for n in nodes(plan)} & partition_indexes(engine, "ix_events_district_kind_ts")
    read = rows_read(engine, lambda conn: dd.event_rows(conn, query, TZ))
    # a page of 50 and the one after it, from each of the window's two day partitions at most
    assert read == matching if sort == "-severity" else read <= 2 * (query.limit + 1), (read, matching)


def test_a_filter_that_matches_nothing_reads_no_events(busy_day):
    engine, (start, end) = busy_day
    nothing = dd.EventQuery("440304", start, end, street="某某路", sort="-severity")
    assert rows_read(engine, lambda conn: dd.event_rows(conn, nothing, TZ)) == 0
    assert rows_read(engine, lambda conn: dd.event_rows(conn, nothing, TZ, prune=False)) >= 40_000  # the whole day
    no_kind = dd.EventQuery("440304", start, end, kind="fire", sort="-severity")
    assert rows_read(engine, lambda conn: dd.event_rows(conn, no_kind, TZ)) == 0


@pytest.mark.parametrize("filters, index", [({"kind": "road_closure", "severity_min": 3}, "ix_rollups_district_kind_minute"),
                                            ({"street": "沙头街道"}, "ix_rollups_district_street_minute")])
def test_the_minutes_of_a_filter_are_read_by_its_rollup_index(busy_day, filters, index):
    engine, (start, end) = busy_day
    query = dd.EventQuery("440304", start, end, **filters)
    found = plans(engine, lambda conn: dd.event_rows(conn, query, TZ), table="rollups")
    used = {n.get("Index Name") for plan in found for n in nodes(plan)}
    assert found and used & partition_indexes(engine, index), used
