"""Route incidents to departments as tasks, move tasks through their states and escalate missed deadlines.

Each write runs inside the caller's transaction (``with engine.begin() as conn``), keeps an audit row per
change and returns what changed; the caller publishes it on ``panorama:updates`` once committed.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection

from dashboard.core import errors
from dashboard.core.messages import incident_view, task_view  # noqa: F401 (d.task_view: the views live there)
from dashboard.core.city import City
from dashboard.core.scope import readers_of
from dashboard.storage import escalations
from dashboard.storage.incidents import held_by, of_district  # noqa: F401 (d.held_by, d.of_district: storage scopes)
from dashboard.storage.models import incidents, task_events, tasks, users
from dashboard.core.rules import Rules
from dashboard.dispatch import audit, fleet

LIVE = ("dispatched", "acknowledged", "on_scene")
DONE = ("resolved", "closed")
# acknowledged -> resolved: a department that never goes on scene (a forecast, a hospital on standby)
# still finishes its task. Rejection only until someone is on scene: from then on the department is committed.
TRANSITIONS: dict[str, frozenset[str]] = {
    "dispatched": frozenset({"acknowledged", "rejected"}),
    "acknowledged": frozenset({"on_scene", "resolved", "rejected"}),
    "on_scene": frozenset({"resolved"}),
    "resolved": frozenset({"closed"}),
    "rejected": frozenset(),
    "closed": frozenset(),
}
SYSTEM_ACTOR = "system"
# A task the commander may send again: once someone is on scene the department is committed (as for rejection).
REDISPATCHABLE = ("dispatched", "acknowledged")


class DispatchError(errors.DomainError):
    """A dispatch request refused as bad input (the API answers 400)."""


class NotFound(DispatchError, errors.NotFound):
    """No such incident or task."""


class VersionConflict(DispatchError, errors.Conflict):
    """The task changed since the caller read it: reload and retry."""


class InvalidTransition(DispatchError, errors.Unprocessable):
    """The task (or incident) cannot go to that state from the one it is in."""


class _Changed(NamedTuple):
    incident: dict
    tasks: list[dict]


class Change(_Changed):
    """What one write changed: the incident as it now is and the tasks written (the pair callers unpack); and,
    beside the pair, ``units``: the units that followed their task (``fleet.follow``). Publish all three."""

    units: tuple = ()

    def moving(self, units) -> "Change":
        """Return this change with the units that moved with it."""
        self.units = tuple(units)
        return self

    @property
    def task(self) -> dict:
        """Return the one task a transition changed."""
        return self.tasks[0]


def can_transition(from_state: str, to_state: str) -> bool:
    """Tell whether a task may go from one state to another."""
    return to_state in TRANSITIONS.get(from_state, ())


def incident_status(task_states: Iterable[tuple]) -> str:
    """Derive an open incident's status from its tasks' (state, rerouted[, coordination]) tuples."""
    rows = [(r[0], bool(r[1]), bool(r[2]) if len(r) > 2 else False) for r in task_states]
    # A rejection sends the incident back to the officer until a new dispatch answers it.
    if any(state == "rejected" and not rerouted for state, rerouted, _ in rows):
        return "open"
    # An escalation's coordination task alone is not a dispatch: the incident still awaits one.
    if all(coordination for state, _, coordination in rows if state != "rejected"):
        return "open"
    live = [state for state, _, _ in rows if state != "rejected"]
    if all(state in DONE for state in live):
        return "resolved"
    return "dispatched" if all(state == "dispatched" for state in live) else "in_progress"


def dispatch(conn: Connection, incident_id: int, departments: Sequence[str] | None, actor: str, note: str | None,
             now_ms: int, rules: Rules, city: City, code: str | None = None) -> Change:
    """Create one task per department (None: the rules' suggestion) that has no live task on the incident yet.

    The deadlines come from the rule that matches the incident; the suggested lead leads if named,
    else the first department named. Dispatching answers earlier rejections, even with no new department.
    """
    inc = lock_incident(conn, incident_id)
    if inc["status"] in DONE:
        raise InvalidTransition(f"incident {incident_id} is {inc['status']}: it can no longer be dispatched")
    plan = rules.suggest(inc, now_ms)
    wanted = plan.departments if departments is None else _known(departments, inc, rules, city)
    existing = conn.execute(select(tasks.c.id, tasks.c.department, tasks.c.state, tasks.c.lead, tasks.c.rerouted,
                                   tasks.c.coordination)
                            .where(tasks.c.incident_id == incident_id)).mappings().all()
    live = [t for t in existing if t["state"] in LIVE]
    new = [d for d in wanted if d not in {t["department"] for t in live}]
    unanswered = [t for t in existing if t["state"] == "rejected" and not t["rerouted"]]
    # A department already coordinating on an escalation is dispatched by taking its task as it stands.
    adopted = [t for t in live if t["coordination"] and t["department"] in wanted]
    if not new and not unanswered and not adopted:
        raise DispatchError("name at least one department" if not wanted else
                            f"every department named already holds a live task of incident {incident_id}",
                            key="already_dispatched" if wanted else "name_a_department")
    taken = {t["department"] for t in adopted}
    lead = None if any(t["lead"] for t in live) else \
        plan.lead if plan.lead in new or plan.lead in taken else next(iter(new), None)
    created = []
    if new:
        rows = [{"incident_id": incident_id, "department": d, "lead": d == lead, "rule": plan.rule_name,
                 "state": "dispatched", "version": 1, "ack_due_ms": plan.ack_due_ms,
                 "resolve_due_ms": plan.resolve_due_ms, "escalated": False, "rerouted": False,
                 "created_ms": now_ms, "updated_ms": now_ms, "note": note} for d in new]
        created = [dict(r) for r in conn.execute(
            insert(tasks).returning(*tasks.c, sort_by_parameter_order=True), rows).mappings()]
    if unanswered:
        conn.execute(update(tasks).where(tasks.c.id.in_([t["id"] for t in unanswered]))
                     .values(rerouted=True, updated_ms=now_ms))
    taken_ids = {t["id"] for t in adopted}
    if adopted:
        created += [dict(r) for r in conn.execute(
            update(tasks).where(tasks.c.id.in_([t["id"] for t in adopted]))
            .values(coordination=False, lead=tasks.c.department == lead if lead in taken else tasks.c.lead,
                    updated_ms=now_ms).returning(*tasks.c)).mappings()]
    _audit(conn, [_event(incident_id, t["id"], "dispatch", actor, now_ms, None, "dispatched", note, code)
                  for t in created if t["id"] not in taken_ids]
           + [_event(incident_id, t["id"], "dispatch", actor, now_ms, t["state"], t["state"], note,
                     code or "coordination_dispatched") for t in adopted]
           + [_event(incident_id, t["id"], "reroute", actor, now_ms, "rejected", "rejected", note, code)
              for t in unanswered])
    return Change(_settle(conn, inc, actor, now_ms, note, code), created)


def _lock_task(conn: Connection, task_id: int, version: int) -> tuple[int, dict, dict]:
    """Lock a task's incident and read the task at ``version``: (incident id, incident, task)."""
    incident_id = conn.execute(select(tasks.c.incident_id).where(tasks.c.id == task_id)).scalar()
    if incident_id is None:
        raise NotFound(f"no task {task_id}")
    # Sibling tasks queue on the incident's row, so its status is derived from settled task states.
    inc = lock_incident(conn, incident_id)
    task = conn.execute(select(tasks).where(tasks.c.id == task_id)).mappings().one()
    if task["version"] != version:
        raise VersionConflict(f"task {task_id} is at version {task['version']}, not {version}: reload it")
    return incident_id, inc, task


def transition(conn: Connection, task_id: int, to: str, version: int, actor: str, note: str | None,
               now_ms: int) -> Change:
    """Move a task to state ``to`` if ``version`` is current and the move allowed; settle its incident."""
    if to not in TRANSITIONS:
        raise DispatchError(f"unknown task state {to!r} (one of {', '.join(TRANSITIONS)})")
    incident_id, inc, task = _lock_task(conn, task_id, version)
    if not can_transition(task["state"], to):
        raise InvalidTransition(f"task {task_id} cannot go from {task['state']} to {to}")
    if to == "rejected" and not (note or "").strip():
        raise DispatchError("a rejection needs its reason in the note", key="reject_needs_note")
    # The version guard alone makes concurrent writers exclusive, even where the row lock is a no-op (SQLite).
    row = conn.execute(update(tasks).where(tasks.c.id == task_id, tasks.c.version == version)
                       .values(state=to, version=tasks.c.version + 1, updated_ms=now_ms, note=note)
                       .returning(*tasks.c)).mappings().first()
    if row is None:
        raise VersionConflict(f"task {task_id} changed meanwhile: reload it")
    _audit(conn, [_event(incident_id, task_id, "transition", actor, now_ms, task["state"], to, note)])
    if task["state"] == "dispatched":  # only a task awaiting acknowledgement has a duty escalation running
        stop_duty(conn, incident_id, task_id, to, now_ms)
    moved = fleet.follow(conn, [dict(row)], actor, now_ms)
    return Change(_settle(conn, inc, actor, now_ms, note, "task_moved", {"dep": row["department"], "to": to}),
                  [dict(row)]).moving(moved)


def resolve_for(conn: Connection, task_id: int, version: int, actor: str, note: str | None, now_ms: int) -> Change:
    """Record a department's resolution on its behalf: from any live state, with a note, when it has nobody here.

    The department told the centre some other way (a phone call, a radio); the officer writes down who said
    so. A department with an active liaison on the system resolves its own tasks.
    """
    if not (note or "").strip():
        raise DispatchError("say who in the department reported the resolution, and how, in the note",
                            key="resolve_for_needs_note")
    incident_id, inc, task = _lock_task(conn, task_id, version)
    if task["state"] not in LIVE:
        raise InvalidTransition(f"task {task_id} is {task['state']}: there is no resolution to record")
    if staffed(conn, task["department"]):
        raise InvalidTransition(f"{task['department']} has people on the system: they resolve their own task",
                                key="staffed")
    row = conn.execute(update(tasks).where(tasks.c.id == task_id, tasks.c.version == version)
                       .values(state="resolved", version=tasks.c.version + 1, updated_ms=now_ms, note=note)
                       .returning(*tasks.c)).mappings().one()
    params = {"dep": task["department"]}
    _audit(conn, [_event(incident_id, task_id, "transition", actor, now_ms, task["state"], "resolved", note,
                         "resolved_on_behalf", params)])
    if task["state"] == "dispatched":
        stop_duty(conn, incident_id, task_id, "resolved", now_ms)
    moved = fleet.follow(conn, [dict(row)], actor, now_ms)
    return Change(_settle(conn, inc, actor, now_ms, None, "resolved_on_behalf", params), [dict(row)]).moving(moved)


def past_deadline(task: Mapping[str, Any], now_ms: int) -> bool:
    """Tell whether a live task is past the deadline of the step it is at (acknowledge, then resolve)."""
    if task["state"] not in LIVE:
        return False
    return (task["state"] == "dispatched" and task["ack_due_ms"] <= now_ms) or task["resolve_due_ms"] <= now_ms


def redispatch(conn: Connection, task_id: int, version: int, actor: str, note: str | None, now_ms: int,
               code: str = "task_redispatched") -> Change:
    """Send an overdue task to its department again: back to ``dispatched``, both deadlines restarted from now
    with the spans its rule gave, the escalation mark cleared (so a new miss is noticed again); settle its incident.

    Only a task past its deadline (or marked escalated) that nobody is on scene for yet may be sent again.
    """
    incident_id, inc, task = _lock_task(conn, task_id, version)
    if task["state"] not in REDISPATCHABLE:
        raise InvalidTransition(f"task {task_id} is {task['state']}: only a dispatched or acknowledged task is sent again")
    if not (task["escalated"] or past_deadline(task, now_ms)):
        raise InvalidTransition(f"task {task_id} is not overdue: there is nothing to send again")
    spans = (task["ack_due_ms"] - task["created_ms"], task["resolve_due_ms"] - task["created_ms"])
    row = conn.execute(update(tasks).where(tasks.c.id == task_id, tasks.c.version == version)
                       .values(state="dispatched", version=tasks.c.version + 1, ack_due_ms=now_ms + spans[0],
                               resolve_due_ms=now_ms + spans[1], escalated=False, escalated_ms=None,
                               updated_ms=now_ms, note=note)
                       .returning(*tasks.c)).mappings().first()
    if row is None:
        raise VersionConflict(f"task {task_id} changed meanwhile: reload it")
    params = {"dep": task["department"]}
    _audit(conn, [_event(incident_id, task_id, "redispatch", actor, now_ms, task["state"], "dispatched", note,
                         code, params)])
    stop_duty(conn, incident_id, task_id, "dispatched", now_ms)
    return Change(_settle(conn, inc, actor, now_ms, None, code, params), [dict(row)])


def stop_duty(conn: Connection, incident_id: int, task_id: int, state: str, now_ms: int) -> int:
    """Cancel the duty escalation of a task that moved (acknowledged, rejected, resolved, sent again), in the
    move's transaction; audit how many messages it cancelled, if any."""
    cancelled = escalations.stop(conn, "task", task_id)
    if cancelled:
        _audit(conn, [_event(incident_id, task_id, "notify", SYSTEM_ACTOR, now_ms, state, state, None, "esc_stopped",
                             {"n": cancelled})])
    return cancelled


def staffed(conn: Connection, department: str) -> bool:
    """Tell whether a department has an active liaison on the system (who answers its tasks there)."""
    return conn.execute(select(users.c.id).where(users.c.role == "liaison", users.c.department == department,
                                                 users.c.active).limit(1)).first() is not None


def staffed_departments(conn: Connection) -> set[str]:
    """Return the departments with an active liaison on the system."""
    return set(conn.execute(select(users.c.department).distinct()
                            .where(users.c.role == "liaison", users.c.active, users.c.department.is_not(None)))
               .scalars())


def close_incident(conn: Connection, incident_id: int, actor: str, note: str | None, now_ms: int,
                   code: str | None = None) -> Change:
    """Close a resolved incident on the officer's confirmation, closing its resolved tasks."""
    inc = lock_incident(conn, incident_id)
    if inc["status"] != "resolved":
        raise InvalidTransition(f"incident {incident_id} is {inc['status']}: only a resolved incident can be closed")
    closed = [dict(r) for r in conn.execute(
        update(tasks).where(tasks.c.incident_id == incident_id, tasks.c.state == "resolved")
        .values(state="closed", version=tasks.c.version + 1, updated_ms=now_ms, note=note)
        .returning(*tasks.c)).mappings()]
    row = conn.execute(update(incidents).where(incidents.c.id == incident_id)
                       .values(status="closed", version=incidents.c.version + 1, updated_ms=now_ms)
                       .returning(*incidents.c)).mappings().one()
    _audit(conn, [_event(incident_id, t["id"], "close", actor, now_ms, "resolved", "closed", note, code)
                  for t in closed]
           + [_event(incident_id, None, "status", actor, now_ms, "resolved", "closed", note, code)])
    return Change(dict(row), closed).moving(fleet.follow(conn, closed, actor, now_ms))


def escalate_overdue(conn: Connection, now_ms: int) -> list[dict]:
    """Mark escalated, once, each live task past its deadline; return them with ``overdue`` = acknowledge | resolve.

    Safe to run on every replica at once: rows another checker holds are skipped, and the
    UPDATE only takes tasks not yet escalated, so each task is escalated (and audited) exactly once.
    """
    t = tasks.c
    # Literal states so PostgreSQL can match the partial index ix_tasks_overdue; every overdue task is in
    # its range ack_due_ms <= now, since the rules never give a resolve deadline before the acknowledge one.
    live = bindparam("live", list(LIVE), expanding=True, literal_execute=True)
    overdue = and_(~t.escalated, t.state.in_(live), t.ack_due_ms <= now_ms,
                   or_(t.state == "dispatched", t.resolve_due_ms <= now_ms))
    ids = conn.execute(select(t.id).where(overdue).order_by(t.id).with_for_update(skip_locked=True)).scalars().all()
    if not ids:
        return []
    rows = [dict(r) for r in conn.execute(update(tasks).where(t.id.in_(ids), overdue)
                                          .values(escalated=True, escalated_ms=now_ms)
                                          .returning(*tasks.c)).mappings()]
    rows.sort(key=lambda r: r["id"])
    for r in rows:
        r["overdue"] = "acknowledge" if r["state"] == "dispatched" and r["ack_due_ms"] <= now_ms else "resolve"
    _audit(conn, [_event(r["incident_id"], r["id"], "escalate", SYSTEM_ACTOR, now_ms, r["state"], r["state"], None,
                         f"overdue_{'ack' if r['overdue'] == 'acknowledge' else 'resolve'}") for r in rows])
    return rows


def list_tasks(conn: Connection, department: str | None = None, state: str | None = None,
               incident_id: int | None = None, limit: int = 500, district: str | None = None) -> list[dict]:
    """Return tasks, newest first, filtered by department, state, incident and the incident's district when given."""
    stmt = select(tasks).order_by(tasks.c.id.desc()).limit(limit)
    if district is not None:
        stmt = stmt.where(tasks.c.incident_id.in_(select(incidents.c.id).where(of_district(district))))
    for column, value in ((tasks.c.department, department), (tasks.c.state, state), (tasks.c.incident_id, incident_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def holders(conn: Connection) -> dict[int, set[str]]:
    """Return, for each incident not closed, the departments holding a task of it (what a liaison may read)."""
    stmt = (select(tasks.c.incident_id, tasks.c.department).distinct()
            .join(incidents, incidents.c.id == tasks.c.incident_id).where(incidents.c.status != "closed"))
    out: dict[int, set[str]] = {}
    for incident_id, department in conn.execute(stmt):
        out.setdefault(int(incident_id), set()).add(department)
    return out


def places(conn: Connection) -> dict[int, tuple[str, ...]]:
    """Return, for each incident not closed, the district centres that may read its tasks: its district's, and
    the one it was handed to (``of_district``)."""
    stmt = select(incidents.c.id, incidents.c.district, incidents.c.centre).where(incidents.c.status != "closed")
    return {int(i): readers_of(district, centre) for i, district, centre in conn.execute(stmt)}


def history(conn: Connection, incident_id: int) -> list[dict]:
    """Return the audit trail of an incident and its tasks, oldest first."""
    stmt = select(task_events).where(task_events.c.incident_id == incident_id).order_by(task_events.c.id)
    return [audit.read(dict(r)) for r in conn.execute(stmt).mappings()]


def lock_incident(conn: Connection, incident_id: int) -> dict:
    """Return the incident ``incident_id`` locked for this transaction (FOR UPDATE on PostgreSQL; SQLite has one writer at a time)."""
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id).with_for_update()).mappings().first()
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    return dict(row)


def _known(departments: Sequence[str], inc: Mapping[str, Any], rules: Rules, city: City) -> list[str]:
    if isinstance(departments, str):
        raise DispatchError("departments must be a list of department codes")
    known = {d["code"] for d in city.departments}
    out: list[str] = []
    for d in departments:
        code = rules.resolve(d, inc)  # district_office / street_office: the offices of the incident's place
        if code not in known:
            raise DispatchError(f"unknown department {d!r}")
        if code not in out:
            out.append(code)
    return out


def _settle(conn: Connection, inc: dict, actor: str, now_ms: int, note: str | None, code: str | None = None,
            params: dict | None = None) -> dict:
    """Bring the incident's status in line with its tasks, auditing the change."""
    rows = conn.execute(select(tasks.c.state, tasks.c.rerouted, tasks.c.coordination)
                        .where(tasks.c.incident_id == inc["id"])).all()
    status = incident_status(rows)
    if status == inc["status"]:
        return inc
    row = conn.execute(update(incidents).where(incidents.c.id == inc["id"])
                       .values(status=status, version=incidents.c.version + 1, updated_ms=now_ms)
                       .returning(*incidents.c)).mappings().one()
    _audit(conn, [_event(inc["id"], None, "status", actor, now_ms, inc["status"], status, note, code, params)])
    return dict(row)


def _event(incident_id: int, task_id: int | None, action: str, actor: str, at_ms: int, from_state: str | None,
           to_state: str, note: str | None, code: str | None = None, params: dict | None = None) -> dict:
    """Return one audit row; task_id None records a change of the incident itself.

    ``note`` is what a person wrote; ``code`` and ``params`` what the system records, translated when shown.
    """
    return {"incident_id": incident_id, "task_id": task_id, "action": action, "actor": actor, "at_ms": at_ms,
            "from_state": from_state, "to_state": to_state, "note": note, "code": code, "params": params}


def _audit(conn: Connection, rows: list[dict]) -> None:
    if rows:
        conn.execute(insert(task_events), rows)
