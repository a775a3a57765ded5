"""What the fault tests share: counting what was stored, well-behaved producers, websocket clients."""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
from collections import deque
from urllib.parse import urlsplit

import orjson
import redis
from sqlalchemy import func, select
from websockets.sync.client import connect as ws_connect

from dashboard.core.channels import CLIENTS_KEY_PREFIX
from dashboard.storage.models import district_minutes, events, incident_reports, rollups
from dashboard.core.channels import INGEST_GROUP, feed_names
from feeds.publish import publish


def stored(engine, domain: str | None = None) -> int:
    """Events in the database (of one domain)."""
    q = select(func.count()).select_from(events)
    if domain:
        q = q.where(events.c.domain == domain)
    try:
        with engine.connect() as conn:
            return conn.execute(q).scalar_one()
    except Exception:  # noqa: BLE001 - the database may be the thing that is down
        return -1


def totals(engine) -> dict[str, int]:
    """Rows, rollup and district-minute sums, incident reports: each must equal what was published."""
    with engine.connect() as conn:
        one = lambda q: conn.execute(q).scalar_one() or 0  # noqa: E731
        return {"events": one(select(func.count()).select_from(events)),
                "distinct": one(select(func.count(func.distinct(events.c.domain + ":" + events.c.event_id)))),
                "rollups": one(select(func.sum(rollups.c.n))),
                "district_minutes": one(select(func.sum(district_minutes.c.n))),
                "incident_reports": one(select(func.count()).select_from(incident_reports))}


def pending(client: redis.Redis, consumer: str | None = None) -> int:
    """Entries read but not acknowledged in the ingest group (of one consumer), over every feed stream."""
    n = 0
    for stream in feed_names():
        try:
            info = client.xpending(stream, INGEST_GROUP)
        except redis.ResponseError:
            continue
        if consumer is None:
            n += info["pending"]
        else:
            n += sum(c["pending"] for c in info["consumers"] if c["name"] in (consumer, consumer.encode()))
    return n


def group_consumers(client: redis.Redis) -> set[str]:
    names = set()
    for stream in feed_names():
        try:
            names |= {c["name"].decode() for c in client.xinfo_consumers(stream, INGEST_GROUP)}
        except redis.ResponseError:
            pass
    return names


def make_events(start: int, n: int, domain: str, *, incident_every: int = 0) -> list[dict]:
    """``n`` valid events with ids ``<domain>-<i>``, time now, every ``incident_every``-th one of severity 3."""
    now = int(time.time() * 1000)
    return [{"id": f"{domain}-{i}", "ts": now, "kind": "congestion" if domain == "traffic" else "check",
             "district": ("futian", "nanshan", "luohu")[i % 3], "title": f"故障测试 {i}",
             "severity": 3 if incident_every and i % incident_every == 0 else 1}
            for i in range(start, start + n)]


class Producer(threading.Thread):
    """Publish ``total`` events at about ``rate`` a second, ``per_message`` per message, over the domains in
    turn; retry a message until Redis takes it (a stream publisher that loses nothing)."""

    def __init__(self, connect, total: int, *, rate: float = 2000, per_message: int = 20, transport: str = "stream",
                 domains: tuple[str, ...] = ("traffic", "security", "environment"), incident_every: int = 0,
                 first_id: int = 0):
        super().__init__(daemon=True, name="producer")
        self.connect, self.total, self.rate, self.per_message = connect, total, rate, per_message
        self.transport, self.domains, self.incident_every = transport, domains, incident_every
        self.first_id = first_id
        self.sent = 0
        self.retries = 0
        self.incident_worthy = 0
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            client = self.connect()
            started = time.monotonic()
            k = 0
            while self.sent < self.total and not self.stop_event.is_set():
                domain = self.domains[k % len(self.domains)]
                n = min(self.per_message, self.total - self.sent)
                batch = make_events(self.first_id + self.sent, n, domain, incident_every=self.incident_every)
                while not self.stop_event.is_set():
                    try:
                        publish(client, domain, batch, transport=self.transport)
                        break
                    except (redis.ConnectionError, redis.TimeoutError):
                        self.retries += 1
                        self.stop_event.wait(0.05)
                        client = self.connect()
                self.incident_worthy += sum(1 for e in batch if e["severity"] >= 3)
                self.sent += n
                k += 1
                ahead = self.sent / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    self.stop_event.wait(ahead)
        except BaseException as err:  # noqa: BLE001 - the test reports it
            self.error = err

    def finish(self) -> None:
        self.stop_event.set()
        self.join(10)


