"""Lay out /rosters: who is on duty now per department, today's shifts, the escalation ladder, an override form."""

from __future__ import annotations

from dash import dcc, html

from dashboard.core.i18n import duty_word, pick
from layouts.common import lang_toggle, topbar

# The page's own words (zh, en).
_TEXT = {
    "title": ("值班与升级", "Duty rosters"),
    "now": ("当前时间 {time}（{tz}）", "Now {time} ({tz})"),
    "on_duty": ("当前值班", "On duty now"),
    "today": ("今日班次", "Today's shifts"),
    "ladder": ("升级阶梯", "Escalation ladder"),
    "level": ("第 {n} 级", "Level {n}"),
    "at_once": ("立即通知", "told at once"),
    "after": ("{m} 分钟后未确认则通知", "told after {m} min unacknowledged"),
    "rounds": ("共 {n} 轮，每 {m} 分钟一轮，任何一级确认即停止", "{n} round(s), one every {m} min; stops on acknowledgement"),
    "one_round": ("共 1 轮，任何一级确认即停止", "1 round; stops on acknowledgement"),
    "nobody": ("无人值班", "nobody on duty"),
    "overridden": ("临时调班", "override"),
    "fallback": ("未列出值班表的部门（各区政府、街道办）由{dep}值班升级", "Departments without a roster (district "
                 "governments, street offices) escalate through {dep}'s duty"),
    "form": ("临时调班", "Set an override"),
    "f_person": ("值班人员", "Person"),
    "f_role": ("担任", "Role"),
    "f_hours": ("时长", "For"),
    "f_reason": ("原因", "Reason"),
    "f_submit": ("确定调班", "Set override"),
    "hours": ("{n} 小时", "{n} h"),
    "pick": ("请选择", "Choose"),
    "set_ok": ("已调班：{who} 担任{dep}{role}至 {until}", "Override set: {who} is {dep}'s {role} until {until}"),
    "need_all": ("请选择人员、担任角色并填写原因", "Choose a person and a role, and say why"),
    "not_allowed": ("无权调班", "You may not set overrides"),
    # a refusal in words (the API's own message is English, for programs)
    "refused_unknown_department": ("未调班：该部门没有值班表", "Not set: that department has no roster"),
    "refused_unknown_person": ("未调班：该人员不在此部门值班表中", "Not set: that person is not on the roster"),
    "refused_bad_role": ("未调班：角色无效", "Not set: no such role"),
    "refused_bad_until": ("未调班：时段无效", "Not set: the time is not valid"),
    "refused_other": ("未调班：请求有误", "Not set: the request was not valid"),
    "refused_city_only": ("未调班：部门值班表由市级指挥中心调整", "Not set: the city centre changes departments' rosters"),
    "refused_other_district": ("未调班：该部门属于其他区", "Not set: that department is another district's"),
    # a district centre's reader: the city departments' rosters, read here, changed by the city centre; their own
    # district's departments' (if the pack gives them rosters) theirs to change
    "city_only": ("各部门值班表全市统一：区级指挥中心可查看，临时调班由市级指挥中心设置",
                  "Departments' duty rosters are the city's: a district centre reads them; the city centre sets "
                  "overrides"),
    "own_district": ("市级部门值班表由市级指挥中心调班；本区部门值班表可在此临时调班",
                     "The city centre sets the city departments' overrides; your district's departments' are set "
                     "here"),
    "overrides": ("生效中的临时调班", "Overrides in force"),
    "no_overrides": ("暂无临时调班", "No overrides"),
    "override_row": ("{who} 担任{dep}{role}，{start} 至 {until}（{reason}，{by}）",
                     "{who} as {dep}'s {role}, {start} to {until} ({reason}, set by {by})"),
    "day": ("白班", "Day"), "night": ("夜班", "Night"), "leader": ("带班领导", "Duty leader"),
    "all_day": ("全天", "All day"),
    "mon": ("周一", "Mon"), "tue": ("周二", "Tue"), "wed": ("周三", "Wed"), "thu": ("周四", "Thu"),
    "fri": ("周五", "Fri"), "sat": ("周六", "Sat"), "sun": ("周日", "Sun"),
}
HOURS = (1, 2, 4, 8, 12, 24)
TEXT_KEYS = frozenset(_TEXT)


