"""Run /m: draw it, refresh its lists when the gateway says dispatch changed, carry out the one-tap decisions.

Every tap is checked on the server (the ``command`` permission, the version the commander saw) and goes through
``dashboard.commander``; a list is only resent when what it shows changed.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from dash import ALL, ClientsideFunction, Input, Output, State, ctx, html, no_update
from flask import current_app
from pydantic import BaseModel, Field, StrictStr
from sqlalchemy.exc import SQLAlchemyError

from dashboard.dispatch import commander
from dashboard.dispatch import board as d
from dashboard.core.errors import Forbidden
from dashboard.core.i18n import error_text
from dashboard.dispatch.escalation import escalation_department
from dashboard.web.auth import current_user, reader_scope
from dashboard.web.callback_guard import Lang, RowId, allow, parse, validated
from layouts import mobile as view
from layouts.dispatch import department_names, incident_name
from callbacks import alerts
from callbacks.live import live_settings, live_state
from layouts.common import unavailable_layout

log = logging.getLogger(__name__)


def _svc():
    return current_app.extensions["panorama"]


def _lang(lang) -> str:
    return lang if lang in ("zh", "en") else "zh"


def lists(svc, now: int) -> tuple[list[dict], list[dict], int]:
    """Return what needs a decision now, the first open incidents and how many are open in all."""
    district = reader_scope().district  # a district centre's commander: their district's (SPEC section 13)
    with svc.engine.connect() as conn:
        return (commander.decisions(conn, svc.city, now, district=district),
                *commander.open_incidents(conn, district))


def digest(items: list[dict], incidents: list[dict], lang: str, total: int = 0) -> dict:
    """Return a short fingerprint of what each list shows, so an unchanged list is not sent again."""
    def fp(parts) -> str:
        return hashlib.blake2b(orjson.dumps([lang, *parts]), digest_size=8).hexdigest()
    return {"decisions": fp([(i["kind"], i["incident"]["id"], i["version"], i["incident"]["version"], i["actions"],
                              i["suggested"], [(o["task"]["id"], o["task"]["version"], o["late_min"], o["redispatch"])
                                               for o in i["overdue"]],
                              [(t["id"], t["version"]) for t in i["returned"]]) for i in items]),
            "incidents": fp([total, *[(r["id"], r["version"], r["status"], r["severity"], r["title"])
                                      for r in incidents]])}


def page(svc, lang: str, state: dict | None, settings: dict, now: int):
    """Return /m drawn from the database now."""
    items, incidents, total = lists(svc, now)
    return view.mobile_layout(svc.city, lang, state, settings, now, items, incidents, total,
                              digest(items, incidents, lang, total), alerts.panel(svc, lang, "mobile"))


class TapButton(BaseModel):
    """The id of a one-tap button: the action, the item's kind, its incident and task (0: none), the version seen."""

    act: StrictStr = Field(max_length=32)
    kind: StrictStr = Field(max_length=32)
    incident: RowId
    task: int = Field(ge=0, le=2**63 - 1)
    version: int = Field(ge=0, le=2**31)
    # the card's tasks (overdue, returned) as "id.version,id.version" (a pattern-matching id holds no lists)
    tasks: StrictStr = Field(default="", max_length=2000, pattern=r"^([0-9]{1,19}\.[0-9]{1,10}(,[0-9]{1,19}\.[0-9]{1,10})*)?$")


def _tap() -> commander.Tap | None:
    """Return the tap really made (a re-rendered button fires with n_clicks 0), or None."""
    if not ctx.triggered or not ctx.triggered[0].get("value") or not isinstance(ctx.triggered_id, dict):
        return None
    b = parse(TapButton, ctx.triggered_id)
    listed = tuple(tuple(int(n) for n in pair.split(".")) for pair in b.tasks.split(",") if pair)
    return commander.Tap(b.act, b.kind, b.incident, b.task or None, b.version, listed)


def done_text(tap: commander.Tap, change: d.Change, svc, lang: str) -> str:
    """Return what the commander's tap did, in a few words that name the incident."""
    inc = change.incident
    title = incident_name(inc, lang)  # named by its title, as text, never by its number
    names = department_names(svc.city, lang)
    if tap.action == "escalate":
        dep = escalation_department(svc.city) or ""
        return view.tx("done_escalate", lang, dep=names.get(dep, dep), title=title)
    if tap.action == "redispatch":
        dep = change.tasks[0]["department"]
        return view.tx("done_redispatch", lang, dep=names.get(dep, dep), title=title)
    return view.tx(f"done_{tap.action}", lang, title=title)


