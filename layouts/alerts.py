"""Lay out the alert-list (SPEC section 9) of /, /wall and /m: firing and acknowledged alerts, red first."""

from __future__ import annotations

import hashlib
from datetime import datetime

import orjson
from dash import dcc, html

from dashboard.core.alerts import LEVELS
from dashboard.core.i18n import alert_place, district_name, t
from layouts.common import clock_text

OPEN = ("firing", "acknowledged")
# Rows each page has room for; the rest are counted. Fixed, and the list's box is sized for them (CSS), so an
# alert coming or going never moves what is below it.
SLOTS = {"wall": 4, "desk": 5, "mobile": 6}


def ordered(rows: list[dict]) -> list[dict]:
    """Return the open alerts as the screens list them: red first, then by level; firing before acknowledged;
    then newest first."""
    rank = {level: i for i, level in enumerate(reversed(LEVELS))}  # red 0 ... blue 3
    newest = sorted(rows, key=lambda r: (-r["started_ms"], -r["id"]))
    return sorted(newest, key=lambda r: (rank.get(r["level"], len(LEVELS)), r["status"] != "firing"))


place = alert_place  # where the alert is: its zone, else its district, else the whole city


def rows_of(views: list[dict]) -> list[dict]:
    """Return alerts as frames and replayed states carry them (``messages.AlertView``) as the list draws rows."""
    return [{**v, "started_ms": int(datetime.fromisoformat(v["started_at"]).timestamp() * 1000),
             "title_en": v.get("title_en") or v["title"]} for v in views]


def alert_item(row: dict, city, lang: str, tz: str, can_ack: bool) -> html.Li:
    """Return one alert: its level as colour and word, title (text, never HTML), place, since when, status, and
    for an officer or commander the acknowledge button of a firing alert (it names the version read)."""
    level, status = row["level"], row["status"]
    parts = [html.Span(t(f"level_{level}", lang), className="alert-level"),
             html.Span(row["title_en"] if lang == "en" else row["title"], className="alert-title"),
             html.Span(place(row, city, lang), className="alert-place"),
             html.Span(t("alert_since", lang, time=clock_text(row["started_ms"], tz)), className="alert-since"),
             html.Span(t(f"alert_{status}", lang), className="alert-status")]
    if can_ack and status == "firing":
        parts.append(html.Button(t("alert_ack", lang), id={"alert-ack": row["id"], "v": row["version"]},
                                 n_clicks=0, className="alert-ack"))
    return html.Li(parts, key=f"alert:{row['id']}:{row['version']}", className=f"alert-item lvl-{level} st-{status}",
                   **{"data-alert": str(row["id"])})


def alert_items(rows: list[dict], city, lang: str, tz: str, page: str, can_ack: bool) -> tuple[list, str, str]:
    """Return the list's children (what fits the page), the line under it (how many more, or none at all) and a
    fingerprint of both, so an unchanged list is not sent (nor its buttons replaced under a finger) again."""
    rows = ordered([r for r in rows if r["status"] in OPEN])
    slots = SLOTS.get(page, SLOTS["desk"])
    shown, rest = rows[:slots], len(rows) - slots
    more = t("alerts_more", lang, n=rest) if rest > 0 else ("" if rows else t("alerts_none", lang))
    digest = hashlib.blake2b(orjson.dumps([lang, page, can_ack, more, [
        (r["id"], r["version"], r["status"], r["level"], r["title"], r["title_en"], r["started_ms"], r["district"],
         r["zone"]) for r in shown]]), digest_size=8).hexdigest()
    return [alert_item(r, city, lang, tz, can_ack) for r in shown], more, digest


def list_words(city, lang: str, page: str, can_ack: bool) -> str:
    """Return what the page needs to draw the list itself from a gateway frame (assets/live_alerts.js), as
    alert_items draws it: the words of levels and statuses, the places' names, the rows the page has room for.
    A new alert is then on screen when its frame arrives, not after a callback's round trip to the server."""
    return orjson.dumps({
        "levels": {level: t(f"level_{level}", lang) for level in LEVELS},
        "statuses": {status: t(f"alert_{status}", lang) for status in OPEN},
        "since": t("alert_since", lang, time="{time}"), "more": t("alerts_more", lang, n="{n}"),
        "none": t("alerts_none", lang), "ack": t("alert_ack", lang), "city": t("alert_city", lang),
        "districts": {d.code: district_name(d, lang) for d in city.districts},
        "zones": {code: (z.name_en if lang == "en" else z.name) for code, z in city.alert_rules.zones.items()},
        "slots": SLOTS.get(page, SLOTS["desk"]), "lang": lang, "can_ack": can_ack}).decode()


def alert_panel(rows: list[dict], city, lang: str, tz: str, page: str, can_ack: bool) -> html.Section:
    """Return the alerts panel: the list drawn now (the first paint tells the truth), kept live by a refresh
    whenever a gateway frame carries alerts (assets/live_alerts.js) or, without the gateway, a poll."""
    items, more, digest = alert_items(rows, city, lang, tz, page, can_ack)
    return html.Section(
        [html.H2(t("alerts", lang), className="panel-title"),
         html.Ul(items, id="alert-list", className=f"alert-list alert-slots-{SLOTS.get(page, SLOTS['desk'])}",
                 **{"data-words": list_words(city, lang, page, can_ack)}),
         html.P(more, id="alert-more", className="alert-more"),
         # the acknowledgement's outcome, in words, read out politely
         html.Div(id="alert-message", className="alert-message", role="status", **{"aria-live": "polite"}),
         dcc.Store(id="alert-view", data={"page": page}),
         dcc.Store(id="alert-digest", data=digest),  # what the list shows
         dcc.Store(id="alert-bump"),  # written by assets/live_alerts.js when a frame carries alerts
         dcc.Store(id="alert-refresh", data=0),  # bumped after each acknowledgement
         dcc.Interval(id="alert-poll", interval=10_000, disabled=True)],  # only while the gateway is away
        className=f"panel alert-panel alert-panel-{page}")
