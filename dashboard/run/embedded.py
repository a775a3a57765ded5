"""Run the embedded default in one process: in-process bus, ingest, the websocket gateway and the simulator."""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field

from dashboard.storage import users as accounts
from dashboard.briefings.schedule import start_briefing_scheduler
from dashboard.dispatch.deadlines import start_deadline_checker
from dashboard.storage.partitions import start_maintenance
from dashboard.gateway.server import Gateway
from dashboard.storage.services import Services
from feeds.alerting import start_alert_ticker
from feeds.consumers import Consumer, PubSubConsumer, StreamConsumer
from feeds.notify import start_sender
from feeds.pipeline import make_pipeline

log = logging.getLogger(__name__)


@dataclass
class Embedded:
    """The background parts of the embedded default; ``stop()`` ends them."""

    consumers: list[Consumer]
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    gateway: Gateway | None = None

    def stop(self) -> None:
        """Stop the simulator, the gateway and the consumers."""
        self.stop_event.set()
        for th in self.threads:
            th.join(5)
        if self.gateway is not None:
            self.gateway.stop()
        for c in self.consumers:
            c.stop()


def start_embedded(services: Services, *, simulate: bool | None = None, gateway: bool = True) -> Embedded:
    """Start ingest (pub/sub and stream), the websocket gateway and, when configured, the simulator."""
    from feeds.fleet import FleetSimulator
    from feeds.simulate import Simulator

    cfg = services.config
    _print_demo_users(create_demo_users(services))
    common = {"prefix": cfg["PANORAMA_FEED_PREFIX"], "batch_size": cfg["PANORAMA_BATCH_SIZE"],
              "flush_ms": cfg["PANORAMA_FLUSH_MS"]}
    consumers: list[Consumer] = [
        PubSubConsumer(make_pipeline(services), services.connect_bus, **common),
        StreamConsumer(make_pipeline(services), services.connect_bus, consumer="embedded", **common),
    ]
    for c in consumers:
        c.start()
    running = Embedded(consumers)
    # Task deadlines are checked here in the embedded default, by every ingest worker in production.
    start_deadline_checker(services, running.stop_event)
    # Alert rules' tick likewise (every ingest worker in production, one at a time by a lease).
    start_alert_ticker(services, running.stop_event)
    # Notifications from the outbox likewise (every ingest worker in production, each message taken by one).
    running.threads.append(start_sender(services, running.stop_event).thread)
    # Briefings likewise: each slot is made once however many processes run the scheduler.
    start_briefing_scheduler(services, running.stop_event)
    # Retention: old rows deleted in batches on SQLite, old day partitions dropped on PostgreSQL.
    running.threads.append(start_maintenance(services, running.stop_event))
    if gateway:
        running.gateway = _start_gateway(services)
    if cfg["PANORAMA_SIMULATE"] if simulate is None else simulate:
        # Subscribed before the first event, so the simulator's opening minutes are not lost.
        for c in consumers:
            c.connected.wait(5)
        sim = Simulator(services.city, tz=cfg["PANORAMA_TZ"])
        bus = services.connect_bus()
        th = threading.Thread(target=sim.run, args=(bus, running.stop_event),
                              kwargs={"prefix": cfg["PANORAMA_FEED_PREFIX"]}, name="simulator", daemon=True)
        th.start()
        running.threads.append(th)
        if services.city.units:  # the fleet reports its places beside the events (feeds/fleet.py)
            fleet = FleetSimulator(services.city.units, seed=sim.seed)
            th = threading.Thread(target=fleet.run, args=(services.connect_bus(), running.stop_event),
                                  kwargs={"prefix": cfg["PANORAMA_FEED_PREFIX"]}, name="fleet", daemon=True)
            th.start()
            running.threads.append(th)
    return running


def _start_gateway(services: Services) -> Gateway | None:
    gw = Gateway(services)
    try:
        gw.start()
    except (RuntimeError, OSError) as err:
        # The pages fall back to polling /api/summary?live=1, so a taken port must not stop the city.
        log.error("websocket gateway not started (%s); pages will poll instead", err)
        gw.stop()
        return None
    return gw


# One demo user per role, so a newcomer can try every page; the liaison acts for the fire service.
DEMO_USERS = (("demo-viewer", "viewer", None), ("demo-officer", "officer", None),
              ("demo-commander", "commander", None), ("demo-liaison", "liaison", "fire"),
              ("demo-admin", "admin", None))


def create_demo_users(services: Services) -> list[tuple[str, str, str]]:
    """Create the demo users that do not exist yet, with random passwords; return (name, role, password)."""
    existing = {u["username"] for u in accounts.list_users(services.engine)}
    departments = [d["code"] for d in services.city.departments]
    made = []
    for name, role, department in DEMO_USERS:
        if name in existing:
            continue
        password = secrets.token_urlsafe(9)
        try:
            accounts.create_user(services.engine, name, password, role, department, departments)
        except accounts.UserError:
            # Another process created it first (or the city pack has no such department).
            log.warning("demo user %s not created", name, exc_info=True)
            continue
        made.append((name, role, password))
    return made


def _print_demo_users(made: list[tuple[str, str, str]]) -> None:
    # Printed once, when created: only the hashes are kept, so a restart cannot show them again.
    if not made:
        return
    lines = [f"  {name:<16} {role:<10} {password}" for name, role, password in made]
    print("Demo users (shown once; `flask --app app:server users list` lists them):", *lines, sep="\n", flush=True)
