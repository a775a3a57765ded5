"""Storage for years: day partitions made ahead and dropped after retention (by moving the clock), exactly
once across partitions within the dedupe horizon, SQLite's batched deletes, and the upgrade of a database
holding data from the unpartitioned schema."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from alembic import command
from sqlalchemy import func, select, text

from dashboard.core.clock import DAY_MS
from dashboard.storage import partitions
from dashboard.storage.db import make_engine, upgrade
from dashboard.storage.events import DEDUPE_HORIZON_MS, EventStore
from dashboard.storage.models import district_hours, district_minutes, events, rollup_hours, rollups
from dashboard.storage.partitions import Retention, existing_days, maintain
from tests.test_migrations import _alembic
from tests.test_store import events_of
from tests.helpers import make_event, scratch_database, wait_for

NOW = 1_796_000_000_000  # 2026-11-30 02:13 UTC: the clock the tests move
HOUR = 3_600_000


def count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(table.c.n), 0) if "n" in table.c
                                       else func.count()).select_from(table).where(*where)).scalar_one())


def days_of(engine, table="events") -> list[int]:
    with engine.connect() as conn:
        return sorted(existing_days(conn, table))


def store_days_ago(engine, ages_days: list[float], domain="traffic"):
    """Store one event per age (days before NOW), each with its own id."""
    evs = events_of(domain, [make_event(i, ts=int(NOW - age * DAY_MS)) for i, age in enumerate(ages_days)])
    return EventStore(engine).write(evs, NOW)


@contextmanager
def migrated(server_url: str, prefix: str, revision: str = "head"):
    """Yield an engine on a new database of the test's own, migrated to ``revision``; dropped afterwards."""
    with scratch_database(server_url, prefix) as url:
        engine = make_engine(url)
        try:
            upgrade(engine, revision)
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def fresh_pg_engine(pg_server_url):
    """An engine on a database of this test's own, migrated to head: its table statistics count this test's
    statements only (the session database's also count other tests' races, whose ON CONFLICT insertions that
    lose are counted as deleted tuples)."""
    with migrated(pg_server_url, "panorama_retention") as engine:
        yield engine


def deletes_in_events(engine) -> int:
    """Rows ever deleted from the events partitions that exist, as PostgreSQL counts them once every connection
    of ``engine`` has closed (a backend reports its counts when it ends, not at each statement)."""
    engine.dispose()

    def others() -> int:
        with engine.connect() as conn:  # a new transaction each time: pg_stat_activity is read once in one
            return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid()")).scalar_one()

    wait_for(lambda: others() == 0, message="the store's connections closed")
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables "
                                     r"WHERE relname LIKE 'events\_%'")).scalar_one())


