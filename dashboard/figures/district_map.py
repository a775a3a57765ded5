"""Draw a district centre's wall map: its district alone, fitted to its outline, with its located events and open
incidents placed on it (SPEC section 13). Pure, no I/O.

The map is ``make_city_map`` of a city of one district, so the browser's patches of ``city-map`` hold as on the
city's wall (``data[0]`` the district, ``layout.annotations[0]`` its label, ``layout.meta.bounds`` its outline's
box), then the alert outlines (``data[1..5]``, figures/alert_map.py), then ``data[EVENTS_TRACE]`` the events and
``data[INCIDENTS_TRACE]`` the open incidents, which the wall's street refresh patches by index, and last the
streets as areas coloured by their events (``add_street_areas``; a choropleth, so Plotly draws it under every
point and line whatever its index): the pack's streets.geojson, or cells of its streets' centres marked
approximate (dashboard/core/street_areas.py). The drill-down's map is the district and its streets alone.
"""

from __future__ import annotations

from types import SimpleNamespace

import plotly.graph_objects as go
import shapely
from shapely.geometry import box, shape

from dashboard.core.i18n import kind_label, t
from dashboard.figures.alert_map import FIRST_TRACE
from dashboard.figures.panorama import DOMAIN_COLORS, THEMES, fit_view, make_city_map, plain, project

EVENTS_TRACE = FIRST_TRACE + 5  # after the halo and the four alert levels
INCIDENTS_TRACE = EVENTS_TRACE + 1
STREETS_TRACE = INCIDENTS_TRACE + 1  # a district wall's street areas (add_street_areas), where the pack has them
SEVERITY_PX = {1: 7, 2: 9, 3: 12, 4: 15}  # an event's dot grows with its severity
INCIDENT_COLOR = "#ff3b7f"  # apart from every domain's colour: an incident is not one more event


def district_city(city, code: str) -> SimpleNamespace:
    """Return ``city`` as one district's map sees it: that district and its outline only."""
    return SimpleNamespace(districts=tuple(d for d in city.districts if d.code == code),
                           geojson={"type": "FeatureCollection",
                                    "features": [f for f in city.geojson["features"] if f.get("id") == code]})


def make_district_map(window: dict | None, city, code: str, measure: str, lang: str, theme: str,
                      size: tuple[int, int], label_px: float, labels: bool = True) -> go.Figure:
    """Return the map of district ``code`` alone, fitted to its outline (no points yet: ``add_points``); without
    its label as an annotation when ``labels`` is false (the live pages draw it as HTML: map_label_layer)."""
    return make_city_map(window, district_city(city, code), measure, lang, theme=theme, size=size, label_px=label_px,
                         labels=labels)


def _hover(row: dict, lang: str) -> str:
    return plain(row.get("title") or kind_label(row["kind"], lang))


def point_values(points: dict | None, lang: str) -> dict:
    """Return the arrays of the events' and incidents' traces (the figure's and the patch's alike)."""
    evs, incs = (points or {}).get("events") or [], (points or {}).get("incidents") or []
    return {"events": {"lon": [r["lon"] for r in evs], "lat": [r["lat"] for r in evs],
                       "text": [_hover(r, lang) for r in evs],
                       "marker.color": [DOMAIN_COLORS.get(r["domain"], "#888888") for r in evs],
                       "marker.size": [SEVERITY_PX.get(r["severity"], 9) for r in evs]},
            "incidents": {"lon": [r["lon"] for r in incs], "lat": [r["lat"] for r in incs],
                          "text": [plain(t("sev_" + str(r["severity"]), lang)) + " · " + _hover(r, lang) for r in incs]}}


def add_points(fig: go.Figure, points: dict | None, lang: str, theme: str = "dark") -> go.Figure:
    """Return the district map with its events (``data[EVENTS_TRACE]``) and open incidents (``data[INCIDENTS_TRACE]``)
    added; call after the alert outlines (``with_outlines``)."""
    if len(fig.data) != EVENTS_TRACE:
        raise ValueError("the points follow the district and its alert outlines (with_outlines first)")
    values = point_values(points, lang)
    ev, inc = values["events"], values["incidents"]
    fig.add_trace(go.Scattergeo(
        lon=ev["lon"], lat=ev["lat"], text=ev["text"], mode="markers", name=t("latest_events", lang),
        showlegend=False, hovertemplate="%{text}<extra></extra>",
        marker={"color": ev["marker.color"], "size": ev["marker.size"], "opacity": 0.85,
                "line": {"color": THEMES[theme]["line"], "width": 1}}))
    fig.add_trace(go.Scattergeo(
        lon=inc["lon"], lat=inc["lat"], text=inc["text"], mode="markers", name=t("open_incidents", lang),
        showlegend=False, hovertemplate="%{text}<extra></extra>",
        marker={"color": INCIDENT_COLOR, "size": 16, "symbol": "diamond", "opacity": 0.95,
                "line": {"color": THEMES[theme]["ink"], "width": 2}}))
    return fig


