"""Keep a district centre's wall current beyond the live frames (SPEC section 13): its streets, busiest first,
and the events and open incidents on its map, re-read every few seconds (layouts/wall.py STREETS_MS)."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from dash import ALL, Input, Output, Patch, State, callback_context
from dash.exceptions import PreventUpdate
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from dashboard.figures.district_map import EVENTS_TRACE, INCIDENTS_TRACE, STREETS_TRACE, point_values, street_values
from dashboard.panorama import district_wall
from dashboard.web.auth import may_watch, reader_scope
from dashboard.web.callback_guard import Lang, allow, validated
from layouts.wall import STREET_DATA, street_bars, street_data

log = logging.getLogger(__name__)


def read(svc, code: str, now_ms: int) -> tuple[dict, dict]:
    """Return district ``code``'s streets and map points now."""
    district = svc.city.by_code[code]
    with svc.read() as conn:
        return (district_wall.streets(conn, svc.city, district, now_ms, svc.config["PANORAMA_TZ"]),
                district_wall.map_points(conn, code, now_ms))


def points_patch(points: dict, lang: str, areas=None, streets: dict | None = None) -> Patch:
    """Return the patch of ``city-map`` that places the district's events and open incidents anew and colours its
    street areas (``areas``: the district's, when the map draws them) by their events now."""
    patch, values = Patch(), point_values(points, lang)
    if areas is not None:
        colours = street_values(areas, (streets or {}).get("streets"), lang)
        for key in ("z", "text", "zmax"):
            patch["data"][STREETS_TRACE][key] = colours[key]
    for trace, part in ((EVENTS_TRACE, values["events"]), (INCIDENTS_TRACE, values["incidents"])):
        for key in ("lon", "lat", "text"):
            patch["data"][trace][key] = part[key]
    patch["data"][EVENTS_TRACE]["marker"]["color"] = values["events"]["marker.color"]
    patch["data"][EVENTS_TRACE]["marker"]["size"] = values["events"]["marker.size"]
    return patch


def register_callbacks(app) -> None:
    """Register the district wall's refresh."""

    # tick -> the district's street bars, the spotlight's round, the map's events and incidents (only on a
    # district wall: the tick is on no other page)
    @allow(app, public=True)  # a kiosk wall holds no session: may_watch() admits a viewer or a live kiosk token
    @app.callback(Output("wall-streets", "figure"), Output({**STREET_DATA, "i": ALL}, "data"),
                  Output("city-map", "figure", allow_duplicate=True),
                  Input("wall-streets-tick", "n_intervals"), State({**STREET_DATA, "i": ALL}, "data"),
                  State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def refresh(_tick: Any, shown: Any, lang: Lang):  # shown: the one street store, as a pattern's list
        own = reader_scope().district
        if own is None or not may_watch():  # a city reader has no district wall; a stale kiosk nothing
            raise PreventUpdate
        svc, lang = current_app.extensions["panorama"], lang if lang in ("zh", "en") else "zh"
        try:
            streets, points = read(svc, own, svc.clock())
        except SQLAlchemyError:
            log.warning("district wall unavailable", exc_info=True)
            raise PreventUpdate from None
        data = street_data(streets, own)
        data["digest"] = hashlib.blake2b(orjson.dumps([data["streets"], points, lang]), digest_size=8).hexdigest()
        if any(isinstance(s, dict) and s.get("digest") == data["digest"] for s in shown or []):
            raise PreventUpdate
        stores = len(callback_context.outputs_list[1])
        return (street_bars(streets, lang), [data] * stores,
                points_patch(points, lang, svc.city.street_areas.get(own), streets))
