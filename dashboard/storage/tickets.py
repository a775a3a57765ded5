"""Websocket tickets: signed by the app for a signed-in user or a wall, checked by the gateway."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import parse_qs, urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from dashboard.core.clock import now_ms
from dashboard.storage import users as store

# Websocket tickets: signed with the app's secret key, good for a minute, checked by the gateway.
TICKET_SALT = "panorama-ws-ticket"
TICKET_MAX_AGE_S = 60
TICKET_NONCE = "n"


def _tickets(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=TICKET_SALT)


def issue_ticket(secret: str, subject: Mapping[str, Any]) -> str:
    """Return a signed, timestamped websocket ticket for ``subject``.

    ``/api/ws-ticket`` gives ``{"u": user id, "e": session epoch}`` (and ``"d": department`` for a liaison)
    or ``{"k": kiosk token id}``; a program that holds the secret key (a benchmark) may name itself instead,
    e.g. ``{"svc": "bench"}``. Each ticket carries a nonce: two made in the same second for the same subject
    (two tabs) differ, so each opens its own socket once.
    """
    return _tickets(secret).dumps({**subject, TICKET_NONCE: secrets.token_urlsafe(9)})


def verify_ticket(secret: str, ticket: str | None, max_age: float = TICKET_MAX_AGE_S) -> dict | None:
    """Return the subject of a ticket signed with ``secret`` in the last ``max_age`` seconds, else None."""
    opened = open_ticket(secret, ticket, max_age)
    return None if opened is None else opened[0]


def open_ticket(secret: str, ticket: str | None, max_age: float = TICKET_MAX_AGE_S) -> tuple[dict, float] | None:
    """Return the subject of a valid ticket and the seconds it stays valid (how long to remember it was used)."""
    if not ticket or len(ticket) > 512:
        return None
    try:
        subject, signed_at = _tickets(secret).loads(ticket, max_age=max_age, return_timestamp=True)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(subject, dict):
        return None
    subject.pop(TICKET_NONCE, None)
    return subject, max(0.0, max_age - (datetime.now(timezone.utc) - signed_at).total_seconds())


def ticket_holder(subject: Mapping[str, Any]) -> str | None:
    """Return whose sockets a ticket counts against: a user (``u:<id>``), a kiosk token (``k:<id>``), or None for
    a program that holds the secret key itself (a benchmark, a monitor), which is not limited."""
    if "u" in subject and "e" in subject:
        return f"u:{subject['u']}"
    if "k" in subject:
        return f"k:{subject['k']}"
    return None


def subjects_valid(engine, subjects: list[Mapping[str, Any]]) -> list[bool]:
    """Tell, for each ticket subject, whether it still holds: the user active and not signed out since
    (``{"u", "e"}``) and the session not past its end (``"x"``), the kiosk token not revoked (``{"k"}``).
    A subject of another shape was minted by a program that holds the secret key itself (a benchmark, a
    monitor) and always holds."""
    user_ids = {int(s["u"]) for s in subjects if "u" in s and "e" in s}
    kiosk_ids = {int(s["k"]) for s in subjects if "k" in s}
    epochs = store.user_epochs(engine, user_ids) if user_ids else {}
    live_kiosks = store.live_kiosk_ids(engine, kiosk_ids) if kiosk_ids else set()
    out = []
    for s in subjects:
        if "u" in s and "e" in s:
            out.append(epochs.get(int(s["u"])) == s["e"] and now_ms() < s.get("x", float("inf")))
        elif "k" in s:
            out.append(int(s["k"]) in live_kiosks)
        else:
            out.append(True)
    return out


def ticket_of(path: str) -> str | None:
    """Return the ``ticket`` of a websocket request path (``/?ticket=...``)."""
    values = parse_qs(urlsplit(path).query).get("ticket")
    return values[0] if values else None
