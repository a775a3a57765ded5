"""Sign people in and decide who may do what: sessions, roles, CSRF, page access, kiosk tokens, socket tickets.

The role policy is ``dashboard.core.roles``: ``PERMISSIONS`` names what can be done and lists the roles that
may do it; the page registry (``callbacks/pages.py``) says which permission each page needs and is handed to
``init_app``. ``admin`` passes every check.
Every state-changing request passes one guard (``_guard_writes``): a foreign Origin is refused, and a
signed-in Dash callback must carry the session's CSRF token, which the page reads from a cookie.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from datetime import timedelta
from typing import Sequence
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import ada_url
import flask_login
from flask import Blueprint, current_app, has_request_context, jsonify, redirect, request, session
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard.core.bus import BUS_ERRORS
from dashboard.core.config import secret_key
from dashboard.storage import users as store
from dashboard.storage.tickets import (TICKET_MAX_AGE_S, issue_ticket, verify_ticket)
from dashboard.core.clock import now_ms
from dashboard.core.roles import PERMISSIONS, ROLES, check_role, expand as _expand
from dashboard.core.scope import CITY, Scope, of_user
from dashboard.storage.users import MAX_USERNAME, User

__all__ = ["ROLES", "PERMISSIONS", "User", "init_app", "require", "current_user", "check_role",
           "page_access", "safe_next", "login_url", "secret_key", "issue_ticket", "verify_ticket", "start_session"]

log = logging.getLogger(__name__)

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"
# The session's CSRF token, readable by the page's scripts: Dash's renderer sends it back as CSRF_HEADER
# on every callback (dash.Dash(csrf_token_name=..., csrf_header_name=...)); another site can read neither.
CSRF_COOKIE = "panorama_csrf"
DASH_WRITES = ("/_dash-update-component",)
# Who may call each Dash callback is declared beside it (``callback_guard.allow``) and enforced by
# ``callback_guard.guard`` right after ``_guard_writes``: only the page shell's are public.
# Write routes guarded otherwise than by require(), and how: the access matrix test holds every other
# write route to its require() roles, so a new write route must either use require() or be listed here.
OPEN_WRITES: dict[tuple[str, str], str] = {
    ("/api/session", "POST"): "sign-in: the credentials are the check (rate-limited)",
    ("/api/session", "DELETE"): "sign-out: ends the caller's own sessions only",
    ("/api/events", "POST"): "HTTP ingest: the bearer token PANORAMA_INGEST_TOKEN",
    ("/api/<path:_rest>", "POST"): "unknown API paths: 404",
    ("/api/<path:_rest>", "PUT"): "unknown API paths: 404",
    ("/api/<path:_rest>", "PATCH"): "unknown API paths: 404",
    ("/api/<path:_rest>", "DELETE"): "unknown API paths: 404",
    ("/api/", "POST"): "unknown API paths: 404",
    ("/api/", "PUT"): "unknown API paths: 404",
    ("/api/", "PATCH"): "unknown API paths: 404",
    ("/api/", "DELETE"): "unknown API paths: 404",
    ("/_dash-update-component", "POST"): "Dash callbacks: the CSRF token here, each callback's declared policy "
                                         "(callback_guard.allow)",
}
# A wall's kiosk token, taken from its entry link (/wall?token=...) into this cookie, so that the token is in
# one address only, once: not in the page's, nor in every ticket fetch and poll that access logs would keep.
# HttpOnly (no script needs it), Lax (the entry link may be followed from another site), site-wide (the API
# and the Dash callbacks read it), long-lived (a wall stays up for months; revoking the token ends it).
KIOSK_COOKIE = "panorama_kiosk"
KIOSK_COOKIE_MAX_AGE_S = 365 * 24 * 3600
_DASH_INDEX = ("/", "/<path:path>")  # the endpoints Dash serves its page shell from
_FAIL_KEY = "panorama:auth:failures:{user}:{ip}"
MAX_PASSWORD = 1024
# safe_next resolves a sign-in's ``next`` against a stand-in for this site: only the origin is compared,
# and only the path that comes out is used, so the real host and scheme do not matter.
_NEXT_BASE = "http://panorama.invalid/"
_NEXT_ORIGIN = "http://panorama.invalid"
_NEXT_MAX = 2048

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

        guarded.panorama_roles = frozenset(allowed)  # what the access matrix test holds the route to
        return guarded

    return decorate


def _csrf_ok() -> bool:
    expected = session.get("csrf_token")
    sent = request.headers.get(CSRF_HEADER, "")
    return bool(expected) and hmac.compare_digest(expected, sent)


def page_permission(path: str) -> str | None:
    """Return the permission a page needs (the registry's, for the page and every path below it), None for a
    public page; any other path needs "view" (unknown ones get not-found once signed in)."""
    path = (path or "/").rstrip("/") or "/"
    for prefix, permission in current_app.extensions["panorama_pages"]:
        if path == prefix or (prefix != "/" and path.startswith(prefix + "/")):
            return permission
    return "view"


def reader_scope(kiosk_token: str | None = None) -> Scope:
    """Return what this request may read (``dashboard.core.scope``): the signed-in user's scope, else a kiosk
    wall's (its token's district, if any: ``kiosk_token``, else the wall's cookie); nobody: the city (what is
    public, as the counts of /api/summary)."""
    user = current_user()
    if user is not None:
        return of_user(user)
    if not has_request_context():
        return CITY
    found = store.kiosk_token(current_app.extensions["panorama"].engine, kiosk_token or kiosk_cookie())
    return CITY if found is None else Scope(district=found[1], wall=True)


def may_watch(kiosk_token: str | None = None) -> bool:
    """Tell whether the request may see live events: a signed-in user who may view, or a live kiosk token
    (``kiosk_token``, else the wall's cookie)."""
    user = current_user()
    if user is not None:
        return check_role(user, "view")
    return store.kiosk_token_valid(current_app.extensions["panorama"].engine, kiosk_token or kiosk_cookie())


def page_access(path: str, kiosk_token: str | None = None) -> str:
    """Return ``"ok"``, ``"login"`` (anonymous) or ``"forbidden"`` (signed in, wrong role) for a page.

    An anonymous wall passes with a live kiosk token: ``kiosk_token``, else the wall's cookie.
    """
    permission = page_permission(path)
    if permission is None:
        return "ok"
    user = current_user()
    if user is None:
        wall = (path or "/").rstrip("/") == "/wall"
        if wall and store.kiosk_token_valid(current_app.extensions["panorama"].engine,
                                            kiosk_token or kiosk_cookie()):
            return "ok"
        return "login"
    return "ok" if check_role(user, permission) else "forbidden"


def kiosk_token_of(search: str | None) -> str | None:
    """Return the ``token`` of a query string (with or without its ``?``)."""
    values = parse_qs((search or "").lstrip("?")).get("token")
    return values[0] if values else None


def kiosk_cookie() -> str | None:
    """Return the kiosk token of this request's wall cookie (see ``_exchange_kiosk_token``), or None."""
    return request.cookies.get(KIOSK_COOKIE) if has_request_context() else None


def _exchange_kiosk_token():
    # A page asked for with ?token=: the token goes into the wall's cookie (when it is a live kiosk token
    # and the page is the wall) and the browser comes back at once to the same address without it, before
    # any page shell is served, so it never shows in the address bar, the history, a Referer or a log again.
    if request.endpoint not in _DASH_INDEX or request.method not in ("GET", "HEAD") or "token" not in request.args:
        return None
    rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
    response = redirect(safe_next(request.path + (f"?{urlencode(rest)}" if rest else "")))
    response.headers["Cache-Control"] = "no-store"
    token = request.args.get("token")
    wall = request.path.rstrip("/") == "/wall"
    if wall and store.kiosk_token_valid(current_app.extensions["panorama"].engine, token):
        response.set_cookie(KIOSK_COOKIE, token, max_age=KIOSK_COOKIE_MAX_AGE_S, path="/", httponly=True,
                            samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def safe_next(value: str | None) -> str:
    """Return where ``value`` leads when it is a page of this site, as a path; else ``/`` (no open redirects).

    Judged by a WHATWG URL parser (ada), the one browsers follow: it drops leading and trailing C0
    controls and spaces and every tab, CR and LF, reads ``\\`` as ``/`` and takes ``//host``, ``/\\host``
    and ``https:host`` for other sites, so what is checked here is what the browser will do. The answer
    is the parsed path, query and fragment, never the raw value; a path that starts with ``//`` (``/.//x``
    parses to one) would itself read as another host, so it is refused too.
    """
    if not value or len(value) > _NEXT_MAX:
        return "/"
    try:
        url = ada_url.URL(value, _NEXT_BASE)
    except ValueError:
        return "/"
    if url.origin != _NEXT_ORIGIN or not url.pathname.startswith("/") or url.pathname.startswith("//"):
        return "/"
    return url.pathname + url.search + url.hash


def login_url(next_path: str) -> str:
    """Return the sign-in page's URL that comes back to ``next_path``."""
    return "/login?next=" + quote(safe_next(next_path), safe="/")


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    try:
        user = store.get_user(current_app.extensions["panorama"].engine, int(user_id))
    except ValueError:
        return None
    # A disabled user's session stops working at its next request, and so does any session signed in
    # before the user's last sign-out (a copied cookie included): its epoch is older than the user's.
    if user is None or not user.active or session.get("epoch", 0) != user.session_epoch:
        session.clear()
        return None
    # Flask re-signs the cookie on every request, so its own lifetime only ends idle sessions; a session in
    # use also ends PANORAMA_SESSION_HOURS after it was signed in (a shift), and the user signs in again.
    lifetime_ms = current_app.config["PANORAMA_SESSION_HOURS"] * 3_600_000
    if now_ms() - session.get("signed_in_ms", 0) > lifetime_ms:
        session.clear()
        return None
    return user


@login_manager.unauthorized_handler
def _unauthorized():
    return error(401, "not_signed_in", "sign in first: POST /api/session")


def _failures_key(username: str) -> str:
    return _FAIL_KEY.format(user=username.lower(), ip=request.remote_addr or "-")


def _count_attempt(username: str) -> int:
    """Count a sign-in attempt of ``username`` from this address; return the seconds to wait, 0 to go ahead.

    The count goes up before the password is checked and the decision is taken on the value it went up
    to, in one MULTI with the window's EXPIRE: parallel attempts cannot all read the same old count and
    all pass, and the right password is refused like any other once the limit is reached.
    """
    cfg = current_app.config
    key = _failures_key(username)
    try:
        # One key, so one slot: a MULTI a cluster takes too.
        pipe = current_app.extensions["panorama"].redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, cfg["PANORAMA_LOGIN_WINDOW_S"], nx=True)  # the window starts at its first attempt
        pipe.ttl(key)
        attempts, _, ttl = pipe.execute()
    except BUS_ERRORS:
        # Fail open: with Redis down an operations centre must still be able to sign in.
        log.warning("sign-in rate limit unavailable (Redis down)", exc_info=True)
        return 0
    if attempts > cfg["PANORAMA_LOGIN_MAX_FAILURES"]:
        return max(int(ttl), 1)
    return 0


def _forget_attempts(username: str) -> None:
    try:
        current_app.extensions["panorama"].redis.delete(_failures_key(username))
    except BUS_ERRORS:
        pass


@bp.post("/session")
def sign_in():
    """Check the credentials; answer the user and the CSRF token, with the session cookie."""
    if not current_app.config["PANORAMA_LOCAL_LOGIN"]:
        return error(403, "local_login_disabled", "password sign-in is turned off (PANORAMA_LOCAL_LOGIN); "
                                                  "sign in through the identity provider: GET /auth/oidc/login")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("username"), str) \
            or not isinstance(body.get("password"), str):
        return error(400, "bad_request", 'send {"username": ..., "password": ...}')
    username, password = body["username"].strip(), body["password"]
    # No account has a longer name (users.create_user); refusing here keeps hostile text out of the
    # rate limit's Redis keys and the log, whose size it would otherwise set.
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        return error(400, "bad_request", f"a username has at most {MAX_USERNAME} characters, "
                                         f"a password at most {MAX_PASSWORD}")
    wait = _count_attempt(username)
    if wait:
        log.warning("sign-in refused (rate limit): user=%r ip=%s", username, request.remote_addr)
        return error(429, "too_many_attempts", f"too many failed sign-ins; try again in {wait} s",
                     **{"Retry-After": str(wait)})
    user = store.authenticate(current_app.extensions["panorama"].engine, username, password)
    if user is None:
        log.warning("sign-in failed: user=%r ip=%s", username, request.remote_addr)
        return error(401, "bad_credentials", "wrong username or password, or the user is disabled")
    start_session(user)
    _forget_attempts(username)
    log.info("signed in: user=%r role=%s ip=%s", user.username, user.role, request.remote_addr)
    return jsonify({"user": user.public(), "csrf_token": session["csrf_token"]})


