"""Run /rosters: draw today's duty per department, and set an override for the roles that may."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from dash import Input, Output, State, no_update
from flask import current_app

from dashboard.core.clock import iso
from dashboard.core.i18n import duty_word
from dashboard.core.rosters import DAYS
from dashboard.web.api import ApiError
from dashboard.web.api_rosters import CONTACTS, create_override, duty_now, may_override, override_doc, read_overrides
from dashboard.web.auth import check_role, current_user, reader_scope
from dashboard.web.callback_guard import Lang, allow, validated
from layouts.rosters import HOURS, TEXT_KEYS, department_cards, override_list, rosters_layout, tx


def _svc():
    return current_app.extensions["panorama"]


def _read(svc, now: int, contacts: bool) -> tuple[list[dict], list[dict]]:
    """Return the duty now of every department the reader reads and the overrides in force now or later (as the
    API answers them)."""
    tz, scope = svc.config["PANORAMA_TZ"], reader_scope()
    with svc.read(primary=True) as conn:
        rows = read_overrides(conn, svc.city, scope, now)
    return duty_now(svc.city, svc.city.rosters, rows, now, contacts, scope), [override_doc(r, tz) for r in rows]


def _weekday(now: int, tz: str) -> str:
    return DAYS[datetime.fromtimestamp(now / 1000, tz=timezone.utc).astimezone(ZoneInfo(tz)).weekday()]


def render(req):
    """Return /rosters for the signed-in reader (the router has checked they may see it)."""
    svc, user = req.svc, current_user()
    tz = svc.config["PANORAMA_TZ"]
    docs, rows = _read(svc, req.now, check_role(user, CONTACTS))
    scope = reader_scope()
    return rosters_layout(req.lang, docs, rows, may_override(user, svc.city), iso(req.now, tz)[:16].replace("T", " "),
                          tz, _weekday(req.now, tz), svc.city.rosters.fallback, not scope.city,
                          [d for d in docs if scope.sets_roster(d["district"])])


def register_callbacks(app) -> None:
    """Register the rosters page's callbacks."""

    # the override form's button -> an override recorded (as POST /api/rosters/overrides) -> words, fresh duty
    @allow(app, "command")
    @app.callback(Output("override-message", "children"), Output("override-list", "children"),
                  Output("roster-list", "children"),
                  Input("override-submit", "n_clicks"), State("override-person", "value"),
                  State("override-role", "value"), State("override-hours", "value"),
                  State("override-reason", "value"), State("lang", "data"), prevent_initial_call=True)
    @validated
    def set_override(n: int | None, person: str | None, role: str | None, hours: int | None, reason: str | None,
                     lang: Lang):
        if not n:
            return no_update, no_update, no_update
        lang = lang if lang in ("zh", "en") else "zh"
        svc, user = _svc(), current_user()
        if not check_role(user, "command"):
            return tx("not_allowed", lang), no_update, no_update
        if not may_override(user, svc.city):  # a district centre with no roster of its own: the city's are the city's
            return tx("refused_city_only", lang), no_update, no_update
        if not person or "/" not in person or not role or not (reason or "").strip() or hours not in HOURS:
            return tx("need_all", lang), no_update, no_update
        department, person_id = person.split("/", 1)
        now = svc.clock()
        tz = svc.config["PANORAMA_TZ"]
        try:
            row = create_override(svc, department, person_id, role, None, iso(now + hours * 3_600_000, tz), reason,
                                  user.username, reader_scope())
        except ApiError as err:
            key = f"refused_{err.code}"
            return tx(key if key in TEXT_KEYS else "refused_other", lang), no_update, no_update
        docs, rows = _read(svc, svc.clock(), check_role(user, CONTACTS))
        dep = next(d for d in docs if d["code"] == department)
        who = next(p for p in dep["people"] if p["id"] == person_id)
        pick = "name_en" if lang == "en" else "name"
        said = tx("set_ok", lang, who=who[pick], dep=dep[pick], role=duty_word(role, lang),
                  until=override_doc(row, tz)["until"][11:16])
        return said, override_list(rows, docs, lang), department_cards(docs, _weekday(now, tz), lang)
