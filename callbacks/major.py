"""Run the major-incident mode on the pages: the command view of / and /wall and /m's card (redrawn when the
gateway says the active majors changed, and every few seconds while one is), and the buttons that declare,
change the level of and stand down one (/dispatch's detail, /m) through the API's own functions.

Reads are every viewer's and a kiosk wall's (as ``GET /api/major``); writes the officer's and the commander's
(as ``POST``/``DELETE /api/incidents/<id>/major``).
"""

from __future__ import annotations

import logging
from typing import Any

from dash import ALL, ClientsideFunction, Input, Output, State, ctx, no_update
from flask import current_app
from pydantic import BaseModel, Field, StrictInt, StrictStr
from sqlalchemy.exc import SQLAlchemyError

from dashboard.core.errors import DomainError
from dashboard.core.i18n import error_text, t
from dashboard.core.roles import check_role
from dashboard.dispatch import command, major
from dashboard.dispatch.desk import do_declare, do_stand_down, may_see, scope
from dashboard.web.auth import current_user, may_watch, reader_scope
from dashboard.web.callback_guard import Count, Lang, allow, validated
from callbacks.dispatch import fingerprint
from layouts.major import WALL_CYCLE_TICKS, command_card, command_view, controls_box

log = logging.getLogger(__name__)


class SlotPage(BaseModel):
    """The page the slot is on (its ``major-page`` store)."""

    page: StrictStr = Field(pattern="^(desk|wall|mobile)$")


class Target(BaseModel):
    """The incident the buttons act on (their ``major-target`` store)."""

    incident: StrictInt = Field(ge=1, le=2**63 - 1)


def _lang(lang) -> str:
    return lang if lang in ("zh", "en") else "zh"


