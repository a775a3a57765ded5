"""Send the browser's hardening headers: a Content-Security-Policy on every page, no framing, no sniffing."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import current_app, request

# Hosts as a browser sends them in Host (a name, an IPv4 address or a bracketed IPv6 one): anything else is
# kept out of the policy rather than written into a header.
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])$")

# Everything but the scripts' hashes and the gateway's address, which are the app's and the request's.
# The tightest that every page works under in Chromium (tests/test_headers.py): scripts only from this
# site or by hash (no 'unsafe-inline', no eval); Dash's renderer and Plotly write <style> elements, hence
# 'unsafe-inline' for styles only; the modebar's icons are data: SVGs. No workers: the maps are SVG (geo
# subplots; MapLibre, which started its workers from blob: URLs, is gone). Nothing comes from another site, and no page may be framed, by another site or this one.
_POLICY = (
    "default-src 'self'",
    "script-src 'self' {hashes}",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'{gateway}",
    "worker-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "object-src 'none'",
)
ALWAYS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def gateway_sources(ws_url: str | None, ws_port: int, host: str) -> list[str]:
    """Return the sources the pages' websocket needs: the configured gateway URL's origin, else this host's port."""
    if ws_url:
        parts = urlsplit(ws_url)
        return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if not _HOST.match(hostname or ""):
        return []
    # the browser picks ws: or wss: by the page's own scheme (assets/live_conn.js)
    return [f"ws://{hostname}:{ws_port}", f"wss://{hostname}:{ws_port}"]


def page_policy(script_hashes: list[str], gateway: list[str]) -> str:
    """Return the Content-Security-Policy of a page that runs these inline scripts and talks to ``gateway``."""
    return "; ".join(_POLICY).format(hashes=" ".join(script_hashes),
                                     gateway="".join(" " + g for g in gateway))


def init_app(app) -> None:
    """Add the headers to every response of the Dash ``app``; the policy to every HTML one without its own.

    Registered last, so it sees the responses of every other part (the pages, the API, the error pages).
    """

    @app.server.after_request
    def _harden(response):
        for name, value in ALWAYS.items():
            response.headers.setdefault(name, value)
        if "Content-Security-Policy" in response.headers:
            return response  # a response with a policy of its own (the briefing report) keeps it whole
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            cfg = current_app.config
            # Dash writes its renderer and the clientside callbacks into the page as inline scripts: their
            # hashes, asked at answer time, are what the page may run inline, and nothing else.
            gateway = gateway_sources(cfg["PANORAMA_WS_URL"], cfg["PANORAMA_WS_PORT"], request.host)
            response.headers["Content-Security-Policy"] = page_policy(list(app.csp_hashes()), gateway)
        return response
