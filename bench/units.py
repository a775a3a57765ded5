"""Units benchmark (issue 17, SPEC section 11): 2,000 units reporting every 5 s on ``feeds:units``, /wall open in
Chromium over the shipped ingest worker, gateway and app; ``PYTHONPATH=. .venv/bin/python -m bench.units``.

Two phases in one run, each with its own database, services and browser: the baseline (``--baseline-units``, 200)
and the load (``--units``, 2,000), each unit reporting every ``--every-s`` (5) s. Measured in each:

* **publish -> marker**: a probe unit, alone in its cell of the map (off the coast, ``on_scene``: no other unit has
  that status), is moved to a new place every second. The clock starts just before the bench PUBLISHes the report
  to Redis and stops (a) when the wall's unit layer (assets/live_units.js) sets the probe marker's ``data-pos`` to
  that place, as a MutationObserver in the page sees it (DOM), and (b) when that change has been **painted** (the
  task after the next animation frame). The page's clock is taken to ours NTP-style (bench.latency.page_clock).
  A probe not drawn within ``--miss-s`` is a miss, ranked above every value in the percentiles.
  Target: painted p99 <= 500 ms. The stages on the way, same clock start: -> the ingest worker's delta on
  ``panorama:updates`` (the server's share), -> the gateway's frame in the page (a WebSocket listener
  registered before the page's own), -> DOM, -> painted.
* **memory**: every ``--heap-every-s``, the page's JS heap after a forced GC, Chromium's renderer RSS and USS and
  the whole browser's PSS; the growth slope of each with its 95 % CI (bench.slope) over the samples after
  ``--warmup-frac`` of the span. Target: no growth over 10 min. And the unit layer's DOM size.
* the load average (1 min) at each sample, and the CPU seconds of each process over the measured window.

Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
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
from bench.latency import (CHROME_ARGS, cpu_cores, dist_with_misses, gunicorn_argv, http_ok, page_access, page_clock,
                           say, snapshot_cpu)
from bench.procs import Processes, free_port, quit_browser, start_redis
from bench.slope import mib_fit
from bench.soak import chromium_by_type, tree_memory
from dashboard.core.channels import UPDATES_CHANNEL, units_feed

FEED_PREFIX = "bench-units"
DEFAULT_DB = "panorama_units_bench"
BOX = (22.52, 113.80, 22.78, 114.35)  # south, west, north, east: Shenzhen's land, where the fleet drives
PROBE = "bench-probe"
PROBE_AT = (22.49, 113.97)  # Shenzhen Bay, off the land (and the fleet's box): a cell of its own
DEPARTMENTS = ("police", "fire", "health", "traffic_police", "emergency")
KINDS = {"police": "patrol_car", "fire": "fire_engine", "health": "ambulance", "traffic_police": "traffic_car",
         "emergency": "rescue_team"}
TARGET_P99_MS = 500

# Injected before the page's own scripts: when each gateway frame carrying the probe arrives (this listener is
# registered in the socket's constructor, before live_conn.js sets its onmessage).
NET_JS = r"""
(() => {
  if (window.top !== window || window.__unitNet) return;
  const seen = window.__unitNet = {};
  const RE = /"unit":"bench-probe"[^{}]*?"lat":(-?[\d.]+),"lon":(-?[\d.]+)/g;
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', (e) => {
        const t = performance.timeOrigin + performance.now();
        if (typeof e.data !== 'string' || e.data.indexOf('bench-probe') < 0) return;
        for (const m of e.data.matchAll(RE)) {
          const k = Number(m[1]).toFixed(5) + ',' + Number(m[2]).toFixed(5);
          if (!(k in seen)) seen[k] = t;
        }
      });
    }
  };
  // --trace: the page's long animation frames (>= 50 ms) and the scripts in them, to name what the probe waited on
  const loaf = window.__unitLoaf = [];
  if (!window.__unitTrace || !PerformanceObserver.supportedEntryTypes.includes('long-animation-frame')) return;
  const at = (ms) => performance.timeOrigin + ms;
  const base = (u) => (u || '').split('?')[0].split('/').pop();
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      loaf.push({s: at(e.startTime), d: e.duration, r: e.renderStart ? at(e.renderStart) : 0,
                 scripts: e.scripts.map((x) => [x.invokerType, x.invoker, base(x.sourceURL), x.sourceFunctionName,
                                                at(x.startTime), x.duration, x.forcedStyleAndLayoutDuration])});
    }
  }).observe({type: 'long-animation-frame', buffered: false});
})();
"""

OBSERVER_JS = """
if (!window.__probe) {
    const seen = window.__probe = {dom: {}, paint: {}};
    const now = () => performance.timeOrigin + performance.now();
    const look = (g) => {
        if (g && g.dataset && g.dataset.unit === arguments[0] && g.dataset.pos && !(g.dataset.pos in seen.dom)) {
            const pos = g.dataset.pos;
            seen.dom[pos] = now();
            // painted: the task after the next animation frame (that frame has been rendered)
            requestAnimationFrame(() => setTimeout(() => { seen.paint[pos] = now(); }, 0));
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
# emptied in place: the observer and the socket's listener hold these very objects
TAKE_JS = """const p = window.__probe || {dom: {}, paint: {}}; const n = window.__unitNet || {};
const l = window.__unitLoaf || [];
const out = JSON.stringify({dom: p.dom, paint: p.paint, net: n, loaf: l});
for (const o of [p.dom, p.paint, n]) { for (const k of Object.keys(o)) delete o[k]; }
l.length = 0;
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
        self.late_ticks = 0  # ticks that took longer than the tick: the publisher fell behind
        self.probes: list[tuple[float, str]] = []  # (our clock ms just before the PUBLISH, the place)
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
                at = time.time()
                report = orjson.dumps({"unit": PROBE, "ts": int(at * 1000), "lat": lat, "lon": lon,
                                       "status": "on_scene", "department": "emergency", "kind": "boat"})
                self.probes.append((time.time() * 1000, place))  # the clock starts here, just before Redis
                self.bus.publish(channel, report)
            spent = time.monotonic() - started
            self.late_ticks += spent > 0.1
            self.stop.wait(max(0.0, 0.1 - spent))


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
            try:
                msg = pubsub.get_message(timeout=0.5)
            except redis.ConnectionError:
                return  # the bench's Redis stopped at the end of the phase
            if msg is None or msg["type"] != "message":
                continue
            at = time.time() * 1000
            for u in orjson.loads(msg["data"]).get("units") or ():
                if u.get("unit") == PROBE:
                    self.seen.setdefault(f"{u['lat']:.5f},{u['lon']:.5f}", at)


def start_browser(profile: Path, window: str, trace: bool = False):
    """Headless Chromium with only this bench's socket listener injected (not bench.latency's probe, whose records
    of every frame would grow the heap this bench measures). ``trace``: also the page's long animation frames."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in CHROME_ARGS:
        opts.add_argument(a)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--window-size={window.replace('x', ',')}")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    if trace:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": "window.__unitTrace = true;"})
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": NET_JS})
    return driver


