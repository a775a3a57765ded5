"""Benchmark publish-to-screen latency in a real browser: the gateway's push against plain ``dcc.Interval`` polling.

Run ``PYTHONPATH=. .venv/bin/python -m bench.latency`` (see ``--help``; about 2-3 minutes). It

1. recreates its own PostgreSQL database (``panorama_latency_bench``) and migrates it; in Redis db 14 it uses
   feeds of its own prefix (``bench-latency:<domain>``), deleted before and after;
2. starts the real processes: one ingest worker (``feeds.ingest.main``, streams), and per phase either the
   app (``gunicorn app:server``) with a websocket gateway (``python -m dashboard.gateway``), or the baseline
   (``gunicorn "bench.latency:baseline_server()"``, a tiny Dash page defined below that polls every second
   through ``dashboard.live.latest_events``); and one headless Chromium through selenium;
3. runs a publisher in this process: ``--rate`` events/s (1,000) as ``--per-message`` (50) events per stream
   entry, through ``feeds.publish``, and, during each measured window only, ``--marker-hz`` (10) single marker
   events a second at random moments, each with a unique title ``LATMK-<phase>-<n>``;
4. per phase: opens the page ``--loads`` times (5) and times driver.get start -> the first live data on screen
   (first KPI text that is not the placeholder, first ticker item; on the push page also the socket going
   live); then, on the last load, for ``--seconds`` (30) records when each marker title first appears in
   ``#event-ticker`` (a ``MutationObserver`` injected before the page's own scripts, timing with
   ``performance.timeOrigin + performance.now()``, which is the same wall clock as the publisher's
   ``time.time()``); latency = that time - the moment before the publisher's XADD. The same observer times
   every row the ticker shows (its ``data-key``; the event's ``ts`` is also stamped just before its XADD, and
   comes from the frames or, on the baseline, the row's ``data-ts``): hundreds of rows a second, so the p99
   of "every row shown" rests on thousands of samples where the markers give tens. The injected script also
   notes when each marker first arrives in the browser (a websocket frame, or a fetch response of the
   polling page), the frames, the page's long tasks and how often Plotly redraws each figure;
5. prints a table (``--json``: JSON instead), and ends every process it started (by pid), deletes its Redis
   keys and drops its database. Targets are reported, never asserted: the exit status is non-zero only on
   errors.

Where the tree has sign-in (``dashboard.users``), the bench makes what it needs in its own database: a kiosk
token for ``/wall`` (opened as ``/wall?token=...``), or a viewer it signs in as for ``/``.

Deltas go to ``bench:latency:updates``, not ``panorama:updates``: pub/sub channels are shared by every Redis db,
and other people's gateways must not get 1,000 events/s of ours. The ingest worker is the real
``feeds.ingest.main`` with that one module constant (``feeds.pipeline.UPDATES_CHANNEL``) replaced; the gateway
takes it as ``--channel``.

Markers that never appear are misses, not late: the ticker shows only the newest 30 events, and both the
gateway (at most ``max_fps`` frames a second, each with the newest 50 events of what arrived since the last)
and the page (newest 30) keep only the newest; at 1,000 events/s 30 events are 30 ms of traffic. The polling
baseline shows the 30 newest of the ~1,000 stored in each second, so it shows few markers at all. What is
shown is the newest of each frame, so markers and rows alike measure the events a screen can show, not the
average event (which also waits up to a frame interval in the gateway).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from time import perf_counter

import psutil
import redis

from bench.fanout import product_poll_ms, service_env, tree_cpu, wait_port, with_ticket
from bench.ingest import (DEFAULT_PG_URL, cpu_delta, drop_database, generate_messages, recreate_database,
                          server_cpu)
from bench.procs import Processes, free_port, quit_browser, start_redis
from dashboard.core.channels import INGEST_GROUP, feed_names
from feeds.publish import encode, send_raw

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "panorama_latency_bench"
FEED_PREFIX = "bench-latency"
MARKER = "LATMK-"
TARGET_P99_MS = 250
TARGET_FIRST_DATA_S = 2.0
CHROME_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")
# Injected into every document before the page's own scripts (CDP Page.addScriptToEvaluateOnNewDocument).
PROBE_JS = r"""
(() => {
  if (window.top !== window || window.__lat) return;
  const now = () => performance.timeOrigin + performance.now();
  const RE = /LATMK-[a-z]+-\d{6}/g;
  const L = window.__lat = {first: {}, dom: {}, raf: {}, net: {}, frames: [], longtasks: [], lag: [], ts: {}, rows: {},
                            redraws: {}};
  const TS = /"ts":\s?(\d{13})/;
  const NEWEST = /"newest_ts":\s?(\d{13})/;
  const mark = (k) => { if (!(k in L.first)) L.first[k] = now(); };
  function scanNet(text) {
    if (typeof text !== 'string' || text.indexOf('LATMK-') < 0) return;
    const t = now();
    for (const m of text.match(RE) || []) if (!(m in L.net)) L.net[m] = t;
  }
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...a) {
      super(...a);
      // registered before the page sets onmessage, so it runs first
      this.addEventListener('message', (e) => {
        L.frames.push([now(), (e.data && e.data.length) || 0]); mark('frame'); scanNet(e.data);
        // the first ts of a delta is its newest event's: the publisher stamps events just before the XADD
        const m = typeof e.data === 'string' && e.data.startsWith('{"type":"delta"') && TS.exec(e.data);
        if (m) L.lag.push([now(), now() - Number(m[1])]);
        // every event's publish time by its row key, for the latency of every row the ticker shows
        if (m) { try { for (const ev of JSON.parse(e.data).events || []) L.ts[ev.domain + ':' + ev.id] = ev.ts; }
                 catch (err) { /* not ours to judge */ } }
      });
    }
  };
  const fetch0 = window.fetch;
  window.fetch = function (...a) {
    const p = fetch0.apply(this, a);
    p.then((r) => r.clone().text().then((t) => {
      const at = now();
      L.frames.push([at, t.length]); scanNet(t);
      const m = NEWEST.exec(t);  // the baseline's answer names its newest event's ts
      if (m) L.lag.push([at, at - Number(m[1])]);
      // the product's own fallback: /api/summary?live=1 carries the live state's newest events
      if (t.indexOf('"live"') >= 0) {
        try {
          const evs = ((JSON.parse(t).live || {}).events) || [];
          let newest = 0;
          for (const ev of evs) { L.ts[ev.domain + ':' + ev.id] = ev.ts; newest = Math.max(newest, ev.ts); }
          if (newest) L.lag.push([at, at - newest]);
        } catch (err) { /* not ours to judge */ }
      }
    }), () => {});
    return p;
  };
  let ticker = null, tickObs = null;
  function scanTicker() {
    const t = now();
    const els = ticker.querySelectorAll('.ticker-title');
    if (els.length) mark('ticker');
    const fresh = [], freshRows = [];
    for (const li of ticker.children) {  // each row once: when it first appears, and its event's publish time
      const k = li.dataset.key;
      if (k && !(k in L.rows)) { L.rows[k] = [t, Number(li.dataset.ts) || L.ts[k] || null, null]; freshRows.push(k); }
    }
    for (const el of els) {
      const s = el.textContent;
      if (s.startsWith('LATMK-') && !(s in L.dom)) { L.dom[s] = t; fresh.push(s); }
    }
    // Painted: the task right after the next animation frame runs once that frame has been rendered and
    // handed to the compositor (a requestAnimationFrame callback alone runs just *before* the paint).
    if (fresh.length || freshRows.length) requestAnimationFrame(() => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => {
        const t2 = now();
        for (const s of fresh) L.raf[s] = t2;
        for (const k of freshRows) L.rows[k][2] = t2;
      };
      ch.port2.postMessage(0);
    });
  }
  function attach() {
    const el = document.getElementById('event-ticker');
    if (el && el !== ticker) {
      if (tickObs) tickObs.disconnect();
      ticker = el;
      tickObs = new MutationObserver(scanTicker);
      tickObs.observe(el, {childList: true, subtree: true, characterData: true});
      scanTicker();
    }
  }
  function checkPage() {
    attach();
    if (!('kpi' in L.first)) {
      for (const el of document.querySelectorAll('.kpi-value')) {
        const s = el.textContent.trim();
        if (s && s !== '\u2013') { mark('kpi'); break; }
      }
    }
    if (!('live' in L.first)) {
      const ind = document.getElementById('live-indicator');
      if (ind && ind.classList.contains('conn-live')) mark('live');
    }
  }
  // Watches the whole document only while the page comes up: it lets go once the page shows all it will
  // (ticker; KPI and live socket where the page has them), or after 30 s.
  const docObs = new MutationObserver(() => {
    checkPage();
    if ('ticker' in L.first && ('kpi' in L.first || !document.querySelector('.kpi-value'))
        && ('live' in L.first || !document.getElementById('live-indicator'))) docObs.disconnect();
  });
  docObs.observe(document, {childList: true, subtree: true, characterData: true, attributes: true,
                            attributeFilter: ['class']});
  setTimeout(() => docObs.disconnect(), 30000);
  setInterval(attach, 500);
  // how often the page redraws each figure (Plotly's afterplot), the costly part of its work
  const graphs = new WeakSet();
  setInterval(() => {
    for (const gd of document.querySelectorAll('.js-plotly-plot')) {
      const id = gd.parentElement && gd.parentElement.id;
      if (!graphs.has(gd) && gd.on && id) {
        graphs.add(gd);
        gd.on('plotly_afterplot', () => (L.redraws[id] = L.redraws[id] || []).push(now()));
      }
    }
  }, 500);
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) L.longtasks.push([performance.timeOrigin + e.startTime, e.duration]);
    }).observe({type: 'longtask', buffered: true});
  } catch (err) { /* not supported */ }
})();
"""

READ_JS = """
const L = window.__lat;
if (!L) return null;
// a polled row may be drawn before the probe has read the answer's times: take them now
for (const k in L.rows) if (!L.rows[k][1] && L.ts[k]) L.rows[k][1] = L.ts[k];
const nav = performance.getEntriesByType('navigation')[0];
return JSON.stringify({first: L.first, dom: L.dom, raf: L.raf, net: L.net, frames: L.frames, longtasks: L.longtasks,
  rows: L.rows, redraws: L.redraws,
  lag: L.lag, origin: performance.timeOrigin, now: performance.timeOrigin + performance.now(),
  nav: nav ? {dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd} : null});
