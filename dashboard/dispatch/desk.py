"""The dispatch desk: what the API, the /dispatch page and /m share -- queues, scopes, details, writes that
publish what changed."""

from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import func, select

from dashboard.core import messages
from dashboard.core.bus import BUS_ERRORS
from dashboard.core.channels import UPDATES_CHANNEL
from dashboard.core.errors import Forbidden
from dashboard.core.roles import check_role
from dashboard.dispatch import board as d
from dashboard.dispatch import escalation
from dashboard.storage.models import events, incident_reports, incidents, tasks
from dashboard.core.clock import iso

log = logging.getLogger(__name__)

STATUSES = ("open", "dispatched", "in_progress", "resolved", "closed")
# The officer's queue: everything not yet closed (a resolved incident waits for the officer to close it).
ACTIVE = ("open", "dispatched", "in_progress", "resolved")

QUEUE_ROWS = 500  # the most incidents a queue draws; how many more there are is said beside it


# Escalated incidents first (the commander raised them), then the most severe, then the oldest.
QUEUE_ORDER = (incidents.c.escalated_ms.is_(None), incidents.c.severity.desc(), incidents.c.opened_ms, incidents.c.id)


def _queued(statuses, department: str | None) -> list:
    where = [incidents.c.status.in_(list(statuses))]
    return where if department is None else [*where, d.held_by(department)]


def queue_statement(statuses=ACTIVE, department: str | None = None):
    """Return the statement of the queue: incidents in ``statuses`` in the queue's order (``department``: only
    those it holds a task of). The queue and its export read it."""
    return select(incidents).where(*_queued(statuses, department)).order_by(*QUEUE_ORDER)


def queue(conn, statuses=ACTIVE, limit: int = QUEUE_ROWS, department: str | None = None) -> list[dict]:
    """Return incidents in ``statuses``, escalated first, then the most severe, then the oldest; with
    ``department``, only those it holds a task of."""
    return [dict(r) for r in conn.execute(queue_statement(statuses, department).limit(limit)).mappings()]


def queue_total(conn, shown: list[dict], statuses=ACTIVE, limit: int = QUEUE_ROWS,
                department: str | None = None) -> int:
    """Return how many incidents the queue ``shown`` (read with ``limit``) stands for: counted only when cut."""
    if len(shown) < limit:
        return len(shown)
    return int(conn.execute(select(func.count()).select_from(incidents)
                            .where(*_queued(statuses, department))).scalar_one())


def scope(user) -> str | None:
    """Return the one department ``user`` is limited to (a liaison's), or None when they see every one.

    A liaison without a department is limited to "" and so sees nothing.
    """
    if user is not None and user.role == "liaison":
        return user.department or ""
    return None


def may_see(conn, user, incident_id: int) -> bool:
    """Tell whether ``user`` may read an incident: a liaison only one their department holds a task of."""
    department = scope(user)
    if department is None:
        return True
    return bool(conn.execute(select(tasks.c.id).where(tasks.c.incident_id == incident_id,
                                                      tasks.c.department == department).limit(1)).first())


def incident_doc(row: dict, tz: str) -> dict:
    """Return an incident as published and listed: the SPEC shape plus its domain."""
    return messages.incident_view(row, tz, domain=True)


def task_doc(row: dict, tz: str) -> dict:
    """Return a task as the API shows it, and whether an escalation added it to coordinate (not a dispatch)."""
    return {**d.task_view(row, tz), "coordination": bool(row["coordination"])}


def suggestion_doc(svc, row: dict, at_ms: int) -> dict | None:
    """Return what the rules would dispatch ``row`` to now, or None when the city has no rules."""
    rules = svc.city.rules
    if rules is None:
        return None
    s = rules.suggest(row, at_ms)
    tz = svc.config["PANORAMA_TZ"]
    return {"rule": s.rule_name, "lead": s.lead, "supporting": list(s.supporting), "departments": list(s.departments),
            "ack_due": iso(s.ack_due_ms, tz), "resolve_due": iso(s.resolve_due_ms, tz)}


def detail(conn, svc, incident_id: int, at_ms: int) -> dict:
    """Return one incident with its reports, tasks, history and the rules' suggestion; NotFound if none."""
    tz = svc.config["PANORAMA_TZ"]
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().first()
    if row is None:
        raise d.NotFound(f"no incident {incident_id}")
    row = dict(row)
    reports = conn.execute(
        select(events).join(incident_reports, incident_reports.c.event_seq == events.c.seq)
        .where(incident_reports.c.incident_id == incident_id).order_by(events.c.ts_ms.desc()).limit(200)
    ).mappings().all()
    return {
        "incident": {**incident_doc(row, tz), "street": row["street"], "lat": row["lat"], "lon": row["lon"],
                     "last_report_at": iso(row["last_report_ms"], tz), "version": row["version"]},
        "reports": [{"id": r["event_id"], "domain": r["domain"], "kind": r["kind"], "severity": r["severity"],
                     "title": r["title"], "street": r["street"], "ts": iso(r["ts_ms"], tz), "lat": r["lat"],
                     "lon": r["lon"], "source": r["source"]} for r in reports],
        "tasks": [task_doc(t, tz) for t in sorted(d.list_tasks(conn, incident_id=incident_id),
                                                      key=lambda t: t["id"])],
        "history": [{"at": iso(h["at_ms"], tz), "actor": h["actor"], "action": h["action"], "task_id": h["task_id"],
                     "from": h["from_state"], "to": h["to_state"], "note": h["note"], "code": h["code"],
                     "params": h["params"]}
                    for h in d.history(conn, incident_id)],
        "suggestion": suggestion_doc(svc, row, at_ms) if row["status"] not in d.DONE else None,
    }


