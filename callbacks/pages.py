"""The page registry: each page's path, the permission it needs, its tab title and how it is drawn.

Read by the access rules (``dashboard.web.auth``, given ``permissions()`` at app creation) and by the router;
each page's render function sits beside its callbacks in ``callbacks/<page>.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from callbacks import briefings, dispatch, district, login, mobile, panorama


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
    its title's text key and its render function."""

    path: str
    permission: str | None
    title: str
    render: Callable[[Request], Any]
    under: bool = False

    def matches(self, path: str) -> bool:
        """Tell whether this page draws ``path``."""
        return path == self.path or (self.under and path.startswith(self.path + "/"))


PAGES: tuple[Page, ...] = (
    Page("/", "view", "page_panorama", panorama.render),
    Page("/wall", "view", "page_wall", panorama.render_wall),  # or a live kiosk token: auth.page_access
    Page("/district", "view", "page_district", district.render, under=True),
    Page("/dispatch", "dispatch", "page_dispatch", dispatch.render),
    Page("/m", "command", "page_mobile", mobile.render),
    Page("/briefings", "view", "page_briefings", briefings.render, under=True),
    Page("/login", None, "page_login", login.render),
)


def find(path: str) -> Page | None:
    """Return the page that draws ``path`` (normalised: no trailing slash), or None."""
    return next((p for p in PAGES if p.matches(path)), None)


def permissions() -> tuple[tuple[str, str | None], ...]:
    """Return (path, permission) of every page, for the access rules."""
    return tuple((p.path, p.permission) for p in PAGES)
