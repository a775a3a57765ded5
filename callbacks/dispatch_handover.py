"""Run /dispatch's hand-up and hand-down: which buttons apply, the confirming dialogs, the write through
``dispatch.handover`` (as the API's), the outcome said in words."""

from __future__ import annotations

from typing import Annotated, Any

from dash import ALL, ClientsideFunction, Input, Output, State, ctx, no_update
from flask import current_app
from pydantic import Field, StrictStr
from sqlalchemy import select

from dashboard.core.errors import DomainError
from dashboard.core.i18n import error_text
from dashboard.dispatch import board as d
from dashboard.dispatch import desk as api
from dashboard.dispatch import handover
from dashboard.storage.incidents import involved
from dashboard.storage.models import incidents
from dashboard.web.auth import check_role, current_user
from dashboard.web.callback_guard import Lang, RowId, allow, validated
from layouts import dispatch as view
from layouts import dispatch_handover as hview

DistrictCode = Annotated[StrictStr, Field(min_length=1, max_length=16)]


def _svc():
    return current_app.extensions["panorama"]


def _lang(lang) -> str:
    return lang if lang in ("zh", "en") else "zh"


def _incident(selected) -> dict | None:
    """Return the selected incident's row (None when there is none, or the signed-in user may not read it)."""
    if selected is None:
        return None
    with _svc().engine.connect() as conn:
        if not api.may_see(conn, current_user(), int(selected)):
            return None
        row = conn.execute(select(incidents).where(incidents.c.id == int(selected))).mappings().first()
    return dict(row) if row is not None else None


def register_callbacks(app) -> None:
    """Register the hand-up and hand-down buttons' and dialogs' callbacks."""
    # page load (the address's incident), selected incident, live frame, fallback poll, a write -> which of the two
    # buttons the user may press now
    @allow(app, "dispatch")  # the page's; it answers two booleans, and reads only for those who may hand over
    @app.callback(Output("dispatch-handup-open", "disabled"), Output("dispatch-handdown-open", "disabled"),
                  Input("dispatch-selected", "data"), Input("dispatch-live", "data"),
                  Input("dispatch-pulse", "data"), Input("dispatch-refresh", "data"))
    @validated
    def handover_buttons(selected: RowId | None, _live: Any, _n: Any, _r: Any):
        user, svc = current_user(), _svc()
        if selected is None and ctx.triggered_id is None:  # drawn with nothing selected: both disabled already
            return no_update, no_update
        if selected is None or not check_role(user, "command") or svc.city.centres is None:
            return True, True
        with svc.engine.connect() as conn:
            allowed = api.may_see(conn, user, int(selected))
        inc = _incident(selected) if allowed else None
        if inc is None:
            return True, True
        return not handover.may_hand_up(user, inc), not handover.may_hand_down(user, inc, svc.city)

    _register_up(app)
    _register_down(app)


def _register_up(app) -> None:
    # "hand up" / cancel / confirm -> the dialog saying what confirming does, the hand-up itself
    @allow(app, "command")  # as POST /api/incidents/<id>/hand-up
    @app.callback(Output("handup-dialog", "hidden"), Output("handup-confirm", "children"),
                  Output("handup-note", "value"), Output("handup-message", "children"),
                  Output("dispatch-detail-message", "children", allow_duplicate=True),
                  Output("dispatch-refresh", "data", allow_duplicate=True),
                  Input("dispatch-handup-open", "n_clicks"), Input("handup-cancel", "n_clicks"),
                  Input("handup-submit", "n_clicks"),
                  State("dispatch-selected", "data"), State("handup-note", "value"),
                  State("dispatch-refresh", "data"), State("lang", "data"), prevent_initial_call=True)
    @validated
    def handup_dialog(_open: Any, _cancel: Any, _send: Any, selected: RowId | None, note: str | None,
                      bump: int | None, lang: Lang):
        svc, lang, user = _svc(), _lang(lang), current_user()
        keep = (no_update,) * 2
        if ctx.triggered_id == "handup-cancel" or selected is None:
            return True, "", "", "", *keep
        if not check_role(user, "command"):
            return no_update, no_update, no_update, view.tx("not_allowed", lang), *keep
        if ctx.triggered_id == "dispatch-handup-open":
            inc = _incident(selected)
            if inc is None:
                return no_update, no_update, no_update, error_text(d.NotFound(), lang), *keep
            return (False, hview.tx("up_confirm", lang, title=view.incident_name(inc, lang),
                                    centre=hview.centre_name(inc["centre"], svc.city, lang)), "", "", *keep)
        try:
            change = handover.do_hand_up(svc, user, int(selected), (note or "").strip() or None)
        except DomainError as err:
            return no_update, no_update, no_update, error_text(err, lang), no_update, (bump or 0) + 1
        said = hview.tx("up_ok", lang, title=view.incident_name(change.incident, lang))
        return True, "", "", "", said, (bump or 0) + 1


