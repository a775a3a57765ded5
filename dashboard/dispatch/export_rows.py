"""Say the dispatch queue's incidents and the task board's tasks as the cells of an export: what /dispatch shows,
in words."""

from __future__ import annotations

from dashboard.core.clock import iso
from dashboard.core.i18n import kind_label, state_label, t
from dashboard.dispatch.board import LIVE

# The task board's tasks as a table: what each card says, in the board's order (department, then task).
TASK_COLUMNS = ("department", "incident", "state", "deadline", "escalated", "coordination")

# The queue's incidents as a table: its marks and texts, one column each, in the queue's order of reading.
INCIDENT_COLUMNS = ("severity", "title", "district", "kind", "opened", "reports", "status", "escalated")


def incident_cells(rows: list[dict], city, lang: str, tz: str) -> list[dict]:
    """Return the cells of incidents as the queue says them (a missing title: the kind, as the queue shows)."""
    out = []
    for r in rows:
        district = city.by_code.get(r["district"])
        stamp = iso(r["opened_ms"], tz)
        out.append({
            "severity": r["severity"], "title": r["title"] or kind_label(r["kind"], lang),
            "district": (district.name_en if lang == "en" else district.name) if district else r["district"],
            "kind": kind_label(r["kind"], lang), "opened": f"{stamp[:10]} {stamp[11:19]}", "reports": r["reports"],
            "status": state_label(r["status"], lang),
            "escalated": t("incident_escalated", lang) if r.get("escalated_ms") is not None else ""})
    return out


def task_cells(rows: list[dict], city, lang: str, tz: str) -> list[dict]:
    """Return the cells of tasks as the board's cards say them (each row a task with its incident's ``title`` and
    ``kind`` as ``incident_title``, ``incident_kind``): the deadline running (acknowledge, then resolve) as a
    local time, the escalated and coordination marks in words."""
    names = {d["code"]: (d.get("name_en") if lang == "en" else d.get("name")) or d["code"] for d in city.departments}
    out = []
    for r in rows:
        due = r["ack_due_ms"] if r["state"] == "dispatched" else r["resolve_due_ms"]
        stamp = iso(due, tz)
        out.append({
            "department": names.get(r["department"], r["department"]),
            "incident": r["incident_title"] or kind_label(r["incident_kind"], lang),
            "state": state_label(r["state"], lang, task=True),
            "deadline": f"{stamp[:10]} {stamp[11:19]}" if r["state"] in LIVE else "",
            "escalated": t("task_escalated", lang) if r["escalated"] else "",
            "coordination": t("task_coordination", lang) if r.get("coordination") else ""})
    return out