"""


_T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[bench {time.monotonic() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the baseline page


def baseline_server():
    """Return the Flask server of the baseline: one ticker, refreshed by a 1 s ``dcc.Interval`` from SQL.

    Gunicorn calls this (``"bench.latency:baseline_server()"``) in each worker; ``DATABASE_URL`` names the database.
    """
    import dash
    from dash import Input, Output, dcc, html

    from dashboard.core.city import load_city
    from dashboard.storage.db import make_engine
    from dashboard.panorama.state import latest_events
    from layouts.common import ticker_items

    engine = make_engine(os.environ["DATABASE_URL"])
    city = load_city(os.environ.get("PANORAMA_CITY", "shenzhen"))
    tz = os.environ.get("PANORAMA_TZ", "Asia/Shanghai")
    app = dash.Dash(__name__, assets_folder=str(ROOT / "bench" / "no-assets"), update_title=None,
                    title="latency baseline")
    app.layout = html.Div([html.H1("plain polling"), html.Ul(id="event-ticker", className="ticker"),
                           dcc.Store(id="newest"),
                           dcc.Interval(id="poll", interval=int(os.environ.get("BENCH_POLL_MS", "1000")))])

    # the Store only tells the benchmark the newest ts shown (to measure the age of what is on screen)
    @app.callback(Output("event-ticker", "children"), Output("newest", "data"), Input("poll", "n_intervals"))
    def refresh(_n):
        with engine.connect() as conn:
            evs = latest_events(conn)
        items = ticker_items(evs, city, "zh", tz)
        for item, e in zip(items, sorted(evs, key=lambda e: -e["ts"])):  # the order ticker_items keeps
            # row key and publish time, read by the benchmark's probe like the push page's rows
            setattr(item, "data-key", f"{e['domain']}:{e['id']}")
            setattr(item, "data-ts", str(e["ts"]))
        return items, {"newest_ts": max((e["ts"] for e in evs), default=None)}

    return app.server


# --------------------------------------------------------------------------- the publisher


class Publisher(threading.Thread):
    """Publish ``rate`` events/s as ``per_message`` events per feed entry; markers while a phase tag is set."""

    def __init__(self, redis_url: str, transport: str, rate: int, per_message: int, marker_hz: float, seed: int):
        super().__init__(name="publisher", daemon=True)
        self.client = redis.Redis.from_url(redis_url)
        self.transport = transport
        self.interval = per_message / rate
        self.marker_gap = 1 / marker_hz
        self.messages = generate_messages(10**9, per_message, seed, 3600, mix="city")
        self.rng = random.Random(seed)
        self.tag: str | None = None
        self.markers: list[tuple[str, str, float]] = []  # (tag, title, epoch s just before the XADD)
        self.log: list[tuple[int, list[str]]] = []  # (publish ms, row keys) of each entry while a tag is set
        self.events = 0
        self.late = 0  # entries sent more than 20 ms after their slot
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def _send(self, domain: str, payload) -> None:
        send_raw(self.client, domain, encode(payload), self.transport, FEED_PREFIX, maxlen=None)  # ingest trims what it stored

    def run(self) -> None:
        try:
            start = time.monotonic()
            next_bulk, k = start, 0
            next_marker = start + self.rng.random() * self.marker_gap
            while not self.stop_event.is_set():
                due = min(next_bulk, next_marker)
                wait = due - time.monotonic()
                if wait > 0:
                    self.stop_event.wait(wait)
                    continue
                if time.monotonic() - due > 0.02:
                    self.late += 1
                if due == next_bulk:
                    domain, evs = next(self.messages)
                    ts = time.time_ns() // 1_000_000  # the clock starts here, just before the XADD
                    for e in evs:
                        e["ts"] = ts
                    self._send(domain, evs)
                    if self.tag is not None:  # every event of a measured window is accounted for
                        self.log.append((ts, [f"{domain}:{e['id']}" for e in evs]))
                    self.events += len(evs)
                    next_bulk += self.interval
                    if next_bulk < time.monotonic() - 1:  # a long stall: do not burst to catch up
                        next_bulk = time.monotonic()
                    continue
                k += 1
                # the k-th marker at a random moment within its own 1/marker_hz slot
                next_marker = start + (k + self.rng.random()) * self.marker_gap
                tag = self.tag
                if tag is None:
                    continue
                title = f"{MARKER}{tag}-{k:06d}"
                t = time.time()
                self._send("traffic", {"id": f"mk-{tag}-{k}", "ts": int(t * 1000), "kind": "congestion",
                                       "district": "440304", "severity": 1, "title": title, "value": 5.0,
                                       "unit": "index", "source": "bench-latency"})
                self.markers.append((tag, title, t))
                self.log.append((int(t * 1000), [f"traffic:mk-{tag}-{k}"]))
                self.events += 1
        except BaseException as err:  # noqa: BLE001 - reported in the results
            self.error = err

    def finish(self) -> None:
        self.stop_event.set()
        self.join(10)
        self.client.close()


class WireClient(threading.Thread):
    """A websocket client of the gateway in this process: when each marker is on the wire, before any browser."""

    def __init__(self, url: str):
        super().__init__(name="wire-client", daemon=True)
        self.url = url
        self.seen: dict[str, float] = {}  # title -> epoch ms of the first frame that carried it
        self.lag: list[tuple[float, float]] = []  # (epoch ms, ms since the frame's newest event was published)
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        import re

        from websockets.sync.client import connect

        markers, newest = re.compile(r"LATMK-[a-z]+-\d{6}"), re.compile(r'"ts":\s?(\d{13})')
        try:
            with connect(with_ticket(self.url), compression=None, max_size=2**23, open_timeout=10) as ws:
                while not self.stop_event.is_set():
                    try:
                        raw = ws.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    t = time.time() * 1000
                    if isinstance(raw, bytes):
                        raw = raw.decode()
                    if raw.startswith('{"type":"delta"'):
                        m = newest.search(raw)
                        if m:
                            self.lag.append((t, t - int(m.group(1))))
                    for title in markers.findall(raw):
                        self.seen.setdefault(title, t)
        except BaseException as err:  # noqa: BLE001 - reported
            if not self.stop_event.is_set():
                self.error = err

    def finish(self) -> None:
        self.stop_event.set()
        self.join(5)


# --------------------------------------------------------------------------- processes


def gunicorn_argv(port: int, workers: int, target: str) -> list[str]:
    return [str(Path(sys.executable).with_name("gunicorn")), "-w", str(workers), "--threads", "4",
            "--graceful-timeout", "5", "-b", f"127.0.0.1:{port}", target]


def http_ok(url: str, timeout: float = 30) -> None:
    """Wait until ``url`` answers 200 (the server is up and has imported the app)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.2)


