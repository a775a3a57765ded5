"""Run the /dispatch page: live queue and board, an incident's detail and map, dispatch, move and close, countdowns.

The page takes its updates from the gateway (``assets/dispatch_live.js`` turns frames that carry incidents,
tasks or escalations into ``dispatch-live``); it polls only while that connection is down (``dispatch-pulse``).
Neither fires the page's callbacks again while what they draw is on its way: that would drop the answer. Every write checks
the signed-in user's role on the server and goes through the same functions as the API.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal
from urllib.parse import parse_qs

import orjson
from dash import ALL, ClientsideFunction, Input, Output, State, ctx, no_update
from flask import current_app
from pydantic import BaseModel, Field, StrictStr
from sqlalchemy import select

from dashboard.dispatch import board as d
from dashboard.core.errors import DomainError
from dashboard.core.i18n import error_text, t
from dashboard.dispatch import desk as api
from dashboard.dispatch import units as fleet
from dashboard.storage import units as unit_store
from dashboard.web.auth import check_role, current_user
from dashboard.web.callback_guard import Lang, RowId, allow, parse, validated
from dashboard.storage.models import incidents
from callbacks import dispatch_handover, dispatch_merge
from layouts import dispatch as view
from layouts.major import controls_box
from layouts.procedure import checklist_view
from dashboard.dispatch import procedure

# The browser only rewrites each countdown's text and colour; the server renders the deadlines. It counts
# down from the time left when the server rendered the card, not from the device's own clock, which may be
# minutes off (a phone, a desktop without NTP): the first tick that sees a card notes when it did.
TICK_JS = """
function (n) {
    const now = Date.now();
    document.querySelectorAll('#task-board .countdown').forEach(function (e) {
        if (!e.dataset.seen) e.dataset.seen = String(now);
        const left = Number(e.dataset.left) - (now - Number(e.dataset.seen));
        const s = Math.round(left / 1000), a = Math.abs(s);
        const mmss = String(Math.floor(a % 3600 / 60)).padStart(a >= 3600 ? 2 : 1, '0') + ':'
            + String(a % 60).padStart(2, '0');
        e.textContent = (s < 0 ? '-' : '') + (a >= 3600 ? Math.floor(a / 3600) + ':' : '') + mmss;
        e.classList.toggle('overdue', s < 0);
    });
    return window.dash_clientside.no_update;
}
"""
ESCALATIONS_SHOWN = 5
Shown = dict[str, str] | None  # fingerprints of what the page shows


class IncidentButton(BaseModel):
    """The id of an incident in the queue."""

    index: RowId


class TaskButton(BaseModel):
    """The id of a task's action button: the task, the state it moves to, the version shown."""

    task: RowId
    to: StrictStr = Field(max_length=32)
    version: int = Field(ge=0, le=2**31)


class ResolveForButton(BaseModel):
    """The id of a task's "record resolution" button: the task and the version shown."""

    type: Literal["task-resolve-for"]
    task: RowId
    version: int = Field(ge=0, le=2**31)


def _svc():
    return current_app.extensions["panorama"]


def _lang(lang) -> str:
    return lang if lang in ("zh", "en") else "zh"


def fingerprint(*parts) -> str:
    """Return a short digest of what a part of the page is drawn from."""
    return hashlib.blake2b(orjson.dumps(parts, option=orjson.OPT_NON_STR_KEYS), digest_size=12).hexdigest()


def board_rows(conn, department: str | None, incident_id: int | None = None,
               district: str | None = None) -> tuple[list[dict], dict]:
    """Return the tasks on the board (of incidents not closed, rerouted rejections left out) and their incidents;
    with ``incident_id``, only that incident's; with ``district``, only its incidents'."""
    stmt = api.board_statement(department, incident_id, district).limit(500)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    ids = {r["incident_id"] for r in rows}
    incs = {r["id"]: dict(r) for r in conn.execute(select(incidents).where(incidents.c.id.in_(ids))).mappings()} \
        if ids else {}
    return rows, incs


def board_incident(scope: str | None, selected: int | None) -> int | None:
    """Return the incident the board is limited to: the selected one, unless the officer switched to all."""
    return selected if scope != "all" else None


