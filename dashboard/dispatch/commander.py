"""Find what needs the commander's decision now, and carry out the one-tap acknowledge, escalate and approve.

Three kinds of item need a decision, each shown as one card:

* ``critical``: an incident of severity 4 that is not closed;
* ``rejected``: an incident with a task a department returned that no dispatch has answered yet;
* ``overdue``: an incident with live tasks escalated by the deadline checker or already past their deadline.

ONE card per incident, whatever it needs: the card's kind is the first of the three that applies, and it
lists every overdue department (how late, at which step) and every department that returned the incident
(with its reason), never one card per task.

What the taps do:

* **acknowledge**: the commander has seen it. It is written to the audit trail (action ``cmd_ack``) for the
  incident (a critical card) and for each overdue task the card listed, and the card leaves every commander's
  list until the trail records a later change of one of them (a move or escalation of a task, a status change).
* **escalate**: raise the incident (and the card's overdue tasks) to the city's emergency management, as
  ``dashboard.dispatch.escalation`` defines it. Offered while it would do anything.
* **redispatch** (one overdue department of a card): ``board.redispatch`` -- the task goes back to
  ``dispatched`` with its deadlines restarted from now; offered while nobody of it is on scene.
* **approve**: agree to the step that waits for a decision: an *open* critical incident gets the rules'
  suggested joint dispatch; a *resolved* critical incident is closed; otherwise the card's returns are
  accepted and the incident re-routed to the rules' other suggested departments. An overdue task has nothing
  to approve.
* calling a department is a ``tel:`` link on the card (the pack's ``duty_phone``), not a write.

Every write goes through ``dashboard.dispatch`` in one transaction, checks the versions the commander saw
(the incident's, and each task's the tap names: a stale tap is refused, not applied to something else), and
is published for every screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.engine import Connection

from dashboard.dispatch import board as d
from dashboard.core.errors import Forbidden
from dashboard.core.roles import check_role
from dashboard.dispatch import desk, escalation
from dashboard.dispatch.escalation import escalation_department  # noqa: F401 (where /m names the department)
from dashboard.storage.models import incidents, task_events, tasks

KINDS = ("critical", "rejected", "overdue")
ACTIONS = ("acknowledge", "escalate", "approve", "redispatch")
ACK_ACTION = "cmd_ack"
CRITICAL = 4
MAX_ITEMS = 50
SCAN = 500  # candidates read before acknowledged ones are left out, so those never crowd out new ones
# The audit codes of the taps (translated when shown: dashboard.core.i18n.audit_text).
CODES = {"approve": "cmd_approved", "acknowledge": "cmd_seen", "redispatch": "task_redispatched"}


@dataclass(frozen=True)
class Tap:
    """One tap on /m: the action, the card's kind, its incident and task, and the version the commander saw.

    ``task_id`` and ``version`` are a task's for a rejection and for re-dispatching one department, else
    the incident's; ``tasks`` are the (task id, version) pairs of the overdue tasks the card listed.
    """

    action: str
    kind: str
    incident_id: int
    task_id: int | None
    version: int
    tasks: tuple[tuple[int, int], ...] = ()


def decisions(conn: Connection, city, now_ms: int, limit: int = MAX_ITEMS, district: str | None = None) -> list[dict]:
    """Return what needs a decision now, most urgent first: critical incidents, overdue tasks, rejections.

    Each item (one per incident): ``kind``, ``incident`` (row), ``overdue`` (late tasks, each with its step,
    minutes late and whether it may be re-dispatched), ``returned`` (task rows), ``since_ms``, ``version`` (the
    incident's), ``actions`` and ``suggested``. What was acknowledged since its last change is left out.
    ``district``: only the incidents of that district (a district centre's commander).
    """
    active = list(desk.ACTIVE)
    where = [incidents.c.status.in_(active)] + ([d.of_district(district)] if district is not None else [])
    crit = [dict(r) for r in conn.execute(
        select(incidents).where(incidents.c.severity >= CRITICAL, *where)
        .order_by(incidents.c.opened_ms).limit(SCAN)).mappings()]
    t = tasks.c
    overdue_now = or_(t.escalated, and_(t.state == "dispatched", t.ack_due_ms <= now_ms), t.resolve_due_ms <= now_ms)
    task_rows = [dict(r) for r in conn.execute(
        select(tasks).join(incidents, incidents.c.id == t.incident_id)
        .where(*where, ~t.rerouted,
               or_(and_(t.state.in_(list(d.LIVE)), overdue_now), t.state == "rejected"))
        .order_by(t.id).limit(SCAN)).mappings()]
    incs = {r["id"]: r for r in crit}
    missing = {r["incident_id"] for r in task_rows} - set(incs)
    if missing:
        incs.update({r["id"]: dict(r) for r in conn.execute(
            select(incidents).where(incidents.c.id.in_(missing))).mappings()})
    seen = _seen(conn, {r["id"] for r in crit} | {r["incident_id"] for r in task_rows})
    escalate_to = escalation_department(city)
    live_deps = _live_departments(conn, set(incs))
    cards: dict[int, dict] = {}
    for inc in crit:
        if (inc["id"], None) not in seen:
            cards[inc["id"]] = _card("critical", inc, inc["opened_ms"])
    for task in task_rows:
        if (task["incident_id"], task["id"]) in seen:
            continue
        inc = incs[task["incident_id"]]
        returned = task["state"] == "rejected"
        if returned:
            since = task["updated_ms"]
        else:
            due = task["ack_due_ms"] if task["state"] == "dispatched" else task["resolve_due_ms"]
            since = task["escalated_ms"] or due
        card = cards.get(inc["id"])
        if card is None:
            card = cards[inc["id"]] = _card("rejected" if returned else "overdue", inc, since)
        elif card["kind"] != "critical":
            if returned:
                card["kind"] = "rejected"  # a return waits for a decision; lateness alone does not
            card["since_ms"] = min(card["since_ms"], since)
        if returned:
            card["returned"].append(task)
        else:
            card["overdue"].append({"task": task, "step": "ack" if task["state"] == "dispatched" else "resolve",
                                    "due_ms": due, "late_min": max(0, now_ms - due) // 60_000,
                                    "redispatch": task["state"] in d.REDISPATCHABLE})
    items = [_finish(card, escalate_to, live_deps, now_ms) for card in cards.values()]
    items.sort(key=lambda i: (KINDS.index(i["kind"]), -i["incident"]["severity"], i["since_ms"]))
    items = items[:limit]
    for item in items:
        item["suggested"] = _suggested(city, item, now_ms)
    return items


def _suggested(city, item: dict, now_ms: int) -> list[str]:
    """Return the departments approving ``item`` would dispatch to (shown beside the button)."""
    if "approve" not in item["actions"] or city.rules is None or item["incident"]["status"] == "resolved":
        return []
    departments = list(city.rules.suggest(item["incident"], now_ms).departments)
    returned = {t["department"] for t in item["returned"]}
    return [dep for dep in departments if dep not in returned]


def _card(kind: str, inc: dict, since_ms: int) -> dict:
    return {"kind": kind, "incident": inc, "since_ms": since_ms, "version": inc["version"],
            "overdue": [], "returned": []}


def listed(item: dict) -> list[dict]:
    """Return the tasks a card lists (its overdue ones, then its returned ones): each tap carries their versions."""
    return [o["task"] for o in item["overdue"]] + item["returned"]


def _finish(card: dict, escalate_to: str | None, live_deps: dict[int, set[str]], now_ms: int) -> dict:
    """Give an incident's card its actions: what escalating would still do, and approving what waits for it."""
    inc = card["incident"]
    card["at_ms"] = now_ms  # the server's clock when drawn: the phone counts the minutes late on from it
    card["overdue"].sort(key=lambda o: (-o["late_min"], o["task"]["id"]))
    card["returned"].sort(key=lambda t: t["id"])
    card["actions"] = ["acknowledge"]
    if escalation.pending(inc, [o["task"] for o in card["overdue"]], live_deps.get(inc["id"], set()), escalate_to,
                          now_ms):
        card["actions"].append("escalate")
    if approval(card) is not None:
        card["actions"].append("approve")
    return card


def approval(item: dict) -> str | None:
    """Return what approving a card does -- ``dispatch`` (an open critical incident: the rules' suggestion),
    ``close`` (a resolved critical one) or ``return`` (accept its returns and re-route) -- or None: as ``_approve``
    carries it out, and as /m's button says it."""
    status = item["incident"]["status"]
    if item["kind"] == "critical" and status in ("open", "resolved"):
        return "close" if status == "resolved" else "dispatch"
    return "return" if item["returned"] else None


def _seen(conn: Connection, incident_ids: set[int]) -> set[tuple[int, int | None]]:
    """Return the (incident, task or None) pairs acknowledged since their last audited change.

    The audit trail's order decides, not clocks: an acknowledgement hides an item until a later audit row
    of the same task (an escalation, a move) or of the incident itself (a status change) is written.
    """
    if not incident_ids:
        return set()
    e = task_events.c
    is_ack = e.action == ACK_ACTION
    rows = conn.execute(select(e.incident_id, e.task_id, is_ack, func.max(e.id))
                        .where(e.incident_id.in_(incident_ids)).group_by(e.incident_id, e.task_id, is_ack)).all()
    acks, changes = {}, {}
    for inc, task, ack, last in rows:
        (acks if ack else changes)[(inc, task)] = last
    return {key for key, last in acks.items() if last > changes.get(key, 0)}


def _live_departments(conn: Connection, incident_ids: set[int]) -> dict[int, set[str]]:
    if not incident_ids:
        return {}
    out: dict[int, set[str]] = {}
    for inc, dep in conn.execute(select(tasks.c.incident_id, tasks.c.department)
                                 .where(tasks.c.incident_id.in_(incident_ids), tasks.c.state.in_(list(d.LIVE)))):
        out.setdefault(inc, set()).add(dep)
    return out


def perform(svc, user, tap: Tap, now_ms: int) -> d.Change:
    """Carry out one tap for ``user`` (a commander or officer); publish what changed.

    Raises ``Forbidden`` for a user without the ``command`` permission, ``VersionConflict`` when the item
    changed since the commander saw it, ``InvalidTransition`` when the action does not apply to it.
    """
    if not check_role(user, "command"):
        raise Forbidden("only a commander or an officer may decide here")
    if tap.action not in ACTIONS or tap.kind not in KINDS:
        raise d.DispatchError(f"unknown action {tap.action!r} on {tap.kind!r}")
    with svc.engine.begin() as conn:
        inc = _locked(conn, tap)
        if tap.action == "acknowledge":
            change = _acknowledge(conn, inc, tap, user.username, now_ms)
        elif tap.action == "escalate":
            change = escalation.escalate(conn, inc["id"], [t for t, _ in tap.tasks], user.username, now_ms, svc.city)
        elif tap.action == "redispatch":
            if tap.task_id is None:
                raise d.DispatchError("name the overdue task to send again")
            change = d.redispatch(conn, tap.task_id, tap.version, user.username, None, now_ms, CODES["redispatch"])
        else:
            change = _approve(conn, svc, inc, tap, user.username, now_ms)
    desk.publish(svc, [change.incident], change.tasks, units=change.units)
    return change


def _locked(conn: Connection, tap: Tap) -> dict:
    """Lock the incident (its tasks' writers queue on it too) and check the version the commander saw."""
    inc = conn.execute(select(incidents).where(incidents.c.id == tap.incident_id).with_for_update()).mappings().first()
    if inc is None:
        raise d.NotFound(f"no incident {tap.incident_id}")
    if tap.task_id is None:
        seen = inc["version"]
    else:
        seen = conn.execute(select(tasks.c.version).where(tasks.c.id == tap.task_id,
                                                          tasks.c.incident_id == tap.incident_id)).scalar()
        if seen is None:
            raise d.NotFound(f"no task {tap.task_id} of incident {tap.incident_id}")
    if seen != tap.version:
        raise d.VersionConflict("it changed since you saw it: the list is up to date now")
    if tap.tasks:
        ids = [t for t, _ in tap.tasks]
        now_at = dict(conn.execute(select(tasks.c.id, tasks.c.version).where(
            tasks.c.id.in_(ids), tasks.c.incident_id == tap.incident_id)).all())
        if any(now_at.get(t) != v for t, v in tap.tasks):
            raise d.VersionConflict("a task changed since you saw it: the list is up to date now")
    return dict(inc)


def _acknowledge(conn: Connection, inc: dict, tap: Tap, actor: str, now_ms: int) -> d.Change:
    """Record that the commander saw the card: the incident (a critical card), the rejected task, and each
    overdue task the card listed."""
    ids = ([tap.task_id] if tap.task_id is not None else []) + [t for t, _ in tap.tasks]
    rows = [dict(r) for r in conn.execute(select(tasks).where(tasks.c.id.in_(ids)).order_by(tasks.c.id)).mappings()
            ] if ids else []
    marks = [(t["id"], t["state"]) for t in rows]
    if tap.kind == "critical":
        marks.insert(0, (None, inc["status"]))
    if not marks:
        raise d.DispatchError("nothing to acknowledge on that card")
    conn.execute(insert(task_events), [
        {"incident_id": inc["id"], "task_id": task_id, "action": ACK_ACTION, "actor": actor, "at_ms": now_ms,
         "from_state": state, "to_state": state, "note": None, "code": CODES["acknowledge"], "params": None}
        for task_id, state in marks])
    return d.Change(inc, rows)


def _approve(conn: Connection, svc, inc: dict, tap: Tap, actor: str, now_ms: int) -> d.Change:
    rules = svc.city.rules
    if tap.kind == "critical" and inc["status"] == "resolved":
        return d.close_incident(conn, inc["id"], actor, None, now_ms, CODES["approve"])
    if rules is None:
        raise d.InvalidTransition(f"{svc.city.name_en} has no routing rules")
    if tap.kind == "critical" and inc["status"] == "open":
        return d.dispatch(conn, inc["id"], None, actor, None, now_ms, rules, svc.city, CODES["approve"])
    ids = [t for t, _ in tap.tasks] + ([tap.task_id] if tap.task_id is not None else [])
    returned = conn.execute(select(tasks.c.department).where(
        tasks.c.id.in_(ids), tasks.c.state == "rejected", ~tasks.c.rerouted)).scalars().all() if ids else []
    if returned:
        others = [dep for dep in rules.suggest(inc, now_ms).departments if dep not in returned]
        # An empty list still answers the returns: the departments left keep the incident.
        return d.dispatch(conn, inc["id"], others, actor, None, now_ms, rules, svc.city, CODES["approve"])
    if tap.kind == "rejected":
        raise d.InvalidTransition("that rejection has been answered already")
    raise d.InvalidTransition(f"nothing to approve on a {tap.kind} item of a {inc['status']} incident")


def open_incidents(conn: Connection, district: str | None = None) -> tuple[list[dict], int]:
    """Return the first incidents not yet closed, the most severe first, then the oldest (``incident-list``),
    and how many there are in all (``district``: of that district only)."""
    shown = desk.queue(conn, district=district)
    return shown, desk.queue_total(conn, shown, district=district)

