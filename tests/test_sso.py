"""Single sign-on (SPEC section 13) against a real OpenID Connect provider, driven over real HTTP.

The provider is the certified npm ``oidc-provider`` (tests/oidc_provider.mjs) behind the tests' proxy
(tests/oidc_op.py), which can rewrite an ID token on its way to Panorama as an attacker in between would.
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from dashboard.storage import users as accounts
from tests.helpers import TEST_PASSWORD, make_user
from tests.oidc_op import CLIENT_ID, CLIENT_SECRET, OidcProvider
from tests.serve import serving

# The provider's people. Roles come as groups (PANORAMA_OIDC_CLAIMS role=groups, PANORAMA_OIDC_ROLE_MAP), the
# department and district under the default claim names.
ACCOUNTS = {
    "u-olga": {"preferred_username": "olga.chen", "groups": ["staff", "szcc-officer"], "panorama_district": "futian"},
    "u-li": {"preferred_username": "li.na", "groups": ["szcc-liaison"], "panorama_department": "fire",
             "panorama_district": "440304"},
    "u-boss": {"preferred_username": "wang.boss", "groups": ["szcc-officer", "szcc-admin"]},
    "u-nobody": {"preferred_username": "zhao.nobody", "groups": ["staff"]},
    "u-admin": {"preferred_username": "admin", "groups": ["szcc-admin"]},
}
SSO = {"PANORAMA_OIDC_CLIENT_ID": CLIENT_ID, "PANORAMA_OIDC_CLIENT_SECRET": CLIENT_SECRET,
       "PANORAMA_OIDC_SCOPE": "openid profile panorama", "PANORAMA_OIDC_CLAIMS": "role=groups",
       "PANORAMA_OIDC_ROLE_MAP": "szcc-officer=officer,szcc-liaison=liaison,szcc-admin=admin"}


@pytest.fixture
def provider(tmp_path):
    """Give the tests' OpenID Connect provider (not started: ``live`` starts it for the app)."""
    op = OidcProvider(tmp_path, ACCOUNTS)
    yield op
    op.stop()


@pytest.fixture
def live(make_app, redis_client, provider):
    """Return a context manager: an app configured for the provider, served over HTTP, the provider started for
    it; it yields the app and its URL."""
    @contextlib.contextmanager
    def start(**overrides):
        app = make_app(PANORAMA_OIDC_ISSUER=provider.issuer, **SSO, **overrides)
        with serving(app) as url:
            provider.start(url)
            yield app, url
    return start


def to_callback(s: requests.Session, url: str, account: str, next_path: str | None = None) -> str:
    """Start a sign-in at Panorama, sign in at the provider as ``account``; return the callback address the
    provider sends the browser back to (not yet followed)."""
    res = s.get(f"{url}/auth/oidc/login", params={"next": next_path} if next_path else None, timeout=30)
    assert res.status_code == 200 and "/interaction/" in res.url, res.text[:500]
    action = re.search(r'action="([^"]+)"', res.text).group(1)
    res = s.post(urljoin(res.url, action), data={"login": account}, allow_redirects=False, timeout=30)
    while res.is_redirect:
        target = urljoin(res.url, res.headers["Location"])
        if target.startswith(f"{url}/auth/oidc/callback"):
            return target
        res = s.get(target, allow_redirects=False, timeout=30)
    raise AssertionError(f"the provider did not send the browser back: {res.status_code} {res.text[:500]}")


def sign_in(url: str, account: str, next_path: str | None = None, lang: str | None = None):
    """Sign in through the provider as ``account`` with a new browser; return it and Panorama's last answer."""
    s = requests.Session()
    if lang:
        s.cookies.set("panorama_lang", lang, domain="127.0.0.1")
    return s, s.get(to_callback(s, url, account, next_path), timeout=30)


def refused(res, status: int, reason: str) -> None:
    assert res.status_code == status, res.text[:500]
    assert res.headers["Content-Type"].startswith("text/html")
    assert f'data-reason="{reason}"' in res.text, res.text[:500]


def test_a_district_officer_signs_in_with_role_and_district_from_the_claims(live):
    with live() as (app, url):
        s = requests.Session()
        # the authorization request: code flow with state, nonce and a PKCE S256 challenge
        start = s.get(f"{url}/auth/oidc/login", params={"next": "/district/futian"}, allow_redirects=False)
        assert start.status_code == 302
        query = parse_qs(urlsplit(start.headers["Location"]).query)
        assert query["response_type"] == ["code"] and query["client_id"] == [CLIENT_ID]
        assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
        assert query["state"][0] and query["nonce"][0]
        assert query["redirect_uri"] == [f"{url}/auth/oidc/callback"]
        s, res = sign_in(url, "u-olga", next_path="/district/futian")
        assert res.status_code == 200 and urlsplit(res.url).path == "/district/futian"
        me = s.get(f"{url}/api/me")
        assert me.json() == {"username": "olga.chen", "role": "officer", "department": None, "district": "440304"}
        # the same session and CSRF machinery as POST /api/session
        doc = s.get(f"{url}/api/session").json()
        assert len(doc["csrf_token"]) >= 32 and s.cookies.get("panorama_csrf") == doc["csrf_token"]
        # the local user has no password: it cannot sign in with one
        assert requests.post(f"{url}/api/session", json={"username": "olga.chen", "password": ""}).status_code \
            in (400, 401)
        [row] = accounts.list_users(app.server.extensions["panorama"].engine)
        assert row["username"] == "olga.chen" and row["sso"] and row["district"] == "440304"


