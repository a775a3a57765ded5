"""Resolve a district as publishers and rules files write it (code, slug or name) to its registry code."""

from __future__ import annotations

from typing import Mapping

from pydantic import ValidationInfo


def district_code(v: str, districts: Mapping[str, str]) -> str | None:
    """Return the registry code of a district code, slug or name (``districts``: the city's aliases), or None."""
    return districts.get(v) or districts.get(v.lower())


def resolve_district(v: str, info: ValidationInfo) -> str:
    """Validate a district code, slug or name against ``context["districts"]`` and return its code."""
    districts = (info.context or {}).get("districts")
    if districts is None:
        return v
    code = district_code(v, districts)
    if code is None:
        raise ValueError(f"unknown district {v[:64]!r}")
    return code
