"""Run /alerts: the alert trail (filters, acknowledgement) and the silences (add one, end one early).

Every read and write is the officer's and the commander's (``command``, as the silences' REST routes), and each
write goes through the same function as its REST route: ``web.api_alerts.acknowledge``, ``add_silence``,
``end_silence``, so the checks are made in one place.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import ALL, MATCH, ClientsideFunction, Input, Output, State, ctx, no_update
from flask import current_app
from pydantic import BaseModel, Field, StrictStr, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from callbacks.alerts import acknowledged, message
from callbacks.live import live_settings
from dashboard.core.alerts import LEVELS
from dashboard.core.errors import NotFound, Unprocessable
from dashboard.core.i18n import t
from dashboard.core.roles import check_role
from dashboard.storage import alerts as store
from dashboard.web.api import ApiError
from dashboard.web.api_alerts import SilenceBody, add_silence, end_silence
from dashboard.web.auth import current_user, reader_scope
from dashboard.web.callback_guard import Lang, RowId, allow, parse, validated
from layouts.alerts_page import SHOWN, alerts_page_layout, digest, silence_items, trail_items

log = logging.getLogger(__name__)
UNTIL_DEFAULT_MS = 2 * 3_600_000  # the form offers two hours from now
# add_silence's refusals, each said in words on the page (core/i18n.py silence_err_<code>)
SILENCE_ERRORS = ("bad_request", "unknown_rule", "unknown_district", "other_district", "unknown_zone", "bad_until")


class TrailAck(BaseModel):
    """The id of a trail's acknowledge button: the alert and the version the page showed."""

    trail_ack: RowId = Field(alias="trail-ack")
    v: int = Field(ge=1, le=2**31 - 1)


class SilenceEnd(BaseModel):
    """The id of a silence's "end now" button."""

    silence_end: RowId = Field(alias="silence-end")


class Filters(BaseModel):
    """The trail's filters as the page sends them."""

    statuses: list[StrictStr] = Field(default_factory=list, max_length=len(store.STATUSES))
    levels: list[StrictStr] = Field(default_factory=list, max_length=len(LEVELS))
    district: StrictStr | None = Field(None, max_length=64)


def _lang(lang) -> str:
    return lang if lang in ("zh", "en") else "zh"


def local_text(ms: int, tz: str) -> str:
    """Return a time as the form shows it: ``YYYY-MM-DD HH:MM`` in the city's zone."""
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def rfc3339(text: str | None, tz: str) -> str:
    """Return what a person typed as the silence's end as RFC 3339: a local ``YYYY-MM-DD HH:MM`` gets the city's
    offset; a time with its own offset is kept; anything else is passed on for the route's check to refuse."""
    text = (text or "").strip()
    try:
        at = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return text
    return (at if at.tzinfo else at.replace(tzinfo=ZoneInfo(tz))).isoformat()


def ticked(slots: Any, clicks: Any) -> dict[str, list[str]]:
    """Return the filter buttons pressed on, by group: a button is on after an odd number of presses (a toggle
    button tells the server its clicks, not its state; the filters are drawn off and only ever redrawn whole)."""
    if not isinstance(slots, list) or not isinstance(clicks, list) or len(slots) != len(clicks):
        raise ValueError("filter boxes")
    out: dict[str, list[str]] = {}
    for slot, n in zip(slots, clicks):
        box = slot.get("id") if isinstance(slot, dict) else None
        if not isinstance(box, dict) or not isinstance(box.get("alerts-filter"), str) \
                or not isinstance(box.get("value"), str) or not (n is None or isinstance(n, int)):
            raise ValueError("filter box")
        if n and n % 2:
            out.setdefault(box["alerts-filter"], []).append(box["value"])
    return out


def read(svc, f: Filters) -> tuple[list[dict], dict[int, list[dict]], list[dict]]:
    """Return the alerts the filters ask for (newest first, at most SHOWN), their trails and the silences in force."""
    districts = ()
    if f.district:
        d = svc.city.resolve(f.district)
        districts = (d.code if d else f.district,)
    statuses = tuple(s for s in f.statuses if s in store.STATUSES)
    levels = tuple(lv for lv in f.levels if lv in LEVELS)
    own = reader_scope().district  # a district centre's user: their district's alerts and silences only
    if own is not None and districts not in ((), (own,)):
        return [], {}, []
    with svc.engine.connect() as conn:  # the primary: an acknowledgement just made must show
        rows = store.list_alerts(conn, statuses, levels, SHOWN, districts or reader_scope().districts())
        trails = store.trails(conn, [r["id"] for r in rows])
        silences = store.list_silences(conn, svc.clock(), district=own)
    return rows, trails, silences


def render(req):
    """Return /alerts drawn from the database now (the router has checked the role)."""
    svc, tz = req.svc, req.svc.config["PANORAMA_TZ"]
    try:
        rows, trails, silences = read(svc, Filters())
    except SQLAlchemyError:
        log.warning("alerts unavailable", exc_info=True)
        rows, trails, silences = [], {}, []
    return alerts_page_layout(svc.city, req.lang, tz, rows, trails, silences, check_role(current_user(), "command"),
                              local_text(req.now + UNTIL_DEFAULT_MS, tz), live_settings(svc.config), req.now,
                              reader_scope().district)


