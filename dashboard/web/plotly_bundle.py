"""Give the pages the partial Plotly bundle (assets/vendor, tools/plotly) instead of Dash's full plotly.min.js."""

from __future__ import annotations

import functools
from pathlib import Path

from flask import request

VENDOR = "vendor"  # under assets/: served, never listed in a page by Dash (create_app's assets_path_ignore)
PATTERN = "plotly-panorama.*.js"  # tools/plotly/build.js names the file by its content's sha256
META = "panorama-plotly"  # assets/lazy_graphs.js reads the bundle's URL from this meta tag
# The pages that draw a graph as they open: the bundle is a script of theirs, so dcc.Graph finds window.Plotly
# and never loads plotly.min.js. Elsewhere (/m, /briefings, sign-in) nothing of Plotly is loaded; a graph that
# a later in-app navigation mounts loads the bundle itself (the meta tag names it).
PAGES = ("/", "/wall", "/dispatch")
PAGE_PREFIXES = ("/district/",)


def bundle_name(assets_folder: str) -> str | None:
    """Return the bundle's path under ``assets_folder`` (``vendor/plotly-panorama.<hash>.js``), or None."""
    found = sorted((Path(assets_folder) / VENDOR).glob(PATTERN))
    if len(found) > 1:
        raise RuntimeError(f"more than one Plotly bundle in assets/{VENDOR}: rebuild it (npm run build:plotly)")
    return f"{VENDOR}/{found[0].name}" if found else None


def draws_graphs(path: str) -> bool:
    """Tell whether the page at ``path`` draws a graph as it opens."""
    path = path.rstrip("/") or "/"
    return path in PAGES or path.startswith(PAGE_PREFIXES)


def init_app(app) -> None:
    """Name the bundle in every page of the Dash ``app`` and load it on the pages that draw graphs.

    Without a bundle (a tree where it was not built) the pages keep Dash's plotly.min.js, loaded by dcc.Graph.
    """
    name = bundle_name(app.config.assets_folder)
    if name is None:
        return
    url = app.get_asset_url(name)
    meta = f'<meta name="{META}" content="{url}">'
    script = f'<script src="{url}"></script>'
    original = app.interpolate_index

    @functools.wraps(original)
    def interpolate_index(**kwargs):
        kwargs["metas"] = kwargs.get("metas", "") + meta
        if request and draws_graphs(request.path):
            # after Dash's bundles, before the renderer starts: Plotly is there when the first graph mounts
            kwargs["scripts"] = kwargs.get("scripts", "") + script
        return original(**kwargs)

    app.interpolate_index = interpolate_index
