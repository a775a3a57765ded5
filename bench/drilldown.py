"""Time the drill-down's reads at a city's volume, against the baseline commit in the same run.

``PYTHONPATH=. .venv/bin/python -m bench.drilldown`` (``--events 2000000`` for a quicker look):

1. checks the baseline out into a temporary worktree (``--baseline``; by default the commit before the storage
   was partitioned, that is today's main before issue 14's storage work);
2. for the baseline and for this tree, in a child process running that tree's own code: creates a database,
   migrates it with that tree's migrations, seeds it in SQL (the same rows for both): ``--events`` events spread
   over the last 24 hours across every district, street and kind of the Shenzhen pack, the minute rollups summed
   from them, and ``--days-before`` earlier days of minute rollups (every street and kind every minute, as at 20
   million events a day), the hour rollups summed from the minutes where the tree has them; ``ANALYZE``;
3. times each read ``--repeat`` times from the app's own code paths (the city and district summaries, the
   gateway's state, the events API's pages, filters — common, rare (one event in RARE_EVERY is of a kind the
   pack lacks) and matching nothing —, title searches (trigram-served and too short for trigrams) and sorts
   (title over an hour: a day is refused), the drill-down table's deep page), then some of the same reads
   through HTTP from gunicorn (one kept-alive connection);
4. prints each read's first (cold) time, median and p95 for both trees, against the target p95 <= 150 ms.

Clock: around the one call (or HTTP request), on the benchmark's side; the server's own time, as the machine's
2 cores also run PostgreSQL. Reads the baseline cannot answer (7-day windows) read "n/a".
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.baseline import ROOT, baseline_tree, before, git, run_in

TARGET_MS = 150.0
RARE_KIND, RARE_EVERY = "sinkhole", 4001  # a rare filter: 1 event in 4,001
DAY_MS, HOUR_MS = 86_400_000, 3_600_000
PASSWORD = "bench-password-1"


# --------------------------------------------------------------------------- child: one tree's code


def pack_kinds(city) -> list[tuple[str, str]]:
    """Return the city pack's (domain, kind) pairs."""
    import yaml

    data = yaml.safe_load((city.path / "city.yaml").read_text(encoding="utf-8"))
    return [(domain, str(kind)) for domain, kinds in data["kinds"].items() for kind in kinds]


