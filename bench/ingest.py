"""Benchmark stream ingest: bare XREADGROUP baseline vs the full pipeline into PostgreSQL.

Run ``PYTHONPATH=. .venv/bin/python -m bench.ingest`` (see ``--help``; ``python -m bench`` runs the standard set). It

1. recreates its own PostgreSQL database (``panorama_bench``) and migrates it; empties Redis db 13 of the keys
   ingest uses (``feeds:*``, ``panorama:*``; ``--flushdb`` flushes the whole db). Db 13 is this benchmark's
   alone: the tests use 15 and ``bench.fanout`` uses 14, whose publisher increments the same counters;
2. preloads N generated events (seeded; ``--mix stress`` or ``city``) into the four ``feeds:<domain>`` streams
   (not timed);
3. times a bare redis-py consumer that only XREADGROUPs (COUNT 1000) and XACKs every entry (the baseline);
4. times the real ``StreamConsumer`` + ``Pipeline(EventStore)`` with the app's own ``batch_size`` and ``flush_ms``
   (1 thread, or K processes in one group) until all N events are stored, then verifies events, rollups,
   incident reports, acks and counters. Wrappers on the instances (and on the two module functions that
   ``EventStore.write`` looks up per call) split the consumer's time: XREADGROUP, parse, the parts of the
   write as it is now on PostgreSQL (COPY, the one insert+rollup statement, count_by_minute, feed_state,
   incidents, COMMIT), the Redis flush, and cyclic GC pauses. The code under test is not changed;
5. times the stages in isolation on a sample (parse, ``EventStore.write`` and its parts, the Redis flush);
6. prints a table (or JSON with ``--json``). Targets are reported, never asserted: the exit status is
   non-zero only on errors (a failed verification, a crash, a stall).

The pipeline's deltas go to ``bench:panorama:updates`` instead of ``panorama:updates`` (pub/sub channels are
shared by every Redis db, so a benchmark must not flood other people's gateways); pass
``--updates-channel panorama:updates`` to publish where production does. The cost is the same.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import logging
import multiprocessing as mp
import os
import platform
import pstats
import random
import statistics
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import metadata as importlib_metadata
from time import perf_counter
from typing import Iterator

import psycopg
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dashboard.core.bus import CLIENT_OPTIONS
from dashboard.core.city import load_city
from dashboard.storage.db import make_engine, upgrade
from dashboard.core.channels import DOMAINS, INGEST_GROUP, UPDATES_CHANNEL, feed_name, feed_names, ingested_counts_key, \
    reject_counts_key

log = logging.getLogger("bench.ingest")

# db 13: the ingested counter is verified exactly, so no other benchmark or test may write here
# (the tests use db 15, bench.fanout db 14).
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_DB = "panorama_bench"
BENCH_UPDATES_CHANNEL = "bench:panorama:updates"
BASELINE_GROUP = "bench-baseline"
TARGET_EVENTS_PER_S = 25_000
TARGET_RATIO = 0.40
CST = timezone(timedelta(hours=8))
BASE_TS = datetime(2026, 11, 26, 8, 0, tzinfo=CST)

# --------------------------------------------------------------------------- the generated feed

# The event mixes (--mix). Severity 1 info .. 4 critical, drawn the same way in every domain.
# An event is incident-worthy when it is of the incident domain or of severity >= 3 (SPEC section 3).
MIXES: dict[str, dict[str, dict]] = {
    # A stress mix: 10 % incident domain and 5 % severity >= 3, so about 14.5 % incident-worthy.
    "stress": {"domains": {"traffic": 40, "environment": 30, "security": 20, "incident": 10},
               "severity": {1: 70, 2: 25, 3: 4, 4: 1}},
    # An operations centre's ordinary day: 1 % incident domain, 1 % severity >= 3 elsewhere, about 2 % in all.
    "city": {"domains": {"traffic": 45, "environment": 34, "security": 20, "incident": 1},
             "severity": {1: 80, 2: 19, 3: 0.8, 4: 0.2}},
}
DEFAULT_MIX = "stress"
DOMAIN_WEIGHTS = MIXES[DEFAULT_MIX]["domains"]
SEVERITY_WEIGHTS = MIXES[DEFAULT_MIX]["severity"]
# kind: (weight, Chinese label, unit, value range or None, source prefix)
KINDS: dict[str, dict[str, tuple]] = {
    "traffic": {
        "congestion": (45, "交通拥堵", "index", (1.0, 10.0), "loop"),
        "speed": (30, "平均车速", "km/h", (5.0, 90.0), "radar"),
        "accident": (10, "交通事故", None, None, "camera"),
        "signal_fault": (10, "信号灯故障", None, None, "signal"),
        "road_closure": (5, "道路封闭", None, None, "tpb"),
    },
    "environment": {
        "aqi": (30, "空气质量指数", "AQI", (15.0, 180.0), "aqs"),
        "pm25": (25, "PM2.5浓度", "µg/m³", (5.0, 120.0), "aqs"),
        "noise": (25, "噪声监测", "dB", (35.0, 95.0), "noise"),
        "water_level": (10, "河道水位", "m", (0.2, 4.5), "hydro"),
        "rainfall": (8, "降雨量", "mm/h", (0.0, 60.0), "rain"),
        "pollution_discharge": (2, "污染排放", "mg/L", (0.5, 40.0), "outfall"),
    },
    "security": {
        "crowd_density": (40, "人群密度", "p/m²", (0.1, 4.0), "camera"),
        "suspicious_vehicle": (20, "可疑车辆", None, None, "lpr"),
        "theft": (20, "盗窃警情", None, None, "110"),
        "intrusion": (12, "非法闯入", None, None, "gate"),
        "fight": (8, "打架斗殴", None, None, "110"),
    },
    "incident": {
        "public_complaint": (40, "市民投诉", None, None, "12345"),
        "medical": (25, "医疗急救", None, None, "120"),
        "fire": (15, "火情", None, None, "119"),
        "flood": (10, "积水内涝", None, None, "12345"),
        "gas_leak": (7, "燃气泄漏", None, None, "119"),
        "building_collapse": (3, "建筑倒塌", None, None, "119"),
    },
}
SEVERITY_WORDS = {1: "", 2: "（轻微）", 3: "（较大）", 4: "（严重）"}
DETAILS = ("市民来电反映，请尽快核实处置。", "现场视频已回传指挥中心。", "传感器读数超过阈值。",
           "巡逻人员已到场。", "附近学校和医院已通知。")


def opens_incident(domain: str, severity: int) -> bool:
    """Mirror SPEC section 3: an incident-domain event or severity >= 3 opens or joins an incident."""
    return domain == "incident" or severity >= 3


@dataclass
class FeedStats:
    """What the generator produced."""

    events: int = 0
    entries: int = 0
    bytes: int = 0
    by_domain: dict[str, int] = field(default_factory=dict)
    incident_worthy: int = 0


def generate_events(n: int, seed: int, span_s: int, mix: str = DEFAULT_MIX) -> Iterator[tuple[str, dict]]:
    """Yield ``n`` (domain, event) pairs deterministically: unique ids, all nine districts, the ``mix``'s weights."""
    rng = random.Random(seed)
    city = load_city("shenzhen")
    districts = city.districts
    pop_weights = [d.population for d in districts]
    domain_weights, severity_weights = MIXES[mix]["domains"], MIXES[mix]["severity"]
    domains = list(domain_weights)
    domain_cum = _cum(domain_weights.values())
    sev_values = list(severity_weights)
    sev_cum = _cum(severity_weights.values())
    kinds = {dom: (list(k), _cum(v[0] for v in k.values())) for dom, k in KINDS.items()}
    base_ms = int(BASE_TS.timestamp() * 1000)
    span_ms = span_s * 1000
    # the districts weighted by population, but every one of the nine present
    for i in range(n):
        domain = rng.choices(domains, cum_weights=domain_cum)[0]
        names, cum = kinds[domain]
        kind = rng.choices(names, cum_weights=cum)[0]
        _w, label, unit, vrange, source = KINDS[domain][kind]
        district = districts[i % 9] if i < 9 else rng.choices(districts, weights=pop_weights)[0]
        street = rng.choice(district.streets).name if district.streets else None
        severity = rng.choices(sev_values, cum_weights=sev_cum)[0]
        ts_ms = base_ms + (i * span_ms) // max(n, 1) + rng.randint(-2000, 2000)
        ev: dict = {
            "id": f"{domain[:3]}-{seed}-{i:08d}",
            # sensors send epoch milliseconds, people-facing systems RFC 3339 with the local offset
            "ts": ts_ms if domain in ("traffic", "environment")
            else datetime.fromtimestamp(ts_ms / 1000, CST).isoformat(timespec="milliseconds"),
            "kind": kind,
            "district": district.code if rng.random() < 0.5 else district.slug,
            "severity": severity,
            "title": f"{street or district.name}{label}{SEVERITY_WORDS[severity]}",
            "source": f"{source}-{rng.randint(1, 400):04d}",
        }
        if street and rng.random() < 0.9:
            ev["street"] = street
        if rng.random() < 0.92:
            ev["lat"] = round(district.lat + rng.gauss(0, 0.015), 6)
            ev["lon"] = round(district.lon + rng.gauss(0, 0.015), 6)
        if vrange is not None:
            ev["value"] = round(rng.uniform(*vrange), 2)
            ev["unit"] = unit
        if domain in ("incident", "security") and rng.random() < 0.3:
            ev["detail"] = rng.choice(DETAILS)
        yield domain, ev