def _register_down(app) -> None:
    # "hand down" / cancel / confirm -> the dialog and the districts it offers, the hand-down itself
    @allow(app, "command")  # as POST /api/incidents/<id>/hand-down
    @app.callback(Output("handdown-dialog", "hidden"), Output("handdown-districts", "children"),
                  Output("handdown-choice", "data"), Output("handdown-note", "value"),
                  Output("handdown-message", "children"),
                  Output("dispatch-detail-message", "children", allow_duplicate=True),
                  Output("dispatch-refresh", "data", allow_duplicate=True),
                  Input("dispatch-handdown-open", "n_clicks"), Input("handdown-cancel", "n_clicks"),
                  Input("handdown-submit", "n_clicks"),
                  State("dispatch-selected", "data"), State("handdown-choice", "data"), State("handdown-note", "value"),
                  State("dispatch-refresh", "data"), State("lang", "data"), prevent_initial_call=True)
    @validated
    def handdown_dialog(_open: Any, _cancel: Any, _send: Any, selected: RowId | None, district: DistrictCode | None,
                        note: str | None, bump: int | None, lang: Lang):
        svc, lang, user = _svc(), _lang(lang), current_user()
        keep = (no_update,) * 2
        if ctx.triggered_id == "handdown-cancel" or selected is None:
            return True, no_update, None, "", "", *keep
        if not check_role(user, "command"):
            return no_update, no_update, no_update, no_update, view.tx("not_allowed", lang), *keep
        if ctx.triggered_id == "dispatch-handdown-open":
            inc = _incident(selected)
            if inc is None:
                return no_update, no_update, no_update, no_update, error_text(d.NotFound(), lang), *keep
            with svc.engine.connect() as conn:
                places = involved(conn, [inc["id"]]).get(inc["id"], {inc["district"]})
            # its own district first, then the others its reports are in; not the centre that runs it now
            codes = [c for c in sorted(places, key=lambda c: (c != inc["district"], c)) if c != inc["centre"]]
            items = hview.district_items(codes, svc.city, lang)
            return False, items, None, "", "" if items else hview.tx("down_none", lang), *keep
        if district is None:
            return no_update, no_update, no_update, no_update, hview.tx("down_pick", lang), *keep
        try:
            change = handover.do_hand_down(svc, user, int(selected), district, (note or "").strip() or None)
        except DomainError as err:
            return no_update, no_update, no_update, no_update, error_text(err, lang), no_update, (bump or 0) + 1
        said = hview.tx("down_ok", lang, title=view.incident_name(change.incident, lang),
                        centre=hview.centre_name(change.incident["centre"], svc.city, lang))
        return True, no_update, None, "", "", said, (bump or 0) + 1

    # a district chosen -> what confirming will do, in words; the confirm button usable
    @allow(app, "command")
    @app.callback(Output("handdown-confirm", "children"), Output("handdown-submit", "disabled"),
                  Input("handdown-choice", "data"), State("dispatch-selected", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def handdown_confirm(district: DistrictCode | None, selected: RowId | None, lang: Lang):
        lang, svc = _lang(lang), _svc()
        if district is None or selected is None:
            return hview.tx("down_pick", lang), True
        inc = _incident(selected)
        title = view.incident_name(inc, lang) if inc else ""
        return hview.tx("down_confirm", lang, title=title, centre=hview.centre_name(district, svc.city, lang)), False

    # a district clicked (or pressed by keyboard) -> the district chosen, as the server reads it; its aria-checked
    app.clientside_callback(ClientsideFunction(namespace="panorama", function_name="mergeChoice"),
                            Output("handdown-choice", "data", allow_duplicate=True),
                            Output({"type": "handdown-district", "index": ALL}, "aria-checked"),
                            Input({"type": "handdown-district", "index": ALL}, "n_clicks"),
                            State({"type": "handdown-district", "index": ALL}, "id"), prevent_initial_call=True)
