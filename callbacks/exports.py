"""Keep the officers' download links on what their tables show (assets/export_links.js, in the browser)."""

from __future__ import annotations

from dash import ALL, ClientsideFunction, Input, Output, State


def register_callbacks(app) -> None:
    """Register the officers' export links: the drill-down's, the task board's, /alerts' trail's."""
    # table sort, filter, window, language -> the CSV and Excel links' addresses (no round trip to the server)
    app.clientside_callback(ClientsideFunction(namespace="panoramaExport", function_name="hrefs"),
                            Output("district-export-csv", "href"), Output("district-export-xlsx", "href"),
                            Input("district-events", "sort_by"), Input("district-events", "filter_query"),
                            Input("district-window", "value"), Input("district-code", "data"), Input("lang", "data"))

    # the board's department, its scope and the selected incident, language -> the tasks' links
    app.clientside_callback(ClientsideFunction(namespace="panoramaExport", function_name="taskHrefs"),
                            Output("task-export-csv", "href"), Output("task-export-xlsx", "href"),
                            Input("dispatch-department", "data"), Input("board-scope", "value"),
                            Input("dispatch-selected", "data"), Input("lang", "data"))

    # /alerts' status and level toggles and district, language -> the trail's links
    app.clientside_callback(ClientsideFunction(namespace="panoramaExport", function_name="alertHrefs"),
                            Output("alerts-export-csv", "href"), Output("alerts-export-xlsx", "href"),
                            Input({"alerts-filter": ALL, "value": ALL}, "n_clicks"),
                            Input("alerts-district", "value"), Input("lang", "data"),
                            State({"alerts-filter": ALL, "value": ALL}, "id"))
