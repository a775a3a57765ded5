"""Benchmark the shipped ingest worker: a backlog drained, then the highest live rate it sustains with lag bounded.

Run ``PYTHONPATH=. .venv/bin/python -m bench.worker`` (see ``--help``). It

1. starts a redis-server of its own (``--redis-url`` for another: the worker then publishes its deltas on that
   server's ``panorama:updates``), recreates its own PostgreSQL database (``panorama_worker_bench``), migrates
   it and fills it with ``--history-days`` days of events at ``--history-rate`` events/s before now, COPY'd into
   ``events`` with ``rollups`` and ``district_minutes`` summed from them by SQL (not timed; the report says how
   many rows and how long it took);
2. **drain**: XADDs ``--drain-events`` events into the four streams, times a bare ``XREADGROUP COUNT 1000`` +
   ``XACK`` reader over them (the baseline, in a group of its own), then starts ``--workers`` shipped workers,
   ``python -m feeds.ingest --transport stream`` configured by their environment only (so with their
   ``gc.freeze()``, deadline checker and briefing scheduler). Clock: from the workers' spawn to the moment a
   ``SELECT count(*)`` of the new rows, polled every 50 ms, finds all of them committed;
3. **live**: with the same workers running, a publisher process XADDs ``R`` events/s (``--per-message`` per
   entry), each stamped with its publish time just before its XADD, for ``--step-s`` seconds per rate. Every
   ``--marker-hz``-th of a second one event is a sample: a thread polls SQL every ``--poll-ms`` for the
   samples' ids, so a sample's lag runs from its publish (before Redis) to the poll that first finds its row
   committed (an upper bound: the poll interval and the query are inside it). The backlog (published minus
   the ingested counter the worker raises after each commit) is read every second. A rate is **sustained**
   when the lag p99 is at most ``--lag-bound-ms``, no sample is missing at the end, the publisher kept its
   rate, and the backlog did not grow over the step's second half by more than 2 % of the rate. Rates go up
   ``--rates`` until one is not sustained, then bisect ``--refine`` times; the highest sustained rate then runs
   again for ``--confirm-s`` seconds.

Targets are reported, never asserted: the exit status is non-zero only on errors (a worker that died, a
verification that failed).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psutil
import psycopg
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.fanout import service_env, tree_cpu
from bench.ingest import (DEFAULT_PG_URL, TARGET_EVENTS_PER_S, connect_redis, drop_database, generate_events,
                          generate_messages, recreate_database, say, server_cpu)
from bench.procs import Processes, start_redis
from dashboard.core.city import load_city
from dashboard.core.clock import DAY_MS
from dashboard.storage import partitions
from dashboard.storage.db import make_engine
from dashboard.storage.events import EVENT_COLUMNS, HOURS_FROM_MINUTES
from dashboard.core.channels import INGEST_GROUP, feed_name, feed_names, ingested_counts_key
from feeds.publish import encode

DEFAULT_DB = "panorama_worker_bench"
DEFAULT_RATES = "2000,5000,10000,15000,20000,25000,30000,40000"
# Issue 14's drain targets on partitioned PostgreSQL, city mix: events/s by number of workers.
DRAIN_TARGETS = {1: 30_000, 2: 50_000}


# --------------------------------------------------------------------------- history


def district_codes() -> dict[str, str]:
    """Map the generator's district slugs (and codes) to the codes the events table stores."""
    city = load_city("shenzhen")
    return {d.slug: d.code for d in city.districts} | {d.code: d.code for d in city.districts}


def event_row(domain: str, ev: dict, code: dict[str, str], event_id: str, ts_ms: int) -> tuple:
    """One generated event as a row of EVENT_COLUMNS for COPY (received 40 ms after its time)."""
    return (domain, event_id, ts_ms, ts_ms + 40, ev["kind"], code[ev["district"]], ev.get("street"),
            ev["severity"], ev.get("lat"), ev.get("lon"), ev.get("value"), ev.get("unit"), ev["title"],
            ev.get("detail"), ev["source"])


def libpq_dsn(db_url: str) -> str:
    """The SQLAlchemy URL as psycopg's own connection string."""
    return make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)


