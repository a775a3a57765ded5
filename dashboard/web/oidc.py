"""Sign in through the city's OpenID Connect provider (SPEC section 13): authorization code with PKCE, by authlib.

``GET /auth/oidc/login`` starts it (state, nonce and the PKCE verifier kept in the session), the provider sends
the browser back to ``/auth/oidc/callback``, which checks the state, exchanges the code, verifies the ID token
(signature by the provider's JWKS, issuer, audience, expiry, nonce), reads role, department and district from
the claims (``dashboard.core.sso``), creates or updates the local user and signs it in with the same session and
CSRF token as ``POST /api/session``. ``GET /auth/oidc/logout`` sends the browser to the provider's end-session.
Whatever is refused gets a page in the reader's language with its status, never a 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, current_app, redirect, request, session, url_for
from joserfc.errors import JoseError
from markupsafe import escape

from dashboard.core.i18n import html_lang, pick
from dashboard.core.roles import landing
from dashboard.core.sso import ClaimMapping, ClaimsRefused, map_claims, parse_mapping
from dashboard.storage import users as store
from dashboard.web.auth import safe_next, start_session
from dashboard.web.first_paint import lang_of

log = logging.getLogger(__name__)

bp = Blueprint("oidc", __name__, url_prefix="/auth/oidc")
EXTENSION = "panorama_oidc"
CLIENT = "city"
# Seconds one call to the provider (discovery, keys, token, userinfo) may take.
PROVIDER_TIMEOUT_S = 10
# Clock skew allowed on the ID token's times, in seconds.
LEEWAY_S = 60

_TEXT = {
    "title": ("无法登录", "Cannot sign in"),
    "no_role": ("您的统一身份账号没有分配本系统的角色，请联系管理员开通。",
                "Your city identity has no role in Panorama. Ask an administrator to grant you one."),
    "bad_department": ("统一身份认证提供的部门不在本市部门名录中（或联络员缺少部门），请联系管理员。",
                       "The identity provider names a department the city does not have (or a liaison without "
                       "one). Ask an administrator."),
    "bad_district": ("统一身份认证提供的行政区不在本市区划名录中，请联系管理员。",
                     "The identity provider names a district the city does not have. Ask an administrator."),
    "bad_username": ("统一身份认证没有提供可用的用户名，请联系管理员。",
                     "The identity provider gives no usable user name. Ask an administrator."),
    "disabled": ("该账号已停用，请联系管理员。", "This account is disabled. Ask an administrator."),
    "name_taken": ("该用户名已被本系统的其他账号占用，请联系管理员。",
                   "Another Panorama account already has this user name. Ask an administrator."),
    "bad_token": ("身份令牌未通过校验（签名、受众、有效期或随机数），登录已拒绝。请重新登录。",
                  "The identity token failed its checks (signature, audience, expiry or nonce), so the sign-in "
                  "was refused. Sign in again."),
    "state": ("登录请求已失效或与本浏览器不匹配，请重新登录。",
              "This sign-in has expired or does not belong to this browser. Sign in again."),
    "provider_error": ("统一身份认证平台拒绝了本次登录，请重新登录。",
                       "The identity provider refused this sign-in. Sign in again."),
    "unavailable": ("暂时无法连接统一身份认证平台，请稍后再试。",
                    "Cannot reach the city's identity provider right now. Try again later."),
    "not_configured": ("未配置统一身份认证。", "Single sign-on is not configured."),
    "again": ("返回登录页", "Back to sign-in"),
}
# What each refusal answers with.
STATUS = {"no_role": 403, "bad_department": 403, "bad_district": 403, "bad_username": 403, "disabled": 403,
          "name_taken": 409, "bad_token": 401, "state": 400, "provider_error": 401, "unavailable": 503,
          "not_configured": 404}


@dataclass(frozen=True)
class Sso:
    """The app's single sign-on: the provider's client (authlib), its issuer and the claims' mapping."""

    client: object
    issuer: str
    client_id: str
    mapping: ClaimMapping


def text(key: str, lang: str) -> str:
    """Return the single sign-on pages' text ``key`` in ``lang``."""
    return pick(_TEXT, key, lang)


def configured(app=None) -> bool:
    """Tell whether single sign-on is configured on ``app`` (default: the current one)."""
    return EXTENSION in (app or current_app).extensions


def refused(reason: str):
    """Answer the page that says, in the reader's language, why the sign-in was refused."""
    lang = lang_of(request.cookies)
    title, message, again = (escape(text(k, lang)) for k in ("title", reason, "again"))
    page = (f'<!doctype html><html lang="{html_lang(lang)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>'
            f'<body style="font-family: sans-serif; max-width: 36rem; margin: 12vh auto; padding: 0 1rem">'
            f'<main id="sso-refused" data-reason="{reason}"><h1>{title}</h1><p id="sso-reason">{message}</p>'
            f'<p><a id="sso-again" href="/login">{again}</a></p></main></body></html>')
    return page, STATUS[reason], {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}


def _sso() -> Sso:
    return current_app.extensions[EXTENSION]


