"""The alert rules' CPU per event in process, on a fixed workload: ``python -m bench.rules_cpu PACK [PACK...]``.

The 60,000 events of ``bench.alerts``' own feed (the city mix, stamped 1,000/s up to now) go into a fresh migrated
database in 12 batches of 5,000 (``Pipeline.add``, then ``Pipeline.flush`` with the post-batch reconcile in the same
thread), and one ``Evaluator.tick`` follows each batch at a clock set 1 s further each batch: every run of a pack
fires the same alerts whatever the machine's load, which the shipped worker's drains cannot promise (their tick runs
by the wall clock). The pack's rosters, notification policies and rules are loaded before the clock, as a long-running
worker has them. **Clock**: ``time.thread_time()`` of the one thread around the 12 batches; PostgreSQL's CPU is not
in it but reported beside it: the user + system time (``/proc/PID/stat``) of the server processes connected to the
run's database, from the clock's start to its end (the server must run on this machine). Compare two trees by
running each tree's copy of this file with the same packs (``bench.alert_rules`` writes one with 500 rules; remove
its ``alerts.yaml`` for the baseline without rules), alternating; ``--db-name NAME`` first names the scratch
database (default ``panorama_rules_cpu``), so that two people's runs do not drop each other's; ``--parts`` also gives
the wall time a batch spends in its transaction and in the rules' parts of it (``PARTS``).
"""

from __future__ import annotations

import gc
import os
import sys
import time
from contextlib import contextmanager, nullcontext

import orjson
from sqlalchemy import text

from bench.alerts import generate_events
from bench.ingest import DEFAULT_PG_URL, drop_database, recreate_database
from dashboard.core.channels import feed_name
from dashboard.core.city import load_city
from dashboard.storage.db import make_engine
from dashboard.storage import alerts as alert_store
from dashboard.storage.events import EventStore
from feeds.alerting import Evaluator
from feeds.pipeline import Batch, Pipeline

EVENTS, BATCH, RATE = 60_000, 5_000, 1_000
DB = "panorama_rules_cpu"


def backend_cpu(engine) -> dict[int, float]:
    """Return the CPU seconds so far of each server process connected to the engine's database (PostgreSQL on
    this machine: /proc/PID/stat's user + system ticks)."""
    with engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars()
        out = {}
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


# The batch's transaction and the rules' parts of it, timed by the wall clock (``--parts``): what the ingest thread
# waits for, PostgreSQL's time included, where the CPU clock above leaves the database out.
PARTS = (("the batch's transaction", EventStore, "_write"), ("  the events' insert", EventStore, "_insert_pg"),
         ("  the rules' part", Evaluator, "record"), ("    gather", Evaluator, "_gather"),
         ("    observations upsert", alert_store, "add_observations"), ("    counts upsert", alert_store, "add_counts"),
         ("the post-batch reconcile", Evaluator, "after_batch"))


@contextmanager
def timed_parts(times: dict[str, float]):
    """Time each of ``PARTS`` by the wall clock into ``times`` (seconds, summed) while the block runs."""
    saved = []

    def timed(label, f):
        def run(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                times[label] = times.get(label, 0.0) + time.perf_counter() - t
        return run

    for label, owner, name in PARTS:
        saved.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, timed(label, getattr(owner, name)))
    try:
        yield times
    finally:
        for owner, name, f in saved:
            setattr(owner, name, f)


class NoBus:
    """A Redis that takes every command and does nothing: the acks and deltas are not what is measured."""

    def pipeline(self, transaction=False):
        return self

    def __getattr__(self, name):
        return lambda *a, **k: None


def run(pack: str, db: str = DB, parts: bool = False) -> str:
    """Measure one pack in a fresh database ``db``; return its line of the report (with ``parts``, the wall time of
    each of ``PARTS`` per batch on the lines under it)."""
    walls: dict[str, float] = {}
    with timed_parts(walls) if parts else nullcontext():
        line = _run(pack, db)
    return line + "".join(f"\n  {label}: {walls.get(label, 0.0) * 1000 / (EVENTS // BATCH):.1f} ms a batch"
                          for label, _o, _n in (PARTS if parts else ()))


def _run(pack: str, db: str) -> str:
    engine = make_engine(recreate_database(DEFAULT_PG_URL, db))
    try:
        city = load_city(pack)
        end = int(time.time() * 1000)
        msgs = []
        for i, (domain, ev) in enumerate(generate_events(EVENTS, 20261206, 3600, mix="city")):
            ev["id"], ev["ts"] = f"drain-{i}", end - int((EVENTS - i) * 1000 / RATE)
            msgs.append((feed_name(domain), domain, orjson.dumps(ev)))
        clock = [end]
        _ = (city.rosters, city.notification_policies, city.alert_rules)  # loaded once per process, before the clock
        ev = Evaluator(engine, city, "Asia/Shanghai", clock=lambda: clock[0])
        pipe = Pipeline(EventStore(engine, city), city.aliases, tz="Asia/Shanghai", alerts=ev)
        pipe.store.write([], end)
        gc.freeze()  # as the worker does after its start-up
        parts = {"parse": 0.0, "store, gather, reconcile": 0.0, "tick": 0.0}
        pg_before = backend_cpu(engine)
        started = time.thread_time()
        for k, at in enumerate(range(0, EVENTS, BATCH)):
            clock[0] = end + k * 1000
            t0, batch = time.thread_time(), Batch()
            for channel, domain, raw in msgs[at:at + BATCH]:
                pipe.add(batch, channel, domain, raw, clock[0])
            t1 = time.thread_time()
            pipe.flush(batch, NoBus())
            t2 = time.thread_time()
            ev.tick(None, clock[0] + 500)
            parts["parse"] += t1 - t0
            parts["store, gather, reconcile"] += t2 - t1
            parts["tick"] += time.thread_time() - t2
        total = time.thread_time() - started
        pg_after = backend_cpu(engine)
        pg = sum(v - pg_before.get(pid, 0.0) for pid, v in pg_after.items())
        with engine.connect() as conn:
            alerts = conn.execute(text("SELECT count(*) FROM alerts")).scalar_one()
            queued = conn.execute(text("SELECT count(*) FROM outbox")).scalar_one()
    finally:
        engine.dispose()
        drop_database(DEFAULT_PG_URL, db)
    per = 1e5 / EVENTS
    return (f"{pack}: {total * per:.2f} s of CPU per 100,000 events (" + ", ".join(
        f"{k} {v * per:.2f}" for k, v in parts.items()) + f"); PostgreSQL {pg * per:.2f}; {alerts} alerts, "
            f"{queued} outbox rows")


def main(argv: list[str] | None = None) -> int:
    """Measure each pack named; print a line each (``--db-name NAME`` before them: the scratch database's name)."""
    packs = sys.argv[1:] if argv is None else list(argv)
    db, parts = DB, "--parts" in packs
    packs = [p for p in packs if p != "--parts"]
    if packs[:1] == ["--db-name"]:
        db, packs = packs[1], packs[2:]
    if not packs:
        raise SystemExit(__doc__.split("\n\n")[0])
    for pack in packs:
        print(run(pack, db, parts), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
