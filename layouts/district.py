"""Lay out one district's drill-down: KPIs, streets, trends, open incidents, ticker and the events table."""

from __future__ import annotations

import hashlib
import json

from dash import dash_table, dcc, html

from dashboard.figures.district_map import DRILL_MAP_SIZE, make_street_map
from dashboard.figures.panorama import font_family, make_street_bars, make_trend
from dashboard.core.i18n import district_name, kind_label, t
from dashboard.core.channels import DOMAINS
from dashboard.storage.queries import WINDOWS
from layouts.common import clock_text, kpi_tile, lang_toggle, panel, streets_note, ticker_items, topbar
from layouts.panorama import GRAPH_CONFIG

PAGE_SIZE = 20
REFRESH_MS = 5000
SEVERITY_COLORS = {1: "#5b6776", 2: "#1d66d1", 3: "#b45309", 4: "#c0392b"}  # assets/style.css --sev1..4


def delta_text(cur: int, prev: int) -> tuple[str, str]:
    """Return the change against the previous window as text and a CSS class (up, down, flat)."""
    diff = cur - prev
    if diff == 0:
        return "— 0", "kpi-delta flat"
    arrow = "▲" if diff > 0 else "▼"
    pct = f" · {diff / prev:+.0%}" if prev else ""
    return f"{arrow} {abs(diff)}{pct}", f"kpi-delta {'up' if diff > 0 else 'down'}"


def incident_items(rows: list[dict], lang: str, tz: str, total: int | None = None) -> list:
    """Return one list item per open incident shown, then how many more there are (or a quiet note: none)."""
    if not rows:
        return [html.Li(t("no_open_incidents", lang), className="incident-empty")]
    more = (total or 0) - len(rows)
    rest = [html.Li(t("incidents_rest", lang, n=more), className="incident-rest")] if more > 0 else []
    return [html.Li(
        [html.Span(t(f"sev_{r['severity']}", lang), className=f"sev-badge sev-{r['severity']}"),
         html.Span(r["title"] or kind_label(r["kind"], lang), className="incident-title"),
         html.Span(t(f"status_{r['status']}", lang), className=f"incident-status st-{r['status']}"),
         html.Span(f"{t('reports', lang, n=r['reports'])} · {clock_text(r['opened_ms'], tz)}",
                   className="incident-meta")],
        key=str(r["id"]), className="incident-item") for r in rows] + rest


def table_columns(lang: str) -> list[dict]:
    """Return the events table's columns (the server sorts and filters by their ids)."""
    return [{"name": t("col_time", lang), "id": "time"},
            {"name": t("col_domain", lang), "id": "domain"},
            {"name": t("col_kind", lang), "id": "kind"},
            {"name": t("col_street", lang), "id": "street"},
            {"name": t("col_severity", lang), "id": "severity", "type": "numeric"},
            {"name": t("col_title", lang), "id": "title"},
            {"name": t("col_value", lang), "id": "value"}]


def events_table(lang: str) -> dash_table.DataTable:
    """Return the district's events table, paged, sorted and filtered on the server."""
    return dash_table.DataTable(
        id="district-events", columns=table_columns(lang), data=[], page_current=0, page_size=PAGE_SIZE,
        page_action="custom", sort_action="custom", sort_mode="single", filter_action="custom",
        filter_query="", sort_by=[], style_as_list_view=True,
        filter_options={"placeholder_text": t("filter_placeholder", lang)},
        style_table={"overflowX": "auto"},
        style_cell={"fontFamily": font_family(lang), "fontSize": "14px", "padding": "6px 10px", "textAlign": "left",
                    "whiteSpace": "normal", "height": "auto", "border": "none"},
        style_header={"fontWeight": "600", "backgroundColor": "#f1f4f8", "color": "#384657"},
        style_cell_conditional=[{"if": {"column_id": "time"}, "minWidth": "8.5rem", "whiteSpace": "nowrap"},
                                {"if": {"column_id": "title"}, "minWidth": "16rem"},
                                {"if": {"column_id": "severity"}, "width": "5rem", "textAlign": "center"}],
        style_data_conditional=[{"if": {"filter_query": f"{{severity}} = {s}", "column_id": "severity"},
                                 "color": c, "fontWeight": "700"} for s, c in SEVERITY_COLORS.items()],
    )


def export_links(code: str, window: str, lang: str) -> html.Span:
    """Return the table's download links (CSV, Excel); assets/export_links.js keeps them on the table's filters,
    sort and window."""
    query = f"window={window}&lang={lang}"
    return html.Span([html.A(t("export_csv", lang), id="district-export-csv", download="",
                             href=f"/api/districts/{code}/events.csv?{query}"),
                      html.A(t("export_xlsx", lang), id="district-export-xlsx", download="",
                             href=f"/api/districts/{code}/events.xlsx?{query}")], className="export-links")


DRAWN = ("streets", "trend", "incidents", "ticker")


