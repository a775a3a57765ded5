"""Lay out the page shell shared by every route: location, language, the navigation, the signed-in user's bar,
page container."""

from __future__ import annotations

from typing import Iterable

from dash import dcc, html

from dashboard.web.auth import current_user
from dashboard.core.i18n import pick, t

ROLE_NAMES = {"viewer": ("观察员", "viewer"), "officer": ("值班员", "duty officer"), "commander": ("指挥长", "commander"),
              "liaison": ("部门联络员", "liaison"), "admin": ("管理员", "administrator")}
_TEXT = {"sign_out": ("退出", "Sign out")}


def user_bar(user, lang: str = "zh") -> html.Aside | None:
    """Return the bar with the signed-in user's name, role and sign-out button (None when nobody is signed in).

    The shell is drawn once per page load, so its texts follow the language in the browser
    (``user-bar-text``, see callbacks/router.py) rather than on the server.
    """
    if user is None:
        return None
    texts = {lang: {"role": pick(ROLE_NAMES, user.role, lang) if user.role in ROLE_NAMES else user.role,
                    "sign_out": pick(_TEXT, "sign_out", lang)} for lang in ("zh", "en")}
    # A landmark of its own, so that nothing on the page sits outside one (axe's "region").
    return html.Aside([
        html.Span(user.username, id="user-name", className="user-name"),
        html.Span(texts[lang]["role"], id="user-role", className="user-role", **{"data-role": user.role}),
        html.Button(texts[lang]["sign_out"], id="sign-out", n_clicks=0, className="sign-out"),
        dcc.Store(id="user-bar-text", data=texts),
    ], id="user-bar", className="user-bar", **{"aria-label": user.username})


def nav_bar(links: Iterable[tuple[str, str, str, bool]], lang: str = "zh") -> html.Nav | None:
    """Return the navigation: one link per (href, title key, id, current) of ``links``, the current page marked
    ``aria-current="page"``; None when there is nothing to link to.

    Plain anchors, so that they can carry aria-current (dcc.Link takes no aria-* prop); assets/nav.js follows
    a plain click inside the app, as dcc.Link would, and anything else (a new tab, no script) loads the page.
    """
    items = [html.Li(html.A(t(key, lang), href=href, id=link_id, className="shell-nav-link",
                            **({"aria-current": "page"} if current else {})))
             for href, key, link_id, current in links]
    if not items:
        return None
    return html.Nav(html.Ul(items, className="shell-nav-list"), className="shell-nav",
                    **{"aria-label": t("nav_label", lang)})


def shell(lang: str = "zh") -> html.Div:
    """Return the outer layout, its texts in ``lang`` until the browser's choice switches them (the server's
    first paint knows the choice from a cookie); the router callback fills ``page``."""
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            # The language choice survives reloads in the browser, never on the server.
            dcc.Store(id="lang", storage_type="local", data="zh"),
            # At the top of every page: the navigation (drawn by the router with the page, which knows the
            # path: callbacks/router.py) and the user's bar; neither on the wall (assets/shell.css).
            html.Div([html.Div(id="shell-nav", className="shell-nav-slot"), user_bar(current_user(), lang)],
                     className="shell-top"),
            html.Div(id="page"),
            # The tab's title, set by the router from the page registry (callbacks/pages.py).
            html.Div(id="page-title", hidden=True),
        ]
    )
