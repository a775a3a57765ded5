"""Route the URL to a page layout and switch the language."""

from dash import Input, Output, State, html, no_update
from flask import current_app

from dashboard.i18n import t
from layouts.panorama import panorama_layout


def register_callbacks(app) -> None:
    """Register the router and the language switch."""

    # url, language -> page
    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("lang", "data"))
    def route(pathname, lang):
        embedded = current_app.extensions["panorama"].config["EMBEDDED"]
        note = t("mode_embedded", lang) if embedded else ""
        if pathname in (None, "/"):
            return panorama_layout(lang, note)
        return html.Div([html.H1("404"), html.P(pathname, className="not-found")], className="not-found-page")

    # language button -> stored language
    @app.callback(Output("lang", "data"), Input("lang-toggle", "n_clicks"), State("lang", "data"),
                  prevent_initial_call=True)
    def toggle(n, lang):
        if not n:
            return no_update
        return "en" if lang != "en" else "zh"
