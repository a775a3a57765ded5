"""The page registry: each page's path, the permission it needs, its tab title and how it is drawn.

Read by the access rules (``dashboard.web.auth``, given ``permissions()`` at app creation) and by the router;
each page's render function sits beside its callbacks in ``callbacks/<page>.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from callbacks import (alerts_page, briefings, dispatch, district, login, mobile, notifications, open_data, panorama,
                       rosters)
from dashboard.core.roles import check_role


@dataclass(frozen=True)
class Request:
    """What a page's render function gets: the services, the path asked for, language, query and now."""

    svc: Any
    path: str
    lang: str
    search: str | None
    now: int


@dataclass(frozen=True)
class Page:
    """One page: ``path`` (with ``under``, also every path below it), the permission it needs (None: public),
    its title's text key (also its label in the shell's navigation), its render function, and whether the
    navigation links to it (``nav``)."""

    path: str
    permission: str | None
    title: str
    render: Callable[[Request], Any]
    under: bool = False
    nav: bool = False

    @property
    def nav_id(self) -> str:
        """Return the id of this page's link in the navigation (``nav-briefings`` for the briefings)."""
        return "nav-" + self.title.removeprefix("page_")

    def matches(self, path: str) -> bool:
        """Tell whether this page draws ``path``."""
        return path == self.path or (self.under and path.startswith(self.path + "/"))


# The navigation links to the pages a person opens to work in; not the wall (a kiosk's screen, with no way
# back), a district (opened from the map) nor the sign-in page.
PAGES: tuple[Page, ...] = (
    Page("/", "view", "page_panorama", panorama.render, nav=True),
    Page("/wall", "view", "page_wall", panorama.render_wall),  # or a live kiosk token: auth.page_access
    Page("/district", "view", "page_district", district.render, under=True),
    Page("/dispatch", "dispatch", "page_dispatch", dispatch.render, nav=True),
    Page("/m", "command", "page_mobile", mobile.render, nav=True),
    Page("/alerts", "command", "page_alerts", alerts_page.render, nav=True),  # the trail and silences
    Page("/briefings", "view", "page_briefings", briefings.render, under=True, nav=True),
    # The delivery log names the people told (mailboxes, numbers): officers, commanders, admins.
    Page("/notifications", "command", "page_notifications", notifications.render, nav=True),
    Page("/rosters", "view", "page_rosters", rosters.render, nav=True),
    Page("/login", None, "page_login", login.render),
    Page("/open", None, "page_open", open_data.render),  # the open data's licence and fields: for anyone
)
# Pages drawn without the navigation: the wall (nobody's desk) and signing in.
BARE = ("/wall", "/login")


def find(path: str) -> Page | None:
    """Return the page that draws ``path`` (normalised: no trailing slash), or None."""
    return next((p for p in PAGES if p.matches(path)), None)


def nav_pages(user, path: str) -> list[tuple[Page, bool]]:
    """Return the pages the navigation links to for ``user`` (those their role may open), each with whether it
    draws ``path``; none on the wall, the sign-in page, or for nobody signed in."""
    path = (path or "/").rstrip("/") or "/"
    if user is None or any(path == bare or path.startswith(bare + "/") for bare in BARE):
        return []
    return [(p, p.matches(path)) for p in PAGES if p.nav and p.permission and check_role(user, p.permission)]


def permissions() -> tuple[tuple[str, str | None], ...]:
    """Return (path, permission) of every page, for the access rules."""
    return tuple((p.path, p.permission) for p in PAGES)
