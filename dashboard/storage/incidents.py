"""Open incidents from events, joining repeated reports of one happening into one incident."""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, bindparam, case, exists, insert, null, select, text, tuple_, update
from sqlalchemy.engine import Connection

from dashboard.storage.models import events, incident_reports, incidents, task_events, tasks

if TYPE_CHECKING:
    from dashboard.core.city import Centres
    from dashboard.storage.events import StoredEvent

JOIN_WINDOW_MS = 15 * 60_000
JOIN_RADIUS_M = 1000.0
OPEN_STATUSES = ("open", "dispatched", "in_progress")
_LOCK_CLASS = 0x50A0

# Built once: a batch runs each of these a fixed number of times, whatever its size.
_INSERT = insert(incidents).returning(incidents.c.id, sort_by_parameter_order=True)
_UPDATE = (
    update(incidents)
    .where(incidents.c.id == bindparam("b_id"))
    .values(reports=incidents.c.reports + bindparam("b_new"), severity=bindparam("b_severity"),
            last_report_ms=bindparam("b_last"), updated_ms=bindparam("b_now"),
            # only ever up, never the centre read before: a hand-down meanwhile is not undone by a stale copy
            centre=case((bindparam("b_up", type_=Boolean), null()), else_=incidents.c.centre),
            version=incidents.c.version + 1)
)
_REPORTS = insert(incident_reports)
_CANDIDATE_COLUMNS = ("id", "domain", "district", "kind", "severity", "status", "reports", "title", "lat", "lon",
                      "opened_ms", "last_report_ms", "version", "centre")
_INSERT_COLUMNS = ("domain", "kind", "district", "street", "severity", "status", "reports", "title", "lat", "lon",
                   "opened_ms", "last_report_ms", "updated_ms", "version", "centre")
_PG_TYPES = {"id": "int8", "severity": "int2", "reports": "int4", "lat": "float8", "lon": "float8",
             "opened_ms": "int8", "last_report_ms": "int8", "updated_ms": "int8", "version": "int4"}
_PG_IDS = text("SELECT nextval(pg_get_serial_sequence('incidents', 'id')) FROM generate_series(1, :n)")
_PG_INSERT = text(
    f"INSERT INTO incidents (id, {', '.join(_INSERT_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{c} AS {_PG_TYPES.get(c, 'text')}[])" for c in ("id", *_INSERT_COLUMNS)) + ")")
_PG_UPDATE = text(
    "UPDATE incidents AS i SET reports = i.reports + u.n, severity = u.sev, last_report_ms = u.last, "
    "updated_ms = :now, version = i.version + 1, centre = CASE WHEN u.up THEN NULL ELSE i.centre END "
    "FROM unnest(CAST(:ids AS int8[]), CAST(:n AS int4[]), CAST(:sev AS int2[]), CAST(:last AS int8[]), "
    "CAST(:up AS bool[])) AS u(id, n, sev, last, up) WHERE i.id = u.id")
_PG_REPORTS = text("INSERT INTO incident_reports (incident_id, event_seq) "
                   "SELECT * FROM unnest(CAST(:inc AS int8[]), CAST(:seq AS int8[]))")
_LOCKS = text("SELECT count(pg_advisory_xact_lock(:c, k)) FROM (SELECT unnest(CAST(:keys AS int[])) AS k "
              "ORDER BY 1) AS sorted_keys")


AUTO_UP = {"severity": "auto_up_severity", "span": "auto_up_span"}  # why an incident went up -> its audit code


def hand_up_reason(centres: Centres | None, severity_before: int | None, severity: int,
                   new_district: bool = False) -> str | None:
    """Return why an incident a district centre would run goes up to the city centre by itself: "severity" when
    its severity reaches the city pack's threshold (``severity_before`` None: a new incident), "span" when its
    reports reach another district; None when it stays. Only a change sends one up: an incident the city centre
    handed down stays down until its severity crosses the threshold or a district new to it reports."""
    if centres is None:
        return None
    level = centres.hand_up_severity
    if level is not None and severity >= level and (severity_before is None or severity_before < level):
        return "severity"
    return "span" if new_district else None


