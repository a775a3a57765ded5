"""Lay out the after-action replay's parts of / and /wall: the way in (live) and the banner with its controls.

A replayed page is the live page drawn from the state at a past minute, with ``replay-banner`` on top; the
browser plays it forward (assets/live_replay.js) and never opens the live socket. A live page never holds the
banner: only ``replay_entry``, a plain link into replay.
"""

from __future__ import annotations

from urllib.parse import urlencode

from dash import dcc, html

from dashboard.core.clock import iso
from dashboard.core.i18n import t
from dashboard.panorama.replay import SPEEDS
from layouts.common import clock_text

MINUTE_MS = 60_000
ENTRY_BACK_MS = 3_600_000  # the way in from a live desk opens an hour ago, paused


def replay_href(path: str, at_ms: int, speed: int, tz: str) -> str:
    """Return the address of ``path`` replayed from ``at_ms`` at ``speed`` (the wall's only way in: a kiosk has
    no controls, so whoever sets it up types this address)."""
    return f"{path}?{urlencode({'at': iso(at_ms - at_ms % MINUTE_MS, tz), 'speed': speed})}"


def replay_entry(lang: str, now_ms: int, tz: str) -> html.A:
    """Return the live desk's way into replay: its last hour, paused, to be scrubbed and played."""
    return html.A(t("replay_enter", lang), href=replay_href("/", now_ms - ENTRY_BACK_MS, 0, tz), id="replay-enter",
                  className="replay-enter")


def speed_text(speed: int, lang: str) -> str:
    """Return how the banner says a speed."""
    return t("replay_paused", lang) if speed == 0 else t("replay_speed", lang, n=speed)


def replay_banner(lang: str, replay: dict, page: str) -> html.Div:
    """Return the banner of a replayed page: REPLAY, the replayed time in the replay colour, the speed, and (on
    the desk) the speed buttons and the scrubber; on both, the way back to live.

    ``replay``: ``{"at", "speed", "floor", "now", "live", "tz"}`` (epoch ms; ``live`` the live page's path).
    """
    controls = []
    if page != "wall":  # the kiosk has no controls: its replay is its address (replay_href)
        controls = [
            html.Div([html.Button(t("replay_pause", lang) if n == 0 else f"{n}×", id=f"replay-speed-{n}", n_clicks=0,
                                  className="replay-speed-btn" + (" on" if n == replay["speed"] else ""),
                                  **{"aria-pressed": "true" if n == replay["speed"] else "false"})
                      for n in SPEEDS], className="replay-speeds", role="group",
                     **{"aria-label": t("replay_at", lang)}),
            html.Label(t("replay_scrub", lang), htmlFor="replay-scrub", className="replay-scrub-label"),
            # minutes since the epoch: one step a minute over everything the rollups keep; each step only moves
            # the replayed time (assets/live_replay.js): the state is asked for at the next tick, once per minute
            dcc.Input(id="replay-scrub", type="range", min=replay["floor"] // MINUTE_MS,
                      max=replay["now"] // MINUTE_MS, step=1, value=replay["at"] // MINUTE_MS, debounce=False,
                      className="replay-scrub"),
        ]
    return html.Div(
        [html.Strong(t("replay_banner", lang), className="replay-label"),
         html.Span(t("replay_at", lang), className="replay-at-label"),
         html.Time(clock_text(replay["at"], replay["tz"], with_date=True), id="replay-clock", className="replay-clock"),
         html.Span(speed_text(replay["speed"], lang), id="replay-speed", className="replay-speed"),
         *controls,
         html.A(t("replay_live", lang), href=replay["live"], id="replay-live", className="replay-live"),
         dcc.Store(id="replay-config", data=replay),
         dcc.Interval(id="replay-tick", interval=1000)],
        id="replay-banner", className=f"replay-banner replay-{page}", role="region",
        **{"aria-label": t("replay_banner", lang)},
    )


def replay_parts(lang: str, replay: dict | None, page: str) -> list:
    """Return the banner of a replayed page, or nothing on a live one (which never shows it)."""
    return [] if replay is None else [replay_banner(lang, replay, page)]


def replay_refused(lang: str, message: str, live: str) -> html.Main:
    """Return the page shown for a replay address that cannot be replayed: why, and the way to live."""
    return html.Main([html.H1(t("replay_refused", lang), id="replay-refused", className="not-found-title"),
                      html.P(message, className="not-found-message"),
                      html.A(t("replay_live", lang), href=live, className="not-found-link")],
                     className="page page-not-found")
