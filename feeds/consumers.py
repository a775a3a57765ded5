"""Consume the feeds from Redis pub/sub and from Redis Streams, recovering from outages by themselves."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable

import orjson
import redis
from redis.backoff import ExponentialWithJitterBackoff
from sqlalchemy.exc import DBAPIError

from dashboard.core.bus import BUS_DOWN, slot_groups
from dashboard.core.channels import DEFAULT_PREFIX, INGEST_GROUP, ingest_channels
from feeds.pipeline import Batch, Pipeline, now_ms
from feeds.schema import MAX_BATCH

log = logging.getLogger(__name__)
DROPPED_KEY = "panorama:ingest:dropped"  # pub/sub events lost to a long database outage, by domain
TRIM_EVERY_S = 1.0
# On a cluster, while every stream is empty, how long one blocking read waits on one slot's streams before
# all are looked at again: what an entry on another stream may wait, at most (see StreamConsumer._read_each).
IDLE_SLICE_MS = 50


def events_in(raw: bytes | str) -> int:
    """Count the events a message carries without validating them (1 for anything but a JSON array)."""
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return 1
    return max(1, len(decoded)) if isinstance(decoded, list) else 1


def default_consumer_name() -> str:
    """Name this worker uniquely and recognisably in the consumer group."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Consumer:
    """A feed consumer thread: read, parse, flush in batches; reconnect with backoff when Redis goes away.

    Subclasses implement ``_connect`` and ``_read``. Use as a context manager or ``start()`` / ``stop()``.
    """

    name = "consumer"
    # Whether to go on reading while the database is down: pub/sub must (Redis keeps nothing for us),
    # a stream need not (unacknowledged entries wait safely in Redis).
    reads_while_db_down = False

    def __init__(self, pipeline: Pipeline, connect: Callable[[], redis.Redis], *, prefix: str = DEFAULT_PREFIX,
                 batch_size: int = 5000, flush_ms: int = 250, hold_limit: int = 100_000,
                 on_error: Callable[[BaseException], None] | None = None):
        if batch_size < 1 or flush_ms < 1 or hold_limit < batch_size:
            raise ValueError("batch_size and flush_ms must be positive, hold_limit at least batch_size")
        self.pipeline = pipeline
        self.connect = connect
        self.channels = ingest_channels(prefix)  # the four feeds and the units'
        self.batch_size = batch_size
        self.flush_s = flush_ms / 1000
        self.hold_limit = hold_limit
        self.on_error = on_error
        self._batch = Batch()  # survives reconnects: what was read is written once the database is back
        self.database_ok = threading.Event()
        self.database_ok.set()
        self.dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.reconnects = 0
        self.flushed = 0

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self) -> None:
        """Run the consumer in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Ask the loop to finish its batch and wait for it."""
        self._stop.set()
        # stop() must not join from inside the worker thread itself
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def run(self) -> None:
        """Consume until stopped; the outer loop survives Redis and database outages."""
        backoff = ExponentialWithJitterBackoff(base=0.1, cap=5.0)
        failures = 0
        while not self._stop.is_set():
            bus = None
            try:
                bus = self.connect()
                self._connect(bus)
                self.connected.set()
                if failures:
                    log.info("%s: reconnected after %d failure(s)", self.name, failures)
                failures = 0
                self._loop(bus)
            except BUS_DOWN as err:
                self._failed(err, "Redis unavailable")
            except Exception as err:  # noqa: BLE001 - a consumer must outlive any one bad batch
                log.exception("%s: unexpected error", self.name)
                if self.on_error:
                    self.on_error(err)
                self._failed(err, "error")
            else:
                continue
            finally:
                self._disconnect(bus)
            failures += 1
            self.reconnects += 1
            self._stop.wait(backoff.compute(failures))
        self.connected.clear()

    def _failed(self, err: BaseException, what: str) -> None:
        self.connected.clear()
        log.warning("%s: %s (%s); retrying", self.name, what, err)

    def _loop(self, bus: redis.Redis) -> None:
        backoff = ExponentialWithJitterBackoff(base=0.2, cap=5.0)
        db_failures, retry_at = 0, 0.0
        while True:
            stopping = self._stop.is_set()
            batch = self._batch
            held = self.database_ok.is_set() is False and len(batch) >= self.batch_size
            if stopping or (held and not self.reads_while_db_down):
                more = False
                if not stopping:
                    self._stop.wait(max(0.0, retry_at - time.monotonic()))
            elif held:
                # pub/sub while the database is down: keep draining the socket until the next retry
                more = self._read(bus, batch, max(1, self.hold_limit - len(batch)),
                                  max(0.001, retry_at - time.monotonic()))
            else:
                room = max(1, self.batch_size - len(batch))
                wait = self.flush_s - (time.monotonic() - batch.started) if batch else self.flush_s
                more = self._read(bus, batch, room, max(0.001, wait))
            # Flush when the batch is full, old, or the feed is drained: at low rates an event waits
            # for no one; at high rates reads come back full and batches grow towards batch_size.
            due = batch and (not more or len(batch) >= self.batch_size
                             or time.monotonic() - batch.started >= self.flush_s)
            if due and time.monotonic() >= retry_at:
                try:
                    self.pipeline.flush(batch, bus)
                except DBAPIError as err:
                    db_failures += 1
                    retry_at = time.monotonic() + backoff.compute(db_failures)
                    if self.database_ok.is_set():
                        log.warning("%s: database unavailable (%s); holding %d events", self.name,
                                    type(err).__name__, len(batch))
                    self.database_ok.clear()
                    if stopping:
                        return
                    continue
                if db_failures:
                    log.info("%s: database back; wrote %d held events", self.name, len(batch))
                db_failures, retry_at = 0, 0.0
                self.database_ok.set()
                self.flushed += len(batch)
                self._batch = Batch()
                self._after_flush(bus)
            elif stopping:
                return

    def _connect(self, bus: redis.Redis) -> None:
        raise NotImplementedError

    def _after_flush(self, bus: redis.Redis) -> None:
        """Tidy up after a batch is stored and acknowledged (nothing by default)."""

    def _read(self, bus: redis.Redis, batch: Batch, room: int, wait: float) -> bool:
        """Add what arrives within ``wait`` seconds to the batch; return whether more is waiting."""
        raise NotImplementedError

    def _disconnect(self, bus: redis.Redis | None) -> None:
        if bus is not None:
            try:
                bus.close()
            except Exception:  # noqa: BLE001 - closing a dead connection may fail; it is gone either way
                pass


