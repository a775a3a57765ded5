"""Lay out the linked-dispatch page: incident queue, incident detail and map, dispatch dialog, the task board.

The page is live: it shares the panorama's gateway connection (``layouts.common.live_components``) and
polls slowly only while that connection is down.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from dash import dcc, html
from flask import current_app

from dashboard.web.auth import check_role
from dashboard.dispatch.board import LIVE, TRANSITIONS
from dashboard.core.i18n import actor_label, audit_text, kind_label, pick, t
from dashboard.core.i18n import state_label as i18n_state_label
from dashboard.figures.incident_map import SIZE as MAP_SIZE, make_incident_map
from layouts import dispatch_handover, dispatch_merge
from layouts.common import lang_toggle, live_components, live_config, panel, status_cluster, topbar

POLL_MS = 3000
MAP_CONFIG = {"displayModeBar": False, "scrollZoom": False, "doubleClick": False, "responsive": True}
# The page's own texts (zh, en); kept here until they move into dashboard.i18n.
_TEXT = {
    "title": ("联动指挥调度", "Linked dispatch"),
    "detail": ("事件详情", "Incident"),
    "board": ("任务看板", "Task board"),
    "none_selected": ("选择左侧事件查看详情", "Pick an incident from the queue"),
    # the audit trail's actions
    "act_dispatch": ("派单", "dispatch"), "act_transition": ("处置", "move"), "act_status": ("事件状态", "incident"),
    "act_escalate": ("超时升级", "escalation"), "act_reroute": ("改派", "re-route"), "act_close": ("结案", "close"),
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
    "map_approximate": ("无上报坐标，标注为所在区中心", "No coordinates reported: the district's centre is marked"),
    "escalated_ack": ("超时升级：{dep} 未按时签收 · {title}", "Escalated: {dep} did not acknowledge in time · {title}"),
    "escalated_resolve": ("超时升级：{dep} 未按时办结 · {title}", "Escalated: {dep} did not resolve in time · {title}"),
    "signed_out": ("请先登录", "Sign in first"),
    "not_allowed": ("无权执行此操作", "You may not do this"),
    # what a write did, naming the incident by its title (a text child: never parsed as HTML)
    "dispatched_ok": ("已派单：{title}（{n} 个部门）", "Dispatched: {title} ({n} department(s))"),
    "moved_ok": ("{title}：{dep} {to}", "{title}: {dep} {to}"),
    "closed_ok": ("已结案：{title}", "Closed: {title}"),
    "act_cmd_ack": ("指挥长知悉", "commander"),
    "act_redispatch": ("重新派单", "dispatched again"),
    "act_notify": ("值班通知", "duty notification"),
    "act_merge": ("合并", "merge"), "act_split": ("拆分", "split"),
    "act_major": ("应急响应", "major incident"),
    "act_procedure": ("处置预案", "procedure"),
    "act_handover": ("移交", "hand-over"),
    "close_waits": ("待办结：{deps}", "Not yet resolved by: {deps}"),
    "close_not_resolved": ("尚未全部办结", "Not every department has resolved"),
    "board_incident": ("本事件", "This incident"),
    "board_all": ("全部事件", "All incidents"),
    "resolve_for": ("代为办结", "Record resolution"),
    "resolve_for_title": ("该部门无人在系统上：据其电话/电台告知代为登记办结，须在备注中写明告知人",
                          "The department has nobody on the system: record the resolution it reported by phone or "
                          "radio; say who reported it in the note"),
    "report": ("复盘报告", "After-action report"),
    "report_pdf": ("复盘报告 PDF", "After-action report (PDF)"),
    "resolved_for_ok": ("已代{dep}登记办结：{title}", "Resolution recorded for {dep}: {title}"),
}
INCIDENT_STATUSES = ("open", "dispatched", "in_progress", "resolved", "closed")
ACTIONS = ("acknowledged", "on_scene", "resolved", "rejected")  # the buttons of a task card, in this order


def tx(key: str, lang: str, **fmt) -> str:
    """Return one of the page's texts in ``lang``."""
    return pick(_TEXT, key, lang, **fmt)


def state_label(state: str, lang: str, task: bool = False) -> str:
    """Return the name of an incident status (``task``: a task state) from the shared vocabulary of i18n."""
    return i18n_state_label(state, lang, task)


