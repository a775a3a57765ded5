"""The wall read from 6 m, in a real headless Chromium: map labels apart, a full spotlight."""

from __future__ import annotations

import pytest

from tests.helpers import sign_in, wait_for
from tests.test_pages import js, viewport

# The map's label texts as drawn (Plotly's annotation <g class="annotation-text-g">), and the boxes drawn behind
# them (<rect class="bg">): both are what a reader 6 m away sees.
LABEL_BOXES = """
const box = (el) => { const r = el.getBoundingClientRect(); return {l: r.left, t: r.top, r: r.right, b: r.bottom}; };
return [...document.querySelectorAll('#city-map .annotation')].flatMap(a => {
    const text = a.querySelector('.annotation-text-g'), bg = a.querySelector('rect.bg');
    return [Object.assign(box(text), {text: text.textContent}), Object.assign(box(bg), {text: text.textContent})];
});
"""
FITTED = """
const g = document.getElementById('city-map'), gd = g && g.querySelector('.js-plotly-plot');
const meta = gd && gd.layout && gd.layout.meta;
return !!meta && meta.size === g.clientWidth + 'x' + g.clientHeight;
"""


def set_lang(dash_duo, lang: str) -> None:
    js(dash_duo, "localStorage.setItem('lang', JSON.stringify(arguments[0]));"
                 "localStorage.setItem('lang-timestamp', String(Date.now()));", lang)


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160)])
def test_wall_map_labels_do_not_overlap(make_app, redis_client, dash_duo, size):
    app = make_app(PANORAMA_WALL_CYCLE_S=3600, PANORAMA_POLL_MS=700)
    dash_duo.start_server(app)
    viewport(dash_duo, *size)
    sign_in(dash_duo, app, path="/wall")
    for lang, first in (("zh", "南山"), ("en", "Nanshan")):
        if lang == "en":
            set_lang(dash_duo, "en")
            dash_duo.driver.refresh()
        # the labels as the browser refitted them to the map it drew (its size is in the figure's meta)
        wait_for(lambda: any(b["text"].startswith(first) for b in js(dash_duo, LABEL_BOXES))
                 and js(dash_duo, FITTED), timeout=15, message=f"the map's labels in {lang}, fitted")
        boxes = js(dash_duo, LABEL_BOXES)
        assert len(boxes) == 18
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                if a["text"] == b["text"]:
                    continue  # a label's text and its own box
                apart = a["r"] <= b["l"] or b["r"] <= a["l"] or a["b"] <= b["t"] or b["b"] <= a["t"]
                assert apart, f"{size} {lang}: {a} and {b} intersect"
    assert dash_duo.get_logs() == []
