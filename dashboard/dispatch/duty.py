"""Tell a department's duty when its task misses the acknowledge deadline: the same chains as alerts."""

from __future__ import annotations

from sqlalchemy import select

from dashboard.dispatch import board as d
from dashboard.storage import alerts, escalations
from dashboard.storage.models import tasks


def start_duty(conn, city, task: dict, incident: dict, now_ms: int) -> None:
    """Start the duty escalation of a task not acknowledged by its deadline, in the transaction that marked it:
    its department's ladder (the fallback department's, without a roster) into the outbox, each step audited."""
    rosters = city.rosters
    dep = next((x for x in city.departments if x["code"] == task["department"]), None)
    what = incident.get("title") or incident["kind"]
    ladder = escalations.start(conn, rosters, subject="task",
                               chain=escalations.chain_id("task", task["id"], task["version"]),
                               department=task["department"],
                               title=f"{what}（{dep['name'] if dep else task['department']}）",
                               title_en=f"{what} ({dep['name_en'] if dep else task['department']})", now_ms=now_ms)
    state = task["state"]
    rows = [d._event(task["incident_id"], task["id"], "notify", d.SYSTEM_ACTOR, now_ms, state, state, None, "esc_step",
                     {**escalations.step_params(s, rosters.timezone), "dep": ladder.department})
            for s in ladder.steps]
    if not ladder.messages:
        rows.append(d._event(task["incident_id"], task["id"], "notify", d.SYSTEM_ACTOR, now_ms, state, state, None,
                             "esc_nobody", {"dep": task["department"]}))
    d._audit(conn, rows)


def replan(conn, city, department: str, now_ms: int, rev: str) -> int:
    """Re-plan the department's open ladders after a duty override of it was set or ended (in that transaction):
    the steps not sent yet tell whoever is on duty at their time; each step moved is audited in its alert's or
    task's trail (``esc_replanned``). Return how many steps moved."""
    moved = 0
    for ladder in escalations.replan(conn, city.rosters, department, now_ms, rev):
        params = [{**escalations.step_params(s, city.rosters.timezone), "dep": ladder.department}
                  for s in ladder.steps]
        moved += len(params)
        if ladder.subject == "alert":
            alerts.note_replanned(conn, int(ladder.chain), params, now_ms)
            continue
        task = conn.execute(select(tasks.c.id, tasks.c.incident_id, tasks.c.state).where(
            tasks.c.id == int(ladder.chain.split(".")[0]))).mappings().first()
        if task is not None:
            d._audit(conn, [d._event(task["incident_id"], task["id"], "notify", d.SYSTEM_ACTOR, now_ms, task["state"],
                                     task["state"], None, "esc_replanned", p) for p in params])
    return moved
