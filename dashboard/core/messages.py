"""Every message that crosses a process, defined once: the ``panorama:updates`` delta, the gateway's frames and
the event, incident and task views inside them. Each carries ``v`` (``VERSION``); ``assets/live_frames.js``
documents the same shapes for the browser.

Producers: the ingest pipeline (``feeds.pipeline``) and the dispatch desk publish deltas; the gateway reads them
(``read_delta``) and sends frames; the pages read the frames. A change to a shape that old readers would misread
bumps ``VERSION``; readers drop (and log) a message of another version instead of misreading it.
"""

from __future__ import annotations

from typing import Any, Iterable, Literal, Mapping, NotRequired, TypedDict

import orjson

from dashboard.core.clock import iso

VERSION = 1
TICKER_EVENTS = 30  # the newest events a screen's ticker shows (snapshot and gateway alike)
DELTA_EVENTS = 100  # the newest events one ingest delta carries; the screens show fewer
DISPATCH_PARTS = ("incidents", "tasks", "escalations")  # what a wall (kiosk token) is never sent


class EventView(TypedDict):
    """An event as screens show it (the ticker, the gateway's frames): ``ts`` is epoch ms."""

    id: str
    domain: str
    kind: str
    district: str
    street: str | None
    severity: int
    title: str | None
    ts: int
    value: float | None
    unit: str | None


class DeltaEvent(EventView):
    """An event in a ``panorama:updates`` delta: the view plus its place, for other subscribers."""

    lat: float | None
    lon: float | None


class IncidentView(TypedDict):
    """An incident as the API shows it (SPEC section 6), plus its domain in deltas and lists."""

    id: int
    kind: str
    district: str
    severity: int
    status: str
    reports: int
    opened_at: str  # RFC 3339 with the city's offset
    title: str
    domain: NotRequired[str]
    escalated: NotRequired[bool]  # raised to emergency management (dispatch.escalation); lists and deltas
    # the centre that runs it (dispatch.handover): None the city centre, else a district's code; lists and deltas
    centre: NotRequired[str | None]


class TaskView(TypedDict):
    """A dispatch task as the API shows it (SPEC section 6)."""

    id: int
    incident_id: int
    department: str
    state: str
    version: int
    ack_due: str
    resolve_due: str
    escalated: bool
    overdue: NotRequired[Literal["acknowledge", "resolve"]]  # in ``escalations`` only


class AlertView(TypedDict):
    """An alert as the API shows it (SPEC section 9): times RFC 3339 with the city's offset; ``title`` in the
    reader's language. Deltas carry ``title`` in Chinese and ``title_en`` beside it, for each screen to pick."""

    id: int
    rule: str
    level: str
    status: str
    district: str | None
    zone: str | None
    started_at: str
    resolved_at: str | None
    value: float | None
    baseline: float | None
    title: str
    version: int
    title_en: NotRequired[str]  # in deltas


class MajorView(TypedDict):
    """A major incident now active (SPEC section 10, ``GET /api/major``): deltas carry every active one each time
    one changes (``majors``), so a reader replaces its list rather than merging."""

    incident: IncidentView
    level: int  # 1 (I, the gravest) .. 4 (IV)
    declared_at: str  # RFC 3339 with the city's offset: the declaration (a level change keeps it)
    declared_by: str


class UnitView(TypedDict):
    """A response unit as the API shows it (SPEC section 11): ``updated_at`` RFC 3339 with the city's offset."""

    unit: str
    department: str
    kind: str
    status: str  # available | en_route | on_scene | off_duty
    lat: float | None
    lon: float | None
    updated_at: str | None
    task_id: int | None
    district: str | None  # its home district (units.yaml): whose district centre reads it; None: the city's


class DeltaUnit(UnitView):
    """A unit in a ``panorama:updates`` delta: the view, and where it is sent when a dispatch just assigned it
    (``[lat, lon]`` of its incident; the simulator drives it there). Screens keep only the view."""

    target: NotRequired[list[float] | None]


class NotificationPayload(TypedDict):
    """What a notification carries (a webhook's JSON body; the SMS template's parameters are taken from it):
    the idempotency key a receiver deduplicates by, what happened, when, and the alert as deltas carry it."""

    v: int
    key: str  # the idempotency key, also in the X-Panorama-Idempotency-Key header
    type: str  # alert_firing | alert_resolved
    at: str  # RFC 3339 with the city's offset: when the change happened
    policy: str
    alert: AlertView


