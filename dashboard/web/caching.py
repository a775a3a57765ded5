"""Let browsers keep the static files whose URL names their version for a year, without asking again."""

from __future__ import annotations

import os

from dash.fingerprint import check_fingerprint
from flask import request

IMMUTABLE = "public, max-age=31536000, immutable"


def asset_is_current(folder: str, name: str, stamp: str | None) -> bool:
    """Tell whether ``?m=stamp`` is the modification time of ``name`` in ``folder`` as Dash writes it in pages.

    Dash versions /assets by the file's mtime in the query (``?m=1796474242.17878``), read when the app starts:
    only a URL whose stamp is the file's current one names exactly these bytes.
    """
    if not stamp:
        return False
    path = os.path.realpath(os.path.join(folder, name))
    if not path.startswith(os.path.realpath(folder) + os.sep):
        return False
    try:
        return str(os.path.getmtime(path)) == stamp
    except OSError:
        return False


def is_fingerprinted(app, path: str) -> bool:
    """Tell whether ``path`` is a Dash bundle or an asset whose URL carries the version of its content."""
    prefix = app.config.routes_pathname_prefix
    suites = f"{prefix}_dash-component-suites/"
    assets = f"{prefix}{app.config.assets_url_path.strip('/')}/"
    if path.startswith(suites):
        # /_dash-component-suites/<package>/<file>.v<version>m<hash>.js; the bare name is the unversioned alias
        return check_fingerprint(path[len(suites):].partition("/")[2])[1]
    if path.startswith(assets):
        return asset_is_current(app.config.assets_folder, path[len(assets):], request.args.get("m"))
    return False


def init_app(app) -> None:
    """Mark the Dash ``app``'s fingerprinted bundles and assets cacheable for a year and immutable."""

    @app.server.after_request
    def _cache_fingerprinted(response):
        if request.method in ("GET", "HEAD") and response.status_code == 200 and is_fingerprinted(app, request.path):
            # Replaces Dash's bare max-age on bundles and Flask's no-cache on assets: a new version has a new URL.
            response.headers["Cache-Control"] = IMMUTABLE
        return response