def generate_messages(n: int, batch: int, seed: int, span_s: int, stats: FeedStats | None = None,
                      mix: str = DEFAULT_MIX) -> Iterator[tuple[str, dict | list[dict]]]:
    """Group the generated events into feed messages: one event each, or arrays of ``batch`` of one domain."""
    buffers: dict[str, list[dict]] = {d: [] for d in DOMAINS}
    for domain, ev in generate_events(n, seed, span_s, mix):
        if stats is not None:
            stats.events += 1
            stats.by_domain[domain] = stats.by_domain.get(domain, 0) + 1
            stats.incident_worthy += opens_incident(domain, ev["severity"])
        if batch <= 1:
            yield domain, ev
            continue
        buf = buffers[domain]
        buf.append(ev)
        if len(buf) >= batch:
            yield domain, buf
            buffers[domain] = []
    for domain, buf in buffers.items():
        if buf:
            yield domain, buf


def _cum(weights) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


# --------------------------------------------------------------------------- Redis and PostgreSQL


class _BenchPipeline(redis.client.Pipeline):
    updates_channel = UPDATES_CHANNEL

    def publish(self, channel, message, **kwargs):
        if channel == UPDATES_CHANNEL:
            channel = self.updates_channel
        return super().publish(channel, message, **kwargs)


class BenchRedis(redis.Redis):
    """A redis-py client with the app's settings whose pipelines publish deltas to a channel of the bench's own.

    With ``read_stats`` set it also times its XREADGROUP calls (the round trip and hiredis parsing of the reply).
    """

    updates_channel = UPDATES_CHANNEL
    read_stats: "RunStats | None" = None

    def pipeline(self, transaction=True, shard_hint=None):
        pipe = _BenchPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.updates_channel = self.updates_channel
        return pipe

    def xreadgroup(self, *args, **kwargs):
        stats = self.read_stats
        if stats is None:
            return super().xreadgroup(*args, **kwargs)
        t = perf_counter()
        reply = None
        try:
            reply = super().xreadgroup(*args, **kwargs)
            return reply
        finally:
            dt = perf_counter() - t
            if any(entries for _stream, entries in reply or ()):
                stats.xread_s += dt
                stats.xreads += 1
            else:  # nothing there: a blocking wait on drained streams, not reading work
                stats.xread_empty_s += dt
                stats.xreads_empty += 1


def connect_redis(url: str, updates_channel: str = UPDATES_CHANNEL, read_stats: "RunStats | None" = None
                  ) -> BenchRedis:
    """Connect like ``dashboard.bus.connect`` does (same options; hiredis when installed)."""
    client = BenchRedis.from_url(url, **CLIENT_OPTIONS)
    client.updates_channel = updates_channel
    client.read_stats = read_stats
    return client


def reset_redis(client: redis.Redis, flushdb: bool) -> None:
    """Empty the bench's Redis db: FLUSHDB, or by default delete only the keys ingest uses (feeds:*, panorama:*)."""
    if flushdb:
        client.flushdb()
        return
    for pattern in ("feeds:*", "panorama:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i:i + 1000])


def admin_dsn(pg_url: str) -> str:
    """Return a plain libpq URL of the server's maintenance database."""
    return make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)


