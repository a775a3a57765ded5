"""Load a city pack: the district registry, boundaries and departments of one city."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from dashboard.core.alerts import AlertRules, Zone, load_alert_rules, load_zones
from dashboard.core.notifications import BriefingRecipients, Policy, load_briefing_recipients, load_policies
from dashboard.core.procedures import Procedures, load_procedures
from dashboard.core.holidays import Holidays, load_holidays
from dashboard.core.rosters import Rosters, load_rosters
from dashboard.core.rules import Rules, load_rules
from dashboard.core.street_areas import (FILENAME as STREETS_FILE, StreetAreas, centre_problems, derived_areas,
                                         load_street_boundaries, outline_geometry)
from dashboard.core.units import load_units

# City packs are data, not code: they sit beside the packages, in dashboard/cities.
PACKS_DIR = Path(__file__).resolve().parent.parent / "cities"
DEFAULT_CITY = "shenzhen"
# What the per-minute rollups count a street or kind under when the city pack does not know it. A kind
# is [a-z0-9_], so no kind is ever spelled like this; a street that is, is unknown and lands here anyway.
OTHER = "~other"
# The kinds of SPEC section 3, for a pack that lists none of its own.
SPEC_KINDS = {
    "security": ("theft", "fight", "crowd_density", "intrusion", "suspicious_vehicle"),
    "traffic": ("congestion", "accident", "road_closure", "signal_fault", "speed"),
    "environment": ("aqi", "pm25", "noise", "water_level", "rainfall", "pollution_discharge"),
    "incident": ("fire", "flood", "gas_leak", "building_collapse", "medical", "public_complaint"),
}
# A department's duty line as a tel: link dials it: E.164, a plus and 8 to 15 digits, nothing else.
DUTY_PHONE = re.compile(r"\+[1-9][0-9]{7,14}")


def validate_departments(departments: list, source: str = "departments.yaml") -> list[dict]:
    """Return the pack's departments, refusing (ValueError) a missing field, a code used twice or a duty_phone
    that is not E.164 (what /m's call link dials)."""
    seen: set[str] = set()
    for i, dep in enumerate(departments):
        where = f"{source} department {i + 1}"
        if not isinstance(dep, dict) or not all(isinstance(dep.get(k), str) and dep[k] for k in ("code", "name",
                                                                                                 "name_en", "kind")):
            raise ValueError(f"{where}: code, name, name_en and kind are required text")
        if dep["code"] in seen:
            raise ValueError(f"{where}: code {dep['code']!r} twice")
        seen.add(dep["code"])
        phone = dep.get("duty_phone")
        if phone is not None and not (isinstance(phone, str) and DUTY_PHONE.fullmatch(phone)):
            raise ValueError(f"{where} ({dep['code']}): duty_phone {phone!r} is not E.164 (+ and 8-15 digits, "
                             "quoted in YAML)")
    return departments


@dataclass(frozen=True)
class Street:
    """A sub-district (街道) of a district."""

    name: str
    name_en: str = ""
    code: str = ""
    # Where the street is (city.yaml ``center``), roughly: the seed of its approximate area on the district's map
    # when the pack has no streets.geojson (street_areas.py).
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class District:
    """One district of the registry."""

    code: str
    slug: str
    name: str
    name_en: str
    population: int
    lat: float
    lon: float
    streets: tuple[Street, ...] = ()

    def as_ref(self) -> dict:
        """Return the fields that identify the district in API answers."""
        return {"code": self.code, "slug": self.slug, "name": self.name, "name_en": self.name_en}


@dataclass(frozen=True)
class Centres:
    """The city's district centres (city.yaml ``centres``): the severity from which an incident goes up to the
    city centre by itself (None: severity alone never sends one up); ``briefings``: whether each scheduled
    briefing slot also makes one per district centre in use (false: the city's alone; a district centre still
    makes its own on request)."""

    hand_up_severity: int | None = 4
    briefings: bool = True


def load_centres(data, manifest: Path | str = "city.yaml") -> Centres | None:
    """Return the pack's district centres (None when it has none: the city centre runs every incident); a
    threshold that is not a severity (1-4), or ``briefings`` not true or false, raises ValueError."""
    if data is None:
        return None
    if not isinstance(data, dict) or set(data) - {"hand_up_severity", "briefings"}:
        raise ValueError(f"{manifest}: centres takes hand_up_severity and briefings only")
    level = data.get("hand_up_severity")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 4):
        raise ValueError(f"{manifest}: centres.hand_up_severity must be a severity, 1 to 4, not {level!r}")
    briefings = data.get("briefings", True)
    if not isinstance(briefings, bool):
        raise ValueError(f"{manifest}: centres.briefings must be true or false, not {briefings!r}")
    return Centres(level, briefings)


