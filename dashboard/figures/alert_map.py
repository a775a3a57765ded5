"""Outline on the city map the districts and zones that open alerts concern: pure, no I/O.

Five traces follow the districts (``data[0]``) on ``city-map``, always in this order so a patch can replace them
by index: ``data[1]`` a halo under every outline (the theme's ink, wide: an outline stays visible on a district
the risk has coloured red), then one trace per level, blue to red (red drawn last, on top). Each level has its
own dash as well as its colour (never colour alone), and its hover text says the level, the place and the
alerts' titles in words, as text (escaped: a title is never HTML).
"""

from __future__ import annotations

import plotly.graph_objects as go

from dashboard.core.alerts import LEVELS
from dashboard.core.i18n import alert_place, t
from dashboard.figures.panorama import THEMES, plain

OPEN = ("firing", "acknowledged")
LEVEL_COLORS = {"blue": "#1d4ed8", "yellow": "#facc15", "orange": "#ea580c", "red": "#dc2626"}  # as alerts.css
LEVEL_DASH = {"blue": "dashdot", "yellow": "dot", "orange": "dash", "red": "solid"}
FIRST_TRACE = 1  # data[1] is the halo, data[2..5] the levels blue..red
OUTLINE_WIDTH, HALO_WIDTH = 3.5, 7.5
MAX_TITLES = 3  # titles named per place in its hover text; the rest counted


def rings(geometry: dict) -> list[list[list[float]]]:
    """Return the outer and inner rings of a GeoJSON Polygon or MultiPolygon as lists of [lon, lat]."""
    coords = geometry["coordinates"]
    polygons = [coords] if geometry["type"] == "Polygon" else coords if geometry["type"] == "MultiPolygon" else []
    return [ring for polygon in polygons for ring in polygon]


def area_rings(row: dict, city) -> list[list[list[float]]]:
    """Return the outline of what an alert concerns: its zone's polygon, else its district's, else nothing."""
    zone = city.alert_rules.zones.get(row["zone"]) if row.get("zone") else None
    if zone is not None:
        ring = [list(p) for p in zone.polygon]
        return [ring + [ring[0]]] if ring and ring[0] != ring[-1] else [ring]
    if row.get("district"):
        for feature in city.geojson["features"]:
            if feature.get("id") == row["district"]:
                return rings(feature["geometry"])
    return []  # city-wide: the whole map is concerned, the alert-list says so


def _hover(level: str, place: str, titles: list[str], lang: str) -> str:
    shown = [plain(x) for x in titles[:MAX_TITLES]]
    if len(titles) > MAX_TITLES:
        shown.append(plain(t("alerts_more", lang, n=len(titles) - MAX_TITLES)))
    return "<br>".join([f"{plain(t(f'level_{level}', lang))} · {plain(place)}", *shown])


def outline_traces(alerts: list[dict] | None, city, lang: str = "zh", theme: str = "light") -> list[go.Scattergeo]:
    """Return the halo and the four level traces outlining the open alerts' places (empty traces when none)."""
    by_level: dict[str, dict[tuple, dict]] = {level: {} for level in LEVELS}
    for row in alerts or []:
        if row.get("status") not in OPEN or row.get("level") not in by_level:
            continue
        key = (row.get("zone"), row.get("district"))
        area = by_level[row["level"]].setdefault(key, {"row": row, "titles": []})
        area["titles"].append(row["title_en"] if lang == "en" else row["title"])
    halo_lon: list = []
    halo_lat: list = []
    traces = []
    for level in LEVELS:  # blue, yellow, orange, red: the most severe drawn last, on top
        lon: list = []
        lat: list = []
        text: list = []
        for area in by_level[level].values():
            label = _hover(level, alert_place(area["row"], city, lang), area["titles"], lang)
            for ring in area_rings(area["row"], city):
                lon += [p[0] for p in ring] + [None]
                lat += [p[1] for p in ring] + [None]
                text += [label] * len(ring) + [None]
        halo_lon += lon
        halo_lat += lat
        traces.append(go.Scattergeo(
            lon=lon, lat=lat, mode="lines", text=text, name=t(f"level_{level}", lang), showlegend=False,
            line={"color": LEVEL_COLORS[level], "width": OUTLINE_WIDTH, "dash": LEVEL_DASH[level]},
            hovertemplate="%{text}<extra></extra>", meta={"level": level}))
    halo = go.Scattergeo(lon=halo_lon, lat=halo_lat, mode="lines", hoverinfo="skip", showlegend=False,
                         line={"color": THEMES[theme]["ink"], "width": HALO_WIDTH}, meta={"level": "halo"})
    return [halo, *traces]


def with_outlines(fig: go.Figure, alerts: list[dict] | None, city, lang: str = "zh", theme: str = "light") -> go.Figure:
    """Return the city map with its alert outlines added (``data[1..5]``), ready for the patches that follow."""
    fig.add_traces(outline_traces(alerts, city, lang, theme))
    return fig