def message(text: str, ok: bool, seq: int) -> html.Span:
    """Return the tap's confirmation (it fades) or why it was not done (it stays); a new key restarts the fade."""
    return html.Span(text, className="m-ok" if ok else "m-err", key=str(seq))


def register_callbacks(app) -> None:
    """Register /m's callbacks."""

    # a dispatch change pushed by the gateway, a tap, a poll while the gateway is away -> the two lists
    # (only /m's own inputs: an input another page also has would fire this there, where the rest is missing)
    @allow(app, "command")  # as the page /m
    @app.callback(Output("decision-list", "children"), Output("decision-count", "children"),
                  Output("incident-list", "children", allow_duplicate=True), Output("incident-count", "children"),
                  Output("mobile-digest", "data"),
                  Input("mobile-bump", "data"), Input("mobile-refresh", "data"), Input("mobile-poll", "n_intervals"),
                  State("mobile-digest", "data"), State("lang", "data"), prevent_initial_call=True)
    @validated
    def refresh(_bump: Any, _refresh: Any, _poll: Any, seen: dict[str, str] | None, lang: Lang):
        svc, lang = _svc(), _lang(lang)
        if current_user() is None:
            return (no_update,) * 5
        try:
            items, incidents, total = lists(svc, svc.clock())
        except SQLAlchemyError:
            log.warning("/m lists unavailable", exc_info=True)
            return (no_update,) * 5
        now_seen = digest(items, incidents, lang, total)
        seen = seen or {}
        tz = svc.config["PANORAMA_TZ"]
        same_d, same_i = seen.get("decisions") == now_seen["decisions"], seen.get("incidents") == now_seen["incidents"]
        if same_d and same_i:
            return (no_update,) * 5
        return (no_update if same_d else view.decision_items(items, svc.city, lang, tz),
                no_update if same_d else str(len(items)),
                no_update if same_i else view.incident_items(incidents, svc.city, lang, tz),
                no_update if same_i else view.count_text(len(incidents), total), now_seen)

    # one tap -> acknowledge, escalate, re-dispatch or approve (role and versions checked) -> confirmation, lists
    @allow(app, "command")
    @app.callback(Output("mobile-message", "children"), Output("mobile-refresh", "data"),
                  Input({"type": "m-act", "act": ALL, "kind": ALL, "incident": ALL, "task": ALL, "version": ALL,
                         "tasks": ALL}, "n_clicks"),
                  State("mobile-refresh", "data"), State("lang", "data"), prevent_initial_call=True)
    @validated
    def act(_clicks: Any, bump: int | None, lang: Lang):
        tap, lang, user, svc = _tap(), _lang(lang), current_user(), _svc()
        if tap is None:
            return no_update, no_update
        seq = (bump or 0) + 1
        if user is None:
            return message(view.tx("signed_out", lang), False, seq), no_update
        try:
            change = commander.perform(svc, user, tap, svc.clock())
        except Forbidden:
            return message(view.tx("not_allowed", lang), False, seq), seq
        except d.VersionConflict:
            return message(view.tx("stale", lang), False, seq), seq
        except d.DispatchError as err:
            return message(view.tx("failed", lang, why=error_text(err, lang)), False, seq), seq
        log.info("/m: %s %s on incident %s (task %s) by %s", tap.action, tap.kind, tap.incident_id, tap.task_id,
                 user.username)
        return message(done_text(tap, change, svc, lang), True, seq), seq

    # connection mode -> /m's own poll runs only while the gateway cannot be reached
    app.clientside_callback("function (conn) { return !(conn && conn.mode === 'polling'); }",
                            Output("mobile-poll", "disabled"), Input("live-conn", "data"))

    # the live windows -> the one line of city status (in the browser)
    app.clientside_callback(
        ClientsideFunction(namespace="panoramaMobile", function_name="status"),
        Output("city-status", "children"), Input("live-windows", "data"), State("live-config", "data"),
    )


def render(req):
    """Return /m, the commander's phone page, drawn from the database now."""
    try:
        return page(req.svc, req.lang, live_state(req.svc, req.now), live_settings(req.svc.config), req.now)
    except SQLAlchemyError:
        log.warning("/m unavailable", exc_info=True)
        return unavailable_layout(req.lang)
