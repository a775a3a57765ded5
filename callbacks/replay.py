"""Play a replayed / or /wall forward: the banner's clock and speed, the desk's speed buttons and scrubber.

The functions named here are in ``assets/live_replay.js``; the state of each replayed minute is the server's
(``GET /api/summary?live=1&at=``), drawn by the live page's renderers.
"""

from __future__ import annotations

from dash import ClientsideFunction, Input, Output, State

from dashboard.panorama.replay import SPEEDS


def _client(name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace="panorama", function_name=name)


def register_callbacks(app) -> None:
    """Register the replay's clientside callbacks (both only on a replayed page: a live one has no banner)."""

    # tick -> the replayed time and speed (a new minute fetches its state from the server)
    app.clientside_callback(
        _client("replayTick"),
        Output("replay-clock", "children"), Output("replay-speed", "children"),
        Input("replay-tick", "n_intervals"), State("replay-config", "data"), State("live-config", "data"),
    )

    # the desk's speed buttons and scrubber -> the replay restarted from there at that speed
    app.clientside_callback(
        _client("replayControls"),
        *[Output(f"replay-speed-{n}", "className") for n in SPEEDS],
        *[Input(f"replay-speed-{n}", "n_clicks") for n in SPEEDS], Input("replay-scrub", "value"),
        State("replay-config", "data"),
        prevent_initial_call=True,
    )
