"""Lay out the pieces the pages share: top bar, KPI tiles, panels, the live-data machinery, not-found."""

from __future__ import annotations

from dash import dcc, html
from dash_extensions import WebSocket

from dashboard.figures.panorama import DOMAIN_COLORS, HIGHLIGHT_WIDTH, LINE_WIDTH, THEMES
from dashboard.core.i18n import district_name, html_lang, kind_label, kind_labels, t, texts
from dashboard.core.clock import iso
from dashboard.core.channels import DOMAINS
from dashboard.core.messages import TICKER_EVENTS
from dashboard.core.units import STATUSES as UNIT_STATUSES

# Texts the browser needs to label what it renders (assets/live_*.js).
LIVE_TEXT_KEYS = (
    "security", "traffic", "environment", "incident", "never", "seconds_ago", "minutes_ago", "hours_ago",
    "per_min", "m_all", "m_risk", "m_risk_population", "events", "risk", "population", "ten_thousand", "risk_rank", "city_share",
    "street_rank", "district_share", "street_open",
    "conn_connecting", "conn_live", "conn_reconnecting", "conn_polling",
    "banner_stale", "banner_lost", "banner_poll_failed", "banner_bus_down", "spotlight",
    "no_open_incidents", "incidents_rest", "status_open", "status_dispatched", "status_in_progress",
    "status_resolved", "status_closed", "sev_1", "sev_2", "sev_3", "sev_4",
    "conn_replay", "replay_paused", "replay_speed",
)
MAX_SOCKET_ATTEMPTS = 3  # failed connects before the page says "polling"
# How often a page may redraw its map and trend. A redraw is the page's costliest task (~100 ms of main thread
# on the 2-core VM), and frames that arrive during it wait; on the unattended wall, colours and lines that move
# every 5 s read the same from 6 m while its ticker stays on time (docs/performance.md). Tiles keep 1 s.
FIGURE_MS = {"wall": 5000}
DEFAULT_FIGURE_MS = 1000
POLL_MS = 3000
TICK_MS = 1000


def topbar(lang: str, title: str, *children, note: str = "") -> html.Header:
    """Return the page's top bar: title, optional note, then ``children`` on the right."""
    return html.Header(
        [html.H1(title, className="topbar-title"), html.Span(note, className="mode-note"),
         html.Div(list(children), className="topbar-right")],
        className="topbar",
    )


def lang_toggle(lang: str) -> html.Button:
    """Return the language switch (its label is the other language)."""
    # Its label is in the other language, and says so, so a screen reader reads "English" in English.
    return html.Button(t("language", lang), id="lang-toggle", n_clicks=0, className="lang-toggle",
                       lang=html_lang("en" if lang != "en" else "zh"))


def unit_overlay(lang: str, layer_id: str = "unit-layer") -> list:
    """Return the units' layer over a map (drawn by assets/live_units.js from the frames; empty here) and its
    legend of statuses."""
    return [html.Div(id=layer_id, className="unit-layer", **{"aria-hidden": "true"}),
            html.Ul([html.Li(t("units_legend", lang))]
                    + [html.Li([html.Span(className=f"dot u-{s}"), t(f"unit_{s}", lang)]) for s in UNIT_STATUSES],
                    className="unit-legend")]


def map_label_layer(labels: list[dict], label_px: float) -> html.Div:
    """Return the districts' labels over the city map (figures.map_labels), as HTML and not as the figure's
    annotations: the browser places them once per map size and rewrites a number's text when it changes
    (assets/live_figures.js), so a live update redraws only the map's colours. Hidden until placed over the map
    as drawn (the server does not know its size): a label that moved after the first paint would be a layout shift."""
    return html.Div(
        [html.Div([html.B(lab["name"], className="map-label-name"), html.Span(lab["number"], className="map-label-n")],
                  className="map-label", **{"data-code": lab["code"]},
                  style={"left": f"{lab['x'] * 100:.2f}%", "top": f"{(1 - lab['y']) * 100:.2f}%",
                         # figures.place_labels' offsets are in em: they grow with the type, as the wall's map does
                         "transform": f"translate(calc(-50% + {lab['dx']}em), calc(-50% + {lab['dy']}em))"})
         for lab in labels],
        id="map-labels", className="map-labels", style={"fontSize": f"{label_px}px"})


def panel(title: str, *children, className: str = "", **kwargs) -> html.Section:
    """Return a titled panel."""
    return html.Section([html.H2(title, className="panel-title"), *children],
                        className=f"panel {className}".strip(), **kwargs)


