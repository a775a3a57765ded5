"""Lay out /alerts (officers, commanders): the alert trail with filters and acknowledgement, and the silences."""

from __future__ import annotations

import hashlib

import orjson
from dash import dcc, html

from dashboard.core.alerts import LEVELS
from dashboard.core.i18n import actor_label, alert_place, audit_text, district_name, t
from dashboard.storage.alerts import STATUSES
from layouts.common import clock_text, lang_toggle, live_components, live_config, status_cluster, topbar

# The page follows the gateway's alert frames (assets/live_alerts.js); this poll runs only while the socket is not
# live, and reads the silences' ends that come by themselves.
FALLBACK_MS = 30_000
SHOWN = 200  # alerts listed at most; the line above says when the filters should narrow


def _number(v) -> str:
    if v is None:
        return "-"
    return str(int(round(v))) if abs(v - round(v)) < 0.05 or abs(v) >= 100 else f"{v:.1f}"


def trail_item(row: dict, history: list[dict], city, lang: str, tz: str, can_ack: bool) -> html.Li:
    """Return one alert: level in words and colour, title and place as text, status, times, its value, the
    acknowledge button of a firing one, and its history (alert_events) said in words."""
    level, status = row["level"], row["status"]
    times = [html.Span(t("alert_started", lang, time=clock_text(row["started_ms"], tz, True)), className="alert-since")]
    if row.get("resolved_ms"):
        times.append(html.Span(t("alert_resolved_at", lang, time=clock_text(row["resolved_ms"], tz, True)),
                               className="alert-resolved-at"))
    head = [html.Span(t(f"level_{level}", lang), className="alert-level"),
            html.Span(row["title_en"] if lang == "en" else row["title"], className="alert-title"),
            html.Span(alert_place(row, city, lang), className="alert-place"),
            html.Span(t(f"alert_{status}", lang), className="alert-status"), *times]
    if row.get("value") is not None:
        head.append(html.Span(t("alert_value", lang, value=_number(row["value"]), baseline=_number(row["baseline"])),
                              className="alert-value"))
    if can_ack and status == "firing":
        head.append(html.Button(t("alert_ack", lang), id={"trail-ack": row["id"], "v": row["version"]}, n_clicks=0,
                                className="alert-ack"))
    steps = [html.Li([html.Span(clock_text(e["at_ms"], tz, True), className="step-at"),
                      html.Span(actor_label(e["actor"], lang), className="step-actor"),
                      html.Span(audit_text(e["code"], e["params"], lang), className="step-text"),
                      *([html.Span(e["note"], className="step-note")] if e.get("note") else [])],
                     className="trail-step") for e in history]
    return html.Li([html.Div(head, className="alert-head"),
                    html.Details([html.Summary(t("alert_history", lang, n=len(history))),
                                  html.Ol(steps, className="trail-steps")], className="alert-history")],
                   key=f"trail:{row['id']}:{row['version']}", className=f"trail-item lvl-{level} st-{status}",
                   **{"data-alert": str(row["id"])})


def trail_items(rows: list[dict], trails: dict[int, list[dict]], city, lang: str, tz: str, can_ack: bool
                ) -> tuple[list, str]:
    """Return the trail's rows (newest first, as given) and the line above them."""
    if not rows:
        return [], t("alerts_match_none", lang)
    line = t("alerts_shown_max" if len(rows) >= SHOWN else "alerts_shown", lang, n=len(rows))
    return [trail_item(r, trails.get(r["id"], []), city, lang, tz, can_ack) for r in rows], line


def silence_what(row: dict, city, lang: str) -> str:
    """Return what a silence covers, in words: its rule, district and zone (any where it names none)."""
    zone = city.alert_rules.zones.get(row["zone"]) if row.get("zone") else None
    district = city.by_code.get(row["district"]) if row.get("district") else None
    parts = [f"{t('silence_rule', lang)} {row['rule']}" if row.get("rule") else t("silence_any_rule", lang),
             district_name(district, lang) if district else row.get("district") or t("silence_any_district", lang),
             (zone.name_en if lang == "en" else zone.name) if zone else row.get("zone") or t("silence_any_zone", lang)]
    return " · ".join(parts)


def silence_items(rows: list[dict], city, lang: str, tz: str) -> list:
    """Return the silences in force, each with what it covers, until when, why, who set it, and "end now"."""
    if not rows:
        return [html.Li(t("silences_none", lang), className="silence-none")]
    return [html.Li([html.Span(silence_what(r, city, lang), className="silence-what"),
                     html.Span(t("silence_until_at", lang, time=clock_text(r["until_ms"], tz, True)),
                               className="silence-until"),
                     html.Span(r["reason"], className="silence-reason"),
                     html.Span(t("silence_by", lang, who=r["created_by"]), className="silence-by"),
                     html.Button(t("silence_end", lang), id={"silence-end": r["id"]}, n_clicks=0,
                                 className="silence-end-button")],
                    key=f"silence:{r['id']}", className="silence-item", **{"data-silence": str(r["id"])})
            for r in rows]


def digest(lang: str, rows: list[dict], trails: dict[int, list[dict]], silences: list[dict]) -> str:
    """Return a fingerprint of what the page shows, so an unchanged page is not redrawn under a finger."""
    return hashlib.blake2b(orjson.dumps([lang, [(r["id"], r["version"], r["status"], r["resolved_ms"]) for r in rows],
                                         {str(k): len(v) for k, v in trails.items()},
                                         [(s["id"], s["until_ms"], s["ended_ms"]) for s in silences]]),
                           digest_size=8).hexdigest()


def _options(pairs) -> list[dict]:
    return [{"label": label, "value": value} for value, label in pairs]


