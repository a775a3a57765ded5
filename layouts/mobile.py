"""Lay out /m, the commander on a phone: one line of city status, what needs a decision now, open incidents."""

from __future__ import annotations

import math

from dash import dcc, html

from dashboard.core.i18n import district_name, kind_label, pick
from dashboard.dispatch import commander
from layouts.common import lang_toggle, live_components, live_config, status_cluster
from layouts.dispatch import department_names, escalated_badge, hhmm, state_label
from layouts.major import major_components

_TEXT = {
    "title": ("指挥", "Command"),
    "decide": ("待决策", "Needs a decision"),
    "incidents": ("未结事件", "Open incidents"),
    "nothing": ("暂无待决策事项", "Nothing needs a decision"),
    "no_incidents": ("暂无未结事件", "No open incidents"),
    "critical": ("特别重大事件", "Critical incident"),
    "overdue": ("任务超时", "Overdue task"),
    "rejected": ("任务退回", "Task returned"),
    "acknowledge": ("知悉", "Acknowledge"),
    "escalate": ("升级", "Escalate"),
    "redispatch": ("重新派单", "Re-dispatch"),
    "call": ("致电", "Call"),
    "call_label": ("致电{dep}值班室 {phone}", "Call {dep}'s duty line {phone}"),
    "late_ack": ("未按时签收 · 超时{n}分钟", "not acknowledged · {n} min late"),
    "late_resolve": ("未按时办结 · 超时{n}分钟", "not resolved · {n} min late"),
    "late_summary": ("{n}个部门超时", "{n} departments late"),
    "late_summary_1": ("1个部门超时", "1 department late"),
    "approve_dispatch": ("批准派单", "Approve dispatch"),
    "approve_close": ("批准结案", "Approve closure"),
    "approve_return": ("同意退回", "Accept return"),
    "returned": ("已退回", "returned it"),
    "returned_summary": ("{n}个部门退回", "{n} departments returned it"),
    "returned_summary_1": ("1个部门退回", "1 department returned it"),
    "done_acknowledge": ("已知悉：{title}", "Acknowledged: {title}"),
    "done_escalate": ("已升级至{dep}：{title}", "Escalated to {dep}: {title}"),
    "done_approve": ("已批准：{title}", "Approved: {title}"),
    "done_redispatch": ("已向{dep}重新派单：{title}", "Re-dispatched to {dep}: {title}"),
    "stale": ("情况已变化，列表已更新", "It changed meanwhile — the list is up to date now"),
    "not_allowed": ("无权执行此操作", "You may not do this"),
    "signed_out": ("请先登录", "Sign in first"),
    "failed": ("操作未完成：{why}", "Not done: {why}"),
    "status_loading": ("全市态势载入中…", "City status loading…"),
    "status_line": ("1小时", "1 h"),
    "top_risk": ("风险最高", "highest risk"),
    # the status line's domain names: it wraps between its parts on a phone, so English spells them out
    "s_security": ("安全", "Security"),
    "s_traffic": ("交通", "Traffic"),
    "s_environment": ("环境", "Environment"),
    "s_incident": ("突发", "Incidents"),
    "suggested": ("建议派往", "suggested"),
}
# Texts the browser needs for the status line (assets/mobile.js).
STATUS_KEYS = ("status_line", "top_risk", "status_loading", "s_security", "s_traffic", "s_environment", "s_incident")


def tx(key: str, lang: str, **fmt) -> str:
    """Return one of /m's texts in ``lang``."""
    return pick(_TEXT, key, lang, **fmt)


def approve_label(item: dict, lang: str) -> str:
    """Return what approving ``item`` does, as its button says it."""
    return tx(f"approve_{commander.approval(item)}", lang)


def _place(inc: dict, city, lang: str) -> str:
    district = city.by_code.get(inc["district"])
    return district_name(district, lang) if district else inc["district"]


def item_key(item: dict) -> str:
    """Return a card's stable key: the same across versions, so the browser's pending taps find it again."""
    return f"{item['kind']}-{item['incident']['id']}"


def _button(action: str, label: str, item: dict, key: str, task: dict | None = None) -> html.Button:
    """Return one tap: its id carries what the server checks (the versions seen), data-* what the browser hides."""
    inc = item["incident"]
    listed = ",".join(f"{t['id']}.{t['version']}" for t in commander.listed(item))
    return html.Button(label, n_clicks=0, className=f"m-btn m-{action}", id={
        "type": "m-act", "act": action, "kind": item["kind"], "incident": inc["id"], "task": task["id"] if task else 0,
        "version": task["version"] if task else item["version"], "tasks": listed},
        **{"data-act": action, "data-key": f"{key}:{action}"})


