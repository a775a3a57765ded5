"""Keep alerts in SQL: their lifecycle (each change once, audited), silences, and the rules' shared state."""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Iterable, Mapping, Sequence

import orjson
from sqlalchemy import delete, func, insert, or_, select, text, update
from sqlalchemy.engine import Connection

from dashboard.core.alerts import AlertRule
from dashboard.core.city import Centres
from dashboard.core.errors import Conflict, NotFound, Unprocessable
from dashboard.core.notifications import Policy, alert_messages
from dashboard.core.rosters import Rosters
from dashboard.storage import escalations, outbox
from dashboard.storage.incidents import open_incident
from dashboard.storage.models import alert_counts, alert_events, alert_silences, alert_states, alerts

STATUSES = ("pending", "firing", "acknowledged", "resolved")
OPEN = ("pending", "firing", "acknowledged")
SYSTEM = "system"
LIST_LIMIT = 500
_OPEN_WHERE = text("status <> 'resolved'")
_OPEN_ALERTS = select(alerts).where(_OPEN_WHERE)

# A threshold rule's newest observation per scope, merged race-free by the row's upsert: a batch older than
# what is stored changes nothing; a batch whose observations all meet the condition keeps the stored start.
_STATE_UPSERT = text(
    "INSERT INTO alert_states (rule, scope, last_ts_ms, value, since_ms) VALUES (:rule, :scope, :last, :value, :since) "
    "ON CONFLICT (rule, scope) DO UPDATE SET last_ts_ms = excluded.last_ts_ms, value = excluded.value, "
    "since_ms = CASE WHEN excluded.since_ms IS NULL THEN NULL "
    "WHEN :whole AND alert_states.since_ms IS NOT NULL AND alert_states.since_ms < excluded.since_ms "
    "THEN alert_states.since_ms ELSE excluded.since_ms END "
    "WHERE excluded.last_ts_ms >= alert_states.last_ts_ms")
_COUNT_UPSERT = text(
    "INSERT INTO alert_counts (rule, scope, minute_ms, n, value_max) VALUES (:rule, :scope, :minute, :n, :vmax) "
    "ON CONFLICT (rule, scope, minute_ms) DO UPDATE SET n = alert_counts.n + excluded.n, "
    "value_max = CASE WHEN alert_counts.value_max IS NULL OR excluded.value_max > alert_counts.value_max "
    "THEN excluded.value_max ELSE alert_counts.value_max END")


# The same, as one statement per batch on PostgreSQL: the rows as one JSON document (a thousand rows a batch at 500
# rules cost more in the driver, row by row, than in the database; as arrays, the driver's dumping of each
# element cost 5-6 µs a row, as JSON orjson writes the whole batch in a fraction of that).
_STATE_UPSERT_PG = text(
    "INSERT INTO alert_states (rule, scope, last_ts_ms, value, since_ms) "
    "SELECT r.rule, r.scope, r.last, r.value, r.since FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
    "AS r(rule text, scope text, last bigint, value float8, since bigint) "
    "ON CONFLICT (rule, scope) DO UPDATE SET last_ts_ms = excluded.last_ts_ms, value = excluded.value, "
    "since_ms = CASE WHEN excluded.since_ms IS NULL THEN NULL "
    "WHEN :whole AND alert_states.since_ms IS NOT NULL AND alert_states.since_ms < excluded.since_ms "
    "THEN alert_states.since_ms ELSE excluded.since_ms END "
    "WHERE excluded.last_ts_ms >= alert_states.last_ts_ms")
_COUNT_UPSERT_PG = text(
    "INSERT INTO alert_counts (rule, scope, minute_ms, n, value_max) "
    "SELECT r.rule, r.scope, r.minute, r.n, r.vmax FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
    "AS r(rule text, scope text, minute bigint, n integer, vmax float8) "
    "ON CONFLICT (rule, scope, minute_ms) DO UPDATE SET n = alert_counts.n + excluded.n, "
    "value_max = CASE WHEN alert_counts.value_max IS NULL OR excluded.value_max > alert_counts.value_max "
    "THEN excluded.value_max ELSE alert_counts.value_max END")
_BY_STATE_KEY = itemgetter("rule", "scope")
_BY_COUNT_KEY = itemgetter("rule", "scope", "minute")