class NotificationView(TypedDict):
    """One row of the delivery log (GET /api/notifications): the message, where it went, how it fared."""

    id: int
    key: str
    channel: str
    address: str
    subject: str
    status: str  # pending | sending | sent | failed | cancelled
    attempts: int
    created_at: str
    due_at: str | None  # pending: the next try; sending: when its sender's lease runs out
    sent_at: str | None
    last_error: str | None
    log: list[dict]  # every attempt, oldest first: {"at", "ok", "detail"}


class Delta(TypedDict, total=False):
    """One message on ``panorama:updates``: what a batch of ingest or one dispatch write changed."""

    v: int
    type: Literal["delta"]
    at: int  # epoch ms, when it was published
    stored: int  # events the batch stored (ingest only)
    events: list[DeltaEvent]  # newest first, at most DELTA_EVENTS
    counts: list[list]  # [minute_ms, district, domain, n, sev1..4] added to the rollups
    feeds: dict[str, int]  # domain -> last received ms
    incidents: list[IncidentView]
    tasks: list[TaskView]
    escalations: list[TaskView]
    alerts: list[AlertView]  # alerts that changed (evaluation, acknowledgement)
    majors: list[MajorView]  # every major incident active after a declaration, level change or stand-down
    units: list[DeltaUnit]  # units that changed (a report, an assignment, their task moving), one per unit


EVENT_FIELDS: tuple[str, ...] = tuple(EventView.__annotations__)


class UnknownVersion(ValueError):
    """A message of a version this process does not read."""


def event_view(domain, event_id, ts_ms, kind, district, street, severity, title, value=None, unit=None) -> EventView:
    """Return the compact form of an event that screens show."""
    return {"id": event_id, "domain": domain, "kind": kind, "district": district, "street": street,
            "severity": severity, "title": title, "ts": ts_ms, "value": value, "unit": unit}


def incident_view(row: Mapping[str, Any], tz: str, *, domain: bool = False) -> IncidentView:
    """Return an incident as the API shows it (SPEC section 6); with ``domain``, as deltas and lists carry it."""
    view: IncidentView = {"id": row["id"], "kind": row["kind"], "district": row["district"],
                          "severity": row["severity"], "status": row["status"], "reports": row["reports"],
                          "opened_at": iso(row["opened_ms"], tz), "title": row["title"]}
    if domain:
        view["domain"] = row["domain"]
        view["escalated"] = row.get("escalated_ms") is not None
        view["centre"] = row.get("centre")
    return view


def task_view(row: Mapping[str, Any], tz: str) -> TaskView:
    """Return a task as the API shows it (SPEC section 6)."""
    return {"id": row["id"], "incident_id": row["incident_id"], "department": row["department"],
            "state": row["state"], "version": row["version"], "ack_due": iso(row["ack_due_ms"], tz),
            "resolve_due": iso(row["resolve_due_ms"], tz), "escalated": bool(row["escalated"])}


def alert_view(row: Mapping[str, Any], tz: str, lang: str | None = "zh") -> AlertView:
    """Return an alert as the API shows it (SPEC section 9) in ``lang``; ``lang=None``: as deltas carry it, with
    ``title`` in Chinese and ``title_en``."""
    view: AlertView = {"id": row["id"], "rule": row["rule"], "level": row["level"], "status": row["status"],
                       "district": row["district"], "zone": row["zone"], "started_at": iso(row["started_ms"], tz),
                       "resolved_at": iso(row["resolved_ms"], tz) if row["resolved_ms"] is not None else None,
                       "value": row["value"], "baseline": row["baseline"],
                       "title": row["title_en"] if lang == "en" else row["title"], "version": row["version"]}
    if lang is None:
        view["title_en"] = row["title_en"]
    return view


def major_view(row: Mapping[str, Any], incident: Mapping[str, Any], tz: str) -> MajorView:
    """Return an active major incident (a ``major_incidents`` row and its incident's) as SPEC section 10 shows it."""
    return {"incident": incident_view(incident, tz, domain=True), "level": row["level"],
            "declared_at": iso(row["declared_ms"], tz), "declared_by": row["declared_by"]}


def unit_view(row: Mapping[str, Any], tz: str) -> UnitView:
    """Return a stored unit as the API shows it (SPEC section 11)."""
    return {"unit": row["unit"], "department": row["department"], "kind": row["kind"], "status": row["status"],
            "lat": row["lat"], "lon": row["lon"],
            "updated_at": iso(row["updated_ms"], tz) if row["updated_ms"] is not None else None,
            "task_id": row["task_id"], "district": row.get("district")}