def street_values(areas, streets: list[dict] | None, lang: str) -> dict:
    """Return the arrays of the street areas' trace (the figure's and the patch's alike): each area's events in the
    window (``z``, 0 for a street with none) and its hover text (escaped: shown as text)."""
    rows = {s["name"]: s for s in streets or []}
    z, text = [], []
    for feature in areas.geojson["features"]:
        row = rows.get(feature["id"]) or {}
        n = int(row.get("total", sum((row.get("counts") or {}).values())))
        name = (feature["properties"].get("name_en") or feature["id"]) if lang == "en" else feature["id"]
        z.append(n)
        text.append(plain(name) + "<br>" + plain(t("n_events", lang, n=n)))
    return {"z": z, "text": text, "zmax": max([1, *z])}


BAR_LEN, BAR_PX = 0.32, 48  # the streets' colour bar: its share of the map's width, its height with title and ticks


def bar_corner(fig: go.Figure, areas, size: tuple[int, int]) -> tuple[float, str]:
    """Return the ``y`` and ``yanchor`` of the streets' colour bar at the map's right: the top right corner, or the
    bottom right where the district reaches the top right and less of it the bottom right (Luohu's north-east did:
    the bar and its ticks lay over its streets). The district is projected as the map shows it on ``size`` px
    (fitted to ``layout.meta.bounds``, as the browser refits it); the left corners hold the note and the legend."""
    w, h = size
    view = fit_view(tuple(fig.layout.meta["bounds"]), w, h)
    district = shapely.union_all([shape(f["geometry"]) for f in areas.geojson["features"]])
    on_map = shapely.transform(district, lambda xy: [project(lon, lat, view, w, h) for lon, lat in xy])
    tall = BAR_PX / h
    corners = ((0.97, "top", box(0.98 - BAR_LEN, 0.97 - tall, 0.98, 0.97)),
               (0.03, "bottom", box(0.98 - BAR_LEN, 0.03, 0.98, 0.03 + tall)))
    y, anchor, _ = min(corners, key=lambda c: on_map.intersection(c[2]).area)  # the top right on a tie
    return y, anchor


def add_street_areas(fig: go.Figure, areas, streets: list[dict] | None, lang: str, theme: str,
                     size: tuple[int, int] | None = None) -> go.Figure:
    """Return the district map with its streets drawn as areas coloured by their events in the window (one more
    choropleth, the last trace: over the district's own, under every point and outline), the district's colour
    bar giving way to the streets'. ``areas``: the district's ``StreetAreas`` (city.street_areas); ``size``: the
    map's px size, to put the colour bar in the right corner the district leaves clear (``bar_corner``; without
    it, the top right)."""
    th, values = THEMES[theme], street_values(areas, streets, lang)
    y, anchor = bar_corner(fig, areas, size) if size else (0.97, "top")
    fig.update_traces(showscale=False, selector=0)
    fig.add_trace(go.Choropleth(
        geojson=areas.geojson, featureidkey="id", locations=areas.names, z=values["z"], zmin=0, zmax=values["zmax"],
        colorscale=th["counts"], text=values["text"], hovertemplate="%{text}<extra></extra>", showlegend=False,
        name=t("street_events", lang), marker={"line": {"color": th["line"], "width": 1}, "opacity": 0.92},
        colorbar={"orientation": "h", "x": 0.98, "xanchor": "right", "y": y, "yanchor": anchor,
                  "len": BAR_LEN, "thickness": 10, "title": {"text": t("street_events", lang), "side": "top"},
                  "tickfont": {"color": th["muted"]}, "outlinewidth": 0}))
    return fig


DRILL_MAP_SIZE = (960, 420)  # the drill-down's map, full width of its grid; Plotly fits the outline to the real box


def make_street_map(city, code: str, areas, streets: list[dict] | None, lang: str, theme: str = "light",
                    size: tuple[int, int] = DRILL_MAP_SIZE) -> go.Figure:
    """Return the drill-down's map of district ``code``: its outline, and its streets as areas coloured by their
    events in the window (``streets``: the district summary's rows) where ``areas`` (city.street_areas) has them."""
    fig = make_district_map(None, city, code, "all", lang, theme, size, 12, labels=False)
    fig.update_layout(uirevision="streets-map", height=size[1])
    if areas is None:
        return fig
    # the colour bar in a strip of its own above the district: the map is as wide as its panel, and where the
    # district's outline falls in it (centred at the height's scale) is the browser's to decide
    fig.update_geos(domain={"x": [0, 1], "y": [0, 1 - BAR_PX / size[1]]})
    fig = add_street_areas(fig, areas, streets, lang, theme)
    fig.data[-1].colorbar.update(y=1, yanchor="top")
    return fig