def open_escalations(conn, department: str | None = None, limit: int = 50) -> list[dict]:
    """Return the escalated tasks not yet resolved of incidents not closed, newest escalation first, with
    their incident's title and kind; with ``department``, only that department's."""
    stmt = (select(tasks, incidents.c.title.label("incident_title"), incidents.c.kind.label("incident_kind"))
            .join(incidents, incidents.c.id == tasks.c.incident_id)
            .where(tasks.c.escalated, tasks.c.state.in_(list(d.LIVE)), incidents.c.status.in_(list(ACTIVE)))
            .order_by(tasks.c.escalated_ms.desc(), tasks.c.id.desc()).limit(limit))
    if department is not None:
        stmt = stmt.where(tasks.c.department == department)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def unresolved(doc: dict) -> list[str]:
    """Return the departments whose tasks of a detailed incident keep it from closing (not yet resolved)."""
    return sorted({t["department"] for t in doc["tasks"] if t["state"] in d.LIVE})


def task_department(conn, task_id: int) -> str:
    """Return the department of a task; NotFound if none."""
    dep = conn.execute(select(tasks.c.department).where(tasks.c.id == task_id)).scalar()
    if dep is None:
        raise d.NotFound(f"no task {task_id}")
    return dep


def may_move(user, department: str) -> bool:
    """Tell whether ``user`` may move a task of ``department`` (a liaison only their own department's)."""
    if user is not None and user.role == "liaison":
        return user.active and bool(user.department) and user.department == department
    return check_role(user, "dispatch")


def publish(svc, incident_rows: list[dict], task_rows: list[dict], escalations: list[dict] | None = None,
            units=()) -> None:
    """Publish committed changes on the updates channel (``units``: the units that moved, as
    ``messages.DeltaUnit``s or unit rows); a bus outage only costs the live push."""
    tz = svc.config["PANORAMA_TZ"]
    msg = messages.encode_delta(svc.clock(), incidents=[incident_doc(r, tz) for r in incident_rows],
                                tasks=[d.task_view(t, tz) for t in task_rows], escalations=escalations,
                                units=[u if "updated_at" in u else messages.unit_view(u, tz) for u in units] or None)
    try:
        svc.redis.publish(UPDATES_CHANNEL, msg)
    except BUS_ERRORS:
        # The write is committed; the pages' polling picks it up.
        log.warning("could not publish a dispatch change", exc_info=True)


def write(svc, fn: Callable[..., d.Change], *args) -> d.Change:
    """Run one dispatch write in its own transaction, then publish what changed."""
    with svc.engine.begin() as conn:
        change = fn(conn, *args)
    publish(svc, [change.incident], change.tasks, units=change.units)
    return change


def do_transition(svc, user, task_id: int, to: str, version: int, note: str | None) -> d.Change:
    """Move a task for ``user``, refusing (Forbidden) a department they may not move."""
    with svc.engine.begin() as conn:
        if not may_move(user, task_department(conn, task_id)):
            raise Forbidden(f"{user.username} may not move tasks of that department")
        change = d.transition(conn, task_id, to, version, user.username, note, svc.clock())
    publish(svc, [change.incident], change.tasks, units=change.units)
    return change


def do_resolve_for(svc, user, task_id: int, version: int, note: str | None) -> d.Change:
    """Record, as an officer, a department's resolution on its behalf (``board.resolve_for``); publish it."""
    if not check_role(user, "officer"):
        raise Forbidden("only an officer records a department's resolution on its behalf")
    return write(svc, d.resolve_for, task_id, version, user.username, note, svc.clock())


def do_redispatch(svc, user, task_id: int, version: int, note: str | None) -> d.Change:
    """Send an overdue task to its department again for ``user`` (the ``command`` permission), as /m's
    re-dispatch tap does (``board.redispatch``); publish it."""
    if not check_role(user, "command"):
        raise Forbidden("only a commander or an officer may re-dispatch")
    return write(svc, d.redispatch, task_id, version, user.username, note, svc.clock())


def do_escalate(svc, user, incident_id: int, task_id: int | None) -> d.Change:
    """Escalate an incident for ``user`` (the ``command`` permission) as ``dispatch.escalation`` defines it."""
    if not check_role(user, "command"):
        raise Forbidden("only a commander or an officer may escalate")
    return write(svc, escalation.escalate, incident_id, task_id, user.username, svc.clock(), svc.city)
