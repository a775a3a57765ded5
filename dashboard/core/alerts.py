"""Load a city's early-warning rules (alerts.yaml) and zones (zones.yaml), refusing a broken file by line."""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping
from zoneinfo import ZoneInfo

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator,
                      model_validator)
import numpy as np
from shapely import intersects_xy, prepare
from shapely.geometry import Polygon

from dashboard.core.rules import (RulesError, validated_file, _duration, _line, _listed, _message as _rules_message,
                                  _window, Domain, Kind)

LEVELS = ("blue", "yellow", "orange", "red")  # 蓝 / 黄 / 橙 / 红, China's four warning colours
TYPES = ("threshold", "rate", "anomaly", "silence", "geofence")
SCOPES = ("city", "district", "street", "zone")
# An alert's incident severity (SPEC section 3's 1-4) by level: orange and red open major incidents.
LEVEL_SEVERITY = {"blue": 1, "yellow": 2, "orange": 3, "red": 4}
OPS = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__}
PLACEHOLDERS = ("value", "baseline", "place")
_CODE = r"^[a-z0-9_]{1,64}$"


def _span(v: Any) -> timedelta:
    # PT0S is allowed where a condition may fire at once (``for``); _duration refuses zero.
    return timedelta(0) if v in ("PT0S", "PT0M", 0) else _duration(v)


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Span = Annotated[timedelta, BeforeValidator(_span)]
Kinds = Annotated[tuple[Kind, ...], BeforeValidator(_listed), Field(min_length=1)]


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("a text to say is required in zh and en")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(v) if name is not None}
    except ValueError as err:
        raise ValueError(f"bad text {v!r}: {err} (write {{{{ and }}}} for a literal brace)") from None
    unknown = sorted(n for n in names if n not in PLACEHOLDERS)
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}} (known: "
                         + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + ")")
    return v


class Say(BaseModel):
    """What an alert says, in both languages, with {value}, {baseline} and {place}."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: Annotated[str, BeforeValidator(_text)]
    en: Annotated[str, BeforeValidator(_text)]


class Baseline(BaseModel):
    """An anomaly rule's baseline: the same hour of the week over the last ``weeks`` weeks, from the hour rollups.

    The window's count is flagged when a Poisson count with the baseline's mean (at least ``floor``) would reach
    it with probability below ``p``, and it is at least ``min_count``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    weeks: Annotated[int, Field(ge=1, le=12)] = 4
    p: Annotated[float, Field(gt=0, lt=0.5)] = 0.001  # how improbable the observed count must be
    floor: Annotated[float, Field(gt=0, le=1000)] = 1.0  # the least expected count: a quiet hour is not "zero"
    min_count: Annotated[int, Field(ge=1, le=1_000_000)] = 5


