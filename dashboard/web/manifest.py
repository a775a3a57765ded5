"""Make /m installable: its web app manifest, its icons (drawn here as PNG, no image library) and the head links."""

from __future__ import annotations

import functools
import math
import struct
import zlib

from flask import Response, abort, request

from dashboard.core.i18n import t

SIZES = (192, 512)
MANIFEST_PATH = "/m/manifest.webmanifest"
ICON_PATH = "/m/icon-{size}.png"
THEME = "#0f2740"
_BG, _RING, _DOT = (0x0F, 0x27, 0x40), (0x5E, 0xEA, 0xD4), (0xEF, 0x44, 0x44)
# What the page's head gets on /m (and only there: installing a desk page would open /m otherwise).
HEAD_LINKS = (f'<link rel="manifest" href="{MANIFEST_PATH}">'
              f'<meta name="theme-color" content="{THEME}">'
              '<meta name="mobile-web-app-capable" content="yes">'
              '<meta name="apple-mobile-web-app-capable" content="yes">'
              '<meta name="apple-mobile-web-app-status-bar-style" content="black-translucent">'
              f'<link rel="apple-touch-icon" href="{ICON_PATH.format(size=192)}">')


def manifest(lang: str = "zh") -> dict:
    """Return the web app manifest of /m (name in ``lang``)."""
    name = t("app_title", lang)
    return {
        "name": name, "short_name": "指挥" if lang != "en" else "Command", "lang": "zh-CN" if lang != "en" else "en",
        "description": "城市运行指挥 · the commander's view" if lang != "en" else "The commander's view",
        "start_url": "/m", "scope": "/m", "id": "/m", "display": "standalone", "orientation": "portrait",
        "background_color": THEME, "theme_color": THEME,
        "icons": [{"src": ICON_PATH.format(size=s), "sizes": f"{s}x{s}", "type": "image/png", "purpose": "any maskable"}
                  for s in SIZES],
    }


def _png(width: int, height: int, rows: list[bytes]) -> bytes:
    """Encode 8-bit RGB rows as a PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every row
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _mix(a: tuple, b: tuple, k: float) -> tuple:
    return tuple(round(x + (y - x) * k) for x, y in zip(a, b))


@functools.lru_cache(maxsize=len(SIZES))
def icon_png(size: int) -> bytes:
    """Draw the icon at ``size`` px: a radar ring and a red dot on navy, inside the maskable safe zone."""
    c = (size - 1) / 2
    ring_r, ring_w, dot_r = size * 0.28, size * 0.055, size * 0.09  # all within the central 80 % circle
    rows = []
    for y in range(size):
        row = bytearray()
        for x in range(size):
            dist = math.hypot(x - c, y - c)
            colour = _BG
            ring = min(1.0, max(0.0, ring_w / 2 + 0.5 - abs(dist - ring_r)))  # anti-aliased edges
            if ring:
                colour = _mix(colour, _RING, ring)
            dot = min(1.0, max(0.0, dot_r + 0.5 - dist))
            if dot:
                colour = _mix(colour, _DOT, dot)
            row += bytes(colour)
        rows.append(bytes(row))
    return _png(size, size, rows)


def _with_head_links(original):
    """Wrap Dash's index so /m's page carries the manifest and icon links in its head."""
    @functools.wraps(original)
    def interpolate_index(**kwargs):
        path = request.path.rstrip("/") if request else ""
        if path == "/m":
            kwargs["metas"] = kwargs.get("metas", "") + HEAD_LINKS
        return original(**kwargs)
    return interpolate_index


def init_app(app) -> None:
    """Serve the manifest (``application/manifest+json``) and icons, and link them from /m's head."""
    server = app.server

    @server.get(MANIFEST_PATH, endpoint="webapp_manifest")
    def webapp_manifest():
        # Browsers fetch a manifest without cookies, so it is public; it says nothing about the city.
        lang = "en" if (request.accept_languages.best_match(["zh", "en"]) == "en") else "zh"
        res = server.json.response(manifest(lang))
        res.mimetype = "application/manifest+json"
        res.headers["Cache-Control"] = "public, max-age=3600"
        return res

    @server.get("/m/icon-<int:size>.png", endpoint="webapp_icon")
    def webapp_icon(size: int):
        if size not in SIZES:
            abort(404)
        return Response(icon_png(size), mimetype="image/png", headers={"Cache-Control": "public, max-age=86400"})

    app.interpolate_index = _with_head_links(app.interpolate_index)