@dataclass(frozen=True)
class Condition:
    """What one evaluation found for a rule at one place: whether it holds, since when, the value seen."""

    rule: AlertRule
    scope: str
    district: str | None
    zone: str | None
    domain: str | None
    holding: bool
    since_ms: int | None  # None: since it was first seen holding (an open alert's start, else now)
    value: float | None
    title: str
    title_en: str
    baseline: float | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class Change:
    """One committed change of an alert (the row after it) and the incident it opened, if any."""

    alert: dict
    incident: dict | None = None


# --- the rules' shared state, written in the ingest batch's own transaction ------------------------------

def add_observations(conn: Connection, rows: Sequence[dict], *, postgres: bool = False) -> None:
    """Merge threshold observations: rows of rule, scope, last (ts), value, since (or None), whole (bool)."""
    rows = sorted(rows, key=_BY_STATE_KEY)  # one lock order for every worker (the statement keeps the rows' order)
    if not rows:
        return
    if not postgres:
        conn.execute(_STATE_UPSERT, rows)
        return
    for whole in (False, True):  # ``whole`` is a constant of each statement: the upsert cannot read it per row
        part = [r for r in rows if bool(r["whole"]) is whole]
        if part:
            conn.execute(_STATE_UPSERT_PG, {"rows": orjson.dumps(part).decode(), "whole": whole})


def add_counts(conn: Connection, rows: Sequence[dict], *, postgres: bool = False) -> None:
    """Add matching events per rule, scope and minute: rows of rule, scope, minute, n, vmax."""
    rows = sorted(rows, key=_BY_COUNT_KEY)
    if not rows:
        return
    if not postgres:
        conn.execute(_COUNT_UPSERT, rows)
        return
    conn.execute(_COUNT_UPSERT_PG, {"rows": orjson.dumps(rows).decode()})


def states(conn: Connection, keys: Iterable[tuple[str, str]] | None = None) -> dict[tuple[str, str], dict]:
    """Return threshold states by (rule, scope): all that hold (and those of ``keys``, when given)."""
    keys = set(keys or ())
    cond = alert_states.c.since_ms.is_not(None)
    if keys:
        # By rule, not by (rule, scope): one IN list of a few rules rather than an OR of a thousand pairs
        # (compiling that took longer than the whole batch's write at 500 rules); a rule has few places.
        cond = or_(cond, alert_states.c.rule.in_(sorted({r for r, _s in keys})))
    out = {}
    for r in conn.execute(select(alert_states).where(cond)).mappings():
        key = (r["rule"], r["scope"])
        if r["since_ms"] is not None or key in keys:
            out[key] = dict(r)
    return out


def counts(conn: Connection, since_ms: int, rules: Iterable[str] | None = None
           ) -> dict[tuple[str, str, int], tuple[int, float | None]]:
    """Return matching events by (rule, scope, minute) from ``since_ms`` on (of ``rules`` only, when given)."""
    q = select(alert_counts).where(alert_counts.c.minute_ms >= since_ms - since_ms % 60_000)
    if rules is not None:
        q = q.where(alert_counts.c.rule.in_(sorted(set(rules))))
    rows = conn.execute(q)
    return {(r.rule, r.scope, r.minute_ms): (r.n, r.value_max) for r in rows}


_HOLDING_PG = text(
    "SELECT c.rule, c.scope FROM alert_counts c JOIN json_to_recordset(CAST(:specs AS json)) "
    "AS r(rule text, start_ms bigint, need integer) ON c.rule = r.rule AND c.minute_ms >= r.start_ms "
    "WHERE c.minute_ms <= :now GROUP BY c.rule, c.scope, r.need HAVING sum(c.n) >= r.need")


def holding_counts(conn: Connection, specs: Sequence[tuple[str, int, int]], now_ms: int, *, postgres: bool
                   ) -> set[tuple[str, str]]:
    """Return the (rule, scope) pairs whose count rule holds at ``now_ms``: ``specs`` are (rule, the first minute
    of its window, its count); the minutes from that one to now sum to at least the count.

    Summed by the database on PostgreSQL (the rows of a window stay there: at 500 rules, reading them all to
    sum them here cost the worker more than the rest of a batch's evaluation); here on SQLite.
    """
    if not specs:
        return set()
    if postgres:
        specs_json = orjson.dumps([{"rule": r, "start_ms": start, "need": need} for r, start, need in specs])
        return {(r, sc) for r, sc in conn.execute(_HOLDING_PG, {"specs": specs_json.decode(), "now": now_ms})}
    first = {r: start for r, start, _need in specs}
    need = {r: n for r, _start, n in specs}
    sums: dict[tuple[str, str], int] = {}
    for (r, sc, minute), (n, _v) in counts(conn, min(first.values()), first).items():
        if first[r] <= minute <= now_ms:
            sums[(r, sc)] = sums.get((r, sc), 0) + n
    return {k for k, n in sums.items() if n >= need[k[0]]}