def start_session(user: User, **extra) -> None:
    """Sign ``user`` in on this request's session: a fresh session (nothing from before survives it), its CSRF
    token, the user's epoch and the time, and ``extra`` (what single sign-on keeps for signing out)."""
    session.clear()
    session.permanent = True
    flask_login.login_user(user)
    session["csrf_token"] = secrets.token_urlsafe(32)
    session["epoch"] = user.session_epoch
    session["signed_in_ms"] = now_ms()
    session.update(extra)


@bp.get("/session")
def get_session():
    """Answer the signed-in user and the session's CSRF token, or 401."""
    user = current_user()
    if user is None:
        return error(401, "not_signed_in", "not signed in")
    return jsonify({"user": user.public(), "csrf_token": session.get("csrf_token")})


@bp.get("/me")
def get_me():
    """Answer who is signed in (SPEC section 13): username, role, department and district, or 401."""
    user = current_user()
    if user is None:
        return error(401, "not_signed_in", "not signed in")
    return jsonify(user.public()), 200, {"Cache-Control": "no-store"}


@bp.delete("/session")
def sign_out():
    """Sign out everywhere: every session of the user ends at once, copies of this cookie included.

    No CSRF token needed (the worst a forged sign-out could do is sign someone out), and another
    site's request is refused by its Origin anyway.
    """
    user = current_user()
    sso = bool(session.get("sso"))
    if user is not None:
        store.end_sessions(current_app.extensions["panorama"].engine, user.id)
        log.info("signed out: user=%r ip=%s", user.username, request.remote_addr)
    flask_login.logout_user()
    session.clear()
    # "sso": the session came from the identity provider, whose own sign-out the sign-in page then offers.
    return jsonify({"user": None, "sso": sso})