class PubSubConsumer(Consumer):
    """Consume ``feeds:<domain>`` pub/sub channels (at most once: Redis keeps nothing for a dead subscriber)."""

    name = "ingest-pubsub"
    reads_while_db_down = True

    def _connect(self, bus: redis.Redis) -> None:
        # A fresh PubSub per connection: redis-py's own resubscribe does not survive every outage.
        self._pubsub = bus.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(*self.channels)

    def _read(self, bus: redis.Redis, batch: Batch, room: int, wait: float) -> bool:
        msg = self._pubsub.get_message(timeout=wait)
        while msg is not None:
            if msg["type"] == "message":
                channel = msg["channel"].decode()
                if len(batch) >= self.hold_limit:
                    # The database has been down for long: keep memory bounded, count what is lost
                    # in events (a message may carry up to 1,000), as panorama_ingest_dropped_total says.
                    lost = events_in(msg["data"])
                    self.dropped += lost
                    bus.hincrby(DROPPED_KEY, self.channels.get(channel, "unknown"), lost)
                else:
                    self.pipeline.add(batch, channel, self.channels.get(channel), msg["data"], now_ms())
                room -= 1
                if room <= 0:
                    return True
            msg = self._pubsub.get_message(timeout=0)
        return False

    def _disconnect(self, bus: redis.Redis | None) -> None:
        pubsub = getattr(self, "_pubsub", None)
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:  # noqa: BLE001
                pass
            self._pubsub = None
        super()._disconnect(bus)