def incident_name(incident: dict, lang: str) -> str:
    """Return how people name an incident: its title, else its kind in words (never its number)."""
    return incident.get("title") or kind_label(incident.get("kind") or "", lang)


def department_names(city, lang: str) -> dict[str, str]:
    """Map each department code to its name in ``lang``."""
    return {d["code"]: (d.get("name_en") if lang == "en" else d.get("name")) or d["code"] for d in city.departments}


def hhmm(ms: int, tz: str, seconds: bool = False) -> str:
    """Format epoch ms as local time of day."""
    local = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(ZoneInfo(tz))
    return local.strftime("%H:%M:%S" if seconds else "%H:%M")


def countdown_text(due_ms: int, now_ms: int) -> str:
    """Return the time left as [-]m:ss, or [-]h:mm:ss from an hour on (the browser keeps it ticking)."""
    s = round((due_ms - now_ms) / 1000)
    a = abs(s)
    body = f"{a // 3600}:{a % 3600 // 60:02d}:{a % 60:02d}" if a >= 3600 else f"{a // 60}:{a % 60:02d}"
    return ("-" if s < 0 else "") + body


def queue_items(rows: list[dict], city, lang: str, tz: str, selected: int | None) -> list:
    """Return one list item per incident, each a button that selects it."""
    if not rows:
        return [html.Li(t("no_open_incidents", lang), className="queue-empty")]
    by_code = city.by_code
    items = []
    for r in rows:
        district = by_code.get(r["district"])
        where = (district.name_en if lang == "en" else district.name) if district else r["district"]
        items.append(html.Li(html.Button([
            html.Span(f"S{r['severity']}", className=f"sev sev-{r['severity']}"),
            html.Span(r["title"] or kind_label(r["kind"], lang), className="queue-title"),
            html.Span(f"{where} · {kind_label(r['kind'], lang)} · {hhmm(r['opened_ms'], tz)} · "
                      f"{t('reports', lang, n=r['reports'])}", className="queue-meta"),
            html.Span([html.Span(state_label(r["status"], lang), className=f"status status-{r['status']}"),
                       escalated_badge(r, lang), dispatch_handover.centre_mark(r, city, lang)],
                      className="queue-marks"),
        ], id={"type": "dispatch-incident", "index": r["id"]}, n_clicks=0,
            className="queue-item" + (" selected" if r["id"] == selected else "")), **{"data-id": r["id"]}))
    return items


def escalated_badge(incident: dict, lang: str):
    """Return the "escalated" mark of an incident raised to emergency management (None when it is not)."""
    escalated = incident.get("escalated_ms") is not None if "escalated_ms" in incident else incident.get("escalated")
    if not escalated:
        return None
    return html.Span(t("incident_escalated", lang), className="badge-escalated")


def escalation_items(rows: list[dict], city, lang: str) -> list:
    """Return the notices of escalated tasks not yet resolved (``desk.open_escalations``), newest first."""
    names = department_names(city, lang)
    return [html.Li(tx("escalated_ack" if r["state"] == "dispatched" else "escalated_resolve", lang,
                       dep=names.get(r["department"], r["department"]),
                       title=r["incident_title"] or kind_label(r["incident_kind"], lang)),
                    className="escalation", **{"data-task": r["id"], "data-incident": r["incident_id"]})
            for r in rows]


def queue_rest(shown: int, total: int, lang: str) -> str:
    """Return the line under a cut queue: how many open incidents it does not show (empty when none)."""
    return t("incidents_rest", lang, n=total - shown) if total > shown else ""


def _when(stamp: str) -> str:
    """Return the time of day of an RFC 3339 stamp."""
    return stamp[11:19]


def _stamp(stamp: str) -> str:
    """Return an RFC 3339 stamp as people read it: month-day and time of day, in the city's zone."""
    return f"{stamp[5:10]} {stamp[11:19]}"


def action_label(action: str, lang: str) -> str:
    """Return the name of an audited action (an unknown one as it is)."""
    key = f"act_{action}"
    return tx(key, lang) if key in _TEXT else action