def preload_history(db_url: str, days: float, rate: float, seed: int) -> dict:
    """COPY ``days`` of events at ``rate``/s ending an hour ago into ``events``; sum the rollups from them."""
    code = district_codes()
    templates = list(generate_events(20_000, seed, 3600, mix="city"))
    n = int(days * 86400 * rate)
    end_ms = int(time.time() * 1000) - 3_600_000
    start_ms = end_ms - int(days * 86_400_000)
    step = (end_ms - start_ms) / max(1, n)
    dsn = libpq_dsn(db_url)
    t = time.perf_counter()
    engine = make_engine(db_url)
    with engine.begin() as conn:  # the day partitions the history falls in
        partitions.create_days(conn, partitions.PARTITIONED, range(start_ms // DAY_MS, end_ms // DAY_MS + 1))
    engine.dispose()
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            with cur.copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                for i in range(n):
                    domain, ev = templates[i % len(templates)]
                    copy.write_row(event_row(domain, ev, code, f"hist-{seed}-{i}", start_ms + int(i * step)))
            copied = time.perf_counter() - t
            cur.execute("""
                INSERT INTO rollups (minute_ms, district, street, domain, kind, n, sev1, sev2, sev3, sev4,
                                     value_sum, value_n, value_max)
                SELECT ts_ms - ts_ms % 60000, district, coalesce(street, ''), domain, kind, count(*),
                       count(*) FILTER (WHERE severity = 1), count(*) FILTER (WHERE severity = 2),
                       count(*) FILTER (WHERE severity = 3), count(*) FILTER (WHERE severity = 4),
                       coalesce(sum(value), 0), count(value), max(value)
                FROM events GROUP BY 1, 2, 3, 4, 5""")
            cur.execute("""
                INSERT INTO district_minutes (minute_ms, district, domain, n, sev1, sev2, sev3, sev4)
                SELECT ts_ms - ts_ms % 60000, district, domain, count(*),
                       count(*) FILTER (WHERE severity = 1), count(*) FILTER (WHERE severity = 2),
                       count(*) FILTER (WHERE severity = 3), count(*) FILTER (WHERE severity = 4)
                FROM events GROUP BY 1, 2, 3""")
            for sql in HOURS_FROM_MINUTES:
                cur.execute(sql)
            conn.commit()
            cur.execute("ANALYZE")
            cur.execute("SELECT (SELECT count(*) FROM rollups), (SELECT count(*) FROM district_minutes),"
                        " pg_database_size(current_database())")
            rollups, minutes, size = cur.fetchone()
    return {"events": n, "days": days, "rate": rate, "rollups": rollups, "district_minutes": minutes,
            "db_mib": size / 2**20, "copy_s": copied, "seconds": time.perf_counter() - t}


# --------------------------------------------------------------------------- drain


def xadd_backlog(client: redis.Redis, n: int, per_message: int, seed: int) -> dict:
    """XADD ``n`` events (``per_message`` per entry) with pipelines; return what was sent."""
    entries, t = 0, time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for domain, payload in generate_messages(n, per_message, seed, 3600, mix="city"):
        items = payload if isinstance(payload, list) else [payload]
        now = time.time_ns() // 1_000_000
        for ev in items:
            ev["id"] = "drain-" + ev["id"]
            ev["ts"] = now  # an event of now: the city's own clock accepts it and it counts in this minute
        pipe.xadd(feed_name(domain), {"data": encode(payload)})
        entries += 1
        if entries % 2000 == 0:
            pipe.execute()
    pipe.execute()
    return {"events": n, "entries": entries, "seconds": time.perf_counter() - t}


def bare_read(client: redis.Redis, entries: int) -> dict:
    """The baseline: read every entry once in a group of its own with XREADGROUP COUNT 1000, and XACK it."""
    streams = list(feed_names())
    for s in streams:
        client.xgroup_create(s, "bench-baseline", id="0", mkstream=True)
    read, t = 0, time.perf_counter()
    while read < entries:
        reply = client.xreadgroup("bench-baseline", "b1", {s: ">" for s in streams}, count=1000, block=1000)
        if not reply:
            break
        pipe = client.pipeline(transaction=False)
        for stream, got in reply:
            if got:
                pipe.xack(stream, "bench-baseline", *[i for i, _f in got])
                read += len(got)
        pipe.execute()
    elapsed = time.perf_counter() - t
    for s in streams:  # it must not hold the streams' trimming back
        client.xgroup_destroy(s, "bench-baseline")
    return {"entries": read, "seconds": elapsed, "entries_per_s": read / elapsed}


def physical_limit(db_url: str, n: int, seed: int) -> dict:
    """The machine's limit: COPY the drain's own ``n`` events (new ids) into the same partitioned, indexed
    ``events`` table, no validation, no rollups, no Redis. Clock: COPY's start -> its commit."""
    code, now = district_codes(), time.time_ns() // 1_000_000
    rows = [event_row(domain, ev, code, "limit-" + ev["id"], now)  # built before the clock starts
            for domain, ev in generate_events(n, seed, 3600, mix="city")]
    with psycopg.connect(libpq_dsn(db_url)) as conn:
        with conn.cursor() as cur:
            t = time.perf_counter()
            with cur.copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            seconds = time.perf_counter() - t
            cur.execute("DELETE FROM events WHERE event_id LIKE 'limit-%'")  # the live steps count from here
            conn.commit()
    return {"events": n, "seconds": seconds, "events_per_s": n / seconds}


def count_after(conn, seq0: int) -> int:
    return conn.execute(text("SELECT count(*) FROM events WHERE seq > :s"), {"s": seq0}).scalar_one()


# --------------------------------------------------------------------------- live


def publisher_main(redis_url: str, rate: float, seconds: float, per_message: int, marker_hz: float, tag: str,
                   seed: int, out, published) -> None:
    """Entry point of the publisher process: ``rate`` events/s for ``seconds``; every sample sent to ``out``."""
    client = redis.Redis.from_url(redis_url)
    pool = [(d, e) for d, e in generate_events(20_000, seed, 3600, mix="city")]
    every = max(1, round(rate / marker_hz))
    sent, seq, start = 0, 0, time.monotonic()
    behind = 0.0
    cpu0 = sum(psutil.Process().cpu_times()[:2])
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        due = int(rate * elapsed) - sent
        if due <= 0:
            time.sleep(0.005)
            continue
        behind = max(behind, due / rate)
        due = min(due, 5000)
        pipe = client.pipeline(transaction=False)
        samples = []
        ts = time.time_ns() // 1_000_000  # the clock starts here, before Redis
        batch: list[tuple[str, dict]] = []
        for _ in range(due):
            domain, tpl = pool[seq % len(pool)]
            ev = dict(tpl, id=f"{tag}-{seq}", ts=ts)
            if seq % every == 0:
                samples.append((domain, ev["id"], ts))
            batch.append((domain, ev))
            seq += 1
        for i in range(0, len(batch), per_message):
            chunk = batch[i:i + per_message]
            payload = chunk[0][1] if per_message == 1 else [e for _d, e in chunk]
            pipe.xadd(feed_name(chunk[0][0]), {"data": orjson.dumps(payload)})
        pipe.execute()
        sent += due
        published.value = sent
        if samples:
            out.put(samples)
    out.put(None)
    out.put({"sent": sent, "seconds": time.monotonic() - start, "max_behind_s": behind,
             "cpu_s": sum(psutil.Process().cpu_times()[:2]) - cpu0})
    client.close()


class SampleWatch(threading.Thread):
    """Poll SQL for the samples' rows: each one's lag from publish to the poll that first finds it committed."""

    def __init__(self, engine, poll_s: float):
        super().__init__(name="sample-watch", daemon=True)
        self.engine = engine
        self.poll_s = poll_s
        self.waiting: dict[str, tuple[str, int]] = {}  # id -> (domain, publish ms)
        self.lags: list[tuple[float, float]] = []  # (publish ms, lag ms)
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.query_ms: list[float] = []

    def add(self, samples) -> None:
        with self.lock:
            for domain, event_id, ts in samples:
                self.waiting[event_id] = (domain, ts)

    def run(self) -> None:
        stmt = text("SELECT event_id FROM events WHERE event_id = ANY(:ids) AND domain = ANY(:doms)")
        with self.engine.connect() as conn:
            while not self.stop_event.wait(self.poll_s):
                with self.lock:
                    ids = sorted(self.waiting, key=lambda k: self.waiting[k][1])[:2000]
                if not ids:
                    continue
                t0 = time.time()
                found = conn.execute(stmt, {"ids": ids, "doms": ["security", "traffic", "environment",
                                                                 "incident"]}).scalars().all()
                conn.commit()
                t1 = time.time() * 1000
                self.query_ms.append(t1 - t0 * 1000)
                with self.lock:
                    for event_id in found:
                        _domain, ts = self.waiting.pop(event_id)
                        self.lags.append((ts, t1 - ts))

    def finish(self) -> None:
        self.stop_event.set()
        self.join(10)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))]


