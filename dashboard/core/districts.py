"""Resolve a district as publishers and rules files write it (code, slug or name) to its registry code."""

from __future__ import annotations

from pydantic import ValidationInfo


def resolve_district(v: str, info: ValidationInfo) -> str:
    """Validate a district code, slug or name against ``context["districts"]`` and return its code."""
    districts = (info.context or {}).get("districts")
    if districts is None:
        return v
    code = districts.get(v) or districts.get(v.lower())
    if code is None:
        raise ValueError(f"unknown district {v[:64]!r}")
    return code
