"""kill -9 one of three ingest workers mid-stream: its entries are claimed by the others, each event stored once."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import redis

from tests.faults.common import Producer, group_consumers, pending, stored, totals
from tests.faults.procs import module_argv, service_env
from tests.helpers import wait_for

pytestmark = pytest.mark.faults

WORKERS = ("w1", "w2", "w3")


def test_kill_9_an_ingest_worker_mid_stream_stores_every_event_exactly_once(redis_proc, pg_url, pg_engine, procs,
                                                                           figures):
    total = 24_000
    env = service_env(REDIS_URL=redis_proc.url, DATABASE_URL=pg_url, PANORAMA_CLAIM_IDLE_MS=2000)
    for name in WORKERS:
        procs.start(name, module_argv("feeds.ingest", "--transport", "stream", "--consumer", name), env)
    bus = redis.Redis.from_url(redis_proc.url)
    # The first publish creates the streams; every worker has joined the group once it has read once.
    producer = Producer(lambda: redis.Redis.from_url(redis_proc.url), total, rate=3000, per_message=40,
                        incident_every=50)
    producer.start()
    try:
        wait_for(lambda: group_consumers(bus) >= set(WORKERS), timeout=60, message="three workers in the group")
        wait_for(lambda: stored(pg_engine) >= total // 4, timeout=60, message="a quarter stored")
        # Freeze the victim, look at what it holds, and kill it only while it holds something unacknowledged:
        # otherwise there would be nothing for the others to claim and the test would prove less.
        for _ in range(500):
            procs.signal("w2", signal.SIGSTOP)
            held = pending(bus, "w2")
            if held:
                break
            procs.signal("w2", signal.SIGCONT)
            threading.Event().wait(0.02)  # let it run a little before looking again
        assert held, "w2 never held unacknowledged entries"
        procs.kill("w2")
        killed_at = time.monotonic()
        # Dead: what it held stays pending until someone claims it. A read it had sent before it was frozen may
        # still have been served after the look (Redis answers a blocked XREADGROUP until it sees the socket
        # close), so it can hold more, never less; the rest of the test accounts for every entry either way.
        assert pending(bus, "w2") >= held
        held = pending(bus, "w2")
        wait_for(lambda: pending(bus, "w2") == 0, timeout=60, message="w2's entries claimed by w1 and w3")
        claimed_s = time.monotonic() - killed_at
        producer.join(120)
        assert producer.error is None and producer.sent == total
        wait_for(lambda: stored(pg_engine) == total, timeout=120, message=f"all {total} events stored")
        stored_s = time.monotonic() - killed_at
        wait_for(lambda: pending(bus) == 0, timeout=30, message="every entry acknowledged")
    finally:
        producer.finish()
    counts = totals(pg_engine)
    assert counts == {"events": total, "distinct": total, "rollups": total, "district_minutes": total,
                      "incident_reports": producer.incident_worthy}
    claims = procs.log("w1") + procs.log("w3")
    assert "claimed" in claims, claims[-2000:]
    for name in ("w1", "w3"):
        assert procs.alive(name)
    figures(fault="kill -9 ingest worker (1 of 3, stream)", published=total, stored=counts["events"],
            lost=total - counts["events"], duplicates=0, held_by_victim_entries=held,
            claimed_after_s=round(claimed_s, 2), all_stored_after_kill_s=round(stored_s, 2), claim_idle_ms=2000)
