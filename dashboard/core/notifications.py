"""Load a city's notification policies (notifications.yaml) and say what an alert's change tells whom: pure functions.

A policy names the channels and addresses an alert of a rule with ``notify: <policy>`` is sent to, which of its
changes are told (``firing``, and ``resolved`` when asked for) and of which levels. The messages are queued in
the SQL outbox with the alert's change (``dashboard.storage.alerts``) and sent by ``feeds.notify``. The file's
``briefings:`` section names who gets the scheduled briefings by mail (``load_briefing_recipients``); either
section may stand alone. Each recipient reads one language: their own ``lang``, else the city's (city.yaml).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Mapping

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from dashboard.core import messages
from dashboard.core.alerts import LEVELS
from dashboard.core.clock import iso
from dashboard.core.rules import RulesError, validated_file, _line, _listed, _message as _rules_message

CHANNELS = ("webhook", "email", "sms")
Lang = Literal["zh", "en"]  # the language a recipient reads its messages in
TOLD = ("firing", "resolved")  # the changes of an alert a policy may tell of
_CODE = r"^[a-z0-9_]{1,64}$"
_PHONE = r"^\+[1-9][0-9]{7,14}$"  # E.164, as a department's duty_phone
_EMAIL = r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,}$"
_URL = r"^https?://[^\s/]+(/\S*)?$"
_PATTERNS = {"webhook": (_URL, "an http(s) URL"), "email": (_EMAIL, "a mailbox such as duty@example.org"),
             "sms": (_PHONE, "a phone number in E.164 (+ and 8-15 digits)")}
LEVEL_WORDS = {"blue": ("蓝色", "Blue"), "yellow": ("黄色", "Yellow"), "orange": ("橙色", "Orange"),
               "red": ("红色", "Red")}
STATUS_WORDS = {"firing": ("预警发布", "firing"), "resolved": ("预警解除", "resolved")}


class Recipient(BaseModel):
    """One channel and address a policy sends to, and the language its reader reads (None: the city's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    channel: Literal["webhook", "email", "sms"]
    address: Annotated[str, Field(min_length=1, max_length=320)]
    lang: Lang | None = None

    @model_validator(mode="after")
    def _address(self) -> "Recipient":
        pattern, what = _PATTERNS[self.channel]
        if not re.match(pattern, self.address):
            raise ValueError(f"{self.channel} address {self.address!r} is not {what}")
        return self


class Policy(BaseModel):
    """A notification policy: to whom, on which changes, for which levels."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Annotated[str, Field(pattern=_CODE)]
    to: Annotated[tuple[Recipient, ...], Field(min_length=1)]
    statuses: Annotated[tuple[Literal["firing", "resolved"], ...], BeforeValidator(_listed),
                        Field(min_length=1)] = ("firing",)
    levels: Annotated[tuple[Literal["blue", "yellow", "orange", "red"], ...], BeforeValidator(_listed),
                      Field(min_length=1)] = LEVELS

    def tells(self, status: str, level: str) -> bool:
        """Tell whether a change to ``status`` of an alert of ``level`` is sent."""
        return status in self.statuses and level in self.levels


def _mailbox(v: str) -> str:
    if not re.match(_EMAIL, v):
        raise ValueError(f"email address {v!r} is not {_PATTERNS['email'][1]}")
    return v


Mailbox = Annotated[str, Field(min_length=1, max_length=320), AfterValidator(_mailbox)]


def _reader(v: Any) -> Any:
    return {"address": v} if isinstance(v, str) else v


class Reader(BaseModel):
    """A briefing's mailbox and the language its reader reads (None: the city's); a bare mailbox in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    address: Mailbox
    lang: Lang | None = None


Readers = tuple[Annotated[Reader, BeforeValidator(_reader)], ...]


class BriefingRecipients(BaseModel):
    """Who gets the scheduled briefings by mail: the city's, and each district centre's by district code."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    city: Readers = ()
    # A code as YAML read it: unquoted it is a number (kept so, so that a problem's line is found by it), and
    # 440304 and "440304" are the same code (``of``).
    districts: dict[str | int, Readers] = {}

    def readers(self, district: str | None) -> tuple[Reader, ...]:
        """Return the readers of ``district``'s briefing (None: the city's), each with their language."""
        if district is None:
            return self.city
        return next((box for code, box in self.districts.items() if str(code) == district), ())

    def of(self, district: str | None) -> tuple[str, ...]:
        """Return the mailboxes of ``district``'s briefing (None: the city's)."""
        return tuple(r.address for r in self.readers(district))


class NotificationsFile(BaseModel):
    """The whole notifications.yaml: the alerts' policies and the briefings' recipients, either of them alone (a
    pack may mail its briefings before any alert tells anyone, or the other way round)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Left out: no alert tells anyone (the default is not validated); written, at least one policy.
    policies: Annotated[list[Policy], Field(min_length=1)] = []
    briefings: BriefingRecipients = BriefingRecipients()


_KEYS = {"policy": tuple(Policy.model_fields), "to": tuple(Recipient.model_fields),
         "top": tuple(NotificationsFile.model_fields), "briefings": tuple(BriefingRecipients.model_fields),
         "reader": tuple(Reader.model_fields)}


def _message(error: Mapping[str, Any]) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        parent = "top" if len(loc) == 1 else ("reader" if len(loc) >= 4 else "briefings") if loc[0] == "briefings" \
            else "to" if "to" in loc[:-1] else "policy"
        return f"unknown key {loc[-1]!r} (expected one of {', '.join(_KEYS[parent])})"
    if error["type"] == "literal_error":
        field = next((str(p) for p in reversed(loc) if isinstance(p, str)), "value")
        return f"{field}: {error['input']!r} is not one of {error['ctx']['expected']}"
    return _rules_message(error)