def detail_view(doc: dict | None, city, lang: str, major_box=None, procedure_box=None) -> list:
    """Return the selected incident: header, place, the major-incident buttons (``major_box``, for those who may
    declare), its standard procedure (``procedure_box``), reports and the timeline (every text as text)."""
    if doc is None:
        return [html.P(tx("none_selected", lang), className="muted")]
    inc, names = doc["incident"], department_names(city, lang)
    sug = doc.get("suggestion")
    district = city.by_code.get(inc["district"])
    place = (f"{inc['lat']:.4f}, {inc['lon']:.4f}" if inc.get("lat") is not None and inc.get("lon") is not None
             else "–")
    return [
        html.H3(inc["title"] or kind_label(inc["kind"], lang), id="dispatch-detail-title"),
        html.P([html.Span(f"S{inc['severity']}", className=f"sev sev-{inc['severity']}"), " ",
                html.Span(state_label(inc["status"], lang), id="dispatch-detail-status",
                          className=f"status status-{inc['status']}"), " ", escalated_badge(inc, lang),
                f" · {kind_label(inc['kind'], lang)} · {t('reports', lang, n=inc['reports'])}"
                f" · {_stamp(inc['opened_at'])}"]),
        dispatch_merge.merged_note(inc, lang),
        dispatch_handover.centre_line(inc, city, lang),
        html.P(f"{tx('place', lang)}: {(district.name_en if lang == 'en' else district.name) if district else ''} "
               f"{city.street_name(inc['district'], inc.get('street'), lang)} {place}", className="detail-place"),
        # the rule's name is an id of rules.yaml, not words: kept on the element for whoever looks it up
        html.P(f"{tx('suggested', lang)}: " + ("、" if lang == "zh" else ", ").join(
            names.get(c, c) for c in sug["departments"]), className="detail-suggestion",
            **{"data-rule": sug["rule"]}) if sug else None,
        major_box,
        procedure_box,
        html.H4(f"{tx('reports', lang)} ({len(doc['reports'])})"),
        html.Ul([html.Li(f"{_when(r['ts'])} {r['title'] or kind_label(r['kind'], lang)}"
                         + (f" — {r['source']}" if r["source"] else "")) for r in doc["reports"][:20]],
                className="detail-reports"),
        html.H4(tx("timeline", lang)),
        html.Ol([timeline_item(h, doc, names, lang, district_names(city, lang)) for h in doc["history"]],
                id="dispatch-timeline",
                className="timeline"),
        report_links(inc, lang),
    ]


def report_links(inc: dict, lang: str):
    """Return the links to a resolved or closed incident's after-action report (None while it is handled)."""
    if inc["status"] not in ("resolved", "closed"):
        return None
    base = f"/api/incidents/{inc['id']}/report"
    return html.P([html.A(tx("report", lang), href=f"{base}.html?lang={lang}", target="_blank", rel="noopener",
                          id="dispatch-report", className="export-link"), " ",
                   html.A(tx("report_pdf", lang), href=f"{base}.pdf?lang={lang}", target="_blank", rel="noopener",
                          id="dispatch-report-pdf", className="export-link")], className="detail-report")


def district_names(city, lang: str) -> dict[str, str]:
    """Map each district code to its name in ``lang``."""
    return {code: (x.name_en if lang == "en" else x.name) for code, x in city.by_code.items()}


def timeline_item(h: dict, doc: dict, names: dict, lang: str, districts: dict | None = None) -> html.Li:
    """Return one audit row: when, who, what, the system's code said in ``lang``, then the person's note."""
    said = audit_text(h.get("code"), h.get("params"), lang, names, districts)
    return html.Li(f"{_when(h['at'])} {actor_label(h['actor'], lang)} · {action_label(h['action'], lang)}: "
                   f"{state_label(h['from'], lang, bool(h['task_id'])) + ' → ' if h['from'] and h['from'] != h['to'] else ''}"
                   f"{state_label(h['to'], lang, bool(h['task_id']))}"
                   + (f" ({names.get(_dep(doc, h['task_id']), '')})" if h["task_id"] else "")
                   + (f" · {said}" if said else "") + (f" — {h['note']}" if h["note"] else ""),
                   className="timeline-item" + (f" code-{h['code']}" if h.get("code") else ""))


