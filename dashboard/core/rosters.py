"""Load a city's duty rosters and escalation policies (rosters.yaml) and say who is on duty when: pure functions.

A department's roster names its people (each with the role they hold on duty: officer, deputy or commander) and
weekly shifts in the city's time zone ("20:00-08:00" wraps midnight: it belongs to the day it starts on). An
override set in the app (``roster_overrides``) puts a person in a role for a while, in place of whoever the
shifts say: "who is on duty now" is the pack's shifts overlaid by the overrides in force. An escalation policy
is a ladder of levels (a role, how long after the start it is told, by which channels) climbed ``rounds`` times,
a round every ``round_every``; the caller stops it on acknowledgement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Mapping
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from dashboard.core.rules import RulesError, validated_file, _duration, _line, _listed, _message as _rules_message

ROLES = ("officer", "deputy", "commander")  # 值班员 / 副值班长 / 值班领导
CHANNELS = ("sms", "email", "webhook")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK_MIN = 7 * 1440
_CODE = r"^[a-z0-9_]{1,64}$"
_PHONE = r"^\+[1-9][0-9]{7,14}$"  # E.164, as a department's duty_phone
_EMAIL = r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,}$"
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


def _span(v: Any) -> timedelta:
    # PT0M: level 1 is told at once.
    return timedelta(0) if v in ("PT0S", "PT0M", 0) else _duration(v)


def _hours(v: Any) -> tuple[int, int]:
    m = _TIME.match(v) if isinstance(v, str) else None
    start, end = (int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])) if m else (-1, -1)
    if not m or end > 1440 or start == end % 1440 and end != 1440:
        raise ValueError(f"bad shift time {v!r}: use \"HH:MM-HH:MM\" (quoted), \"00:00-24:00\" for the whole day; "
                         "a start after the end wraps midnight")
    return start, end


def _days(v: Any) -> tuple[int, ...]:
    if v in (None, "daily"):
        return tuple(range(7))
    if v == "weekdays":
        return tuple(range(5))
    if v == "weekends":
        return (5, 6)
    items = _listed(v)
    if not isinstance(items, list) or not items or any(d not in DAYS for d in items):
        raise ValueError(f"bad days {v!r}: daily, weekdays, weekends or a list of {', '.join(DAYS)}")
    return tuple(sorted({DAYS.index(d) for d in items}))


Span = Annotated[timedelta, BeforeValidator(_span)]
Code = Annotated[str, Field(pattern=_CODE)]


class PersonDef(BaseModel):
    """One person of a roster: names in both languages, how to reach them, the role they hold on duty."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Code
    name: Annotated[str, Field(min_length=1, max_length=64)]
    name_en: Annotated[str, Field(min_length=1, max_length=64)]
    role: Literal["officer", "deputy", "commander"]
    phone: Annotated[str, Field(pattern=_PHONE)]
    email: Annotated[str, Field(pattern=_EMAIL)]
    lang: Literal["zh", "en"] | None = None  # the language their messages are in (None: the city's)


class ShiftDef(BaseModel):
    """A weekly shift: on which days it starts, its hours, and who is on (`who`: `on` is a boolean in YAML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Code
    days: Annotated[tuple[int, ...], BeforeValidator(_days)] = tuple(range(7))
    time: Annotated[tuple[int, int], BeforeValidator(_hours)]
    who: Annotated[tuple[Code, ...], BeforeValidator(_listed), Field(min_length=1)]


class LevelDef(BaseModel):
    """One rung of the ladder: the role told, how long after the round starts, by which channels."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Literal["officer", "deputy", "commander"]
    after: Span = timedelta(0)
    channels: Annotated[tuple[Literal["sms", "email", "webhook"], ...], BeforeValidator(_listed),
                        Field(min_length=1)] = ("sms", "email")


