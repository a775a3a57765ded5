"""Lay out /dispatch's merge and split: the two buttons of an incident's detail and their confirming dialogs."""

from __future__ import annotations

from dash import dcc, html

from dashboard.core.i18n import kind_label, pick

_TEXT = {
    "merge_open": ("合并到…", "Merge into…"),
    "split_open": ("拆分…", "Split…"),
    "merge_title": ("合并事件", "Merge incidents"),
    "merge_choose": ("并入哪个进行中的事件（同区、邻近的在前）",
                     "Merge into which open incident (the same district's and the nearest first)"),
    "merge_none": ("没有可并入的进行中事件", "No open incident to merge into"),
    "merge_confirm": ("确认后，「{a}」结案并入「{b}」：其上报和进行中的任务随之转移",
                      "On confirming, “{a}” closes and merges into “{b}”: its reports and live tasks move there"),
    "merge_pick": ("请选择要并入的事件", "Choose the incident to merge into"),
    "merge_submit": ("确认合并", "Merge"),
    "merged_ok": ("已合并：「{a}」并入「{b}」", "Merged: “{a}” into “{b}”"),
    "merged_note": ("本事件已并入 #{id}", "This incident was merged into #{id}"),
    "split_title": ("拆分事件", "Split the incident"),
    "split_choose": ("勾选移入新事件的上报", "Tick the reports that become a new incident"),
    "split_confirm": ("确认后，{n} 条上报拆分为新的待派单事件，任务留在本事件",
                      "On confirming, {n} report(s) become a new open incident; the tasks stay here"),
    "split_pick": ("请勾选部分上报（不能全选）", "Tick some of the reports (not all)"),
    "split_submit": ("确认拆分", "Split"),
    "split_ok": ("已拆分：新事件「{b}」（{n} 条上报）", "Split: new incident “{b}” ({n} report(s))"),
    "cancel": ("取消", "Cancel"),
    "note": ("备注", "Note"),
    "km": ("约 {km} 公里", "{km} km away"),
}


def tx(key: str, lang: str, **fmt) -> str:
    """Return one of merge and split's texts in ``lang``."""
    return pick(_TEXT, key, lang, **fmt)


def buttons(lang: str, may: bool) -> list:
    """Return the detail's "merge into…" and "split…" buttons (hidden from whoever may not use them)."""
    return [html.Button(tx("merge_open", lang), id="dispatch-merge-open", n_clicks=0, disabled=True, hidden=not may,
                        className="btn", **{"aria-haspopup": "dialog"}),
            html.Button(tx("split_open", lang), id="dispatch-split-open", n_clicks=0, disabled=True, hidden=not may,
                        className="btn", **{"aria-haspopup": "dialog"})]


def _dialog(kind: str, lang: str, choices) -> html.Div:
    """Return a confirming dialog: a titled group of choices, what confirming does, a note, confirm and cancel."""
    return html.Div(html.Div([
        html.H3(tx(f"{kind}_title", lang), id=f"{kind}-dialog-title"),
        html.Fieldset([html.Legend(tx(f"{kind}_choose", lang)), choices], className="merge-choices"),
        html.P(id=f"{kind}-confirm", className="merge-confirm", role="status"),
        html.Label(tx("note", lang), htmlFor=f"{kind}-note"),
        dcc.Textarea(id=f"{kind}-note", value="", className="dispatch-note"),
        html.Div([html.Button(tx(f"{kind}_submit", lang), id=f"{kind}-submit", n_clicks=0, disabled=True,
                              className="btn btn-primary"),
                  html.Button(tx("cancel", lang), id=f"{kind}-cancel", n_clicks=0, className="btn")],
                 className="dialog-actions"),
        html.Div(id=f"{kind}-message", className="message", role="alert"),
        dcc.Store(id=f"{kind}-version"),
    ], className="dialog", role="dialog", **{"aria-modal": "true", "aria-labelledby": f"{kind}-dialog-title"}),
        id=f"{kind}-dialog", hidden=True, className="dialog-backdrop")


def dialogs(lang: str) -> list:
    """Return the merge and split dialogs, hidden until their buttons open them.

    Their choices are buttons in the roles of radio buttons and checkboxes, ``aria-checked`` kept by the browser
    (Dash 4 has no plain ``<input>``, and its ``dcc.RadioItems`` / ``dcc.Checklist`` fail axe: docs/alerts.md); the
    browser copies what is chosen into ``merge-choice`` / ``split-ticked`` for the server.
    """
    return [_dialog("merge", lang, html.Div([html.Div(id="merge-into", className="merge-targets", role="radiogroup",
                                                      **{"aria-labelledby": "merge-dialog-title"}),
                                             dcc.Store(id="merge-choice")])),
            _dialog("split", lang, html.Div([html.Div(id="split-reports", className="split-reports"),
                                             dcc.Store(id="split-ticked", data=[])]))]


def _choice(role: str, kind: str, index, label: str) -> html.Button:
    return html.Button(label, id={"type": kind, "index": index}, n_clicks=0, role=role, className=f"choice {kind}",
                       **{"aria-checked": "false"})


def target_items(rows: list[dict], names: dict[str, str], lang: str) -> list:
    """Return the incidents offered to merge into, one radio choice each: number, severity, title, district and
    distance, as text."""
    out = []
    for r in rows:
        far = r.get("distance_m")
        parts = [f"#{r['id']}", f"S{r['severity']}", r["title"] or kind_label(r["kind"], lang),
                 names.get(r["district"], r["district"])]
        if far is not None:
            parts.append(tx("km", lang, km=f"{far / 1000:.1f}"))
        out.append(_choice("radio", "merge-target", r["id"], " · ".join(parts)))
    return out


def report_items(reports: list[dict], lang: str) -> list:
    """Return the reports offered to split off, one checkbox each (one per event id): time, title and source."""
    seen, out = set(), []
    for r in reports:
        if r["id"] in seen:
            continue
        seen.add(r["id"])
        label = f"{r['ts'][11:19]} {r['title'] or kind_label(r['kind'], lang)}" + (f" — {r['source']}"
                                                                                   if r["source"] else "")
        out.append(_choice("checkbox", "split-report", r["id"], label))
    return out


def merged_note(incident: dict, lang: str):
    """Return the detail's line naming where a merged-away incident went (None when it was not merged)."""
    if incident.get("merged_into") is None:
        return None
    return html.P(tx("merged_note", lang, id=incident["merged_into"]), id="dispatch-merged-into",
                  className="merged-note")