def seed(engine, city, n: int, days_before: int, now_ms: int) -> dict:
    """Fill the database in SQL: events over the last 24 h, their rollups, earlier days of rollups."""
    from sqlalchemy import inspect, text

    combos = [(d.code, s.name, domain, kind) for d in city.districts for s in d.streets
              for domain, kind in pack_kinds(city)]
    t0 = time.perf_counter()
    tables = set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        try:  # this tree partitions by day: make the days the seed falls in
            from dashboard.storage import partitions
            partitions.create_days(conn, partitions.PARTITIONED,
                                   range((now_ms - (days_before + 1) * DAY_MS) // DAY_MS, now_ms // DAY_MS + 1))
        except ImportError:
            pass
        conn.execute(text("CREATE TEMP TABLE combos (i int, district text, street text, domain text, kind text)"))
        conn.execute(text("INSERT INTO combos VALUES (:i, :d, :s, :dom, :k)"),
                     [{"i": i, "d": d, "s": s, "dom": dom, "k": k} for i, (d, s, dom, k) in enumerate(combos)])
        # Event g: a combination picked by a multiplicative hash, times spread evenly over the last 24 hours,
        # 1 in 100 critical, 1 in 20 major, 1 in 4 minor, 1 in RARE_EVERY of a rare kind the pack lacks (the
        # rollups keep its name: they are summed here, not folded by ingest); titles name the kind, the street
        # and a number.
        conn.execute(text(f"""
            INSERT INTO events (domain, event_id, ts_ms, received_ms, kind, district, street, severity, lat, lon,
                                value, unit, title, source)
            SELECT c.domain, 'seed-' || g, {now_ms} - 1 - (g::bigint * {DAY_MS - 1} / {n}), {now_ms},
                   CASE WHEN g % {RARE_EVERY} = 17 THEN '{RARE_KIND}' ELSE c.kind END,
                   c.district, c.street,
                   CASE WHEN g % 100 = 7 THEN 4 WHEN g % 20 = 3 THEN 3 WHEN g % 4 = 1 THEN 2 ELSE 1 END,
                   22.5 + (g % 1000) / 10000.0, 114.0 + (g % 997) / 10000.0, (g % 300)::float8, 'u',
                   c.kind || ' · ' || c.street || ' #' || (g % 5000), 'bench'
            FROM generate_series(0, {n - 1}) g JOIN combos c ON c.i = (g::bigint * 7919) % {len(combos)}"""))
        conn.execute(text("""
            INSERT INTO rollups (minute_ms, district, street, domain, kind, n, sev1, sev2, sev3, sev4, value_sum,
                                 value_n, value_max)
            SELECT ts_ms - ts_ms % 60000, district, street, domain, kind, count(*),
                   count(*) FILTER (WHERE severity = 1), count(*) FILTER (WHERE severity = 2),
                   count(*) FILTER (WHERE severity = 3), count(*) FILTER (WHERE severity = 4),
                   sum(value), count(value), max(value)
            FROM events GROUP BY 1, 2, 3, 4, 5"""))
        first = (now_ms - DAY_MS) - (now_ms - DAY_MS) % 60_000
        per_minute = max(1, n // (1440 * len(combos)))
        conn.execute(text(f"""
            INSERT INTO rollups (minute_ms, district, street, domain, kind, n, sev1, sev2, sev3, sev4, value_sum,
                                 value_n, value_max)
            SELECT {first} - m * 60000, c.district, c.street, c.domain, c.kind, {per_minute}, {per_minute}, 0, 0, 0,
                   0, 0, NULL
            FROM generate_series(1, {days_before * 1440}) m CROSS JOIN combos c"""))
        conn.execute(text("""
            INSERT INTO district_minutes (minute_ms, district, domain, n, sev1, sev2, sev3, sev4)
            SELECT minute_ms, district, domain, sum(n), sum(sev1), sum(sev2), sum(sev3), sum(sev4)
            FROM rollups GROUP BY 1, 2, 3"""))
        if "rollup_hours" in tables:
            from dashboard.storage.events import HOURS_FROM_MINUTES
            for sql in HOURS_FROM_MINUTES:
                conn.execute(text(sql))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("events", "rollups", "district_minutes", "rollup_hours") if t in tables}
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    return {"rows": counts, "db_mib": round(size / 2**20), "seconds": round(time.perf_counter() - t0, 1)}


def timed(fn, repeat: int) -> dict:
    """Call ``fn`` ``repeat`` + 1 times; the first is the cold one. Times in ms."""
    times = []
    for _ in range(repeat + 1):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    warm = sorted(times[1:])
    return {"first": round(times[0], 1), "median": round(statistics.median(warm), 1),
            "p95": round(warm[min(len(warm) - 1, int(0.95 * len(warm)))], 1)}


def code_reads(engine, city, now_ms: int, tz: str) -> dict:
    """The reads, each a closure over the app's own functions (None where this tree has no such read)."""
    from dashboard.panorama import district as dd
    from dashboard.panorama import state
    from dashboard.storage import queries

    futian = city.resolve("futian")
    street = futian.streets[0].name
    kind = next(k for d, k in pack_kinds(city) if d == "traffic")
    day = queries.window_bounds(now_ms, 1440)
    hour = queries.window_bounds(now_ms, 60)

    def q(fn):
        def run():
            with engine.connect() as conn:
                return fn(conn)
        return run

    # The app passes the city (which streets and kinds the rollups keep); a tree from before that takes none.
    pack = {"city": city} if "city" in inspect.signature(dd.event_rows).parameters else {}

    def api(window=day, **kw):
        return q(lambda c: dd.event_rows(c, dd.EventQuery(futian.code, *window, **kw), tz, **pack))

    reads = {}
    for w in ("1h", "24h", "7d"):
        ok = w in queries.WINDOWS
        reads[f"city summary {w}"] = q(lambda c, m=queries.WINDOWS.get(w): queries.summary(c, city, m, now_ms, tz)) \
            if ok else None
        reads[f"district summary {w}"] = q(lambda c, m=queries.WINDOWS.get(w): queries.district_summary(
            c, city, futian, m, now_ms, tz)) if ok else None
    reads["gateway state"] = q(lambda c: state.build_state(c, city, now_ms, {}))
    reads["events: first page (-ts)"] = api()
    for sort in ("ts", "-severity"):
        reads[f"events: sort {sort}"] = api(sort=sort)
    reads["events: sort title (1 h; 24 h is refused)"] = api(hour, sort="title")
    reads["events: domain"] = api(domain="traffic")
    reads["events: kind"] = api(kind=kind)
    reads["events: street"] = api(street=street)
    reads["events: severity >= 3"] = api(severity_min=3)
    reads["events: kind + street"] = api(kind=kind, street=street)
    reads["events: kind + street + severity >= 3"] = api(kind=kind, street=street, severity_min=3)
    reads[f"events: rare kind (1 in {RARE_EVERY:,})"] = api(kind=RARE_KIND)
    reads["events: rare kind, sort -severity"] = api(kind=RARE_KIND, sort="-severity")
    reads["events: kind matching nothing"] = api(kind="drone_sighting")
    reads["events: kind + severity >= 4 matching nothing"] = api(kind=RARE_KIND, severity_min=4, street=street)
    reads["events: title search"] = api(q="#4242")
    reads["events: title search, Chinese"] = api(q=f"{street} #42")
    reads["events: title search, 2 characters (no trigram)"] = api(q=street[:2])
    # a deep page: 10,000 rows in, by the cursor the pages before it gave (walked once, not timed)
    with engine.connect() as conn:
        cursor = None
        for _ in range(50):
            _, cursor = dd.event_rows(conn, dd.EventQuery(futian.code, *day, limit=200, cursor=cursor), tz)
    reads["events: page 51 (10,000 rows in)"] = api(limit=200, cursor=cursor)
    if hasattr(dd, "event_page"):  # the table's OFFSET paging: page 501 of 20
        reads["table: page 501"] = q(lambda c: dd.event_page(c, futian.code, *day, 500, 20, [], []))
    else:  # keyset: the page keeps the cursor of each page it reached
        with engine.connect() as conn:
            cursor = None
            for _ in range(500):
                _, cursor = dd.table_page(conn, futian.code, *day, "-ts", 20, cursor, [])
        reads["table: page 501"] = q(lambda c: dd.table_page(c, futian.code, *day, "-ts", 20, cursor, []))
    return reads


HTTP_READS = {
    "HTTP city summary 24h": "/api/summary?window=24h",
    "HTTP city summary 7d": "/api/summary?window=7d",
    "HTTP district summary 24h": "/api/districts/futian/summary?window=24h",
    "HTTP events first page": "/api/districts/futian/events?window=24h",
    "HTTP events sort title 1h": "/api/districts/futian/events?window=1h&sort=title",
    "HTTP events sort -severity": "/api/districts/futian/events?window=24h&sort=-severity",
    "HTTP events rare kind": f"/api/districts/futian/events?window=24h&kind={RARE_KIND}",
    "HTTP events severity >= 3": "/api/districts/futian/events?window=24h&severity_min=3",
    "HTTP events title search": "/api/districts/futian/events?window=24h&q=%234242",
}


def http_reads(db_url: str, repeat: int) -> dict:
    """Time the HTTP reads from gunicorn (one gthread worker) over one kept-alive, signed-in connection."""
    import requests

    from bench.procs import Processes, free_port
    from dashboard.core.city import load_city
    from dashboard.storage import users
    from dashboard.storage.db import make_engine

    engine = make_engine(db_url)
    users.create_user(engine, "bench-viewer", PASSWORD, "viewer", None, [d["code"] for d in load_city("shenzhen").departments])
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL", "PANORAMA_"))}
    env.update({"DATABASE_URL": db_url, "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
                "PANORAMA_AUTO_MIGRATE": "0", "PANORAMA_SECRET_KEY": "bench", "PANORAMA_SIMULATE": "0",
                "PYTHONPATH": os.getcwd()})
    procs = Processes(Path(tempfile.mkdtemp(prefix="drilldown-")))
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    app = procs.start("gunicorn", [gunicorn, "-w", "1", "--threads", "4", "--keep-alive", "30",
                                   "-b", f"127.0.0.1:{port}", "app:server"], env)
    origin = f"http://127.0.0.1:{port}"
    try:
        http = requests.Session()
        deadline = time.monotonic() + 60
        while True:
            try:
                if http.post(origin + "/api/session", json={"username": "bench-viewer", "password": PASSWORD},
                             timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # starting, or answering slowly on a busy machine
                pass
            if app.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {procs.tail('gunicorn')}")
            time.sleep(0.2)
        out = {}
        for name, path in HTTP_READS.items():
            status = http.get(origin + path, timeout=60).status_code
            out[name] = timed(lambda p=path: http.get(origin + p, timeout=60).raise_for_status(), repeat) \
                if status == 200 else None
        return out
    finally:
        procs.stop_all()


def child(args) -> int:
    """Run in a tree: make, seed and time one database; print the results as JSON on the last line."""
    import psycopg
    from sqlalchemy.engine import make_url

    from dashboard.core.city import load_city
    from dashboard.storage.db import make_engine, upgrade

    url = make_url(args.pg_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db_name}"')
    db_url = url.set(drivername="postgresql+psycopg", database=args.db_name).render_as_string(hide_password=False)
    engine = make_engine(db_url)
    upgrade(engine)
    city = load_city("shenzhen")
    now_ms = args.now_ms
    seeded = seed(engine, city, args.events, args.days_before, now_ms)
    print(f"  seeded {seeded}", file=sys.stderr, flush=True)
    results = {}
    for name, fn in code_reads(engine, city, now_ms, "Asia/Shanghai").items():
        results[name] = timed(fn, args.repeat) if fn is not None else None
        print(f"  {name}: {results[name]}", file=sys.stderr, flush=True)
    engine.dispose()
    results.update(http_reads(db_url, args.repeat))
    print(json.dumps({"seed": seeded, "reads": results}))
    if not args.keep_db:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
    return 0


# --------------------------------------------------------------------------- parent


def run_tree(tree: Path, label: str, args, now_ms: int) -> dict:
    say(f"{label}: {tree}")
    extra = ["--keep-db"] if args.keep_db else []
    out = run_in(tree, "bench.drilldown", "--child", "--pg-url", args.pg_url, "--db-name", f"panorama_drill_{label}",
                 "--events", str(args.events), "--days-before", str(args.days_before), "--repeat", str(args.repeat),
                 "--now-ms", str(now_ms), *extra)
    return json.loads(out.strip().splitlines()[-1])


def say(msg: str) -> None:
    print(f"[drilldown {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def report(res: dict, args, file=sys.stdout) -> None:
    base, now = res["baseline"], res["current"]
    p = lambda *a: print(*a, file=file)  # noqa: E731
    p(f"\nDrill-down reads, {args.events:,} events in the last 24 h + {args.days_before} earlier days of rollups; "
      f"each read once cold, then {args.repeat} times (ms; clock around the call or the HTTP request)")
    p(f"baseline {res['baseline_ref']}: {base['seed']}")
    p(f"current  {res['current_ref']}: {now['seed']}")
    p(f"\n| read | baseline first / median / p95 | now first / median / p95 | target p95 <= {TARGET_MS:.0f} |")
    p("|---|---:|---:|---|")
    fmt = lambda r: "n/a" if r is None else f"{r['first']:,.1f} / {r['median']:,.1f} / {r['p95']:,.1f}"  # noqa: E731
    for name in now["reads"]:
        b, c = base["reads"].get(name), now["reads"][name]
        verdict = "-" if c is None else ("met" if c["p95"] <= TARGET_MS else "MISSED")
        p(f"| {name} | {fmt(b)} | {fmt(c)} | {verdict} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.drilldown", description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000_000, help="events in the last 24 hours (20,000,000)")
    ap.add_argument("--days-before", type=int, default=6, help="earlier days of minute rollups (6)")
    ap.add_argument("--repeat", type=int, default=20, help="warm repetitions of each read (20)")
    ap.add_argument("--baseline", help="the commit to compare with (default: the one before day partitions)")
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--keep-db", action="store_true", help="keep the two databases")
    ap.add_argument("--output", help="also write the results as JSON to this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--db-name", help=argparse.SUPPRESS)
    ap.add_argument("--now-ms", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    ref = args.baseline or before("dashboard/storage/migrations/versions/0006_partitions.py")
    now_ms = int(time.time() * 1000)
    res = {"baseline_ref": git("rev-parse", "--short", ref), "current_ref": git("rev-parse", "--short", "HEAD")}
    with baseline_tree(ref, Path(__file__), ROOT / "bench" / "baseline.py") as tree:
        res["baseline"] = run_tree(tree, "baseline", args, now_ms)
    res["current"] = run_tree(ROOT, "current", args, now_ms)
    report(res, args)
    if args.output:
        Path(args.output).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
