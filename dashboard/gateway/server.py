"""Push the live city to browsers over websockets: ``python -m dashboard.gateway`` runs one gateway."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import socket
import threading
import weakref

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from sqlalchemy.exc import SQLAlchemyError
from websockets.asyncio.server import ServerConnection, serve as ws_serve
from websockets.protocol import State
from websockets.exceptions import ConnectionClosed

from dashboard.core.config import secret_key
from dashboard.core.scope import CITY, Scope, of_ticket
from dashboard.core import messages
from dashboard.storage import alerts as alert_store
from dashboard.storage import tickets
from dashboard.storage import units as unit_store
from dashboard.core import bus
from dashboard.panorama import state as live
from dashboard.dispatch import board as d
from dashboard.dispatch import major
from dashboard.gateway.admission import Admission
from dashboard.gateway.fanout import OPEN_ALERTS, TRY_AGAIN_LATER, WALL, Client, Fanout, Pacer
from dashboard.storage.services import Services, worker_services
from dashboard.core.channels import UPDATES_CHANNEL, clients_key

log = logging.getLogger("dashboard.gateway")

CLIENTS_TTL_S = 15
HEARTBEAT_S = 5.0
STATE_EVERY_S = 1.0  # feed ages change even when nothing arrives
# How often a build reads every unit from SQL (and at the first build and after a re-sync): between, the deltas
# keep the units current; the read puts right a delta lost to a dead worker. 2,000 rows, not 4 times a second.
UNITS_EVERY_S = 30.0
BUS_DOWN = bus.BUS_DOWN  # a cluster's own (no node reachable, CLUSTERDOWN) included
TICKET_REVOKED = 4401  # close code: the user signed out or was disabled, or the wall's kiosk token was revoked


class Gateway:
    """A websocket server that fans the ingest deltas and one shared live state out to every browser.

    Per gateway: one subscription to the updates channel, one state build at a time, one encoding per frame.
    ``serve()`` runs it on the current loop; ``start()`` / ``stop()`` in a thread of its own (embedded default).

    Frames (JSON text): first ``{"type": "snapshot", "seq", "state": build_state(...)}``, then
    ``{"type": "delta", "seq", "state"?: {changed parts of windows/trend/feeds, generated_at},
    "events"?: [new compact events, newest first, <= 50], "incidents"?: [changed incidents]}`` at most
    ``max_fps`` a second, ``{"type": "heartbeat", "at": ms}`` every ``heartbeat_s`` and
    ``{"type": "status", "bus": "down" | "up"}``; after the bus comes back every client gets a new snapshot.
    A liaison's ticket names their department: their deltas carry only its ``tasks`` and ``escalations`` and the
    ``incidents`` it holds a task of (as the API answers them); a kiosk wall's carry no dispatch at all.
    ``alerts`` (changed alerts, ``messages.AlertView`` with ``title_en``) go to every client, as every viewer reads
    them over the API; a snapshot's state carries the firing and acknowledged ones.
    ``majors`` (every active major incident, ``messages.MajorView``, the whole list each time) go to every client
    too, as ``GET /api/major`` is every viewer's; a snapshot's state carries them.

    At the handshake (HTTP 401 otherwise) a ticket must be signed, less than a minute old, never used before
    (by any gateway), and its user not signed out or disabled since (its kiosk token not revoked); a user or a
    kiosk token holds at most ``PANORAMA_WS_SOCKETS_PER_USER`` sockets across every gateway (HTTP 429 beyond).
    """

    ticket_check_s = 30.0  # how often open sockets are checked against sign-outs and revoked kiosk tokens

    def __init__(self, services: Services, *, host: str | None = None, port: int | None = None,
                 origins: list[str] | None = None, max_fps: float = 10, state_hz: float = 4,
                 send_timeout: float = 5.0, channel: str = UPDATES_CHANNEL, heartbeat_s: float = HEARTBEAT_S,
                 close_timeout: float = 2.0, compression: str | None = None, sndbuf: int | None = 256 * 1024):
        cfg = services.config
        self.services = services
        self.host = host or cfg["PANORAMA_WS_HOST"]
        self.port = cfg["PANORAMA_WS_PORT"] if port is None else port  # 0: any free port, set once listening
        # None admits tools that send no Origin (monitoring, the benchmark); browsers always send one.
        self.origins = [*(cfg["PANORAMA_WS_ORIGINS"] if origins is None else origins), None]
        # Every connection shows a ticket signed with the app's secret (GET /api/ws-ticket), a minute old at most.
        self.secret = secret_key(cfg)
        self.tickets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # connection -> its ticket's subject
        self.sockets_per_user = int(cfg["PANORAMA_WS_SOCKETS_PER_USER"])
        self.admission: Admission | None = None  # made in serve(), on the loop's own Redis client
        self._slots: dict[ServerConnection, str] = {}  # connection -> its socket slot (user and kiosk sockets)
        self.max_fps, self.state_hz, self.send_timeout = max_fps, state_hz, send_timeout
        self.channel, self.heartbeat_s, self.close_timeout = channel, heartbeat_s, close_timeout
        # Off by default: per-message deflate compresses every frame once per client (no shared frames) and
        # keeps a zlib context per connection; pass "deflate" for slow links.
        self.compression = compression
        # A fixed kernel send buffer: a browser that stops reading pins at most this much kernel memory
        # (not tcp_wmem's 4 MiB) and shows up as slow within a second or two at 10 frames/s.
        self.sndbuf = sndbuf
        self.id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.fanout = Fanout()
        self.builds = 0
        self.risk_cache: dict = {}  # the long windows' risk baselines, read once an hour (storage.risk.baselines)
        self.ready = threading.Event()
        self._resync_after: float | None = None  # loop time after which a build re-syncs every client
        self._units_at = float("-inf")  # loop time of the last build that read every unit
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        """Run the gateway in a daemon thread with its own event loop; return once it listens."""
        if self._thread is not None:
            raise RuntimeError("gateway already started")
        self._thread = threading.Thread(target=asyncio.run, args=(self._run_in_thread(),), name="gateway",
                                        daemon=True)
        self._thread.start()
        self.ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"gateway failed to start: {self._error}") from self._error

    def stop(self, timeout: float = 10) -> None:
        """Close every connection (1001 going away) and end the thread."""
        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass  # the loop has already finished
        # stop() must not join from inside the gateway's own thread
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    async def _run_in_thread(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.serve(self._stop)
        except Exception as err:  # noqa: BLE001 - start() reports it
            self._error = err
            log.exception("gateway stopped by an error")
        finally:
            self.ready.set()

    async def serve(self, stop_event: asyncio.Event) -> None:
        """Listen and run the bus, state, tick and heartbeat tasks until ``stop_event`` is set."""
        self._loop = asyncio.get_running_loop()
        self._changed, self._dirty, self._has_state = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._bus_tried, self._news = asyncio.Event(), asyncio.Event()
        counter = self._connect_bus()
        self.admission = Admission(counter, self.id, self.sockets_per_user)
        tasks = [asyncio.create_task(_supervised(loop)) for loop in (
            lambda: self._bus_loop(stop_event), self._state_loop, self._tick_loop,
            lambda: self._heartbeat_loop(counter), self._ticket_loop)]
        try:
            # The first browsers must not be told "bus down" only because we are still subscribing.
            await _wait(self._bus_tried, 3)
            async with ws_serve(self._handler, self.host, self.port, origins=self.origins,
                                process_request=self._check_ticket, process_response=self._after_handshake,
                                compression=self.compression, ping_interval=15, ping_timeout=15,
                                close_timeout=self.close_timeout, max_size=64 * 1024) as server:
                self.port = server.sockets[0].getsockname()[1]
                log.info("gateway %s on ws://%s:%d/ (origins %s)", self.id, self.host, self.port, self.origins)
                self.ready.set()
                await stop_event.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.admission.release_all()
            try:
                await counter.delete(clients_key(self.id))
            except BUS_DOWN:
                pass
            await counter.aclose()

    def _connect_bus(self) -> aioredis.Redis:
        url = self.services.config["REDIS_URL"]
        if not url:
            return bus.connect_async(None, self.services.bus_server)
        # No hidden retries: the bus loop's own backoff decides, and tells the browsers.
        # (bus.connect_async also understands redis+sentinel:// and redis+cluster:// URLs.)
        return bus.connect_async(url, socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 0))

    async def _bus_loop(self, stop_event: asyncio.Event) -> None:
        backoff = ExponentialWithJitterBackoff(base=0.1, cap=5.0)
        failures = 0
        while not stop_event.is_set():
            client = self._connect_bus()
            pubsub = None
            try:
                # Plain PUBLISH / SUBSCRIBE, not the sharded kind: SPEC fixes PUBLISH panorama:updates, and a
                # cluster forwards each such message to every node, so one subscription on any node sees all.
                pubsub = (await bus.initialized(client)).pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel)
                if failures:
                    log.info("bus back after %d failure(s); re-subscribed to %s", failures, self.channel)
                    # Deltas published meanwhile are lost: a build started from now re-syncs every client.
                    self._resync_after = self._loop.time()
                    self._dirty.set()
                failures = 0
                self.fanout.set_bus(True)
                self._bus_tried.set()
                await self._listen(pubsub)
            except BUS_DOWN as err:
                log.warning("bus unavailable (%s); retrying", err)
            finally:
                self._bus_tried.set()
                try:
                    if pubsub is not None:
                        await pubsub.aclose()
                    await client.aclose()
                except Exception:  # noqa: BLE001 - closing a dead connection may fail in any way
                    pass
            self.fanout.set_bus(False)
            failures += 1
            await _wait(stop_event, backoff.compute(failures))

    async def _listen(self, pubsub) -> None:
        silent = 0
        while True:
            msg = await pubsub.get_message(timeout=1.0)
            if msg is None:
                silent += 1
                # A half-open connection raises nothing: ask, and give up when not even a pong comes back.
                if silent % 5 == 0:
                    await pubsub.ping()
                if silent >= 15:
                    raise redis.TimeoutError("no answer from Redis for 15 s")
                continue
            silent = 0
            if msg["type"] == "message" and self.fanout.add_delta(msg["data"]):
                if self.fanout.state_news:  # not for unit reports alone: they change no count (UNITS_EVERY_S)
                    self._dirty.set()
                self._news.set()
                self._changed.set()

    async def _state_loop(self) -> None:
        last = -STATE_EVERY_S
        while True:
            await _wait(self._dirty, last + STATE_EVERY_S - self._loop.time())
            await asyncio.sleep(max(0.0, last + 1 / self.state_hz - self._loop.time()))
            self._dirty.clear()
            last = self._loop.time()
            mark = self.fanout.holders_mark()
            resyncing = self._resync_after is not None and last >= self._resync_after
            with_units = self.fanout.state is None or resyncing or last >= self._units_at + UNITS_EVERY_S
            # each district centre's trend: read while one is connected, and with the units (its first snapshot)
            with_districts = with_units or self.fanout.has_district_clients()
            try:
                built, holders, places = await asyncio.to_thread(self._build, with_units, with_districts)
            except SQLAlchemyError as err:
                log.warning("state build failed (%s); keeping the last state", type(err).__name__)
                continue
            self.fanout.set_holders(holders, mark)
            self.fanout.set_places(places)
            if with_units:
                self._units_at = last
            self.builds += 1
            resync = self._resync_after is not None and last >= self._resync_after
            if resync:
                self._resync_after = None
            if self.fanout.set_state(built, resync=resync):
                self._changed.set()
            self._has_state.set()

    def _build(self, with_units: bool = True, with_districts: bool = True) -> tuple[dict, dict[int, set[str]],
                                                                                   dict[int, str]]:
        svc = self.services
        with svc.read() as conn:  # the counts and events may lag by the replica's replay delay ...
            now = svc.clock()
            state = live.build_state(conn, svc.city, now, svc.config["PANORAMA_STALE_AFTER"], self.risk_cache)
            # each district centre's own trend line (one grouped read), and with the units its newest events
            if with_districts:
                state["district_trends"] = live.district_trends(conn, now)
            if with_units:
                state["district_events"] = {d.code: live.latest_events(conn, district=d.code)
                                            for d in svc.city.districts}
        with svc.engine.connect() as conn:  # ... who holds which incident (what each liaison is sent) may not,
            # nor the alerts a snapshot carries (an acknowledgement just published must not be undone by a lag)
            tz = svc.config["PANORAMA_TZ"]
            state["alerts"] = [messages.alert_view(r, tz, None) for r in alert_store.list_alerts(conn, OPEN_ALERTS)]
            state["majors"] = major.views(conn, tz)
            if with_units:
                state["units"] = [messages.unit_view(r, tz) for r in unit_store.list_units(conn)]
            return state, d.holders(conn), d.places(conn)

    async def _tick_loop(self) -> None:
        pacer = Pacer(self.max_fps)
        while True:
            await self._changed.wait()
            if not self.fanout.has_news():
                # Only the state changed: while deltas flow it rides along with the next one, so it does
                # not take a frame of its own out of the max_fps budget and delay that delta.
                await _wait(self._news, 1 / self.state_hz)
            await asyncio.sleep(pacer.delay(self._loop.time()))
            self._news.clear()
            self._changed.clear()
            now = self._loop.time()
            pacer.take(now)
            if self.fanout.tick(now):
                self._changed.set()

    async def _heartbeat_loop(self, counter: aioredis.Redis) -> None:
        while True:
            try:
                async with asyncio.timeout(2):
                    await counter.set(clients_key(self.id), len(self.fanout.clients), ex=CLIENTS_TTL_S)
            except (*BUS_DOWN, TimeoutError):
                pass  # the key expires; /metrics then counts this gateway's clients as gone
            # a slot whose connection ended without passing through _handler (a lost handshake) is given back
            for ws in [ws for ws in self._slots if ws.state is State.CLOSED]:
                await self.admission.release(self._slots.pop(ws, None))
            await self.admission.refresh()
            await asyncio.sleep(self.heartbeat_s)
            self.fanout.heartbeat(self.services.clock())

    async def _check_ticket(self, connection: ServerConnection, request):
        """Refuse the handshake unless the URL carries a ticket (``/?ticket=...``) that is valid, unused and still
        its user's (401), and its user or kiosk token has a socket slot left (429)."""
        ticket = tickets.ticket_of(request.path)
        opened = tickets.open_ticket(self.secret, ticket)
        if opened is None:
            log.info("refused a connection without a valid ticket from %s", connection.remote_address)
            return connection.respond(401, "a valid ticket is required: GET /api/ws-ticket\n")
        subject, valid_for = opened
        holder = tickets.ticket_holder(subject)
        if holder is not None:
            try:
                # signed out, disabled or revoked since the ticket was made: refused now, not at the next sweep
                [still] = await asyncio.to_thread(tickets.subjects_valid, self.services.engine, [subject])
            except SQLAlchemyError as err:
                log.warning("ticket not checked (%s): refused for now", type(err).__name__)
                return connection.respond(503, "try again later\n")
            if not still:
                log.info("refused a ticket of a signed-out user or revoked kiosk token: %s", subject)
                return connection.respond(401, "signed out or revoked: sign in again\n")
        if not await self.admission.use_ticket(ticket, valid_for):
            log.warning("refused a ticket used before: %s from %s", subject, connection.remote_address)
            return connection.respond(401, "this ticket has been used: GET /api/ws-ticket for a new one\n")
        if holder is not None:
            slot = await self.admission.take_slot(holder)
            if slot is None:
                log.warning("refused a socket beyond %d for %s", self.sockets_per_user, holder)
                return connection.respond(429, f"at most {self.sockets_per_user} live connections per user\n")
            self._slots[connection] = slot
        self.tickets[connection] = subject
        return None

    async def _after_handshake(self, connection: ServerConnection, request, response):
        # refused after the ticket was taken (another Origin, a bad upgrade): its slot goes back at once
        if response.status_code != 101 and connection in self._slots:
            await self.admission.release(self._slots.pop(connection))
        return None

    async def _ticket_loop(self) -> None:
        """Close, every ``ticket_check_s``, the sockets whose user or kiosk token has been revoked since."""
        while True:
            await asyncio.sleep(self.ticket_check_s)
            held = list(self.tickets.items())
            if not held:
                continue
            try:
                valid = await asyncio.to_thread(tickets.subjects_valid, self.services.engine, [s for _, s in held])
            except SQLAlchemyError as err:
                log.warning("ticket check failed (%s); trying again later", type(err).__name__)
                continue
            revoked = [ws for (ws, _), ok in zip(held, valid) if not ok]
            for ws in revoked:
                log.info("closing a socket whose ticket was revoked: %s", self.tickets.pop(ws, None))
            # concurrently: a close waits for the browser's answer, up to close_timeout each
            await asyncio.gather(*(ws.close(TICKET_REVOKED, "signed out or revoked") for ws in revoked),
                                 return_exceptions=True)

    async def _handler(self, ws: ServerConnection) -> None:
        if not await _wait(self._has_state, 10):
            await ws.close(TRY_AGAIN_LATER, "no state yet")
            return
        sock = ws.transport.get_extra_info("socket")
        if self.sndbuf and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        subject = self.tickets.get(ws, {})
        scope = of_ticket(subject)
        # the fan-out's keys: None the city, a liaison's department, WALL the city's wall, else the Scope itself (a
        # district centre's user or wall) -- one frame is encoded per key and tick
        scope = (None if scope == CITY else WALL if scope == Scope(wall=True)
                 else scope.department if scope == Scope(department=scope.department) else scope)
        client = Client(ws, max_fps=self.max_fps, send_timeout=self.send_timeout, close_timeout=self.close_timeout,
                        department=scope)
        self.fanout.join(client)
        sender = asyncio.create_task(client.run(self.fanout.forget))
        try:
            # Browsers send nothing we need, but reading keeps pongs and the closing handshake flowing.
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
        finally:
            self.fanout.forget(client)
            sender.cancel()
            await self.admission.release(self._slots.pop(ws, None))

    def stats(self, timeout: float = 5) -> dict:
        """Return counters and each client's queue sizes, safely from any thread."""
        async def collect():
            f = self.fanout
            return {"clients": len(f.clients), "seq": f.seq, "bus_up": f.bus_up, "builds": self.builds,
                    "slow_closed": f.slow_closed, "queues": [c.queue_stats() for c in f.clients]}
        return asyncio.run_coroutine_threadsafe(collect(), self._loop).result(timeout)


