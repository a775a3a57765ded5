"""Check the dependencies and the freshness of each feed for /api/health and the screens."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dashboard.core.bus import BUS_DOWN, ping
from dashboard.storage import outbox
from dashboard.storage.db import is_postgres
from dashboard.storage.queries import feed_freshness, stale
from dashboard.storage.services import Services

def _probe_database(services: Services, now_ms: int) -> tuple[dict, dict]:
    """Read the feeds' freshness and the notifications' outbox, proving the database answers; raise
    SQLAlchemyError when it does not."""
    with services.engine.begin() as conn:
        if is_postgres(services.engine):
            # A database that accepts but does not answer must not hold the probe's connection for long.
            conn.execute(text("SET LOCAL statement_timeout = 2000"))
        conn.execute(text("SELECT 1"))
        return (feed_freshness(conn, now_ms, services.config["PANORAMA_STALE_AFTER"]),
                outbox.summary(conn, now_ms))


def _probe_redis(services: Services) -> tuple[bool, str]:
    """Ping the bus; a cluster client that cannot be made yet (no node answers) reads as unreachable too."""
    try:
        client = services.redis
    except BUS_DOWN as err:
        return False, f"unreachable: {err}"
    return ping(client)


def _probe_replica(services: Services) -> str:
    """Tell how far the read replica's replay is behind the primary, in bytes of WAL; raise when unreachable."""
    with services.read_engine.connect() as conn:
        conn.execute(text("SET statement_timeout = 2000"))
        replayed = conn.execute(text("SELECT pg_last_wal_replay_lsn()::text")).scalar_one()
    if replayed is None:
        return "unreachable: not a streaming replica"
    with services.engine.connect() as conn:
        behind = conn.execute(text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:r AS pg_lsn))"),
                              {"r": replayed}).scalar_one()
    return f"ok: {max(0, int(behind)):,} bytes of WAL behind"


def _aged(feeds: dict, since_ms: int, now_ms: int, stale_after: dict[str, int]) -> dict:
    """Return freshness read at ``since_ms`` as it stands at ``now_ms`` (ages grow, rates as last read)."""
    out = {}
    for domain, f in feeds.items():
        age = None if f["last_event_age_s"] is None else round(f["last_event_age_s"] + (now_ms - since_ms) / 1000, 1)
        out[domain] = {**f, "last_event_age_s": age,
                       "stale": stale(domain, age, stale_after)}
    return out


class HealthProbe:
    """Answer /api/health within a deadline whatever is down.

    Load balancers and walls poll health and give up after a second or two, so each dependency is
    probed in a worker thread and one that has not answered within ``budget_s`` reads "unreachable:
    no answer". At most one probe per dependency runs at a time (a hung one is waited on, not
    multiplied), so a dead database cannot eat the worker's threads or the pool's connections. While
    the database does not answer, the feeds' freshness is the last one read, aged to now.
    """

    def __init__(self, services: Services, budget_s: float = 0.8):
        self.services = services
        self.budget_s = budget_s
        self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="health")
        self._running: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._last_feeds: tuple[int, dict] | None = None

    def _start(self, name: str, fn, *args) -> Future:
        with self._lock:
            running = self._running.get(name)
            if running is None or running.done():
                running = self._running[name] = self._pool.submit(fn, *args)
            return running

    def check(self, now_ms: int) -> dict:
        """Return the health document of SPEC section 6 (``status`` ok or degraded)."""
        deadline = time.monotonic() + self.budget_s
        redis_probe = self._start("redis", _probe_redis, self.services)
        db_probe = self._start("database", _probe_database, self.services, now_ms)
        replica_probe = (self._start("read_replica", _probe_replica, self.services)
                         if self.services.read_engine is not None else None)
        try:
            redis_ok, redis_detail = redis_probe.result(timeout=max(0.0, deadline - time.monotonic()))
        except FuturesTimeout:
            redis_ok, redis_detail = False, "unreachable: no answer"
        stale_after = self.services.config["PANORAMA_STALE_AFTER"]
        notifications = None  # unknown while the database does not answer
        try:
            feeds, notifications = db_probe.result(timeout=max(0.0, deadline - time.monotonic()))
            self._last_feeds = (now_ms, feeds)
            db_ok, db_detail = True, "ok"
        except FuturesTimeout:
            db_ok, db_detail = False, "unreachable: no answer"
        except SQLAlchemyError as err:
            db_ok, db_detail = False, f"unreachable: {type(err).__name__}"
        if not db_ok:
            feeds = _aged(self._last_feeds[1], self._last_feeds[0], now_ms, stale_after) if self._last_feeds else {}
        doc = {
            "status": "ok" if redis_ok and db_ok else "degraded",
            "redis": redis_detail,
            "database": db_detail,
            "mode": "embedded" if self.services.config["EMBEDDED"] else "production",
            "feeds": feeds,
            # The outbox (docs/alerts.md, "Notifications"): waiting and given-up messages, the oldest waiting's age.
            # Said, not judged: a channel nobody configured leaves its messages waiting by design.
            "notifications": notifications,
        }
        if replica_probe is not None:
            # A replica that is down does not make the app degraded: the primary answers its reads meanwhile
            # (Services.read). Said here, so an operator sees it; a load balancer keeps the app in service.
            try:
                doc["read_replica"] = replica_probe.result(timeout=max(0.0, deadline - time.monotonic()))
            except FuturesTimeout:
                doc["read_replica"] = "unreachable: no answer (reads go to the primary)"
            except SQLAlchemyError as err:
                doc["read_replica"] = f"unreachable: {type(err).__name__} (reads go to the primary)"
        return doc

    def close(self) -> None:
        """Stop taking probes (a hung one ends with its own timeouts)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