@bp.get("/ws-ticket")
def ws_ticket():
    """Answer a websocket ticket for a signed-in user or a live kiosk token (the wall's cookie, or ``?token=``),
    else 401."""
    user = current_user()
    if user is not None:
        # "x": when the session ends (its sign-in plus PANORAMA_SESSION_HOURS), so a socket it opened ends then too.
        subject = {"u": user.id, "e": user.session_epoch,
                   "x": session.get("signed_in_ms", 0) + current_app.config["PANORAMA_SESSION_HOURS"] * 3_600_000}
        # Signed, so the gateway can send a liaison only their department's incidents and tasks ("d"; a liaison
        # without a department is limited to "", nothing) and a district centre's user only their district ("r")
        # without asking the database who they are.
        subject.update(of_user(user).ticket())
    else:
        kiosk = store.kiosk_token(current_app.extensions["panorama"].engine,
                                  request.args.get("token") or kiosk_cookie())
        if kiosk is None:
            return error(401, "not_signed_in", "sign in first, or open the wall with a valid kiosk token")
        subject = {"k": kiosk[0]}
        if kiosk[1] is not None:
            subject["r"] = kiosk[1]  # a district's wall
    ticket = issue_ticket(current_app.secret_key, subject)
    return jsonify({"ticket": ticket, "expires_in": TICKET_MAX_AGE_S}), 200, {"Cache-Control": "no-store"}