def test_postgresql_drops_whole_days_after_retention_as_the_clock_moves(fresh_pg_engine):
    pg_engine = fresh_pg_engine
    store_days_ago(pg_engine, [0, 1, 10, 29.5, 31, 45, 80, 95])
    today = NOW // DAY_MS
    assert count(pg_engine, events) == 8
    done = maintain(pg_engine, NOW, Retention(events_days=30, rollup_days=90))
    # made ahead: today and the next two days exist before any event of theirs arrives
    assert {today, today + 1, today + 2} <= set(days_of(pg_engine))
    # events: days wholly older than 30 days are gone, with their partitions; nothing was DELETEd
    assert min(days_of(pg_engine)) == (NOW - 30 * DAY_MS) // DAY_MS
    assert count(pg_engine, events) == 4  # 0, 1, 10 and 29.5 days old
    dropped = {n for n in done["dropped"] if n.startswith("events_")}
    assert {partitions.partition_name("events", (NOW - a * DAY_MS) // DAY_MS) for a in (31, 45, 80, 95)} <= dropped
    # (the session's database may hold other tests' old days too) and nothing inside the 30 days went
    cutoff_day = (NOW - 30 * DAY_MS) // DAY_MS
    assert all(partitions.partition_name("events", d) not in dropped for d in range(cutoff_day, cutoff_day + 40))
    assert deletes_in_events(pg_engine) == 0
    # minute rollups live 90 days: 95 is gone, 80 stays; the hour rollups keep all eight
    assert count(pg_engine, rollups) == 7 and count(pg_engine, district_minutes) == 7
    assert count(pg_engine, rollup_hours) == 8 and count(pg_engine, district_hours) == 8

    # twenty days later: the 29.5-day-old event's day has passed 30 days (the 10-day-old one's is the oldest
    # day kept), the 80-day-old rollup has passed 90
    later = NOW + 20 * DAY_MS
    maintain(pg_engine, later, Retention(events_days=30, rollup_days=90))
    assert count(pg_engine, events) == 3
    assert count(pg_engine, rollups) == 6 and count(pg_engine, rollup_hours) == 8
    assert later // DAY_MS + partitions.DAYS_AHEAD in days_of(pg_engine, "rollups")  # made ahead
    # the store still writes today, and a day whose partition was dropped under it is made again
    store = EventStore(pg_engine)
    store.write(events_of("traffic", [make_event(100, ts=later)]), later)
    maintain(pg_engine, later + 40 * DAY_MS, Retention(events_days=30, rollup_days=90))
    assert later // DAY_MS not in days_of(pg_engine)
    assert len(store.write(events_of("traffic", [make_event(101, ts=later + 1)]), later).stored) == 1


def test_the_workers_maintenance_runs_on_its_schedule_as_the_clock_moves(pg_engine):
    """The thread every ingest worker starts (start_maintenance) makes days ahead and drops expired ones by
    itself, on the services' clock, round after round: nobody calls maintain."""
    import threading
    from types import SimpleNamespace

    store_days_ago(pg_engine, [0, 10, 29.5])
    now = [NOW]
    svc = SimpleNamespace(engine=pg_engine, clock=lambda: now[0],
                          config={"PANORAMA_RETENTION_DAYS": 30, "PANORAMA_ROLLUP_RETENTION_DAYS": 90})
    stop = threading.Event()
    thread = partitions.start_maintenance(svc, stop, every_s=0.05)
    try:
        today = NOW // DAY_MS
        wait_for(lambda: today + partitions.DAYS_AHEAD in days_of(pg_engine), message="days made ahead")
        assert count(pg_engine, events) == 3
        now[0] = NOW + 40 * DAY_MS  # forty days on: every stored day has passed retention
        later = now[0] // DAY_MS
        wait_for(lambda: later + partitions.DAYS_AHEAD in days_of(pg_engine), message="days made ahead, 40 days on")
        wait_for(lambda: min(days_of(pg_engine)) >= (now[0] - 30 * DAY_MS) // DAY_MS,
                 message="the expired days dropped")
        assert count(pg_engine, events) == 0 and count(pg_engine, rollups) == 3  # rollups keep 90 days
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_sqlite_deletes_old_rows_in_batches(tmp_path, monkeypatch):
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade(engine)
    monkeypatch.setattr(partitions, "SQLITE_BATCH", 3)  # several batches
    try:
        store_days_ago(engine, [0, 1, 10, 31, 32, 33, 34, 35, 36, 45, 95])
        done = maintain(engine, NOW, Retention(events_days=30, rollup_days=90))
        assert done["deleted"] == {"events": 8, "unit_track": 0, "rollups": 1, "district_minutes": 1}
        assert count(engine, events) == 3 and count(engine, rollups) == 10 and count(engine, rollup_hours) == 11
    finally:
        engine.dispose()


def test_a_repeated_id_is_stored_once_within_the_horizon_whatever_its_ts(any_engine):
    store = EventStore(any_engine)
    postgres = any_engine.dialect.name == "postgresql"
    day0 = (NOW - 5 * DAY_MS) // DAY_MS * DAY_MS  # a UTC midnight five days back
    cases = [  # (first ts, the repeat's ts): each pair is a new id
        (day0 + 2 * HOUR, day0 + 2 * HOUR),  # a redelivery: the same ts
        (day0 + 2 * HOUR, day0 + 9 * HOUR),  # later the same UTC day
        (day0 + 20 * 60_000, day0 - 25 * 60_000),  # across midnight, within the horizon: the probe
        (day0 - 10 * 60_000, day0 + DEDUPE_HORIZON_MS - 10 * 60_000),  # across midnight, at the horizon's edge
    ]
    for i, (first, repeat) in enumerate(cases):
        assert len(store.write(events_of("security", [make_event(i, kind="theft", ts=first)]), NOW).stored) == 1
        again = store.write(events_of("security", [make_event(i, kind="theft", ts=repeat)]), NOW)
        assert (len(again.stored), again.duplicates) == (0, 1), (first, repeat)
    # the documented limit on PostgreSQL: across midnight and further apart than the horizon, the same id is
    # another event (SQLite, one writer with one table-wide key, still refuses it); another domain always is
    far = store.write(events_of("security", [make_event(0, kind="theft", ts=day0 - 3 * HOUR)]), NOW)
    other = store.write(events_of("traffic", [make_event(0, ts=day0 + 2 * HOUR)]), NOW)
    assert len(far.stored) == (1 if postgres else 0) and len(other.stored) == 1
    assert count(any_engine, events) == len(cases) + 1 + len(far.stored)


@pytest.fixture
def db_at_0005(pg_server_url):
    with migrated(pg_server_url, "panorama_upgrade", "0005") as engine:
        yield engine


def test_upgrade_moves_an_existing_database_in_place(db_at_0005):
    engine = db_at_0005
    # today's schema with three days of data: events, minute rollups, the per-district minutes
    with engine.begin() as conn:
        for i, age in enumerate((0.1, 0.2, 1.5, 2.5, 2.6)):
            ts = int(NOW - age * DAY_MS)
            conn.execute(text(
                "INSERT INTO events (domain, event_id, ts_ms, received_ms, kind, district, street, severity, title) "
                "VALUES ('traffic', :id, :ts, :ts, 'congestion', '440304', '华强北街道', 2, :title)"),
                {"id": f"old-{i}", "ts": ts, "title": f"旧事件 {i}"})
            minute = ts - ts % 60_000
            conn.execute(text(
                "INSERT INTO rollups VALUES (:m, '440304', '华强北街道', 'traffic', 'congestion', 1, 0, 1, 0, 0, 0, 0, "
                "NULL) ON CONFLICT (minute_ms, district, street, domain, kind) DO UPDATE SET n = rollups.n + 1, "
                "sev2 = rollups.sev2 + 1"), {"m": minute})
            conn.execute(text(
                "INSERT INTO district_minutes VALUES (:m, '440304', 'traffic', 1, 0, 1, 0, 0) "
                "ON CONFLICT (minute_ms, district, domain) DO UPDATE SET n = district_minutes.n + 1, "
                "sev2 = district_minutes.sev2 + 1"), {"m": minute})
        old_max_seq = conn.execute(text("SELECT max(seq) FROM events")).scalar_one()
        before = conn.execute(text("SELECT seq, event_id, ts_ms, title FROM events ORDER BY seq")).all()
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'events'")).scalar_one() == "p"
        assert conn.execute(text("SELECT seq, event_id, ts_ms, title FROM events ORDER BY seq")).all() == before
    # one partition per day of the old rows (three days), plus today's and those made ahead
    old_days = {int(NOW - a * DAY_MS) // DAY_MS for a in (0.1, 1.5, 2.5)}
    assert old_days <= set(days_of(engine)) and old_days <= set(days_of(engine, "rollups"))
    assert count(engine, rollups) == 5 and count(engine, district_minutes) == 5
    assert count(engine, rollup_hours) == 5 and count(engine, district_hours) == 5
    # new events go on from the old sequence and the old key still stops a repeat
    result = EventStore(engine).write(events_of("traffic", [make_event("new", ts=NOW), make_event(
        "x", ts=NOW)]) + events_of("traffic", [{**make_event(0, ts=int(NOW - 0.1 * DAY_MS)), "id": "old-0"}]), NOW)
    assert sorted(s.event.id for s in result.stored) == ["ev-new", "ev-x"]
    assert min(s.seq for s in result.stored) > old_max_seq
    # and back: the downgrade restores the unpartitioned table with every row
    with engine.begin() as conn:
        command.downgrade(_alembic(conn), "0005")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'events'")).scalar_one() == "r"
        assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 7


def test_the_kind_index_attaches_day_indexes_built_beforehand_and_builds_the_rest(pg_server_url):
    """docs/operations.md's live upgrade: a day indexed with CREATE INDEX CONCURRENTLY before migration 0026 keeps
    that index (attached, not built again); a day not indexed gets one; a day made later has it too."""
    with migrated(pg_server_url, "panorama_kind_index", "0025") as engine:
        store_days_ago(engine, [0.1, 1.5, 2.5])
        days = [partitions.partition_name("events", int(NOW - a * DAY_MS) // DAY_MS) for a in (0.1, 1.5, 2.5)]
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # CONCURRENTLY: no transaction
            conn.execute(text(f'CREATE INDEX CONCURRENTLY "{days[0]}_prebuilt" ON "{days[0]}" (district, kind, ts_ms)'))
        upgrade(engine)
        maintain(engine, NOW + 5 * DAY_MS, Retention(events_days=30, rollup_days=90))  # days made later
        with engine.connect() as conn:
            on = dict(conn.execute(text(
                "SELECT c.relname, i.relname FROM pg_inherits h JOIN pg_class i ON i.oid = h.inhrelid "
                "JOIN pg_index x ON x.indexrelid = i.oid JOIN pg_class c ON c.oid = x.indrelid "
                "WHERE h.inhparent = 'ix_events_district_kind_ts'::regclass")).all())
            valid = conn.execute(text("SELECT indisvalid FROM pg_index "
                                      "WHERE indexrelid = 'ix_events_district_kind_ts'::regclass")).scalar_one()
        every_day = {partitions.partition_name("events", d) for d in days_of(engine)}
        assert set(on) == every_day and len(every_day) > len(days)
        assert on[days[0]] == f"{days[0]}_prebuilt" and valid
