"""bench.units: each probe's wait between two stages, and the page's long animation frames that ran in it."""

from __future__ import annotations

from bench.units import blockers, stage


def frame(start: float, dur: float, render: float, *scripts) -> dict:
    return {"s": start, "d": dur, "r": render, "scripts": [list(s) for s in scripts]}


def test_blockers_name_the_scripts_that_ran_in_each_wait_and_their_share_of_it():
    probes = [(0.0, "a"), (0.0, "b"), (0.0, "never-drawn")]
    start = {"a": 1000.0, "b": 2000.0, "never-drawn": 3000.0}  # the frame in the page (page clock)
    stop = {"a": 1200.0, "b": 2100.0}  # the marker in the DOM
    loaf = [
        # over a's wait: 150 ms of a Dash timer (30 ms of it forced layout), rendering from 1140 to 1160
        frame(1000.0, 160.0, 1140.0, ("user-callback", "TimerHandler:setTimeout", "", "", 1000.0, 150.0, 30.0)),
        # half inside b's wait: 50 of its 100 ms count
        frame(1950.0, 100.0, 0, ("event-listener", "DOMWebSocket.onmessage", "live_conn.js", "", 1950.0, 100.0, 0)),
        frame(5000.0, 80.0, 0, ("user-callback", "TimerHandler:setTimeout", "", "", 5000.0, 80.0, 0)),  # no wait
    ]
    got = blockers(probes, start, stop, loaf, 0.0, 0.0)
    assert got["probes"] == 2
    assert got["mean_wait_ms"] == 150.0  # (200 + 100) / 2
    assert got["share_in_long_frames"] == round((160 + 50) / 300, 3)
    assert got["share_rendering"] == round(20 / 300, 3)
    timer, socket = got["scripts"]
    assert timer["script"] == "user-callback TimerHandler:setTimeout []"
    assert (timer["probes"], timer["mean_ms_per_probe"], timer["max_ms"]) == (1, 75.0, 150.0)
    assert timer["forced_layout_ms_per_probe"] == 15.0
    assert socket["script"] == "event-listener DOMWebSocket.onmessage [live_conn.js]"
    assert socket["mean_ms_per_probe"] == 25.0


def test_a_stage_counts_a_place_never_seen_or_seen_too_late_as_a_miss():
    probes = [(100.0, "a"), (100.0, "b"), (100.0, "c")]
    got = stage(probes, {"a": 150.0 + 7, "c": 100.0 + 9000 + 7}, 7.0, 5000.0)  # page clock 7 ms ahead of ours
    assert (got["n"], got["missed"], got["p50"]) == (3, 2, None)
    assert got["max"] is None  # with a miss, the max is the miss
