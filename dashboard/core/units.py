"""Response units (SPEC section 11): their statuses and the city pack's fleet (units.yaml), validated."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterable

import yaml

STATUSES = ("available", "en_route", "on_scene", "off_duty")
UNIT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
KIND = re.compile(r"[a-z0-9_]{1,64}")
NAME_MAX = 128


def check_unit(u: dict, departments: Iterable[str], where: str) -> dict:
    """Return one unit of the fleet as stored (id, department, kind, name, name_en, lat, lon); ValueError if bad."""
    if not isinstance(u, dict):
        raise ValueError(f"{where}: a unit is a mapping")
    unit, dep, kind = u.get("unit"), u.get("department"), u.get("kind")
    if not isinstance(unit, str) or not UNIT_ID.fullmatch(unit):
        raise ValueError(f"{where}: unit must match [A-Za-z0-9_-]{{1,64}}")
    if dep not in set(departments):
        raise ValueError(f"{where} ({unit}): unknown department {dep!r}")
    if not isinstance(kind, str) or not KIND.fullmatch(kind):
        raise ValueError(f"{where} ({unit}): kind must match [a-z0-9_]{{1,64}}")
    out = {"unit": unit, "department": dep, "kind": kind}
    for key in ("name", "name_en"):
        value = u.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > NAME_MAX):
            raise ValueError(f"{where} ({unit}): {key} must be text of at most {NAME_MAX} characters")
        out[key] = value
    lat, lon = u.get("lat"), u.get("lon")
    if (lat is None) != (lon is None) or (lat is not None and not _coords(lat, lon)):
        raise ValueError(f"{where} ({unit}): lat and lon must both be valid coordinates, or both absent")
    out["lat"], out["lon"] = lat, lon
    district = u.get("district")  # its home district: the district centre that reads it (SPEC section 13)
    if district is not None and not isinstance(district, str):
        raise ValueError(f"{where} ({unit}): district must be a district code")
    out["district"] = district
    return out


def _coords(lat, lon) -> bool:
    return (all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (lat, lon))
            and -90 <= lat <= 90 and -180 <= lon <= 180)


def load_units(path: Path, departments: Iterable[str]) -> list[dict]:
    """Return the fleet of ``units.yaml``; a broken entry or an id used twice raises ValueError naming it."""
    deps = list(departments)
    items = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("units") or []
    out, seen = [], set()
    for i, u in enumerate(items):
        unit = check_unit(u, deps, f"{path.name}: unit {i + 1}")
        if unit["unit"] in seen:
            raise ValueError(f"{path.name}: unit {unit['unit']!r} is listed twice")
        seen.add(unit["unit"])
        out.append(unit)
    return out
