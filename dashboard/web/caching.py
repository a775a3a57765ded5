"""Let browsers keep the static files whose URL names their version for a year, without asking again."""

from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache

from dash.fingerprint import check_fingerprint
from flask import request

IMMUTABLE = "public, max-age=31536000, immutable"
# Files named by their content, as tools/build_fonts.py names the font slices: name.<sha256's first 16 hex>.ext
_CONTENT_NAMED = re.compile(r"\.([0-9a-f]{16})\.[A-Za-z0-9]+$")


def _inside(folder: str, name: str) -> str | None:
    """Return the real path of ``name`` in ``folder``, or None when it leads outside the folder."""
    path = os.path.realpath(os.path.join(folder, name))
    return path if path.startswith(os.path.realpath(folder) + os.sep) else None


def asset_is_current(folder: str, name: str, stamp: str | None) -> bool:
    """Tell whether ``?m=stamp`` is the modification time of ``name`` in ``folder`` as Dash writes it in pages.

    Dash versions /assets by the file's mtime in the query (``?m=1796474242.17878``), read when the app starts:
    only a URL whose stamp is the file's current one names exactly these bytes.
    """
    path = _inside(folder, name) if stamp else None
    if path is None:
        return False
    try:
        return str(os.path.getmtime(path)) == stamp
    except OSError:
        return False


@lru_cache(maxsize=256)
def _content_digest(path: str, mtime_ns: int, size: int) -> str:
    """Return the sha256 of the file at ``path``, read once per version of it (mtime and size are the key)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def names_its_content(folder: str, name: str) -> bool:
    """Tell whether ``name`` in ``folder`` carries the start of its content's sha256 (``x.<16 hex>.woff2``).

    The font slices are referenced from CSS, where Dash writes no ``?m=``: their names are their version. The
    bytes are checked, so a file edited in place under its old name is not promised to browsers for a year.
    """
    m = _CONTENT_NAMED.search(name)
    path = _inside(folder, name) if m else None
    if path is None:
        return False
    try:
        st = os.stat(path)
        return _content_digest(path, st.st_mtime_ns, st.st_size).startswith(m.group(1))
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
        name = path[len(assets):]
        return (asset_is_current(app.config.assets_folder, name, request.args.get("m"))
                or names_its_content(app.config.assets_folder, name))
    return False


def init_app(app) -> None:
    """Mark the Dash ``app``'s fingerprinted bundles and assets cacheable for a year and immutable."""

    @app.server.after_request
    def _cache_fingerprinted(response):
        if request.method in ("GET", "HEAD") and response.status_code == 200 and is_fingerprinted(app, request.path):
            # Replaces Dash's bare max-age on bundles and Flask's no-cache on assets: a new version has a new URL.
            response.headers["Cache-Control"] = IMMUTABLE
        return response
