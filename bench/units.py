"""Units benchmark (issue 17, SPEC section 11): 2,000 units reporting every 5 s on ``feeds:units``, /wall open in
Chromium over the shipped ingest worker, gateway and app; ``PYTHONPATH=. .venv/bin/python -m bench.units``.

Measured:

* **publish -> marker**: a probe unit, alone in its cell of the map (off the coast, ``on_scene``: no other unit has
  that status), is moved to a new place every second. The clock starts when the bench PUBLISHes the report and
  stops when the wall's unit layer (assets/live_units.js) sets the probe marker's ``data-pos`` to that place, as
  a MutationObserver in the page sees it (the page's clock, converted to ours NTP-style: bench.latency.page_clock).
  A probe not drawn within ``--miss-s`` is a miss, ranked above every value in the percentiles. Target: p99 <= 500 ms.
* **the page's JS heap**: after a forced GC, every ``--heap-every-s``; the growth slope with its 95 % CI
  (bench.slope), and the unit layer's DOM size (bounded by the cells on screen). Target: no growth over 10 min.

Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import redis

from bench.fanout import service_env, wait_port
from bench.ingest import DEFAULT_PG_URL, drop_database, recreate_database
from bench.latency import dist_with_misses, gunicorn_argv, http_ok, page_access, page_clock, say, start_browser
from bench.procs import Processes, free_port, quit_browser, start_redis
from bench.slope import mib_fit
from dashboard.core.channels import UPDATES_CHANNEL, units_feed

FEED_PREFIX = "bench-units"
DEFAULT_DB = "panorama_units_bench"
BOX = (22.52, 113.80, 22.78, 114.35)  # south, west, north, east: Shenzhen's land, where the fleet drives
PROBE = "bench-probe"
PROBE_AT = (22.49, 113.97)  # Shenzhen Bay, off the land (and the fleet's box): a cell of its own
DEPARTMENTS = ("police", "fire", "health", "traffic_police", "emergency")
KINDS = {"police": "patrol_car", "fire": "fire_engine", "health": "ambulance", "traffic_police": "traffic_car",
         "emergency": "rescue_team"}

OBSERVER_JS = """
if (!window.__probe) {
    window.__probe = {};
    const seen = window.__probe;
    const look = (g) => {
        if (g && g.dataset && g.dataset.unit === arguments[0] && g.dataset.pos && !(g.dataset.pos in seen)) {
            seen[g.dataset.pos] = performance.timeOrigin + performance.now();
        }
    };
    new MutationObserver((records) => {
        for (const r of records) {
            look(r.target);
            for (const n of r.addedNodes || []) look(n);
        }
    }).observe(document.getElementById('unit-layer'), {subtree: true, childList: true, attributes: true,
                                                        attributeFilter: ['data-pos', 'data-unit']});
}
return true;
"""
# emptied in place: the observer holds this very object
TAKE_JS = """const s = window.__probe || {}; const out = JSON.stringify(s);
for (const k of Object.keys(s)) delete s[k];
return out;"""


class Fleet(threading.Thread):
    """Publish ``n`` units' reports, each every ``every_s`` (staggered over ticks of 100 ms), and the probe."""

    def __init__(self, redis_url: str, n: int, every_s: float, seed: int):
        super().__init__(name="fleet", daemon=True)
        self.bus = redis.Redis.from_url(redis_url)
        self.rng = random.Random(seed)
        s, w, nn, e = BOX
        self.units = [[f"bench-{i:05d}", DEPARTMENTS[i % len(DEPARTMENTS)], self.rng.uniform(s, nn),
                       self.rng.uniform(w, e)] for i in range(n)]
        self.every_s = every_s
        self.stop = threading.Event()
        self.reports = 0
        self.probes: list[tuple[float, str]] = []  # (our clock ms when published, the place)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as err:  # noqa: BLE001 - reported
            self.error = err

    def _run(self) -> None:
        channel = units_feed(FEED_PREFIX)
        ticks = max(1, round(self.every_s / 0.1))
        tick, first = 0, True
        next_probe = time.monotonic() + 1
        while not self.stop.is_set():
            started = time.monotonic()
            now = int(time.time() * 1000)
            batch = []
            for i in range(tick, len(self.units), ticks):
                u = self.units[i]
                u[2] += self.rng.gauss(0, 0.0004)
                u[3] += self.rng.gauss(0, 0.0004)
                r = {"unit": u[0], "ts": now, "lat": round(u[2], 6), "lon": round(u[3], 6)}
                if first:  # a unit not in the fleet joins it with its department
                    r.update(department=u[1], kind=KINDS[u[1]], status="available" if i % 7 else "en_route")
                batch.append(r)
            for j in range(0, len(batch), 400):
                self.bus.publish(channel, orjson.dumps(batch[j:j + 400]))
            self.reports += len(batch)
            tick = (tick + 1) % ticks
            first = first and tick != 0
            if started >= next_probe and not first:
                next_probe = max(next_probe + 1, started + 0.5)  # one a second: never a burst to catch up
                k = len(self.probes) + 1
                lat, lon = PROBE_AT[0] + (k % 50) * 2e-5, PROBE_AT[1] + (k // 50 % 50) * 2e-5
                place = f"{lat:.5f},{lon:.5f}"
                report = {"unit": PROBE, "ts": int(time.time() * 1000), "lat": lat, "lon": lon, "status": "on_scene",
                          "department": "emergency", "kind": "boat"}
                self.probes.append((time.time() * 1000, place))
                self.bus.publish(channel, orjson.dumps(report))
            self.stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))