class PolicyDef(BaseModel):
    """An escalation policy: its levels in order, climbed ``rounds`` times, a round every ``round_every``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Code
    levels: Annotated[list[LevelDef], Field(min_length=1, max_length=9)]
    rounds: Annotated[int, Field(ge=1, le=9)] = 1
    round_every: Annotated[timedelta, BeforeValidator(_duration)] | None = None

    @model_validator(mode="after")
    def _ladder(self) -> "PolicyDef":
        afters = [lv.after for lv in self.levels]
        if afters[0] != timedelta(0):
            raise ValueError("the first level is told at once: after: PT0M")
        if any(b <= a for a, b in zip(afters, afters[1:])):
            raise ValueError("each level comes later than the one before it (after: PT10M, then PT20M, ...)")
        if self.rounds > 1 and self.round_every is None:
            raise ValueError("a policy of several rounds needs round_every (e.g. PT30M)")
        if self.round_every is not None and self.round_every <= afters[-1]:
            raise ValueError(f"round_every must be longer than the last level's after ({afters[-1]})")
        return self


class RosterDef(BaseModel):
    """One department's roster: its policy, people and shifts, and optionally its own system's webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    department: Code
    policy: Code
    webhook: Annotated[str, Field(pattern=r"^https?://\S{1,500}$")] | None = None
    people: Annotated[list[PersonDef], Field(min_length=1)]
    shifts: Annotated[list[ShiftDef], Field(min_length=1)]


class RostersFile(BaseModel):
    """The whole rosters.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    policies: Annotated[list[PolicyDef], Field(min_length=1)]
    notify: dict[Code, Code] = {}
    fallback: Code | None = None
    rosters: Annotated[list[RosterDef], Field(min_length=1)]


@dataclass(frozen=True)
class Person:
    """Someone who may be on duty."""

    id: str
    name: str
    name_en: str
    role: str
    phone: str
    email: str
    department: str
    lang: str = "zh"  # the language their messages are written in

    def label(self, lang: str = "zh") -> str:
        """Return the person's name in ``lang``."""
        return self.name_en if lang == "en" else self.name


@dataclass(frozen=True)
class Shift:
    """A weekly shift: the weekdays it starts on (0 = Monday), its minutes of the day, who is on."""

    name: str
    days: tuple[int, ...]
    start: int
    end: int  # minutes; <= start wraps midnight; 1440 is the end of the day
    who: tuple[str, ...]

    @property
    def hours(self) -> str:
        """Return the shift's hours as written, "20:00-08:00"."""
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"

    def covers(self, weekday: int, minute: int) -> bool:
        """Tell whether the shift is on at a minute of a weekday (local time)."""
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        # wraps midnight: on from its start on the days listed, and until its end the morning after
        return (weekday in self.days and minute >= self.start) or ((weekday - 1) % 7 in self.days
                                                                   and minute < self.end)


@dataclass(frozen=True)
class Level:
    """One rung of an escalation ladder."""

    role: str
    after_ms: int
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """An escalation policy."""

    name: str
    levels: tuple[Level, ...]
    rounds: int
    round_every_ms: int


@dataclass(frozen=True)
class Roster:
    """One department's people, shifts and escalation policy."""

    department: str
    policy: Policy
    people: Mapping[str, Person]
    shifts: tuple[Shift, ...]
    webhook: str | None = None


@dataclass(frozen=True)
class Override:
    """A person put in a role of a department from ``from_ms`` until ``until_ms`` (set in the app)."""

    department: str
    person: str
    role: str
    from_ms: int
    until_ms: int
    id: int | None = None

    def covers(self, at_ms: int) -> bool:
        """Tell whether the override is in force at ``at_ms``."""
        return self.from_ms <= at_ms < self.until_ms