def prune_counts(conn: Connection, before_ms: int) -> int:
    """Forget per-minute counts older than any rule's window."""
    return conn.execute(delete(alert_counts).where(alert_counts.c.minute_ms < before_ms)).rowcount


# --- silences -----------------------------------------------------------------------------------------------

def active_silences(conn: Connection, now_ms: int) -> list[dict]:
    """Return the silences in force now."""
    return [dict(r) for r in conn.execute(select(alert_silences).where(
        alert_silences.c.ended_ms.is_(None), alert_silences.c.until_ms > now_ms).order_by(alert_silences.c.id))
        .mappings()]


def silence_for(silences: Iterable[dict], rule: str, district: str | None, zone: str | None) -> dict | None:
    """Return the first silence that covers an alert of ``rule`` at a place (None of its fields: any)."""
    for s in silences:
        if ((s["rule"] is None or s["rule"] == rule) and (s["district"] is None or s["district"] == district)
                and (s["zone"] is None or s["zone"] == zone)):
            return s
    return None


def create_silence(conn: Connection, *, rule: str | None, district: str | None, zone: str | None, until_ms: int,
                   reason: str, actor: str, now_ms: int) -> dict:
    """Record a one-off silence and return it."""
    new_id = conn.execute(insert(alert_silences).values(
        rule=rule, district=district, zone=zone, until_ms=until_ms, reason=reason, created_by=actor,
        created_ms=now_ms).returning(alert_silences.c.id)).scalar_one()
    return dict(conn.execute(select(alert_silences).where(alert_silences.c.id == new_id)).mappings().one())


def end_silence(conn: Connection, silence_id: int, actor: str, now_ms: int) -> dict:
    """End a silence early; NotFound when there is none, Unprocessable when it has ended already."""
    row = conn.execute(update(alert_silences).where(
        alert_silences.c.id == silence_id, alert_silences.c.ended_ms.is_(None), alert_silences.c.until_ms > now_ms)
        .values(ended_ms=now_ms, ended_by=actor).returning(*alert_silences.c)).mappings().first()
    if row is not None:
        return dict(row)
    if conn.execute(select(alert_silences.c.id).where(alert_silences.c.id == silence_id)).first() is None:
        raise NotFound(f"no silence {silence_id}")
    raise Unprocessable(f"silence {silence_id} has ended already")


def list_silences(conn: Connection, now_ms: int, *, active_only: bool = True, limit: int = LIST_LIMIT,
                  district: str | None = None) -> list[dict]:
    """Return silences, newest first: those in force (or all of them); with ``district`` (a district centre's),
    only that district's and the city's (of no district)."""
    q = select(alert_silences).order_by(alert_silences.c.id.desc()).limit(limit)
    if district is not None:
        q = q.where(or_(alert_silences.c.district.is_(None), alert_silences.c.district == district))
    if active_only:
        q = q.where(alert_silences.c.ended_ms.is_(None), alert_silences.c.until_ms > now_ms)
    return [dict(r) for r in conn.execute(q).mappings()]


# --- the lifecycle ---------------------------------------------------------------------------------------------

def open_alerts(conn: Connection, rules: Iterable[str] | None = None) -> list[dict]:
    """Return every alert not resolved (a few: one per rule and scope at most), of ``rules`` when given."""
    # The rules are picked here, not in SQL: the open alerts are few, and an IN list of the hundreds of rules a
    # batch touches cost more to compile every batch than reading the few rows it would leave out.
    rows = conn.execute(_OPEN_ALERTS).mappings()
    if rules is None:
        return [dict(r) for r in rows]
    wanted = rules if isinstance(rules, (set, frozenset, dict)) else set(rules)
    return [dict(r) for r in rows if r["rule"] in wanted]


# One statement object for every audited step, its values as parameters: building ``insert().values(...)`` anew
# for each step (and its cache key) cost 0.27-0.30 ms of CPU a step against 0.12-0.13 (500 steps on PostgreSQL),
# and a firing and its end audit several.
_AUDIT_INSERT = insert(alert_events)


