"""Map an identity provider's claims to a Panorama user: name, role, department and district (SPEC section 13)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from dashboard.core.roles import ROLES

FIELDS = ("username", "role", "department", "district")
# The claim each field is read from unless PANORAMA_OIDC_CLAIMS names another; a dotted name reads a nested
# claim (Keycloak's "realm_access.roles").
DEFAULT_CLAIMS = {"username": "preferred_username", "role": "panorama_role",
                  "department": "panorama_department", "district": "panorama_district"}
# When the claims give several roles, the first of these wins.
ROLE_PRECEDENCE = ("admin", "commander", "officer", "liaison", "viewer")
MAX_USERNAME = 64


class ClaimsRefused(ValueError):
    """Claims that make no Panorama user; ``reason`` says why, as a key of the refusal page's words."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class ClaimMapping:
    """Which claim gives each field, and what the provider's role values mean (empty: they are role names)."""

    claims: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CLAIMS))
    roles: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Identity:
    """Who the claims say the user is, every field checked."""

    username: str
    role: str
    department: str | None
    district: str | None


def _pairs(setting: str | None, name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (setting or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{name}: {part!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def parse_mapping(claims: str | None, role_map: str | None) -> ClaimMapping:
    """Read PANORAMA_OIDC_CLAIMS ("field=claim,...", over the defaults) and PANORAMA_OIDC_ROLE_MAP ("value=role,...");
    a field or role that does not exist is a ValueError, at start."""
    names = {**DEFAULT_CLAIMS, **_pairs(claims, "PANORAMA_OIDC_CLAIMS")}
    unknown = set(names) - set(FIELDS)
    if unknown:
        raise ValueError(f"PANORAMA_OIDC_CLAIMS: no field {', '.join(sorted(unknown))}; fields: {', '.join(FIELDS)}")
    roles = _pairs(role_map, "PANORAMA_OIDC_ROLE_MAP")
    wrong = sorted(set(roles.values()) - set(ROLES))
    if wrong:
        raise ValueError(f"PANORAMA_OIDC_ROLE_MAP: no role {', '.join(wrong)}; roles: {', '.join(ROLES)}")
    return ClaimMapping(names, roles)


def claim(claims: Mapping[str, Any], name: str) -> Any:
    """Return the claim ``name`` (dotted: nested), or None."""
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def _one(value: Any, reason: str) -> str | None:
    values = _values(value)
    if value is not None and len(values) != 1:
        raise ClaimsRefused(reason, f"one text value expected, not {value!r}"[:200])
    return values[0].strip() or None if values else None


def role_of(value: Any, mapping: ClaimMapping) -> str | None:
    """Return the role the provider's role claim gives (a value or a list of them), the strongest of several."""
    found = {mapping.roles.get(v) if mapping.roles else v for v in _values(value)}
    return next((role for role in ROLE_PRECEDENCE if role in found), None)


def map_claims(claims: Mapping[str, Any], mapping: ClaimMapping, departments: Iterable[str],
               resolve_district: Callable[[str], str | None]) -> Identity:
    """Return the user ``claims`` describe, or raise ClaimsRefused: no role, a liaison without a department, a
    department or district the city pack does not have, no usable name. ``resolve_district`` turns a code or
    name into the registry's code (None: not a district)."""
    names = mapping.claims
    role = role_of(claim(claims, names["role"]), mapping)
    if role is None:
        raise ClaimsRefused("no_role", f"claim {names['role']!r} gives no role")
    username = _one(claim(claims, names["username"]), "bad_username") or _one(claims.get("sub"), "bad_username")
    if not username or len(username) > MAX_USERNAME:
        raise ClaimsRefused("bad_username", f"claim {names['username']!r} gives no name of 1 to {MAX_USERNAME}")
    department = _one(claim(claims, names["department"]), "bad_department")
    if department is not None and department not in set(departments):
        raise ClaimsRefused("bad_department", f"unknown department {department!r}")
    if role == "liaison" and department is None:
        raise ClaimsRefused("bad_department", "a liaison needs a department")
    district = _one(claim(claims, names["district"]), "bad_district")
    if district is not None:
        code = resolve_district(district)
        if code is None:
            raise ClaimsRefused("bad_district", f"unknown district {district!r}")
        district = code
    return Identity(username, role, department, district)