def wait_ingest(client: redis.Redis, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the ingest worker exited with {proc.returncode}")
        try:
            if all(any(g["name"] in (INGEST_GROUP, INGEST_GROUP.encode()) for g in client.xinfo_groups(s))
                   for s in feed_names(FEED_PREFIX)):
                return
        except redis.ResponseError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the ingest worker did not create its consumer groups")


def delete_keys(client: redis.Redis) -> None:
    keys = list(client.scan_iter(match=f"{FEED_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)


# --------------------------------------------------------------------------- the browser


def start_browser(profile: Path, window: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in CHROME_ARGS:
        opts.add_argument(a)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--window-size={window.replace('x', ',')}")
    opts.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE_JS})
    return driver


def read_probe(driver) -> dict | None:
    raw = driver.execute_script(READ_JS)
    return json.loads(raw) if raw else None


PAGE_NOW = "performance.timeOrigin + performance.now()"  # the probe's clock (each document has its own origin)


def page_clock(driver, rounds: int = 12) -> dict:
    """Measure the open page's clock against ours, NTP-style: read the page's clock (the probe's
    ``performance.timeOrigin + performance.now()``) between two reads of ``time.time()``; keep the tightest
    round trip. offset = page - the midpoint of our two reads, within +- half that round trip.

    It must run on the page being measured: ``timeOrigin`` is taken per document, so a blank page's offset
    says nothing about the next one's.
    """
    best = None
    for _ in range(rounds):
        t0 = time.time()
        reply = driver.execute_cdp_cmd("Runtime.evaluate", {"expression": PAGE_NOW, "returnByValue": True})
        t1 = time.time()
        page = reply["result"]["value"]
        cand = {"offset_ms": page - (t0 + t1) * 500, "error_ms": (t1 - t0) * 500, "at": t1 * 1000}
        if best is None or cand["error_ms"] < best["error_ms"]:
            best = cand
    return best


def best_clock(*clocks: dict | None) -> dict | None:
    """The tightest of several measurements of the same page's clock."""
    got = [c for c in clocks if c]
    return min(got, key=lambda c: c["error_ms"]) if got else None


def console_errors(driver) -> list[str]:
    try:
        return [e.get("message", "")[:300] for e in driver.get_log("browser")]
    except Exception:  # noqa: BLE001 - logs are a nicety
        return []


# --------------------------------------------------------------------------- measuring


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


def dist(values: list[float]) -> dict:
    return {"n": len(values), "p50": pct(values, 0.5), "p90": pct(values, 0.9), "p99": pct(values, 0.99),
            "max": max(values) if values else None}


def dist_with_misses(values: list[float], missed: int) -> dict:
    """Percentiles over every sample, where a miss ranks above every value (None: that rank is a miss)."""
    s = sorted(values)
    n = len(s) + missed

    def at(q):
        rank = max(1, math.ceil(q * n))
        return s[rank - 1] if rank <= len(s) else None

    return {"n": n, "missed": missed, "p50": at(0.5) if n else None, "p90": at(0.9) if n else None,
            "p99": at(0.99) if n else None}


def account(published: list[tuple[int, str]], rows: dict[str, tuple]) -> dict:
    """Sort every event published in the window into shown (a ticker row, its lag to the DOM and to paint)
    and not shown (a newer event's row came first: when, and how old that row's event was then)."""
    shown = sorted((t, ts) for t, ts, _p in rows.values() if ts)
    at, newest = [], []
    top = 0
    for t, ts in shown:  # the newest publish time on screen so far, by when rows appeared
        top = max(top, ts)
        at.append(t)
        newest.append(top)
    lag, painted, superseded, instead = [], [], [], []
    missing = 0
    for ts, key in published:
        row = rows.get(key)
        if row is not None:
            lag.append(row[0] - ts)
            if row[2] is not None:
                painted.append(row[2] - ts)
            continue
        i = bisect.bisect_right(newest, ts)  # the first row of an event published after this one
        if i < len(at):
            superseded.append(at[i] - ts)
            instead.append(at[i] - newest[i])
        else:
            missing += 1
    return {"published": len(published), "shown": len(lag), "not_shown": len(superseded), "missing": missing,
            "shown_ms": dist(lag), "shown_painted_ms": dist(painted), "superseded_ms": dist(superseded),
            "shown_instead_age_ms": dist(instead), "every_event_ms": dist(lag + superseded)}


def measure_loads(driver, url: str, needs: tuple[str, ...], n: int, timeout: float) -> list[dict]:
    """Open ``url`` ``n`` times; per load the ms from driver.get start to each first sign of data."""
    out = []
    for i in range(n):
        t0 = time.time() * 1000
        driver.get(url)
        returned = time.time() * 1000
        deadline = time.monotonic() + timeout
        probe = read_probe(driver) or {}
        while not all(k in probe.get("first", {}) for k in needs) and time.monotonic() < deadline:
            time.sleep(0.05)
            probe = read_probe(driver) or {}
        clock = page_clock(driver, 6)  # this document's own clock, taken onto ours
        off = clock["offset_ms"]
        first = probe.get("first", {})
        rel = {k: first[k] - off - t0 for k in ("kpi", "ticker", "live", "frame") if k in first}
        data = [rel[k] for k in ("kpi", "ticker") if k in rel]
        nav = probe.get("nav") or {}
        origin = probe.get("origin", t0 + off) - off
        out.append({"load": i + 1, "first_data_ms": min(data) if data else None, "clock": clock,
                    **{f"{k}_ms": v for k, v in rel.items()},
                    "nav_start_ms": origin - t0, "dcl_ms": origin + nav["dcl"] - t0 if nav.get("dcl") else None,
                    "load_event_ms": origin + nav["load"] - t0 if nav.get("load") else None,
                    "get_returned_ms": returned - t0,
                    "missing": [k for k in needs if k not in first]})
    return out


def snapshot_cpu(pids: dict[str, int | None], db_name: str) -> dict:
    me = psutil.Process().cpu_times()  # this process alone: the services are its children
    snap = {"servers": server_cpu(db_name), "me": me.user + me.system, "t": time.monotonic()}
    for name, pid in pids.items():
        try:
            snap[name] = tree_cpu(psutil.Process(pid)) if pid else 0.0
        except psutil.NoSuchProcess:
            snap[name] = 0.0
    return snap


def cpu_cores(a: dict, b: dict, names: list[str]) -> dict:
    dt = b["t"] - a["t"]
    others = cpu_delta(a["servers"], b["servers"])
    out = {n: (b[n] - a[n]) / dt for n in names}
    out["bench process (publisher, selenium client)"] = (b["me"] - a["me"]) / dt
    out["PostgreSQL"] = (others.get("pg_bench", 0) + others.get("pg_aux", 0)) / dt
    out["Redis"] = others.get("redis", 0) / dt
    machine = others.get("machine", 0) / dt
    out["others on the machine (and kernel)"] = max(0.0, machine - sum(out.values()))
    out["machine busy"] = machine
    return out


def run_phase(name: str, args, driver, url: str, needs: tuple[str, ...], publisher: Publisher,
              pids: dict[str, int | None], wire: WireClient | None = None, poll_s: float = 0) -> dict:
    """Time the page loads, then measure the markers' publish-to-screen latency on the last one."""
    res: dict = {"url": url.split("?")[0]}  # without a kiosk token
    say(f"{name}: {args.loads} loads of {res['url']}")
    res["loads"] = measure_loads(driver, url, needs, args.loads, args.load_timeout)
    firsts = [ld["first_data_ms"] for ld in res["loads"] if ld["first_data_ms"] is not None]
    res["first_data_median_ms"] = statistics.median(firsts) if firsts else None
    for k in ("kpi", "ticker", "live"):
        vals = [ld[f"{k}_ms"] for ld in res["loads"] if f"{k}_ms" in ld]
        res[f"{k}_median_ms"] = statistics.median(vals) if vals else None
    say(f"{name}: loads done, first data " + ", ".join(
        "-" if ld["first_data_ms"] is None else f"{ld['first_data_ms']:.0f} ms" for ld in res["loads"]))
    time.sleep(args.warmup)
    # The page's clock onto ours, on this very document, before and after the window (the tightest is applied).
    clock0 = page_clock(driver)
    say(f"{name}: {args.seconds:.0f} s of markers at {args.marker_hz:g}/s under {args.rate:,} events/s")
    load0 = os.getloadavg()
    cpu0 = snapshot_cpu(pids, args.db_name)
    ev0, late0, log0 = publisher.events, publisher.late, len(publisher.log)
    w0 = time.time() * 1000
    if args.profile and name == "push":
        driver.execute_cdp_cmd("Profiler.enable", {})
        driver.execute_cdp_cmd("Profiler.setSamplingInterval", {"interval": 1000})
        driver.execute_cdp_cmd("Profiler.start", {})
    publisher.tag = name
    time.sleep(args.seconds)
    publisher.tag = None
    if args.profile and name == "push":
        res["profile_top"] = profile_top(driver.execute_cdp_cmd("Profiler.stop", {})["profile"], args.seconds)
    w1 = time.time() * 1000
    ev1, late1 = publisher.events, publisher.late
    published = [(ts, key) for ts, keys in publisher.log[log0:] for key in keys if w0 <= ts < w1]
    cpu1 = snapshot_cpu(pids, args.db_name)
    load1 = os.getloadavg()
    # stragglers may still appear; a polling page shows the window's last events only at its next poll
    time.sleep(max(args.grace, poll_s + 1))
    t_read = time.monotonic()
    probe = read_probe(driver) or {}
    res["read_wait_s"] = time.monotonic() - t_read  # how long the page took to run our one script
    clock1 = page_clock(driver)
    clock = best_clock(clock0, clock1)
    off = clock["offset_ms"]
    res["clock"] = {"applied": clock, "before": clock0, "after": clock1,
                    "drift_ms": clock1["offset_ms"] - clock0["offset_ms"]}
    say(f"{name}: window done (reading the page took {res['read_wait_s']:.1f} s; page clock {off:+.1f} ms "
        f"+- {clock['error_ms']:.1f})")
    # every time the page noted, on our clock
    dom = {k: t - off for k, t in probe.get("dom", {}).items()}
    raf = {k: t - off for k, t in probe.get("raf", {}).items()}
    net = {k: t - off for k, t in probe.get("net", {}).items()}
    # row key -> (in the DOM, its event's publish time, painted); the publish time from our own log where we
    # have it (the page may draw a polled row before its fetch hook has read the answer's times)
    pub_ts = {key: ts for ts, key in published}
    rows_all = {}
    for k, (t, ts, *painted) in probe.get("rows", {}).items():
        rows_all[k] = (t - off, pub_ts.get(k, ts), painted[0] - off if painted and painted[0] is not None else None)
    lag_all = [(t - off, d - off) for t, d in probe.get("lag", [])]
    sent = [(title, t * 1000) for tag, title, t in publisher.markers if tag == name]
    lat = [dom[t] - p for t, p in sent if t in dom]
    # every row that appeared in the window: its event was stamped with the publish time just before the XADD
    rows = [(t, ts, p) for t, ts, p in rows_all.values() if ts and w0 <= t < w1]
    res["rows"] = {**dist([t - ts for t, ts, _p in rows]), "per_s": len(rows) / ((w1 - w0) / 1000),
                   "painted_ms": dist([p - ts for _t, ts, p in rows if p is not None])}
    res["accounted"] = account(published, rows_all)
    if wire is not None:
        on_wire = [wire.seen[t] - p for t, p in sent if t in wire.seen]
        res["wire"] = {"markers": len(on_wire), "latency_ms": dist(on_wire),
                       "newest_lag_ms": dist([d for t, d in wire.lag if w0 <= t < w1]),
                       "error": repr(wire.error) if wire.error else None}
    missed = sum(t not in dom for t, _ in sent)
    res["markers"] = {
        "sent": len(sent), "seen": len(lat), "missed": missed, "arrived": sum(t in net for t, _ in sent),
        "never_arrived": sum(t not in net and t not in dom for t, _ in sent),
        "arrived_not_shown": sum(t in net and t not in dom for t, _ in sent),
        "latency_ms": dist(lat),
        # over every marker sent: a miss ranks above every time (it never came)
        "all_sent_ms": dist_with_misses(lat, missed),
        "paint_ms": dist([raf[t] - p for t, p in sent if t in raf]),
        "paint_all_sent_ms": dist_with_misses([raf[t] - p for t, p in sent if t in raf],
                                              sum(t not in raf for t, _ in sent)),
        "arrival_ms": dist([net[t] - p for t, p in sent if t in net]),
        "arrival_to_dom_ms": dist([dom[t] - net[t] for t, _ in sent if t in dom and t in net]),
    }
    lag = [(t, d) for t, d in lag_all if w0 <= t < w1]
    last = lag_all[-1:]  # the newest frame the page had taken in when read
    behind_ms = last[0][1] + (probe.get("now", last[0][0] + off) - off - last[0][0]) if last else None
    edge = w0 + 5000, w1 - 5000
    # how old the newest event on screen gets before the next frame or answer replaces it
    ages = [t2 - (t1 - d1) for (t1, d1), (t2, _d2) in zip(lag, lag[1:])]
    res["screen_age_ms"] = dist(ages)
    res["frame_lag_ms"] = {**dist([d for _t, d in lag]),
                           "first_5s_median": pct([d for t, d in lag if t < edge[0]], 0.5),
                           "last_5s_median": pct([d for t, d in lag if t >= edge[1]], 0.5),
                           "behind_at_read": behind_ms}
    if behind_ms is not None:
        # markers published after the newest event the page had taken in are still queued, not dropped
        cut = probe.get("now", w1 + off) - off - behind_ms
        res["markers"]["queued_at_read"] = sum(p > cut and t not in net and t not in dom for t, p in sent)
    span_s = (w1 - w0) / 1000
    long = [d for s, d in probe.get("longtasks", []) if w0 <= s - off < w1]
    frames = [b for t, b in probe.get("frames", []) if w0 <= t - off < w1]
    res["browser"] = {"frames_per_s": len(frames) / span_s, "kib_per_s": sum(frames) / 1024 / span_s,
                      "longtasks": len(long), "longtask_ms": sum(long),
                      "longtask_ms_per_frame": sum(long) / len(frames) if frames else None,
                      "longtask_share": sum(long) / (span_s * 1000)}
    res["browser"]["redraws_per_s"] = {g: sum(w0 <= t - off < w1 for t in ts) / span_s
                                       for g, ts in probe.get("redraws", {}).items()}
    res["publisher"] = {"events_per_s": (ev1 - ev0) / span_s, "late_entries": late1 - late0}
    res["cpu_cores"] = cpu_cores(cpu0, cpu1, list(pids))
    res["loadavg"] = {"start": load0, "end": load1}
    res["window_s"] = span_s
    return res


def profile_top(profile: dict, seconds: float, n: int = 25) -> list[dict]:
    """Return the page's functions by self time (ms per second of window) from a CDP CPU profile."""
    nodes = {nd["id"]: nd for nd in profile["nodes"]}
    deltas = profile.get("timeDeltas", [])
    self_us: dict[tuple, float] = {}
    for sid, dt in zip(profile.get("samples", []), deltas[1:] + [0]):
        cf = nodes[sid]["callFrame"]
        key = (cf["functionName"] or "(anonymous)", cf["url"].rsplit("/", 1)[-1].split("?")[0], cf["lineNumber"])
        self_us[key] = self_us.get(key, 0) + dt
    top = sorted(self_us.items(), key=lambda kv: -kv[1])[:n]
    return [{"function": f, "file": u, "line": ln, "ms_per_s": us / 1000 / seconds} for (f, u, ln), us in top]


# --------------------------------------------------------------------------- phases


def push_phase(args, procs: Processes, env: dict, driver, publisher: Publisher, ingest_pid: int,
               fallback: bool = False) -> dict:
    """The app's page live over the gateway; with ``fallback``, with no gateway at all, so the page polls
    ``/api/summary?live=1`` every ``PANORAMA_POLL_MS`` as it does whenever the gateway is unreachable."""
    name = "fallback" if fallback else "push"
    app_port, ws_port = free_port(), free_port()
    origin = f"http://127.0.0.1:{app_port}"
    penv = {**env, "PANORAMA_PORT": str(app_port), "PANORAMA_WS_PORT": str(ws_port), "PANORAMA_WS_HOST": "127.0.0.1",
            "PANORAMA_WS_URL": f"ws://127.0.0.1:{ws_port}/", "PANORAMA_WS_ORIGINS": origin}
    fps = ["--max-fps", str(args.max_fps)] if args.max_fps else []
    gw = None if fallback else procs.start("gateway", [sys.executable, "-m", "dashboard.gateway", "--host",
                                                       "127.0.0.1", "--port", str(ws_port), *fps], penv)
    app = procs.start("app", gunicorn_argv(app_port, args.workers, "app:server"), penv)
    wire = None
    try:
        if gw is not None:
            wait_port(ws_port, gw, 60, "the gateway")
        wait_port(app_port, app, 60, "the app")
        http_ok(origin + "/")
        say(f"{name}: app on {origin}, " + ("no gateway" if fallback else f"gateway on ws://127.0.0.1:{ws_port}/"))
        access = page_access(env["DATABASE_URL"], args.page)
        sign_in(driver, origin, access)
        if gw is not None:
            wire = WireClient(f"ws://127.0.0.1:{ws_port}/")
            wire.start()
        url = origin + args.page + access.get("query", "")
        pids = {"chromium": driver.service.process.pid, "app (gunicorn)": app.pid, "ingest": ingest_pid}
        if gw is not None:
            pids["gateway"] = gw.pid
        res = run_phase(name, args, driver, url, ("kpi", "ticker") if fallback else ("kpi", "ticker", "live"),
                        publisher, pids, wire, product_poll_ms() / 1000 if fallback else 0)
        if fallback:
            res["mode"] = driver.execute_script(
                "const e = document.getElementById('live-indicator'); return e ? e.className : null")
    finally:
        if wire is not None:
            wire.finish()
        driver.get("about:blank")
        procs.stop("app")
        if gw is not None:
            procs.stop("gateway")
    if gw is not None:
        res["gateway_warnings"] = _warnings(procs.tail("gateway", 10**6))
    res["app_warnings"] = _warnings(procs.tail("app", 10**6))
    return res


def fallback_phase(args, procs: Processes, env: dict, driver, publisher: Publisher, ingest_pid: int) -> dict:
    return push_phase(args, procs, env, driver, publisher, ingest_pid, fallback=True)


def poll_phase(args, procs: Processes, env: dict, driver, publisher: Publisher, ingest_pid: int) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    srv = procs.start("baseline", gunicorn_argv(port, args.workers, "bench.latency:baseline_server()"),
                      {**env, "BENCH_POLL_MS": str(args.poll_ms)})
    try:
        wait_port(port, srv, 60, "the baseline server")
        http_ok(base + "/")
        say(f"poll: baseline on {base}")
        return run_phase("poll", args, driver, base + "/", ("ticker",), publisher,
                         {"chromium": driver.service.process.pid, "baseline (gunicorn)": srv.pid,
                          "ingest": ingest_pid}, poll_s=args.poll_ms / 1000)
    finally:
        driver.get("about:blank")
        procs.stop("baseline")


def _warnings(log: str) -> list[str]:
    """Return the log's warnings and errors, each traceback by its last line."""
    out, in_tb = [], False
    for line in log.splitlines():
        if line.startswith("Traceback"):
            in_tb = True
        elif in_tb and line and not line.startswith(" "):
            out.append("  " + line[:200])
            in_tb = False
        elif "WARNING" in line or "ERROR" in line:
            out.append(line[:200])
    return out[:20]


def page_access(db_url: str, page: str) -> dict:
    """Let the browser in where the tree has sign-in (``dashboard.users``); {} where pages are open.

    ``/wall`` gets a kiosk token (``?token=``), other pages a viewer of the bench's own to sign in as.
    """
    try:
        from dashboard.storage import users
    except ImportError:
        return {}
    import secrets

    from dashboard.storage.db import make_engine

    engine = make_engine(db_url)
    try:
        if page == "/wall" and hasattr(users, "create_kiosk_token"):
            return {"query": "?token=" + users.create_kiosk_token(engine, "bench.latency")[1]}
        if hasattr(users, "create_user"):
            password = secrets.token_urlsafe(16)
            users.create_user(engine, "bench-latency", password, "viewer", None, [])
            return {"login": ("bench-latency", password)}
    finally:
        engine.dispose()
    return {}


SIGN_IN_JS = """
const [user, password, done] = arguments;
fetch('/api/session', {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
                       body: JSON.stringify({username: user, password: password})})
  .then((r) => done(r.status), (e) => done(String(e)));
"""


def sign_in(driver, origin: str, access: dict) -> None:
    if "login" not in access:
        return
    driver.get(origin + "/login")
    status = driver.execute_async_script(SIGN_IN_JS, *access["login"])
    if status != 200:
        raise RuntimeError(f"signing in for the benchmark failed: {status}")


def stored_events(db_url: str) -> int | None:
    from sqlalchemy import text

    from dashboard.storage.db import make_engine

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM events")).scalar_one()
    except Exception:  # noqa: BLE001 - a nicety
        return None
    finally:
        engine.dispose()


def run(args) -> dict:
    started = time.monotonic()
    res: dict = {"config": {k: v for k, v in vars(args).items() if k not in ("json", "output")},
                 "machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}, "errors": []}
    busy0 = server_cpu(args.db_name).get(-1, (None, 0.0))[1]
    db_url = recreate_database(args.pg_url, args.db_name)
    publisher = None
    driver = None
    bus = None
    chrome_pids: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        procs = Processes(Path(tmp))
        try:
            redis_url = args.redis_url or start_redis(procs)
            bus = redis.Redis.from_url(redis_url)
            delete_keys(bus)
            env = service_env(redis_url, db_url, PANORAMA_FEED_PREFIX=FEED_PREFIX)
            res["config"]["fallback_poll_ms"] = product_poll_ms()
            # the shipped worker, as deployed: its deltas go to panorama:updates of the bench's own Redis
            ingest = procs.start("ingest", [sys.executable, "-m", "feeds.ingest", "--transport", args.transport],
                                 env)
            wait_ingest(bus, ingest)
            publisher = Publisher(redis_url, args.transport, args.rate, args.per_message, args.marker_hz,
                                  args.seed)
            publisher.start()
            say("ingest worker and publisher running; starting Chromium")
            driver = start_browser(Path(tmp) / "profile", args.window)
            driver.get("about:blank")
            chrome_pids = [p.pid for p in psutil.Process(driver.service.process.pid).children(recursive=True)]
            phases = [("push", push_phase)]
            if not args.no_poll:
                phases += [("fallback", fallback_phase), ("poll", poll_phase)]
            for name, fn in phases:
                try:
                    res[name] = fn(args, procs, env, driver, publisher, ingest.pid)
                    res[name]["console_errors"] = console_errors(driver)
                except Exception as err:  # noqa: BLE001 - reported, then the next phase runs
                    res["errors"].append(f"{name}: {err!r}")
                    for log in ("gateway", "app", "baseline", "ingest"):
                        if procs.tail(log):
                            say(f"--- {log}.log:\n{procs.tail(log)}")
                if ingest.poll() is not None:
                    raise RuntimeError(f"the ingest worker exited with {ingest.returncode}:\n{procs.tail('ingest')}")
            if publisher.error:
                res["errors"].append(f"publisher: {publisher.error!r}")
        except Exception as err:  # noqa: BLE001 - reported
            res["errors"].append(repr(err))
        finally:
            if publisher is not None:
                publisher.finish()
                res["published_events"] = publisher.events
            time.sleep(1)
            res["stored_events"] = stored_events(db_url)
            res["ingest_warnings"] = _warnings(procs.tail("ingest", 10**6))
            if driver is not None:
                quit_browser(driver, chrome_pids)
            if bus is not None:
                delete_keys(bus)
                bus.close()
            procs.stop_all()
            if not args.keep_db:
                drop_database(args.pg_url, args.db_name)
    res["seconds"] = time.monotonic() - started
    busy1 = server_cpu(args.db_name).get(-1, (None, 0.0))[1]
    res["machine"]["loadavg_end"] = os.getloadavg()
    res["machine"]["busy_cores_whole_run"] = (busy1 - busy0) / res["seconds"]
    return res


# --------------------------------------------------------------------------- report


def fmt_load(values) -> str:
    return " ".join(f"{x:.2f}" for x in values)


def print_report(res: dict, file=sys.stdout) -> None:
    cfg = res["config"]
    phases = [(n, res[n]) for n in ("push", "fallback", "poll") if n in res]
    labels = {"push": f"push: gateway, {cfg['page']}", "poll": f"poll: dcc.Interval {cfg['poll_ms'] / 1000:g} s",
              "fallback": f"{cfg['page']} polling {cfg.get('fallback_poll_ms', 0) / 1000:g} s"}
    print(f"\nPublish-to-screen latency: {cfg['rate']:,} events/s ({cfg['rate'] // cfg['per_message']} entries/s x "
          f"{cfg['per_message']} events, {cfg['transport']}), {cfg['marker_hz']:g} markers/s for "
          f"{cfg['seconds']:.0f} s per phase; headless Chromium {cfg['window']}", file=file)
    w = 30
    print(f"\n  {'':<48}" + "".join(f"{labels[n]:>{w}}" for n, _ in phases), file=file)

    def row(label, fn):
        vals = []
        for _n, p in phases:
            try:
                v = fn(p)
            except (KeyError, TypeError, ZeroDivisionError, IndexError):
                v = None
            vals.append("-" if v is None else v)
        print(f"  {label:<48}" + "".join(f"{v:>{w}}" for v in vals), file=file)

    def ms(v):
        return "-" if v is None else f"{v:,.0f}"

    def quad(d):
        return " / ".join(ms(d[k]) for k in ("p50", "p90", "p99", "max"))

    def share(p, k):
        a = p["accounted"]
        return f"{a[k]:,} ({a[k] / a['published']:.1%})" if a["published"] else None

    def all_sent(d):
        return " / ".join("missed" if d[k] is None else ms(d[k]) for k in ("p50", "p90", "p99"))

    row("events published in the window", lambda p: f"{p['accounted']['published']:,}")
    row("  shown as a ticker row", lambda p: share(p, "shown"))
    row("  not shown (a newer row came first)", lambda p: share(p, "not_shown"))
    row("  missing (neither, by the end)", lambda p: share(p, "missing"))
    row("shown: publish -> row painted p50/p90/p99/max, ms", lambda p: quad(p["accounted"]["shown_painted_ms"]))
    row(f"  target: p99 <= {TARGET_P99_MS} ms", lambda p: ("met" if p["accounted"]["shown_painted_ms"]["p99"]
                                                          <= TARGET_P99_MS else "NOT met")
        if p["accounted"]["shown_painted_ms"]["p99"] is not None else None)
    row("shown: publish -> row in the DOM p50/p90/p99/max", lambda p: quad(p["accounted"]["shown_ms"]))
    row("not shown: publish -> newer row p50/p99, ms", lambda p: (
        f"{ms(p['accounted']['superseded_ms']['p50'])} / {ms(p['accounted']['superseded_ms']['p99'])}"))
    row("  age of the row shown instead p50/p99, ms", lambda p: (
        f"{ms(p['accounted']['shown_instead_age_ms']['p50'])} / "
        f"{ms(p['accounted']['shown_instead_age_ms']['p99'])}"))
    row("every event: publish -> it or newer in DOM p50/p99", lambda p: (
        f"{ms(p['accounted']['every_event_ms']['p50'])} / {ms(p['accounted']['every_event_ms']['p99'])}"))
    row("rows appearing / s", lambda p: f"{p['rows']['per_s']:,.1f}")
    row("markers on screen / sent (missed)", lambda p: f"{p['markers']['seen']} / {p['markers']['sent']} "
        f"({p['markers']['missed'] / p['markers']['sent']:.0%})")
    row("  every marker sent: publish -> DOM p50/p90/p99", lambda p: all_sent(p["markers"]["all_sent_ms"]))
    row("  every marker sent: publish -> painted p50/90/99", lambda p: all_sent(p["markers"]["paint_all_sent_ms"]))
    row("  those shown: publish -> DOM p50/p90/p99/max", lambda p: quad(p["markers"]["latency_ms"]))
    row("on the wire (a Python ws client): markers", lambda p: str(p["wire"]["markers"]) if "wire" in p else None)
    row("  publish -> on the wire p50/p90/p99/max, ms", lambda p: quad(p["wire"]["latency_ms"]) if "wire" in p
        else None)
    row("  newest event of a frame: publish -> wire p50/p99",
        lambda p: f"{ms(p['wire']['newest_lag_ms']['p50'])} / {ms(p['wire']['newest_lag_ms']['p99'])}"
        if "wire" in p else None)
    row("markers arrived in the browser (frame/answer)", lambda p: f"{p['markers']['arrived']}")
    row("publish -> arrived p50/p90/p99/max, ms", lambda p: quad(p["markers"]["arrival_ms"]))
    row("arrived -> in ticker p50/p99, ms", lambda p: f"{ms(p['markers']['arrival_to_dom_ms']['p50'])} / "
                                                    f"{ms(p['markers']['arrival_to_dom_ms']['p99'])}")
    row("missed: never arrived / arrived, not shown",
        lambda p: f"{p['markers']['never_arrived']} / {p['markers']['arrived_not_shown']}")
    row("  of the never arrived: still queued at the end", lambda p: p["markers"].get("queued_at_read"))
    row("newest event: publish -> taken in p50/p99/max, ms",
        lambda p: " / ".join(ms(p["frame_lag_ms"][k]) for k in ("p50", "p99", "max")) if p["frame_lag_ms"]["n"]
        else None)
    row("  median in the first / last 5 s, ms", lambda p: f"{ms(p['frame_lag_ms']['first_5s_median'])} / "
                                                        f"{ms(p['frame_lag_ms']['last_5s_median'])}"
        if p["frame_lag_ms"]["n"] else None)
    row("age of newest shown, before replaced p50/p99, ms",
        lambda p: f"{ms(p['screen_age_ms']['p50'])} / {ms(p['screen_age_ms']['p99'])}" if p["screen_age_ms"]["n"]
        else None)
    row("frames or fetches / s, KiB/s into the page",
        lambda p: f"{p['browser']['frames_per_s']:.1f}, {p['browser']['kib_per_s']:,.0f}")
    row("page long tasks: count, ms (share of window)", lambda p: f"{p['browser']['longtasks']}, "
        f"{p['browser']['longtask_ms']:,.0f} ({p['browser']['longtask_share']:.0%})")
    row("figure redraws / s (Plotly afterplot)", lambda p: ", ".join(
        f"{g} {v:.1f}" for g, v in sorted(p["browser"]["redraws_per_s"].items())) or "-")
    row("  long-task ms per frame or answer taken in", lambda p: ms(p["browser"]["longtask_ms_per_frame"]))
    row("publisher events/s (late entries)",
        lambda p: f"{p['publisher']['events_per_s']:,.0f} ({p['publisher']['late_entries']})")
    row("reading the page after the window took, s", lambda p: f"{p['read_wait_s']:.1f}")
    print(file=file)
    row(f"open -> first live data, median of {cfg['loads']}, ms", lambda p: ms(p["first_data_median_ms"]))
    row(f"target: <= {TARGET_FIRST_DATA_S:g} s", lambda p: (
        "met" if p["first_data_median_ms"] <= TARGET_FIRST_DATA_S * 1000 else "NOT met")
        if p["first_data_median_ms"] is not None else None)
    row("  each load (first is a cold cache), ms",
        lambda p: " ".join(ms(ld["first_data_ms"]) for ld in p["loads"]))
    row("  first KPI / first ticker item, median ms", lambda p: f"{ms(p['kpi_median_ms'])} / "
                                                               f"{ms(p['ticker_median_ms'])}")
    row("  socket live, median ms", lambda p: ms(p["live_median_ms"]) if p["live_median_ms"] else None)
    row("  DOMContentLoaded / load event, median ms", lambda p: (
        f"{ms(statistics.median([ld['dcl_ms'] for ld in p['loads']]))} / "
        f"{ms(statistics.median([ld['load_event_ms'] for ld in p['loads']]))}"))
    print(file=file)
    names = []
    for _n, p in phases:
        for k in p.get("cpu_cores", {}):
            if k not in names:
                names.append(k)
    for k in names:
        row(f"CPU cores: {k}", lambda p, k=k: f"{p['cpu_cores'][k]:.2f}" if k in p["cpu_cores"] else None)
    row("load average 1 min at window start / end",
        lambda p: f"{p['loadavg']['start'][0]:.2f} / {p['loadavg']['end'][0]:.2f}")
    row("browser console errors", lambda p: str(len(p.get("console_errors", []))))
    row("page clock - ours, applied (+- error), ms", lambda p: f"{p['clock']['applied']['offset_ms']:+.1f} "
        f"(+- {p['clock']['applied']['error_ms']:.1f})")
    row("  its drift over the window, ms", lambda p: f"{p['clock']['drift_ms']:+.1f}")
    if "fallback" in res:
        row("fallback page's connection state at the end", lambda p: p.get("mode"))
    m = res["machine"]
    print(f"""
Machine: {m['cpus']} CPUs; load average (1/5/15 min) {fmt_load(m['loadavg_start'])} at start,
{fmt_load(m.get('loadavg_end', ()))} at the end; {m.get('busy_cores_whole_run', 0):.2f} cores busy over the whole run
(everything on the machine). Published {res.get('published_events', 0):,} events, stored
{res.get('stored_events') or 0:,}.
Every clock starts just before the event's XADD (the publisher stamps ts there) and stops on the host's clock:
page times are taken onto it with the page's own clock offset, measured on the measured page before and after
the window (NTP-style round trips over CDP, the tightest kept: its error bound is given). "In the DOM" = the row
or marker title inserted in #event-ticker (a MutationObserver); "painted" = the task just after the next
animation frame, i.e. once that frame was rendered. Every event published in the window is accounted: shown as
a row, or not shown because a newer row came first (the gateway sends the newest 50 events of a frame, the page
keeps the newest 30 rows, a poll answer holds the newest 30), with the time until that newer row and its age,
or missing. Markers never shown count as misses: "every marker sent" ranks them above every time ("missed"
where the percentile falls among them). Arrived = the page's script took in the frame or answer that carries it.
Took {res['seconds']:.0f} s.""", file=file)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rate", type=int, default=1000, help="events per second")
    p.add_argument("--per-message", type=int, default=50, help="events per feed entry")
    p.add_argument("--marker-hz", type=float, default=10, help="marker events per second while measuring")
    p.add_argument("--seconds", type=float, default=30, help="measured seconds of each phase")
    p.add_argument("--warmup", type=float, default=3, help="seconds on the page before measuring")
    p.add_argument("--grace", type=float, default=2, help="seconds after the window for late markers")
    p.add_argument("--loads", type=int, default=5, help="page loads timed in each phase")
    p.add_argument("--load-timeout", type=float, default=20, help="seconds a load may take to show data")
    p.add_argument("--page", default="/wall", choices=("/wall", "/"), help="the push page to measure")
    p.add_argument("--poll-ms", type=int, default=1000, help="the baseline's dcc.Interval")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (4 threads each) of app and baseline")
    p.add_argument("--max-fps", type=float, help="the gateway's --max-fps (default: the gateway's own, 10)")
    p.add_argument("--transport", choices=("stream", "pubsub"), default="stream", help="feed transport")
    p.add_argument("--window", default="1920x1080", help="browser window size")
    p.add_argument("--no-poll", action="store_true", help="skip the polling baseline")
    p.add_argument("--redis-url", help="Redis to use (default: a redis-server of the bench's own; with a shared "
                                       "server the worker's deltas reach its panorama:updates)")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server; the bench makes its own database")
    p.add_argument("--db-name", default=DEFAULT_DB, help="database to drop, create and migrate")
    p.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    p.add_argument("--seed", type=int, default=20261126, help="seed of the generated events and marker times")
    p.add_argument("--profile", action="store_true", help="CPU-profile the push page during its window (in the JSON)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument("--output", metavar="FILE", help="also write the results as JSON to FILE")
    args = p.parse_args(argv)
    if args.rate < 1 or args.per_message < 1 or args.per_message > 1000 or args.marker_hz <= 0 or args.loads < 1:
        p.error("--rate, --marker-hz and --loads must be positive, --per-message 1..1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t = perf_counter()
    res = run(args)
    say(f"done in {perf_counter() - t:.0f} s")
    if args.output:
        Path(args.output).write_text(json.dumps(res, indent=2, ensure_ascii=False, default=str))
    if args.json:
        print(json.dumps(res, indent=2, ensure_ascii=False, default=str))
    elif "push" in res or "poll" in res:
        print_report(res)
    for e in res["errors"]:
        print(f"ERROR {e}", file=sys.stderr)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
