"""Measure the memory of exporting a district's events (CSV, Excel) streamed, against building the whole frame.

``PYTHONPATH=. .venv/bin/python -m bench.export`` (``--events 200000`` for a quicker look):

1. creates a database of its own, migrates it, and seeds it in SQL: ``--events`` events of Futian spread over
   the last 23 hours (every street and kind of the pack; Chinese titles; every field filled), their minute and
   hour rollups, ``VACUUM ANALYZE``;
2. starts the app under gunicorn (one sync worker) and, signed in as a viewer, downloads
   ``/api/districts/futian/events.csv?window=24h`` and ``.xlsx`` through HTTP, reading the body in 1 MiB pieces
   and throwing them away;
3. the baseline, in the same run: a child process reads the same rows with one query into one pandas frame,
   formats the cells with the same function (``export.event_cells``), and writes the whole frame at once
   (``to_csv``; ``to_excel`` with XlsxWriter in its ordinary mode) into memory.

Memory: the peak resident set (VmHWM in /proc/<pid>/status, the kernel's own high-water mark, reset with
``echo 5 > /proc/<pid>/clear_refs`` just before each export, so it is the peak during that export alone) of the
gunicorn worker that serves the request, and of the baseline's child process; each beside the process's resident
set just before the export (VmRSS). Nothing is sampled: the kernel counts every page. Clock: around the HTTP
request on the benchmark's side, from sending it to the body's last byte (the streamed file is being made all
that time); the baseline's around its read and its write. Both share the 2-core machine with PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAY_MS, HOUR_MS = 86_400_000, 3_600_000
PASSWORD = "bench-password-1"
SPAN_MS = 23 * HOUR_MS  # inside the 24-hour window however long the run takes


def status_kib(pid: int | str, field: str) -> int:
    """Return a field of /proc/<pid>/status in KiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int | str) -> None:
    """Reset the process's VmHWM to its present resident set (Linux 4.0 and later)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


def seed(db_url: str, n: int, now_ms: int) -> dict:
    """Fill the database with ``n`` of Futian's events over the last 23 hours and their rollups."""
    from sqlalchemy import text

    from dashboard.core.city import load_city
    from dashboard.storage import partitions
    from dashboard.storage.db import make_engine, upgrade
    from dashboard.storage.events import HOURS_FROM_MINUTES

    city = load_city("shenzhen")
    futian = city.resolve("futian")
    import yaml

    kinds = [(dom, str(k)) for dom, ks in yaml.safe_load((city.path / "city.yaml").read_text("utf-8"))["kinds"].items()
             for k in ks]
    combos = [(s.name, dom, k) for s in futian.streets for dom, k in kinds]
    engine = make_engine(db_url)
    upgrade(engine)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        partitions.create_days(conn, partitions.PARTITIONED, range((now_ms - DAY_MS) // DAY_MS, now_ms // DAY_MS + 1))
        conn.execute(text("CREATE TEMP TABLE combos (i int, street text, domain text, kind text)"))
        conn.execute(text("INSERT INTO combos VALUES (:i, :s, :dom, :k)"),
                     [{"i": i, "s": s, "dom": dom, "k": k} for i, (s, dom, k) in enumerate(combos)])
        conn.execute(text(f"""
            INSERT INTO events (domain, event_id, ts_ms, received_ms, kind, district, street, severity, lat, lon,
                                value, unit, title, detail, source)
            SELECT c.domain, 'seed-' || g, {now_ms} - 1 - (g::bigint * {SPAN_MS - 1} / {n}), {now_ms}, c.kind,
                   '{futian.code}', c.street,
                   CASE WHEN g % 100 = 7 THEN 4 WHEN g % 20 = 3 THEN 3 WHEN g % 4 = 1 THEN 2 ELSE 1 END,
                   22.5 + (g % 1000) / 10000.0, 114.0 + (g % 997) / 10000.0, (g % 300)::float8, '辆',
                   c.street || ' 路口 ' || c.kind || ' 事件第 ' || g || ' 号', '详情 ' || g, 'bench'
            FROM generate_series(0, {n - 1}) g JOIN combos c ON c.i = (g::bigint * 7919) % {len(combos)}"""))
        conn.execute(text("""
            INSERT INTO rollups (minute_ms, district, street, domain, kind, n, sev1, sev2, sev3, sev4, value_sum,
                                 value_n, value_max)
            SELECT ts_ms - ts_ms % 60000, district, street, domain, kind, count(*),
                   count(*) FILTER (WHERE severity = 1), count(*) FILTER (WHERE severity = 2),
                   count(*) FILTER (WHERE severity = 3), count(*) FILTER (WHERE severity = 4),
                   sum(value), count(value), max(value)
            FROM events GROUP BY 1, 2, 3, 4, 5"""))
        conn.execute(text("""
            INSERT INTO district_minutes (minute_ms, district, domain, n, sev1, sev2, sev3, sev4)
            SELECT minute_ms, district, domain, sum(n), sum(sev1), sum(sev2), sum(sev3), sum(sev4)
            FROM rollups GROUP BY 1, 2, 3"""))
        for sql in HOURS_FROM_MINUTES:
            conn.execute(text(sql))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        rows = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
    from dashboard.storage import users

    users.create_user(engine, "bench-viewer", PASSWORD, "viewer", None, [d["code"] for d in city.departments])
    engine.dispose()
    return {"events": rows, "seed_s": round(time.perf_counter() - t0, 1)}


def streamed(db_url: str, redis_url: str) -> dict:
    """Download each export from a gunicorn of its own (so neither inherits the other's freed memory); return its
    bytes, time and the worker's memory."""
    return {fmt: _streamed_one(db_url, redis_url, fmt) for fmt in ("csv", "xlsx")}


def _streamed_one(db_url: str, redis_url: str, fmt: str) -> dict:
    import psutil
    import requests

    from bench.procs import Processes, free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL", "PANORAMA_"))}
    env.update({"DATABASE_URL": db_url, "REDIS_URL": redis_url, "PANORAMA_AUTO_MIGRATE": "0",
                "PANORAMA_SECRET_KEY": "bench", "PANORAMA_SIMULATE": "0", "PYTHONPATH": os.getcwd()})
    procs = Processes(Path(tempfile.mkdtemp(prefix="export-bench-")))
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    master = procs.start("gunicorn", [gunicorn, "-w", "1", "--timeout", "900", "-b", f"127.0.0.1:{port}",
                                      "app:server"], env)
    origin = f"http://127.0.0.1:{port}"
    try:
        http = requests.Session()
        deadline = time.monotonic() + 90
        while True:
            try:
                if http.post(origin + "/api/session", json={"username": "bench-viewer", "password": PASSWORD},
                             timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if master.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {procs.tail('gunicorn')}")
            time.sleep(0.2)
        [worker] = psutil.Process(master.pid).children()
        # warm: the same route over 15 minutes, so the code paths have run once before the measured export
        http.get(f"{origin}/api/districts/futian/events.{fmt}?window=15m", timeout=60).raise_for_status()
        before = status_kib(worker.pid, "VmRSS")
        reset_peak(worker.pid)
        t0 = time.perf_counter()
        size = 0
        with http.get(f"{origin}/api/districts/futian/events.{fmt}?window=24h", stream=True, timeout=900) as res:
            res.raise_for_status()
            rows = int(res.headers["X-Export-Rows"])
            for block in res.iter_content(1 << 20):
                size += len(block)
        seconds = time.perf_counter() - t0
        peak = status_kib(worker.pid, "VmHWM")
    finally:
        procs.stop_all()
    return {"rows": rows, "bytes": size, "seconds": round(seconds, 1), "rss_before_mib": mib(before),
            "peak_mib": mib(peak), "peak_over_before_mib": mib(peak - before)}


def baseline_child(db_url: str, fmt: str) -> dict:
    """In this (child) process: the whole frame in memory, then the whole file in memory."""
    import io

    import pandas as pd
    from sqlalchemy import select

    from dashboard.core.city import load_city
    from dashboard.core.clock import now_ms
    from dashboard.panorama import export
    from dashboard.storage import queries
    from dashboard.storage.db import make_engine
    from dashboard.storage.models import events

    city = load_city("shenzhen")
    engine = make_engine(db_url)
    start, end = queries.window_bounds(now_ms(), 1440)
    e = events.c
    stmt = (select(e.domain, e.event_id.label("id"), e.ts_ms.label("ts"), e.kind, e.district, e.street, e.severity,
                   e.title, e.value, e.unit)
            .where(e.district == "440304", e.ts_ms >= start, e.ts_ms < end).order_by(e.ts_ms.desc(), e.seq.desc()))
    before = status_kib("self", "VmRSS")
    reset_peak("self")
    t0 = time.perf_counter()
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    frame = pd.DataFrame(export.event_cells(rows, "zh", "Asia/Shanghai", city), columns=list(export.EVENT_COLUMNS))
    del rows
    buf = io.BytesIO()
    if fmt == "csv":
        buf.write((export.BOM + frame.to_csv(index=False)).encode())
    else:
        frame.to_excel(buf, index=False, engine="xlsxwriter")
    seconds = time.perf_counter() - t0
    peak = status_kib("self", "VmHWM")
    return {"rows": len(frame), "bytes": buf.tell(), "seconds": round(seconds, 1), "rss_before_mib": mib(before),
            "peak_mib": mib(peak), "peak_over_before_mib": mib(peak - before)}


def baseline(db_url: str) -> dict:
    """Run the baseline for each format in a fresh child process."""
    out = {}
    for fmt in ("csv", "xlsx"):
        done = subprocess.run([sys.executable, "-m", "bench.export", "--child", fmt, "--db-url", db_url],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        out[fmt] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--db-name", default="panorama_bench_export")
    parser.add_argument("--child", choices=("csv", "xlsx"), help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(baseline_child(args.db_url, args.child)))
        return 0
    import psycopg
    from sqlalchemy.engine import make_url

    from dashboard.core.clock import now_ms

    url = make_url(args.pg_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db_name}"')
    db_url = url.set(database=args.db_name).render_as_string(hide_password=False)
    try:
        report = {"seed": seed(db_url, args.events, now_ms())}
        print(json.dumps(report), flush=True)
        report["streamed"] = streamed(db_url, args.redis_url)
        print(json.dumps(report["streamed"]), flush=True)
        report["baseline"] = baseline(db_url)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
    print(json.dumps(report, indent=2))
    for fmt in ("csv", "xlsx"):
        s, b = report["streamed"][fmt], report["baseline"][fmt]
        print(f"{fmt}: {s['rows']:,} rows; streamed peak +{s['peak_over_before_mib']} MiB over the worker's "
              f"{s['rss_before_mib']} MiB in {s['seconds']} s; whole frame +{b['peak_over_before_mib']} MiB in "
              f"{b['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
