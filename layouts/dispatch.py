"""Lay out the linked-dispatch page: incident queue, incident detail, dispatch dialog and the task board."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from dash import dcc, html
from flask import current_app

from dashboard.auth import check_role
from dashboard.dispatch import TRANSITIONS
from dashboard.i18n import kind_label, pick
from layouts.common import lang_toggle, panel, topbar

POLL_MS = 3000
# The page's own texts (zh, en); kept here until they move into dashboard.i18n.
_TEXT = {
    "title": ("联动指挥调度", "Linked dispatch"),
    "queue": ("待处置事件", "Open incidents"),
    "detail": ("事件详情", "Incident"),
    "board": ("任务看板", "Task board"),
    "none_selected": ("选择左侧事件查看详情", "Pick an incident from the queue"),
    "no_incidents": ("暂无待处置事件", "No open incidents"),
    "no_tasks": ("暂无任务", "No tasks"),
    "dispatch": ("派单", "Dispatch"),
    "close": ("结案", "Close incident"),
    "cancel": ("取消", "Cancel"),
    "send": ("确认派单", "Send"),
    "note": ("备注", "Note"),
    "task_note": ("操作备注（退回须填写原因）", "Note for the next action (required to reject)"),
    "departments": ("处置部门（已按规则预选）", "Departments (the rules' suggestion is ticked)"),
    "reports": ("上报", "Reports"),
    "timeline": ("处置记录", "Timeline"),
    "place": ("位置", "Place"),
    "suggested": ("建议", "Suggested"),
    "filtered": ("部门：{dep}", "Department: {dep}"),
    "all_departments": ("全部部门", "All departments"),
    "ack_by": ("签收时限", "ack by"),
    "resolve_by": ("办结时限", "resolve by"),
    "escalated": ("已升级", "escalated"),
    "signed_out": ("请先登录", "Sign in first"),
    "not_allowed": ("无权执行此操作", "You may not do this"),
    "dispatched_ok": ("已派单：{n} 个任务", "Dispatched: {n} task(s)"),
    "moved_ok": ("任务 {id} → {to}", "Task {id} → {to}"),
    "closed_ok": ("事件已结案", "Incident closed"),
}
STATES = {
    "open": ("待派单", "open"), "dispatched": ("已派单", "dispatched"), "in_progress": ("处置中", "in progress"),
    "resolved": ("已办结", "resolved"), "closed": ("已结案", "closed"), "acknowledged": ("已签收", "acknowledged"),
    "on_scene": ("已到场", "on scene"), "rejected": ("已退回", "rejected"),
}
ACTIONS = {"acknowledged": ("签收", "Acknowledge"), "on_scene": ("到场", "On scene"),
           "resolved": ("办结", "Resolve"), "rejected": ("退回", "Reject")}


def tx(key: str, lang: str, **fmt) -> str:
    """Return one of the page's texts in ``lang``."""
    return pick(_TEXT, key, lang, **fmt)


def state_label(state: str, lang: str) -> str:
    """Return the name of a task or incident state (an unknown one as it is)."""
    return pick(STATES, state, lang) if state in STATES else state


def department_names(city, lang: str) -> dict[str, str]:
    """Map each department code to its name in ``lang``."""
    return {d["code"]: (d.get("name_en") if lang == "en" else d.get("name")) or d["code"] for d in city.departments}


def hhmm(ms: int, tz: str, seconds: bool = False) -> str:
    """Format epoch ms as local time of day."""
    local = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(ZoneInfo(tz))
    return local.strftime("%H:%M:%S" if seconds else "%H:%M")


def countdown_text(due_ms: int, now_ms: int) -> str:
    """Return the time left as [-]m:ss (the browser keeps it ticking)."""
    s = round((due_ms - now_ms) / 1000)
    return f"{'-' if s < 0 else ''}{abs(s) // 60}:{abs(s) % 60:02d}"


