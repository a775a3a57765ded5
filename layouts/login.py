"""Lay out the sign-in page and the page shown to a signed-in user without the role for a page."""

from __future__ import annotations

from urllib.parse import urlencode

from dash import dcc, html

from dashboard.core.i18n import pick, t
from dashboard.core.roles import LANDING
from layouts.common import lang_toggle, panel, topbar

_TEXT = {
    "login_title": ("登录", "Sign in"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "submit": ("登录", "Sign in"),
    "signing_in": ("正在登录…", "Signing in…"),
    "bad_credentials": ("用户名或密码错误，或账号已停用", "Wrong username or password, or the account is disabled"),
    "too_many": ("失败次数过多，请 {s} 秒后再试", "Too many failed attempts — try again in {s} s"),
    "failed": ("无法登录，请稍后再试", "Cannot sign in right now — try again later"),
    "forbidden_title": ("无权访问", "Not allowed"),
    "forbidden": ("当前账号（{role}）无权访问此页面", "Your account ({role}) may not open this page"),
    "switch_user": ("切换账号", "Sign in as someone else"),
    "sso": ("统一身份认证登录", "Sign in with the city's identity"),
    "sso_hint": ("或使用本地账号（应急）", "or with a local account (break-glass)"),
    "signed_out": ("您已退出本系统。", "You are signed out of Panorama."),
    "sso_sign_out": ("同时退出统一身份认证平台", "Also sign out of the city's identity provider"),
}
# Texts the clientside sign-in needs, by key.
CLIENT_KEYS = ("signing_in", "bad_credentials", "too_many", "failed")
# The page is centred without touching the shared stylesheet.
_BOX = {"maxWidth": "22rem", "margin": "12vh auto 0", "display": "flex", "flexDirection": "column", "gap": ".6rem"}
_FIELD = {"padding": ".45rem .6rem", "fontSize": "1rem"}


def text(key: str, lang: str, **fmt) -> str:
    """Return the sign-in page's text ``key`` in ``lang``."""
    return pick(_TEXT, key, lang, **fmt)


def login_layout(lang: str, next_path: str, sso: bool = False, local: bool = True,
                 signed_out: bool = False) -> html.Div:
    """Return the sign-in form; after signing in the browser goes to ``next_path``, or, when that is the root
    (no page asked for), to the role's landing page (``LANDING``, chosen in the browser: assets/nav.js).

    With ``sso`` (single sign-on configured) it offers the city's identity provider first, and after a sign-out
    of a single sign-on session (``signed_out``) the provider's own sign-out; without ``local`` (password
    accounts turned off) it has no password form.
    """
    parts = []
    if signed_out:
        parts.append(html.P(text("signed_out", lang), id="login-signed-out"))
        if sso:
            parts.append(html.A(text("sso_sign_out", lang), id="login-sso-sign-out", href="/auth/oidc/logout"))
    if sso:
        parts.append(html.A(text("sso", lang), id="login-sso", className="lang-toggle",
                            href="/auth/oidc/login?" + urlencode({"next": next_path}),
                            style={**_FIELD, "color": "inherit", "textAlign": "center", "textDecoration": "none"}))
    if local:
        if sso:
            parts.append(html.P(text("sso_hint", lang), style={"margin": ".6rem 0 0", "opacity": ".8"}))
        parts += [
            html.Label(text("username", lang), htmlFor="login-username"),
            dcc.Input(id="login-username", type="text", autoComplete="username", autoFocus=not sso,
                      debounce=False, style=_FIELD),
            html.Label(text("password", lang), htmlFor="login-password"),
            dcc.Input(id="login-password", type="password", autoComplete="current-password", n_submit=0,
                      style=_FIELD),
            html.Button(text("submit", lang), id="login-submit", n_clicks=0, className="lang-toggle",
                        style={**_FIELD, "color": "inherit"}),
            html.Div(id="login-error", role="alert", style={"minHeight": "1.4em", "color": "#c0392b"}),
            dcc.Store(id="login-context", data={"next": next_path, "landing": LANDING,
                                                "text": {k: text(k, lang) for k in CLIENT_KEYS}}),
        ]
    return html.Div(
        [topbar(lang, t("app_title", lang), lang_toggle(lang)),
         html.Main(panel(text("login_title", lang), *parts, style=_BOX, id="login-panel"))],
        className="page page-login",
    )


def forbidden_layout(lang: str, role: str, login_href: str) -> html.Div:
    """Return the page a signed-in user sees on a page their role may not open."""
    return html.Div(
        [topbar(lang, t("app_title", lang), lang_toggle(lang)),
         html.Main([html.H1(text("forbidden_title", lang), id="forbidden", className="not-found-title"),
                    html.P(text("forbidden", lang, role=role), className="not-found-message"),
                    dcc.Link(t("back_to_city", lang), href="/", className="not-found-link"),
                    html.A(text("switch_user", lang), href=login_href,
                           className="not-found-link", style={"marginLeft": "1rem"})],
                   className="not-found-page")],
        className="page page-not-found",
    )