@dataclass(frozen=True)
class Step:
    """One step of an escalation: a level of a round, when it is due and whom it tells."""

    level: int  # 1-based
    round: int  # 1-based
    role: str
    due_ms: int
    people: tuple[Person, ...]
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Rosters:
    """A city's rosters by department, its policies and the alert rules' notify names, in its time zone."""

    rosters: Mapping[str, Roster]
    policies: Mapping[str, Policy]
    timezone: str
    notify: Mapping[str, str] = field(default_factory=dict)
    fallback: str | None = None
    language: str = "zh"  # the city's: the language of what is told to no one person (a department's webhook)

    def roster_for(self, department: str | None) -> Roster | None:
        """Return a department's roster, the fallback department's when it has none (None: neither)."""
        found = self.rosters.get(department or "")
        return found if found is not None else self.rosters.get(self.fallback or "")

    def local(self, at_ms: int) -> tuple[int, int]:
        """Return (weekday, minute of the day) of an instant in the city's time."""
        t = datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc).astimezone(ZoneInfo(self.timezone))
        return t.weekday(), t.hour * 60 + t.minute

    def on_duty(self, roster: Roster, role: str, at_ms: int, overrides: Iterable[Override] = ()) -> tuple[Person, ...]:
        """Return who holds ``role`` in ``roster``'s department at ``at_ms``: the overrides in force for that role
        if any (in place of the shifts), else the people of the shifts on then who hold the role."""
        put = [o for o in overrides if o.department == roster.department and o.role == role and o.covers(at_ms)]
        if put:
            ids = list(dict.fromkeys(o.person for o in sorted(put, key=lambda o: (o.from_ms, o.id or 0))))
            return tuple(roster.people[i] for i in ids if i in roster.people)
        weekday, minute = self.local(at_ms)
        ids = dict.fromkeys(p for s in roster.shifts if s.covers(weekday, minute) for p in s.who
                            if roster.people[p].role == role)
        return tuple(roster.people[i] for i in ids)

    def on_duty_level(self, department: str, level: int, at_ms: int, overrides: Iterable[Override] = ()
                      ) -> tuple[Person, ...]:
        """Return who is told at ``level`` (1-based) of the department's policy at ``at_ms``."""
        roster = self.roster_for(department)
        if roster is None or not 1 <= level <= len(roster.policy.levels):
            return ()
        return self.on_duty(roster, roster.policy.levels[level - 1].role, at_ms, overrides)

    def steps(self, department: str, start_ms: int, overrides: Iterable[Override] = ()) -> list[Step]:
        """Return the whole ladder of an escalation starting at ``start_ms``: every level of every round, each
        with its due time and who is on duty then (as far as is known now)."""
        roster = self.roster_for(department)
        if roster is None:
            return []
        overrides = list(overrides)
        policy, out = roster.policy, []
        for r in range(policy.rounds):
            for i, lv in enumerate(policy.levels):
                due = start_ms + r * policy.round_every_ms + lv.after_ms
                out.append(Step(i + 1, r + 1, lv.role, due, self.on_duty(roster, lv.role, due, overrides),
                                lv.channels))
        return out

    def shifts_on(self, roster: Roster, weekday: int) -> list[Shift]:
        """Return the shifts that start on a weekday, in order of their start."""
        return sorted((s for s in roster.shifts if weekday in s.days), key=lambda s: (s.start, s.name))


def load_rosters(path: str | Path, departments: Iterable[str], *, tz: str, lang: str = "zh") -> Rosters:
    """Load and validate rosters.yaml against the city's department codes, each person reading ``lang`` (the
    city's language) unless they name their own; raise RulesError naming the line of every problem (an unknown
    department or person, a role no shift covers at some hour of the week, ...)."""
    path = Path(path)
    parsed, lines = validated_file(path, RostersFile, "rosters", _message)
    known = set(departments)
    problems: list[tuple[int, str]] = []
    policies: dict[str, Policy] = {}
    for i, p in enumerate(parsed.policies):
        if p.name in policies:
            problems.append((_line(lines, ("policies", i, "name")), f"duplicate policy {p.name!r}"))
        policies[p.name] = Policy(p.name, tuple(Level(lv.role, int(lv.after.total_seconds() * 1000), lv.channels)
                                                for lv in p.levels),
                                  p.rounds, int(p.round_every.total_seconds() * 1000) if p.round_every else 0)
    rosters: dict[str, Roster] = {}
    person_home: dict[str, str] = {}
    for i, r in enumerate(parsed.rosters):
        at = ("rosters", i)
        if r.department not in known:
            problems.append((_line(lines, at + ("department",)), f"unknown department {r.department!r} "
                                                                 "(departments.yaml has no such code)"))
        if r.department in rosters:
            problems.append((_line(lines, at + ("department",)), f"a second roster for {r.department!r}"))
        if r.policy not in policies:
            problems.append((_line(lines, at + ("policy",)), f"unknown policy {r.policy!r} (policies: "
                                                             f"{', '.join(sorted(policies))})"))
            continue
        people: dict[str, Person] = {}
        for j, p in enumerate(r.people):
            if p.id in person_home:
                problems.append((_line(lines, at + ("people", j, "id")),
                                 f"person {p.id!r} is listed twice (first in {person_home[p.id]})"))
            person_home.setdefault(p.id, r.department)
            people[p.id] = Person(p.id, p.name, p.name_en, p.role, p.phone, p.email, r.department, p.lang or lang)
        shifts = []
        for j, s in enumerate(r.shifts):
            for k, pid in enumerate(s.who):
                if pid not in people:
                    problems.append((_line(lines, at + ("shifts", j, "who")),
                                     f"shift {s.name!r}: {pid!r} is not one of {r.department}'s people"))
            shifts.append(Shift(s.name, s.days, s.time[0], s.time[1], tuple(p for p in s.who if p in people)))
        roster = Roster(r.department, policies[r.policy], people, tuple(shifts), r.webhook)
        rosters[r.department] = roster
        for role in dict.fromkeys(lv.role for lv in roster.policy.levels):
            gap = _uncovered(roster, role)
            if gap is not None:
                problems.append((_line(lines, at + ("shifts",)),
                                 f"{r.department}: no {role} on duty {DAYS[gap[0] // 1440]} "
                                 f"{_hhmm(gap[0] % 1440)}-{_hhmm(gap[1] % 1440 or 1440)} (the policy "
                                 f"{r.policy!r} tells a {role})"))
    for name, dep in parsed.notify.items():
        if dep not in rosters:
            problems.append((_line(lines, ("notify", name)), f"notify {name!r}: {dep!r} has no roster here"))
    if parsed.fallback is not None and parsed.fallback not in rosters:
        problems.append((_line(lines, ("fallback",)), f"fallback {parsed.fallback!r} has no roster here"))
    if problems:
        raise RulesError(path.name, problems)
    return Rosters(rosters, policies, tz, dict(parsed.notify), parsed.fallback, lang)


