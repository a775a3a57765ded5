"""In a real headless Chromium: /open for anyone, in both languages; the drill-down's download links follow the
table and fetch the rows the table shows."""

from __future__ import annotations

import csv
import io
import time

import pytest

from tests.helpers import make_event, sign_in, wait_for
from tests.test_api import ingest_now
from tests.test_pages import cells, js


def test_the_open_data_page_opens_without_signing_in_in_both_languages(app, dash_duo):
    dash_duo.start_server(app)
    dash_duo.driver.get(dash_duo.server_url + "/open")
    dash_duo.wait_for_text_to_equal("#open-title", "开放数据", timeout=15)
    assert "/login" not in dash_duo.driver.current_url
    assert "CC BY 4.0" in dash_duo.find_element("#open-licence").text
    assert "每分钟最多 60 次" in dash_duo.find_element("#open-key").text
    js(dash_duo, "document.querySelector('#lang-toggle').click()")
    dash_duo.wait_for_text_to_equal("#open-title", "Open data", timeout=15)
    assert "60 requests a minute" in dash_duo.find_element("#open-key").text
    assert dash_duo.get_logs() == []


def _fetch(dash_duo, href: str) -> tuple[int, str]:
    return tuple(dash_duo.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(async r => done([r.status, await r.text()]),"
        " e => done([0, String(e)]));", href))


@pytest.mark.timeout(120)
def test_the_csv_link_follows_the_table_and_holds_what_it_shows(app, dash_duo):
    now = int(time.time() * 1000)
    ingest_now(app, {"traffic": [make_event(i, ts=now - (i + 1) * 60_000, district="futian", severity=1 + i % 4,
                                            title=f"事件 {i}") for i in range(12)]})
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/district/futian", role="viewer")
    dash_duo.wait_for_text_to_equal("#district-title", "福田区", timeout=15)
    wait_for(lambda: cells(dash_duo, "title")[:1] == ["事件 0"], timeout=20, message="the table drawn")
    filt = dash_duo.find_element('th.dash-filter[data-dash-column="severity"] input')
    filt.send_keys(">= 3\n")
    wait_for(lambda: cells(dash_duo, "title") and all(int(s) >= 3 for s in cells(dash_duo, "severity")),
             timeout=20, message="the table filtered")
    link = "#district-export-csv"
    wait_for(lambda: "filter=" in (dash_duo.find_element(link).get_attribute("href") or ""), timeout=10,
             message="the link following the filter")
    shown = list(zip(cells(dash_duo, "time"), cells(dash_duo, "title"), cells(dash_duo, "severity")))
    status, body = _fetch(dash_duo, dash_duo.find_element(link).get_attribute("href"))
    assert status == 200, body
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0][0] == "时间"
    assert [(r[0][5:], r[5], r[4]) for r in rows[1:]] == shown and len(shown) == 6
    assert dash_duo.find_element("#district-export-xlsx").get_attribute("href").split("?")[1] == \
        dash_duo.find_element(link).get_attribute("href").split("?")[1]
    assert dash_duo.get_logs() == []