def test_a_liaison_gets_the_department_and_lands_on_dispatch_and_a_second_sign_in_finds_the_same_user(live):
    with live() as (app, url):
        s, res = sign_in(url, "u-li")
        assert urlsplit(res.url).path == "/dispatch"
        assert s.get(f"{url}/api/me").json() == {"username": "li.na", "role": "liaison", "department": "fire",
                                                 "district": "440304"}
        s2, _ = sign_in(url, "u-li")
        assert s2.get(f"{url}/api/me").json()["username"] == "li.na"
        assert len(accounts.list_users(app.server.extensions["panorama"].engine)) == 1
        # several roles: the strongest
        s3, _ = sign_in(url, "u-boss")
        assert s3.get(f"{url}/api/me").json()["role"] == "admin"


@pytest.mark.parametrize("lang, words", [("zh", "没有分配本系统的角色"), ("en", "has no role in Panorama")])
def test_a_user_whose_claims_give_no_role_is_refused_with_a_clear_page(live, lang, words):
    with live() as (app, url):
        s, res = sign_in(url, "u-nobody", lang=lang)
        refused(res, 403, "no_role")
        assert words in res.text and f'lang="{"en" if lang == "en" else "zh-CN"}"' in res.text
        assert s.get(f"{url}/api/me").status_code == 401
        assert accounts.list_users(app.server.extensions["panorama"].engine) == []


def test_a_name_held_by_a_local_account_is_not_taken_over(live):
    with live() as (app, url):
        make_user(app, "admin", "admin")  # the break-glass account
        s, res = sign_in(url, "u-admin")
        refused(res, 409, "name_taken")
        assert s.get(f"{url}/api/me").status_code == 401


@pytest.mark.parametrize("case", ["tampered signature", "wrong audience", "expired", "wrong nonce", "wrong issuer"])
def test_an_id_token_that_fails_its_checks_is_refused(live, provider, case):
    provider.rewrite = {
        "tampered signature": provider.tamper(sub="u-boss"),
        "wrong audience": provider.resign(aud="another-client"),
        "expired": provider.resign(iat=1_700_000_000, exp=1_700_003_600),
        "wrong nonce": provider.resign(nonce="not-the-one-sent"),
        "wrong issuer": provider.resign(iss="https://evil.example"),
    }[case]
    with live() as (app, url):
        s, res = sign_in(url, "u-olga")
        refused(res, 401, "bad_token")
        assert s.get(f"{url}/api/me").status_code == 401
        assert accounts.list_users(app.server.extensions["panorama"].engine) == []


def test_a_resigned_but_untouched_token_is_accepted(live, provider):
    # The control of the test above: re-signing alone changes nothing, so what is refused there is the change.
    provider.rewrite = provider.resign()
    with live() as (app, url):
        s, res = sign_in(url, "u-olga")
        assert res.status_code == 200 and s.get(f"{url}/api/me").json()["username"] == "olga.chen"


def test_a_mismatched_or_replayed_state_is_refused(live):
    with live() as (app, url):
        # the provider's answer to one browser's sign-in, delivered to another browser
        callback = to_callback(requests.Session(), url, "u-olga")
        other = requests.Session()
        refused(other.get(callback), 400, "state")
        assert other.get(f"{url}/api/me").status_code == 401
        # a state that was never issued, in the browser that started a sign-in
        s = requests.Session()
        real = to_callback(s, url, "u-olga")
        forged = re.sub(r"state=[^&]+", "state=forged", real)
        refused(s.get(forged), 400, "state")
        # the real answer still works once, and only once
        assert s.get(real).status_code == 200 and s.get(f"{url}/api/me").status_code == 200
        refused(s.get(real), 400, "state")
        # the provider's refusal (the person declined, say) is said as such
        refused(requests.get(f"{url}/auth/oidc/callback?error=access_denied&error_description=declined"), 401,
                "provider_error")


