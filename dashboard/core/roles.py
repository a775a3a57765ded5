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


# role -> where signing in leads when no page was asked for: (on a desk, on a phone). One table, read by the
# sign-in page (callbacks/login.py hands it to the browser, which alone knows whether it is a phone:
# assets/nav.js) and checked against the page registry by tests/test_nav.py.
# * viewer, admin: the city panorama.
# * officer: the panorama too, "the officer's desktop" (SPEC section 5), where incidents are drilled into;
#   /dispatch is one click away in the navigation.
# * commander: the panorama at a desk; on a phone, /m ("wherever the commander is, there is the command post").
# * liaison: /dispatch, which shows a liaison their own department's task board and nothing else of the city's.
LANDING: dict[str, tuple[str, str]] = {
    "viewer": ("/", "/"),
    "officer": ("/", "/"),
    "commander": ("/", "/m"),
    "liaison": ("/dispatch", "/dispatch"),
    "admin": ("/", "/"),
}


def landing(role: str, phone: bool = False) -> str:
    """Return the page ``role`` lands on after signing in with no page asked for (``phone``: a phone's)."""
    desk, mobile = LANDING.get(role, ("/", "/"))
    return mobile if phone else desk
