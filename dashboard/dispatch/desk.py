"""The dispatch desk: what the API, the /dispatch page and /m share -- queues, scopes, details, writes that
publish what changed."""

from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import case, func, select

from dashboard.core import messages
from dashboard.core.bus import BUS_ERRORS
from dashboard.core.channels import UPDATES_CHANNEL
from dashboard.core.errors import Forbidden
from dashboard.core.roles import check_role
from dashboard.core.scope import Scope, of_user
from dashboard.dispatch import board as d
from dashboard.dispatch import escalation, major, merge, procedure
from dashboard.storage.models import events, incident_reports, incidents, tasks
from dashboard.core.clock import iso

log = logging.getLogger(__name__)

STATUSES = ("open", "dispatched", "in_progress", "resolved", "closed")
# The officer's queue: everything not yet closed (a resolved incident waits for the officer to close it).
ACTIVE = ("open", "dispatched", "in_progress", "resolved")

QUEUE_ROWS = 500  # the most incidents a queue draws; how many more there are is said beside it


# Escalated incidents first (the commander raised them), then the most severe, then the oldest.
QUEUE_ORDER = (incidents.c.escalated_ms.is_(None), incidents.c.severity.desc(), incidents.c.opened_ms, incidents.c.id)


def _queued(statuses, department: str | None, district: str | None = None) -> list:
    where = [incidents.c.status.in_(list(statuses))]
    if district is not None:  # a district centre's queue: the incidents of its district (SPEC section 13)
        where.append(d.of_district(district))
    return where if department is None else [*where, d.held_by(department)]


def queue_statement(statuses=ACTIVE, department: str | None = None, district: str | None = None,
                    first: str | None = None):
    """Return the statement of the queue: incidents in ``statuses`` in the queue's order (``department``: only
    those it holds a task of; ``district``: only that district's centre's; ``first``: a district centre's, whose
    own incidents come first). The queue and its export read it."""
    order = QUEUE_ORDER if first is None else (case((incidents.c.centre == first, 0), else_=1), *QUEUE_ORDER)
    return select(incidents).where(*_queued(statuses, department, district)).order_by(*order)


def board_statement(department: str | None = None, incident_id: int | None = None, district: str | None = None):
    """Return the statement of /dispatch's task board: the tasks of incidents not closed (closed tasks and
    rerouted rejections left out), by id; ``department``, ``incident_id``, ``district`` (the incident's): only
    those. The board and its export read it (the board shows it per department, in the city pack's order)."""
    stmt = (select(tasks).join(incidents, incidents.c.id == tasks.c.incident_id)
            .where(incidents.c.status.in_(list(ACTIVE)), tasks.c.state != "closed", ~tasks.c.rerouted)
            .order_by(tasks.c.id))
    if department is not None:
        stmt = stmt.where(tasks.c.department == department)
    if incident_id is not None:
        stmt = stmt.where(tasks.c.incident_id == incident_id)
    if district is not None:
        stmt = stmt.where(d.of_district(district))
    return stmt


def queue(conn, statuses=ACTIVE, limit: int = QUEUE_ROWS, department: str | None = None,
          district: str | None = None, first: str | None = None) -> list[dict]:
    """Return incidents in ``statuses``, escalated first, then the most severe, then the oldest; with
    ``department``, only those it holds a task of; with ``district``, only that district centre's; with
    ``first`` (a district code), the incidents that district's centre runs before all others."""
    rows = conn.execute(queue_statement(statuses, department, district, first).limit(limit)).mappings()
    return [dict(r) for r in rows]


def queue_total(conn, shown: list[dict], statuses=ACTIVE, limit: int = QUEUE_ROWS,
                department: str | None = None, district: str | None = None) -> int:
    """Return how many incidents the queue ``shown`` (read with ``limit``) stands for: counted only when cut."""
    if len(shown) < limit:
        return len(shown)
    return int(conn.execute(select(func.count()).select_from(incidents)
                            .where(*_queued(statuses, department, district))).scalar_one())


def scope(user) -> str | None:
    """Return the one department ``user`` is limited to (a liaison's), or None when they see every one.

    A liaison without a department is limited to "" and so sees nothing. Their district, if any, is
    ``reader(user).district``.
    """
    return reader(user).department


def reader(user) -> Scope:
    """Return what ``user`` may read (``dashboard.core.scope``): department, district, or the city."""
    return of_user(user)