def board_department(user, wanted: str | None) -> str | None:
    """Return the department the board shows: a liaison's own whatever was asked, else the one asked (None: all)."""
    own = api.scope(user)
    return own if own is not None else wanted


def _clicked() -> dict | None:
    """Return the pattern id of the button really clicked (re-rendered buttons fire with n_clicks 0)."""
    if not ctx.triggered or not ctx.triggered[0].get("value"):
        return None
    return ctx.triggered_id if isinstance(ctx.triggered_id, dict) else None


def major_box(doc: dict | None, user, lang: str):
    """Return the buttons that declare, change the level of and stand down a major incident: for an officer or a
    commander, on an incident not yet resolved (or one still declared, to stand it down)."""
    if doc is None or not check_role(user, "command"):
        return None
    level = (doc.get("major") or {}).get("level")
    if level is None and doc["incident"]["status"] in d.DONE:
        return None
    return controls_box(doc["incident"]["id"], level, lang)


def _live_touches(live: dict | None, incident_id) -> bool:
    """Tell whether the frames behind a ``dispatch-live`` update may have changed ``incident_id``."""
    if not live or not isinstance(live.get("incidents"), list):
        return True
    return bool(live.get("snapshot")) or incident_id in live["incidents"]


def register_callbacks(app) -> None:
    """Register the /dispatch page's callbacks: the board, the selected incident's detail, the actions."""
    _register_board(app)
    _register_detail(app)
    _register_actions(app)
    dispatch_merge.register_callbacks(app)
    dispatch_handover.register_callbacks(app)


