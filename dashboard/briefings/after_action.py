"""The after-action report of a closed (or resolved) incident: collect it from the dispatch records, render it as
the briefings are (a Jinja template, printed to PDF by the briefings' Chromium).

Everything comes from what dispatch keeps: the incident, its reports (events), its tasks with their deadlines,
and the audit trail, whose rows date each acknowledgement, arrival, resolution, escalation and closing.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from dashboard.briefings import render as briefing_render
from dashboard.briefings.text import TEXT, bt
from dashboard.core import errors
from dashboard.core.clock import iso
from dashboard.core.i18n import actor_label, audit_text, district_name, kind_label, state_label, t
from dashboard.dispatch import board as d
from dashboard.dispatch.desk import detail
from dashboard.storage.models import incidents

FINISHED = ("resolved", "closed")
STEPS = ("acknowledged", "on_scene", "resolved")  # the moves of a task whose times the report gives


class NotFinished(errors.Unprocessable):
    """The incident is still being handled: no after-action report yet."""

    code = "not_finished"


def _first_times(history: list[dict]) -> dict[int, dict[str, int]]:
    """Return, per task, when it first reached each state (from the audit trail, epoch ms)."""
    out: dict[int, dict[str, int]] = {}
    for h in history:
        if h["task_id"] is not None and h["from_state"] != h["to_state"]:
            out.setdefault(h["task_id"], {}).setdefault(h["to_state"], h["at_ms"])
    return out


def _against(took_ms: int | None, allowed_ms: int) -> dict:
    """Return a response time against its deadline: seconds taken, seconds allowed, met or missed."""
    return {"took_s": None if took_ms is None else took_ms / 1000, "allowed_s": allowed_ms / 1000,
            "met": None if took_ms is None else took_ms <= allowed_ms}


def collect(conn, svc, incident_id: int, now_ms: int) -> dict:
    """Return the report's data of ``incident_id``; NotFound if there is none, NotFinished while it is open."""
    tz = svc.config["PANORAMA_TZ"]
    doc = detail(conn, svc, incident_id, now_ms)
    if doc["incident"]["status"] not in FINISHED:
        raise NotFinished(f"incident {incident_id} is {doc['incident']['status']}: the after-action report is made "
                          "once it is resolved or closed")
    history = d.history(conn, incident_id)
    reached = _first_times(history)
    tasks = []
    for row in sorted(d.list_tasks(conn, incident_id=incident_id), key=lambda r: r["id"]):
        at = reached.get(row["id"], {})
        created = row["created_ms"]
        ack = at.get("acknowledged")
        # resolving straight from dispatched (resolve_for) also answers the acknowledgement deadline
        answered = ack if ack is not None else at.get("resolved")
        tasks.append({
            "id": row["id"], "department": row["department"], "lead": row["lead"], "state": row["state"],
            "coordination": row["coordination"], "dispatched": iso(created, tz),
            **{step: iso(at[step], tz) if step in at else None for step in STEPS},
            "rejected": iso(at["rejected"], tz) if "rejected" in at else None,
            "escalated": iso(row["escalated_ms"], tz) if row["escalated_ms"] else None,
            "ack_due": iso(row["ack_due_ms"], tz), "resolve_due": iso(row["resolve_due_ms"], tz),
            "ack": _against(None if answered is None else answered - created, row["ack_due_ms"] - created),
            "resolve": _against(None if "resolved" not in at else at["resolved"] - created,
                                row["resolve_due_ms"] - created),
        })
    status_at = {h["to_state"]: h["at_ms"] for h in history if h["task_id"] is None}
    escalated_ms = conn.execute(select(incidents.c.escalated_ms).where(incidents.c.id == incident_id)).scalar()
    inc = doc["incident"]
    return {
        "incident": inc,
        "reports": sorted(doc["reports"], key=lambda r: r["ts"]),
        "tasks": tasks,
        "escalations": [{"at": iso(h["at_ms"], tz), "task_id": h["task_id"], "actor": h["actor"],
                         "code": h["code"], "params": h["params"]}
                        for h in history if h["action"] == "escalate"],
        "incident_escalated": iso(escalated_ms, tz) if escalated_ms else None,
        "resolved_at": iso(status_at["resolved"], tz) if "resolved" in status_at else None,
        "closed_at": iso(status_at["closed"], tz) if "closed" in status_at else None,
        "trail": [{"at": iso(h["at_ms"], tz), "actor": h["actor"], "action": h["action"], "task_id": h["task_id"],
                   "from": h["from_state"], "to": h["to_state"], "note": h["note"], "code": h["code"],
                   "params": h["params"]} for h in history],
        "generated_at": iso(now_ms, tz),
    }


def exists(conn, incident_id: int) -> bool:
    """Tell whether there is an incident ``incident_id``."""
    return conn.execute(select(incidents.c.id).where(incidents.c.id == incident_id)).first() is not None


def build_html(data: dict, city, lang: str, tz: str) -> str:
    """Return the self-contained report (inline CSS, nothing fetched); every event text is escaped as text."""
    names = {dep["code"]: (dep.get("name_en") if lang == "en" else dep.get("name")) or dep["code"]
             for dep in city.departments}
    inc = data["incident"]
    dist = city.by_code.get(inc["district"])
    env = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["stamp"] = lambda s: s[:19].replace("T", " ") if s else "–"
    return env.get_template("after_action.html").render(
        d=data, inc=inc, lang=lang, colon=": " if lang == "en" else "：",
        city_name=city.name_en if lang == "en" else city.name,
        district=district_name(dist, lang) if dist else inc["district"],
        street=city.street_name(inc["district"], inc.get("street"), lang),
        bt=lambda key, **fmt: bt(key, lang, **fmt), t=lambda key, **fmt: t(key, lang, **fmt),
        kind=lambda k: kind_label(k, lang), dept=lambda code: names.get(code, code),
        status=lambda s: state_label(s, lang), task_state=lambda s: state_label(s, lang, True),
        actor=lambda a: actor_label(a, lang), said=lambda h: audit_text(h["code"], h["params"], lang, names,
                                                                          {c: district_name(x, lang) for c, x in city.by_code.items()}),
        duration=lambda s: briefing_render.duration(s, lang), tz=tz,
        aar_acts={k for k in TEXT if k.startswith("aar_act_")}, dep_of={tk["id"]: tk["department"] for tk in data["tasks"]},
    )
