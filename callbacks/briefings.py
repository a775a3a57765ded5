"""Run the briefings pages: draw the list or one briefing, and "generate now" for the roles that may."""

from __future__ import annotations

import logging
from typing import Any

from dash import Input, Output, State, no_update
from flask import current_app
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError

from dashboard.web.auth import check_role, current_user, reader_scope
from dashboard.web.callback_guard import Lang, allow, validated
from dashboard.storage import briefings as store
from dashboard.web.api_briefings import summary_doc
from dashboard.briefings.generate import generate_now
from dashboard.briefings.lock import BriefingBusy
from dashboard.briefings.text import bt
from dashboard.storage.models import briefings
from layouts.briefings import briefing_layout, briefing_table, briefings_layout
from layouts.common import not_found_layout

log = logging.getLogger(__name__)


def _svc():
    return current_app.extensions["panorama"]


def _docs(svc) -> list[dict]:
    """Return the briefings the reader lists (a district centre's user: their district's, as GET /api/briefings)."""
    tz = svc.config["PANORAMA_TZ"]
    return [summary_doc(r, tz) for r in store.list_briefings(svc.engine, district=reader_scope().district)]


def list_version(engine, district: str | None = None) -> list[int]:
    """Return a fingerprint of the list: how many briefings, the newest id, how many are being made.

    One aggregate over the table, cheap enough for every open page to ask every few seconds. Every change
    the list shows moves it: a claim (count and id), a briefing finished or failed (fewer being made),
    a prune (count). Read it *before* the list, so a briefing landing in between is drawn on the next ask.
    ``district``: of that district's briefings only (a district centre's list; None: every one).
    """
    stmt = select(func.count(), func.coalesce(func.max(briefings.c.id), 0),
                  func.coalesce(func.sum(case((briefings.c.status == "generating", 1), else_=0)), 0)
                  ).where(store.where_district(district))
    with engine.connect() as conn:
        return [int(v) for v in conn.execute(stmt).one()]


def render_page(path: str, lang: str):
    """Return the layout of /briefings or /briefings/<id> (the router has checked the visitor may see it)."""
    svc = _svc()
    cfg = svc.config
    scope = reader_scope()
    if path == "/briefings":
        version = list_version(svc.engine, scope.district)
        return briefings_layout(lang, _docs(svc), check_role(current_user(), "brief"),
                                cfg["PANORAMA_BRIEFING_CRON"], cfg["PANORAMA_TZ"], version=version,
                                refresh_ms=cfg["PANORAMA_BRIEFING_REFRESH_MS"], city=svc.city)
    key = path.removeprefix("/briefings/")
    row = store.get(svc.engine, int(key)) if key.isdigit() else None
    if row is None or not scope.sees(row["district"]):  # another district's: as if there were none (the API's 404)
        return not_found_layout(lang, bt("not_found", lang, id=key))
    return briefing_layout(lang, summary_doc(row, cfg["PANORAMA_TZ"]), svc.city)


def register_callbacks(app) -> None:
    """Register the briefings page's callbacks."""

    # "generate now" -> a briefing made on the server (role checked here) -> status line and fresh list
    @allow(app, "brief")  # as POST /api/briefings
    @app.callback(Output("briefing-generate-status", "children"), Output("briefing-list", "children"),
                  Output("briefing-version", "data"),
                  Input("briefing-generate", "n_clicks"), State("lang", "data"), prevent_initial_call=True)
    @validated
    def generate(n: int | None, lang: Lang):
        if not n:
            return no_update, no_update, no_update
        lang = lang if lang in ("zh", "en") else "zh"
        svc, user = _svc(), current_user()
        if not check_role(user, "brief"):
            return bt("not_allowed", lang), no_update, no_update
        district = reader_scope().district  # a district centre's user makes their district's (as the API)
        try:
            row = generate_now(svc, user.username, svc.clock(), district)
        except BriefingBusy as busy:  # another is being made somewhere in the deployment: nothing changed here
            return bt("generate_busy", lang, s=busy.retry_after), no_update, no_update
        except Exception as err:  # noqa: BLE001 - say so on the page; the list shows the failed row
            log.exception("briefing on request failed")
            message = bt("generate_failed", lang, why=type(err).__name__)
        else:
            message = bt("generated_ok", lang, id=row["id"])
        cfg = svc.config
        version = list_version(svc.engine, district)
        return (message, briefing_table(_docs(svc), lang, cfg["PANORAMA_BRIEFING_CRON"], cfg["PANORAMA_TZ"],
                                        svc.city), version)

    # timer -> the list's fingerprint -> the list redrawn only when it changed (a scheduled briefing,
    # another replica's, one finished or pruned); otherwise nothing is sent but the small answer
    @allow(app, "view")
    @app.callback(Output("briefing-list", "children", allow_duplicate=True),
                  Output("briefing-version", "data", allow_duplicate=True),
                  Input("briefing-refresh", "n_intervals"), State("briefing-version", "data"),
                  State("lang", "data"), prevent_initial_call=True)
    @validated
    def refresh(_n: Any, shown: list[int] | None, lang: Lang):
        # Callbacks answer whoever asks: the list is for signed-in readers only (as the page is).
        if not check_role(current_user(), "view"):
            return no_update, no_update
        svc = _svc()
        try:
            version = list_version(svc.engine, reader_scope().district)
            if version == shown:
                return no_update, no_update
            docs = _docs(svc)
        except SQLAlchemyError:
            log.warning("briefings list refresh unavailable", exc_info=True)
            return no_update, no_update  # the page keeps what it shows; the next tick tries again
        lang = lang if lang in ("zh", "en") else "zh"
        cfg = svc.config
        return briefing_table(docs, lang, cfg["PANORAMA_BRIEFING_CRON"], cfg["PANORAMA_TZ"], svc.city), version


def render(req):
    """Return /briefings or /briefings/<id>."""
    return render_page(req.path, req.lang)
