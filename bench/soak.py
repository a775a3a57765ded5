"""Soak: run the whole product at a steady rate for a long time; check memory stays flat and nothing is lost.

``PYTHONPATH=. .venv/bin/python -m bench.soak --minutes 30 --rate 2000`` (see ``--help``). It

1. recreates its own PostgreSQL database (``panorama_soak``) and migrates it; in Redis (db 11 by default,
   ``--redis-url``) it uses feeds of its own prefix (``soak:<domain>``) and its own delta channel
   (``soak:updates``: pub/sub channels are shared by every Redis db), deleted before and after;
2. starts the real processes: ``--workers`` ingest workers (``feeds.ingest``, streams, one consumer group),
   one websocket gateway (``python -m dashboard.gateway``), the app (``gunicorn -w 2 app:server``), and headless
   Chromium (selenium) on ``/wall`` with a kiosk token, kept open the whole run;
3. publishes ``--rate`` events/s (the simulator's ordinary-day mix, ``--per-message`` per stream entry, every
   event a unique id) from this process, and trims each stream only below what the consumer group has
   acknowledged (XTRIM MINID), so Redis holds a flat backlog and trimming can never lose an event;
4. every ``--sample-s`` seconds samples the RSS of every process (each ingest worker, the gateway, the app's
   gunicorn tree, Chromium's tree and each Chromium process type: browser, renderer, GPU, utility, zygote; for
   reference Redis's RSS and the unique memory of the database's PostgreSQL backends), and, after a forced GC
   (CDP ``HeapProfiler.collectGarbage``), the page's JS heap (``Runtime.getHeapUsage``), its workers' heaps
   (maplibre's), CDP's ``Performance.getMetrics`` gauges (Nodes, JSEventListeners, Documents, LayoutObjects) and
   the page's own counts (nodes in the document, Dash's undo history and store, the map's tiles and one-shot
   listeners); and published / stored / backlog. ``--heap-snapshots 4,14`` also takes heap snapshots at those
   minutes and reports what grew between the first and the last by constructor; ``--memory-dumps 5`` takes a
   Chromium memory-infra dump every 5 minutes (``bench.memdump``: each process type's memory by allocator --
   malloc, partition_alloc, v8, blink_gc, skia, cc, shared_memory, ... -- and Chromium's private footprint) and
   reports each allocator's slope, to name what grows outside the JS heap;
5. at the end stops publishing, waits for ingest to drain, and checks published == stored (``count(*)`` of
   its events) with nothing pending; prints each figure's least-squares slope over the samples after the first
   ``--warmup`` fraction of the run, per hour and per day, with a 95 % confidence interval (``bench.slope``:
   widened for the samples' autocorrelation), and judges the wall's browser -- the whole Chromium tree's PSS without file-backed pages -- against
   ``--budget`` (50 MiB a day) on the interval's upper bound; writes everything as JSON with ``--output``.

The clock: sampling starts when ``/wall`` has loaded (the publisher already running) and stops when publishing
stops, ``--minutes`` later; the warm-up is the first ``--warmup`` (0.2) of that span.

Exit status: 0 when nothing was lost and the browser's budget was not shown to be exceeded, 1 when events were
lost, 2 on errors, 3 when the browser's growth exceeds the budget (the CI's lower bound above it). A verdict of
"undecided" (the CI straddles the budget) exits 0 and says so: run longer.
Everything it started is ended by pid at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import redis

from bench.procs import ROOT, Processes, quit_browser
from bench.slope import DAY_S, fit, judge, mib_fit
from dashboard.core.channels import INGEST_GROUP, feed_names
from feeds.consumers import trim_acknowledged as trim_stream

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_DB = "panorama_soak"
PREFIX = "soak"
UPDATES = "soak:updates"
SECRET = "soak"
# A wall stays up for weeks: its browser (the whole Chromium tree) may grow by at most this much a day, judged
# on the upper bound of the slope's 95 % CI (issue 12; "less than 10 MiB over the run" passed 0.6 GiB a day).
BROWSER_BUDGET_MIB_PER_DAY = 50.0
# The judged figure: the tree's PSS without its file-backed pages (see tree_pss_own). The whole PSS is recorded
# beside it: its file part (Chromium's binary, ~140 MiB) moves by tens of MiB whenever another Chromium on the
# machine starts or ends, as session 14's run showed (RSS and every USS flat through a 50 MiB PSS step).
BROWSER = "chromium (PSS anon+shmem)"
CHROME_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")
# The real ingest worker, with its delta channel moved off the shared panorama:updates.
INGEST_SHIM = ("import sys, feeds.pipeline as p; p.UPDATES_CHANNEL = sys.argv.pop(1); "
               "from feeds.ingest import main; sys.exit(main())")

_T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[soak {time.monotonic() - _T0:7.1f} s] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_env(redis_url: str, db_url: str, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL", "PANORAMA_"))}
    env.update({"REDIS_URL": redis_url, "DATABASE_URL": db_url, "PANORAMA_AUTO_MIGRATE": "0",
                "PANORAMA_SECRET_KEY": SECRET, "PANORAMA_SIMULATE": "0", "PANORAMA_FEED_PREFIX": PREFIX,
                "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in extra.items()}})
    return env


def tree_memory(pid: int, kind: str = "rss") -> int | None:
    """``kind`` memory (``rss`` or ``pss``) of a process and all its children (gunicorn's workers, Chromium's
    renderers), bytes.

    PSS is the judged figure for the wall's browser: each shared page counted once across the tree. RSS summed
    over Chromium's processes counts the shared libraries and the shared-memory segments between renderer, GPU
    and browser once per process, and a process's RSS rises whenever it touches more of them: steps of tens of
    MiB that are not memory the machine lost.
    """
    procs = process_tree(pid)
    if procs is None:
        return None
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss if kind == "rss" else p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def process_tree(pid: int) -> list | None:
    """Return a process and all its descendants (None when it is gone)."""
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return None


def smaps_pss(text: str) -> dict[str, int]:
    """``/proc/<pid>/smaps_rollup`` -> its Pss_* lines in bytes (Pss, Pss_Anon, Pss_File, Pss_Shmem, ...)."""
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key.startswith("Pss") and rest.strip().endswith("kB"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def tree_pss_own(pid: int) -> int | None:
    """PSS of a process tree without its file-backed pages (Pss_Anon + Pss_Shmem), bytes.

    The file-backed part (Chromium's binary and libraries, ~140 MiB for the wall's tree) is divided among every
    process on the machine that maps the same file: another engineer's Chromium starting or ending moves the
    tree's PSS by tens of MiB though the wall allocated nothing. This is the judged figure.
    """
    procs = process_tree(pid)
    if procs is None:
        return None
    total = 0
    for p in procs:
        try:
            pss = smaps_pss(Path(f"/proc/{p.pid}/smaps_rollup").read_text())
        except OSError:
            continue
        total += pss.get("Pss_Anon", 0) + pss.get("Pss_Shmem", 0)
    return total


def chromium_by_type(root: int) -> dict[str, int]:
    """Chromium's RSS and USS by process type (browser, renderer, gpu-process, utility...): where growth comes
    from."""
    out: dict[str, int] = {}
    try:
        procs = psutil.Process(root).children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for p in procs:
        try:
            args = p.cmdline()
            if not args or "chrom" not in args[0]:
                continue
            kind = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), "browser")
            out[f"chromium {kind}"] = out.get(f"chromium {kind}", 0) + p.memory_info().rss
            # USS: what only this process holds. Shared-memory segments between renderer and GPU process move
            # RSS and PSS in steps of tens of MiB; USS leaves them out, so the renderer's own growth shows.
            out[f"chromium {kind} (USS)"] = out.get(f"chromium {kind} (USS)", 0) + p.memory_full_info().uss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


def postgres_uss(db_name: str) -> int:
    """Unique memory (USS) of the PostgreSQL backends serving the soak's database.

    Not RSS: a backend's RSS grows with every page of shared buffers it touches, up to shared_buffers,
    which looks like a leak and is not one.
    """
    total = 0
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if p.info["name"] == "postgres" and any(db_name in part for part in p.info["cmdline"] or ()):
                total += p.memory_full_info().uss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


class Publisher(threading.Thread):
    """XADD ``rate`` events/s as ``per_message``-event entries, paced by the clock, never bursting to catch up."""

    def __init__(self, redis_url: str, rate: int, per_message: int, seed: int):
        super().__init__(name="publisher", daemon=True)
        from bench.ingest import generate_messages

        self.client = redis.Redis.from_url(redis_url)
        self.interval = per_message / rate
        self.messages = generate_messages(10**10, per_message, seed, 3600, mix="city")
        self.events = 0
        self.late = 0
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        from feeds.publish import encode, send_raw

        try:
            due = time.monotonic()
            while not self.stop_event.is_set():
                wait = due - time.monotonic()
                if wait > 0:
                    self.stop_event.wait(wait)
                    continue
                if wait < -1:  # a long stall: do not burst, start again from now
                    self.late += 1
                    due = time.monotonic()
                domain, evs = next(self.messages)
                evs = evs if isinstance(evs, list) else [evs]
                now = time.time_ns() // 1_000_000
                for e in evs:
                    e["ts"] = now
                # No MAXLEN: trimming is done by trim_acknowledged(), below what the group has acknowledged.
                send_raw(self.client, domain, encode(evs), "stream", PREFIX, maxlen=None)
                self.events += len(evs)
                due += self.interval
        except BaseException as err:  # noqa: BLE001 - reported
            self.error = err

    def finish(self) -> None:
        self.stop_event.set()
        self.join(10)


def log_warnings(text: str, keep: int = 40) -> list[str]:
    """Return a log's WARNING and ERROR records, each with the lines that follow it (its traceback: an error's
    log line alone does not say what failed), at most ``keep`` lines each."""
    out: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if " WARNING " in line or " ERROR " in line:
            rest = []
            for more in lines[i + 1:i + keep]:
                if more[:4].isdigit() and more[4:5] == "-":  # the next record (its date)
                    break
                rest.append(more)
            out.append("\n".join([line, *rest]))
    return out


def trim_acknowledged(client: redis.Redis) -> int:
    """Drop stream entries every group has acknowledged (ingest does it too); return the entries left."""
    left = 0
    for stream in feed_names(PREFIX):
        try:
            trim_stream(client, stream)
        except redis.ResponseError:
            continue
        left += client.xlen(stream)
    return left


def backlog(client: redis.Redis) -> tuple[int, int]:
    """(entries read but not acknowledged, entries not yet delivered) over the soak's streams."""
    pending = lag = 0
    for stream in feed_names(PREFIX):
        try:
            pending += client.xpending(stream, INGEST_GROUP)["pending"]
            for g in client.xinfo_groups(stream):
                if g["name"] in (INGEST_GROUP, INGEST_GROUP.encode()):
                    lag += g.get("lag") or 0
        except redis.ResponseError:
            pass
    return pending, lag