class AlertRule(BaseModel):
    """One early-warning rule: what it watches, where (scope), when it fires, what it says and does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=_CODE)]
    type: Literal["threshold", "rate", "anomaly", "silence", "geofence"]
    level: Literal["blue", "yellow", "orange", "red"]
    scope: Literal["city", "district", "street", "zone"] = "district"
    domain: Domain | None = None
    kind: Kinds | None = None
    districts: Annotated[tuple[str, ...], BeforeValidator(_listed)] | None = None  # only these (codes or slugs)
    zone: Annotated[str, Field(pattern=_CODE)] | None = None
    # threshold: each observation's value compared; holds while the newest observation meets it.
    # rate and geofence: only events whose value meets it are counted (crowd density >= 3 persons/m²).
    op: Literal[">", ">=", "<", "<="] | None = None
    value: float | None = None
    # rate and geofence: at least ``count`` matching events within ``window``
    count: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    window: Duration | None = None
    # silence: no event for longer than ``gap``
    gap: Duration | None = None
    baseline: Baseline | None = None  # anomaly
    # pending until the condition has held this long (threshold: in event time; others: by the clock)
    for_: Annotated[Span, Field(alias="for")] = timedelta(0)
    say: Say
    opens_incident: bool = False
    notify: Annotated[str, Field(pattern=_CODE)] | None = None  # a notification policy's name (notifications.yaml)
    mute: Annotated[tuple[Annotated[tuple[int, int], BeforeValidator(_window)], ...],
                    BeforeValidator(_listed)] = ()  # recurring daily windows in the city's time, "00:00-05:00"

    @model_validator(mode="after")
    def _per_type(self) -> "AlertRule":
        need = {"threshold": ("kind", "op", "value"), "rate": ("kind", "count", "window"),
                "geofence": ("kind", "zone", "window"), "silence": ("domain", "gap"),
                "anomaly": ()}[self.type]
        missing = [n for n in need if getattr(self, n) is None]
        if missing:
            raise ValueError(f"a {self.type} rule needs {', '.join(repr(n) for n in missing)}")
        if self.type == "anomaly" and self.domain is None and self.kind is None:
            raise ValueError("an anomaly rule needs a 'domain' or a 'kind'")
        if self.type == "anomaly" and self.scope not in ("city", "district"):
            raise ValueError("an anomaly rule compares a district's counts (scope: district) or the city's (city)")
        if self.type == "threshold" and self.scope == "zone" and self.zone is None:
            raise ValueError("a threshold rule of scope zone needs its 'zone'")
        if self.type == "geofence" and self.scope != "zone":
            raise ValueError("a geofence rule's scope is its zone: write scope: zone")
        if self.type == "silence" and self.scope not in ("city", "district"):
            raise ValueError("a silence rule watches the whole feed (scope: city) or each district's (district)")
        if self.opens_incident and self.scope == "city":
            raise ValueError("an incident needs a district: a rule of scope city cannot open one")
        if self.zone is not None and self.scope != "zone":
            raise ValueError(f"'zone' is given but the scope is {self.scope}: write scope: zone")
        if self.scope == "zone" and self.zone is None:
            raise ValueError("scope zone needs a 'zone'")
        if (self.op is None) != (self.value is None):
            raise ValueError("'op' and 'value' go together (e.g. op: \">=\", value: 3.0)")
        unused = [n for n, types in (("op", ("threshold", "rate", "geofence")),
                                     ("value", ("threshold", "rate", "geofence")),
                                     ("count", ("rate", "geofence")), ("window", ("rate", "geofence", "anomaly")),
                                     ("gap", ("silence",)), ("baseline", ("anomaly",)))
                  if getattr(self, n) is not None and self.type not in types]
        if unused:
            raise ValueError(f"{unused[0]!r} means nothing to a {self.type} rule")
        return self

    @property
    def severity(self) -> int:
        """Return the severity (1-4) of the incident the rule opens."""
        return LEVEL_SEVERITY[self.level]

    def muted(self, at_ms: int, tz: str) -> tuple[int, int] | None:
        """Return the mute window the local time of ``at_ms`` falls in, or None."""
        if not self.mute:
            return None
        local = datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc).astimezone(ZoneInfo(tz))
        minute = local.hour * 60 + local.minute
        for start, end in self.mute:
            if (start <= minute < end) if start < end else (minute >= start or minute < end):
                return start, end
        return None

    def meets(self, value: float) -> bool:
        """Tell whether a threshold observation meets the rule's comparison."""
        return OPS[self.op](float(value), float(self.value))