def _register_board(app) -> None:
    """The queue and the task board: filter, refresh (live, polled, after a write), selection, countdowns."""
    # ?department= in the address -> board filter and its note (a liaison's stays their own). The shell's url: a
    # Location of the page's own would mount with each page and, setting its props from the address a moment
    # later, push back an address changed meanwhile (the ?incident= a page with none to show drops).
    @allow(app, "dispatch")
    @app.callback(Output("dispatch-department", "data"), Output("board-filter", "children"),
                  Input("url", "search"), State("dispatch-department", "data"), State("lang", "data"))
    @validated
    def department_filter(search: str | None, current: str | None, lang: Lang):
        wanted = (parse_qs((search or "").lstrip("?")).get("department") or [None])[0]
        department, lang = board_department(current_user(), wanted or current), _lang(lang)
        if ctx.triggered_id is not None and department == current:  # another part of the address changed
            return no_update, no_update
        if department is None:
            return None, view.tx("all_departments", lang)
        name = view.department_names(_svc().city, lang).get(department, department)
        return department, view.tx("filtered", lang, dep=name)

    # live frame, fallback poll, a write, the filter, a selection -> incident queue and task board (when changed)
    @allow(app, "dispatch")
    @app.callback(Output("incident-list", "children"), Output("incident-rest", "children"),
                  Output("task-board", "children"), Output("dispatch-shown", "data"),
                  Input("dispatch-live", "data"), Input("dispatch-pulse", "data"),
                  Input("dispatch-refresh", "data"), Input("dispatch-department", "data"),
                  Input("dispatch-selected", "data"), Input("board-scope", "value"), State("dispatch-shown", "data"),
                  State("lang", "data"))
    @validated
    def refresh(_live: Any, _n: Any, _r: Any, department: str | None, selected: RowId | None,
                board_scope: Literal["incident", "all"] | None, shown: Shown, lang: Lang):
        svc, lang, user = _svc(), _lang(lang), current_user()
        if not check_role(user, "dispatch"):  # callbacks answer anyone who asks: the page's rule again
            return no_update, no_update, no_update, no_update
        tz, now = svc.config["PANORAMA_TZ"], svc.clock()
        department = board_department(user, department)
        with svc.engine.connect() as conn:
            own = api.reader(user).district  # a district centre's user: their district's queue and board
            # its own incidents (the ones its centre runs) first
            queued = api.queue(conn, department=api.scope(user), district=own, first=own)
            total = api.queue_total(conn, queued, department=api.scope(user), district=own)
            rows, incs = board_rows(conn, department, board_incident(board_scope, selected), own)
            # an officer records a resolution on behalf of a department only when it has nobody on the system
            staffed = d.staffed_departments(conn) if check_role(user, "officer") else None
        shown = dict(shown or {})
        # Redrawn only when its data changed: a redraw replaces the buttons, and a click on a replaced one is lost.
        queue_key = fingerprint(lang, selected, queued, total)
        board_key = fingerprint(lang, department, user.username if user else None, rows,
                                {k: (v["title"], v["kind"]) for k, v in incs.items()}, sorted(staffed or ()))
        queue_out = rest_out = board_out = no_update
        if shown.get("queue") != queue_key:
            queue_out, shown["queue"] = view.queue_items(queued, svc.city, lang, tz, selected), queue_key
            rest_out = view.queue_rest(len(queued), total, lang)
        if shown.get("board") != board_key:
            board_out = view.board_columns(rows, incs, svc.city, lang, now, lambda dep: api.may_move(user, dep),
                                           lambda dep: staffed is not None and dep not in staffed)
            shown["board"] = board_key
        if queue_out is no_update and board_out is no_update:
            return no_update, no_update, no_update, no_update
        return queue_out, rest_out, board_out, shown

    # selected incident -> the address's ?incident=, which the shell's url then reads (in the browser; the router
    # draws the page anew from it on a language switch, render() below reads it)
    app.clientside_callback(ClientsideFunction(namespace="panorama", function_name="dispatchUrl"),
                            Output("dispatch-address", "data"), Input("dispatch-selected", "data"))

    # click on a queued incident -> selected incident; a click on the one selected already changes nothing (set
    # again, it would fire the detail's callback anew and drop the answer on its way: clicked again and again
    # while a loaded server draws it, the detail never came)
    @allow(app, "dispatch")
    @app.callback(Output("dispatch-selected", "data"),
                  Input({"type": "dispatch-incident", "index": ALL}, "n_clicks"), State("dispatch-selected", "data"),
                  prevent_initial_call=True)
    def select_incident(_clicks, current):
        clicked = _clicked()
        if not clicked:
            return no_update
        index = parse(IncidentButton, clicked).index
        return no_update if index == current else index

    # connection mode -> the fallback poll runs only while the gateway connection is not live
    app.clientside_callback(ClientsideFunction(namespace="panorama", function_name="dispatchPoll"),
                            Output("dispatch-poll", "disabled"), Input("live-conn", "data"))

    # the poll's tick -> the pulse the server's callbacks take, skipped while what they draw is on its way (a new
    # call of a callback drops the answer of the one before: assets/dispatch_live.js)
    app.clientside_callback(ClientsideFunction(namespace="panorama", function_name="dispatchPulse"),
                            Output("dispatch-pulse", "data"), Input("dispatch-poll", "n_intervals"),
                            prevent_initial_call=True)

    # every second -> countdown texts (in the browser)
    app.clientside_callback(TICK_JS, Output("dispatch-tick-out", "data"), Input("dispatch-tick", "n_intervals"))


