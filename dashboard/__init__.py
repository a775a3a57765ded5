"""Panorama's core: configuration, domain model, storage, ingest wiring and the app factory."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Mapping

import dash

ROOT = Path(__file__).resolve().parent.parent


def _secret_key(cfg: dict[str, Any]) -> str:
    """Return the configured secret, or one kept in the instance folder so restarts keep sessions."""
    if cfg["SECRET_KEY"]:
        return cfg["SECRET_KEY"]
    path = Path(cfg["INSTANCE_PATH"]) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(config: Mapping[str, Any] | None = None) -> dash.Dash:
    """Create the Dash app: read configuration, connect services, register API, pages and callbacks."""
    from callbacks import register_all
    from dashboard import api, auth, cli, dispatch_api, metrics
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
    )
    server = app.server
    server.config.update(cfg)
    server.secret_key = _secret_key(cfg)
    # People read the JSON too: keep Chinese readable and fields in the documented order.
    server.json.ensure_ascii = False
    server.json.sort_keys = False
    services = build_services(cfg)
    server.extensions["panorama"] = services
    auth.init_app(server)
    api.init_app(server)
    dispatch_api.init_app(server)
    metrics.init_app(server, services)
    cli.init_app(server)
    app.layout = shell
    register_all(app)
    return app
