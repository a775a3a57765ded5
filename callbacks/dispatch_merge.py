"""Run /dispatch's merge and split dialogs: offer, confirm, write through the desk (as the API does), say the outcome.

Each dialog keeps the incident's version as it was when opened: a change made meanwhile (another officer's merge)
is refused as stale, and said so, rather than applied to an incident the officer has not seen.
"""

from __future__ import annotations

from typing import Annotated, Any

from dash import ALL, ClientsideFunction, Input, Output, State, ctx, no_update
from flask import current_app
from pydantic import Field, StrictInt, StrictStr
from sqlalchemy import select

from dashboard.core.errors import DomainError
from dashboard.core.i18n import error_text
from dashboard.dispatch import board as d
from dashboard.dispatch import desk as api
from dashboard.dispatch import merge
from dashboard.storage.models import incidents
from dashboard.web.auth import check_role, current_user
from dashboard.web.callback_guard import Lang, RowId, allow, validated
from layouts import dispatch as view
from layouts import dispatch_merge as mview

Ticked = Annotated[list[StrictStr], Field(max_length=200)]
Version = Annotated[StrictInt, Field(ge=0, le=2**31)]


def _svc():
    return current_app.extensions["panorama"]


def _lang(lang) -> str:
    return lang if lang in ("zh", "en") else "zh"


def _names(ids, lang: str) -> dict[int, str]:
    """Return how people name each incident of ``ids`` (its title, else its kind in words)."""
    with _svc().engine.connect() as conn:
        rows = conn.execute(select(incidents.c.id, incidents.c.title, incidents.c.kind, incidents.c.district)
                            .where(incidents.c.id.in_([i for i in ids if i is not None]))).mappings().all()
    scope = api.reader(current_user())  # a district centre's user: no name of another district's incident
    return {r["id"]: view.incident_name(dict(r), lang) for r in rows if scope.sees(r["district"])}


def _districts(city, lang: str) -> dict[str, str]:
    return {code: (x.name_en if lang == "en" else x.name) for code, x in city.by_code.items()}


def register_callbacks(app) -> None:
    """Register the merge and split dialogs' callbacks."""
    _register_merge(app)
    _register_split(app)


