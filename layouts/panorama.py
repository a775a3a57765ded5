"""Lay out the city panorama for the officer's desktop: map, KPI tiles, trends, risk, ticker, feeds."""

from __future__ import annotations

from dash import dcc, html

from dashboard.figures.alert_map import with_outlines
from dashboard.figures.panorama import LABEL_PX, MEASURES, make_city_map, make_trend, map_labels, measure_label
from dashboard.core.i18n import t
from dashboard.core.channels import DOMAINS
from dashboard.storage.queries import WINDOWS
from layouts.major import major_components
from layouts.common import (kpi_tile, lang_toggle, live_components, live_config, live_ticker_rows, map_label_layer,
                            panel, status_cluster, topbar, unit_overlay)
from layouts.replay import replay_entry, replay_parts

WINDOW = "1h"
MEASURE = "all"
GRAPH_CONFIG = {"displayModeBar": False, "scrollZoom": False, "doubleClick": False, "responsive": True}


def controls(lang: str, window: str, measure: str) -> html.Div:
    """Return the window selector and the map measure selector."""
    return html.Div(
        # "<radio list id>-label" names the list (assets/a11y.js makes it a radiogroup labelled by it)
        [html.Label(t("window", lang), id="window-select-label", className="control-label"),
         dcc.RadioItems(id="window-select", value=window, inline=True, className="segmented",
                        options=[{"label": t(f"w_{w}", lang), "value": w} for w in WINDOWS]),
         html.Label(t("measure", lang), className="control-label"),
         dcc.Dropdown(id="measure-select", value=measure, clearable=False, searchable=False,
                      className="measure-select",
                      options=[{"label": measure_label(m, lang), "value": m} for m in MEASURES])],
        className="controls",
    )


def panorama_layout(city, lang: str, state: dict | None, settings: dict, now_ms: int, note: str = "",
                    alerts=None, open_alerts: list[dict] | None = None) -> html.Div:
    """Return the panorama page, drawn from ``state`` at once and kept live by the browser; ``alerts`` is the
    alerts panel (layouts/alerts.py), ``open_alerts`` the rows whose places the map outlines."""
    window = (state or {}).get("windows", {}).get(WINDOW)
    replayed = settings.get("replay")
    view = {"page": "desk", "window": WINDOW, "measure": MEASURE, "highlight": None, "replay": bool(replayed)}
    config = live_config(city, lang, "desk", settings)
    return html.Main(  # the landmark screen readers jump to
        [
            topbar(lang, t("app_title", lang), *status_cluster(lang), lang_toggle(lang),
                   *([] if replayed else [replay_entry(lang, now_ms, settings["tz"])]), note=note),
            *replay_parts(lang, replayed, "desk"),
            html.Div(id="alert-banner", className="alert-banner"),
            html.Div(controls(lang, WINDOW, MEASURE), className="control-bar"),
            html.Section([kpi_tile(d, lang) for d in DOMAINS], className="kpis"),
            *([alerts] if alerts is not None else []),
            html.Div(
                [
                    panel(t("city_map", lang),
                          html.Span(t("map_hint", lang), className="panel-hint"),
                          dcc.Graph(id="city-map", figure=with_outlines(make_city_map(window, city, MEASURE, lang,
                                                                                      labels=False),
                                                                        open_alerts, city, lang),
                                    config=GRAPH_CONFIG, responsive=True, className="map-graph", style={"height": "540px"}),
                          map_label_layer(map_labels(window, city, MEASURE, lang), LABEL_PX),
                          *unit_overlay(lang),
                          dcc.Store(id="alert-outline-digest"),
                          className="map-panel"),
                    # the rows the server knows now; the browser rewrites them as frames arrive (live_render.js)
                    panel(t("latest_events", lang),
                          html.Ul(live_ticker_rows((state or {}).get("events"), city, lang, settings["tz"]),
                                  id="event-ticker", className="ticker", tabIndex="0"),  # scrolls: keyboard reaches it
                          className="ticker-panel"),
                    panel(t("trends", lang),
                          dcc.Graph(id="trend-chart", figure=make_trend((state or {}).get("trend"), lang,
                                                                        settings["tz"]),
                                    config=GRAPH_CONFIG, responsive=True, className="trend-graph", style={"height": "340px"}),
                          className="trend-panel"),
                    html.Div(
                        [panel(t("top_risk", lang), html.Ol(id="risk-top", className="risk-list")),
                         panel(t("feed_status", lang), html.Ul(id="feed-status", className="feed-status"))],
                        className="side-stack"),
                ],
                className="desk-grid",
            ),
            *major_components("desk", settings),  # the command view while a major incident is active
            *live_components(config, state, view, now_ms),
        ],
        className="page page-desk",
    )
