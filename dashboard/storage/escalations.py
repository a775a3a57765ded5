"""Escalate through the duty rosters: enqueue a whole ladder into the outbox with its change, cancel it on
acknowledgement.

When an alert fires or a task misses its acknowledge deadline, ``start`` writes every step of the department's
policy (each level of each round, to each person on duty then, by each channel) as an outbox row, in the
caller's transaction: level 1 due now, the later ones due in the future. ``stop`` cancels the rows not sent yet
in the acknowledgement's own transaction. The keys are ``esc:{alert|task}:{id}:{level}:{round}:{channel}:{n}``;
a task's ``id`` is ``<task id>.<task version>`` (a task sent again and missed again escalates afresh), so the
prefix ``esc:task:<task id>.`` cancels every ladder of a task and ``esc:alert:<id>:`` an alert's.

A duty override set or ended in the app ``replan``s the steps not sent yet of the department's open ladders: a
step whose people change has its rows cancelled and rows for whoever is on duty at its time (now, when that has
passed) enqueued, keyed as before with ``:<rev>`` after (the override and what was done to it), in the
override's own transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from dashboard.core.clock import iso
from dashboard.core.rosters import Rosters, Step
from dashboard.storage import outbox
from dashboard.storage import rosters as overrides
from dashboard.storage.models import outbox as outbox_table

SUBJECTS = ("alert", "task", "step")  # step: a standard procedure's step not done in time (``<incident>.<step>``)
_WORDS = {"alert": ("预警未确认", "unacknowledged alert"), "task": ("任务超时未签收", "task not acknowledged in time"),
          "step": ("预案步骤超时未完成", "procedure step not done in time")}
_ROLES = {"officer": ("值班员", "duty officer"), "deputy": ("副值班长", "deputy"), "commander": ("值班领导", "commander")}


@dataclass(frozen=True)
class Ladder:
    """What ``start`` enqueued: the department whose duty is told, the steps, and how many messages."""

    department: str | None
    steps: list[Step]
    messages: int


def chain_id(subject: str, subject_id: int, version: int | None = None) -> str:
    """Return the id an escalation's keys carry: an alert's id, a task's ``<id>.<version>``."""
    return f"{subject_id}.{version}" if subject == "task" else str(subject_id)


def prefix(subject: str, subject_id: int) -> str:
    """Return the key prefix of every escalation message of one alert or task."""
    return f"esc:{subject}:{subject_id}." if subject == "task" else f"esc:{subject}:{subject_id}:"


def start(conn: Connection, rosters: Rosters, *, subject: str, chain: str, department: str | None, title: str,
          title_en: str, now_ms: int) -> Ladder:
    """Enqueue the whole ladder of ``department``'s policy (its fallback's, without a roster), starting now."""
    if subject not in SUBJECTS:
        raise ValueError(f"unknown subject {subject!r}")
    roster = rosters.roster_for(department)
    if roster is None:
        return Ladder(None, [], 0)
    steps = rosters.steps(roster.department, now_ms, overrides.in_force(conn, now_ms))
    messages = []
    for step in steps:
        for channel in step.channels:
            targets = ([(0, roster.webhook, None)] if channel == "webhook" else
                       [(n, p.phone if channel == "sms" else p.email, p) for n, p in enumerate(step.people)])
            for n, address, person in targets:
                if not address:
                    continue
                key = f"esc:{subject}:{chain}:{step.level}:{step.round}:{channel}:{n}"
                lang = person.lang if person else rosters.language  # each reader in their own language
                messages.append({"key": key, "channel": channel, "address": address,
                                 "subject": _subject(subject, step, title, title_en, lang),
                                 "body": _body(subject, step, person, title, title_en, rosters.timezone, lang),
                                 "payload": _payload(subject, chain, step, person, roster.department, title,
                                                     title_en, rosters.timezone, key),
                                 "due_ms": step.due_ms})
    # The whole ladder in one statement (a statement each was ~18 round trips a firing).
    made = outbox.enqueue_many(conn, messages, now_ms=now_ms) if messages else 0
    return Ladder(roster.department, steps, made)


def stop(conn: Connection, subject: str, subject_id: int) -> int:
    """Cancel every escalation message of an alert or task not sent yet; return how many."""
    return outbox.cancel(conn, prefix(subject, subject_id))


@dataclass(frozen=True)
class Replanned:
    """One ladder's steps a duty change re-planned: the alert's or task's chain and the steps as they now are."""

    subject: str
    chain: str
    department: str
    steps: list[Step]


