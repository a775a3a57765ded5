"""Lay out the major-incident mode: the command view of / and /wall, its card on /m, and the buttons that declare,
change the level of and stand down a major incident (/dispatch's detail, /m). Every title is text, never HTML."""

from __future__ import annotations

from dash import dcc, html

import json

from dashboard.core.i18n import actor_label, audit_text, district_name, kind_label, state_label, t
from dashboard.core.units import STATUSES as UNIT_STATUSES
from dashboard.dispatch.major import LEVELS, ROMAN
from dashboard.figures.major_map import make_major_map
from layouts.common import clock_text, unit_overlay
from layouts.dispatch import action_label, department_names
from layouts.procedure import checklist_view


REFRESH_MS = 5000  # the shown command view is read again this often while a major incident is active
GRAPH_CONFIG = {"displayModeBar": False, "scrollZoom": False, "doubleClick": False, "responsive": True}
WALL_CYCLE_TICKS = 3  # the wall moves to the next major incident every this many refreshes (15 s)
LIVE_STATES = ("dispatched", "acknowledged", "on_scene")


def major_components(page: str, settings: dict) -> list:
    """Return the slot the command view is drawn in and the stores that drive it (assets/live_major.js)."""
    return [
        html.Div(id="major-slot", className=f"major-slot major-slot-{page}"),
        dcc.Store(id="major-page", data={"page": page}),
        dcc.Store(id="major-bump"),  # written by assets/live_major.js when a frame changes the active majors
        dcc.Store(id="major-pin"),  # the incident the officer pinned on / (None: the gravest)
        dcc.Store(id="major-digest"),  # what the slot shows, so an unchanged view is not resent
        dcc.Interval(id="major-refresh", interval=REFRESH_MS, disabled=True),  # on while one is active
        dcc.Interval(id="major-poll", interval=settings.get("poll_ms", 3000), disabled=True),  # gateway away
    ]


def level_badge(level: int, lang: str) -> html.Span:
    """Return the level as a badge: I (the gravest) .. IV."""
    return html.Span(t("major_level", lang, level=ROMAN[level]), className=f"major-level major-level-{level}")


def countdown(due_ms: int, now_ms: int, which: str, lang: str) -> html.Span:
    """Return a deadline's countdown; the browser keeps it counting (assets/live_major.js reads ``data-due``)."""
    minutes = abs(due_ms - now_ms) // 60_000
    key = "major_due_left" if due_ms >= now_ms else "major_due_over"
    return html.Span(f"{t('major_due_' + which, lang)} {t(key, lang, m=minutes)}",
                     className="major-due" + (" major-over" if due_ms < now_ms else ""),
                     **{"data-due": str(due_ms), "data-what": t("major_due_" + which, lang),
                        "data-left": t("major_due_left", lang, m="{m}"), "data-over": t("major_due_over", lang, m="{m}")})


def _task_line(task: dict, now_ms: int, lang: str) -> html.Li:
    due = None
    if task["state"] == "dispatched":
        due = countdown(task["ack_due_ms"], now_ms, "ack", lang)
    elif task["state"] in LIVE_STATES:
        due = countdown(task["resolve_due_ms"], now_ms, "resolve", lang)
    return html.Li([html.Span(state_label(task["state"], lang, task=True), className=f"task-state state-{task['state']}"),
                    " ", due], className="major-task")


def km_text(km: float | None, lang: str) -> str:
    """Return a unit's straight-line distance to the scene in words (assets/live_units.js says it the same way)."""
    return t("major_unit_where", lang) if km is None else t("major_unit_km", lang, km=f"{km:.1f}")


def unit_line(unit: dict, lang: str) -> html.Li:
    """Return one unit sent: its status colour, name, status and straight-line distance; the browser keeps the
    status and distance current from the units' frames (``data-unit``, assets/live_units.js)."""
    name = (unit.get("name_en") if lang == "en" else unit.get("name")) or unit.get("name") or unit["unit"]
    status = unit["status"] if unit["status"] in UNIT_STATUSES else "available"
    return html.Li([html.Span(className=f"dot u-{status}"), html.Span(name, className="unit-name"), " ",
                    html.Span(t(f"unit_{status}", lang), className="unit-status"), " ",
                    html.Span(km_text(unit.get("km"), lang), className="unit-km")],
                   className=f"major-unit u-{status}", **{"data-unit": unit["unit"]})