def backlog(client: redis.Redis, published: int, base: int) -> int:
    return published - (sum(int(v) for v in client.hvals(ingested_counts_key())) - base)


def run_step(args, redis_url: str, engine, client: redis.Redis, rate: float, seconds: float, step: int,
             pids: dict[str, int]) -> dict:
    """Publish ``rate`` events/s for ``seconds``; return lag, backlog and whether the rate was sustained."""
    ctx = mp.get_context("spawn")
    out, published = ctx.Queue(), ctx.Value("q", 0, lock=False)
    base = sum(int(v) for v in client.hvals(ingested_counts_key()))
    watch = SampleWatch(engine, args.poll_ms / 1000)
    watch.start()
    procs = {k: psutil.Process(p) for k, p in pids.items()}
    cpu0, sys0, load0 = {k: tree_cpu(p) for k, p in procs.items()}, server_cpu(args.db_name), os.getloadavg()
    pub = ctx.Process(target=publisher_main, args=(redis_url, rate, seconds, args.per_message, args.marker_hz,
                                                   f"live{step}", args.seed + step, out, published), daemon=True)
    t0 = time.monotonic()
    pub.start()
    series: list[tuple[float, int]] = []  # (s since start, backlog in events)
    next_sample = t0 + 1
    pub_res = None
    while pub_res is None:
        try:
            item = out.get(timeout=max(0.01, next_sample - time.monotonic()))
        except Exception:  # noqa: BLE001 - queue.Empty
            item = False
        if item is None:
            pub_res = out.get(timeout=30)
        elif item:
            watch.add(item)
        if time.monotonic() >= next_sample:
            series.append((time.monotonic() - t0, backlog(client, published.value, base)))
            next_sample += 1
    pub.join(10)
    t_end = time.monotonic()
    cpu1, sys1, load1 = {k: tree_cpu(p) for k, p in procs.items()}, server_cpu(args.db_name), os.getloadavg()
    end_backlog = backlog(client, pub_res["sent"], base)
    # the samples still on their way get ``--grace`` seconds; those not stored by then are missing
    deadline = time.monotonic() + args.grace
    while watch.waiting and time.monotonic() < deadline:
        time.sleep(0.05)
    watch.finish()
    drained = None
    while time.monotonic() < t_end + args.drain_wait:
        if backlog(client, pub_res["sent"], base) <= 0:
            drained = time.monotonic() - t_end
            break
        time.sleep(0.2)
    span = t_end - t0
    lags = [lag for _ts, lag in watch.lags]
    half = [b for s, b in series if s >= seconds / 2]
    growth = (half[-1] - half[0]) / max(1.0, (len(half) - 1)) if len(half) >= 2 else 0.0
    cores = {k: (cpu1[k] - cpu0[k]) / span for k in procs}
    pg = sum(s1 - sys0.get(pid, (role, 0.0))[1] for pid, (role, s1) in sys1.items() if role.startswith("pg_"))
    machine = (sys1.get(-1, ("", 0.0))[1] - sys0.get(-1, ("", 0.0))[1]) / span
    cores["PostgreSQL"] = pg / span
    cores["publisher"] = pub_res["cpu_s"] / span
    cores["others on the machine"] = max(0.0, machine - sum(cores.values()))
    cores["machine busy"] = machine
    achieved = pub_res["sent"] / pub_res["seconds"]
    res = {
        "rate": rate, "seconds": seconds, "published": pub_res["sent"], "achieved_rate": achieved,
        "publisher_max_behind_s": pub_res["max_behind_s"],
        "samples": len(lags) + len(watch.waiting), "missing": len(watch.waiting),
        "lag_ms": {q: pct(lags, q) for q in (0.5, 0.9, 0.99, 1.0)},
        "poll_query_ms_p50": pct(watch.query_ms, 0.5),
        "backlog_end": end_backlog, "backlog_max": max((b for _s, b in series), default=0),
        "backlog_growth_per_s": growth, "drained_after_s": drained, "backlog_series": series,
        "cpu_cores": cores, "loadavg": {"start": load0, "end": load1},
    }
    reasons = []
    if res["lag_ms"][0.99] is None or res["lag_ms"][0.99] > args.lag_bound_ms:
        reasons.append(f"lag p99 {res['lag_ms'][0.99] or 0:,.0f} ms > {args.lag_bound_ms:,}")
    if res["missing"]:
        reasons.append(f"{res['missing']} samples not stored within {args.grace:g} s")
    if achieved < 0.98 * rate:
        reasons.append(f"the publisher reached only {achieved:,.0f}/s")
    if growth > 0.02 * rate:
        reasons.append(f"backlog grew {growth:,.0f} events/s")
    res["sustained"] = not reasons
    res["why_not"] = reasons
    say(f"  {rate:>8,.0f}/s: lag p50/p99 {res['lag_ms'][0.5] or 0:,.0f} / {res['lag_ms'][0.99] or 0:,.0f} ms, backlog end "
        f"{end_backlog:,} (growth {growth:,.0f}/s), {'sustained' if not reasons else '; '.join(reasons)}")
    return res