def new_centre(centres: Centres | None, district: str, severity: int, spans: bool = False) -> tuple[str | None,
                                                                                                  str | None]:
    """Return (the centre, why it went up) of a new incident: its district's, or the city centre's (None) when the
    city has no district centres, when its severity is the city's or when its reports span districts."""
    if centres is None:
        return None, None
    why = hand_up_reason(centres, None, severity, spans)
    return (None, why) if why else (district, None)


def auto_up_row(inc: dict, why: str, centres: Centres, now_ms: int, districts=()) -> dict:
    """Return the audit row (task_events) of an automatic hand-up of ``inc`` from its district's centre: the code
    says why, the parameters the centre it came from, the severity and threshold, or the districts spanned."""
    params: dict = {"district": inc.get("centre") or inc["district"]}
    if why == "severity":
        params.update(severity=inc["severity"], threshold=centres.hand_up_severity)
    else:
        params["districts"] = sorted(districts)
    return {"incident_id": inc["id"], "task_id": None, "action": "handover", "actor": "system", "at_ms": now_ms,
            "from_state": inc["status"], "to_state": inc["status"], "note": None, "code": AUTO_UP[why],
            "params": params}


def involved(conn: Connection, ids) -> dict[int, set[str]]:
    """Return the districts each incident of ``ids`` involves: its own and its reports'."""
    out = {int(r.id): {r.district} for r in conn.execute(select(incidents.c.id, incidents.c.district)
                                                             .where(incidents.c.id.in_(list(ids))))}
    for incident_id, district in conn.execute(
            select(incident_reports.c.incident_id, events.c.district).distinct()
            .join(events, events.c.seq == incident_reports.c.event_seq)
            .where(incident_reports.c.incident_id.in_(list(ids)))):
        out.setdefault(int(incident_id), set()).add(district)
    return out


def opens_incident(domain: str, severity: int) -> bool:
    """Tell whether an event opens (or joins) an incident: SPEC section 3's rule."""
    return domain == "incident" or severity >= 3


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


def _near(inc: dict, ev) -> bool:
    # Without coordinates on either side the district and kind are all we can match on.
    if None in (inc["lat"], inc["lon"], ev.lat, ev.lon):
        return True
    return distance_m(inc["lat"], inc["lon"], ev.lat, ev.lon) <= JOIN_RADIUS_M


def _lock_key(district: str, kind: str) -> int:
    return zlib.crc32(f"{district}|{kind}".encode()) - 2**31


