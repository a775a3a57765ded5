"""The app factory: read configuration, connect services, register the API, the pages and their callbacks."""

from __future__ import annotations

from typing import Any, Mapping

import dash

from dashboard.core.config import ROOT


def create_app(config: Mapping[str, Any] | None = None) -> dash.Dash:
    """Create the Dash app: read configuration, connect services, register API, pages and callbacks."""
    from callbacks import briefings as briefings_callbacks
    from callbacks import pages, register_all
    from dashboard.web import api_briefings as briefings_api
    from dashboard.web import caching
    from dashboard.web import api
    from dashboard.web import auth
    from dashboard.web import callback_guard
    from dashboard.web import cli
    from dashboard.web import compression
    from dashboard.web import api_dispatch as dispatch_api
    from dashboard.web import api_alerts as alerts_api
    from dashboard.web import api_major as major_api
    from dashboard.web import api_rosters as rosters_api
    from dashboard.web import api_units as units_api
    from dashboard.web import api_notifications as notifications_api
    from dashboard.web import api_open as open_api
    from dashboard.web import exports
    from dashboard.web import headers
    from dashboard.web import first_paint
    from dashboard.web import fonts
    from dashboard.web import language
    from dashboard.web import metrics
    from dashboard.web import oidc
    from dashboard.web import plotly_bundle
    from dashboard.web import manifest as webapp
    from dashboard.core.config import load_config
    from dashboard.core.i18n import t
    from dashboard.storage.services import build_services
    from callbacks.router import first_paint as draw_first_paint
    from layouts.shell import shell

    cfg = load_config(config)
    app = dash.Dash(
        __name__,
        assets_folder=str(ROOT / "assets"),
        # served, not listed in every page: the partial Plotly bundle goes only where graphs are (plotly_bundle)
        assets_path_ignore=[f"^{plotly_bundle.VENDOR}$"],
        title=t("app_title"),
        suppress_callback_exceptions=True,
        update_title=None,
        # Dash's renderer sends the session's CSRF token (from this cookie) with every callback.
        csrf_token_name=auth.CSRF_COOKIE,
        csrf_header_name=auth.CSRF_HEADER,
    )
    server = app.server
    server.config.update(cfg)
    server.secret_key = auth.secret_key(cfg)
    # People read the JSON too: keep Chinese readable and fields in the documented order.
    server.json.ensure_ascii = False
    server.json.sort_keys = False
    services = build_services(cfg)
    server.extensions["panorama"] = services
    # First registered, so its after_request runs last: it compresses the answer every other part has finished.
    compression.init_app(server)
    auth.init_app(server, pages.permissions())
    oidc.init_app(server)  # single sign-on through the city's identity provider, when configured
    callback_guard.init_app(app)  # after auth: Origin and CSRF first, then each callback's declared policy
    api.init_app(server)
    dispatch_api.init_app(server)
    alerts_api.init_app(server)
    major_api.init_app(server)
    rosters_api.init_app(server)
    units_api.init_app(server)  # /api/units, /api/tasks/<id>/units (SPEC section 11)
    notifications_api.init_app(server)
    briefings_api.init_app(server)
    open_api.init_app(server)  # /api/open: open data by API key
    exports.init_app(server)  # the officers' tables as CSV and Excel
    metrics.init_app(server, services)
    cli.init_app(server)
    webapp.init_app(app)  # /m's manifest and icons
    language.init_app(app)  # <html lang>, switched in the browser by callbacks/router.py
    first_paint.init_app(app, draw_first_paint)  # the page in its HTML, painted before the scripts run
    fonts.init_app(app)  # the wall's own words' font slices, preloaded
    plotly_bundle.init_app(app)  # the partial Plotly bundle instead of the full plotly.min.js
    app.layout = shell
    register_all(app)
    briefings_callbacks.register_callbacks(app)
    caching.init_app(app)  # a year's cache for the bundles and assets whose URL names their version
    headers.init_app(app)  # CSP and the other browser-hardening headers, on every response
    return app
