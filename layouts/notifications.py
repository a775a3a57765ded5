"""Lay out /notifications: the delivery log of the notifications, newest first, with filters and each try."""

from __future__ import annotations

from urllib.parse import urlencode

from dash import html

from dashboard.core.i18n import t
from layouts.common import lang_toggle, topbar

STATUSES = ("pending", "sending", "sent", "failed", "cancelled")
CHANNELS = ("webhook", "email", "sms")


def _when(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else ""


def _filters(lang: str, status: str | None, channel: str | None) -> html.Div:
    """Return the filter links: plain links, so the page is drawn again on the server with them."""
    def link(label: str, s: str | None, c: str | None, here: bool, cls: str) -> html.A:
        query = urlencode({k: v for k, v in (("status", s), ("channel", c)) if v})
        return html.A(label, href="/notifications" + ("?" + query if query else ""), className=f"notify-filter {cls}",
                      **({"aria-current": "true"} if here else {}))
    by_status = [link(t("notify_all", lang), None, channel, status is None, "notify-filter-status")]
    by_status += [link(t(f"notify_{s}", lang), s, channel, status == s, "notify-filter-status") for s in STATUSES]
    by_channel = [link(t("notify_all", lang), status, None, channel is None, "notify-filter-channel")]
    by_channel += [link(t(f"notify_{c}", lang), status, c, channel == c, "notify-filter-channel") for c in CHANNELS]
    return html.Div([
        html.Div([html.Span(t("notify_filter_status", lang), className="notify-filter-label"), *by_status],
                 className="notify-filters", id="notify-filter-status"),
        html.Div([html.Span(t("notify_filter_channel", lang), className="notify-filter-label"), *by_channel],
                 className="notify-filters", id="notify-filter-channel"),
    ])


def _outcome(row: dict, lang: str) -> html.Td:
    """Return the last try's outcome: its time and detail (as text), and the next try while it waits."""
    parts = []
    if row["log"]:
        last = row["log"][-1]
        parts.append(html.Span(f"{_when(last['at'])} ", className="notify-try-at"))
        parts.append(html.Span(t("notify_ok", lang) if last["ok"] else (last["detail"] or ""),
                               className="notify-try-ok" if last["ok"] else "notify-try-error"))
    if row["status"] == "pending" and row["due_at"]:
        parts.append(html.Div(t("notify_next_try", lang, time=_when(row["due_at"])), className="notify-next"))
    if row["sent_at"]:
        parts.append(html.Div(t("notify_sent_at", lang, time=_when(row["sent_at"])), className="notify-sent"))
    return html.Td(parts, className="notify-last")


def log_table(rows: list[dict], lang: str) -> html.Table | html.P:
    """Return the delivery log as a table (every text a text node, never markup)."""
    if not rows:
        return html.P(t("notify_none", lang), className="notify-empty", id="notify-table")
    head = html.Thead(html.Tr([html.Th(t(k, lang), scope="col") for k in (
        "notify_col_time", "notify_col_channel", "notify_col_to", "notify_col_subject", "notify_col_status",
        "notify_col_tries", "notify_col_last")]))
    body = [html.Tr([
        html.Td(_when(r["created_at"]), className="notify-time"),
        html.Td(t(f"notify_{r['channel']}", lang), className="notify-channel"),
        html.Td(r["address"], className="notify-to"),
        html.Td([html.Div(r["subject"], className="notify-subject"),
                 html.Div(r["key"], className="notify-key", title=t("notify_key", lang))]),
        html.Td(t(f"notify_{r['status']}", lang), className=f"notify-status notify-status-{r['status']}"),
        html.Td(str(r["attempts"]), className="notify-tries"),
        _outcome(r, lang),
    ], className="notify-row", id={"type": "notify-row", "id": r["id"]}) for r in rows]
    return html.Table([head, html.Tbody(body)], className="notify-table", id="notify-table")


def notifications_layout(lang: str, rows: list[dict], summary: dict, status: str | None, channel: str | None,
                         limit: int) -> html.Div:
    """Return /notifications: what waits and failed, the filters, and the newest messages with their tries."""
    said = [html.Span(t("notify_summary", lang, pending=summary["pending"], failed=summary["failed"]),
                      id="notify-summary")]
    if summary["oldest_pending_s"] is not None:
        said.append(html.Span(" · " + t("notify_oldest", lang, min=summary["oldest_pending_s"] // 60),
                              className="notify-oldest"))
    if len(rows) >= limit:
        said.append(html.Span(" · " + t("notify_shown", lang, n=limit), className="notify-shown"))
    return html.Div([
        topbar(lang, t("page_notifications", lang), lang_toggle(lang)),
        html.Main([html.P(said, className="notify-said"), _filters(lang, status, channel), log_table(rows, lang)],
                  className="notify-main"),
    ], className="page page-notifications")