def queue_items(rows: list[dict], city, lang: str, tz: str, selected: int | None) -> list:
    """Return one list item per incident, each a button that selects it."""
    if not rows:
        return [html.Li(tx("no_incidents", lang), className="queue-empty")]
    by_code = city.by_code
    items = []
    for r in rows:
        district = by_code.get(r["district"])
        where = (district.name_en if lang == "en" else district.name) if district else r["district"]
        items.append(html.Li(html.Button([
            html.Span(f"S{r['severity']}", className=f"sev sev-{r['severity']}"),
            html.Span(r["title"] or kind_label(r["kind"], lang), className="queue-title"),
            html.Span(f"{where} · {kind_label(r['kind'], lang)} · {hhmm(r['opened_ms'], tz)}", className="queue-meta"),
            html.Span(state_label(r["status"], lang), className=f"status status-{r['status']}"),
        ], id={"type": "dispatch-incident", "index": r["id"]}, n_clicks=0,
            className="queue-item" + (" selected" if r["id"] == selected else "")), **{"data-id": r["id"]}))
    return items


def detail_view(doc: dict | None, city, lang: str) -> list:
    """Return the selected incident: header, place, reports and the timeline."""
    if doc is None:
        return [html.P(tx("none_selected", lang), className="muted")]
    inc, names = doc["incident"], department_names(city, lang)
    sug = doc.get("suggestion")
    place = (f"{inc['lat']:.4f}, {inc['lon']:.4f}" if inc.get("lat") is not None and inc.get("lon") is not None
             else "–")
    return [
        html.H3(inc["title"] or kind_label(inc["kind"], lang), id="dispatch-detail-title"),
        html.P([html.Span(f"S{inc['severity']}", className=f"sev sev-{inc['severity']}"), " ",
                html.Span(state_label(inc["status"], lang), id="dispatch-detail-status",
                          className=f"status status-{inc['status']}"),
                f" · {kind_label(inc['kind'], lang)} · {inc['opened_at']}"]),
        html.P(f"{tx('place', lang)}: {inc.get('street') or ''} {place}", className="detail-place"),
        html.P(f"{tx('suggested', lang)}: " + ", ".join(names.get(c, c) for c in sug["departments"]) +
               f" ({sug['rule']})", className="detail-suggestion") if sug else None,
        html.H4(f"{tx('reports', lang)} ({len(doc['reports'])})"),
        html.Ul([html.Li(f"{r['ts'][11:19]} {r['title'] or r['kind']}" + (f" — {r['source']}" if r["source"] else ""))
                 for r in doc["reports"][:20]], className="detail-reports"),
        html.H4(tx("timeline", lang)),
        html.Ol([html.Li(f"{h['at'][11:19]} {h['actor']} {h['action']} "
                         f"{state_label(h['from'], lang) + ' → ' if h['from'] else ''}{state_label(h['to'], lang)}"
                         + (f" ({names.get(_dep(doc, h['task_id']), '')})" if h["task_id"] else "")
                         + (f" — {h['note']}" if h["note"] else ""))
                 for h in doc["history"]], id="dispatch-timeline", className="timeline"),
    ]


def _dep(doc: dict, task_id: int) -> str:
    return next((t["department"] for t in doc["tasks"] if t["id"] == task_id), "")


def task_card(task: dict, incident: dict, lang: str, now_ms: int, movable: bool) -> html.Div:
    """Return one task: its incident, state, deadline countdown and the moves the user may make."""
    due = task["ack_due_ms"] if task["state"] == "dispatched" else task["resolve_due_ms"]
    live = task["state"] in ("dispatched", "acknowledged", "on_scene")
    moves = [to for to in ACTIONS if to in TRANSITIONS.get(task["state"], ())] if movable else []
    return html.Div([
        html.Div(incident.get("title") or kind_label(incident["kind"], lang), className="task-title"),
        html.Div([html.Span(state_label(task["state"], lang), className=f"task-state state-{task['state']}"),
                  html.Span(tx("escalated", lang), className="task-escalated") if task["escalated"] else None]),
        html.Div([html.Span(tx("ack_by" if task["state"] == "dispatched" else "resolve_by", lang) + " "),
                  html.Span(countdown_text(due, now_ms), className="countdown" + (" overdue" if due < now_ms else ""),
                            **{"data-due": due})], className="task-deadline") if live else None,
        html.Div([html.Button(tx_action(to, lang), n_clicks=0, className=f"task-action action-{to}",
                              id={"type": "task-action", "task": task["id"], "to": to, "version": task["version"]})
                  for to in moves], className="task-actions"),
    ], className="task-card" + (" is-escalated" if task["escalated"] else ""),
        id=f"task-{task['id']}", **{"data-department": task["department"], "data-state": task["state"]})