def _register_detail(app) -> None:
    """The selected incident: its detail and map, and the escalations notice."""
    # page load (the address's incident), selected incident, live frame about it, fallback poll, a write -> detail,
    # map, which buttons apply
    @allow(app, "dispatch")
    @app.callback(Output("dispatch-detail", "children"), Output("dispatch-open", "disabled"),
                  Output("dispatch-close-incident", "disabled"), Output("dispatch-close-why", "children"),
                  Output("dispatch-map", "figure"),
                  Output("dispatch-map-note", "children"), Output("dispatch-shown-detail", "data"),
                  Output("dispatch-merge-open", "disabled"), Output("dispatch-split-open", "disabled"),
                  Input("dispatch-selected", "data"), Input("dispatch-live", "data"),
                  Input("dispatch-pulse", "data"), Input("dispatch-refresh", "data"),
                  State("dispatch-shown-detail", "data"), State("lang", "data"))
    @validated
    def show_detail(selected: RowId | None, live: dict[str, Any] | None, _n: Any, _r: Any, shown: Shown, lang: Lang):
        svc, lang, user = _svc(), _lang(lang), current_user()
        if selected is None and ctx.triggered_id is None:  # drawn with nothing selected: the layout shows that
            return (no_update,) * 9
        shown = dict(shown or {})
        # A frame about other incidents changes nothing here -- once the selected incident is the one shown. Dash
        # drops the older answer when the same callback fires again before it returns; frames and poll ticks wait
        # while this one is on its way (assets/dispatch_live.js), else on a loaded machine every answer was dropped
        # for the next frame's and the detail never showed the incident picked (issue 15). A selection's call can
        # still be superseded by a later one (a frame held past HOLD_MS, a write): that call must draw the selection.
        if not check_role(user, "dispatch") or (ctx.triggered_id == "dispatch-live" and not _live_touches(
                live, selected) and shown.get("incident") == str(selected)):
            return (no_update,) * 9
        doc = None
        if selected is not None:
            try:
                with svc.engine.connect() as conn:
                    if api.may_see(conn, user, int(selected)):
                        doc = api.detail(conn, svc, int(selected), svc.clock())
            except d.NotFound:
                doc = None
        shown["incident"] = str(selected)  # (the store holds strings)
        sug = (doc or {}).get("suggestion") or {}
        # the suggestion's deadlines move with the clock: only what it names counts as a change
        key = fingerprint(lang, doc and {**doc, "suggestion": [sug.get("rule"), sug.get("departments")]})
        if shown.get("detail") == key:
            return (no_update,) * 9
        shown["detail"] = key
        status = doc["incident"]["status"] if doc else None
        fig = view.incident_map(doc, svc.city, lang)
        note = view.tx("map_approximate", lang) if fig.layout.meta["approximate"] else ""
        map_key = fingerprint(lang, doc and [doc["incident"]["id"], doc["incident"]["lat"], doc["incident"]["lon"],
                                             [(r["lat"], r["lon"], r["title"]) for r in doc["reports"]]])
        fig_out = no_update if shown.get("map") == map_key else fig
        shown["map"] = map_key
        steps = checklist_view((doc or {}).get("procedure") or [], (doc or {}).get("incident", {}).get("id", 0),
                               view.department_names(svc.city, lang), lang, svc.clock(),
                               lambda dep: procedure.may_tick(user, dep)) if doc else None
        # merge and split: an open incident only; a split needs two reports at least (it moves some, not all)
        mergeable = doc is not None and status not in d.DONE
        return (view.detail_view(doc, svc.city, lang, major_box(doc, user, lang), steps),
                doc is None or status in d.DONE, status != "resolved",
                view.close_why(doc, svc.city, lang), fig_out, note, shown, not mergeable,
                not mergeable or len({r["id"] for r in doc["reports"]}) < 2)

    # page load, live frame, fallback poll, a write -> the escalated tasks not yet resolved, named (read from the
    # server, so a reload shows the same and a resolved or closed one is gone; a liaison: their department's only)
    @allow(app, "dispatch")
    @app.callback(Output("dispatch-escalations", "children"), Input("dispatch-live", "data"),
                  Input("dispatch-pulse", "data"), Input("dispatch-refresh", "data"), State("lang", "data"))
    @validated
    def escalations(_live: Any, _n: Any, _r: Any, lang: Lang):
        svc, lang, user = _svc(), _lang(lang), current_user()
        if not check_role(user, "dispatch"):
            return no_update
        with svc.engine.connect() as conn:
            rows = api.open_escalations(conn, api.scope(user), limit=ESCALATIONS_SHOWN,
                                        district=api.reader(user).district)
        return view.escalation_items(rows, svc.city, lang)


def _send_units(svc, user, incident_id: int, unit_ids: list[str]) -> int:
    """Send the units ticked in the dialog, each to its department's live task of the incident; return how many."""
    if not unit_ids:
        return 0
    with svc.engine.connect() as conn:
        deps = {r["unit"]: r["department"] for r in unit_store.list_units(conn, unit_ids=unit_ids[:50])}
        live = {t["department"]: t["id"] for t in d.list_tasks(conn, incident_id=incident_id) if t["state"] in d.LIVE}
    by_task: dict[int, list[str]] = {}
    for unit, dep in deps.items():
        if dep in live:
            by_task.setdefault(live[dep], []).append(unit)
    return sum(len(fleet.do_assign(svc, user, task_id, ids)) for task_id, ids in by_task.items())