def blockers(probes, start: dict[str, float], stop: dict[str, float], loaf: list[dict], start_offset: float,
             stop_offset: float, top: int = 8) -> dict:
    """What the page's main thread ran while each probe waited between two stages (``start`` -> ``stop``, each on
    a clock ``offset`` from ours): the scripts of the long animation frames overlapping each wait, summed by
    invoker and source, and the frames' rendering; the share of the waits they cover."""
    by: dict[str, list[float]] = {}
    layout: dict[str, float] = {}  # the forced style and layout in those scripts (prorated to the overlap)
    waited = covered = render = 0.0
    n = 0
    for _at, place in probes:
        if place not in start or place not in stop:
            continue
        a, b = start[place] - start_offset, stop[place] - stop_offset
        if b <= a:
            continue
        n += 1
        waited += b - a
        hit: dict[str, float] = {}
        for f in loaf:
            fs, fe = f["s"], f["s"] + f["d"]
            if fe <= a or fs >= b:
                continue
            covered += min(fe, b) - max(fs, a)
            if f["r"]:
                render += max(0.0, min(fe, b) - max(f["r"], a))
            for kind, invoker, src, fn, s0, d, forced in f["scripts"]:
                o = min(s0 + d, b) - max(s0, a)
                if o > 0:
                    key = f"{kind} {invoker} [{src}{(' ' + fn) if fn else ''}]"
                    hit[key] = hit.get(key, 0.0) + o
                    layout[key] = layout.get(key, 0.0) + ((forced or 0) * o / d if d else 0.0)
        for k, v in hit.items():
            by.setdefault(k, []).append(v)
    ranked = sorted(by.items(), key=lambda kv: -sum(kv[1]))[:top]
    return {"probes": n, "mean_wait_ms": round(waited / n, 1) if n else None,
            "share_in_long_frames": round(covered / waited, 3) if waited else None,
            "share_rendering": round(render / waited, 3) if waited else None,
            "scripts": [{"script": k, "probes": len(v), "mean_ms_per_probe": round(sum(v) / n, 1),
                         "forced_layout_ms_per_probe": round(layout[k] / n, 1),
                         "max_ms": round(max(v), 1)} for k, v in ranked]}


