"""Lay out the briefings pages: the list with "generate now" and downloads, and one briefing in the page."""

from __future__ import annotations

from dash import dcc, html

from dashboard.briefings.cron_words import cron_words
from dashboard.briefings.text import bt
from dashboard.core.i18n import district_name, t
from layouts.common import lang_toggle, topbar


def _period(doc: dict) -> str:
    start, end = doc["period"]["start"], doc["period"]["end"]
    return f"{start[:16].replace('T', ' ')} – {end[:16].replace('T', ' ')}"


def _pct(value, lang: str) -> str:
    if value is None:
        return bt("new", lang)
    return bt("no_change", lang) if value == 0 else f"{value:+.1f}%"


def headline_text(doc: dict, lang: str) -> str:
    """Return the one-line headline of a listed briefing (its status when it is not ready)."""
    if doc["status"] != "ready":
        sep = ": " if lang == "en" else "："
        return bt(f"status_{doc['status']}", lang) + (sep + doc["note"] if doc.get("note") else "")
    h = doc["headline"] or {}
    return bt("headline", lang, events=h.get("events", 0), change=_pct(h.get("events_change_pct"), lang),
              incidents=h.get("incidents_opened", 0), major=h.get("major", 0), missed=h.get("deadlines_missed", 0))


def downloads(doc: dict, lang: str) -> list:
    """Return the download links of a briefing: HTML, PDF (when made) and the JSON data."""
    links = doc["links"]
    out = []
    if links["html"]:
        out.append(html.A(bt("html", lang), href=links["html"] + "?download=1", className="dl dl-html",
                          download=""))
    if links["pdf"]:
        out.append(html.A(bt("pdf", lang), href=links["pdf"] + "?download=1", className="dl dl-pdf", download=""))
    elif doc["status"] == "ready":
        out.append(html.Span(bt("no_pdf", lang), className="dl dl-none", title=doc.get("note") or ""))
    out.append(html.A(bt("json", lang), href=links["data"] + "?download=1", className="dl dl-json", download=""))
    return out


def trigger_text(doc: dict, lang: str) -> str:
    """Return how a briefing was made: on the schedule, or on whose request."""
    if doc["trigger"] == "schedule":
        return bt("trigger_schedule", lang)
    return bt("trigger_manual", lang, who=doc.get("requested_by") or "-")


def scope_text(doc: dict, lang: str, city=None) -> str:
    """Return whose a briefing is: the city's, or a district centre's by the district's name."""
    code = doc.get("district")
    if not code:
        return bt("scope_city", lang)
    district = city.by_code.get(code) if city is not None else None
    return district_name(district, lang) if district else code


def title_text(doc: dict, lang: str, city=None) -> str:
    """Return a briefing's title: the city's, or "<district> operations briefing"."""
    if not doc.get("district"):
        return bt("title", lang)
    return bt("title_district", lang, district=scope_text(doc, lang, city))


def list_rows(docs: list[dict], lang: str, city=None) -> list:
    """Return one table row per briefing, newest first (as given)."""
    rows = []
    for doc in docs:
        rows.append(html.Tr([
            html.Td(dcc.Link(f"#{doc['id']}", href=doc["links"]["page"], className="briefing-link")),
            html.Td(scope_text(doc, lang, city), className="briefing-scope"),
            html.Td(_period(doc), className="briefing-period"),
            html.Td(trigger_text(doc, lang)),
            html.Td(headline_text(doc, lang), className=f"briefing-headline status-{doc['status']}"),
            html.Td(html.Span(([html.Span(bt("no_images", lang, why=doc["note"]), className="briefing-note")]
                               if doc["status"] == "ready" and not doc["images"] else []) + downloads(doc, lang),
                              className="briefing-downloads")),
        ], className="briefing-row", id={"type": "briefing-row", "id": doc["id"]}))
    return rows


def briefing_table(docs: list[dict], lang: str, cron: str, tz: str, city=None) -> html.Div:
    """Return the list of briefings, or what to expect when there is none yet (``city``: names the districts)."""
    if not docs:
        return html.P(bt("none_yet", lang, cron=cron_words(cron, lang, tz)), className="briefing-empty")
    head = html.Thead(html.Tr([html.Th(bt(k, lang)) for k in
                               ("col_id", "col_scope", "col_period", "col_trigger", "col_headline", "col_formats")]))
    return html.Table([head, html.Tbody(list_rows(docs, lang, city))], className="briefing-table")


def _nav(lang: str) -> list:
    return [dcc.Link(t("city", lang), href="/", className="nav-link"), lang_toggle(lang)]


def briefings_layout(lang: str, docs: list[dict], may_generate: bool, cron: str, tz: str,
                     version: list | None = None, refresh_ms: int = 0, city=None) -> html.Div:
    """Return /briefings: the schedule, "generate now" for roles that may, and the list newest first.

    ``version`` is the fingerprint of the list as drawn (read before ``docs``); every ``refresh_ms`` the
    page asks for the current one and redraws the list only when it differs (0: no refresh).
    """
    # the schedule in words, the expression itself kept for whoever hovers (an administrator checking it)
    controls = [html.Span(bt("schedule", lang, cron=cron_words(cron, lang, tz), tz=tz), title=str(cron),
                          className="briefing-schedule", id="briefing-schedule")]
    if may_generate:
        controls += [html.Button(bt("generate", lang), id="briefing-generate", n_clicks=0,
                                 className="briefing-generate"),
                     dcc.Loading(html.Span(id="briefing-generate-status", className="briefing-status"),
                                 type="dot")]
    return html.Div([
        topbar(lang, bt("briefings", lang), *_nav(lang)),
        html.Main([html.Div(controls, className="briefing-controls"),
                   html.Div(briefing_table(docs, lang, cron, tz, city), id="briefing-list"),
                   dcc.Store(id="briefing-version", data=version),
                   dcc.Interval(id="briefing-refresh", interval=max(refresh_ms, 250), disabled=refresh_ms <= 0)],
                  className="briefings-main"),
    ], className="page page-briefings")


def briefing_layout(lang: str, doc: dict, city=None) -> html.Div:
    """Return /briefings/<id>: the report itself in the page (an iframe of its HTML) and its downloads."""
    body = [html.Div([html.Span(_period(doc), className="briefing-period"),
                      html.Span(trigger_text(doc, lang), className="briefing-trigger"),
                      html.Span(downloads(doc, lang), className="briefing-downloads"),
                      dcc.Link(bt("back", lang), href="/briefings", className="briefing-back")],
                     className="briefing-bar")]
    if doc["status"] == "ready":
        body.append(html.Iframe(src=doc["links"]["html"], id="briefing-frame", className="briefing-frame",
                                title=title_text(doc, lang, city)))
    else:
        body.append(html.P(headline_text(doc, lang), id="briefing-frame", className="briefing-pending"))
    return html.Div([
        topbar(lang, f"{title_text(doc, lang, city)} #{doc['id']}", *_nav(lang)),
        html.Main(body, className="briefing-main"),
    ], className="page page-briefing")