@dataclass(frozen=True)
class City:
    """A city pack loaded from its folder."""

    slug: str
    name: str
    name_en: str
    timezone: str
    lat: float
    lon: float
    districts: tuple[District, ...]
    path: Path = field(compare=False)
    kinds: frozenset[str] = frozenset(k for ks in SPEC_KINDS.values() for k in ks)
    # Its district centres (None: one city centre runs every incident, as before the pack named any).
    centres: Centres | None = None
    # The language its messages are written in for a recipient who names none (city.yaml ``language``).
    language: str = "zh"

    @cached_property
    def aliases(self) -> dict[str, str]:
        """Map every accepted spelling of a district (code, slug, names) to its code."""
        out: dict[str, str] = {}
        for d in self.districts:
            for alias in (d.code, d.slug, d.slug.lower(), d.name, d.name.removesuffix("区"), d.name_en, d.name_en.lower()):
                if alias:
                    out[alias] = d.code
        return out

    @cached_property
    def by_code(self) -> dict[str, District]:
        """Map each district code to its district."""
        return {d.code: d for d in self.districts}

    def resolve(self, code_or_slug: str) -> District | None:
        """Return the district named by a code, slug or name, or None."""
        code = self.aliases.get(code_or_slug) or self.aliases.get(code_or_slug.lower())
        return self.by_code.get(code) if code else None

    @cached_property
    def street_names(self) -> dict[str, dict[str, tuple[str, str]]]:
        """Map each district code to its streets' spellings (name, name without 街道, code, English name), each to
        the street's (Chinese, English) names."""
        out: dict[str, dict[str, tuple[str, str]]] = {}
        for d in self.districts:
            names = out.setdefault(d.code, {})
            for s in d.streets:
                for alias in (s.name, s.name.removesuffix("街道"), s.code, s.name_en):
                    if alias:
                        names.setdefault(alias, (s.name, s.name_en))
        return out

    def street_name(self, district: str, street: str | None, lang: str = "zh") -> str:
        """Return a street an event names (by name or code) in ``lang``: its English (pinyin) name in English,
        its Chinese name otherwise; a street the pack does not know is shown as it came."""
        if not street:
            return ""
        names = self.street_names.get(district, {}).get(street)
        return (names[1] if lang == "en" else names[0]) if names else street

    def street_labels(self, lang: str = "zh") -> dict[str, dict[str, str]]:
        """Return every district's street spellings mapped to the name shown in ``lang`` (for the browser), only
        those the name shown differs from."""
        return {code: {alias: (n[1] if lang == "en" else n[0]) for alias, n in names.items()
                       if alias != (n[1] if lang == "en" else n[0])}
                for code, names in self.street_names.items()}

    @cached_property
    def known_streets(self) -> dict[str, frozenset[str]]:
        """Map each district code to the spellings of its streets the rollups keep: names and codes."""
        return {d.code: frozenset([s.name for s in d.streets] + [s.code for s in d.streets if s.code])
                for d in self.districts}

    def rollup_street(self, district: str, street: str | None) -> str:
        """Return the street an event is counted under: its own if the pack knows it, '' for none, else OTHER."""
        if not street:
            return ""
        return street if street in self.known_streets.get(district, ()) else OTHER

    def rollup_kind(self, kind: str) -> str:
        """Return the kind an event is counted under: its own if the pack knows it, else OTHER."""
        return kind if kind in self.kinds else OTHER

    @cached_property
    def geojson(self) -> dict:
        """Return the district boundaries, one feature per district with ``id`` = code."""
        return json.loads((self.path / "boundaries.geojson").read_text(encoding="utf-8"))

    @cached_property
    def street_areas(self) -> dict[str, StreetAreas]:
        """Return each district's street areas by code: the pack's streets.geojson where it draws the district,
        else the cells of its streets' centres (approximate); a district with neither is absent. A broken
        streets.geojson raises RulesError by line, a street centre outside its district ValueError."""
        outlines = {d.code: outline_geometry(self.geojson, d.code) for d in self.districts}
        problems = centre_problems((self.path / "city.yaml").name, outlines, self.districts)
        if problems:
            raise ValueError("\n".join(problems))
        path = self.path / STREETS_FILE
        drawn = load_street_boundaries(path, self.aliases, self.street_names, outlines) if path.exists() else {}
        out: dict[str, StreetAreas] = {}
        for d in self.districts:
            areas = drawn.get(d.code) or (derived_areas(outlines[d.code], d.streets)
                                          if outlines[d.code] is not None else None)
            if areas is not None:
                out[d.code] = areas
        return out

    @cached_property
    def departments(self) -> list[dict]:
        """Return the departments of the city pack (empty when the pack has none)."""
        path = self.path / "departments.yaml"
        if not path.exists():
            return []
        return validate_departments(yaml.safe_load(path.read_text(encoding="utf-8")).get("departments", []),
                                    str(path))

    @cached_property
    def units(self) -> list[dict]:
        """Return the pack's response units (none without units.yaml); a broken file raises ValueError."""
        path = self.path / "units.yaml"
        return load_units(path, [d["code"] for d in self.departments]) if path.exists() else []

    @cached_property
    def rules(self) -> Rules | None:
        """Return the pack's validated routing rules, or None when it has no rules.yaml; a broken file raises."""
        path = self.path / "rules.yaml"
        return load_rules(path, self.departments, self.aliases, tz=self.timezone) if path.exists() else None

    @cached_property
    def zones(self) -> dict[str, Zone]:
        """Return the pack's zones by code (empty without zones.yaml); a broken file raises RulesError by line."""
        path = self.path / "zones.yaml"
        return load_zones(path, self.aliases) if path.exists() else {}

    @cached_property
    def alert_rules(self) -> AlertRules:
        """Return the pack's validated early-warning rules (none without alerts.yaml); a broken file raises."""
        path = self.path / "alerts.yaml"
        if not path.exists():
            return AlertRules((), self.zones, self.timezone)
        # A rule's ``notify`` must name a policy once the pack has notifications.yaml (without one, nothing is sent
        # and the names are not checked: a pack may ship its rules before its contacts).
        # A notifications.yaml with only ``briefings:`` has shipped no alert contacts yet: likewise unchecked.
        names = set(self.notification_policies) or None
        return load_alert_rules(path, self.aliases, self.zones, self.kinds, tz=self.timezone, policies=names)

    @cached_property
    def holidays(self) -> Holidays:
        """Return the pack's public holidays and make-up working days (none without holidays.yaml); a broken file
        raises RulesError by line."""
        path = self.path / "holidays.yaml"
        return load_holidays(path) if path.exists() else Holidays()

    @cached_property
    def notification_policies(self) -> dict[str, Policy]:
        """Return the pack's notification policies by id (none without notifications.yaml); a broken file raises."""
        path = self.path / "notifications.yaml"
        return load_policies(path, self.language) if path.exists() else {}

    @cached_property
    def briefing_recipients(self) -> BriefingRecipients:
        """Return who gets the scheduled briefings by mail (nobody without notifications.yaml or its
        ``briefings:`` section); a broken file raises RulesError by line."""
        path = self.path / "notifications.yaml"
        return load_briefing_recipients(path, self.by_code, self.language) if path.exists() else BriefingRecipients()

    @cached_property
    def rosters(self) -> Rosters:
        """Return the pack's validated duty rosters and escalation policies (none without rosters.yaml); a broken
        file raises RulesError by line."""
        path = self.path / "rosters.yaml"
        if not path.exists():
            return Rosters({}, {}, self.timezone)
        return load_rosters(path, [d["code"] for d in self.departments], tz=self.timezone, lang=self.language)

    @cached_property
    def procedures(self) -> Procedures:
        """Return the pack's standard procedures by incident kind (none without procedures.yaml); a broken file
        raises RulesError by line."""
        path = self.path / "procedures.yaml"
        if not path.exists():
            return Procedures({})
        return load_procedures(path, [d["code"] for d in self.departments])


