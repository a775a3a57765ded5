"""Sign people in and decide who may do what: sessions, roles, CSRF, page access, kiosk tokens.

The role policy lives here and only here: ``PERMISSIONS`` names what can be done and lists the
roles that may do it, ``PAGES`` says which permission each page needs. ``admin`` passes every check.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, quote

import flask_login
import redis
from flask import Blueprint, current_app, has_request_context, jsonify, redirect, request, session

from dashboard import users as store
from dashboard.users import ROLES, User

__all__ = ["ROLES", "PERMISSIONS", "PAGES", "User", "init_app", "require", "current_user", "check_role",
           "page_access", "safe_next", "login_url"]

log = logging.getLogger(__name__)

# permission -> the roles that have it (admin is implied everywhere)
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "view": ROLES,                                       # the panorama, districts, briefings
    "dispatch": ("officer", "commander", "liaison"),     # /dispatch, task transitions
    "command": ("officer", "commander"),                 # /m, acknowledge / escalate / approve
    "admin": (),                                         # users, kiosk tokens
}
# page -> the permission it needs; a prefix matches itself and everything under it. /login is public.
PAGES: tuple[tuple[str, str], ...] = (
    ("/wall", "view"),          # or a valid kiosk token: see page_access
    ("/dispatch", "dispatch"),
    ("/m", "command"),
    ("/briefings", "view"),
    ("/district", "view"),
)
PUBLIC_PAGES = ("/login",)
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"
_DASH_INDEX = ("/", "/<path:path>")  # the endpoints Dash serves its page shell from
_FAIL_KEY = "panorama:auth:failures:{user}:{ip}"

bp = Blueprint("auth", __name__, url_prefix="/api")
login_manager = flask_login.LoginManager()


def error(status: int, code: str, message: str, **headers):
    """Return a response in the SPEC section 6 error shape."""
    return jsonify({"error": {"code": code, "message": message}}), status, headers


def current_user() -> User | None:
    """Return the signed-in user of this request (Dash callbacks included), or None."""
    if not has_request_context():
        return None
    user = flask_login.current_user
    return user if isinstance(user, User) else None


def check_role(user: User | None, *roles: str) -> bool:
    """Tell whether ``user`` has one of ``roles`` (role or permission names); admin always does."""
    if user is None or not user.active:
        return False
    return user.role == "admin" or user.role in _expand(roles)


def _expand(names) -> set[str]:
    roles: set[str] = set()
    for name in names:
        if name in PERMISSIONS:
            roles.update(PERMISSIONS[name])
        elif name in ROLES:
            roles.add(name)
        else:
            raise ValueError(f"not a role or permission: {name!r}")
    return roles


def require(*roles: str):
    """Guard a Flask view: signed in (401), one of ``roles`` (403), the CSRF header on writes (403).

    Each name is a role of ``ROLES`` or a permission of ``PERMISSIONS`` (which stands for its roles);
    with no names any signed-in user passes. Unknown names fail at import, not at request time.
    """
    allowed = _expand(roles) if roles else set(ROLES)

    def decorate(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            user = current_user()
            if user is None:
                return error(401, "not_signed_in", "sign in first: POST /api/session")
            if not check_role(user, *allowed):
                return error(403, "forbidden", f"the {user.role} role may not do this")
            if request.method in STATE_CHANGING and not _csrf_ok():
                return error(403, "csrf", f"missing or wrong {CSRF_HEADER} header")
            return view(*args, **kwargs)

        return guarded

    return decorate


def _csrf_ok() -> bool:
    expected = session.get("csrf_token")
    sent = request.headers.get(CSRF_HEADER, "")
    return bool(expected) and hmac.compare_digest(expected, sent)


def page_permission(path: str) -> str | None:
    """Return the permission a page needs, None for a public page."""
    path = (path or "/").rstrip("/") or "/"
    if path in PUBLIC_PAGES:
        return None
    for prefix, permission in PAGES:
        if path == prefix or path.startswith(prefix + "/"):
            return permission
    return "view"  # the panorama and any other page (unknown ones get not-found once signed in)


def page_access(path: str, kiosk_token: str | None = None) -> str:
    """Return ``"ok"``, ``"login"`` (anonymous) or ``"forbidden"`` (signed in, wrong role) for a page."""
    permission = page_permission(path)
    if permission is None:
        return "ok"
    user = current_user()
    if user is None:
        wall = (path or "/").rstrip("/") == "/wall"
        if wall and kiosk_token and store.kiosk_token_valid(current_app.extensions["panorama"].engine, kiosk_token):
            return "ok"
        return "login"
    return "ok" if check_role(user, permission) else "forbidden"


def kiosk_token_of(search: str | None) -> str | None:
    """Return the ``token`` of a query string (with or without its ``?``)."""
    values = parse_qs((search or "").lstrip("?")).get("token")
    return values[0] if values else None


def safe_next(value: str | None) -> str:
    """Return ``value`` when it is a path on this site, else ``/`` (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or "\n" in value:
        return "/"
    return value


def login_url(next_path: str) -> str:
    """Return the sign-in page's URL that comes back to ``next_path``."""
    return "/login?next=" + quote(safe_next(next_path), safe="/")


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    try:
        user = store.get_user(current_app.extensions["panorama"].engine, int(user_id))
    except ValueError:
        return None
    # A disabled user's session stops working at its next request.
    return user if user is not None and user.active else None


@login_manager.unauthorized_handler
def _unauthorized():
    return error(401, "not_signed_in", "sign in first: POST /api/session")


def _failures_key(username: str) -> str:
    return _FAIL_KEY.format(user=username.lower(), ip=request.remote_addr or "-")


def _rate_limited(username: str) -> int:
    """Return the seconds until ``username`` may try again from this address, 0 when it may now."""
    r, cfg = current_app.extensions["panorama"].redis, current_app.config
    key = _failures_key(username)
    try:
        failures = int(r.get(key) or 0)
        if failures >= cfg["PANORAMA_LOGIN_MAX_FAILURES"]:
            return max(int(r.ttl(key)), 1)
    except redis.RedisError:
        # Fail open: with Redis down an operations centre must still be able to sign in.
        log.warning("sign-in rate limit unavailable (Redis down)", exc_info=True)
    return 0


def _record_failure(username: str) -> None:
    r, cfg = current_app.extensions["panorama"].redis, current_app.config
    key = _failures_key(username)
    try:
        if r.incr(key) == 1:
            r.expire(key, cfg["PANORAMA_LOGIN_WINDOW_S"])
    except redis.RedisError:
        log.warning("sign-in failure not counted (Redis down)", exc_info=True)


@bp.post("/session")
def sign_in():
    """Check the credentials; answer the user and the CSRF token, with the session cookie."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("username"), str) \
            or not isinstance(body.get("password"), str):
        return error(400, "bad_request", 'send {"username": ..., "password": ...}')
    username, password = body["username"].strip(), body["password"]
    wait = _rate_limited(username)
    if wait:
        log.warning("sign-in refused (rate limit): user=%r ip=%s", username, request.remote_addr)
        return error(429, "too_many_attempts", f"too many failed sign-ins; try again in {wait} s",
                     **{"Retry-After": str(wait)})
    user = store.authenticate(current_app.extensions["panorama"].engine, username, password)
    if user is None:
        _record_failure(username)
        log.warning("sign-in failed: user=%r ip=%s", username, request.remote_addr)
        return error(401, "bad_credentials", "wrong username or password, or the user is disabled")
    session.clear()  # nothing from before the sign-in survives it
    session.permanent = True
    flask_login.login_user(user)
    session["csrf_token"] = secrets.token_urlsafe(32)
    try:
        current_app.extensions["panorama"].redis.delete(_failures_key(username))
    except redis.RedisError:
        pass
    log.info("signed in: user=%r role=%s ip=%s", user.username, user.role, request.remote_addr)
    return jsonify({"user": user.public(), "csrf_token": session["csrf_token"]})


@bp.get("/session")
def get_session():
    """Answer the signed-in user and the session's CSRF token, or 401."""
    user = current_user()
    if user is None:
        return error(401, "not_signed_in", "not signed in")
    return jsonify({"user": user.public(), "csrf_token": session.get("csrf_token")})


@bp.delete("/session")
def sign_out():
    """Sign out (no CSRF needed: the worst a forged sign-out does is sign someone out)."""
    flask_login.logout_user()
    session.clear()
    return jsonify({"user": None})


def _guard_pages():
    # The page shell itself: an anonymous visitor goes to /login before any page loads.
    if request.endpoint not in _DASH_INDEX or request.method not in ("GET", "HEAD"):
        return None
    if page_access(request.path, request.args.get("token")) == "login":
        query = request.query_string.decode("latin-1")
        return redirect(login_url(request.path + (f"?{query}" if query else "")))
    return None


def init_app(server) -> None:
    """Bind Flask-Login and the session API to the server, and guard the pages."""
    cfg = server.config
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(cfg["PANORAMA_SECURE_COOKIES"]),
        SESSION_COOKIE_NAME="panorama_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=cfg["PANORAMA_SESSION_HOURS"]),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=bool(cfg["PANORAMA_SECURE_COOKIES"]),
    )
    login_manager.init_app(server)
    server.register_blueprint(bp)
    server.before_request(_guard_pages)
