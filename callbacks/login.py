"""The sign-in page: its render function and its callbacks (sign in, sign out)."""

from __future__ import annotations

from urllib.parse import parse_qs

from dash import Input, Output, State, clientside_callback
from flask import current_app

from dashboard.web import auth, oidc
from layouts.login import login_layout

# A full navigation after signing in, so the new session cookie reaches every request of the page: to the page
# asked for, else to the role's landing page (assets/nav.js: only the browser knows whether it is a phone). The
# server already reduced `next` to a path of this site (auth.safe_next); the browser parses it once more with
# its own URL parser and goes only to this origin, so nothing it would rewrite can lead elsewhere.
SIGN_IN_JS = """
async function (nClicks, nSubmit, username, password, ctx) {
    const T = ctx.text;
    try {
        const r = await fetch('/api/session', {
            method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({username: (username || '').trim(), password: password || ''}),
        });
        if (r.ok) {
            let role = '';
            try { role = ((await r.json()).user || {}).role || ''; } catch (e) { /* the landing of nobody: / */ }
            const N = window.dash_clientside.panoramaNav;
            const path = N ? N.destination(ctx.next, role, ctx.landing, N.isPhone(window)) : (ctx.next || '/');
            let next = window.location.origin + '/';
            try {
                const target = new URL(path, window.location.origin);
                if (target.origin === window.location.origin) { next = target.href; }
            } catch (e) { /* not a URL: the panorama */ }
            window.location.assign(next);
            return T.signing_in;
        }
        if (r.status === 429) { return T.too_many.replace('{s}', r.headers.get('Retry-After') || '60'); }
        if (r.status === 401 || r.status === 400) { return T.bad_credentials; }
        return T.failed;
    } catch (e) {
        return T.failed;
    }
}
"""


# Sign out everywhere, then a full navigation, so nothing of the signed-in page survives.
SIGN_OUT_JS = """
async function (n) {
    if (!n) { return window.dash_clientside.no_update; }
    const token = (document.cookie.match(/(?:^|; )panorama_csrf=([^;]*)/) || [])[1] || '';
    let next = '/login';
    try {
        const r = await fetch('/api/session', {method: 'DELETE', credentials: 'same-origin',
                                               headers: {'X-CSRF-Token': decodeURIComponent(token)}});
        // a single sign-on session: the sign-in page then offers the identity provider's own sign-out
        if (r.ok && (await r.json()).sso) { next = '/login?signed_out=1'; }
    } finally {
        window.location.assign(next);
    }
    return window.dash_clientside.no_update;
}
"""


def _arg(search: str | None, name: str, default: str = "") -> str:
    values = parse_qs((search or "").lstrip("?")).get(name)
    return values[0] if values else default


def render(req):
    """Return the sign-in page, which goes on to its ``next`` (a path of this site) when signed in; it offers
    single sign-on when configured, and the password form unless password accounts are turned off."""
    return login_layout(req.lang, auth.safe_next(_arg(req.search, "next", "/")), sso=oidc.configured(),
                        local=current_app.config["PANORAMA_LOCAL_LOGIN"],
                        signed_out=_arg(req.search, "signed_out") == "1")


def register_callbacks(app) -> None:
    """Register sign-in and sign-out."""

    # sign-in form -> POST /api/session -> the page it came from (the session cookie is the browser's)
    clientside_callback(
        SIGN_IN_JS,
        Output("login-error", "children"),
        Input("login-submit", "n_clicks"), Input("login-password", "n_submit"),
        State("login-username", "value"), State("login-password", "value"), State("login-context", "data"),
        prevent_initial_call=True,
    )

    # sign-out button -> DELETE /api/session -> the sign-in page
    clientside_callback(SIGN_OUT_JS, Output("sign-out", "title"), Input("sign-out", "n_clicks"),
                        prevent_initial_call=True)
