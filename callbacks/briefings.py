"""Run the briefings pages: draw the list or one briefing, and "generate now" for the roles that may."""

from __future__ import annotations

import logging

from dash import Input, Output, State, no_update
from flask import current_app

from dashboard.auth import check_role, current_user
from dashboard.briefings import store
from dashboard.briefings.api import summary_doc
from dashboard.briefings.generate import generate_now
from dashboard.briefings.text import bt
from feeds.pipeline import now_ms
from layouts.briefings import briefing_layout, briefing_table, briefings_layout
from layouts.common import not_found_layout

log = logging.getLogger(__name__)


def _svc():
    return current_app.extensions["panorama"]


def _docs(svc) -> list[dict]:
    tz = svc.config["PANORAMA_TZ"]
    return [summary_doc(r, tz) for r in store.list_briefings(svc.engine)]


def render_page(path: str, lang: str):
    """Return the layout of /briefings or /briefings/<id> (the router has checked the visitor may see it)."""
    svc = _svc()
    cfg = svc.config
    if path == "/briefings":
        return briefings_layout(lang, _docs(svc), check_role(current_user(), "brief"),
                                cfg["PANORAMA_BRIEFING_CRON"], cfg["PANORAMA_TZ"])
    key = path.removeprefix("/briefings/")
    row = store.get(svc.engine, int(key)) if key.isdigit() else None
    if row is None:
        return not_found_layout(lang, bt("not_found", lang, id=key))
    return briefing_layout(lang, summary_doc(row, cfg["PANORAMA_TZ"]))


def register_callbacks(app) -> None:
    """Register the briefings page's callbacks."""

    # "generate now" -> a briefing made on the server (role checked here) -> status line and fresh list
    @app.callback(Output("briefing-generate-status", "children"), Output("briefing-list", "children"),
                  Input("briefing-generate", "n_clicks"), State("lang", "data"), prevent_initial_call=True)
    def generate(n, lang):
        if not n:
            return no_update, no_update
        lang = lang if lang in ("zh", "en") else "zh"
        svc, user = _svc(), current_user()
        if not check_role(user, "brief"):
            return bt("not_allowed", lang), no_update
        try:
            row = generate_now(svc, user.username, now_ms())
        except Exception as err:  # noqa: BLE001 - say so on the page; the list shows the failed row
            log.exception("briefing on request failed")
            message = bt("generate_failed", lang, why=type(err).__name__)
        else:
            message = bt("generated_ok", lang, id=row["id"])
        cfg = svc.config
        return message, briefing_table(_docs(svc), lang, cfg["PANORAMA_BRIEFING_CRON"], cfg["PANORAMA_TZ"])
