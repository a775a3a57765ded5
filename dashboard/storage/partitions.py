"""Keep the time-partitioned tables: day partitions made ahead and on demand, dropped after retention.

On PostgreSQL ``events``, ``rollups`` and ``district_minutes`` are partitioned by range of their time column,
one partition per UTC day (``events_20261205`` holds ``ts_ms`` in [2026-12-05, 2026-12-06)). Old days are
detached and dropped, never ``DELETE``d: dropping a day costs the same whatever it holds and leaves no dead
rows for vacuum. SQLite (the embedded default) has plain tables and deletes old rows in small batches.
The hour rollups are kept for years and are not partitioned.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from dashboard.core.clock import DAY_MS
from dashboard.storage.db import is_postgres

log = logging.getLogger(__name__)

# Table -> its time column; events live PANORAMA_RETENTION_DAYS, minute rollups PANORAMA_ROLLUP_RETENTION_DAYS.
# The units' track (unit_track) is kept as long as events.
PARTITIONED = {"events": "ts_ms", "rollups": "minute_ms", "district_minutes": "minute_ms", "unit_track": "ts_ms"}
EVENT_TABLES = ("events", "unit_track")
MINUTE_TABLES = ("rollups", "district_minutes")
DAYS_AHEAD = 2  # partitions made ahead of today, so the ingest path never waits on DDL at midnight
_NAME = re.compile(r"^(?P<table>[a-z_]+)_(?P<day>\d{8})$")
_LOCK = 0x50A0_0002  # one process at a time creates or drops partitions
SQLITE_BATCH = 5_000


@dataclass(frozen=True)
class Retention:
    """How long events and minute rollups are kept, in days."""

    events_days: int = 30
    rollup_days: int = 90

    @classmethod
    def from_config(cls, cfg) -> Retention:
        """Read PANORAMA_RETENTION_DAYS and PANORAMA_ROLLUP_RETENTION_DAYS."""
        return cls(int(cfg["PANORAMA_RETENTION_DAYS"]), int(cfg["PANORAMA_ROLLUP_RETENTION_DAYS"]))

    def events_cutoff_ms(self, now_ms: int) -> int:
        """Return the oldest event time still kept: the start of the oldest day inside retention."""
        return day_of(now_ms - self.events_days * DAY_MS) * DAY_MS

    def rollup_cutoff_ms(self, now_ms: int) -> int:
        """Return the oldest minute still kept in the minute rollups."""
        return day_of(now_ms - self.rollup_days * DAY_MS) * DAY_MS


def day_of(ms: int) -> int:
    """Return the UTC day number (days since 1970-01-01) of an epoch-ms time."""
    return ms // DAY_MS


def partition_name(table: str, day: int) -> str:
    """Return the partition of ``table`` that holds ``day``: ``events_20261205``."""
    return f"{table}_{datetime.fromtimestamp(day * 86_400, timezone.utc):%Y%m%d}"


def _day_of_name(name: str) -> int | None:
    m = _NAME.match(name)
    if not m:
        return None
    stamp = datetime.strptime(m["day"], "%Y%m%d").replace(tzinfo=timezone.utc)
    return int(stamp.timestamp()) // 86_400


def is_partition(name: str) -> bool:
    """Tell whether a table name is one of the day partitions (which the models do not declare)."""
    m = _NAME.match(name)
    return bool(m) and m["table"] in PARTITIONED


# The events' key: on PostgreSQL each day partition holds it (create_days), the parent cannot.
EVENTS_KEY = "uq_events_domain_event_id"


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's filter: leave the day partitions, the events' key that they hold instead of their parent,
    and an index declared for other databases only (``info["dialects"]``) out of autogenerate's comparison."""
    if type_ == "table" and reflected and compare_to is None and is_partition(name):
        return False
    if type_ == "index" and not reflected and compare_to is None and obj.info.get("dialects"):
        # Missing where its migration does not make it (the trigram index on SQLite); PostgreSQL has it, so
        # there it is compared like any other.
        return False
    return not (type_ == "unique_constraint" and name == EVENTS_KEY and not reflected and compare_to is None)


def existing_days(conn: Connection, table: str) -> set[int]:
    """Return the days that ``table`` has a partition for (PostgreSQL)."""
    rows = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t"), {"t": table}).scalars()
    return {d for d in (_day_of_name(r) for r in rows) if d is not None}