def close_why(doc: dict | None, city, lang: str) -> str:
    """Return why the close button is greyed: the departments that have not resolved (empty when it is not)."""
    if doc is None or doc["incident"]["status"] in ("resolved", "closed"):
        return ""
    names = department_names(city, lang)
    order = {code: i for i, code in enumerate(names)}  # the city pack's order, as the board's columns
    waiting = sorted({t["department"] for t in doc["tasks"] if t["state"] in LIVE}, key=lambda c: order.get(c, 999))
    if not waiting:
        return tx("close_not_resolved", lang)
    return tx("close_waits", lang, deps=("、" if lang == "zh" else ", ").join(names.get(c, c) for c in waiting))


def _dep(doc: dict, task_id: int) -> str:
    return next((t["department"] for t in doc["tasks"] if t["id"] == task_id), "")


def incident_map(doc: dict | None, city, lang: str):
    """Return the map of the selected incident's place (the whole city when none is selected)."""
    if doc is None:
        return make_incident_map(None, [], city, lang)
    return make_incident_map(doc["incident"], doc["reports"], city, lang)


def task_card(task: dict, incident: dict, lang: str, now_ms: int, movable: bool, resolvable: bool = False) -> html.Div:
    """Return one task: its incident, state, deadline countdown and the moves the user may make.

    ``resolvable``: the user may record the resolution on the department's behalf (it has nobody here).
    """
    due = task["ack_due_ms"] if task["state"] == "dispatched" else task["resolve_due_ms"]
    live = task["state"] in LIVE
    moves = [to for to in ACTIONS if to in TRANSITIONS.get(task["state"], ())] if movable else []
    on_behalf = html.Button(tx("resolve_for", lang), n_clicks=0, className="task-action action-resolve-for",
                            title=tx("resolve_for_title", lang),
                            id={"type": "task-resolve-for", "task": task["id"], "version": task["version"]}) \
        if resolvable and live else None
    return html.Div([
        html.Div(incident.get("title") or kind_label(incident["kind"], lang), className="task-title"),
        html.Div([html.Span(state_label(task["state"], lang, task=True), className=f"task-state state-{task['state']}"),
                  html.Span(t("task_escalated", lang), className="task-escalated") if task["escalated"] else None,
                  html.Span(t("task_coordination", lang), className="task-coordination")
                  if task.get("coordination") else None]),
        html.Div([html.Span(tx("ack_by" if task["state"] == "dispatched" else "resolve_by", lang) + " "),
                  html.Span(countdown_text(due, now_ms), className="countdown" + (" overdue" if due < now_ms else ""),
                            **{"data-left": due - now_ms})],
                 className="task-deadline") if live else None,
        html.Div([html.Button(tx_action(to, lang), n_clicks=0, className=f"task-action action-{to}",
                              id={"type": "task-action", "task": task["id"], "to": to, "version": task["version"]})
                  for to in moves] + ([on_behalf] if on_behalf else []), className="task-actions"),
    ], className="task-card" + (" is-escalated" if task["escalated"] else ""),
        id=f"task-{task['id']}", **{"data-department": task["department"], "data-state": task["state"]})


def tx_action(to: str, lang: str) -> str:
    """Return the label of the button that moves a task to ``to``."""
    return t(f"act_{to}", lang)


def board_columns(rows: list[dict], incidents_by_id: dict, city, lang: str, now_ms: int, may_move,
                  may_resolve_for=lambda dep: False) -> list:
    """Return the board: one column per department with tasks, in the city pack's order."""
    if not rows:
        return [html.P(tx("no_tasks", lang), className="muted")]
    names = department_names(city, lang)
    order = {code: i for i, code in enumerate(names)}
    columns: dict[str, list] = {}
    for t_ in sorted(rows, key=lambda r: (order.get(r["department"], 999), r["id"])):
        columns.setdefault(t_["department"], []).append(t_)
    return [html.Div([html.H3(names.get(dep, dep), className="board-dept"),
                      *[task_card(x, incidents_by_id[x["incident_id"]], lang, now_ms, may_move(dep),
                                  may_resolve_for(dep)) for x in ts]],
                     className="board-column", id=f"board-{dep}")
            for dep, ts in columns.items()]