def _call(dep: str, phones: dict, names: dict, lang: str) -> list:
    """Return a call link to a department's duty line, or nothing when the pack gives none."""
    if not phones.get(dep):
        return []
    label = tx("call_label", lang, dep=names.get(dep, dep), phone=phones[dep])
    return [html.A(tx("call", lang), href=f"tel:{phones[dep]}", className="m-btn m-call", title=label,
                   **{"aria-label": label})]


def _row(task: dict, text: list, tools: list) -> html.Li:
    dep = task["department"]
    return html.Li([html.Div(text, className="m-row-text"), html.Div(tools, className="m-row-tools")],
                   className="m-row", key=str(task["id"]), **{"data-key": f"row-{task['id']}", "data-department": dep})


def _late(overdue: dict, at_ms: int, lang: str) -> html.Span:
    """Return how late a department is; the phone counts the minutes on between refreshes (assets/mobile.js)
    from the deadline, the server's clock when drawn and the text with its ``{n}``."""
    return html.Span(tx(f"late_{overdue['step']}", lang, n=overdue["late_min"]), className="m-late", **{
        "data-due": str(overdue["due_ms"]), "data-at": str(at_ms),
        "data-tpl": tx(f"late_{overdue['step']}", lang, n="{n}")})


def _task_rows(item: dict, key: str, phones: dict, names: dict, lang: str) -> html.Ul:
    """Return a card's late departments (how late, a re-dispatch tap, a call link) and the departments that
    returned it (their reason, as text, and a call link)."""
    rows = []
    for o in item["overdue"]:
        task, dep = o["task"], o["task"]["department"]
        tools = [_button("redispatch", tx("redispatch", lang), item, key, task)] if o["redispatch"] else []
        rows.append(_row(task, [html.Span(names.get(dep, dep), className="m-dep"),
                                _late(o, item["at_ms"], lang)],
                         tools + _call(dep, phones, names, lang)))
    for task in item["returned"]:
        dep = task["department"]
        text = [html.Span(names.get(dep, dep), className="m-dep"), html.Span(tx("returned", lang), className="m-late")]
        if task.get("note"):
            text.append(html.Span(task["note"], className="m-reason"))  # the department's reason, as text
        rows.append(_row(task, text, _call(dep, phones, names, lang)))
    return html.Ul(rows, className="m-overdue")


def decision_item(item: dict, city, lang: str, tz: str) -> html.Li:
    """Return one incident's card: what it is, where, since when, which departments are late (and by how much)
    or returned it, a tap per action that applies, and a call link per department listed."""
    inc = item["incident"]
    names = department_names(city, lang)
    meta = [_place(inc, city, lang), kind_label(inc["kind"], lang)]
    if item["kind"] == "critical":
        meta.append(state_label(inc["status"], lang))
    for what, n in (("late", len(item["overdue"])), ("returned", len(item["returned"]))):
        if n:
            meta.append(tx(f"{what}_summary_1", lang) if n == 1 else tx(f"{what}_summary", lang, n=n))
    if item.get("suggested"):
        meta.append(f"{tx('suggested', lang)} " + (", " if lang == "en" else "、").join(
            names.get(c, c) for c in item["suggested"]))
    key = item_key(item)
    phones = {dep["code"]: dep.get("duty_phone") for dep in city.departments}
    buttons = [_button(action, approve_label(item, lang) if action == "approve" else tx(action, lang), item, key)
               for action in item["actions"]]
    return html.Li([
        html.Div([html.Span(f"S{inc['severity']}", className=f"m-sev sev-{inc['severity']}"),
                  html.Span(tx(item["kind"], lang), className="m-kind"), escalated_badge(inc, lang),
                  html.Span(hhmm(item["since_ms"], tz), className="m-time")], className="m-item-head"),
        html.Div(inc["title"] or kind_label(inc["kind"], lang), className="m-item-title"),
        html.Div(" · ".join(meta), className="m-item-meta"),
        *([_task_rows(item, key, phones, names, lang)] if item["overdue"] or item["returned"] else []),
        html.Div(buttons, className="m-actions"),
    ], className=f"m-item kind-{item['kind']}", id=f"m-item-{key}", key=key, **{"data-key": key})


def decision_items(items: list[dict], city, lang: str, tz: str) -> list:
    """Return the decision list's children (one line saying so when there is nothing)."""
    if not items:
        return [html.Li(tx("nothing", lang), className="m-empty")]
    return [decision_item(i, city, lang, tz) for i in items]