def register_callbacks(app) -> None:
    """Register /alerts' callbacks."""

    # a filter button pressed -> its aria-pressed, in the browser (assets/alerts_page.js)
    app.clientside_callback(ClientsideFunction(namespace="panoramaAlertsPage", function_name="pressed"),
                            Output({"alerts-filter": MATCH, "value": MATCH}, "aria-pressed"),
                            Input({"alerts-filter": MATCH, "value": MATCH}, "n_clicks"))

    # connection mode -> the fallback poll runs only while the gateway's socket is not live
    app.clientside_callback(ClientsideFunction(namespace="panoramaAlertsPage", function_name="pollOff"),
                            Output("alerts-poll", "disabled"), Input("live-conn", "data"))

    # filters, the gateway's alert frames, the fallback poll, the page's own write -> the trail, the line above it, the silences (unchanged: nothing sent)
    @allow(app, "command")
    @app.callback(Output("alerts-trail", "children"), Output("alerts-count", "children"),
                  Output("silence-list", "children"), Output("alerts-digest", "data"),
                  Input({"alerts-filter": ALL, "value": ALL}, "n_clicks"), Input("alerts-district", "value"),
                  Input("alerts-poll", "n_intervals"), Input("alerts-live", "data"), Input("alerts-refresh", "data"),
                  State("alerts-digest", "data"), State("lang", "data"), prevent_initial_call=True)
    @validated
    def refresh(clicks: Any, district: Any, _poll: Any, _live: Any, _refresh: Any, seen: Any, lang: Lang):
        svc, lang = current_app.extensions["panorama"], _lang(lang)
        try:
            chosen = ticked(ctx.inputs_list[0], clicks)
            f = Filters(statuses=chosen.get("status", []), levels=chosen.get("level", []), district=district or None)
        except (ValidationError, ValueError):
            return no_update, no_update, no_update, no_update
        tz = svc.config["PANORAMA_TZ"]
        try:
            rows, trails, silences = read(svc, f)
        except SQLAlchemyError:
            log.warning("alerts unavailable", exc_info=True)
            return no_update, no_update, no_update, no_update
        now = digest(lang, rows, trails, silences)
        if now == seen and ctx.triggered_id in ("alerts-poll", "alerts-live", "alerts-refresh"):
            return no_update, no_update, no_update, no_update
        items, line = trail_items(rows, trails, svc.city, lang, tz, True)
        return items, line, silence_items(silences, svc.city, lang, tz), now

    # a tap on acknowledge -> POST /api/alerts/<id>/ack's function, at the version shown -> the outcome in words
    @allow(app, "command")
    @app.callback(Output("alerts-page-message", "children"), Output("alerts-refresh", "data"),
                  Input({"trail-ack": ALL, "v": ALL}, "n_clicks"),
                  State("alerts-refresh", "data"), State("lang", "data"), prevent_initial_call=True)
    @validated
    def ack(_clicks: Any, bump: int | None, lang: Lang):
        lang, user, svc = _lang(lang), current_user(), current_app.extensions["panorama"]
        if not ctx.triggered or not ctx.triggered[0].get("value") or not isinstance(ctx.triggered_id, dict):
            return no_update, no_update  # a redrawn button fires with n_clicks 0: only a real tap counts
        button = parse(TrailAck, dict(ctx.triggered_id))
        seq = (bump or 0) + 1
        return acknowledged(svc, button.trail_ack, button.v, user.username, lang, seq, "/alerts"), seq

    # the form -> POST /api/silences' checks and write -> the outcome in words
    @allow(app, "command")
    @app.callback(Output("silence-message", "children"), Output("alerts-refresh", "data", allow_duplicate=True),
                  Output("silence-reason", "value"),
                  Input("silence-add", "n_clicks"),
                  State("silence-rule", "value"), State("silence-district", "value"), State("silence-zone", "value"),
                  State("silence-until", "value"), State("silence-reason", "value"), State("alerts-refresh", "data"),
                  State("lang", "data"), prevent_initial_call=True)
    @validated
    def add(clicks: Any, rule: Any, district: Any, zone: Any, until: Any, reason: Any, bump: int | None, lang: Lang):
        if not clicks:
            return no_update, no_update, no_update
        lang, svc = _lang(lang), current_app.extensions["panorama"]
        seq = (bump or 0) + 1
        try:
            body = SilenceBody(rule=rule or None, district=district or None, zone=zone or None,
                               until=rfc3339(until if isinstance(until, str) else None, svc.config["PANORAMA_TZ"]),
                               reason=reason if isinstance(reason, str) else "")
            row = add_silence(svc, body, current_user().username)
        except ValidationError:
            return message(t("silence_err_bad_request", lang), False, seq), no_update, no_update
        except ApiError as err:
            code = err.code if err.code in SILENCE_ERRORS else "bad_request"
            return message(t(f"silence_err_{code}", lang), False, seq), no_update, no_update
        log.info("silence %s added by %s (/alerts)", row["id"], row["created_by"])
        return message(t("silence_added", lang, id=row["id"]), True, seq), seq, ""

    # "end now" -> DELETE /api/silences/<id>'s function -> the outcome in words
    @allow(app, "command")
    @app.callback(Output("silence-message", "children", allow_duplicate=True),
                  Output("alerts-refresh", "data", allow_duplicate=True),
                  Input({"silence-end": ALL}, "n_clicks"), State("alerts-refresh", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def end(_clicks: Any, bump: int | None, lang: Lang):
        lang, svc = _lang(lang), current_app.extensions["panorama"]
        if not ctx.triggered or not ctx.triggered[0].get("value") or not isinstance(ctx.triggered_id, dict):
            return no_update, no_update
        button = parse(SilenceEnd, dict(ctx.triggered_id))
        seq = (bump or 0) + 1
        try:
            row = end_silence(svc, button.silence_end, current_user().username)
        except Unprocessable:
            return message(t("silence_err_ended", lang), False, seq), seq
        except NotFound:
            return message(t("silence_err_gone", lang), False, seq), seq
        log.info("silence %s ended by %s (/alerts)", row["id"], row["ended_by"])
        return message(t("silence_ended", lang, id=row["id"]), True, seq), seq

