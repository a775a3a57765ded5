"""Benchmark the websocket fan-out against polling: 1,000 screens watching a city of 1,000 events/s.

Run ``PYTHONPATH=. .venv/bin/python -m bench.fanout`` (see ``--help``). It

1. starts a redis-server of its own (``--redis-url`` to use another: the shipped worker then publishes its
   deltas on that server's ``panorama:updates``), recreates its own PostgreSQL database
   (``panorama_fanout_bench``) and migrates it, and starts the shipped ingest worker
   (``python -m feeds.ingest --transport stream``, configured by its environment only);
2. runs a publisher: ``--rate`` events/s (1,000) as ``--per-message`` (50) events per stream entry, every event
   stamped with its publish time just before its XADD (``ts``) and numbered in its id;
3. **push**: ``python -m dashboard.gateway`` on the real channel, N websocket clients in another process;
4. **poll** (the baseline, once per ``--poll-ms``: 1,000 ms and the pages' own fallback interval,
   ``PANORAMA_POLL_MS``, 3,000 ms): the same N clients poll ``GET /api/summary?live=1`` from the app under
   gunicorn (gthread workers, keep-alive ``--keep-alive`` s), each over one kept-alive connection;
5. accounts for every event published in the measured window, on every ``--parse-every``-th client: it was
   **delivered** (in a frame or answer: lag = receive time - publish time), or **coalesced** (the gateway keeps
   the newest 50 events of a frame, a poll answer the newest 30: counted, with the time from its publish until
   the screen showed something newer, and how old that newer thing was), or **missing** (neither, by the end);
6. prints a table. Targets are reported, never asserted; the exit status is non-zero only on errors.

Every clock starts at publish, before Redis, and stops when the client has read the frame or answer: push and
poll alike hold the ingest worker's SQL write. Every process shares the machine's CPUs (2 on the reference
machine): the gateway or gunicorn, the ingest worker, the client process, the publisher, PostgreSQL and Redis.
The lags include the clients' own queueing on a busy CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import multiprocessing as mp
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psutil
import redis

from bench.ingest import DEFAULT_PG_URL, drop_database, generate_events, recreate_database, say, server_cpu
from bench.procs import Processes, free_port, start_redis
from dashboard.storage.db import make_engine
from dashboard.storage.users import create_kiosk_token
from feeds.publish import publish_many

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "panorama_fanout_bench"
TARGET_P99_MS = 250
MAX_LAG_MS = 60_000  # histogram range; longer lags are counted in the last bucket
TAIL_S = 3.0  # clients keep reading after the window, so events of its last moments can still arrive

__all__ = ["free_port", "service_env", "tree_cpu", "wait_port", "with_ticket"]  # bench.latency uses these


# --------------------------------------------------------------------------- helpers


def raise_nofile() -> int:
    """Raise the open-files limit to its hard maximum (1,000 sockets and more); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


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


def quantiles(hist: list[int], qs=(0.5, 0.9, 0.99, 1.0)) -> dict:
    return {"n": sum(hist), **{q: percentile(hist, q) for q in qs}}


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
        from dashboard.web.auth import issue_ticket
    except ImportError:
        return url
    return f"{url}{'&' if '?' in url else '?'}ticket={issue_ticket(BENCH_SECRET, {'u': 0})}"