def toggles(group: str, legend: str, pairs) -> html.Fieldset:
    """Return a filter as a named group of toggle buttons (``aria-pressed``: Dash has no plain checkbox, and
    Dash 4's dcc.Checklist wraps its inputs in role=option, which axe refuses). A button is on after an odd
    number of presses (callbacks/alerts_page.py ``ticked``; assets/alerts_page.js shows it at once): the page
    never redraws its filters but whole, unpressed."""
    return html.Fieldset([html.Legend(legend),
                          html.Div([html.Button(label, id={"alerts-filter": group, "value": value}, n_clicks=0,
                                                type="button", className="alerts-toggle",
                                                **{"aria-pressed": "false", "data-value": value})
                                    for value, label in pairs], id=f"alerts-{group}", className="alerts-toggles")],
                         className="alerts-filter")


def silence_form(city, lang: str, tz: str, until_text: str, own: str | None = None) -> html.Div:
    """Return the form that adds a silence: a rule, a district, a zone (at least one), until when, and why; a
    district centre's (``own``) offers its district and its zones only, what the API lets it silence."""
    rules = city.alert_rules
    return html.Div([
        html.Label([t("silence_rule", lang), dcc.Dropdown(
            id="silence-rule", placeholder=t("silence_any_rule", lang), clearable=True,
            options=_options((r.id, f"{r.id} · {t(f'level_{r.level}', lang)}") for r in rules.rules))],
            className="silence-field"),
        html.Label([t("alerts_district", lang), dcc.Dropdown(
            id="silence-district", placeholder=t("silence_any_district", lang), clearable=True,
            options=_options((d.code, district_name(d, lang)) for d in city.districts if own in (None, d.code)))],
            className="silence-field"),
        html.Label([t("silence_zone", lang), dcc.Dropdown(
            id="silence-zone", placeholder=t("silence_any_zone", lang), clearable=True,
            options=_options((z.code, z.name_en if lang == "en" else z.name) for z in rules.zones.values()
                             if own in (None, z.district)))],
            className="silence-field"),
        html.Label([t("silence_until", lang, tz=tz), dcc.Input(id="silence-until", type="text", value=until_text,
                                                               debounce=False, className="silence-input")],
                   className="silence-field"),
        html.Label([t("silence_reason", lang), dcc.Input(id="silence-reason", type="text", maxLength=500,
                                                         className="silence-input")], className="silence-field"),
        html.Button(t("silence_add", lang), id="silence-add", n_clicks=0, className="silence-add"),
        html.Div(id="silence-message", className="alerts-message", role="status", **{"aria-live": "polite"}),
    ], className="silence-form")


def alerts_page_layout(city, lang: str, tz: str, rows: list[dict], trails: dict[int, list[dict]],
                       silences: list[dict], can_ack: bool, until_text: str, settings: dict, now_ms: int,
                       own: str | None = None) -> html.Div:
    """Return /alerts drawn now (the first paint tells the truth), kept current by the gateway's alert frames
    (its fallback poll while the socket is down) and its own actions; ``settings``: ``callbacks.live``'s; ``own``:
    a district centre's district, the only one its filters offer (SPEC section 13)."""
    items, line = trail_items(rows, trails, city, lang, tz, can_ack)
    filters = html.Div([
        toggles("status", t("alerts_status", lang), ((s, t(f"alert_{s}", lang)) for s in STATUSES)),
        toggles("level", t("alerts_level", lang), ((lv, t(f"level_{lv}", lang)) for lv in reversed(LEVELS))),
        html.Label([t("alerts_district", lang), dcc.Dropdown(
            id="alerts-district", placeholder=t("alerts_all_districts", lang), clearable=True,
            options=_options((d.code, district_name(d, lang)) for d in city.districts if own in (None, d.code)))],
            className="alerts-filter"),
        html.Span([html.A(t("export_csv", lang), id="alerts-export-csv", download="",
                          href=f"/api/alerts.csv?lang={lang}"),
                   html.A(t("export_xlsx", lang), id="alerts-export-xlsx", download="",
                          href=f"/api/alerts.xlsx?lang={lang}")], className="export-links"),
    ], className="alerts-filters")
    return html.Div([
        topbar(lang, t("page_alerts", lang), dcc.Link(t("city", lang), href="/", className="nav-link"),
               *status_cluster(lang), lang_toggle(lang)),
        # the live connection's notices (lost, stale, polling), as on the other live pages
        html.Div(id="alert-banner", className="alert-banner", role="region", **{"aria-label": t("notices", lang)}),
        html.Main([
            html.Section([html.H2(t("alerts_trail", lang), className="panel-title"), filters,
                          html.P(line, id="alerts-count", className="alerts-count"),
                          html.Div(id="alerts-page-message", className="alerts-message", role="status",
                                   **{"aria-live": "polite"}),
                          html.Ul(items, id="alerts-trail", className="alerts-trail")],
                         className="panel alerts-trail-panel"),
            html.Section([html.H2(t("silences", lang), className="panel-title"),
                          html.Ul(silence_items(silences, city, lang, tz), id="silence-list",
                                  className="silence-list"),
                          silence_form(city, lang, tz, until_text, own)],
                         className="panel silences-panel"),
            dcc.Store(id="alerts-digest", data=digest(lang, rows, trails, silences)),
            dcc.Store(id="alerts-refresh", data=0),  # bumped by the page's own writes: redraw now
            dcc.Store(id="alerts-live"),  # written by assets/live_alerts.js when a frame carries alerts
            dcc.Interval(id="alerts-poll", interval=FALLBACK_MS, disabled=True),
        ], className="alerts-main"),
        *live_components(live_config(city, lang, "alerts", settings, own), None, {"page": "alerts"}, now_ms),
    ], className="page page-alerts")