def _uncovered(roster: Roster, role: str) -> tuple[int, int] | None:
    """Return the first stretch of the week (minutes from Monday 00:00, end exclusive) no shift puts anyone of
    ``role`` on, or None."""
    holders = [s for s in roster.shifts if any(roster.people[p].role == role for p in s.who)]
    # The week's minutes marked shift by shift (what Shift.covers says minute by minute: asking it for each of
    # 10,080 minutes and shifts cost a worker's start-up ~0.2 s for the Shenzhen rosters).
    covered = bytearray(WEEK_MIN)
    for s in holders:
        for day in s.days:
            at = day * 1440
            if s.start < s.end:
                covered[at + s.start:at + s.end] = b"\1" * (s.end - s.start)
            else:  # wraps midnight: to the end of its day, and the morning after until its end
                covered[at + s.start:at + 1440] = b"\1" * (1440 - s.start)
                after = (day + 1) % 7 * 1440
                covered[after:after + s.end] = b"\1" * s.end
    start = covered.find(0)
    if start < 0:
        return None
    end = covered.find(1, start)
    return start, WEEK_MIN if end < 0 else end


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


_KEYS = {"top": tuple(RostersFile.model_fields), "policies": tuple(PolicyDef.model_fields),
         "levels": tuple(LevelDef.model_fields), "rosters": tuple(RosterDef.model_fields),
         "people": tuple(PersonDef.model_fields), "shifts": tuple(ShiftDef.model_fields)}


def _message(error: Mapping[str, Any]) -> str:
    """Say a pydantic error as a sentence, naming the keys a misspelt one could have been."""
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        parent = next((p for p in reversed(loc[:-1]) if isinstance(p, str) and p in _KEYS), "top")
        return f"unknown key {loc[-1]!r} (expected one of {', '.join(_KEYS[parent])})"
    if error["type"] == "string_pattern_mismatch" and loc:
        what = {"phone": "a phone number in E.164 (+ and 8-15 digits, quoted)", "email": "an e-mail address",
                "webhook": "an http(s) URL"}.get(str(loc[-1]), "lower-case letters, digits and _")
        return f"{loc[-1]}: {error['input']!r} is not {what}"
    return _rules_message(error)


def alert_department(rosters: Rosters, notify: str | None, routing=None, *, domain: str | None, kind: str | None,
                     district: str | None, severity: int, at_ms: int) -> str | None:
    """Return the department whose duty an alert escalates to: its rule's ``notify`` name as rosters.yaml maps
    it; else the lead the routing rules give an incident of the alert's kind and place; else None (the caller's
    ``roster_for`` then takes the fallback department)."""
    if notify and notify in rosters.notify:
        return rosters.notify[notify]
    if routing is not None and district and kind:
        return routing.suggest({"domain": domain, "kind": kind, "district": district, "severity": severity,
                                "street": None}, at_ms).lead
    return None
