"""Gather what a major incident's command view shows: the place and its ring, the live events inside it, the
tasks per department with the units sent to them, the open alerts of its district and the timeline."""

from __future__ import annotations

from sqlalchemy import select

from dashboard.dispatch import board as d
from dashboard.dispatch import major, procedure
from dashboard.dispatch.desk import step_doc
from dashboard.dispatch.units import km_between
from dashboard.core.geo import box_around, distance_m
from dashboard.storage import alerts as alert_store
from dashboard.storage.models import events, units

EVENT_WINDOW_MS = 3_600_000  # the live events of the last hour
EVENT_ROWS = 300  # read at most this many from the ring's square, newest first
SHOWN_EVENTS = 50
OPEN_ALERTS = ("firing", "acknowledged")


def place(inc: dict, city) -> dict:
    """Return where the incident is: its own point, else its district's centre (``approximate``)."""
    if inc.get("lat") is not None and inc.get("lon") is not None:
        return {"id": inc["id"], "lat": inc["lat"], "lon": inc["lon"], "district": inc["district"],
                "title": inc["title"], "approximate": False}
    here = city.by_code.get(inc["district"])
    lat, lon = (here.lat, here.lon) if here is not None else (city.districts[0].lat, city.districts[0].lon)
    return {"id": inc["id"], "lat": lat, "lon": lon, "district": inc["district"], "title": inc["title"],
            "approximate": True}


def events_inside(conn, spot: dict, radius_m: float, now_ms: int) -> list[dict]:
    """Return the last hour's events inside the ring, newest first (straight-line distance)."""
    west, south, east, north = box_around(spot["lat"], spot["lon"], radius_m)
    rows = conn.execute(select(events.c.event_id, events.c.domain, events.c.kind, events.c.severity, events.c.title,
                               events.c.ts_ms, events.c.lat, events.c.lon)
                        .where(events.c.ts_ms >= now_ms - EVENT_WINDOW_MS, events.c.lat.between(south, north),
                               events.c.lon.between(west, east))
                        .order_by(events.c.ts_ms.desc()).limit(EVENT_ROWS)).mappings()
    inside = [dict(r) for r in rows if distance_m(spot["lat"], spot["lon"], r["lat"], r["lon"]) <= radius_m]
    return inside[:SHOWN_EVENTS]


def assigned_units(conn, task_ids: list[int], spot: dict) -> list[dict]:
    """Return the units now on these tasks (en route, on scene), each with its straight-line ``km`` to the place
    (None while its position is unknown), nearest first."""
    if not task_ids:
        return []
    rows = conn.execute(select(units.c.unit, units.c.department, units.c.kind, units.c.name, units.c.name_en,
                               units.c.status, units.c.lat, units.c.lon, units.c.updated_ms, units.c.task_id)
                        .where(units.c.task_id.in_(task_ids))).mappings()
    out = [{**r, "km": None if r["lat"] is None or r["lon"] is None
            else round(km_between(spot["lat"], spot["lon"], r["lat"], r["lon"]), 2)} for r in rows]
    return sorted(out, key=lambda u: (u["km"] is None, u["km"] or 0, u["unit"]))


def by_department(tasks: list[dict], sent: list[dict] = ()) -> list[dict]:
    """Return the tasks grouped per department, in the order first dispatched, each group with the units ``sent``
    to its tasks: [{department, tasks, units}]."""
    out: dict[str, list[dict]] = {}
    for t in sorted(tasks, key=lambda t: t["id"]):
        out.setdefault(t["department"], []).append(t)
    return [{"department": k, "tasks": v, "units": [u for u in sent if u["department"] == k]}
            for k, v in out.items()]


def command_doc(conn, city, declared: dict, now_ms: int, tz: str) -> dict:
    """Return the command view of one active declaration (``major.active``'s row)."""
    inc = declared["incident"]
    radius = major.radius_m(declared["level"])
    spot = place(inc, city)
    tasks = d.list_tasks(conn, incident_id=inc["id"])
    return {"incident": inc, "level": declared["level"], "declared_ms": declared["declared_ms"],
            "declared_by": declared["declared_by"], "radius_m": radius, "place": spot,
            "events": events_inside(conn, spot, radius, now_ms),
            "departments": by_department(tasks, assigned_units(conn, [t["id"] for t in tasks], spot)),
            "alerts": alert_store.list_alerts(conn, OPEN_ALERTS, districts=(inc["district"],), limit=20),
            "history": d.history(conn, inc["id"])[-30:],
            "procedure": [step_doc(s, tz) for s in procedure.checklist(conn, city, inc)]}
