"""Lay out the city panorama: KPI tiles, feed status and the event ticker."""

from dash import dcc, html

from dashboard.i18n import t
from feeds.channels import DOMAINS

REFRESH_MS = 2000


def kpi_tile(domain: str, lang: str) -> html.Div:
    """Return one domain's live tile; its ``kpi-<domain>`` child holds the count as a plain integer."""
    return html.Div(
        [html.Div(t(domain, lang), className="kpi-label"),
         html.Div("–", id=f"kpi-{domain}", className="kpi-value"),
         html.Div(id=f"kpi-{domain}-note", className="kpi-note")],
        className=f"kpi kpi-{domain}-tile",
    )


def panorama_layout(lang: str = "zh", mode_note: str = "") -> html.Div:
    """Return the panorama page for the officer's desktop."""
    return html.Div(
        [
            html.Header(
                [html.H1(t("app_title", lang)), html.Span(mode_note, className="mode-note"),
                 html.Button(t("language", lang), id="lang-toggle", n_clicks=0, className="lang-toggle")],
                className="topbar",
            ),
            html.Div(id="data-status", className="data-status"),
            html.Section([kpi_tile(d, lang) for d in DOMAINS], className="kpis"),
            html.Section(
                [html.H2(t("feed_status", lang)), html.Ul(id="feed-status", className="feed-status")],
                className="panel",
            ),
            html.Section(
                [html.H2(t("latest_events", lang)), html.Ul(id="event-ticker", className="ticker")],
                className="panel",
            ),
            dcc.Interval(id="panorama-refresh", interval=REFRESH_MS),
        ],
        className="panorama",
    )