def service_env(redis_url: str, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL", "PANORAMA_"))}
    env.update({"REDIS_URL": redis_url, "DATABASE_URL": db_url, "PANORAMA_AUTO_MIGRATE": "0",
                "PANORAMA_SECRET_KEY": BENCH_SECRET, "PANORAMA_SIMULATE": "0", "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1", **extra})
    return env


def product_poll_ms() -> int:
    """The pages' own polling interval when the gateway is away (``PANORAMA_POLL_MS``, by default)."""
    from dashboard.core.config import default_config

    return int(default_config()["PANORAMA_POLL_MS"])


def seq_of(event_id: str, tag: str) -> int | None:
    """The publisher's number of one of its events (``<tag>-<n>``), None for anyone else's."""
    head, _, n = event_id.rpartition("-")
    return int(n) if head == tag else None


# --------------------------------------------------------------------------- the publisher


class Publisher(threading.Thread):
    """XADD ``rate`` events/s into the feed streams, ``per_message`` per entry, each stamped just before its XADD."""

    def __init__(self, redis_url: str, rate: int, per_message: int, tag: str, seed: int):
        super().__init__(name="publisher", daemon=True)
        self.client = redis.Redis.from_url(redis_url)
        self.interval = per_message / rate
        self.per_message = per_message
        self.tag = tag
        self.events = generate_events(10**9, seed, 3600, mix="city")
        self.log: list[tuple[int, int, int]] = []  # (first seq, count, publish ms) per entry
        self.seq = 0
        self.behind = 0
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        next_t = time.monotonic()
        try:
            while not self.stop_event.is_set():
                by_domain: dict[str, list[dict]] = {}
                first = self.seq
                for _ in range(self.per_message):
                    domain, ev = next(self.events)
                    ev["id"] = f"{self.tag}-{self.seq}"
                    self.seq += 1
                    by_domain.setdefault(domain, []).append(ev)
                ts = time.time_ns() // 1_000_000  # the clock starts here, before Redis
                for evs in by_domain.values():
                    for ev in evs:
                        ev["ts"] = ts
                publish_many(self.client, by_domain.items(), transport="stream", maxlen=None)
                self.log.append((first, self.seq - first, ts))
                next_t += self.interval
                if next_t < time.monotonic():
                    self.behind += 1
                    next_t = time.monotonic()
                self.stop_event.wait(next_t - time.monotonic())
        except BaseException as err:  # noqa: BLE001 - reported in the results
            self.error = err

    def published(self, w0_ms: float, w1_ms: float) -> list[tuple[int, int]]:
        """(seq, publish ms) of every event published in the window."""
        return [(first + k, ts) for first, n, ts in self.log if w0_ms <= ts < w1_ms for k in range(n)]

    def finish(self) -> dict:
        self.stop_event.set()
        self.join(10)
        self.client.close()
        return {"published": self.seq, "entries": len(self.log), "behind": self.behind,
                "error": repr(self.error) if self.error else None}


# --------------------------------------------------------------------------- accounting (in the client process)


def _bucket(ms: float) -> int:
    return min(MAX_LAG_MS, max(0, int(ms)))


class Screen:
    """What one measured client was shown: which events (a bitmap by seq) and each frame's newest event."""

    __slots__ = ("seen", "frames", "newest_ts")

    def __init__(self):
        self.seen = bytearray()
        self.frames: list[tuple[float, int, int]] = []  # (receive ms, newest seq in it, its publish ms)
        self.newest_ts: int | None = None

    def take(self, now_ms: float, evs: list[dict], tag: str, w0: float, hists: dict) -> None:
        """Record one frame or answer's events: first deliveries (lag) and the frame's newest event."""
        newest = None
        for e in evs:
            seq = seq_of(e["id"], tag)
            if seq is None:
                continue
            if seq >= len(self.seen):
                self.seen.extend(bytes(seq + 4096 - len(self.seen)))
            if not self.seen[seq]:
                self.seen[seq] = 1
                if e["ts"] >= w0:  # events published before the window are not accounted
                    hists["h_delivered"][_bucket(now_ms - e["ts"])] += 1
            if newest is None or seq > newest[0]:
                newest = (seq, e["ts"])
        if newest is not None:
            self.frames.append((now_ms, newest[0], newest[1]))

    def account(self, published: list[tuple[int, int]], hists: dict, counts: dict) -> None:
        """Sort every published event into delivered, coalesced (superseded on screen) or missing."""
        recv, best_seq, best_ts = [], [], []
        top, top_ts = -1, 0
        for r, s, t in self.frames:
            if s > top:
                top, top_ts = s, t
            recv.append(r)
            best_seq.append(top)
            best_ts.append(top_ts)
        seen = self.seen
        for seq, ts in published:
            if seq < len(seen) and seen[seq]:
                counts["delivered"] += 1
                continue
            i = bisect.bisect_right(best_seq, seq)  # the first frame that showed a newer event
            if i < len(recv):
                counts["coalesced"] += 1
                hists["h_superseded"][_bucket(recv[i] - ts)] += 1
                hists["h_shown_instead"][_bucket(recv[i] - best_ts[i])] += 1
            else:
                counts["missing"] += 1


def _hists() -> dict:
    return {k: [0] * (MAX_LAG_MS + 1) for k in ("h_delivered", "h_superseded", "h_shown_instead",
                                                  "h_screen_age")}


# --------------------------------------------------------------------------- the client processes


def run_clients(kind: str, target: str, n: int, conn, parse_every: int, tag: str, poll_s: float) -> None:
    """Entry point of the client process: N websocket clients (``push``) or N pollers (``poll``)."""
    raise_nofile()
    if kind == "push":
        asyncio.run(push_clients(target, n, conn, parse_every, tag))
    else:
        asyncio.run(poll_clients(target, n, conn, parse_every, tag, poll_s))


async def _window(conn, connected: int, errors: int) -> tuple[float, float]:
    conn.send({"connected": connected, "errors": errors})
    return await asyncio.to_thread(conn.recv)  # (start, end) in epoch seconds


async def _report(conn, screens: list[Screen], hists: dict, frames: list[int], extra: dict) -> None:
    """Take the publisher's list of the window's events, account for each on every measured screen, send all."""
    published = await asyncio.to_thread(conn.recv)
    counts = {"delivered": 0, "coalesced": 0, "missing": 0}
    for s in screens:
        s.account(published, hists, counts)
    cpu = psutil.Process().cpu_times()
    conn.send({**hists, **counts, "frames": frames, "measured_clients": len(screens),
               "published_in_window": len(published), "cpu_s": cpu.user + cpu.system, **extra})


async def push_clients(url: str, n: int, conn, parse_every: int, tag: str) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    hists = _hists()
    screens = {i: Screen() for i in range(0, n, parse_every)}
    frames = [0] * n
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
        screen = screens.get(i)
        try:
            while True:
                raw = await ws.recv(decode=False)
                t = time.time()
                if t >= window[1] + TAIL_S:
                    break
                if window[0] <= t < window[1]:
                    frames[i] += 1
                if screen is None or t < window[0]:
                    continue  # read, not decoded: one process cannot decode what 1,000 browsers do
                evs = orjson.loads(raw).get("events")
                if evs:
                    now_ms = t * 1000
                    if screen.newest_ts is not None and t < window[1]:
                        hists["h_screen_age"][_bucket(now_ms - screen.newest_ts)] += 1
                    screen.take(now_ms, evs, tag, window[0] * 1000, hists)
                    screen.newest_ts = max(e["ts"] for e in evs)
        except ConnectionClosed:
            closed += 1
        finally:
            ws.transport.abort()

    readies = [asyncio.Event() for _ in range(n)]
    tasks = [asyncio.create_task(client(i, readies[i])) for i in range(n)]
    for r in readies:
        await r.wait()
    window[:] = await _window(conn, n - errors, errors)
    await asyncio.sleep(max(0.0, window[1] + TAIL_S - time.time() + 0.5))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await _report(conn, list(screens.values()), hists, frames, {"closed": closed, "errors": errors})


class KeptAlive:
    """One HTTP/1.1 client connection that stays open between requests (h11 over asyncio streams)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = self.h = None
        self.opened = 0

    async def get(self, target: str) -> tuple[int, bytes]:
        import h11

        if self.h is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.h = h11.Connection(h11.CLIENT)
            self.opened += 1
        h = self.h
        try:
            self.writer.write(h.send(h11.Request(method="GET", target=target, headers=[
                ("Host", f"{self.host}:{self.port}"), ("Accept", "application/json")])) + h.send(h11.EndOfMessage()))
            status, body = 0, []
            while True:
                ev = h.next_event()
                if ev is h11.NEED_DATA:
                    h.receive_data(await self.reader.read(65536))
                elif isinstance(ev, h11.Response):
                    status = ev.status_code
                elif isinstance(ev, h11.Data):
                    body.append(ev.data)
                elif isinstance(ev, h11.EndOfMessage):
                    break
                elif isinstance(ev, h11.ConnectionClosed):
                    raise ConnectionError("closed mid-answer")
        except BaseException:
            self.close()
            raise
        if h.our_state is h11.MUST_CLOSE or h.their_state is h11.MUST_CLOSE:
            self.close()  # the server did not keep it alive: the next request opens a new one (counted)
        else:
            h.start_next_cycle()
        return status, b"".join(body)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = self.h = None


async def poll_clients(target: str, n: int, conn, parse_every: int, tag: str, poll_s: float) -> None:
    base, _, path = target.partition("/")  # host:port/path?query
    host, port = base.split(":")
    hists = _hists()
    latency = [0] * (MAX_LAG_MS + 1)
    screens = {i: Screen() for i in range(0, n, parse_every)}
    answers = [0] * n
    window = [float("inf"), float("inf")]
    clients = [KeptAlive(host, int(port)) for _ in range(n)]
    errors = 0

    async def poller(i: int, started: asyncio.Event):
        nonlocal errors
        await started.wait()
        await asyncio.sleep(random.random() * poll_s)  # browsers do not poll in lockstep
        next_t = time.monotonic()
        screen = screens.get(i)
        while time.time() < window[1] + TAIL_S:
            t0 = time.time()
            try:
                status, body = await clients[i].get("/" + path)
                if status != 200:
                    raise ValueError(status)
                evs = orjson.loads(body)["live"]["events"]
            except (OSError, ValueError, KeyError):
                errors += 1
                evs = None
            t1 = time.time()
            if window[0] <= t1 < window[1]:
                answers[i] += 1
                latency[_bucket((t1 - t0) * 1000)] += 1
            if evs and screen is not None and t1 >= window[0]:
                now_ms = t1 * 1000
                if screen.newest_ts is not None and t1 < window[1]:
                    hists["h_screen_age"][_bucket(now_ms - screen.newest_ts)] += 1
                screen.take(now_ms, evs, tag, window[0] * 1000, hists)
                screen.newest_ts = max(e["ts"] for e in evs)
            next_t = max(next_t + poll_s, time.monotonic())
            await asyncio.sleep(next_t - time.monotonic())

    started = asyncio.Event()
    tasks = [asyncio.create_task(poller(i, started)) for i in range(n)]
    window[:] = await _window(conn, n, 0)
    started.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in clients:
        c.close()
    await _report(conn, list(screens.values()), hists, answers,
                  {"latency": latency, "errors": errors, "closed": 0,
                   "connections_opened": sum(c.opened for c in clients)})


def start_clients(kind: str, target: str, n: int, parse_every: int, tag: str, poll_s: float = 0):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=run_clients, args=(kind, target, n, child, parse_every, tag, poll_s),
                       name=f"{kind}-clients", daemon=True)
    proc.start()
    return proc, parent


# --------------------------------------------------------------------------- the phases


def measure(args, redis_url: str, server: subprocess.Popen, pids: dict[str, int], kind: str, target: str,
            tag: str, seed: int, poll_s: float = 0) -> dict:
    """Connect the clients, publish, and measure one phase against a running server process."""
    srv = psutil.Process(server.pid)
    rss_idle = tree_rss(srv)
    t = time.monotonic()
    clients, pipe = start_clients(kind, target, args.clients, args.parse_every, tag, poll_s)
    if not pipe.poll(120):
        raise RuntimeError(f"{kind} clients did not get ready")
    hello = pipe.recv()
    connect_s = time.monotonic() - t
    say(f"{tag}: {hello['connected']} clients ready in {connect_s:.1f} s ({hello['errors']} failed)")
    rss_connected = tree_rss(srv)
    publisher = Publisher(redis_url, args.rate, args.per_message, tag, seed)
    publisher.start()
    start = time.time() + args.warmup
    pipe.send((start, start + args.seconds))
    time.sleep(args.warmup)
    procs = {name: psutil.Process(pid) for name, pid in {**pids, "server": server.pid, "clients": clients.pid}.items()}
    me = psutil.Process()  # the publisher's process alone: every other process of the bench is its child

    def cpu() -> dict[str, float]:
        return {**{k: tree_cpu(p) for k, p in procs.items()}, "publisher (bench)": sum(me.cpu_times()[:2])}

    cpu0, sys0, load0 = cpu(), server_cpu(args.db_name), os.getloadavg()
    time.sleep(args.seconds)
    cpu1, sys1, load1 = cpu(), server_cpu(args.db_name), os.getloadavg()
    rss_end = tree_rss(srv)
    time.sleep(TAIL_S + 0.5)  # events of the window's last moments still get their frames
    pub = publisher.finish()
    pipe.send(publisher.published(start * 1000, (start + args.seconds) * 1000))
    if not pipe.poll(120):
        raise RuntimeError(f"{kind} clients sent no results")
    res = pipe.recv()
    clients.join(10)
    cores = {k: (cpu1[k] - cpu0[k]) / args.seconds for k in cpu0}
    pg = sum(s1 - sys0.get(pid, (role, 0.0))[1] for pid, (role, s1) in sys1.items() if role.startswith("pg_"))
    machine = (sys1.get(-1, ("", 0.0))[1] - sys0.get(-1, ("", 0.0))[1]) / args.seconds
    cores["PostgreSQL"] = pg / args.seconds
    cores["others on the machine"] = max(0.0, machine - sum(cores.values()))
    cores["machine busy"] = machine
    frames = sorted(res["frames"])
    every = [a + b for a, b in zip(res["h_delivered"], res["h_superseded"])]
    return {"connected": hello["connected"], "connect_errors": hello["errors"], "connect_s": connect_s,
            "measured_clients": res["measured_clients"], "published_in_window": res["published_in_window"],
            "accounted": {k: res[k] for k in ("delivered", "coalesced", "missing")},
            "delivered_lag_ms": quantiles(res["h_delivered"]),
            "superseded_ms": quantiles(res["h_superseded"]),
            "shown_instead_age_ms": quantiles(res["h_shown_instead"]),
            "every_event_ms": quantiles(every),
            "screen_age_ms": quantiles(res["h_screen_age"]),
            "latency_ms": quantiles(res["latency"]) if "latency" in res else None,
            "connections_opened": res.get("connections_opened"),
            "frames_per_client_s": {"min": frames[0] / args.seconds, "median": frames[len(frames) // 2] / args.seconds,
                                    "max": frames[-1] / args.seconds},
            "cpu_cores": cores, "loadavg": {"start": load0, "end": load1},
            "rss_mib": {"idle": rss_idle / 2**20, "connected": rss_connected / 2**20, "end": rss_end / 2**20},
            # gunicorn's RSS grows with its workers, not with its clients: per client only for the gateway
            "kib_per_client": ({k: (v - rss_idle) / 1024 / max(1, hello["connected"])
                                for k, v in (("connected", rss_connected), ("end", rss_end))}
                               if kind == "push" else None),
            "closed": res["closed"], "errors": res["errors"], "publisher": pub}


def run_push(args, procs: Processes, env: dict, redis_url: str, pids: dict[str, int]) -> dict:
    port = free_port()
    profile = ["-m", "cProfile", "-o", args.profile_gateway] if args.profile_gateway else []
    gateway = procs.start("gateway", [sys.executable, *profile, "-m", "dashboard.gateway", "--port", str(port)],
                          {**env, "PANORAMA_WS_HOST": "127.0.0.1"})
    try:
        wait_port(port, gateway, 60, "the gateway")
        res = measure(args, redis_url, gateway, pids, "push", f"ws://127.0.0.1:{port}/", "push", args.seed)
    finally:
        res_exit = procs.stop("gateway")
    res["gateway_exit"] = res_exit
    return res


def run_poll(args, procs: Processes, env: dict, redis_url: str, pids: dict[str, int], poll_ms: int) -> dict:
    port = free_port()
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    # gthread workers keep connections alive (the sync worker closes each one); longer than the poll interval
    app = procs.start("gunicorn", [gunicorn, "-w", str(args.workers), "--threads", str(args.threads),
                                   "--keep-alive", str(args.keep_alive), "-b", f"127.0.0.1:{port}",
                                   "--backlog", "2048", "app:server"], env)
    try:
        wait_port(port, app, 60, "gunicorn")
        # The live part of the summary needs a viewer: the pollers show a kiosk token, as a wall would.
        engine = make_engine(env["DATABASE_URL"])
        try:
            _, token = create_kiosk_token(engine, "bench.fanout")
        finally:
            engine.dispose()
        target = f"127.0.0.1:{port}/api/summary?live=1&token={token}"
        tag = f"poll{poll_ms}"
        return measure(args, redis_url, app, pids, "poll", target, tag, args.seed + poll_ms, poll_ms / 1000)
    finally:
        procs.stop("gunicorn")


# --------------------------------------------------------------------------- report


def print_report(res: dict, file=sys.stdout) -> None:
    cfg = res["config"]
    phases = [(name, res[name]) for name in res.get("phases", []) if name in res]
    print(f"\nFan-out: {cfg['clients']:,} clients, {cfg['rate']:,} events/s ({cfg['per_message']} events per stream "
          f"entry) through the shipped ingest worker, {cfg['seconds']:.0f} s per phase after {cfg['warmup']:.0f} s "
          f"warm-up", file=file)
    labels = {"push": "push (gateway)"}
    labels.update({n: f"poll {int(n[4:]) / 1000:g} s, kept alive" for n, _ in phases if n.startswith("poll")})
    w = 30
    print(f"\n  {'':<50}" + "".join(f"{labels[n]:>{w}}" for n, _ in phases), file=file)

    def row(label, fn):
        vals = []
        for _n, p in phases:
            try:
                v = fn(p)
            except (KeyError, TypeError, ZeroDivisionError, IndexError):
                v = None
            vals.append("-" if v is None else v)
        print(f"  {label:<50}" + "".join(f"{v:>{w}}" for v in vals), file=file)

    ms = lambda v: "-" if v is None else f"{v:,.0f}"  # noqa: E731

    def quad(d):
        return " / ".join(ms(d[q]) for q in (0.5, 0.9, 0.99, 1.0))

    def share(p, k):
        n = sum(p["accounted"].values())
        return f"{p['accounted'][k]:,} ({p['accounted'][k] / n:.1%})" if n else None

    row("clients connected (failed)", lambda p: f"{p['connected']:,} ({p['connect_errors']})")
    row("events published in the window x measured clients", lambda p:
        f"{p['published_in_window']:,} x {p['measured_clients']}")
    row("  delivered (in a frame or answer)", lambda p: share(p, "delivered"))
    row("  coalesced (never sent to that screen)", lambda p: share(p, "coalesced"))
    row("  missing (neither, by the end)", lambda p: share(p, "missing"))
    row("delivered: publish -> read p50/p90/p99/max, ms", lambda p: quad(p["delivered_lag_ms"]))
    row(f"  target: p99 <= {TARGET_P99_MS} ms", lambda p: (
        "met" if p["delivered_lag_ms"][0.99] is not None and p["delivered_lag_ms"][0.99] <= TARGET_P99_MS
        else "NOT met"))
    row("coalesced: publish -> newer on screen p50/p99, ms",
        lambda p: f"{ms(p['superseded_ms'][0.5])} / {ms(p['superseded_ms'][0.99])}")
    row("  age of what was shown instead p50/p99, ms",
        lambda p: f"{ms(p['shown_instead_age_ms'][0.5])} / {ms(p['shown_instead_age_ms'][0.99])}")
    row("every event: publish -> it or newer shown p50/p99", lambda p:
        f"{ms(p['every_event_ms'][0.5])} / {ms(p['every_event_ms'][0.99])}")
    row("age of newest shown, when replaced p50/p99, ms",
        lambda p: f"{ms(p['screen_age_ms'][0.5])} / {ms(p['screen_age_ms'][0.99])}")
    row("request latency p50 / p99, ms", lambda p: f"{ms(p['latency_ms'][0.5])} / {ms(p['latency_ms'][0.99])}"
        if p["latency_ms"] else None)
    row("connections opened (kept alive if = clients)", lambda p: p["connections_opened"] and
        f"{p['connections_opened']:,}")
    row("frames (answers) / client / s: min med max",
        lambda p: " ".join(f"{p['frames_per_client_s'][k]:.1f}" for k in ("min", "median", "max")))
    names = []
    for _n, p in phases:
        names += [k for k in p["cpu_cores"] if k not in names]
    for k in names:
        row(f"CPU cores: {k}", lambda p, k=k: f"{p['cpu_cores'][k]:.2f}" if k in p["cpu_cores"] else None)
    row("load average 1 min at window start / end",
        lambda p: f"{p['loadavg']['start'][0]:.2f} / {p['loadavg']['end'][0]:.2f}")
    row("server RSS idle / connected / end, MiB",
        lambda p: " / ".join(f"{p['rss_mib'][k]:.0f}" for k in ("idle", "connected", "end")))
    row("server memory per client, connected / end, KiB",
        lambda p: f"{p['kib_per_client']['connected']:.1f} / {p['kib_per_client']['end']:.1f}")
    row("publisher: events (ticks behind schedule)",
        lambda p: f"{p['publisher']['published']:,} ({p['publisher']['behind']})")
    row("connections closed / request errors", lambda p: f"{p['closed']} / {p['errors']}")
    print(f"""
Every clock starts when the publisher stamps the event, just before its XADD (before Redis), and stops when a
client has read the frame (push) or the answer (poll) that carries it: the shipped ingest worker's SQL write is
inside both. Every event published in the window is accounted on every {cfg['parse_every']}th client: delivered
(with its lag), coalesced (the gateway sends the newest 50 of a frame, an answer holds the newest 30; counted,
with the time until the screen showed something newer and that thing's age then) or missing. "Every event" joins
the delivered lags and the coalesced events' times until something newer was shown. Age of newest shown = how
old the newest event on a screen is when the next frame or answer replaces it. Took {res['seconds']:.0f} s.
""", file=file)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--clients", type=int, default=1000, help="concurrent clients in each phase")
    p.add_argument("--rate", type=int, default=1000, help="events per second")
    p.add_argument("--per-message", type=int, default=50, help="events per stream entry")
    p.add_argument("--seconds", type=float, default=20, help="measured seconds of each phase")
    p.add_argument("--warmup", type=float, default=3, help="seconds of publishing before measuring")
    p.add_argument("--poll-ms", type=int, action="append",
                   help="polling interval of a baseline phase, repeatable (default: 1000 and the pages' own "
                        "PANORAMA_POLL_MS)")
    p.add_argument("--workers", type=int, default=4, help="gunicorn workers of the polling baseline")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread: keep-alive)")
    p.add_argument("--keep-alive", type=int, default=10, help="gunicorn's --keep-alive seconds")
    p.add_argument("--parse-every", type=int, default=10,
                   help="account on every K-th client (all read every frame)")
    p.add_argument("--no-poll", action="store_true", help="skip the polling baseline")
    p.add_argument("--redis-url", help="Redis to use (default: a redis-server of the bench's own; with a shared "
                                       "server the worker's deltas reach its panorama:updates)")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server; the bench makes its own database")
    p.add_argument("--db-name", default=DEFAULT_DB, help="database to drop, create and migrate")
    p.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    p.add_argument("--seed", type=int, default=20261126, help="seed of the generated events")
    p.add_argument("--profile-gateway", metavar="FILE", help="run the gateway under cProfile, stats into FILE")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    args = p.parse_args(argv)
    if args.poll_ms is None:
        args.poll_ms = sorted({1000, product_poll_ms()})
    return args


def run(args) -> tuple[dict, list[str]]:
    """Run the phases; return the results and the errors."""
    started = time.monotonic()
    res: dict = {"config": {**{k: v for k, v in vars(args).items() if k not in ("json",)},
                            "cpus": os.cpu_count()}, "phases": []}
    errors: list[str] = []
    db_url = recreate_database(args.pg_url, args.db_name)
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        procs = Processes(Path(tmp))
        try:
            redis_url = args.redis_url or start_redis(procs)
            env = service_env(redis_url, db_url)
            ingest = procs.start("ingest", [sys.executable, "-m", "feeds.ingest", "--transport", "stream"], env)
            pids = {"ingest worker": ingest.pid}
            if "redis" in procs.procs:
                pids["Redis (the bench's own)"] = procs.pid("redis")
            phases = [("push", lambda: run_push(args, procs, env, redis_url, pids))]
            if not args.no_poll:
                phases += [(f"poll{ms}", lambda ms=ms: run_poll(args, procs, env, redis_url, pids, ms))
                           for ms in args.poll_ms]
            for name, fn in phases:
                say(f"{name} phase")
                try:
                    res[name] = fn()
                    res["phases"].append(name)
                    if res[name]["publisher"]["error"]:
                        errors.append(f"{name}: publisher: {res[name]['publisher']['error']}")
                except Exception as err:  # noqa: BLE001 - reported, then the next phase runs
                    errors.append(f"{name}: {err!r}")
                    for log in Path(tmp).glob("*.log"):
                        say(f"--- {log.name}:\n" + log.read_text(errors="replace")[-3000:])
                if procs.dead():
                    raise RuntimeError(f"exited: {procs.dead()}: {procs.tail('ingest')}")
        except Exception as err:  # noqa: BLE001 - reported
            errors.append(repr(err))
        finally:
            procs.stop_all()
            if not args.keep_db:
                drop_database(args.pg_url, args.db_name)
    res["seconds"] = time.monotonic() - started
    return res, errors


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    nofile = raise_nofile()
    if nofile < args.clients + 100:
        say(f"open-files limit {nofile} is below {args.clients} clients; expect connection errors")
    res, errors = run(args)
    if res["phases"]:
        print_report(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))
    for e in errors:
        print(f"ERROR {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