def _errors(err: ValidationError) -> list:
    """Return pydantic's errors but a list's "too short" caused by its own items' errors (said already)."""
    errors = err.errors()
    return [e for e in errors if e["type"] != "too_short"
            or not any(o is not e and tuple(o["loc"][:len(e["loc"])]) == tuple(e["loc"]) for o in errors)]


def _in(recipient, lang: str):
    """Return ``recipient`` (a Recipient or a Reader) with its language: its own, else ``lang`` (the city's)."""
    return recipient if recipient.lang else recipient.model_copy(update={"lang": lang})


def load_policies(path: str | Path, lang: str = "zh") -> dict[str, Policy]:
    """Load and validate notifications.yaml's policies (none when it has only ``briefings:``), each recipient
    reading ``lang`` (the city's language) unless it names its own; raise RulesError naming the line of every
    problem found."""
    path = Path(path)
    parsed, lines = validated_file(path, NotificationsFile, "policies", _message, errors=_errors)
    out: dict[str, Policy] = {}
    problems = []
    for i, p in enumerate(parsed.policies):
        if p.id in out:
            problems.append((_line(lines, ("policies", i, "id")), f"duplicate policy id {p.id!r}"))
        seen = set()
        for j, r in enumerate(p.to):
            if (r.channel, r.address) in seen:
                problems.append((_line(lines, ("policies", i, "to", j)),
                                 f"{r.channel} {r.address} is listed twice in policy {p.id!r}"))
            seen.add((r.channel, r.address))
        out[p.id] = p.model_copy(update={"to": tuple(_in(r, lang) for r in p.to)})
    if problems:
        raise RulesError(path.name, problems)
    return out


def load_briefing_recipients(path: str | Path, districts: Iterable[str], lang: str = "zh") -> BriefingRecipients:
    """Load notifications.yaml's ``briefings:`` section (nobody when it has only policies), each reader reading
    ``lang`` (the city's language) unless they name their own; raise RulesError naming the line of every problem
    found (the file's own, a district code ``districts`` lacks, an address listed twice in one list)."""
    path = Path(path)
    parsed, lines = validated_file(path, NotificationsFile, "policies", _message, errors=_errors)
    out, known, problems = parsed.briefings, set(districts), []
    for where, listed in [(("briefings", "city"), out.city),
                          *((("briefings", "districts", code), box) for code, box in out.districts.items())]:
        if len(where) == 3 and str(where[2]) not in known:
            problems.append((_line(lines, where), f"briefings: unknown district {str(where[2])!r} (one of "
                                                  f"{', '.join(sorted(known))})"))
        seen = set()
        for j, reader in enumerate(listed):
            if reader.address in seen:
                problems.append((_line(lines, (*where, j)),
                                 f"{reader.address} is listed twice in {'.'.join(map(str, where))}"))
            seen.add(reader.address)
    if problems:
        raise RulesError(path.name, problems)
    return BriefingRecipients.model_construct(
        city=tuple(_in(r, lang) for r in out.city),
        districts={code: tuple(_in(r, lang) for r in box) for code, box in out.districts.items()})


@dataclass(frozen=True)
class Message:
    """One notification to queue: ``enqueue``'s keyword arguments."""

    key: str
    channel: str
    address: str
    subject: str
    body: str
    payload: dict


def message_key(alert_id: int, status: str, channel: str, address: str) -> str:
    """Return the idempotency key of an alert's change told on one channel to one address."""
    return f"alert:{alert_id}:{status}:{channel}:{address}"


def alert_texts(alert: Mapping[str, Any], status: str, when: str, lang: str) -> tuple[str, str]:
    """Return the subject and body that tell an alert's change to ``status`` in ``lang``."""
    level, said = LEVEL_WORDS[alert["level"]][lang == "en"], STATUS_WORDS[status][lang == "en"]
    if lang == "en":
        return (f"[{level} alert {said}] {alert['title_en']}",
                f"{level} alert · {said}\n{alert['title_en']}\nAt: {when}\nRule: {alert['rule']}, "
                f"alert #{alert['id']}\n")
    return (f"【{level}{said}】{alert['title']}",
            f"{level}预警 · {said}\n{alert['title']}\n时间：{when}\n规则：{alert['rule']}　预警编号：{alert['id']}\n")


def alert_messages(policy: Policy, alert: Mapping[str, Any], status: str, tz: str) -> list[Message]:
    """Return the messages a policy sends for an alert's change to ``status`` (none when it does not tell it).

    ``alert`` is the alert's row after the change. Each recipient's text says the alert in their language (the
    recipient's ``lang``; the loader gave those without one the city's), the times in the city's time zone; the
    payload (the webhook's body, the SMS template's parameters) carries the alert as the API shows it
    (``messages.alert_view``) with both titles.
    """
    if not policy.tells(status, alert["level"]):
        return []
    at_ms = alert["resolved_ms"] if status == "resolved" else (alert.get("fired_ms") or alert["updated_ms"])
    when = iso(at_ms, tz)
    out = []
    for r in policy.to:
        subject, body = alert_texts(alert, status, when, r.lang or "zh")
        key = message_key(alert["id"], status, r.channel, r.address)
        payload = messages.notification_payload(key, "alert_" + status, iso(at_ms, tz),
                                                messages.alert_view(alert, tz, None), policy.id)
        out.append(Message(key, r.channel, r.address, subject[:300], body, dict(payload)))
    return out