class StreamConsumer(Consumer):
    """Consume the ``feeds:<domain>`` streams through a consumer group, acknowledging after storage."""

    name = "ingest-stream"

    def __init__(self, pipeline: Pipeline, connect: Callable[[], redis.Redis], *, group: str = INGEST_GROUP,
                 consumer: str | None = None, claim_idle_ms: int = 60_000, **kwargs):
        super().__init__(pipeline, connect, **kwargs)
        self.group = group
        self.consumer = consumer or default_consumer_name()
        self.claim_idle_ms = claim_idle_ms
        self._next_claim = 0.0
        self._backlog: dict[str, bytes | str] = {}
        # Events per stream entry in the last read; entries may carry up to 1,000, so assume the most
        # until a read says otherwise (else one first read of a batched backlog could be huge).
        self._per_entry = float(MAX_BATCH)
        self._next_trim, self._trim_due = 0.0, False
        self._groups: list[list[str]] = [list(self.channels)]  # streams one XREADGROUP may read together
        self._turn = 0  # which group the next idle blocking read waits on (a cluster's)

    def _after_flush(self, bus: redis.Redis) -> None:
        self._trim_due = True

    def _trim(self, bus: redis.Redis) -> None:
        # At most once a second, and after the last flush too: acknowledged entries go, so the streams stay
        # short while ingest keeps up (another group's unacknowledged entries stay).
        self._trim_due, self._next_trim = False, time.monotonic() + TRIM_EVERY_S
        for stream in self.channels:
            try:
                trim_acknowledged(bus, stream)
            except redis.ResponseError as err:  # a server without XINFO / MINID: the streams just grow
                if isinstance(err, BUS_DOWN):
                    raise  # CLUSTERDOWN is a ResponseError too, and no reason to give up trimming
                log.warning("%s: could not trim %s (%s)", self.name, stream, err)

    def _connect(self, bus: redis.Redis) -> None:
        for stream in self.channels:
            ensure_group(bus, stream, self.group)
        self._groups = slot_groups(bus, list(self.channels))
        # After a reconnect first re-read what this consumer took but never acknowledged,
        # paging through its pending entries from the start; that includes any batch held in memory.
        self._backlog = {s: "0" for s in self.channels}
        self._batch = Batch()

    def _read(self, bus: redis.Redis, batch: Batch, room: int, wait: float) -> bool:
        if self._trim_due and time.monotonic() >= self._next_trim:
            self._trim(bus)
        if time.monotonic() >= self._next_claim:
            self._claim(bus, batch)
            self._next_claim = time.monotonic() + self.claim_idle_ms / 2000
        ids = dict(self._backlog) if self._backlog else {s: ">" for s in self.channels}
        # COUNT applies to each stream and to entries, not events: size it so a batch stays near batch_size.
        count = max(1, int(room / (len(ids) * self._per_entry)))
        started = time.monotonic()
        try:
            reply = self._xread(bus, ids, count, None if self._backlog else max(1, int(wait * 1000)))
        except redis.ResponseError as err:
            if "NOGROUP" not in str(err) and "UNBLOCKED" not in str(err):
                raise
            # Redis lost the group (restarted without persistence), or the stream was deleted while we
            # waited on it (UNBLOCKED): recreate the group and go on.
            self._connect(bus)
            return True
        backlog = bool(self._backlog)
        before = len(batch)
        got = self._take(batch, reply)
        if got:
            self._per_entry = max(1.0, (len(batch) - before) / got)
        if backlog:
            self._backlog = {}
            for stream, entries in reply or ():
                if entries:
                    name = stream.decode() if isinstance(stream, bytes) else stream
                    self._backlog[name] = entries[-1][0]
            return True
        if not got and time.monotonic() - started < wait / 2:
            # Some Redis-compatible servers do not block; do not spin.
            self._stop.wait(min(wait, 0.05))
        return any(len(entries) >= count for _stream, entries in reply or ())

    def _xread(self, bus: redis.Redis, ids: dict[str, str], count: int, block_ms: int | None) -> list:
        """XREADGROUP the streams of ``ids`` (stream -> id), waiting up to ``block_ms`` (None: not at all) for any.

        On one server a single command reads every stream and blocks on all of them at once. A cluster
        refuses a command whose streams are in different slots: there each slot's streams are read alone.
        """
        groups = [{s: ids[s] for s in group if s in ids} for group in self._groups]
        groups = [g for g in groups if g]
        if len(groups) == 1:
            return bus.xreadgroup(self.group, self.consumer, groups[0], count=count, block=block_ms) or []
        return self._read_each(bus, groups, count, block_ms)

    def _read_each(self, bus: redis.Redis, groups: list[dict[str, str]], count: int, block_ms: int | None) -> list:
        """Read each slot's streams alone: a pass over all without blocking (one pipeline: a round trip per
        master), and while all are empty a blocking read of one group at a time, IDLE_SLICE_MS long, between passes.

        A blocking read wakes at once only for its own streams; an entry on another waits for the slice to end:
        at most IDLE_SLICE_MS (50 ms) and one pass. That is the idle wait's cost in latency; in load, an idle
        worker makes 1000 / IDLE_SLICE_MS = 20 passes a second, each one XREADGROUP per stream and one blocking
        read: about 100 cheap commands a second over the masters with the four feeds. Under load every pass
        finds entries and nothing blocks.
        """
        deadline = time.monotonic() + (block_ms or 0) / 1000
        while True:
            pipe = bus.pipeline(transaction=False)
            for ids in groups:
                pipe.xreadgroup(self.group, self.consumer, ids, count=count)
            reply = [part for parts in pipe.execute() for part in parts or ()]
            left_ms = int((deadline - time.monotonic()) * 1000)
            if (reply and any(entries for _stream, entries in reply)) or left_ms <= 0:
                return reply
            ids = groups[self._turn % len(groups)]
            self._turn += 1
            reply = bus.xreadgroup(self.group, self.consumer, ids, count=count, block=min(IDLE_SLICE_MS, left_ms))
            if reply:
                return reply

    def _claim(self, bus: redis.Redis, batch: Batch) -> None:
        # Entries of a consumer that died unacknowledged are taken over after claim_idle_ms.
        for stream in self.channels:
            _next, entries, *_ = bus.xautoclaim(stream, self.group, self.consumer,
                                                min_idle_time=self.claim_idle_ms, start_id="0-0", count=1000)
            if entries:
                log.info("%s: claimed %d idle entries of %s", self.name, len(entries), stream)
                self._take(batch, [[stream.encode(), entries]])

    def _take(self, batch: Batch, reply) -> int:
        n = 0
        for stream, entries in reply or ():
            stream = stream.decode() if isinstance(stream, bytes) else stream
            if not entries:
                continue
            domain = self.channels.get(stream)
            acks = batch.acks.setdefault((stream, self.group), [])
            for entry_id, fields in entries:
                acks.append(entry_id)
                if not fields:
                    continue  # deleted by trimming while pending: nothing left to store
                data = fields.get(b"data")
                arrived = int(entry_id.split(b"-", 1)[0])
                if data is None:
                    data = b""
                self.pipeline.add(batch, stream, domain, data, arrived)
                n += 1
        return n


