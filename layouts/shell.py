"""Lay out the page shell shared by every route: location, language, page container."""

from dash import dcc, html


def shell() -> html.Div:
    """Return the outer layout; the router callback fills ``page``."""
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            # The language choice survives reloads in the browser, never on the server.
            dcc.Store(id="lang", storage_type="local", data="zh"),
            html.Div(id="page"),
        ]
    )
