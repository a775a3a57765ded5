"""Keep notifications in a transactional outbox: enqueue with the change, claim, record each attempt, retry."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import orjson
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import Connection

from dashboard.core.clock import now_ms as wall_ms
from dashboard.storage.models import alerts, incidents, outbox, outbox_attempts, tasks

CHANNELS = ("webhook", "email", "sms")
STATUSES = ("pending", "sending", "sent", "failed", "cancelled")
LIST_LIMIT = 500
DETAIL_MAX = 2000
_MANY_ROWS = 500  # rows of one enqueue_many statement: 11 parameters each, well within SQLite's 32,766  # a receiver's error text, cut: the log is for people, not for a whole HTML error page

# Insert-if-absent by key; RETURNING says whether this call made the row (both engines, SQLite >= 3.35).
_ENQUEUE = text(
    "INSERT INTO outbox (key, channel, address, subject, body, payload, district, centre, status, attempts, due_ms, "
    "created_ms) VALUES (:key, :channel, :address, :subject, :body, :payload, :district, :centre, 'pending', 0, :due, "
    ":now) "
    "ON CONFLICT (key) DO NOTHING RETURNING id")


# The same for many rows in one statement on PostgreSQL, the rows as one JSON document: one fixed statement, where
# a multi-row VALUES is a statement SQLAlchemy builds per call (it cost as much CPU as the 18 single inserts of a
# ladder), and where text arrays cost the driver a regular-expression escape of every element (~9 ms of CPU a
# ladder of 16 messages, profiled; orjson writes the document in a fraction of that).
_ENQUEUE_MANY_PG = text(
    "INSERT INTO outbox (key, channel, address, subject, body, payload, district, centre, status, attempts, due_ms, "
    "created_ms) "
    "SELECT m.key, m.channel, m.address, m.subject, m.body, m.payload, m.district, m.centre, 'pending', 0, m.due_ms, "
    ":now FROM json_to_recordset(CAST(:rows AS json)) AS m(key text, channel text, address text, subject text, "
    "body text, payload text, district text, centre text, due_ms bigint) "
    "ON CONFLICT (key) DO NOTHING RETURNING id")


def enqueue(conn: Connection, *, key: str, channel: str, address: str, subject: str, body: str,
            payload: Any, due_ms: int | None = None, now_ms: int | None = None) -> bool:
    """Add a message to send unless one with ``key`` exists; return whether this call added it.

    Called inside the caller's transaction (with the change the message tells of), so the message exists exactly
    when the change commits. ``key`` is the idempotency key: unique here, and sent along so a receiver can
    recognise a message delivered twice. ``payload`` is JSON (a str is taken as JSON already); ``due_ms``: not
    before then (default now).
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}: one of {', '.join(CHANNELS)}")
    now = wall_ms() if now_ms is None else now_ms
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, sort_keys=True)
    district, centre = told_places(conn, [data])[0]
    row = conn.execute(_ENQUEUE, {"key": key, "channel": channel, "address": address, "subject": subject,
                                  "body": body, "payload": data, "district": district, "centre": centre,
                                  "due": now if due_ms is None else due_ms, "now": now}).first()
    return row is not None


def enqueue_many(conn: Connection, messages: Sequence[Mapping[str, Any]], *, now_ms: int | None = None) -> int:
    """Add several messages in one statement, each unless one with its key exists; return how many were added.

    ``messages``: ``enqueue``'s keyword arguments each (``due_ms`` optional). What ``enqueue`` does for one, for a
    whole escalation ladder at once: a statement per message cost a firing at 500 rules ~18 round trips. Within
    the call the first message of a key wins, as calling ``enqueue`` for each in turn would.
    """
    now = wall_ms() if now_ms is None else now_ms
    rows: dict[str, dict] = {}
    for m in messages:
        if m["channel"] not in CHANNELS:
            raise ValueError(f"unknown channel {m['channel']!r}: one of {', '.join(CHANNELS)}")
        if m["key"] in rows:
            continue
        payload = m["payload"]
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, sort_keys=True)
        rows[m["key"]] = {"key": m["key"], "channel": m["channel"], "address": m["address"], "subject": m["subject"],
                          "body": m["body"], "payload": data, "due_ms": now if m.get("due_ms") is None else m["due_ms"]}
    values = list(rows.values())
    for r, (district, centre) in zip(values, told_places(conn, [r["payload"] for r in values])):
        r["district"], r["centre"] = district, centre
    if conn.dialect.name != "postgresql":  # the embedded default: a statement each, as enqueue
        return sum(conn.execute(_ENQUEUE, {**r, "due": r["due_ms"], "now": now}).first() is not None for r in values)
    made = conn.execute(_ENQUEUE_MANY_PG, {"rows": orjson.dumps(values).decode(), "now": now})
    return len(made.all())