class AlertsFile(BaseModel):
    """The whole alerts.yaml: a list of rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: Annotated[list[AlertRule], Field(min_length=1)]


class ZoneDef(BaseModel):
    """One zone: a polygon of [lon, lat] corners with a code and names in both languages."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    code: Annotated[str, Field(pattern=_CODE)]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    name_en: Annotated[str, Field(min_length=1, max_length=64)]
    district: str
    kind: Annotated[str, Field(pattern=_CODE)] = "area"  # stadium, port_of_entry, road, station ...
    polygon: Annotated[list[tuple[float, float]], Field(min_length=3)]

    @field_validator("polygon")
    @classmethod
    def _shape(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for lon, lat in v:
            # [lat, lon] by mistake is caught here when the longitude exceeds 90, as everywhere in China.
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError(f"corner [{lon}, {lat}] is not [lon, lat] within range")
        if not Polygon(v).is_valid:
            raise ValueError("the polygon crosses itself: list its corners in order around it")
        return v

    @field_validator("district")
    @classmethod
    def _district(cls, v: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("districts")
        if known is not None and v not in known:
            raise ValueError(f"unknown district {v!r}")
        return v


class ZonesFile(BaseModel):
    """The whole zones.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    zones: list[ZoneDef]


@dataclass(frozen=True)
class Zone:
    """A zone of the city pack, ready to test points against."""

    code: str
    name: str
    name_en: str
    district: str
    kind: str
    polygon: tuple[tuple[float, float], ...]

    @cached_property
    def _shape(self) -> Polygon:
        shape = Polygon(self.polygon)
        prepare(shape)
        return shape

    @cached_property
    def box(self) -> tuple[float, float, float, float]:
        """Return the zone's bounding box: west, south, east, north."""
        lons, lats = [p[0] for p in self.polygon], [p[1] for p in self.polygon]
        return min(lons), min(lats), max(lons), max(lats)

    def contains(self, lat: float | None, lon: float | None) -> bool:
        """Tell whether a point (or its edge) is inside the zone."""
        if lat is None or lon is None:
            return False
        x0, y0, x1, y1 = self.box
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            return False  # most points of a city are far from a zone: no need to ask shapely
        return bool(intersects_xy(self._shape, lon, lat))

    def contains_many(self, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """Tell for each of these points whether it is inside the zone (or on its edge): ``contains`` of each,
        in one call (a point without a place is NaN: never inside)."""
        x0, y0, x1, y1 = self.box
        out = np.zeros(len(lons), dtype=bool)
        at = np.flatnonzero((lons >= x0) & (lons <= x1) & (lats >= y0) & (lats <= y1))  # NaN compares false
        if at.size:
            out[at] = intersects_xy(self._shape, lons[at], lats[at])
        return out

    def as_ref(self) -> dict:
        """Return the zone as screens and the API name it."""
        return {"code": self.code, "name": self.name, "name_en": self.name_en, "district": self.district}


@dataclass(frozen=True)
class AlertRules:
    """The city's validated alert rules and zones, in its time zone."""

    rules: tuple[AlertRule, ...]
    zones: Mapping[str, Zone]
    timezone: str
    by_id: Mapping[str, AlertRule] = field(default_factory=dict, compare=False, hash=False)


def load_zones(path: str | Path, districts: Mapping[str, str]) -> dict[str, Zone]:
    """Load and validate zones.yaml (districts by code or alias); raise RulesError naming each problem's line."""
    path = Path(path)
    parsed, lines = validated_file(path, ZonesFile, "zones", _message, context={"districts": districts})
    out: dict[str, Zone] = {}
    problems = []
    for i, z in enumerate(parsed.zones):
        if z.code in out:
            problems.append((_line(lines, ("zones", i, "code")), f"duplicate zone code {z.code!r}"))
        out[z.code] = Zone(z.code, z.name, z.name_en, districts[z.district], z.kind, tuple(z.polygon))
    if problems:
        raise RulesError(path.name, problems)
    return out


def load_alert_rules(path: str | Path, districts: Mapping[str, str], zones: Mapping[str, Zone], kinds=None, *,
                     tz: str, policies=None) -> AlertRules:
    """Load and validate alerts.yaml against the city's districts, zones (and known kinds and notification
    policies' names, when given).

    Raise RulesError naming the line of every problem found.
    """
    path = Path(path)
    parsed, lines = validated_file(path, AlertsFile, "rules", _message)
    problems: list[tuple[int, str]] = []
    first: dict[str, int] = {}
    rules = []
    for i, rule in enumerate(parsed.rules):
        at = ("rules", i)
        if rule.id in first:
            problems.append((_line(lines, at + ("id",)), f"duplicate rule id {rule.id!r} (first at line "
                                                         f"{first[rule.id]})"))
        first.setdefault(rule.id, _line(lines, at))
        if rule.zone is not None and rule.zone not in zones:
            problems.append((_line(lines, at + ("zone",)), f"unknown zone {rule.zone!r} (zones.yaml has: "
                                                           f"{', '.join(sorted(zones)) or 'none'})"))
        if policies is not None and rule.notify is not None and rule.notify not in policies:
            problems.append((_line(lines, at + ("notify",)), f"unknown notification policy {rule.notify!r} "
                                                             f"(notifications.yaml has: "
                                                             f"{', '.join(sorted(policies)) or 'none'})"))
        codes = []
        for j, d in enumerate(rule.districts or ()):
            code = districts.get(d) or districts.get(str(d).lower())
            if code is None:
                problems.append((_line(lines, at + ("districts", j)), f"unknown district {d!r}"))
            codes.append(code)
        for j, k in enumerate(rule.kind or ()):
            if kinds is not None and k not in kinds:
                problems.append((_line(lines, at + ("kind",)), f"kind {k!r} is not in the city's catalogue "
                                                               "(city.yaml kinds): the rule could never match"))
        if rule.districts:
            rule = rule.model_copy(update={"districts": tuple(codes)})
        rules.append(rule)
    if problems:
        raise RulesError(path.name, problems)
    return AlertRules(tuple(rules), dict(zones), tz, {r.id: r for r in rules})


_KEYS = {"rule": ("id", "type", "level", "scope", "domain", "kind", "districts", "zone", "op", "value", "count",
                  "window", "gap", "baseline", "for", "say", "opens_incident", "notify", "mute"),
         "say": tuple(Say.model_fields), "baseline": tuple(Baseline.model_fields),
         "zone": tuple(ZoneDef.model_fields)}


def _message(error: Mapping[str, Any]) -> str:
    """Say a pydantic error as a sentence, naming the keys a misspelt one could have been."""
    loc = error["loc"]
    if error["type"] == "extra_forbidden" and len(loc) >= 2:
        parent = loc[-2] if loc[-2] in ("say", "baseline") else "zone" if loc[0] == "zones" else "rule"
        return f"unknown key {loc[-1]!r} (expected one of {', '.join(_KEYS[parent])})"
    if error["type"] == "missing" and loc and loc[-1] == "for_":
        return "missing key 'for'"
    return _rules_message(error)


@dataclass(frozen=True)
class Place:
    """Where an alert is: its scope key, district and zone (either may be None)."""

    scope: str
    district: str | None = None
    zone: str | None = None
    street: str | None = None


def place_of(rule: AlertRule, event: Any, zones: Mapping[str, Zone]) -> Place | None:
    """Return where an event counts for a rule (its scope), or None when the rule does not watch it.

    ``event`` has the fields of SPEC section 3 (domain, kind, district code, street, lat, lon, value).
    """
    if rule.kind is not None and event.kind not in rule.kind:
        return None
    if rule.domain is not None and event.domain != rule.domain:
        return None
    if rule.districts is not None and event.district not in rule.districts:
        return None
    if rule.type == "threshold":
        if event.value is None:
            return None
    elif rule.op is not None and (event.value is None or not rule.meets(event.value)):
        return None
    if rule.scope == "city":
        return Place("city")
    if rule.scope == "district":
        return Place(f"district:{event.district}", event.district)
    if rule.scope == "street":
        return Place(f"street:{event.district}:{event.street}", event.district, street=event.street) \
            if event.street else None
    zone = zones[rule.zone]
    if not zone.contains(event.lat, event.lon):
        return None
    return Place(f"zone:{zone.code}", zone.district, zone.code)


def parse_scope(scope: str) -> Place:
    """Return the place a scope key names (the inverse of ``place_of``'s keys)."""
    kind, _, rest = scope.partition(":")
    if kind == "district":
        return Place(scope, rest)
    if kind == "street":
        district, _, street = rest.partition(":")
        return Place(scope, district, street=street)
    if kind == "zone":
        return Place(scope, None, rest)
    return Place("city")


def say(rule: AlertRule, lang: str, *, value: float | None, baseline: float | None, place: str) -> str:
    """Return what an alert of ``rule`` says in ``lang``, its numbers rounded as people read them."""
    text = rule.say.en if lang == "en" else rule.say.zh
    return text.format(value=_number(value), baseline=_number(baseline), place=place)


def _number(v: float | None) -> str:
    if v is None:
        return "-"
    return str(int(round(v))) if abs(v - round(v)) < 0.05 or abs(v) >= 100 else f"{v:.1f}"


def poisson_tail(x: int, mu: float) -> float:
    """Return P(X >= x) for X ~ Poisson(mu): how improbable a count at least ``x`` is when ``mu`` is expected.

    Summed upwards from x in log space, so neither a large mean (e^-mu underflows past 745) nor a large count
    overflows; a count at or below the mean is not improbable, and is answered 1 without summing.
    """
    if x <= 0 or x <= mu:
        return 1.0
    log_first = -mu + x * math.log(mu) - math.lgamma(x + 1)
    total, term, i = 1.0, 1.0, x
    while term > 1e-12 * total:  # the terms fall at least geometrically (mu / i < 1 past the mean)
        i += 1
        term *= mu / i
        total += term
    return min(1.0, math.exp(log_first) * total)


def beta_reg(a: float, b: float, z: float) -> float:
    """Return the regularized incomplete beta function I_z(a, b) (a, b > 0; 0 <= z <= 1).

    The continued fraction of Numerical Recipes (section 6.4, modified Lentz), on the side of ``z`` where it
    converges fast, in log space for the prefactor so large ``a`` and ``b`` neither overflow nor underflow.
    """
    if z <= 0.0:
        return 0.0
    if z >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(z) + b * math.log1p(-z)
    if z < (a + 1) / (a + b + 2):
        return min(1.0, math.exp(log_front) * _beta_fraction(a, b, z) / a)
    return max(0.0, 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - z) / b)


def _beta_fraction(a: float, b: float, z: float) -> float:
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * z / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    # Converges in O(sqrt(max(a, b))) steps; the bound is far above what counts in the millions need.
    for m in range(1, 20_000):
        m2 = 2 * m
        for aa in (m * (b - m) * z / ((a - 1 + m2) * (a + m2)), -(a + m) * (a + b + m) * z / ((a + m2) * (a + 1 + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def nbinom_tail(x: int, r: float, mu: float) -> float:
    """Return P(X >= x) for X negative binomial with shape ``r`` and mean ``mu`` (variance mu + mu²/r).

    The count of a Poisson process whose rate itself varies as a gamma with shape ``r``: P(X >= x) = I_q(x, r)
    with q = mu / (r + mu), the same identity scipy.stats.nbinom.sf rests on.
    """
    if x <= 0:
        return 1.0
    if mu <= 0:
        return 0.0
    return beta_reg(float(x), r, mu / (r + mu))


@dataclass(frozen=True)
class Surprise:
    """How improbable a window's count is under its baseline: the tail, the expected count and its spread."""

    p: float
    expected: float  # the mean of the baseline hours scaled to the window (before the floor)
    shape: float | None  # the negative binomial's r; None: Poisson (the hours vary no more than a Poisson count)


def anomaly_tail(x: int, hours: list[float] | tuple[float, ...], fraction: float, floor: float) -> Surprise:
    """Return how improbable ``x`` events in a window are, given the counts of the baseline ``hours`` (one count
    per past hour) and the window's length as a ``fraction`` of an hour.

    Method of moments: the hours' mean ``m`` and sample variance ``s²``. Where ``s² > m`` the counts are
    overdispersed and the window's count is negative binomial: a Poisson count whose rate varies from week to
    week as a gamma; thinned to the window, its mean is ``fraction·m`` and its variance beyond the Poisson part
    ``fraction²·(s² - m)`` (the rate's own variance scales with the square of the window). The mean is then
    raised to ``floor`` (a quiet hour is not "never"), the excess variance kept: r = mean² / excess. Where
    ``s² <= m`` (or fewer than two hours) the weeks show no spread beyond chance: Poisson.
    """
    n = len(hours)
    m = sum(hours) / n if n else 0.0
    s2 = sum((h - m) ** 2 for h in hours) / (n - 1) if n >= 2 else 0.0
    expected = m * fraction
    mu = max(expected, floor)
    excess = fraction * fraction * (s2 - m)
    if excess <= 1e-12 * mu * mu:
        return Surprise(poisson_tail(x, mu), expected, None)
    shape = mu * mu / excess
    return Surprise(nbinom_tail(x, shape, mu), expected, shape)
