"""Lay out the video-wall kiosk: the same panorama, dark, large type, no controls, a cycling spotlight."""

from __future__ import annotations

from dash import dcc, html

from dashboard.figures.alert_map import with_outlines
from dashboard.figures.district_map import add_points, add_street_areas, district_city, make_district_map
from dashboard.figures.panorama import (WALL_LABEL_PX, WALL_MAP_SIZE, make_city_map, make_spot_trend, make_street_bars,
                                        make_trend, map_labels)
from dashboard.core.i18n import district_name, t
from dashboard.core.channels import DOMAINS
from layouts.major import major_components
from layouts.common import (kpi_tile, live_components, live_config, live_ticker_rows, map_label_layer, panel,
                            status_cluster, streets_note, unit_overlay)
from layouts.panorama import GRAPH_CONFIG
from layouts.replay import replay_parts

WINDOW = "1h"
FILL = {"flex": "1", "minHeight": "0"}  # the panels are flex columns sized by the grid
MEASURE = "risk"  # a fixed 0–100 scale: colours mean the same thing all day on an unattended screen
STREETS_MS = 5000  # a district wall's streets, and the points on its map, re-read as often as the drill-down's
STREET_DATA = {"opt": "street-data", "i": 0}
CYCLE_STREETS = 8
WALL_STREET_BARS = 6  # bars the wall's panel names legibly at 1920x1080 (the rest share one)  # the busiest streets the spotlight goes round on a district wall


def street_cycle(streets: dict | None) -> list[str]:
    """Return the streets a district wall's spotlight goes round: the busiest with events or open incidents, else
    the first of the district's (a quiet district still has a spotlight)."""
    rows = (streets or {}).get("streets") or []
    busy = [s["name"] for s in rows if s["total"] or s["open"]]
    return (busy or [s["name"] for s in rows])[:CYCLE_STREETS]


def street_bars(streets: dict | None, lang: str):
    """Return the district wall's street bars (the drill-down's, dark), busiest on top."""
    fig = make_street_bars((streets or {}).get("streets") or [], lang, "dark", (streets or {}).get("other"),
                           WALL_STREET_BARS)
    # the panel's height, not the drill-down's per-bar one: the wall's grid sizes its panels to the screen; every
    # bar named (Plotly drops every other label when they crowd), the legend left to the KPI tiles' colours
    fig.update_layout(height=None, autosize=True, showlegend=False, font={"size": 14},
                      margin={"l": 8, "r": 12, "t": 4, "b": 24})
    fig.update_yaxes(dtick=1)
    return fig


def district_config(config: dict, code: str, streets: dict | None) -> dict:
    """Return a district wall's live config (``live_config`` of its own district): the spotlight's round over its
    busiest streets (assets/live_render.js cycle and spotlight read ``district``)."""
    return {**config, "district": code, "cycle": street_cycle(streets)}


def street_data(streets: dict | None, district: str | None) -> dict | None:
    """Return what the browser keeps of a district wall's streets: the spotlight's round and each street's counts
    and open incidents (assets/live_render.js spotlight); None on the city's wall."""
    if district is None:
        return None
    rows = (streets or {}).get("streets") or []
    return {"code": district, "cycle": street_cycle(streets),
            "streets": [{"name": s["name"], "counts": s["counts"], "total": s["total"], "open": s["open"]}
                        for s in rows]}


def city_map(city, window: dict | None, lang: str, first: str, open_alerts, district: str | None,
             points: dict | None, streets: dict | None = None):
    """Return the wall's map: the city's districts, or a district wall's district alone with its events and open
    incidents placed and its streets drawn as areas coloured by their events in the hour (``data[STREETS_TRACE]``,
    figures/district_map.py, where the pack gives the district's streets areas); their labels are HTML over it
    (map_label_layer)."""
    if district is None:
        return with_outlines(make_city_map(window, city, MEASURE, lang, highlight=first, theme="dark",
                                           size=WALL_MAP_SIZE, label_px=WALL_LABEL_PX, labels=False),
                             open_alerts, city, lang, "dark")
    fig = add_points(with_outlines(make_district_map(window, city, district, MEASURE, lang, "dark", WALL_MAP_SIZE,
                                                     WALL_LABEL_PX, labels=False), open_alerts, city, lang, "dark"),
                     points, lang)
    areas = city.street_areas.get(district)
    return fig if areas is None else add_street_areas(fig, areas, (streets or {}).get("streets"), lang, "dark",
                                                          WALL_MAP_SIZE)


def rank_panel(lang: str, district: str | None, streets: dict | None, replayed: bool) -> list:
    """Return the wall's ranking panel: the districts at highest risk, or a district wall's streets, busiest
    first, re-read every ``STREETS_MS`` (callbacks/wall_district.py; a replay keeps the replayed minute's)."""
    if district is None:
        return [panel(t("top_risk", lang), html.Ol(id="risk-top", className="risk-list"), className="risk-panel")]
    bars = street_bars(streets, lang)
    return [panel(t("streets", lang), dcc.Graph(id="wall-streets", className="streets-graph", config=GRAPH_CONFIG,
                                                 responsive=True, style=FILL, figure=bars),
                  className="risk-panel streets-panel"),
            *([] if replayed else [dcc.Interval(id="wall-streets-tick", interval=STREETS_MS)])]