def stored_events(engine) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM events")).scalar_one()


def delete_keys(client: redis.Redis) -> None:
    keys = list(client.scan_iter(match=f"{PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)


def start_browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in CHROME_ARGS:
        opts.add_argument(a)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument("--window-size=1920,1080")
    opts.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(180)  # /wall on a loaded 2-core machine
    return driver


# What the page holds that could grow, read after a forced GC: elements in the document, Dash's undo history,
# canvases, the map's tiles and its one-shot listeners (maplibre, inside Plotly's map subplot).
PAGE_PROBE = """
const st = window.store && window.store.getState && window.store.getState();
const h = st && st.history;
let tiles = null;
let mapListeners = null;
try {
  const once = document.querySelector('#city-map .js-plotly-plot')._fullLayout.map._subplot.map._oneTimeListeners;
  mapListeners = Object.values(once).reduce((n, l) => n + l.length, 0);
} catch (e) { /* no map */ }
try {
  const m = document.getElementById('city-map')._fullLayout.map._subplot.map;
  const caches = m.style.tileManagers || m.style.sourceCaches || {};
  tiles = Object.values(caches).reduce((n, c) => n + Object.keys(c._tiles || {}).length
      + ((c._cache && c._cache.order) ? c._cache.order.length : 0), 0);
} catch (e) { /* no map, or another maplibre */ }
let all = 0;
const it = document.createNodeIterator(document, NodeFilter.SHOW_ALL);
while (it.nextNode()) { all += 1; }
const keys = (o) => (o ? Object.keys(o).length : null);
// objects and array slots reachable from each part of Dash's store: a part that keeps a record grows
const reach = (root) => {
  const seen = new Set();
  const todo = [root];
  let n = 0;
  while (todo.length && n < 2e6) {
    const o = todo.pop();
    if (o === null || typeof o !== 'object' || seen.has(o)) { continue; }
    seen.add(o);
    n += 1;
    for (const k in o) { try { todo.push(o[k]); } catch (e) { /* getter */ } }
  }
  return n;
};
const store_parts = {};
if (st) { for (const k of Object.keys(st)) { store_parts[k] = reach(st[k]); } }
return {dom_nodes: document.getElementsByTagName('*').length, doc_nodes: all,
        layout_hashes: st ? keys(st.layoutHashes) : null,
        path_ids: st && st.paths ? keys(st.paths.strs) + Object.values(st.paths.objs || {}).reduce((n, v) => n + v.length, 0) : null,
        perf_entries: performance.getEntries().length, store_parts: store_parts,
        history: h ? (h.past || []).length + (h.future || []).length : null,
        canvases: document.getElementsByTagName('canvas').length, map_tiles: tiles, map_listeners: mapListeners};
"""
# Performance.getMetrics gauges worth a slope (counters such as LayoutCount only ever grow).
CDP_GAUGES = ("JSHeapUsedSize", "Nodes", "JSEventListeners", "Documents", "Frames", "LayoutObjects")


def js_heap(driver) -> dict | None:
    """The page's live JS heap after a forced GC (what a leak would grow), bytes; with CDP's gauges and
    the page's own counts. ``Nodes`` (CDP) counts every DOM node V8 still holds, detached ones included;
    ``doc_nodes`` those in the document (``dom_nodes`` its elements): a gap that grows is nodes leaked out of it."""
    try:
        driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
        usage = driver.execute_cdp_cmd("Runtime.getHeapUsage", {})
        metrics = {m["name"]: m["value"] for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
        out = {"used": usage["usedSize"], "total": usage["totalSize"]}
        out.update({k: metrics.get(k) for k in CDP_GAUGES})
        out.update(driver.execute_script(PAGE_PROBE))
        from bench.heap import worker_heaps

        try:
            workers = worker_heaps(driver)
            out["workers"], out["worker_heap"] = len(workers), sum(workers)
        except Exception:  # noqa: BLE001 - the page's own figures stand without them
            pass
        return out
    except Exception:  # noqa: BLE001 - a sample missed is reported as None
        return None


def page_errors(driver) -> list[str]:
    """The page's console errors, where the driver keeps them."""
    try:
        return [e.get("message", "")[:300] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    except Exception:  # noqa: BLE001 - a nicety
        return []


def summarise(samples: list[dict], warmup: float) -> dict:
    """Per process: first, last, peak MiB and the slope after the warm-up (per hour, per day, 95 % CI)."""
    if not samples:
        return {}
    t_end = samples[-1]["t"]
    names = sorted({k for s in samples for k in s["rss"]})
    out = {}
    for name in names:
        pts = [(s["t"], s["rss"][name]) for s in samples if s["rss"].get(name) is not None]
        if not pts:
            continue
        steady = [p for p in pts if p[0] >= warmup * t_end]
        out[name] = {"first_mib": round(pts[0][1] / 2**20, 1), "last_mib": round(pts[-1][1] / 2**20, 1),
                     "peak_mib": round(max(y for _, y in pts) / 2**20, 1), "slope": mib_fit(steady)}
    return out


def page_slopes(samples: list[dict], warmup: float) -> dict:
    """The page's heap (MiB, as processes) and its counts (per hour and per day, 95 % CI) after the warm-up."""
    rows = [(s["t"], s["js_heap"]) for s in samples if s.get("js_heap")]
    if not rows:
        return {}
    t_end = samples[-1]["t"]
    out: dict = {}
    for key in ("used", "JSHeapUsedSize", "worker_heap", "workers", "Nodes", "doc_nodes", "dom_nodes", "JSEventListeners", "Documents", "LayoutObjects",
                "history", "layout_hashes", "path_ids", "perf_entries", "canvases", "map_tiles", "map_listeners"):
        pts = [(t, h[key]) for t, h in rows if h.get(key) is not None]
        if not pts:
            continue
        steady = [p for p in pts if p[0] >= warmup * t_end]
        entry = {"first": pts[0][1], "last": pts[-1][1], "peak": max(y for _, y in pts)}
        if key in ("used", "JSHeapUsedSize", "worker_heap"):
            entry = {k: round(v / 2**20, 2) for k, v in entry.items()}
            entry["slope"] = mib_fit(steady)
        else:
            f = fit(steady, DAY_S)
            entry["slope"] = None if f is None else {
                "per_h": round(f["slope"] / 24, 1), "per_day": round(f["slope"]),
                "ci95_per_day": [round(f["lo"]), round(f["hi"])], "n": f["n"], "n_eff": f["n_eff"]}
        out[key] = entry
    return out


def run(args) -> dict:
    from bench.ingest import drop_database, recreate_database
    from dashboard.storage.db import make_engine

    res: dict = {"config": {k: v for k, v in vars(args).items() if k != "output"}, "errors": [], "samples": []}
    bus = redis.Redis.from_url(args.redis_url)
    delete_keys(bus)
    say(f"recreating database {args.db_name}")
    db_url = recreate_database(args.pg_url, args.db_name)
    engine = make_engine(db_url)
    gw_port, app_port = free_port(), free_port()
    env = service_env(args.redis_url, db_url, PANORAMA_WS_PORT=gw_port,
                      PANORAMA_WS_URL=f"ws://127.0.0.1:{gw_port}/",
                      PANORAMA_WS_ORIGINS=f"http://127.0.0.1:{app_port}")
    publisher = driver = heap_session = None
    chrome_root: int | None = None
    with tempfile.TemporaryDirectory(prefix="panorama-soak-") as tmp:
        procs = Processes(Path(tmp))
        try:
            for i in range(args.workers):
                procs.start(f"ingest{i}", [sys.executable, "-c", INGEST_SHIM, UPDATES, "--transport", "stream",
                                           "--consumer", f"soak-{i}"], env)
            procs.start("gateway", [sys.executable, "-m", "dashboard.gateway", "--channel", UPDATES], env)
            procs.start("app", [str(Path(sys.executable).with_name("gunicorn")), "-w", "2", "--threads", "4",
                                "-b", f"127.0.0.1:{app_port}", "app:server"], env)
            origin = f"http://127.0.0.1:{app_port}"
            _wait_http(origin + "/api/health", procs, timeout=180)  # gunicorn on a loaded 2-core machine
            say("app up; starting the publisher and Chromium on /wall")
            publisher = Publisher(args.redis_url, args.rate, args.per_message, args.seed)
            publisher.start()
            if not args.no_browser:
                from bench.latency import page_access

                access = page_access(db_url, "/wall")
                driver = start_browser(Path(tmp) / "profile")
                chrome_root = driver.service.process.pid
                driver.get(origin + "/wall" + access.get("query", ""))
                driver.execute_cdp_cmd("Performance.enable", {})
            # The clock: sampling starts here, the page loaded (driver.get returned) and the publisher running,
            # and stops when publishing stops, --minutes later. The first --warmup of it is left out of slopes.
            started = time.monotonic()
            snapshots_due = sorted(args.heap_snapshots) if driver is not None else []
            next_dump = args.memory_dumps * 60 if driver is not None and args.memory_dumps > 0 else None
            end = started + args.minutes * 60
            next_sample = started
            while time.monotonic() < end:
                if publisher.error:
                    raise RuntimeError(f"publisher: {publisher.error!r}")
                dead = procs.dead()
                if dead:
                    raise RuntimeError(f"{dead} exited:\n" + "\n".join(procs.tail(n, 2000) for n in dead))
                if time.monotonic() >= next_sample:
                    res["samples"].append(sample(started, procs, chrome_root, driver, bus, engine, publisher, args))
                    s = res["samples"][-1]
                    say(f"published {s['published']:,} stored {s['stored']:,} pending {s['pending']} "
                        f"undelivered {s['undelivered']} | " + " ".join(
                            f"{k} {v / 2**20:.0f}M" for k, v in s["rss"].items() if v)
                        + (f" | heap {s['js_heap']['used'] / 2**20:.1f}M nodes {s['js_heap'].get('Nodes')} "
                           f"doc {s['js_heap'].get('doc_nodes')} listeners {s['js_heap'].get('JSEventListeners')} "
                           f"workers {s['js_heap'].get('workers')} {(s['js_heap'].get('worker_heap') or 0) / 2**20:.1f}M"
                           if s.get("js_heap") else ""))
                    next_sample += args.sample_s
                if snapshots_due and time.monotonic() - started >= snapshots_due[0] * 60:
                    snapshots_due.pop(0)
                    heap_session = heap_session or open_heap_session(driver)
                    res.setdefault("heap_snapshots", []).append(snapshot(heap_session, started))
                if next_dump is not None and time.monotonic() - started >= next_dump:
                    res.setdefault("memory_dumps", []).append(memory_dump(driver, chrome_root, started))
                    next_dump += args.memory_dumps * 60
                time.sleep(min(1.0, max(0.0, next_sample - time.monotonic())))
            # Snapshots due at or after the end are taken here, after the last sample and with the feed still
            # running: a snapshot lifts the renderer's memory, and this way none of the judged samples carries it.
            for _ in snapshots_due:
                heap_session = heap_session or open_heap_session(driver)
                res.setdefault("heap_snapshots", []).append(snapshot(heap_session, started))
            publisher.finish()
            res["published"] = publisher.events
            res["publisher_stalls"] = publisher.late
            say(f"published {publisher.events:,} events; waiting for ingest to drain")
            deadline = time.monotonic() + args.drain_s
            while time.monotonic() < deadline:
                if stored_events(engine) >= publisher.events and backlog(bus) == (0, 0):
                    break
                time.sleep(0.5)
            res["drain_s"] = round(time.monotonic() - (deadline - args.drain_s), 1)
            res["stored"] = stored_events(engine)
            res["pending"], res["undelivered"] = backlog(bus)
            res["lost"] = res["published"] - res["stored"]
            if driver is not None:
                res["page_errors"] = page_errors(driver)
                res["wall_banner"] = driver.execute_script(
                    "const b = document.getElementById('alert-banner'); return b ? b.textContent : null")
                res["wall_indicator"] = driver.execute_script(
                    "const b = document.getElementById('live-indicator'); return b ? b.className : null")
            res["ingest_warnings"] = [w for i in range(args.workers)
                                      for w in log_warnings(procs.tail(f"ingest{i}", 10**6))][:20]
        except Exception as err:  # noqa: BLE001 - reported
            res["errors"].append(repr(err))
        finally:
            if publisher is not None and publisher.is_alive():
                publisher.finish()
            if heap_session is not None:
                heap_session.__exit__(None, None, None)
            if driver is not None:
                quit_browser(driver)
            procs.stop_all()
            engine.dispose()
            delete_keys(bus)
            bus.close()
            if not args.keep_db:
                drop_database(args.pg_url, args.db_name)
    res["memory"] = summarise(res["samples"], args.warmup)
    res["page"] = page_slopes(res["samples"], args.warmup)
    if res.get("memory_dumps") and res["samples"]:
        from bench.memdump import summarise as by_allocator

        res["memory_infra"] = by_allocator(res["memory_dumps"], args.warmup * res["samples"][-1]["t"])
    if BROWSER in res["memory"]:
        res["browser_verdict"] = judge(res["memory"][BROWSER]["slope"], args.budget)
    snaps = res.get("heap_snapshots") or []
    if len(snaps) >= 2:
        from bench.heap import growth

        res["heap_growth"] = {"from_min": snaps[0]["t_min"], "to_min": snaps[-1]["t_min"],
                              "rows": growth(snaps[0]["summary"], snaps[-1]["summary"])}
    for s in snaps:  # the full tables are large; the JSON keeps the top of each
        s["summary"]["by_constructor"] = dict(sorted(s["summary"]["by_constructor"].items(),
                                                     key=lambda kv: kv[1][1], reverse=True)[:200])
    return res


def open_heap_session(driver):
    """A CDP session for heap snapshots, opened at the first one (opening it earlier would cost the page nothing
    measurable, but a run without snapshots should not carry it)."""
    from bench.heap import HeapSession

    return HeapSession(driver).__enter__()


def snapshot(session, started: float) -> dict:
    """A heap snapshot of the page, summarised by constructor (it costs the renderer memory while it runs)."""
    from bench.heap import summarise as by_constructor

    t = time.monotonic() - started
    try:
        summary = by_constructor(session.snapshot())
    except Exception as err:  # noqa: BLE001 - a snapshot missed is reported
        say(f"heap snapshot at {t / 60:.1f} min failed: {err!r}")
        return {"t_min": round(t / 60, 1), "summary": {"by_constructor": {}, "error": repr(err)}}
    say(f"heap snapshot at {t / 60:.1f} min: {summary['objects']:,} objects, {summary['total_bytes'] / 2**20:.1f} MiB, "
        f"{summary['detached']} detached DOM objects")
    return {"t_min": round(t / 60, 1), "summary": summary}


def renice_renderers(chrome_root: int) -> None:
    """Give Chromium's renderers this process's priority, for a dump: Chromium sets a page's renderer to nice 0
    (and resets it), and on a loaded machine a renderer at nice 0 misses the dump's per-process timeout."""
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    for p in process_tree(chrome_root) or []:
        try:
            if "--type=renderer" in p.cmdline() and p.nice() > mine:
                p.nice(mine)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def memory_dump(driver, chrome_root: int, started: float) -> dict:
    """A memory-infra dump of the wall's Chromium, by process type and allocator, beside each type's USS."""
    from bench import memdump

    t0 = time.monotonic()
    out: dict = {"t": round(t0 - started, 1)}
    try:
        # A process that does not answer within Chromium's timeout (a loaded machine) fails the dump: up to
        # three tries for a complete one, else the last, with the processes that did answer.
        for attempt in range(1, 4):
            renice_renderers(chrome_root)
            events, out["complete"] = memdump.take(memdump.browser_socket(driver))
            out["attempts"] = attempt
            if out["complete"]:
                break
        procs = memdump.parse(events)
        out["types"] = memdump.by_type(procs)
        # which process answered (a busy wall renderer may not): pid -> type, footprint, allocators' sum
        out["by_pid"] = {str(pid): {"type": p["type"], "private_footprint": p["private_footprint"],
                                    "allocated": sum(a["effective"] for a in p["allocators"].values())}
                         for pid, p in procs.items()}
    except Exception as err:  # noqa: BLE001 - a dump missed is reported, the run goes on
        out["error"] = repr(err)
        say(f"memory dump at {out['t'] / 60:.1f} min failed: {err!r}")
        return out
    out["took_s"] = round(time.monotonic() - t0, 1)
    out["uss"] = {k: v for k, v in chromium_by_type(chrome_root).items() if k.endswith("(USS)")}
    r = out["types"].get("renderer", {})
    top = sorted(r.get("allocators", {}).items(), key=lambda kv: kv[1], reverse=True)[:6]
    say(f"memory dump at {out['t'] / 60:.1f} min ({out['took_s']} s{'' if out['complete'] else ', incomplete'}): "
        f"{'+'.join(sorted(out['types']))}; renderers answered {r.get('answered')} of {r.get('processes')}, "
        f"private footprint "
        f"{r.get('private_footprint', 0) / 2**20:.0f}M, allocators " + " ".join(f"{k} {v / 2**20:.1f}M" for k, v in top))
    return out


def sample(started: float, procs: Processes, chrome_root, driver, bus, engine, publisher, args) -> dict:
    rss = {name: tree_memory(p.pid) for name, p in procs.procs.items()}
    if chrome_root is not None:
        rss["chromium"] = tree_memory(chrome_root)
        rss[BROWSER] = tree_memory(chrome_root, "pss")
        rss["chromium (PSS anon+shmem)"] = tree_pss_own(chrome_root)
        rss.update(chromium_by_type(chrome_root))
    try:
        rss["redis (shared)"] = tree_memory(int(bus.info("server")["process_id"]))
    except (redis.RedisError, KeyError):
        pass
    rss["postgres (USS)"] = postgres_uss(args.db_name)
    left = trim_acknowledged(bus)
    pending, undelivered = backlog(bus)
    out = {"t": round(time.monotonic() - started, 1), "published": publisher.events, "stored": stored_events(engine),
           "pending": pending, "undelivered": undelivered, "stream_entries": left, "rss": rss}
    if driver is not None:
        out["js_heap"] = js_heap(driver)
    return out


def _wait_http(url: str, procs: Processes, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status in (200, 503):
                    return
        except OSError:
            pass
        dead = procs.dead()
        if dead:
            raise RuntimeError(f"{dead} exited:\n" + "\n".join(procs.tail(n, 2000) for n in dead))
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def print_report(res: dict, file=sys.stdout) -> None:
    cfg = res["config"]
    p = lambda *a: print(*a, file=file)  # noqa: E731
    p(f"\nSoak: {cfg['minutes']} min at {cfg['rate']:,} events/s ({cfg['per_message']} per stream entry), "
      f"{cfg['workers']} ingest workers, 1 gateway, gunicorn -w 2, "
      f"{'no browser' if cfg['no_browser'] else '/wall in Chromium'}")
    if res.get("published") is not None:
        p(f"events: published {res['published']:,}, stored {res.get('stored', 0):,}, lost {res.get('lost')}, "
          f"pending {res.get('pending')}, undelivered {res.get('undelivered')} (drained {res.get('drain_s')} s after "
          f"the publisher stopped; publisher stalls > 1 s: {res.get('publisher_stalls')})")
    p(f"\nmemory after the first {cfg['warmup']:.0%} of the run (least squares; 95 % CI widened for autocorrelation)")
    p(f"{'process':<24} {'first MiB':>10} {'last MiB':>10} {'peak MiB':>10} {'MiB/h':>8} {'MiB/day':>9} "
      f"{'95 % CI MiB/day':>18} {'n (eff)':>10}")
    for name, m in res.get("memory", {}).items():
        f = m["slope"] or {}
        ci = f.get("ci95_mib_per_day")
        p(f"{name:<24} {m['first_mib']:>10} {m['last_mib']:>10} {m['peak_mib']:>10} {str(f.get('mib_per_h')):>8} "
          f"{str(f.get('mib_per_day')):>9} {(f'{ci[0]} .. {ci[1]}' if ci else '-'):>18} "
          f"{(str(f.get('n')) + ' (' + str(f.get('n_eff')) + ')') if f else '-':>10}")
    page = res.get("page") or {}
    if page:
        p("\npage (after a forced GC)")
        for key, e in page.items():
            f = e["slope"] or {}
            if key in ("used", "JSHeapUsedSize", "worker_heap"):
                ci = f.get("ci95_mib_per_day")
                label = {"used": "JS heap MiB", "JSHeapUsedSize": "JSHeapUsedSize MiB", "worker_heap": "workers' heaps MiB"}[key]
                p(f"  {label:<22} {e['first']:>8} -> {e['last']:<8} "
                  f"peak {e['peak']:<8} {f.get('mib_per_h')} MiB/h, {f.get('mib_per_day')} MiB/day, 95 % CI "
                  f"{ci[0] if ci else '-'} .. {ci[1] if ci else '-'}")
            else:
                ci = f.get("ci95_per_day")
                p(f"  {key:<22} {e['first']:>8} -> {e['last']:<8} peak {e['peak']:<8} {f.get('per_h')}/h, "
                  f"{f.get('per_day')}/day, 95 % CI {ci[0] if ci else '-'} .. {ci[1] if ci else '-'}")
    if "browser_verdict" in res:
        f = res["memory"][BROWSER]["slope"] or {}
        p(f"\nwall browser (whole Chromium tree, PSS): {f.get('mib_per_day')} MiB/day, 95 % CI up to "
          f"{(f.get('ci95_mib_per_day') or [None, None])[1]} MiB/day against a budget of {cfg['budget']:.0f} MiB/day: "
          f"{res['browser_verdict'].upper()}"
          + (" (the CI straddles the budget: run longer)" if res["browser_verdict"] == "undecided" else ""))
    if res.get("heap_growth"):
        g = res["heap_growth"]
        p(f"\nheap growth between the snapshots at {g['from_min']} and {g['to_min']} min (by constructor, top rows)")
        for r in g["rows"][:15]:
            p(f"  {r['name'][:60]:<60} {r['d_count']:>+9,} objects {r['d_bytes'] / 1024:>+10.1f} KiB "
              f"(now {r['count']:,}, {r['bytes'] / 1024:.0f} KiB)")
    print_memory_infra(res, p)
    if res.get("samples"):
        last = res["samples"][-1]
        p(f"\nstream entries left after trimming (last sample): {last['stream_entries']}; samples taken "
          f"{len(res['samples'])}, page samples missed {sum(1 for s in res['samples'] if 'js_heap' in s and not s['js_heap'])}")
    if "wall_indicator" in res:
        p(f"wall at the end: indicator {res['wall_indicator']!r}, banner {res['wall_banner']!r}, "
          f"page errors {len(res.get('page_errors') or [])}")
    for w in res.get("ingest_warnings") or []:
        p(f"ingest: {w}")
    for e in res["errors"]:
        p(f"ERROR: {e}")


def print_memory_infra(res: dict, p) -> None:
    """Each Chromium process type's allocators (memory-infra, effective sizes) and their slopes."""
    infra = res.get("memory_infra") or {}
    if not infra:
        return
    dumps = res.get("memory_dumps") or []
    p(f"\nChromium by allocator (memory-infra dumps: {sum(1 for d in dumps if d.get('types'))} taken, "
      f"{sum(1 for d in dumps if d.get('error'))} failed, {sum(1 for d in dumps if d.get('complete'))} complete; "
      f"a type's series keeps the dumps in which all its processes answered; effective sizes; slopes after the "
      f"warm-up)")
    for kind in sorted(infra, key=lambda k: (k != "renderer", k)):
        rows = sorted(infra[kind].items(), key=lambda kv: (kv[0] not in ("private_footprint", "allocated"),
                                                           -kv[1]["last_mib"]))
        p(f"  {kind}")
        for name, m in rows:
            if m["peak_mib"] < 0.5:
                continue
            f = m["slope"] or {}
            ci = f.get("ci95_mib_per_day")
            p(f"    {name:<22} {m['first_mib']:>8} -> {m['last_mib']:<8} peak {m['peak_mib']:<8} "
              f"{f.get('mib_per_day')} MiB/day, 95 % CI {ci[0] if ci else '-'} .. {ci[1] if ci else '-'}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30, help="how long to publish (default 30)")
    ap.add_argument("--rate", type=int, default=2000, help="events per second (default 2000)")
    ap.add_argument("--per-message", type=int, default=20, help="events per stream entry (default 20)")
    ap.add_argument("--workers", type=int, default=2, help="ingest worker processes (default 2)")
    ap.add_argument("--sample-s", type=float, default=10, help="seconds between samples (default 10)")
    ap.add_argument("--warmup", type=float, default=0.2,
                    help="fraction of the run left out of the slopes (start-up, caches filling; default 0.2)")
    ap.add_argument("--drain-s", type=float, default=120, help="seconds to wait for ingest to drain at the end")
    ap.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"Redis to use (default {DEFAULT_REDIS_URL})")
    ap.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server (its maintenance database)")
    ap.add_argument("--db-name", default=DEFAULT_DB, help=f"database to recreate (default {DEFAULT_DB})")
    ap.add_argument("--keep-db", action="store_true", help="keep the database at the end")
    ap.add_argument("--no-browser", action="store_true", help="no Chromium")
    ap.add_argument("--budget", type=float, default=BROWSER_BUDGET_MIB_PER_DAY,
                    help="MiB a day the wall's browser may grow, judged on the CI's upper bound (default 50)")
    ap.add_argument("--heap-snapshots", type=lambda v: [float(x) for x in v.split(",") if x], default=[],
                    help="minutes into the run at which to take a heap snapshot of the page, e.g. 3,13; the "
                         "report compares the first and last by constructor (a snapshot lifts the renderer's RSS, "
                         "so one due at or after --minutes is taken after the last sample)")
    ap.add_argument("--memory-dumps", type=float, default=0,
                    help="minutes between Chromium memory-infra dumps (each process's memory by allocator); "
                         "0, the default, takes none (a dump costs the processes a little memory)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--output", help="write every sample and figure as JSON to this file")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res = run(args)
    print_report(res)
    if args.output:
        Path(args.output).write_text(json.dumps(res, indent=1, ensure_ascii=False))
    if res["errors"]:
        return 2
    if res.get("lost"):
        return 1
    return 3 if res.get("browser_verdict") == "exceeds" else 0


if __name__ == "__main__":
    raise SystemExit(main())
