"""Run the /dispatch page: poll the queue and board, show an incident, dispatch, move and close, tick countdowns.

Every write checks the signed-in user's role on the server and goes through the same functions as the API.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from dash import ALL, Input, Output, State, ctx, no_update
from flask import current_app
from sqlalchemy import select

from dashboard import dispatch as d
from dashboard import dispatch_api as api
from dashboard.api import ApiError
from dashboard.auth import check_role, current_user
from dashboard.models import incidents, tasks
from feeds.pipeline import now_ms
from layouts import dispatch as view

# The browser only rewrites each countdown's text and colour; the server renders the deadlines.
TICK_JS = """
function (n) {
    const now = Date.now();
    document.querySelectorAll('#task-board .countdown').forEach(function (e) {
        const s = Math.round((Number(e.dataset.due) - now) / 1000), a = Math.abs(s);
        e.textContent = (s < 0 ? '-' : '') + Math.floor(a / 60) + ':' + String(a % 60).padStart(2, '0');
        e.classList.toggle('overdue', s < 0);
    });
    return window.dash_clientside.no_update;
}
"""


def _svc():
    return current_app.extensions["panorama"]


def _lang(lang) -> str:
    return lang if lang in ("zh", "en") else "zh"


def board_rows(conn, department: str | None) -> tuple[list[dict], dict]:
    """Return the tasks on the board (of incidents not closed, rerouted rejections left out) and their incidents."""
    stmt = (select(tasks).join(incidents, incidents.c.id == tasks.c.incident_id)
            .where(incidents.c.status.in_(list(api.ACTIVE)), tasks.c.state != "closed", ~tasks.c.rerouted)
            .order_by(tasks.c.id).limit(500))
    if department:
        stmt = stmt.where(tasks.c.department == department)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    ids = {r["incident_id"] for r in rows}
    incs = {r["id"]: dict(r) for r in conn.execute(select(incidents).where(incidents.c.id.in_(ids))).mappings()} \
        if ids else {}
    return rows, incs


def _clicked() -> dict | None:
    """Return the pattern id of the button really clicked (re-rendered buttons fire with n_clicks 0)."""
    if not ctx.triggered or not ctx.triggered[0].get("value"):
        return None
    return ctx.triggered_id if isinstance(ctx.triggered_id, dict) else None


def register_callbacks(app) -> None:
    """Register the /dispatch page's callbacks."""

    # ?department= in the address, or the liaison's own -> board filter
    @app.callback(Output("dispatch-department", "data"), Input("dispatch-url", "search"),
                  State("dispatch-department", "data"))
    def department_filter(search, current):
        wanted = (parse_qs((search or "").lstrip("?")).get("department") or [None])[0]
        return wanted or current

    # poll tick, a write, the filter -> incident queue and task board
    @app.callback(Output("incident-list", "children"), Output("task-board", "children"),
                  Input("dispatch-poll", "n_intervals"), Input("dispatch-refresh", "data"),
                  Input("dispatch-department", "data"), State("dispatch-selected", "data"), State("lang", "data"))
    def refresh(_n, _r, department, selected, lang):
        svc, lang, user = _svc(), _lang(lang), current_user()
        tz, now = svc.config["PANORAMA_TZ"], now_ms()
        with svc.engine.connect() as conn:
            queued = api.queue(conn)
            rows, incs = board_rows(conn, department)
        return (view.queue_items(queued, svc.city, lang, tz, selected),
                view.board_columns(rows, incs, svc.city, lang, now, lambda dep: api.may_move(user, dep)))

    # click on a queued incident -> selected incident
    @app.callback(Output("dispatch-selected", "data"),
                  Input({"type": "dispatch-incident", "index": ALL}, "n_clicks"), prevent_initial_call=True)
    def select_incident(_clicks):
        clicked = _clicked()
        return clicked["index"] if clicked else no_update

    # selected incident, poll tick, a write -> detail, and which buttons apply
    @app.callback(Output("dispatch-detail", "children"), Output("dispatch-open", "disabled"),
                  Output("dispatch-close-incident", "disabled"),
                  Input("dispatch-selected", "data"), Input("dispatch-poll", "n_intervals"),
                  Input("dispatch-refresh", "data"), State("lang", "data"))
    def show_detail(selected, _n, _r, lang):
        svc, lang = _svc(), _lang(lang)
        if selected is None:
            return view.detail_view(None, svc.city, lang), True, True
        try:
            with svc.engine.connect() as conn:
                doc = api.detail(conn, svc, int(selected), now_ms())
        except d.NotFound:
            return view.detail_view(None, svc.city, lang), True, True
        status = doc["incident"]["status"]
        return view.detail_view(doc, svc.city, lang), status in d.DONE, status != "resolved"

    # open / cancel / send -> the dialog, its suggested departments, the dispatch itself
    @app.callback(Output("dispatch-dialog", "hidden"), Output("dispatch-departments", "value"),
                  Output("dispatch-note", "value"), Output("dispatch-message", "children"),
                  Output("dispatch-refresh", "data"),
                  Input("dispatch-open", "n_clicks"), Input("dispatch-cancel", "n_clicks"),
                  Input("dispatch-submit", "n_clicks"),
                  State("dispatch-selected", "data"), State("dispatch-departments", "value"),
                  State("dispatch-note", "value"), State("dispatch-refresh", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    def dialog(_open, _cancel, _send, selected, departments, note, bump, lang):
        svc, lang, user = _svc(), _lang(lang), current_user()
        if ctx.triggered_id == "dispatch-cancel" or selected is None:
            return True, no_update, no_update, "", no_update
        if not check_role(user, "officer"):
            return no_update, no_update, no_update, view.tx("not_allowed", lang), no_update
        if ctx.triggered_id == "dispatch-open":
            with svc.engine.connect() as conn:
                doc = api.detail(conn, svc, int(selected), now_ms())
            ticked = (doc["suggestion"] or {}).get("departments", [])
            return False, ticked, "", "", no_update
        try:
            change = api.write(svc, d.dispatch, int(selected), departments or [], user.username, note or None,
                               now_ms(), svc.city.rules, svc.city)
        except d.DispatchError as err:
            return no_update, no_update, no_update, str(err), no_update
        return True, no_update, "", view.tx("dispatched_ok", lang, n=len(change.tasks)), (bump or 0) + 1

    # a task's action button -> transition (the role and department checked here) -> refresh
    @app.callback(Output("task-message", "children"), Output("dispatch-refresh", "data", allow_duplicate=True),
                  Input({"type": "task-action", "task": ALL, "to": ALL, "version": ALL}, "n_clicks"),
                  State("task-note", "value"), State("dispatch-refresh", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    def move(_clicks, note, bump, lang):
        clicked, lang, user = _clicked(), _lang(lang), current_user()
        if clicked is None:
            return no_update, no_update
        if user is None:
            return view.tx("signed_out", lang), no_update
        try:
            change = api.do_transition(_svc(), user, int(clicked["task"]), clicked["to"], int(clicked["version"]),
                                       (note or "").strip() or None)
        except ApiError as err:
            return err.message, (bump or 0) + 1
        except d.DispatchError as err:
            return str(err), (bump or 0) + 1
        return view.tx("moved_ok", lang, id=change.task["id"], to=view.state_label(change.task["state"], lang)), \
            (bump or 0) + 1

    # close button -> close the resolved incident -> refresh
    @app.callback(Output("dispatch-detail-message", "children"),
                  Output("dispatch-refresh", "data", allow_duplicate=True),
                  Input("dispatch-close-incident", "n_clicks"), State("dispatch-selected", "data"),
                  State("dispatch-refresh", "data"), State("lang", "data"), prevent_initial_call=True)
    def close(n, selected, bump, lang):
        svc, lang, user = _svc(), _lang(lang), current_user()
        if not n or selected is None:
            return no_update, no_update
        if not check_role(user, "officer"):
            return view.tx("not_allowed", lang), no_update
        try:
            api.write(svc, d.close_incident, int(selected), user.username, None, now_ms())
        except d.DispatchError as err:
            return str(err), (bump or 0) + 1
        return view.tx("closed_ok", lang), (bump or 0) + 1

    # every second -> countdown texts (in the browser)
    app.clientside_callback(TICK_JS, Output("dispatch-tick-out", "data"), Input("dispatch-tick", "n_intervals"))
