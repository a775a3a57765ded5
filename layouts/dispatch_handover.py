"""Lay out /dispatch's district centres: which centre runs an incident, the hand-up and hand-down buttons, their
confirming dialogs, and the queue's mark of the city centre's incidents and the districts'."""

from __future__ import annotations

from dash import dcc, html

from dashboard.core.i18n import district_name, pick

_TEXT = {
    "city_centre": ("市指挥中心", "the city centre"),
    "district_centre": ("{name}指挥中心", "the {name} centre"),
    "run_by": ("处置中心：{centre}", "Run by: {centre}"),
    "mark_city": ("市级", "City"),
    "mark_district": ("区级", "District"),
    "up_open": ("上报市中心", "Hand up to the city"),
    "down_open": ("下派区中心", "Hand down to a district"),
    "up_title": ("上报市指挥中心", "Hand up to the city centre"),
    "up_confirm": ("确认后，「{title}」改由市指挥中心处置（现由{centre}处置）",
                   "On confirming, the city centre runs “{title}” (now run by {centre})"),
    "up_submit": ("确认上报", "Hand up"),
    "up_ok": ("已上报市指挥中心：{title}", "Handed up to the city centre: {title}"),
    "down_title": ("下派区指挥中心", "Hand down to a district centre"),
    "down_choose": ("下派到哪个区的指挥中心（事件涉及的区）", "To which district's centre (the districts the incident involves)"),
    "down_pick": ("请选择区", "Choose the district"),
    "down_none": ("没有可下派的区", "No district to hand it down to"),
    "down_confirm": ("确认后，「{title}」下派{centre}处置", "On confirming, “{title}” is handed down to {centre}"),
    "down_submit": ("确认下派", "Hand down"),
    "down_ok": ("已下派{centre}：{title}", "Handed down to {centre}: {title}"),
    "cancel": ("取消", "Cancel"),
    "note": ("备注", "Note"),
}


def tx(key: str, lang: str, **fmt) -> str:
    """Return one of the district centres' texts in ``lang``."""
    return pick(_TEXT, key, lang, **fmt)


def centre_name(centre: str | None, city, lang: str) -> str:
    """Return the centre that runs an incident in words: the city centre (None), or a district's centre."""
    if centre is None:
        return tx("city_centre", lang)
    district = city.by_code.get(centre)
    return tx("district_centre", lang, name=district_name(district, lang) if district else centre)


def centre_line(incident: dict, city, lang: str):
    """Return the detail's line naming the centre that runs the incident (None in a city with no district centres)."""
    if city.centres is None:
        return None
    centre = incident.get("centre")
    return html.P(tx("run_by", lang, centre=centre_name(centre, city, lang)), id="dispatch-detail-centre",
                  className="detail-centre", **{"data-centre": centre or "city"})


def centre_mark(row: dict, city, lang: str):
    """Return the queue's mark of who runs an incident: 市级/City or 区级/District, the centre named in its title."""
    if city.centres is None:
        return None
    centre = row.get("centre")
    return html.Span(tx("mark_city" if centre is None else "mark_district", lang),
                     title=centre_name(centre, city, lang),
                     className="centre-mark " + ("centre-city" if centre is None else "centre-district"))


def buttons(lang: str, up: bool, down: bool) -> list:
    """Return the detail's "hand up" and "hand down" buttons (hidden from whoever may not use them)."""
    return [html.Button(tx("up_open", lang), id="dispatch-handup-open", n_clicks=0, disabled=True, hidden=not up,
                        className="btn", **{"aria-haspopup": "dialog"}),
            html.Button(tx("down_open", lang), id="dispatch-handdown-open", n_clicks=0, disabled=True,
                        hidden=not down, className="btn", **{"aria-haspopup": "dialog"})]


def _dialog(kind: str, lang: str, choices=None) -> html.Div:
    """Return a confirming dialog: a title, the choices (if any), what confirming does, a note, confirm, cancel."""
    return html.Div(html.Div([
        html.H3(tx(f"{kind}_title", lang), id=f"hand{kind}-dialog-title"),
        choices,
        html.P(id=f"hand{kind}-confirm", className="merge-confirm", role="status"),
        html.Label(tx("note", lang), htmlFor=f"hand{kind}-note"),
        dcc.Textarea(id=f"hand{kind}-note", value="", className="dispatch-note"),
        html.Div([html.Button(tx(f"{kind}_submit", lang), id=f"hand{kind}-submit", n_clicks=0,
                              disabled=kind == "down", className="btn btn-primary"),
                  html.Button(tx("cancel", lang), id=f"hand{kind}-cancel", n_clicks=0, className="btn")],
                 className="dialog-actions"),
        html.Div(id=f"hand{kind}-message", className="message", role="alert"),
    ], className="dialog", role="dialog", **{"aria-modal": "true", "aria-labelledby": f"hand{kind}-dialog-title"}),
        id=f"hand{kind}-dialog", hidden=True, className="dialog-backdrop")


def dialogs(lang: str) -> list:
    """Return the hand-up and hand-down dialogs, hidden until their buttons open them; the districts to hand down to
    are buttons in the radio role, as merge's targets (``layouts.dispatch_merge``), the choice copied by the
    browser into ``handdown-choice``."""
    choices = html.Fieldset([html.Legend(tx("down_choose", lang)),
                             html.Div(id="handdown-districts", className="merge-targets", role="radiogroup",
                                      **{"aria-labelledby": "handdown-dialog-title"}),
                             dcc.Store(id="handdown-choice")], className="merge-choices")
    return [_dialog("up", lang), _dialog("down", lang, choices)]


def district_items(codes, city, lang: str) -> list:
    """Return the districts offered to hand down to, one radio choice each, by the centre's name."""
    return [html.Button(centre_name(code, city, lang), id={"type": "handdown-district", "index": code}, n_clicks=0,
                        role="radio", className="choice handdown-district", **{"aria-checked": "false"})
            for code in codes]