def in_district(conn, user, incident_id: int) -> bool:
    """Tell whether an incident is of the district ``user`` is limited to (True for the city centre's users)."""
    district = reader(user).district
    if district is None:
        return True
    return conn.execute(select(incidents.c.id).where(incidents.c.id == incident_id, d.of_district(district))).first() \
        is not None


def may_see(conn, user, incident_id: int) -> bool:
    """Tell whether ``user`` may read an incident: a liaison only one their department holds a task of, a
    district centre's user only one of their district."""
    if not in_district(conn, user, incident_id):
        return False
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
                     "last_report_at": iso(row["last_report_ms"], tz), "version": row["version"],
                     "merged_into": row["merged_into"]},
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
        "major": major_doc(conn, incident_id, tz),
        "procedure": [step_doc(s, tz) for s in procedure.checklist(conn, svc.city, row)],
    }


def step_doc(step: dict, tz: str) -> dict:
    """Return a step of an incident's checklist as the API shows it: times RFC 3339 in the city's zone."""
    return {"step": step["step"], "title": step["title"], "title_en": step["title_en"],
            "department": step["department"], "due": iso(step["due_ms"], tz) if step["due_ms"] else None,
            "done_at": iso(step["done_ms"], tz) if step["done_ms"] else None, "done_by": step["done_by"],
            "escalated": step["escalated_ms"] is not None, "due_ms": step["due_ms"]}


def major_doc(conn, incident_id: int, tz: str) -> dict | None:
    """Return the incident's active major-incident declaration ({level, declared_at, declared_by}), or None."""
    row = major.active_row(conn, incident_id)
    if row is None:
        return None
    return {"level": row["level"], "declared_at": iso(row["declared_ms"], tz), "declared_by": row["declared_by"]}


def open_escalations(conn, department: str | None = None, limit: int = 50, district: str | None = None) -> list[dict]:
    """Return the escalated tasks not yet resolved of incidents not closed, newest escalation first, with
    their incident's title and kind; with ``department``, only that department's; ``district``: its incidents'."""
    stmt = (select(tasks, incidents.c.title.label("incident_title"), incidents.c.kind.label("incident_kind"))
            .join(incidents, incidents.c.id == tasks.c.incident_id)
            .where(tasks.c.escalated, tasks.c.state.in_(list(d.LIVE)), incidents.c.status.in_(list(ACTIVE)))
            .order_by(tasks.c.escalated_ms.desc(), tasks.c.id.desc()).limit(limit))
    if department is not None:
        stmt = stmt.where(tasks.c.department == department)
    if district is not None:
        stmt = stmt.where(d.of_district(district))
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


def within(conn, user, incident_id: int | None = None, task_id: int | None = None) -> None:
    """Refuse (NotFound, as a read of it answers) a write by a district centre's user to an incident, or a task
    of one, outside what they may read: knowing an id is not leave to act on another district's incident."""
    if user is None or reader(user).district is None:
        return
    if task_id is not None:
        incident_id = conn.execute(select(tasks.c.incident_id).where(tasks.c.id == task_id)).scalar()
        if incident_id is None:
            raise d.NotFound(f"no task {task_id}")
    if incident_id is not None and not in_district(conn, user, incident_id):
        raise d.NotFound(f"no incident {incident_id}")


def write(svc, fn: Callable[..., d.Change], *args, user=None, on_task: bool = False) -> d.Change:
    """Run one dispatch write on the incident ``args[0]`` (``on_task``: the task ``args[0]``) in its own
    transaction (for ``user``: within what they may read), then publish what changed."""
    with svc.engine.begin() as conn:
        if on_task:
            within(conn, user, task_id=args[0])
        else:
            within(conn, user, args[0])
        change = fn(conn, *args)
    publish(svc, [change.incident], change.tasks, units=change.units)
    return change


def do_transition(svc, user, task_id: int, to: str, version: int, note: str | None) -> d.Change:
    """Move a task for ``user``, refusing (Forbidden) a department they may not move."""
    with svc.engine.begin() as conn:
        within(conn, user, task_id=task_id)
        if not may_move(user, task_department(conn, task_id)):
            raise Forbidden(f"{user.username} may not move tasks of that department")
        change = d.transition(conn, task_id, to, version, user.username, note, svc.clock())
    publish(svc, [change.incident], change.tasks, units=change.units)
    return change