def step_search(args, redis_url: str, engine, client, pids) -> dict:
    """Go up the rates until one is not sustained, bisect between the last good and the first bad, confirm."""
    steps, good, bad = [], None, None
    rates = [float(r) for r in args.rates.split(",")]
    for rate in rates:
        res = run_step(args, redis_url, engine, client, rate, args.step_s, len(steps) + 1, pids)
        steps.append(res)
        if res["sustained"]:
            good = rate
        else:
            bad = rate
            break
    for _ in range(args.refine if good is not None and bad is not None else 0):
        rate = round((good + bad) / 2, -2)
        if rate in (good, bad):
            break
        res = run_step(args, redis_url, engine, client, rate, args.step_s, len(steps) + 1, pids)
        steps.append(res)
        good, bad = (rate, bad) if res["sustained"] else (good, rate)
    confirm = None
    if good is not None and args.confirm_s > 0:
        say(f"confirming {good:,.0f} events/s for {args.confirm_s:.0f} s")
        confirm = run_step(args, redis_url, engine, client, good, args.confirm_s, len(steps) + 1, pids)
    return {"steps": steps, "highest_sustained": good, "lowest_not_sustained": bad, "confirm": confirm}


# --------------------------------------------------------------------------- the run


def run(args) -> dict:
    started = time.monotonic()
    res: dict = {"config": {k: v for k, v in vars(args).items() if k not in ("json", "output")},
                 "machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}, "errors": []}
    db_url = recreate_database(args.pg_url, args.db_name)
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        procs = Processes(Path(tmp))
        client = None
        try:
            redis_url = args.redis_url or start_redis(procs)
            client = connect_redis(redis_url)
            if args.redis_url:
                for s in feed_names():
                    client.delete(s)
                client.delete(ingested_counts_key())
            say(f"history: {args.history_days:g} days at {args.history_rate:g} events/s into {args.db_name}")
            res["history"] = preload_history(db_url, args.history_days, args.history_rate, args.seed)
            say(f"history: {res['history']['events']:,} events in {res['history']['seconds']:.0f} s")
            from dashboard.storage.db import make_engine

            engine = make_engine(db_url)
            with engine.connect() as conn:
                seq0 = conn.execute(text("SELECT coalesce(max(seq), 0) FROM events")).scalar_one()
            # drain: the backlog, the bare baseline over it, then the shipped workers
            say(f"drain: XADD {args.drain_events:,} events, {args.per_message} per entry")
            res["backlog"] = xadd_backlog(client, args.drain_events, args.per_message, args.seed + 1)
            res["baseline"] = bare_read(client, res["backlog"]["entries"])
            res["baseline"]["events_per_s"] = args.drain_events / res["baseline"]["seconds"]
            env = service_env(redis_url, db_url)
            t0 = time.monotonic()
            workers = [procs.start(f"ingest{i + 1}", [sys.executable, "-m", "feeds.ingest", "--transport", "stream"],
                                   env) for i in range(args.workers)]
            pids = {f"ingest worker {i + 1}": w.pid for i, w in enumerate(workers)}
            if "redis" in procs.procs:
                pids["Redis (the bench's own)"] = procs.pid("redis")
            ps = {k: psutil.Process(p) for k, p in pids.items()}
            sys0 = server_cpu(args.db_name)
            first = done = None
            cpu_first = None  # the workers' CPU when the first row committed: start-up is before it
            with engine.connect() as conn:
                while time.monotonic() - t0 < args.drain_timeout:
                    n = count_after(conn, seq0)
                    conn.commit()
                    now = time.monotonic()
                    if n and first is None:
                        first = now - t0
                        cpu_first = sum(tree_cpu(p) for k, p in ps.items() if k.startswith("ingest"))
                    if n >= args.drain_events:
                        done = now - t0
                        break
                    if procs.dead():
                        raise RuntimeError(f"worker exited: {procs.tail(procs.dead()[0])}")
                    time.sleep(0.05)
            sys1 = server_cpu(args.db_name)
            cpu = {k: tree_cpu(p) for k, p in ps.items()}
            pg = sum(s1 - sys0.get(pid, (role, 0.0))[1] for pid, (role, s1) in sys1.items() if role.startswith("pg_"))
            res["drain"] = {"workers": args.workers, "events": args.drain_events, "first_commit_s": first,
                            "all_committed_s": done, "stored": n,
                            "events_per_s_from_spawn": args.drain_events / done if done else None,
                            "events_per_s_from_first_commit": (args.drain_events / (done - first)
                                                               if done and first and done > first else None),
                            "cpu_s": {**cpu, "PostgreSQL": pg},
                            "workers_cpu_after_first_commit_s": (
                                sum(v for k, v in cpu.items() if k.startswith("ingest")) - cpu_first
                                if cpu_first is not None else None)}
            if done is None:
                res["errors"].append(f"drain: {n:,} of {args.drain_events:,} stored in {args.drain_timeout:.0f} s")
            else:
                say(f"drain: {args.drain_events:,} events committed {done:.1f} s after the spawn "
                    f"({res['drain']['events_per_s_from_spawn']:,.0f}/s; first row at {first:.1f} s)")
            if not args.no_limit:
                say(f"physical limit: COPY the drain's {args.drain_events:,} events into the same table")
                res["limit"] = physical_limit(db_url, args.drain_events, args.seed + 1)
            # wait for the stream entries to be acknowledged before the live steps count a backlog
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and sum(client.xpending(s, INGEST_GROUP)["pending"]
                                                      for s in feed_names()):
                time.sleep(0.2)
            if not args.no_live:
                say(f"live: rates {args.rates} events/s, {args.step_s:.0f} s each, {args.workers} worker(s)")
                res["live"] = step_search(args, redis_url, engine, client, pids)
            if procs.dead():
                res["errors"].append(f"exited: {procs.dead()}")
            with engine.connect() as conn:
                res["events_total"] = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
            engine.dispose()
        except Exception as err:  # noqa: BLE001 - reported
            res["errors"].append(f"{type(err).__name__}: {err}")
            import traceback

            traceback.print_exc()
        finally:
            res["worker_warnings"] = [ln[:200] for name in procs.procs if name.startswith("ingest")
                                      for ln in procs.log(name).splitlines() if "WARNING" in ln or "ERROR" in ln][:20]
            if client is not None:
                client.close()
            procs.stop_all()
            if not args.keep_db:
                drop_database(args.pg_url, args.db_name)
    res["seconds"] = time.monotonic() - started
    res["machine"]["loadavg_end"] = os.getloadavg()
    return res


# --------------------------------------------------------------------------- report


def print_report(res: dict, file=sys.stdout) -> None:
    cfg, h = res["config"], res.get("history", {})
    ms = lambda v: "-" if v is None else f"{v:,.0f}"  # noqa: E731
    print(f"\nShipped ingest worker (python -m feeds.ingest --transport stream) x {cfg['workers']}, "
          f"{cfg['per_message']} event(s) per stream entry, city mix", file=file)
    if h:
        print(f"Database before: {h['events']:,} events ({h['days']:g} days at {h['rate']:g}/s), {h['rollups']:,} "
              f"rollup rows, {h['district_minutes']:,} district minutes, {h['db_mib']:,.0f} MiB "
              f"(COPY'd in {h['copy_s']:.0f} s, {h['seconds']:.0f} s in all)", file=file)
    d, b = res.get("drain"), res.get("baseline")
    target = DRAIN_TARGETS.get(cfg["workers"], TARGET_EVENTS_PER_S)
    if d:
        print(f"\nDrain of {d['events']:,} events (clock: the workers' spawn -> SQL count finds all committed)",
              file=file)
        if b:
            print(f"  baseline, bare XREADGROUP COUNT 1000 + XACK: {b['events_per_s']:,.0f} events/s "
                  f"({b['entries']:,} entries in {b['seconds']:.2f} s)", file=file)
        if d["all_committed_s"]:
            print(f"  shipped worker(s): all committed {d['all_committed_s']:.1f} s after the spawn, first row "
                  f"after {d['first_commit_s']:.1f} s: {d['events_per_s_from_spawn']:,.0f} events/s from the "
                  f"spawn, {d['events_per_s_from_first_commit'] or 0:,.0f} from the first commit "
                  f"({(d['events_per_s_from_first_commit'] or 0) / b['events_per_s']:.1%} of the baseline; "
                  f"target >= {target:,}: {'met' if (d['events_per_s_from_first_commit'] or 0) >= target else 'NOT met'})",
                  file=file)
        else:
            print(f"  NOT drained: {d['stored']:,} stored", file=file)
        after = d.get("workers_cpu_after_first_commit_s")
        if after is not None:
            workers = sum(v for k, v in d["cpu_s"].items() if k.startswith("ingest"))
            print(f"  CPU (clock: the spawn -> all committed): worker(s) {workers:.2f} s, of it {after:.2f} s after the "
                  f"first commit ({after / d['events'] * 1e5:.2f} s per 100,000 events); PostgreSQL "
                  f"{d['cpu_s']['PostgreSQL']:.2f} s ({d['cpu_s']['PostgreSQL'] / d['events'] * 1e5:.2f} s per 100,000)",
                  file=file)
        lim = res.get("limit")
        if lim:
            rate = d["events_per_s_from_first_commit"] or 0
            print(f"  physical limit, COPY of the same {lim['events']:,} rows into the same partitioned, indexed "
                  f"table (clock: COPY's start -> commit; one connection, no processing): "
                  f"{lim['events_per_s']:,.0f} events/s; the shipped worker(s) reach {rate / lim['events_per_s']:.1%} "
                  f"of it", file=file)
    live = res.get("live")
    if live:
        print(f"\nLive feed: lag = publish (before XADD) -> the SQL poll (every {cfg['poll_ms']} ms) that first finds "
              f"the sample's row committed; {cfg['marker_hz']:g} samples/s", file=file)
        print(f"  {'rate/s':>8} {'s':>4} {'achieved':>9} {'lag p50':>8} {'p90':>7} {'p99':>7} {'max':>7} "
              f"{'samples':>8} {'missing':>8} {'backlog end':>12} {'growth/s':>9} {'drained':>8} "
              f"{'load':>5}  verdict", file=file)
        for s in live["steps"] + ([live["confirm"]] if live["confirm"] else []):
            lag = s["lag_ms"]
            drained = "-" if s["drained_after_s"] is None else f"{s['drained_after_s']:.1f}s"
            print(f"  {s['rate']:>8,.0f} {s['seconds']:>4.0f} {s['achieved_rate']:>9,.0f} {ms(lag[0.5]):>8} "
                  f"{ms(lag[0.9]):>7} {ms(lag[0.99]):>7} {ms(lag[1.0]):>7} {s['samples']:>8,} {s['missing']:>8,} "
                  f"{s['backlog_end']:>12,} {s['backlog_growth_per_s']:>9,.0f} "
                  f"{drained:>8} "
                  f"{s['loadavg']['start'][0]:>5.1f}  "
                  + ("sustained" if s["sustained"] else "not: " + "; ".join(s["why_not"])), file=file)
        top = live["highest_sustained"]
        conf = live["confirm"]
        print(f"\n  highest rate sustained (lag p99 <= {cfg['lag_bound_ms']:,} ms, no sample missing, backlog not "
              f"growing): {'none of those tried' if top is None else f'{top:,.0f} events/s'}"
              + (f"; below {live['lowest_not_sustained']:,.0f}" if live["lowest_not_sustained"] else "")
              + (f"; held for {conf['seconds']:.0f} s: {'yes' if conf['sustained'] else 'NO'}" if conf else ""),
              file=file)
        last = conf or live["steps"][-1]
        print("  CPU cores at " + f"{last['rate']:,.0f}/s: " + ", ".join(
            f"{k} {v:.2f}" for k, v in last["cpu_cores"].items()), file=file)
    m = res["machine"]
    print(f"\nLoad average {' '.join(f'{x:.2f}' for x in m['loadavg_start'])} at the start, "
          f"{' '.join(f'{x:.2f}' for x in m['loadavg_end'])} at the end; {m['cpus']} CPUs. "
          f"Took {res['seconds']:.0f} s.", file=file)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.worker", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workers", type=int, default=1, help="shipped worker processes in the consumer group")
    p.add_argument("--history-days", type=float, default=2, help="days of events in the database beforehand")
    p.add_argument("--history-rate", type=float, default=10, help="events/s of that history")
    p.add_argument("--drain-events", type=int, default=200_000, help="events of the backlog to drain")
    p.add_argument("--drain-timeout", type=float, default=300, help="seconds the drain may take")
    p.add_argument("--per-message", type=int, default=1, help="events per stream entry")
    p.add_argument("--rates", default=DEFAULT_RATES, help="live rates to try, ascending, events/s")
    p.add_argument("--refine", type=int, default=2, help="bisections between the last good and first bad rate")
    p.add_argument("--step-s", type=float, default=30, help="seconds of each rate")
    p.add_argument("--confirm-s", type=float, default=120, help="seconds the highest sustained rate runs again")
    p.add_argument("--lag-bound-ms", type=int, default=1000, help="lag p99 a sustained rate must keep")
    p.add_argument("--marker-hz", type=float, default=20, help="sampled events per second")
    p.add_argument("--poll-ms", type=int, default=25, help="how often the samples' rows are looked for")
    p.add_argument("--grace", type=float, default=10, help="seconds a sample may still take after its step")
    p.add_argument("--drain-wait", type=float, default=60, help="seconds to wait for a step's backlog to drain")
    p.add_argument("--no-live", action="store_true", help="drain only")
    p.add_argument("--no-limit", action="store_true", help="skip the physical limit (a COPY of the same rows)")
    p.add_argument("--redis-url", help="Redis to use (default: a redis-server of the bench's own)")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server; the bench makes its own database")
    p.add_argument("--db-name", default=DEFAULT_DB, help="database to drop, create and fill")
    p.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    p.add_argument("--seed", type=int, default=20261204, help="seed of the generated events")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument("--output", metavar="FILE", help="also write the results as JSON to FILE")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res = run(args)
    if args.output:
        Path(args.output).write_text(json.dumps(res, indent=2, default=str))
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        print_report(res)
    for e in res["errors"]:
        print(f"ERROR {e}", file=sys.stderr)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
