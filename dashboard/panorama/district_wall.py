"""Read what a district centre's wall shows beside the live counts (SPEC section 13): its streets, busiest first,
a street's last hour and open incidents for the spotlight, and the located events and incidents its map places."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from dashboard.core.channels import DOMAINS
from dashboard.panorama import district as district_data
from dashboard.panorama.state import MINUTE_MS, TREND_MINUTES, trend_bounds
from dashboard.storage import queries
from dashboard.storage.incidents import OPEN_STATUSES
from dashboard.storage.models import events, incidents, rollups

WINDOW_MINUTES = queries.WINDOWS["1h"]  # the wall's window (layouts/wall.py WINDOW)
MAP_EVENTS = 200  # the newest located events of the window the map places: bounded whatever was sent
MAP_INCIDENTS = 50  # open incidents placed, most severe first


def spellings(city, code: str, name: str) -> tuple[str, ...]:
    """Return every spelling of the street ``name`` of district ``code`` an event or incident may carry (its name,
    its name without 街道, its code, its English name)."""
    return tuple(alias for alias, (zh, _en) in city.street_names.get(code, {}).items() if zh == name)


def streets(conn: Connection, city, district, now_ms: int, tz: str) -> dict:
    """Return the district's streets in the wall's window, busiest first (then most open incidents, then the
    pack's order): each one's names, counts per domain, total and open incidents; ``other``: the counts of
    streets the pack does not know."""
    summary = queries.district_summary(conn, city, district, WINDOW_MINUTES, now_ms, tz)
    i = incidents.c
    open_by: dict[str, int] = {}
    names = city.street_names.get(district.code, {})
    for street, n in conn.execute(select(i.street, func.count()).where(
            i.district == district.code, i.status.in_(OPEN_STATUSES))
            .group_by(i.street)):
        if street in names:
            open_by[names[street][0]] = open_by.get(names[street][0], 0) + int(n)
    rows = [{**s, "total": sum(s["counts"].values()), "open": open_by.get(s["name"], 0)} for s in summary["streets"]]
    order = {s["name"]: k for k, s in enumerate(rows)}
    rows.sort(key=lambda s: (-s["total"], -s["open"], order[s["name"]]))
    return {"code": district.code, "streets": rows, "other": summary["other_streets"]}


def street_trend(conn: Connection, code: str, spelled: tuple[str, ...], now_ms: int,
                 minutes: int = TREND_MINUTES) -> dict:
    """Return a street's per-minute counts of each domain over the last ``minutes`` complete minutes (as
    ``state.trend`` for a district), from the minute rollups, which keep a street the pack knows by name or code."""
    start, end = trend_bounds(now_ms, minutes)
    r = rollups.c
    series = {d: [0] * minutes for d in DOMAINS}
    for minute, domain, n in conn.execute(
            select(r.minute_ms, r.domain, func.sum(r.n)).where(
                r.district == code, r.street.in_(spelled), r.minute_ms >= start, r.minute_ms < end)
            .group_by(r.minute_ms, r.domain)):
        if domain in series:
            series[domain][(minute - start) // MINUTE_MS] = int(n)
    return {"start": start, "step_ms": MINUTE_MS, "series": series}


def street_spot(conn: Connection, city, code: str, name: str, now_ms: int, department: str | None,
                limit: int) -> dict:
    """Return what the wall's spotlight shows of one street: its last hour and its open incidents (only what a
    screen shows of them), as ``callbacks.panorama.spot_data`` does of a district; ``code`` is the street's name."""
    spelled = spellings(city, code, name)
    rows = district_data.open_incidents(conn, code, limit, department, spelled)
    return {"code": name, "trend": street_trend(conn, code, spelled, now_ms),
            "open": district_data.open_incident_count(conn, code, department, spelled),
            "incidents": [{"id": r["id"], "title": r["title"], "kind": r["kind"], "severity": r["severity"],
                           "status": r["status"], "opened_ms": r["opened_ms"]} for r in rows]}


def map_points(conn: Connection, code: str, now_ms: int) -> dict:
    """Return the district's located events of the wall's window (the newest ``MAP_EVENTS``) and its located open
    incidents (the most severe ``MAP_INCIDENTS``), as the map places them: where, what, how severe."""
    start, end = queries.window_bounds(now_ms, WINDOW_MINUTES)
    e, i = events.c, incidents.c
    evs = conn.execute(
        select(e.lon, e.lat, e.domain, e.kind, e.severity, e.title)
        .where(e.district == code, e.ts_ms >= start, e.ts_ms < min(end, now_ms + 1), e.lat.is_not(None),
               e.lon.is_not(None))
        .order_by(e.ts_ms.desc()).limit(MAP_EVENTS)).mappings().all()
    incs = conn.execute(
        select(i.lon, i.lat, i.kind, i.severity, i.title)
        .where(i.district == code, i.status.in_(OPEN_STATUSES), i.lat.is_not(None), i.lon.is_not(None))
        .order_by(i.severity.desc(), i.last_report_ms.desc()).limit(MAP_INCIDENTS)).mappings().all()
    # plain keys (a row's are SQLAlchemy's names, which a JSON digest of them refuses)
    return {"events": [{k: r[k] for k in ("lon", "lat", "domain", "kind", "severity", "title")} for r in evs],
            "incidents": [{k: r[k] for k in ("lon", "lat", "kind", "severity", "title")} for r in incs]}
