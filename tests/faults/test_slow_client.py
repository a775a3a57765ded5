"""A browser that stops reading, against a gateway process: the others' delivery delay stays what it is without
it, its memory stays bounded, the gateway drops it. (tests/test_gateway.py checks the queues in-process; this
checks the process.)"""

from __future__ import annotations

import statistics
import threading
import time

import orjson
import psutil
import pytest
import redis

from dashboard.core.channels import UPDATES_CHANNEL
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


# What a client that stops reading may cost the others: their delivery delay's p99 with it connected may
# exceed the same run's p99 without it by this much at most. A gateway that waited on the stuck socket would
# hold every frame for up to its send timeout (5 s) once that socket's buffers filled; scheduling noise on a
# busy 2-core machine moves the p99 by tens of milliseconds, not by half a second.
STUCK_CLIENT_COST_MS = 500
BASELINE_DELTAS = 60  # published at the same pace before the stuck client connects: 3 s of the same load


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
    wait_for(lambda: client_count(bus) == 2, timeout=20, message="two clients counted")
    gw = psutil.Process(gateway.pid)
    sent: list[float] = []  # when each delta was published (monotonic), by its index

    def publish_delta(n: int = 100) -> None:
        sent.append(time.monotonic())
        bus.publish(UPDATES_CHANNEL, big_delta(len(sent) - 1, n))

    # The same load without a stuck client first: what the others' delay is on this machine, in this run.
    for _ in range(BASELINE_DELTAS):
        publish_delta()
        PACE.wait(0.05)  # a publisher's pace, not a wait for a condition
    for w in fast:
        wait_for(lambda: _newest_index(w) == len(sent) - 1, timeout=10, message="the baseline delivered")
    alone = range(0, len(sent))

    slow = never_reading_client(ws_url(port, "faults"))
    wait_for(lambda: client_count(bus) == 3, timeout=20, message="three clients counted")
    rss0 = gw.memory_info().rss
    peak, first_stuck, started = rss0, len(sent), time.monotonic()
    # About 600 KB a second of deltas: the slow client's buffers fill within a second or two.
    while client_count(bus) != 2:
        assert time.monotonic() - started < 60, "the client that stopped reading was never dropped"
        publish_delta()
        peak = max(peak, gw.memory_info().rss)
        PACE.wait(0.05)  # a publisher's pace, not a wait for a condition
    dropped_s = time.monotonic() - started
    with_stuck = range(first_stuck, len(sent))
    # ... and the gateway goes on as before for the others: a marker reaches both of them.
    for k in range(20):
        publish_delta(n=5)
        peak = max(peak, gw.memory_info().rss)
        PACE.wait(0.05)  # a publisher's pace, not a wait for a condition
    for w in fast:
        wait_for(lambda: _newest_index(w) == len(sent) - 1, timeout=10, message="the last marker delivered")
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
    base = sorted(d for w in fast for d in _delays(w, sent, alone))
    stuck = sorted(d for w in fast for d in _delays(w, sent, with_stuck))
    assert len(base) == 2 * len(alone) and len(stuck) == 2 * len(with_stuck)
    base_p99, stuck_p99 = _p99(base), _p99(stuck)
    assert stuck_p99 <= base_p99 + STUCK_CLIENT_COST_MS, \
        f"the stuck client delayed the others: p99 {stuck_p99:.0f} ms with it, {base_p99:.0f} ms without"
    figures(fault="websocket client stops reading (gateway process)", deltas_published=len(sent),
            deltas_while_stuck=len(with_stuck), slow_dropped_after_s=round(dropped_s, 2),
            gateway_rss_mib=round(rss0 / 2**20, 1), gateway_rss_growth_peak_mib=round(grew_mib, 1),
            fast_delay_p50_ms_alone=round(statistics.median(base)), fast_delay_p99_ms_alone=round(base_p99),
            fast_delay_p50_ms_with_stuck=round(statistics.median(stuck)),
            fast_delay_p99_ms_with_stuck=round(stuck_p99), p99_allowed_ms=round(base_p99 + STUCK_CLIENT_COST_MS))



def _newest_index(w: WsWatcher) -> int:
    """The index of the newest delta any frame so far brought to ``w`` (-1 before any)."""
    return max((int(i[1:].split("-")[0]) for i in w.event_ids()), default=-1)


def _delays(w: WsWatcher, sent: list[float], indexes: range) -> list[float]:
    """For each delta of ``indexes``: milliseconds from its publication until ``w`` got a frame bringing it or a
    newer one (the gateway coalesces, so a frame may carry only the newest); both times this process's clock."""
    got = [(at, max(int(e["id"][1:].split("-")[0]) for e in f["events"]))
           for at, f in list(w.frames) if f.get("type") == "delta" and f.get("events")]
    out = []
    for i in indexes:
        at = next((at for at, newest in got if newest >= i and at >= sent[i]), None)
        assert at is not None, f"delta {i} never reached a client"
        out.append((at - sent[i]) * 1000)
    return out


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]
