"""Run the alert-list of /, /wall and /m and the map's outlines: redraw when the gateway says alerts changed, acknowledge.

Reads are every viewer's and a kiosk wall's (as ``GET /api/alerts``); acknowledging is the officer's and the
commander's (as ``POST /api/alerts/<id>/ack``), through the same function, at the version the screen showed.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from dash import ALL, Input, Output, Patch, State, ctx, html, no_update
from flask import current_app
from pydantic import BaseModel, Field, StrictStr
from sqlalchemy.exc import SQLAlchemyError

from dashboard.core.errors import Conflict, NotFound, Unprocessable
from dashboard.core.i18n import t
from dashboard.core.roles import check_role
from dashboard.figures.alert_map import FIRST_TRACE, outline_traces
from dashboard.storage import alerts as store
from dashboard.web.api_alerts import acknowledge
from dashboard.web.auth import current_user, may_watch, reader_scope
from dashboard.web.callback_guard import Lang, RowId, allow, parse, validated
from layouts.alerts import OPEN, alert_items, alert_panel

log = logging.getLogger(__name__)


class ListView(BaseModel):
    """The alert-list's page kind (its ``alert-view`` store)."""

    page: StrictStr = Field(pattern="^(desk|wall|mobile)$")


class AckButton(BaseModel):
    """The id of an acknowledge button: the alert and the version the screen showed."""

    alert_ack: RowId = Field(alias="alert-ack")
    v: int = Field(ge=1, le=2**31 - 1)


def _lang(lang) -> str:
    return lang if lang in ("zh", "en") else "zh"


def can_acknowledge(user, page: str = "desk") -> bool:
    """Tell whether the reader gets acknowledge buttons: an officer, commander or admin, and not on the wall
    (read-only, whoever looks at it)."""
    return page != "wall" and check_role(user, "command")


def open_alerts(svc) -> list[dict]:
    """Return the firing and acknowledged alerts from the primary (an acknowledgement just made must show), in the
    reader's scope (a district centre's user or wall: their district's, as GET /api/alerts)."""
    with svc.engine.connect() as conn:
        return store.list_alerts(conn, OPEN, districts=reader_scope().districts())


def open_alerts_or_none(svc) -> list[dict]:
    """Return the open alerts, or none when the database cannot say (the page still draws)."""
    try:
        return open_alerts(svc)
    except SQLAlchemyError:
        log.warning("alerts unavailable", exc_info=True)
        return []


def panel(svc, lang: str, page: str, rows: list[dict] | None = None, replay: bool = False):
    """Return the alerts panel of ``page`` as the reader may see it, drawn from ``rows`` (else the database now);
    ``replay``: a replayed minute's alerts, which nobody acknowledges (the replay draws them as it plays)."""
    rows = open_alerts_or_none(svc) if rows is None else rows
    return alert_panel(rows, svc.city, lang, svc.config["PANORAMA_TZ"], page,
                       not replay and can_acknowledge(current_user(), page))


def outline_patch(rows: list[dict], city, lang: str, page: str) -> tuple[Patch, str]:
    """Return the patch that redraws the map's alert outlines (``figures.alert_map``) and their fingerprint."""
    traces = outline_traces(rows, city, lang, "dark" if page == "wall" else "light")
    patch = Patch()
    for i, trace in enumerate(traces):
        patch["data"][FIRST_TRACE + i] = trace.to_plotly_json()
    digest = hashlib.blake2b(orjson.dumps([lang, page, sorted(
        (r["id"], r["level"], r["status"], r["title"], r["title_en"], r["district"], r["zone"]) for r in rows
        if r["status"] in OPEN)]), digest_size=8).hexdigest()
    return patch, digest


def message(text: str, ok: bool, seq: int) -> html.Span:
    """Return the outcome of a tap: done (it fades) or why not (it stays); a new key restarts the fade."""
    return html.Span(text, className="m-ok" if ok else "m-err", key=str(seq))