def memory_sample(driver, chrome_root: int) -> dict:
    """The page's JS heap after a forced GC, Chromium's renderer RSS and USS, the browser tree's PSS (bytes)."""
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    out = {"heap": float(driver.execute_cdp_cmd("Runtime.getHeapUsage", {})["usedSize"])}
    kinds = chromium_by_type(chrome_root)
    out["renderer_rss"] = float(kinds.get("chromium renderer", 0))
    out["renderer_uss"] = float(kinds.get("chromium renderer (USS)", 0))
    out["browser_pss"] = float(tree_memory(chrome_root, "pss") or 0)
    return out


TRACE_CATEGORIES = ["toplevel", "devtools.timeline", "disabled-by-default-devtools.timeline.frame", "cc", "viz",
                    "benchmark", "blink.user_timing"]


class CdpTrace(threading.Thread):
    """A Chromium performance trace of ``seconds`` on the browser's DevTools socket (every process: the page's main
    thread, its compositor and raster threads, the GPU process), written to ``path`` (chrome://tracing's format)."""

    def __init__(self, driver, seconds: float, path: Path, extra: tuple[str, ...] = ()):
        super().__init__(name="cdp-trace", daemon=True)
        from bench.memdump import browser_socket
        self.url, self.seconds, self.path = browser_socket(driver), seconds, path
        self.categories = [*TRACE_CATEGORIES, *extra]
        self.events: list[dict] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        from websockets.sync.client import connect
        try:
            with connect(self.url, max_size=None, open_timeout=30) as ws:
                ws.send(json.dumps({"id": 1, "method": "Tracing.start", "params": {
                    "traceConfig": {"includedCategories": self.categories, "excludedCategories": ["*"]},
                    "transferMode": "ReportEvents"}}))
                time.sleep(self.seconds)
                ws.send(json.dumps({"id": 2, "method": "Tracing.end"}))
                while True:
                    msg = json.loads(ws.recv(timeout=120))
                    if msg.get("method") == "Tracing.dataCollected":
                        self.events.extend(msg["params"]["value"])
                    elif msg.get("method") == "Tracing.tracingComplete":
                        break
            self.path.write_text(json.dumps({"traceEvents": self.events}))
        except BaseException as err:  # noqa: BLE001 - reported
            self.error = err


def take(driver, seen: dict, loaf: list) -> None:
    """Drain the page's records into ``seen`` and ``loaf``."""
    for k, v in json.loads(driver.execute_script(TAKE_JS)).items():
        if k == "loaf":
            loaf.extend(v)
        else:
            seen[k].update(v)


def stage(probes: list[tuple[float, str]], seen: dict[str, float], offset_ms: float, miss_ms: float) -> dict:
    """Publish -> the moment each probe place was seen (page clock less ``offset_ms``): percentiles with misses."""
    lat, missed = [], 0
    for at, place in probes:
        shown = seen.get(place)
        ms = None if shown is None else shown - offset_ms - at
        if ms is None or ms > miss_ms:
            missed += 1
        else:
            lat.append(max(0.0, ms))
    out = dist_with_misses(lat, missed)
    out["max"] = round(max(lat), 1) if lat and not missed else None  # with a miss, the max is the miss
    return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in out.items()}