def _guard_pages():
    # The page shell itself: an anonymous visitor goes to /login before any page loads.
    if request.endpoint not in _DASH_INDEX or request.method not in ("GET", "HEAD"):
        return None
    if page_access(request.path, request.args.get("token")) == "login":
        query = request.query_string.decode("latin-1")
        return redirect(login_url(request.path + (f"?{query}" if query else "")))
    return None


def _origin_ok() -> bool:
    """Tell whether a write comes from one of this site's pages (or from a tool that sends no Origin).

    Browsers send Origin with every cross-site POST, PUT, PATCH and DELETE; Referer is the fallback.
    """
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        return True  # not a browser: no ambient cookie to abuse, and the other checks still apply
    parts = urlsplit(origin)
    if parts.netloc and parts.netloc.lower() == request.host.lower():
        return True
    allowed = current_app.config.get("PANORAMA_WS_ORIGINS") or ()
    return f"{parts.scheme}://{parts.netloc}" in allowed


def _guard_writes():
    # One place for every state-changing request: the API's, the Dash callbacks' and the sign-in's.
    if request.method not in STATE_CHANGING:
        return None
    if not _origin_ok():
        log.warning("cross-site write refused: %s %s origin=%r ip=%s", request.method, request.path,
                    request.headers.get("Origin") or request.headers.get("Referer"), request.remote_addr)
        return error(403, "cross_site", "this request comes from another site")
    if request.path in DASH_WRITES and current_user() is not None and not _csrf_ok():
        return error(403, "csrf", f"missing or wrong {CSRF_HEADER} header")
    return None


