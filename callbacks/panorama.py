"""Render the panorama and the wall from the live state in the browser, with partial figure updates.

The functions named here are in ``assets/live_render.js`` and ``assets/live_figures.js``; none talks to the server.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from dash import ALL, ClientsideFunction, Input, Output, State, callback_context
from dash.exceptions import PreventUpdate
from flask import current_app
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from sqlalchemy.exc import SQLAlchemyError

from dashboard.core.channels import DOMAINS
from dashboard.core.scope import Scope
from dashboard.dispatch.desk import scope
from dashboard.panorama import district as district_data
from dashboard.panorama import district_wall
from dashboard.panorama import replay
from dashboard.panorama.state import trend
from dashboard.web.auth import current_user, kiosk_token_of, may_watch, reader_scope
from dashboard.web.callback_guard import allow, validated
from callbacks import alerts, wall_district
from callbacks.live import live_settings, live_state
from dashboard.core.i18n import error_text, t
from layouts.alerts import rows_of
from layouts.panorama import panorama_layout
from layouts.replay import replay_refused
from layouts.wall import wall_layout


SPOT_INCIDENTS = 5  # the spotlit district's open incidents shown, most severe and most recent first


def _client(name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace="panorama", function_name=name)


class SpotView(BaseModel):
    """The part of the page's view the spotlight reads (the rest is the page's own)."""

    model_config = ConfigDict(strict=True, extra="ignore")
    highlight: Annotated[StrictStr, Field(max_length=64)] | None = None
    replay: bool = False  # a replayed page's view: the spotlight is read as of the replayed minute


def spot_data(svc, code: str, now_ms: int, department: str | None, replayed: bool = False) -> dict:
    """Return what the wall's spotlight shows of one district beside its counts: its per-minute trend and its
    open incidents (only what a screen shows of them: no tasks, departments or notes); ``replayed``: as they
    stood at ``now_ms``, a replayed minute."""
    with svc.read(primary=department is not None) as conn:  # a liaison's scope reads the primary
        if replayed:
            rows, count = replay.incidents_as_of(conn, code, now_ms, SPOT_INCIDENTS, department)
        else:
            rows = district_data.open_incidents(conn, code, SPOT_INCIDENTS, department)
            count = district_data.open_incident_count(conn, code, department)
        return {"code": code, "trend": trend(conn, now_ms, district=code),
                "open": count,
                "incidents": [{"id": r["id"], "title": r["title"], "kind": r["kind"], "severity": r["severity"],
                               "status": r["status"], "opened_ms": r["opened_ms"]} for r in rows]}


def register_callbacks(app) -> None:
    """Register the clientside renderers of the live pages."""

    # Each renderer reads only its part of the live state (live-windows / -map / -trend / -events; live-store holds
    # feeds and connection facts), and the page writes a part at most 4 times a second, only when it changed.
    # live state, view -> KPI counts and their change against the previous window, drawn by the page into the
    # tiles (assets/live_render.js: a text Dash writes is a pass over every component); writes nothing
    app.clientside_callback(
        _client("kpis"),
        *[Output(f"kpi-{d}", "children") for d in DOMAINS],
        *[Output(f"kpi-{d}-delta", "children") for d in DOMAINS],
        *[Output(f"kpi-{d}-delta", "className") for d in DOMAINS],
        Input("live-windows", "data"), Input("view", "data"), State("live-config", "data"),
    )

    # (no callback draws the event ticker: the page draws it as frames arrive, see assets/live_render.js)

    # (no callback draws the feeds' freshness: the page draws it from the live state the status callback reads,
    # and counts its ages on every second, see assets/live_render.js)

    # live state, view, redraw asked (held-back values, a resized map) -> patch of the map: colours, spotlight
    # outline, fit (its labels are HTML the page writes: assets/live_figures.js)
    app.clientside_callback(
        _client("cityMap"),
        Output("city-map", "figure"),
        Input("live-map", "data"), Input("view", "data"), Input("live-redraw", "data"),
        State("city-map", "figure"), State("live-config", "data"),
    )

    # live state, redraw asked (values held back by the page's redraw limit, a resized wall) -> patch of the trend
    app.clientside_callback(
        _client("trend"),
        Output("trend-chart", "figure"),
        Input("live-trend", "data"), Input("live-redraw", "data"), State("live-config", "data"),
        State("trend-chart", "figure"),
    )

    # live state, view -> the five districts at highest risk, drawn by the page into the list's rows (new
    # components through Dash on every write); writes nothing
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

    # wall timer -> next district (a district wall: next of its busiest streets) in the spotlight
    app.clientside_callback(
        _client("cycle"),
        Output("view", "data", allow_duplicate=True),
        Input("wall-cycle", "n_intervals"), State("view", "data"), State("live-config", "data"),
        State({"opt": "street-data", "i": ALL}, "data"),
        prevent_initial_call=True,
    )

    # spotlight district (or street), live state, a district wall's streets -> the wall's spotlight panel (absent
    # on the desktop page)
    app.clientside_callback(
        _client("spotlight"),
        Output({"opt": "spotlight", "i": ALL}, "children"),
        Input("view", "data"), Input("live-windows", "data"), Input({"opt": "street-data", "i": ALL}, "data"),
        State("live-config", "data"),
    )

    # spotlight district, trend's minute -> that district's trend and open incidents (read from SQL)
    @allow(app, public=True)  # a kiosk wall holds no session: may_watch() admits a viewer or a live kiosk token
    @app.callback(Output({"opt": "spot-data", "i": ALL}, "data"),
                  Input("view", "data"), Input("live-trend", "data"))
    @validated
    def spotlight_data(view: SpotView | None, trend_data: object = None):
        outputs = callback_context.outputs_list
        if not outputs or view is None or not view.highlight or not may_watch():
            raise PreventUpdate
        svc = current_app.extensions["panorama"]
        own = reader_scope().district
        street = _own_street(svc.city, own, view.highlight)
        district = svc.city.resolve(view.highlight) if street is None else None
        if street is None and (district is None or not reader_scope().sees(district.code)):
            raise PreventUpdate  # another district's (or nothing's): nothing for a district centre
        now = svc.clock()
        if view.replay:  # the replayed minute is the end of the trend the page shows (checked: never the future)
            end = replay.trend_end(trend_data)
            if end is None or end > now or street is not None:  # a street's incidents are not replayed
                raise PreventUpdate
            now = end
        if street is not None:  # a district wall's spotlight: one of its streets
            with svc.read(primary=scope(current_user()) is not None) as conn:
                data = district_wall.street_spot(conn, svc.city, own, street, now, scope(current_user()),
                                                 SPOT_INCIDENTS)
        else:
            data = spot_data(svc, district.code, now, scope(current_user()), view.replay)
        return [data] * len(outputs)

    # spotlight data, view -> the spotlight's trend lines and incident list
    app.clientside_callback(
        _client("spotTrend"),
        Output({"opt": "spot-trend", "i": ALL}, "figure"),
        Input({"opt": "spot-data", "i": ALL}, "data"), Input("view", "data"), State("live-config", "data"),
    )
    app.clientside_callback(
        _client("spotIncidents"),
        Output({"opt": "spot-incidents", "i": ALL}, "children"),
        Input({"opt": "spot-data", "i": ALL}, "data"), Input("view", "data"), State("live-config", "data"),
    )

    # district click -> drill-down page
    app.clientside_callback(
        _client("drillDown"),
        Output("url", "pathname"), Input("city-map", "clickData"), State("live-config", "data"),
        prevent_initial_call=True,
    )


def _own_street(city, own: str | None, name: str) -> str | None:
    """Return the street of district ``own`` named ``name`` (its Chinese name, as a district wall's spotlight
    holds it), None when there is no such street or no district."""
    district = city.by_code.get(own) if own else None
    return next((s.name for s in district.streets if s.name == name), None) if district else None


def render(req):
    """Return the panorama (/) drawn from the live state now, or replayed (``?at=&speed=``, layouts/replay.py)."""
    cfg = req.svc.config
    note = t("mode_embedded", req.lang) if cfg["EMBEDDED"] else ""
    asked = _replay_asked(req)
    if isinstance(asked, replay.BadReplay):
        return replay_refused(req.lang, error_text(asked, req.lang), req.path)
    if asked is not None:  # the alerts of then; no outlines on the map (their redraw reads the alerts of now)
        state = _replay_state(req.svc, asked["at"], reader_scope())
        return panorama_layout(req.svc.city, req.lang, state, {**live_settings(cfg), "replay": asked}, asked["at"],
                               note, _replayed_alerts(req, state, "desk"))
    rows = alerts.open_alerts_or_none(req.svc)
    return panorama_layout(req.svc.city, req.lang, live_state(req.svc, req.now), live_settings(cfg), req.now, note,
                           alerts.panel(req.svc, req.lang, "desk", rows), rows)


def render_wall(req):
    """Return the video wall (/wall) drawn from the live state now, or replayed (``?at=&speed=``: a kiosk's
    replay is its address)."""
    asked = _replay_asked(req)
    if isinstance(asked, replay.BadReplay):
        return replay_refused(req.lang, error_text(asked, req.lang), req.path)
    reader = reader_scope(kiosk_token_of(req.search))
    own = reader.district  # a district centre's wall: its district by street
    if asked is not None:
        state = _replay_state(req.svc, asked["at"], reader)
        return wall_layout(req.svc.city, req.lang, state, {**live_settings(req.svc.config), "replay": asked},
                           asked["at"], _replayed_alerts(req, state, "wall"), district=own,
                           district_view=_district_view(req.svc, own, asked["at"]))
    rows = alerts.open_alerts_or_none(req.svc)
    return wall_layout(req.svc.city, req.lang, live_state(req.svc, req.now), live_settings(req.svc.config), req.now,
                       alerts.panel(req.svc, req.lang, "wall", rows), rows, own, _district_view(req.svc, own, req.now))


def _district_view(svc, own: str | None, now_ms: int) -> dict | None:
    """Return a district wall's streets and map points as of ``now_ms`` (None on the city's wall; empty when the
    database cannot say: the page still draws, and its refresh fills them)."""
    if own is None:
        return None
    try:
        streets, points = wall_district.read(svc, own, now_ms)
    except SQLAlchemyError:
        return {}
    return {"streets": streets, "points": points}


def _replay_asked(req) -> dict | replay.BadReplay | None:
    """Return the replay a page's address asks for (``at``, ``speed``), None for the live page, or why not."""
    query = parse_qs((req.search or "").lstrip("?"))
    if "at" not in query and "speed" not in query:
        return None
    cfg = req.svc.config
    days, tz = int(cfg["PANORAMA_ROLLUP_RETENTION_DAYS"]), cfg["PANORAMA_TZ"]
    try:
        at = replay.parse_at(query.get("at", [""])[0], req.now, days, replay.PAGE_MINUTES, tz)
        speed = replay.parse_speed(query.get("speed", [None])[0])
    except replay.BadReplay as err:
        return err
    return {"at": at, "speed": speed, "floor": replay.earliest(req.now, days, replay.PAGE_MINUTES), "now": req.now,
            "live": req.path, "tz": tz}


def _replayed_alerts(req, state: dict | None, page: str):
    """Return the alerts panel of a replayed page: the alerts open at its minute (assets/live_alerts.js redraws
    them at each minute played)."""
    return alerts.panel(req.svc, req.lang, page, rows_of((state or {}).get("alerts") or []), replay=True)


def _replay_state(svc, at_ms: int, reader: Scope) -> dict | None:
    """Return the state the replayed page is first drawn with, as ``reader`` reads it (None when the database
    cannot answer)."""
    try:
        with svc.read() as conn:
            state = replay.replay_state(conn, svc.city, at_ms, svc.config["PANORAMA_STALE_AFTER"],
                                        svc.config["PANORAMA_TZ"])
            return replay.scoped(state, reader, lambda code: trend(conn, at_ms, district=code))
    except SQLAlchemyError:
        return None