AB_JS = """const [css, on] = arguments; let el = document.getElementById('bench-ab');
if (on && !el) { el = document.createElement('style'); el.id = 'bench-ab'; el.textContent = css; document.head.appendChild(el); }
if (!on && el) { el.remove(); }"""


def ab_arms(probes, toggles, seen, offset_ms: float, miss_ms: float, every_s: float) -> dict:
    """The probes of the periods with ``--ab-css`` in force and of those without, interleaved every ``every_s``
    (so a machine getting busier weighs on both); a probe published within 1 s after a toggle counts in neither."""
    arms: dict[str, list] = {"with": [], "without": []}
    for at, place in probes:
        since = [t for t in toggles if t[0] <= at]
        if not since or at - since[-1][0] < 1000:
            continue
        arms["with" if since[-1][1] else "without"].append((at, place))
    return {arm: {k: stage(ps, seen[s], offset_ms, miss_ms) for k, s in (("frame", "net"), ("dom", "dom"), ("paint", "paint"))}
                  | {"painted_or_newer": stage_current(ps, seen["paint"], offset_ms, miss_ms)}
            for arm, ps in arms.items()}


def stage_current(probes: list[tuple[float, str]], seen: dict[str, float], offset_ms: float, miss_ms: float) -> dict:
    """Publish -> the probe's place *or a newer one* seen (the marker never showed this place when a newer report
    came first: one draw per animation frame shows the latest): how current the wall's map is, every probe
    counted; a miss when neither it nor a newer place was seen within ``miss_ms``."""
    lat, missed, superseded = [], 0, 0
    first_after = float("inf")  # the earliest page time any probe from here on was seen
    for at, place in reversed(probes):
        own = seen.get(place)
        if own is not None:
            first_after = min(first_after, own)
        elif first_after < float("inf"):
            superseded += 1
        ms = first_after - offset_ms - at
        if ms > miss_ms:
            missed += 1
        else:
            lat.append(max(0.0, ms))
    out = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in dist_with_misses(lat, missed).items()}
    out["max"] = round(max(lat), 1) if lat and not missed else None
    out["superseded"] = superseded
    return out


def fits(samples: list[dict], warmup_frac: float) -> dict:
    """Each memory series' first, last and slope (MiB/day with its 95 % CI) after the warm-up share of the span."""
    if not samples:
        return {}
    span = samples[-1]["t"]
    kept = [s for s in samples if s["t"] >= span * warmup_frac]
    out = {}
    for key in ("heap", "renderer_rss", "renderer_uss", "browser_pss"):
        out[key] = {"first_mib": round(samples[0][key] / 2**20, 1), "last_mib": round(samples[-1][key] / 2**20, 1),
                    "max_mib": round(max(s[key] for s in samples) / 2**20, 1),
                    "fit": mib_fit([(s["t"], s[key]) for s in kept])}
    return out