def claim_due(conn: Connection, *, now_ms: int, lease_ms: int, limit: int = 20,
              channels: Sequence[str] = CHANNELS) -> list[dict]:
    """Take up to ``limit`` rows due now to send: pending ones, and sending ones whose sender's lease ran out.

    Each taken row becomes ``sending`` until ``now_ms + lease_ms`` and its ``attempts`` goes up by one; the
    caller sends it and then calls ``mark_sent`` or ``mark_failed`` with that count (the fencing token: a sender
    whose lease was taken over cannot overwrite the new sender's outcome). Every take is a conditional write on
    the row's status and due time, so two senders never both take a row; on PostgreSQL the candidates are read
    ``FOR UPDATE SKIP LOCKED`` so concurrent senders take different rows rather than wait on each other.
    A row found still ``sending`` after its lease (its sender died between taking and recording) is logged as
    an attempt that came to nothing and sent again: at least once.
    """
    q = (select(outbox.c.id, outbox.c.status, outbox.c.due_ms, outbox.c.attempts)
         .where(outbox.c.status.in_(("pending", "sending")), outbox.c.due_ms <= now_ms,
                outbox.c.channel.in_(list(channels)))
         .order_by(outbox.c.due_ms, outbox.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    taken: list[dict] = []
    for cand in conn.execute(q).mappings().all():
        row = conn.execute(update(outbox).where(
            outbox.c.id == cand["id"], outbox.c.status == cand["status"], outbox.c.due_ms == cand["due_ms"],
            outbox.c.attempts == cand["attempts"])
            .values(status="sending", due_ms=now_ms + lease_ms, attempts=outbox.c.attempts + 1)
            .returning(*outbox.c)).mappings().first()
        if row is None:
            continue
        if cand["status"] == "sending":
            _attempt(conn, cand["id"], now_ms, False, "lease expired: the sender stopped before recording the outcome")
        taken.append(dict(row))
    return taken


def mark_sent(conn: Connection, row_id: int, *, attempts: int, now_ms: int, detail: str | None = None) -> bool:
    """Record a delivery; return False when the row was no longer this sender's (taken over after its lease)."""
    _attempt(conn, row_id, now_ms, True, detail)
    done = conn.execute(update(outbox).where(outbox.c.id == row_id, outbox.c.status == "sending",
                                             outbox.c.attempts == attempts)
                        .values(status="sent", sent_ms=now_ms, last_error=None)).rowcount
    return done == 1


def backoff_ms(attempts: int, *, base_ms: int, cap_ms: int) -> int:
    """Return the wait before the next try after ``attempts`` failed ones: base, 2 base, 4 base, ... up to cap."""
    return min(cap_ms, base_ms * 2 ** max(0, attempts - 1))


def mark_failed(conn: Connection, row_id: int, *, attempts: int, error: str, now_ms: int, max_attempts: int,
                base_ms: int, cap_ms: int) -> str | None:
    """Record a failed try: pending again after the backoff, or ``failed`` after ``max_attempts``.

    Returns the row's new status, or None when it was no longer this sender's (taken over after its lease).
    """
    error = error[:DETAIL_MAX]
    _attempt(conn, row_id, now_ms, False, error)
    if attempts >= max_attempts:
        values = {"status": "failed", "last_error": error}
    else:
        values = {"status": "pending", "last_error": error,
                  "due_ms": now_ms + backoff_ms(attempts, base_ms=base_ms, cap_ms=cap_ms)}
    done = conn.execute(update(outbox).where(outbox.c.id == row_id, outbox.c.status == "sending",
                                             outbox.c.attempts == attempts).values(**values)).rowcount
    return values["status"] if done == 1 else None


def cancel(conn: Connection, key_prefix: str) -> int:
    """Cancel the pending messages whose key starts with ``key_prefix``; return how many (in flight: not)."""
    if not key_prefix:
        raise ValueError("cancel needs a key prefix")
    return conn.execute(update(outbox).where(outbox.c.key.startswith(key_prefix, autoescape=True),
                                             outbox.c.status == "pending")
                        .values(status="cancelled")).rowcount


def prune(conn: Connection, before_ms: int, limit: int = 5000) -> int:
    """Forget settled messages (sent, failed, cancelled) made before ``before_ms``, their tries with them (at most
    ``limit`` a call); return how many. Waiting ones stay, however old: nothing queued is dropped."""
    ids = select(outbox.c.id).where(outbox.c.status.in_(("sent", "failed", "cancelled")),
                                    outbox.c.created_ms < before_ms).order_by(outbox.c.id).limit(limit)
    doomed = [r.id for r in conn.execute(ids)]
    if not doomed:
        return 0
    conn.execute(delete(outbox_attempts).where(outbox_attempts.c.outbox_id.in_(doomed)))
    return conn.execute(delete(outbox).where(outbox.c.id.in_(doomed))).rowcount


def _attempt(conn: Connection, row_id: int, at_ms: int, ok: bool, detail: str | None) -> None:
    conn.execute(insert(outbox_attempts).values(outbox_id=row_id, at_ms=at_ms, ok=ok,
                                                detail=None if detail is None else detail[:DETAIL_MAX]))


# --- reads: the delivery log ------------------------------------------------------------------------------------

def get(conn: Connection, key: str) -> dict | None:
    """Return the message with ``key``, or None."""
    row = conn.execute(select(outbox).where(outbox.c.key == key)).mappings().first()
    return dict(row) if row is not None else None


def list_messages(conn: Connection, *, statuses: Sequence[str] = (), channels: Sequence[str] = (),
                  key_prefix: str | None = None, limit: int = LIST_LIMIT, district: str | None = None) -> list[dict]:
    """Return messages newest first, of the statuses and channels asked for (any when none); ``district``: those
    a district centre reads only (``of_centre``: a district centre's part of the log)."""
    q = select(outbox).order_by(outbox.c.id.desc()).limit(max(1, min(limit, LIST_LIMIT)))
    if district is not None:
        q = q.where(of_centre(district))
    if statuses:
        q = q.where(outbox.c.status.in_(list(statuses)))
    if channels:
        q = q.where(outbox.c.channel.in_(list(channels)))
    if key_prefix:
        q = q.where(outbox.c.key.startswith(key_prefix, autoescape=True))
    return [dict(r) for r in conn.execute(q).mappings()]


def attempts_of(conn: Connection, row_ids: Sequence[int]) -> dict[int, list[dict]]:
    """Return each message's attempts, oldest first, by message id."""
    out: dict[int, list[dict]] = {i: [] for i in row_ids}
    if not row_ids:
        return out
    q = (select(outbox_attempts).where(outbox_attempts.c.outbox_id.in_(list(row_ids)))
         .order_by(outbox_attempts.c.outbox_id, outbox_attempts.c.id))
    for r in conn.execute(q).mappings():
        out[r["outbox_id"]].append(dict(r))
    return out


def summary(conn: Connection, now_ms: int, district: str | None = None) -> dict:
    """Return the outbox's health: counts of pending (and sending), failed, and the oldest pending one's age;
    ``district``: of the messages telling of that district alone (a district centre's summary)."""
    mine = [] if district is None else [of_centre(district)]
    counts = dict(conn.execute(select(outbox.c.status, func.count()).where(*mine).group_by(outbox.c.status)).all())
    oldest = conn.execute(select(func.min(outbox.c.created_ms)).where(
        outbox.c.status.in_(("pending", "sending")), *mine)).scalar()
    return {"pending": counts.get("pending", 0) + counts.get("sending", 0), "failed": counts.get("failed", 0),
            "sent": counts.get("sent", 0),
            "oldest_pending_s": None if oldest is None else max(0, now_ms - oldest) // 1000}


# --- a district centre's part of the log (SPEC section 13) -------------------------------------------------------

def of_centre(district: str):
    """Return the condition of the messages district ``district``'s centre reads: those telling of its district, and
    those telling of an incident it ran when they were queued though the incident is another district's (handed
    down or across to it: ``outbox.centre``), as its queue holds such an incident (storage.incidents)."""
    return (outbox.c.district == district) | (outbox.c.centre == district)


def _told_of(payload: str) -> tuple[str, str | None, Any]:
    """Return what a message tells of: ("district", the alert's or the briefing's district) for an alert's
    notification or a briefing's mail, ("alert" | "task" | "step", its id) for an escalation, ("", None) when it
    says nothing readable."""
    try:
        body = json.loads(payload)
    except (TypeError, ValueError):
        return "", None
    if not isinstance(body, dict):
        return "", None
    for about in ("alert", "briefing"):  # an alert's notification, a briefing's mail: they name the district
        if isinstance(body.get(about), dict):
            return "district", body[about].get("district")
    if body.get("type") == "escalation" and body.get("subject") in ("alert", "task", "step"):
        return body["subject"], str(body.get("id") or "")
    return "", None


def told_places(conn: Connection, payloads: Sequence[str]) -> list[tuple[str | None, str | None]]:
    """Return what each message payload tells of, kept with the message: its district (``outbox.district``: an
    alert notification's or a briefing's own, an escalation's alert's or incident's -- a task's incident's, a
    procedure step's incident's; None: the city's or nobody's, which a district centre reads none of) and, for an
    incident's escalation, the district centre running the incident now when that is another district's
    (``outbox.centre``: handed down or across to it; None otherwise). Three reads at most (none for alerts'
    notifications and briefings' mail), whatever the number of payloads."""
    told = []
    ids: dict[str, set[int]] = {"alert": set(), "task": set(), "step": set()}
    for payload in payloads:
        kind, ref = _told_of(payload)
        head = (ref or "").split(".", 1)[0]
        told.append((kind, ref, int(head) if head.isdigit() else None))
        if kind in ids and head.isdigit():
            ids[kind].add(int(head))
    found: dict[tuple[str, int], tuple[str | None, str | None]] = {}
    if ids["alert"]:
        found |= {("alert", i): (d, None) for i, d in conn.execute(
            select(alerts.c.id, alerts.c.district).where(alerts.c.id.in_(ids["alert"])))}
    if ids["task"]:
        found |= {("task", i): (d, c) for i, d, c in conn.execute(
            select(tasks.c.id, incidents.c.district, incidents.c.centre)
            .join(incidents, incidents.c.id == tasks.c.incident_id).where(tasks.c.id.in_(ids["task"])))}
    if ids["step"]:
        found |= {("step", i): (d, c) for i, d, c in conn.execute(
            select(incidents.c.id, incidents.c.district, incidents.c.centre).where(incidents.c.id.in_(ids["step"])))}
    out = []
    for kind, ref, head in told:
        d, c = (ref, None) if kind == "district" else found.get((kind, head), (None, None)) if head is not None \
            else (None, None)
        # a district is a code of the city pack: anything else a payload says is kept as none (the column is 16)
        d = d if isinstance(d, str) and len(d) <= 16 else None
        out.append((d, c if isinstance(c, str) and len(c) <= 16 and c != d else None))
    return out
