"""The wall read from 6 m, in a real headless Chromium: map labels apart, a full spotlight."""

from __future__ import annotations

import pytest

from tests.helpers import sign_in, wait_for
from tests.test_api import ingest_now
from tests.test_pages import ev, js, viewport

# The map's labels as drawn (HTML over the map, layouts/common.py map_label_layer): each label's box, its
# background behind its text, is what a reader 6 m away sees; and the map's own box, which they must stay in.
LABEL_BOXES = """
const box = (el) => { const r = el.getBoundingClientRect(); return {l: r.left, t: r.top, r: r.right, b: r.bottom}; };
return [...document.querySelectorAll('#map-labels .map-label')].map(a => Object.assign(box(a), {text: a.textContent}));
"""
MAP_BOX = """
const r = document.getElementById('city-map').getBoundingClientRect();
return {l: r.left, t: r.top, r: r.right, b: r.bottom};
"""
# the browser refitted the map to the size it drew (its size is in the figure's meta) and placed the labels on it
FITTED = """
const g = document.getElementById('city-map'), gd = g && g.querySelector('.js-plotly-plot');
const meta = gd && gd.layout && gd.layout.meta;
return !!meta && meta.size === g.clientWidth + 'x' + g.clientHeight
    && !!document.querySelector('#map-labels.is-placed');
"""


def set_lang(dash_duo, lang: str) -> None:
    js(dash_duo, "localStorage.setItem('lang', JSON.stringify(arguments[0]));"
                 "localStorage.setItem('lang-timestamp', String(Date.now()));", lang)


def wall_in_both_languages(dash_duo, app, size: tuple[int, int]):
    """Open /wall at ``size``, signed in; yield "zh", then "en" once the page has been switched to English."""
    dash_duo.start_server(app)
    viewport(dash_duo, *size)
    sign_in(dash_duo, app, path="/wall")
    yield "zh"
    set_lang(dash_duo, "en")
    dash_duo.driver.refresh()
    yield "en"


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160)])
def test_wall_map_labels_do_not_overlap(make_app, redis_client, dash_duo, size):
    app = make_app(PANORAMA_WALL_CYCLE_S=3600, PANORAMA_POLL_MS=700)
    for lang, first in zip(wall_in_both_languages(dash_duo, app, size), ("南山", "Nanshan")):
        wait_for(lambda: any(b["text"].startswith(first) for b in js(dash_duo, LABEL_BOXES))
                 and js(dash_duo, FITTED), timeout=15, message=f"the map's labels in {lang}, fitted")
        boxes, on = js(dash_duo, LABEL_BOXES), js(dash_duo, MAP_BOX)
        assert len(boxes) == 9
        for i, a in enumerate(boxes):
            assert on["l"] <= a["l"] and a["r"] <= on["r"] and on["t"] <= a["t"] and a["b"] <= on["b"], \
                f"{size} {lang}: {a} off the map {on}"
            for b in boxes[i + 1:]:
                apart = a["r"] <= b["l"] or b["r"] <= a["l"] or a["b"] <= b["t"] or b["b"] <= a["t"]
                assert apart, f"{size} {lang}: {a} and {b} intersect"
    assert dash_duo.get_logs() == []


def test_wall_spotlight_shows_the_districts_trend_and_open_incidents(make_app, redis_client, dash_duo):
    app = make_app(PANORAMA_WALL_CYCLE_S=3600, PANORAMA_POLL_MS=700)
    ingest_now(app, {"incident": [ev(1, minutes_ago=3, district="luohu", kind="fire", severity=4,
                                     title="<b>火情</b> 东门"),
                                  ev(2, minutes_ago=3, district="futian", kind="fire", severity=4, title="福田火情")],
                     "traffic": [ev(3, minutes_ago=2, district="luohu", title="拥堵")]})
    dash_duo.start_server(app)
    viewport(dash_duo, 1920, 1080)
    sign_in(dash_duo, app, path="/wall")  # the spotlight starts on the pack's first district, 罗湖
    dash_duo.wait_for_text_to_equal(".spotlight-panel .spot-name", "罗湖区", timeout=15)
    wait_for(lambda: js(dash_duo, INCIDENTS) == [["特别重大", "<b>火情</b> 东门", "待派单"]], timeout=15,
             message="罗湖's open incident, its title as text, its status in Chinese")
    # the district's own last hour: its traffic line holds the one event, its incident line the fire
    wait_for(lambda: js(dash_duo, SPOT_SUMS) == {"traffic": 1, "incident": 1}, timeout=15,
             message="the spotlight's trend")
    assert js(dash_duo, "return document.querySelectorAll('.spotlight-panel b').length") == 0
    assert dash_duo.get_logs() == []