UNIT_FIELDS: tuple[str, ...] = tuple(UnitView.__annotations__)


def notification_payload(key: str, type_: str, at: str, alert: AlertView, policy: str) -> NotificationPayload:
    """Return what a notification of an alert's change carries."""
    return {"v": VERSION, "key": key, "type": type_, "at": at, "policy": policy, "alert": alert}


def notification_view(row: Mapping[str, Any], attempts: Iterable[Mapping[str, Any]], tz: str) -> NotificationView:
    """Return an outbox row and its attempts as the delivery log shows them."""
    live = row["status"] in ("pending", "sending")
    return {"id": row["id"], "key": row["key"], "channel": row["channel"], "address": row["address"],
            "subject": row["subject"], "status": row["status"], "attempts": row["attempts"],
            "created_at": iso(row["created_ms"], tz), "due_at": iso(row["due_ms"], tz) if live else None,
            "sent_at": iso(row["sent_ms"], tz) if row["sent_ms"] is not None else None,
            "last_error": row["last_error"],
            "log": [{"at": iso(a["at_ms"], tz), "ok": bool(a["ok"]), "detail": a["detail"]} for a in attempts]}


def encode_delta(at_ms: int, *, events: Iterable[DeltaEvent] = (), counts: Iterable[list] = (),
                 feeds: Mapping[str, int] | None = None, incidents: Iterable[IncidentView] = (),
                 tasks: Iterable[TaskView] | None = None, escalations: Iterable[TaskView] | None = None,
                 stored: int | None = None, alerts: Iterable[AlertView] | None = None,
                 majors: Iterable[MajorView] | None = None, units: Iterable[DeltaUnit] | None = None) -> bytes:
    """Encode one ``panorama:updates`` delta: ingest's carry ``stored``, dispatch's ``tasks`` (and ``escalations``
    from the deadline checker), early warning's ``alerts``, the major-incident mode's ``majors`` (all active),
    unit reports and assignments ``units``."""
    msg: Delta = {"v": VERSION, "type": "delta", "at": at_ms, "events": list(events), "counts": list(counts),
                  "feeds": dict(feeds or {}), "incidents": list(incidents)}
    if stored is not None:
        msg["stored"] = stored
    if tasks is not None:
        msg["tasks"] = list(tasks)
    if escalations is not None:
        msg["escalations"] = list(escalations)
    if alerts is not None:
        msg["alerts"] = list(alerts)
    if majors is not None:
        msg["majors"] = list(majors)
    if units is not None:
        msg["units"] = list(units)
    return orjson.dumps(msg)


def read_delta(raw: bytes | str) -> Delta:
    """Decode a delta: ValueError when it is not one, ``UnknownVersion`` when it is of another version.

    A delta without ``v`` is version 1 (what producers sent before the field existed).
    """
    msg = orjson.loads(raw)
    if not isinstance(msg, dict):
        raise ValueError("a delta is a JSON object")
    v = msg.get("v", 1)
    if v != VERSION:
        raise UnknownVersion(f"delta version {v!r}; this process reads {VERSION}")
    return msg


# --- the gateway's frames (JSON text over the websocket) -------------------------------------------------

def snapshot_frame(seq: int, state: Mapping[str, Any]) -> bytes:
    """Encode the first frame a client gets: the whole live state as of ``seq``."""
    return orjson.dumps({"v": VERSION, "type": "snapshot", "seq": seq, "state": state})


def delta_frame(seq: int, parts: Mapping[str, Any]) -> bytes:
    """Encode a delta frame: ``state``? (changed parts), ``events``? (newest first), ``incidents``?, ``tasks``?,
    ``escalations``?, ``alerts``?, ``units``? (``UnitView``s) -- only the parts that changed."""
    return orjson.dumps({"v": VERSION, "type": "delta", "seq": seq, **parts})


def heartbeat_frame(at_ms: int) -> bytes:
    """Encode the heartbeat that lets a page tell a silently dead connection."""
    return orjson.dumps({"v": VERSION, "type": "heartbeat", "at": at_ms})


def status_frame(bus_up: bool) -> bytes:
    """Encode the frame that tells browsers whether live updates flow."""
    return orjson.dumps({"v": VERSION, "type": "status", "bus": "up" if bus_up else "down"})
