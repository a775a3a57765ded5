"""One ingest worker process: consumers, the deadline checker and the briefing scheduler (``python -m feeds.ingest``)."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import threading

from dashboard.briefings.schedule import start_briefing_scheduler
from dashboard.core import bus
from dashboard.dispatch.deadlines import start_deadline_checker
from dashboard.storage.partitions import start_maintenance
from dashboard.storage.services import worker_services
from feeds.alerting import start_alert_ticker
from feeds.ingest import make_consumers
from feeds.notify import start_sender

log = logging.getLogger("feeds.ingest")


def main(argv: list[str] | None = None) -> int:
    """Parse options, start the consumers and run until SIGINT / SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m feeds.ingest", description=__doc__)
    parser.add_argument("--transport", choices=("both", "pubsub", "stream"), default="both",
                        help="which feeds to consume (default: both)")
    parser.add_argument("--consumer", help="consumer name in the stream group (default: host-pid)")
    args = parser.parse_args(argv)
    services = worker_services(parser, "ingest worker")
    cfg = services.config
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # Everything made so far lives as long as the process: keep the cyclic GC from re-walking it on
    # every collection (bench/: GC pauses fell from ~9 to ~2.4 ms per 1,000 events).
    gc.freeze()
    consumers = make_consumers(services, args.transport, args.consumer)
    for c in consumers:
        c.start()
    # Escalation of overdue tasks: safe in every worker, each task is escalated exactly once.
    start_deadline_checker(services, stop)
    # Day partitions made ahead and dropped after retention: safe in every worker (one advisory lock).
    start_maintenance(services, stop)
    # Alert rules' tick (pending -> firing, windows moving on, silent feeds): every worker, one at a time by lease.
    start_alert_ticker(services, stop)
    # Notifications from the outbox: every worker sends, each message taken by one at a time (a lease).
    start_sender(services, stop)
    # Scheduled briefings: safe in every worker too, each slot is claimed by one of them.
    start_briefing_scheduler(services, stop)
    # Again, now that the consumers and the tick have loaded what they keep (the alert rules, 500 of them in
    # bench.alerts, and their index, loaded after the first freeze): a gen-2 collection walked them on every
    # pass (in process, 500 rules: 0.94 against 0.67 µs an event in gen-2 collections).
    gc.freeze()
    log.info("ingest worker: %s from %s into %s", args.transport, bus.redacted(cfg["REDIS_URL"]),
             services.engine.url.render_as_string(hide_password=True))
    stop.wait()
    for c in consumers:
        c.stop()
    services.close()
    return 0