def wall_layout(city, lang: str, state: dict | None, settings: dict, now_ms: int, alerts=None,
                open_alerts: list[dict] | None = None, district: str | None = None,
                district_view: dict | None = None) -> html.Div:
    """Return the kiosk page; the browser cycles the spotlight every ``settings['cycle_s']`` seconds; ``alerts``
    is the alerts strip (layouts/alerts.py), ``open_alerts`` the rows whose places the map outlines; ``district``:
    a district centre's wall (SPEC section 13): its district alone on the map with its events and open incidents
    (``district_view['points']``), its streets in place of the districts' ranking and in the spotlight
    (``district_view['streets']``, panorama.district_wall)."""
    window = (state or {}).get("windows", {}).get(WINDOW)
    streets = (district_view or {}).get("streets")
    config = live_config(city, lang, "wall", settings, district)
    if district is not None:
        config = district_config(config, district, streets)
    first = (config["cycle"] or [district])[0] if district is not None else city.districts[0].code
    view = {"page": "wall", "window": WINDOW, "measure": MEASURE, "highlight": first,
            "replay": bool(settings.get("replay"))}
    title = t("wall_title", lang) if district is None else \
        f"{district_name(city.by_code[district], lang)} · {t('wall_title', lang)}"
    return html.Main(  # the landmark screen readers jump to
        [
            html.Header([html.H1(title, className="wall-title"),
                         html.Div(status_cluster(lang), className="wall-status")], className="wall-top"),
            *replay_parts(lang, settings.get("replay"), "wall"),
            html.Div(id="alert-banner", className="alert-banner"),
            html.Section([kpi_tile(d, lang) for d in DOMAINS], className="kpis wall-kpis"),
            *([alerts] if alerts is not None else []),
            html.Div(
                [
                    html.Section([dcc.Graph(id="city-map", className="map-graph", config=GRAPH_CONFIG, responsive=True, style=FILL,
                                           figure=city_map(city, window, lang, first, open_alerts, district,
                                                           (district_view or {}).get("points"), streets)),
                                 map_label_layer(map_labels(window, city if district is None
                                                            else district_city(city, district), MEASURE, lang,
                                                            WALL_MAP_SIZE, WALL_LABEL_PX), WALL_LABEL_PX),
                                 *unit_overlay(lang),
                                 *streets_note(city.street_areas.get(district) if district else None, lang),
                                 dcc.Store(id="alert-outline-digest")],
                                 className="panel map-panel"),
                    html.Section(
                        [html.Div(id={"opt": "spotlight", "i": 0}, className="spot-main"),
                         # the spotlit district's last hour and its open incidents (callbacks/panorama.py reads
                         # them when the spotlight moves; assets/live_render.js draws them)
                         html.H3(t("trends", lang), className="spot-sub"),
                         # a box of fixed share of the panel (assets/wall.css): the incidents below arrive after
                         # the graph has drawn, and a box that shrank then would leave the plot drawn over them
                         dcc.Graph(id={"opt": "spot-trend", "i": 0}, className="spot-trend", config=GRAPH_CONFIG,
                                   responsive=True,
                                   figure=make_spot_trend(None, lang, settings["tz"], "dark")),
                         html.H3(t("open_incidents", lang), className="spot-sub"),
                         html.Ul(id={"opt": "spot-incidents", "i": 0}, className="spot-incidents"),
                         dcc.Store(id={"opt": "spot-data", "i": 0})],
                        className="panel spotlight-panel"),
                    *rank_panel(lang, district, streets, bool(settings.get("replay"))),
                    panel(t("trends", lang),
                          dcc.Graph(id="trend-chart", className="trend-graph", config=GRAPH_CONFIG, responsive=True, style=FILL,
                                    figure=make_trend((state or {}).get("trend"), lang, settings["tz"], "dark")),
                          className="trend-panel"),
                    # the rows the server knows now; the browser rewrites them as frames arrive (live_render.js)
                    panel(t("latest_events", lang),
                          html.Ul(live_ticker_rows((state or {}).get("events"), city, lang, settings["tz"], wall=True,
                                           by_street=district is not None),
                                  id="event-ticker", className="ticker"),
                          className="ticker-panel"),
                ],
                className="wall-grid",
            ),
            html.Footer(html.Ul(id="feed-status", className="feed-status"), className="wall-feeds"),
            dcc.Interval(id="wall-cycle", interval=max(1, settings.get("cycle_s", 15)) * 1000),
            # a district wall's streets, busiest first (its spotlight's round); none on the city's
            # (a pattern id: the panorama's spotlight renderer reads it, and / has none)
            dcc.Store(id=STREET_DATA, data=street_data(streets, district)),
            *major_components("wall", settings),  # the command view while a major incident is active
            *live_components(config, state, view, now_ms),
        ],
        className="page page-wall",
    )