async def _supervised(make_loop) -> None:
    """Run a gateway loop; if a bug ends it, log it and start it again rather than go silently stale."""
    while True:
        try:
            await make_loop()
            return
        except Exception:  # noqa: BLE001 - cancellation (stop) still ends it
            log.exception("gateway loop failed; restarting it")
            await asyncio.sleep(1)


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; return whether it is set."""
    try:
        async with asyncio.timeout(max(0.0, timeout)):
            await event.wait()
    except TimeoutError:
        pass
    return event.is_set()


def main(argv: list[str] | None = None) -> int:
    """Parse options and serve until SIGINT / SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m dashboard.gateway", description=__doc__)
    parser.add_argument("--host", help="interface to listen on (default: PANORAMA_WS_HOST)")
    parser.add_argument("--port", type=int, help="port (default: PANORAMA_WS_PORT)")
    parser.add_argument("--channel", default=UPDATES_CHANNEL, help="the channel of the ingest deltas")
    parser.add_argument("--max-fps", type=float, default=10, help="frames per second per client, at most")
    parser.add_argument("--compression", choices=("none", "deflate"), default="none",
                        help="per-message deflate: less bandwidth, more CPU and memory per client")
    args = parser.parse_args(argv)
    services = worker_services(parser, "gateway")
    gateway = Gateway(services, host=args.host, port=args.port, channel=args.channel, max_fps=args.max_fps,
                      compression=None if args.compression == "none" else args.compression)

    async def run() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await gateway.serve(stop)

    asyncio.run(run())
    services.close()
    return 0