def attach(conn: Connection, stored: list[StoredEvent], now_ms: int, *, postgres: bool,
           centres: Centres | None = None) -> list[dict]:
    """Join each incident-worthy new event to an open incident or open one; return the incidents touched.

    A fixed handful of statements per batch: lock, read candidates, insert new incidents,
    update joined ones, insert the report links (and, when ``centres`` sends some up to the city centre, their
    audit rows; and when a report joins through a merge from another district, that incident's districts).
    """
    groups: dict[tuple[str, str], list[StoredEvent]] = defaultdict(list)
    for s in stored:
        if opens_incident(s.event.domain, s.event.severity):
            groups[(s.event.district, s.event.kind)].append(s)
    if not groups:
        return []
    if postgres:
        # Two ingest workers must not both open an incident for the same fire; sorted keys, no deadlock.
        conn.execute(_LOCKS, {"c": _LOCK_CLASS, "keys": sorted({_lock_key(*g) for g in groups})})
    since = min(g[0].ts_ms for g in groups.values()) - JOIN_WINDOW_MS
    states: dict[int, dict] = {}  # each incident a report may join, once, whichever ways lead to it
    candidates: dict[tuple[str, str], list[tuple[dict, dict]]] = defaultdict(list)  # key -> (place, incident)
    for r in conn.execute(_candidates(list(groups), since)):
        c = states.setdefault(r[0], {**dict(zip(_CANDIDATE_COLUMNS, r)), "new_reports": 0})
        candidates[(c["district"], c["kind"])].append((c, c))
    # A report that would have joined a merged-away incident joins what it was merged into: matched by the
    # merged-away incident's own place, timed by the open incident's latest report (its reports go on there).
    for r in conn.execute(_followed(list(groups), since)):
        *target, via_id, district, kind, lat, lon = r
        c = states.setdefault(target[0], {**dict(zip(_CANDIDATE_COLUMNS, target)), "new_reports": 0})
        candidates[(district, kind)].append(({"id": via_id, "lat": lat, "lon": lon, "district": district}, c))
    for pool in candidates.values():
        pool.sort(key=lambda pc: (pc[1]["id"], pc[0] is not pc[1], pc[0]["id"]))  # the oldest incident wins
    for c in states.values():
        c["severity_before"] = c["severity"]
    opened: list[dict] = []
    links: list[tuple[dict, int]] = []
    foreign: dict[int, set[str]] = defaultdict(set)  # incident id -> districts of reports joined through a merge
    for key, group in groups.items():
        pool = candidates[key]
        for s in group:
            place, inc = next(((place, c) for place, c in pool if abs(s.ts_ms - c["last_report_ms"]) <= JOIN_WINDOW_MS
                               and _near(place, s.event)), (None, None))
            if inc is None:
                inc = _new(s, now_ms, centres)
                pool.append((inc, inc))
                opened.append(inc)
            else:
                if place.get("district", inc["district"]) != inc["district"]:
                    foreign[inc["id"]].add(place["district"])
                inc["reports"] += 1
                inc["new_reports"] += 1
                inc["severity"] = max(inc["severity"], s.event.severity)
                inc["last_report_ms"] = max(inc["last_report_ms"], s.ts_ms)
                inc["updated_ms"] = now_ms
            links.append((inc, s.seq))
    fresh = {id(inc) for inc in opened}  # inserted below with their final counts already
    joined = [c for c in states.values() if c["new_reports"] and id(c) not in fresh]
    ups = _ups(conn, joined, foreign, centres)
    (_write_pg if postgres else _write_generic)(conn, opened, joined, links, now_ms)
    audit = [auto_up_row(inc, inc.pop("why"), centres, now_ms) for inc in opened if inc.get("why")]
    for c in joined:
        c["version"] += 1
        if c["id"] in ups:
            why, districts = ups[c["id"]]
            audit.append(auto_up_row(c, why, centres, now_ms, districts))
            c["centre"] = None
    if audit:
        conn.execute(insert(task_events), audit)
    return [{k: v for k, v in inc.items() if k not in _WORKING} for inc in opened + joined]


_WORKING = ("new_reports", "severity_before", "why", "up")  # attach's own notes on an incident, never returned


def _ups(conn: Connection, joined: list[dict], foreign: dict[int, set[str]], centres: Centres | None) -> dict:
    """Return, of the joined incidents a district centre runs, those that go up now: id -> (why, districts)."""
    if centres is None:
        return {}
    mine = [c for c in joined if c["centre"] is not None]
    # Only a report joined through a merge can come from another district (the join matches district and kind):
    # rare, so the districts its incident already involves are read only then.
    known = involved(conn, [c["id"] for c in mine if foreign.get(c["id"])]) if any(
        foreign.get(c["id"]) for c in mine) else {}
    out = {}
    for c in mine:
        new = foreign.get(c["id"], set()) - known.get(c["id"], {c["district"]})
        why = hand_up_reason(centres, c["severity_before"], c["severity"], bool(new))
        if why:
            out[c["id"]] = (why, known.get(c["id"], set()) | new)
    for c in joined:
        c["up"] = c["id"] in out
    return out


def _candidates(keys: list[tuple[str, str]], since: int):
    """Return the statement of the open incidents of ``keys`` with a report since ``since``."""
    return select(*(incidents.c[k] for k in _CANDIDATE_COLUMNS)).where(
        tuple_(incidents.c.district, incidents.c.kind).in_(keys),
        incidents.c.status.in_(OPEN_STATUSES),
        incidents.c.last_report_ms >= since,
    )


def _followed(keys: list[tuple[str, str]], since: int):
    """Return the statement of the open incidents that incidents of ``keys`` were merged into, with a report
    since ``since``: the target's columns, then the merged-away incident's id, district, kind and place."""
    away, into = incidents.alias("away"), incidents.alias("into")
    return select(*(into.c[k] for k in _CANDIDATE_COLUMNS), away.c.id, away.c.district, away.c.kind, away.c.lat,
                  away.c.lon).join(into, into.c.id == away.c.merged_into).where(
        tuple_(away.c.district, away.c.kind).in_(keys),
        away.c.merged_into.is_not(None),
        into.c.status.in_(OPEN_STATUSES),
        into.c.last_report_ms >= since,
    )


