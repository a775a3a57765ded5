"""Declare, change the level of and stand down a major incident (SPEC section 10, 启动应急响应), audited.

A declaration puts every screen of the centre into the incident's command view until it is stood down. Each
write runs in the caller's transaction, keeps an audit row in the incident's trail (``task_events``, action
``major``, a code translated when shown) and returns the incident; the caller publishes every active major
incident once committed (``desk.publish_majors``).
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from dashboard.core import messages
from dashboard.dispatch import board as d
from dashboard.storage.models import incidents, major_incidents

LEVELS = (1, 2, 3, 4)  # I (特别重大) .. IV (一般)
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
# How far around the place the command view looks (metres): the graver the level, the wider the ring.
RADIUS_M = {1: 5000, 2: 3000, 3: 2000, 4: 1000}
ACTION = "major"


def active_row(conn: Connection, incident_id: int) -> dict | None:
    """Return the active declaration of ``incident_id``, or None."""
    row = conn.execute(select(major_incidents).where(major_incidents.c.incident_id == incident_id,
                                                     major_incidents.c.stood_down_ms.is_(None))).mappings().first()
    return dict(row) if row else None


def declare(conn: Connection, incident_id: int, level: int, actor: str, note: str | None, now_ms: int) -> dict:
    """Declare ``incident_id`` a major incident at ``level``, or change the level of one declared; return the
    incident. A resolved or closed incident is refused (InvalidTransition); the same level again changes nothing."""
    if level not in LEVELS:
        raise d.DispatchError(f"level must be one of {LEVELS}")
    inc = d.lock_incident(conn, incident_id)
    if inc["status"] in d.DONE:
        raise d.InvalidTransition(f"incident {incident_id} is {inc['status']}: no major incident can be declared",
                                  key="major_done")
    held = active_row(conn, incident_id)
    if held is None:
        conn.execute(insert(major_incidents).values(incident_id=incident_id, level=level, note=note,
                                                    declared_ms=now_ms, declared_by=actor, updated_ms=now_ms))
        d._audit(conn, [d._event(incident_id, None, ACTION, actor, now_ms, None, f"level_{level}", note,
                                 "major_declared", {"level": ROMAN[level]})])
    elif held["level"] != level:
        conn.execute(update(major_incidents).where(major_incidents.c.id == held["id"])
                     .values(level=level, updated_ms=now_ms))
        d._audit(conn, [d._event(incident_id, None, ACTION, actor, now_ms, f"level_{held['level']}",
                                 f"level_{level}", note, "major_level",
                                 {"from": ROMAN[held["level"]], "level": ROMAN[level]})])
    return inc


def stand_down(conn: Connection, incident_id: int, actor: str, note: str | None, now_ms: int) -> dict:
    """Stand a major incident down; return the incident. NotFound for no such incident, InvalidTransition when it
    is not a major incident now."""
    inc = d.lock_incident(conn, incident_id)
    held = active_row(conn, incident_id)
    if held is None:
        raise d.InvalidTransition(f"incident {incident_id} is not a major incident", key="major_none")
    conn.execute(update(major_incidents).where(major_incidents.c.id == held["id"])
                 .values(stood_down_ms=now_ms, stood_down_by=actor, updated_ms=now_ms))
    d._audit(conn, [d._event(incident_id, None, ACTION, actor, now_ms, f"level_{held['level']}", "stood_down",
                             note, "major_stood_down", {"level": ROMAN[held["level"]]})])
    return inc


def active(conn: Connection) -> list[dict]:
    """Return the active declarations with their incidents (``incident``), gravest level first, then the oldest."""
    stmt = (select(major_incidents, incidents).join(incidents, incidents.c.id == major_incidents.c.incident_id)
            .where(major_incidents.c.stood_down_ms.is_(None))
            .order_by(major_incidents.c.level, major_incidents.c.declared_ms, major_incidents.c.id))
    out = []
    for r in conn.execute(stmt):
        m = r._mapping
        out.append({**{c.name: m[major_incidents.c[c.name]] for c in major_incidents.c},
                    "incident": {c.name: m[incidents.c[c.name]] for c in incidents.c}})
    return out


def views(conn: Connection, tz: str) -> list[messages.MajorView]:
    """Return the active major incidents as ``GET /api/major`` and the deltas show them."""
    return [messages.major_view(r, r["incident"], tz) for r in active(conn)]


def radius_m(level: int) -> int:
    """Return the radius of the command view's ring at ``level``."""
    return RADIUS_M.get(level, RADIUS_M[4])