def load_city(name_or_path: str, tz: str | None = None) -> City:
    """Load a city pack by its name under ``dashboard/cities`` or by a folder path; ``tz`` (PANORAMA_TZ)
    overrides the zone its city.yaml names."""
    path = Path(name_or_path)
    if not path.is_dir():
        path = PACKS_DIR / name_or_path
    manifest = path / "city.yaml"
    if not manifest.exists():
        raise ValueError(f"no city pack at {path} (expected {manifest.name})")
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    kinds = data.get("kinds") or SPEC_KINDS
    districts = tuple(
        District(
            code=str(d["code"]),
            slug=d["slug"],
            name=d["name"],
            name_en=d["name_en"],
            population=int(d["population"]),
            lat=float(d["center"]["lat"]),
            lon=float(d["center"]["lon"]),
            streets=tuple(_street(s, d["code"], manifest) for s in d.get("streets", [])),
        )
        for d in data["districts"]
    )
    return City(
        slug=data["slug"],
        name=data["name"],
        name_en=data["name_en"],
        timezone=city_timezone(data.get("timezone"), tz, manifest),
        lat=float(data["center"]["lat"]),
        lon=float(data["center"]["lon"]),
        districts=districts,
        path=path,
        kinds=frozenset(str(k) for ks in kinds.values() for k in ks),
        centres=load_centres(data.get("centres"), manifest),
        language=city_language(data.get("language"), manifest),
    )


