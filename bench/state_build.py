"""Time the live state's build with the baseline risk against the old population formula, in the same run.

``PYTHONPATH=. .venv/bin/python -m bench.state_build`` (one command; ``--days 30`` for a quicker look):

1. creates a PostgreSQL database beside ``--pg-url`` and migrates it;
2. seeds it in SQL: ``--days`` days of hour rollups (every district and domain every hour, minor-and-worse events
   among them, as the risk reads), the last two days of minute rollups, ``--events`` events, and ``--alerts``
   alerts (all but five resolved: the as-of read of open alerts walks them); ``ANALYZE``;
3. times, alternately and ``--repeat`` times each, in this process on one connection:
   * ``new``: ``dashboard.panorama.state.build_state`` as shipped (window counts, the baseline risk:
     ``storage.risk.district_risks``, trends, feeds, newest events), with no cache (every baseline read each
     time: a polling request's build);
   * ``cached``: the same with a kept ``risk_cache``, as the gateway builds (the long windows' baselines read
     once an hour, so in all but the first build not at all);
   * ``shared``: the same with the process's ``RiskCache`` (``Services.risk``), as the pages and the API build
     since: within ``risk.FRESH_MS`` and with the same open alerts the risk computed before is reused (all
     rounds but the first: the clock is the seed's ``now``);
   * ``old``: the same ``build_state`` with the risk computed as before issue 16 (``pressure_score`` from the
     window's counts: no baseline query, no alerts read);
   * ``risk``: ``district_risks`` alone (its two queries and the Poisson tails, five windows, nine districts);
4. prints each one's median, p95 and max in ms.

Clock: ``time.perf_counter()`` started just before the call and stopped as it returns, on a connection opened
before the loop (no pool checkout inside the clock); PostgreSQL runs on the same 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.ingest import DEFAULT_PG_URL, drop_database, recreate_database, say

DAY_MS, HOUR_MS, MINUTE_MS = 86_400_000, 3_600_000, 60_000
DEFAULT_DB = "panorama_bench_state"


def seed(engine, city, now_ms: int, days: int, n_events: int, n_alerts: int) -> None:
    """Fill the rollups, events and alerts in SQL (generate_series), the same rows for old and new."""
    from sqlalchemy import text

    from dashboard.storage import partitions

    codes = ",".join(f"('{d.code}')" for d in city.districts)
    hour0 = now_ms - now_ms % HOUR_MS
    minute0 = now_ms - now_ms % MINUTE_MS
    with engine.begin() as conn:
        partitions.create_days(conn, partitions.PARTITIONED, range((now_ms - 3 * DAY_MS) // DAY_MS,
                                                                   now_ms // DAY_MS + 1))
        dims = f"(VALUES {codes}) AS d(code) CROSS JOIN (VALUES ('security'),('traffic'),('environment'),('incident')) AS m(dom)"
        # an hour holds 200-400 events of a district and domain, a tenth of them minor or worse
        conn.execute(text(f"""
            INSERT INTO district_hours (hour_ms, district, domain, n, sev1, sev2, sev3, sev4)
            SELECT {hour0} - h::bigint * {HOUR_MS}, d.code, m.dom, 300 + (h * 7 + length(d.code || m.dom)) % 100,
                   270, 25 + (h * 3) % 10, 4, 1
            FROM generate_series(0, {days * 24}) AS h CROSS JOIN {dims}"""))
        conn.execute(text(f"""
            INSERT INTO district_minutes (minute_ms, district, domain, n, sev1, sev2, sev3, sev4)
            SELECT {minute0} - i::bigint * {MINUTE_MS}, d.code, m.dom, 5 + i % 3, 4 + i % 2, 1 - i % 2, 0, 0
            FROM generate_series(0, 2 * 1440) AS i CROSS JOIN {dims}"""))
        conn.execute(text(f"""
            INSERT INTO events (domain, event_id, ts_ms, received_ms, kind, district, severity, title)
            SELECT 'traffic', 'seed-' || g, {now_ms} - g * 100, {now_ms} - g * 100, 'congestion', '440304', 1,
                   '拥堵 ' || g
            FROM generate_series(1, {n_events}) AS g"""))
        conn.execute(text(f"""
            INSERT INTO alerts (rule, scope, level, status, district, started_ms, fired_ms, resolved_ms, title,
                                title_en, version, updated_ms)
            SELECT 'r' || g, 'district:440304', 'orange', CASE WHEN g <= 5 THEN 'firing' ELSE 'resolved' END,
                   '440304', {now_ms} - g * 60000, {now_ms} - g * 60000,
                   CASE WHEN g <= 5 THEN NULL ELSE {now_ms} - g * 60000 + 30000 END, 't', 't', 2, {now_ms}
            FROM generate_series(1, {n_alerts}) AS g"""))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def old_risks(conn, districts, now_ms, windows, cache=None):
    """The risk before issue 16: the population pressure of each window's severity counts (no query)."""
    from dashboard.core.channels import DOMAINS
    from dashboard.storage.risk import pressure_score

    zero = [0] * 5
    out = {}
    for minutes, (_, counts) in windows.items():
        out[minutes] = ("population", {d.code: pressure_score(tuple(
            sum(counts.get((d.code, dom), zero)[i] for dom in DOMAINS) for i in range(1, 5)), minutes, d.population)
            for d in districts})
    return out


