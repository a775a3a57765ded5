"""Open incidents from events, joining repeated reports of one happening into one incident."""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Connection

from dashboard.models import incident_reports, incidents

if TYPE_CHECKING:
    from dashboard.store import StoredEvent

JOIN_WINDOW_MS = 15 * 60_000
JOIN_RADIUS_M = 1000.0
OPEN_STATUSES = ("open", "dispatched", "in_progress")
_LOCK_CLASS = 0x50A0


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


def attach(conn: Connection, stored: list[StoredEvent], now_ms: int, *, postgres: bool) -> list[dict]:
    """Join each incident-worthy new event to an open incident or open one; return the incidents touched."""
    groups: dict[tuple[str, str], list[StoredEvent]] = defaultdict(list)
    for s in stored:
        if opens_incident(s.event.domain, s.event.severity):
            groups[(s.event.district, s.event.kind)].append(s)
    touched: dict[int, dict] = {}
    for (district, kind), group in sorted(groups.items()):
        if postgres:
            # Two ingest workers must not both open an incident for the same fire.
            key = zlib.crc32(f"{district}|{kind}".encode()) - 2**31
            conn.execute(text("SELECT pg_advisory_xact_lock(:c, :k)"), {"c": _LOCK_CLASS, "k": key})
        since = group[0].ts_ms - JOIN_WINDOW_MS
        rows = conn.execute(
            select(incidents).where(
                incidents.c.district == district,
                incidents.c.kind == kind,
                incidents.c.status.in_(OPEN_STATUSES),
                incidents.c.last_report_ms >= since,
            )
        ).mappings()
        candidates = [dict(r) for r in rows]
        for s in group:
            inc = next((c for c in candidates if abs(s.ts_ms - c["last_report_ms"]) <= JOIN_WINDOW_MS
                        and _near(c, s.event)), None)
            if inc is None:
                inc = _open(conn, s, now_ms)
                candidates.append(inc)
            else:
                inc["reports"] += 1
                inc["severity"] = max(inc["severity"], s.event.severity)
                inc["last_report_ms"] = max(inc["last_report_ms"], s.ts_ms)
                inc["updated_ms"] = now_ms
                inc["version"] += 1
                conn.execute(
                    update(incidents).where(incidents.c.id == inc["id"]).values(
                        reports=incidents.c.reports + 1,
                        severity=inc["severity"],
                        last_report_ms=inc["last_report_ms"],
                        updated_ms=now_ms,
                        version=incidents.c.version + 1,
                    )
                )
            conn.execute(insert(incident_reports).values(incident_id=inc["id"], event_seq=s.seq))
            touched[inc["id"]] = inc
    return list(touched.values())


def _open(conn: Connection, s: StoredEvent, now_ms: int) -> dict:
    ev = s.event
    values = {
        "domain": ev.domain, "kind": ev.kind, "district": ev.district, "street": ev.street,
        "severity": ev.severity, "status": "open", "reports": 1, "title": ev.title,
        "lat": ev.lat, "lon": ev.lon, "opened_ms": s.ts_ms, "last_report_ms": s.ts_ms,
        "updated_ms": now_ms, "version": 1,
    }
    values["id"] = conn.execute(insert(incidents).values(**values).returning(incidents.c.id)).scalar_one()
    return values
