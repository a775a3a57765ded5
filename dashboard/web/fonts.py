"""Preload the wall's own font slices, so a kiosk without a CJK font gets its Chinese with the page."""

from __future__ import annotations

import functools
from pathlib import Path

from flask import request

# What the wall's own words need (tools/build_fonts.py's "ui" slices, regular and bold): its title, labels and
# the city's names. Other slices stay on demand; a machine with a CJK font fetches none of them but these.
PRELOADED = ("panorama-sc-400-ui.*.woff2", "panorama-sc-700-ui.*.woff2")
PAGES = ("/wall",)


def preloads(assets_folder: str, asset_url) -> str:
    """Return the ``<link rel=preload>`` of each preloaded slice found under ``assets_folder``/fonts."""
    fonts = Path(assets_folder) / "fonts"
    links = []
    for pattern in PRELOADED:
        for path in sorted(fonts.glob(pattern)):
            # crossorigin: fonts are fetched in CORS mode, and a preload must be fetched the same way to be used
            links.append(f'<link rel="preload" href="{asset_url("fonts/" + path.name)}" as="font" '
                         f'type="font/woff2" crossorigin>')
    return "".join(links)


def init_app(app) -> None:
    """Put the preloads into the head of the Dash ``app``'s PAGES, ahead of its stylesheets."""
    links = preloads(app.config.assets_folder, app.get_asset_url)
    pages = {app.get_relative_path(p) for p in PAGES}
    original = app.interpolate_index

    @functools.wraps(original)
    def interpolate_index(**kwargs):
        if links and request and request.path in pages:
            kwargs["css"] = links + kwargs.get("css", "")
        return original(**kwargs)

    app.interpolate_index = interpolate_index
