"""Benchmark the websocket fan-out against polling: 1,000 browsers watching a city of 1,000 events/s.

Run ``PYTHONPATH=. .venv/bin/python -m bench.fanout`` (see ``--help``). It

1. recreates its own PostgreSQL database (``panorama_fanout_bench``) and migrates it;
2. **push**: starts ``python -m dashboard.gateway`` on it (real Redis, deltas on a channel of the bench's own),
   connects N websocket clients from another process and runs a publisher: every 1/10 s it stores
   ``--per-delta`` events (``--rate`` events/s in all) through the real ``Pipeline`` into PostgreSQL, then
   publishes that batch's ingest delta with every event's ``ts`` set to the publish time. Over ``--seconds`` it
   measures the delivery lag (receive time - ts) of the events the clients receive, frames/s per client, the
   gateway's CPU, and its RSS before and after the clients connect;
3. **poll** (the baseline): the same N clients poll ``GET /api/summary?live=1`` once a second from the app
   under gunicorn while the same publisher runs; lag = answer time - ts of the newest event in the answer (the
   stored ts: the moment before the write, so this lag also holds the SQL write, ``flush`` in the table);
4. prints a table. Targets are reported, never asserted; the exit status is non-zero only on errors.

Every process shares the machine's CPUs (2 on the reference machine): the gateway or gunicorn, the client
process, the publisher, PostgreSQL and Redis. The lags include the clients' own queueing on a busy CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from time import perf_counter

import orjson
import psutil

from bench.ingest import (DEFAULT_PG_URL, connect_redis, cpu_delta, drop_database, generate_events,
                          recreate_database, say, server_cpu)
from dashboard.city import load_city
from dashboard.db import make_engine
from dashboard.users import create_kiosk_token
from dashboard.store import EventStore
from feeds.channels import feed_name
from feeds.pipeline import Batch, Pipeline, encode_delta

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
DEFAULT_DB = "panorama_fanout_bench"
BENCH_CHANNEL = "bench:fanout:updates"  # pub/sub is shared by every db: never flood real gateways
STORED_CHANNEL = "bench:fanout:stored"  # where the pipeline's own deltas go (nobody listens)
TARGET_P99_MS = 250
MAX_LAG_MS = 60_000  # histogram range; longer lags are counted in the last bucket


# --------------------------------------------------------------------------- helpers


def raise_nofile() -> int:
    """Raise the open-files limit to its hard maximum (1,000 sockets and more); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


def percentile(hist: list[int], q: float) -> float | None:
    total = sum(hist)
    if not total:
        return None
    rank, seen = q * total, 0
    for ms, n in enumerate(hist):
        seen += n
        if seen >= rank:
            return float(ms)
    return float(len(hist) - 1)


def tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process and its children (gunicorn's workers)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _own_cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


BENCH_SECRET = "bench"  # PANORAMA_SECRET_KEY of every process a benchmark starts


def with_ticket(url: str) -> str:
    """Return the gateway ``url`` with a fresh socket ticket where the tree's gateway asks for one (a minute's)."""
    try:
        from dashboard.auth import issue_ticket
    except ImportError:
        return url
    return f"{url}{'&' if '?' in url else '?'}ticket={issue_ticket(BENCH_SECRET, {'u': 0})}"


def service_env(redis_url: str, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL", "PANORAMA_"))}
    env.update({"REDIS_URL": redis_url, "DATABASE_URL": db_url, "PANORAMA_AUTO_MIGRATE": "0",
                "PANORAMA_SECRET_KEY": BENCH_SECRET, "PANORAMA_SIMULATE": "0", "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1", **extra})
    return env


# --------------------------------------------------------------------------- the publisher


class Publisher(threading.Thread):
    """Store ``rate`` events/s through the real pipeline, ``per_delta`` per batch; each flush publishes a delta."""

    def __init__(self, redis_url: str, db_url: str, rate: int, per_delta: int, seed: int):
        super().__init__(name="publisher", daemon=True)
        self.engine = make_engine(db_url)
        self.pipeline = Pipeline(EventStore(self.engine), load_city("shenzhen").aliases)
        # The pipeline's own delta goes nowhere; the one the gateway gets is re-stamped after the write.
        self.bus = connect_redis(redis_url, updates_channel=STORED_CHANNEL)
        self.interval = per_delta / rate
        self.per_delta = per_delta
        self.events = generate_events(10**9, seed, 3600, mix="city")
        self.stop_event = threading.Event()
        self.published = 0
        self.flush_s: list[float] = []
        self.behind = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        next_t = time.monotonic()
        try:
            while not self.stop_event.is_set():
                by_domain: dict[str, list[dict]] = {}
                ts = time.time_ns() // 1_000_000
                for _ in range(self.per_delta):
                    domain, ev = next(self.events)
                    ev["ts"] = ts
                    by_domain.setdefault(domain, []).append(ev)
                batch = Batch()
                t = perf_counter()
                for domain, evs in by_domain.items():
                    self.pipeline.add(batch, feed_name(domain), domain, orjson.dumps(evs), ts)
                result = self.pipeline.flush(batch, self.bus)
                self.flush_s.append(perf_counter() - t)
                at = time.time_ns() // 1_000_000
                delta = orjson.loads(encode_delta(result, at))
                for ev in delta["events"]:
                    ev["ts"] = at  # the publish time: the lag measured is the fan-out's alone
                self.bus.publish(BENCH_CHANNEL, orjson.dumps(delta))
                self.published += self.per_delta
                next_t += self.interval
                if next_t < time.monotonic():
                    self.behind += 1
                    next_t = time.monotonic()
                self.stop_event.wait(next_t - time.monotonic())
        except BaseException as err:  # noqa: BLE001 - reported in the results
            self.error = err

    def finish(self) -> dict:
        self.stop_event.set()
        self.join(10)
        self.bus.close()
        self.engine.dispose()
        flush = sorted(self.flush_s) or [0.0]
        return {"published": self.published, "flushes": len(self.flush_s), "behind": self.behind,
                "flush_ms_p50": flush[len(flush) // 2] * 1000, "flush_ms_p99": flush[int(len(flush) * 0.99)] * 1000,
                "error": repr(self.error) if self.error else None}


# --------------------------------------------------------------------------- the client processes


def run_clients(kind: str, target: str, n: int, conn, parse_every: int) -> None:
    """Entry point of the client process: N websocket clients (``push``) or N pollers (``poll``)."""
    raise_nofile()
    if kind == "push":
        asyncio.run(push_clients(target, n, conn, parse_every))
    else:
        asyncio.run(poll_clients(target, n, conn))


async def _window(conn, connected: int, errors: int) -> tuple[float, float]:
    conn.send({"connected": connected, "errors": errors})
    return await asyncio.to_thread(conn.recv)  # (start, end) in epoch seconds


async def push_clients(url: str, n: int, conn, parse_every: int) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    lag = [0] * (MAX_LAG_MS + 1)
    newest_lag = [0] * (MAX_LAG_MS + 1)
    screen_age = [0] * (MAX_LAG_MS + 1)  # age of the newest event shown, just before the next one replaces it
    newest_ts: list[int | None] = [None] * n
    frames = [0] * n
    events = [0] * n
    window = [float("inf"), float("inf")]
    gate = asyncio.Semaphore(50)  # the server's listen backlog is 100
    closed = errors = 0

    async def client(i: int, ready: asyncio.Event):
        nonlocal closed, errors
        try:
            async with gate:
                ws = await connect(with_ticket(url), compression=None, open_timeout=60, ping_interval=None,
                                   max_size=2**23)
        except Exception:  # noqa: BLE001 - refused or timed out: counted
            errors += 1
            ready.set()
            return
        ready.set()
        try:
            while True:
                raw = await ws.recv(decode=False)
                t = time.time()
                if window[0] <= t < window[1]:
                    frames[i] += 1
                    if i % parse_every:
                        continue  # read, not decoded: one process cannot decode what 1,000 browsers do
                    evs = orjson.loads(raw).get("events")
                    if evs:
                        now_ms = t * 1000
                        events[i] += len(evs)
                        newest_lag[min(MAX_LAG_MS, max(0, int(now_ms - evs[0]["ts"])))] += 1
                        if newest_ts[i] is not None:
                            screen_age[min(MAX_LAG_MS, max(0, int(now_ms - newest_ts[i])))] += 1
                        newest_ts[i] = evs[0]["ts"]
                        for e in evs:
                            lag[min(MAX_LAG_MS, max(0, int(now_ms - e["ts"])))] += 1
                elif t >= window[1]:
                    break
        except ConnectionClosed:
            closed += 1
        finally:
            ws.transport.abort()

    readies = [asyncio.Event() for _ in range(n)]
    tasks = [asyncio.create_task(client(i, readies[i])) for i in range(n)]
    for r in readies:
        await r.wait()
    window[:] = await _window(conn, n - errors, errors)
    await asyncio.sleep(max(0.0, window[1] - time.time() + 2))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    cpu = psutil.Process().cpu_times()
    conn.send({"lag": lag, "newest_lag": newest_lag, "screen_age": screen_age, "frames": frames, "closed": closed,
               "errors": errors,
               "events": [events[i] for i in range(0, n, parse_every)], "cpu_s": cpu.user + cpu.system})


async def poll_clients(target: str, n: int, conn) -> None:
    base, _, path = target.partition("/")  # host:port/path?query
    host, port = base.split(":")
    request = f"GET /{path} HTTP/1.1\r\nHost: {base}\r\nConnection: close\r\n\r\n".encode()
    lag = [0] * (MAX_LAG_MS + 1)
    latency = [0] * (MAX_LAG_MS + 1)
    screen_age = [0] * (MAX_LAG_MS + 1)
    answers = [0] * n
    window = [float("inf"), float("inf")]
    errors = 0

    async def poller(i: int, started: asyncio.Event):
        nonlocal errors
        await started.wait()
        await asyncio.sleep(random.random())  # browsers do not poll in lockstep
        next_t = time.monotonic()
        shown: int | None = None  # ts of the newest event on this client's screen
        while time.time() < window[1]:
            t0 = time.time()
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(request)
                data = await reader.read()
                writer.close()
                head, _, body = data.partition(b"\r\n\r\n")
                if b" 200 " not in head.split(b"\r\n", 1)[0]:
                    raise ValueError(head[:60])
                evs = orjson.loads(body)["live"]["events"]
            except (OSError, ValueError):
                errors += 1
                evs = None
            t1 = time.time()
            if evs and window[0] <= t1 < window[1]:
                answers[i] += 1
                newest = max(e["ts"] for e in evs)
                lag[min(MAX_LAG_MS, max(0, int(t1 * 1000 - newest)))] += 1
                latency[min(MAX_LAG_MS, int((t1 - t0) * 1000))] += 1
                if shown is not None:
                    screen_age[min(MAX_LAG_MS, max(0, int(t1 * 1000 - shown)))] += 1
            if evs:
                shown = max(e["ts"] for e in evs)
            next_t = max(next_t + 1.0, time.monotonic())
            await asyncio.sleep(next_t - time.monotonic())

    started = asyncio.Event()
    tasks = [asyncio.create_task(poller(i, started)) for i in range(n)]
    window[:] = await _window(conn, n, 0)
    started.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    cpu = psutil.Process().cpu_times()
    conn.send({"lag": lag, "latency": latency, "screen_age": screen_age, "frames": answers, "errors": errors,
               "closed": 0,
               "cpu_s": cpu.user + cpu.system})


def start_clients(kind: str, target: str, n: int, parse_every: int):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=run_clients, args=(kind, target, n, child, parse_every), name=f"{kind}-clients",
                       daemon=True)
    proc.start()
    return proc, parent


# --------------------------------------------------------------------------- the two phases


def measure(args, db_url: str, server: subprocess.Popen, kind: str, target: str, seed: int) -> dict:
    """Connect the clients, publish, and measure one phase against a running server process."""
    srv = psutil.Process(server.pid)
    rss_idle = tree_rss(srv)
    t = time.monotonic()
    clients, pipe = start_clients(kind, target, args.clients, args.parse_every)
    if not pipe.poll(120):
        raise RuntimeError(f"{kind} clients did not get ready")
    hello = pipe.recv()
    connect_s = time.monotonic() - t
    say(f"{kind}: {hello['connected']} clients ready in {connect_s:.1f} s ({hello['errors']} failed)")
    rss_connected = tree_rss(srv)
    publisher = Publisher(args.redis_url, db_url, args.rate, args.per_delta, seed)
    publisher.start()
    start = time.time() + args.warmup
    pipe.send((start, start + args.seconds))
    time.sleep(args.warmup)
    me, client_proc = psutil.Process(), psutil.Process(clients.pid)
    cpu0, sys0, client_cpu0, pub_cpu0 = tree_cpu(srv), server_cpu(args.db_name), tree_cpu(client_proc), _own_cpu(me)
    time.sleep(args.seconds)
    cpu1, sys1, client_cpu1, pub_cpu1 = tree_cpu(srv), server_cpu(args.db_name), tree_cpu(client_proc), _own_cpu(me)
    rss_end = tree_rss(srv)
    pub = publisher.finish()
    if not pipe.poll(60):
        raise RuntimeError(f"{kind} clients sent no results")
    res = pipe.recv()
    clients.join(10)
    others = cpu_delta(sys0, sys1)
    frames = sorted(res["frames"])
    return {"connected": hello["connected"], "connect_errors": hello["errors"], "connect_s": connect_s,
            "lag_ms": {q: percentile(res["lag"], q) for q in (0.5, 0.9, 0.99, 1.0)},
            "newest_lag_ms": ({q: percentile(res["newest_lag"], q) for q in (0.5, 0.99)}
                              if "newest_lag" in res else None),
            "latency_ms": ({q: percentile(res["latency"], q) for q in (0.5, 0.99)} if "latency" in res else None),
            "screen_age_ms": {q: percentile(res["screen_age"], q) for q in (0.5, 0.99)},
            "frames_per_client_s": {"min": frames[0] / args.seconds, "median": frames[len(frames) // 2] / args.seconds,
                                    "max": frames[-1] / args.seconds},
            "events_per_client_s": (sum(res["events"]) / len(res["events"]) / args.seconds
                                    if "events" in res else None),
            "server_cpu_cores": (cpu1 - cpu0) / args.seconds,
            "client_cpu_cores": (client_cpu1 - client_cpu0) / args.seconds,
            "pg_cpu_cores": (others.get("pg_bench", 0) + others.get("pg_aux", 0)) / args.seconds,
            "redis_cpu_cores": others.get("redis", 0) / args.seconds,
            "publisher_cpu_cores": (pub_cpu1 - pub_cpu0) / args.seconds,
            "machine_busy_cores": others.get("machine", 0) / args.seconds,
            "other_cpu_cores": max(0.0, others.get("machine", 0) - (cpu1 - cpu0) - (client_cpu1 - client_cpu0)
                                   - (pub_cpu1 - pub_cpu0) - sum(v for k, v in others.items() if k != "machine")
                                   ) / args.seconds,
            "rss_mib": {"idle": rss_idle / 2**20, "connected": rss_connected / 2**20, "end": rss_end / 2**20},
            # gunicorn's RSS grows with its workers, not with its clients: per client only for the gateway
            "kib_per_client": ({k: (v - rss_idle) / 1024 / max(1, hello["connected"])
                                for k, v in (("connected", rss_connected), ("end", rss_end))}
                               if kind == "push" else None),
            "closed": res["closed"], "errors": res["errors"], "publisher": pub}


def run_push(args, db_url: str, logs: Path) -> dict:
    port = free_port()
    log = (logs / "gateway.log").open("w")
    profile = ["-m", "cProfile", "-o", args.profile_gateway] if args.profile_gateway else []
    gateway = subprocess.Popen([sys.executable, *profile, "-m", "dashboard.gateway", "--port", str(port),
                                "--channel", BENCH_CHANNEL], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               env=service_env(args.redis_url, db_url, PANORAMA_WS_HOST="127.0.0.1"))
    try:
        wait_port(port, gateway, 60, "the gateway")
        res = measure(args, db_url, gateway, "push", f"ws://127.0.0.1:{port}/", args.seed)
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            res_exit = gateway.wait(20)
        except subprocess.TimeoutExpired:
            gateway.kill()
            res_exit = "killed"
    res["gateway_exit"] = res_exit
    return res


def run_poll(args, db_url: str, logs: Path) -> dict:
    port = free_port()
    log = (logs / "gunicorn.log").open("w")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    app = subprocess.Popen([str(gunicorn), "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "--backlog", "2048",
                            "app:server"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                           env=service_env(args.redis_url, db_url))
    try:
        wait_port(port, app, 60, "gunicorn")
        # The live part of the summary needs a viewer: the pollers show a kiosk token, as a wall would.
        engine = make_engine(db_url)
        try:
            _, token = create_kiosk_token(engine, "bench.fanout")
        finally:
            engine.dispose()
        target = f"127.0.0.1:{port}/api/summary?live=1&token={token}"
        return measure(args, db_url, app, "poll", target, args.seed + 1)
    finally:
        app.terminate()
        try:
            app.wait(20)
        except subprocess.TimeoutExpired:
            app.kill()


# --------------------------------------------------------------------------- report


def print_report(res: dict, file=sys.stdout) -> None:
    cfg = res["config"]
    phases = [(name, res[name]) for name in ("push", "poll") if name in res]
    print(f"\nFan-out: {cfg['clients']:,} clients, {cfg['rate']:,} events/s ({cfg['rate'] // cfg['per_delta']} "
          f"deltas/s x {cfg['per_delta']} events) for {cfg['seconds']:.0f} s, after {cfg['warmup']:.0f} s warm-up",
          file=file)
    print(f"CPUs: {cfg['cpus']} shared by the server (gateway or gunicorn), the client process, the publisher, "
          f"PostgreSQL and Redis;\nlags include the client process's own queueing on that CPU.", file=file)
    labels = {"push": "push (websocket gateway)", "poll": f"poll 1/s (gunicorn -w {cfg['workers']})"}
    print(f"\n  {'':<44}" + "".join(f"{labels[n]:>28}" for n, _ in phases), file=file)

    def row(label, fn):
        vals = []
        for _n, p in phases:
            try:
                v = fn(p)
            except (KeyError, TypeError, ZeroDivisionError):
                v = None
            vals.append("-" if v is None else v)
        print(f"  {label:<44}" + "".join(f"{v:>28}" for v in vals), file=file)

    ms = lambda v: "-" if v is None else f"{v:,.0f}"  # noqa: E731
    row("clients connected (failed)", lambda p: f"{p['connected']:,} ({p['connect_errors']})")
    row("delivery lag p50 / p90 / p99 / max, ms",
        lambda p: " / ".join(ms(p["lag_ms"][q]) for q in (0.5, 0.9, 0.99, 1.0)))
    row("  newest event of a frame p50 / p99, ms",
        lambda p: " / ".join(ms(p["newest_lag_ms"][q]) for q in (0.5, 0.99)) if p["newest_lag_ms"] else None)
    row("  request latency p50 / p99, ms",
        lambda p: " / ".join(ms(p["latency_ms"][q]) for q in (0.5, 0.99)) if p["latency_ms"] else None)
    row("age of what is shown, at refresh p50/p99, ms",
        lambda p: " / ".join(ms(p["screen_age_ms"][q]) for q in (0.5, 0.99)))
    row(f"target: push lag p99 <= {TARGET_P99_MS} ms", lambda p: (
        ("met" if p["lag_ms"][0.99] is not None and p["lag_ms"][0.99] <= TARGET_P99_MS else "NOT met")
        if p is res.get("push") else None))
    row("frames (answers) / client / s: min med max",
        lambda p: " ".join(f"{p['frames_per_client_s'][k]:.1f}" for k in ("min", "median", "max")))
    row("events seen / client / s", lambda p: f"{p['events_per_client_s']:,.0f}" if p["events_per_client_s"] else None)
    row("server CPU, cores", lambda p: f"{p['server_cpu_cores']:.2f}")
    row("server RSS idle / connected / end, MiB",
        lambda p: " / ".join(f"{p['rss_mib'][k]:.0f}" for k in ("idle", "connected", "end")))
    row("server memory per client, connected / end, KiB",
        lambda p: f"{p['kib_per_client']['connected']:.1f} / {p['kib_per_client']['end']:.1f}")
    row("client process CPU, cores", lambda p: f"{p['client_cpu_cores']:.2f}")
    row("PostgreSQL / Redis CPU, cores", lambda p: f"{p['pg_cpu_cores']:.2f} / {p['redis_cpu_cores']:.2f}")
    row("publisher (pipeline into PostgreSQL) CPU, cores", lambda p: f"{p['publisher_cpu_cores']:.2f}")
    row("machine busy, cores (unattributed: others, kernel)",
        lambda p: f"{p['machine_busy_cores']:.2f} of {cfg['cpus']} ({p['other_cpu_cores']:.2f})")
    row("publisher: events, flush p50 / p99 ms",
        lambda p: f"{p['publisher']['published']:,}, {p['publisher']['flush_ms_p50']:.0f} / "
                  f"{p['publisher']['flush_ms_p99']:.0f}")
    row("publisher ticks behind schedule", lambda p: f"{p['publisher']['behind']}")
    row("connections closed / request errors", lambda p: f"{p['closed']} / {p['errors']}")
    row("gateway exit status after SIGTERM", lambda p: p.get("gateway_exit"))
    print(f"""
Push lag = receive time - event ts for every event received by every {cfg['parse_every']}th client (all
{cfg['clients']:,} read every frame; one process cannot decode for 1,000 browsers); ts = publish time, after the
SQL write; coalescing keeps the newest 50 events per frame.
Poll lag = answer time - stored ts of the newest event in the answer (ts from before the SQL write).
Age of what is shown = how old the newest event on a screen is when the next frame or answer with events
replaces it: what a duty officer sees at worst. Took {res['seconds']:.0f} s.
""", file=file)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--clients", type=int, default=1000, help="concurrent clients in each phase")
    p.add_argument("--rate", type=int, default=1000, help="events per second")
    p.add_argument("--per-delta", type=int, default=100, help="events per stored batch (one delta each)")
    p.add_argument("--seconds", type=float, default=20, help="measured seconds of each phase")
    p.add_argument("--warmup", type=float, default=3, help="seconds of publishing before measuring")
    p.add_argument("--workers", type=int, default=4, help="gunicorn workers of the polling baseline")
    p.add_argument("--parse-every", type=int, default=10,
                   help="decode the frames of every K-th push client (and measure its lag); all read every frame")
    p.add_argument("--no-poll", action="store_true", help="skip the polling baseline")
    p.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="Redis of the gateway and the publisher")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server; the bench makes its own database")
    p.add_argument("--db-name", default=DEFAULT_DB, help="database to drop, create and migrate")
    p.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    p.add_argument("--seed", type=int, default=20261126, help="seed of the generated events")
    p.add_argument("--profile-gateway", metavar="FILE", help="run the gateway under cProfile, stats into FILE")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    nofile = raise_nofile()
    if nofile < args.clients + 100:
        say(f"open-files limit {nofile} is below {args.clients} clients; expect connection errors")
    started = time.monotonic()
    res: dict = {"config": {**{k: v for k, v in vars(args).items() if k not in ("json",)},
                            "cpus": os.cpu_count()}}
    errors: list[str] = []
    db_url = recreate_database(args.pg_url, args.db_name)
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        try:
            for name, fn in (("push", run_push), ("poll", run_poll)):
                if name == "poll" and args.no_poll:
                    continue
                say(f"{name} phase")
                try:
                    res[name] = fn(args, db_url, Path(tmp))
                    if res[name]["publisher"]["error"]:
                        errors.append(f"{name}: publisher: {res[name]['publisher']['error']}")
                except Exception as err:  # noqa: BLE001 - reported, then the next phase runs
                    errors.append(f"{name}: {err!r}")
                    for log in Path(tmp).glob("*.log"):
                        say(f"--- {log.name}:\n" + log.read_text()[-3000:])
        finally:
            if not args.keep_db:
                drop_database(args.pg_url, args.db_name)
    res["seconds"] = time.monotonic() - started
    if "push" in res or "poll" in res:
        print_report(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))
    for e in errors:
        print(f"ERROR {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
