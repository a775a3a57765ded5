"""Build the long-lived parts a process needs from its configuration: city, database, bus."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import fakeredis
import redis
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from dashboard.core import bus
from dashboard.core.city import City, load_city
from dashboard.core.clock import Clock
from dashboard.core.config import load_config
from dashboard.storage import units
from dashboard.storage.db import make_engine, upgrade
from dashboard.storage.risk import RiskCache


log = logging.getLogger(__name__)
REPLICA_RETRY_S = 10
MIGRATE_RETRY_S = 3.0


@dataclass
class Services:
    """The city, the database engine and the bus of one process, built once at creation time."""

    config: dict[str, Any]
    city: City
    engine: Engine
    bus_server: fakeredis.FakeServer | None = None
    # DATABASE_READ_URL: a streaming replica for the reads that may lag by its replay delay (the panorama, the
    # drill-down, the summaries); None: the primary answers them too.
    read_engine: Engine | None = None
    # What "now" is for this process's pages, API and gateway; tests pin a time of day with it.
    clock: Clock = field(default_factory=Clock)
    # The risk the pages and API computed, shared by this process's requests while fresh (storage/risk.py).
    risk: RiskCache = field(default_factory=RiskCache)
    _closers: list = field(default_factory=list, init=False, repr=False)
    _replica_down_until: float = field(default=0.0, init=False, repr=False)
    _redis: redis.Redis | None = field(default=None, init=False, repr=False)
    _redis_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def redis(self) -> redis.Redis:
        """Return the process's shared bus client, made on first use; raise ``bus.BUS_DOWN`` when it cannot be.

        Made late because a cluster client connects when it is made: a process started while the cluster
        is down must still start (and say "degraded"), then find the cluster when it is back.
        """
        with self._redis_lock:
            if self._redis is None:
                self._redis = self.connect_bus()
            return self._redis

    def connect_bus(self, **options) -> redis.Redis:
        """Return a new client of the configured bus (each consumer thread gets its own)."""
        return bus.connect(self.config["REDIS_URL"], self.bus_server, **options)

    @contextmanager
    def read(self, *, primary: bool = False) -> Iterator[Connection]:
        """Give a connection for reads that may lag a little: the replica when one is configured and answers,
        else (or with ``primary``: a read that must see its own writes) the primary.

        A replica that cannot be reached is skipped for REPLICA_RETRY_S, so pages do not each wait on it.
        """
        conn = None
        if self.read_engine is not None and not primary and time.monotonic() >= self._replica_down_until:
            try:
                conn = self.read_engine.connect()
            except SQLAlchemyError:
                self._replica_down_until = time.monotonic() + REPLICA_RETRY_S
                log.warning("read replica unreachable: reading from the primary for %d s", REPLICA_RETRY_S,
                            exc_info=True)
        with conn if conn is not None else self.engine.connect() as c:
            yield c

    def on_close(self, fn) -> None:
        """Call ``fn`` when these services close (parts built on them that hold threads or connections)."""
        self._closers.append(fn)

    def close(self) -> None:
        """Release connections (tests build many apps in one process)."""
        for fn in self._closers:
            fn()
        if self._redis is not None:
            self._redis.close()
        self.engine.dispose()
        if self.read_engine is not None:
            self.read_engine.dispose()


def worker_services(parser: argparse.ArgumentParser, what: str) -> Services:
    """Set up logging and build the services of a separate worker process; refuse to run without REDIS_URL."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config()
    if cfg["EMBEDDED"]:
        parser.error(f"REDIS_URL is not set: a separate {what} needs a real Redis "
                     f"(the embedded default runs its {what} inside `python app.py`)")
    return build_services(cfg)


def build_services(config: dict[str, Any]) -> Services:
    """Load the city, open the database (migrating it when allowed) and connect the bus."""
    city = load_city(config["PANORAMA_CITY"], config["PANORAMA_TZ"])
    # One zone for the whole process: what the rules, the API, the pages and the briefings all read.
    config["PANORAMA_TZ"] = city.timezone
    city.rosters  # noqa: B018 - a broken rosters.yaml stops the start (by line), not the first alert's escalation
    city.briefing_recipients  # noqa: B018 - likewise a broken briefings: section, not the 08:00 briefing
    city.street_areas  # noqa: B018 - likewise a broken streets.geojson or a street's centre off its district, not a map
    engine = make_engine(config["DATABASE_URL"])
    read_url = config.get("DATABASE_READ_URL")
    server = bus.make_embedded_server() if config["EMBEDDED"] else None
    svc = Services(config=config, city=city, engine=engine, bus_server=server,
                   read_engine=make_engine(read_url) if read_url else None,
                   clock=config.get("PANORAMA_CLOCK") or Clock())
    if config["PANORAMA_AUTO_MIGRATE"]:
        _migrate(svc)
    return svc


def _upgrade(svc: Services) -> None:
    """Migrate, then add the city pack's units that the database has not got yet (units.seed)."""
    upgrade(svc.engine)
    with svc.engine.begin() as conn:
        units.seed(conn, svc.city.units)


def _migrate(svc: Services) -> None:
    """Migrate now; if the database cannot be reached, start anyway and migrate in the background when it answers.

    A process that refused to start while the database is down would stay down after it came back (gunicorn
    halts when a worker fails to boot), so the app starts degraded and says so in /api/health. A migration
    that fails for any other reason than reaching the database still stops the start.
    """
    try:
        _upgrade(svc)
        return
    except OperationalError:
        log.warning("database unreachable at start: running degraded, migrating when it answers", exc_info=True)
    stop = threading.Event()
    svc.on_close(stop.set)

    def retry() -> None:
        while not stop.wait(MIGRATE_RETRY_S):
            try:
                _upgrade(svc)
            except OperationalError:
                continue
            log.info("database back: migrations applied")
            return

    threading.Thread(target=retry, name="migrate-when-back", daemon=True).start()