def acknowledged(svc, alert_id: int, version: int, username: str, lang: str, seq: int, where: str) -> html.Span:
    """Acknowledge an alert at the version shown (POST /api/alerts/<id>/ack's domain function) and say the outcome
    in words: done, changed meanwhile (409 over REST), no longer firing (422), gone (404)."""
    try:
        row = acknowledge(svc, alert_id, version, username, None)
    except Conflict:
        return message(t("alert_stale", lang), False, seq)
    except Unprocessable:
        return message(t("alert_not_firing", lang), False, seq)
    except NotFound:
        return message(t("alert_gone", lang), False, seq)
    log.info("alert %s acknowledged by %s (%s)", row["id"], username, where)
    return message(t("alert_acked", lang, title=row["title_en"] if lang == "en" else row["title"]), True, seq)


def register_callbacks(app) -> None:
    """Register the alert-list's callbacks."""

    # a frame with alerts, an acknowledgement, a poll while the gateway is away -> the list and the line under it
    @allow(app, public=True)  # a kiosk wall holds no session: may_watch() admits a viewer or a live kiosk token
    @app.callback(Output("alert-list", "children"), Output("alert-more", "children"),
                  Output("alert-digest", "data"),
                  Input("alert-bump", "data"), Input("alert-refresh", "data"), Input("alert-poll", "n_intervals"),
                  State("alert-view", "data"), State("alert-digest", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def refresh(_bump: Any, _refresh: Any, _poll: Any, view: ListView | None, seen: Any, lang: Lang):
        if view is None or not may_watch():
            return no_update, no_update, no_update
        svc, lang = current_app.extensions["panorama"], _lang(lang)
        try:
            rows = open_alerts(svc)
        except SQLAlchemyError:
            log.warning("alerts unavailable", exc_info=True)
            return no_update, no_update, no_update
        items, more, digest = alert_items(rows, svc.city, lang, svc.config["PANORAMA_TZ"], view.page,
                                          can_acknowledge(current_user(), view.page))
        if digest == seen:
            return no_update, no_update, no_update
        return items, more, digest

    # a frame with alerts, an acknowledgement, a poll -> the map's outlines of the places concerned (/ and /wall:
    # /m has no map, and Dash runs no callback whose outputs are not on the page)
    @allow(app, public=True)  # as the list: may_watch() admits a viewer or a live kiosk token
    @app.callback(Output("city-map", "figure", allow_duplicate=True), Output("alert-outline-digest", "data"),
                  Input("alert-bump", "data"), Input("alert-refresh", "data"), Input("alert-poll", "n_intervals"),
                  State("alert-view", "data"), State("alert-outline-digest", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def outlines(_bump: Any, _refresh: Any, _poll: Any, view: ListView | None, seen: Any, lang: Lang):
        if view is None or view.page == "mobile" or not may_watch():
            return no_update, no_update
        svc = current_app.extensions["panorama"]
        try:
            rows = open_alerts(svc)
        except SQLAlchemyError:
            log.warning("alerts unavailable", exc_info=True)
            return no_update, no_update
        patch, digest = outline_patch(rows, svc.city, _lang(lang), view.page)
        if digest == seen:
            return no_update, no_update
        return patch, digest

    # a tap on acknowledge -> POST /api/alerts/<id>/ack's domain function, at the version shown -> the outcome
    @allow(app, "command")  # as POST /api/alerts/<id>/ack
    @app.callback(Output("alert-message", "children"), Output("alert-refresh", "data"),
                  Input({"alert-ack": ALL, "v": ALL}, "n_clicks"),
                  State("alert-refresh", "data"), State("lang", "data"), prevent_initial_call=True)
    @validated
    def ack(_clicks: Any, bump: int | None, lang: Lang):
        lang, user, svc = _lang(lang), current_user(), current_app.extensions["panorama"]
        # a redrawn button fires with n_clicks 0: only a real tap counts
        if not ctx.triggered or not ctx.triggered[0].get("value") or not isinstance(ctx.triggered_id, dict):
            return no_update, no_update
        button = parse(AckButton, dict(ctx.triggered_id))
        seq = (bump or 0) + 1
        if user is None:
            return message(t("alert_signed_out", lang), False, seq), no_update
        if not check_role(user, "command"):
            return message(t("alert_not_allowed", lang), False, seq), no_update
        return acknowledged(svc, button.alert_ack, button.v, user.username, lang, seq, "page"), seq

    # connection mode -> the list's own poll runs only while the gateway cannot be reached
    app.clientside_callback("function (conn) { return !(conn && conn.mode === 'polling'); }",
                            Output("alert-poll", "disabled"), Input("live-conn", "data"))

