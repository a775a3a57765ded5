"""Serve every page with the html element's language set, before any script runs."""

from __future__ import annotations

import functools

from flask import request

from dashboard.core.i18n import html_lang
from dashboard.web.first_paint import lang_of



def init_app(app) -> None:
    """Give the Dash ``app``'s page template the language the browser chose (its cookie; Simplified Chinese by
    default). The choice lives in the browser's localStorage (layouts/shell.py) and callbacks/router.py
    copies it into the cookie, and switches the element itself when the language changes on the page."""
    if "<html>" not in app.index_string:
        raise RuntimeError("the page template has no bare <html> to give a language to")
    template = app.index_string.replace("<html>", '<html lang="zh-CN">', 1)
    app.index_string = template
    original = app.interpolate_index

    @functools.wraps(original)
    def interpolate_index(**kwargs):
        page = original(**kwargs)
        lang = lang_of(request.cookies) if request else "zh"
        return page.replace('<html lang="zh-CN">', f'<html lang="{html_lang(lang)}">', 1)

    app.interpolate_index = interpolate_index