def kpi_tile(domain: str, lang: str, prefix: str = "kpi", value: str = "–",
             delta: tuple[str, str] = ("", "kpi-delta")) -> html.Div:
    """Return one domain's tile; ``<prefix>-<domain>`` holds the count alone, the change sits beside it."""
    return html.Div(
        [html.Div(t(domain, lang), className="kpi-label"),
         html.Div([html.Span(value, id=f"{prefix}-{domain}", className="kpi-value"),
                   html.Span(delta[0], id=f"{prefix}-{domain}-delta", className=delta[1])], className="kpi-row"),
         html.Div(t("vs_prev", lang), className="kpi-note")],
        className=f"kpi kpi-{domain}-tile", style={"--dom": DOMAIN_COLORS[domain]},
    )


def live_config(city, lang: str, page: str, settings: dict, own: str | None = None) -> dict:
    """Return what the browser needs to connect and render: endpoints, thresholds, names and texts; ``own``: a
    district centre's district, the only one whose names (and streets) it carries."""
    config = _live_config(city, lang, page, settings)
    if own is None:
        return config
    return {**config, "codes": [own], "districts": {own: config["districts"][own]},
            "streets": {own: config["streets"].get(own, {})}}


def _live_config(city, lang: str, page: str, settings: dict) -> dict:
    theme = THEMES["dark" if page == "wall" else "light"]
    return {
        "page": page,
        "lang": lang,
        "tz": settings["tz"],
        "ws_url": settings.get("ws_url"),
        "ws_port": settings["ws_port"],
        "summary_url": settings.get("summary_url", "/api/summary?live=1"),
        "poll_ms": settings.get("poll_ms", POLL_MS),
        "max_attempts": MAX_SOCKET_ATTEMPTS,
        "stale_after": settings["stale_after"],
        "cycle_s": settings.get("cycle_s", 15),
        "figure_ms": FIGURE_MS.get(page, DEFAULT_FIGURE_MS),
        "domains": list(DOMAINS),
        "colors": DOMAIN_COLORS,
        "scales": {"counts": theme["counts"], "risk": theme["risk"]},
        "outline": {"line": theme["line"], "accent": theme["accent"], "width": LINE_WIDTH,
                    "highlight": HIGHLIGHT_WIDTH},
        "codes": [d.code for d in city.districts],
        "districts": {d.code: {"name": district_name(d, lang),
                               "short": d.name_en if lang == "en" else d.name.removesuffix("区"),
                               "population": d.population, "lon": d.lon, "lat": d.lat}
                      for d in city.districts},
        # each district's street spellings -> the name shown in this language (pinyin in English), for the ticker
        "streets": city.street_labels(lang),
        "labels": texts(LIVE_TEXT_KEYS, lang),
        "kinds": kind_labels(lang),
        # a replayed page (layouts/replay.py): its minute, speed and bounds; None live. A replayed page never
        # opens the live socket (assets/live_conn.js), so no live frame repaints it.
        "replay": settings.get("replay"),
    }


def live_components(config: dict, state: dict | None, view: dict, now_ms: int) -> list:
    """Return the invisible parts that keep a live page current: socket, stores, timers.

    The socket starts without a URL: it connects only when the server has said a gateway answers,
    so a page without a gateway polls quietly instead of logging failed connections.
    """
    return [
        WebSocket(id="live-ws"),
        dcc.Store(id="live-config", data=config),
        dcc.Store(id="live-store", data={"state": state, "seq": None, "served_at": now_ms}),
        # The parts of the live state, each written by the page only when it changed (assets/live_conn.js),
        # so each renderer wakes only for its own data.
        *[dcc.Store(id=f"live-{part}", data={"state": {part: (state or {}).get(part)}})
          for part in ("windows", "trend")],
        # the windows again, for the city map alone: its redraw runs in a task of its own, apart from the tiles'
        dcc.Store(id="live-map", data={"state": {"windows": (state or {}).get("windows")}}),
        dcc.Store(id="live-conn", data={"mode": "connecting", "attempt": 0, "ever_open": False, "socket": False}),
        dcc.Store(id="live-probe"),
        dcc.Store(id="live-probe-ask"),  # the retry timer's tick, passed on while no probe is on its way
        # Fires once per backoff delay while the socket is down; each tick asks the server for a probe.
        dcc.Interval(id="live-retry", interval=1000, disabled=True),
        dcc.Store(id="view", data=view),
        dcc.Interval(id="live-poll", interval=config["poll_ms"], disabled=True),
        dcc.Interval(id="live-tick", interval=TICK_MS),
        # written by the page when its figures must be drawn again without new data: values held back by the
        # redraw limit, a graph resized (assets/live_figures.js redrawIn); the tick did it every second
        dcc.Store(id="live-redraw"),
    ]