def test_wall_spotlight_trend_is_never_drawn_over_its_incidents(make_app, redis_client, dash_duo):
    app = make_app(PANORAMA_WALL_CYCLE_S=3600, PANORAMA_POLL_MS=700)
    # 1.3 km apart: nine incidents, not one with nine reports (reports within 1 km join)
    ingest_now(app, {"incident": [ev(10 + i, minutes_ago=1 + i, district="luohu", kind="fire", severity=3 + i % 2,
                                     lat=22.50 + i * 0.012, lon=114.12, title=f"火情 {i}") for i in range(9)]})
    dash_duo.start_server(app)
    viewport(dash_duo, 1920, 1080)
    sign_in(dash_duo, app, path="/wall")
    # more open incidents than fit, drawn after the trend: the trend stays in its box above them, the list in the panel
    wait_for(lambda: len(js(dash_duo, INCIDENTS)) >= 5, timeout=20, message="罗湖's incidents, more than fit")
    wait_for(lambda: js(dash_duo, SPOT_SUMS), timeout=15, message="the spotlight's trend drawn")
    # the panel's rows settle as the ticker and the risk list fill in; the graph refits its box when it changes
    # (dcc.Graph's ResizeObserver, 50 ms debounced): what is asserted is where it comes to rest
    boxes = wait_for(lambda: (b := js(dash_duo, SPOT_BOXES))["plot"] <= b["trend"] + 1 and b, timeout=10,
                     message="the plot drawn within its box")
    assert boxes["trend"] <= boxes["heading"] + 1, boxes  # and above the incidents' heading
    assert boxes["list"] <= boxes["panel"] + 1, boxes
    # a severity word is never broken across lines ("特别重 / 大")
    assert js(dash_duo, "return [...document.querySelectorAll('.spot-incident-sev')]"
                        ".map(e => e.getClientRects().length)") == [1] * len(js(dash_duo, INCIDENTS))
    assert dash_duo.get_logs() == []


SPOT_BOXES = """
const p = document.querySelector('.spotlight-panel');
const bottom = (sel) => p.querySelector(sel).getBoundingClientRect().bottom;
const heads = p.querySelectorAll('.spot-sub');
return {plot: bottom('.spot-trend .main-svg'), trend: bottom('.spot-trend'),
        heading: heads[heads.length - 1].getBoundingClientRect().top, list: bottom('.spot-incidents'),
        panel: p.getBoundingClientRect().bottom};
"""
INCIDENTS = """
return [...document.querySelectorAll('.spotlight-panel .spot-incidents li.spot-incident')]
    .map(li => [...li.children].map(c => c.textContent));
"""
SPOT_SUMS = """
const gd = document.querySelector('.spotlight-panel .spot-trend .js-plotly-plot');
if (!gd || !gd.data) return null;
const out = {};
gd.data.forEach((tr, i) => { const s = (tr.y || []).reduce((a, b) => a + b, 0); if (s) out[['security', 'traffic', 'environment', 'incident'][i]] = s; });
return out;
"""


# Every word on the wall that the page cuts with an ellipsis when it does not fit, but the feeds' own free text
# (event and incident titles, which may be of any length): a district's, a domain's, a heading's.
CUT_SHORT = """
const free = '.ticker-title, .spot-incident-title';
return [...document.querySelectorAll('.page-wall *')].filter(e => e.children.length === 0 && e.textContent.trim()
    && !e.matches(free) && getComputedStyle(e).textOverflow === 'ellipsis' && e.scrollWidth > e.clientWidth + 1)
    .map(e => [e.className, e.textContent, e.scrollWidth, e.clientWidth]);
"""


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160)])
def test_no_word_of_the_wall_is_cut_short_in_either_language(make_app, redis_client, dash_duo, size):
    """English set in a Latin face is wider than in the CJK face's Latin: "Environment" read "Environm…" on the
    spotlight at 1920×1080 (DejaVu Sans)."""
    app = make_app(PANORAMA_WALL_CYCLE_S=3600, PANORAMA_POLL_MS=700)
    ingest_now(app, {"environment": [ev(1, minutes_ago=2, district="luohu", kind="aqi", title="空气质量")],
                     "traffic": [ev(2, minutes_ago=2, district="guangming", title="拥堵")]})
    for lang, name in zip(wall_in_both_languages(dash_duo, app, size), ("罗湖区", "Luohu")):
        dash_duo.wait_for_text_to_equal(".spotlight-panel .spot-name", name, timeout=15)
        wait_for(lambda: js(dash_duo, "return document.querySelectorAll('.ticker-item').length") >= 2, timeout=15,
                 message=f"the ticker's rows in {lang}")
        assert js(dash_duo, CUT_SHORT) == [], f"{size} {lang}"
    assert dash_duo.get_logs() == []
