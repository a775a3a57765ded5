"""Tell a department's duty when its task misses the acknowledge deadline: the same chains as alerts."""

from __future__ import annotations

from dashboard.dispatch import board as d
from dashboard.storage import escalations


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
