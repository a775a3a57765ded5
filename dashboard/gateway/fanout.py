"""Decide what browsers receive: the shared fan-out, and per client a bounded, coalescing queue and sender."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Callable

from websockets.asyncio.server import broadcast
from websockets.exceptions import ConnectionClosed

from dashboard.core import messages
from dashboard.core.messages import DISPATCH_PARTS, EVENT_FIELDS, TICKER_EVENTS, UNIT_FIELDS
from dashboard.core.scope import CITY, Scope, readers_of
from dashboard.panorama.state import district_state

log = logging.getLogger(__name__)

MAX_EVENTS = 50  # pending events per client; the newest are kept
MAX_INCIDENTS = 200  # pending incidents (and tasks) per client; a flood of distinct ones must not grow memory
MAX_UNITS = 10_000  # pending units per client (one per unit, latest wins) and units held: beyond any city's fleet
TRY_AGAIN_LATER = 1013
STATE_PARTS = ("windows", "trend", "feeds")  # sent when changed; generated_at changes with every build
DEPARTMENT_PARTS = ("tasks", "escalations")  # a liaison gets only the items of their own department
OPEN_ALERTS = ("firing", "acknowledged")  # what the screens' alert-list shows (SPEC section 9)
WALL = object()  # Client.department of a kiosk wall's socket (the city's; a district's wall is a Scope)
MAX_PLACES = 100_000  # incident -> its readers learned from deltas, oldest forgotten first (a build brings SQL's)


def as_scope(key) -> Scope:
    """Return the scope a client's key stands for: None the city, WALL a city wall, a department's code a liaison
    of it, or a ``Scope`` itself (a district centre's user or wall)."""
    if key is None:
        return CITY
    if key is WALL:
        return Scope(wall=True)
    if isinstance(key, Scope):
        return key
    return Scope(department=key)


class Pending:
    """Delta contents not yet sent: the latest state parts, the newest events and escalations,
    incidents, tasks and alerts by id (latest wins), the latest list of active major incidents."""

    __slots__ = ("state", "events", "incidents", "tasks", "escalations", "alerts", "majors", "units")

    def __init__(self):
        self.state: dict = {}
        self.events: deque = deque(maxlen=MAX_EVENTS)  # newest first
        self.incidents: dict = {}
        self.tasks: dict = {}
        self.escalations: deque = deque(maxlen=MAX_EVENTS)
        self.alerts: dict = {}
        self.majors: list | None = None  # every active major incident as of the latest change; None: no change
        self.units: dict = {}  # unit id -> its latest view: 2,000 units reporting every 5 s coalesce here

    def __bool__(self) -> bool:
        return bool(self.state or self.events or self.incidents or self.tasks or self.escalations or self.alerts
                    or self.units or self.majors is not None)

    def add_events(self, newest_first: list[dict]) -> int:
        """Put events in front of the older ones; return how many fell off the end."""
        over = max(0, len(self.events) + len(newest_first) - MAX_EVENTS)
        self.events.extendleft(reversed(newest_first[:MAX_EVENTS]))
        return over

    def add_incidents(self, incidents: list[dict]) -> int:
        """Keep the latest version of each incident; return how many were dropped to stay bounded."""
        return _add_latest(self.incidents, incidents)

    def add_tasks(self, tasks: list[dict]) -> int:
        """Keep the latest version of each dispatch task; return how many were dropped to stay bounded."""
        return _add_latest(self.tasks, tasks)

    def add_alerts(self, alerts: list[dict]) -> int:
        """Keep the latest version of each alert (a lower version arriving late never replaces a higher one);
        return how many were dropped to stay bounded."""
        newer = [a for a in alerts if a.get("version", 0) >= self.alerts.get(a["id"], {}).get("version", 0)]
        return _add_latest(self.alerts, newer)

    def add_units(self, units: list[dict]) -> int:
        """Keep the latest view of each unit; return how many were dropped to stay bounded."""
        return _add_latest(self.units, units, "unit", MAX_UNITS)

    def merge(self, parts: dict) -> int:
        """Fold one delta's parts in; return how many events, incidents or tasks were dropped."""
        self.state.update(parts.get("state", ()))
        self.escalations.extend(parts.get("escalations", ()))
        if "majors" in parts:
            self.majors = parts["majors"]
        return (self.add_events(parts.get("events", [])) + self.add_incidents(parts.get("incidents", []))
                + self.add_tasks(parts.get("tasks", [])) + self.add_alerts(parts.get("alerts", []))
                + self.add_units(parts.get("units", [])))

    def take(self) -> dict:
        """Return the parts (empty ones left out) and start again empty."""
        parts = {"state": self.state, "events": list(self.events), "incidents": list(self.incidents.values()),
                 "tasks": list(self.tasks.values()), "escalations": list(self.escalations),
                 "alerts": list(self.alerts.values()), "units": list(self.units.values())}
        self.state, self.incidents, self.tasks, self.alerts, self.units = {}, {}, {}, {}, {}
        self.events.clear()
        self.escalations.clear()
        out = {k: v for k, v in parts.items() if v}
        if self.majors is not None:  # an empty list is news: the last one was stood down
            out["majors"], self.majors = self.majors, None
        return out


def _add_latest(by_id: dict, items: list[dict], key: str = "id", cap: int = MAX_INCIDENTS) -> int:
    for item in items:
        by_id.pop(item[key], None)  # re-inserted last: the dict's order is recency
        by_id[item[key]] = item
    over = max(0, len(by_id) - cap)
    for key in list(by_id)[:over]:
        del by_id[key]
    return over


class Pacer:
    """Allow ``rate`` frames a second on average, with one frame of slack (GCRA, a token bucket of two).

    A strict gap of 1/rate between frames would let one late delta push every later frame back for good.
    """

    __slots__ = ("interval", "slack", "tat")

    def __init__(self, rate: float, slack_frames: int = 1):
        self.interval = 1 / rate
        self.slack = slack_frames * self.interval
        self.tat = float("-inf")  # theoretical arrival time of the next frame

    def delay(self, now: float) -> float:
        """Return how long to wait before the next frame may go."""
        return max(0.0, self.tat - self.slack - now)

    def take(self, now: float) -> None:
        """Count a frame sent at ``now``."""
        self.tat = max(self.tat, now) + self.interval


def department_view(parts: dict, department: str, holders: dict[int, set[str]] | None = None) -> dict:
    """Return a delta's parts as a liaison of ``department`` may read them (as the API gives them): only its own
    tasks and escalations, and only the incidents it holds a task of (``holders``: incident -> departments)."""
    view = {k: v for k, v in parts.items() if k not in DISPATCH_PARTS}
    for key in DEPARTMENT_PARTS:
        mine = [item for item in parts.get(key, ()) if item.get("department") == department]
        if mine:
            view[key] = mine
    holders = holders or {}
    incidents = [i for i in parts.get("incidents", ()) if department in holders.get(i.get("id"), ())]
    if incidents:
        view["incidents"] = incidents
    view.pop("units", None)
    units = [u for u in parts.get("units", ()) if u.get("department") == department]  # as GET /api/units
    if units:
        view["units"] = units
    return view


def wall_view(parts: dict) -> dict:
    """Return a delta's parts as a kiosk wall gets them: the city, no dispatch (a kiosk token reads no incidents),
    its units without the tasks they are on."""
    view = {k: v for k, v in parts.items() if k not in DISPATCH_PARTS}
    if "units" in view:
        view["units"] = [{**u, "task_id": None} for u in view["units"]]
    return view


SCOPED_PARTS = (*DISPATCH_PARTS, "units")  # the parts a liaison's or a wall's view differs in


def district_view(parts: dict, code: str, places: dict[int, tuple[str, ...]],
                  trend_of_district: dict | None) -> dict:
    """Return a delta's (or a snapshot state's) parts as a district centre of ``code`` may read them (as the API
    gives them): its windows, trend and events, the incidents of its district and their tasks and escalations
    (``places``: incident -> the district centres that may read it), its alerts, its major incidents, its units.
    Empty parts are left out, except ``majors``, whose empty list is news (the last one stood down)."""
    view = {}
    if "state" in parts:
        view["state"] = district_state(parts["state"], code, trend_of_district)
    scope = Scope(district=code)
    mine = {
        "events": scope.only(parts.get("events", ())),
        "incidents": [i for i in parts.get("incidents", ()) if code in (i.get("district"), i.get("centre"))],
        "tasks": [t for t in parts.get("tasks", ()) if code in places.get(t.get("incident_id"), ())],
        "escalations": [t for t in parts.get("escalations", ()) if code in places.get(t.get("incident_id"), ())],
        "alerts": scope.only(parts.get("alerts", ())),
        "units": scope.only(parts.get("units", ())),
    }
    view.update({k: v for k, v in mine.items() if v})
    if "majors" in parts:
        view["majors"] = scope.majors(parts["majors"])
    return view


def scoped_view(parts: dict, scope: Scope, places: dict[int, tuple[str, ...]], holders: dict[int, set[str]],
                trends: dict[str, dict]) -> dict:
    """Return a delta's parts as ``scope`` reads them: its district's first, then a wall's (no dispatch) or a
    liaison's (their department's) cut of those."""
    view = parts
    if scope.district is not None:
        view = district_view(view, scope.district, places, trends.get(scope.district))
    if scope.wall:
        view = wall_view(view)
    elif scope.department is not None:
        view = department_view(view, scope.department, holders)
    return view


class Client:
    """One browser: its pending frames and the task that sends them, at most ``max_fps`` a second.

    The gateway offers every tick's frame, encoded once, to all clients; a client that is still sending merges
    it into its own bounded ``Pending`` instead and encodes that itself when its turn comes.
    """

    def __init__(self, ws, *, max_fps: float, send_timeout: float, close_timeout: float,
                 department: str | object | None = None):
        self.ws = ws
        # None: everything; a liaison's department (from the signed ticket): only its incidents and tasks;
        # WALL: a kiosk wall, no dispatch at all
        self.department = department
        self.pacer = Pacer(max_fps)
        self.send_timeout = send_timeout
        self.close_timeout = close_timeout
        self.pending = Pending()
        self.shared: tuple[dict, bytes] | None = None  # (parts, frame) shared with every caught-up client
        self.snapshot: bytes | None = None
        self.control: dict[str, bytes] = {}  # "status", "heartbeat": the latest of each kind
        self.seq = 0
        self.overflow_since: float | None = None
        self.frames_sent = 0
        self.closed_for: str | None = None
        self._sending = False
        self._wake = asyncio.Event()

    def try_send_now(self, frame: bytes, seq: int, now: float) -> bool:
        """Write a shared frame at once if nothing is queued, the pace allows it and the socket keeps up.

        The fast path of every tick: no task switch and no timer per client. Anything buffered in the
        transport sends the frame the slow way instead, through the queue that coalesces and times out.
        """
        if (self._sending or self.snapshot is not None or self.shared is not None or self.pending
                or self.control or self.pacer.delay(now) > 0 or self.ws.transport.get_write_buffer_size()):
            return False
        broadcast((self.ws,), frame, text=True)  # skips a closing connection; never blocks
        self.pacer.take(now)
        self.seq, self.overflow_since = seq, None
        self.frames_sent += 1
        return True

    def offer_snapshot(self, frame: bytes, seq: int) -> None:
        """Send a full snapshot next; it supersedes every delta still pending."""
        self.snapshot, self.seq, self.shared = frame, seq, None
        self.pending.take()
        self._wake.set()

    def offer_delta(self, parts: dict, frame: bytes, seq: int, now: float) -> None:
        """Take one tick's delta: as the shared frame when caught up, else merged into this client's own."""
        if self.shared is None and not self.pending:
            self.shared = (parts, frame)
            self.overflow_since = None
        else:
            dropped = 0
            if self.shared is not None:
                dropped += self.pending.merge(self.shared[0])
                self.shared = None
            dropped += self.pending.merge(parts)
            if dropped and self.overflow_since is None:
                self.overflow_since = now
        self.seq = seq
        self._wake.set()

    def offer_control(self, kind: str, frame: bytes) -> None:
        """Queue a status or heartbeat frame (only the latest of each kind is kept)."""
        self.control[kind] = frame
        self._wake.set()

    def overflowing(self, now: float) -> bool:
        """Tell whether this client has been dropping data for longer than ``send_timeout``."""
        return self.overflow_since is not None and now - self.overflow_since > self.send_timeout

    def queue_stats(self) -> dict:
        """Return how much this client holds, to watch that it stays bounded."""
        transport = self.ws.transport
        shared_events = len(self.shared[0].get("events", ())) if self.shared else 0
        return {"events": len(self.pending.events) + shared_events,
                "incidents": len(self.pending.incidents), "state_keys": len(self.pending.state),
                "frames": sum(f is not None for f in (self.snapshot, self.shared)) + len(self.control),
                "write_buffer": transport.get_write_buffer_size() if transport is not None else 0,
                "frames_sent": self.frames_sent}

    def _next_control(self) -> bytes | None:
        # Status and heartbeats are tiny and paint nothing: they are not paced, so they never starve.
        for kind in ("status", "heartbeat"):
            if kind in self.control:
                return self.control.pop(kind)
        return None

    def _next_data(self) -> bytes | None:
        if self.snapshot is not None:  # always the first frame, and it supersedes older deltas
            frame, self.snapshot = self.snapshot, None
            return frame
        if self.shared is not None:
            frame, self.shared = self.shared[1], None
            return frame
        if self.pending:
            return messages.delta_frame(self.seq, self.pending.take())
        return None

    def _has_more(self) -> bool:
        return self.snapshot is not None or self.shared is not None or bool(self.pending) or bool(self.control)

    async def run(self, forget: Callable[["Client"], None]) -> None:
        """Send frames until the connection closes, or close it when the browser cannot keep up."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self.overflowing(loop.time()):
                    return await self._close_slow("pending data overflowed", forget)
                frame = self._next_control() if self.snapshot is None else None
                if frame is None:
                    delay = self.pacer.delay(loop.time())
                    if delay > 0:
                        await asyncio.sleep(delay)
                    frame = self._next_data()
                    if frame is None:
                        continue
                    self.pacer.take(loop.time())
                if self._has_more():
                    self._wake.set()
                self._sending = True
                try:
                    async with asyncio.timeout(self.send_timeout):
                        await self.ws.send(frame, text=True)
                except TimeoutError:
                    return await self._close_slow("send timed out", forget)
                finally:
                    self._sending = False
                self.frames_sent += 1
        except ConnectionClosed:
            pass

    async def _close_slow(self, reason: str, forget: Callable[["Client"], None]) -> None:
        self.closed_for = reason
        forget(self)  # nothing more is queued for it while the close is under way
        self.pending.take()
        self.shared = self.snapshot = None
        self.control.clear()
        log.info("closing a slow client %s: %s", self.ws.remote_address, reason)
        try:
            # The close frame waits behind the unread data, so a browser that reads nothing never answers.
            async with asyncio.timeout(self.close_timeout):
                await self.ws.close(TRY_AGAIN_LATER, "try again later")
        except TimeoutError:
            self.ws.transport.abort()


class Fanout:
    """What every browser is sent: the latest state and events as of ``seq``, the next tick's data, the clients.

    Not thread-safe: the gateway calls it from its event loop only.
    """

    def __init__(self):
        self.clients: set[Client] = set()
        self.seq = 0
        self.state: dict | None = None  # the latest build, without its events
        self.recent: deque = deque(maxlen=TICKER_EVENTS)  # newest first, as sent up to ``seq``
        # the firing and acknowledged alerts as of ``seq``, by id: from SQL at each build, then the ticks' deltas
        self.alerts: dict[int, dict] = {}
        # the active major incidents as of ``seq`` (messages.MajorView): from SQL at each build, then the deltas
        self.majors: list[dict] = []
        self.pending = Pending()  # what the next tick sends to everyone
        # incident -> departments holding a task of it: from SQL (set_holders) and from the deltas' tasks since
        self.holders: dict[int, set[str]] = {}
        self._learned: deque = deque(maxlen=100_000)  # (mark, incident id, department), newest last
        self._marks = 0
        self.bus_up = False
        self.slow_closed = 0
        self.units: dict[str, dict] = {}  # unit id -> latest view as of ``seq``: SQL at set_units, then deltas
        self._snapshots: dict = {}  # scope (None, a department, WALL) -> its snapshot, until something changes
        self._resync = False
        # incident -> the district centres that may read it (what a district centre is sent of tasks and
        # escalations): SQL at each build (set_places), then the deltas' incidents
        self.places: dict[int, tuple[str, ...]] = {}
        self.trends: dict[str, dict] = {}  # district -> its per-minute trend, as of the latest build
        # district -> its newest events as of ``seq`` (a district centre's snapshot): SQL now and then, then deltas
        self.district_recent: dict[str, deque] = {}
        # whether the last delta queued changes what a state build reads: a delta of unit reports alone (400 a
        # second from a city's fleet) changes no count, and the ticks keep the units current between builds
        self.state_news = False

    def add_delta(self, raw: bytes) -> bool:
        """Queue an ingest delta's events (in the compact view) and incidents for the next tick; ``state_news``
        then says whether it changes what a state build reads."""
        try:
            delta = messages.read_delta(raw)
            events = [{k: e.get(k) for k in EVENT_FIELDS} for e in delta.get("events", ())[:MAX_EVENTS]]
            incidents = [i for i in delta.get("incidents", ()) if "id" in i]
            tasks = [t for t in delta.get("tasks", ()) if "id" in t]  # dispatch changes
            escalations = list(delta.get("escalations", ()))[:MAX_EVENTS]
            # alerts are every viewer's (GET /api/alerts): every client gets them, walls and liaisons too
            alerts = [a for a in delta.get("alerts", ()) if isinstance(a, dict) and isinstance(a.get("id"), int)
                      and isinstance(a.get("version"), int)]
            # the whole list each time (every viewer's, as GET /api/major): walls and liaisons get it too
            majors = delta.get("majors")
            if majors is not None:
                majors = [m for m in majors if isinstance(m, dict) and isinstance(m.get("incident"), dict)]
            units = [{k: u.get(k) for k in UNIT_FIELDS} for u in delta.get("units", ())
                     if isinstance(u, dict) and isinstance(u.get("unit"), str)]
        except messages.UnknownVersion as err:
            log.warning("ignored a delta: %s", err)
            return False
        except (ValueError, AttributeError, TypeError) as err:  # orjson.JSONDecodeError is a ValueError
            log.warning("ignored a malformed delta: %s", err)
            return False
        self.pending.add_events(events)
        self.pending.add_incidents(incidents)
        self.pending.add_tasks(tasks)
        self.pending.add_alerts(alerts)
        if majors is not None:
            self.pending.majors = majors
        self.pending.add_units(units)
        self._place(incidents + [m["incident"] for m in majors or ()])
        self._learn(tasks + escalations)
        self.pending.escalations.extend(escalations)
        self.state_news = (any(delta.get(k) for k in ("events", "counts", "feeds", "incidents", "stored"))
                           or any(k in delta for k in ("tasks", "escalations", "alerts", "majors")))
        return True

    def _learn(self, tasks: list[dict]) -> None:
        for t in tasks:
            incident_id, department = t.get("incident_id"), t.get("department")
            if isinstance(incident_id, int) and isinstance(department, str):
                self.holders.setdefault(incident_id, set()).add(department)
                self._learned.append((self._marks, incident_id, department))

    def _place(self, incidents: list[dict]) -> None:
        for i in incidents:
            if isinstance(i.get("id"), int) and isinstance(i.get("district"), str):
                self.places.pop(i["id"], None)
                self.places[i["id"]] = readers_of(i["district"], i.get("centre"))
        self._trim_places()

    def set_places(self, built: dict[int, tuple[str, ...]]) -> None:
        """Take who may read each incident not closed from SQL, keeping what deltas taught (a delta is as new as
        the build or newer: a hand-over after the build's read came as a delta)."""
        places = dict(built)
        places.update(self.places)
        self.places = places
        self._trim_places()

    def _trim_places(self) -> None:
        for key in list(self.places)[:max(0, len(self.places) - MAX_PLACES)]:
            del self.places[key]

    def holders_mark(self) -> int:
        """Return a mark to pass to ``set_holders`` with what SQL said after it (read the database after this)."""
        self._marks += 1
        return self._marks

    def set_holders(self, built: dict[int, set[str]], mark: int) -> None:
        """Take who holds tasks of which incident from SQL, keeping what deltas taught since ``mark`` was taken
        (the database may have been read before those tasks were committed)."""
        while self._learned and self._learned[0][0] < mark:
            self._learned.popleft()
        holders = {k: set(v) for k, v in built.items()}
        for _, incident_id, department in self._learned:
            holders.setdefault(incident_id, set()).add(department)
        self.holders = holders

    def set_state(self, built: dict, *, resync: bool = False) -> bool:
        """Take a fresh ``build_state``; return whether the next tick has something to send."""
        state = {k: v for k, v in built.items()
                 if k not in ("events", "alerts", "majors", "units", "district_trends", "district_events")}
        if "district_trends" in built:
            self.trends = built["district_trends"]
        if "district_events" in built:  # read now and then (with the units): the deltas keep them current between
            self.district_recent = {code: deque(evs, maxlen=TICKER_EVENTS)
                                    for code, evs in built["district_events"].items()}
        if "majors" in built:  # SQL's truth for the snapshot, as the alerts below
            self.majors = list(built["majors"])
            self._snapshots.clear()
        if "alerts" in built:
            # SQL's truth replaces ours; a delta that raced the read made the build dirty again, so the next
            # build (within 1/state_hz) has it too
            self.alerts = {a["id"]: a for a in built["alerts"]}
            self._snapshots.clear()
        if "units" in built:  # read now and then (Gateway.UNITS_EVERY_S): deltas keep it current between
            self.units = {u["unit"]: u for u in built["units"][:MAX_UNITS]}
            self._snapshots.clear()
        if self.state is None or resync:
            # The database is the truth: its newest events replace ours; pending ones it has are not resent.
            self.recent = deque(built["events"], maxlen=TICKER_EVENTS)
            seen = {(e["domain"], e["id"]) for e in built["events"]}
            kept = [e for e in self.pending.events if (e["domain"], e["id"]) not in seen]
            self.pending.events.clear()
            self.pending.add_events(kept)
            self.pending.state.clear()
            self._resync = self.state is not None  # the first build has no clients to re-sync
            self.state = state
            self._snapshots.clear()
            return True
        changed = {k: state[k] for k in STATE_PARTS if state[k] != self.state.get(k)}
        self.state = state
        if changed:
            self.pending.state.update(changed, generated_at=state["generated_at"])
            self._snapshots.clear()
        return bool(changed)

    def has_news(self) -> bool:
        """Tell whether the next tick carries events, incidents or tasks (not only a state change)."""
        p = self.pending
        return bool(p.events or p.incidents or p.tasks or p.escalations or p.alerts or p.units
                    or p.majors is not None) or self._resync

    def snapshot_frame(self, scope=None) -> bytes:
        """Return the snapshot a new client of ``scope`` gets (None: everything; a liaison's department: its units
        only; WALL: units without their tasks; a district centre's ``Scope``: its district only), encoded once per
        scope until the state, events or units change."""
        frame = self._snapshots.get(scope)
        if frame is None:
            which = as_scope(scope)
            units = list(self.units.values())
            state = {**self.state, "alerts": list(self.alerts.values()), "majors": self.majors}
            if which.district is not None:
                code = which.district
                recent = self.district_recent.get(code)
                events = list(recent) if recent is not None else list(self.recent)
                state = district_state({**state, "events": events}, code, self.trends.get(code))
                state["majors"] = which.majors(state["majors"])
            else:
                state["events"] = list(self.recent)
            units = which.units(units)
            frame = messages.snapshot_frame(self.seq, {**state, "units": units})
            self._snapshots[scope] = frame
        return frame

    def tick(self, now: float) -> bool:
        """Offer every client what changed since the last tick (a liaison: only its department's incidents, tasks
        and escalations; a wall: no dispatch); return whether more is left for the next."""
        if self.state is None:
            return False
        if self._resync:
            self._resync = False
            self.seq += 1
            self._snapshots.clear()
            for c in self.clients:
                c.offer_snapshot(self.snapshot_frame(c.department), self.seq)
            return bool(self.pending)
        if not self.pending:
            return False
        parts = self.pending.take()
        self.seq += 1
        self.recent.extendleft(reversed(parts.get("events", ())))
        for e in reversed(parts.get("events", ())):
            if e.get("district") in self.district_recent:
                self.district_recent[e["district"]].appendleft(e)
            elif isinstance(e.get("district"), str):
                self.district_recent[e["district"]] = deque([e], maxlen=TICKER_EVENTS)
        self._apply_alerts(parts.get("alerts", ()))
        if "majors" in parts:
            self.majors = parts["majors"]
        self._apply_units(parts.get("units", ()))
        self._snapshots.clear()
        frame = messages.delta_frame(self.seq, parts)  # encoded once, shared by every caught-up client
        views: dict = {}  # department (or WALL) -> its view, encoded once per tick
        for c in self.clients:
            p, f = parts, frame
            if c.department is not None:
                if c.department not in views:
                    views[c.department] = self._department_view(parts, frame, c.department)
                if views[c.department] is None:
                    continue  # only other departments' tasks changed: nothing for this liaison
                p, f = views[c.department]
            if not c.try_send_now(f, self.seq, now):
                c.offer_delta(p, f, self.seq, now)
        return False

    def _apply_alerts(self, alerts) -> None:
        for a in alerts:
            held = self.alerts.get(a["id"])
            if held is not None and held.get("version", 0) > a["version"]:
                continue  # an older change arriving late
            if a.get("status") in OPEN_ALERTS:
                self.alerts[a["id"]] = a
            else:
                self.alerts.pop(a["id"], None)

    def _apply_units(self, units) -> None:
        for u in units:
            self.units.pop(u["unit"], None)
            self.units[u["unit"]] = u
        for key in list(self.units)[:max(0, len(self.units) - MAX_UNITS)]:
            del self.units[key]

    def _department_view(self, parts: dict, frame: bytes, department) -> tuple[dict, bytes] | None:
        scope = as_scope(department)
        if scope.district is None and not any(key in parts for key in SCOPED_PARTS):
            return parts, frame  # no dispatch this tick: the shared frame is already everyone's view
        view = scoped_view(parts, scope, self.places, self.holders, self.trends)
        return (view, messages.delta_frame(self.seq, view)) if view else None

    def has_district_clients(self) -> bool:
        """Tell whether a district centre's user or wall is connected (their trends are then read at each build)."""
        return any(as_scope(c.department).district is not None for c in self.clients)

    def set_bus(self, up: bool) -> None:
        """Tell every client when live updates stop or resume."""
        if up != self.bus_up:
            self.bus_up = up
            frame = messages.status_frame(up)
            for c in self.clients:
                c.offer_control("status", frame)

    def heartbeat(self, at_ms: int) -> None:
        """Queue a heartbeat for every client, so a page can tell a silently dead connection."""
        frame = messages.heartbeat_frame(at_ms)
        for c in self.clients:
            c.offer_control("heartbeat", frame)

    def join(self, client: Client) -> None:
        """Start a client with the snapshot (and the bus status when it is down)."""
        client.offer_snapshot(self.snapshot_frame(client.department), self.seq)
        if not self.bus_up:
            client.offer_control("status", messages.status_frame(False))
        self.clients.add(client)

    def forget(self, client: Client) -> None:
        """Drop a client (closed, or too slow); nothing more is queued for it."""
        if client in self.clients:
            self.clients.discard(client)
            self.slow_closed += client.closed_for is not None