def _register_actions(app) -> None:
    """What an officer or a liaison does: dispatch (the dialog), move a task, close an incident."""
    # open / cancel / send -> the dialog, its suggested departments, the dispatch itself
    @allow(app, "officer")  # as POST /api/incidents/<id>/dispatch
    @app.callback(Output("dispatch-dialog", "hidden"), Output("dispatch-departments", "value"),
                  Output("dispatch-departments", "options"),
                  Output("dispatch-note", "value"), Output("dispatch-message", "children"),
                  Output("dispatch-refresh", "data"),
                  Input("dispatch-open", "n_clicks"), Input("dispatch-cancel", "n_clicks"),
                  Input("dispatch-submit", "n_clicks"),
                  State("dispatch-selected", "data"), State("dispatch-departments", "value"),
                  State("dispatch-note", "value"), State("dispatch-refresh", "data"), State("lang", "data"),
                  State("dispatch-units", "value"),
                  prevent_initial_call=True)
    @validated
    def dialog(_open: Any, _cancel: Any, _send: Any, selected: RowId | None,
               departments: list[StrictStr] | None, note: str | None, bump: int | None, lang: Lang,
               units: list[StrictStr] | None = None):
        svc, lang, user = _svc(), _lang(lang), current_user()
        if ctx.triggered_id == "dispatch-cancel" or selected is None:
            return True, no_update, no_update, no_update, "", no_update
        if not check_role(user, "officer"):
            return no_update, no_update, no_update, no_update, view.tx("not_allowed", lang), no_update
        if ctx.triggered_id == "dispatch-open":
            try:
                with svc.engine.connect() as conn:
                    if not api.may_see(conn, user, int(selected)):  # another district's: as if there were none
                        raise d.NotFound(f"no incident {selected}")
                    doc = api.detail(conn, svc, int(selected), svc.clock())
            except d.NotFound as err:
                return no_update, no_update, no_update, no_update, error_text(err, lang), no_update
            ticked = (doc["suggestion"] or {}).get("departments", [])
            return (False, ticked, view.dialog_options(svc.city, lang, doc["incident"]["district"]), "", "",
                    no_update)
        try:
            change = api.write(svc, d.dispatch, int(selected), departments or [], user.username, note or None,
                               svc.clock(), svc.city.rules, svc.city, user=user)
        except d.DispatchError as err:
            return no_update, no_update, no_update, no_update, error_text(err, lang), no_update
        said = view.tx("dispatched_ok", lang, n=len(change.tasks), title=view.incident_name(change.incident, lang))
        try:
            sent = _send_units(svc, user, int(selected), units or [])
        except DomainError as err:  # dispatched; the units were refused (one went off duty meanwhile)
            return True, no_update, no_update, "", f"{said} {error_text(err, lang)}", (bump or 0) + 1
        if sent:
            said = f"{said} {t('units_sent', lang, n=sent)}"
        return True, no_update, no_update, "", said, (bump or 0) + 1

    # the departments ticked -> the nearest available units of each, to tick too (straight-line distance)
    @allow(app, "officer")  # as the dialog itself
    @app.callback(Output("dispatch-units", "options"), Output("dispatch-units", "value"),
                  Input("dispatch-departments", "value"), State("dispatch-selected", "data"),
                  State("lang", "data"), prevent_initial_call=True)
    @validated
    def unit_suggestions(departments: list[StrictStr] | None, selected: RowId | None, lang: Lang):
        svc, lang = _svc(), _lang(lang)
        if selected is None or not departments:
            return [], []
        with svc.engine.connect() as conn:
            place = conn.execute(select(incidents.c.lat, incidents.c.lon)
                                 .where(incidents.c.id == int(selected))).first()
            if place is None or not api.may_see(conn, current_user(), int(selected)):
                return [], []
            own = api.reader(current_user()).district  # a district centre's officer: their district's units
            suggested = {dep: fleet.nearest(conn, dep, place.lat, place.lon, limit=3, district=own)
                         for dep in departments[:20]}
        return view.unit_options(suggested, svc.city, lang), []

    # a task's action button -> transition (the role and department checked here) -> refresh;
    # "record resolution" -> resolved on behalf of a department with nobody here (an officer's, checked there)
    @allow(app, "dispatch")  # as POST /api/tasks/<id>/transition and /resolve_for
    @app.callback(Output("task-message", "children"), Output("dispatch-refresh", "data", allow_duplicate=True),
                  Input({"type": "task-action", "task": ALL, "to": ALL, "version": ALL}, "n_clicks"),
                  Input({"type": "task-resolve-for", "task": ALL, "version": ALL}, "n_clicks"),
                  State("task-note", "value"), State("dispatch-refresh", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def move(_clicks: Any, _for_clicks: Any, note: str | None, bump: int | None, lang: Lang):
        clicked, lang, user = _clicked(), _lang(lang), current_user()
        if clicked is None:
            return no_update, no_update
        if user is None:
            return view.tx("signed_out", lang), no_update
        if clicked.get("type") == "task-resolve-for":
            return _resolve_for(parse(ResolveForButton, clicked), user, note, bump, lang)
        clicked = parse(TaskButton, clicked).model_dump()
        try:
            change = api.do_transition(_svc(), user, int(clicked["task"]), clicked["to"], int(clicked["version"]),
                                       (note or "").strip() or None)
        except DomainError as err:
            return error_text(err, lang), (bump or 0) + 1
        dep = change.task["department"]
        return view.tx("moved_ok", lang, title=view.incident_name(change.incident, lang),
                       dep=view.department_names(_svc().city, lang).get(dep, dep),
                       to=view.state_label(change.task["state"], lang, task=True)), (bump or 0) + 1

    # close button -> close the resolved incident -> refresh
    @allow(app, "officer")  # as POST /api/incidents/<id>/close
    @app.callback(Output("dispatch-detail-message", "children"),
                  Output("dispatch-refresh", "data", allow_duplicate=True),
                  Input("dispatch-close-incident", "n_clicks"), State("dispatch-selected", "data"),
                  State("dispatch-refresh", "data"), State("lang", "data"), prevent_initial_call=True)
    @validated
    def close(n: Any, selected: RowId | None, bump: int | None, lang: Lang):
        svc, lang, user = _svc(), _lang(lang), current_user()
        if not n or selected is None:
            return no_update, no_update
        if not check_role(user, "officer"):
            return view.tx("not_allowed", lang), no_update
        try:
            change = api.write(svc, d.close_incident, int(selected), user.username, None, svc.clock(), user=user)
        except d.DispatchError as err:
            return error_text(err, lang), (bump or 0) + 1
        return view.tx("closed_ok", lang, title=view.incident_name(change.incident, lang)), (bump or 0) + 1


def _resolve_for(button: "ResolveForButton", user, note: str | None, bump: int | None, lang: str):
    """Record a department's resolution on its behalf for ``user`` (refused unless an officer); say what happened."""
    svc = _svc()
    try:
        change = api.do_resolve_for(svc, user, button.task, button.version, (note or "").strip() or None)
    except DomainError as err:
        return error_text(err, lang), (bump or 0) + 1
    dep = change.task["department"]
    name = view.department_names(svc.city, lang).get(dep, dep)
    return view.tx("resolved_for_ok", lang, dep=name, title=view.incident_name(change.incident, lang)), (bump or 0) + 1


def asked_incident(svc, user, search: str | None) -> int | None:
    """Return the incident the address asks for (``?incident=<id>``) when ``user`` may read it, else None: one of
    another district or department is as absent as one that never was, and anything but an id is no incident."""
    asked = (parse_qs((search or "").lstrip("?")).get("incident") or [""])[-1]
    if not asked.isascii() or not asked.isdigit() or not 1 <= int(asked) <= 2**63 - 1:
        return None
    with svc.engine.connect() as conn:
        exists = conn.execute(select(incidents.c.id).where(incidents.c.id == int(asked))).first() is not None
        return int(asked) if exists and api.may_see(conn, user, int(asked)) else None


def render(req):
    """Return /dispatch for the signed-in user (a liaison: their department's board), open on the incident the
    address names when they may read it, the board on the department it names."""
    user = current_user()
    selected = asked_incident(req.svc, user, req.search) if check_role(user, "dispatch") else None
    wanted = (parse_qs((req.search or "").lstrip("?")).get("department") or [None])[0]
    return view.dispatch_layout(req.lang, user, city=req.svc.city, poll_ms=req.svc.config["PANORAMA_POLL_MS"],
                                selected=selected, department=board_department(user, wanted))