def recreate_database(pg_url: str, name: str) -> str:
    """Drop and create database ``name`` beside ``pg_url``'s, migrate it to head; return its SQLAlchemy URL."""
    with psycopg.connect(admin_dsn(pg_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


def drop_database(pg_url: str, name: str) -> None:
    """Drop a database the benchmark created."""
    with psycopg.connect(admin_dsn(pg_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def preload(client: redis.Redis, args, stats: FeedStats) -> float:
    """XADD all messages to the four streams with pipelines; return the seconds it took (not counted)."""
    from feeds.publish import encode, publish_many

    started = perf_counter()
    per_round = max(1, 10_000 // args.batch)  # ~10,000 events per pipeline round trip
    chunk: list = []

    def send():
        stats.entries += publish_many(client, chunk, transport="stream", maxlen=None)
        chunk.clear()

    for domain, payload in generate_messages(args.events, args.batch, args.seed, args.span, stats, args.mix):
        stats.bytes += len(encode(payload))
        chunk.append((domain, payload))
        if len(chunk) >= per_round:
            send()
    if chunk:
        send()
    return perf_counter() - started


def server_cpu(db_name: str) -> dict[int, tuple[str, float]]:
    """Snapshot CPU seconds of local PostgreSQL and Redis processes: pid -> (role, seconds); {} if unreadable.

    Roles: ``pg_bench`` (backends of the bench database), ``pg_aux`` (checkpointer, WAL writer, ...), ``redis``,
    and ``machine`` (key -1: all CPUs' busy time, from /proc/stat).
    Best effort, and only meaningful when the servers run on this machine.
    """
    out: dict[int, tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rpartition(")")[2].split()
        except OSError:
            continue
        if cmd.startswith("postgres: "):
            role = "pg_bench" if f" {db_name} " in f"{cmd} " else (
                "pg_aux" if any(w in cmd for w in ("checkpointer", "writer", "walwriter")) else None)
        elif cmd.startswith("redis-server"):
            role = "redis"
        else:
            role = None
        if role:
            out[pid] = (role, (int(fields[11]) + int(fields[12])) / tick)  # utime + stime
    try:  # the whole machine's busy time, to tell how much other processes took during the run
        with open("/proc/stat") as fh:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fh.readline().split()[1:9])
        out[-1] = ("machine", (user + nice + system + irq + softirq + steal) / tick)
    except (OSError, ValueError):
        pass
    return out


def cpu_delta(before: dict, after: dict, ingest_s: float | None = None) -> dict[str, float]:
    """Sum CPU seconds spent between two snapshots by role; with ``ingest_s``, add it and ``other``.

    ``other`` is the machine's busy time minus the ingest process(es), the bench database's backends,
    PostgreSQL's auxiliary processes and Redis: other people's work (and the bench's own polling).
    """
    out: dict[str, float] = {}
    for pid, (role, secs) in after.items():
        out[role] = out.get(role, 0.0) + secs - before.get(pid, (role, 0.0))[1]
    if ingest_s is not None:
        out["ingest"] = ingest_s
        if "machine" in out:
            out["other"] = max(0.0, out["machine"] - sum(v for k, v in out.items() if k != "machine"))
    return {k: round(v, 2) for k, v in sorted(out.items())}


# --------------------------------------------------------------------------- the baseline


def run_baseline(args, entries: int) -> dict:
    """Read every entry once through a consumer group of its own with bare XREADGROUP COUNT 1000, XACK it."""
    client = connect_redis(args.redis_url)
    streams = list(feed_names())
    for stream in streams:
        client.xgroup_create(stream, BASELINE_GROUP, id="0", mkstream=True)
    ids = {s: ">" for s in streams}
    read = reads = 0
    idle_since = None
    started = perf_counter()
    while read < entries:
        reply = client.xreadgroup(BASELINE_GROUP, "bench-baseline-1", ids, count=1000)
        reads += 1
        if not reply:
            idle_since = idle_since or perf_counter()
            if perf_counter() - idle_since > 10:
                raise RuntimeError(f"baseline: only {read} of {entries} entries arrived")
            continue
        idle_since = None
        pipe = client.pipeline(transaction=False)
        for stream, got in reply:
            if got:
                pipe.xack(stream, BASELINE_GROUP, *[entry_id for entry_id, _fields in got])
                read += len(got)
        pipe.execute()
    elapsed = perf_counter() - started
    client.close()
    return {"entries": read, "events": args.events, "seconds": elapsed, "xreadgroup_calls": reads,
            "events_per_s": args.events / elapsed, "entries_per_s": read / elapsed}


# --------------------------------------------------------------------------- the pipeline


# The parts of EventStore.write on PostgreSQL, in the order they run (see dashboard/store.py):
#   ping        the pool's pre-ping on checkout (pool_pre_ping=True): one round trip per batch
#   copy        _insert_pg but the insert: CREATE TEMP TABLE IF NOT EXISTS + COPY (binary) into tmp_events,
#               and fetching the returned keys
#   insert_cte  _insert_pg's one statement (_PG_INSERT): insert events, add them to rollups and
#               district_minutes, return the new keys
#   count_by_minute  the per-minute counts for the delta (Python)
#   feed_state  _touch_feeds: one upsert of feed_state
#   incidents   incidents.attach: lock, candidates, matching, the unnest writes (incidents_sql: its statements)
#   commit      COMMIT
#   rest        what is left: dedupe, event_row per event, StoredEvent objects, sort, BEGIN, retry wrapper
WRITE_PARTS = ("ping", "copy", "insert_cte", "count_by_minute", "feed_state", "incidents", "commit", "rest")
# ... as reported: with the incidents' SQL statements (a part of incidents) after incidents
REPORTED_WRITE_PARTS = ("ping", "copy", "insert_cte", "count_by_minute", "feed_state", "incidents", "incidents_sql",
                        "commit", "rest")


@dataclass
class RunStats:
    """Time spent by one consumer, gathered by wrapping instances and module functions (the code is unchanged)."""

    flushes: int = 0
    events: int = 0
    max_batch: int = 0
    add_s: float = 0.0  # Pipeline.add: parse_message and batching
    flush_s: float = 0.0  # Pipeline.flush: write + the Redis round trip
    write_s: float = 0.0  # EventStore.write: one transaction
    xread_s: float = 0.0  # XREADGROUP calls that returned entries
    xreads: int = 0
    xread_empty_s: float = 0.0  # XREADGROUP calls that returned nothing (blocking on drained streams)
    xreads_empty: int = 0
    gc_s: float = 0.0  # cyclic garbage collection pauses, wherever they fell (across all the parts above)
    gc_runs: int = 0
    gc_full: int = 0  # of which generation-2 collections
    parts: dict[str, float] = field(default_factory=dict)  # EventStore.write's parts, WRITE_PARTS + incidents_sql
    in_incidents: bool = False  # set while incidents.attach runs, so that its statements are counted

    def merge(self, other: "RunStats") -> None:
        self.flushes += other.flushes
        self.events += other.events
        self.max_batch = max(self.max_batch, other.max_batch)
        for name in ("add_s", "flush_s", "write_s", "xread_s", "xreads", "xread_empty_s", "xreads_empty", "gc_s",
                     "gc_runs", "gc_full"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for k, v in other.parts.items():
            self.parts[k] = self.parts.get(k, 0.0) + v

    def snapshot(self) -> "RunStats":
        """Copy the figures now (the consumer thread goes on adding to this one until it is stopped)."""
        copy = RunStats(**{k: v for k, v in vars(self).items() if k != "parts"})
        copy.parts = dict(self.parts)
        return copy

    def write_parts(self) -> dict[str, float]:
        """Return the write's parts in seconds, with ``rest`` = the write's total minus the parts measured."""
        rest = self.write_s - sum(self.parts.get(k, 0.0) for k in WRITE_PARTS if k != "rest")
        return {k: rest if k == "rest" else self.parts.get(k, 0.0) for k in REPORTED_WRITE_PARTS}


def _timed(fn, stats: RunStats, name: str):
    def wrapper(*a, **kw):
        t = perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            stats.parts[name] = stats.parts.get(name, 0.0) + perf_counter() - t
    wrapper.__wrapped__ = fn
    return wrapper


def time_gc(stats: RunStats):
    """Add the pauses of the cyclic garbage collector in this process to ``stats``; return a function that stops it."""
    started = [0.0]

    def callback(phase, info):
        if phase == "start":
            started[0] = perf_counter()
        else:
            stats.gc_s += perf_counter() - started[0]
            stats.gc_runs += 1
            stats.gc_full += info.get("generation") == 2

    gc.callbacks.append(callback)
    return lambda: gc.callbacks.remove(callback)


def time_engine(engine, stats: RunStats) -> None:
    """Time the pre-ping, the insert statement, the incident statements and COMMIT on this engine's connections.

    Call before the engine's first connection: psycopg connections get a cursor class that times
    ``_PG_INSERT``; the dialect's ``do_ping`` and ``do_commit`` are wrapped on this engine's dialect only.
    """
    import psycopg as _psycopg
    from sqlalchemy import event

    import dashboard.storage.events as store_mod

    insert_sql = store_mod._PG_INSERT

    class TimedCursor(_psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):
            if query is not insert_sql:
                return super().execute(query, params, **kwargs)
            t = perf_counter()
            try:
                return super().execute(query, params, **kwargs)
            finally:
                stats.parts["insert_cte"] = stats.parts.get("insert_cte", 0.0) + perf_counter() - t

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.cursor_factory = TimedCursor

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, _cursor, _statement, _params, _context, _executemany):
        conn.info["bench_t0"] = perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, _cursor, _statement, _params, _context, _executemany):
        if stats.in_incidents:
            t0 = conn.info.pop("bench_t0", None)
            if t0 is not None:
                stats.parts["incidents_sql"] = stats.parts.get("incidents_sql", 0.0) + perf_counter() - t0

    dialect = engine.dialect
    dialect.do_ping = _timed(dialect.do_ping, stats, "ping")
    dialect.do_commit = _timed(dialect.do_commit, stats, "commit")


def time_store(store, stats: RunStats):
    """Time the parts of ``store.write`` (an EventStore on PostgreSQL); return a function that undoes it.

    Instance methods are shadowed on this store; ``count_by_minute`` and ``incidents.attach`` are module
    functions that ``EventStore.write`` looks up at each call, so they are replaced in their modules
    until the returned function is called. The bench process or worker has no other store.
    """
    import dashboard.storage.incidents as incidents_mod
    import dashboard.storage.events as store_mod

    if not store.postgres:
        raise RuntimeError("the ingest benchmark times the PostgreSQL path only")
    insert_pg, touch, write = store._insert_pg, store._touch_feeds, store.write
    saved = store_mod.count_by_minute, incidents_mod.attach

    def timed_insert(conn, rows, *rest):
        t = perf_counter()
        cte_before = stats.parts.get("insert_cte", 0.0)
        try:
            return insert_pg(conn, rows, *rest)
        finally:
            # temp table + COPY: the whole method but for the insert statement (timed by the cursor)
            dt = perf_counter() - t - (stats.parts.get("insert_cte", 0.0) - cte_before)
            stats.parts["copy"] = stats.parts.get("copy", 0.0) + dt

    def timed_attach(*a, **kw):
        stats.in_incidents = True
        t = perf_counter()
        try:
            return saved[1](*a, **kw)
        finally:
            stats.parts["incidents"] = stats.parts.get("incidents", 0.0) + perf_counter() - t
            stats.in_incidents = False

    def timed_write(events, received_ms):
        t = perf_counter()
        try:
            return write(events, received_ms)
        finally:
            stats.write_s += perf_counter() - t

    store._insert_pg = timed_insert
    store._touch_feeds = _timed(touch, stats, "feed_state")
    store.write = timed_write
    store_mod.count_by_minute = _timed(saved[0], stats, "count_by_minute")
    incidents_mod.attach = timed_attach

    def undo():
        store_mod.count_by_minute, incidents_mod.attach = saved
        for name in ("_insert_pg", "_touch_feeds", "write"):
            store.__dict__.pop(name, None)

    return undo


def instrument(pipeline, stats: RunStats):
    """Time add, flush, store.write's parts and GC for this pipeline; return a function that undoes the patches."""
    add, flush = pipeline.add, pipeline.flush

    def timed_add(batch, channel, domain, raw, arrived_ms):
        t = perf_counter()
        try:
            return add(batch, channel, domain, raw, arrived_ms)
        finally:
            stats.add_s += perf_counter() - t

    def timed_flush(batch, bus):
        n = len(batch)
        t = perf_counter()
        try:
            return flush(batch, bus)
        finally:
            stats.flush_s += perf_counter() - t
            stats.flushes += 1
            stats.events += n
            stats.max_batch = max(stats.max_batch, n)

    pipeline.add, pipeline.flush = timed_add, timed_flush
    undo_store, undo_gc = time_store(pipeline.store, stats), time_gc(stats)

    def undo():
        undo_gc()
        undo_store()
    return undo


def build_consumer(redis_url: str, db_url: str, updates_channel: str, name: str, batch_size: int,
                   flush_ms: int, on_error, stats: RunStats | None):
    """Wire a StreamConsumer to Pipeline(EventStore(engine), Shenzhen aliases) as feeds.ingest does."""
    from dashboard.storage.events import EventStore
    from feeds.consumers import StreamConsumer
    from feeds.pipeline import Pipeline

    engine = make_engine(db_url)
    if stats is not None:
        time_engine(engine, stats)
    with engine.connect() as conn:  # open the pool's first connection before the clock starts
        conn.execute(text("SELECT 1"))
    pipeline = Pipeline(EventStore(engine), load_city("shenzhen").aliases)
    undo = instrument(pipeline, stats) if stats is not None else (lambda: None)
    consumer = StreamConsumer(pipeline, lambda: connect_redis(redis_url, updates_channel, stats),
                              group=INGEST_GROUP, consumer=name, batch_size=batch_size, flush_ms=flush_ms,
                              on_error=on_error)
    return consumer, engine, undo


def run_pipeline_inprocess(args, db_url: str) -> dict:
    """One consumer thread in this process; the clock runs from start() until it has flushed all N events."""
    errors: list[str] = []
    stats = RunStats()
    consumer, engine, undo = build_consumer(args.redis_url, db_url, args.updates_channel, "bench-1",
                                            args.consumer_batch, args.flush_ms, lambda e: errors.append(repr(e)),
                                            stats)
    profiler = cProfile.Profile() if args.profile else None
    servers_before, cpu_before = server_cpu(args.db_name), time.process_time()
    started = perf_counter()
    # The figures are copied the moment the last event is flushed: what the consumer does while it is
    # being stopped (a blocking read on the drained streams) is outside the clock, and outside them.
    if profiler is None:
        consumer.start()
        finished = _wait_for(lambda: consumer.flushed, args.events, args.stall, errors)
        snap, servers_after, cpu_after = stats.snapshot(), server_cpu(args.db_name), time.process_time()
        consumer.stop()
    else:
        # Profile the consumer loop in this thread; a watcher stops it when everything is flushed.
        box: dict = {}

        def watch():
            box["finished"] = _wait_for(lambda: consumer.flushed, args.events, args.stall, errors)
            box["stats"], box["servers"], box["cpu"] = stats.snapshot(), server_cpu(args.db_name), time.process_time()
            consumer.stop()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        profiler.enable()
        consumer.run()
        profiler.disable()
        watcher.join()
        finished, snap, servers_after, cpu_after = box["finished"], box["stats"], box["servers"], box["cpu"]
        profiler.dump_stats(args.profile)
        out = io.StringIO()
        ps = pstats.Stats(profiler, stream=out).sort_stats("tottime")
        ps.print_stats(40)
        ps.sort_stats("cumulative").print_stats(60)
        with open(args.profile + ".txt", "w", encoding="utf-8") as fh:
            fh.write(out.getvalue())
        log.warning("cProfile stats in %s and %s.txt (figures below are slowed by the profiler)",
                    args.profile, args.profile)
    cpu = cpu_delta(servers_before, servers_after, cpu_after - cpu_before)
    undo()
    engine.dispose()
    elapsed = (finished or perf_counter()) - started
    result = _pipeline_result(args, elapsed, finished is not None, consumer.flushed, consumer.reconnects, snap,
                              errors)
    result["cpu_s"] = cpu
    return result


def _wait_for(progress, target: int, stall_s: float, errors: list) -> float | None:
    """Poll ``progress()`` every 10 ms until it reaches ``target``; return the perf_counter then, None on stall."""
    last, last_change = -1, perf_counter()
    while True:
        done = progress()
        now = perf_counter()
        if done >= target:
            return now
        if done != last:
            last, last_change = done, now
        elif now - last_change > stall_s:
            errors.append(f"stalled: {done} of {target} events flushed, no progress for {stall_s:.0f}s")
            return None
        if errors and any(not e.startswith("stalled") for e in errors):
            return None
        time.sleep(0.01)


def _worker(index: int, args_d: dict, db_url: str, go, stop, counter, results) -> None:
    """One ingest process of a multi-worker run: its own engine, pipeline and StreamConsumer."""
    logging.basicConfig(level=logging.WARNING, format=f"worker {index}: %(levelname)s %(name)s: %(message)s")
    try:
        stats = RunStats()
        errors: list[str] = []
        consumer, engine, _undo = build_consumer(args_d["redis_url"], db_url, args_d["updates_channel"],
                                                 f"bench-{index}", args_d["consumer_batch"], args_d["flush_ms"],
                                                 lambda e: errors.append(repr(e)), stats)
        results.put(("ready", index, None))
        go.wait()
        cpu_before = time.process_time()
        consumer.start()
        while not stop.wait(0.005):
            counter.value = consumer.flushed
        snap, cpu_s = stats.snapshot(), time.process_time() - cpu_before  # as the parent stopped the clock
        consumer.stop()
        counter.value = consumer.flushed
        engine.dispose()
        results.put(("done", index, {"stats": asdict(snap), "errors": errors, "reconnects": consumer.reconnects,
                                     "flushed": consumer.flushed, "cpu_s": cpu_s}))
    except BaseException:  # noqa: BLE001 - report anything to the parent
        results.put(("error", index, traceback.format_exc()))


def run_pipeline_workers(args, db_url: str) -> dict:
    """K ingest processes in one consumer group; the clock runs from 'go' until together they flushed N."""
    ctx = mp.get_context("spawn")  # no engine or socket may be inherited across a fork
    go, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    counters = [ctx.Value("q", 0, lock=False) for _ in range(args.workers)]
    args_d = {k: getattr(args, k) for k in ("redis_url", "updates_channel", "consumer_batch", "flush_ms")}
    procs = [ctx.Process(target=_worker, args=(i + 1, args_d, db_url, go, stop, counters[i], results),
                         name=f"bench-ingest-{i + 1}") for i in range(args.workers)]
    for p in procs:
        p.start()
    errors: list[str] = []
    ready = 0
    deadline = time.monotonic() + 120
    while ready < args.workers and not errors:
        try:
            kind, index, payload = results.get(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - queue.Empty
            errors.append("workers did not get ready within 120 s")
            break
        if kind == "ready":
            ready += 1
        else:
            errors.append(f"worker {index}: {payload}")
    finished = None
    servers_before = server_cpu(args.db_name)
    started = perf_counter()
    if not errors:
        go.set()

        def progress():
            dead = [p.name for p in procs if not p.is_alive()]
            if dead and not errors:
                errors.append(f"worker(s) exited early: {', '.join(dead)}")
            return sum(c.value for c in counters)

        finished = _wait_for(progress, args.events, args.stall, errors)
    servers_after = server_cpu(args.db_name)
    stop.set()
    go.set()
    stats, reconnects, flushed, ingest_cpu = RunStats(), 0, 0, 0.0
    per_worker = []
    reported = {int(e.split()[1].rstrip(":")) for e in errors if e.startswith("worker ") and e[7:8].isdigit()}
    while len(reported) < args.workers:
        try:
            kind, index, payload = results.get(timeout=30)
        except Exception:  # noqa: BLE001 - queue.Empty
            errors.append(f"{args.workers - len(reported)} worker(s) did not report")
            break
        if kind == "ready":
            continue
        reported.add(index)
        if kind == "done":
            stats.merge(RunStats(**payload["stats"]))
            reconnects += payload["reconnects"]
            flushed += payload["flushed"]
            ingest_cpu += payload["cpu_s"]
            errors.extend(f"worker {index}: {e}" for e in payload["errors"])
            per_worker.append(payload["flushed"])
        else:
            errors.append(f"worker {index}: {payload}")
    for p in procs:
        p.join(30)
        if p.is_alive():
            p.terminate()
    elapsed = (finished or perf_counter()) - started
    result = _pipeline_result(args, elapsed, finished is not None, flushed, reconnects, stats, errors)
    result["events_per_worker"] = per_worker
    result["cpu_s"] = cpu_delta(servers_before, servers_after, ingest_cpu)
    return result


def _pipeline_result(args, elapsed: float, completed: bool, flushed: int, reconnects: int, stats: RunStats,
                     errors: list[str]) -> dict:
    busy = stats.flush_s + stats.add_s + stats.xread_s + stats.xread_empty_s
    return {
        "workers": args.workers, "completed": completed, "seconds": elapsed, "flushed": flushed,
        "events_per_s": args.events / elapsed if completed else flushed / elapsed,
        "reconnects": reconnects, "errors": errors,
        "flushes": stats.flushes, "mean_batch": stats.events / stats.flushes if stats.flushes else 0,
        "max_batch": stats.max_batch, "xreads": stats.xreads, "xreads_empty": stats.xreads_empty,
        # summed over workers: seconds of consumer time in each part of the loop
        "xread_s": stats.xread_s,  # XREADGROUP calls that returned entries
        "parse_s": stats.add_s,  # Pipeline.add: orjson + pydantic validation + batching
        "write_s": stats.write_s,  # EventStore.write
        "write_parts_s": stats.write_parts(),
        "redis_flush_s": stats.flush_s - stats.write_s,  # Pipeline.flush but the write: one Redis round trip
        "idle_s": stats.xread_empty_s,  # XREADGROUP calls that came back empty (drained streams)
        "other_s": max(0.0, elapsed * args.workers - busy),  # the loop, XAUTOCLAIM, start and stop
        "gc_s": stats.gc_s, "gc_runs": stats.gc_runs, "gc_full": stats.gc_full,  # inside the parts above
    }


# --------------------------------------------------------------------------- verification


def verify(args, db_url: str, feed: FeedStats) -> dict:
    """Check that every event was stored once, rolled up once, reported once, acknowledged and counted."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        q = lambda sql: conn.execute(text(sql)).scalar_one()  # noqa: E731
        out = {
            "events": q("SELECT count(*) FROM events"),
            "rollup_n": q("SELECT coalesce(sum(n), 0) FROM rollups"),
            "rollup_sev": q("SELECT coalesce(sum(sev1 + sev2 + sev3 + sev4), 0) FROM rollups"),
            "rollup_rows": q("SELECT count(*) FROM rollups"),
            "district_minutes_n": q("SELECT coalesce(sum(n), 0) FROM district_minutes"),
            "incidents": q("SELECT count(*) FROM incidents"),
            "incident_reports": q("SELECT count(*) FROM incident_reports"),
        }
    engine.dispose()
    client = connect_redis(args.redis_url)
    out["pending"] = sum(client.xpending(s, INGEST_GROUP)["pending"] for s in feed_names())
    out["ingested_counter"] = sum(int(v) for v in client.hvals(ingested_counts_key()))
    out["rejects"] = sum(int(v) for v in client.hvals(reject_counts_key()))
    client.close()
    n = args.events
    checks = {
        "events == N": out["events"] == n,
        "sum(rollups.n) == N": out["rollup_n"] == n,
        "sum(rollups.sev*) == N": out["rollup_sev"] == n,
        "sum(district_minutes.n) == N": out["district_minutes_n"] == n,
        "incident_reports == incident-worthy events": out["incident_reports"] == feed.incident_worthy,
        "no pending entries": out["pending"] == 0,
        "ingested counter == N": out["ingested_counter"] == n,
        "no rejects": out["rejects"] == 0,
    }
    out["expected_incident_reports"] = feed.incident_worthy
    out["failed"] = [k for k, ok in checks.items() if not ok]
    out["ok"] = not out["failed"]
    return out


# --------------------------------------------------------------------------- stages in isolation


def sample_messages(args, sample: int) -> list[tuple[str, bytes]]:
    """Return (domain, encoded message) for the first ``sample`` events of the run's own feed (same density)."""
    from feeds.publish import encode

    out, n = [], 0
    for domain, payload in generate_messages(args.events, args.batch, args.seed, args.span, mix=args.mix):
        out.append((domain, encode(payload)))
        n += len(payload) if isinstance(payload, list) else 1
        if n >= sample:
            break
    return out


def run_stages(args, db_url: str) -> dict:
    """Time parse_message per event, EventStore.write and its parts, and Pipeline.flush's Redis part, on a sample.

    The sample is the first ``--sample`` events of the run's feed; it is written in batches of
    ``--consumer-batch`` events (what the consumer flushes when reads come back full) into a fresh database.
    """
    import orjson

    from dashboard.storage.events import EventStore, WriteResult, event_row
    from feeds.pipeline import Batch, Pipeline, batch_delta, now_ms
    from feeds.schema import parse_message

    aliases = load_city("shenzhen").aliases
    messages = sample_messages(args, min(args.sample, args.events))
    out: dict = {"messages": len(messages), "write_batch": args.consumer_batch}

    # 1. parse / validate
    for domain, raw in messages[:200]:  # warm up
        parse_message(raw, domain, aliases)
    t = perf_counter()
    for domain, raw in messages:
        orjson.loads(raw)
    loads_s = perf_counter() - t
    events = []
    parse_gc = RunStats()
    undo_gc = time_gc(parse_gc)
    t = perf_counter()
    for domain, raw in messages:
        events.extend(parse_message(raw, domain, aliases).events)
    parse_s = perf_counter() - t
    undo_gc()
    sample = len(events)
    out["sample_events"] = sample
    out["json_loads_us_per_event"] = loads_s / sample * 1e6
    out["parse_us_per_event"] = parse_s / sample * 1e6
    out["parse_events_per_s"] = sample / parse_s
    out["parse_gc_us_per_event"] = parse_gc.gc_s / sample * 1e6  # of parse_us_per_event
    out["incident_worthy_per_1000"] = sum(opens_incident(e.domain, e.severity) for e in events) / sample * 1e3

    # 2. EventStore.write per batch, with its parts timed as in the run (the code is not changed)
    engine = make_engine(db_url)
    stats = RunStats()
    time_engine(engine, stats)
    store = EventStore(engine)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    undo, undo_gc = time_store(store, stats), time_gc(stats)
    writes, results = [], []
    try:
        for i in range(0, sample, args.consumer_batch):
            chunk = events[i:i + args.consumer_batch]
            t = perf_counter()
            results.append((chunk, store.write(chunk, now_ms())))
            writes.append((perf_counter() - t) / len(chunk) * 1e6)  # ms per 1,000 events
    finally:
        undo_gc()
        undo()
    engine.dispose()
    total_write = stats.write_s
    per_1000 = 1e6 / sample  # seconds -> ms per 1,000 events
    parts = {k: v * per_1000 for k, v in stats.write_parts().items()}
    # event_row per event is inside "rest"; it is timed apart, on the same events, because wrapping a
    # function called once per event would slow it down more than it costs.
    t = perf_counter()
    for ev in events:
        event_row(ev, 0)
    parts["event_rows_in_rest"] = (perf_counter() - t) * per_1000
    out["write_batches"] = len(writes)
    out["write_ms_per_1000"] = total_write * per_1000
    out["write_ms_per_1000_median_batch"] = statistics.median(writes)
    out["write_ms_per_1000_max_batch"] = max(writes)
    out["write_events_per_s"] = sample / total_write
    out["write_parts_ms_per_1000"] = parts
    out["write_gc_ms_per_1000"] = stats.gc_s * per_1000  # inside the parts

    # 3. The Redis part of Pipeline.flush: dead letters, counters, lag, delta, XACK, on the real WriteResults
    class _Replay:
        def __init__(self):
            self.next: WriteResult | None = None

        def write(self, _events, _received):
            return self.next

    replay = _Replay()
    pipeline = Pipeline(replay, aliases)  # type: ignore[arg-type]
    client = connect_redis(args.redis_url, args.updates_channel)
    flushes, deltas = [], []
    for chunk, result in results:
        batch = Batch(events=chunk, started=time.monotonic())
        for i, ev in enumerate(chunk):  # acks of made-up ids in a group nobody reads: XACK of those is a no-op
            batch.acks.setdefault((feed_name(ev.domain), "bench-stage-none"), []).append(b"1-%d" % i)
            batch.oldest_ms.setdefault(ev.domain, now_ms() - 50)
        replay.next = result
        t = perf_counter()
        pipeline.flush(batch, client)
        flushes.append(perf_counter() - t)
        t = perf_counter()
        batch_delta(result, now_ms(), "Asia/Shanghai")
        deltas.append(perf_counter() - t)
    client.close()
    out["redis_flush_ms_per_1000"] = sum(flushes) * per_1000
    out["encode_delta_ms_per_1000"] = sum(deltas) * per_1000
    total = out["parse_us_per_event"] + out["write_ms_per_1000"] + out["redis_flush_ms_per_1000"]
    out["sum_ms_per_1000"] = total
    out["one_worker_ceiling_events_per_s"] = 1e6 / total  # without reading: parse + write + flush only
    return out


# --------------------------------------------------------------------------- environment and report


def environment(args, db_url: str) -> dict:
    """Describe the machine, the servers and the libraries."""
    client = connect_redis(args.redis_url)
    info = client.info("server")
    conn = client.connection_pool.get_connection()
    parser = type(conn._parser).__name__
    client.connection_pool.release(conn)
    client.close()
    engine = make_engine(db_url)
    with engine.connect() as conn:
        pg_version = conn.execute(text("SHOW server_version")).scalar_one()
    engine.dispose()
    libs = {}
    for name in ("redis", "hiredis", "psycopg", "psycopg-binary", "SQLAlchemy", "pydantic", "pydantic_core",
                 "orjson"):
        try:
            libs[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            libs[name] = None
    return {"cpu_count": os.cpu_count(), "python": platform.python_version(), "postgresql": pg_version,
            "redis": info.get("redis_version"), "redis_parser": parser, "libraries": libs,
            "platform": platform.platform()}


RUN_ROWS = (  # (key in the pipeline result, label, indent)
    ("xread_s", "XREADGROUP that returned entries", 1),
    ("parse_s", "Pipeline.add: orjson + pydantic (parse)", 1),
    ("write_s", "EventStore.write", 1),
    ("ping", "pool pre-ping on checkout", 2),
    ("copy", "temp table + COPY, fetch of the keys", 2),
    ("insert_cte", "insert CTE (events, rollups, minutes)", 2),
    ("count_by_minute", "count_by_minute", 2),
    ("feed_state", "feed_state upsert", 2),
    ("incidents", "incidents.attach", 2),
    ("incidents_sql", "of which its SQL statements", 3),
    ("commit", "COMMIT", 2),
    ("rest", "rest (dedupe, event_row, sort, BEGIN)", 2),
    ("redis_flush_s", "flush's Redis round trip (acks, delta)", 1),
    ("idle_s", "XREADGROUP that came back empty", 1),
    ("other_s", "loop, XAUTOCLAIM, start/stop", 1),
    ("gc_s", "cyclic GC pauses (inside the rows above)", 1),
)


def print_report(res: dict, file=sys.stdout) -> None:
    """Print the figures as a small table."""
    cfg, env, base, pipe = res["config"], res["environment"], res.get("baseline"), res.get("pipeline")
    feed = res["feed"]
    w = lambda label, value: print(f"  {label:<46} {value}", file=file)  # noqa: E731
    print(f"\nIngest benchmark: {cfg['events']:,} events, {cfg['batch']} per message "
          f"({feed['entries']:,} stream entries), {cfg['workers']} worker(s), mix {cfg['mix']}, "
          f"seed {cfg['seed']}", file=file)
    w("CPU count", env["cpu_count"])
    w("PostgreSQL / Redis", f"{env['postgresql']} / {env['redis']} (parser {env['redis_parser']})")
    w("Python / redis-py / hiredis / psycopg", f"{env['python']} / {env['libraries']['redis']} / "
      f"{env['libraries']['hiredis']} / {env['libraries']['psycopg']}")
    w("SQLAlchemy / pydantic / orjson", f"{env['libraries']['SQLAlchemy']} / {env['libraries']['pydantic']} / "
      f"{env['libraries']['orjson']}")
    w("mix (events)", ", ".join(f"{d} {n:,}" for d, n in sorted(feed["by_domain"].items())))
    w("incident-worthy (incident domain or sev >= 3)", f"{feed['incident_worthy']:,} "
      f"({feed['incident_worthy'] / max(feed['events'], 1):.1%})")
    w("consumer batch_size / flush_ms", f"{cfg['consumer_batch']:,} / {cfg['flush_ms']}")
    w("preload (not counted)", f"{res['preload_s']:.2f} s")
    if base:
        w("baseline: XREADGROUP COUNT 1000 + XACK", f"{base['events_per_s']:>12,.0f} events/s  "
          f"({base['seconds']:.2f} s, {base['entries_per_s']:,.0f} entries/s, "
          f"{1e6 / base['entries_per_s']:.2f} µs/entry)")
    if pipe:
        w("pipeline: StreamConsumer -> PostgreSQL", f"{pipe['events_per_s']:>12,.0f} events/s  "
          f"({pipe['seconds']:.2f} s{'' if pipe['completed'] else ', INCOMPLETE'})")
        if base:
            w("ratio pipeline / baseline", f"{pipe['events_per_s'] / base['events_per_s']:>12.1%}")
        w("target >= 25,000 events/s", "met" if pipe["events_per_s"] >= TARGET_EVENTS_PER_S else "NOT met")
        if base:
            w("target >= 40% of baseline", "met" if pipe["events_per_s"] / base["events_per_s"] >= TARGET_RATIO
              else "NOT met")
        w("flushes / mean batch / max batch", f"{pipe['flushes']} / {pipe['mean_batch']:,.0f} / "
          f"{pipe['max_batch']:,} events")
        if pipe.get("events_per_worker") and len(pipe["events_per_worker"]) > 1:
            w("events flushed per worker", " / ".join(f"{n:,}" for n in pipe["events_per_worker"]))
        if pipe.get("cpu_s"):
            cpu = pipe["cpu_s"]
            w("CPU s: ingest / PG backends / PG aux / Redis", " / ".join(
                f"{cpu.get(k, 0):.1f}" for k in ("ingest", "pg_bench", "pg_aux", "redis"))
              + f"  (of {pipe['seconds'] * (env['cpu_count'] or 1):.0f} core-s)")
            if "other" in cpu:
                w("CPU s: everything else on the machine", f"{cpu['other']:.1f}"
                  + ("  (busy machine: repeat the run)" if cpu["other"] > 0.1 * pipe["seconds"] else ""))
        total = pipe["seconds"] * pipe["workers"]
        per_1000 = 1e6 / max(pipe["flushed"], 1)
        print(f"  consumer time in the run, summed over workers ({total:.2f} s):"
              f"{'seconds':>15} {'share':>7} {'ms/1,000 ev':>12}", file=file)
        for key, label, indent in RUN_ROWS:
            v = pipe["write_parts_s"].get(key) if key in pipe["write_parts_s"] else pipe.get(key)
            if v is None:
                continue
            print(f"  {'  ' * indent}{label:<{58 - 2 * indent}}{v:9.2f} {v / total:7.1%} {v * per_1000:12.2f}",
                  file=file)
        w("XREADGROUP calls with entries / empty", f"{pipe['xreads']:,} / {pipe['xreads_empty']:,}")
        w("GC collections / of which full (gen 2)", f"{pipe['gc_runs']:,} / {pipe['gc_full']:,}")
        if pipe["reconnects"]:
            w("consumer reconnects (see warnings)", pipe["reconnects"])
    st = res.get("stages")
    if st:
        print(f"  stages in isolation on the first {st['sample_events']:,} events ({st['messages']:,} messages),"
              f" written {st['write_batch']:,} at a time:", file=file)
        w("  orjson.loads", f"{st['json_loads_us_per_event']:8.2f} µs/event")
        w("  parse_message (loads + pydantic)", f"{st['parse_us_per_event']:8.2f} µs/event "
          f"({st['parse_events_per_s']:,.0f} events/s; of which cyclic GC {st['parse_gc_us_per_event']:.2f} µs)")
        w("  EventStore.write per 1,000", f"{st['write_ms_per_1000']:8.2f} ms (batches: median "
          f"{st['write_ms_per_1000_median_batch']:.1f}, max {st['write_ms_per_1000_max_batch']:.1f}; "
          f"{st['write_events_per_s']:,.0f} events/s)")
        labels = {key: label for key, label, _i in RUN_ROWS}
        labels["event_rows_in_rest"] = "of rest: event_row per event (timed apart)"
        for k, v in st["write_parts_ms_per_1000"].items():
            w(f"    {labels.get(k, k)}", f"{v:8.2f} ms")
        w("    cyclic GC pauses (inside the parts)", f"{st['write_gc_ms_per_1000']:8.2f} ms")
        w("    (incident-worthy events per 1,000)", f"{st['incident_worthy_per_1000']:8.0f}")
        w("  Redis part of Pipeline.flush per 1,000", f"{st['redis_flush_ms_per_1000']:8.2f} ms "
          f"(encode_delta {st['encode_delta_ms_per_1000']:.2f} ms)")
        w("  parse + write + flush per 1,000 -> ceiling", f"{st['sum_ms_per_1000']:8.2f} ms -> "
          f"{st['one_worker_ceiling_events_per_s']:,.0f} events/s for one worker, without reading")
    v = res.get("verify")
    if v:
        w("verify events / sum(rollups.n) / minutes", f"{v['events']:,} / {v['rollup_n']:,} / "
          f"{v['district_minutes_n']:,} (N = {cfg['events']:,})")
        w("verify incidents / reports (expected)", f"{v['incidents']:,} / {v['incident_reports']:,} "
          f"({v['expected_incident_reports']:,})")
        w("verify pending / ingested counter / rejects", f"{v['pending']} / {v['ingested_counter']:,} / "
          f"{v['rejects']}")
        w("verification", "ok" if v["ok"] else "FAILED: " + "; ".join(v["failed"]))
    if res["errors"]:
        print("  ERRORS:", file=file)
        for e in res["errors"]:
            print(f"    {e}", file=file)
    print(file=file)


def app_defaults() -> tuple[int, int]:
    """Return the app's own consumer batch_size and flush_ms (dashboard.config defaults)."""
    from dashboard.core.config import default_config

    cfg = default_config()
    return int(cfg["PANORAMA_BATCH_SIZE"]), int(cfg["PANORAMA_FLUSH_MS"])


def build_parser() -> argparse.ArgumentParser:
    batch_size, flush_ms = app_defaults()
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--events", type=int, default=200_000, help="events to ingest (N)")
    p.add_argument("--batch", type=int, default=1, help="events per feed message (1 = one per stream entry)")
    p.add_argument("--workers", type=int, default=1, help="ingest processes in one consumer group")
    p.add_argument("--mix", choices=sorted(MIXES), default=DEFAULT_MIX,
                   help="event mix: stress = 10%% incident domain, 5%% severity >= 3 (~14.5%% incident-worthy); "
                        "city = 1%% incident domain, 1%% severity >= 3 (~2%% incident-worthy)")
    p.add_argument("--redis-url", default=DEFAULT_REDIS_URL,
                   help="Redis db whose feeds:* and panorama:* keys the benchmark deletes")
    p.add_argument("--flushdb", action="store_true",
                   help="FLUSHDB the whole Redis db first (by default only the keys ingest uses are deleted, "
                        "so that others sharing the db keep theirs)")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL,
                   help="PostgreSQL server (any database on it); the benchmark creates its own beside it")
    p.add_argument("--db-name", default=DEFAULT_DB, help="database to drop, create and migrate")
    p.add_argument("--keep-db", action="store_true",
                   help="keep the benchmark databases and the Redis streams afterwards")
    p.add_argument("--seed", type=int, default=20261126, help="seed of the generated events")
    p.add_argument("--span", type=int, default=3600, help="seconds of event time the N events cover")
    p.add_argument("--consumer-batch", type=int, default=batch_size,
                   help="StreamConsumer batch_size; the default is the app's (dashboard.config PANORAMA_BATCH_SIZE)")
    p.add_argument("--flush-ms", type=int, default=flush_ms,
                   help="StreamConsumer flush_ms; the default is the app's (dashboard.config PANORAMA_FLUSH_MS)")
    p.add_argument("--sample", type=int, default=40_000, help="events for the stage timings")
    p.add_argument("--no-stages", action="store_true", help="skip the stage timings")
    p.add_argument("--no-baseline", action="store_true", help="skip the bare XREADGROUP baseline")
    p.add_argument("--stall", type=float, default=120, help="seconds without progress that count as an error")
    p.add_argument("--updates-channel", default=BENCH_UPDATES_CHANNEL,
                   help="channel the pipeline publishes its deltas to (production: panorama:updates)")
    p.add_argument("--profile", metavar="FILE", help="cProfile the consumer loop (workers=1) into FILE (+ FILE.txt)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument("--output", metavar="FILE", help="also write the results as JSON to FILE")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if (args.events < 1 or args.batch < 1 or args.workers < 1 or args.sample < 1 or args.consumer_batch < 1
            or args.flush_ms < 1):
        p.error("--events, --batch, --workers, --sample, --consumer-batch and --flush-ms must be positive")
    if args.batch > 1000:
        p.error("--batch: a feed message holds at most 1,000 events (SPEC section 3)")
    if args.profile and args.workers != 1:
        p.error("--profile needs --workers 1")
    return args


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict:
    """Run one benchmark and return its results; errors are collected in ``res["errors"]``, not raised."""
    res: dict = {"config": {k: v for k, v in vars(args).items() if k not in ("json", "output")}, "errors": []}
    res["config"]["pg_url"] = make_url(args.pg_url).render_as_string(hide_password=True)
    db_url = stages_url = None
    try:
        say(f"recreating database {args.db_name}; emptying {args.redis_url}"
            f"{'' if args.flushdb else ' of feeds:* and panorama:* keys'}")
        db_url = recreate_database(args.pg_url, args.db_name)
        client = connect_redis(args.redis_url)
        reset_redis(client, args.flushdb)
        res["environment"] = environment(args, db_url)
        feed = FeedStats()
        say(f"preloading {args.events:,} events ({args.batch} per message, {args.mix} mix) into the four streams")
        res["preload_s"] = preload(client, args, feed)
        res["feed"] = asdict(feed)
        client.close()
        if not args.no_baseline:
            say("baseline: bare XREADGROUP COUNT 1000 + XACK")
            res["baseline"] = run_baseline(args, feed.entries)
        say(f"pipeline: {args.workers} StreamConsumer(s) into PostgreSQL, batch_size {args.consumer_batch}")
        pipe = run_pipeline_inprocess(args, db_url) if args.workers == 1 else run_pipeline_workers(args, db_url)
        res["pipeline"] = pipe
        res["errors"].extend(pipe["errors"])
        if res.get("baseline"):
            pipe["ratio_to_baseline"] = pipe["events_per_s"] / res["baseline"]["events_per_s"]
        res["verify"] = verify(args, db_url, feed)
        if not res["verify"]["ok"]:
            res["errors"].append("verification failed: " + "; ".join(res["verify"]["failed"]))
        if not args.no_stages:
            say(f"stages in isolation on {min(args.sample, args.events):,} events")
            stages_url = recreate_database(args.pg_url, f"{args.db_name}_stages")
            res["stages"] = run_stages(args, stages_url)
        res["targets"] = {
            "events_per_s": TARGET_EVENTS_PER_S, "ratio": TARGET_RATIO,
            "events_per_s_met": pipe["events_per_s"] >= TARGET_EVENTS_PER_S,
            "ratio_met": bool(res.get("baseline")) and pipe["events_per_s"] / res["baseline"]["events_per_s"]
            >= TARGET_RATIO,
        }
    except Exception as err:  # noqa: BLE001 - report, then exit non-zero
        res["errors"].append(f"{type(err).__name__}: {err}")
        traceback.print_exc()
    finally:
        if not args.keep_db:
            try:  # the streams hold N entries: give the shared Redis its memory back
                client = connect_redis(args.redis_url)
                reset_redis(client, False)
                client.close()
            except Exception as err:  # noqa: BLE001
                say(f"could not delete the bench's Redis keys: {err}")
            for name, url in ((args.db_name, db_url), (f"{args.db_name}_stages", stages_url)):
                if url:
                    try:
                        drop_database(args.pg_url, name)
                    except Exception as err:  # noqa: BLE001
                        say(f"could not drop {name}: {err}")
    return res


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 unless something failed (a slow result is not a failure)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    res = run(args)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2, ensure_ascii=False, default=str)
    if args.json:
        print(json.dumps(res, indent=2, ensure_ascii=False, default=str))
    elif "environment" in res and "feed" in res:
        print_report(res)
    else:
        print("errors: " + "; ".join(res["errors"]), file=sys.stderr)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
