"""A browser that stops reading, against a gateway process: the others go on, its memory stays bounded,
the gateway drops it. (tests/test_gateway.py checks the queues in-process; this checks the process.)"""

from __future__ import annotations

import statistics
import threading
import time

import orjson
import psutil
import pytest
import redis

from feeds.channels import UPDATES_CHANNEL
from tests.faults.common import WsWatcher, client_count, listening, never_reading_client, ws_url
from tests.faults.procs import module_argv, service_env
from tests.helpers import wait_for
from tests.redis_proc import free_port

pytestmark = pytest.mark.faults


PACE = threading.Event()  # never set: wait(t) paces the publisher


def big_delta(i: int, n: int = 100) -> bytes:
    """An ingest-like delta of ``n`` events with long titles, ids ``s<i>-<j>``, newest first, stamped now."""
    at = int(time.time() * 1000)
    evs = [{"id": f"s{i}-{j}", "domain": "traffic", "kind": "congestion", "district": "440304", "street": None,
            "severity": 1, "title": "慢客户端压力测试" * 40, "ts": at, "value": 5.0, "unit": "index"}
           for j in reversed(range(n))]
    return orjson.dumps({"type": "delta", "at": at, "stored": n, "events": evs, "counts": [], "feeds": {},
                         "incidents": []})


def test_a_client_that_stops_reading_is_dropped_and_the_others_are_not_delayed(redis_proc, pg_url, procs, figures):
    port = free_port()
    env = service_env(REDIS_URL=redis_proc.url, DATABASE_URL=pg_url, PANORAMA_SECRET_KEY="faults",
                      PANORAMA_WS_PORT=port)
    gateway = procs.start("gateway", module_argv("dashboard.gateway"), env)
    wait_for(lambda: gateway.poll() is None and listening(port), timeout=60, message="the gateway listening")
    bus = redis.Redis.from_url(redis_proc.url)
    fast = [WsWatcher(ws_url(port, "faults")) for _ in range(2)]
    for w in fast:
        w.start()
    slow = never_reading_client(ws_url(port, "faults"))
    wait_for(lambda: client_count(bus) == 3, timeout=20, message="three clients counted")
    gw = psutil.Process(gateway.pid)
    rss0 = gw.memory_info().rss
    peak, i, started = rss0, 0, time.monotonic()
    # About 600 KB a second of deltas: the slow client's buffers fill within a second or two.
    while client_count(bus) != 2:
        assert time.monotonic() - started < 60, "the client that stopped reading was never dropped"
        bus.publish(UPDATES_CHANNEL, big_delta(i))
        i += 1
        peak = max(peak, gw.memory_info().rss)
        PACE.wait(0.05)  # a publisher's pace, not a wait for a condition
    dropped_s = time.monotonic() - started
    # ... and the gateway goes on as before for the others: a marker reaches both of them.
    mark_from = time.monotonic()
    for k in range(20):
        bus.publish(UPDATES_CHANNEL, big_delta(10_000 + k, n=5))
        peak = max(peak, gw.memory_info().rss)
        PACE.wait(0.05)  # a publisher's pace, not a wait for a condition
    for w in fast:
        wait_for(lambda: "s10019-4" in w.event_ids(mark_from), timeout=10, message="the last marker delivered")
    lags = [at_ms for w in fast for at_ms in _lags(w)]
    for w in fast:
        assert not w.closed.is_set()
        w.ws.close()
    # the dropped client's socket was closed by the gateway: reading it now ends in EOF
    slow.settimeout(10)
    while slow.recv(65536):
        pass
    slow.close()
    assert "closing a slow client" in procs.log("gateway")
    grew_mib = (peak - rss0) / 2**20
    assert grew_mib < 64, f"the gateway grew by {grew_mib:.1f} MiB for one stuck client"
    lags.sort()
    figures(fault="websocket client stops reading (gateway process)", deltas_published=i,
            slow_dropped_after_s=round(dropped_s, 2), gateway_rss_mib=round(rss0 / 2**20, 1),
            gateway_rss_growth_peak_mib=round(grew_mib, 1), fast_frames=len(lags),
            fast_lag_p50_ms=round(statistics.median(lags)), fast_lag_p99_ms=round(lags[int(len(lags) * .99) - 1]))


def _lags(w: WsWatcher) -> list[float]:
    """Delivery lag of each delta frame: arrival minus the newest event's stamp (both this machine's clock)."""
    out = []
    for at, f in list(w.frames):
        if f.get("type") == "delta" and f.get("events"):
            out.append((time.time() - (time.monotonic() - at)) * 1000 - f["events"][0]["ts"])
    return out