def city_language(value, manifest: Path | str = "city.yaml") -> str:
    """Return the city's language for messages (``language:`` of city.yaml): ``zh`` (the default) or ``en``."""
    if value is None:
        return "zh"
    if value not in ("zh", "en"):
        raise ValueError(f"{manifest}: language {value!r} is not one of 'zh' or 'en'")
    return value


# A street's English name is its pinyin, as Shenzhen's own English signs spell it (Xiangmihu, Huaqiangbei):
# Latin letters, apostrophes between syllables (Bao'an), spaces and hyphens; no tone marks.
_PINYIN = re.compile(r"[A-Z][A-Za-z]*(?:['\- ][A-Za-z]+)*")


def _street(s: dict, district: str, manifest: Path) -> Street:
    """Return one street of a district's registry; each must have its English (pinyin) name."""
    s = dict(s)
    center = s.pop("center", None)
    if center is not None:
        try:
            s["lat"], s["lon"] = float(center["lat"]), float(center["lon"])
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"{manifest}: street {s.get('name')} of district {district}: center must be "
                             f"{{lat: <degrees>, lon: <degrees>}}, not {center!r}") from None
    try:
        street = Street(**s)
    except TypeError as err:
        raise ValueError(f"{manifest}: street {s.get('name')} of district {district}: {err} (a street takes name, "
                         "name_en, code and center)") from None
    if not street.name:
        raise ValueError(f"{manifest}: a street of district {district} has no name")
    if not _PINYIN.fullmatch(street.name_en or ""):
        raise ValueError(f"{manifest}: street {street.name} of district {district} needs its English (pinyin) name "
                         f"as name_en (Latin letters, e.g. Xiangmihu), not {street.name_en!r}")
    return street


def city_timezone(pack_tz: str | None, override: str | None, manifest: Path | str = "city.yaml") -> str:
    """Return the city's zone: ``override`` (PANORAMA_TZ) when set, else the pack's; either must be an IANA name."""
    name = override or pack_tz
    if not name:
        raise ValueError(f"{manifest} names no timezone (e.g. timezone: Asia/Shanghai) and PANORAMA_TZ is not set")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} ({'PANORAMA_TZ' if override else manifest})") from None
    return name