class DeltaWatch(threading.Thread):
    """Note when the ingest worker's delta carrying each probe place is on ``panorama:updates``: the server's share
    of publish -> marker (the rest is the gateway, the socket and the page)."""

    def __init__(self, redis_url: str):
        super().__init__(name="delta-watch", daemon=True)
        self.bus = redis.Redis.from_url(redis_url)
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        pubsub = self.bus.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(UPDATES_CHANNEL)
        while not self.stop.is_set():
            msg = pubsub.get_message(timeout=0.5)
            if msg is None or msg["type"] != "message":
                continue
            at = time.time() * 1000
            for u in orjson.loads(msg["data"]).get("units") or ():
                if u.get("unit") == PROBE:
                    self.seen.setdefault(f"{u['lat']:.5f},{u['lon']:.5f}", at)


def run(args) -> dict:
    res: dict = {"config": vars(args).copy(), "errors": []}
    db_url = recreate_database(args.pg_url, args.db_name)
    with tempfile.TemporaryDirectory(prefix="bench-units-") as tmp:
        procs = Processes(Path(tmp))
        driver = fleet = None
        try:
            redis_url = args.redis_url or start_redis(procs)
            env = service_env(redis_url, db_url, PANORAMA_FEED_PREFIX=FEED_PREFIX)
            procs.start("ingest", [sys.executable, "-m", "feeds.ingest", "--transport", "pubsub"], env)
            app_port, ws_port = free_port(), free_port()
            origin = f"http://127.0.0.1:{app_port}"
            penv = {**env, "PANORAMA_WS_PORT": str(ws_port), "PANORAMA_WS_HOST": "127.0.0.1",
                    "PANORAMA_WS_URL": f"ws://127.0.0.1:{ws_port}/", "PANORAMA_WS_ORIGINS": origin,
                    "PANORAMA_WALL_CYCLE_S": "3600"}
            gw = procs.start("gateway", [sys.executable, "-m", "dashboard.gateway", "--host", "127.0.0.1",
                                         "--port", str(ws_port)], penv)
            app = procs.start("app", gunicorn_argv(app_port, 1, "app:server"), penv)
            wait_port(ws_port, gw, 60, "the gateway")
            wait_port(app_port, app, 60, "the app")
            http_ok(origin + "/")
            bus = redis.Redis.from_url(redis_url)
            deadline = time.monotonic() + 60
            while bus.pubsub_numsub(units_feed(FEED_PREFIX))[0][1] < 1:
                if time.monotonic() > deadline:
                    raise RuntimeError("the ingest worker did not subscribe")
                time.sleep(0.1)
            watch = DeltaWatch(redis_url)
            watch.start()
            fleet = Fleet(redis_url, args.units, args.every_s, args.seed)
            fleet.start()
            say(f"{args.units} units reporting every {args.every_s:g} s; opening /wall in Chromium")
            driver = start_browser(Path(tmp) / "profile", args.window)
            access = page_access(db_url, "/wall")
            driver.get(origin + "/wall" + access.get("query", ""))
            t0 = time.monotonic()
            while not driver.execute_script("const e = document.getElementById('live-indicator');"
                                            "return !!e && e.classList.contains('conn-live')"):
                if time.monotonic() - t0 > 60:
                    raise RuntimeError("the wall did not go live")
                time.sleep(0.2)
            time.sleep(args.warmup_s)  # the fleet registered, the page settled (not measured)
            driver.execute_script(OBSERVER_JS, PROBE)
            clock = page_clock(driver)
            skip = len(fleet.probes)
            heap: list[tuple[float, float]] = []
            nodes: list[int] = []
            seen: dict[str, float] = {}
            started = time.monotonic()
            next_heap = started
            while time.monotonic() - started < args.duration_s:
                time.sleep(1)
                seen.update(json.loads(driver.execute_script(TAKE_JS)))
                if time.monotonic() >= next_heap:
                    next_heap += args.heap_every_s
                    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
                    used = driver.execute_cdp_cmd("Runtime.getHeapUsage", {})["usedSize"]
                    heap.append((time.monotonic() - started, float(used)))
                    nodes.append(driver.execute_script(
                        "return document.querySelectorAll('#unit-layer *').length"))
            time.sleep(args.miss_s)
            seen.update(json.loads(driver.execute_script(TAKE_JS)))
            clock = min(clock, page_clock(driver), key=lambda c: c["error_ms"])
            cutoff = time.time() * 1000 - args.miss_s * 1000
            lat, missed, server = [], 0, []
            for at, place in fleet.probes[skip:]:
                if at > cutoff:
                    continue
                if place in watch.seen:
                    server.append(watch.seen[place] - at)
                shown = seen.get(place)
                ms = None if shown is None else shown - clock["offset_ms"] - at
                if ms is None or ms > args.miss_s * 1000:
                    missed += 1
                else:
                    lat.append(max(0.0, ms))
            res["publish_to_marker_ms"] = {**dist_with_misses(lat, missed),
                                           "clock_error_ms": round(clock["error_ms"], 1)}
            # its first part: publish -> the worker's delta on panorama:updates (our clock at both ends)
            res["publish_to_delta_ms"] = dist_with_misses(server, 0)
            watch.stop.set()
            res["heap"] = {"first_mib": round(heap[0][1] / 2**20, 1) if heap else None,
                           "last_mib": round(heap[-1][1] / 2**20, 1) if heap else None, "fit": mib_fit(heap)}
            res["unit_layer_nodes"] = {"min": min(nodes, default=None), "max": max(nodes, default=None)}
            res["reports_published"] = fleet.reports
            res["units_drawn"] = driver.execute_script("return document.getElementById('unit-layer').dataset.units")
        except Exception as err:  # noqa: BLE001 - reported
            res["errors"].append(repr(err))
            for log in ("ingest", "gateway", "app"):
                say(f"--- {log}.log:\n{procs.tail(log)}")
        finally:
            if fleet is not None:
                fleet.stop.set()
                if fleet.error:
                    res["errors"].append(f"fleet: {fleet.error!r}")
            if driver is not None:
                quit_browser(driver)
            procs.stop_all()
            if not args.keep_db:
                drop_database(args.pg_url, args.db_name)
    return res


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.units", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    p.add_argument("--db-name", default=DEFAULT_DB)
    p.add_argument("--keep-db", action="store_true")
    p.add_argument("--redis-url", help="default: a redis-server of the bench's own")
    p.add_argument("--units", type=int, default=2000)
    p.add_argument("--every-s", type=float, default=5.0, help="each unit reports this often")
    p.add_argument("--duration-s", type=float, default=600.0, help="measured time (after the warm-up)")
    p.add_argument("--warmup-s", type=float, default=15.0)
    p.add_argument("--heap-every-s", type=float, default=30.0)
    p.add_argument("--miss-s", type=float, default=5.0, help="a probe not drawn within this is a miss")
    p.add_argument("--window", default="1920x1080")
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--output", metavar="FILE", help="also write the results as JSON to FILE")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures as JSON."""
    args = parse_args(argv)
    res = run(args)
    text = json.dumps(res, indent=2, ensure_ascii=False)
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
