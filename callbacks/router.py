"""Route the URL to a page layout, drawn from the current state, and switch the language."""

from __future__ import annotations

import logging

from dash import Input, Output, State, no_update
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from callbacks import district_data
from dashboard import live, queries
from dashboard.i18n import t
from feeds.pipeline import now_ms
from layouts.common import not_found_layout, unavailable_layout
from layouts.district import district_layout
from layouts.panorama import panorama_layout
from layouts.wall import wall_layout

log = logging.getLogger(__name__)


def live_settings(cfg: dict) -> dict:
    """Return the configuration a live page hands to the browser."""
    return {"tz": cfg["PANORAMA_TZ"], "ws_url": cfg["PANORAMA_WS_URL"], "ws_port": cfg["PANORAMA_WS_PORT"],
            "stale_after": cfg["PANORAMA_STALE_AFTER"], "cycle_s": cfg["PANORAMA_WALL_CYCLE_S"],
            "poll_ms": cfg["PANORAMA_POLL_MS"]}


def _state(svc, now: int) -> dict | None:
    try:
        with svc.engine.connect() as conn:
            return live.build_state(conn, svc.city, now, svc.config["PANORAMA_STALE_AFTER"])
    except SQLAlchemyError:
        # The page still comes up; the browser's first poll or snapshot fills it in.
        log.warning("live state unavailable for the first render", exc_info=True)
        return None


def render(pathname: str | None, lang: str) -> object:
    """Return the layout of ``pathname`` (the not-found page for anything unknown)."""
    svc = current_app.extensions["panorama"]
    cfg = svc.config
    path = (pathname or "/").rstrip("/") or "/"
    now = now_ms()
    if path in ("/", "/wall"):
        state = _state(svc, now)
        if path == "/wall":
            return wall_layout(svc.city, lang, state, live_settings(cfg), now)
        note = t("mode_embedded", lang) if cfg["EMBEDDED"] else ""
        return panorama_layout(svc.city, lang, state, live_settings(cfg), now, note)
    if path.startswith("/district/") and path.count("/") == 2:
        key = path.removeprefix("/district/")
        district = svc.city.resolve(key)
        if district is None:
            return not_found_layout(lang, t("not_found_district", lang, name=key))
        window = "1h"
        try:
            with svc.engine.connect() as conn:
                data = district_data.snapshot(conn, svc.city, district, queries.WINDOWS[window], now,
                                              cfg["PANORAMA_TZ"])
        except SQLAlchemyError:
            log.warning("district %s unavailable", district.code, exc_info=True)
            return unavailable_layout(lang)
        return district_layout(svc.city, district, lang, window, data, cfg["PANORAMA_TZ"])
    return not_found_layout(lang, t("not_found_route", lang, path=pathname))


def register_callbacks(app) -> None:
    """Register the router and the language switch."""

    # url, language -> page
    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("lang", "data"))
    def route(pathname, lang):
        return render(pathname, lang if lang in ("zh", "en") else "zh")

    # language button -> stored language
    @app.callback(Output("lang", "data"), Input("lang-toggle", "n_clicks"), State("lang", "data"),
                  prevent_initial_call=True)
    def toggle(n, lang):
        if not n:
            return no_update
        return "en" if lang != "en" else "zh"