def tx_action(to: str, lang: str) -> str:
    """Return the label of the button that moves a task to ``to``."""
    return pick(ACTIONS, to, lang)


def board_columns(rows: list[dict], incidents_by_id: dict, city, lang: str, now_ms: int, may_move) -> list:
    """Return the board: one column per department with tasks, in the city pack's order."""
    if not rows:
        return [html.P(tx("no_tasks", lang), className="muted")]
    names = department_names(city, lang)
    order = {code: i for i, code in enumerate(names)}
    columns: dict[str, list] = {}
    for t in sorted(rows, key=lambda r: (order.get(r["department"], 999), r["id"])):
        columns.setdefault(t["department"], []).append(t)
    return [html.Div([html.H3(names.get(dep, dep), className="board-dept"),
                      *[task_card(t, incidents_by_id[t["incident_id"]], lang, now_ms, may_move(dep)) for t in ts]],
                     className="board-column", id=f"board-{dep}")
            for dep, ts in columns.items()]


def dispatch_layout(lang: str, user, *, city=None, department: str | None = None, poll_ms: int = POLL_MS):
    """Return the /dispatch page for ``user``; a liaison sees their own department's board by default."""
    city = city or current_app.extensions["panorama"].city
    if department is None and user is not None and user.role == "liaison":
        department = user.department
    officer = check_role(user, "officer")
    names = department_names(city, lang)
    return html.Div([
        topbar(lang, tx("title", lang), lang_toggle(lang)),
        dcc.Location(id="dispatch-url", refresh=False),
        dcc.Store(id="dispatch-selected"),
        dcc.Store(id="dispatch-department", data=department),
        dcc.Store(id="dispatch-refresh", data=0),
        dcc.Store(id="dispatch-tick-out"),
        dcc.Interval(id="dispatch-poll", interval=poll_ms),
        # Only the countdown texts change each second, in the browser.
        dcc.Interval(id="dispatch-tick", interval=1000),
        html.Main([
            panel(tx("queue", lang), html.Ul(id="incident-list", className="incident-list"),
                  className="dispatch-queue"),
            panel(tx("detail", lang),
                  html.Div([html.Button(tx("dispatch", lang), id="dispatch-open", n_clicks=0, disabled=True,
                                        hidden=not officer, className="btn btn-primary"),
                            html.Button(tx("close", lang), id="dispatch-close-incident", n_clicks=0, disabled=True,
                                        hidden=not officer, className="btn")], className="detail-actions"),
                  html.Div(id="dispatch-detail-message", className="message"),
                  html.Div(id="dispatch-detail"),
                  className="dispatch-detail"),
            panel(tx("board", lang),
                  html.Div(tx("filtered", lang, dep=names.get(department, department)) if department
                           else tx("all_departments", lang), id="board-filter", className="muted"),
                  dcc.Input(id="task-note", type="text", placeholder=tx("task_note", lang), debounce=False,
                            className="task-note"),
                  html.Div(id="task-message", className="message"),
                  html.Div(id="task-board", className="task-board"),
                  className="dispatch-board"),
        ], className="dispatch-grid"),
        html.Div(html.Div([
            html.H3(tx("dispatch", lang)),
            html.Label(tx("departments", lang)),
            dcc.Checklist(id="dispatch-departments", options=[{"label": n, "value": c} for c, n in names.items()],
                          value=[], className="dept-checklist", inputClassName="dept-check"),
            html.Label(tx("note", lang)),
            dcc.Textarea(id="dispatch-note", value="", className="dispatch-note"),
            html.Div([html.Button(tx("send", lang), id="dispatch-submit", n_clicks=0, className="btn btn-primary"),
                      html.Button(tx("cancel", lang), id="dispatch-cancel", n_clicks=0, className="btn")],
                     className="dialog-actions"),
            html.Div(id="dispatch-message", className="message"),
        ], className="dialog", role="dialog"), id="dispatch-dialog", hidden=True, className="dialog-backdrop"),
    ], className="dispatch-page")