def incident_items(rows: list[dict], city, lang: str, tz: str) -> list:
    """Return ``incident-list``'s children: one per open incident (SPEC section 5), compact for a phone."""
    return [html.Li([html.Span(f"S{r['severity']}", className=f"m-sev sev-{r['severity']}"),
                     html.Span(r["title"] or kind_label(r["kind"], lang), className="m-inc-title"),
                     html.Span(f"{_place(r, city, lang)} · {state_label(r['status'], lang)} · "
                               f"{hhmm(r['opened_ms'], tz)}", className="m-inc-meta"), escalated_badge(r, lang)],
                    className=f"m-inc status-{r['status']}", key=str(r["id"]), **{"data-id": r["id"]})
            for r in rows]


def count_text(shown: int, total: int) -> str:
    """Return a list's count: how many there are, and how many of them it shows when it is cut (50/1234)."""
    return f"{shown}/{total}" if total > shown else str(shown)


def _whole(*words) -> str:
    """Return words as one part of the status line, held on one line (no-break spaces, its own words' too): on a
    phone the line wraps between its parts, never inside one (assets/mobile.js's ``whole``)."""
    return " ".join(map(str, words)).replace(" ", "\u00a0")


def status_text(state: dict | None, config: dict) -> str:
    """Return the line of city status as assets/mobile.js's ``status`` writes it from the live windows: drawn
    on the server too, so that the page's first paint (dashboard/web/first_paint.py) already says it."""
    win = ((state or {}).get("windows") or {}).get("1h")
    texts = config["mobile"]
    if not win:
        return texts["status_loading"]
    parts = [texts["status_line"], *(_whole(texts["s_" + d], (win.get("totals") or {}).get(d, 0))
                                     for d in config["domains"])]
    top = None
    districts = win.get("districts") or {}
    # in JavaScript's order of an object's keys (integer-like ones ascending first): a tie goes the same way
    for code in sorted(districts, key=lambda k: (0, int(k)) if k.isdigit() else (1, 0)):
        entry = districts[code]
        if top is None or (entry.get("risk") or 0) > top[1]:
            top = (code, entry.get("risk") or 0)
    if top is not None and math.floor(top[1] + 0.5) > 0:  # JavaScript's Math.round
        name = (config["districts"].get(top[0]) or {}).get("short") or top[0]
        parts.append(_whole(texts["top_risk"], name, math.floor(top[1] + 0.5)))
    return " · ".join(parts)


def mobile_layout(city, lang: str, state: dict | None, settings: dict, now_ms: int, items: list[dict],
                  incidents: list[dict], total: int, digest: dict, alerts=None) -> html.Div:
    """Return /m drawn from the current decisions and incidents; the browser keeps it live over the gateway."""
    tz = settings["tz"]
    config = live_config(city, lang, "mobile", settings)
    config["mobile"] = {k: tx(k, lang) for k in STATUS_KEYS}
    # The phone needs the counts and feeds only: the trend and the ticker's events stay on the server.
    slim = {k: v for k, v in (state or {}).items() if k in ("generated_at", "windows", "feeds")} if state else None
    view = {"page": "mobile", "window": "1h"}
    return html.Main([  # the landmark screen readers jump to
        html.Header([html.H1(tx("title", lang), className="m-title"),
                     html.Div([*status_cluster(lang), lang_toggle(lang)], className="m-head-right")],
                    className="m-head"),
        html.Div(id="alert-banner", className="alert-banner"),
        *major_components("mobile", settings),  # the command card first while a major incident is active
        html.P(status_text(slim, config), id="city-status", className="m-status", role="status"),
        *([alerts] if alerts is not None else []),
        html.Section([
            html.H2([tx("decide", lang), html.Span(str(len(items)), id="decision-count", className="m-count")],
                    className="m-h2"),
            # the confirmation of a tap, naming the incident; it fades (assets/mobile.css), read out politely
            html.Div(id="mobile-message", className="m-message", role="status", **{"aria-live": "polite"}),
            html.Ul(decision_items(items, city, lang, tz), id="decision-list", className="m-list"),
        ], className="m-section"),
        html.Section([
            html.H2([tx("incidents", lang), html.Span(count_text(len(incidents), total), id="incident-count",
                                                       className="m-count")], className="m-h2"),
            html.Ul(incident_items(incidents, city, lang, tz), id="incident-list", className="m-incidents"),
        ], className="m-section"),
        dcc.Store(id="mobile-bump"),  # written by assets/mobile.js when a frame carries dispatch changes
        dcc.Store(id="mobile-refresh", data=0),  # bumped after each tap
        dcc.Store(id="mobile-digest", data=digest),  # what the lists show, so an unchanged list is not resent
        dcc.Interval(id="mobile-poll", interval=settings.get("poll_ms", 3000), disabled=True),  # gateway away
        *live_components(config, slim, view, now_ms),
    ], className="page page-mobile", id="mobile-page")