def tx(key: str, lang: str, **fmt) -> str:
    """Return one of the page's words in ``lang``."""
    return pick(_TEXT, key, lang, **fmt)


def _name(doc: dict, lang: str) -> str:
    return doc["name_en"] if lang == "en" else doc["name"]


def shift_name(name: str, lang: str) -> str:
    """Return a shift's name in words (one the page does not know, as written in rosters.yaml)."""
    return tx(name, lang) if name in ("day", "night", "leader", "all_day") else name


def person_text(p: dict, lang: str) -> str:
    """Return a person as the page shows them: name, and the phone for those who may read it."""
    return _name(p, lang) + (f" {p['phone']}" if p.get("phone") else "")


def duty_rows(dep: dict, lang: str) -> html.Ol:
    """Return who is on duty now at each level of a department's ladder."""
    items = []
    for lv in dep["on_duty"]:
        who = "、".join(person_text(p, lang) for p in lv["people"]) if lang == "zh" else \
            ", ".join(person_text(p, lang) for p in lv["people"])
        items.append(html.Li([html.Span(tx("level", lang, n=lv["level"]), className="duty-level"),
                              html.Span(duty_word(lv["role"], lang), className="duty-role"),
                              html.Span(who or tx("nobody", lang), className="duty-who"),
                              html.Span(tx("overridden", lang), className="duty-override")
                              if lv["override"] else None],
                             className="duty-row", **{"data-role": lv["role"]}))
    return html.Ol(items, className="duty-now")


def ladder_text(dep: dict, lang: str) -> list:
    """Return the escalation ladder in words: each level, when and how it is told, and the rounds."""
    sep = "、" if lang == "zh" else ", "
    steps = [html.Li(f"{tx('level', lang, n=lv['level'])} · {duty_word(lv['role'], lang)} · "
                     f"{tx('at_once', lang) if lv['after_min'] == 0 else tx('after', lang, m=lv['after_min'])} · "
                     f"{sep.join(duty_word(c, lang) for c in lv['channels'])}") for lv in dep["on_duty"]]
    policy = dep["policy"]
    rounds = tx("rounds", lang, n=policy["rounds"], m=policy["round_every_min"]) if policy["rounds"] > 1 else \
        tx("one_round", lang)
    return [html.Ol(steps, className="ladder-steps"), html.P(rounds, className="ladder-rounds")]


def shift_rows(dep: dict, weekday: str, lang: str) -> html.Ul:
    """Return the shifts that start today, with who is on them (a night shift runs into tomorrow morning)."""
    people = {p["id"]: p for p in dep["people"]}
    zh = lang != "en"

    def who(i: str) -> str:
        p = people[i]
        return f"{_name(p, lang)}（{duty_word(p['role'], lang)}）" if zh else f"{_name(p, lang)} ({duty_word(p['role'], lang)})"

    return html.Ul([html.Li(f"{shift_name(s['name'], lang)} {s['time']}{'：' if zh else ': '}"
                            + ("、" if zh else ", ").join(who(i) for i in s["who"] if i in people),
                            className="shift-row")
                    for s in dep["shifts"] if weekday in s["days"]], className="shifts-today")


def department_cards(docs: list[dict], weekday: str, lang: str) -> list:
    """Return one card per department: on duty now, today's shifts, the ladder."""
    return [html.Section([
        html.H2(_name(dep, lang), className="roster-dept-name"),
        html.H3(tx("on_duty", lang)), duty_rows(dep, lang),
        html.H3(tx("today", lang)), shift_rows(dep, weekday, lang),
        html.H3(tx("ladder", lang)), *ladder_text(dep, lang),
    ], className="roster-dept", id=f"roster-{dep['code']}") for dep in docs]


