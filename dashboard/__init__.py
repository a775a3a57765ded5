"""Panorama's core: configuration, domain model, storage, ingest wiring and the app factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import dash

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Mapping[str, Any] | None = None) -> dash.Dash:
    """Create the Dash app: read configuration, connect services, register API, pages and callbacks."""
    from callbacks import briefings as briefings_callbacks
    from callbacks import register_all
    from dashboard.briefings import api as briefings_api
    from dashboard import api, auth, callback_guard, cli, dispatch_api, headers, metrics, webapp
    from dashboard.config import load_config
    from dashboard.i18n import t
    from dashboard.services import build_services
    from layouts.shell import shell

    cfg = load_config(config)
    app = dash.Dash(
        __name__,
        assets_folder=str(ROOT / "assets"),
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
    auth.init_app(server)
    callback_guard.init_app(app)  # after auth: Origin and CSRF first, then each callback's declared policy
    api.init_app(server)
    dispatch_api.init_app(server)
    briefings_api.init_app(server)
    metrics.init_app(server, services)
    cli.init_app(server)
    webapp.init_app(app)  # /m's manifest and icons
    app.layout = shell
    register_all(app)
    briefings_callbacks.register_callbacks(app)
    headers.init_app(app)  # CSP and the other browser-hardening headers, on every response
    return app
