"""Keep live pages connected: probe the gateway, manage the socket, take in frames or polls, show status.

The browser side lives in ``assets/live_conn.js``; frames and polls land in the ``live-store``.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from dash import ClientsideFunction, Input, Output, State
from flask import current_app

from dashboard.web.callback_guard import Count, allow, validated
import logging
from sqlalchemy.exc import SQLAlchemyError
from dashboard.panorama.state import build_state, district_state, latest_events, trend
from dashboard.web.auth import reader_scope

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 0.3
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


def gateway_address(cfg: dict) -> tuple[str, int]:
    """Return where this server can reach the websocket gateway: the public URL's host, or the bind address."""
    if cfg.get("PANORAMA_WS_URL"):
        parts = urlsplit(cfg["PANORAMA_WS_URL"])
        return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "wss" else 80)
    host = cfg.get("PANORAMA_WS_HOST") or ""
    return ("127.0.0.1" if host in _WILDCARD_HOSTS else host), int(cfg["PANORAMA_WS_PORT"])


def gateway_reachable(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Tell whether something accepts TCP connections at host:port (a cheap, silent probe)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _client(name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace="panorama", function_name=name)


def register_callbacks(app) -> None:
    """Register the gateway probe and the browser's connection and intake callbacks."""

    # retry timer -> a probe asked, unless one is on its way. dash-renderer drops the answer of a server callback
    # fired again before it lands, and holds `connection` (Input live-probe) while the probe is on its way; the
    # retry ticked every second until `connection` slowed it, so on a heavy /dispatch, where a probe's answer took
    # 0.5-2.4 s behind the page's costly callbacks, no answer ever landed and `connection` never ran again.
    app.clientside_callback(
        _client("probeAsk"),
        Output("live-probe-ask", "data"), Input("live-retry", "n_intervals"),
    )

    # page load, a probe asked -> is the gateway there? (asked here: a missing gateway logs nothing in the browser)
    @allow(app, public=True)  # a kiosk wall holds no session; it says only whether a port answers
    @app.callback(Output("live-probe", "data"), Input("live-probe-ask", "data"))
    @validated
    def probe(n: Count | None):
        up = gateway_reachable(*gateway_address(current_app.extensions["panorama"].config))
        return {"up": up, "n": n or 0}

    # probe result, socket state, watchdog tick -> connection mode, socket url, polling on/off, retry timer
    app.clientside_callback(
        _client("connection"),
        Output("live-conn", "data"), Output("live-ws", "url"), Output("live-poll", "disabled"),
        Output("live-retry", "disabled"), Output("live-retry", "interval"),
        Input("live-probe", "data"), Input("live-ws", "state"), Input("live-tick", "n_intervals"),
        State("live-conn", "data"), State("live-config", "data"), State("live-store", "data"),
    )

    # socket frame or poll tick -> merged live state (snapshot replaces, delta merges, events capped)
    app.clientside_callback(
        _client("intake"),
        Output("live-store", "data"),
        Input("live-ws", "message"), Input("live-poll", "n_intervals"),
        State("live-store", "data"), State("live-conn", "data"), State("live-config", "data"),
    )

    # state, tick -> indicator and banner. Its Inputs follow from no server callback and no callback that hands
    # Dash a Promise: dash-renderer holds a callback while any callback upstream of its Inputs is on its way, and
    # with the connection mode (downstream of the gateway probe) as an Input a heavy /dispatch kept the first
    # render's banner ("stale feeds", drawn before any state) for as long as the probe's answer waited.
    app.clientside_callback(
        _client("status"),
        Output("live-indicator", "children"), Output("live-indicator", "className"),
        Output("alert-banner", "children"), Output("alert-banner", "className"),
        Input("live-store", "data"), Input("live-tick", "n_intervals"),
        State("live-conn", "data"), State("live-config", "data"),
    )

    # config -> the clock, drawn by the page into #clock every second by its own timer (assets/live_render.js:
    # through Dash, a pass over every component each second); writes nothing
    app.clientside_callback(
        _client("clockStart"),
        Output("clock", "children"), Input("live-config", "data"),
    )


def live_settings(cfg: dict) -> dict:
    """Return the configuration a live page hands to the browser."""
    return {"tz": cfg["PANORAMA_TZ"], "ws_url": cfg["PANORAMA_WS_URL"], "ws_port": cfg["PANORAMA_WS_PORT"],
            "stale_after": cfg["PANORAMA_STALE_AFTER"], "cycle_s": cfg["PANORAMA_WALL_CYCLE_S"],
            "poll_ms": cfg["PANORAMA_POLL_MS"]}


def live_state(svc, now: int) -> dict | None:
    """Return the live state a page is first drawn with; None when the database is down (the browser's first
    poll or snapshot fills it in)."""
    scope = reader_scope()  # a district centre's user or wall: their district's, as its socket frames
    try:
        with svc.read() as conn:
            state = build_state(conn, svc.city, now, svc.config["PANORAMA_STALE_AFTER"], svc.risk)
            if scope.district is not None:
                state = district_state({**state, "events": latest_events(conn, district=scope.district)},
                                       scope.district, trend(conn, now, district=scope.district))
            return state
    except SQLAlchemyError:
        log.warning("live state unavailable for the first render", exc_info=True)
        return None