def phase(args, n_units: int, db_name: str) -> dict:
    """One measured phase: its own database, services, browser and fleet of ``n_units``."""
    res: dict = {"units": n_units, "errors": [], "loadavg_start": os.getloadavg()}
    db_url = recreate_database(args.pg_url, db_name)
    with tempfile.TemporaryDirectory(prefix="bench-units-") as tmp:
        procs = Processes(Path(tmp))
        driver = fleet = watch = None
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
            fleet = Fleet(redis_url, n_units, args.every_s, args.seed)
            fleet.start()
            say(f"{n_units} units reporting every {args.every_s:g} s; opening /wall in Chromium")
            driver = start_browser(Path(tmp) / "profile", args.window, args.trace)
            chrome_root = driver.service.process.pid
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
            driver.execute_script(TAKE_JS)  # what arrived before the window is not measured
            loaf: list[dict] = []
            clock0 = page_clock(driver)
            skip = len(fleet.probes)
            pids = {name: p.pid for name, p in procs.procs.items() if name != "redis"} | {"chromium": chrome_root}
            cpu0 = snapshot_cpu(pids, db_name)
            samples: list[dict] = []
            nodes: list[int] = []
            seen: dict[str, dict[str, float]] = {"dom": {}, "paint": {}, "net": {}}
            started = time.monotonic()
            next_sample = started
            toggles: list[tuple[float, bool]] = []  # (our clock ms, whether --ab-css is in force from then)
            tracer = None
            while time.monotonic() - started < args.duration_s:
                time.sleep(1)
                if args.cdp_trace_s and tracer is None and time.monotonic() - started >= args.duration_s / 3:
                    tracer = CdpTrace(driver, args.cdp_trace_s, Path(args.cdp_trace_to or ".") /
                                      f"units-trace-{n_units}.json",
                                      tuple(c for c in (args.cdp_trace_categories or "").split(",") if c))
                    tracer.start()
                if args.ab_css and (not toggles or time.time() * 1000 - toggles[-1][0] >= args.ab_every_s * 1000):
                    on = not toggles or not toggles[-1][1]
                    driver.execute_script(AB_JS, args.ab_css, on)
                    toggles.append((time.time() * 1000, on))
                take(driver, seen, loaf)
                if time.monotonic() >= next_sample:
                    next_sample += args.heap_every_s
                    try:
                        s = memory_sample(driver, chrome_root)
                    except Exception as err:  # noqa: BLE001 - a sample missed is counted
                        res.setdefault("samples_missed", []).append(repr(err)[:200])
                    else:
                        s.update(t=round(time.monotonic() - started, 1), load1=os.getloadavg()[0])
                        samples.append(s)
                    nodes.append(driver.execute_script("return document.querySelectorAll('#unit-layer *').length"))
            window_s = time.monotonic() - started
            if tracer is not None:
                tracer.join(timeout=180)
                res["cdp_trace"] = {"file": str(tracer.path), "events": len(tracer.events),
                                    "error": repr(tracer.error) if tracer.error else None}
            cpu1 = snapshot_cpu(pids, db_name)
            time.sleep(args.miss_s)
            take(driver, seen, loaf)
            clock1 = page_clock(driver)
            clock = min(clock0, clock1, key=lambda c: c["error_ms"])
            cutoff = time.time() * 1000 - args.miss_s * 1000
            probes = [p for p in fleet.probes[skip:] if p[0] <= cutoff]
            miss_ms = args.miss_s * 1000
            res["probes"] = len(probes)
            res["clock"] = {"offset_ms": round(clock["offset_ms"], 2), "error_ms": round(clock["error_ms"], 2),
                            "drift_ms": round(clock1["offset_ms"] - clock0["offset_ms"], 2)}
            res["publish_to"] = {"delta": stage(probes, watch.seen, 0.0, miss_ms),
                                 "frame": stage(probes, seen["net"], clock["offset_ms"], miss_ms),
                                 "dom": stage(probes, seen["dom"], clock["offset_ms"], miss_ms),
                                 "painted": stage(probes, seen["paint"], clock["offset_ms"], miss_ms),
                                 "painted_or_newer": stage_current(probes, seen["paint"], clock["offset_ms"], miss_ms)}
            res["raw"] = {"probes": probes, "delta": watch.seen, **seen}  # to account them again
            if args.trace:
                off = clock["offset_ms"]
                res["waits"] = {"page_to_dom": blockers(probes, seen["net"], seen["dom"], loaf, off, off),
                                "dom_to_paint": blockers(probes, seen["dom"], seen["paint"], loaf, off, off)}
                res["long_frames"] = {"n": len(loaf), "per_s": round(len(loaf) / window_s, 2),
                                      "busy_share": round(sum(f["d"] for f in loaf) / 1000 / window_s, 3)}
            if toggles:
                res["ab"] = ab_arms(probes, toggles, seen, clock["offset_ms"], miss_ms, args.ab_every_s)
            res["memory"] = fits(samples, args.warmup_frac)
            res["samples"] = samples
            res["unit_layer_nodes"] = {"min": min(nodes, default=None), "max": max(nodes, default=None)}
            res["reports_published"] = fleet.reports
            res["reports_per_s"] = round(n_units / args.every_s, 1)
            res["publisher_late_ticks"] = fleet.late_ticks
            res["units_drawn"] = driver.execute_script("return document.getElementById('unit-layer').dataset.units")
            res["cpu_cores"] = {k: round(v, 2) for k, v in cpu_cores(cpu0, cpu1, list(pids)).items()}
            res["window_s"] = round(window_s, 1)
            load = [s["load1"] for s in samples]
            res["loadavg_1min"] = {"min": min(load, default=None), "max": max(load, default=None),
                                   "mean": round(sum(load) / len(load), 2) if load else None}
        except Exception as err:  # noqa: BLE001 - reported
            res["errors"].append(repr(err))
            for log in ("ingest", "gateway", "app"):
                say(f"--- {log}.log:\n{procs.tail(log)}")
        finally:
            if watch is not None:
                watch.stop.set()
            if fleet is not None:
                fleet.stop.set()
                if fleet.error:
                    res["errors"].append(f"fleet: {fleet.error!r}")
            if driver is not None:
                quit_browser(driver)
            procs.stop_all()
            if not args.keep_db:
                drop_database(args.pg_url, db_name)
    res["loadavg_end"] = os.getloadavg()
    return res


