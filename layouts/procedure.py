"""Lay out an incident's standard procedure (预案): its checklist with tick buttons in /dispatch's detail, its
progress in the command view (the steps as ``desk.step_doc`` gives them). Step words come from the city pack,
shown as text."""

from __future__ import annotations

from typing import Callable

from dash import html

from dashboard.core.i18n import t


def _due(step: dict, now_ms: int, lang: str):
    if step["done_at"] is not None or step["due_ms"] is None:
        return None
    due, late = step["due_ms"], step["due_ms"] < now_ms
    minutes = abs(due - now_ms) // 60_000
    # the same countdown as the tasks' (assets/live_major.js keeps it counting)
    return html.Span(f"{t('step_due', lang)} {t('major_due_over' if late else 'major_due_left', lang, m=minutes)}",
                     className="major-due" + (" major-over" if late else ""),
                     **{"data-due": str(due), "data-what": t("step_due", lang),
                        "data-left": t("major_due_left", lang, m="{m}"), "data-over": t("major_due_over", lang, m="{m}")})


def step_item(step: dict, incident_id: int, names: dict, lang: str, now_ms: int, can_tick: bool) -> html.Li:
    """Return one step: done or not, its words, its department, its deadline or who did it, and a tick button."""
    done = step["done_at"] is not None
    parts = [html.Span("✓" if done else "○", className="step-mark", **{"aria-hidden": "true"}),
             html.Span(step["title_en"] if lang == "en" else step["title"], className="step-title"),
             html.Span(names.get(step["department"], step["department"]), className="step-dep")]
    if done:
        parts.append(html.Span(t("step_done_by", lang, who=step["done_by"] or "", time=step["done_at"][11:19]),
                               className="step-done"))
    else:
        parts.append(_due(step, now_ms, lang))
        if step["escalated"]:
            parts.append(html.Span(t("step_escalated", lang), className="step-escalated"))
        if can_tick:
            parts.append(html.Button(t("step_tick", lang), n_clicks=0, className="btn step-tick",
                                     id={"step-tick": step["step"], "incident": incident_id}))
    return html.Li(parts, className="step" + (" is-done" if done else "")
                   + (" is-escalated" if step["escalated"] and not done else ""))


def checklist_view(steps: list[dict], incident_id: int, names: dict, lang: str, now_ms: int,
                   may_tick: Callable[[str], bool] | None = None) -> html.Section | None:
    """Return the incident's checklist (None when its kind has no procedure); ``may_tick(department)`` tells
    whether the reader gets a tick button for a step of that department (None: nobody, as on the wall)."""
    if not steps:
        return None
    done = sum(s["done_at"] is not None for s in steps)
    return html.Section([
        html.H4(t("procedure", lang, done=done, n=len(steps))),
        html.Ol([step_item(s, incident_id, names, lang, now_ms, bool(may_tick and may_tick(s["department"])))
                 for s in steps], id="procedure-steps", className="procedure-steps"),
        html.Div(id="procedure-message", className="procedure-message", role="status") if may_tick else None,
    ], className="procedure")
