"""Keep the officers' download links on what their tables show (assets/export_links.js, in the browser)."""

from __future__ import annotations

from dash import ClientsideFunction, Input, Output


def register_callbacks(app) -> None:
    """Register the drill-down's export links."""
    # table sort, filter, window, language -> the CSV and Excel links' addresses (no round trip to the server)
    app.clientside_callback(ClientsideFunction(namespace="panoramaExport", function_name="hrefs"),
                            Output("district-export-csv", "href"), Output("district-export-xlsx", "href"),
                            Input("district-events", "sort_by"), Input("district-events", "filter_query"),
                            Input("district-window", "value"), Input("district-code", "data"), Input("lang", "data"))