def stats(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"median": round(statistics.median(ordered), 1),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
            "max": round(ordered[-1], 1), "n": len(ordered)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.state_build", description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server; the bench makes its own database")
    p.add_argument("--db-name", default=DEFAULT_DB)
    p.add_argument("--days", type=int, default=90, help="days of hour rollups")
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--alerts", type=int, default=5_000)
    p.add_argument("--repeat", type=int, default=60)
    p.add_argument("--keep-db", action="store_true")
    args = p.parse_args(argv)

    from dashboard.core.city import load_city
    from dashboard.panorama import state
    from dashboard.storage import risk
    from dashboard.storage.db import make_engine
    from dashboard.storage.queries import WINDOWS, window_bounds, window_counts

    city = load_city("shenzhen")
    url = recreate_database(args.pg_url, args.db_name)
    engine = make_engine(url)
    now = int(time.time() * 1000)
    try:
        t0 = time.perf_counter()
        seed(engine, city, now, args.days, args.events, args.alerts)
        say(f"seeded {args.days} days of hour rollups, 2 days of minutes, {args.events:,} events, "
            f"{args.alerts:,} alerts in {time.perf_counter() - t0:.1f} s")
        shipped = state.district_risks
        times: dict[str, list[float]] = {"new": [], "cached": [], "shared": [], "old": [], "risk": []}
        cache: dict = {}
        shared = risk.RiskCache()
        with engine.connect() as conn:
            counts = window_counts(conn, now, tuple(WINDOWS.values()))
            spans = {m: (window_bounds(now, m)[0], counts[m]["cur"]) for m in WINDOWS.values()}
            bases = {m: b for m, b in risk.baselines(conn, {m: (s, now) for m, (s, _) in spans.items()}).items()}
            say("baseline per window: " + ", ".join(f"{m} min: {'%d weeks' % b.weeks if b else 'none'}"
                                                    for m, b in bases.items()))
            for i in range(args.repeat + 1):  # the first round warms the caches and is not counted
                for name in times:
                    state.district_risks = old_risks if name == "old" else shipped
                    t = time.perf_counter()
                    if name == "risk":
                        risk.district_risks(conn, city.districts, now, spans)
                    else:
                        state.build_state(conn, city, now, {}, cache if name == "cached" else
                                          shared if name == "shared" else None)
                    if i:
                        times[name].append((time.perf_counter() - t) * 1000)
            state.district_risks = shipped
            built = state.build_state(conn, city, now, {})
        result = {name: stats(ts) for name, ts in times.items()}
        for name, s in result.items():
            say(f"{name:6s} median {s['median']:7.1f} ms  p95 {s['p95']:7.1f} ms  max {s['max']:7.1f} ms  (n={s['n']})")
        w = built["windows"]
        say("risk (15m): " + ", ".join(f"{c} {v['risk']}" for c, v in w["15m"]["districts"].items())
            + "  basis per window: " + ", ".join(f"{k} {v['risk_basis']}" for k, v in w.items()))
        return result
    finally:
        engine.dispose()
        if not args.keep_db:
            drop_database(args.pg_url, args.db_name)


if __name__ == "__main__":
    main()
