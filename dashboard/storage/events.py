"""Persist validated events in batches: dedupe, additive rollups, incidents, feed state."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

from sqlalchemy import func, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from dashboard.core.clock import DAY_MS
from dashboard.storage import incidents as incident_rules
from dashboard.storage import partitions
from dashboard.core.city import DEFAULT_CITY, OTHER, City, load_city
from dashboard.storage.db import is_postgres, lock_conflict, sqlstate
from dashboard.storage.models import district_hours, district_minutes, events, feed_state, rollup_hours, rollups

# Column order of the events rows built once per event and reused by every path.
EVENT_COLUMNS = ("domain", "event_id", "ts_ms", "received_ms", "kind", "district", "street", "severity",
                 "lat", "lon", "value", "unit", "title", "detail", "source")
# Besides the event, the temporary table takes the street and kind it is counted under in the rollups.
_PG_TYPES = ("text", "text", "int8", "int8", "text", "text", "text", "int2",
             "float8", "float8", "float8", "text", "text", "text", "text", "text", "text")
_PG_TEMP = """CREATE TEMP TABLE IF NOT EXISTS tmp_events (
    domain text, event_id text, ts_ms int8, received_ms int8, kind text, district text, street text,
    severity int2, lat float8, lon float8, value float8, unit text, title text, detail text, source text,
    rollup_street text, rollup_kind text
) ON COMMIT DELETE ROWS"""
_COLS = ", ".join(EVENT_COLUMNS)
_TMP_COLS = _COLS + ", rollup_street, rollup_kind"
_ROLLUP_ADD = ("n", "sev1", "sev2", "sev3", "sev4", "value_sum", "value_n")
# Exactly once on PostgreSQL: each day partition has a unique (domain, event_id) index, so a repeated id is
# stopped within its UTC day, race-free, by ON CONFLICT DO NOTHING; an event within this much of midnight
# is also looked up in the neighbouring day (a probe that costs ~10 µs an event, so only for those). So a
# repeat within an hour of the first is always stored once, and one on the same UTC day too. SQLite keeps
# one unique (domain, event_id) for the whole table.
DEDUPE_HORIZON_MS = 3_600_000
MINUTE_MS, HOUR_MS = 60_000, 3_600_000


def _rollup_cte(name: str, table: str, bucket_ms: int, time_col: str) -> str:
    return f"""{name} AS (
    INSERT INTO {table} AS r ({time_col}, district, street, domain, kind, {", ".join(_ROLLUP_ADD)}, value_max)
    SELECT i.ts_ms - i.ts_ms % {bucket_ms}, i.district, t.rollup_street, i.domain, t.rollup_kind, count(*),
           count(*) FILTER (WHERE i.severity = 1), count(*) FILTER (WHERE i.severity = 2),
           count(*) FILTER (WHERE i.severity = 3), count(*) FILTER (WHERE i.severity = 4),
           coalesce(sum(i.value), 0), count(i.value), max(i.value)
    FROM ins i JOIN tmp_events t ON t.domain = i.domain AND t.event_id = i.event_id
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({time_col}, district, street, domain, kind) DO UPDATE SET
    {", ".join(f"{c} = r.{c} + EXCLUDED.{c}" for c in _ROLLUP_ADD)},
    value_max = greatest(r.value_max, EXCLUDED.value_max)
)"""


def _district_cte(name: str, table: str, bucket_ms: int, time_col: str) -> str:
    return f"""{name} AS (
    INSERT INTO {table} AS d ({time_col}, district, domain, n, sev1, sev2, sev3, sev4)
    SELECT ts_ms - ts_ms % {bucket_ms}, district, domain, count(*),
           count(*) FILTER (WHERE severity = 1), count(*) FILTER (WHERE severity = 2),
           count(*) FILTER (WHERE severity = 3), count(*) FILTER (WHERE severity = 4)
    FROM ins GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT ({time_col}, district, domain) DO UPDATE SET
    {", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in _ROLLUP_ADD[:5])}
)"""


# One round trip on PostgreSQL: insert the batch skipping repeats (DEDUPE_HORIZON_MS above), add only the
# rows that were really new to the minute and hour rollups (aggregated by the server, under the street and
# kind the city pack folded them to), and return the new keys. Rows are taken in sorted order so that two
# workers with overlapping batches lock them in the same order.
_PG_INSERT = f"""WITH ins AS (
    INSERT INTO events ({_COLS}) SELECT {_COLS} FROM tmp_events t
    WHERE t.ts_ms % {DAY_MS} BETWEEN {DEDUPE_HORIZON_MS} AND {DAY_MS - 1 - DEDUPE_HORIZON_MS}
       OR NOT EXISTS (SELECT 1 FROM events e WHERE e.domain = t.domain AND e.event_id = t.event_id
                      AND e.ts_ms BETWEEN t.ts_ms - {DEDUPE_HORIZON_MS} AND t.ts_ms + {DEDUPE_HORIZON_MS})
    ORDER BY domain, event_id
    ON CONFLICT DO NOTHING
    RETURNING seq, domain, event_id, ts_ms, district, severity, value
), {_rollup_cte("agg", "rollups", MINUTE_MS, "minute_ms")},
{_rollup_cte("agg_hours", "rollup_hours", HOUR_MS, "hour_ms")},
{_district_cte("city", "district_minutes", MINUTE_MS, "minute_ms")},
{_district_cte("city_hours", "district_hours", HOUR_MS, "hour_ms")}
SELECT seq, domain, event_id FROM ins"""

# The hour rollups summed from the minute rollups: how an existing database (migration 0006) and a preloaded
# benchmark history get theirs; ingest adds to both as it goes.
HOURS_FROM_MINUTES = (
    "INSERT INTO rollup_hours (hour_ms, district, street, domain, kind, n, sev1, sev2, sev3, sev4, value_sum, "
    "value_n, value_max) SELECT minute_ms - minute_ms % 3600000, district, street, domain, kind, sum(n), sum(sev1), "
    "sum(sev2), sum(sev3), sum(sev4), sum(value_sum), sum(value_n), max(value_max) FROM rollups "
    "GROUP BY 1, 2, 3, 4, 5",
    "INSERT INTO district_hours (hour_ms, district, domain, n, sev1, sev2, sev3, sev4) "
    "SELECT minute_ms - minute_ms % 3600000, district, domain, sum(n), sum(sev1), sum(sev2), sum(sev3), sum(sev4) "
    "FROM district_minutes GROUP BY 1, 2, 3",
)


class Event(Protocol):
    """What the store needs of an event: the fields of ``feeds.schema.Event`` (the one definition of the
    schema, a layer above: the store takes any object of this shape)."""

    id: str
    kind: str
    district: str
    severity: int
    domain: str | None
    street: str | None
    lat: float | None
    lon: float | None
    value: float | None
    unit: str | None
    title: str | None
    detail: str | None
    source: str | None

    @property
    def ts_ms(self) -> int: ...


@dataclass(frozen=True)
class StoredEvent:
    """An event that this batch stored for the first time."""

    seq: int
    event: Event
    ts_ms: int


@dataclass
class WriteResult:
    """What one batch changed: new events, per-minute count increments, incidents, feed freshness."""

    stored: list[StoredEvent] = field(default_factory=list)
    duplicates: int = 0
    counts: dict[tuple, list[int]] = field(default_factory=dict)  # (minute, district, domain) -> n, sev1..4
    folded: dict[tuple[str, str], int] = field(default_factory=dict)  # (domain, "street"|"kind") -> new events
    incidents: list[dict] = field(default_factory=list)
    feeds: dict[str, int] = field(default_factory=dict)


def event_row(ev: Event, received_ms: int) -> tuple:
    """Return the events-table row of an event, in EVENT_COLUMNS order."""
    return (ev.domain, ev.id, ev.ts_ms, received_ms, ev.kind, ev.district, ev.street, ev.severity,
            _f(ev.lat), _f(ev.lon), _f(ev.value), ev.unit, ev.title, ev.detail, ev.source)


def _f(v):
    return None if v is None else float(v)


# PostgreSQL's answer to a row of a day with no partition (dropped by retention while this worker still
# believed in it): the store forgets what it knew of the partitions and tries again.
NO_PARTITION = "23514"


def _is_retryable(exc: BaseException) -> bool:
    # Deadlocks and serialization failures roll the whole batch back: redoing it is safe. (The COPY path's raw
    # psycopg cursor raises the driver's error bare; ``sqlstate`` reads both.)
    return lock_conflict(exc) or sqlstate(exc) == NO_PARTITION


def aggregate(stored: Iterable[StoredEvent], keys: dict[tuple[str, str], tuple[str, str]],
              bucket_ms: int = MINUTE_MS) -> dict[tuple, list]:
    """Sum stored events into rollup increments keyed (minute or hour, district, street, domain, kind).

    ``keys`` maps each event's (domain, id) to the (street, kind) it is counted under.
    """
    out: dict[tuple, list] = {}
    for s in stored:
        ev = s.event
        street, kind = keys[(ev.domain, ev.id)]
        key = (s.ts_ms - s.ts_ms % bucket_ms, ev.district, street, ev.domain, kind)
        acc = out.get(key)
        if acc is None:
            # n, sev1..sev4, value_sum, value_n, value_max
            acc = out[key] = [0, 0, 0, 0, 0, 0.0, 0, None]
        acc[0] += 1
        acc[ev.severity] += 1
        if ev.value is not None:
            acc[5] += ev.value
            acc[6] += 1
            acc[7] = ev.value if acc[7] is None else max(acc[7], ev.value)
    return out


def count_by_minute(stored: Iterable[StoredEvent], bucket_ms: int = MINUTE_MS) -> dict[tuple, list[int]]:
    """Count stored events by (minute, district, domain) with severity counts: what the screens add up."""
    out: dict[tuple, list[int]] = {}
    for s in stored:
        key = (s.ts_ms - s.ts_ms % bucket_ms, s.event.district, s.event.domain)
        acc = out.get(key)
        if acc is None:
            acc = out[key] = [0, 0, 0, 0, 0]
        acc[0] += 1
        acc[s.event.severity] += 1
    return out


def count_folded(stored: Iterable[StoredEvent], keys: dict[tuple[str, str], tuple[str, str]]) -> dict:
    """Count the stored events whose street or kind the rollups counted under OTHER, by domain."""
    out: dict[tuple[str, str], int] = {}
    for s in stored:
        ev = s.event
        street, kind = keys[(ev.domain, ev.id)]
        if street == OTHER:
            out[(ev.domain, "street")] = out.get((ev.domain, "street"), 0) + 1
        if kind == OTHER:
            out[(ev.domain, "kind")] = out.get((ev.domain, "kind"), 0) + 1
    return out


class EventStore:
    """Write batches of validated events to SQL exactly once per (domain, id).

    The rollups count streets and kinds the city pack does not know under ``OTHER`` (the events keep
    what was sent), so free text cannot grow the rows of a district-minute beyond what the pack names.
    """

    def __init__(self, engine: Engine, city: City | None = None):
        self.engine = engine
        self.city = city if city is not None else load_city(DEFAULT_CITY)
        self.postgres = is_postgres(engine)
        self._insert = (postgresql if self.postgres else sqlite).insert
        # Statements are built once: compiling them per batch cost more than running them.
        self._events_stmt = (self._insert(events).on_conflict_do_nothing(index_elements=["domain", "event_id"])
                             .returning(events.c.seq, events.c.domain, events.c.event_id,
                                        sort_by_parameter_order=True))
        self._rollups_stmts = {
            bucket: self._additive_upsert(table, [col, "district", "street", "domain", "kind"],
                                          add=list(_ROLLUP_ADD), greatest=["value_max"])
            for bucket, table, col in ((MINUTE_MS, rollups, "minute_ms"), (HOUR_MS, rollup_hours, "hour_ms"))}
        self._district_stmts = {
            bucket: self._additive_upsert(table, [col, "district", "domain"], add=list(_ROLLUP_ADD[:5]), greatest=[])
            for bucket, table, col in ((MINUTE_MS, district_minutes, "minute_ms"),
                                       (HOUR_MS, district_hours, "hour_ms"))}
        self._days: set[int] = set()  # day partitions known to exist (PostgreSQL)
        self._feeds_stmt = self._additive_upsert(feed_state, ["domain"], add=[],
                                                 greatest=["last_event_ms", "last_received_ms"])

    def _additive_upsert(self, table, keys: list[str], add: list[str], greatest: list[str]):
        stmt = self._insert(table)
        ex = stmt.excluded
        set_ = {c: table.c[c] + ex[c] for c in add}
        set_.update({c: _greatest(self.postgres, table.c[c], ex[c]) for c in greatest})
        return stmt.on_conflict_do_update(index_elements=keys, set_=set_)

    @retry(retry=retry_if_exception(_is_retryable), stop=stop_after_attempt(5),
           wait=wait_random_exponential(multiplier=0.05, max=1), reraise=True)
    def write(self, batch: Sequence[Event], received_ms: int,
              also: Callable[[Connection, list[StoredEvent], int], None] | None = None) -> WriteResult:
        """Store a batch in one transaction and return what was new; ``also`` writes more in the same transaction
        from the events that were new (the alert rules' state: counted once, exactly when the events are)."""
        unique: dict[tuple[str, str], Event] = {}
        for ev in batch:
            unique.setdefault((ev.domain, ev.id), ev)
        result = WriteResult(duplicates=len(batch) - len(unique))
        if not unique:
            return result
        city = self.city
        keys = {k: (city.rollup_street(ev.district, ev.street), city.rollup_kind(ev.kind))
                for k, ev in unique.items()}
        if self.postgres:
            self.ensure_days({ev.ts_ms // DAY_MS for ev in unique.values()})
        try:
            return self._write(unique, keys, received_ms, result, also)
        except Exception as exc:
            if sqlstate(exc) == NO_PARTITION:
                self._days.clear()
            raise

    def ensure_days(self, days: set[int]) -> None:
        """Make sure the day partitions of these days exist (PostgreSQL): normally made ahead by
        ``partitions.maintain``; an event of an earlier day within retention (a late feed) makes its own."""
        if days <= self._days:
            return
        with self.engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '5s'"))
            partitions.create_days(conn, partitions.PARTITIONED, days)
            self._days |= partitions.existing_days(conn, "events")

    def _write(self, unique: dict, keys: dict, received_ms: int, result: WriteResult, also=None) -> WriteResult:
        with self.engine.begin() as conn:
            rows = [event_row(ev, received_ms) for ev in unique.values()]
            inserted = (self._insert_pg(conn, rows, list(keys.values())) if self.postgres
                        else self._insert_generic(conn, rows))
            for seq, domain, event_id in inserted:
                ev = unique[(domain, event_id)]
                result.stored.append(StoredEvent(seq, ev, ev.ts_ms))
            result.duplicates += len(unique) - len(result.stored)
            result.stored.sort(key=lambda s: (s.ts_ms, s.seq))
            result.counts = count_by_minute(result.stored)
            result.folded = count_folded(result.stored, keys)
            if not self.postgres and result.stored:  # PostgreSQL did these in the insert statement
                for bucket, col in ((MINUTE_MS, "minute_ms"), (HOUR_MS, "hour_ms")):
                    self._upsert_rollups(conn, bucket, col, aggregate(result.stored, keys, bucket))
                    counts = result.counts if bucket == MINUTE_MS else count_by_minute(result.stored, bucket)
                    conn.execute(self._district_stmts[bucket], [
                        {col: k[0], "district": k[1], "domain": k[2], "n": v[0],
                         "sev1": v[1], "sev2": v[2], "sev3": v[3], "sev4": v[4]} for k, v in sorted(counts.items())])
            result.feeds = self._touch_feeds(conn, result.stored, received_ms)
            result.incidents = incident_rules.attach(conn, result.stored, received_ms, postgres=self.postgres,
                                                    centres=self.city.centres)
            if also is not None and result.stored:
                also(conn, result.stored, received_ms)
        return result

    def _insert_pg(self, conn: Connection, rows: list[tuple], keys: list[tuple[str, str]]) -> list[tuple]:
        # COPY into a session temp table, then one statement that inserts and rolls up.
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute(_PG_TEMP)
            with cur.copy(f"COPY tmp_events ({_TMP_COLS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_PG_TYPES)
                for row, key in zip(rows, keys):
                    copy.write_row(row + key)
            cur.execute(_PG_INSERT)
            return cur.fetchall()

    def _insert_generic(self, conn: Connection, rows: list[tuple]) -> list[tuple]:
        params = [dict(zip(EVENT_COLUMNS, row)) for row in rows]
        return [tuple(r) for r in conn.execute(self._events_stmt, params)]

    def _upsert_rollups(self, conn: Connection, bucket_ms: int, time_col: str, deltas: dict[tuple, list]) -> None:
        if not deltas:
            return
        # Sorted keys: two workers upserting the same minute lock rows in the same order.
        params = [
            {time_col: k[0], "district": k[1], "street": k[2], "domain": k[3], "kind": k[4],
             "n": v[0], "sev1": v[1], "sev2": v[2], "sev3": v[3], "sev4": v[4],
             "value_sum": v[5], "value_n": v[6], "value_max": v[7]}
            for k, v in sorted(deltas.items())
        ]
        conn.execute(self._rollups_stmts[bucket_ms], params)

    def _touch_feeds(self, conn: Connection, stored: list[StoredEvent], received_ms: int) -> dict[str, int]:
        newest: dict[str, int] = defaultdict(int)
        for s in stored:
            newest[s.event.domain] = max(newest[s.event.domain], s.ts_ms)
        if not newest:
            return {}
        conn.execute(self._feeds_stmt, [{"domain": d, "last_event_ms": ms, "last_received_ms": received_ms}
                                        for d, ms in sorted(newest.items())])
        return dict(newest)


def _greatest(postgres: bool, a, b):
    """Return SQL for the larger of two nullable values on either engine."""
    if postgres:
        return func.greatest(a, b)
    # SQLite's two-argument max() is NULL if either is NULL.
    return func.coalesce(func.max(a, b), a, b)