def department_rows(groups: list[dict], names: dict, now_ms: int, lang: str) -> list:
    """Return the tasks per department: its name, then each task's state and countdown, then the units sent."""
    if not groups:
        return [html.Li(t("major_no_tasks", lang), className="muted")]
    return [html.Li([html.Span(names.get(g["department"], g["department"]), className="major-dep"),
                     html.Ul([_task_line(task, now_ms, lang) for task in g["tasks"]]),
                     html.Ul([unit_line(u, lang) for u in g["units"]], className="major-units",
                             **{"aria-label": t("major_units", lang)}) if g.get("units") else None],
                    className="major-dep-row")
            for g in groups]


def unit_words(doc: dict, lang: str) -> dict:
    """Return what assets/live_units.js needs to keep the units' lines current: the scene's place, the statuses and
    the distance in words (``{km}`` filled in there)."""
    return {"data-lat": str(doc["place"]["lat"]), "data-lon": str(doc["place"]["lon"]),
            "data-km": t("major_unit_km", lang, km="{km}"), "data-nokm": t("major_unit_where", lang),
            "data-statuses": json.dumps({s: t(f"unit_{s}", lang) for s in UNIT_STATUSES}, ensure_ascii=False)}


def event_rows(events: list[dict], tz: str, lang: str) -> list:
    """Return the live events in range, newest first, each title as text."""
    if not events:
        return [html.Li(t("major_no_events", lang), className="muted")]
    return [html.Li([html.Span(clock_text(e["ts_ms"], tz), className="t-time"), " ",
                     html.Span(e["title"] or kind_label(e["kind"], lang), className="t-title")],
                    className=f"major-event sev-{e['severity']}") for e in events]


def alert_rows(alerts: list[dict], lang: str) -> list:
    """Return the open alerts of the incident's district, each title as text."""
    if not alerts:
        return [html.Li(t("major_no_alerts", lang), className="muted")]
    return [html.Li(a["title_en"] if lang == "en" else a["title"], className=f"major-alert level-{a['level']}")
            for a in alerts]


def _districts(city, lang: str) -> dict[str, str]:
    return {code: district_name(x, lang) for code, x in city.by_code.items()}


def timeline_rows(history: list[dict], names: dict, tz: str, lang: str, districts: dict | None = None) -> list:
    """Return the incident's trail, newest first: when, who, what (codes and districts said in ``lang``), the note."""
    out = []
    for h in reversed(history):
        said = audit_text(h.get("code"), h.get("params"), lang, names, districts) or state_label(h["to_state"], lang,
                                                                                      bool(h["task_id"]))
        out.append(html.Li(f"{clock_text(h['at_ms'], tz)} {actor_label(h['actor'], lang)} · "
                           f"{action_label(h['action'], lang)}: {said}" + (f" — {h['note']}" if h["note"] else ""),
                           className="timeline-item"))
    return out


def switcher(majors: list[dict], shown_id: int, page: str, lang: str) -> html.Nav | None:
    """Return the list of the major incidents now (when more than one): buttons that pin one on /, a marker of
    the one shown on the wall (which cycles)."""
    if len(majors) < 2:
        return None
    items = []
    for m in majors:
        label = [level_badge(m["level"], lang), " ", m["incident"]["title"] or kind_label(m["incident"]["kind"], lang)]
        current = m["incident"]["id"] == shown_id
        items.append(html.Button(label, id={"major-pin": m["incident"]["id"]}, n_clicks=0, className="major-tab",
                                 **{"aria-pressed": "true" if current else "false"}) if page == "desk"
                     else html.Span(label, className="major-tab" + (" is-current" if current else "")))
    return html.Nav(items, className="major-tabs", **{"aria-label": t("major_all", lang)})


