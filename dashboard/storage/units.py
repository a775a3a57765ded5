"""Store response units: the fleet seeded from the city pack, reports folded into each unit's latest state,
a decimated track by day, and the reads of the API and the screens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol, Sequence

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from dashboard.storage.models import task_events, tasks, unit_track, units

# A unit reporting every 5 s keeps one track point in 6: enough to replay its route, a sixth of the rows.
TRACK_EVERY_MS = 30_000
RELEASING = ("available", "off_duty")  # a crew reporting these has left its task
# A replayed minute shows a unit where its track last put it within this long before: a unit that reports
# keeps a point every TRACK_EVERY_MS; one silent for longer was not known to be anywhere then.
SEEN_WITHIN_MS = 10 * 60_000


class Report(Protocol):
    """A validated unit report (feeds.unit_schema.UnitReport)."""

    unit: str
    ts_ms: int
    lat: float
    lon: float
    status: str | None
    department: str | None
    kind: str | None


@dataclass
class Applied:
    """What one batch of reports did: the units as they now are (changed ones only) and the refused reports."""

    changed: list[dict] = field(default_factory=list)
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # (index in the batch, reason, message)


def _insert(conn: Connection):
    from sqlalchemy.dialects import postgresql, sqlite
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert


def seed(conn: Connection, fleet: Iterable[dict], source: str = "pack") -> int:
    """Add the units of ``fleet`` (``dashboard.core.units.check_unit``'s shape) not stored yet; return how many.

    A unit already stored is left as the app has it: the pack is the fleet's first version, not its master.
    """
    rows = [{"unit": u["unit"], "department": u["department"], "kind": u["kind"], "name": u.get("name"),
             "name_en": u.get("name_en"), "lat": u.get("lat"), "lon": u.get("lon"), "status": "available",
             "source": source, "district": u.get("district")} for u in fleet]
    if not rows:
        return 0
    return conn.execute(_insert(conn)(units).on_conflict_do_nothing(index_elements=["unit"]), rows).rowcount or 0


def upsert(conn: Connection, unit: dict, now_ms: int) -> dict:
    """Create a unit or change its department, kind and names (the admin's form); return the row."""
    values = {k: unit.get(k) for k in ("department", "kind", "name", "name_en")}
    stmt = _insert(conn)(units).values(unit=unit["unit"], status="available", source="app", updated_ms=now_ms,
                                       lat=unit.get("lat"), lon=unit.get("lon"), **values)
    stmt = stmt.on_conflict_do_update(index_elements=["unit"], set_={**values, "source": "app"})
    conn.execute(stmt)
    return dict(conn.execute(select(units).where(units.c.unit == unit["unit"])).mappings().one())


def list_units(conn: Connection, department: str | None = None, status: str | None = None,
               unit_ids: Sequence[str] | None = None, district: str | None = None) -> list[dict]:
    """Return units by id, filtered by department, status, ids and home district when given."""
    stmt = select(units).order_by(units.c.unit)
    if district is not None:
        stmt = stmt.where(units.c.district == district)
    if department is not None:
        stmt = stmt.where(units.c.department == department)
    if status is not None:
        stmt = stmt.where(units.c.status == status)
    if unit_ids is not None:
        stmt = stmt.where(units.c.unit.in_(list(unit_ids)))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def lock_units(conn: Connection, unit_ids: Iterable[str]) -> dict[str, dict]:
    """Return the stored units of ``unit_ids`` locked for this transaction, in id order (no deadlocks)."""
    ids = sorted(set(unit_ids))
    if not ids:
        return {}
    stmt = select(units).where(units.c.unit.in_(ids)).order_by(units.c.unit).with_for_update()
    return {r["unit"]: dict(r) for r in conn.execute(stmt).mappings()}


def apply_reports(conn: Connection, reports: Sequence[Report], departments: set[str], now_ms: int) -> Applied:
    """Fold a batch of reports into each unit's latest state, in the caller's transaction.

    A report older than its unit's latest changes nothing; a new unit must name a department of the city; a
    known unit's department must match when named. A crew reporting ``available`` or ``off_duty`` leaves its
    task (audited on the task's timeline). A track point is kept every TRACK_EVERY_MS and at each status change.
    """
    out = Applied()
    held = lock_units(conn, (r.unit for r in reports))
    now: dict[str, dict] = {}  # unit -> its state as this batch leaves it
    new: set[str] = set()
    track: list[dict] = []
    released: list[tuple[dict, str]] = []
    for i, r in sorted(enumerate(reports), key=lambda p: p[1].ts_ms):
        row = now.get(r.unit) or held.get(r.unit)
        if row is None:
            if r.department is None:
                out.refused.append((i, "unknown_unit", f"unit {r.unit} is not in the fleet: name its department "
                                                       "to add it"))
                continue
            if r.department not in departments:
                out.refused.append((i, "unknown_department", f"unknown department {r.department[:64]!r}"))
                continue
            row = {"unit": r.unit, "department": r.department, "kind": r.kind or "unit", "name": None,
                   "name_en": None, "status": "available", "lat": None, "lon": None, "updated_ms": None,
                   "track_ms": None, "task_id": None, "source": "feed"}
            new.add(r.unit)
        elif r.department is not None and r.department != row["department"]:
            out.refused.append((i, "department_mismatch", f"department {r.department[:64]!r} is not unit "
                                                          f"{r.unit}'s ({row['department']!r})"))
            continue
        if row["updated_ms"] is not None and r.ts_ms < row["updated_ms"]:
            continue  # a late report: the unit has moved on since
        row = dict(row)
        status = r.status or row["status"]
        if row["task_id"] is not None and r.status in RELEASING:
            released.append((dict(row), status))
            row["task_id"] = None
        moved = status != row["status"]
        row.update(status=status, lat=r.lat, lon=r.lon, updated_ms=r.ts_ms)
        if moved or row["track_ms"] is None or r.ts_ms >= row["track_ms"] + TRACK_EVERY_MS:
            row["track_ms"] = r.ts_ms
            track.append({"unit": r.unit, "ts_ms": r.ts_ms, "lat": r.lat, "lon": r.lon, "status": status,
                          "task_id": row["task_id"]})
        now[r.unit] = row
    if not now:
        return out
    if new:
        conn.execute(insert(units), [now[u] for u in sorted(new)])
    old = [now[u] for u in sorted(now) if u not in new]
    if old:
        conn.execute(update(units).where(units.c.unit == bindparam("u"))
                     .values(status=bindparam("status"), lat=bindparam("lat"), lon=bindparam("lon"),
                             updated_ms=bindparam("updated_ms"), track_ms=bindparam("track_ms"),
                             task_id=bindparam("task_id")),
                     [{"u": r["unit"], "status": r["status"], "lat": r["lat"], "lon": r["lon"],
                       "updated_ms": r["updated_ms"], "track_ms": r["track_ms"], "task_id": r["task_id"]}
                      for r in old])
    if track:
        conn.execute(_insert(conn)(unit_track).on_conflict_do_nothing(index_elements=["unit", "ts_ms"]), track)
    if released:
        audit_units(conn, [(before["task_id"], before["unit"], before["status"], to, "unit_released_by_crew")
                           for before, to in released], "system", now_ms)
    out.changed = [now[u] for u in sorted(now)]
    return out


def audit_units(conn: Connection, moves: Sequence[tuple[int, str, str, str, str]], actor: str, at_ms: int) -> None:
    """Write on each task's timeline what happened to a unit: (task id, unit, from status, to status, code)."""
    if not moves:
        return
    incident_of = dict(conn.execute(select(tasks.c.id, tasks.c.incident_id)
                                    .where(tasks.c.id.in_({m[0] for m in moves}))).all())
    conn.execute(insert(task_events), [
        {"incident_id": incident_of[task_id], "task_id": task_id, "action": "unit", "actor": actor, "at_ms": at_ms,
         "from_state": before, "to_state": to, "note": None, "code": code, "params": {"unit": unit}}
        for task_id, unit, before, to, code in moves if task_id in incident_of])


def track_of(conn: Connection, unit: str, from_ms: int, until_ms: int) -> list[dict]:
    """Return a unit's track points in [from_ms, until_ms), oldest first (replay)."""
    stmt = (select(unit_track).where(unit_track.c.unit == unit, unit_track.c.ts_ms >= from_ms,
                                     unit_track.c.ts_ms < until_ms).order_by(unit_track.c.ts_ms))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def positions_as_of(conn: Connection, at_ms: int) -> list[dict]:
    """Return where each unit stood at ``at_ms`` and its status then, from its track (replay): its newest point
    at or before then, within SEEN_WITHIN_MS; rows as list_units gives them (``updated_ms``: that point's)."""
    newest = (select(unit_track.c.unit, func.max(unit_track.c.ts_ms).label("ts_ms"))
              .where(unit_track.c.ts_ms <= at_ms, unit_track.c.ts_ms > at_ms - SEEN_WITHIN_MS)
              .group_by(unit_track.c.unit).subquery())
    stmt = (select(units.c.unit, units.c.department, units.c.kind, units.c.district, unit_track.c.status,
                   unit_track.c.lat, unit_track.c.lon, unit_track.c.ts_ms.label("updated_ms"), unit_track.c.task_id)
            .join(newest, newest.c.unit == unit_track.c.unit)
            .join(units, units.c.unit == unit_track.c.unit)
            .where(unit_track.c.ts_ms == newest.c.ts_ms).order_by(unit_track.c.unit))
    return [dict(r) for r in conn.execute(stmt).mappings()]
