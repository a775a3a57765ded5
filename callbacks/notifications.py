"""The notifications' delivery log page (/notifications): drawn on the server, its filters are plain links."""

from __future__ import annotations

from urllib.parse import parse_qs

from dashboard.storage import outbox
from dashboard.web.api_notifications import delivery_log
from layouts.notifications import notifications_layout

LIMIT = 200  # the newest shown; the API pages further (limit up to 500) and filters


def _one(query: dict, name: str, allowed: tuple[str, ...]) -> str | None:
    value = (query.get(name) or [None])[0]
    return value if value in allowed else None  # an unknown filter shows everything rather than nothing


def render(req):
    """Return /notifications for an officer, a commander or an admin (the router has checked the role)."""
    query = parse_qs((req.search or "").lstrip("?"))
    status, channel = _one(query, "status", outbox.STATUSES), _one(query, "channel", outbox.CHANNELS)
    rows, summary = delivery_log(req.svc, (status,) if status else (), (channel,) if channel else (), LIMIT)
    return notifications_layout(req.lang, rows, summary, status, channel, LIMIT)

