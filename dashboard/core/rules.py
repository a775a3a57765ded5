"""Load a city's routing rules from YAML, refusing a broken file by line, and suggest departments for an incident."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo
from pydantic import field_validator

from dashboard.core.channels import DOMAINS
from dashboard.core.districts import resolve_district

# Stands for the government office of the incident's own district (department ``district_<code>``).
DISTRICT_OFFICE = "district_office"
# Stands for the street office (街道办事处) of the incident's street; its district office when the
# incident names no street, or one the city pack has no office for.
STREET_OFFICE = "street_office"
PLACEHOLDERS = (DISTRICT_OFFICE, STREET_OFFICE)
KIND = re.compile(r"[a-z0-9_]{1,64}")  # what an event's kind may be (SPEC section 3); use fullmatch
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_SEVERITY = re.compile(r"^(\d+)(?:-(\d+)|(\+))?$")
# Days, hours, minutes, seconds only: years and months have no fixed length.
_DURATION = re.compile(r"^P(?=\d|T\d)(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


class RulesError(ValueError):
    """A rules file that was refused; ``problems`` holds (line, message) pairs, the text one line each."""

    def __init__(self, filename: str, problems: list[tuple[int, str]]):
        self.problems = sorted(problems)
        super().__init__("\n".join(f"{filename} line {n}: {msg}" for n, msg in self.problems))


def _listed(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


def _domain(v: str) -> str:
    if v not in DOMAINS:
        raise ValueError(f"unknown domain {v!r} (one of {', '.join(DOMAINS)})")
    return v


def _kind(v: str) -> str:
    if not KIND.fullmatch(v):
        raise ValueError(f"bad kind {v!r}: lower-case letters, digits and _ only")
    return v


def _department(v: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("departments")
    if known is None:
        return v
    if v in PLACEHOLDERS:
        # street_office falls back to the district office, so both need every district's office.
        missing = sorted(c for c in set(((info.context or {}).get("districts") or {}).values())
                         if f"district_{c}" not in known)
        if missing:
            raise ValueError(f"{v}: no department district_{missing[0]} for district {missing[0]}")
        if v == STREET_OFFICE and not (info.context or {}).get("streets"):
            raise ValueError(f"{STREET_OFFICE}: departments.yaml has no street office (kind: street_office "
                             "with district and street)")
    elif v not in known:
        listed = sorted(c for c in known if not c.startswith(("district_", "street_")))
        raise ValueError(f"unknown department {v!r} (known: {', '.join(PLACEHOLDERS)}, {', '.join(listed)}, "
                         "district_<code>, street_<code>_<street>)")
    return v


def street_key(name: str | None) -> str:
    """Return how a street's name is compared: 莲花街道, 莲花, Lianhua and lianhua are one street."""
    text = "".join(ch for ch in (name or "").strip().lower() if ch.isalnum())
    return text.removesuffix("街道").removesuffix("subdistrict").removesuffix("street")


def street_offices(departments: Iterable[str | Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """Map (district code, street key) to the code of the street office, from the pack's departments.

    An office is found by its street's Chinese name (with or without 街道), by the English name its code
    ends with (``street_440304_lianhua``) and by its own code.
    """
    out: dict[tuple[str, str], str] = {}
    for d in departments:
        if isinstance(d, str) or d.get("kind") != "street_office" or not d.get("district") or not d.get("street"):
            continue
        district, code = str(d["district"]), d["code"]
        for alias in (d["street"], code.removeprefix(f"street_{district}_"), code):
            out.setdefault((district, street_key(alias)), code)
    return out


def _severity(v: Any) -> tuple[int, int]:
    m = None if isinstance(v, bool) else _SEVERITY.match(str(v))
    lo, hi = (int(m[1]), 4 if m[3] else int(m[2] or m[1])) if m else (0, 0)
    if not m or not (1 <= lo <= hi <= 4):
        raise ValueError(f"bad severity range {v!r}: use 3, 3-4 or 3+ within 1-4, low before high")
    return lo, hi


def _window(v: Any) -> tuple[int, int]:
    m = _WINDOW.match(v) if isinstance(v, str) else None
    start, end = (int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])) if m else (0, 0)
    if not m or start == end:
        raise ValueError(f"bad time-of-day window {v!r}: use \"HH:MM-HH:MM\" (quoted), start and end differ; "
                         "a start after the end wraps midnight")
    return start, end


def _duration(v: Any) -> timedelta:
    m = _DURATION.match(v) if isinstance(v, str) else None
    span = timedelta(days=int(m[1] or 0), hours=int(m[2] or 0), minutes=int(m[3] or 0),
                     seconds=int(m[4] or 0)) if m else timedelta(0)
    if not span:
        raise ValueError(f"bad duration {v!r}: use a positive ISO-8601 duration such as PT15M, PT2H or P1DT12H")
    return span