def override_list(rows: list[dict], docs: list[dict], lang: str) -> html.Div:
    """Return the overrides in force now or later."""
    if not rows:
        return html.P(tx("no_overrides", lang), className="overrides-none")
    deps = {d["code"]: d for d in docs}
    people = {p["id"]: p for d in docs for p in d["people"]}
    items = [html.Li(tx("override_row", lang, who=_name(people[o["person"]], lang) if o["person"] in people
                        else o["person"],
                        dep=_name(deps[o["department"]], lang) if o["department"] in deps else o["department"],
                        role=duty_word(o["role"], lang), start=o["from"][5:16].replace("T", " "),
                        until=o["until"][5:16].replace("T", " "), reason=o["reason"], by=o["created_by"]),
                     className="override-row") for o in rows]
    return html.Ul(items, className="overrides")


def override_form(docs: list[dict], lang: str) -> html.Section:
    """Return the form an officer or commander sets an override with."""
    people = [{"label": f"{_name(d, lang)} · {_name(p, lang)}（{duty_word(p['role'], lang)}）" if lang == "zh" else
               f"{_name(d, lang)} · {_name(p, lang)} ({duty_word(p['role'], lang)})",
               "value": f"{d['code']}/{p['id']}"} for d in docs for p in d["people"]]
    roles = [{"label": duty_word(r, lang), "value": r} for r in ("officer", "deputy", "commander")]
    hours = [{"label": tx("hours", lang, n=h), "value": h} for h in HOURS]
    return html.Section([
        html.H2(tx("form", lang)),
        html.Label([tx("f_person", lang), dcc.Dropdown(people, id="override-person", placeholder=tx("pick", lang),
                                                       clearable=False)], className="override-field"),
        html.Label([tx("f_role", lang), dcc.Dropdown(roles, id="override-role", placeholder=tx("pick", lang),
                                                     clearable=False)], className="override-field"),
        html.Label([tx("f_hours", lang), dcc.Dropdown(hours, 8, id="override-hours", clearable=False)],
                   className="override-field"),
        html.Label([tx("f_reason", lang), dcc.Input(id="override-reason", type="text", maxLength=500,
                                                    debounce=False, className="override-reason")],
                   className="override-field"),
        html.Button(tx("f_submit", lang), id="override-submit", n_clicks=0, className="override-submit"),
        html.P(id="override-message", className="override-message", role="status"),
    ], className="override-form", id="override-form")


def rosters_layout(lang: str, docs: list[dict], rows: list[dict], may_override: bool, now_text: str, tz: str,
                   weekday: str, fallback: str | None, district_centre: bool = False,
                   settable: list[dict] | None = None) -> html.Div:
    """Return /rosters for the reader (the form only for those who may set overrides, offering the rosters of
    ``settable`` (default: every one in ``docs``); a district centre's reader is told who sets which)."""
    fallback_doc = next((d for d in docs if d["code"] == fallback), None)
    main = [html.P(tx("now", lang, time=now_text, tz=tz), className="rosters-now", id="rosters-now")]
    if fallback_doc is not None:
        main.append(html.P(tx("fallback", lang, dep=_name(fallback_doc, lang)), className="rosters-fallback"))
    if district_centre:
        main.append(html.P(tx("own_district" if may_override else "city_only", lang), className="rosters-fallback",
                           id="rosters-city-only"))
    if may_override:
        main.append(override_form(docs if settable is None else settable, lang))
    main += [html.Section([html.H2(tx("overrides", lang)),
                           html.Div(override_list(rows, docs, lang), id="override-list")], className="overrides-box"),
             html.Div(department_cards(docs, weekday, lang), id="roster-list", className="roster-list")]
    return html.Div([topbar(lang, tx("title", lang), lang_toggle(lang)), html.Main(main, className="rosters-main")],
                    className="page page-rosters")