def dialog_options(city, lang: str, district: str | None) -> list[dict]:
    """Return the departments the dialog offers: the city's, then the offices of the incident's district only."""
    names = department_names(city, lang)
    out = []
    for d in city.departments:
        office = d.get("kind") in ("district_government", "street_office")
        if not office or (district is not None and str(d.get("district")) == district):
            out.append({"label": names[d["code"]], "value": d["code"]})
    return out


def unit_options(suggested: dict[str, list[dict]], city, lang: str) -> list[dict]:
    """Return the dialog's units to tick: per department, its nearest available units with the straight-line km."""
    names = department_names(city, lang)
    out = []
    for dep, rows in suggested.items():
        if not rows:
            out.append({"label": f"{names.get(dep, dep)} · {t('no_units_near', lang)}", "value": f"-{dep}",
                        "disabled": True})
        for r in rows:
            name = (r.get("name_en") if lang == "en" else r.get("name")) or r["unit"]
            km = t("km", lang, km=f"{r['km']:.1f}")
            out.append({"label": f"{names.get(dep, dep)} · {name} · {km}", "value": r["unit"]})
    return out


def page_settings(cfg: dict) -> dict:
    """Return what the page's live connection needs from the configuration."""
    return {"tz": cfg["PANORAMA_TZ"], "ws_url": cfg["PANORAMA_WS_URL"], "ws_port": cfg["PANORAMA_WS_PORT"],
            "stale_after": cfg["PANORAMA_STALE_AFTER"], "cycle_s": cfg["PANORAMA_WALL_CYCLE_S"],
            "poll_ms": cfg["PANORAMA_POLL_MS"]}