Domain = Annotated[str, AfterValidator(_domain)]
Kind = Annotated[str, AfterValidator(_kind)]
District = Annotated[str, AfterValidator(resolve_district)]
Department = Annotated[str, AfterValidator(_department)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
Listed = BeforeValidator(_listed)


class Match(BaseModel):
    """The conditions of a rule: each one given must hold, a list matches any of its values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: Annotated[tuple[Domain, ...], Listed, Field(min_length=1)] | None = None
    kind: Annotated[tuple[Kind, ...], Listed, Field(min_length=1)] | None = None
    severity: Annotated[tuple[int, int], BeforeValidator(_severity)] | None = None
    district: Annotated[tuple[District, ...], Listed, Field(min_length=1)] | None = None
    time: Annotated[tuple[int, int], BeforeValidator(_window)] | None = None

    def holds(self, incident: Mapping[str, Any], minute: int) -> bool:
        """Tell whether an incident at a minute of the local day meets every condition."""
        for name in ("domain", "kind", "district"):
            wanted = getattr(self, name)
            if wanted and incident[name] not in wanted:
                return False
        if self.severity and not self.severity[0] <= incident["severity"] <= self.severity[1]:
            return False
        if self.time:
            start, end = self.time
            return start <= minute < end if start < end else minute >= start or minute < end
        return True


class Rule(BaseModel):
    """One routing rule: conditions, the lead and supporting departments, the deadlines."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]
    match: Match | None = None
    lead: Department
    supporting: Annotated[tuple[Department, ...], Listed] = ()
    acknowledge_within: Duration
    resolve_within: Duration

    @field_validator("supporting")
    @classmethod
    def _distinct(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if info.data.get("lead") in v:
            raise ValueError(f"the lead {info.data['lead']!r} is listed again as supporting")
        if len(set(v)) != len(v):
            raise ValueError("a supporting department is listed twice")
        return v

    @field_validator("resolve_within")
    @classmethod
    def _after_ack(cls, v: timedelta, info: ValidationInfo) -> timedelta:
        if "acknowledge_within" in info.data and v < info.data["acknowledge_within"]:
            raise ValueError("resolve_within is shorter than acknowledge_within")
        return v

    @property
    def catch_all(self) -> bool:
        """Tell whether the rule matches every incident."""
        return self.match is None or not self.match.model_dump(exclude_none=True)


class RulesFile(BaseModel):
    """The whole rules file: an ordered list of rules, the first match wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: Annotated[list[Rule], Field(min_length=1)]


@dataclass(frozen=True)
class Suggestion:
    """The departments and deadlines a rule gives an incident dispatched at ``at_ms``."""

    lead: str
    supporting: tuple[str, ...]
    ack_deadline: datetime
    resolve_deadline: datetime
    rule_name: str
    ack_due_ms: int
    resolve_due_ms: int

    @property
    def departments(self) -> tuple[str, ...]:
        """Return the lead first, then the supporting departments."""
        return (self.lead, *self.supporting)


@dataclass(frozen=True)
class Rules:
    """A validated, ordered rule list in one city's time zone."""

    rules: tuple[Rule, ...]
    timezone: str
    offices: Mapping[tuple[str, str], str] = field(default_factory=dict, hash=False, compare=False)

    def resolve(self, department: str, incident: Mapping[str, Any]) -> str:
        """Return the department code a rule's name stands for at the incident's place."""
        district = incident["district"]
        if department == STREET_OFFICE:
            street = street_key(incident.get("street"))
            return self.offices.get((district, street), f"district_{district}") if street else \
                f"district_{district}"
        return f"district_{district}" if department == DISTRICT_OFFICE else department

    def suggest(self, incident: Mapping[str, Any], at: datetime | int) -> Suggestion:
        """Return the first matching rule's departments and deadlines for an incident (a row or dict)."""
        at_ms = at if isinstance(at, int) else int(at.timestamp() * 1000)
        tz = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc).astimezone(tz)
        rule = next(r for r in self.rules if r.catch_all or r.match.holds(incident, local.hour * 60 + local.minute))
        lead = self.resolve(rule.lead, incident)
        supporting = tuple(dict.fromkeys(self.resolve(d, incident) for d in rule.supporting))
        ack_ms = at_ms + int(rule.acknowledge_within.total_seconds()) * 1000
        resolve_ms = at_ms + int(rule.resolve_within.total_seconds()) * 1000
        return Suggestion(lead=lead, supporting=tuple(d for d in supporting if d != lead),
                          ack_deadline=datetime.fromtimestamp(ack_ms / 1000, tz=tz),
                          resolve_deadline=datetime.fromtimestamp(resolve_ms / 1000, tz=tz),
                          rule_name=rule.name, ack_due_ms=ack_ms, resolve_due_ms=resolve_ms)


def load_rules(path: str | Path, departments: Iterable[str | Mapping[str, Any]],
               districts: Mapping[str, str] | None = None, *, tz: str) -> Rules:
    """Load and validate a rules file against the city's departments (and district aliases, when given).

    Raise RulesError naming the line of every problem found.
    """
    path = Path(path)
    data, lines = _compose(path)
    departments = list(departments)
    offices = street_offices(departments)
    context = {"departments": {d if isinstance(d, str) else d["code"] for d in departments}, "districts": districts,
               "streets": offices}
    try:
        parsed = RulesFile.model_validate(data, context=context)
    except ValidationError as err:
        raise RulesError(path.name, [(_line(lines, e["loc"]), _message(e)) for e in err.errors()]) from None
    problems = []
    first: dict[str, int] = {}
    for i, rule in enumerate(parsed.rules):
        at = _line(lines, ("rules", i))
        if rule.name in first:
            problems.append((_line(lines, ("rules", i, "name")), f"duplicate rule name {rule.name!r} "
                                                                 f"(first at line {first[rule.name]})"))
        first.setdefault(rule.name, at)
        if rule.catch_all and i < len(parsed.rules) - 1:
            problems.append((at, f"catch-all rule {rule.name!r} (no match) must be the last rule: "
                                 f"the {len(parsed.rules) - 1 - i} rule(s) after it could never match"))
    last = parsed.rules[-1]
    if not last.catch_all:
        problems.append((_line(lines, ("rules", len(parsed.rules) - 1)),
                         f"missing catch-all: the last rule {last.name!r} has a match; end with a rule "
                         "without one so that every incident is routed"))
    if problems:
        raise RulesError(path.name, problems)
    return Rules(tuple(parsed.rules), tz, offices)


def validated_file(path: Path, model, expected: str, message: Callable[[Mapping[str, Any]], str],
                   context: dict | None = None, errors: Callable[[ValidationError], list] = ValidationError.errors,
                   ) -> tuple[Any, dict[tuple, int]]:
    """Parse a city pack's YAML file (``_compose``) and validate it as ``model``; return the model and the lines
    of its keys, or raise RulesError naming the line of every problem (``message`` says each in words)."""
    data, lines = _compose(path, expected=expected)
    try:
        parsed = model.model_validate(data, context=context)
    except ValidationError as err:
        raise RulesError(path.name, [(_line(lines, e["loc"]), message(e)) for e in errors(err)]) from None
    return parsed, lines


# libyaml's parser when PyYAML has it: a worker loading 500 alert rules spent most of its pack's start-up in the
# pure-Python scanner. Its nodes carry the same marks; a file it refuses is parsed again by the pure one, whose
# messages the problems quote.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(path: Path, expected: str = "rules", loader=_FAST_LOADER) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML keeping the line of every key and list item, refusing duplicate keys (``expected``: the
    top-level list the file holds, named when it is empty)."""
    text = path.read_text(encoding="utf-8")
    try:
        try:
            root = yaml.compose(text, Loader=loader)
        except yaml.YAMLError:
            if loader is yaml.SafeLoader:
                raise
            root = yaml.compose(text, Loader=yaml.SafeLoader)  # the same refusal, in the words the tests know
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        # The parser notices a missing bracket lines later: name where the construct began too.
        where = f" ({err.context} at line {err.context_mark.line + 1})" if err.context and err.context_mark else ""
        raise RulesError(path.name, [(mark.line + 1 if mark else 1, f"not valid YAML: {err.problem}{where}")]) from None
    if root is None:
        raise RulesError(path.name, [(1, f"the file is empty: expected a `{expected}:` list")])
    scalars = yaml.SafeLoader("")
    lines: dict[tuple, int] = {(): root.start_mark.line + 1}
    problems: list[tuple[int, str]] = []

    def walk(node: yaml.Node, where: tuple) -> Any:
        if isinstance(node, yaml.MappingNode):
            out = {}
            for key_node, value_node in node.value:
                key = scalars.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if not isinstance(key, (str, int)):
                    problems.append((line, f"a key must be a plain name, not {key!r}"))
                    continue
                if key in out:
                    problems.append((line, f"duplicate key {key!r} (first at line {lines[where + (key,)]})"))
                    continue
                lines[where + (key,)] = line
                out[key] = walk(value_node, where + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[where + (i,)] = item.start_mark.line + 1
            return [walk(item, where + (i,)) for i, item in enumerate(node.value)]
        return scalars.construct_object(node, deep=True)

    data = walk(root, ())
    if problems:
        raise RulesError(path.name, problems)
    return data, lines


def _line(lines: dict[tuple, int], loc: tuple) -> int:
    loc = tuple(loc)
    while loc not in lines:
        loc = loc[:-1]
    return lines[loc]


_KEYS = {"match": tuple(Match.model_fields), "rule": tuple(Rule.model_fields), "top": tuple(RulesFile.model_fields)}


def _message(error: Mapping[str, Any]) -> str:
    """Turn a pydantic error into a sentence a city-pack author understands."""
    loc, kind = error["loc"], error["type"]
    if kind == "extra_forbidden":
        parent = "top" if len(loc) == 1 else "match" if loc[-2] == "match" else "rule"
        return f"unknown key {loc[-1]!r} (expected one of {', '.join(_KEYS[parent])})"
    if kind == "missing":
        return f"missing key {loc[-1]!r}"
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    field = next((str(p) for p in reversed(loc) if isinstance(p, str)), "file")
    return f"{field}: {error['msg']}"