def command_view(doc: dict, majors: list[dict], city, lang: str, tz: str, page: str, now_ms: int) -> html.Section:
    """Return the command view of one major incident (component id ``major-view``, SPEC section 10)."""
    inc, names = doc["incident"], department_names(city, lang)
    district = city.by_code.get(inc["district"])
    theme = "dark" if page == "wall" else "light"
    title = inc["title"] or kind_label(inc["kind"], lang)
    head = html.Header([
        html.Div([level_badge(doc["level"], lang), html.Span(t("major_mode", lang), className="major-mode")],
                 className="major-badges"),
        html.H2(title, id="major-title", className="major-title"),
        html.P(" · ".join(x for x in (
            district_name(district, lang) if district else inc["district"], kind_label(inc["kind"], lang),
            t("major_declared_by", lang, who=doc["declared_by"], time=clock_text(doc["declared_ms"], tz, True)),
            t("major_radius", lang, km=f"{doc['radius_m'] / 1000:g}")
            + (t("major_place_approx", lang) if doc["place"]["approximate"] else "")) if x),
            className="major-sub"),
        switcher(majors, inc["id"], page, lang),
    ], className="major-head")
    figure = make_major_map(doc["place"], doc["radius_m"], doc["events"], city, lang, theme)
    return html.Section([
        head,
        html.Div([
            html.Section([html.H3(t("major_map", lang)),
                          dcc.Graph(id="major-map", figure=figure, config=GRAPH_CONFIG, responsive=True,
                                    className="major-map"),
                          # the units sent, over the map: drawn by assets/live_units.js from the frames
                          *unit_overlay(lang, "major-unit-layer")], className="panel major-map-panel"),
            html.Section([html.H3(t("major_tasks", lang)),
                          html.Ul(department_rows(doc["departments"], names, now_ms, lang), id="major-tasks",
                                  className="major-deps"),
                          checklist_view(doc.get("procedure") or [], inc["id"], names, lang, now_ms)],
                         className="panel major-tasks-panel"),
            html.Section([html.H3(t("major_events", lang, n=len(doc["events"]))),
                          html.Ul(event_rows(doc["events"], tz, lang), id="major-events", className="ticker")],
                         className="panel major-events-panel"),
            html.Section([html.H3(t("major_alerts", lang, n=len(doc["alerts"]))),
                          html.Ul(alert_rows(doc["alerts"], lang), id="major-alerts", className="major-alerts")],
                         className="panel major-alerts-panel"),
            html.Section([html.H3(t("major_timeline", lang)),
                          html.Ol(timeline_rows(doc["history"], names, tz, lang, _districts(city, lang)), id="major-timeline",
                                  className="timeline")], className="panel major-timeline-panel"),
        ], className="major-grid"),
    ], id="major-view", className=f"major-view major-{page}", **{"data-incident": str(inc["id"])},
        **unit_words(doc, lang))


def command_card(doc: dict, majors: list[dict], city, lang: str, tz: str, now_ms: int, controls=None) -> html.Section:
    """Return /m's command card (first on the page): level, title, place, the tasks per department, the newest
    timeline rows, and for the commander the buttons."""
    inc, names = doc["incident"], department_names(city, lang)
    district = city.by_code.get(inc["district"])
    others = [m for m in majors if m["incident"]["id"] != inc["id"]]
    return html.Section([
        html.Div([level_badge(doc["level"], lang), html.Span(t("major_mode", lang), className="major-mode")],
                 className="major-badges"),
        html.H2(inc["title"] or kind_label(inc["kind"], lang), id="major-card-title", className="major-title"),
        html.P(" · ".join(x for x in (district_name(district, lang) if district else inc["district"],
                                      t("major_declared_by", lang, who=doc["declared_by"],
                                        time=clock_text(doc["declared_ms"], tz)))), className="major-sub"),
        html.Ul(department_rows(doc["departments"], names, now_ms, lang), className="major-deps"),
        html.Ol(timeline_rows(doc["history"][-3:], names, tz, lang, _districts(city, lang)), className="timeline"),
        html.Ul([html.Li([level_badge(m["level"], lang), " ", m["incident"]["title"] or ""]) for m in others],
                className="major-others") if others else None,
        controls,
    ], id="major-card", className="major-card", **{"data-incident": str(inc["id"])})


def major_controls(incident_id: int, level: int | None, lang: str, message=None) -> list:
    """Return the buttons that declare (or change the level of) and stand down a major incident, each behind a
    confirmation (``level``: the level now, None when it is not a major incident)."""
    return [
        level_badge(level, lang) if level else None,  # the state, which outlives the outcome's message
        html.Label(t("major_pick", lang), htmlFor="major-pick", className="control-label"),
        dcc.Dropdown(id="major-pick", value=level or 2, clearable=False, searchable=False, className="major-pick",
                     options=[{"label": t(f"major_level_{n}", lang), "value": n} for n in LEVELS]),
        html.Button(t("major_change" if level else "major_declare", lang), id="major-declare", n_clicks=0,
                    className="btn btn-major"),
        html.Button(t("major_stand_down", lang), id="major-stand-down", n_clicks=0,
                    className="btn btn-stand-down") if level else None,
        dcc.ConfirmDialog(id="major-confirm-declare", message=t("major_confirm_declare", lang)),
        dcc.ConfirmDialog(id="major-confirm-stand-down", message=t("major_confirm_stand_down", lang)),
        dcc.Store(id="major-target", data={"incident": incident_id}),
        html.Div(message, id="major-message", className="major-message", role="status"),
    ]


def controls_box(incident_id: int, level: int | None, lang: str, message=None) -> html.Div:
    """Return the buttons in the box the declaring callback redraws (``major-controls``)."""
    return html.Div(major_controls(incident_id, level, lang, message), id="major-controls", className="major-controls")
