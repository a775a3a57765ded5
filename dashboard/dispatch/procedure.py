"""Follow an incident's standard procedure (预案, the city pack's procedures.yaml): its checklist with each step's
deadline from the first dispatch, ticks by the officers and the responsible department's liaisons, and overdue
steps escalated through the department's duty roster as overdue tasks are -- each change audited in the incident's
trail (``task_events``, action ``procedure``, codes said when shown)."""

from __future__ import annotations

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from dashboard.core.errors import Forbidden
from dashboard.core.roles import check_role
from dashboard.dispatch import board as d
from dashboard.storage import escalations
from dashboard.storage.models import incidents, procedure_steps, tasks

ACTION = "procedure"
MINUTE_MS = 60_000


def started_ms(conn: Connection, incident_id: int) -> int | None:
    """Return when the incident was first dispatched (its first task that was not a coordination), or None."""
    return conn.execute(select(func.min(tasks.c.created_ms)).where(tasks.c.incident_id == incident_id,
                                                                   tasks.c.coordination.is_(False))).scalar()


def checklist(conn: Connection, city, inc: dict) -> list[dict]:
    """Return the incident's checklist: each step of its kind's procedure with its deadline (None without one or
    before the first dispatch) and what happened to it."""
    steps = city.procedures.steps(inc["kind"])
    if not steps:
        return []
    start = started_ms(conn, inc["id"])
    held = {r["step"]: r for r in conn.execute(select(procedure_steps).where(
        procedure_steps.c.incident_id == inc["id"])).mappings()}
    out = []
    for s in steps:
        row = held.get(s.step) or {}
        out.append({"step": s.step, "title": s.title, "title_en": s.title_en, "department": s.department,
                    "due_ms": start + s.due_min * MINUTE_MS if start is not None and s.due_min else None,
                    "done_ms": row.get("done_ms"), "done_by": row.get("done_by"),
                    "escalated_ms": row.get("escalated_ms")})
    return out


def may_tick(user, department: str) -> bool:
    """Tell whether ``user`` may tick a step of ``department``: an officer (any step), a liaison (their own)."""
    if user is not None and user.role == "liaison":
        return user.active and bool(user.department) and user.department == department
    return check_role(user, "officer")


def _params(step) -> dict:
    return {"step": step.title, "step_en": step.title_en, "dep": step.department}


def tick(conn: Connection, city, incident_id: int, code: str, user, note: str | None, now_ms: int) -> dict:
    """Mark a step done for ``user``; return the incident. NotFound: no such incident or step of its procedure;
    Forbidden: not the step's department; InvalidTransition: done already, or the incident is closed."""
    inc = d.lock_incident(conn, incident_id)
    step = city.procedures.step(inc["kind"], code)
    if step is None:
        raise d.NotFound(f"the procedure of {inc['kind']} has no step {code!r}")
    if not may_tick(user, step.department):
        raise Forbidden(f"{user.username} may not tick a step of {step.department}")
    if inc["status"] == "closed":
        raise d.InvalidTransition(f"incident {incident_id} is closed", key="invalid_transition")
    row = _row(conn, incident_id, code)
    if row is not None and row["done_ms"] is not None:
        raise d.InvalidTransition(f"step {code!r} is done already", key="step_done_already")
    values = {"done_ms": now_ms, "done_by": user.username, "updated_ms": now_ms}
    if row is None:
        conn.execute(insert(procedure_steps).values(incident_id=incident_id, step=code, department=step.department,
                                                    **values))
    else:
        conn.execute(update(procedure_steps).where(procedure_steps.c.id == row["id"]).values(**values))
    escalations.stop_step(conn, incident_id, code)  # whoever was being told need not be any more
    d._audit(conn, [d._event(incident_id, None, ACTION, user.username, now_ms, None, "done", note, "step_done",
                             _params(step))])
    return inc


def _row(conn: Connection, incident_id: int, code: str) -> dict | None:
    row = conn.execute(select(procedure_steps).where(procedure_steps.c.incident_id == incident_id,
                                                     procedure_steps.c.step == code)).mappings().first()
    return dict(row) if row else None


def escalate_overdue(conn: Connection, city, now_ms: int) -> list[dict]:
    """Escalate every step past its deadline and not done, of incidents not resolved, whose department holds a task
    of the incident: marked once (the incident is locked, so any number of checkers may run), audited, and its
    department's duty told through its roster's ladder; return the incidents concerned."""
    kinds = [k for k, steps in city.procedures.by_kind.items() if any(s.due_min for s in steps)]
    if not kinds:
        return []
    ids = conn.execute(select(incidents.c.id).where(incidents.c.kind.in_(kinds),
                                                    incidents.c.status.in_(("dispatched", "in_progress")))).scalars()
    changed = []
    for incident_id in list(ids):
        inc = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().one()
        holders = set(conn.execute(select(tasks.c.department).where(tasks.c.incident_id == incident_id)).scalars())
        if not _late(checklist(conn, city, dict(inc)), now_ms, holders):
            continue
        inc = d.lock_incident(conn, incident_id)  # read again under the lock: another checker may have been first
        late = _late(checklist(conn, city, inc), now_ms, holders)
        for s in late:
            _escalate(conn, city, inc, s, now_ms)
        if late:
            changed.append(inc)
    return changed


def _late(steps: list[dict], now_ms: int, holders: set[str]) -> list[dict]:
    # only the steps of departments taking part (holding a task of the incident): the others' duty is not told
    # of a step of a response they were never sent to; the step shows overdue on the screens all the same
    return [s for s in steps if s["due_ms"] is not None and s["due_ms"] <= now_ms and s["done_ms"] is None
            and s["escalated_ms"] is None and s["department"] in holders]


def _escalate(conn: Connection, city, inc: dict, s: dict, now_ms: int) -> None:
    row = _row(conn, inc["id"], s["step"])
    if row is None:
        conn.execute(insert(procedure_steps).values(incident_id=inc["id"], step=s["step"], department=s["department"],
                                                    escalated_ms=now_ms, updated_ms=now_ms))
    else:
        conn.execute(update(procedure_steps).where(procedure_steps.c.id == row["id"])
                     .values(escalated_ms=now_ms, updated_ms=now_ms))
    step = city.procedures.step(inc["kind"], s["step"])
    rosters = city.rosters
    what = inc.get("title") or inc["kind"]
    ladder = escalations.start(conn, rosters, subject="step", chain=f"{inc['id']}.{s['step']}",
                               department=s["department"], title=f"{what}：{s['title']}",
                               title_en=f"{what}: {s['title_en']}", now_ms=now_ms)
    rows = [d._event(inc["id"], None, ACTION, d.SYSTEM_ACTOR, now_ms, None, "overdue", None, "step_overdue",
                     _params(step))]
    rows += [d._event(inc["id"], None, "notify", d.SYSTEM_ACTOR, now_ms, None, "overdue", None, "esc_step",
                      {**escalations.step_params(x, rosters.timezone), "dep": ladder.department})
             for x in ladder.steps]
    if not ladder.messages:
        rows.append(d._event(inc["id"], None, "notify", d.SYSTEM_ACTOR, now_ms, None, "overdue", None, "esc_nobody",
                             {"dep": s["department"]}))
    d._audit(conn, rows)
