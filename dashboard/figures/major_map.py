"""Build the command view's map: the city's districts zoomed to the place, the radius ring, the events inside it."""

from __future__ import annotations

import plotly.graph_objects as go

from dashboard.figures.panorama import font_family, THEMES, fit_view, geo_view, outline, plain
from dashboard.core.geo import box_around, ring
from dashboard.core.i18n import district_name

RING = "#f97316"
MARK = "#dc2626"
SIZE = (900, 560)  # px the map is fitted for; the page keeps its box in these proportions


def make_major_map(place: dict, radius_m: float, events: list[dict], city, lang: str = "zh",
                   theme: str = "light", size: tuple[int, int] = SIZE) -> go.Figure:
    """Return the districts around ``place`` ({lat, lon, district, title}) fitted to its ring of ``radius_m``, their
    borders (the place's district outlined in the accent colour), the events inside it ({lat, lon, title}) and the
    place marked. SVG on a geo subplot: nothing is fetched."""
    th = THEMES[theme]
    lat, lon = place["lat"], place["lon"]
    codes = [d.code for d in city.districts]
    view = fit_view(box_around(lat, lon, radius_m * 1.15), *size, pad=0.02)
    ring_lat, ring_lon = ring(lat, lon, radius_m)
    # every district's border, the incident's own drawn thick in the accent colour (as the city map spotlights one)
    line_colors, line_widths = outline(codes, place.get("district"), theme)
    fig = go.Figure(go.Choropleth(
        geojson=city.geojson, featureidkey="id", locations=codes,
        z=[1 if c == place.get("district") else 0 for c in codes], zmin=0, zmax=1,
        colorscale=[[0, th["grid"]], [1, th["counts"][0][1]]], showscale=False,
        customdata=[plain(district_name(d, lang)) for d in city.districts],
        marker={"line": {"color": line_colors, "width": line_widths}, "opacity": 0.8},
        hovertemplate="%{customdata}<extra></extra>",
    ))
    fig.add_trace(go.Scattergeo(lat=ring_lat, lon=ring_lon, mode="lines", line={"color": RING, "width": 3},
                                hoverinfo="skip", name="ring"))
    # titles come from outside: escaped, so a title shows as text and never as markup
    fig.add_trace(go.Scattergeo(lat=[e["lat"] for e in events], lon=[e["lon"] for e in events], mode="markers",
                                marker={"size": 9, "color": th["accent"], "line": {"width": 1, "color": th["line"]}},
                                hovertext=[plain(e.get("title") or e.get("kind") or "") for e in events],
                                hoverinfo="text", name="events"))
    fig.add_trace(go.Scattergeo(lat=[lat], lon=[lon], mode="markers", name="place",
                                marker={"size": 18, "color": MARK, "symbol": "star"},
                                hovertext=[plain(place.get("title") or "")], hoverinfo="text"))
    fig.update_layout(
        geo=geo_view(view, *size, bgcolor=th["map_bg"]),
        margin={"l": 0, "r": 0, "t": 0, "b": 0, "autoexpand": False}, paper_bgcolor="rgba(0,0,0,0)",
        showlegend=False, font={"family": font_family(lang), "color": th["ink"], "size": 12}, dragmode=False,
        uirevision=f"major-{place.get('id')}", meta={"radius_m": radius_m, "events": len(events)},
    )
    return fig