def do_resolve_for(svc, user, task_id: int, version: int, note: str | None) -> d.Change:
    """Record, as an officer, a department's resolution on its behalf (``board.resolve_for``); publish it."""
    if not check_role(user, "officer"):
        raise Forbidden("only an officer records a department's resolution on its behalf")
    return write(svc, d.resolve_for, task_id, version, user.username, note, svc.clock(), user=user, on_task=True)


def do_redispatch(svc, user, task_id: int, version: int, note: str | None) -> d.Change:
    """Send an overdue task to its department again for ``user`` (the ``command`` permission), as /m's
    re-dispatch tap does (``board.redispatch``); publish it."""
    if not check_role(user, "command"):
        raise Forbidden("only a commander or an officer may re-dispatch")
    return write(svc, d.redispatch, task_id, version, user.username, note, svc.clock(), user=user, on_task=True)


def do_escalate(svc, user, incident_id: int, task_id: int | None) -> d.Change:
    """Escalate an incident for ``user`` (the ``command`` permission) as ``dispatch.escalation`` defines it."""
    if not check_role(user, "command"):
        raise Forbidden("only a commander or an officer may escalate")
    return write(svc, escalation.escalate, incident_id, task_id, user.username, svc.clock(), svc.city, user=user)


def do_merge(svc, user, incident_id: int, into_id: int, version: int, note: str | None) -> merge.Moved:
    """Merge one incident into another for ``user`` (the ``command`` permission, as ``merge.merge``); publish both."""
    if not check_role(user, "command"):
        raise Forbidden("only an officer or a commander merges incidents")
    with svc.engine.begin() as conn:
        within(conn, user, incident_id)
        within(conn, user, into_id)
        moved = merge.merge(conn, incident_id, into_id, version, user.username, note, svc.clock(), svc.city)
    publish(svc, moved.incidents, moved.tasks)
    return moved


def do_split(svc, user, incident_id: int, event_ids: list[str], version: int, note: str | None) -> merge.Moved:
    """Split reports off an incident into a new one for ``user`` (the ``command`` permission); publish both."""
    if not check_role(user, "command"):
        raise Forbidden("only an officer or a commander splits incidents")
    with svc.engine.begin() as conn:
        within(conn, user, incident_id)
        moved = merge.split(conn, incident_id, event_ids, version, user.username, note, svc.clock(), svc.city)
    publish(svc, moved.incidents, moved.tasks)
    return moved


def do_tick(svc, user, incident_id: int, step: str, note: str | None) -> dict:
    """Tick a step of an incident's procedure for ``user`` (``procedure.tick`` says who may); publish it."""
    with svc.engine.begin() as conn:
        within(conn, user, incident_id)
        inc = procedure.tick(conn, svc.city, incident_id, step, user, note, svc.clock())
        inc = dict(conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().one())
    publish(svc, [inc], [])
    return inc


def publish_majors(svc, incident_row: dict) -> list[messages.MajorView]:
    """Publish every active major incident (and the incident that changed) once committed; return them."""
    tz = svc.config["PANORAMA_TZ"]
    with svc.engine.connect() as conn:
        majors = major.views(conn, tz)
    try:
        svc.redis.publish(UPDATES_CHANNEL, messages.encode_delta(svc.clock(), incidents=[incident_doc(incident_row, tz)],
                                                                 majors=majors))
    except BUS_ERRORS:
        # committed: a page that connects later gets them in its snapshot, a polling page on its next poll
        log.warning("could not publish a major-incident change", exc_info=True)
    return majors


def do_declare(svc, user, incident_id: int, level: int, note: str | None) -> list[messages.MajorView]:
    """Declare (or change the level of) a major incident for ``user`` (the ``command`` permission); publish it."""
    if not check_role(user, "command"):
        raise Forbidden("only an officer or a commander declares a major incident")
    with svc.engine.begin() as conn:
        within(conn, user, incident_id)
        inc = major.declare(conn, incident_id, level, user.username, note, svc.clock())
    return publish_majors(svc, inc)


def do_stand_down(svc, user, incident_id: int, note: str | None) -> list[messages.MajorView]:
    """Stand a major incident down for ``user`` (the ``command`` permission); publish it."""
    if not check_role(user, "command"):
        raise Forbidden("only an officer or a commander stands a major incident down")
    with svc.engine.begin() as conn:
        within(conn, user, incident_id)
        inc = major.stand_down(conn, incident_id, user.username, note, svc.clock())
    return publish_majors(svc, inc)
