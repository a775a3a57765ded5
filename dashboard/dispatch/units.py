"""Send response units to a task, and suggest the nearest available ones of a department (straight-line)."""

from __future__ import annotations

import math
from typing import Sequence

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from dashboard.core import messages
from dashboard.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from dashboard.dispatch import board as d
from dashboard.dispatch import desk
from dashboard.storage import units as unit_store
from dashboard.storage.models import tasks, units

EARTH_KM = 6371.0088  # mean radius


def km_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle (straight-line) distance in km: roads are not known here, and it says so."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(a)))


def nearest(conn: Connection, department: str, lat: float | None, lon: float | None, limit: int = 5,
            district: str | None = None) -> list[dict]:
    """Return up to ``limit`` available units of ``department`` with a known place, nearest first, each with
    ``km`` (straight line); without a place to measure from, none; ``district``: of that home district only."""
    if lat is None or lon is None:
        return []
    rows = unit_store.list_units(conn, department=department, status="available", district=district)
    placed = [{**r, "km": km_between(lat, lon, r["lat"], r["lon"])} for r in rows if r["lat"] is not None]
    return sorted(placed, key=lambda r: (r["km"], r["unit"]))[:limit]


def assign(conn: Connection, task_id: int, unit_ids: Sequence[str], actor: str, now_ms: int) -> tuple[dict, list[dict]]:
    """Send units to a live task, in the caller's transaction: each goes en route, audited on the task's timeline.

    Refused (Unprocessable, 422): a unit not in the fleet, of another department than the task's, or off duty,
    or a task no longer live; a unit already on another live task: Conflict (409). Units already on this task
    are left as they are. Returns (the task's incident, the units changed).
    """
    task = conn.execute(select(tasks).where(tasks.c.id == task_id)).mappings().first()
    if task is None:
        raise NotFound(f"no task {task_id}")
    inc = d.lock_incident(conn, task["incident_id"])  # serialised with the task's own moves
    task = conn.execute(select(tasks).where(tasks.c.id == task_id)).mappings().one()
    if task["state"] not in d.LIVE:
        raise Unprocessable(f"task {task_id} is {task['state']}: units go only to a live task", key="task_not_live")
    held = unit_store.lock_units(conn, unit_ids)
    for unit in unit_ids:
        row = held.get(unit)
        if row is None:
            raise Unprocessable(f"no unit {unit!r} in the fleet", key="unit_unknown")
        if row["department"] != task["department"]:
            raise Unprocessable(f"unit {unit} is {row['department']}'s, the task {task['department']}'s",
                                key="unit_other_department")
        if row["status"] == "off_duty":
            raise Unprocessable(f"unit {unit} is off duty", key="unit_off_duty")
    others = {row["task_id"] for row in held.values() if row["task_id"] not in (None, task_id)}
    live_others = set(conn.execute(select(tasks.c.id).where(tasks.c.id.in_(others), tasks.c.state.in_(d.LIVE)))
                      .scalars()) if others else set()
    busy = sorted(u for u, row in held.items() if row["task_id"] in live_others)
    if busy:
        raise Conflict(f"already on another task: {', '.join(busy)}", key="unit_busy")
    todo = sorted(u for u, row in held.items() if row["task_id"] != task_id)
    if not todo:
        return inc, []
    changed = [dict(r) for r in conn.execute(
        update(units).where(units.c.unit.in_(todo))
        .values(status="en_route", task_id=task_id, updated_ms=now_ms).returning(*units.c)).mappings()]
    unit_store.audit_units(conn, [(task_id, u, held[u]["status"], "en_route", "unit_assigned") for u in todo],
                           actor, now_ms)
    return inc, changed


def do_assign(svc, user, task_id: int, unit_ids: Sequence[str]) -> list[dict]:
    """Assign units for ``user`` (an officer or commander, or the liaison of the task's department); publish the
    units that moved with where they are sent; return them as the API shows them."""
    tz = svc.config["PANORAMA_TZ"]
    with svc.engine.begin() as conn:
        desk.within(conn, user, task_id=task_id)
        if not desk.may_move(user, desk.task_department(conn, task_id)):
            raise Forbidden(f"{user.username} may not send units to that task")
        inc, changed = assign(conn, task_id, list(dict.fromkeys(unit_ids)), user.username, svc.clock())
    target = [inc["lat"], inc["lon"]] if inc.get("lat") is not None else None
    views = [messages.unit_view(u, tz) for u in changed]
    if views:
        desk.publish(svc, [], [], units=[{**v, "target": target} for v in views])
    return views