def test_local_accounts_can_be_turned_off_and_single_sign_on_still_works(live):
    with live(PANORAMA_LOCAL_LOGIN="0") as (app, url):
        make_user(app, "breakglass", "admin")
        res = requests.post(f"{url}/api/session", json={"username": "breakglass", "password": TEST_PASSWORD})
        assert res.status_code == 403 and res.json()["error"]["code"] == "local_login_disabled"
        assert "/auth/oidc/login" in res.json()["error"]["message"]
        page = requests.get(f"{url}/login").text  # its first paint (ids left out): the link, no password field
        assert 'href="/auth/oidc/login?next=%2F"' in page and 'type="password"' not in page
        s, res = sign_in(url, "u-olga")
        assert res.status_code == 200 and s.get(f"{url}/api/me").json()["role"] == "officer"


def test_signing_out_is_local_and_offers_the_providers_end_session(live, provider):
    with live() as (app, url):
        page = requests.get(f"{url}/login").text  # offered when configured, beside the password form
        assert 'href="/auth/oidc/login?next=%2F"' in page and 'type="password"' in page
        assert 'href="/auth/oidc/logout"' not in page
        s, _ = sign_in(url, "u-olga")
        csrf = s.get(f"{url}/api/session").json()["csrf_token"]
        res = s.delete(f"{url}/api/session", headers={"X-CSRF-Token": csrf})
        assert res.json() == {"user": None, "sso": True}
        assert s.get(f"{url}/api/me").status_code == 401
        page = s.get(f"{url}/login?signed_out=1").text
        assert 'href="/auth/oidc/logout"' in page
        res = s.get(f"{url}/auth/oidc/logout", allow_redirects=False)
        target = urlsplit(res.headers["Location"])
        assert res.status_code == 302 and f"{target.scheme}://{target.netloc}" == provider.issuer
        assert parse_qs(target.query) == {"client_id": [CLIENT_ID], "post_logout_redirect_uri": [f"{url}/login"]}
        # the provider takes it: its sign-out page asks to confirm
        confirm = s.get(urljoin(url, res.headers["Location"]))
        assert confirm.status_code == 200 and "logout" in confirm.text.lower()
        # a password sign-out says it was no single sign-on
        make_user(app, "local", "viewer")
        p = requests.Session()
        csrf = p.post(f"{url}/api/session", json={"username": "local", "password": TEST_PASSWORD}).json()["csrf_token"]
        assert p.delete(f"{url}/api/session", headers={"X-CSRF-Token": csrf}).json() == {"user": None, "sso": False}


def test_without_configuration_there_is_no_single_sign_on(app):
    client = app.server.test_client()
    for path in ("/auth/oidc/login", "/auth/oidc/callback?code=x&state=y", "/auth/oidc/logout"):
        res = client.get(path)
        assert res.status_code == 404 and 'data-reason="not_configured"' in res.get_data(as_text=True), path
    page = client.get("/login").get_data(as_text=True)
    assert "/auth/oidc/" not in page and 'type="password"' in page


def test_an_unreachable_provider_is_a_clear_503(make_app, redis_client):
    from tests.redis_proc import free_port

    app = make_app(PANORAMA_OIDC_ISSUER=f"http://127.0.0.1:{free_port()}", **SSO)
    res = app.server.test_client().get("/auth/oidc/login")
    assert res.status_code == 503 and 'data-reason="unavailable"' in res.get_data(as_text=True)


def test_a_disabled_provider_user_is_refused(live):
    with live() as (app, url):
        sign_in(url, "u-olga")
        accounts.set_active(app.server.extensions["panorama"].engine, "olga.chen", False)
        s, res = sign_in(url, "u-olga")
        refused(res, 403, "disabled")
        assert s.get(f"{url}/api/me").status_code == 401


def test_a_browser_signs_in_through_the_login_page_and_is_offered_the_providers_sign_out(
        make_app, redis_client, provider, dash_duo):
    from tests.helpers import wait_for

    app = make_app(PANORAMA_OIDC_ISSUER=provider.issuer, **SSO)
    dash_duo.start_server(app)
    base = dash_duo.server_url.rstrip("/")
    provider.start(base)
    dash_duo.driver.get(f"{base}/dispatch")  # anonymous: to /login?next=/dispatch
    dash_duo.wait_for_element("#login-sso", timeout=20).click()
    dash_duo.wait_for_element("#login", timeout=20).send_keys("u-olga")  # the provider's sign-in page
    dash_duo.find_element("#sign-in").click()
    dash_duo.wait_for_text_to_equal("#user-name", "olga.chen", timeout=20)
    assert urlsplit(dash_duo.driver.current_url).path == "/dispatch"
    me = dash_duo.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/me', {credentials: 'same-origin'}).then(r => r.json()).then(done, e => done(String(e)));")
    assert me == {"username": "olga.chen", "role": "officer", "department": None, "district": "440304"}
    assert dash_duo.get_logs() == []
    dash_duo.find_element("#sign-out").click()
    dash_duo.wait_for_element("#login-sso-sign-out", timeout=20).click()
    wait_for(lambda: dash_duo.driver.current_url.startswith(provider.issuer + "/session/end"), timeout=20,
             message="the provider's sign-out page")