@bp.get("/login")
def login():
    """Send the browser to the provider, keeping where it goes afterwards (``next``, a path of this site)."""
    if not configured():
        return refused("not_configured")
    sso = _sso()
    try:
        _check_issuer(sso)
        response = sso.client.authorize_redirect(url_for("oidc.callback", _external=True))
    except (requests.RequestException, ValueError, KeyError) as err:
        log.warning("identity provider unreachable or misconfigured: %s", err)
        return refused("unavailable")
    session["oidc_next"] = safe_next(request.args.get("next"))
    response.headers["Cache-Control"] = "no-store"
    return response


def _check_issuer(sso: Sso) -> None:
    # The discovery document must be the configured issuer's own: authlib checks the token's "iss" against it.
    found = sso.client.load_server_metadata().get("issuer")
    if not isinstance(found, str) or found.rstrip("/") != sso.issuer.rstrip("/"):
        raise ValueError(f"the discovery document names issuer {found!r}, not {sso.issuer!r}")


def _claims(sso: Sso) -> dict:
    """Return the verified ID token's claims, completed by the userinfo endpoint's (the same ``sub``)."""
    _check_issuer(sso)
    token = sso.client.authorize_access_token(leeway=LEEWAY_S)
    claims = dict(token.get("userinfo") or {})
    if not claims.get("sub"):
        raise OAuthError(error="no_id_token", description="the provider sent no ID token")
    if sso.client.load_server_metadata().get("userinfo_endpoint"):
        extra = dict(sso.client.userinfo(token=token))
        if extra.get("sub") != claims["sub"]:
            raise OAuthError(error="userinfo_sub", description="userinfo is another subject's")
        claims = {**extra, **claims}  # what the signed ID token says wins
    return claims


@bp.get("/callback")
def callback():
    """End the sign-in the provider sent back: verify, map the claims, sign the user in, go on to ``next``."""
    if not configured():
        return refused("not_configured")
    sso = _sso()
    try:
        claims = _claims(sso)
    except MismatchingStateError:
        log.warning("single sign-on refused: unknown or replayed state, ip=%s", request.remote_addr)
        return refused("state")
    except JoseError as err:
        log.warning("single sign-on refused: ID token %s (%s), ip=%s", type(err).__name__, err, request.remote_addr)
        return refused("bad_token")
    except OAuthError as err:
        log.warning("single sign-on refused by the provider: %s, ip=%s", err, request.remote_addr)
        return refused("provider_error")
    except (requests.RequestException, ValueError, KeyError) as err:
        log.warning("identity provider unreachable or answering nonsense: %s", err)
        return refused("unavailable")
    svc = current_app.extensions["panorama"]
    try:
        who = map_claims(claims, sso.mapping, [d["code"] for d in svc.city.departments],
                         lambda name: getattr(svc.city.resolve(name), "code", None))
        user = store.sso_sign_in(svc.engine, f"{claims['iss']} {claims['sub']}", who.username, who.role,
                                 who.department, who.district)
    except ClaimsRefused as err:
        log.warning("single sign-on refused: sub=%r %s", claims.get("sub"), err)
        return refused(err.reason)
    except store.UserError as err:
        log.warning("single sign-on refused: sub=%r %s", claims.get("sub"), err)
        return refused("name_taken")
    if not user.active:
        log.warning("single sign-on refused: user=%r is disabled", user.username)
        return refused("disabled")
    next_path = session.get("oidc_next") or "/"
    start_session(user, sso=True)
    log.info("signed in (single sign-on): user=%r role=%s district=%s ip=%s", user.username, user.role,
             user.district, request.remote_addr)
    response = redirect(next_path if next_path != "/" else landing(user.role))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/logout")
def logout():
    """Send the browser to the provider's end-session (its own sign-out), which comes back to the sign-in page.

    Signing out of Panorama is ``DELETE /api/session``; this only takes the browser on to the provider, and
    answers the sign-in page when the provider has no end-session endpoint.
    """
    if not configured():
        return refused("not_configured")
    sso = _sso()
    back = request.host_url + "login"
    try:
        endpoint = sso.client.load_server_metadata().get("end_session_endpoint")
    except (requests.RequestException, ValueError) as err:
        log.warning("identity provider unreachable: %s", err)
        endpoint = None
    if not endpoint:
        return redirect("/login")
    sep = "&" if "?" in endpoint else "?"
    return redirect(endpoint + sep + urlencode({"client_id": sso.client_id, "post_logout_redirect_uri": back}))


def init_app(server) -> None:
    """Register the routes; with PANORAMA_OIDC_ISSUER set, the provider's client (discovery from the issuer, when
    first needed) and the claims' mapping, both read now."""
    server.register_blueprint(bp)
    cfg = server.config
    issuer = cfg.get("PANORAMA_OIDC_ISSUER")
    if not issuer:
        return
    mapping = parse_mapping(cfg.get("PANORAMA_OIDC_CLAIMS"), cfg.get("PANORAMA_OIDC_ROLE_MAP"))
    # One registry per app, not a module's: two apps (tests, workers) never share a provider's client.
    oauth = OAuth(server)
    client = oauth.register(
        CLIENT, client_id=cfg["PANORAMA_OIDC_CLIENT_ID"], client_secret=cfg["PANORAMA_OIDC_CLIENT_SECRET"],
        server_metadata_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": cfg["PANORAMA_OIDC_SCOPE"], "code_challenge_method": "S256",
                       "default_timeout": PROVIDER_TIMEOUT_S})
    server.extensions[EXTENSION] = Sso(client, issuer, cfg["PANORAMA_OIDC_CLIENT_ID"], mapping)
