"""Per-minute trends end with the last complete minute: the current one is still filling."""

from __future__ import annotations

from dashboard.panorama.state import MINUTE_MS, trend, trend_bounds
from dashboard.storage.models import district_minutes
from dashboard.storage.partitions import create_days, day_of

NOW = 1764117020_500  # 08:30:20.5 +08:00: the minute 08:30 is 20 s old


def test_trend_bounds_are_whole_minutes_ending_before_the_current_one():
    start, end = trend_bounds(NOW, 60)
    assert end == NOW - NOW % MINUTE_MS and end <= NOW and end - start == 60 * MINUTE_MS
    assert trend_bounds(end, 60) == (start, end)  # on the minute itself: that minute has only just begun


def test_the_last_plotted_minute_is_a_complete_one(any_engine):
    current = NOW - NOW % MINUTE_MS
    rows = [(current - 2 * MINUTE_MS, 40), (current - MINUTE_MS, 41), (current, 3)]  # 3 so far in 08:30
    with any_engine.begin() as conn:
        if any_engine.dialect.name == "postgresql":
            create_days(conn, ["district_minutes"], [day_of(NOW)])
        conn.execute(district_minutes.insert(), [
            {"minute_ms": m, "district": d, "domain": "traffic", "n": n, "sev1": n, "sev2": 0, "sev3": 0, "sev4": 0}
            for m, n in rows for d in ("440304", "440305")])
    with any_engine.connect() as conn:
        for district, per in ((None, 2), ("440304", 1)):
            tr = trend(conn, NOW, 60, district)
            series = tr["series"]["traffic"]
            last_minute = tr["start"] + (len(series) - 1) * tr["step_ms"]
            assert last_minute + tr["step_ms"] <= NOW, "the last point is the minute still filling"
            assert last_minute == current - MINUTE_MS and series[-2:] == [40 * per, 41 * per]
            assert len(series) == 60 and sum(series) == 81 * per
