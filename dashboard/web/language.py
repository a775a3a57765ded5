"""Serve every page with the html element's language set, before any script runs."""

from __future__ import annotations

from dashboard.core.i18n import html_lang


def init_app(app) -> None:
    """Write the default language (Simplified Chinese) into the Dash ``app``'s page template."""
    # The choice lives in the browser's localStorage (layouts/shell.py), so the server cannot know it: pages
    # start as zh-CN, the default, and callbacks/router.py's HTML_LANG_JS switches the element to en.
    if "<html>" not in app.index_string:
        raise RuntimeError("the page template has no bare <html> to give a language to")
    app.index_string = app.index_string.replace("<html>", f'<html lang="{html_lang("zh")}">', 1)
