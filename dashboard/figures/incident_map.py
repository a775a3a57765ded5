"""Build the map of one incident's place: its district among the city's, its reports as points (offline)."""

from __future__ import annotations

import plotly.graph_objects as go

from dashboard.figures.panorama import font_family, THEMES, bounds, fit_view, geo_view, plain
from dashboard.core.i18n import district_name, kind_label

MARK = "#dc2626"  # the reports: the same red as an overdue countdown
DISTRICT_FILL = [[0, "#eef2f7"], [1, "#fde2c4"]]  # other districts | the incident's district
SIZE = (420, 240)  # px the map is fitted for; the page keeps its box in these proportions (layouts/dispatch.py)


def report_points(reports: list[dict], incident: dict) -> list[dict]:
    """Return the reports that carry coordinates, or the incident's own point, as {lat, lon, text}."""
    points = [{"lat": r["lat"], "lon": r["lon"], "text": r.get("title") or r.get("kind") or ""}
              for r in reports if r.get("lat") is not None and r.get("lon") is not None]
    if not points and incident.get("lat") is not None and incident.get("lon") is not None:
        points = [{"lat": incident["lat"], "lon": incident["lon"], "text": incident.get("title") or ""}]
    return points


def _feature(city, code: str) -> dict | None:
    return next((f for f in city.geojson["features"] if str(f.get("id")) == code), None)


def make_incident_map(incident: dict | None, reports: list[dict], city, lang: str = "zh",
                      size: tuple[int, int] = SIZE) -> go.Figure:
    """Return the incident's district highlighted over the city's boundaries, its reports marked in red.

    Without coordinates on any report the district's centre is marked instead (``meta.approximate``);
    without an incident, the whole city and no mark.
    SVG (``Choropleth`` and ``Scattergeo`` on a geo subplot without base layers, ``geo_view``): no WebGL, and
    nothing is fetched from the internet.
    """
    th = THEMES["light"]
    codes = [d.code for d in city.districts]
    incident = incident or {"district": None}
    here = city.by_code.get(incident["district"])
    points = report_points(reports, incident)
    approximate = not points and here is not None
    if approximate:
        points = [{"lat": here.lat, "lon": here.lon, "text": district_name(here, lang)}]
    feature = _feature(city, incident["district"]) if here is not None else None
    box = bounds({"features": [feature]}) if feature else bounds(city.geojson)
    if points:
        west, south, east, north = box
        box = (min(west, *(p["lon"] for p in points)), min(south, *(p["lat"] for p in points)),
               max(east, *(p["lon"] for p in points)), max(north, *(p["lat"] for p in points)))
    view = fit_view(box, *size, pad=0.08)
    label = kind_label(incident.get("kind") or "", lang)
    fig = go.Figure(go.Choropleth(
        geojson=city.geojson, featureidkey="id", locations=codes,
        z=[1 if c == incident["district"] else 0 for c in codes], zmin=0, zmax=1, colorscale=DISTRICT_FILL,
        showscale=False, customdata=[plain(district_name(d, lang)) for d in city.districts],
        marker={"line": {"color": "#94a3b8", "width": 1}, "opacity": 0.45},
        hovertemplate="%{customdata}<extra></extra>",
    ))
    # Plotly reads a few HTML tags in hover text: report titles are escaped so they stay text.
    fig.add_trace(go.Scattergeo(
        lat=[p["lat"] for p in points], lon=[p["lon"] for p in points], mode="markers",
        marker={"size": 16 if approximate else 14, "color": MARK, "opacity": 0.6 if approximate else 1.0},
        hovertext=[plain(p["text"]) for p in points], hoverinfo="text", name=plain(label),
    ))
    fig.update_layout(
        geo=geo_view(view, *size, bgcolor=th["map_bg"]),
        margin={"l": 0, "r": 0, "t": 0, "b": 0, "autoexpand": False}, paper_bgcolor="rgba(0,0,0,0)", showlegend=False,
        font={"family": font_family(lang), "color": th["ink"], "size": 12}, dragmode=False,
        uirevision=f"incident-{incident.get('id')}",
        meta={"district": incident["district"], "points": len(points), "approximate": approximate},
    )
    return fig