def _register_merge(app) -> None:
    # "merge into…" / cancel / confirm -> the dialog and the open incidents it offers, the merge itself
    @allow(app, "command")  # as POST /api/incidents/<id>/merge
    @app.callback(Output("merge-dialog", "hidden"), Output("merge-into", "children"), Output("merge-choice", "data"),
                  Output("merge-note", "value"), Output("merge-version", "data"), Output("merge-message", "children"),
                  Output("dispatch-detail-message", "children", allow_duplicate=True),
                  Output("dispatch-refresh", "data", allow_duplicate=True),
                  Output("dispatch-selected", "data", allow_duplicate=True),
                  Input("dispatch-merge-open", "n_clicks"), Input("merge-cancel", "n_clicks"),
                  Input("merge-submit", "n_clicks"),
                  State("dispatch-selected", "data"), State("merge-choice", "data"), State("merge-note", "value"),
                  State("merge-version", "data"), State("dispatch-refresh", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def merge_dialog(_open: Any, _cancel: Any, _send: Any, selected: RowId | None, into: RowId | None,
                     note: str | None, version: Version | None, bump: int | None, lang: Lang):
        svc, lang, user = _svc(), _lang(lang), current_user()
        keep = (no_update,) * 3
        if ctx.triggered_id == "merge-cancel" or selected is None:
            return True, no_update, None, "", None, "", *keep
        if not check_role(user, "command"):
            return no_update, no_update, no_update, no_update, no_update, view.tx("not_allowed", lang), *keep
        if ctx.triggered_id == "dispatch-merge-open":
            try:
                with svc.engine.connect() as conn:
                    if not api.may_see(conn, user, int(selected)):
                        raise d.NotFound(f"no incident {selected}")
                    doc = api.detail(conn, svc, int(selected), svc.clock())
                    # a district centre's user merges within their district: others' incidents are not offered
                    rows = [r for r in merge.merge_targets(conn, int(selected))
                            if api.reader(user).sees(r.get("district"))]
            except d.NotFound as err:
                return no_update, no_update, no_update, no_update, no_update, error_text(err, lang), *keep
            items = mview.target_items(rows, _districts(svc.city, lang), lang)
            return (False, items, None, "", doc["incident"]["version"], "" if items else mview.tx("merge_none", lang),
                    *keep)
        if into is None or version is None:
            return no_update, no_update, no_update, no_update, no_update, mview.tx("merge_pick", lang), *keep
        try:
            moved = api.do_merge(svc, user, int(selected), int(into), version, (note or "").strip() or None)
        except DomainError as err:
            return no_update, no_update, no_update, no_update, no_update, error_text(err, lang), no_update, \
                (bump or 0) + 1, no_update
        away, target = moved.incidents
        said = mview.tx("merged_ok", lang, a=view.incident_name(away, lang), b=view.incident_name(target, lang))
        # the officer follows the incident to where it went
        return True, no_update, None, "", None, "", said, (bump or 0) + 1, target["id"]

    # a target chosen -> what confirming will do, in words; the confirm button usable
    @allow(app, "command")
    @app.callback(Output("merge-confirm", "children"), Output("merge-submit", "disabled"),
                  Input("merge-choice", "data"), State("dispatch-selected", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def merge_confirm(into: RowId | None, selected: RowId | None, lang: Lang):
        lang = _lang(lang)
        if into is None or selected is None:
            return mview.tx("merge_pick", lang), True
        names = _names((selected, into), lang)
        return mview.tx("merge_confirm", lang, a=names.get(selected, ""), b=names.get(into, "")), False

    # a choice clicked (or pressed by keyboard) -> the incident chosen, as the server reads it; its aria-checked
    app.clientside_callback(ClientsideFunction(namespace="panorama", function_name="mergeChoice"),
                            Output("merge-choice", "data", allow_duplicate=True),
                            Output({"type": "merge-target", "index": ALL}, "aria-checked"),
                            Input({"type": "merge-target", "index": ALL}, "n_clicks"),
                            State({"type": "merge-target", "index": ALL}, "id"), prevent_initial_call=True)


def _register_split(app) -> None:
    # "split…" / cancel / confirm -> the dialog and the reports it offers, the split itself
    @allow(app, "command")  # as POST /api/incidents/<id>/split
    @app.callback(Output("split-dialog", "hidden"), Output("split-reports", "children"),
                  Output("split-ticked", "data"), Output("split-note", "value"), Output("split-version", "data"),
                  Output("split-message", "children"),
                  Output("dispatch-detail-message", "children", allow_duplicate=True),
                  Output("dispatch-refresh", "data", allow_duplicate=True),
                  Input("dispatch-split-open", "n_clicks"), Input("split-cancel", "n_clicks"),
                  Input("split-submit", "n_clicks"),
                  State("dispatch-selected", "data"), State("split-ticked", "data"), State("split-note", "value"),
                  State("split-version", "data"), State("dispatch-refresh", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def split_dialog(_open: Any, _cancel: Any, _send: Any, selected: RowId | None, ticked: Ticked | None,
                     note: str | None, seen: dict[str, Version] | None, bump: int | None, lang: Lang):
        svc, lang, user = _svc(), _lang(lang), current_user()
        keep = (no_update,) * 2
        if ctx.triggered_id == "split-cancel" or selected is None:
            return True, no_update, [], "", None, "", *keep
        if not check_role(user, "command"):
            return no_update, no_update, no_update, no_update, no_update, view.tx("not_allowed", lang), *keep
        if ctx.triggered_id == "dispatch-split-open":
            try:
                with svc.engine.connect() as conn:
                    if not api.may_see(conn, user, int(selected)):
                        raise d.NotFound(f"no incident {selected}")
                    doc = api.detail(conn, svc, int(selected), svc.clock())
            except d.NotFound as err:
                return no_update, no_update, no_update, no_update, no_update, error_text(err, lang), *keep
            items = mview.report_items(doc["reports"], lang)
            # the version seen, and how many reports were offered (a split moves some, not all)
            return False, items, [], "", {"version": doc["incident"]["version"], "reports": len(items)}, "", *keep
        version = (seen or {}).get("version")
        if not ticked or version is None:
            return no_update, no_update, no_update, no_update, no_update, mview.tx("split_pick", lang), *keep
        try:
            moved = api.do_split(svc, user, int(selected), ticked, version, (note or "").strip() or None)
        except DomainError as err:
            return no_update, no_update, no_update, no_update, no_update, error_text(err, lang), no_update, \
                (bump or 0) + 1
        new = moved.incidents[1]
        said = mview.tx("split_ok", lang, b=view.incident_name(new, lang), n=new["reports"])
        return True, no_update, [], "", None, "", said, (bump or 0) + 1

    # reports ticked -> what confirming will do, in words; the confirm button usable for some but not all
    @allow(app, "command")
    @app.callback(Output("split-confirm", "children"), Output("split-submit", "disabled"),
                  Input("split-ticked", "data"), State("split-version", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def split_confirm(ticked: Ticked | None, seen: dict[str, Version] | None, lang: Lang):
        lang, n, total = _lang(lang), len(ticked or []), (seen or {}).get("reports", 0)
        if not 0 < n < total:
            return mview.tx("split_pick", lang), True
        return mview.tx("split_confirm", lang, n=n), False

    # a report clicked (or pressed by keyboard) -> the reports ticked, as the server reads them; their aria-checked
    app.clientside_callback(ClientsideFunction(namespace="panorama", function_name="splitTicked"),
                            Output("split-ticked", "data", allow_duplicate=True),
                            Output({"type": "split-report", "index": ALL}, "aria-checked"),
                            Input({"type": "split-report", "index": ALL}, "n_clicks"),
                            State({"type": "split-report", "index": ALL}, "id"), prevent_initial_call=True)