def pick_shown(declared: list[dict], page: str, pinned: int | None, ticks: int) -> dict:
    """Return the declaration a screen shows: the one pinned on /, else on the wall each in turn, else the
    gravest (the list is gravest first)."""
    if page == "desk" and pinned is not None:
        for row in declared:
            if row["incident_id"] == pinned:
                return row
    if page == "wall":
        return declared[(ticks // WALL_CYCLE_TICKS) % len(declared)]
    return declared[0]


def draw(svc, page: str, pinned: int | None, ticks: int, lang: str, user) -> tuple[Any, str]:
    """Return what the slot shows now (nothing in peacetime) and its fingerprint."""
    tz, now = svc.config["PANORAMA_TZ"], svc.clock()
    with svc.engine.connect() as conn:  # the primary: a declaration just made must show
        # a district centre's user or wall: the major incidents of their district only (as GET /api/major)
        declared = reader_scope().majors(major.active(conn))
        if not declared:
            return [], fingerprint("peace")
        shown = pick_shown(declared, page, pinned, ticks)
        doc = scoped(conn, user, command.command_doc(conn, svc.city, shown, now, tz))
    majors = [major_brief(r) for r in declared]
    key = fingerprint(lang, page, majors, doc, page == "mobile" and check_role(user, "command"))
    if page == "mobile":
        controls = controls_box(shown["incident_id"], shown["level"], lang) if check_role(user, "command") else None
        return command_card(doc, majors, svc.city, lang, tz, now, controls), key
    return command_view(doc, majors, svc.city, lang, tz, page, now), key


def scoped(conn, user, doc: dict) -> dict:
    """Return the command view as ``user`` may read it: a liaison only their own department's tasks and steps, and
    the trail only of an incident their department holds a task of (as ``GET /api/incidents/<id>``)."""
    department = scope(user)
    if department is None:
        return doc
    return {**doc, "departments": [g for g in doc["departments"] if g["department"] == department],
            "procedure": [s for s in doc["procedure"] if s["department"] == department],
            "history": doc["history"] if may_see(conn, user, doc["incident"]["id"]) else []}


def major_brief(row: dict) -> dict:
    """Return what the switcher needs of one declaration."""
    inc = row["incident"]
    return {"level": row["level"], "incident": {"id": inc["id"], "title": inc["title"], "kind": inc["kind"]}}


def register_callbacks(app) -> None:
    """Register the command view's, the card's and the buttons' callbacks."""

    # page load, a frame that changed the majors, the refresh while one is active, a poll, a pin -> the slot
    @allow(app, public=True)  # a kiosk wall holds no session: may_watch() admits a viewer or a live kiosk token
    @app.callback(Output("major-slot", "children"), Output("major-refresh", "disabled"),
                  Output("major-digest", "data"),
                  Input("major-bump", "data"), Input("major-refresh", "n_intervals"),
                  Input("major-poll", "n_intervals"), Input("major-pin", "data"),
                  State("major-page", "data"), State("major-digest", "data"), State("lang", "data"))
    @validated
    def slot(_bump: Any, ticks: Count | None, _poll: Any, pinned: StrictInt | None, view: SlotPage | None,
             seen: Any, lang: Lang):
        if view is None or not may_watch():
            return no_update, no_update, no_update
        svc = current_app.extensions["panorama"]
        try:
            children, key = draw(svc, view.page, pinned, ticks or 0, _lang(lang), current_user())
        except SQLAlchemyError:
            log.warning("major incidents unavailable", exc_info=True)
            return no_update, no_update, no_update
        peace = children == []
        if key == seen:
            return no_update, peace, no_update
        return children, peace, key

    # a confirmed declaration or stand-down -> the API's function -> the buttons as they now apply, the outcome
    @allow(app, "command")  # as POST / DELETE /api/incidents/<id>/major
    @app.callback(Output("major-controls", "children"),
                  Input("major-confirm-declare", "submit_n_clicks"), Input("major-confirm-stand-down", "submit_n_clicks"),
                  State("major-pick", "value"), State("major-target", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def act(_declare: Count | None, _stand_down: Count | None, level: StrictInt | None, target: Target | None,
            lang: Lang):
        lang, user, svc = _lang(lang), current_user(), current_app.extensions["panorama"]
        if target is None or not ctx.triggered or not ctx.triggered[0].get("value"):
            return no_update
        standing_down = ctx.triggered_id == "major-confirm-stand-down"
        try:
            if standing_down:
                majors = do_stand_down(svc, user, target.incident, None)
            else:
                majors = do_declare(svc, user, target.incident, level if level in major.LEVELS else 0, None)
        except DomainError as err:
            with svc.engine.connect() as conn:
                now = next((m["level"] for m in major.active(conn) if m["incident_id"] == target.incident), None)
            return controls_box(target.incident, now, lang, t("major_failed", lang, why=error_text(err, lang)))
        log.info("major incident %s %s by %s", target.incident, "stood down" if standing_down else f"level {level}",
                 user.username)
        now = next((m["level"] for m in majors if m["incident"]["id"] == target.incident), None)
        said = (t("major_done_stood_down", lang) if standing_down
                else t("major_done_declared", lang, level=major.ROMAN[now]))
        return controls_box(target.incident, now, lang, said)

    # a tap on a major incident's tab on / -> pinned (the slot redraws it)
    app.clientside_callback(ClientsideFunction(namespace="panorama", function_name="pinMajor"),
                            Output("major-pin", "data"), Input({"major-pin": ALL}, "n_clicks"),
                            prevent_initial_call=True)

    # a tap on declare / stand down -> its confirmation
    app.clientside_callback("function (n) { return Boolean(n); }",
                            Output("major-confirm-declare", "displayed"), Input("major-declare", "n_clicks"),
                            prevent_initial_call=True)
    app.clientside_callback("function (n) { return Boolean(n); }",
                            Output("major-confirm-stand-down", "displayed"), Input("major-stand-down", "n_clicks"),
                            prevent_initial_call=True)

    # connection mode -> the slot's own poll runs only while the gateway cannot be reached
    app.clientside_callback("function (conn) { return !(conn && conn.mode === 'polling'); }",
                            Output("major-poll", "disabled"), Input("live-conn", "data"))
