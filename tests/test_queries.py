"""Pure read-side logic: windows of whole minutes and the risk score."""

from dashboard.storage.queries import HOUR_MS, parse_window, rollup_parts, window_bounds
from dashboard.storage.risk import pressure_score


def test_window_bounds_are_whole_minutes_ending_with_the_current_one():
    now = 1764117020_500  # 08:30:20.5 +08:00
    start, end = window_bounds(now, 60)
    assert end == 1764117060_000 and end - start == 3_600_000 and start % 60_000 == 0


def test_parse_window():
    assert [parse_window(w) for w in (None, "15m", "1h", "24h", "7d", "30d")] == [60, 15, 60, 1440, 10080, 43200]


def test_long_windows_are_whole_hours_ending_with_the_current_one():
    now = 1764117020_500
    start, end = window_bounds(now, 7 * 1440)
    assert end % HOUR_MS == 0 and end - HOUR_MS <= now < end and end - start == 7 * 86_400_000


def test_a_window_reads_whole_hours_from_the_hour_rollups_and_its_edges_from_the_minutes():
    now = 1764117020_500  # 00:30:20.5 UTC
    start, end = window_bounds(now, 1440)
    parts = [(table.name, lo, hi) for table, _, lo, hi in rollup_parts(start, end)]
    h0, h1 = start - start % HOUR_MS + HOUR_MS, end - end % HOUR_MS
    assert parts == [("rollups", start, h0), ("rollup_hours", h0, h1), ("rollups", h1, end)]
    assert [(t.name, lo, hi) for t, _, lo, hi in rollup_parts(*window_bounds(now, 60))] == [
        ("rollups", *window_bounds(now, 60))]  # no whole hour inside: minutes only
    hours = rollup_parts(*window_bounds(now, 7 * 1440))
    assert [t.name for t, *_ in hours] == ["rollup_hours"]


def test_risk_grows_with_severity_and_saturates():
    quiet = pressure_score((10, 0, 0, 0), 60, 1_000_000)
    busy = pressure_score((10, 0, 5, 2), 60, 1_000_000)
    assert 0 <= quiet < busy < 100
    assert pressure_score((0, 0, 0, 100_000), 60, 1_000_000) == 100.0
    assert pressure_score((0, 0, 0, 0), 15, 1_000_000) == 0.0


def test_risk_is_per_resident_and_per_hour():
    # the same events weigh more in a district a tenth the size ...
    assert pressure_score((0, 0, 4, 0), 60, 200_000) > pressure_score((0, 0, 4, 0), 60, 2_000_000)
    # ... and the same rate reads the same in a 15-minute and a 60-minute window
    assert pressure_score((0, 0, 1, 0), 15, 1_000_000) == pressure_score((0, 0, 4, 0), 60, 1_000_000)