def run(args) -> dict:
    res: dict = {"config": vars(args).copy(), "machine": {"cpus": os.cpu_count()},
                 "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "phases": {}}
    if args.baseline_units:
        res["phases"]["baseline"] = phase(args, args.baseline_units, args.db_name + "_base")
    res["phases"]["load"] = phase(args, args.units, args.db_name)
    res["ended_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    res["errors"] = [f"{name}: {e}" for name, p in res["phases"].items() for e in p["errors"]]
    return res


def _ms(d: dict) -> str:
    def one(v):
        return "miss" if v is None else f"{v:,.0f}"
    return f"{one(d['p50'])} / {one(d['p90'])} / {one(d['p99'])} / {one(d['max'])}  ({d['missed']} missed of {d['n']})"


def _fit(m: dict) -> str:
    f = m.get("fit")
    if not f:
        return f"{m['first_mib']} -> {m['last_mib']} MiB (too few samples for a slope)"
    lo, hi = f["ci95_mib_per_day"]
    return (f"{m['first_mib']} -> {m['last_mib']} MiB (max {m['max_mib']}); slope {f['mib_per_h']:+.2f} MiB/h "
            f"= {f['mib_per_day']:+.1f} MiB/day, 95 % CI [{lo:+.1f}, {hi:+.1f}] (n {f['n']}, n_eff {f['n_eff']})")


def print_report(res: dict, file=sys.stdout) -> None:
    """The figures of each phase, side by side in reading order."""
    print(f"\nbench.units {res['started_utc']} -> {res.get('ended_utc')} UTC, {res['machine']['cpus']} CPUs", file=file)
    for name, p in res["phases"].items():
        print(f"\n== {name}: {p['units']} units, {p.get('reports_per_s')} reports/s, "
              f"{p.get('window_s')} s measured, {p.get('probes')} probes ==", file=file)
        if p["errors"]:
            print(f"errors: {p['errors']}", file=file)
            continue
        print(f"load average (1 min) during the window: {p['loadavg_1min']}; at start {p['loadavg_start']}, "
              f"at end {p['loadavg_end']}", file=file)
        print(f"page clock: offset {p['clock']['offset_ms']} ms +- {p['clock']['error_ms']}, drift "
              f"{p['clock']['drift_ms']} ms", file=file)
        print("publish (just before PUBLISH) -> ... p50 / p90 / p99 / max ms:", file=file)
        for k, label in (("delta", "worker's delta on panorama:updates"),
                         ("frame", "gateway frame in the page (message task)"),
                         ("dom", "marker moved (DOM)"), ("painted", "marker painted"),
                         ("painted_or_newer", "it or a newer place painted")):
            if k in p["publish_to"]:
                print(f"  {label:42s} {_ms(p['publish_to'][k])}", file=file)
        print(f"  (probes whose place was never drawn because a newer one came first: "
              f"{p['publish_to']['painted_or_newer']['superseded']})", file=file)
        for k, w in (p.get("waits") or {}).items():
            print(f"  waits {k}: {w['probes']} probes, mean {w['mean_wait_ms']} ms, in long animation frames "
                  f"{w['share_in_long_frames']}, of it rendering {w['share_rendering']}", file=file)
            for x in w["scripts"]:
                print(f"    {x['mean_ms_per_probe']:7.1f} ms/probe (forced layout {x['forced_layout_ms_per_probe']}; "
                      f"max {x['max_ms']}, {x['probes']} probes) "
                      f"{x['script']}", file=file)
        if p.get("long_frames"):
            print(f"  long animation frames: {p['long_frames']}", file=file)
        for k in ("heap", "renderer_rss", "renderer_uss", "browser_pss"):
            print(f"  {k:14s} {_fit(p['memory'][k])}", file=file)
        for arm, figs in (p.get("ab") or {}).items():
            print(f"  A/B {arm} --ab-css: frame {_ms(figs['frame'])}; DOM {_ms(figs['dom'])}; painted "
                  f"{_ms(figs['paint'])}; it or newer painted {_ms(figs['painted_or_newer'])}", file=file)
        print(f"  unit layer nodes {p['unit_layer_nodes']}; units drawn {p['units_drawn']}; CPU cores "
              f"{p['cpu_cores']}; publisher late ticks {p['publisher_late_ticks']}", file=file)
    load = res["phases"].get("load", {})
    if load.get("publish_to"):
        p99 = load["publish_to"]["painted"]["p99"]
        print(f"\ntarget: painted p99 <= {TARGET_P99_MS} ms: {'miss' if p99 is None else f'{p99:,.0f} ms'} -> "
              f"{'met' if p99 is not None and p99 <= TARGET_P99_MS else 'NOT met'}", file=file)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.units", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    p.add_argument("--db-name", default=DEFAULT_DB)
    p.add_argument("--keep-db", action="store_true")
    p.add_argument("--redis-url", help="default: a redis-server of the bench's own")
    p.add_argument("--units", type=int, default=2000)
    p.add_argument("--baseline-units", type=int, default=200, help="the baseline phase's fleet (0: none)")
    p.add_argument("--every-s", type=float, default=5.0, help="each unit reports this often")
    p.add_argument("--duration-s", type=float, default=600.0, help="measured time of each phase (after the warm-up)")
    p.add_argument("--warmup-s", type=float, default=15.0)
    p.add_argument("--warmup-frac", type=float, default=0.2, help="share of the span left out of the slopes")
    p.add_argument("--heap-every-s", type=float, default=15.0)
    p.add_argument("--miss-s", type=float, default=5.0, help="a probe not drawn within this is a miss")
    p.add_argument("--window", default="1920x1080")
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--ab-css", help="a CSS rule put into the page and taken out every --ab-every-s: the probes of "
                                    "both arms reported apart (an interleaved A/B of a style change)")
    p.add_argument("--ab-every-s", type=float, default=30.0)
    p.add_argument("--trace", action="store_true",
                   help="also: when the browser process received each probe's frame (chromedriver's performance log) "
                        "and the page's long animation frames, to name what each stage waited on")
    p.add_argument("--cdp-trace-s", type=float, default=0.0,
                   help="take a Chromium performance trace of this many seconds a third into the window")
    p.add_argument("--cdp-trace-to", metavar="DIR", help="where the trace's JSON goes (default: here)")
    p.add_argument("--cdp-trace-categories", metavar="A,B",
                   help="more trace categories, e.g. disabled-by-default-devtools.timeline.invalidationTracking")
    p.add_argument("--json", action="store_true", help="print JSON instead of the report")
    p.add_argument("--output", metavar="FILE", help="also write the results as JSON to FILE")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    res = run(args)
    if args.json:
        print(json.dumps(res, indent=2, ensure_ascii=False))
    else:
        print_report(res)
    if args.output:
        Path(args.output).write_text(json.dumps(res, indent=2, ensure_ascii=False))
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
