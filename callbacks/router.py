"""Route the URL to its page in the registry (callbacks/pages.py), check access, set the tab's title and the
navigation; switch the language."""

from __future__ import annotations

from dash import Input, Output, State, clientside_callback, no_update
from flask import current_app

from callbacks import pages
from dashboard.core.i18n import t
from dashboard.web import auth
from dashboard.web.callback_guard import Lang, allow, validated
from dashboard.core.i18n import district_name
from layouts.common import not_found_layout, other_district_layout
from layouts.login import forbidden_layout, login_layout
from layouts.shell import nav_bar, shell

# The user bar's texts in the language chosen in the browser.
USER_BAR_JS = """
function (lang, texts) {
    const T = (texts || {})[lang === 'en' ? 'en' : 'zh'] || {};
    return [T.role, T.sign_out];
}
"""
# The page's language (the html element's lang: screen readers' voice, the browser's CJK font) follows the
# switch; the hidden page-title carries it too, as the callback's output.
HTML_LANG_JS = """
function (lang) {
    const tag = lang === 'en' ? 'en' : 'zh-CN';
    document.documentElement.lang = tag;
    // for the server: the next page's first paint and <html lang> in this language (dashboard/web/first_paint.py)
    document.cookie = 'panorama_lang=' + (lang === 'en' ? 'en' : 'zh') + '; path=/; max-age=31536000; SameSite=Lax';
    return tag;
}
"""
# The tab's title follows the page (the router writes it into the hidden page-title).
TITLE_JS = """
function (title) {
    if (title) { document.title = title; }
    return title || '';
}
"""


def guard(path: str, search: str | None, lang: str) -> object | None:
    """Return the sign-in or not-allowed page when the visitor may not see ``path``, else None."""
    here = path + (search or "")
    access = auth.page_access(path, auth.kiosk_token_of(search))
    if access == "login":
        # The shell was served before the session ended (or a link was followed): sign in right here.
        return login_layout(lang, auth.safe_next(here))
    if access == "forbidden":
        return forbidden_layout(lang, auth.current_user().role, auth.login_url(here))
    return None


def render(pathname: str | None, lang: str, search: str | None = None) -> tuple[object, str]:
    """Return the layout of ``pathname`` (the not-found page for anything unknown) and the tab's title."""
    svc = current_app.extensions["panorama"]
    path = (pathname or "/").rstrip("/") or "/"
    page = pages.find(path)
    denied = guard(path, search, lang)
    if denied is not None:
        return denied, title(lang, "page_login")
    if page is None:
        return not_found_layout(lang, t("not_found_route", lang, path=pathname)), title(lang, "page_not_found")
    own = auth.reader_scope(auth.kiosk_token_of(search)).district
    if own is not None:  # a district centre's user or wall (SPEC section 13)
        path, refused = district_path(svc.city, path, own, lang)
        if refused is not None:
            return refused, title(lang, "page_district")
        page = pages.find(path)
    req = pages.Request(svc=svc, path=path, lang=lang, search=search, now=svc.clock())
    return page.render(req), title(lang, page.title)


def district_path(city, path: str, own: str, lang: str) -> tuple[str, object | None]:
    """Return the page a district centre's user of ``own`` is shown for ``path`` -- their district's drill-down
    (its streets) for the panorama, the path itself elsewhere -- or the refusal of another district's page."""
    if path == "/":
        return f"/district/{own}", None
    if path.startswith("/district/") and path.count("/") == 2:
        asked = city.resolve(path.removeprefix("/district/"))
        if asked is not None and asked.code != own:
            mine = city.by_code[own]
            return path, other_district_layout(lang, district_name(mine, lang), district_name(asked, lang))
    return path, None


def nav(pathname: str | None, lang: str):
    """Return the navigation for the signed-in user on ``pathname``: the registry's pages their role may open,
    the one shown marked (None on the wall, the sign-in page, or for nobody signed in)."""
    return nav_bar([(p.path, p.title, p.nav_id, current)
                    for p, current in pages.nav_pages(auth.current_user(), pathname or "/")], lang)


def first_paint(path: str, lang: str, search: str | None):
    """Return the whole page as the router's callback will draw it for this visitor: the shell with the page of
    ``path`` and the navigation in it (dashboard/web/first_paint.py sends it in the HTML, before any script
    runs)."""
    layout = shell(lang)
    page, _ = render(path, lang, search)
    shell_parts = _by_id(layout, {})  # the shell's own, before the page goes in
    shell_parts["page"].children = page
    shell_parts["shell-nav"].children = nav(path, lang)
    return layout


def _by_id(node, found: dict) -> dict:
    """Collect the components of ``node``'s tree by id."""
    if isinstance(node, (list, tuple)):
        for child in node:
            _by_id(child, found)
    elif hasattr(node, "to_plotly_json"):
        if isinstance(getattr(node, "id", None), str):
            found[node.id] = node
        _by_id(getattr(node, "children", None), found)
    return found


def title(lang: str, key: str) -> str:
    """Return a tab's title: the page's, then the app's."""
    return f"{t(key, lang)} · {t('app_title', lang)}"


def register_callbacks(app) -> None:
    """Register the router, the tab's title and the language switch."""

    # url, language (and the signed-in user or kiosk token) -> page, its title and the navigation
    @allow(app, public=True)  # the router applies page_access itself; the navigation is the user's own
    @app.callback(Output("page", "children"), Output("page-title", "children"), Output("shell-nav", "children"),
                  Input("url", "pathname"), Input("lang", "data"), State("url", "search"))
    @validated
    def route(pathname: str | None, lang: Lang, search: str | None):
        lang = lang if lang in ("zh", "en") else "zh"
        return *render(pathname, lang, search), nav(pathname, lang)

    # page title -> the browser tab
    clientside_callback(TITLE_JS, Output("page-title", "title"), Input("page-title", "children"))

    # language -> the html element's lang
    clientside_callback(HTML_LANG_JS, Output("page-title", "lang"), Input("lang", "data"))

    # language -> the user bar's texts
    clientside_callback(USER_BAR_JS, Output("user-role", "children"), Output("sign-out", "children"),
                        Input("lang", "data"), State("user-bar-text", "data"))

    # language button -> stored language
    @allow(app, public=True)
    @app.callback(Output("lang", "data"), Input("lang-toggle", "n_clicks"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def toggle(n: int | None, lang: Lang):
        if not n:
            return no_update
        return "en" if lang != "en" else "zh"
