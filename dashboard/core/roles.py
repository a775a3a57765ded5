"""Who may do what: the roles, the permissions that stand for them, and the one check every layer uses."""

from __future__ import annotations

from typing import Iterable, Protocol

ROLES = ("viewer", "officer", "commander", "liaison", "admin")

# permission -> the roles that have it (admin is implied everywhere)
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "view": ROLES,                                       # the panorama, districts, briefings
    "dispatch": ("officer", "commander", "liaison"),     # /dispatch, task transitions
    "command": ("officer", "commander"),                 # /m, acknowledge / escalate / approve
    "brief": ("officer", "commander"),                   # generate a briefing now (reading one is "view")
    "admin": (),                                         # users, kiosk tokens
}


class Actor(Protocol):
    """Whoever acts: a signed-in user (``dashboard.storage.users.User``) or anything shaped like one."""

    role: str
    active: bool


def expand(names: Iterable[str]) -> set[str]:
    """Return the roles that ``names`` (roles or permissions) stand for; an unknown name is a ValueError."""
    roles: set[str] = set()
    for name in names:
        if name in PERMISSIONS:
            roles.update(PERMISSIONS[name])
        elif name in ROLES:
            roles.add(name)
        else:
            raise ValueError(f"not a role or permission: {name!r}")
    return roles


def check_role(user: Actor | None, *names: str) -> bool:
    """Tell whether ``user`` has one of ``names`` (role or permission names); admin always does."""
    if user is None or not user.active:
        return False
    return user.role == "admin" or user.role in expand(names)