def street_map_panel(city, district, lang: str, streets: list[dict]) -> html.Section:
    """Return the drill-down's map panel: the district's streets as areas coloured by their events in the window
    (``district-map``, redrawn with the street bars), with a note when the areas are approximate."""
    areas = city.street_areas.get(district.code)
    note = streets_note(areas, lang, id="district-map-note", className="map-note panel-hint")
    height = f"{DRILL_MAP_SIZE[1]}px"
    return panel(t("street_map", lang), html.Div(
        dcc.Graph(id="district-map", config=GRAPH_CONFIG, responsive=True, style={"height": height},
                  figure=make_street_map(city, district.code, areas, streets, lang)),
        style={"height": height}), *note, className="street-map-panel")


def drawn_from(data: dict, window: str) -> dict[str, str]:
    """Return a digest of what each of the drill-down's graphs and lists is drawn from (``district_data.snapshot``):
    the page's refresh redraws only the parts whose digest changed, and a Plotly redraw of an unchanged chart was
    the page's longest task every 5 s (the trend moves once a minute)."""
    summary = data["summary"]
    parts = {"streets": [summary["streets"], summary["other_streets"]], "trend": data["trend"],
             "incidents": [data["incidents"], data["incidents_open"]], "ticker": data["events"]}
    return {k: hashlib.blake2b(json.dumps([window, parts[k]], sort_keys=True, default=str).encode(),
                               digest_size=8).hexdigest() for k in DRAWN}


def district_layout(city, district, lang: str, window: str, data: dict, tz: str) -> html.Div:
    """Return the drill-down page of ``district`` drawn from ``data`` (see ``district_data.snapshot``)."""
    name = district_name(district, lang)
    summary = data["summary"]
    tiles = [kpi_tile(d, lang, prefix="district-kpi", value=str(summary["totals"][d]),
                      delta=delta_text(summary["totals"][d], data["previous"][d])) for d in DOMAINS]
    streets = make_street_bars(summary["streets"], lang, other=summary["other_streets"])
    population = f"{district.population:,}" if lang == "en" else t("ten_thousand", lang,
                                                                       n=f"{district.population / 10_000:.1f}")
    return html.Main(  # the landmark screen readers jump to
        [
            topbar(lang, t("app_title", lang), lang_toggle(lang)),
            html.Nav([dcc.Link(t("city", lang), href="/", className="crumb"), html.Span("›", className="crumb-sep"),
                      html.Span(name, className="crumb crumb-current")], className="breadcrumb",
                     **{"aria-label": t("breadcrumb", lang)}),  # one of two navigations: each named
            html.Div(
                [html.H1(name, id="district-title", className="district-title"),
                 html.Span(f"{t('population', lang)} {population} · {t('n_streets', lang, n=len(district.streets))}",
                           className="district-meta"),
                 # names the list (assets/a11y.js makes it a radiogroup labelled by it)
                 html.Span(t("window", lang), id="district-window-label", className="control-label"),
                 dcc.RadioItems(id="district-window", value=window, inline=True, className="segmented",
                                options=[{"label": t(f"w_{w}", lang), "value": w} for w in WINDOWS]),
                 html.Span(t("updated", lang, t=clock_text(data["now_ms"], tz)), id="district-updated",
                           className="district-updated")],
                className="district-head"),
            html.Section(tiles, className="kpis"),
            html.Div(
                # each graph in a box of its height: until Plotly has loaded, Dash draws the graph without its
                # style, and the panels below jumped 370 px when it came (CLS 0.14-0.38, bench.lighthouse)
                [street_map_panel(city, district, lang, summary["streets"]),
                 panel(t("streets", lang), html.Div(
                    dcc.Graph(id="district-streets", config=GRAPH_CONFIG, responsive=True, figure=streets,
                              style={"height": f"{streets.layout.height}px"}),
                    style={"height": f"{streets.layout.height}px"}), className="streets-panel"),
                 panel(t("trends", lang), html.Div(
                     dcc.Graph(id="district-trend", config=GRAPH_CONFIG, responsive=True, className="trend-graph",
                               figure=make_trend(data["trend"], lang, tz), style={"height": f"{streets.layout.height}px"}),
                     style={"height": f"{streets.layout.height}px"}), className="trend-panel"),
                 panel(t("open_incidents", lang),
                       html.Ul(incident_items(data["incidents"], lang, tz, data["incidents_open"]),
                               id="district-incidents",
                               className="incident-list-d"), className="incidents-panel"),
                 panel(t("latest_events", lang),
                       html.Ul(ticker_items(data["events"], city, lang, tz), id="event-ticker", className="ticker",
                               tabIndex="0"),  # it scrolls: keyboard users must reach it (axe: scrollable-region-focusable)
                       className="ticker-panel")],
                className="district-grid"),
            panel(t("district_events", lang), html.P([t("table_hint", lang), export_links(district.code, window, lang)],
                                                     className="panel-hint"),
                  html.P(id="district-events-note", className="panel-hint", role="status"),
                  events_table(lang), className="table-panel"),
            dcc.Store(id="district-code", data=district.code),
            dcc.Store(id="district-drawn", data=drawn_from(data, window)),  # what the graphs and lists show
            dcc.Store(id="district-events-paging"),  # the cursors of the table's pages reached so far
            dcc.Interval(id="district-refresh", interval=REFRESH_MS),
        ],
        className="page page-district",
    )
