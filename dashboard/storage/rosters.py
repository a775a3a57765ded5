"""Keep the duty overrides set in the app: a person in a role of a department from .. until, with a reason."""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import case, insert, select, update
from sqlalchemy.engine import Connection

from dashboard.core.errors import NotFound, Unprocessable
from dashboard.core.rosters import Override
from dashboard.storage.models import roster_overrides

LIST_LIMIT = 500


def in_force(conn: Connection, from_ms: int) -> list[Override]:
    """Return the overrides in force at ``from_ms`` or later (those whose end has not passed), oldest first."""
    rows = conn.execute(select(roster_overrides).where(roster_overrides.c.until_ms > from_ms)
                        .order_by(roster_overrides.c.id)).mappings()
    return [as_override(r) for r in rows]


def as_override(row) -> Override:
    """Return a stored override as the roster's pure functions take it."""
    return Override(row["department"], row["person"], row["role"], row["from_ms"], row["until_ms"], row["id"])


def create(conn: Connection, *, department: str, person: str, role: str, from_ms: int, until_ms: int, reason: str,
           actor: str, now_ms: int) -> dict:
    """Record an override and return it (the caller has checked the department, person and times)."""
    new_id = conn.execute(insert(roster_overrides).values(
        department=department, person=person, role=role, from_ms=from_ms, until_ms=until_ms, reason=reason,
        created_by=actor, created_ms=now_ms).returning(roster_overrides.c.id)).scalar_one()
    return get(conn, new_id)


def get(conn: Connection, override_id: int) -> dict:
    """Return one override; NotFound when there is none."""
    row = conn.execute(select(roster_overrides).where(roster_overrides.c.id == override_id)).mappings().first()
    if row is None:
        raise NotFound(f"no roster override {override_id}")
    return dict(row)


def end(conn: Connection, override_id: int, actor: str, now_ms: int) -> dict:
    """End an override now (one not begun yet is withdrawn: it ends where it would have begun); NotFound when
    there is none, Unprocessable when it has ended already."""
    o = roster_overrides.c
    row = conn.execute(update(roster_overrides).where(o.id == override_id, o.until_ms > now_ms, o.ended_ms.is_(None))
                       .values(until_ms=_max(o.from_ms, now_ms), ended_ms=now_ms, ended_by=actor)
                       .returning(*roster_overrides.c)).mappings().first()
    if row is not None:
        return dict(row)
    get(conn, override_id)  # NotFound
    raise Unprocessable(f"roster override {override_id} has ended already")


def _max(column, value: int):
    return case((column > value, column), else_=value)


def listed(conn: Connection, now_ms: int, *, all_: bool = False, limit: int = LIST_LIMIT,
           departments: Iterable[str] | None = None) -> list[dict]:
    """Return overrides newest first: those in force now or later (or every one); of ``departments`` only when
    given (a district centre's reader: filtered before the limit, so others' cannot crowd theirs out)."""
    q = select(roster_overrides).order_by(roster_overrides.c.id.desc()).limit(limit)
    if not all_:
        q = q.where(roster_overrides.c.until_ms > now_ms)
    if departments is not None:
        q = q.where(roster_overrides.c.department.in_(tuple(departments)))
    return [dict(r) for r in conn.execute(q).mappings()]
