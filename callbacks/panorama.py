"""Render the panorama and the wall from the live state in the browser, with partial figure updates.

The functions named here are in ``assets/live_render.js`` and ``assets/live_figures.js``; none talks to the server.
"""

from __future__ import annotations

from dash import ALL, ClientsideFunction, Input, Output, State

from dashboard.core.channels import DOMAINS
from callbacks.live import live_settings, live_state
from dashboard.core.i18n import t
from layouts.panorama import panorama_layout
from layouts.wall import wall_layout


def _client(name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace="panorama", function_name=name)


def register_callbacks(app) -> None:
    """Register the clientside renderers of the live pages."""

    # Each renderer reads only its part of the live state (live-windows / -trend / -events; live-store holds
    # feeds and connection facts), and the page writes a part at most 4 times a second, only when it changed.
    # live state, view -> KPI counts and their change against the previous window
    app.clientside_callback(
        _client("kpis"),
        *[Output(f"kpi-{d}", "children") for d in DOMAINS],
        *[Output(f"kpi-{d}-delta", "children") for d in DOMAINS],
        *[Output(f"kpi-{d}-delta", "className") for d in DOMAINS],
        Input("live-windows", "data"), Input("view", "data"), State("live-config", "data"),
    )

    # (no callback draws the event ticker: the page draws it as frames arrive, see assets/live_render.js)

    # live state, tick -> feed freshness (ages keep counting between frames)
    app.clientside_callback(
        _client("feeds"),
        Output("feed-status", "children"),
        Input("live-store", "data"), Input("live-tick", "n_intervals"), State("live-config", "data"),
    )

    # live state, view, tick (resize) -> patch of the map: colours, labels, spotlight outline, fit
    app.clientside_callback(
        _client("cityMap"),
        Output("city-map", "figure"),
        Input("live-windows", "data"), Input("view", "data"), Input("live-tick", "n_intervals"),
        State("city-map", "figure"), State("live-config", "data"),
    )

    # live state, tick (values held back by the page's redraw limit) -> patch of the trend lines
    app.clientside_callback(
        _client("trend"),
        Output("trend-chart", "figure"),
        Input("live-trend", "data"), Input("live-tick", "n_intervals"), State("live-config", "data"),
        State("trend-chart", "figure"),
    )

    # live state, view -> the five districts at highest risk
    app.clientside_callback(
        _client("riskTop"),
        Output("risk-top", "children"), Input("live-windows", "data"), Input("view", "data"),
        State("live-config", "data"),
    )

    # window and measure selectors -> view
    app.clientside_callback(
        _client("viewControls"),
        Output("view", "data", allow_duplicate=True),
        Input("window-select", "value"), Input("measure-select", "value"), State("view", "data"),
        prevent_initial_call=True,
    )

    # wall timer -> next district in the spotlight
    app.clientside_callback(
        _client("cycle"),
        Output("view", "data", allow_duplicate=True),
        Input("wall-cycle", "n_intervals"), State("view", "data"), State("live-config", "data"),
        prevent_initial_call=True,
    )

    # spotlight district, live state -> the wall's spotlight panel (absent on the desktop page)
    app.clientside_callback(
        _client("spotlight"),
        Output({"opt": "spotlight", "i": ALL}, "children"),
        Input("view", "data"), Input("live-windows", "data"), Input("live-events", "data"),
        State("live-config", "data"),
    )

    # district click -> drill-down page
    app.clientside_callback(
        _client("drillDown"),
        Output("url", "pathname"), Input("city-map", "clickData"), State("live-config", "data"),
        prevent_initial_call=True,
    )


def render(req):
    """Return the panorama (/) drawn from the live state now."""
    cfg = req.svc.config
    note = t("mode_embedded", req.lang) if cfg["EMBEDDED"] else ""
    return panorama_layout(req.svc.city, req.lang, live_state(req.svc, req.now), live_settings(cfg), req.now, note)


def render_wall(req):
    """Return the video wall (/wall) drawn from the live state now."""
    return wall_layout(req.svc.city, req.lang, live_state(req.svc, req.now), live_settings(req.svc.config), req.now)
