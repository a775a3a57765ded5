"""Pure read-side logic: windows of whole minutes and the risk score."""

from dashboard.storage.queries import parse_window, risk_score, window_bounds


def test_window_bounds_are_whole_minutes_ending_with_the_current_one():
    now = 1764117020_500  # 08:30:20.5 +08:00
    start, end = window_bounds(now, 60)
    assert end == 1764117060_000 and end - start == 3_600_000 and start % 60_000 == 0


def test_parse_window():
    assert [parse_window(w) for w in (None, "15m", "1h", "24h")] == [60, 15, 60, 1440]


def test_risk_grows_with_severity_and_saturates():
    quiet = risk_score((10, 0, 0, 0), 60, 1_000_000)
    busy = risk_score((10, 0, 5, 2), 60, 1_000_000)
    assert 0 <= quiet < busy < 100
    assert risk_score((0, 0, 0, 100_000), 60, 1_000_000) == 100.0
    assert risk_score((0, 0, 0, 0), 15, 1_000_000) == 0.0


def test_risk_is_per_resident_and_per_hour():
    # the same events weigh more in a district a tenth the size ...
    assert risk_score((0, 0, 4, 0), 60, 200_000) > risk_score((0, 0, 4, 0), 60, 2_000_000)
    # ... and the same rate reads the same in a 15-minute and a 60-minute window
    assert risk_score((0, 0, 1, 0), 15, 1_000_000) == risk_score((0, 0, 4, 0), 60, 1_000_000)