def status_cluster(lang: str) -> list:
    """Return the clock and the connection indicator of a live page's top bar."""
    return [html.Span(id="clock", className="clock"),
            html.Span(t("conn_connecting", lang), id="live-indicator", className="conn conn-connecting")]


def _message_page(lang: str, title: str, message: str, title_id: str) -> html.Div:
    return html.Div(
        [topbar(lang, t("app_title", lang), lang_toggle(lang)),
         html.Main([html.H1(title, id=title_id, className="not-found-title"),
                    html.P(message, className="not-found-message"),
                    dcc.Link(t("back_to_city", lang), href="/", className="not-found-link")],
                   className="not-found-page")],
        className="page page-not-found",
    )


def not_found_layout(lang: str, message: str) -> html.Div:
    """Return the not-found page for an unknown route or district."""
    return _message_page(lang, t("not_found", lang), message, "not-found")


def other_district_layout(lang: str, own: str, other: str) -> html.Div:
    """Return the page a district centre's user sees on another district's page (its link leads to their own)."""
    return _message_page(lang, t("other_district_title", lang), t("other_district", lang, own=own, other=other),
                         "other-district")


def unavailable_layout(lang: str) -> html.Div:
    """Return the page shown when the database cannot answer (reload to retry)."""
    return _message_page(lang, t("unavailable", lang), "", "unavailable")


def clock_text(ms: int, tz: str, with_date: bool = False) -> str:
    """Return a local time of day (and date) for epoch ms."""
    stamp = iso(ms, tz)
    return f"{stamp[5:10]} {stamp[11:19]}" if with_date else stamp[11:19]


def live_ticker_rows(events: list[dict] | None, city, lang: str, tz: str, wall: bool = False,
                     by_street: bool = False) -> list:
    """Return a live page's ticker rows as the browser draws them (assets/live_render.js drawTicker, fillRow);
    ``by_street``: a district wall's, whose rows name the street (every row is its district's).

    The rows the server knows are in the page's first paint and Dash's first render, so the ticker is not blank
    until the socket's snapshot: the ticker's titles were the panorama's largest paint, and came seconds late
    (bench.lighthouse). The browser rewrites these rows' text in place as frames arrive; they are slots.
    """
    rows = sorted(enumerate((events or [])[:TICKER_EVENTS]), key=lambda p: (-p[1]["ts"], p[0]))
    items = []
    for _, e in rows:
        d = city.by_code.get(e["district"])
        name = district_name(d, lang) if d else e["district"]
        street = city.street_name(e["district"], e.get("street"), lang)
        spans = [html.Span(clock_text(e["ts"], tz), className="ticker-time")]
        if not wall:  # the wall shows the domain by the row's colour alone
            spans.append(html.Span(t(e["domain"], lang), className="ticker-dom"))
        place = (street or name) if by_street else name if wall or not street else f"{name} · {street}"
        spans.append(html.Span(place, className="ticker-place"))
        spans.append(html.Span(e.get("title") or kind_label(e["kind"], lang), className="ticker-title"))
        items.append(html.Li(spans, key=f"{e['domain']}:{e['id']}",
                             className=f"ticker-item sev-{e['severity']} dom-{e['domain']}"))
    return items


def ticker_items(events: list[dict], city, lang: str, tz: str) -> list:
    """Return one list item per event, newest first; titles are text children, never HTML."""
    items = []
    for e in sorted(events, key=lambda e: -e["ts"]):  # stable: same-time events keep their arrival order
        d = city.by_code.get(e["district"])
        items.append(html.Li(
            [html.Span(clock_text(e["ts"], tz), className="ticker-time"),
             html.Span(t(e["domain"], lang), className="ticker-dom"),
             html.Span([html.Span(district_name(d, lang) if d else e["district"], className="ticker-district"),
                        html.Span(city.street_name(e["district"], e.get("street"), lang), className="ticker-street")], className="ticker-place"),
             html.Span(e.get("title") or kind_label(e["kind"], lang), className="ticker-title")],
            key=f"{e['domain']}:{e['id']}", className=f"ticker-item sev-{e['severity']} dom-{e['domain']}",
        ))
    return items


def streets_note(areas, lang: str, **attrs) -> list:
    """Return the note under a district's map that its street areas (``city.street_areas``) are approximate --
    derived from the streets' centres, not their real boundaries -- or nothing (``attrs``: the note's id, class)."""
    if areas is None or not areas.approximate:
        return []
    return [html.P(t("streets_approximate", lang), **{"className": "map-note", **attrs})]