def _after(entry_id: bytes | str) -> str:
    ms, _, seq = (entry_id.decode() if isinstance(entry_id, bytes) else entry_id).partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


def trim_point(bus: redis.Redis, stream: str) -> str | None:
    """Return the id below which every consumer group of ``stream`` has acknowledged every entry (None: none).

    The groups' delivery points are read before their pending lists: an entry delivered in between is
    either above the point read or still pending, so it is never counted as acknowledged.
    """
    groups = bus.xinfo_groups(stream)
    if not groups:
        return None
    points = []
    for group in groups:
        name = group["name"]
        point = _after(group["last-delivered-id"])
        pending = bus.xpending(stream, name)
        if pending["pending"]:
            oldest = pending["min"]
            point = min(point, oldest.decode() if isinstance(oldest, bytes) else oldest, key=_id_key)
        points.append(point)
    return min(points, key=_id_key)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def trim_acknowledged(bus: redis.Redis, stream: str) -> int:
    """Delete the entries of ``stream`` that every consumer group has acknowledged; return how many."""
    point = trim_point(bus, stream)
    if point is None or point == "0-1":
        return 0
    return bus.xtrim(stream, minid=point, approximate=False)


def ensure_group(bus: redis.Redis, stream: str, group: str) -> None:
    """Create the consumer group (from the stream's start, so nothing published earlier is skipped)."""
    try:
        bus.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as err:
        if "BUSYGROUP" not in str(err):
            raise