def replan(conn: Connection, rosters: Rosters, department: str, now_ms: int, rev: str) -> list[Replanned]:
    """Re-plan the steps not sent yet of ``department``'s open ladders for the duty as it stands now (after an
    override of it was set or ended in this transaction); return what changed, ladder by ladder.

    On PostgreSQL a transaction lock per department orders two duty changes of one department: the second
    reads the first's overrides and rows once it commits, so no step is planned twice.
    """
    roster = rosters.rosters.get(department)
    if roster is None:
        return []
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"panorama:duty:{department}"))))
    in_force = overrides.in_force(conn, now_ms)
    o = outbox_table.c
    groups: dict[tuple[str, str, int, int], list[tuple[dict, dict]]] = {}
    rows = conn.execute(select(outbox_table).where(o.key.startswith("esc:"), o.status == "pending").where(
        o.payload.contains(json.dumps({"department": department})[1:-1])).order_by(o.id)).mappings()
    for row in rows:
        p = json.loads(row["payload"])
        if p.get("type") != "escalation" or p.get("department") != department or p.get("person") is None:
            continue  # a webhook step tells the department, not a person: no duty change moves it
        groups.setdefault((p["subject"], p["id"], p["level"], p["round"]), []).append((dict(row), p))
    out: dict[tuple[str, str], list[Step]] = {}
    for (subject, chain, level, round_), members in groups.items():
        first = members[0][1]
        due = min((r["due_ms"] if r["attempts"] == 0 else _ms(p["due"])) for r, p in members)
        people = rosters.on_duty(roster, first["role"], max(due, now_ms), in_force)
        if [x.id for x in people] == list(dict.fromkeys(p["person"]["id"] for _, p in members)):
            continue
        cancelled = conn.execute(update(outbox_table).where(o.id.in_([r["id"] for r, _ in members]),
                                                            o.status == "pending").values(status="cancelled")).rowcount
        if not cancelled:
            continue  # sent or taken meanwhile: too late to change
        channels = tuple(dict.fromkeys(r["channel"] for r, _ in members))
        step = Step(level, round_, first["role"], due, people, channels)
        for channel in channels:
            for n, person in enumerate(people):
                address = person.phone if channel == "sms" else person.email
                if not address:
                    continue
                key = f"esc:{subject}:{chain}:{level}:{round_}:{channel}:{n}:{rev}"
                outbox.enqueue(conn, key=key, channel=channel, address=address,
                               subject=_subject(subject, step, first["title"], first["title_en"], person.lang),
                               body=_body(subject, step, person, first["title"], first["title_en"], rosters.timezone,
                                          person.lang),
                               payload=_payload(subject, chain, step, person, department, first["title"],
                                                first["title_en"], rosters.timezone, key),
                               due_ms=due, now_ms=now_ms)
        out.setdefault((subject, chain), []).append(step)
    return [Replanned(subject, chain, department, steps) for (subject, chain), steps in out.items()]


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def stop_step(conn: Connection, incident_id: int, step: str) -> int:
    """Cancel every escalation message of one procedure step of an incident not sent yet; return how many."""
    return outbox.cancel(conn, f"esc:step:{incident_id}.{step}:")


def step_params(step: Step, tz: str) -> dict:
    """Return what an audit row of a step records: level, round, role, who (both languages), when, channels."""
    return {"level": step.level, "round": step.round, "role": step.role,
            "who": "、".join(p.name for p in step.people), "who_en": ", ".join(p.name_en for p in step.people),
            "at": iso(step.due_ms, tz)[11:16], "channels": ",".join(step.channels)}


def _subject(subject: str, step: Step, title: str, title_en: str, lang: str) -> str:
    """Return the subject of a step's message in ``lang``, its reader's."""
    if lang == "en":
        return f"[{_WORDS[subject][1]} L{step.level}] {title_en}"[:300]
    return f"[{_WORDS[subject][0]} L{step.level}] {title}"[:300]


def _body(subject: str, step: Step, person, title: str, title_en: str, tz: str, lang: str) -> str:
    """Return the body of a step's message to ``person`` (None: the department's webhook) in ``lang``."""
    at = iso(step.due_ms, tz)
    if lang == "en":
        to = f"{_ROLES[step.role][1]} {person.name_en}" if person else _ROLES[step.role][1]
        return (f"{to}: {_WORDS[subject][1]} (round {step.round}, level {step.level}, {at})\n{title_en}\n"
                "Please sign in to City Operations Panorama and acknowledge it.")
    to = f"{_ROLES[step.role][0]} {person.name}" if person else _ROLES[step.role][0]
    return f"{to}：{_WORDS[subject][0]}（第 {step.round} 轮第 {step.level} 级，{at}）\n{title}\n请尽快登录城市运行全景确认。"


def _payload(subject, chain, step, person, department, title, title_en, tz, key) -> dict:
    return {"type": "escalation", "subject": subject, "id": chain, "department": department, "level": step.level,
            "round": step.round, "role": step.role, "due": iso(step.due_ms, tz), "title": title,
            "title_en": title_en, "key": key,
            "person": None if person is None else {"id": person.id, "name": person.name, "name_en": person.name_en}}
