"""Lay out the video-wall kiosk: the same panorama, dark, large type, no controls, a cycling spotlight."""

from __future__ import annotations

from dash import dcc, html

from dashboard.figures.alert_map import with_outlines
from dashboard.figures.panorama import (WALL_LABEL_PX, WALL_MAP_SIZE, make_city_map, make_spot_trend, make_trend,
                                        map_labels)
from dashboard.core.i18n import t
from dashboard.core.channels import DOMAINS
from layouts.major import major_components
from layouts.common import (kpi_tile, live_components, live_config, live_ticker_rows, map_label_layer, panel,
                            status_cluster, unit_overlay)
from layouts.panorama import GRAPH_CONFIG
from layouts.replay import replay_parts

WINDOW = "1h"
FILL = {"flex": "1", "minHeight": "0"}  # the panels are flex columns sized by the grid
MEASURE = "risk"  # a fixed 0–100 scale: colours mean the same thing all day on an unattended screen


def wall_layout(city, lang: str, state: dict | None, settings: dict, now_ms: int, alerts=None,
                open_alerts: list[dict] | None = None, district: str | None = None) -> html.Div:
    """Return the kiosk page; the browser cycles the spotlight every ``settings['cycle_s']`` seconds; ``alerts``
    is the alerts strip (layouts/alerts.py), ``open_alerts`` the rows whose places the map outlines; ``district``:
    a district centre's wall, whose spotlight stays on its own district (SPEC section 13)."""
    window = (state or {}).get("windows", {}).get(WINDOW)
    first = district or city.districts[0].code
    view = {"page": "wall", "window": WINDOW, "measure": MEASURE, "highlight": first,
            "replay": bool(settings.get("replay"))}
    config = live_config(city, lang, "wall", settings)
    if district is not None:
        config["cycle"] = [district]  # the spotlight's round (assets/live_render.js cycle): its own district only
    return html.Main(  # the landmark screen readers jump to
        [
            html.Header([html.H1(t("wall_title", lang), className="wall-title"),
                         html.Div(status_cluster(lang), className="wall-status")], className="wall-top"),
            *replay_parts(lang, settings.get("replay"), "wall"),
            html.Div(id="alert-banner", className="alert-banner"),
            html.Section([kpi_tile(d, lang) for d in DOMAINS], className="kpis wall-kpis"),
            *([alerts] if alerts is not None else []),
            html.Div(
                [
                    html.Section([dcc.Graph(id="city-map", className="map-graph", config=GRAPH_CONFIG, responsive=True, style=FILL,
                                           figure=with_outlines(make_city_map(
                                               window, city, MEASURE, lang, highlight=first, theme="dark",
                                               size=WALL_MAP_SIZE, label_px=WALL_LABEL_PX, labels=False),
                                               open_alerts, city, lang, "dark")),
                                 map_label_layer(map_labels(window, city, MEASURE, lang, WALL_MAP_SIZE, WALL_LABEL_PX),
                                                 WALL_LABEL_PX),
                                 *unit_overlay(lang),
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
                    panel(t("top_risk", lang), html.Ol(id="risk-top", className="risk-list"),
                          className="risk-panel"),
                    panel(t("trends", lang),
                          dcc.Graph(id="trend-chart", className="trend-graph", config=GRAPH_CONFIG, responsive=True, style=FILL,
                                    figure=make_trend((state or {}).get("trend"), lang, settings["tz"], "dark")),
                          className="trend-panel"),
                    # the rows the server knows now; the browser rewrites them as frames arrive (live_render.js)
                    panel(t("latest_events", lang),
                          html.Ul(live_ticker_rows((state or {}).get("events"), city, lang, settings["tz"], wall=True),
                                  id="event-ticker", className="ticker"),
                          className="ticker-panel"),
                ],
                className="wall-grid",
            ),
            html.Footer(html.Ul(id="feed-status", className="feed-status"), className="wall-feeds"),
            dcc.Interval(id="wall-cycle", interval=max(1, settings.get("cycle_s", 15)) * 1000),
            *major_components("wall", settings),  # the command view while a major incident is active
            *live_components(config, state, view, now_ms),
        ],
        className="page page-wall",
    )