def _csrf_cookie(response):
    # Keep the page's copy of the CSRF token in step with the session (set on sign-in, gone on sign-out).
    token = session.get("csrf_token") if session else None
    sent = request.cookies.get(CSRF_COOKIE)
    cfg = current_app.config
    if token and sent != token:
        response.set_cookie(CSRF_COOKIE, token, max_age=int(cfg["PERMANENT_SESSION_LIFETIME"].total_seconds()),
                            secure=cfg["SESSION_COOKIE_SECURE"], httponly=False, samesite="Lax")
    elif not token and sent:
        response.delete_cookie(CSRF_COOKIE)
    return response


def init_app(server, pages: Sequence[tuple[str, str | None]]) -> None:
    """Bind Flask-Login and the session API to the server, guard ``pages`` ((path, permission) from the page
    registry) and writes, trust configured proxies."""
    for _, permission in pages:
        if permission is not None:
            _expand([permission])  # an unknown permission fails at start, not at request time
    server.extensions["panorama_pages"] = tuple(pages)
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
    server.before_request(_guard_writes)
    server.before_request(_exchange_kiosk_token)
    server.before_request(_guard_pages)
    server.after_request(_csrf_cookie)
    hops = int(cfg.get("PANORAMA_PROXY_HOPS") or 0)
    if hops > 0:
        # Behind that many trusted proxies: the client address (the sign-in rate limit's key), scheme and
        # host come from their X-Forwarded-* headers; with 0 those headers are ignored, so nobody can forge them.
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
