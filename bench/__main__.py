"""Run the standard benchmark set and print every figure: ``PYTHONPATH=. .venv/bin/python -m bench`` (``make bench``).

The set, each against a baseline measured in the same run, every process the shipped one:

1. ``bench.worker``: the shipped ingest worker (1 process) drains a backlog into a database that holds days of
   events (baseline: a bare XREADGROUP + XACK reader), then the highest live rate it sustains with lag bounded,
   held again for two minutes;
2. ``bench.worker --workers 2 --no-live``: the drain with two workers;
3. ``bench.fanout``: 1,000 websocket clients against the same 1,000 polling ``/api/summary?live=1`` over kept-alive
   connections, once a second and at the pages' own fallback interval;
4. ``bench.latency``: publish to painted in Chromium on ``/wall``, against the same page polling at its fallback
   interval and a plain ``dcc.Interval`` page polling once a second.

About 13 minutes on the 2-core machine. Targets are reported, never asserted: the exit status is non-zero only
on errors (a failed verification, a crash).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone

from bench import fanout, latency, worker
from bench.ingest import DEFAULT_PG_URL, say


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server; each benchmark makes its own db")
    p.add_argument("--redis-url", help="Redis to use (default: each benchmark starts a redis-server of its own)")
    p.add_argument("--db-suffix", default="", help="appended to every database name (two runs on one server)")
    p.add_argument("--output", metavar="FILE", help="also write all the results as JSON to FILE")
    return p.parse_args(argv)


def common(args, db: str) -> list[str]:
    out = ["--pg-url", args.pg_url, "--db-name", db + args.db_suffix]
    return out + (["--redis-url", args.redis_url] if args.redis_url else [])


def summary(results: dict, file=sys.stdout) -> None:
    """One table of the headline figures, each beside its baseline from the same run."""
    ms = lambda v: "-" if v is None else f"{v:,.0f} ms"  # noqa: E731
    print("\n=== Summary (every clock starts at publish, before Redis; load average with each run)", file=file)
    for name in ("worker", "worker2"):
        w = results.get(name)
        if not w or "drain" not in w:
            continue
        d, b = w["drain"], w.get("baseline", {})
        print(f"  ingest, {d['workers']} shipped worker(s), drain of {d['events']:,} into {w['history']['events']:,} "
              f"events: {d['events_per_s_from_first_commit'] or 0:,.0f} events/s from the first commit, "
              f"{d['events_per_s_from_spawn'] or 0:,.0f} from the spawn; baseline {b.get('events_per_s', 0):,.0f} "
              f"events/s (load {w['machine']['loadavg_start'][0]:.1f})", file=file)
        live = w.get("live")
        if live:
            conf = live["confirm"]
            lag = conf["lag_ms"] if conf else {}
            top = live["highest_sustained"]
            print(f"  ingest, live: highest rate sustained {'-' if top is None else f'{top:,.0f}'} events/s "
                  f"(lag p99 <= {w['config']['lag_bound_ms']:,} ms)"
                  + (f", held {conf['seconds']:.0f} s: {'yes' if conf['sustained'] else 'NO'}, lag p50/p99 "
                     f"{ms(lag.get(0.5))} / {ms(lag.get(0.99))}" if conf else ""), file=file)
    f = results.get("fanout")
    if f:
        for n in f.get("phases", []):
            p = f[n]
            a = p["accounted"]
            total = sum(a.values()) or 1
            print(f"  fan-out {n:>9}: delivered lag p99 {ms(p['delivered_lag_ms'][0.99])}, every event (it or newer "
                  f"shown) p50/p99 {ms(p['every_event_ms'][0.5])} / {ms(p['every_event_ms'][0.99])}, coalesced "
                  f"{a['coalesced'] / total:.0%}, missing {a['missing']} (load {p['loadavg']['start'][0]:.1f})",
                  file=file)
    lat = results.get("latency")
    if lat:
        for n in ("push", "fallback", "poll"):
            p = lat.get(n)
            if not p:
                continue
            a = p["accounted"]
            print(f"  browser {n:>9}: publish -> painted p50/p99 {ms(a['shown_painted_ms']['p50'])} / "
                  f"{ms(a['shown_painted_ms']['p99'])} ({a['shown']:,} of {a['published']:,} events shown), every "
                  f"event (it or newer in the DOM) p99 {ms(a['every_event_ms']['p99'])}, age of newest shown p50 "
                  f"{ms(p['screen_age_ms']['p50'])}, markers missed {p['markers']['missed']} of "
                  f"{p['markers']['sent']} (load {p['loadavg']['start'][0]:.1f})", file=file)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    results: dict = {}
    errors: list[str] = []

    say("=== 1/4 python -m bench.worker (1 worker: drain, then live rates)")
    res = worker.run(worker.parse_args(common(args, worker.DEFAULT_DB)))
    worker.print_report(res)
    results["worker"], errors = res, errors + [f"worker: {e}" for e in res["errors"]]

    say("=== 2/4 python -m bench.worker --workers 2 --no-live")
    res = worker.run(worker.parse_args(common(args, worker.DEFAULT_DB) + ["--workers", "2", "--no-live"]))
    worker.print_report(res)
    results["worker2"], errors = res, errors + [f"worker --workers 2: {e}" for e in res["errors"]]

    say("=== 3/4 python -m bench.fanout")
    fargs = fanout.parse_args(common(args, fanout.DEFAULT_DB))
    fanout.raise_nofile()
    res, ferr = fanout.run(fargs)
    if res["phases"]:
        fanout.print_report(res)
    results["fanout"], errors = res, errors + [f"fanout: {e}" for e in ferr]

    say("=== 4/4 python -m bench.latency --seconds 20")
    res = latency.run(latency.parse_args(common(args, latency.DEFAULT_DB) + ["--seconds", "20"]))
    latency.print_report(res)
    results["latency"], errors = res, errors + [f"latency: {e}" for e in res["errors"]]

    summary(results)
    elapsed = time.monotonic() - started
    print(f"python -m bench: 4 runs in {elapsed:.0f} s, finished "
          f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump({"seconds": elapsed, **results}, fh, indent=2, ensure_ascii=False, default=str)
    for e in errors:
        print(f"ERROR {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
