"""Escalate an incident to emergency management: what escalating does, in every case, in this one place.

Escalation adds attention; it never replaces the dispatch the rules suggest, and by itself it changes no
incident's dispatch status. What the centre wants is the right departments sent *and* the city's emergency
management (应急管理局) watching, not one instead of the other:

* an **undispatched** incident (``open``, 待派单) stays in the officer's queue awaiting dispatch of the
  departments the rules suggest, now marked escalated and sorted to the top. Emergency management gets a
  *coordination* task, which alone is not a dispatch (``board.incident_status``); should the officer then
  dispatch to emergency management as well, that task becomes an ordinary one.
* a **dispatched** or in-progress incident keeps its tasks and its status; it is marked escalated and
  emergency management joins with a coordination task unless it already holds a live task.
* an **overdue** task (past its deadline, whether or not the deadline checker has marked it yet) is marked
  escalated once -- the checker will not mark or audit it again -- and its incident is escalated as above.

Each part happens at most once and is audited once with a code (translated when shown): the incident's mark
(``incidents.escalated_ms``), the coordination task, the task's mark. An escalation with nothing left to do,
or of a resolved or closed incident, is refused. The deadline checker's own marking of overdue tasks is
``board.escalate_overdue``: it marks tasks and tells the commander, who decides whether to escalate.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from dashboard.dispatch import board as d
from dashboard.dispatch.duty import start_duty
from dashboard.storage.models import incidents, tasks

ESCALATION_KIND = "emergency_management"


def escalation_department(city) -> str | None:
    """Return the department an escalation goes to: the city's emergency management, if it has one."""
    return next((dep["code"] for dep in city.departments if dep.get("kind") == ESCALATION_KIND), None)


overdue = d.past_deadline  # what "overdue" means is the deadline's, kept beside the deadlines in board


def _listed(task_or_tasks) -> list:
    if task_or_tasks is None:
        return []
    return list(task_or_tasks) if isinstance(task_or_tasks, (list, tuple, set, frozenset)) else [task_or_tasks]


def pending(inc: dict, task, live_departments: set[str], target: str | None, now_ms: int) -> bool:
    """Tell whether escalating (the incident, with ``task`` -- one overdue task, a list of them, or None) would
    still do anything."""
    if target is None or inc["status"] in d.DONE:
        return False
    task_left = any(not t["escalated"] and overdue(t, now_ms) for t in _listed(task))
    return inc.get("escalated_ms") is None or target not in live_departments or task_left


def escalate(conn: Connection, incident_id: int, task_id, actor: str, now_ms: int, city) -> d.Change:
    """Escalate an incident (and its overdue task ``task_id``, or each of a list of them: an incident's overdue
    tasks on one of the commander's cards) as the module says; return what changed."""
    target = escalation_department(city)
    if target is None:
        raise d.InvalidTransition(f"{city.name_en} has no emergency management department to escalate to")
    if city.rules is None:
        raise d.InvalidTransition(f"{city.name_en} has no routing rules")
    inc = d.lock_incident(conn, incident_id)
    if inc["status"] in d.DONE:
        raise d.InvalidTransition(f"incident {incident_id} is {inc['status']}: there is nothing to escalate")
    listed = [_task(conn, incident_id, tid) for tid in _listed(task_id)]
    live = set(conn.execute(select(tasks.c.department).where(tasks.c.incident_id == incident_id,
                                                            tasks.c.state.in_(list(d.LIVE)))).scalars())
    if not pending(inc, listed, live, target, now_ms):
        raise d.InvalidTransition(f"incident {incident_id} is escalated already", key="escalated_already")
    changed, audit = [], []
    for task in (t for t in listed if not t["escalated"] and overdue(t, now_ms)):
        changed.append(_mark_task(conn, task, now_ms))
        if task["state"] == "dispatched":  # marked here, the checker will not: the department's duty is told now
            start_duty(conn, city, changed[-1], inc, now_ms)
        audit.append(d._event(incident_id, task["id"], "escalate", actor, now_ms, task["state"], task["state"], None,
                              "task_escalated", {"dep": task["department"]}))
    if target not in live:
        row = _coordination_task(conn, inc, target, now_ms, city.rules)
        changed.append(row)
        audit.append(d._event(incident_id, row["id"], "escalate", actor, now_ms, None, "dispatched", None,
                              "coordination", {"dep": target}))
    if inc["escalated_ms"] is None:
        inc = dict(conn.execute(update(incidents).where(incidents.c.id == incident_id)
                                .values(escalated_ms=now_ms, version=incidents.c.version + 1, updated_ms=now_ms)
                                .returning(*incidents.c)).mappings().one())
        audit.append(d._event(incident_id, None, "escalate", actor, now_ms, inc["status"], inc["status"], None,
                              "incident_escalated", {"dep": target}))
    d._audit(conn, audit)
    # A coordination task leaves the status as it was; settling anyway keeps the one rule in one place.
    return d.Change(d._settle(conn, inc, actor, now_ms, None), changed)


def _task(conn: Connection, incident_id: int, task_id: int) -> dict:
    row = conn.execute(select(tasks).where(tasks.c.id == task_id, tasks.c.incident_id == incident_id)
                       ).mappings().first()
    if row is None:
        raise d.NotFound(f"no task {task_id} of incident {incident_id}")
    return dict(row)


def _mark_task(conn: Connection, task: dict, now_ms: int) -> dict:
    # The version stays: the mark is not a move, and must not make a department's next move a conflict.
    return dict(conn.execute(update(tasks).where(tasks.c.id == task["id"])
                             .values(escalated=True, escalated_ms=now_ms).returning(*tasks.c)).mappings().one())


def _coordination_task(conn: Connection, inc: dict, department: str, now_ms: int, rules) -> dict:
    """Create emergency management's coordination task, with the deadlines of the rule the incident matches."""
    plan = rules.suggest(inc, now_ms)
    return dict(conn.execute(insert(tasks).values(
        incident_id=inc["id"], department=department, lead=False, rule=plan.rule_name, state="dispatched", version=1,
        ack_due_ms=plan.ack_due_ms, resolve_due_ms=plan.resolve_due_ms, escalated=False, rerouted=False,
        coordination=True, created_ms=now_ms, updated_ms=now_ms, note=None).returning(*tasks.c)).mappings().one())
