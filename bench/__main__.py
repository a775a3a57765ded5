"""Run the standard benchmark set and print every figure: ``PYTHONPATH=. .venv/bin/python -m bench`` (``make bench``).

The set (each run recreates its database, preloads its own feed and measures its own baseline):

1. ingest, 1 worker, stress mix, 1 event per message;
2. ingest, 2 workers, stress mix, 1 event per message;
3. ingest, 2 workers, city mix, 1 event per message;
4. ingest, 1 worker, stress mix, 100 events per message (``--batch 100``).

Every run ingests ``--events`` events (default 200,000). The targets are reported, never asserted: the exit
status is non-zero only on errors (a failed verification, a crash, a stall).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import datetime, timezone

from bench import ingest

STANDARD_SET = (
    ("1 worker, stress", ["--workers", "1", "--mix", "stress", "--batch", "1"]),
    ("2 workers, stress", ["--workers", "2", "--mix", "stress", "--batch", "1"]),
    ("2 workers, city", ["--workers", "2", "--mix", "city", "--batch", "1"]),
    ("1 worker, --batch 100", ["--workers", "1", "--mix", "stress", "--batch", "100"]),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--events", type=int, default=200_000, help="events per run")
    p.add_argument("--sample", type=int, default=40_000, help="events for each run's stage timings")
    p.add_argument("--no-stages", action="store_true", help="skip the stage timings")
    p.add_argument("--redis-url", default=ingest.DEFAULT_REDIS_URL, help="see python -m bench.ingest --help")
    p.add_argument("--pg-url", default=ingest.DEFAULT_PG_URL, help="see python -m bench.ingest --help")
    p.add_argument("--db-name", default=ingest.DEFAULT_DB, help="see python -m bench.ingest --help")
    p.add_argument("--output", metavar="FILE", help="also write all the results as JSON to FILE")
    return p.parse_args(argv)


def run_args(args: argparse.Namespace, extra: list[str]) -> list[str]:
    out = ["--events", str(args.events), "--sample", str(args.sample), "--redis-url", args.redis_url,
           "--pg-url", args.pg_url, "--db-name", args.db_name, *extra]
    return out + (["--no-stages"] if args.no_stages else [])


def print_summary(runs: list[tuple[str, list[str], dict]], file=sys.stdout) -> None:
    """Print one table of the headline figures and one of the consumer time per 1,000 events."""
    names = [name for name, _argv, _res in runs]
    width = max(22, *(len(n) + 2 for n in names))
    head = lambda title: print(f"  {title:<46}" + "".join(f"{n:>{width}}" for n in names), file=file)  # noqa: E731

    def row(label, values):
        print(f"  {label:<46}" + "".join(f"{v:>{width}}" for v in values), file=file)

    def get(res, *keys, fmt="{:,.0f}"):
        v = res
        for k in keys:
            if not isinstance(v, dict) or k not in v:
                return "-"
            v = v[k]
        return fmt.format(v)

    print("\nSummary (events/s; targets: >= 25,000 events/s into PostgreSQL, >= 40% of the bare-read baseline)",
          file=file)
    head("")
    res_list = [res for _name, _argv, res in runs]
    row("events / per message / workers / mix", [
        f"{r['config']['events']:,}/{r['config']['batch']}/{r['config']['workers']}/{r['config']['mix']}"
        if "config" in r else "-" for r in res_list])
    row("incident-worthy share", [
        f"{r['feed']['incident_worthy'] / r['feed']['events']:.1%}" if r.get("feed") else "-" for r in res_list])
    row("baseline events/s (XREADGROUP+XACK)", [get(r, "baseline", "events_per_s") for r in res_list])
    row("baseline µs per stream entry", [
        f"{1e6 / r['baseline']['entries_per_s']:.2f}" if r.get("baseline") else "-" for r in res_list])
    row("pipeline events/s", [get(r, "pipeline", "events_per_s") for r in res_list])
    row("ratio pipeline / baseline", [get(r, "pipeline", "ratio_to_baseline", fmt="{:.1%}") for r in res_list])
    row(">= 25,000 events/s", [
        ("met" if r["targets"]["events_per_s_met"] else "NOT met") if r.get("targets") else "-" for r in res_list])
    row(">= 40% of baseline", [
        ("met" if r["targets"]["ratio_met"] else "NOT met") if r.get("targets") else "-" for r in res_list])
    row("mean batch (events per flush)", [get(r, "pipeline", "mean_batch") for r in res_list])
    for kind, label in (("ingest", "CPU s: ingest process(es)"), ("pg_bench", "CPU s: PostgreSQL backends"),
                        ("pg_aux", "CPU s: PostgreSQL aux (WAL, checkpointer)"), ("redis", "CPU s: redis-server"),
                        ("other", "CPU s: everything else on the machine")):
        row(label, [get(r, "pipeline", "cpu_s", kind, fmt="{:.1f}") for r in res_list])
    row("wall s of the pipeline run", [get(r, "pipeline", "seconds", fmt="{:.2f}") for r in res_list])
    row("other processes meanwhile, cores busy", [
        f"{r['pipeline']['cpu_s']['other'] / r['pipeline']['seconds']:.2f}"
        + (" (!)" if r["pipeline"]["cpu_s"]["other"] > 0.1 * r["pipeline"]["seconds"] else "")
        if "other" in r.get("pipeline", {}).get("cpu_s", {}) else "-" for r in res_list])
    row("verification", [("ok" if r["verify"]["ok"] else "FAILED") if r.get("verify") else "-" for r in res_list])
    if any(r.get("pipeline", {}).get("cpu_s", {}).get("other", 0) > 0.1 * r["pipeline"]["seconds"]
           for r in res_list if r.get("pipeline")):
        print("  (!) other processes used more than 0.1 core during the run: its figures are disturbed; "
              "repeat it on a quiet machine", file=file)

    print("\nConsumer time per 1,000 events in the run (ms, summed over workers)", file=file)
    head("")
    for key, label, indent in ingest.RUN_ROWS:
        values = []
        for r in res_list:
            pipe = r.get("pipeline")
            if not pipe or not pipe.get("flushed"):
                values.append("-")
                continue
            v = pipe["write_parts_s"].get(key) if key in pipe["write_parts_s"] else pipe.get(key)
            values.append("-" if v is None else f"{v * 1e6 / pipe['flushed']:.2f}")
        row("  " * (indent - 1) + label, values)
    if any(r.get("stages") for r in res_list):
        print("\nStages in isolation per 1,000 events (ms; one thread, the first --sample events of each feed)",
              file=file)
        head("")
        row("orjson.loads", [get(r, "stages", "json_loads_us_per_event", fmt="{:.2f}") for r in res_list])
        row("parse_message (orjson + pydantic)", [get(r, "stages", "parse_us_per_event", fmt="{:.2f}")
                                                 for r in res_list])
        row("  of which cyclic GC", [get(r, "stages", "parse_gc_us_per_event", fmt="{:.2f}") for r in res_list])
        row("EventStore.write", [get(r, "stages", "write_ms_per_1000", fmt="{:.2f}") for r in res_list])
        labels = {key: label for key, label, _i in ingest.RUN_ROWS}
        labels["event_rows_in_rest"] = "of rest: event_row (timed apart)"
        for key in ingest.REPORTED_WRITE_PARTS + ("event_rows_in_rest",):
            row(("    " if key == "incidents_sql" else "  ") + labels.get(key, key),
                [get(r, "stages", "write_parts_ms_per_1000", key, fmt="{:.2f}") for r in res_list])
        row("  cyclic GC (inside the parts)", [get(r, "stages", "write_gc_ms_per_1000", fmt="{:.2f}")
                                               for r in res_list])
        row("Redis part of Pipeline.flush", [get(r, "stages", "redis_flush_ms_per_1000", fmt="{:.2f}")
                                            for r in res_list])
        row("one-worker ceiling, events/s (no reads)", [
            get(r, "stages", "one_worker_ceiling_events_per_s") for r in res_list])
    print(file=file)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    runs: list[tuple[str, list[str], dict]] = []
    for name, extra in STANDARD_SET:
        argv_run = run_args(args, extra)
        ingest.say(f"=== {name}: python -m bench.ingest {' '.join(extra)}")
        res = ingest.run(ingest.parse_args(argv_run))
        runs.append((name, argv_run, res))
        if "environment" in res and "feed" in res:
            ingest.print_report(res)
        else:
            print(f"{name}: errors: " + "; ".join(res["errors"]), file=sys.stderr)
        sys.stdout.flush()
    elapsed = time.monotonic() - started
    print_summary(runs)
    print(f"python -m bench: {len(runs)} runs in {elapsed:.0f} s, "
          f"finished {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump({"seconds": elapsed, "runs": [{"name": n, "argv": a, "results": r} for n, a, r in runs]},
                      fh, indent=2, ensure_ascii=False, default=str)
    errors = [f"{name}: {e}" for name, _a, res in runs for e in res["errors"]]
    for e in errors:
        print(f"ERROR {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