def dispatch_layout(lang: str, user, *, city=None, department: str | None = None, poll_ms: int | None = None,
                    settings: dict | None = None, now_ms: int | None = None, selected: int | None = None):
    """Return the /dispatch page for ``user``; a liaison sees only their own department's board.

    ``poll_ms``: how often the page re-reads the queue and board while the gateway is unreachable.
    ``selected``: the incident the page opens on (the address's ``?incident=``, already checked as one the user
    may read).
    """
    svc = current_app.extensions["panorama"]
    city = city or svc.city
    settings = settings or page_settings(svc.config)
    poll_ms = poll_ms or settings.get("poll_ms") or POLL_MS
    if user is not None and user.role == "liaison":
        department = user.department or ""
    officer = check_role(user, "officer")
    names = department_names(city, lang)
    config = live_config(city, lang, "dispatch", settings)
    return html.Div([
        topbar(lang, tx("title", lang), *status_cluster(lang), lang_toggle(lang)),
        # outside the page's main part here, so a named region of its own (nothing outside a landmark)
        html.Div(id="alert-banner", className="alert-banner", role="region", **{"aria-label": t("notices", lang)}),
        # the incident shown; kept in the address (?incident=), so a reload or the language switch opens it again
        dcc.Store(id="dispatch-selected", data=selected),
        dcc.Store(id="dispatch-address"),  # the query the selection last wrote into the address (the browser's)
        dcc.Store(id="dispatch-department", data=department),
        dcc.Store(id="dispatch-refresh", data=0),
        # Written by assets/dispatch_live.js when gateway frames carry incidents, tasks or escalations.
        dcc.Store(id="dispatch-live"),
        # Fingerprints of what is on screen (queue and board | detail and map): unchanged parts stay put.
        dcc.Store(id="dispatch-shown", data={}),
        dcc.Store(id="dispatch-shown-detail", data={}),
        dcc.Store(id="dispatch-tick-out"),
        # The fallback: enabled only while the gateway connection is down (assets/dispatch_live.js).
        dcc.Interval(id="dispatch-poll", interval=poll_ms, disabled=True),
        # Its ticks, but for those while the queue, the board or the detail is being drawn (dispatch_live.js).
        dcc.Store(id="dispatch-pulse"),
        # Only the countdown texts change each second, in the browser.
        dcc.Interval(id="dispatch-tick", interval=1000),
        html.Main([
            panel(t("open_incidents", lang),
                  html.Span([html.A(t("export_csv", lang), id="incident-export-csv", download="",
                                    href=f"/api/incidents.csv?lang={lang}"),
                             html.A(t("export_xlsx", lang), id="incident-export-xlsx", download="",
                                    href=f"/api/incidents.xlsx?lang={lang}")], className="export-links"),
                  html.Ul(id="incident-list", className="incident-list"),
                  html.P(id="incident-rest", className="queue-rest", role="status"),
                  className="dispatch-queue"),
            panel(tx("detail", lang),
                  html.Div([html.Button(tx("dispatch", lang), id="dispatch-open", n_clicks=0, disabled=True,
                                        hidden=not officer, className="btn btn-primary"),
                            html.Button(tx("close", lang), id="dispatch-close-incident", n_clicks=0, disabled=True,
                                        hidden=not officer, className="btn"),
                            *dispatch_merge.buttons(lang, check_role(user, "command")),
                            # a district centre hands its incidents up; the city centre takes up and hands down
                            *dispatch_handover.buttons(lang, check_role(user, "command") and city.centres is not None,
                                                       check_role(user, "command") and city.centres is not None
                                                       and getattr(user, "district", None) is None),
                            # why the close button is greyed: the departments that have not resolved
                            html.Span(id="dispatch-close-why", className="close-why muted", role="status")],
                           className="detail-actions"),
                  html.Div(id="dispatch-detail-message", className="message"),
                  dcc.Graph(id="dispatch-map", figure=incident_map(None, city, lang), config=MAP_CONFIG,
                            # the map's own shape (incident_map.SIZE): an SVG map shows its lon/lat box and no more,
                            # so the box takes the column's width and the height that keeps its proportions
                            responsive=True, className="dispatch-map",
                            style={"width": "100%", "aspectRatio": f"{MAP_SIZE[0]} / {MAP_SIZE[1]}"}),
                  html.Div(id="dispatch-map-note", className="muted map-note"),
                  html.Div(detail_view(None, city, lang), id="dispatch-detail"),
                  className="dispatch-detail"),
            panel(tx("board", lang),
                  html.Div(tx("filtered", lang, dep=names.get(department, department)) if department is not None
                           else tx("all_departments", lang), id="board-filter", className="muted"),
                  html.Span([html.A(t("export_csv", lang), id="task-export-csv", download="",
                                    href=f"/api/tasks.csv?lang={lang}"),
                             html.A(t("export_xlsx", lang), id="task-export-xlsx", download="",
                                    href=f"/api/tasks.xlsx?lang={lang}")], className="export-links"),
                  dcc.RadioItems(id="board-scope", value="incident", inline=True, className="board-scope",
                                 options=[{"label": tx("board_incident", lang), "value": "incident"},
                                          {"label": tx("board_all", lang), "value": "all"}]),
                  html.Ul(id="dispatch-escalations", className="escalations"),
                  dcc.Input(id="task-note", type="text", placeholder=tx("task_note", lang), debounce=False,
                            className="task-note"),
                  html.Div(id="task-message", className="message"),
                  html.Div(id="task-board", className="task-board"),
                  className="dispatch-board"),
        ], className="dispatch-grid"),
        html.Div(html.Div([
            html.H3(tx("dispatch", lang)),
            html.Label(tx("departments", lang)),
            dcc.Checklist(id="dispatch-departments", options=dialog_options(city, lang, None), value=[],
                          className="dept-checklist", inputClassName="dept-check"),
            # the nearest available units of each department ticked (callbacks/dispatch.py), by straight line
            html.Label(t("nearest_units", lang)),
            html.Div(t("straight_line", lang), className="muted units-note"),
            dcc.Checklist(id="dispatch-units", options=[], value=[], className="unit-checklist",
                          inputClassName="unit-check"),
            html.Label(tx("note", lang)),
            dcc.Textarea(id="dispatch-note", value="", className="dispatch-note"),
            html.Div([html.Button(tx("send", lang), id="dispatch-submit", n_clicks=0, className="btn btn-primary"),
                      html.Button(tx("cancel", lang), id="dispatch-cancel", n_clicks=0, className="btn")],
                     className="dialog-actions"),
            html.Div(id="dispatch-message", className="message"),
        ], className="dialog", role="dialog"), id="dispatch-dialog", hidden=True, className="dialog-backdrop"),
        *dispatch_merge.dialogs(lang),
        *dispatch_handover.dialogs(lang),
        *live_components(config, None, {"page": "dispatch"}, now_ms or time.time_ns() // 1_000_000),
    ], className="dispatch-page", id="dispatch-page")
