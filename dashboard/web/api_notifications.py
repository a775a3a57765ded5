"""Serve the notifications' delivery log under /api (issue 16): what was sent to whom, how each try went."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from dashboard.core import messages
from dashboard.storage import outbox
from dashboard.web.api import ApiError, json_errors, services
from dashboard.web.auth import reader_scope, require

bp = Blueprint("notifications_api", __name__, url_prefix="/api")
json_errors(bp)
DEFAULT_LIMIT = 100


def _listed(name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    arg = request.args.get(name)
    if arg is None or arg == "":
        return ()
    wanted = tuple(s.strip() for s in arg.split(",") if s.strip())
    if not wanted or any(s not in allowed for s in wanted):
        raise ApiError(400, f"bad_{name}", f"{name} must be one or more of {', '.join(allowed)} (comma-separated)")
    return wanted


def _limit() -> int:
    arg = request.args.get("limit")
    if arg is None or arg == "":
        return DEFAULT_LIMIT
    if not arg.isdigit() or not 1 <= int(arg) <= outbox.LIST_LIMIT:
        raise ApiError(400, "bad_limit", f"limit must be a whole number from 1 to {outbox.LIST_LIMIT}")
    return int(arg)


def delivery_log(svc, statuses=(), channels=(), limit: int = DEFAULT_LIMIT) -> tuple[list[dict], dict]:
    """Return the newest messages (with their tries) and the outbox's summary: the API's and the page's one read.

    A district centre's user reads the messages about their district (its alerts' notifications, the
    escalations of its alerts, incidents' tasks and procedure steps, its briefings' mail: ``outbox.district``,
    written with each message) and a summary of those alone, over every message the outbox keeps: what the
    city's log says of other districts, they do not read."""
    own = reader_scope().district
    with svc.read(primary=True) as conn:
        rows = outbox.list_messages(conn, statuses=statuses, channels=channels, limit=limit, district=own)
        summary = outbox.summary(conn, svc.clock(), district=own)
        tries = outbox.attempts_of(conn, [r["id"] for r in rows])
    tz = svc.config["PANORAMA_TZ"]
    return [messages.notification_view(r, tries[r["id"]], tz) for r in rows], summary


@bp.get("/notifications")
@require("command")
def get_notifications():
    """The delivery log, newest first: ``status`` and ``channel`` filters (comma-separated), ``limit`` (<= 500).

    Officers, commanders and admins: the log names the people told (mailboxes, phone numbers)."""
    svc = services()
    rows, summary = delivery_log(svc, _listed("status", outbox.STATUSES), _listed("channel", outbox.CHANNELS),
                                 _limit())
    return jsonify({"notifications": rows, "summary": summary})


def init_app(server) -> None:
    """Register the notifications API (after the main API blueprint)."""
    server.register_blueprint(bp)