def _audit(conn: Connection, alert_id: int, at_ms: int, frm: str | None, to: str, code: str,
           params: dict | None = None, actor: str = SYSTEM, note: str | None = None) -> None:
    conn.execute(_AUDIT_INSERT, {"alert_id": alert_id, "actor": actor, "at_ms": at_ms, "from_status": frm,
                                 "to_status": to, "code": code, "params": params, "note": note})


def _blocked(cond: Condition, silences: Iterable[dict], tz: str, now_ms: int) -> tuple[str, dict] | None:
    """Return why a due alert may not fire now: a silence or the rule's mute window (code, params)."""
    s = silence_for(silences, cond.rule.id, cond.district, cond.zone)
    if s is not None:
        return "silence:%d" % s["id"], {"silence": s["id"]}
    window = cond.rule.muted(now_ms, tz)
    if window is not None:
        text_ = "%02d:%02d-%02d:%02d" % (window[0] // 60, window[0] % 60, window[1] // 60, window[1] % 60)
        return "mute:" + text_, {"window": text_}
    return None


def reconcile(conn: Connection, cond: Condition, now_ms: int, *, tz: str, silences: Iterable[dict],
              open_row: dict | None = None, known: bool = False, postgres: bool,
              policies: Mapping[str, Policy] | None = None, centres: Centres | None = None,
              moves: list[dict] | None = None) -> list[Change]:
    """Bring the alert of one rule and place in line with its condition; return the changes made (``centres``: the
    city's district centres, which run the incident a firing opens).

    Every change is a conditional write (a partial unique index for the insert, the status it moves from for
    the updates), so when several workers reconcile the same alert at once each change happens once: the
    loser's write finds nothing to change and it returns nothing. ``known``: the caller read the open alerts in
    this transaction, so ``open_row`` None means there is none (no need to look). The writer of a firing (or a
    resolution of a fired alert) queues the notifications its rule's policy (of ``policies``) sends, in this
    same transaction: they exist exactly when the change commits. ``moves``: a list the caller writes with
    ``move_values`` before its commit; an open alert's moving value (no change of state) is added to it rather
    than written here, so a tick writes the values of all its open alerts in one statement.
    """
    rule = cond.rule
    if not cond.holding and open_row is None and known:
        return []
    row = open_row if open_row is not None or known else conn.execute(select(alerts).where(
        alerts.c.rule == rule.id, alerts.c.scope == cond.scope, _OPEN_WHERE)).mappings().first()
    row = dict(row) if row is not None else None
    if not cond.holding:
        if row is None:
            return []
        done = conn.execute(update(alerts).where(alerts.c.id == row["id"], alerts.c.status == row["status"])
                            .values(status="resolved", resolved_ms=now_ms, updated_ms=now_ms,
                                    version=alerts.c.version + 1).returning(*alerts.c)).mappings().first()
        if done is None:
            return []
        _audit(conn, row["id"], now_ms, row["status"], "resolved", "alert_resolved",
               {"value": cond.value} if cond.value is not None else None)
        if done["fired_ms"] is not None:  # one that never fired (held back, or not due) was never told of
            _notify(conn, rule, dict(done), "resolved", tz, policies)
        _stop_escalation(conn, row["id"], now_ms, "resolved")
        return [Change(dict(done))]
    since = cond.since_ms if cond.since_ms is not None else row["started_ms"] if row else now_ms
    due = now_ms - since >= rule.for_.total_seconds() * 1000
    blocked = _blocked(cond, silences, tz, now_ms) if due else None
    changes: list[Change] = []
    if row is None:
        status = "firing" if due and blocked is None else "pending"
        values = {"rule": rule.id, "scope": cond.scope, "level": rule.level, "status": status,
                  "district": cond.district, "zone": cond.zone, "domain": cond.domain, "started_ms": since,
                  "fired_ms": now_ms if status == "firing" else None, "value": cond.value,
                  "baseline": cond.baseline, "title": cond.title, "title_en": cond.title_en, "version": 1,
                  "suppressed": blocked[0] if blocked else None, "updated_ms": now_ms}
        stmt = _insert(postgres)(alerts).values(**values).on_conflict_do_nothing(
            index_elements=["rule", "scope"], index_where=_OPEN_WHERE).returning(*alerts.c)
        made = conn.execute(stmt).mappings().first()
        if made is None:  # another worker opened it a moment ago: go on from its row
            return reconcile(conn, cond, now_ms, tz=tz, silences=silences, open_row=_open(conn, rule.id, cond.scope),
                             known=True, postgres=postgres, policies=policies, centres=centres, moves=moves)
        made = dict(made)
        _audit(conn, made["id"], now_ms, None, status, f"alert_{status}", {"value": cond.value})
        if blocked:
            _audit(conn, made["id"], now_ms, status, status, "alert_" + blocked[0].split(":")[0] + "d", blocked[1])
        if status == "firing":
            _notify(conn, rule, made, "firing", tz, policies)
        return [_fired(conn, made, cond, now_ms, centres) if status == "firing" else Change(made)]
    if row["status"] == "pending" and due:
        if blocked is None:
            done = conn.execute(update(alerts).where(alerts.c.id == row["id"], alerts.c.status == "pending")
                                .values(status="firing", fired_ms=now_ms, suppressed=None, value=cond.value,
                                        title=cond.title, title_en=cond.title_en, updated_ms=now_ms,
                                        version=alerts.c.version + 1).returning(*alerts.c)).mappings().first()
            if done is not None:
                _audit(conn, row["id"], now_ms, "pending", "firing", "alert_firing", {"value": cond.value})
                _notify(conn, rule, dict(done), "firing", tz, policies)
                return [_fired(conn, dict(done), cond, now_ms, centres)]
            return []
        if row["suppressed"] != blocked[0]:
            done = conn.execute(update(alerts).where(
                alerts.c.id == row["id"], alerts.c.status == "pending",
                or_(alerts.c.suppressed.is_(None), alerts.c.suppressed != blocked[0]))
                .values(suppressed=blocked[0], updated_ms=now_ms).returning(*alerts.c)).mappings().first()
            if done is not None:
                # Recorded once per silence or window that holds it back: what did not fire, and why.
                _audit(conn, row["id"], now_ms, "pending", "pending", "alert_" + blocked[0].split(":")[0] + "d",
                       blocked[1])
                changes.append(Change(dict(done)))
            return changes
    if cond.value != row["value"] or cond.title != row["title"]:
        # The value seen moves: no new version (an officer acknowledging it has not missed a change of state).
        move = {"id": row["id"], "value": cond.value, "title": cond.title, "title_en": cond.title_en,
                "updated_ms": now_ms}
        if moves is None:
            move_values(conn, [move])
        else:
            moves.append(move)
    return changes


_MOVE = text("UPDATE alerts SET value = :value, title = :title, title_en = :title_en, updated_ms = :updated_ms "
             "WHERE id = :id")
_MOVE_PG = text(
    "UPDATE alerts AS a SET value = m.value, title = m.title, title_en = m.title_en, updated_ms = m.updated_ms "
    "FROM json_to_recordset(CAST(:rows AS json)) AS m(id bigint, value float8, title text, title_en text, "
    "updated_ms bigint) WHERE a.id = m.id "  # the rows as one JSON document: text arrays cost the driver an escape
    "AND a.id IN (SELECT id FROM alerts WHERE id = ANY(CAST(:ids AS bigint[])) FOR UPDATE SKIP LOCKED)")
_MOVE_KEYS = ("id", "value", "title", "title_en", "updated_ms")


def move_values(conn: Connection, moves: Sequence[dict]) -> None:
    """Write open alerts' moving values (``reconcile``'s ``moves``: id, value, title, title_en, updated_ms), in one
    statement on PostgreSQL; the last of an id wins.

    A move never waits for a lock: an alert another transaction holds is being changed by it (a worker's batch
    beside the tick), and waiting would close a cycle with that transaction's own move of an alert this one
    changed (PostgreSQL then kills one: "deadlock detected", a lost evaluation). The next tick moves it.
    """
    last = {m["id"]: m for m in moves}
    rows = [last[i] for i in sorted(last)]
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(_MOVE, rows)
        return
    conn.execute(_MOVE_PG, {"rows": orjson.dumps([{k: r[k] for k in _MOVE_KEYS} for r in rows]).decode(),
                            "ids": [r["id"] for r in rows]})


def retire(conn: Connection, rows: Iterable[dict], now_ms: int) -> list[Change]:
    """Resolve these open alerts of rules the city pack no longer has; return the changes made.

    Each is a conditional write on the status it leaves, so of several workers loading the same pack at once
    one resolves it (audited ``alert_retired``, its escalation stopped) and the others find nothing to do. No
    notification: the rule that named whom to tell is gone.
    """
    changes: list[Change] = []
    for row in rows:
        done = conn.execute(update(alerts).where(alerts.c.id == row["id"], alerts.c.status == row["status"])
                            .values(status="resolved", resolved_ms=now_ms, updated_ms=now_ms,
                                    version=alerts.c.version + 1).returning(*alerts.c)).mappings().first()
        if done is None:
            continue
        _audit(conn, row["id"], now_ms, row["status"], "resolved", "alert_retired", {"rule": row["rule"]})
        _stop_escalation(conn, row["id"], now_ms, "resolved")
        changes.append(Change(dict(done)))
    return changes


def _notify(conn: Connection, rule: AlertRule, row: dict, status: str, tz: str,
            policies: Mapping[str, Policy] | None) -> int:
    """Queue what the rule's policy sends for this change (silenced and muted alerts never get here: they stay
    pending); return how many messages were queued."""
    policy = (policies or {}).get(rule.notify) if rule.notify else None
    if policy is None:
        return 0
    messages = [{"key": m.key, "channel": m.channel, "address": m.address, "subject": m.subject, "body": m.body,
                 "payload": m.payload} for m in alert_messages(policy, row, status, tz)]
    return outbox.enqueue_many(conn, messages) if messages else 0


def _open(conn: Connection, rule: str, scope: str) -> dict | None:
    row = conn.execute(select(alerts).where(alerts.c.rule == rule, alerts.c.scope == scope, _OPEN_WHERE)
                       ).mappings().first()
    return dict(row) if row is not None else None


def _fired(conn: Connection, row: dict, cond: Condition, now_ms: int, centres: Centres | None = None) -> Change:
    """Open the incident of a firing alert whose rule says so; return the change."""
    if not cond.rule.opens_incident or cond.district is None:
        return Change(row)
    rule = cond.rule
    incident = open_incident(conn, domain=cond.domain or rule.domain or "incident",
                             kind=(rule.kind or ("alert",))[0], district=cond.district, street=None,
                             severity=rule.severity, title=cond.title[:200], lat=cond.lat, lon=cond.lon,
                             at_ms=now_ms, centres=centres)
    conn.execute(update(alerts).where(alerts.c.id == row["id"]).values(incident_id=incident["id"]))
    _audit(conn, row["id"], now_ms, row["status"], row["status"], "alert_incident", {"incident": incident["id"]})
    return Change({**row, "incident_id": incident["id"]}, incident)


def acknowledge(conn: Connection, alert_id: int, version: int, actor: str, note: str | None, now_ms: int) -> dict:
    """Acknowledge a firing alert at the version the actor saw: Conflict when stale, Unprocessable when it is not
    firing, NotFound when there is no such alert."""
    done = conn.execute(update(alerts).where(alerts.c.id == alert_id, alerts.c.version == version,
                                             alerts.c.status == "firing")
                        .values(status="acknowledged", version=alerts.c.version + 1, updated_ms=now_ms)
                        .returning(*alerts.c)).mappings().first()
    if done is not None:
        _audit(conn, alert_id, now_ms, "firing", "acknowledged", "alert_acknowledged", None, actor, note)
        # In the acknowledgement's own transaction: both commit, or neither (docs/alerts.md, "Duty rosters").
        _stop_escalation(conn, alert_id, now_ms, "acknowledged")
        return dict(done)
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    if row["version"] != version:
        raise Conflict(f"alert {alert_id} is at version {row['version']}, not {version}: read it again")
    raise Unprocessable(f"alert {alert_id} is {row['status']}: only a firing alert is acknowledged")


def escalate(conn: Connection, rosters: Rosters, alert: dict, department: str | None, now_ms: int
             ) -> escalations.Ladder:
    """Start the escalation of an alert that fires now, in the transaction that fired it: the ladder of the
    department's duty into the outbox, each step audited (or that nobody could be told)."""
    ladder = escalations.start(conn, rosters, subject="alert", chain=escalations.chain_id("alert", alert["id"]),
                               department=department, title=alert["title"], title_en=alert["title_en"],
                               now_ms=now_ms)
    status = alert["status"]
    rows = [] if ladder.messages else [("esc_nobody", {"dep": department or ""})]
    rows += [("esc_step", {**escalations.step_params(step, rosters.timezone), "dep": ladder.department})
             for step in ladder.steps]
    if rows:  # one statement for the ladder's steps: a statement each cost a firing at 500 rules ~20 ms of CPU
        conn.execute(insert(alert_events), [
            {"alert_id": alert["id"], "actor": SYSTEM, "at_ms": now_ms, "from_status": status, "to_status": status,
             "code": code, "params": params, "note": None} for code, params in rows])
    return ladder


def note_replanned(conn: Connection, alert_id: int, params: Sequence[dict], now_ms: int) -> None:
    """Record in an alert's trail the steps of its escalation a duty change re-planned (``esc_replanned``)."""
    status = conn.execute(select(alerts.c.status).where(alerts.c.id == alert_id)).scalar()
    for p in params if status is not None else ():
        _audit(conn, alert_id, now_ms, status, status, "esc_replanned", p)


def _stop_escalation(conn: Connection, alert_id: int, now_ms: int, status: str) -> None:
    cancelled = escalations.stop(conn, "alert", alert_id)
    if cancelled:
        _audit(conn, alert_id, now_ms, status, status, "esc_stopped", {"n": cancelled})


def list_alerts(conn: Connection, statuses: Sequence[str] = (), levels: Sequence[str] = (),
                limit: int = LIST_LIMIT, districts: Sequence[str] = ()) -> list[dict]:
    """Return alerts, newest first, of the statuses, levels and districts asked for (any when none)."""
    q = alerts_statement(statuses, levels, districts).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def alerts_statement(statuses: Sequence[str] = (), levels: Sequence[str] = (), districts: Sequence[str] = ()):
    """Return the statement of alerts, newest first, of the statuses, levels and districts asked for (any when
    none): /alerts' trail, GET /api/alerts and the trail's export read it."""
    q = select(alerts).order_by(alerts.c.started_ms.desc(), alerts.c.id.desc())
    if statuses:
        q = q.where(alerts.c.status.in_(statuses))
    if levels:
        q = q.where(alerts.c.level.in_(levels))
    if districts:
        q = q.where(alerts.c.district.in_(districts))
    return q


def open_as_of(conn: Connection, at_ms: int) -> list[dict]:
    """Return the alerts open (firing or acknowledged) at ``at_ms`` with their status then, from the audit trail
    (replay); their titles and values are the latest the alert had."""
    fired = (select(alerts.c.id).where(alerts.c.fired_ms <= at_ms,
                                        or_(alerts.c.resolved_ms.is_(None), alerts.c.resolved_ms > at_ms)))
    last = (select(alert_events.c.alert_id, func.max(alert_events.c.id).label("id"))
            .where(alert_events.c.alert_id.in_(fired), alert_events.c.at_ms <= at_ms)
            .group_by(alert_events.c.alert_id).subquery())
    stmt = (select(alerts, alert_events.c.to_status.label("status_then"))
            .join(last, last.c.alert_id == alerts.c.id).join(alert_events, alert_events.c.id == last.c.id)
            .order_by(alerts.c.started_ms.desc(), alerts.c.id.desc()))
    out = []
    for r in conn.execute(stmt).mappings():
        row = dict(r)
        row["status"] = row.pop("status_then")
        if row["status"] in ("firing", "acknowledged"):
            row["resolved_ms"] = None  # not yet, then
            out.append(row)
    return out


def trail(conn: Connection, alert_id: int) -> list[dict]:
    """Return an alert's audit trail, oldest first."""
    return [dict(r) for r in conn.execute(select(alert_events).where(alert_events.c.alert_id == alert_id)
                                          .order_by(alert_events.c.id)).mappings()]


def trails(conn: Connection, alert_ids: Sequence[int]) -> dict[int, list[dict]]:
    """Return the audit trails of several alerts at once, each oldest first (one query for a page of alerts)."""
    out: dict[int, list[dict]] = {i: [] for i in alert_ids}
    if alert_ids:
        for r in conn.execute(select(alert_events).where(alert_events.c.alert_id.in_(list(alert_ids)))
                              .order_by(alert_events.c.id)).mappings():
            out[r["alert_id"]].append(dict(r))
    return out


def count_open(conn: Connection) -> int:
    """Count the alerts not resolved."""
    return conn.execute(select(func.count()).select_from(alerts).where(_OPEN_WHERE)).scalar_one()


def _insert(postgres: bool):
    from sqlalchemy.dialects import postgresql, sqlite
    return (postgresql if postgres else sqlite).insert