def create_days(conn: Connection, tables: Iterable[str], days: Iterable[int]) -> list[str]:
    """Create the missing day partitions of ``tables`` (PostgreSQL); return the names made.

    Serialised by an advisory lock so two workers meeting a new day at once do not race on the catalogue.
    """
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    made = []
    for table in tables:
        have = existing_days(conn, table)
        for day in sorted(set(days) - have):
            name = partition_name(table, day)
            conn.execute(text(f'CREATE TABLE "{name}" PARTITION OF "{table}" '
                              f"FOR VALUES FROM ({day * DAY_MS}) TO ({(day + 1) * DAY_MS})"))
            if table == "events":
                # The exactly-once key within the day; the insert's ON CONFLICT DO NOTHING (no target) obeys it.
                conn.execute(text(f'CREATE UNIQUE INDEX "{name}_key" ON "{name}" (domain, event_id)'))
            made.append(name)
    return made


def drop_before(engine: Engine, tables: Iterable[str], cutoff_ms: int) -> list[str]:
    """Detach and drop the day partitions of ``tables`` that end at or before ``cutoff_ms`` (PostgreSQL).

    ``DETACH ... CONCURRENTLY`` does not block readers and writers of the other days; it cannot run inside a
    transaction, so each partition goes in its own.
    """
    dropped = []
    with engine.connect() as conn:
        old = [(t, d) for t in tables for d in sorted(existing_days(conn, t)) if (d + 1) * DAY_MS <= cutoff_ms]
    for table, day in old:
        name = partition_name(table, day)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'ALTER TABLE "{table}" DETACH PARTITION "{name}" CONCURRENTLY'))
            conn.execute(text(f'DROP TABLE "{name}"'))
        dropped.append(name)
    return dropped


def _delete_before(engine: Engine, table: str, column: str, key: str, cutoff_ms: int) -> int:
    """Delete rows older than ``cutoff_ms`` in batches (SQLite), oldest keys first; return how many."""
    total = 0
    while True:
        with engine.begin() as conn:
            n = conn.execute(text(
                f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {column} < :c "
                f"ORDER BY {key} LIMIT :n)"), {"c": cutoff_ms, "n": SQLITE_BATCH}).rowcount
        total += n
        if n < SQLITE_BATCH:
            return total


def maintain(engine: Engine, now_ms: int, retention: Retention) -> dict:
    """Make today's and the next days' partitions and drop (or delete) what retention no longer keeps.

    Returns what it did: ``{"created": [...], "dropped": [...], "deleted": {table: rows}}``.
    """
    today = day_of(now_ms)
    out: dict = {"created": [], "dropped": [], "deleted": {}}
    events_cut, rollup_cut = retention.events_cutoff_ms(now_ms), retention.rollup_cutoff_ms(now_ms)
    if is_postgres(engine):
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '5s'"))
            out["created"] = create_days(conn, PARTITIONED, range(today, today + DAYS_AHEAD + 1))
        out["dropped"] = (drop_before(engine, EVENT_TABLES, events_cut)
                          + drop_before(engine, MINUTE_TABLES, rollup_cut))
    else:
        out["deleted"]["events"] = _delete_before(engine, "events", "ts_ms", "seq", events_cut)
        out["deleted"]["unit_track"] = _delete_before(engine, "unit_track", "ts_ms", "ts_ms", events_cut)
        for table in MINUTE_TABLES:
            out["deleted"][table] = _delete_before(engine, table, "minute_ms", "minute_ms", rollup_cut)
    if out["created"] or out["dropped"] or any(out["deleted"].values()):
        log.info("partitions: created %s, dropped %s, deleted %s", out["created"], out["dropped"], out["deleted"])
    return out


def start_maintenance(svc, stop_event: threading.Event, every_s: float = 3600.0) -> threading.Thread:
    """Run ``maintain`` now and then every ``every_s`` seconds until ``stop_event`` is set.

    Safe in every ingest worker: creating and dropping take one advisory lock, and a partition already made
    or dropped by another worker is skipped. A failure (the database down) is logged and tried next time.
    """
    retention = Retention.from_config(svc.config)

    def run() -> None:
        while not stop_event.is_set():
            try:
                maintain(svc.engine, svc.clock(), retention)
            except Exception:  # noqa: BLE001 - a maintenance round must not end the worker
                log.exception("partition maintenance failed; retrying in %.0f s", every_s)
            stop_event.wait(every_s)

    thread = threading.Thread(target=run, name="partition-maintenance", daemon=True)
    thread.start()
    return thread
