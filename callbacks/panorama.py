"""Refresh the panorama's tiles, ticker and feed status from SQL."""

from dash import Input, Output, State, html
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from dashboard import health, queries
from dashboard.i18n import district_name, t
from dashboard.models import events
from feeds.channels import DOMAINS
from feeds.pipeline import now_ms

TICKER_ROWS = 20


def latest_events(conn, limit: int = TICKER_ROWS) -> list[dict]:
    """Return the newest events, newest first (by arrival: the primary key, never a scan)."""
    cols = (events.c.domain, events.c.event_id, events.c.ts_ms, events.c.kind, events.c.district,
            events.c.severity, events.c.title)
    return [dict(r) for r in conn.execute(select(*cols).order_by(events.c.seq.desc()).limit(limit)).mappings()]


def ticker_items(rows: list[dict], city, lang: str, tz: str) -> list:
    """Return one list item per event; titles are text children, never HTML."""
    items = []
    for r in rows:
        d = city.by_code.get(r["district"])
        items.append(html.Li(
            [html.Span(queries.iso(r["ts_ms"], tz)[11:19], className="ticker-time"),
             html.Span(district_name(d, lang) if d else r["district"], className="ticker-district"),
             html.Span(r["title"] or r["kind"], className="ticker-title")],
            className=f"ticker-item sev-{r['severity']} dom-{r['domain']}",
        ))
    return items


def feed_items(fresh: dict, lang: str) -> list:
    """Return one list item per domain with its freshness."""
    items = []
    for domain in DOMAINS:
        f = fresh.get(domain, {"last_event_age_s": None, "stale": True})
        age = (t("never", lang) if f["last_event_age_s"] is None
               else t("seconds_ago", lang, s=int(f["last_event_age_s"])))
        # "stale" is the word other programs look for, in every language.
        state = f"stale · {age}" if f["stale"] else age
        items.append(html.Li([html.Span(t(domain, lang)), " ", html.Span(state, className="feed-state")],
                             className="feed stale" if f["stale"] else "feed fresh"))
    return items


def register_callbacks(app) -> None:
    """Register the polling refresh of the panorama."""
    outputs = [Output(f"kpi-{d}", "children") for d in DOMAINS] + [
        Output("event-ticker", "children"), Output("feed-status", "children"), Output("data-status", "children")]

    # timer -> tiles, ticker, feed status
    @app.callback(*outputs, Input("panorama-refresh", "n_intervals"), State("lang", "data"))
    def refresh(_n, lang):
        svc = current_app.extensions["panorama"]
        tz = svc.config["PANORAMA_TZ"]
        now = now_ms()
        try:
            with svc.engine.connect() as conn:
                summary = queries.summary(conn, svc.city, 60, now, tz)
                rows = latest_events(conn)
                fresh = health.feed_freshness(conn, now, svc.config["PANORAMA_STALE_AFTER"])
        except SQLAlchemyError:
            # Say so on screen rather than showing old numbers as if they were live.
            return ["–"] * len(DOMAINS) + [[], [], t("unavailable", lang)]
        kpis = [str(summary["totals"][d]) for d in DOMAINS]
        return kpis + [ticker_items(rows, svc.city, lang, tz), feed_items(fresh, lang), ""]