def lock_places(conn: Connection, places) -> None:
    """Hold ingest's join locks of the (district, kind) ``places`` for this transaction (PostgreSQL; SQLite has
    one writer at a time): no ingest batch joins an incident of them while it is merged or split."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCKS, {"c": _LOCK_CLASS, "keys": sorted({_lock_key(*p) for p in places})})


def _write_generic(conn: Connection, opened: list[dict], joined: list[dict], links: list, now_ms: int) -> None:
    if opened:
        ids = conn.execute(_INSERT, [{c: inc[c] for c in _INSERT_COLUMNS} for inc in opened]).scalars().all()
        for inc, new_id in zip(opened, ids):
            inc["id"] = new_id
    if joined:
        conn.execute(_UPDATE, [{"b_id": c["id"], "b_new": c["new_reports"], "b_severity": c["severity"],
                                "b_last": c["last_report_ms"], "b_now": now_ms, "b_up": c.get("up", False)}
                               for c in joined])
    conn.execute(_REPORTS, [{"incident_id": inc["id"], "event_seq": seq} for inc, seq in links])


def _write_pg(conn: Connection, opened: list[dict], joined: list[dict], links: list, now_ms: int) -> None:
    # Whole columns as arrays: one statement per write however many rows (executemany cost ~25 µs a row).
    if opened:
        ids = conn.execute(_PG_IDS, {"n": len(opened)}).scalars().all()
        for inc, new_id in zip(opened, ids):
            inc["id"] = new_id
        conn.execute(_PG_INSERT, {c: [inc[c] for inc in opened] for c in ("id", *_INSERT_COLUMNS)})
    if joined:
        conn.execute(_PG_UPDATE, {"ids": [c["id"] for c in joined], "n": [c["new_reports"] for c in joined],
                                  "sev": [c["severity"] for c in joined],
                                  "last": [c["last_report_ms"] for c in joined], "now": now_ms,
                                  "up": [c.get("up", False) for c in joined]})
    conn.execute(_PG_REPORTS, {"inc": [inc["id"] for inc, _ in links], "seq": [seq for _, seq in links]})


def _new(s: StoredEvent, now_ms: int, centres: Centres | None = None) -> dict:
    ev = s.event
    centre, why = new_centre(centres, ev.district, ev.severity)
    return {
        "domain": ev.domain, "kind": ev.kind, "district": ev.district, "street": ev.street,
        "severity": ev.severity, "status": "open", "reports": 1, "title": ev.title,
        "lat": ev.lat, "lon": ev.lon, "opened_ms": s.ts_ms, "last_report_ms": s.ts_ms,
        "updated_ms": now_ms, "version": 1, "new_reports": 0, "centre": centre, "why": why,
    }


def of_district(district: str):
    """Return the condition of an incident a district centre may read: one in its district, or one handed down to
    it (an incident spanning districts, handed to the second one's centre)."""
    return (incidents.c.district == district) | (incidents.c.centre == district)


def held_by(department: str):
    """Return the condition on ``incidents`` that ``department`` holds a task of the incident (a liaison's scope)."""
    return exists().where(tasks.c.incident_id == incidents.c.id, tasks.c.department == department)


def open_incident(conn: Connection, *, domain: str, kind: str, district: str, street: str | None, severity: int,
                  title: str | None, lat: float | None, lon: float | None, at_ms: int,
                  centres: Centres | None = None) -> dict:
    """Open an incident that no event reported (a firing alert's): open, for dispatch to route like any other,
    run by its district's centre or the city's as ``centres`` says of a new incident."""
    centre, why = new_centre(centres, district, severity)
    row = {"domain": domain, "kind": kind, "district": district, "street": street, "severity": severity,
           "status": "open", "reports": 0, "title": title, "lat": lat, "lon": lon, "opened_ms": at_ms,
           "last_report_ms": at_ms, "updated_ms": at_ms, "version": 1, "centre": centre}
    row["id"] = conn.execute(_INSERT, [row]).scalars().one()
    if why:
        conn.execute(insert(task_events), [auto_up_row(row, why, centres, at_ms)])
    return row
