"""Units follow their task: on scene with it, available again when it ends (each move on the task's timeline)."""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import update
from sqlalchemy.engine import Connection

from dashboard.storage import units as unit_store
from dashboard.storage.models import units

ENDED = ("resolved", "closed", "rejected")  # a unit of a task in these states is free for another


def follow(conn: Connection, moved_tasks: Iterable[dict], actor: str, now_ms: int) -> list[dict]:
    """Move the units of tasks that just changed state, in the caller's transaction; return the units changed.

    A task on scene takes its units en route on scene; a task that ended releases its units (available).
    """
    on_scene = [t["id"] for t in moved_tasks if t["state"] == "on_scene"]
    ended = [t["id"] for t in moved_tasks if t["state"] in ENDED]
    changed: list[dict] = []
    moves = []
    if on_scene:
        rows = conn.execute(update(units).where(units.c.task_id.in_(on_scene), units.c.status == "en_route")
                            .values(status="on_scene", updated_ms=now_ms).returning(*units.c)).mappings().all()
        changed += [dict(r) for r in rows]
        moves += [(r["task_id"], r["unit"], "en_route", "on_scene", "unit_on_scene") for r in rows]
    if ended:
        held = conn.execute(units.select().where(units.c.task_id.in_(ended))).mappings().all()
        if held:
            rows = conn.execute(update(units).where(units.c.task_id.in_(ended))
                                .values(status="available", task_id=None, updated_ms=now_ms)
                                .returning(*units.c)).mappings().all()
            changed += [dict(r) for r in rows]
            moves += [(r["task_id"], r["unit"], r["status"], "available", "unit_released") for r in held]
    unit_store.audit_units(conn, moves, actor, now_ms)
    return changed