class BufferingProducer(threading.Thread):
    """Publish readings that come on schedule whatever the bus does, ``rate`` events a second, one per stream
    entry, over the domains in turn: while Redis is unreachable they wait in order in the publisher and go out
    when it is back (a sensor gateway's store-and-forward). Counts what it generated, what Redis took (XADD
    answered) and how many of those had to wait out a failure (``held``)."""

    def __init__(self, connect, *, rate: float = 50, domains: tuple[str, ...] = ("traffic", "security", "environment"),
                 first_id: int = 0):
        super().__init__(daemon=True, name="buffering-producer")
        self.connect, self.rate, self.domains, self.first_id = connect, rate, domains, first_id
        self.generated = self.published = self.held = self.retries = 0
        self.backlog: deque[list] = deque()  # [domain, event, held], oldest first
        self.generating = threading.Event()
        self.generating.set()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            client, started, down = self.connect(), time.monotonic(), False
            while not self.stop_event.is_set():
                due = int((time.monotonic() - started) * self.rate) if self.generating.is_set() else self.generated
                while self.generated < due:
                    domain = self.domains[self.generated % len(self.domains)]
                    ev = make_events(self.first_id + self.generated, 1, domain)[0]
                    self.backlog.append([domain, ev, down])
                    self.generated += 1
                while self.backlog:
                    domain, ev, held = self.backlog[0]
                    try:
                        publish(client, domain, [ev], transport="stream")
                    except (redis.ConnectionError, redis.TimeoutError):
                        self.retries += 1
                        down = True
                        for item in self.backlog:
                            item[2] = True
                        client = self.connect()
                        break
                    down = False
                    self.backlog.popleft()
                    self.published += 1
                    self.held += held
                self.stop_event.wait(1 / self.rate)
        except BaseException as err:  # noqa: BLE001 - the test reports it
            self.error = err

    def drained(self) -> bool:
        """Tell whether everything generated so far was taken by Redis."""
        return not self.backlog and self.published == self.generated

    def finish(self) -> None:
        self.stop_event.set()
        self.join(10)


class WsWatcher(threading.Thread):
    """A websocket client of the gateway that notes every frame (type, bus status, event ids) with its time."""

    def __init__(self, url: str):
        super().__init__(daemon=True, name="ws-watcher")
        self.url = url
        self.frames: list[tuple[float, dict]] = []
        self.closed = threading.Event()
        self.ws = ws_connect(url, open_timeout=10).__enter__()  # closed by the test with ws.close()

    def run(self) -> None:
        try:
            for raw in self.ws:
                self.frames.append((time.monotonic(), orjson.loads(raw)))
        except Exception:  # noqa: BLE001 - a closed connection ends the watch
            pass
        self.closed.set()

    def first(self, predicate, after: float = 0.0) -> float | None:
        return next((at for at, f in list(self.frames) if at >= after and predicate(f)), None)

    def event_ids(self, after: float = 0.0) -> set[str]:
        return {e["id"] for at, f in list(self.frames) if at >= after for e in f.get("events", ())}


def ws_url(port: int, secret: str) -> str:
    """The gateway's URL with a ticket signed with the processes' secret, as a monitoring tool makes one
    (a subject naming no user or kiosk token: no sign-out can revoke it in the middle of a fault test)."""
    from dashboard.web.auth import issue_ticket

    return f"ws://127.0.0.1:{port}/?ticket={issue_ticket(secret, {'tool': 'fault-suite'})}"


def never_reading_client(url: str) -> socket.socket:
    """Open the websocket ``url`` (on the loopback) by hand with a small receive buffer, then never read a byte
    of it: a slow client, as the gateway sees one."""
    parts = urlsplit(url)
    port = parts.port
    path = parts.path + (f"?{parts.query}" if parts.query else "")  # with its ticket
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: nothing of the first frame is read
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def listening(port: int) -> bool:
    """Tell whether something accepts connections on the loopback ``port``."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def client_count(bus: redis.Redis) -> int:
    """Clients of every gateway on this Redis, as /metrics sums them (each gateway refreshes its count every 5 s)."""
    return sum(int(bus.get(k) or 0) for k in bus.scan_iter(match=CLIENTS_KEY_PREFIX + "*"))
