"""Route the URL to a page layout, drawn from the current state, and switch the language."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from dash import Input, Output, State, clientside_callback, no_update
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from callbacks import briefings, district_data
from callbacks import mobile as mobile_page
from dashboard.web import auth
from dashboard.panorama import state as live
from dashboard.storage import queries
from dashboard.web.callback_guard import Lang, allow, validated
from dashboard.dispatch.desk import scope
from dashboard.core.i18n import t
from layouts.common import not_found_layout, unavailable_layout
from layouts.dispatch import dispatch_layout
from layouts.district import district_layout
from layouts.login import forbidden_layout, login_layout
from layouts.panorama import panorama_layout
from layouts.wall import wall_layout

log = logging.getLogger(__name__)

# A full navigation after signing in, so the new session cookie reaches every request of the page. The
# server already reduced `next` to a path of this site (auth.safe_next); the browser parses it once more with
# its own URL parser and goes only to this origin, so nothing it would rewrite can lead elsewhere.
SIGN_IN_JS = """
async function (nClicks, nSubmit, username, password, ctx) {
    const T = ctx.text;
    let next = window.location.origin + '/';
    try {
        const target = new URL(ctx.next || '/', window.location.origin);
        if (target.origin === window.location.origin) { next = target.href; }
    } catch (e) { /* not a URL: the panorama */ }
    try {
        const r = await fetch('/api/session', {
            method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({username: (username || '').trim(), password: password || ''}),
        });
        if (r.ok) { window.location.assign(next); return T.signing_in; }
        if (r.status === 429) { return T.too_many.replace('{s}', r.headers.get('Retry-After') || '60'); }
        if (r.status === 401 || r.status === 400) { return T.bad_credentials; }
        return T.failed;
    } catch (e) {
        return T.failed;
    }
}
"""


# Sign out everywhere, then a full navigation, so nothing of the signed-in page survives.
SIGN_OUT_JS = """
async function (n) {
    if (!n) { return window.dash_clientside.no_update; }
    const token = (document.cookie.match(/(?:^|; )panorama_csrf=([^;]*)/) || [])[1] || '';
    try {
        await fetch('/api/session', {method: 'DELETE', credentials: 'same-origin',
                                     headers: {'X-CSRF-Token': decodeURIComponent(token)}});
    } finally {
        window.location.assign('/login');
    }
    return window.dash_clientside.no_update;
}
"""
# The user bar's texts in the language chosen in the browser.
USER_BAR_JS = """
function (lang, texts) {
    const T = (texts || {})[lang === 'en' ? 'en' : 'zh'] || {};
    return [T.role, T.sign_out];
}
"""


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


def guard(path: str, search: str | None, lang: str) -> object | None:
    """Return the sign-in or not-allowed page when the visitor may not see ``path``, else None."""
    here = path + (search or "")
    if path == "/login":
        return login_layout(lang, auth.safe_next(_next_of(search)))
    access = auth.page_access(path, auth.kiosk_token_of(search))
    if access == "login":
        # The shell was served before the session ended (or a link was followed): sign in right here.
        return login_layout(lang, auth.safe_next(here))
    if access == "forbidden":
        return forbidden_layout(lang, auth.current_user().role, auth.login_url(here))
    return None


def _next_of(search: str | None) -> str:
    values = parse_qs((search or "").lstrip("?")).get("next")
    return values[0] if values else "/"


def render(pathname: str | None, lang: str, search: str | None = None) -> object:
    """Return the layout of ``pathname`` (the not-found page for anything unknown)."""
    svc = current_app.extensions["panorama"]
    cfg = svc.config
    path = (pathname or "/").rstrip("/") or "/"
    denied = guard(path, search, lang)
    if denied is not None:
        return denied
    now = svc.clock()
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
                                              cfg["PANORAMA_TZ"], scope(auth.current_user()))
        except SQLAlchemyError:
            log.warning("district %s unavailable", district.code, exc_info=True)
            return unavailable_layout(lang)
        return district_layout(svc.city, district, lang, window, data, cfg["PANORAMA_TZ"])
    if path == "/briefings" or path.startswith("/briefings/"):
        return briefings.render_page(path, lang)
    if path == "/m":
        try:
            return mobile_page.page(svc, lang, _state(svc, now), live_settings(cfg), now)
        except SQLAlchemyError:
            log.warning("/m unavailable", exc_info=True)
            return unavailable_layout(lang)
    if path == "/dispatch":
        return dispatch_layout(lang, auth.current_user(), city=svc.city, poll_ms=cfg["PANORAMA_POLL_MS"])
    return not_found_layout(lang, t("not_found_route", lang, path=pathname))


def register_callbacks(app) -> None:
    """Register the router and the language switch."""

    # url, language (and the signed-in user or kiosk token) -> page
    @allow(app, public=True)  # the router applies page_access itself
    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("lang", "data"),
                  State("url", "search"))
    @validated
    def route(pathname: str | None, lang: Lang, search: str | None):
        return render(pathname, lang if lang in ("zh", "en") else "zh", search)

    # sign-in form -> POST /api/session -> the page it came from (the session cookie is the browser's)
    clientside_callback(
        SIGN_IN_JS,
        Output("login-error", "children"),
        Input("login-submit", "n_clicks"), Input("login-password", "n_submit"),
        State("login-username", "value"), State("login-password", "value"), State("login-context", "data"),
        prevent_initial_call=True,
    )

    # sign-out button -> DELETE /api/session -> the sign-in page
    clientside_callback(SIGN_OUT_JS, Output("sign-out", "title"), Input("sign-out", "n_clicks"),
                        prevent_initial_call=True)

    # language -> the user bar's texts
    clientside_callback(USER_BAR_JS, Output("user-role", "children"), Output("sign-out", "children"),
                        Input("lang", "data"), State("user-bar-text", "data"))

    # language button -> stored language
    @allow(app, public=True)
    @app.callback(Output("lang", "data"), Input("lang-toggle", "n_clicks"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def toggle(n: int | None, lang: Lang):
        if not n:
            return no_update
        return "en" if lang != "en" else "zh"
