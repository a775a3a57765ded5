"""The panorama page in a real headless Chromium: live counts, ticker, plain-text titles, stale feeds."""

from __future__ import annotations

from tests.test_api import ingest_now, now_event


def test_panorama_shows_counts_and_titles_as_text(app, dash_duo):
    hostile = "<script>alert(1)</script><b>深南大道拥堵</b>"
    ingest_now(app, {"traffic": [now_event(1, title=hostile), now_event(2)],
                     "incident": [now_event(3, kind="fire", severity=4, title="福田区火情")]})
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#kpi-traffic", "2", timeout=10)
    dash_duo.wait_for_text_to_equal("#kpi-incident", "1", timeout=10)
    dash_duo.wait_for_contains_text("#event-ticker", hostile, timeout=10)
    # the markup is shown, not run or rendered: no <b> element made it into the ticker
    assert dash_duo.driver.execute_script("return document.querySelectorAll('#event-ticker b, #event-ticker script').length") == 0
    # a feed nobody has published on reads stale; a live one does not
    dash_duo.wait_for_contains_text("#feed-status", "stale", timeout=10)
    feeds = dash_duo.find_elements("#feed-status li")
    assert len(feeds) == 4 and "stale" not in feeds[1].text and "stale" in feeds[2].text  # traffic, environment
    assert dash_duo.get_logs() == []


def test_new_events_raise_the_count_without_reload(app, dash_duo):
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#kpi-incident", "0", timeout=10)
    ingest_now(app, {"incident": [now_event(7, kind="gas_leak", severity=3, title="燃气泄漏")]})
    dash_duo.wait_for_text_to_equal("#kpi-incident", "1", timeout=10)
    dash_duo.wait_for_contains_text("#event-ticker", "燃气泄漏", timeout=10)
    assert dash_duo.get_logs() == []
